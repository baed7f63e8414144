"""The generic periodic ETDRK4 solver and the Allen–Cahn and KdV references built on it.

Every tolerance names its source: a closed form (rounding only), a measured order, or a measured
error of the same settings (benchmarks/spectral_references.py, numbers in
benchmarks/results/spectral.md).
"""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from pdes.solution import rel_l2
from pdes.spectral import (
    allen_cahn_initial,
    allen_cahn_initial_modes,
    allen_cahn_reference,
    allen_cahn_terms,
    etdrk4_coeffs,
    flux_nonlinear,
    fourier_interpolate,
    kdv_initial,
    kdv_reference,
    kdv_terms,
    periodic_grid,
    physical_nonlinear,
    solve_periodic_burgers,
    solve_periodic_semilinear,
    wavenumbers,
)

X_EVAL = np.linspace(-1.0, 1.0, 256)  # the PINN evaluation grid in x (both ends: x = 1 is x = -1)
DELTA = 0.022  # Zabusky & Kruskal 1965
ADVECTION = flux_nonlinear(lambda u: 1.0 * u)  # N = -u_x: advection at speed 1, built once
BURGERS_FLUX = flux_nonlinear(lambda u: 0.5 * u * u)
BURGERS_PRODUCT = physical_nonlinear(lambda u, ux: -u * ux, derivatives=1)
NO_NONLINEARITY = physical_nonlinear(lambda u: 0.0 * u, derivatives=0)


def low_mode_data(n: int, length: float, batch: int = 1) -> np.ndarray:
    """Band-limited periodic data (modes |m| <= 3 < n / 3, so the 2/3 mask leaves it alone): (batch, n)."""
    x = periodic_grid(n, x_min=0.0, length=length)
    a = 1.0 + 0.25 * np.arange(batch)[:, None]
    z = 2 * math.pi * x / length
    return a * np.sin(z) + 0.5 * np.cos(3 * z) + 0.2


def advected_diffused(
    u0: np.ndarray, t: np.ndarray, *, nu: float, c: float, r: float, length: float
) -> np.ndarray:
    """Closed form of u_t + c u_x = nu u_xx + r u: each mode times exp((-nu k^2 - i c k + r) t). (nt, n)."""
    k = wavenumbers(u0.shape[-1], length)
    return np.fft.irfft(
        np.exp((-nu * k**2 - 1j * c * k + r) * t[:, None]) * np.fft.rfft(u0), n=u0.shape[-1], axis=-1
    )


# ----------------------------------------------------------------------------- the generic solver


def test_linear_symbol_alone_reproduces_advection_diffusion_reaction_to_rounding():
    """With N = 0 ETDRK4 is E = exp(h L) per mode: only rounding is left (complex L takes the
    whole-circle contour)."""
    length, t = 2 * math.pi, np.linspace(0.0, 2.0, 6)
    u0 = low_mode_data(64, length)[0]
    u = solve_periodic_semilinear(
        u0,
        linear=lambda k: -0.1 * k**2 - 1j * 0.7 * k + 0.3,
        nonlinear=NO_NONLINEARITY,
        length=length,
        t_save=t,
        n_steps=7,
        dealias=False,
    )
    exact = advected_diffused(u0, t, nu=0.1, c=0.7, r=0.3, length=length)
    assert u.shape == (6, 64) and u.dtype == np.float64
    assert rel_l2(u, exact) < 1e-14  # 7 exact exponentials per interval: ~10 roundings


def test_advection_in_the_nonlinear_part_converges_at_fourth_order_to_the_closed_form():
    """u_t = 0.1 u_xx - u_x with -u_x passed as N: ETDRK4's error is then a pure time error."""
    length, t = 2 * math.pi, np.linspace(0.0, 2.0, 5)
    u0 = low_mode_data(32, length)[0]
    exact = advected_diffused(u0, t, nu=0.1, c=1.0, r=0.0, length=length)
    errs = np.array(
        [
            rel_l2(
                solve_periodic_semilinear(
                    u0, linear=lambda k: -0.1 * k**2, nonlinear=ADVECTION, length=length, t_save=t, n_steps=s
                ),
                exact,
            )
            for s in (20, 40, 80)
        ]
    )
    orders = np.log2(errs[:-1] / errs[1:])
    assert np.all((orders > 3.7) & (orders < 4.3)), orders  # ETDRK4 is fourth order (measured 4.0, 4.0)
    auto = solve_periodic_semilinear(
        u0, linear=lambda k: -0.1 * k**2, nonlinear=ADVECTION, length=length, t_save=t
    )
    # default steps double until successive runs differ by <= 15 tol = 1.5e-9, i.e. an estimated
    # error <= tol = 1e-10 (measured 8.4e-11); 3x room for the estimate being an estimate
    assert rel_l2(auto, exact) < 3e-10


