"""Calibration reports of prediction files, checked against the truth stored beside them.

``make_report(ds, out_dir)`` takes a prediction Dataset (DESIGN.md section 2: ``u`` the
predictive mean, ``u_std``, ``u_true``, optionally ``u_samples`` with dims ``(member,
...)``) and writes into ``out_dir``:

* ``report.html``: self-contained (PNGs embedded as base64), a verdict in plain words at
  the top with its thresholds, the metric table, the coverage table, the figures and the
  before/after-recalibration table;
* ``metrics.json``: the same numbers (metric names of DESIGN.md section 5 at top level);
* ``reliability.png`` (gap shaded, numbers printed), ``coverage.png``, ``pit.png``,
  ``sharpness.png``, ``error_vs_sigma.png`` (Spearman correlation), ``heatmaps.png``
  (error and sigma over (t, x), or over (sample, x) for operator outputs), and for
  operator outputs (dims ``sample, x``) ``function_coverage.png``.

Calibrated predictions (``u_std_raw`` beside ``u_std``, attr ``calibrated`` = 1, written by
``uncertainty run fno`` or ``uncertainty calibrate``) get the raw and the calibrated numbers
side by side, the guarantee of the calibration map, and the whole-function coverage of the bands
``u_band_90``/``u_band_95`` (``whole_function_coverage_90``/``_95``).

Verdict: "calibrated" when mace <= 0.05 (the observed share inside the central p-interval
is on average within 5 points of p over the 100 levels); otherwise "over-confident" when
the intervals hold fewer points than stated on average (mean of observed - expected < 0)
and "under-confident" when they hold more. Recalibration is fitted on a random half of the
points (of the functions, for operator outputs) and judged on the other half.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from scipy import stats

from uncertainty.metrics import (
    COVERAGE_LEVELS,
    all_metrics,
    calibration_curve,
    function_coverage,
    interval_coverage,
    pit,
)
from uncertainty.recalibrate import recalibration_table, split_calibration

__all__ = ["CALIBRATED_MACE", "check_prediction", "make_report", "spearman", "verdict"]

CALIBRATED_MACE = 0.05
PNGS = ("reliability.png", "coverage.png", "pit.png", "sharpness.png", "error_vs_sigma.png", "heatmaps.png")


def check_prediction(ds: xr.Dataset) -> bool:
    """Check a prediction Dataset; return True for operator outputs (a ``sample`` dim).

    Raises ValueError naming the missing variable or the bad value."""
    for name in ("u", "u_std", "u_true"):
        if name not in ds:
            raise ValueError(
                f"the prediction file has no variable {name!r} (it needs u, u_std and u_true; has {sorted(ds.data_vars)})"
            )
    dims = ds["u"].dims
    for name in ("u_std", "u_true"):
        if ds[name].dims != dims:
            raise ValueError(f"{name} has dims {ds[name].dims}, expected those of u {dims}")
    if "u_samples" in ds and ds["u_samples"].dims != ("member", *dims):
        raise ValueError(f"u_samples has dims {ds['u_samples'].dims}, expected ('member', *{dims})")
    std = np.asarray(ds["u_std"])
    for name in ("u", "u_std", "u_true"):
        arr = np.asarray(ds[name])
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} has {int(np.sum(~np.isfinite(arr)))} non-finite values")
    if not np.all(std > 0):
        raise ValueError(f"u_std must be positive everywhere, got minimum {float(std.min())!r}")
    if "u_samples" in ds and ds.sizes["member"] < 2:
        raise ValueError(f"u_samples needs at least 2 members, got {ds.sizes['member']}")
    for name in ("u_std_raw", "u_band_90", "u_band_95"):
        if name in ds:
            if ds[name].dims != dims:
                raise ValueError(f"{name} has dims {ds[name].dims}, expected those of u {dims}")
            arr = np.asarray(ds[name])
            if not (np.all(np.isfinite(arr)) and np.all(arr > 0)):
                raise ValueError(f"{name} must be finite and positive everywhere")
    return "sample" in dims


def verdict(expected: np.ndarray, observed: np.ndarray, mace: float) -> str:
    """'calibrated' if mace <= CALIBRATED_MACE, else over-/under-confident by the mean gap."""
    if mace <= CALIBRATED_MACE:
        return "calibrated"
    return "over-confident" if float(np.mean(observed - expected)) < 0 else "under-confident"


VERDICT_RULE = (
    f"calibrated when mace <= {CALIBRATED_MACE} (observed share inside the central p-interval within "
    f"{CALIBRATED_MACE * 100:.0f} points of p on average over 100 levels); otherwise over-confident when the "
    "intervals hold fewer points than stated (mean observed - expected < 0), under-confident when they hold more"
)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two arrays (flattened); NaN when either is constant."""
    a, b = np.ravel(a), np.ravel(b)
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(stats.spearmanr(a, b).statistic)


