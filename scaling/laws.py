"""Fitting scaling laws: a power law with irreducible loss, and Hoffmann et al.'s two-variable form.

Forms (loss in nats per token; x, N, D raw counts, C in FLOPs):

* ``power``: L(x) = E + A / x^alpha (one variable: parameters N, tokens D or compute C).
* ``chinchilla``: L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, eq. 2).

Fitting follows Hoffmann et al. 2022 (section 3.3 and appendix D.2): the log-sum-exp
parametrisation A = exp(a), B = exp(b), E = exp(e),

    log L_hat = LSE(a - alpha log N, b - beta log D, e),

and the objective sum_i Huber_delta(log L_hat_i - log L_i) with delta = 1e-3, minimised by L-BFGS
from a grid of starting points (alpha, beta in {0, 0.5, ..., 2}, e in {-1, -0.5, ..., 1},
a, b in {0, 5, ..., 25}). To keep this cheap, the objective is first evaluated at every grid point
(one vectorised pass) and L-BFGS is run from the ``n_starts`` best of them (all of them with
``n_starts=None``). Bootstrap confidence intervals resample the points with replacement and refit.

Only numpy and scipy are imported here.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

try:  # scipy's L-BFGS-B calls BLAS on tiny vectors, where extra threads only contend: one thread while fitting
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - optional
    threadpool_limits = None

HUBER_DELTA = 1e-3  # Hoffmann et al. 2022, appendix D.2

# column names accepted in a runs CSV, per quantity (first match wins; case-insensitive)
COLUMN_ALIASES = {
    "N": ("N", "params", "n_params", "non_embedding_params", "model size", "model_size", "parameters"),
    "D": ("D", "tokens", "n_tokens", "training tokens", "train_tokens"),
    "C": ("C", "flops", "compute", "training flop", "training_flops", "train_flops"),
    "loss": ("loss", "val_loss", "L", "test_error", "error"),
}

PARAM_NAMES = {"power": ("E", "A", "alpha"), "chinchilla": ("E", "A", "B", "alpha", "beta")}


# --------------------------------------------------------------------------- objective
def _huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss of residuals r and its derivative: r^2/2 for |r| <= delta, delta (|r| - delta/2) beyond."""
    absr = np.abs(r)
    quad = absr <= delta
    value = np.where(quad, 0.5 * r * r, delta * (absr - 0.5 * delta))
    grad = np.where(quad, r, delta * np.sign(r))
    return value, grad