def test_generic_burgers_equals_the_burgers_solver_and_the_product_form_equals_the_flux_form():
    """Same scheme three ways: solve_periodic_burgers, flux_nonlinear(u^2 / 2) and
    physical_nonlinear(-u u_x). For band-limited u in the 2/3 band the dealiased product u u_x
    equals (u^2 / 2)_x mode by mode, so only rounding differs."""
    length, t = 1.0, np.array([0.0, 0.5, 1.0])
    u0 = low_mode_data(64, length, batch=2)
    kw = {"linear": lambda k: -0.05 * k**2, "length": length, "t_save": t, "n_steps": 300}
    flux = solve_periodic_semilinear(u0, nonlinear=BURGERS_FLUX, **kw)
    product = solve_periodic_semilinear(u0, nonlinear=BURGERS_PRODUCT, **kw)
    burgers = solve_periodic_burgers(u0, nu=0.05, length=length, t_save=t, n_steps=300)
    assert flux.shape == (2, 3, 64)
    np.testing.assert_allclose(
        flux[:, 0], u0, rtol=0, atol=1e-14
    )  # t = 0 is u0 (band-limited: the mask keeps it)
    np.testing.assert_allclose(flux, burgers, rtol=0, atol=1e-13)  # same arithmetic up to FFT rounding
    np.testing.assert_allclose(product, flux, rtol=0, atol=1e-13)


def test_batched_solve_equals_one_by_one():
    u0 = low_mode_data(64, 1.0, batch=2)  # the shapes of the previous test: its compiled program
    kw = {
        "linear": lambda k: -0.05 * k**2,
        "nonlinear": BURGERS_FLUX,
        "length": 1.0,
        "t_save": [0.0, 0.5, 1.0],
        "n_steps": 300,
    }
    batched = solve_periodic_semilinear(u0, **kw)
    single = np.stack([solve_periodic_semilinear(u, **kw) for u in u0])
    np.testing.assert_allclose(batched, single, rtol=0, atol=1e-14)  # vmap: the same arithmetic


def test_etdrk4_coefficients_of_an_imaginary_symbol_match_the_closed_forms():
    """KdV's L = i d^2 k^3 is imaginary: the contour mean must use the whole circle. Without a
    nonlinear term the increments are h phi_1(hL) = (e^{hL} - 1) / L (f1 + 4 f2 + f3) and
    (e^{hL/2} - 1) / L (Q), computed here by the closed forms, safe for |hL| >= 0.5."""
    lin = 1j * np.array([50.0, 400.0, 3e3, 2e4])
    h = 0.01
    c = etdrk4_coeffs(lin, h)
    np.testing.assert_allclose(c.f1 + 4 * c.f2 + c.f3, np.expm1(h * lin) / lin, rtol=1e-12)
    np.testing.assert_allclose(c.Q, np.expm1(h * lin / 2) / lin, rtol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"u0": np.full((1, 16), np.nan)}, "non-finite"),
        ({"u0": np.zeros((1, 15))}, "even"),
        ({"t_save": [0.5, 0.5]}, "increasing"),
        ({"t_save": [-0.1, 1.0]}, ">= 0"),
        ({"n_steps": 0}, "n_steps"),
        ({"n_steps": 2.5}, "n_steps"),
        ({"length": 0.0}, "length"),
        ({"length": -2.0}, "length"),
        ({"linear": np.zeros(3)}, "linear"),
        ({"linear": lambda k: np.where(k > 0, np.inf, 0.0)}, "linear"),
        ({"nonlinear": None}, "nonlinear"),
        ({"tol": 0.0}, "tol"),
    ],
)
def test_bad_inputs_raise_naming_the_value(kwargs, word):
    args = {
        "u0": np.zeros((1, 16)),
        "linear": lambda k: -(k**2),
        "nonlinear": BURGERS_FLUX,
        "length": 1.0,
        "t_save": [1.0],
    } | kwargs
    with pytest.raises(ValueError, match=word):
        solve_periodic_semilinear(**args)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"n_points": 100.5}, "n_points"),
        ({"n_points": 257}, "n_points"),
        ({"n_steps": -1}, "n_steps"),
        ({"t": [-1.0]}, "t must"),
        ({"delta": 0.0}, "delta"),
    ],
)
def test_reference_functions_reject_bad_values(kwargs, word):
    args = {"t": [0.5], "x": X_EVAL} | kwargs
    with pytest.raises(ValueError, match=word):
        kdv_reference(**args)


