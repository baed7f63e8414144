"""Tests of operators: spectral convolution, resolution independence, data, training, CLI."""

from __future__ import annotations

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from flax import nnx

from operators import FNO, FNOConfig, TrainConfig, functional, sample_grf, spectral_conv, train_fno
from operators.__main__ import main
from operators.checkpoint import load_model
from operators.data import GenerateConfig, generate, generate_arrays
from operators.grf import grf_eigenvalues
from operators.navier_stokes import fno_forcing, solve_navier_stokes
from pdes.solution import read_dataset, write_dataset

TINY = FNOConfig(modes=4, width=8, depth=2, proj_hidden=16)


def explicit_spectral_conv(x: np.ndarray, w: np.ndarray, modes: int) -> np.ndarray:
    """The Fourier layer written out in float64 with explicit DFT sums (no FFT):
    X_k = sum_j x_j e^{-2 pi i k.j/n}, Y_k = sum_c X_kc W_cdk over the kept k, and
    y_j = 1/N sum_k c_k Re(Y_k e^{2 pi i k.j/n}) with c_k = 1 on the last axis' k = 0, else 2."""
    spatial = x.shape[1:-1]
    grids = np.meshgrid(*[np.arange(n) for n in spatial], indexing="ij")
    if len(spatial) == 1:
        kept = [((k,), (k,)) for k in range(modes)]  # (frequency, weight index)
    else:
        rows = list(range(modes)) + list(range(-(modes - 1), 0))
        kept = [((k1, k2), (r, k2)) for r, k1 in enumerate(rows) for k2 in range(modes)]
    y = np.zeros((*x.shape[:-1], w.shape[1]))
    for k, idx in kept:
        phase = sum(2 * np.pi * ki * g / n for ki, g, n in zip(k, grids, spatial, strict=True))
        xk = np.tensordot(np.moveaxis(x, -1, 1), np.exp(-1j * phase), axes=len(spatial))  # (b, c)
        yk = xk @ w[(slice(None), slice(None), *idx)]
        c = 1.0 if k[-1] == 0 else 2.0
        y += c * np.real(yk[:, *([None] * len(spatial)), :] * np.exp(1j * phase)[None, ..., None])
    return y / np.prod(spatial)


@pytest.mark.parametrize("shape,modes", [((2, 24, 3), 5), ((2, 12, 10, 3), 4)])
def test_spectral_conv_matches_explicit_fourier_sums(shape, modes):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    dim = len(shape) - 2
    wshape = (3, 2, modes) if dim == 1 else (3, 2, 2 * modes - 1, modes)
    w = rng.standard_normal(wshape) + 1j * rng.standard_normal(wshape)
    got = spectral_conv(jnp.asarray(x, jnp.float32), jnp.asarray(w.real, jnp.float32),
                        jnp.asarray(w.imag, jnp.float32), modes)
    want = explicit_spectral_conv(x, w, modes)
    # float32 sums of ~n*c terms of size O(1): rounding ~1e-7 * sqrt(terms) * |w|, so 1e-5 of the scale.
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-5 * np.abs(want).max())


@pytest.fixture(scope="module")
def tiny():
    """A small FNO, its pure apply (jitted) and params: shared so each shape compiles once."""
    model = FNO(dataclasses.replace(TINY, width=16, dropout=0.5), rngs=nnx.Rngs(1))
    apply, params = functional(model)
    return model, jax.jit(apply), params


def test_fno_rejects_more_modes_than_the_grid_allows(tiny):
    _, apply, params = tiny
    with pytest.raises(ValueError, match="modes=4 is more than a grid of 6 points"):
        apply(params, jnp.zeros((1, 6)))


def test_fno_output_is_the_same_function_at_two_resolutions(tiny):
    # A band-limited input (frequencies 1..3, below every grid's Nyquist) sampled on 64 and
    # 256 points; the FNO's outputs on the shared points agree up to the aliasing of the
    # nonlinear layers' harmonics (and of the grid-coordinate channel's jump), which falls
    # with the grid: the 64-point output must match the 256-point one to 1% of its scale
    # while an unrelated (shifted) input differs by order one.
    _, apply, params = tiny

    def a(x):
        return np.sin(2 * np.pi * x) + 0.5 * np.cos(6 * np.pi * x) + 0.3 * np.sin(4 * np.pi * x + 1)

    x_c, x_f = np.arange(64) / 64, np.arange(256) / 256
    u_c = np.asarray(apply(params, jnp.asarray(np.stack([a(x_c), a(x_c + 0.25)]))))
    u_f = np.asarray(apply(params, jnp.asarray(a(x_f))[None]))[0][::4]
    scale = np.abs(u_f).max()
    assert np.abs(u_c[0] - u_f).max() < 1e-2 * scale
    assert np.abs(u_c[1] - u_f).max() > 1e-1 * scale


