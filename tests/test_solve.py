"""solve(problem, method=...): the Dataset contract and input checks before any work."""

import json

import numpy as np
import pytest

from pdes import HEAT, WAVE, solve
from pdes.solution import REQUIRED_ATTRS


def test_spectral_solution_carries_the_exact_reference_and_the_run_config():
    ds = solve(WAVE, method="spectral", nx=33, nt=9, seed=4)
    assert ds["u"].shape == (9, 33) and "u_true" in ds
    np.testing.assert_allclose(ds.x, np.linspace(0, 1, 33))  # both ends included
    np.testing.assert_allclose(ds.t, np.linspace(0, 1, 9))
    assert set(REQUIRED_ATTRS) <= set(ds.attrs) and ds.attrs["seed"] == 4
    config = json.loads(ds.attrs["config"])
    assert config["method"] == "spectral" and config["nx"] == 33 and config["problem"]["c"] == 2.0
    assert np.abs(ds["u"] - ds["u_true"]).max() < 1e-14  # finite sine series: exact to rounding


def test_exact_solution_has_no_separate_reference_and_takes_preset_names():
    ds = solve("heat", nx=16, nt=3)
    assert "u_true" not in ds and ds.attrs["method"] == "exact" and ds.attrs["wall_time_s"] >= 0


@pytest.mark.parametrize(
    ("args", "kwargs", "word"),
    [
        (("heat", "magic"), {}, "method"),
        (("laplace",), {}, "equation"),
        (("heat",), {"nx": 7}, "nx"),
        (("heat",), {"nt": 1}, "nt"),
        (("heat",), {"nx": 16.0}, "nx"),
        (("heat",), {"seed": -1}, "seed"),
        ((HEAT, "spectral"), {"n_steps": 100}, "n_steps"),
        ((HEAT, "spectral"), {"n_points": 33}, "n_points"),
        ((HEAT, "exact"), {"n_steps": 100}, "n_steps"),
        (("operator_burgers", "spectral"), {}, "operators"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(args, kwargs, word):
    with pytest.raises(ValueError, match=word):
        solve(*args, **kwargs)
