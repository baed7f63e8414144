"""The problem API: a user's own equation (pdes.PDE), derivatives by name, boundary conditions,
hard constraints, the PINN path against a closed form, and bad problem definitions."""

from __future__ import annotations

import json
import math
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pdes import compare, solve
from pdes.pinn import build_pinn, get_config, solve_pinn
from pdes.pinn.configs import LEVELS, generic_config
from pdes.pinn.residuals import field_derivatives, residual_of
from pdes.problems import (
    BURGERS,
    HEAT,
    PDE,
    PERIODIC,
    Boundary,
    Burgers,
    Problem,
    load_problem,
    parse_derivative,
)

A, D = 0.5, 0.02  # advection speed and diffusivity of the test equation (not a preset)


def advection_diffusion(u_t, u_x, u_xx, *, a, d):
    return u_t + a * u_x - d * u_xx


def _advdiff_exact(t, x):
    """u = exp(-d (2 pi)^2 t) sin(2 pi (x - a t)): the closed form on the unit torus."""
    xp = getattr(t, "__array_namespace__", lambda: np)()
    return xp.exp(-D * (2 * math.pi) ** 2 * t) * xp.sin(2 * math.pi * (x - A * t))


ADVECTION = PDE("advection_diffusion", advection_diffusion, x_min=0.0, x_max=1.0, t_end=1.0,
                initial=lambda x: _advdiff_exact(0.0 * x, x), boundary=PERIODIC, coeffs={"a": A, "d": D},
                exact=_advdiff_exact, linear=lambda k, *, a, d: -1j * a * k - d * k**2)


def test_presets_and_user_equations_share_the_problem_interface():
    assert isinstance(HEAT, Problem) and isinstance(BURGERS, Problem) and isinstance(ADVECTION, Problem)
    assert BURGERS.derivatives == ("u", "u_t", "u_x", "u_xx") and ADVECTION.coefficients() == {"a": A, "d": D}
    assert parse_derivative("u_xt") == (1, 1, 0) and parse_derivative("u_xxxx") == (0, 4, 0)


def test_derivatives_by_name_match_closed_forms():
    with jax.enable_x64(True):
        t, x = jnp.linspace(0.0, 1.0, 9), jnp.linspace(0.1, 0.9, 9)

        def u(t, x):
            return jnp.exp(-t) * jnp.sin(3 * x)

        d = field_derivatives(u, t, x, ("u", "u_t", "u_tt", "u_x", "u_xx", "u_xxx", "u_xxxx", "u_tx"))
        e, s, c = jnp.exp(-t), jnp.sin(3 * x), jnp.cos(3 * x)
        want = {"u": e * s, "u_t": -e * s, "u_tt": e * s, "u_x": 3 * e * c, "u_xx": -9 * e * s,
                "u_xxx": -27 * e * c, "u_xxxx": 81 * e * s, "u_tx": -3 * e * c}
        for name, value in want.items():  # float64 forward-mode AD: rounding only
            np.testing.assert_allclose(d[name], value, atol=1e-12, err_msg=name)


def test_residual_of_an_equation_vanishes_on_its_closed_form():
    with jax.enable_x64(True):
        t, x = jnp.linspace(0.0, 1.0, 11), jnp.linspace(0.0, 1.0, 11)
        r = residual_of(advection_diffusion)(_advdiff_exact, t, x, a=A, d=D)
        assert float(jnp.max(jnp.abs(r))) < 1e-12
        wrong = residual_of(advection_diffusion)(_advdiff_exact, t, x, a=2 * A, d=D)
        assert float(jnp.max(jnp.abs(wrong))) > 0.1  # the residual sees the coefficient


