"""Exact solutions: they solve their PDEs, reproduce their initial data, and Cole–Hopf is converged."""

import dataclasses
import math

import numpy as np
import pytest

from pdes.exact import (
    burgers_cole_hopf,
    exact_solution,
    heat_series,
    sine_coefficients,
    wave_standing,
)
from pdes.problems import BURGERS, HEAT, HEAT2D, OPERATOR_BURGERS, WAVE, Burgers, Heat, Wave
from pdes.solution import rel_l2
from pdes.spectral import solve_burgers_dirichlet

H = 1e-3  # finite-difference step in x and t


def smooth_odd(x):
    """Odd about 0 and 1 with an analytic odd extension, not a finite sine series."""
    return np.sin(np.pi * x) * np.exp(np.cos(np.pi * x))


def d1(f, h):
    """Fourth-order central first derivative from values at -2h..2h (axis 0)."""
    return (f[0] - 8 * f[1] + 8 * f[3] - f[4]) / (12 * h)


def d2(f, h):
    """Fourth-order central second derivative from values at -2h..2h (axis 0)."""
    return (-f[0] + 16 * f[1] - 30 * f[2] + 16 * f[3] - f[4]) / (12 * h * h)


def stencil(solution, t0, x):
    """Values on the 5-point stencils in t (at x) and in x (at t0): (5, nx) each."""
    offs = np.arange(-2, 3) * H
    in_t = np.stack([solution(np.array([t0 + o]), x)[0] for o in offs])
    in_x = np.stack([solution(np.array([t0]), x + o)[0] for o in offs])
    return in_t, in_x


def test_heat_series_solves_the_heat_equation():
    x = np.linspace(0.05, 0.95, 19)
    ut, ux = stencil(lambda t, x: exact_solution(HEAT, t, x), 0.3, x)
    res = d1(ut, H) - HEAT.alpha * d2(ux, H)
    # 4th-order FD: truncation ~ H^4 (3 pi)^6 alpha / 90 ~ 1e-9; rounding ~ 1e-16 / H^2 ~ 1e-10.
    assert np.abs(res).max() < 1e-7 * np.abs(d1(ut, H)).max()


def test_wave_solutions_solve_the_wave_equation_with_initial_velocity():
    problem = Wave(initial=smooth_odd, initial_velocity=lambda x: np.sin(2 * np.pi * x) * np.exp(np.cos(2 * np.pi * x)))
    x = np.linspace(0.05, 0.95, 19)
    ut, ux = stencil(lambda t, x: exact_solution(problem, t, x), 0.37, x)
    res = d2(ut, H) - problem.c**2 * d2(ux, H)
    assert np.abs(res).max() < 1e-5 * np.abs(d2(ut, H)).max()  # FD rounding ~1e-16 c^2 / H^2 per unit


def test_wave_initial_velocity_is_reproduced():
    problem = Wave(sine_coeffs=(0.0,), initial_velocity=lambda x: x**2 * (1 - x) ** 2)
    x = np.linspace(0.1, 0.9, 9)
    u = exact_solution(problem, np.array([0.0, 1e-4, 2e-4]), x)
    vel = (u[2] - u[0]) / 2e-4  # u_t at t = 1e-4; u(., 0) = 0, so u_t(t) = v0 + t^2 c^2 v0'' / 2 + ...
    # that drift is ~3e-8 (measured 2.7e-8); the DST series of this C^1 odd extension adds less
    np.testing.assert_allclose(vel, x**2 * (1 - x) ** 2, atol=1e-6)


def test_wave_preset_is_the_design_closed_form():
    t, x = np.linspace(0, 1, 21), np.linspace(0, 1, 33)
    closed = np.sin(np.pi * x) * np.cos(2 * np.pi * t[:, None]) + 0.5 * np.sin(4 * np.pi * x) * np.cos(8 * np.pi * t[:, None])
    np.testing.assert_allclose(exact_solution(WAVE, t, x), closed, atol=1e-14)
    # d'Alembert on a callable gives the same standing waves
    dal = exact_solution(dataclasses.replace(WAVE, initial=WAVE.u0), t, x)
    np.testing.assert_allclose(dal, closed, atol=1e-13)


def test_standing_wave_with_velocity_matches_its_closed_form():
    t, x = np.linspace(0, 1, 5), np.linspace(0, 1, 9)
    u = wave_standing(t, x, (0.0,), (1.0,), c=2.0)
    np.testing.assert_allclose(u, np.sin(np.pi * x) * np.sin(2 * np.pi * t[:, None]) / (2 * np.pi), atol=1e-15)


def test_heat_initial_data_of_any_callable_is_reproduced_by_the_dst():
    x = np.linspace(0, 1, 101)
    u0 = exact_solution(Heat(initial=smooth_odd), np.array([0.0]), x)[0]
    np.testing.assert_allclose(u0, smooth_odd(x), atol=1e-14)  # analytic odd extension: spectral accuracy
    b = sine_coefficients(HEAT.u0, 0.0, 1.0)
    np.testing.assert_allclose(b[:3], [1.0, 0.0, 0.5], atol=1e-15)


def test_heat_series_decays_each_mode_at_its_rate():
    u = heat_series([0.0, 1.0], [0.5], (1.0,), alpha=0.1)
    assert u[1, 0] == pytest.approx(math.exp(-0.1 * math.pi**2), rel=1e-14)