def test_functional_apply_equals_module_and_vmaps_over_stacked_params(tiny):
    model, apply, params = tiny
    a = jnp.asarray(sample_grf(np.random.default_rng(0), 3, 32), jnp.float32)
    via_module = nnx.jit(lambda m, x: m(x))(model, a)
    np.testing.assert_allclose(np.asarray(apply(params, a)), np.asarray(via_module), rtol=1e-6, atol=1e-7)
    stacked = jax.tree.map(lambda p: jnp.stack([p, 2 * p]), params)  # two "ensemble members"
    out = jax.jit(jax.vmap(apply, in_axes=(0, None)))(stacked, a)
    assert out.shape == (2, 3, 32)
    np.testing.assert_allclose(np.asarray(out[0]), np.asarray(via_module), rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.asarray(out[1]), np.asarray(out[0]))


@pytest.mark.parametrize("dim, n", [(1, 32), (2, 16)])
def test_without_coordinates_the_fno_commutes_with_periodic_shifts(dim, n):
    a = jnp.asarray(sample_grf(np.random.default_rng(1), 2, n, dim=dim), jnp.float32)
    axes = tuple(range(1, dim + 1))
    for coords in (False, True):
        model = FNO(FNOConfig(dim=dim, modes=5, width=8, depth=2, proj_hidden=8, coords=coords), rngs=nnx.Rngs(0))
        shifted = np.asarray(model(jnp.roll(a, 5, axis=axes)))
        rolled = np.roll(np.asarray(model(a)), 5, axis=axes)
        assert np.allclose(shifted, rolled, atol=1e-5) == (not coords)
    # checkpoints written before the field existed rebuild with the coordinates on
    old = {k: v for k, v in FNOConfig().to_dict().items() if k != "coords"}
    assert FNOConfig.from_dict(old).coords is True
    with pytest.raises(ValueError, match="coords"):
        FNOConfig(coords="no")


def test_identity_activation_makes_the_fno_an_affine_operator():
    a, b = (jnp.asarray(sample_grf(np.random.default_rng(s), 2, 32), jnp.float32) for s in (2, 3))
    for act, affine in (("identity", True), ("gelu", False)):
        model = FNO(FNOConfig(modes=5, width=8, depth=2, proj_hidden=8, activation=act), rngs=nnx.Rngs(0))
        lhs, rhs = model(a + b) + model(jnp.zeros_like(a)), model(a) + model(b)
        assert np.allclose(np.asarray(lhs), np.asarray(rhs), atol=1e-5) == affine
    with pytest.raises(ValueError, match="activation"):
        FNOConfig(activation="swish")


def test_dropout_is_off_without_a_key_and_random_with_one(tiny):
    _, apply, params = tiny
    a = jnp.ones((1, 16))
    np.testing.assert_array_equal(np.asarray(apply(params, a)), np.asarray(apply(params, a)))
    d1, d2 = apply(params, a, jax.random.key(1)), apply(params, a, jax.random.key(2))
    assert not np.allclose(np.asarray(d1), np.asarray(d2))


def test_grf_pointwise_variance_matches_the_sum_of_eigenvalues():
    # Var u(x) = sum_k lambda_k (Karhunen-Loeve). 4000 samples x 32 points: the estimate's
    # relative standard error is below 2%, so 8% is four standard errors.
    lam = grf_eigenvalues(32)
    u = sample_grf(np.random.default_rng(0), 4000, 32)
    assert u.var() == pytest.approx(lam.sum(), rel=0.08)
    assert abs(u.mean()) < 4 * math.sqrt(lam.sum() / 4000)  # the k = 0 mode is left out: mean zero


def test_generated_heat_data_is_the_exact_solution_with_splits(tmp_path):
    cfg = GenerateConfig(kind="heat", n_train=5, n_test=3, nx=32, fine_nx=32, chunk_size=3, seed=1)
    path = generate(cfg, tmp_path / "heat.nc", progress=False)
    ds = read_dataset(path)
    assert ds["a"].dims == ("sample", "x") and ds["a"].shape == (8, 32)
    assert list(ds["split"].values) == ["train"] * 5 + ["test"] * 3
    k = np.fft.rfftfreq(32, 1 / 32)
    exact = np.fft.irfft(np.fft.rfft(ds["a"].values) * np.exp(-0.1 * (2 * np.pi * k) ** 2 * 0.1), n=32)
    np.testing.assert_allclose(ds["u"].values, exact, atol=1e-13)  # float64 FFT round trip
    # The chunked file holds what operator_dataset + write_dataset would write.
    ref = generate_arrays(cfg)
    write_dataset(ref, tmp_path / "ref.nc")
    ref = read_dataset(tmp_path / "ref.nc")
    np.testing.assert_array_equal(ds["a"].values, ref["a"].values)
    assert set(ds.variables) == set(ref.variables) and set(ds.attrs) == set(ref.attrs)
    for v in ds.variables:
        assert ds[v].attrs == ref[v].attrs