def test_allen_cahn_reference_rejects_bad_coefficients():
    with pytest.raises(ValueError, match="eps"):
        allen_cahn_reference([0.5], X_EVAL, eps=-1e-4)
    with pytest.raises(ValueError, match="gamma"):
        allen_cahn_reference([0.5], X_EVAL, gamma=math.nan)


# ----------------------------------------------------------------------------- KdV


@pytest.fixture(scope="module")
def kdv_step_runs():
    """KdV on the grid (512 points: spatially converged, 2.6e-14 against 1024) at t = 0.1, .., 1,
    for 1000 .. 16000 ETDRK4 steps: {steps: (10, 512)}. Same shapes and terms as the references
    below, so one compiled program serves both."""
    linear, nonlinear = kdv_terms(DELTA)
    u0 = kdv_initial(periodic_grid(512, x_min=-1.0, length=2.0))
    t = np.linspace(0.1, 1.0, 10)
    return {
        s: solve_periodic_semilinear(u0, linear=linear, nonlinear=nonlinear, length=2.0, t_save=t, n_steps=s)
        for s in (1000, 2000, 4000, 8000, 16000)
    }


def test_kdv_etdrk4_error_falls_at_fourth_order_to_below_1e_10(kdv_step_runs):
    steps = (1000, 2000, 4000, 8000, 16000)
    changes = np.array(
        [rel_l2(kdv_step_runs[a], kdv_step_runs[b]) for a, b in zip(steps, steps[1:], strict=False)]
    )
    orders = np.log2(changes[:-1] / changes[1:])
    # fourth order; the measured local orders wobble above 4 (4.2, 4.6, 4.2 here; 4.1, 4.1, 4.2 on
    # t = linspace(0, 1, 100)), as the leading error terms partly cancel
    assert np.all((orders > 3.7) & (orders < 4.8)), orders
    # Richardson: the error of the 16000-step run is ~ its change from 8000 steps / 15
    assert changes[-1] / 15 < 1e-10  # measured 2.5e-11 (3.7e-10 / 15)


def test_kdv_conserves_mass_to_rounding_and_the_l2_norm_to_the_time_error(kdv_step_runs):
    """Mass: mode 0 of L and of N = -i k F[u^2 / 2] is exactly zero. int u^2 is conserved by the
    2/3-dealiased (Galerkin) semi-discretization exactly, and the grid mean of u^2 is its integral
    (u^2 has modes < 2n/3 < n); ETDRK4 is not conservative, so it drifts with the time error."""
    u = kdv_step_runs[8000]
    assert np.abs(u.mean(axis=-1)).max() < 1e-15  # mean of cos(pi x) = 0; rounding of 512-term sums
    energy = (u**2).mean(axis=-1)  # at t = 0: int cos^2 / 2 = 1/2
    # the run's rel. L2 time error is 3.7e-10 (previous test's data); a quadratic invariant drifts
    # by at most ~2x that (measured 5.3e-11, and 1.3e-9 at 4000 steps: the drift is a time error)
    drift = np.abs(energy / 0.5 - 1).max()
    assert drift < 1e-9
    drift_4000 = np.abs((kdv_step_runs[4000] ** 2).mean(axis=-1) / 0.5 - 1).max()
    assert drift_4000 > 8 * drift  # halving the steps: ~16x the drift (fourth order; measured 24x)


