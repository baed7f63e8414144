"""Spectral solvers: convergence orders, the Burgers preset against Cole–Hopf, batching."""

import math

import jax
import numpy as np
import pytest

from pdes.exact import burgers_cole_hopf, exact_solution
from pdes.problems import BURGERS, HEAT, HEAT2D, WAVE, Heat, Wave
from pdes.solution import rel_l2
from pdes.spectral import (
    dealias_mask,
    etdrk4_coeffs,
    fourier_interpolate,
    odd_extension,
    solve_burgers_dirichlet,
    solve_periodic_burgers,
    solve_spectral,
)


def smooth_odd(x):
    """Odd about 0 and 1, analytic 2-periodic extension, infinitely many sine modes."""
    return np.sin(np.pi * x) * np.exp(np.cos(np.pi * x))


def periodic_data(n, batch=3, seed=0):
    x = np.arange(n) / n
    a = np.random.default_rng(seed).normal(size=(batch, 1))
    return np.sin(2 * np.pi * x) + a * np.cos(4 * np.pi * x) + 0.3


def test_presets_match_their_exact_solutions_to_rounding():
    for problem in (HEAT, WAVE):
        s = solve_spectral(problem, nx=65, nt=21)
        assert rel_l2(s.u, exact_solution(problem, s.t, s.x)) < 1e-14  # finite sine series: exact
    s = solve_spectral(HEAT2D, nx=17, nt=5)
    assert s.u.shape == (5, 17, 17)
    assert rel_l2(s.u, exact_solution(HEAT2D, s.t, s.x, s.y)) < 1e-14


@pytest.mark.parametrize("problem", [Heat(initial=smooth_odd, alpha=0.01), Wave(initial=smooth_odd, initial_velocity=lambda x: np.sin(2 * np.pi * x) * np.exp(np.cos(2 * np.pi * x)))])
def test_error_falls_exponentially_in_the_number_of_modes(problem):
    ns = np.array([8, 12, 16, 20, 24])
    errs = np.array([rel_l2(s.u, exact_solution(problem, s.t, s.x)) for s in (solve_spectral(problem, nx=17, nt=5, n_points=int(n)) for n in ns)])
    # exponential: log10(err) falls linearly in n (measured 1.9-2.7 decades per 4 modes, not
    # slowing down); algebraic decay n^-p would drop by p log10((n + 4) / n), i.e. 2.2x less
    # between the first and the last pair
    drops = -np.diff(np.log10(errs))
    assert drops.min() > 1.5 and drops[-1] >= 0.9 * drops[0], errs
    assert errs[-1] < 1e-10


def test_etdrk4_error_falls_at_fourth_order_in_dt():
    u0 = periodic_data(128)
    t = np.array([0.5, 1.0])
    ref = solve_periodic_burgers(u0, nu=0.05, t_save=t, n_steps=3200)  # same grid: only dt differs
    errs = np.array([rel_l2(solve_periodic_burgers(u0, nu=0.05, t_save=t, n_steps=s), ref) for s in (50, 100, 200)])
    orders = np.log2(errs[:-1] / errs[1:])
    assert orders.min() > 3.5, orders  # order 4 (measured 3.7, 4.0); room for the coarsest pair


def test_etdrk4_coefficients_reduce_to_the_exact_exponential_without_nonlinearity():
    lin = -np.array([0.0, 1.0, 100.0, 1e6])
    c = etdrk4_coeffs(lin, 0.01)
    np.testing.assert_allclose(c.E, np.exp(0.01 * lin), rtol=1e-15)
    # a constant N enters as (f1 + 4 f2 + f3) N and must give h phi_1(hL) N = (e^{hL} - 1) / L N
    phi1 = np.where(lin != 0, np.expm1(0.01 * lin) / np.where(lin != 0, lin, 1), 0.01)
    np.testing.assert_allclose(c.f1 + 4 * c.f2 + c.f3, phi1, rtol=1e-12)


