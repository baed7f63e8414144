"""Problem specs: the presets of DESIGN.md section 3 and their input checks."""

import json
import math

import numpy as np
import pytest

from pdes.problems import (
    BURGERS,
    HEAT,
    HEAT2D,
    OPERATOR_BURGERS,
    PRESETS,
    WAVE,
    Burgers,
    Heat,
    Heat2D,
    PeriodicBurgers,
    Wave,
    problem_params,
    with_overrides,
)

X = np.linspace(0.0, 1.0, 33)


def test_presets_match_the_design_table():
    assert (BURGERS.nu, BURGERS.x_min, BURGERS.x_max, BURGERS.t_end) == (0.01 / math.pi, -1.0, 1.0, 1.0)
    assert (HEAT.alpha, HEAT.x_min, HEAT.x_max, HEAT.t_end) == (0.1, 0.0, 1.0, 1.0)
    assert (WAVE.c, WAVE.x_min, WAVE.x_max, WAVE.t_end) == (2.0, 0.0, 1.0, 1.0)
    assert (OPERATOR_BURGERS.nu, OPERATOR_BURGERS.length, OPERATOR_BURGERS.grf_sigma**2, OPERATOR_BURGERS.grf_tau**2) == (0.1, 1.0, 625.0, 25.0)
    assert set(PRESETS) >= {"burgers", "heat", "wave", "heat2d", "operator_burgers"}


def test_preset_initial_data_are_the_documented_functions():
    xb = np.linspace(-1, 1, 41)
    np.testing.assert_allclose(BURGERS.u0(xb), -np.sin(np.pi * xb), atol=1e-15)
    np.testing.assert_allclose(HEAT.u0(X), np.sin(np.pi * X) + 0.5 * np.sin(3 * np.pi * X), atol=1e-15)
    np.testing.assert_allclose(WAVE.u0(X), np.sin(np.pi * X) + 0.5 * np.sin(4 * np.pi * X), atol=1e-15)
    np.testing.assert_array_equal(WAVE.v0(X), 0.0)
    gx, gy = np.meshgrid(X, X, indexing="ij")
    np.testing.assert_allclose(HEAT2D.u0(gx, gy), np.sin(np.pi * gx) * np.sin(np.pi * gy) + 0.5 * np.sin(2 * np.pi * gx) * np.sin(3 * np.pi * gy), atol=1e-15)


def test_heat_and_wave_accept_a_callable_as_initial_data():
    f = lambda x: x * (1 - x)  # noqa: E731
    np.testing.assert_allclose(Heat(initial=f).u0(X), f(X))
    w = Wave(initial=f, initial_velocity=np.sin)
    np.testing.assert_allclose(w.v0(X), np.sin(X))


@pytest.mark.parametrize(
    ("cls", "kwargs", "word"),
    [
        (Burgers, {"nu": 0.0}, "nu"),
        (Burgers, {"nu": -1.0}, "nu"),
        (Burgers, {"nu": float("nan")}, "nu"),
        (Burgers, {"nu": float("inf")}, "nu"),
        (Heat, {"alpha": -0.1}, "alpha"),
        (Wave, {"c": 0.0}, "c"),
        (Heat, {"x_min": 1.0, "x_max": 0.0}, "x"),
        (Heat, {"x_max": float("inf")}, "x"),
        (Heat, {"t_end": 0.0}, "t_end"),
        (Heat, {"sine_coeffs": ()}, "sine_coeffs"),
        (Heat, {"sine_coeffs": (1.0, float("nan"))}, "sine_coeffs"),
        (Heat, {"sine_coeffs": None}, "initial"),
        (Heat2D, {"length": -1.0}, "length"),
        (PeriodicBurgers, {"nu": -0.1}, "nu"),
    ],
)
def test_bad_parameters_raise_value_error_naming_them(cls, kwargs, word):
    with pytest.raises(ValueError, match=word):
        cls(**kwargs)


def test_problem_params_are_json_and_name_callables():
    params = problem_params(BURGERS)
    text = json.dumps(params)
    assert params["nu"] == BURGERS.nu and "_minus_sin_pi" in text
    assert problem_params(HEAT)["sine_coeffs"] == [1.0, 0.0, 0.5]


def test_with_overrides_keeps_unset_values_and_validates_the_rest():
    assert with_overrides(BURGERS, nu=None, t_end=0.5) == Burgers(t_end=0.5)
    with pytest.raises(ValueError, match="nu"):
        with_overrides(BURGERS, nu=-1.0)