def _subplots(*args: Any, figsize: tuple[float, float], **kwargs: Any) -> tuple[Any, Any]:
    """A figure of its own (``matplotlib.figure.Figure``: no pyplot state, no backend switch) and its axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


def _png(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _figures(
    ds: xr.Dataset, out: Path, *, operator: bool, m: dict[str, float], expected, observed, cov, raw_observed=None
) -> dict[str, str]:
    """Draw every PNG; return {file name: caption}."""
    u, s, y = (np.asarray(ds[v], dtype=np.float64) for v in ("u", "u_std", "u_true"))
    err = u - y
    captions: dict[str, str] = {}

    fig, ax = _subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="ideal")
    if raw_observed is not None:
        ax.plot(expected, raw_observed, color="0.5", lw=1.5, ls="-.", label="raw (u_std_raw)")
    ax.plot(expected, observed, color="C0", lw=2, label="calibrated" if raw_observed is not None else "observed")
    ax.fill_between(expected, expected, observed, color="C3", alpha=0.3, label="gap")
    ax.set_xlabel("expected share inside central interval")
    ax.set_ylabel("observed share")
    ax.set_title("Reliability (interval type, 100 levels)")
    ax.text(
        0.98,
        0.02,
        f"rmsce {m['rmsce']:.4f}\nmace {m['mace']:.4f}\nmiscal. area {m['miscalibration_area']:.4f}",
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        family="monospace",
        bbox={"facecolor": "white", "alpha": 0.8},
    )
    ax.legend(loc="upper left")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    _png(fig, out / "reliability.png")
    captions["reliability.png"] = "Reliability diagram; the shaded area is the gap to the diagonal."

    fig, ax = _subplots(figsize=(6, 3.5))
    levels = list(cov)
    xs = np.arange(len(levels))
    ax.bar(xs - 0.2, [lv for lv in levels], width=0.4, color="0.7", label="nominal")
    ax.bar(xs + 0.2, [cov[lv][0] for lv in levels], width=0.4, color="C0", label="observed")
    for i, lv in enumerate(levels):
        ax.text(
            i + 0.2,
            cov[lv][0] + 0.01,
            f"{cov[lv][0]:.3f}\nw={cov[lv][1]:.3g}",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xticks(xs, [f"{round(lv * 100)}%" for lv in levels])
    ax.set_ylim(0, 1.25)
    ax.set_ylabel("coverage")
    ax.set_title("Coverage of central intervals (w = mean width)")
    ax.legend(loc="upper left", ncol=2)
    _png(fig, out / "coverage.png")
    captions["coverage.png"] = "Observed vs nominal coverage of central Gaussian intervals, with mean widths."

    fig, ax = _subplots(figsize=(5, 3.5))
    ax.hist(pit(u, s, y), bins=20, range=(0, 1), density=True, color="C0", alpha=0.8)
    ax.axhline(1.0, color="k", ls="--", lw=1, label="uniform (calibrated)")
    ax.set_xlabel("PIT = Phi((u_true - u) / u_std)")
    ax.set_ylabel("density")
    ax.set_title("PIT histogram (U-shape: over-confident; hump: under-confident)", fontsize=9)
    ax.legend()
    _png(fig, out / "pit.png")
    captions["pit.png"] = "Probability integral transform histogram."

    fig, ax = _subplots(figsize=(5, 3.5))
    ax.hist(s.ravel(), bins=50, color="C2", alpha=0.8)
    ax.axvline(m["sharpness"], color="k", ls="--", label=f"sharpness {m['sharpness']:.3g}")
    ax.set_xlabel("predictive std u_std")
    ax.set_ylabel("count")
    ax.set_title("Sharpness")
    ax.legend()
    _png(fig, out / "sharpness.png")
    captions["sharpness.png"] = "Histogram of predictive standard deviations; sharpness = RMS of u_std."

    rho = spearman(np.abs(err), s)
    fig, ax = _subplots(figsize=(5, 5))
    rng = np.random.default_rng(0)
    idx = rng.permutation(err.size)[: min(err.size, 20_000)]
    ae, sv = np.abs(err).ravel()[idx], s.ravel()[idx]
    ax.scatter(sv, np.maximum(ae, 1e-12), s=3, alpha=0.3)
    lo, hi = (
        max(min(sv.min(), ae[ae > 0].min() if np.any(ae > 0) else sv.min()), 1e-12),
        max(sv.max(), ae.max()),
    )
    line = np.array([lo, hi])
    ax.plot(line, line, "k--", lw=1, label="|error| = sigma")
    ax.plot(line, 1.96 * line, "r:", lw=1, label="|error| = 1.96 sigma")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("u_std")
    ax.set_ylabel("|u - u_true|")
    ax.set_title(f"|error| vs sigma, Spearman rho = {rho:.3f}")
    ax.legend()
    _png(fig, out / "error_vs_sigma.png")
    captions["error_vs_sigma.png"] = f"|error| against sigma (Spearman rank correlation {rho:.3f})."

    dims = ds["u"].dims
    e2, s2 = np.abs(err), s
    if e2.ndim == 3:  # (t, x, y) or (sample, x, y): the last time / first sample
        e2, s2 = e2[-1 if not operator else 0], s2[-1 if not operator else 0]
        dims = dims[1:]
    if e2.ndim == 2:
        ycoord = np.asarray(ds[dims[0]]) if dims[0] in ds.coords else np.arange(e2.shape[0])
        xcoord = np.asarray(ds[dims[1]]) if dims[1] in ds.coords else np.arange(e2.shape[1])
        vmax = float(max(e2.max(), s2.max()))
        fig, axes = _subplots(1, 2, figsize=(10, 4), sharey=True)
        for ax, field, title in ((axes[0], e2, "|u - u_true|"), (axes[1], s2, "u_std")):
            im = ax.pcolormesh(xcoord, ycoord, field, shading="auto", vmin=0, vmax=vmax, cmap="magma")
            ax.set_title(title)
            ax.set_xlabel(dims[1])
            fig.colorbar(im, ax=ax)
        axes[0].set_ylabel(dims[0])
        _png(fig, out / "heatmaps.png")
        captions["heatmaps.png"] = (
            f"Absolute error and predictive std over ({dims[0]}, {dims[1]}), one colour scale."
        )
    else:  # 1-D data: profiles
        fig, ax = _subplots(figsize=(6, 3.5))
        ax.plot(np.abs(err), label="|error|")
        ax.plot(s, label="u_std")
        ax.legend()
        _png(fig, out / "heatmaps.png")
        captions["heatmaps.png"] = "Absolute error and predictive std."

    if operator:
        fc = function_coverage(u, s, y, 0.95)
        fig, ax = _subplots(figsize=(5, 3.5))
        ax.hist(fc, bins=np.linspace(0, 1, 41), color="C4")
        ax.axvline(0.95, color="k", ls="--", label="95% of points")
        ax.set_xlabel("share of a function's points inside its 95% band")
        ax.set_ylabel("functions")
        ax.set_title(f"Function-level coverage: {m['function_coverage_95']:.3f} of functions covered")
        ax.legend()
        _png(fig, out / "function_coverage.png")
        captions["function_coverage.png"] = (
            "Per test function, the share of its grid points inside the 95% band; function_coverage_95 "
            "is the share of functions at or above 0.95."
        )
    return captions


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return "inf" if math.isinf(v) else f"{v:.4g}"
    return html.escape(str(v))


def _calibration_html(summary: dict[str, Any]) -> str:
    cal = summary.get("calibration")
    if not cal:
        return ("<h2>Calibration</h2><p>These bands are <b>not calibrated</b>: " + html.escape(
            str(summary.get("calibration_note") or "the file has no calibration map")) + ".</p>")
    raw, m = summary["raw"], summary["metrics"]
    gauss = summary.get("gaussian_reading") or {}
    keys = [k for k in m if k in raw or k.startswith("whole_function")]
    rows = "".join(f"<tr><td>{k}</td><td>{_fmt(raw.get(k))}</td><td>{_fmt(gauss.get(k))}</td><td>{_fmt(m[k])}</td>"
                   "</tr>" for k in keys)
    return f"""<h2>Raw and calibrated, side by side</h2>
