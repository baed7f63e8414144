"""The data model of DESIGN.md section 2: building, atomic files, comparison."""

import json
import os

import numpy as np
import pytest
import xarray as xr

from pdes.solution import (
    REQUIRED_ATTRS,
    compare,
    operator_dataset,
    read_dataset,
    rel_l2,
    solution_dataset,
    write_dataset,
)


def smooth(t, x):
    return np.exp(-t)[:, None] * np.sin(np.pi * x)[None, :]


def make(nx=33, nt=11, x_min=0.0, x_max=1.0, **kw):
    t = np.linspace(0, 1, nt)
    x = np.linspace(x_min, x_max, nx)
    return solution_dataset(smooth(t, x), t=t, x=x, equation="heat", method="exact", params={"alpha": 0.1}, config={"nx": nx}, seed=3, wall_time_s=0.5, **kw)


def test_solution_dataset_has_the_contract_dims_coords_and_attrs():
    ds = make(u_true=np.zeros((11, 33)))
    assert ds["u"].dims == ("t", "x") and ds["u_true"].dims == ("t", "x")
    for c in ("t", "x"):
        assert ds[c].dtype == np.float64 and {"units", "long_name"} <= set(ds[c].attrs)
    assert set(REQUIRED_ATTRS) <= set(ds.attrs)
    assert json.loads(ds.attrs["params"]) == {"alpha": 0.1} and ds.attrs["seed"] == 3


def test_two_dimensional_solution_has_dims_t_x_y():
    t, x, y = np.linspace(0, 1, 3), np.linspace(0, 1, 5), np.linspace(0, 1, 4)
    ds = solution_dataset(np.zeros((3, 5, 4)), t=t, x=x, y=y, equation="heat2d", method="exact")
    assert ds["u"].dims == ("t", "x", "y")


def test_wrong_shape_or_non_finite_coordinates_are_rejected():
    t, x = np.linspace(0, 1, 3), np.linspace(0, 1, 5)
    with pytest.raises(ValueError, match="shape"):
        solution_dataset(np.zeros((5, 3)), t=t, x=x, equation="heat", method="exact")
    with pytest.raises(ValueError, match="non-finite"):
        solution_dataset(np.zeros((3, 5)), t=t, x=np.r_[x[:-1], np.nan], equation="heat", method="exact")


def test_write_then_read_round_trips_values_and_attrs(tmp_path):
    ds = make(u_true=np.ones((11, 33)))
    path = write_dataset(ds, tmp_path / "sub" / "a.nc")
    back = read_dataset(path)
    xr.testing.assert_identical(back, ds)
    assert [p.name for p in path.parent.iterdir()] == ["a.nc"]  # no temporary left
    assert path.stat().st_mode & 0o644 == 0o644  # a normal file, not mkstemp's private 0600


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "a.nc"
    write_dataset(make(), target)
    before = target.read_bytes()

    def boom(self, path, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"half")  # a partial write, then a crash
        raise RuntimeError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", boom)
    with pytest.raises(RuntimeError):
        write_dataset(make(nx=9), target)
    with pytest.raises(RuntimeError):
        write_dataset(make(), tmp_path / "new.nc")
    assert sorted(os.listdir(tmp_path)) == ["a.nc"] and target.read_bytes() == before


def test_write_rejects_a_non_nc_name(tmp_path):
    with pytest.raises(ValueError, match=".nc"):
        write_dataset(make(), tmp_path / "a.txt")
    assert not os.listdir(tmp_path)


def test_reading_missing_or_non_netcdf_files_raises_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_dataset(tmp_path / "missing.nc")
    bad = tmp_path / "bad.nc"
    bad.write_text("not netcdf at all")
    with pytest.raises(ValueError, match="not a readable netCDF") as info:
        read_dataset(bad)
    assert "\n" not in str(info.value)


def test_compare_of_identical_grids_is_exact_and_not_interpolated():
    a = make()
    b = a.copy(deep=True)
    b["u"] = b["u"] * (1 + 1e-3)
    cmp = compare(a, b)
    assert not cmp.interpolated and cmp.note == ""
    assert cmp.rel_l2 == pytest.approx(1e-3 / (1 + 1e-3), rel=1e-9)  # |a - b| / |b| for b = (1 + e) a
    np.testing.assert_allclose(cmp.rel_l2_per_t, cmp.rel_l2, rtol=1e-9)
    assert cmp.t.shape == (11,)


def test_compare_interpolates_onto_the_coarser_grid_and_says_so():
    fine, coarse = make(nx=257, nt=101), make(nx=33, nt=11)
    cmp = compare(fine, coarse)
    assert cmp.interpolated and "interpolated" in cmp.note and cmp.grid == {"t": 11, "x": 33}
    # Coarse points are fine-grid points here (33 = 256/8 + 1, 11 = 100/10 + 1): only rounding.
    assert cmp.rel_l2 < 1e-14
    cmp2 = compare(make(nx=200, nt=11), coarse)  # not nested: linear interpolation error O(h^2)
    assert cmp2.interpolated and cmp2.rel_l2 < (np.pi / 199) ** 2


def test_compare_refuses_different_domains_and_missing_variables():
    with pytest.raises(ValueError, match="different domains"):
        compare(make(), make(x_min=-1.0))
    with pytest.raises(ValueError, match="no variable"):
        compare(make(), make(), var="u_std")


def test_rel_l2_is_the_relative_euclidean_norm():
    assert rel_l2([3.0, 4.0], [0.0, 0.0]) == 5.0
    assert rel_l2([1.0, 1.0], [1.0, 0.0]) == 1.0
    with pytest.raises(ValueError, match="shape"):
        rel_l2([1.0], [1.0, 2.0])


def test_operator_dataset_has_sample_dim_and_split():
    x = np.linspace(0, 1, 8, endpoint=False)
    ds = operator_dataset(np.zeros((4, 8)), np.ones((4, 8)), x=x, split=["train", "train", "test", "test"], equation="burgers")
    assert ds["a"].dims == ("sample", "x") and list(ds["split"].values) == ["train", "train", "test", "test"]
    with pytest.raises(ValueError, match="split"):
        operator_dataset(np.zeros((2, 8)), np.ones((2, 8)), x=x, split=["train", "valid"], equation="burgers")
