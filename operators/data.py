"""Operator-learning data sets from our own solvers, written in chunks.

``generate(kind, n_train=..., n_test=..., nx=..., out=...)`` draws input functions from a
periodic Gaussian random field (``operators.grf``) on a fine grid, solves the PDE for a
chunk of them at a time (batched, float64), subsamples inputs and solutions to the
requested grid by striding (so every resolution holds the same functions), and appends the
chunk to a temporary netCDF file that is renamed over ``out`` when complete. A large set
never has to fit in memory, and an interrupted run leaves no file behind.

Kinds (all but darcy on the periodic unit interval / torus, x_j = j / nx):

* ``burgers``: u_t + u u_x = nu u_xx, a = u(., 0) ~ N(0, 625 (-Laplacian + 25 I)^-2),
  u = u(., 1), nu = 0.1 (the FNO paper's task; ``pdes.problems.OPERATOR_BURGERS``), solved
  with ``pdes.spectral.solve_periodic_burgers`` (ETDRK4, 2/3 dealiasing) on the fine grid.
* ``heat``: u_t = alpha u_xx, a = u(., 0) from the same GRF, u = u(., t_end): exact, each
  Fourier mode times exp(-alpha (2 pi k)^2 t_end) (defaults alpha = 0.1, t_end = 0.1).
* ``heat2d``: the same on the unit torus, exp(-alpha 4 pi^2 |k|^2 t_end).
* ``navier_stokes``: 2D vorticity w, a = w(., 0) ~ N(0, 7^1.5 (-Laplacian + 49 I)^-2.5),
  u = w(., t_end) with t_end = 10, nu = 1e-3 and the FNO paper's forcing
  (``operators.navier_stokes``); with ``snapshots = K`` every trajectory gives K samples
  (w(t_k), w(t_{k+1})), t_k = k t_end / K (an autoregressive one-step map).
* ``darcy``: the FNO paper's Darcy flow (section 5.2), not periodic: -div(a grad u) = 1 on
  (0, 1)^2, u = 0 on the boundary, a = 12 / 3 by the sign of a zero-Neumann GRF
  N(0, (-Laplacian + 9 I)^-2) (``operators.darcy``). Node grid x = y = linspace(0, 1, nx)
  (boundary included); solved by finite differences on fine_nx nodes with
  (fine_nx - 1) = r (nx - 1), r >= 2 (default 421, the paper's, when nx is 85, 141, 211, ...,
  else 2 nx - 1) and subsampled by striding. Sample i is drawn from
  ``np.random.default_rng([seed, i])``, so sets at different nx (same seed, same fine grid)
  hold the same functions, sample by sample, whatever n_train and n_test.

The file is the operator-dataset form of DESIGN.md section 2: variables ``a``, ``u`` with
dims (sample, x[, y]), ``split`` ("train" for the first n_train samples, then "test"), and
attrs ``equation``, ``method``, ``params`` (the PDE and GRF parameters, JSON), ``config``,
``seed``, ... as built by ``pdes.solution.operator_dataset``, and ``periodic`` (DESIGN.md
section 7; stored as the integer 1 or 0 because netCDF has no booleans: 0 for darcy).
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import h5netcdf
import h5py
import numpy as np

from operators.grf import sample_grf
from pdes.problems import OPERATOR_BURGERS
from pdes.solution import operator_dataset
from plumbing.files import atomic_path

__all__ = ["KINDS", "GenerateConfig", "generate", "generate_arrays"]

KINDS = ("burgers", "heat", "heat2d", "navier_stokes", "darcy")
PERIODIC = {"burgers": True, "heat": True, "heat2d": True, "navier_stokes": True, "darcy": False}


@dataclass(frozen=True)
class GenerateConfig:
    """What ``generate`` builds. None means the kind's default (see the module doc)."""

    kind: str = "burgers"
    n_train: int = 1000
    n_test: int = 200
    nx: int = 256
    nu: float | None = None
    alpha: float | None = None
    t_end: float | None = None
    fine_nx: int | None = None
    snapshots: int = 0
    chunk_size: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        for name in ("n_train", "n_test"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 0):
                raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        if self.n_train + self.n_test == 0:
            raise ValueError("n_train + n_test must be at least 1")
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.kind == "darcy":
            self._check_darcy()
        elif not (isinstance(self.nx, int) and self.nx >= 8 and self.nx % 2 == 0):
            raise ValueError(f"nx must be an even integer >= 8, got {self.nx!r}")
        for name in ("nu", "alpha", "t_end"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive finite number, got {v!r}")
        if self.kind != "darcy" and self.fine_nx is not None and not (
                isinstance(self.fine_nx, int) and self.fine_nx >= self.nx and self.fine_nx % self.nx == 0):
            raise ValueError(f"fine_nx must be a multiple of nx={self.nx}, got {self.fine_nx!r}")
        if not (isinstance(self.snapshots, int) and self.snapshots >= 0):
            raise ValueError(f"snapshots must be a non-negative integer, got {self.snapshots!r}")
        if self.snapshots and self.kind != "navier_stokes":
            raise ValueError("snapshots is only for navier_stokes")
        if self.chunk_size is not None and not (isinstance(self.chunk_size, int) and self.chunk_size >= 1):
            raise ValueError(f"chunk_size must be a positive integer, got {self.chunk_size!r}")

    def _check_darcy(self) -> None:
        if not (isinstance(self.nx, int) and self.nx >= 3):
            raise ValueError(f"nx must be an integer >= 3 for darcy (nodes per axis, boundary included), got {self.nx!r}")
        if self.fine_nx is not None and not (isinstance(self.fine_nx, int) and self.fine_nx >= 2 * self.nx - 1
                                             and (self.fine_nx - 1) % (self.nx - 1) == 0):
            raise ValueError(f"fine_nx must be r (nx - 1) + 1 with an integer r >= 2 (nx={self.nx}: "
                             f"{2 * self.nx - 1}, {3 * self.nx - 2}, ...), got {self.fine_nx!r}")
        for name in ("nu", "alpha", "t_end"):
            if getattr(self, name) is not None:
                raise ValueError(f"darcy is steady with fixed coefficients: {name} does not apply")

    @property
    def dim(self) -> int:
        return 2 if self.kind in ("heat2d", "navier_stokes", "darcy") else 1

    @property
    def periodic(self) -> bool:
        return PERIODIC[self.kind]

    @property
    def stride(self) -> int:
        """Fine grid points per stored grid point (nodes: (fine_nx - 1) / (nx - 1))."""
        return (self.fine_nx - 1) // (self.nx - 1) if self.kind == "darcy" else self.fine_nx // self.nx

    def grid(self) -> np.ndarray:
        """The stored grid on each axis: j / nx (periodic) or linspace(0, 1, nx) (darcy's nodes)."""
        return np.linspace(0.0, 1.0, self.nx) if self.kind == "darcy" else np.arange(self.nx) / self.nx

    def resolved(self) -> GenerateConfig:
        """The config with every default filled in (what the file records)."""
        from dataclasses import replace

        d: dict[str, Any] = {}
        if self.kind == "burgers":
            d = {"nu": self.nu or OPERATOR_BURGERS.nu, "t_end": self.t_end or OPERATOR_BURGERS.t_end,
                 "fine_nx": self.fine_nx or _multiple(self.nx, 1024), "chunk_size": self.chunk_size or 100}
        elif self.kind == "heat":
            d = {"alpha": self.alpha or 0.1, "t_end": self.t_end or 0.1,
                 "fine_nx": self.fine_nx or _multiple(self.nx, 1024), "chunk_size": self.chunk_size or 500}
        elif self.kind == "darcy":
            from operators.darcy import default_fine_nx

            d = {"fine_nx": self.fine_nx or default_fine_nx(self.nx), "chunk_size": self.chunk_size or 16}
        elif self.kind == "heat2d":
            d = {"alpha": self.alpha or 0.1, "t_end": self.t_end or 0.1,
                 "fine_nx": self.fine_nx or _multiple(self.nx, 128), "chunk_size": self.chunk_size or 100}
        else:
            d = {"nu": self.nu or 1e-3, "t_end": self.t_end or 10.0,
                 "fine_nx": self.fine_nx or self.nx, "chunk_size": self.chunk_size or 20}
        return replace(self, **d)

    def grf(self) -> dict[str, float]:
        """The GRF parameters of the inputs (FNO paper, sections 5.1 and 5.3)."""
        if self.kind == "navier_stokes":
            return {"alpha": 2.5, "tau": 7.0, "sigma": 7.0**1.5}
        if self.kind == "darcy":
            from operators.darcy import DARCY

            return DARCY.params()["grf"]
        p = OPERATOR_BURGERS
        return {"alpha": p.grf_alpha, "tau": p.grf_tau, "sigma": p.grf_sigma}


def _multiple(nx: int, at_least: int) -> int:
    return nx * max(1, math.ceil(at_least / nx))


def _solve_chunk(cfg: GenerateConfig, a_fine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a, u) on the fine grid for one chunk of inputs a_fine: (B, *fine grid)."""
    n = cfg.fine_nx
    if cfg.kind == "burgers":
        from pdes.spectral import solve_periodic_burgers

        # The solver's default step aims at ~1e-10 relative error (pdes.spectral).
        u = solve_periodic_burgers(a_fine, nu=cfg.nu, t_save=[cfg.t_end])[:, -1]
        return a_fine, u
    if cfg.kind in ("heat", "heat2d"):
        axes = tuple(range(1, cfg.dim + 1))
        k = np.fft.fftfreq(n, 1.0 / n)
        k2 = sum(np.meshgrid(*([k**2] * cfg.dim), indexing="ij"))
        decay = np.exp(-cfg.alpha * 4 * math.pi**2 * k2 * cfg.t_end)
        u = np.fft.ifftn(np.fft.fftn(a_fine, axes=axes) * decay, axes=axes).real
        return a_fine, u
    from operators.navier_stokes import solve_navier_stokes

    if cfg.snapshots:
        times = cfg.t_end * np.arange(1, cfg.snapshots + 1) / cfg.snapshots
        w = solve_navier_stokes(a_fine, nu=cfg.nu, t_save=times)  # (B, K, n, n)
        traj = np.concatenate([a_fine[:, None], w], axis=1)
        return traj[:, :-1].reshape(-1, n, n), traj[:, 1:].reshape(-1, n, n)
    return a_fine, solve_navier_stokes(a_fine, nu=cfg.nu, t_save=[cfg.t_end])[:, -1]


def _subsample(arr: np.ndarray, stride: int, dim: int) -> np.ndarray:
    idx = (slice(None),) + (slice(None, None, stride),) * dim
    return np.ascontiguousarray(arr[idx])


def _darcy_chunk(cfg: GenerateConfig, start: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, u) on darcy's fine node grid for samples start .. start + b - 1 (own seed each)."""
    from operators.darcy import DARCY, darcy_coefficient, solve_darcy

    a = darcy_coefficient(cfg.seed, range(start, start + b), np.linspace(0.0, 1.0, cfg.fine_nx))
    return a, solve_darcy(a, DARCY.f)


def _chunks(cfg: GenerateConfig, progress: bool):
    """Yield (a, u) chunks on the output grid, in sample order. The periodic kinds draw from
    one rng stream for all samples; darcy seeds every sample on its own."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng(cfg.seed)
    total = cfg.n_train + cfg.n_test
    stride = cfg.stride
    with tqdm(total=total, desc=f"generate {cfg.kind}", unit="traj" if cfg.snapshots else "sample",
              file=sys.stderr, disable=not progress) as bar:
        for start in range(0, total, cfg.chunk_size):
            b = min(cfg.chunk_size, total - start)
            if cfg.kind == "darcy":
                a, u = _darcy_chunk(cfg, start, b)
            else:
                a, u = _solve_chunk(cfg, sample_grf(rng, b, cfg.fine_nx, dim=cfg.dim, **cfg.grf()))
            yield _subsample(a, stride, cfg.dim), _subsample(u, stride, cfg.dim)
            bar.update(b)


def _meta(cfg: GenerateConfig) -> tuple[str, dict[str, Any]]:
    if cfg.kind == "darcy":
        from operators.darcy import DARCY

        return "darcy", {**DARCY.params(), "fine_nx": cfg.fine_nx, "stride": cfg.stride, "length": 1.0,
                         "seeding": "sample i: np.random.default_rng([seed, i])"}
    equation = {"burgers": "operator_burgers", "heat": "heat_periodic", "heat2d": "heat2d_periodic",
                "navier_stokes": "navier_stokes_vorticity"}[cfg.kind]
    params: dict[str, Any] = {"grf": cfg.grf(), "t_end": cfg.t_end, "length": 1.0}
    if cfg.kind in ("burgers", "navier_stokes"):
        params["nu"] = cfg.nu
    else:
        params["alpha"] = cfg.alpha
    if cfg.kind == "navier_stokes":
        params["forcing"] = "0.1 (sin 2 pi (x + y) + cos 2 pi (x + y))"
        params["snapshots"] = cfg.snapshots
    return equation, params


def _method(cfg: GenerateConfig) -> str:
    return {"burgers": "spectral", "navier_stokes": "spectral", "darcy": "finite_difference"}.get(cfg.kind, "exact")


def _split(cfg: GenerateConfig) -> np.ndarray:
    per = cfg.snapshots or 1
    return np.array(["train"] * (cfg.n_train * per) + ["test"] * (cfg.n_test * per))


def generate_arrays(cfg: GenerateConfig, *, progress: bool = False):
    """The whole set in memory as an ``xarray.Dataset`` (for small sets and tests)."""
    cfg = cfg.resolved()
    t0 = time.perf_counter()
    parts = list(_chunks(cfg, progress))
    a = np.concatenate([p[0] for p in parts])
    u = np.concatenate([p[1] for p in parts])
    equation, params = _meta(cfg)
    x = cfg.grid()
    return operator_dataset(a, u, x=x, y=x if cfg.dim == 2 else None, split=_split(cfg), equation=equation,
                            method=_method(cfg), params=params, config=asdict(cfg), seed=cfg.seed,
                            wall_time_s=time.perf_counter() - t0, attrs={"periodic": int(cfg.periodic)})


def generate(cfg: GenerateConfig, out: str | os.PathLike[str], *, progress: bool = True) -> Path:
    """Generate the set chunk by chunk into ``out`` (.nc, written atomically); returns the path.

    The file has exactly the variables, dims, coordinates and attrs of
    ``pdes.solution.operator_dataset`` (the template is built by it from a one-sample set).
    """
    cfg = cfg.resolved()
    out = Path(out)
    equation, params = _meta(cfg)
    split = _split(cfg)
    n_total = split.size
    x = cfg.grid()
    grid = (cfg.nx,) * cfg.dim
    template = operator_dataset(np.zeros((1, *grid)), np.zeros((1, *grid)), x=x, y=x if cfg.dim == 2 else None,
                                split=split[:1], equation=equation, method=_method(cfg), params=params,
                                config=asdict(cfg), seed=cfg.seed, attrs={"periodic": int(cfg.periodic)})
    dims = template["a"].dims
    t0 = time.perf_counter()
    with atomic_path(out, suffixes=(".nc",)) as tmp:
        with h5netcdf.File(tmp, "w") as f:
            f.dimensions = {"sample": n_total, "x": cfg.nx, **({"y": cfg.nx} if cfg.dim == 2 else {})}
            for name in ("sample", "x", "y"):
                if name in template.coords:
                    v = f.create_variable(name, (name,), "f8", data=np.asarray(template[name]) if name != "sample"
                                          else np.arange(n_total, dtype=np.float64))
                    v.attrs.update(template[name].attrs)
            chunk_rows = max(1, min(n_total, (1 << 20) // (8 * int(np.prod(grid)))))
            for name in ("a", "u"):
                v = f.create_variable(name, dims, "f8", chunks=(chunk_rows, *grid), fillvalue=np.nan)
                v.attrs.update(template[name].attrs)
            s = f.create_variable("split", ("sample",), dtype=h5py.string_dtype())
            s[:] = split.astype(object)
            s.attrs.update(template["split"].attrs)
            i = 0
            for a, u in _chunks(cfg, progress):
                f.variables["a"][i:i + a.shape[0]] = a
                f.variables["u"][i:i + a.shape[0]] = u
                i += a.shape[0]
            attrs = dict(template.attrs)
            attrs["wall_time_s"] = float(time.perf_counter() - t0)
            f.attrs.update(attrs)
    return out