@pytest.mark.parametrize("kind, left, right", [("dirichlet", 1.0, lambda t: 2.0 + t), ("periodic", 0.0, 0.0)])
def test_hard_boundary_conditions_hold_exactly_for_an_untrained_network(kind, left, right):
    if kind == "dirichlet":
        problem = PDE("heat_lifted", lambda u_t, u_xx, *, k: u_t - k * u_xx, x_min=0.0, x_max=1.0, t_end=1.0,
                      initial=lambda x: 1.0 + x + x * (1 - x), boundary=Boundary(kind, left, right), coeffs={"k": 0.1})
    else:
        problem = ADVECTION
    cfg = generic_config(problem).updated({"network.width": 8, "network.depth": 2})
    pinn = build_pinn(problem, cfg)
    with jax.enable_x64(True):
        params = pinn.init(jax.random.key(0))
        t = jnp.linspace(0.0, 1.0, 7)
        ua = pinn.apply(params, t, jnp.zeros_like(t))
        ub = pinn.apply(params, t, jnp.ones_like(t))
        x = jnp.linspace(0.0, 1.0, 9)
        np.testing.assert_allclose(pinn.apply(params, jnp.zeros_like(x), x), problem.u0(np.asarray(x)), atol=1e-12)
    if kind == "dirichlet":
        np.testing.assert_allclose(ua, 1.0, atol=1e-12)
        np.testing.assert_allclose(ub, 2.0 + np.asarray(t), atol=1e-12)
    else:
        np.testing.assert_allclose(ua, ub, atol=1e-12)  # the periodic embedding of x


def test_soft_neumann_and_periodicity_terms_are_in_the_loss():
    neumann = PDE("neumann_heat", lambda u_t, u_xx, *, k: u_t - k * u_xx, x_min=0.0, x_max=1.0, t_end=1.0,
                  initial=lambda x: x.__array_namespace__().cos(math.pi * x), boundary=Boundary("neumann"),
                  coeffs={"k": 0.1})
    assert build_pinn(neumann, generic_config(neumann)).terms == ("res", "bc")
    soft = generic_config(ADVECTION).updated({"network.hard_bc": False, "network.hard_ic": False})
    assert build_pinn(ADVECTION, soft).terms == ("res", "ic", "bc")


def test_a_new_equation_trains_by_pinn_against_its_closed_form():
    # 300 Adam + 200 self-scaled Broyden steps of a 2 x 16 float64 MLP with the periodic
    # embedding: the travelling, decaying wave is learned to well under 1 %; a broken
    # derivative, embedding or ansatz leaves errors of order 1.
    cfg = generic_config(ADVECTION).updated({"network.width": 16, "network.depth": 2, "sampling.n_res": 512,
                                             "adam.steps": 300, "qn.steps": 200, "qn.n_res": 512,
                                             "qn.resample_every": 200, "run.log_every": 100})
    ds = solve_pinn(ADVECTION, nx=64, nt=20, config=cfg, progress=False)
    assert ds.attrs["equation"] == "advection_diffusion" and "u_true" in ds
    assert ds.attrs["rel_l2"] < 5e-3


def test_spectral_path_of_a_jax_numpy_problem_matches_its_closed_form_to_round_off():
    # initial data written with jax.numpy are evaluated in float64 (not rounded to 1e-7), and the
    # linear symbol alone (no nonlinear part) makes ETDRK4 the exact propagator
    problem = PDE("advection_jnp", advection_diffusion, x_min=0.0, x_max=1.0, t_end=1.0,
                  initial=lambda x: jnp.sin(2 * jnp.pi * x), coeffs={"a": A, "d": D}, exact=_advdiff_exact,
                  linear=lambda k, *, a, d: -1j * a * k - d * k**2)
    assert problem.u0(np.array([0.1])).dtype == np.float64
    assert abs(problem.u0(np.array([0.1]))[0] - math.sin(0.2 * math.pi)) < 1e-15
    ds = solve(problem, "spectral", nx=64, nt=11)
    assert compare(ds, solve(problem, "exact", nx=64, nt=11)).rel_l2 < 1e-12


def _problem_file(tmp_path, body: str):
    path = tmp_path / "my_pde.py"
    path.write_text("import jax.numpy as jnp\nfrom pdes.problems import PDE, PERIODIC, Boundary\n"
                    + textwrap.dedent(body))
    return path