def test_batched_solve_equals_one_by_one():
    u0 = periodic_data(64, batch=4)
    t = np.linspace(0, 1, 5)
    batched = solve_periodic_burgers(u0, nu=0.05, t_save=t, n_steps=200)
    single = np.stack([solve_periodic_burgers(u, nu=0.05, t_save=t, n_steps=200) for u in u0])
    assert batched.shape == (4, 5, 64) and batched.dtype == np.float64
    np.testing.assert_allclose(batched, single, rtol=0, atol=1e-13)  # same arithmetic up to FFT batching


def test_periodic_burgers_keeps_the_mean_and_the_first_save_at_t0():
    u0 = periodic_data(64, batch=2)
    u = solve_periodic_burgers(u0, nu=0.1, t_save=[0.0, 0.3, 1.0])
    np.testing.assert_allclose(u[:, 0], u0, atol=1e-15)
    np.testing.assert_allclose(u.mean(axis=-1), u0.mean(axis=-1)[:, None] * np.ones(3), atol=1e-13)  # mode 0 is conserved


def test_results_are_float64_without_changing_global_jax_config():
    before = jax.config.jax_enable_x64
    u = solve_periodic_burgers(np.sin(2 * np.pi * np.arange(16) / 16), nu=0.1, t_save=[0.1])
    assert u.dtype == np.float64 and u.shape == (1, 16)
    assert jax.config.jax_enable_x64 == before


def test_dirichlet_burgers_matches_cole_hopf_on_a_viscous_case():
    """nu = 0.1: a smooth solution; 128 points (5e-11 spatial error, measured) and the default steps."""
    t, x = np.linspace(0, 1, 6), np.linspace(-1, 1, 65)
    from pdes.problems import Burgers

    u = solve_burgers_dirichlet(Burgers(nu=0.1), t, x, n_points=128)
    assert rel_l2(u, burgers_cole_hopf(t, x, nu=0.1)) < 1e-9  # default steps aim at ~1e-10 (measured 3.6e-10)


@pytest.mark.slow
def test_burgers_preset_at_t1_matches_cole_hopf_to_1e_8():
    """The default spectral settings (4096 points on the period 4, ~4000 ETDRK4 steps) at t = 1,
    on points that are not grid points (trigonometric interpolation). Issue 2 asks for <= 1e-8."""
    x = np.linspace(-1, 1, 256)
    u = solve_burgers_dirichlet(BURGERS, [1.0], x)
    err = rel_l2(u, exact_solution(BURGERS, [1.0], x))
    assert err <= 1e-8, err
    assert np.abs(u[:, [0, -1]]).max() < 1e-13  # odd extension keeps the ends at zero


def test_odd_extension_and_fourier_interpolation_are_exact_for_sine_modes():
    x = np.linspace(0, 1, 9)
    ext = odd_extension(np.sin(np.pi * x))
    assert ext.shape == (16,)
    xs = np.linspace(0, 2, 7)
    np.testing.assert_allclose(fourier_interpolate(ext, xs, x0=0.0, length=2.0), np.sin(np.pi * xs), atol=1e-15)


def test_dealias_mask_keeps_two_thirds_of_the_modes():
    m = dealias_mask(96)
    assert m.sum() == 32 and m[31] == 1 and m[32] == 0  # keep |m| < n/3


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"nu": 0.0}, "nu"),
        ({"nu": math.nan}, "nu"),
        ({"t_save": [1.0, 0.5]}, "increasing"),
        ({"t_save": [-1.0]}, ">= 0"),
        ({"u0": np.zeros((2, 4))}, "nx >= 8"),
        ({"u0": np.full((1, 16), np.inf)}, "non-finite"),
        ({"n_steps": 0}, "n_steps"),
    ],
)
def test_bad_inputs_raise_before_compiling(kwargs, word):
    args = {"u0": np.zeros((1, 16)), "nu": 0.1, "t_save": [1.0]} | kwargs
    with pytest.raises(ValueError, match=word):
        solve_periodic_burgers(**args)


def test_solve_spectral_checks_its_grid():
    with pytest.raises(ValueError, match="nx"):
        solve_spectral(HEAT, nx=4)
    with pytest.raises(ValueError, match="nt"):
        solve_spectral(HEAT, nt=1)
    with pytest.raises(ValueError, match="t_end"):
        solve_spectral(HEAT, t_end=math.inf)
