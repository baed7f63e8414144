"""Shift tests: the shifted references against Cole-Hopf, how the cases are built, the report."""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np
import pytest

from operators.grf import sample_grf
from pdes.problems import OPERATOR_BURGERS
from uncertainty.run import burgers_functions
from uncertainty.shift import shift_cases, shift_functions


def cole_hopf_periodic(u0: np.ndarray, nu: float, t: float) -> np.ndarray:
    """Exact u(., t) of u_t + u u_x = nu u_xx on [0, 1) for zero-mean u0 (B, n): u = -2 nu
    (log phi)_x, phi_t = nu phi_xx, phi(0) = exp(-U0 / (2 nu)) with U0' = u0 (Cole 1951, Hopf
    1950); the heat equation and the derivatives by FFT (phi is analytic: spectral accuracy)."""
    n = u0.shape[-1]
    k = np.fft.fftfreq(n, 1.0 / n)
    ik = 2j * np.pi * k
    u0_hat = np.fft.fft(u0, axis=-1)
    big_u_hat = np.where(k == 0, 0.0, u0_hat / np.where(k == 0, 1.0, ik))
    big_u = np.fft.ifft(big_u_hat, axis=-1).real
    phi_hat = np.fft.fft(np.exp(-(big_u - big_u.mean(axis=-1, keepdims=True)) / (2 * nu)), axis=-1)
    phi_hat *= np.exp(-nu * (2 * np.pi * k) ** 2 * t)
    phi = np.fft.ifft(phi_hat, axis=-1).real
    phi_x = np.fft.ifft(ik * phi_hat, axis=-1).real
    return -2 * nu * phi_x / phi


@pytest.mark.parametrize("nu", [0.1, 0.05])
def test_shifted_references_match_cole_hopf(nu):
    # the references of a parameter shift (nu 0.1 -> 0.05) are the spectral solver at that nu;
    # against Cole-Hopf from the same 1024-point initial data they agree to 0.4-1.7e-7 at
    # nu = 0.1 (measured): the solver's default step count for these 4 draws (207 steps; with
    # 8000 steps the same draws agree to ~1e-11: the grid is not the limit). 1e-6 bounds that;
    # the FNO errors it judges are ~1e-2.
    problem = dataclasses.replace(OPERATOR_BURGERS, nu=nu)
    a, u = burgers_functions(problem, np.random.default_rng(3), 4, 256)
    p = problem
    a_fine = sample_grf(np.random.default_rng(3), 4, 1024, alpha=p.grf_alpha, tau=p.grf_tau, sigma=p.grf_sigma)
    np.testing.assert_array_equal(a, a_fine[:, ::4])  # the same draws, strided
    exact = cole_hopf_periodic(a_fine, nu, p.t_end)[:, ::4]
    rel = np.linalg.norm(u - exact, axis=1) / np.linalg.norm(exact, axis=1)
    assert rel.max() < 1e-6, rel


def test_resolution_cases_hold_the_same_functions_at_every_grid():
    cases = shift_cases(OPERATOR_BURGERS, 16, "resolution")
    assert [c.nx for c in cases] == [16, 32, 64]
    sets = shift_functions(cases, 3, seed=0)
    for (a, u), c in zip(sets, cases, strict=True):
        assert a.shape == (3, c.nx)
        np.testing.assert_array_equal(a[:, :: c.nx // 16], sets[0][0])  # strided: the same functions
        np.testing.assert_array_equal(u[:, :: c.nx // 16], sets[0][1])


def test_parameter_cases_change_nu_and_nothing_else():
    cases = shift_cases(OPERATOR_BURGERS, 16, "parameter")
    assert [c.problem.nu for c in cases] == pytest.approx([0.1, 0.075, 0.05])
    sets = shift_functions(cases, 3, seed=0)
    for a, _ in sets[1:]:
        np.testing.assert_array_equal(a, sets[0][0])
    assert not np.allclose(sets[0][1], sets[2][1])  # lower viscosity: another solution


def test_input_cases_are_rougher_and_larger_as_stated():
    from operators.grf import grf_eigenvalues

    cases = shift_cases(OPERATOR_BURGERS, 64, "input")
    assert [c.problem.grf_tau for c in cases] == pytest.approx([5.0, 7.5, 10.0])  # length scale ~ 1 / tau

    def std(p):  # pointwise std of the GRF: sqrt(sum of its eigenvalues) on the unit period
        return math.sqrt(grf_eigenvalues(4096, alpha=p.grf_alpha, tau=p.grf_tau, sigma=p.grf_sigma).sum())

    ratios = [std(c.problem) / std(cases[0].problem) for c in cases]
    assert ratios == pytest.approx([1.0, 1.25, 1.5], rel=1e-9)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """An untrained 2-member FNO ensemble on operator Burgers with a calibration map, saved
    (the report's plumbing, not accuracy)."""
    from flax import nnx

    from operators.models import FNO, FNOConfig
    from uncertainty.calibration import fit_calibration_map
    from uncertainty.predictor import FNOPredictor
    from uncertainty.run import burgers_info

    cfg = FNOConfig(modes=4, width=8, depth=1, proj_hidden=8, padding=0.0)
    params = jax.jit(jax.vmap(lambda k: nnx.split(FNO(cfg, rngs=nnx.Rngs(k)), nnx.Param, ...)[1]))(
        jax.random.split(jax.random.key(0), 2))
    pred = FNOPredictor("ensemble", cfg, (0.0, 1.0, 0.0, 1.0), params, 2, info=burgers_info(OPERATOR_BURGERS, 16))
    a, u = burgers_functions(OPERATOR_BURGERS, np.random.default_rng(9), 30, 16)
    mean, std, _ = pred.predict(a)
    pred.calibration = fit_calibration_map(mean, std + 1e-6, u, model=pred.fingerprint())
    path = tmp_path_factory.mktemp("shift") / "model"
    pred.save(path)
    return path


def test_shift_report_has_every_case_and_its_verdicts(model_dir, tmp_path, capsys):
    import json

    from uncertainty.__main__ import main

    assert main(["shift", str(model_dir), "--n-test", "6", "--kinds", "parameter", "--out",
                 str(tmp_path / "shift.json"), "--no-progress", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert json.loads((tmp_path / "shift.json").read_text()) == res
    assert list(res["shifts"]) == ["parameter"] and res["model"]["calibrated"] is True
    par = res["shifts"]["parameter"]
    assert [r["severity"] for r in par["rows"]] == [0, 1, 2]
    # the inputs are the same at every nu, so the model's std cannot change: the shift is invisible
    assert par["rows"][2]["mean_std"] == pytest.approx(par["rows"][0]["mean_std"], rel=1e-6)
    assert par["std_grows"] is False
    for r in par["rows"]:
        assert {"coverage_95", "rmsce", "spearman", "whole_function_coverage_90", "std_ratio"} <= set(r)


def test_shift_refuses_models_not_trained_on_operator_burgers(model_dir, tmp_path, capsys):
    from uncertainty.__main__ import main
    from uncertainty.predictor import load_predictor

    pred = load_predictor(model_dir)
    pred.info = {"equation": "darcy"}
    pred.save(tmp_path / "m")
    assert main(["shift", str(tmp_path / "m"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "operator Burgers" in err and "darcy" in err