def test_subsampled_grids_hold_the_same_functions():
    fine = generate_arrays(GenerateConfig(kind="heat2d", n_train=2, n_test=1, nx=32, fine_nx=64))
    coarse = generate_arrays(GenerateConfig(kind="heat2d", n_train=2, n_test=1, nx=16, fine_nx=64))
    assert fine["u"].dims == ("sample", "x", "y")
    np.testing.assert_array_equal(fine["u"].values[:, ::2, ::2], coarse["u"].values)


def test_navier_stokes_solver_matches_the_closed_form_of_a_single_forced_mode():
    # For w depending on x + y only, u . grad w = 0, so from w0 = 0 with the forcing on that
    # mode w(t) = f (1 - exp(-nu |k|^2 t)) / (nu |k|^2), |k|^2 = 8 pi^2: exact up to rounding.
    n, nu, t = 16, 1e-3, np.array([0.5, 2.0])
    w = solve_navier_stokes(np.zeros((1, n, n)), nu=nu, t_save=t)[0]
    lam = nu * 8 * np.pi**2
    exact = fno_forcing(n)[None] * ((1 - np.exp(-lam * t)) / lam)[:, None, None]
    np.testing.assert_allclose(w, exact, atol=1e-12)


def test_navier_stokes_snapshot_pairs_chain_in_time():
    ds = generate_arrays(GenerateConfig(kind="navier_stokes", n_train=1, n_test=1, nx=16, t_end=0.2, snapshots=2))
    a, u = ds["a"].values, ds["u"].values
    assert a.shape == (4, 16, 16) and list(ds["split"].values) == ["train"] * 2 + ["test"] * 2
    np.testing.assert_array_equal(a[1], u[0])  # w(t_1) is the target of pair 0 and the input of pair 1


def test_burgers_generation_shapes_and_viscous_decay():
    ds = generate_arrays(GenerateConfig(kind="burgers", n_train=2, n_test=1, nx=64, fine_nx=128))
    a, u = ds["a"].values, ds["u"].values
    assert a.shape == u.shape == (3, 64)
    # Viscosity only removes energy: ||u(1)|| < ||u(0)|| for every sample (L2 energy decays).
    assert np.all(np.linalg.norm(u, axis=1) < np.linalg.norm(a, axis=1))


@pytest.fixture(scope="module")
def heat_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("heat") / "heat.nc"
    generate(GenerateConfig(kind="heat", n_train=40, n_test=10, nx=32, fine_nx=64), path, progress=False)
    return path


