"""Calibration maps: the split-conformal guarantees on synthetic Gaussian data, the fitted
spread, map files, and the refusals (split too small, other grid, other model, no u_std)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import special

from uncertainty.calibration import (
    CalibrationMap,
    apply_calibration,
    calibration_folds,
    fit_calibration_map,
    fit_spread,
    grouped_conformal_quantile,
    load_map,
    minimum_calibration_functions,
    minimum_fold_functions,
    save_map,
)
from uncertainty.metrics import all_metrics, whole_function_coverage


def gaussian_functions(rng: np.random.Generator, n: int, m: int = 20, stated: float = 0.5):
    """n functions of m points: errors N(0, sigma^2) with sigma = (0.2 + x) times a per-function
    level drawn from a lognormal (so points of one function are dependent); the stated std is
    ``stated`` times the truth. Returns (u, u_std_raw, u_true), each (n, m)."""
    x = np.linspace(0.0, 1.0, m)
    level = np.exp(0.3 * rng.standard_normal((n, 1)))
    sigma = (0.2 + x)[None, :] * level
    y = np.sin(2 * np.pi * x)[None, :] + 0.0 * level
    u = y + sigma * rng.standard_normal((n, m))
    return u, stated * sigma, y


def test_conformal_quantile_is_the_finite_sample_rank_over_functions():
    # m = 1: scores 1..19 -> level 0.9 takes rank ceil(20 * 0.9) = 18; level 0.99 rank 20 > 19: inf
    s = np.arange(1.0, 20.0)[:, None]
    assert grouped_conformal_quantile(s, 0.9) == 18.0
    assert math.isinf(grouped_conformal_quantile(s, 0.99))
    # m = 2 points per function: rank ceil(20 * 2 * 0.9) = 36 of the 38 pooled scores 1..38
    assert grouped_conformal_quantile(np.arange(1.0, 39.0).reshape(19, 2), 0.9) == 36.0


def test_minimum_sizes_follow_from_the_rank_condition():
    # ceil((n + 1) L) <= n  <=>  n >= L / (1 - L): 19 for 0.95, 9 for 0.9, 99 for 0.99
    assert [minimum_fold_functions(lv) for lv in (0.9, 0.95, 0.99)] == [9, 19, 99]
    # fold A takes round(n / 4): 25 functions leave 19 for fold B, 24 leave 18
    assert minimum_calibration_functions() == 25
    a, b = calibration_folds(25)
    assert len(a) == 6 and len(b) == 19 and not set(a) & set(b)


def test_whole_function_band_covers_at_its_level_over_many_seeds():
    """Split conformal on sup-norm scores: a new function lies entirely in its band with
    probability k / (n + 1), k = ceil((n + 1) L) (continuous scores), here n = 30 fold-B
    functions, L = 0.9: 28 / 31. Over 300 seeds x 50 test functions the mean observed coverage
    has standard error sqrt(Var Beta(28, 3) + E[c (1 - c)] / 50) / sqrt(300) ~ 0.0038; we allow
    4 standard errors. The pointwise level (0.95 by functions) must hold from below."""
    rng = np.random.default_rng(0)
    band, point = [], []
    for _ in range(300):
        cal = gaussian_functions(rng, 40)
        test = gaussian_functions(rng, 50)
        cmap = fit_calibration_map(*cal)
        assert cmap.n_conformal == 30
        u, s, y = test
        band.append(whole_function_coverage(u, cmap.band(s, 0.9), y))
        point.append(np.mean(np.abs(y - u) <= special.ndtri(0.975) * cmap.std(s)))
    expected = 28 / 31
    se = math.sqrt(28 * 3 / (31**2 * 32) + expected * (1 - expected) / 50) / math.sqrt(300)
    assert abs(np.mean(band) - expected) < 4 * se, (np.mean(band), expected, se)
    assert np.mean(point) >= 0.95 - 4 * 0.003  # the guarantee, with the sampling error of 300 means


def test_whole_function_guarantee_fails_without_calibration():
    # the control: the raw std (half the truth) covers whole functions far less than 90%
    rng = np.random.default_rng(1)
    u, s, y = gaussian_functions(rng, 400)
    assert whole_function_coverage(u, special.ndtri(0.95) * s, y) < 0.2


def test_spread_recovers_scale_and_floor_of_the_errors():
    # e ~ N(0, (a s)^2 + b^2) with a = 2, b = 0.3: 200k points estimate both to ~1%
    rng = np.random.default_rng(2)
    s = rng.uniform(0.05, 1.0, 200_000)
    e = np.sqrt((2.0 * s) ** 2 + 0.3**2) * rng.standard_normal(s.size)
    a, b = fit_spread(np.zeros_like(s), s, e)
    assert a == pytest.approx(2.0, rel=0.02) and b == pytest.approx(0.3, rel=0.05)


@pytest.mark.parametrize("method", ["conformal", "sigma_scaling", "isotonic"])
def test_each_method_calibrates_mis_scaled_gaussian_functions(method):
    # stated std half the truth: after calibration, 400 held-out functions of 20 points have
    # coverage_95 within 0.02 of 0.95 and rmsce < 0.03 (calibrated noise level ~0.01)
    rng = np.random.default_rng(3)
    cal, test = gaussian_functions(rng, 400), gaussian_functions(rng, 400)
    cmap = fit_calibration_map(*cal, method=method)
    u, s, y = test
    raw = all_metrics(u, s, y)
    got = all_metrics(u, cmap.std(s), y, functions=True, bands={0.9: cmap.band(s, 0.9)})
    assert raw["coverage_95"] < 0.8
    assert got["coverage_95"] == pytest.approx(0.95, abs=0.02)
    assert got["rmsce"] < 0.03
    assert got["whole_function_coverage_90"] == pytest.approx(0.9, abs=0.05)  # 400 functions: sd 0.015 + fit


def test_conformal_interval_at_every_level_is_the_maps_quantile():
    rng = np.random.default_rng(4)
    cmap = fit_calibration_map(*gaussian_functions(rng, 200))
    u, s, y = gaussian_functions(rng, 2000)
    for level in (0.5, 0.9, 0.95, 0.99):
        lo, hi = cmap.interval(u, s, level)
        assert np.mean((y >= lo) & (y <= hi)) >= level - 0.01  # guarantee, 40k points of 2000 functions


def test_map_round_trips_through_json(tmp_path):
    rng = np.random.default_rng(5)
    cmap = fit_calibration_map(*gaussian_functions(rng, 60), method="isotonic", model="abc123",
                               grid={"dims": ["x"], "shape": [20], "ends": {"x": [0.0, 1.0]}})
    path = save_map(cmap, tmp_path / "m.json")
    back = load_map(path)
    assert back == cmap
    s = rng.uniform(0.1, 1.0, (3, 20))
    np.testing.assert_allclose(back.std(s), cmap.std(s), rtol=1e-15)
    np.testing.assert_allclose(back.band(s, 0.95), cmap.band(s, 0.95), rtol=1e-15)
    with pytest.raises(ValueError, match="not a calibration map"):
        CalibrationMap.from_dict({"kind": "something else"})


def test_too_small_split_names_the_minimum():
    rng = np.random.default_rng(6)
    with pytest.raises(ValueError, match="has 24 functions.*at least 25"):
        fit_calibration_map(*gaussian_functions(rng, 24))
    with pytest.raises(ValueError, match="at least 132"):  # 132 - round(132 / 4) = 99 for the 0.99 level
        fit_calibration_map(*gaussian_functions(rng, 60), level=0.99)


def _prediction(rng, n=30, m=20):
    from pdes.solution import operator_dataset

    u, s, y = gaussian_functions(rng, n, m)
    ds = operator_dataset(np.zeros((n, m)), u, x=np.arange(m) / m, equation="synthetic", method="synthetic",
                          attrs={"model_fingerprint": "abc123"})
    return ds.assign(u_std=(("sample", "x"), s), u_true=(("sample", "x"), y))


def test_apply_keeps_raw_std_and_adds_bands_and_refuses_other_grids_and_models():
    from uncertainty.calibration import prediction_grid

    rng = np.random.default_rng(7)
    cal = _prediction(rng)
    cmap = fit_calibration_map(cal.u.values, cal.u_std.values, cal.u_true.values, grid=prediction_grid(cal),
                               model="abc123")
    new = _prediction(rng)
    out = apply_calibration(new, cmap)
    np.testing.assert_array_equal(out.u_std_raw.values, new.u_std.values)
    np.testing.assert_allclose(out.u_std.values, cmap.std(new.u_std.values))
    assert {"u_band_90", "u_band_95"} <= set(out.data_vars) and out.attrs["calibrated"] == 1
    assert json.loads(out.attrs["calibration"])["method"] == "conformal"
    again = apply_calibration(out, cmap)  # calibrating a calibrated file starts from u_std_raw
    np.testing.assert_allclose(again.u_std.values, out.u_std.values)
    with pytest.raises(ValueError, match="grid x=20 but .* x=10"):
        apply_calibration(_prediction(rng, m=10), cmap)
    other = new.copy()
    other.attrs["model_fingerprint"] = "ffff"
    with pytest.raises(ValueError, match="fitted on model abc123 but .* model ffff"):
        apply_calibration(other, cmap)
    with pytest.raises(ValueError, match="no variable 'u_std'"):
        apply_calibration(new.drop_vars("u_std"), cmap)


@pytest.mark.parametrize("case, message", [
    ("grid", "fit a map on this grid"),
    ("model", "fit a map for this model"),
    ("no_std", "no variable 'u_std'"),
    ("map", "not a calibration map"),
])
def test_calibrate_command_exits_2_with_one_line(tmp_path, capsys, case, message):
    from pdes.solution import write_dataset
    from uncertainty.__main__ import main
    from uncertainty.calibration import prediction_grid

    rng = np.random.default_rng(8)
    cal = _prediction(rng)
    cmap = fit_calibration_map(cal.u.values, cal.u_std.values, cal.u_true.values, grid=prediction_grid(cal),
                               model="abc123")
    map_path = save_map(cmap, tmp_path / "m.json")
    pred = {"grid": _prediction(rng, m=10), "no_std": _prediction(rng).drop_vars("u_std")}.get(case, _prediction(rng))
    if case == "model":
        pred.attrs["model_fingerprint"] = "0000"
    if case == "map":
        (tmp_path / "m.json").write_text("{}")
    path = write_dataset(pred, tmp_path / "p.nc")
    assert main(["calibrate", str(path), "--with", str(map_path), "--out", str(tmp_path / "c.nc")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("uncertainty: error: ") and err.count("\n") == 1 and message in err
    assert not (tmp_path / "c.nc").exists()


def test_calibrate_command_writes_raw_and_calibrated_std(tmp_path, capsys):
    from pdes.solution import read_dataset, write_dataset
    from uncertainty.__main__ import main
    from uncertainty.calibration import prediction_grid

    rng = np.random.default_rng(9)
    cal = _prediction(rng, n=200)
    cmap = fit_calibration_map(cal.u.values, cal.u_std.values, cal.u_true.values, grid=prediction_grid(cal),
                               model="abc123")
    map_path = save_map(cmap, tmp_path / "m.json")
    path = write_dataset(_prediction(rng, n=200), tmp_path / "p.nc")
    assert main(["calibrate", str(path), "--with", str(map_path), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    ds = read_dataset(tmp_path / "p.calibrated.nc")
    assert "u_std_raw" in ds and res["coverage_95"] == pytest.approx(0.95, abs=0.03)  # 4000 points, 200 functions
    assert res["coverage_95"] > all_metrics(ds.u.values, ds.u_std_raw.values, ds.u_true.values)["coverage_95"]


def test_calibrated_distribution_of_sigma_scaling_is_the_gaussian():
    # Z Gaussian: every interval-type number equals all_metrics'; the CRPS by quantile
    # integration (2000 levels, trapezoids) matches the closed form to 1e-3 (its tails are cut)
    from uncertainty.calibration import calibrated_metrics

    rng = np.random.default_rng(10)
    cmap = fit_calibration_map(*gaussian_functions(rng, 100), method="sigma_scaling")
    u, s, y = gaussian_functions(rng, 100)
    want = all_metrics(u, cmap.std(s), y, functions=True)
    got = calibrated_metrics(u, cmap.std(s), y, cmap, functions=True)
    for k in ("rmsce", "mace", "miscalibration_area", "coverage_50", "coverage_95", "function_coverage_90"):
        assert got[k] == pytest.approx(want[k], abs=1e-9), k
    assert got["interval_score"] == pytest.approx(want["interval_score"], rel=1e-6)
    assert got["crps"] == pytest.approx(want["crps"], rel=1e-3)


def test_conformal_distribution_is_calibrated_at_every_level_for_heavy_tails():
    # Student-t errors (3 degrees of freedom) under a Gaussian-looking std: one scale cannot
    # fix the shape (the Gaussian reading's rmsce stays large), the map's quantile tables do
    from uncertainty.calibration import calibrated_metrics

    rng = np.random.default_rng(11)

    def t_functions(n):
        y = np.zeros((n, 20))
        return y + 0.1 * rng.standard_t(3, size=(n, 20)), np.full((n, 20), 0.1), y

    cmap = fit_calibration_map(*t_functions(400))
    u, s, y = t_functions(400)
    assert all_metrics(u, cmap.std(s), y)["rmsce"] > 0.05
    got = calibrated_metrics(u, cmap.std(s), y, cmap)
    assert got["rmsce"] < 0.02 and got["coverage_95"] == pytest.approx(0.95, abs=0.015)


def test_observation_scale_covers_new_noisy_observations_at_its_level():
    """PINN calibration on n = 40 noisy observations y = u + N(0, s_true^2 + noise^2) with a stated
    std half of s_true: the interval u +- z sqrt((c s)^2 + noise^2) holds a new observation with
    probability ceil(41 * 0.95) / 41 = 39 / 41 (continuous scores); over 300 seeds x 200 new
    points the mean has standard error ~ sqrt(Var Beta(39, 2) / 300) ~ 0.0019."""
    from uncertainty.run import observation_scale

    rng = np.random.default_rng(12)
    z = special.ndtri(0.975)
    covered = []
    for _ in range(300):
        s_true = rng.uniform(0.05, 0.2, 240)
        y = np.sqrt(s_true**2 + 0.1**2) * rng.standard_normal(240)
        c = observation_scale(np.zeros(40), 0.5 * s_true[:40], y[:40], 0.1)
        covered.append(np.mean(np.abs(y[40:]) <= z * np.sqrt((c * 0.5 * s_true[40:]) ** 2 + 0.1**2)))
    assert abs(np.mean(covered) - 39 / 41) < 4 * 0.0025
    with pytest.raises(ValueError, match="at least 19 observations"):
        observation_scale(np.zeros(18), np.ones(18), np.ones(18), 0.0)