def test_heat2d_matches_the_product_of_1d_modes():
    t, x = np.linspace(0, 1, 3), np.linspace(0, 1, 9)
    u = exact_solution(HEAT2D, t, x, x)
    X, Y = np.meshgrid(x, x, indexing="ij")
    a = HEAT2D.alpha * np.pi**2
    ref = np.exp(-2 * a * t)[:, None, None] * np.sin(np.pi * X) * np.sin(np.pi * Y) + 0.5 * np.exp(-13 * a * t)[:, None, None] * np.sin(2 * np.pi * X) * np.sin(3 * np.pi * Y)
    np.testing.assert_allclose(u, ref, atol=1e-15)


# ----------------------------------------------------------------------------- Burgers


@pytest.mark.parametrize(("nu", "t0", "xs"), [(0.1, 0.5, np.linspace(-0.9, 0.9, 19)), (0.01 / math.pi, 0.2, np.linspace(-0.9, 0.9, 19)), (0.01 / math.pi, 0.9, np.r_[np.linspace(-0.9, -0.3, 7), np.linspace(0.3, 0.9, 7)])])
def test_cole_hopf_solves_burgers_away_from_the_front(nu, t0, xs):
    sol = lambda t, x: burgers_cole_hopf(t, x, nu=nu)  # noqa: E731
    ut, ux = stencil(sol, t0, xs)
    u = ux[2]
    res = d1(ut, H) + u * d1(ux, H) - nu * d2(ux, H)
    scale = np.abs(d1(ut, H)).max()
    assert np.abs(res).max() < 1e-7 * scale  # 4th-order FD truncation ~H^4 |u^(5)| away from the front


def test_cole_hopf_reproduces_the_initial_data_and_is_odd():
    x = np.linspace(-1, 1, 129)
    u = exact_solution(BURGERS, np.array([0.0, 0.5, 1.0]), x)
    np.testing.assert_allclose(u[0], -np.sin(np.pi * x), atol=1e-15)
    np.testing.assert_allclose(u, -u[:, ::-1], atol=1e-13)  # u(-x) = -u(x)
    np.testing.assert_allclose(u[:, [0, -1]], 0.0, atol=1e-13)  # zero Dirichlet ends


def test_cole_hopf_is_converged_in_the_number_of_gauss_hermite_nodes():
    t, x = np.linspace(0, 1, 21), np.linspace(-1, 1, 257)
    default = burgers_cole_hopf(t, x)
    for n in (150, 300, 800):
        # measured: 60 nodes 1e-9, 80 nodes 1e-13; more only changes rounding
        assert np.abs(burgers_cole_hopf(t, x, n_nodes=n) - default).max() < 1e-13


def test_cole_hopf_agrees_with_direct_trapezoid_quadrature_through_the_front():
    """Independent check: the trapezoid rule in y over [-6, 6] (spectrally accurate for this
    smooth, rapidly decaying integrand) at points next to the front at t = 1/pi and t = 1."""
    nu = BURGERS.nu
    y = np.linspace(-6, 6, 400_001)
    for t in (1 / math.pi, 1.0):
        xs = np.array([-0.02, -0.005, -0.001, 0.003, 0.01, 0.5])
        ours = burgers_cole_hopf(np.array([t]), xs)[0]
        for x, value in zip(xs, ours, strict=True):
            g = -np.cos(np.pi * y) / (2 * np.pi * nu) - (x - y) ** 2 / (4 * nu * t)
            w = np.exp(g - g.max())
            direct = -np.sum(np.sin(np.pi * y) * w) / np.sum(w)
            assert value == pytest.approx(direct, abs=1e-13)


def test_cole_hopf_of_general_initial_data_uses_its_sine_series():
    """u0 = -sin(pi x) given as a plain callable (not the preset function) gives the preset."""
    t, x = np.linspace(0, 1, 6), np.linspace(-1, 1, 65)
    general = exact_solution(Burgers(initial=lambda x: -np.sin(np.pi * x)), t, x)
    np.testing.assert_allclose(general, burgers_cole_hopf(t, x), atol=1e-13)


@pytest.fixture(scope="module")
def converged_spectral():
    """Spectral Burgers preset, 4096 points on the period 4, 6000 ETDRK4 steps, 11 save times:
    converged to ~2e-11 (8192 points / 8000 steps change it by less, see benchmarks/results/spectral.md)."""
    t, x = np.linspace(0, 1, 11), np.linspace(-1, 1, 257)
    return t, x, solve_burgers_dirichlet(BURGERS, t, x, n_points=4096, n_steps=6000)


@pytest.mark.slow
def test_cole_hopf_matches_a_converged_spectral_run_to_1e_10(converged_spectral):
    t, x, u_spec = converged_spectral
    assert rel_l2(exact_solution(BURGERS, t, x), u_spec) <= 1e-10  # issue 2, item 3


def test_periodic_burgers_has_no_exact_solution():
    with pytest.raises(ValueError, match="spectral"):
        exact_solution(OPERATOR_BURGERS, [0.0], [0.0])


def test_bad_grids_are_rejected():
    with pytest.raises(ValueError, match="t"):
        exact_solution(HEAT, [-1.0, 0.0], [0.5])
    with pytest.raises(ValueError, match="non-finite"):
        exact_solution(HEAT, [0.0], [np.nan])
    with pytest.raises(ValueError, match="y"):
        exact_solution(HEAT2D, [0.0], [0.5])