def test_kdv_reference_converges_exponentially_in_the_number_of_points():
    """Solitons of width ~delta sqrt(12 / A) ~ 0.044 have Fourier tails ~exp(-pi Delta k / 2): the
    error drops by a constant number of decades per added 64 points."""
    t = np.linspace(0.0, 1.0, 11)
    ref = kdv_reference(t, X_EVAL, n_points=512, n_steps=2000)  # same steps: only space differs
    errs = np.array(
        [rel_l2(kdv_reference(t, X_EVAL, n_points=n, n_steps=2000), ref) for n in (256, 320, 384)]
    )
    drops = -np.diff(np.log10(errs))
    # measured 3.4e-7, 5.4e-9, 1.0e-10: 1.8 and 1.7 decades per 64 points; an algebraic n^-p
    # would need p ~ 20 for the first drop and more for the next
    assert drops.min() > 1.2, errs
    assert errs[-1] < 1e-9, errs


def test_reference_accepts_any_order_of_times_and_returns_u0_at_t0():
    t = np.array([0.3, 0.0, 0.1, 0.3])
    u = kdv_reference(t, X_EVAL, n_points=128, n_steps=200)
    assert u.shape == (4, 256) and u.dtype == np.float64
    np.testing.assert_array_equal(u[1], kdv_initial(X_EVAL))  # t = 0 rows are the initial data itself
    np.testing.assert_array_equal(u[0], u[3])
    sorted_ = kdv_reference([0.1, 0.3], X_EVAL, n_points=128, n_steps=200)
    np.testing.assert_allclose(
        u[[2, 0]], sorted_, rtol=0, atol=1e-9
    )  # steps per interval differ: time error of 200 steps


# ----------------------------------------------------------------------------- Allen–Cahn


@pytest.fixture(scope="module")
def allen_cahn_runs():
    """Allen–Cahn references at t = 0.5, 1 on the 256-point grid with 500 ETDRK4 steps (time
    error ~1e-10, measured) for n_points 1024 .. 8192: {n: (2, 256)}."""
    return {
        n: allen_cahn_reference([0.5, 1.0], X_EVAL, n_points=n, n_steps=500) for n in (1024, 2048, 4096, 8192)
    }


def test_allen_cahn_initial_modes_are_the_exact_fourier_series():
    """The closed-form coefficients against a 2^16-point FFT of u0 (aliasing error ~2^-32 ~ 2e-10
    per mode, from the m^-2 tail of the kink)."""
    n, fine = 64, 2**16
    v = np.fft.rfft(allen_cahn_initial_modes(n)) / n
    v_fine = np.fft.rfft(allen_cahn_initial(periodic_grid(fine, x_min=-1.0, length=2.0)))[: v.size] / fine
    keep = 3 * np.arange(v.size) < n
    np.testing.assert_allclose(v[keep], v_fine[keep], rtol=0, atol=1e-9)
    assert np.abs(v[~keep]).max() < 1e-16  # zero up to the rounding of irfft / rfft


def test_allen_cahn_converges_spectrally_once_diffusion_has_smoothed_the_kink(allen_cahn_runs):
    """From the exact series, the kink's m^-2 tail beyond n/3 is damped like exp(-1e-4 pi^2 m^2 t)
    and the interfaces (width ~sqrt(2e-4 / 5) ~ 6e-3) are smooth, so at t >= 0.5 the error falls
    faster than any power."""
    ref = allen_cahn_runs[8192]
    errs = np.array([rel_l2(allen_cahn_runs[n], ref) for n in (1024, 2048)])
    # measured 1.6e-8 and 5.1e-14 (same steps, so the time error cancels): a factor 3e5 per
    # doubling, order ~18; an algebraic rate from the kink (order <= 2, see the next tests)
    # would give <= 4x
    assert np.log2(errs[0] / errs[1]) > 8, errs
    assert errs[1] < 1e-11, errs


def test_allen_cahn_keeps_the_maximum_principle(allen_cahn_runs):
    """|u0| <= 1 implies |u| <= 1 for Allen–Cahn; the reference's own error is ~1e-13 (4096 points)."""
    u = allen_cahn_runs[4096]
    assert np.abs(u).max() <= 1 + 1e-10  # measured 1 - 1.1e-6 (the states approach +-1 from inside)
    assert u.max() > 0.99 and u.min() < -0.99  # both phases are present at t = 0.5, 1