def test_resume_after_an_interruption_reproduces_the_uninterrupted_run(heat_file, tmp_path):
    tcfg = TrainConfig(epochs=2, batch_size=10, checkpoint_every=1, lr=1e-3)
    full, hist_full = train_fno(heat_file, TINY, tcfg, progress=False)

    def stop_after_one(rec):
        if rec["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_fno(heat_file, TINY, tcfg, out=tmp_path / "m", callback=stop_after_one)
    resumed, hist = train_fno(heat_file, TINY, tcfg, out=tmp_path / "m", resume=True, progress=False)
    assert [h["epoch"] for h in hist] == [1, 2]
    assert hist[-1]["test_rel_l2"] < hist_full[0]["test_rel_l2"]
    a = jnp.asarray(read_dataset(heat_file)["a"].values[-10:], jnp.float32)
    # Same keys, same data order, same arithmetic: equal to float32 rounding of the restored state.
    np.testing.assert_allclose(np.asarray(resumed(a)), np.asarray(full(a)), rtol=1e-5, atol=1e-6)
    model, meta = load_model(tmp_path / "m")
    assert meta["epoch"] == 2 and model.config == TINY.resolved((32,), periodic=True)  # padding 0: periodic data
    np.testing.assert_array_equal(np.asarray(model(a)), np.asarray(resumed(a)))


def test_cli_train_evaluate_round_trip(heat_file, tmp_path, capsys):
    out = tmp_path / "model"
    assert main(["train", str(heat_file), "--out", str(out), "--epochs", "2", "--modes", "4", "--width", "8",
                 "--depth", "2", "--batch-size", "10", "--no-progress", "--json"]) == 0
    capsys.readouterr()
    pred = tmp_path / "pred.nc"
    assert main(["evaluate", str(out), str(heat_file), "--nx", "16", "32", "--out", str(pred), "--plot",
                 str(tmp_path / "p.png"), "--json"]) == 0
    import json

    res = json.loads(capsys.readouterr().out)
    assert [g["nx"] for g in res["grids"]] == [16, 32]
    ds = read_dataset(pred)
    assert {"a", "u", "u_true"} <= set(ds.data_vars) and ds["u"].shape == (10, 32)
    assert (tmp_path / "p.png").stat().st_size > 0
    # A 1D checkpoint on 2D data: one line, exit 2.
    d2 = tmp_path / "h2.nc"
    write_dataset(generate_arrays(GenerateConfig(kind="heat2d", n_train=2, n_test=2, nx=16, fine_nx=16)), d2)
    assert main(["evaluate", str(out), str(d2)]) == 2
    assert "is 1D but the data" in capsys.readouterr().err


def _bad_files(tmp_path):
    no_u = xr.Dataset({"a": (("sample", "x"), np.zeros((2, 8))), "b": (("sample", "x"), np.zeros((2, 8)))})
    two_grids = xr.Dataset({"a": (("sample", "x"), np.zeros((2, 8))), "u": (("sample", "x2"), np.zeros((2, 16)))})
    paths = {}
    for name, ds in (("no_u", no_u), ("two_grids", two_grids)):
        paths[name] = tmp_path / f"{name}.nc"
        ds.to_netcdf(paths[name], engine="h5netcdf")
    return paths


@pytest.mark.parametrize("case,message", [
    ("no_u", "has no variable 'u'"),
    ("two_grids", "on different grids"),
    ("too_many_modes", "modes=40 is more than a grid of 32 points"),
    ("missing_file", "no such file"),
    ("bad_nx", "nx=7 does not divide"),
    ("bad_kind_value", "n_train must be a non-negative integer"),
    ("resume_without_checkpoint", "no checkpoint"),
])
def test_cli_bad_inputs_exit_2_with_one_line(case, message, heat_file, tmp_path, capsys):
    bad = _bad_files(tmp_path)
    out = str(tmp_path / "m")
    argv = {
        "no_u": ["train", str(bad["no_u"]), "--out", out],
        "two_grids": ["train", str(bad["two_grids"]), "--out", out],
        "too_many_modes": ["train", str(heat_file), "--out", out, "--modes", "40"],
        "missing_file": ["train", str(tmp_path / "nope.nc"), "--out", out],
        "bad_nx": ["train", str(heat_file), "--out", out, "--nx", "7"],
        "bad_kind_value": ["generate", "heat", "--n-train", "-1", "--out", str(tmp_path / "x.nc")],
        "resume_without_checkpoint": ["train", str(heat_file), "--out", out, "--resume"],
    }[case]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("operators: error: ") and message in err and err.count("\n") == 1


def test_cli_usage_errors_exit_2():
    assert main(["generate", "wave", "--out", "x.nc"]) == 2  # argparse's own error, returned as the code


def test_default_modes_adapt_to_a_small_grid_and_say_so(tmp_path, capsys):
    path = tmp_path / "heat2d.nc"
    generate(GenerateConfig(kind="heat2d", n_train=8, n_test=2, nx=16, fine_nx=16), path, progress=False)
    args = ["train", str(path), "--out", str(tmp_path / "m"), "--epochs", "1", "--batch-size", "4", "--width", "4",
            "--depth", "1", "--no-progress", "--json"]
    assert main(args) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["model"]["modes"] == 8  # the 2D default 12 capped at 16 // 2
    assert "modes=8" in out.err and "16 points" in out.err
    # an explicit --modes beyond the grid is still refused
    assert main([*args[:-2], "--modes", "9", "--out", str(tmp_path / "m2")]) == 2


def test_non_periodic_data_get_padding_by_default(tmp_path):
    from operators.models import NONPERIODIC_PADDING

    path = tmp_path / "darcy.nc"
    generate(GenerateConfig(kind="darcy", n_train=4, n_test=2, nx=9), path, progress=False)
    cfg = FNOConfig(width=4, depth=1, proj_hidden=4)
    model, _ = train_fno(path, cfg, TrainConfig(epochs=1, batch_size=2), progress=False)
    assert model.config.padding == NONPERIODIC_PADDING and model.config.modes == 4
    periodic, _ = train_fno(generate_arrays(GenerateConfig(kind="heat", n_train=4, n_test=2, nx=16, fine_nx=16)), cfg,
                            TrainConfig(epochs=1, batch_size=2), progress=False)
    assert periodic.config.padding == 0.0
