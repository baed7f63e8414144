"""PINNs: residuals on exact solutions, configs and bad input, training, NaN guard, resume."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pdes.pinn import Programs, build_pinn, get_config, solve_pinn
from pdes.pinn.configs import (
    AdamConfig,
    NetworkConfig,
    PINNConfig,
    QNConfig,
    RunConfig,
    SamplingConfig,
    apply_overrides,
    load_overrides,
    parse_overrides,
    program_config,
)
from pdes.pinn.residuals import burgers_residual, heat_residual, initial_data, wave_residual
from pdes.pinn.train import train
from pdes.problems import BURGERS, HEAT, WAVE, Burgers

# A tiny configuration: compiles and trains in a few seconds on 2 shared cores.
TINY = PINNConfig(network=NetworkConfig(arch="mlp", width=16, depth=2, x_modes=2), sampling=SamplingConfig(n_res=256),
                  adam=AdamConfig(steps=200, lr=3e-3, warmup_steps=20, decay_steps=100), qn=QNConfig(steps=0),
                  run=RunConfig(log_every=100, checkpoint_every=100))


# ------------------------------------------------------------------ residuals
def _heat_exact(t, x):
    a = HEAT.alpha
    return (jnp.exp(-a * math.pi**2 * t) * jnp.sin(math.pi * x)
            + 0.5 * jnp.exp(-9 * a * math.pi**2 * t) * jnp.sin(3 * math.pi * x))


def _wave_exact(t, x):
    c = WAVE.c
    return (jnp.sin(math.pi * x) * jnp.cos(c * math.pi * t)
            + 0.5 * jnp.sin(4 * math.pi * x) * jnp.cos(4 * c * math.pi * t))


def _points(n=500, x_min=0.0, x_max=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.uniform(0, 1, n)), jnp.asarray(rng.uniform(x_min, x_max, n))


def test_heat_and_wave_residuals_vanish_on_the_closed_form_solutions():
    with jax.enable_x64(True):
        t, x = _points()
        r_heat = heat_residual(_heat_exact, t, x, alpha=HEAT.alpha)
        r_wave = wave_residual(_wave_exact, t, x, c=WAVE.c)
        # float64 autodiff of the closed forms: only rounding is left. Scales: |u_t| <= ~5 (heat),
        # |u_tt| <= 0.5 (8 pi)^2 ~ 316 (wave); 1e-11 relative to those is many ulps of margin.
        assert float(jnp.max(jnp.abs(r_heat))) < 5e-11
        assert float(jnp.max(jnp.abs(r_wave))) < 316 * 1e-11
        # and they do not vanish for a wrong coefficient (the residual sees the coefficient)
        assert float(jnp.max(jnp.abs(heat_residual(_heat_exact, t, x, alpha=0.2)))) > 0.1


def _cole_hopf(nu, n_nodes=200):
    """u(t, x) of u_t + u u_x = nu u_xx, u0 = -sin(pi x), by Cole-Hopf with Gauss-Hermite nodes
    (log-sum-exp weights), differentiable in JAX."""
    z, w = np.polynomial.hermite.hermgauss(n_nodes)
    z, logw = jnp.asarray(z), jnp.asarray(np.log(w))

    def u(t, x):
        s = jnp.sqrt(4 * nu * t)[:, None]
        y = x[:, None] - s * z[None, :]
        logf = logw[None, :] - jnp.cos(math.pi * y) / (2 * math.pi * nu)
        wts = jax.nn.softmax(logf, axis=1)
        return jnp.sum(-jnp.sin(math.pi * y) * wts, axis=1)

    return u


def test_burgers_residual_of_the_cole_hopf_solution_is_small():
    nu = 0.05  # smooth enough that 200 Gauss-Hermite nodes resolve the integrals to ~1e-10
    with jax.enable_x64(True):
        t, x = _points(300, -1.0, 1.0)
        t = 0.1 + 0.9 * t
        u = _cole_hopf(nu)
        r = burgers_residual(u, t, x, nu=nu)
        scale = float(jnp.max(jnp.abs(jax.jvp(lambda s: u(s, x), (t,), (jnp.ones_like(t),))[1])))
        assert scale > 0.1  # the solution does evolve here
        assert float(jnp.max(jnp.abs(r))) < 1e-7 * scale  # quadrature error, far below any PINN error
        # the preset's own coefficient does not fit this solution
        assert float(jnp.max(jnp.abs(burgers_residual(u, t, x, nu=BURGERS.nu)))) > 1e-3


def test_hard_constraints_hold_exactly_for_an_untrained_network():
    for problem in (HEAT, WAVE, BURGERS):
        pinn = build_pinn(problem, TINY.updated({"network.arch": "modified_mlp", "network.rwf": True}))
        params = pinn.init(jax.random.key(0))
        x = jnp.linspace(problem.x_min, problem.x_max, 33)
        u0 = initial_data(problem)[0]((x - problem.x_min) / problem.length)
        np.testing.assert_allclose(pinn.apply(params, jnp.zeros_like(x), x), u0, atol=1e-6)  # float32 rounding
        np.testing.assert_allclose(u0, problem.u0(np.asarray(x)), atol=1e-6)
        t = jnp.linspace(0, problem.t_end, 9)
        for xb in (problem.x_min, problem.x_max):
            assert float(jnp.max(jnp.abs(pinn.apply(params, t, jnp.full_like(t, xb))))) < 1e-6
    pinn = build_pinn(WAVE, TINY)
    params = pinn.init(jax.random.key(1))
    x = jnp.linspace(0.1, 0.9, 9)
    ut = jax.jvp(lambda s: pinn.apply(params, s, x), (jnp.zeros_like(x),), (jnp.ones_like(x),))[1]
    assert float(jnp.max(jnp.abs(ut))) < 1e-5  # u_t(x, 0) = 0 built in (float32 rounding)


def _mirror_gaps(problem, config, sign: float) -> np.ndarray:
    """max |u(t, x) - sign u(t, -x)| at t = 0, 0.3, 1 for an untrained PINN on [-1, 1]."""
    pinn = build_pinn(problem, config)
    params = pinn.init(jax.random.key(0))
    x = jnp.linspace(-1.0, 1.0, 41)
    u = [np.asarray(pinn.apply(params, jnp.full_like(x, t), x)) for t in (0.0, 0.3, 1.0)]
    return np.array([np.abs(v - sign * v[::-1]).max() for v in u])


def test_odd_symmetry_is_exact_and_refused_for_data_that_are_not_odd():
    assert _mirror_gaps(BURGERS, TINY.updated({"network.odd_symmetric": True}), -1.0).max() < 1e-6  # float32
    assert _mirror_gaps(BURGERS, TINY, -1.0)[1:].min() > 1e-3  # not built in without the option
    with pytest.raises(ValueError, match="odd_symmetric needs initial data odd"):
        build_pinn(HEAT, TINY.updated({"network.odd_symmetric": True}))  # even about 1/2


def test_even_symmetry_is_exact_and_both_symmetries_need_a_symmetric_equation():
    from pdes.problems import ALLEN_CAHN, KDV, PDE, PERIODIC, Boundary

    assert _mirror_gaps(ALLEN_CAHN, TINY.updated({"network.even_symmetric": True}), 1.0).max() < 1e-6
    assert _mirror_gaps(ALLEN_CAHN, TINY, 1.0)[1:].min() > 1e-3  # u0 is even, u0 + t N is not
    # KdV's u0 = cos(pi x) is even, but u_x and u_xxx change sign under x -> -x
    with pytest.raises(ValueError, match="even_symmetric needs an equation invariant .* kdv's residual is not"):
        build_pinn(KDV, TINY.updated({"network.even_symmetric": True}))
    # advection u_t + u_x = 0 of odd data: the data are odd, the equation is not invariant under (x, u) -> (-x, -u)
    advection = PDE("advection", lambda u_t, u_x: u_t + u_x, x_min=-1.0, x_max=1.0, t_end=1.0,
                    initial=lambda x: jnp.sin(jnp.pi * x), boundary=PERIODIC)
    with pytest.raises(ValueError, match="odd_symmetric needs an equation invariant"):
        build_pinn(advection, TINY.updated({"network.odd_symmetric": True}))
    # zero initial data (even and odd) under boundary values that are not mirror images
    lifted = PDE("lifted", lambda u_t, u_xx: u_t - u_xx, x_min=-1.0, x_max=1.0, t_end=1.0,
                 initial=lambda x: 0.0 * x, boundary=Boundary("dirichlet", 0.0, lambda t: t))
    for kind in ("odd", "even"):
        with pytest.raises(ValueError, match=f"{kind}_symmetric needs dirichlet boundary values that are mirror"):
            build_pinn(lifted, TINY.updated({f"network.{kind}_symmetric": True}))
    with pytest.raises(ValueError, match="exclude each other"):
        TINY.updated({"network.odd_symmetric": True, "network.even_symmetric": True})


# ------------------------------------------------------------------ configs and bad input
def test_sobol_points_in_both_phases_are_a_shifted_sobol_set():
    # the quasi-Newton phase draws qn.n_res points: a Sobol set of that size too (it fell back to
    # uniform points when qn.n_res differed from sampling.n_res)
    from pdes.pinn.sampling import sobol_base

    pinn = build_pinn(BURGERS, TINY.updated({"sampling.sampler": "sobol", "sampling.n_res": 64, "qn.n_res": 128}))
    params = pinn.init(jax.random.key(0))
    for n, batch in ((64, pinn.sample(jax.random.key(1), 64, jnp.float32)),
                     (128, pinn.qn_batch(params, jax.random.key(2)))):
        pts = np.stack([np.asarray(batch["t"]) / BURGERS.t_end,
                        (np.asarray(batch["x"]) - BURGERS.x_min) / BURGERS.length], axis=1)
        shift = np.mod(pts - sobol_base(n), 1.0)  # one Cranley-Patterson shift for every point
        shift = np.where(shift > 1 - 1e-5, shift - 1.0, shift)
        assert pts.shape == (n, 2) and np.ptp(shift, axis=0).max() < 1e-5, np.ptp(shift, axis=0)


@pytest.mark.parametrize("change", [{"network.width": 0}, {"network.depth": -1}, {"adam.steps": 0},
                                    {"network.arch": "cnn"}, {"adam.lr": -1.0}, {"sampling.sampler": "grid"},
                                    {"network.dropout": 1.0}, {"run.max_wall_s": -1.0}, {"qn.method": "sr1"}])
def test_invalid_config_values_raise_value_error_naming_the_field(change):
    key = next(iter(change))
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        TINY.updated(change)


def test_config_sections_round_trip_through_a_dict_and_name_unknown_keys():
    cfg = get_config("burgers", "accurate")
    assert PINNConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.get("qn.steps") == cfg.qn.steps == 12000
    with pytest.raises(ValueError, match="qn.stepz"):
        cfg.updated({"qn.stepz": 3})


def test_runs_that_differ_only_in_run_lengths_share_their_compiled_programs():
    a = TINY
    b = TINY.updated({"adam.steps": 999, "qn.steps": 7, "run.log_every": 3, "run.max_wall_s": 5.0})
    assert program_config(a) == program_config(b)
    assert build_pinn(HEAT, a).program_key == build_pinn(HEAT, b).program_key
    assert build_pinn(HEAT, a).program_key != build_pinn(HEAT, a.updated({"network.width": 8})).program_key
    programs = Programs()
    made = []
    for cfg in (a, b):
        programs.get(build_pinn(HEAT, cfg), "adam", lambda: made.append(1) or (lambda: None))
    assert made == [1] and len(programs) == 1


def test_unknown_preset_and_problem_are_rejected():
    with pytest.raises(ValueError, match="unknown preset 'quick'"):
        get_config("heat", "quick")
    with pytest.raises(ValueError, match="'heat2d'"):
        get_config("heat2d", "fast")


def test_overrides_convert_by_field_type_and_reject_unknown_keys():
    got = parse_overrides({"network.width": "128", "loss.causal": "false", "adam.lr": "1e-4",
                           "sampling.sampler": "sobol", "qn": {"steps": "30"}})
    assert got == {"network.width": 128, "loss.causal": False, "adam.lr": 1e-4, "sampling.sampler": "sobol",
                   "qn.steps": 30}
    with pytest.raises(ValueError, match="bogus, network.widht"):
        parse_overrides({"network.widht": "3", "bogus": "1"})
    with pytest.raises(ValueError, match="network.width must be an integer"):
        parse_overrides({"network.width": "wide"})


def test_flat_keys_of_the_previous_release_still_work_with_a_warning():
    with pytest.warns(FutureWarning, match="'qn_steps' .* use 'qn.steps'"):
        got = parse_overrides({"qn_steps": "5"})
    assert got == {"qn.steps": 5}


def test_toml_sections_override_and_unknown_toml_keys_are_named(tmp_path):
    good = tmp_path / "run.toml"
    good.write_text("[network]\nwidth = 24\n[loss]\ncausal = true\n[adam]\nlr = 0.002\n")
    cfg = apply_overrides(get_config("heat", "fast"), config_file=good, overrides={"network.depth": "2"}, steps=7)
    assert (cfg.network.width, cfg.loss.causal, cfg.adam.lr, cfg.network.depth, cfg.adam.steps) == (24, True, 0.002,
                                                                                                    2, 7)
    bad = tmp_path / "bad.toml"
    bad.write_text("[adam]\nlearning_rate = 0.1\n")
    with pytest.raises(ValueError, match="adam.learning_rate"):
        load_overrides(bad)
    (tmp_path / "table.toml").write_text("[optimizer]\nlr = 0.1\n")
    with pytest.raises(ValueError, match="optimizer"):
        load_overrides(tmp_path / "table.toml")
    with pytest.raises(FileNotFoundError):
        load_overrides(tmp_path / "missing.toml")


def test_solve_pinn_rejects_zero_steps_before_training():
    with pytest.raises(ValueError, match="steps"):
        solve_pinn(HEAT, steps=0, progress=False)


# ------------------------------------------------------------------ training
def test_short_run_decreases_the_error_and_returns_the_solution_dataset():
    ds = solve_pinn(HEAT, nx=64, nt=20, config=TINY.updated({"adam.steps": 300, "qn.steps": 40, "qn.n_res": 256,
                                                             "run.log_every": 20, "qn.resample_every": 40,
                                                             "qn.dtype": "float32"}),
                    progress=False)
    err = ds["history_rel_l2"].values
    assert ds["u"].shape == (20, 64) and "u_true" in ds
    assert ds.attrs["method"] == "pinn" and ds.attrs["stopped"] == "completed"
    assert list(ds["step"].values[[0, -1]]) == [20, 340]
    assert set(ds["history_phase"].values) == {0.0, 1.0}
    # the untrained hard-constrained network already has the initial data (error ~ 0.3 here);
    # 300 Adam + 40 quasi-Newton steps cut it several-fold
    assert err[-1] < 0.3 * err[0]
    assert ds.attrs["rel_l2"] == pytest.approx(err[-1], rel=1e-6)
    for name in ("history_loss", "history_loss_res", "history_weight_res", "history_wall_time_s"):
        assert ds[name].dims == ("step",)


def test_ensemble_members_train_in_one_vmapped_program_like_single_members():
    pinn = build_pinn(HEAT, TINY)
    keys = jax.random.split(jax.random.key(3), 2)
    states = jax.vmap(lambda k: pinn.init_train_state(pinn.init(k), k))(keys)
    states, metrics = jax.jit(jax.vmap(lambda s: pinn.adam_chunk(s, 20)))(states)
    single, m0 = jax.jit(lambda s: pinn.adam_chunk(s, 20))(pinn.init_train_state(pinn.init(keys[0]), keys[0]))
    assert metrics["loss"].shape == (2,)
    np.testing.assert_allclose(metrics["loss"][0], m0["loss"], rtol=1e-4)  # same math, batched: float32 rounding


class _PoisonAfter:
    """A PINN whose Adam chunks turn the parameters into NaN from step ``after`` on."""

    def __init__(self, pinn, after):
        self._pinn, self._after = pinn, after

    def __getattr__(self, name):
        return getattr(self._pinn, name)

    def adam_chunk(self, state, n_steps, obs=None):
        new, metrics = self._pinn.adam_chunk(state, n_steps, obs)
        bad = new.step > self._after
        params = jax.tree.map(lambda a: jnp.where(bad, jnp.nan, a), new.params)
        return new._replace(params=params), {**metrics, "loss": jnp.where(bad, jnp.nan, metrics["loss"])}


def test_nan_guard_stops_keeps_the_last_good_state_and_checkpoints_it(tmp_path, capsys):
    from plumbing.checkpoint import latest_step, read_meta

    pinn = build_pinn(HEAT, TINY.updated({"adam.steps": 400}))
    t, x = np.linspace(0, 1, 11), np.linspace(0, 1, 17)
    # a cache of its own: the poisoned chunk must not be served the clean program of the same key
    res = train(_PoisonAfter(pinn, 200), t_grid=t, x_grid=x, u_ref=None, progress=False, checkpoint_dir=tmp_path,
                programs=Programs())
    assert res.steps_done == 200 and "non-finite loss" in res.stopped
    assert "NaN guard" in capsys.readouterr().err
    assert all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree.leaves(res.params))
    # the good state is the one after 200 steps: a clean 200-step run reproduces it
    clean = train(build_pinn(HEAT, TINY.updated({"adam.steps": 200})), t_grid=t, x_grid=x, u_ref=None,
                  progress=False)
    for a, b in zip(jax.tree.leaves(res.params), jax.tree.leaves(clean.params), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)  # same keys and steps: rounding only
    assert latest_step(tmp_path) == 200 and read_meta(tmp_path)["phase"] == "adam"


def test_resume_continues_from_the_checkpoint_and_rejects_another_problem(tmp_path):
    cfg = TINY.updated({"adam.steps": 200})
    first = solve_pinn(HEAT, nx=32, nt=10, config=cfg, checkpoint_dir=tmp_path, progress=False)
    assert first.attrs["steps_done"] == 200
    more = solve_pinn(HEAT, nx=32, nt=10, config=cfg.updated({"adam.steps": 300}), resume=tmp_path, progress=False)
    assert more.attrs["steps_done"] == 300
    assert list(more["step"].values) == [100, 200, 300]  # history carried over from the checkpoint
    np.testing.assert_array_equal(more["history_rel_l2"].values[:2], first["history_rel_l2"].values)
    # one uninterrupted 300-step run gives the same parameters (same keys, same steps): float32 rounding only
    straight = solve_pinn(HEAT, nx=32, nt=10, config=cfg.updated({"adam.steps": 300}), progress=False)
    np.testing.assert_allclose(more["u"].values, straight["u"].values, atol=1e-5)
    with pytest.raises(ValueError, match="checkpoint .* is of another run: its problem is .*heat"):
        solve_pinn(Burgers(nu=0.02), nx=32, nt=10, config=cfg, resume=tmp_path, progress=False)
    with pytest.raises(ValueError, match="its network is"):
        solve_pinn(HEAT, nx=32, nt=10, config=cfg.updated({"network.width": 8}), resume=tmp_path, progress=False)
    with pytest.raises(FileNotFoundError):
        solve_pinn(HEAT, config=cfg, resume=tmp_path / "nowhere", progress=False)


def test_time_budget_stops_at_a_chunk_boundary_and_resume_goes_on(tmp_path, capsys):
    # a budget far below one chunk's time: training ends after the first chunk of each run
    cfg = TINY.updated({"adam.steps": 300, "run.max_wall_s": 1e-9})
    first = solve_pinn(HEAT, nx=32, nt=10, config=cfg, checkpoint_dir=tmp_path, progress=False)
    assert first.attrs["steps_done"] == 100 and first.attrs["stopped"].startswith("time budget")
    assert "time budget" in capsys.readouterr().err
    more = solve_pinn(HEAT, nx=32, nt=10, config=cfg.updated({"run.max_wall_s": 0.0}), resume=tmp_path,
                      progress=False)
    assert more.attrs["steps_done"] == 300 and more.attrs["stopped"] == "completed"


# ------------------------------------------------------------------ command line
@pytest.mark.parametrize("args, named", [
    (["--set", "network.widht=3"], "widht"),
    (["--preset", "quick"], "quick"),
    (["--set", "network.width=0"], "width"),
    (["--steps", "0"], "steps"),
])
def test_cli_bad_pinn_input_exits_2_with_one_line(args, named, capsys):
    from pdes.__main__ import main

    code = main(["solve", "heat", "--method", "pinn", "--no-progress", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and named in err


def test_cli_rejects_a_toml_config_with_unknown_keys(tmp_path, capsys):
    from pdes.__main__ import main

    cfg = tmp_path / "bad.toml"
    cfg.write_text("[network]\nwidth = 8\n[adam]\nlearning_rate = 0.1\n")
    assert main(["solve", "heat", "--method", "pinn", "--config", str(cfg), "--no-progress"]) == 2
    assert "learning_rate" in capsys.readouterr().err


def test_bfgs_restart_on_new_points_keeps_the_inverse_hessian():
    import optax

    from pdes.pinn.optim import bfgs, keep_curvature

    a = jnp.array([[3.0, 0.5], [0.5, 1.0]])

    def f(p):
        return 0.5 * p["w"] @ a @ p["w"]

    tx = bfgs()
    params = {"w": jnp.array([1.0, -2.0])}
    state = tx.init(params)
    vg = optax.value_and_grad_from_state(f)
    for _ in range(4):
        value, grad = vg(params, state=state)
        updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=f)
        params = optax.apply_updates(params, updates)
    h_old = state[0].h
    assert not np.allclose(h_old, np.eye(2))
    restarted = keep_curvature(state, tx.init(params))
    np.testing.assert_allclose(restarted[0].h, h_old)
    # the first step after the restart follows -H g (no short gradient step, no stale pair)
    grad = jax.grad(f)(params)
    d, _ = tx.update(grad, restarted, params, value=f(params), grad=grad, value_fn=f)
    direction = -(h_old @ grad["w"])
    cos = float(d["w"] @ direction / (jnp.linalg.norm(d["w"]) * jnp.linalg.norm(direction)))
    assert cos > 1 - 1e-6
    # a state that never stepped restarts cold
    cold = keep_curvature(tx.init(params), tx.init(params))
    np.testing.assert_allclose(cold[0].h, np.eye(2))
    assert int(cold[0].count) == 0


def _minimize(rule: str, f, params, steps: int):
    import optax

    from pdes.pinn.optim import bfgs

    tx = bfgs(update_rule=rule)
    vg = optax.value_and_grad_from_state(f)

    @jax.jit
    def step(p, st):
        value, grad = vg(p, state=st)
        updates, st = tx.update(grad, st, p, value=value, grad=grad, value_fn=f)
        return optax.apply_updates(p, updates), st

    state = tx.init(params)
    for _ in range(steps):
        params, state = step(params, state)
    return params, state


def test_ssbroyden_solves_a_quadratic_and_rosenbrock():
    """The self-scaled Broyden update keeps H symmetric positive definite, converges on an
    ill-conditioned quadratic (condition number 1e4) and on the 20-dimensional Rosenbrock
    function, where plain BFGS with the same line search and steps is far from the minimum."""
    with jax.enable_x64(True):
        q = jnp.diag(jnp.logspace(0.0, 4.0, 12, dtype=jnp.float64))

        def quad(p):
            return 0.5 * p["w"] @ q @ p["w"]

        p, state = _minimize("ssbroyden", quad, {"w": jnp.ones(12, jnp.float64)}, 200)
        assert float(quad(p)) < 1e-16
        h = np.asarray(state[0].h)
        np.testing.assert_allclose(h, h.T, rtol=1e-8, atol=1e-12)
        assert np.linalg.eigvalsh(0.5 * (h + h.T)).min() > 0

        def rosen(p):
            x = p["x"]
            return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

        x0 = {"x": jnp.full(20, -1.2, jnp.float64)}
        p_ss, _ = _minimize("ssbroyden", rosen, x0, 300)
        p_bfgs, _ = _minimize("bfgs", rosen, x0, 300)
        assert float(rosen(p_ss)) < 1e-8
        np.testing.assert_allclose(p_ss["x"], np.ones(20), atol=1e-4)
        assert float(rosen(p_bfgs)) > 1e3 * float(rosen(p_ss))


@pytest.mark.parametrize("rule", ["bfgs", "ssbroyden"])
@pytest.mark.parametrize("count", [1, 5])
def test_one_pass_update_matches_the_explicit_formulas(rule, count):
    """The update computes H+ in one fused pass and d = -H+ g from H g and dot products; both
    equal the textbook formulas (BFGS: Nocedal & Wright 6.17 with H0 = s.y/y.y I at the first
    update; SSBroyden: Urban, Stefanou & Pons 2025) applied to the dense matrices."""
    from pdes.pinn.optim import BFGSState, scale_by_bfgs

    n = 7
    rng = np.random.default_rng(count)
    with jax.enable_x64(True):
        a = rng.normal(size=(n, n))
        h0 = a @ a.T + n * np.eye(n) if count > 1 else np.eye(n)
        prev_x, prev_g = rng.normal(size=n), rng.normal(size=n)
        s = -0.3 * h0 @ prev_g  # the last step along d = -H g_prev
        x = prev_x + s
        y = (np.eye(n) + 0.2 * np.diag(rng.uniform(size=n))) @ s  # positive curvature
        g = prev_g + y
        state = BFGSState(jnp.asarray(h0), jnp.asarray(prev_x), jnp.asarray(prev_g), jnp.asarray(count, jnp.int32))
        d, new = scale_by_bfgs(rule).update(jnp.asarray(g), state, jnp.asarray(x))
        sy = s @ y
        if rule == "bfgs":
            h = (sy / (y @ y)) * np.eye(n) if count == 1 else h0
            rho = 1.0 / sy
            v = np.eye(n) - rho * np.outer(y, s)
            want = v.T @ h @ v + rho * np.outer(s, s)
        else:
            hy, yhy = h0 @ y, y @ h0 @ y
            sbs = s @ np.linalg.solve(h0, s)
            hk, bk = yhy / sy, sbs / sy
            ak = bk * hk - 1.0
            rho_m = min(1.0, hk * (1.0 - np.sqrt(ak / (1.0 + ak))))
            theta = max((rho_m - 1.0) / ak, min(1.0 / rho_m, (1.0 - bk) / bk))
            sigma = 1.0 + theta * ak
            sigma_n = abs(sigma) ** (1.0 / (1.0 - n))
            rb = min(1.0, 1.0 / bk)
            tau = min(rb * sigma_n, sigma) if theta <= 0 else rb * min(sigma_n, 1.0 / theta)
            tau = hk / sigma if count == 1 else tau
            phi = (1.0 - theta) / (1.0 + ak * theta)
            v = s / sy - hy / yhy
            want = (h0 - np.outer(hy, hy) / yhy + phi * yhy * np.outer(v, v)) / tau + np.outer(s, s) / sy
        np.testing.assert_allclose(np.asarray(new.h), want, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(np.asarray(d), -want @ g, rtol=1e-10, atol=1e-12)


def test_unknown_update_rule_is_refused():
    from pdes.pinn.optim import scale_by_bfgs

    with pytest.raises(ValueError, match="update_rule"):
        scale_by_bfgs("sr1")


def test_quasi_newton_placeholders_match_what_a_chunk_returns():
    """init_qn's optimizer state and batch have the types qn_chunk returns (no weak types), so
    the second quasi-Newton chunk reuses the first one's compiled program."""
    cfg = get_config("burgers", "fast").updated({"network.width": 8, "network.depth": 2, "qn.n_res": 64,
                                                 "sampling.n_res": 64, "sampling.rad_pool": 2})
    pinn = build_pinn(BURGERS, cfg)
    with jax.enable_x64(True):
        params = pinn.init(jax.random.key(0))
        opt_state, batch = pinn.init_qn(params)
        out = pinn.qn_chunk(params, opt_state, pinn.init_weights(jnp.float64), batch, jax.random.key(1), jnp.asarray(True), 2)
    before = jax.tree.map(lambda a: (a.shape, a.dtype, a.weak_type), (opt_state, batch))
    after = jax.tree.map(lambda a: (a.shape, a.dtype, a.weak_type), (out[1], out[2]))
    assert before == after
