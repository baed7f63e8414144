"""Calibration reports: verdicts on predictions of known calibration, files written, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pdes.solution import operator_dataset, solution_dataset, write_dataset
from uncertainty.__main__ import main
from uncertainty.report import make_report

T = np.linspace(0.0, 1.0, 40)
X = np.linspace(0.0, 1.0, 100)


def known_calibration(scale: float, seed: int = 0):
    """Truth on a (t, x) grid; the mean has Gaussian errors of std sigma(t, x); the file
    states u_std = scale * sigma (scale 1: calibrated, 0.5: over-, 2: under-confident)."""
    rng = np.random.default_rng(seed)
    u_true = np.sin(np.pi * X)[None, :] * np.exp(-T)[:, None]
    sigma = 0.01 + 0.05 * X[None, :] * (1 + T[:, None])
    u = u_true + sigma * rng.normal(size=u_true.shape)
    samples = u[None] + sigma[None] * rng.normal(size=(4, *u.shape))
    return solution_dataset(
        u,
        t=T,
        x=X,
        equation="heat",
        method="synthetic",
        u_true=u_true,
        u_std=scale * sigma,
        u_samples=samples,
    )


def test_report_on_calibrated_gaussian_errors_says_calibrated_with_rmsce_near_zero(tmp_path):
    summary = make_report(known_calibration(1.0), tmp_path, figures=False)
    # 4000 points: the observed share at each level has binomial sd <= 0.5/sqrt(4000) = 0.008,
    # so rmsce (an RMS of such deviations) stays well below 0.02.
    assert summary["rmsce"] < 0.02
    assert summary["verdict"] == "calibrated"
    assert summary["coverage_95"] == pytest.approx(0.95, abs=0.015)  # 3 binomial sd (0.0034) + slack


@pytest.mark.parametrize("scale, word", [(0.5, "over-confident"), (2.0, "under-confident")])
def test_report_on_mis_scaled_sigma_gives_the_right_verdict(tmp_path, scale, word):
    summary = make_report(known_calibration(scale), tmp_path, figures=False)
    assert summary["verdict"] == word
    # recalibration fitted on a disjoint half repairs it: sigma scaling finds 1/scale
    table = summary["recalibration"]["table"]
    assert table["sigma_scaling"]["fit"] == pytest.approx(1 / scale, rel=0.05)  # 2000 points: sd ~1.6%
    assert table["sigma_scaling"]["rmsce"] < 0.03 < table["none"]["rmsce"]


def test_report_writes_html_json_and_pngs_with_metric_names_at_top_level(tmp_path):
    ds = known_calibration(1.0)
    path = write_dataset(ds, tmp_path / "pred.nc")
    out = tmp_path / "rep"
    assert main(["report", str(path), "--out", str(out)]) == 0
    for name in (
        "report.html",
        "metrics.json",
        "reliability.png",
        "coverage.png",
        "pit.png",
        "sharpness.png",
        "error_vs_sigma.png",
        "heatmaps.png",
    ):
        assert (out / name).is_file(), name
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and '<img src="report' not in html  # self-contained
    assert "calibrated" in html and "mace &lt;= 0.05" in html or "mace <= 0.05" in html
    data = json.loads((out / "metrics.json").read_text())
    from uncertainty.metrics import METRICS, all_metrics

    for name in METRICS:
        if not name.startswith("function_coverage"):
            assert name in data, name
    # the numbers are computed against u_true in the file
    want = all_metrics(ds.u.values, ds.u_std.values, ds.u_true.values)
    assert data["rel_l2"] == pytest.approx(want["rel_l2"], rel=1e-12)
    assert data["crps_samples"] > 0


def test_report_json_flag_prints_the_metrics(tmp_path, capsys):
    path = write_dataset(known_calibration(2.0), tmp_path / "pred.nc")
    assert main(["report", str(path), "--out", str(tmp_path / "r"), "--json", "--no-figures"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "under-confident"


def test_operator_report_has_function_coverage_and_splits_by_function(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 32))
    u_true = rng.normal(size=(40, 32))
    ds = operator_dataset(a, u_true, x=np.arange(32) / 32, equation="operator_burgers", method="synthetic")
    ds = ds.assign(u_true=ds.u.copy(), u_std=(("sample", "x"), np.full((40, 32), 0.1)))
    ds["u"] = ds.u_true + 0.1 * rng.normal(size=(40, 32))
    summary = make_report(ds, tmp_path)
    # each function has 32 points; a calibrated band covers >= 95% (>= 31 of 32) of them with
    # probability ~0.52 (binomial), so the share of covered functions is near 0.5, not 0 or 1
    assert 0.2 < summary["function_coverage_95"] < 0.85
    assert (tmp_path / "function_coverage.png").is_file()
    assert summary["recalibration"]["calibration_points"] % 32 == 0  # whole functions


def _write(tmp_path, ds, name="bad.nc"):
    return str(write_dataset(ds, tmp_path / name))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda ds: ds.assign(u_std=ds.u_std * 0), "u_std must be positive"),
        (lambda ds: ds.assign(u_std=-ds.u_std), "u_std must be positive"),
        (lambda ds: ds.assign(u_std=ds.u_std.where(ds.x < 0.5)), "u_std has"),  # NaN
        (lambda ds: ds.drop_vars("u_std"), "no variable 'u_std'"),
        (lambda ds: ds.drop_vars("u_true"), "no variable 'u_true'"),
        (lambda ds: ds.assign(u_std=ds.u_std.isel(t=0)), "dims"),  # shape mismatch
        (lambda ds: ds.isel(member=slice(0, 1)), "at least 2 members"),
    ],
)
def test_bad_prediction_files_exit_2_with_one_line(tmp_path, capsys, edit, message):
    path = _write(tmp_path, edit(known_calibration(1.0)))
    assert main(["report", path, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("uncertainty: error: ") and err.count("\n") == 1
    assert message in err


def test_missing_file_exits_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope.nc"), "--out", str(tmp_path / "r")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_report_figures_keep_the_callers_backend_and_pyplot_state(tmp_path):
    """make_report draws on Figure objects: a notebook's backend is never switched and pyplot
    gains no open figures (issue 17, deliverable 8)."""
    import matplotlib
    import matplotlib.pyplot as plt

    backend, open_before = matplotlib.get_backend(), plt.get_fignums()
    make_report(known_calibration(1.0), tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.png"))  # the figures were drawn
    assert matplotlib.get_backend() == backend
    assert plt.get_fignums() == open_before
