"""Operator Burgers over a range of viscosities: nu as a second input channel of the FNO, so
an uncertain FNO sees the parameter shift (issue 20). The data against Cole-Hopf at each
function's own nu, the per-channel normalisation, the predictor's input checks, the CLI end to
end and the shift cases that feed the channel."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from pdes.problems import OPERATOR_BURGERS, PeriodicBurgers, problem_params
from pdes.solution import read_dataset
from uncertainty.__main__ import main
from uncertainty.run import burgers_functions

RANGE = (0.08, 0.125)
TINY = ["--modes", "4", "--width", "8", "--depth", "1", "--epochs", "2", "--batch-size", "8", "--no-progress"]


def test_each_function_carries_and_is_solved_at_its_own_viscosity():
    from test_uncertainty_shift import cole_hopf_periodic

    from operators.grf import sample_grf

    problem = dataclasses.replace(OPERATOR_BURGERS, nu_range=RANGE)
    a, u = burgers_functions(problem, np.random.default_rng(5), 4, 256)
    assert a.shape == (4, 256, 2) and u.shape == (4, 256)
    nus = a[:, 0, 1]
    np.testing.assert_array_equal(a[..., 1], np.broadcast_to(nus[:, None], (4, 256)))  # constant in x
    assert np.all((nus >= RANGE[0]) & (nus <= RANGE[1])) and np.ptp(nus) > 0
    p = problem
    a_fine = sample_grf(np.random.default_rng(5), 4, 1024, alpha=p.grf_alpha, tau=p.grf_tau, sigma=p.grf_sigma)
    np.testing.assert_array_equal(a[..., 0], a_fine[:, ::4])  # the u0 draws of the fixed-nu data
    for i in range(4):  # each solution is the one at its own nu, not at the problem's 0.1 (the
        # bound: the solver's default step count for these draws, see test_shifted_references_match_cole_hopf)
        exact = cole_hopf_periodic(a_fine[i:i + 1], float(nus[i]), p.t_end)[0, ::4]
        assert np.linalg.norm(u[i] - exact) / np.linalg.norm(exact) < 5e-6
        other = cole_hopf_periodic(a_fine[i:i + 1], 0.1, p.t_end)[0, ::4]
        assert np.linalg.norm(u[i] - other) / np.linalg.norm(other) > 1e-3
    a1, _ = burgers_functions(problem, np.random.default_rng(5), 2, 16, nu_channel=False)
    assert a1.shape == (2, 16)


@pytest.mark.parametrize("bad", [(0.2, 0.1), (-0.1, 0.1), (0.1,), (0.1, float("nan"))])
def test_nu_range_is_checked(bad):
    with pytest.raises(ValueError, match="nu_range"):
        PeriodicBurgers(nu_range=bad)


def test_nu_range_round_trips_through_the_problems_parameters():
    problem = PeriodicBurgers(nu_range=[0.08, 0.125])  # a list (as JSON gives it back) becomes a tuple
    assert problem.nu_range == RANGE
    params = json.loads(json.dumps(problem_params(problem)))
    assert PeriodicBurgers(**params) == problem


def test_fno_normalises_each_input_channel_and_checks_the_channels():
    from flax import nnx

    from operators.models import FNO, FNOConfig, input_statistics, normalization_values

    cfg = FNOConfig(modes=4, width=8, depth=1, proj_hidden=8, in_channels=2)
    model = FNO(cfg, rngs=nnx.Rngs(0))
    a = np.stack([np.random.default_rng(0).normal(3.0, 2.0, (8, 16)), np.full((8, 16), 0.1)], axis=-1)
    mean, std = input_statistics(a, 2)
    assert mean == pytest.approx([a[..., 0].mean(), 0.1]) and std == pytest.approx([a[..., 0].std(), 1.0])
    model.set_normalization(mean, std, 0.0, 1.0)
    assert normalization_values(model)[:2] == (pytest.approx(mean), pytest.approx(std))
    assert model(a).shape == (8, 16)
    with pytest.raises(ValueError, match="takes 2 input channel"):
        model(a[..., 0])
    with pytest.raises(ValueError, match="a_mean has shape"):
        model.set_normalization([0.0, 0.0, 0.0], 1.0, 0.0, 1.0)


def test_train_fno_refuses_inputs_with_channels():
    from operators.train import OperatorData, load_operator_data

    a = np.zeros((4, 16, 2), np.float32)
    u = np.zeros((4, 16), np.float32)
    with pytest.raises(ValueError, match="channel axis"):
        load_operator_data(OperatorData(a, u, a, u))


@pytest.fixture(scope="module")
def nu_run(tmp_path_factory):
    """A tiny FNO ensemble on Burgers with nu log-uniform on RANGE (16 train, 25 calibration, 8 test)."""
    d = tmp_path_factory.mktemp("nu")
    args = ["run", "fno", "--nu-range", *map(str, RANGE), "--members", "3", "--n-train", "16", "--n-calibration",
            "25", "--n-test", "8", "--nx", "16", *TINY, "--out", str(d / "p.nc"), "--model-out", str(d / "model"),
            "--json"]
    return d, main(args)


def test_run_fno_with_a_nu_range_trains_on_the_nu_channel_and_writes_nu(nu_run):
    from uncertainty.predictor import load_predictor

    d, code = nu_run
    assert code == 0
    ds = read_dataset(d / "p.nc")
    assert ds.a.dims == ("sample", "x") and ds.nu.dims == ("sample",)
    assert np.all((ds.nu.values >= RANGE[0]) & (ds.nu.values <= RANGE[1]))
    pred = load_predictor(d / "model")
    assert pred.config.in_channels == 2 and pred.info["input_channels"] == ["u0", "nu"]
    assert pred.info["problem"]["nu_range"] == list(RANGE)
    assert len(pred.normalization[0]) == 2  # one mean (and std) per input channel
    a = np.stack([ds.a.values, np.broadcast_to(ds.nu.values[:, None], ds.a.shape)], axis=-1)
    mean, _, _ = pred.predict(a)
    np.testing.assert_allclose(mean, ds.u.values, rtol=1e-5, atol=1e-6)
    a_low = a.copy()
    a_low[..., 1] = 0.05  # the model reads nu: another viscosity, another prediction
    assert not np.allclose(pred.predict(a_low)[0], mean, rtol=1e-3)
    with pytest.raises(ValueError, match=r"\(u0, nu\|u0, nu\)|u0, nu"):
        pred.predict(ds.a.values)


def test_shift_of_a_nu_channel_model_feeds_each_cases_viscosity(nu_run, capsys):
    from uncertainty.predictor import load_predictor
    from uncertainty.shift import shift_cases, shift_functions

    d, _ = nu_run
    problem = PeriodicBurgers(**load_predictor(d / "model").info["problem"])
    cases = shift_cases(problem, 16, "parameter")
    assert cases[0].problem.nu_range == RANGE and [c.problem.nu_range for c in cases[1:]] == [None, None]
    sets = shift_functions(cases, 4, seed=2, nu_channel=True)
    base_nu = sets[0][0][:, 0, 1]
    assert np.all((base_nu >= RANGE[0]) & (base_nu <= RANGE[1]))
    for (a, _), nu in zip(sets[1:], (0.075, 0.05), strict=True):
        np.testing.assert_allclose(a[..., 1], nu, rtol=1e-15)
        np.testing.assert_array_equal(a[..., 0], sets[0][0][..., 0])  # the same initial functions
    capsys.readouterr()
    assert main(["shift", str(d / "model"), "--n-test", "6", "--kinds", "parameter", "--no-progress", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    rows = res["shifts"]["parameter"]["rows"]
    assert res["model"]["nu_range"] == list(RANGE) and rows[0]["nu_range"] == list(RANGE)
    # the model is told nu: its std differs from the in-distribution one (a model without the
    # channel gives exactly the same std, tests/test_uncertainty_shift.py)
    assert rows[2]["mean_std"] != pytest.approx(rows[0]["mean_std"], rel=1e-3)


@pytest.mark.parametrize("extra, message", [(["--nu-range", "0.2", "0.1"], "lo < hi"),
                                            (["--nu-range", "0.1", "0.2", "--data", "x.nc"], "--nu-range")])
def test_bad_nu_range_is_one_line_exit_2(tmp_path, capsys, extra, message):
    args = ["run", "fno", "--n-train", "16", "--n-calibration", "25", "--n-test", "4", "--nx", "16", *TINY,
            "--out", str(tmp_path / "p.nc"), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "p.nc").exists()
