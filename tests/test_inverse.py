"""Tests of pdes.inverse: coefficient identification with PINNs, its checks and the CLI."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import xarray as xr

from pdes.__main__ import main
from pdes.exact import exact_solution
from pdes.inverse import (
    exact_at_points,
    get_inverse_config,
    identify,
    observations_from_dataset,
    synthetic_observations,
)
from pdes.problems import BURGERS, HEAT, Heat
from pdes.solution import write_dataset


def test_exact_at_points_matches_the_grid_solution():
    t = np.linspace(0.0, 1.0, 7)
    x = np.linspace(-1.0, 1.0, 9)
    grid = exact_solution(BURGERS, t, x)
    tt, xx = np.meshgrid(t, x, indexing="ij")
    got = exact_at_points(BURGERS, tt.ravel(), xx.ravel(), block=5)
    np.testing.assert_allclose(got, grid.ravel(), rtol=0, atol=1e-12)  # same formula, same points


def test_synthetic_noise_follows_the_relative_std_convention():
    ds = synthetic_observations("heat", n_obs=4000, noise=0.05, seed=3)
    resid = ds.u.values - ds.u_exact.values
    expected = 0.05 * np.std(ds.u_exact.values)
    assert ds.attrs["noise_std"] == pytest.approx(expected, rel=1e-12)
    # sample std of 4000 normal draws: relative standard error 1/sqrt(2 * 4000) = 1.1%; 5 of them
    assert np.std(resid) == pytest.approx(expected, rel=0.06)
    assert ds.attrs["true_alpha"] == HEAT.alpha


SMALL = {"network.width": "12", "network.depth": "2", "sampling.n_res": "256", "run.log_every": "100",
         "qn.n_res": "256"}


def test_identify_recovers_heat_alpha_from_clean_observations():
    # One sine mode, u = exp(-alpha pi^2 t) sin(pi x), 300 noise-free points, initial guess
    # alpha0 = 1 (10x too large), a 2 x 12 float64 MLP with hard initial/boundary data, 300 Adam
    # then 200 self-scaled Broyden steps on network and alpha together. Clean data leave only
    # the network's error: a broken coefficient path (alpha not trained, or the data term lost)
    # stays near the 10x guess; allowed 1 %.
    problem = Heat(sine_coeffs=(1.0,))
    res = identify(problem, n_obs=300, noise=0.0, seed=0, steps=300, nx=32, nt=20, progress=False,
                   overrides={**SMALL, "qn.steps": "200"})
    assert res.truth == {"alpha": 0.1}
    assert res.rel_error["alpha"] < 0.01
    ds = res.dataset
    assert ds.u.shape == (20, 32) and "u_true" in ds
    assert float(ds.history_alpha[0]) > 0.2  # it started far away (alpha0 = 1) and moved
    assert ds.attrs["estimate_alpha"] == res.estimates["alpha"]
    assert ds.attrs["rel_l2"] < 0.05  # the reconstructed field follows the exact one


def test_ensemble_gives_member_mean_and_std_from_one_program(tmp_path, capsys):
    obs = synthetic_observations("heat", n_obs=50, noise=0.01, seed=1)
    path = write_dataset(obs, tmp_path / "obs.nc")
    out = tmp_path / "ens.nc"
    code = main(["identify", "heat", "--obs", str(path), "--ensemble", "3", "--steps", "40", "--nx", "16",
                 "--nt", "8", "--set", "qn.steps=0", "--set", "run.log_every=20", "--set", "network.width=8",
                 "--set", "network.depth=1", "--set", "sampling.n_res=64", "--no-progress", "--out", str(out),
                 "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    m = np.array(summary["members"]["alpha"])
    assert m.shape == (3,)
    assert summary["estimates"]["alpha"] == pytest.approx(float(np.mean(m)), rel=1e-12)
    assert summary["std"]["alpha"] == pytest.approx(float(np.std(m, ddof=1)), rel=1e-12)
    assert set(summary["within_2std"]) == {"alpha"}
    ds = xr.open_dataset(out, engine="h5netcdf").load()
    members = ds.history_alpha_members.values  # (steps, member)
    assert members.shape == (2, 3)
    assert ds.u_samples.shape == (3, 8, 16)
    np.testing.assert_allclose(ds.u.values, ds.u_samples.values.mean(axis=0), rtol=1e-12, atol=1e-12)
    assert len(set(np.round(members[-1], 8))) == 3  # jittered guesses and bootstrap: members differ
    est, std = ds.attrs["estimate_alpha"], ds.attrs["estimate_alpha_std"]
    assert ds.history_alpha_std.values[-1] == pytest.approx(np.std(members[-1], ddof=1), rel=1e-6)
    assert std > 0 and math.isfinite(est)
    assert ds.obs_u.shape == (50,)


# ----------------------------------------------------------------------------- bad input


def _obs_file(tmp_path, ds: xr.Dataset, name: str = "obs.nc"):
    return str(write_dataset(ds, tmp_path / name))


def _run_bad(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pdes: error:") and "\n" not in err  # one line, no traceback
    return err


def test_observation_file_without_u_is_rejected(tmp_path, capsys):
    ds = synthetic_observations("heat", n_obs=20, seed=0).drop_vars("u")
    err = _run_bad(capsys, ["identify", "heat", "--obs", _obs_file(tmp_path, ds)])
    assert "missing u" in err


def test_observation_file_without_coordinates_is_rejected(tmp_path, capsys):
    ds = synthetic_observations("heat", n_obs=20, seed=0).drop_vars("x")
    err = _run_bad(capsys, ["identify", "heat", "--obs", _obs_file(tmp_path, ds)])
    assert "missing x" in err


def test_points_outside_the_domain_are_rejected(tmp_path, capsys):
    ds = synthetic_observations("heat", n_obs=20, seed=0)
    x = ds.x.values.copy()
    x[3] = 1.5  # heat lives on [0, 1]
    ds = ds.assign_coords(x=("obs", x))
    err = _run_bad(capsys, ["identify", "heat", "--obs", _obs_file(tmp_path, ds)])
    assert "outside" in err and "x = 1.5" in err


def test_fewer_observations_than_unknowns_are_rejected(tmp_path, capsys):
    ds = synthetic_observations("burgers", n_obs=2, seed=0).isel(obs=[0])
    err = _run_bad(capsys, ["identify", "burgers", "--obs", _obs_file(tmp_path, ds)])
    assert "1 observation(s) cannot identify 2 unknown(s)" in err
    err = _run_bad(capsys, ["identify", "burgers", "--n-obs", "1"])
    assert "n_obs" in err


def test_non_finite_observations_are_rejected(tmp_path, capsys):
    ds = synthetic_observations("wave", n_obs=20, seed=0)
    u = ds.u.values.copy()
    u[5] = np.nan
    ds = ds.assign(u=("obs", u))
    err = _run_bad(capsys, ["identify", "wave", "--obs", _obs_file(tmp_path, ds)])
    assert "non-finite" in err


def test_gridded_observations_are_read_as_points():
    t = np.linspace(0.0, 1.0, 4)
    x = np.linspace(0.0, 1.0, 5)
    ds = xr.Dataset({"u": (("t", "x"), exact_solution(HEAT, t, x))}, coords={"t": t, "x": x})
    tt, xx, uu = observations_from_dataset(ds, "heat")
    assert tt.shape == xx.shape == uu.shape == (20,)
    np.testing.assert_allclose(uu, exact_at_points(HEAT, tt, xx), atol=1e-12)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["identify", "heat", "--nu", "0.1"], "--nu does not apply to heat"),
        (["identify", "heat", "--noise", "-0.1"], "noise"),
        (["identify", "heat", "--ensemble", "0"], "ensemble"),
        (["identify", "heat", "--init", "c=2"], "unknown coefficient"),
        (["identify", "heat", "--init", "alpha=-1"], "initial guess"),
        (["identify", "heat", "--set", "nonsense=1"], "nonsense"),
        (["identify", "heat", "--set", "inverse.coeff_lr=-1"], "inverse.coeff_lr"),
        (["identify", "heat", "--obs", "missing.nc"], "no such file"),
        (["identify", "heat", "--out", "result.txt"], "--out"),
    ],
)
def test_bad_flags_exit_2_with_one_line(capsys, argv, needle):
    assert needle in _run_bad(capsys, argv)


def test_obs_and_synthetic_flags_are_exclusive(tmp_path, capsys):
    path = _obs_file(tmp_path, synthetic_observations("heat", n_obs=20, seed=0))
    assert "--n-obs" in _run_bad(capsys, ["identify", "heat", "--obs", path, "--n-obs", "10"])


def test_inverse_config_needs_a_guess_for_every_unknown_and_names_bad_keys():
    with pytest.raises(ValueError, match=r"no initial guess for \['alpha'\]"):
        get_inverse_config("heat", overrides={"inverse.init": ""})
    with pytest.raises(ValueError, match="inverse.coef_lr"):
        get_inverse_config("heat", overrides={"inverse.coef_lr": "0.1"})
    cfg = get_inverse_config("burgers", constraints="none", init={"l2": 0.01})
    assert not (cfg.network.hard_ic or cfg.network.hard_bc or cfg.network.odd_symmetric)
    assert dict(cfg.inverse.init) == {"l1": 0.5, "l2": 0.01}
    from pdes.pinn.configs import LEVELS
    from pdes.problems import ALLEN_CAHN

    # without constraints nothing of the initial data is built in: not its symmetry, not u0 as an input
    problem = dataclasses.replace(ALLEN_CAHN, unknowns=("eps",))
    net = get_inverse_config(problem, base=LEVELS["allen_cahn"]["fast"], constraints="none",
                             init={"eps": 1e-3}).network
    assert not (net.even_symmetric or net.u0_feature or net.kink_diffusivity)


def test_identify_checkpoints_resume_and_refuse_other_observations(tmp_path):
    obs = synthetic_observations("heat", n_obs=40, noise=0.01, seed=2)
    kw = {"nx": 8, "nt": 4, "progress": False, "overrides": {**SMALL, "qn.steps": "20", "run.log_every": "20",
                                                               "qn.resample_every": "20"}}
    first = identify("heat", obs, steps=40, checkpoint_dir=tmp_path, **kw)
    assert first.dataset.attrs["steps_done"] == 60
    more = identify("heat", obs, steps=40, resume=tmp_path, **{**kw, "overrides": {**kw["overrides"],
                                                                                      "qn.steps": "40"}})
    assert more.dataset.attrs["steps_done"] == 80
    assert list(more.dataset.step.values) == [20, 40, 60, 80]  # the first run's history carried over
    other = synthetic_observations("heat", n_obs=40, noise=0.01, seed=3)
    with pytest.raises(ValueError, match="its observations is"):
        identify("heat", other, steps=40, resume=tmp_path, **kw)
