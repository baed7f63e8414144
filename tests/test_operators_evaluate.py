"""Tests of operators.evaluate: PDEBench's metrics against hand-computed values on tiny
arrays, predicted frames only, evaluation on non-periodic node grids, and the plot."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from operators.evaluate import BANDS, TABLE_COLUMNS, error_metrics, evaluate, plot_samples

PI = math.pi


def grid(n: int) -> np.ndarray:
    return np.arange(n) / n


def with_error(err: np.ndarray, offset: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """(pred, true) with pred - true = err exactly representable: true = offset (a constant)."""
    true = np.full_like(err, offset)
    return true + err, true


# 1D, n = 64: PDEBench's shells are the rfft bins s = 0 .. 32, so the bands hold
# 4 (s < 4), 8 (4 <= s < 12) and 21 (12 <= s <= 32) shells.
@pytest.mark.parametrize("k, band, shells", [(2, "low", 4), (5, "mid", 8), (20, "high", 21)])
def test_an_error_in_one_fourier_mode_lands_in_exactly_one_band(k, band, shells):
    err = 0.3 * np.cos(2 * PI * k * grid(64))[None].repeat(2, axis=0)
    m = error_metrics(*with_error(err))
    # e_k = e_-k = 0.15, one real mode counted once: F_k = 0.15, the band value F_k / shells.
    for name in BANDS:
        expected = 0.15 / shells if name == band else 0.0
        assert m[f"frmse_{name}"] == pytest.approx(expected, abs=1e-15)
    assert m["rmse"] == pytest.approx(0.3 / math.sqrt(2), rel=1e-12)  # RMS of a cosine
    assert m["crmse"] == pytest.approx(0.0, abs=1e-15)  # zero mean over a full period
    # Boundary points x = 0 and x = 63/64: 0.3 and 0.3 cos(2 pi k 63/64) = 0.3 cos(2 pi k / 64).
    assert m["brmse"] == pytest.approx(0.3 * math.sqrt((1 + math.cos(2 * PI * k / 64) ** 2) / 2), rel=1e-12)


def test_the_nyquist_mode_is_its_own_conjugate_and_counts_once():
    err = 0.4 * (-1.0) ** np.arange(64)[None]  # e_32 = 0.4 (no partner -32 on the grid)
    m = error_metrics(*with_error(err))
    assert m["frmse_high"] == pytest.approx(0.4 / 21, rel=1e-12)
    assert m["frmse_low"] == m["frmse_mid"] == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("sign", [1, -1])
def test_a_2d_mode_lands_in_its_radial_shell_whatever_the_signs_of_kx_ky(sign):
    # n = 32: shells s = 0 .. 15 (PDEBench keeps floor|k| < 16), mid = 4 .. 11 (8 shells), high = 12 .. 15.
    x = grid(32)
    X, Y = np.meshgrid(x, x, indexing="ij")
    err = 0.2 * np.cos(2 * PI * (3 * X + sign * 4 * Y))[None]  # |k| = 5
    m = error_metrics(*with_error(err))
    assert m["frmse_mid"] == pytest.approx(0.1 / 8, rel=1e-12)
    assert m["frmse_low"] == pytest.approx(0.0, abs=1e-15) and m["frmse_high"] == pytest.approx(0.0, abs=1e-15)


def test_a_constant_error_is_the_mean_mode_and_the_conserved_quantity_error():
    c = 0.25
    m = error_metrics(*with_error(np.full((3, 16, 16), c), offset=4.0))
    for key in ("rmse", "crmse", "brmse", "max_abs"):
        assert m[key] == pytest.approx(c, rel=1e-12), key
    assert m["nrmse"] == pytest.approx(c / 4.0, rel=1e-12)
    assert m["frmse_low"] == pytest.approx(c / 4, rel=1e-12)  # F_0 = c, over the 4 low shells
    assert math.isnan(m["frmse_high"])  # n = 16 has shells 0 .. 7 only: no band >= 12


def test_nrmse_normalises_each_sample_before_the_mean():
    true = np.stack([np.ones(8), 10 * np.ones(8)])
    pred = true + 0.1
    m = error_metrics(pred, true)
    assert m["nrmse"] == pytest.approx((0.1 / 1 + 0.1 / 10) / 2, rel=1e-12)  # 0.055, not the pooled 0.0141
    assert m["rmse"] == pytest.approx(0.1, rel=1e-12)
    assert m["rel_l2"] == pytest.approx(0.055, rel=1e-12) and m["rel_l2_max"] == pytest.approx(0.1, rel=1e-12)


def test_crmse_is_the_rms_over_samples_of_the_mean_error():
    s = np.sin(2 * PI * grid(16))
    err = np.stack([0.3 + s, -0.4 + 2 * s])
    m = error_metrics(*with_error(err))
    assert m["crmse"] == pytest.approx(math.sqrt((0.3**2 + 0.4**2) / 2), rel=1e-12)  # = 0.3536


def test_boundary_only_error_shows_in_brmse_and_interior_error_does_not():
    eps = 0.5
    err = np.zeros((2, 8))
    err[:, 0] = eps
    assert error_metrics(*with_error(err))["brmse"] == pytest.approx(eps / math.sqrt(2), rel=1e-12)
    # 2D, the whole edge x = 0 wrong: n values on it, plus its two corners again on the y edges,
    # over the 4 n boundary values: brmse = eps sqrt((n + 2) / (4 n)).
    e2 = np.zeros((1, 8, 8))
    e2[:, 0, :] = eps
    assert error_metrics(*with_error(e2))["brmse"] == pytest.approx(eps * math.sqrt(10 / 32), rel=1e-12)
    inner = np.zeros((1, 8, 8))
    inner[:, 3, 4] = eps
    m = error_metrics(*with_error(inner))
    assert m["brmse"] == 0.0 and m["rmse"] == pytest.approx(eps / 8, rel=1e-12)


@pytest.mark.parametrize("layout", ["time_last", "time_second"])
def test_given_input_frames_are_not_counted(layout):
    # (samples, x, t): frame 0 is the given input, whose "error" is huge; frames 1, 2 are predicted.
    err = np.zeros((2, 16, 3))
    err[:, :, 0] = 100.0
    err[:, :, 1] = 0.1
    err[:, :, 2] = 0.3
    axis = -1
    if layout == "time_second":
        err, axis = np.moveaxis(err, -1, 1), 1
    pred, true = with_error(err)
    m = error_metrics(pred, true, time_axis=axis, initial_frames=1)
    assert m["rmse"] == pytest.approx(0.2, rel=1e-12)  # mean over predicted frames of 0.1 and 0.3
    assert m["max_abs"] == pytest.approx(0.3, rel=1e-12)
    assert m["crmse"] == pytest.approx(0.2, rel=1e-12)
    assert m["frmse_low"] == pytest.approx(0.2 / 4, rel=1e-12)
    assert m["rel_l2"] == pytest.approx(math.sqrt((0.1**2 + 0.3**2) / 2) / 2.0, rel=1e-12)
    assert error_metrics(pred, true, time_axis=axis)["max_abs"] == pytest.approx(100.0)  # all frames


@pytest.mark.parametrize("kwargs, match", [
    ({"initial_frames": 1}, "needs a time_axis"),
    ({"time_axis": 0}, "time_axis"),
    ({"time_axis": -1, "initial_frames": 5}, "leaves no predicted frame"),
    ({"time_axis": -1, "initial_frames": -1}, "non-negative"),
])
def test_bad_metric_arguments_raise_value_errors(kwargs, match):
    a = np.zeros((2, 8, 5))
    with pytest.raises(ValueError, match=match):
        error_metrics(a, a, **kwargs)
    with pytest.raises(ValueError, match="differs"):
        error_metrics(np.zeros((2, 8)), np.zeros((2, 9)))


@pytest.fixture(scope="module")
def darcy_like():
    """A non-periodic dataset on a 9-node grid (both ends stored), with a split."""
    from pdes.solution import operator_dataset

    rng = np.random.default_rng(0)
    a, u = rng.standard_normal((4, 9, 9)), rng.standard_normal((4, 9, 9))
    x = np.linspace(0, 1, 9)
    return operator_dataset(a, u, x=x, y=x, split=["train", "train", "test", "test"], equation="darcy",
                            attrs={"periodic": 0})


def test_evaluate_strides_node_grids_and_reports_every_metric(darcy_like):
    from flax import nnx

    from operators.models import FNO, FNOConfig

    model = FNO(FNOConfig(dim=2, modes=2, width=4, depth=1, proj_hidden=4), rngs=nnx.Rngs(0))
    results, preds = evaluate(model, darcy_like, nx=[5, 9])
    assert [r["nx"] for r in results] == [5, 9] and all(r["n_samples"] == 2 for r in results)
    assert set(TABLE_COLUMNS) <= set(results[0])
    np.testing.assert_array_equal(preds["x"].values, np.linspace(0, 1, 9))
    assert preds.attrs["periodic"] == 0
    with pytest.raises(ValueError, match="strided subgrid"):
        evaluate(model, darcy_like, nx=[6])  # 5 does not divide 8


def test_plot_samples_draws_on_a_figure_without_pyplot(darcy_like, tmp_path):
    from matplotlib.figure import Figure

    had_pyplot = "matplotlib.pyplot" in sys.modules
    ds = darcy_like.copy()
    ds["u_true"] = ds["u"] + 0.1
    fig = plot_samples(ds, tmp_path / "s.png")
    assert isinstance(fig, Figure) and len(fig.axes) >= 9
    assert (tmp_path / "s.png").stat().st_size > 0
    one_d = ds.isel(y=0)
    fig1 = plot_samples(one_d)  # no path: nothing written, the Figure returned
    assert len(fig1.axes) == 3
    if not had_pyplot:
        assert "matplotlib.pyplot" not in sys.modules