def _lse(t: np.ndarray, axis: int) -> np.ndarray:
    """log(sum(exp(t))) along ``axis``, shifted by the max for stability (cheaper than scipy's)."""
    m = t.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(t - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def _terms(theta: np.ndarray, logs: np.ndarray) -> np.ndarray:
    """The log-sum-exp terms. theta: (..., p); logs: (k, n) = log N [, log D]. Returns (..., k + 1, n).

    power: theta = (a, alpha, e); chinchilla: theta = (a, b, alpha, beta, e).
    """
    k = logs.shape[0]
    coef = theta[..., :k, None]              # a [, b]
    expo = theta[..., k:2 * k, None]         # alpha [, beta]
    e = theta[..., 2 * k:2 * k + 1, None]    # e
    t = coef - expo * logs                   # (..., k, n)
    e = np.broadcast_to(e, t.shape[:-2] + (1, t.shape[-1]))
    return np.concatenate([t, e], axis=-2)


def _objective(theta: np.ndarray, logs: np.ndarray, log_loss: np.ndarray, delta: float) -> tuple[float, np.ndarray]:
    """Sum of Huber losses of log residuals and its gradient. theta: (p,)."""
    k = logs.shape[0]
    t = _terms(theta, logs)                  # (k + 1, n)
    lse = _lse(t, axis=0)               # (n,)
    w = np.exp(t - lse)                      # softmax weights, d lse / d t
    val, dr = _huber(lse - log_loss, delta)
    grad = np.empty_like(theta)
    grad[:k] = (w[:k] * dr).sum(axis=1)                       # d/da, d/db
    grad[k:2 * k] = -(w[:k] * logs * dr).sum(axis=1)          # d/dalpha, d/dbeta
    grad[2 * k] = (w[k] * dr).sum()                           # d/de
    return float(val.sum()), grad


def _grid(form: str) -> np.ndarray:
    """Hoffmann et al.'s grid of starts, in theta order."""
    expos = np.arange(0.0, 2.01, 0.5)
    es = np.arange(-1.0, 1.01, 0.5)
    coefs = np.arange(0.0, 25.01, 5.0)
    if form == "power":
        return np.array(list(itertools.product(coefs, expos, es)))
    return np.array(list(itertools.product(coefs, coefs, expos, expos, es)))


def _grid_values(grid: np.ndarray, logs: np.ndarray, log_loss: np.ndarray, delta: float) -> np.ndarray:
    out = np.empty(len(grid))
    for i in range(0, len(grid), 512):        # chunks keep the (chunk, k + 1, n) array small
        t = _terms(grid[i:i + 512], logs)
        out[i:i + 512] = _huber(_lse(t, axis=-2) - log_loss, delta)[0].sum(axis=-1)
    return out


# --------------------------------------------------------------------------- results
@dataclass
class ScalingFit:
    """A fitted law. ``params``: E, A, alpha (and B, beta for the chinchilla form); ``ci``: name -> (lo, hi)."""

    form: str
    params: dict[str, float]
    objective: float
    n_points: int
    variable: str = "N"
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    ci_level: float = 0.95
    n_bootstrap: int = 0
    bootstrap_params: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def predict(self, x: np.ndarray, d: np.ndarray | None = None) -> np.ndarray:
        """Predicted loss. power: x is the variable; chinchilla: x = N, d = D (d = None: infinite data)."""
        p = self.params
        x = np.asarray(x, dtype=float)
        out = p["E"] + p["A"] / x ** p["alpha"]
        if self.form == "chinchilla" and d is not None:
            out = out + p["B"] / np.asarray(d, dtype=float) ** p["beta"]
        return out

    def frontier(self, C: np.ndarray) -> dict[str, np.ndarray]:
        """Compute-optimal N*(C), D*(C), tokens per parameter and loss under C = 6 N D (chinchilla form).

        N* = G (C/6)^a, D* = (C/6)^b / G with a = beta/(alpha+beta), b = alpha/(alpha+beta),
        G = (alpha A / (beta B))^(1/(alpha+beta)) (Hoffmann et al. 2022, appendix D.2).
        """
        if self.form != "chinchilla":
            raise ValueError("the compute-optimal frontier needs the chinchilla form (N and D)")
        p = self.params
        C = np.asarray(C, dtype=float)
        if np.any(~(C > 0)):
            raise ValueError("compute C must be positive")
        s = p["alpha"] + p["beta"]
        G = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1.0 / s)
        n = G * (C / 6.0) ** (p["beta"] / s)
        d = (C / 6.0) ** (p["alpha"] / s) / G
        return {"C": C, "N_opt": n, "D_opt": d, "tokens_per_param": d / n, "loss": self.predict(n, d),
                "a": p["beta"] / s, "b": p["alpha"] / s}

    def to_dict(self) -> dict:
        out = {"form": self.form, "variable": self.variable, **self.params, "objective": self.objective,
               "n_points": self.n_points}
        if self.ci:
            out["ci_level"] = self.ci_level
            out["n_bootstrap"] = self.n_bootstrap
            out["ci"] = {k: list(v) for k, v in self.ci.items()}
        if self.form == "chinchilla":
            f = self.frontier(np.array([1e21]))
            out["frontier_exponents"] = {"a": f["a"], "b": f["b"]}
        return out


# --------------------------------------------------------------------------- fitting
def _check(name: str, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float).ravel()
    if x.size == 0:
        raise ValueError(f"{name} is empty")
    bad = ~(np.isfinite(x) & (x > 0))
    if bad.any():
        raise ValueError(f"{name} must be positive and finite; got {float(x[bad][0])!r} at index {int(np.argmax(bad))}")
    return x


def _fit_theta(logs: np.ndarray, log_loss: np.ndarray, form: str, delta: float, n_starts: int | None,
               extra_starts: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, float]:
    grid = _grid(form)
    if n_starts is not None and n_starts < len(grid):
        vals = _grid_values(grid, logs, log_loss, delta)
        grid = grid[np.argsort(vals, kind="stable")[:max(int(n_starts), 1)]]
    starts = list(extra_starts) + list(grid)
    if threadpool_limits is None:
        return _run_starts(starts, logs, log_loss, delta)
    with threadpool_limits(limits=1, user_api="blas"):
        return _run_starts(starts, logs, log_loss, delta)