def test_cli_solves_a_problem_file_by_pinn(tmp_path, capsys):
    from pdes.__main__ import main

    path = _problem_file(tmp_path, """
        def eq(u_t, u_x, u_xx, *, a, d):
            return u_t + a * u_x - d * u_xx
        PROBLEM = PDE("advection", eq, x_min=0.0, x_max=1.0, t_end=0.5, initial=lambda x: jnp.sin(2 * jnp.pi * x),
                      boundary=PERIODIC, coeffs={"a": 0.5, "d": 0.02},
                      exact=lambda t, x: jnp.exp(-0.02 * 4 * jnp.pi**2 * t) * jnp.sin(2 * jnp.pi * (x - 0.5 * t)))
    """)
    code = main(["solve", "--problem", f"{path}:PROBLEM", "--method", "pinn", "--nx", "32", "--nt", "8", "--steps",
                 "100", "--set", "qn.steps=20", "--set", "network.width=8", "--set", "run.log_every=50",
                 "--no-progress", "--json"])
    assert code == 0
    row = json.loads(capsys.readouterr().out)
    assert row["equation"] == "advection" and row["rel_l2"] < 1.0


@pytest.mark.parametrize("body, named", [
    ("""
        def eq(u_t, u_y, *, a):
            return u_t - a * u_y
        PROBLEM = PDE("bad", eq, x_min=0.0, x_max=1.0, t_end=1.0, initial=jnp.sin, coeffs={"a": 1.0})
     """, "'u_y'"),
    ("""
        PROBLEM = PDE("bad", lambda u_t, u_xx, *, k: u_t - k * u_xx, x_min=0.0, x_max=1.0, t_end=1.0,
                      initial=lambda x: 1.0 + 0 * x, boundary=Boundary("dirichlet", 0.0, 0.0), coeffs={"k": 1.0})
     """, "contradicts the initial data"),
    ("""
        PROBLEM = PDE("bad", lambda u_t, u_xx, *, k: u_t - k * u_xx, x_min=0.0, x_max=1.0, t_end=1.0,
                      initial=lambda x: x, boundary=PERIODIC, coeffs={"k": 1.0})
     """, "periodic boundary contradicts"),
    ("""
        OTHER = 3
     """, "does not define 'PROBLEM'"),
    ("""
        PROBLEM = PDE("bad", lambda u_t, u_xx, *, k: u_t - k * u_xx, x_min=0.0, x_max=1.0, t_end=1.0,
                      initial=jnp.sin, coeffs={})
     """, "needs coefficient(s) ['k']"),
])
def test_bad_problem_files_exit_2_with_one_line_naming_the_fault(tmp_path, capsys, body, named):
    from pdes.__main__ import main

    path = _problem_file(tmp_path, body)
    assert main(["solve", "--problem", str(path), "--method", "pinn", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pdes: error:") and "\n" not in err and named in err


def test_load_problem_names_missing_files_and_non_problems(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such problem file"):
        load_problem(str(tmp_path / "nowhere.py"))
    path = _problem_file(tmp_path, "PROBLEM = 'a string'\n")
    with pytest.raises(ValueError, match="not a pdes.PDE"):
        load_problem(f"{path}:PROBLEM")


def test_presets_keep_their_configs_and_solve_through_the_generic_residual():
    # the presets are Problems whose residual comes from the same derivative engine
    assert isinstance(Burgers(nu=0.05), Problem)
    assert get_config("burgers", "fast").qn.method == "ssbroyden"


def test_command_lines_keep_compiled_programs_in_the_persistent_cache(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    from plumbing import compilation_cache

    cache = tmp_path / "jax-cache"
    env = {**os.environ, "SCIML_JAX_CACHE": str(cache)}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    args = [sys.executable, "-m", "pdes", "solve", "heat", "--method", "pinn", "--steps", "20", "--set", "qn.steps=0",
            "--set", "network.width=8", "--set", "run.log_every=20", "--nx", "16", "--nt", "4", "--no-progress", "--json"]
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert any(cache.iterdir())  # the training chunk was stored: a second run loads it
    # turned off: no folder is made or used
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.setenv("SCIML_CACHE", str(tmp_path / "other"))
    for off in ("off", "0", "false"):
        monkeypatch.setenv("SCIML_JAX_CACHE", off)
        assert compilation_cache.cache_dir() is None and compilation_cache.enable() is None
    assert not (tmp_path / "other").exists()
    monkeypatch.delenv("SCIML_JAX_CACHE")
    assert compilation_cache.cache_dir() == tmp_path / "other" / "jax"


def test_u0_feature_lets_the_network_move_the_kink_of_the_initial_data():
    # Allen-Cahn's u0 = x^2 cos(pi x) has slope -2 at x = 1 and +2 at x = -1 (a kink across the
    # periodic boundary). With u = u0 + t N and N smooth and periodic, the slope jump stays -4
    # at every time; with u0(x) as an input of N (network.u0_feature) it changes with N.
    from pdes.pinn.residuals import d_x
    from pdes.problems import ALLEN_CAHN

    def jumps(u0_feature: bool) -> np.ndarray:
        cfg = generic_config(ALLEN_CAHN).updated({"network.x_modes": 4, "network.u0_feature": u0_feature})
        with jax.enable_x64(True):
            pinn = build_pinn(ALLEN_CAHN, cfg)
            params = pinn.init(jax.random.key(0))
            u_x = d_x(pinn.field(params))
            t = jnp.asarray([0.0, 0.5, 1.0])
            return np.asarray(u_x(t, jnp.ones(3)) - u_x(t, -jnp.ones(3)))

    np.testing.assert_allclose(jumps(False), -4.0, atol=1e-9)
    moved = jumps(True)
    assert abs(moved[0] + 4.0) < 1e-9 and np.all(np.abs(moved[1:] + 4.0) > 1e-3)


def test_kink_diffusivity_smooths_the_kink_as_the_heat_equation_does():
    # network.kink_diffusivity = eps: the ansatz starts from u0 plus the heat equation's exact
    # smoothing of u0's slope jump across the periodic boundary, so for t > 0 the slope is
    # continuous there (an untrained network: N is smooth and periodic), u(0) = u0 exactly, and
    # the added term solves u_t = eps u_xx near the boundary.
    from pdes.pinn.residuals import d_t, d_x
    from pdes.problems import ALLEN_CAHN, BURGERS

    eps = 1e-4
    cfg = generic_config(ALLEN_CAHN).updated({"network.x_modes": 4, "network.kink_diffusivity": eps})
    with jax.enable_x64(True):
        pinn = build_pinn(ALLEN_CAHN, cfg)
        assert pinn._kink == pytest.approx(4.0, abs=1e-12)  # u0'(-1+) - u0'(1-) = 2 - (-2)
        params = pinn.init(jax.random.key(0))
        u = pinn.field(params)
        u_x = d_x(u)
        t = jnp.asarray([1e-4, 0.5, 1.0])
        jump = np.asarray(u_x(t, -jnp.ones(3)) - u_x(t, jnp.ones(3)))
        np.testing.assert_allclose(jump, 0.0, atol=1e-9)
        x = jnp.linspace(-1.0, 1.0, 9)
        np.testing.assert_allclose(np.asarray(u(jnp.zeros(9), x)), np.asarray(x**2 * jnp.cos(jnp.pi * x)), atol=1e-15)

        def added(t, x):
            return pinn._kink_smoothing(t, (x + 1.0) / 2.0)

        ts, xs = jnp.asarray([1e-3, 0.2, 0.9]), jnp.asarray([0.997, -0.99, 0.9995])
        heat = d_t(added)(ts, xs) - eps * d_x(d_x(added))(ts, xs)
        assert float(jnp.max(jnp.abs(heat))) < 1e-12 < float(jnp.min(jnp.abs(d_t(added)(ts, xs))))
        assert float(jnp.max(jnp.abs(added(jnp.ones(3), jnp.asarray([-0.5, 0.0, 0.5]))))) < 1e-17

    with pytest.raises(ValueError, match="periodic 1-D"):
        build_pinn(BURGERS, LEVELS["burgers"]["fast"].updated({"network.kink_diffusivity": eps}))
    with pytest.raises(ValueError, match=r"1/12 of the period"):
        build_pinn(ALLEN_CAHN, cfg.updated({"network.kink_diffusivity": 0.1}))
    with pytest.raises(ValueError, match="kink_diffusivity"):
        cfg.updated({"network.kink_diffusivity": -1.0})
