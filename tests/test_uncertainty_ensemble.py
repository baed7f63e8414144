"""Deep ensembles, MC dropout and noisy data: one vmapped program, mixture moments, truth."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pdes.exact import exact_solution
from pdes.pinn.configs import get_config
from pdes.pinn.core import build_pinn
from pdes.problems import HEAT
from pdes.solution import read_dataset, rel_l2
from uncertainty.__main__ import main
from uncertainty.ensemble import mixture_moments

# a small, quick PINN: the tests check plumbing and truth, not accuracy
TINY = get_config("heat", "fast").updated({"network.width": 16, "network.depth": 2, "sampling.n_res": 128,
                                            "adam.steps": 60, "run.log_every": 30, "qn.steps": 0,
                                            "network.dtype": "float32"})


def test_mixture_variance_is_mean_variance_plus_variance_of_means():
    # members N(0, 1) and N(2, 3): mean 1; mean variance 2; variance of means ((0-1)^2 + (2-1)^2)/2 = 1
    mean, var = mixture_moments(np.array([[0.0], [2.0]]), np.array([[1.0], [3.0]]))
    assert mean[0] == pytest.approx(1.0) and var[0] == pytest.approx(3.0)


def test_mixture_moments_match_sampling_the_mixture():
    rng = np.random.default_rng(0)
    mus, sds = np.array([-1.0, 0.5, 3.0]), np.array([0.5, 1.0, 0.2])
    comp = rng.integers(0, 3, 400_000)
    draws = rng.normal(mus[comp], sds[comp])
    mean, var = mixture_moments(mus[:, None], (sds**2)[:, None])
    # 400k draws: standard errors ~0.003 (mean) and ~0.01 (variance ~3.4); 5 sigma
    assert draws.mean() == pytest.approx(mean[0], abs=0.015)
    assert draws.var() == pytest.approx(var[0], abs=0.05)


def test_vmapped_members_train_exactly_like_separate_models():
    # one compiled program over M stacked members == each member's own chunk (same keys)
    pinn = build_pinn(HEAT, TINY)
    keys = jax.random.split(jax.random.key(0), 3)
    states = jax.vmap(lambda k: pinn.init_train_state(pinn.init(k), k))(keys)
    together, _ = jax.jit(jax.vmap(lambda s: pinn.adam_chunk(s, 5)))(states)
    alone_fn = jax.jit(lambda s: pinn.adam_chunk(s, 5))  # compiled once, run per member
    for i in range(3):
        alone, _ = alone_fn(jax.tree.map(lambda a, i=i: a[i], states))
        for a, b in zip(jax.tree.leaves(alone.params), jax.tree.leaves(together.params), strict=True):
            # float32, identical arithmetic up to batched-matmul reassociation
            np.testing.assert_allclose(np.asarray(a), np.asarray(b)[i], rtol=2e-4, atol=2e-6)


def test_float64_config_trains_and_predicts_in_float64():
    from uncertainty.ensemble import predict_pinn_members, train_pinn_members

    cfg = TINY.updated({"network.dtype": "float64", "adam.steps": 10, "run.log_every": 10})
    fit = train_pinn_members(HEAT, cfg, members=2, key=jax.random.key(0), progress=False)
    assert {a.dtype for a in jax.tree.leaves(fit.params)} == {np.dtype("float64")}
    t, x = np.linspace(0, 1, 3), np.linspace(0, 1, 4)
    u = predict_pinn_members(fit.model, fit.params, t, x)
    assert u.shape == (2, 3, 4) and np.all(np.isfinite(u))


def test_bad_member_batch_is_refused_before_training():
    from uncertainty.ensemble import train_pinn_members

    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="member_batch must be a positive integer"):
            train_pinn_members(HEAT, TINY, members=2, key=jax.random.key(0), progress=False, member_batch=bad)


def test_float64_presets_run_every_pinn_method():
    """The PINN presets are float64: MC dropout draws and the noisy-data ensemble work with them."""
    from uncertainty.dropout import pinn_dropout_draws
    from uncertainty.ensemble import train_pinn_members
    from uncertainty.noisy import noisy_observations, noisy_pinn_ensemble

    cfg = TINY.updated({"network.dtype": "float64", "adam.steps": 10, "run.log_every": 10, "network.dropout": 0.2})
    fit = train_pinn_members(HEAT, cfg, members=1, key=jax.random.key(0), progress=False)
    params = jax.tree.map(lambda a: a[0], fit.params)
    draws = pinn_dropout_draws(fit.model, params, np.linspace(0, 1, 3), np.linspace(0, 1, 4), draws=2,
                               key=jax.random.key(1))
    assert draws.shape == (2, 3, 4) and np.all(np.isfinite(draws))
    obs = noisy_observations(HEAT, 16, 0.05, seed=0)
    noisy = noisy_pinn_ensemble(HEAT, cfg.updated({"network.dropout": 0.0}), obs, members=2,
                                key=jax.random.key(2), progress=False)
    assert {a.dtype for a in jax.tree.leaves(noisy.params)} == {np.dtype("float64")}


def test_heat_ensemble_report_is_computed_against_the_exact_solution(tmp_path):
    pred, rep = tmp_path / "pred.nc", tmp_path / "rep"
    args = [
        "run",
        "pinn",
        "heat",
        "--members",
        "3",
        "--steps",
        "60",
        "--nx",
        "24",
        "--nt",
        "12",
        "--no-progress",
    ]
    args += [
        "--set",
        "network.width=16",
        "--set",
        "network.depth=2",
        "--set",
        "sampling.n_res=128",
        "--set",
        "qn.steps=0",
        "--out",
        str(pred),
    ]
    assert main(args) == 0
    ds = read_dataset(pred)
    t, x = ds.t.values, ds.x.values
    truth = exact_solution(HEAT, t, x)
    np.testing.assert_allclose(ds.u_true.values, truth, rtol=0, atol=1e-14)  # the sine series itself
    assert ds.u_samples.shape == (3, 12, 24)
    # no observations: the bands are the raw spread, and the file says they are not calibrated
    assert ds.attrs["calibrated"] == 0 and "uncalibrated" in ds.attrs["calibration"]
    np.testing.assert_array_equal(ds.u_std.values, ds.u_std_raw.values)
    mean, var = mixture_moments(ds.u_samples.values)
    np.testing.assert_allclose(ds.u.values, mean, rtol=1e-12)
    assert np.all(ds.u_std.values >= np.sqrt(var))  # the floor only adds
    assert main(["report", str(pred), "--out", str(rep), "--no-figures"]) == 0
    data = json.loads((rep / "metrics.json").read_text())
    assert data["rel_l2"] == pytest.approx(rel_l2(mean, truth), rel=1e-9)
    z = np.abs(mean - truth) / ds.u_std.values
    assert data["coverage_95"] == pytest.approx(np.mean(z <= 1.959963984540054), abs=1e-12)


def test_mc_dropout_pinn_draws_are_whole_functions():
    from uncertainty.dropout import pinn_dropout_draws
    from uncertainty.ensemble import train_pinn_members

    cfg = TINY.updated({"network.dropout": 0.2, "adam.steps": 30})
    fit = train_pinn_members(HEAT, cfg, members=1, key=jax.random.key(1), progress=False)
    params = jax.tree.map(lambda a: a[0], fit.params)
    t, x = np.linspace(0, 1, 8), np.linspace(0, 1, 16)
    draws = pinn_dropout_draws(fit.model, params, t, x, draws=4, key=jax.random.key(2))
    assert draws.shape == (4, 8, 16)
    assert np.std(draws, axis=0).max() > 0  # the masks differ between draws
    # one mask per function: draw 0 evaluated on half the grid is the same function
    k0 = jax.random.split(jax.random.key(2), 4)[0]
    half = np.asarray(fit.model.predict_grid(params, t, x[:8], k0))
    np.testing.assert_allclose(half, draws[0][:, :8], rtol=1e-5, atol=1e-6)


def test_fno_channel_dropout_adapter_matches_the_model_without_a_key():
    from flax import nnx

    from operators.models import FNO, FNOConfig, functional
    from uncertainty.dropout import fno_apply_channel_dropout, fno_dropout_draws

    model = FNO(FNOConfig(modes=4, width=8, depth=2, proj_hidden=16, dropout=0.3), rngs=nnx.Rngs(0))
    model.set_normalization(0.1, 2.0, -0.2, 0.5)
    apply_c, params = functional(model)
    mine = fno_apply_channel_dropout(model)
    a = np.random.default_rng(0).normal(size=(3, 16)).astype(np.float32)
    np.testing.assert_allclose(
        np.asarray(jax.jit(mine)(params, a)), np.asarray(jax.jit(apply_c)(params, a)), rtol=1e-5, atol=1e-6
    )  # float32, the same operations
    draws = fno_dropout_draws(mine, params, a, draws=5, key=jax.random.key(0))
    assert draws.shape == (5, 3, 16) and np.std(draws, axis=0).max() > 0
    # one mask per function and channel, shared by the grid points (per-point masks otherwise)
    from operators.models import _dropout

    ones = jnp.ones((4, 16, 8))
    per_function = np.asarray(_dropout(ones, 0.5, jax.random.key(1), per_function=True))
    per_point = np.asarray(_dropout(ones, 0.5, jax.random.key(1)))
    assert (per_function == per_function[:, :1]).all() and not (per_function == per_function[:1]).all()
    assert not (per_point == per_point[:, :1]).all()


def test_noisy_observations_have_the_stated_noise():
    from uncertainty.noisy import noisy_observations

    obs = noisy_observations(HEAT, 400, 0.05, seed=0)
    exact = np.array([exact_solution(HEAT, [t], [x])[0, 0] for t, x in zip(obs.t, obs.x, strict=True)])
    # 400 draws of N(0, 0.05^2): the sample std is within 0.05 * (1 +- 0.035 * 4)
    assert np.std(obs.y - exact) == pytest.approx(0.05, rel=0.15)


def test_noisy_ensemble_with_gaussian_head_stores_both_uncertainties(tmp_path):
    pred = tmp_path / "noisy.nc"
    args = [
        "run",
        "pinn",
        "heat",
        "--members",
        "2",
        "--steps",
        "60",
        "--nx",
        "16",
        "--nt",
        "8",
        "--no-progress",
    ]
    args += ["--noise", "0.05", "--n-obs", "100", "--gaussian-head", "--set", "network.width=16", "--set",
             "network.depth=2"]
    args += ["--set", "sampling.n_res=128", "--out", str(pred)]
    assert main(args) == 0
    ds = read_dataset(pred)
    assert {"u_std_aleatoric", "u_std_total"} <= set(ds.data_vars)
    assert np.all(ds.u_std_total.values >= ds.u_std_raw.values)  # total = epistemic + aleatoric
    # 100 // 4 = 25 observations held out of training calibrate the epistemic std by one factor c
    info = json.loads(ds.attrs["calibration"])
    assert ds.attrs["calibrated"] == 1 and info["n_observations"] == 25 and info["noise_std"] == 0.05
    floor = ds.attrs["u_std_floor"]
    np.testing.assert_allclose(ds.u_std.values, np.sqrt((info["scale"] * ds.u_std_raw.values) ** 2 + floor**2),
                               rtol=1e-12)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--members", "1"], "--members must be an integer >= 2"),
        (["--method", "mc_dropout", "--dropout", "0"], "--dropout must be > 0"),
        (["--dropout", "1.5"], "--dropout must be in [0, 1)"),
        (["--gaussian-head"], "--gaussian-head needs"),
        (["--set", "network.width=-3"], "width"),
        (["--member-batch", "0"], "--member-batch must be a positive integer, got 0"),
    ],
)
def test_bad_run_options_exit_2_with_one_line(tmp_path, capsys, extra, message):
    args = ["run", "pinn", "heat", "--steps", "10", "--no-progress", "--out", str(tmp_path / "p.nc"), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("uncertainty: error: ") and err.count("\n") == 1
    assert message in err
    assert not (tmp_path / "p.nc").exists()


def test_output_must_be_netcdf(tmp_path, capsys):
    assert main(["run", "pinn", "--out", str(tmp_path / "p.txt")]) == 2
    assert ".nc" in capsys.readouterr().err


SHARD_SCRIPT = """
import jax, numpy as np
from operators.models import FNOConfig
from operators.train import OperatorData, TrainConfig
from uncertainty.ensemble import member_mesh, train_fno_members
assert len(jax.devices()) == 2
rng = np.random.default_rng(0)
a = rng.normal(size=(24, 16)).astype(np.float32)
data = OperatorData(a[:16], 2 * a[:16], a[16:], 2 * a[16:])
mcfg, tcfg = FNOConfig(modes=4, width=8, depth=1, proj_hidden=8), TrainConfig(epochs=2, batch_size=8)
fits = [train_fno_members(data, mcfg, tcfg, members=2, key=jax.random.key(0), progress=False, shard=s)
        for s in (False, True)]