def test_sampling_the_kinked_initial_data_converges_only_at_second_order(allen_cahn_runs):
    """Why the reference starts from the exact series: collocation of u0 aliases the m^-2 tail into
    every mode (error sum_j c_{m + j n} ~ n^-2), and diffusion does not remove that from the low
    modes. Three refinements of the generic solver from samples of u0, against the 8192-point
    reference."""
    linear, nonlinear = allen_cahn_terms()

    def sampled(n: int) -> np.ndarray:
        u0 = allen_cahn_initial(periodic_grid(n, x_min=-1.0, length=2.0))
        u = solve_periodic_semilinear(
            u0, linear=linear, nonlinear=nonlinear, length=2.0, t_save=[0.5, 1.0], n_steps=500
        )
        return fourier_interpolate(u, X_EVAL, x0=-1.0, length=2.0)

    errs = np.array([rel_l2(sampled(n), allen_cahn_runs[8192]) for n in (1024, 2048, 4096)])
    orders = np.log2(errs[:-1] / errs[1:])
    assert np.all((orders > 1.6) & (orders < 2.4)), (errs, orders)  # order 2 (measured 1.8, 2.0)
    assert rel_l2(allen_cahn_runs[4096], allen_cahn_runs[8192]) < 1e-3 * errs[-1]  # the series is far better


def test_allen_cahn_just_after_t0_converges_algebraically():
    """At t = 1e-4 diffusion has not yet damped the kink's tail (exp(-1e-4 pi^2 m^2 t) ~ 0.95 at
    m = 680): the truncation error of c_m ~ m^-2 beyond n/3 is O(n^-1) at the kink point
    x = +-1 (on the grid) and O(n^-3/2) in L2, so the grid's rel. L2 shows an order between 1
    and 1.5, rising as the damping starts to act (measured 1.16, 1.31)."""
    t = [5e-5, 1e-4]  # two times: the fixture's compiled programs (nt = 2) are reused
    ref = allen_cahn_reference(t, X_EVAL, n_points=8192, n_steps=10)
    errs = np.array(
        [rel_l2(allen_cahn_reference(t, X_EVAL, n_points=n, n_steps=10), ref) for n in (512, 1024, 2048)]
    )
    orders = np.log2(errs[:-1] / errs[1:])
    assert np.all((orders > 1.0) & (orders < 1.6)), (errs, orders)
    assert errs[0] > 1e-4  # the kink costs accuracy here: 5e-4 at 512 points (measured)


def test_generic_and_preset_allen_cahn_agree():
    """The preset is the generic solver started from the exact series: same numbers."""
    t = np.array([0.2])
    n = 512
    linear, nonlinear = allen_cahn_terms(1e-4, 5.0)
    grid = solve_periodic_semilinear(
        allen_cahn_initial_modes(n), linear=linear, nonlinear=nonlinear, length=2.0, t_save=t, n_steps=100
    )
    preset = allen_cahn_reference(t, periodic_grid(n, x_min=-1.0, length=2.0), n_points=n, n_steps=100)
    np.testing.assert_allclose(preset, grid, rtol=0, atol=1e-12)  # interpolation onto its own grid: rounding


def test_results_are_float64_arrays_not_jax_arrays():
    u = solve_periodic_semilinear(
        np.zeros(16), linear=np.zeros(9), nonlinear=BURGERS_FLUX, length=1.0, t_save=[0.1], n_steps=2
    )
    assert isinstance(u, np.ndarray) and u.dtype == np.float64 and u.shape == (1, 16)


def test_space_dependent_forcing_through_the_grid_is_integrated_exactly():
    """u_t = nu u_xx + sin x, u0 = a sin x: u = (a e^{-nu t} + (1 - e^{-nu t}) / nu) sin x. A constant-in-time
    N enters ETDRK4 through h phi_1(h L), which is exact, so only rounding is left."""
    n, length, nu, a = 32, 2 * math.pi, 0.3, 0.5
    x = periodic_grid(n, x_min=0.0, length=length)
    forcing = physical_nonlinear(lambda xs, u: jnp.sin(xs) + 0.0 * u, derivatives=0, x=x)
    t = np.array([0.5, 1.0, 3.0])
    u = solve_periodic_semilinear(
        a * np.sin(x), linear=lambda k: -nu * k**2, nonlinear=forcing, length=length, t_save=t, n_steps=3
    )
    decay = np.exp(-nu * t)[:, None]
    np.testing.assert_allclose(u, (a * decay + (1 - decay) / nu) * np.sin(x), rtol=0, atol=1e-14)