def _run_starts(starts: list, logs: np.ndarray, log_loss: np.ndarray, delta: float) -> tuple[np.ndarray, float]:
    best_theta, best_val = None, math.inf
    for x0 in starts:
        res = minimize(_objective, np.asarray(x0, dtype=float), args=(logs, log_loss, delta), jac=True,
                       method="L-BFGS-B", options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12})
        if np.all(np.isfinite(res.x)) and res.fun < best_val:
            best_theta, best_val = res.x, float(res.fun)
    if best_theta is None:
        raise ValueError("the fit failed from every starting point")
    return best_theta, best_val


def _params(theta: np.ndarray, form: str) -> dict[str, float]:
    if form == "power":
        a, alpha, e = theta
        return {"E": float(np.exp(e)), "A": float(np.exp(a)), "alpha": float(alpha)}
    a, b, alpha, beta, e = theta
    return {"E": float(np.exp(e)), "A": float(np.exp(a)), "B": float(np.exp(b)), "alpha": float(alpha),
            "beta": float(beta)}


def _theta(params: dict[str, float], form: str) -> np.ndarray:
    if form == "power":
        return np.array([math.log(params["A"]), params["alpha"], math.log(params["E"])])
    return np.array([math.log(params["A"]), math.log(params["B"]), params["alpha"], params["beta"],
                     math.log(params["E"])])


