"""`uncertainty run fno` end to end: calibrated by default, map and model written, the map
applied again by `calibrate`, the report's raw and calibrated columns, 2-D (Darcy) data, and the
refusals that happen before any training."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pdes.solution import read_dataset
from uncertainty.__main__ import main

TINY = ["--modes", "4", "--width", "8", "--depth", "1", "--epochs", "2", "--batch-size", "8", "--no-progress"]


@pytest.fixture(scope="module")
def laplace_run(tmp_path_factory):
    """A tiny last-layer Laplace FNO on generated Burgers (16 train, 25 calibration, 8 test functions)."""
    d = tmp_path_factory.mktemp("run")
    args = ["run", "fno", "--method", "laplace", "--members", "3", "--n-train", "16", "--n-calibration", "25",
            "--n-test", "8", "--nx", "16", *TINY, "--out", str(d / "p.nc"), "--model-out", str(d / "model"), "--json",
            "--checkpoint-dir", str(d / "ck")]
    return d, main(args)


def test_run_fno_writes_raw_and_calibrated_std_map_and_model(laplace_run):
    from uncertainty.calibration import load_map
    from uncertainty.predictor import load_predictor

    d, code = laplace_run
    assert code == 0
    ds = read_dataset(d / "p.nc")
    assert {"u_std_raw", "u_std", "u_band_90", "u_band_95", "u_samples", "u_true"} <= set(ds.data_vars)
    cmap = load_map(d / "p.map.json")  # the default map path: OUT.map.json
    np.testing.assert_allclose(ds.u_std.values, cmap.std(ds.u_std_raw.values), rtol=1e-12)
    np.testing.assert_allclose(ds.u_band_90.values, cmap.band(ds.u_std_raw.values, 0.9), rtol=1e-12)
    assert ds.attrs["calibrated"] == 1 and cmap.n_spread + cmap.n_conformal == 25
    pred = load_predictor(d / "model")
    assert pred.fingerprint() == ds.attrs["model_fingerprint"] == cmap.model
    assert pred.calibration == cmap and pred.laplace.n_params == 128 + 1  # proj2 of proj_hidden 128
    mean, std, _ = pred.predict(ds.a.values)
    np.testing.assert_allclose(mean, ds.u.values, rtol=1e-5, atol=1e-6)


def test_run_checkpoints_and_refuses_to_resume_another_runs_checkpoint(laplace_run, capsys):
    from plumbing.checkpoint import read_meta

    d, _ = laplace_run
    assert read_meta(d / "ck")["epoch"] == 2  # saved at the last epoch
    capsys.readouterr()
    args = ["run", "fno", "--method", "laplace", "--members", "3", "--n-train", "16", "--n-calibration", "25",
            "--n-test", "8", "--nx", "16", *TINY, "--seed", "1", "--resume", str(d / "ck"), "--out", str(d / "q.nc")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("uncertainty: error: checkpoint") and "of another run" in err and err.count("\n") == 1
    assert not (d / "q.nc").exists()


def test_calibrate_reproduces_the_runs_calibration_and_report_shows_both(laplace_run, capsys):
    d, _ = laplace_run
    capsys.readouterr()
    raw = read_dataset(d / "p.nc").drop_vars(["u_std_raw", "u_band_90", "u_band_95"])
    raw["u_std"] = read_dataset(d / "p.nc")["u_std_raw"]
    from pdes.solution import write_dataset

    write_dataset(raw, d / "raw.nc")
    assert main(["calibrate", str(d / "raw.nc"), "--with", str(d / "p.map.json"), "--out", str(d / "c.nc")]) == 0
    a, b = read_dataset(d / "p.nc"), read_dataset(d / "c.nc")
    for v in ("u_std", "u_std_raw", "u_band_95"):
        np.testing.assert_allclose(b[v].values, a[v].values, rtol=1e-12)
    capsys.readouterr()
    assert main(["report", str(d / "p.nc"), "--out", str(d / "rep"), "--no-figures", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert {"raw", "gaussian_reading", "calibration", "verdict_raw", "whole_function_coverage_90"} <= set(rep)
    assert "probability >=" in rep["calibration"]["guarantee"]
    html = (d / "rep" / "report.html").read_text()
    assert "Raw and calibrated, side by side" in html and "calibrated distribution" in html


def test_too_small_calibration_split_is_refused_before_training(tmp_path, capsys):
    args = ["run", "fno", "--n-train", "16", "--n-calibration", "10", "--n-test", "4", "--nx", "16", *TINY,
            "--out", str(tmp_path / "p.nc")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has 10 functions" in err and "at least 25" in err
    assert not (tmp_path / "p.nc").exists()


def test_darcy_ensemble_runs_on_2d_non_periodic_data(tmp_path):
    from operators.data import GenerateConfig, generate

    data = generate(GenerateConfig(kind="darcy", n_train=40, n_test=4, nx=9, fine_nx=17, seed=0),
                    tmp_path / "darcy.nc", progress=False)
    out = tmp_path / "d.nc"
    assert main(["run", "fno", "--data", str(data), "--n-calibration", "25", "--members", "2", *TINY,
                 "--modes", "3", "--out", str(out)]) == 0
    ds = read_dataset(out)
    assert ds.u.dims == ("sample", "x", "y") and ds.sizes["sample"] == 4
    np.testing.assert_allclose(ds.x.values, np.linspace(0, 1, 9))  # node grid with both ends (non-periodic)
    assert ds.attrs["calibrated"] == 1 and ds.u_samples.shape == (2, 4, 9, 9)


def test_pinn_observations_from_a_file_and_the_noisy_setting_are_exclusive(tmp_path, capsys):
    from pdes.inverse import synthetic_observations
    from pdes.problems import HEAT
    from pdes.solution import write_dataset

    write_dataset(synthetic_observations(HEAT, 30, 0.01, seed=0), tmp_path / "obs.nc")
    args = ["run", "pinn", "heat", "--steps", "10", "--no-progress", "--out", str(tmp_path / "p.nc")]
    assert main([*args, "--obs", str(tmp_path / "obs.nc"), "--n-obs", "40"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "either --obs FILE" in err