leaf = jax.tree.leaves(fits[1].params)[0]
print(len(leaf.sharding.device_set), member_mesh(2) is not None)
for x, y in zip(jax.tree.leaves(fits[0].params), jax.tree.leaves(fits[1].params)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)
# PINN quasi-Newton members: all vmapped on one device == one at a time, each device mapping over
# its own members (member_batch only schedules the members' steps, sharding only places them)
from pdes.pinn.configs import get_config
from pdes.problems import HEAT
from uncertainty.ensemble import train_pinn_members
cfg = get_config("heat", "fast").updated({"network.width": 8, "network.depth": 2, "sampling.n_res": 64,
                                          "adam.steps": 10, "run.log_every": 10, "qn.steps": 20, "qn.n_res": 64})
pinns = [train_pinn_members(HEAT, cfg, members=4, key=jax.random.key(0), progress=False, shard=s, member_batch=b)
         for s, b in ((False, 4), (True, 1))]
assert len(jax.tree.leaves(pinns[1].params)[0].sharding.device_set) == 2
# float64: batched and per-member matmuls round differently (~1e-16), 30 steps carry it to ~1e-7
for x, y in zip(jax.tree.leaves(pinns[0].params), jax.tree.leaves(pinns[1].params)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-9)
print("same")
"""


@pytest.mark.slow  # a fresh interpreter with 2 host devices: imports and compiles again
def test_members_sharded_over_two_cpu_devices_train_like_unsharded():
    import os
    import subprocess
    import sys

    flags = f"--xla_force_host_platform_device_count=2 {os.environ.get('XLA_FLAGS', '')}"  # and the suite's thread flags
    env = dict(os.environ, XLA_FLAGS=flags.strip(), JAX_PLATFORMS="cpu")
    out = subprocess.run(
        [sys.executable, "-c", SHARD_SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["2", "True", "same"]  # members on 2 devices; same numbers


def test_fno_members_resume_from_a_checkpoint_follows_the_uninterrupted_run(tmp_path):
    """Members trained 2 epochs with checkpoints, then resumed to 4, equal 4 uninterrupted epochs;
    a checkpoint of another ensemble (members, seed) is refused in one line before training."""
    from operators.models import FNOConfig
    from operators.train import OperatorData, TrainConfig
    from uncertainty.ensemble import train_fno_members

    rng = np.random.default_rng(0)
    a = rng.normal(size=(24, 16)).astype(np.float32)
    data = OperatorData(a[:16], 2 * a[:16], a[16:], 2 * a[16:])
    mcfg = FNOConfig(modes=4, width=8, depth=1, proj_hidden=8)

    def fit(epochs, **kw):
        # a constant learning rate: the schedule does not depend on the epochs asked for
        tcfg = TrainConfig(epochs=epochs, batch_size=8, checkpoint_every=2, schedule="constant", warmup_epochs=0)
        return train_fno_members(data, mcfg, tcfg,
                                 members=kw.pop("members", 2), key=jax.random.key(kw.pop("seed", 0)),
                                 progress=False, **kw)

    whole = fit(4)
    fit(2, checkpoint_dir=tmp_path / "ck")
    resumed = fit(4, resume=tmp_path / "ck", checkpoint_dir=tmp_path / "ck")
    for x, y in zip(jax.tree.leaves(whole.params), jax.tree.leaves(resumed.params), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.array(resumed.history), np.array(whole.history), rtol=1e-6)
    for other in ({"members": 3}, {"seed": 1}):
        with pytest.raises(ValueError, match="checkpoint") as err:
            fit(4, resume=tmp_path / "ck", **other)
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="nothing to resume"):
        fit(4, resume=tmp_path / "ck")