def _fit(xs: list[np.ndarray], loss: np.ndarray, form: str, *, delta: float, n_starts: int | None,
         bootstrap: int, seed: int, ci_level: float, variable: str,
         progress: Callable[[int], None] | None) -> ScalingFit:
    loss = _check("loss", loss)
    xs = [_check(name, x) for name, x in zip(("N", "D") if form == "chinchilla" else (variable,), xs,
                                              strict=True)]
    for name, x in zip(("N", "D"), xs, strict=False):
        if x.shape != loss.shape:
            raise ValueError(f"{name} has {x.size} values but loss has {loss.size}")
    n_par = len(PARAM_NAMES[form])
    if loss.size < n_par:
        raise ValueError(f"the {form} form has {n_par} parameters but only {loss.size} points were given")
    if not (delta > 0):
        raise ValueError(f"huber delta must be positive, got {delta}")
    logs = np.log(np.stack(xs))
    log_loss = np.log(loss)
    theta, val = _fit_theta(logs, log_loss, form, delta, n_starts)
    fit = ScalingFit(form=form, params=_params(theta, form), objective=val, n_points=int(loss.size),
                     variable=variable)
    if bootstrap:
        if bootstrap < 2:
            raise ValueError(f"bootstrap needs at least 2 resamples, got {bootstrap}")
        if not (0 < ci_level < 1):
            raise ValueError(f"ci_level must be in (0, 1), got {ci_level}")
        rng = np.random.default_rng(seed)
        samples = {k: [] for k in fit.params}
        boot_starts = None if n_starts is None else max(1, n_starts // 8)
        for i in range(bootstrap):
            idx = rng.integers(0, loss.size, loss.size)
            th, _ = _fit_theta(logs[:, idx], log_loss[idx], form, delta, boot_starts, extra_starts=[theta])
            for k, v in _params(th, form).items():
                samples[k].append(v)
            if progress is not None:
                progress(i + 1)
        q = [(1 - ci_level) / 2 * 100, (1 + ci_level) / 2 * 100]
        fit.ci = {k: tuple(float(v) for v in np.percentile(s, q)) for k, s in samples.items()}
        fit.ci_level, fit.n_bootstrap, fit.bootstrap_params = ci_level, bootstrap, samples
    return fit


def fit_power_law(x: np.ndarray, loss: np.ndarray, *, variable: str = "N", delta: float = HUBER_DELTA,
                  n_starts: int | None = 32, bootstrap: int = 0, seed: int = 0, ci_level: float = 0.95,
                  progress: Callable[[int], None] | None = None) -> ScalingFit:
    """Fit L(x) = E + A / x^alpha. x, loss: (n,) positive. ``variable`` names x (N, D or C) for reports."""
    return _fit([x], loss, "power", delta=delta, n_starts=n_starts, bootstrap=bootstrap, seed=seed,
                ci_level=ci_level, variable=variable, progress=progress)


def fit_chinchilla(N: np.ndarray, D: np.ndarray, loss: np.ndarray, *, delta: float = HUBER_DELTA,
                   n_starts: int | None = 64, bootstrap: int = 0, seed: int = 0, ci_level: float = 0.95,
                   progress: Callable[[int], None] | None = None) -> ScalingFit:
    """Fit L(N, D) = E + A / N^alpha + B / D^beta as Hoffmann et al. 2022. N, D, loss: (n,) positive."""
    return _fit([N, D], loss, "chinchilla", delta=delta, n_starts=n_starts, bootstrap=bootstrap, seed=seed,
                ci_level=ci_level, variable="N,D", progress=progress)


# --------------------------------------------------------------------------- data
def load_runs(path: str | Path) -> dict[str, np.ndarray]:
    """Read a runs CSV into arrays under the keys N, D, C, loss (those present; D = C / (6 N) if only C).

    Column names are matched case-insensitively against ``COLUMN_ALIASES``. Raises FileNotFoundError or
    ValueError (empty file, no recognised loss column, a non-numeric cell).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"{path} is empty") from None
        rows = [r for r in reader if any(cell.strip() for cell in r)]
    header = [h.strip() for h in header]
    lower = [h.lower() for h in header]
    if not rows:
        raise ValueError(f"{path} has a header but no data rows")
    out: dict[str, np.ndarray] = {}
    for key, names in COLUMN_ALIASES.items():
        col = next((lower.index(n.lower()) for n in names if n.lower() in lower), None)
        if col is None:
            continue
        vals = []
        for i, r in enumerate(rows, start=2):
            if len(r) != len(header):
                raise ValueError(f"{path}: line {i} has {len(r)} cells, the header has {len(header)}")
            try:
                vals.append(float(r[col]))
            except ValueError:
                raise ValueError(f"{path}: line {i}, column {header[col]!r}: not a number: {r[col]!r}") from None
        out[key] = np.array(vals)
    if "loss" not in out:
        raise ValueError(f"{path}: no loss column (expected one of {', '.join(COLUMN_ALIASES['loss'])})")
    if "D" not in out and "C" in out and "N" in out:
        out["D"] = _check("C", out["C"]) / (6.0 * _check("N", out["N"]))
    if "C" not in out and "N" in out and "D" in out:
        out["C"] = 6.0 * _check("N", out["N"]) * _check("D", out["D"])
    return out


def csv_text(rows: Sequence[Mapping[str, object]]) -> str:
    """Rows (dicts with the same keys, in the order of the first) as CSV text with a header line:
    what ``load_runs`` reads back."""
    if not rows:
        raise ValueError("no rows to write")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def drop_highest_loss(data: dict[str, np.ndarray], k: int) -> dict[str, np.ndarray]:
    """Remove the k points with the highest loss (Besiroglu et al. 2024 drop the five highest-loss points)."""
    if k < 0 or k >= data["loss"].size:
        raise ValueError(f"cannot drop {k} of {data['loss'].size} points")
    keep = np.sort(np.argsort(data["loss"], kind="stable")[: data["loss"].size - k])
    return {key: v[keep] for key, v in data.items()}


def fit_runs(data: dict[str, np.ndarray], form: str = "chinchilla", variable: str = "N", **kw) -> ScalingFit:
    """Fit a loaded runs table with the named form (power over ``variable``, or chinchilla over N and D)."""
    if form == "chinchilla":
        for key in ("N", "D"):
            if key not in data:
                raise ValueError(f"the chinchilla form needs column {key!r} (or N and C to derive D = C / 6N)")
        return fit_chinchilla(data["N"], data["D"], data["loss"], **kw)
    if form == "power":
        if variable not in data:
            raise ValueError(f"the power form over {variable} needs a column for {variable} "
                             f"(one of {', '.join(COLUMN_ALIASES[variable])})")
        return fit_power_law(data[variable], data["loss"], variable=variable, **kw)
    raise ValueError(f"unknown form {form!r}; choose power or chinchilla")