<p>Calibration: {html.escape(cal["method"])} at level {cal["level"]:g}, fitted on held-out data
({cal["n_spread"]} + {cal["n_conformal"]} functions or observations). Raw verdict: <b>{html.escape(summary["verdict_raw"])}</b>;
calibrated verdict: <b>{html.escape(summary["verdict"])}</b>.</p>
<p>Guarantee: {html.escape(cal["guarantee"])}</p>
<p>Columns: the raw std read as a Gaussian; the calibrated u_std read as a Gaussian (exact at level
{cal["level"]:g} only); the calibrated predictive distribution of the map (u + u_std Z, its central intervals
at every level; nll and sharpness there are the Gaussian reading's).</p>
<table><tr><th>metric</th><th>raw (u_std_raw)</th><th>calibrated u_std as Gaussian</th><th>calibrated distribution</th></tr>{rows}</table>"""


def _html(summary: dict[str, Any], captions: dict[str, str], out: Path) -> str:
    m = summary["metrics"]
    rows = "".join(f"<tr><td>{k}</td><td>{_fmt(v)}</td></tr>" for k, v in m.items())
    cov_rows = "".join(
        f"<tr><td>{lv}%</td><td>{_fmt(c['observed'])}</td><td>{_fmt(c['mean_width'])}</td></tr>"
        for lv, c in summary["coverage"].items()
    )
    rec = summary["recalibration"]
    cols = [
        "rmsce",
        "mace",
        "miscalibration_area",
        "coverage_50",
        "coverage_90",
        "coverage_95",
        "coverage_99",
        "width_95",
        "nll",
        "crps",
        "fit",
    ]
    rec_rows = "".join(
        f"<tr><td>{meth}</td>" + "".join(f"<td>{_fmt(row.get(c))}</td>" for c in cols) + "</tr>"
        for meth, row in rec["table"].items()
    )
    figs = ""
    for name, cap in captions.items():
        data = base64.b64encode((out / name).read_bytes()).decode()
        figs += f'<figure><img alt="{name}" src="data:image/png;base64,{data}"><figcaption>{html.escape(cap)}</figcaption></figure>\n'
    color = {"calibrated": "#1a7f37", "over-confident": "#b42318", "under-confident": "#b54708"}[
        summary["verdict"]
    ]
    info = ", ".join(f"{k} = {html.escape(str(summary[k]))}" for k in ("equation", "method", "n_points"))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Calibration report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
td:first-child{{text-align:left}}figure{{display:inline-block;margin:0.5em;vertical-align:top}}
img{{max-width:520px}}.verdict{{font-size:1.6em;font-weight:bold;color:{color}}}</style></head><body>
<h1>Calibration report</h1>
<p>{info}; file {html.escape(summary["source"])}</p>
<p class="verdict">The uncertainty is {summary["verdict"]}.</p>
<p>Rule: {html.escape(summary["verdict_rule"])}. Here mace = {m["mace"]:.4f}, mean(observed - expected) = {summary["mean_gap"]:+.4f}.
Errors are measured against the exact/reference solution <code>u_true</code>: relative L2 of the mean {m["rel_l2"]:.4g}.</p>
{_calibration_html(summary)}
<h2>Metrics (all points)</h2><table><tr><th>metric</th><th>value</th></tr>{rows}</table>
<h2>Coverage of central intervals</h2><table><tr><th>level</th><th>observed</th><th>mean width</th></tr>{cov_rows}</table>
<h2>Before / after recalibration on half of these test points (for comparison)</h2>
<p>Fitted on {rec["calibration_points"]} points, judged on the disjoint {rec["test_points"]} points ({html.escape(rec["split"])}),
starting from {html.escape(rec["from"])}.
"none" is the raw prediction on the test part; "fit" is the sigma factor. Isotonic (Kuleshov et al. 2018) and
conformal (finite-sample quantile) change intervals, not a Gaussian density, so nll and crps are n/a for them.</p>
<table><tr><th>method</th>{"".join(f"<th>{c}</th>" for c in cols)}</tr>{rec_rows}</table>
<h2>Figures</h2>
{figs}
</body></html>
"""


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def make_report(
    ds: xr.Dataset, out_dir: str | os.PathLike[str], *, seed: int = 0, source: str = "", figures: bool = True
) -> dict[str, Any]:
    """Write report.html, metrics.json and the PNGs into out_dir; return the summary dict.

    ``figures=False`` skips the PNGs (the HTML then has tables only)."""
    operator = check_prediction(ds)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out must be a directory, {str(out)!r} is a file")
    out.mkdir(parents=True, exist_ok=True)
    u, s, y = (np.asarray(ds[v], dtype=np.float64) for v in ("u", "u_std", "u_true"))
    samples = np.asarray(ds["u_samples"], dtype=np.float64) if "u_samples" in ds else None
    bands = {lv: np.asarray(ds[f"u_band_{round(lv * 100)}"], np.float64) for lv in (0.9, 0.95)
             if f"u_band_{round(lv * 100)}" in ds} if operator else {}
    m = all_metrics(u, s, y, samples=samples, functions=operator, bands=bands)
    expected, observed = calibration_curve(u, s, y)
    cov = interval_coverage(u, s, y, COVERAGE_LEVELS)
    calibrated = int(ds.attrs.get("calibrated", 0)) == 1 and "u_std_raw" in ds
    s_raw = np.asarray(ds["u_std_raw"], dtype=np.float64) if calibrated else s
    extra: dict[str, Any] = {}
    if calibrated:
        from uncertainty.calibration import calibrated_curve, calibrated_metrics, map_of

        m_raw = all_metrics(u, s_raw, y, samples=samples, functions=operator)
        exp_r, obs_r = calibration_curve(u, s_raw, y)
        cmap = map_of(ds)
        extra = {"raw": m_raw, "verdict_raw": verdict(exp_r, obs_r, m_raw["mace"]),
                 "calibration_curve_raw": {"expected": exp_r.tolist(), "observed": obs_r.tolist()}}
        if cmap is not None:
            # the calibrated predictive distribution is the map's (u + u_std Z); u_std read as a
            # Gaussian is kept beside it
            extra["gaussian_reading"] = m
            m = calibrated_metrics(u, s, y, cmap, functions=operator, bands=bands)
            if samples is not None:
                m["crps_samples"] = extra["gaussian_reading"]["crps_samples"]
            expected, observed = calibrated_curve(u, s, y, cmap)
            lo, hi = cmap.bounds(np.asarray(COVERAGE_LEVELS))
            cov = {lv: (m[f"coverage_{round(lv * 100)}"], float((b - a) * np.mean(s)))
                   for lv, a, b in zip(COVERAGE_LEVELS, lo, hi, strict=True)}
            extra["calibration"] = {"method": cmap.method, "level": cmap.level, "n_spread": cmap.n_spread,
                                    "n_conformal": cmap.n_conformal, "spread": list(cmap.spread),
                                    "factor": cmap.factor, "band_quantiles": {str(k): v for k, v in
                                                                             cmap.band_quantiles.items()},
                                    "guarantee": guarantee_text(cmap)}
        else:  # a PINN calibrated on observations: its attrs say what was fitted and what it guarantees
            try:
                info = json.loads(str(ds.attrs.get("calibration", "{}")))
            except json.JSONDecodeError:
                info = {}
            extra["calibration"] = {"method": str(ds.attrs.get("calibration_method", "unknown")),
                                    "level": float(info.get("level", math.nan)), "n_spread": 0,
                                    "n_conformal": int(info.get("n_observations", 0)),
                                    "guarantee": str(info.get("guarantee", "not stated"))}
    else:
        extra["calibration_note"] = str(ds.attrs.get("calibration", "")) or "the file has no calibration map"
    word = verdict(expected, observed, m["mace"])
    mask = split_calibration(u.shape, seed=seed, functions=operator)
    table = recalibration_table((u[mask], s_raw[mask], y[mask]), (u[~mask], s_raw[~mask], y[~mask]))
    rho = spearman(np.abs(u - y), s)
    summary: dict[str, Any] = {
        **m,
        "verdict": word,
        "verdict_rule": VERDICT_RULE,
        "mean_gap": float(np.mean(observed - expected)),
        "spearman_abs_error_sigma": rho,
        "source": source,
        "equation": ds.attrs.get("equation", ""),
        "method": ds.attrs.get("method", ""),
        "n_points": int(u.size),
        "operator": bool(operator),
        "metrics": m,
        "coverage": {str(round(lv * 100)): {"observed": c, "mean_width": w} for lv, (c, w) in cov.items()},
        "calibration_curve": {"expected": expected.tolist(), "observed": observed.tolist()},
        **extra,
        "recalibration": {
            "from": "the raw std u_std_raw" if calibrated else "u_std",
            "split": "by function (sample), seeded" if operator else "by point, seeded",
            "seed": seed,
            "calibration_points": int(mask.sum()),
            "test_points": int((~mask).sum()),
            "table": table,
        },
    }
    captions = (
        _figures(ds, out, operator=operator, m=m, expected=expected, observed=observed, cov=cov,
                 raw_observed=np.asarray(extra["calibration_curve_raw"]["observed"]) if calibrated else None)
        if figures
        else {}
    )
    summary["pngs"] = list(captions)
    _atomic_write(out / "metrics.json", json.dumps(_jsonable(summary), indent=2))
    _atomic_write(out / "report.html", _html(summary, captions, out))
    return summary


def guarantee_text(cmap: Any) -> str:
    """The finite-sample statement of a calibration map, in words (``uncertainty.calibration``)."""
    n = cmap.n_conformal
    bands = ", ".join(f"{lv:.0%} band: q = {q:.3g}" for lv, q in cmap.band_quantiles.items())
    text = (f"for a new function drawn like the {n} calibration functions the whole-function band u +- q u_std "
            f"contains the entire function with probability >= L ({bands}; at most L + 1/{n + 1} when scores do "
            f"not tie)")
    if cmap.method == "conformal":
        text += (f"; a random point of it lies in the calibrated central p-interval with probability >= p at "
                 f"every level p = 0.001 k (split conformal over functions), in particular in u +- "
                 f"{_z(cmap.level):.3f} u_std with probability >= {cmap.level:g}")
    return text + ". Exchangeability of calibration and test functions is the only assumption."


def _z(level: float) -> float:
    from scipy import special

    return float(special.ndtri(0.5 + level / 2))


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    return obj
