"""operators.io: each format round-trips from files written in its exact layout; bad input
fails with one line and exit code 2 and leaves no output; subsets are read lazily."""

import json
import math

import h5py
import numpy as np
import pytest
import scipy.io

import operators.io as io
from operators.__main__ import main
from operators.io import import_dataset, parse_indices, split_ranges
from operators.train import load_operator_data
from pdes.solution import read_dataset

RNG = np.random.default_rng(0)


def _field(*shape):
    return RNG.standard_normal(shape)


def _matlab_v73(path, arrays):
    """Write arrays the way MATLAB -v7.3 does: an HDF5 file behind a 512-byte header, every
    array stored with its axes reversed (column-major), a MATLAB_class attribute."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, arr in arrays.items():
            d = f.create_dataset(name, data=np.asarray(arr).T)
            d.attrs["MATLAB_class"] = np.bytes_("double")
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .")


def _check_common(ds, path, n_train, n_test, periodic):
    split = np.asarray(ds["split"]).astype(str)
    assert (split == "train").sum() == n_train and (split == "test").sum() == n_test
    assert ds["a"].dtype == np.float64 and ds["u"].dtype == np.float64
    assert ds["a"].dims[0] == "sample" and ds["a"].dims == ds["u"].dims
    for d in ds["a"].dims[1:]:
        assert ds[d].dtype == np.float64 and {"units", "long_name"} <= set(ds[d].attrs)
    assert ds.attrs["periodic"] == int(periodic)
    assert ds.attrs["source"] == str(path.resolve())
    assert ds.attrs["method"] == "import"
    return json.loads(ds.attrs["source_keys"])


# ----------------------------------------------------------------------------- fno-mat


def test_fno_burgers_v5_mat_round_trips_with_subsample_and_ranges(tmp_path):
    a, u = _field(12, 64), _field(12, 64)
    src = tmp_path / "burgers_data_R10.mat"
    scipy.io.savemat(src, {"a": a, "u": u})
    out = tmp_path / "burgers.nc"
    ds = import_dataset(src, format="fno-mat", out=out, subsample=4, n_train=5, n_test=3)
    np.testing.assert_array_equal(ds["a"].values, np.concatenate([a[:5, ::4], a[5:8, ::4]]))
    np.testing.assert_array_equal(ds["u"].values, u[:8, ::4])
    keys = _check_common(ds, src, 5, 3, periodic=True)
    assert keys["a"] == "a" and keys["u"] == "u" and keys["subsample"] == 4
    assert keys["samples"] == {"train": [0, 5], "test": [5, 8]}
    np.testing.assert_allclose(ds["x"].values, (np.arange(64) / 64)[::4])  # periodic: arange(n)/n
    back = read_dataset(out)
    np.testing.assert_array_equal(back["u"].values, ds["u"].values)
    data = load_operator_data(out)
    assert data.a_train.shape == (5, 16) and data.u_test.shape == (3, 16)


def test_fno_darcy_v73_mat_with_reversed_axes_is_read_in_matlab_order(tmp_path):
    coeff, sol = _field(6, 21, 21), _field(6, 21, 21)
    src = tmp_path / "piececonst_r21_N6.mat"
    _matlab_v73(src, {"coeff": coeff, "sol": sol, "Kcoeff": _field(6, 21, 21)})
    with h5py.File(src, "r") as f:
        assert f["coeff"].shape == (21, 21, 6)  # as MATLAB writes it: axes reversed
    ds = import_dataset(src, format="fno-mat", subsample=5, n_train=4, test_from=4, n_test=2)
    np.testing.assert_array_equal(ds["a"].values, coeff[:, ::5, ::5])
    np.testing.assert_array_equal(ds["u"].values, sol[:, ::5, ::5])
    _check_common(ds, src, 4, 2, periodic=False)
    # non-periodic: linspace(0, 1, 21) including both ends, every 5th -> 0, 0.25, ..., 1
    np.testing.assert_allclose(ds["x"].values, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(ds["y"].values, ds["x"].values)
    assert ds.attrs["equation"] == "darcy"


def test_fno_navier_stokes_v73_takes_a_and_the_chosen_frames(tmp_path):
    u_all, a0 = _field(5, 8, 8, 6), _field(5, 8, 8)
    src = tmp_path / "ns_V1e-3_N5_T6.mat"
    _matlab_v73(src, {"a": a0, "u": u_all, "t": np.arange(1.0, 7.0)[None]})
    ds = import_dataset(src, format="fno-mat", n_train=3, n_test=2)   # default: a, and u's last frame
    np.testing.assert_array_equal(ds["a"].values, a0)
    np.testing.assert_array_equal(ds["u"].values, u_all[..., -1])
    keys = _check_common(ds, src, 3, 2, periodic=True)
    assert keys["a"] == "a" and keys["t_out"] == 5
    ds = import_dataset(src, format="fno-mat", t_in=1, t_out=4, subsample=2, n_train=3, n_test=2)
    np.testing.assert_array_equal(ds["a"].values, u_all[:, ::2, ::2, 1])
    np.testing.assert_array_equal(ds["u"].values, u_all[:, ::2, ::2, 4])
    keys = json.loads(ds.attrs["source_keys"])
    assert (keys["a"], keys["t_in"], keys["u"], keys["t_out"]) == ("u", 1, "u", 4)


# ----------------------------------------------------------------------------- pdebench


def test_pdebench_1d_takes_frames_and_the_file_coordinates(tmp_path):
    tensor = _field(10, 7, 32).astype(np.float32)   # (N, Nt, Nx), PDEBench single precision
    x = (np.arange(32) + 0.5) / 32                  # cell centres, as PDEBench stores them
    src = tmp_path / "1D_Advection_Sols_beta0.1.hdf5"
    with h5py.File(src, "w") as f:
        f["tensor"] = tensor
        f["x-coordinate"] = x.astype(np.float32)
        f["t-coordinate"] = np.linspace(0, 2, 8).astype(np.float32)   # Nt + 1 entries
    out = tmp_path / "adv.nc"
    ds = import_dataset(src, format="pdebench", out=out, t_in=2, t_out=5, subsample=2, n_train=6, n_test=4)
    np.testing.assert_array_equal(ds["a"].values, tensor[:, 2, ::2])
    np.testing.assert_array_equal(ds["u"].values, tensor[:, 5, ::2])
    keys = _check_common(ds, src, 6, 4, periodic=True)
    np.testing.assert_allclose(ds["x"].values, x.astype(np.float32)[::2])
    assert keys["t_in"] == 2 and keys["t_out"] == 5
    assert keys["t_out_value"] == pytest.approx(np.linspace(0, 2, 8)[5], rel=1e-6)
    assert load_operator_data(out).a_train.shape == (6, 16)


def test_pdebench_darcy_maps_nu_to_a_and_tensor_to_u(tmp_path):
    nu, tensor = _field(5, 16, 16), _field(5, 1, 16, 16)
    src = tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5"
    with h5py.File(src, "w") as f:
        f["nu"], f["tensor"] = nu.astype(np.float32), tensor.astype(np.float32)
        f["x-coordinate"] = f["y-coordinate"] = ((np.arange(16) + 0.5) / 16).astype(np.float32)
    ds = import_dataset(src, format="pdebench", n_test=1)      # test = the last one, train the rest
    np.testing.assert_array_equal(ds["a"].values, nu.astype(np.float32))
    np.testing.assert_array_equal(ds["u"].values, tensor[:, 0].astype(np.float32))
    keys = _check_common(ds, src, 4, 1, periodic=False)
    assert (keys["a"], keys["u"]) == ("nu", "tensor")


def test_pdebench_per_sample_groups_take_a_channel_and_frames(tmp_path):
    data = _field(4, 5, 8, 8, 2)         # 4 samples of (Nt, nx, ny, channels)
    src = tmp_path / "2D_diff-react_NA_NA.h5"
    with h5py.File(src, "w") as f:
        for i in range(4):
            g = f.create_group(f"{i:04d}")
            g["data"] = data[i]
            g["grid/x"] = g["grid/y"] = np.linspace(-1, 1, 8)
            g["grid/t"] = np.linspace(0, 5, 5)
    ds = import_dataset(src, format="pdebench", channel=1, t_in=0, t_out=3, n_train=3, n_test=1)
    np.testing.assert_array_equal(ds["a"].values, data[:, 0, :, :, 1])
    np.testing.assert_array_equal(ds["u"].values, data[:, 3, :, :, 1])
    keys = _check_common(ds, src, 3, 1, periodic=False)
    np.testing.assert_allclose(ds["x"].values, np.linspace(-1, 1, 8))
    assert keys["channel"] == 1 and keys["t_out_value"] == pytest.approx(3.75)


def test_pdebench_periodic_flag_overrides_the_default(tmp_path):
    src = tmp_path / "1D_Burgers_Sols_Nu0.01.hdf5"
    with h5py.File(src, "w") as f:
        f["tensor"] = _field(4, 3, 8)
    assert import_dataset(src, format="pdebench", n_train=2).attrs["periodic"] == 1
    assert import_dataset(src, format="pdebench", n_train=2, periodic=False).attrs["periodic"] == 0


# ----------------------------------------------------------------------------- neuralop-pt


def test_neuralop_pt_dict_round_trips_and_drops_the_channel_axis(tmp_path):
    torch = pytest.importorskip("torch")
    x, y = _field(6, 1, 16, 16), _field(6, 1, 16, 16)
    src = tmp_path / "darcy_train_16.pt"
    torch.save({"x": torch.tensor(x, dtype=torch.float32), "y": torch.tensor(y, dtype=torch.float32),
                "positional_encoding": torch.zeros(2)}, src)
    ds = import_dataset(src, format="neuralop-pt", subsample=2, n_train=4, n_test=2)
    np.testing.assert_array_equal(ds["a"].values, x.astype(np.float32)[:, 0, ::2, ::2])
    np.testing.assert_array_equal(ds["u"].values, y.astype(np.float32)[:, 0, ::2, ::2])
    keys = _check_common(ds, src, 4, 2, periodic=False)   # "darcy" in the name: not periodic
    assert (keys["a"], keys["u"]) == ("x", "y")


def test_neuralop_pt_refuses_a_pickle_that_is_not_plain_tensors(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    src = tmp_path / "evil.pt"
    torch.save({"x": torch.zeros(2, 4), "y": torch.zeros(2, 4), "obj": math.floor}, src)  # a function
    out = tmp_path / "out.nc"
    assert main(["import", str(src), "--format", "neuralop-pt", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "weights_only=True" in err
    assert not out.exists()


def test_neuralop_pt_without_torch_names_the_extra(tmp_path, monkeypatch, capsys):
    src = tmp_path / "burgers_train_16.pt"
    src.write_bytes(b"not used")
    monkeypatch.setitem(__import__("sys").modules, "torch", None)   # import torch -> ImportError
    out = tmp_path / "out.nc"
    assert main(["import", str(src), "--format", "neuralop-pt", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install -e .[torch]" in err
    assert not out.exists()


# ----------------------------------------------------------------------------- the Well


def _well_file(path, field, bc="periodic"):
    """The Well's layout (docs/data_format.md of PolymathicAI/the_well): t0_fields/NAME
    (n_traj, n_t, nx, ny), dimensions/{time,x,y}, boundary_conditions/*/@bc_type."""
    n_traj, n_t, nx, ny = field.shape
    with h5py.File(path, "w") as f:
        f.attrs["dataset_name"] = "shear_flow"
        f.attrs["simulation_parameters"] = ["Reynolds"]
        f.attrs["Reynolds"] = 1e4
        f.attrs["n_spatial_dims"] = 2
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x", "y"]
        dims["time"] = np.arange(n_t, dtype=np.float32)
        dims["x"] = np.linspace(0, 1, nx, endpoint=False).astype(np.float32)
        dims["y"] = np.linspace(0, 2, ny, endpoint=False).astype(np.float32)
        for axis in ("x", "y"):
            g = f.create_group(f"boundary_conditions/{axis}_periodic")
            g.attrs["bc_type"] = bc
            g.attrs["associated_dims"] = [axis]
        t0 = f.create_group("t0_fields")
        t0.attrs["field_names"] = ["tracer", "pressure"]
        for name, arr in (("tracer", field), ("pressure", -field)):
            d = t0.create_dataset(name, data=arr.astype(np.float32))
            d.attrs["time_varying"], d.attrs["sample_varying"] = True, True
        f.create_group("t1_fields").attrs["field_names"] = []


def test_well_gives_one_step_pairs_split_by_trajectory(tmp_path):
    field = _field(5, 6, 8, 8).astype(np.float32)
    src = tmp_path / "shear_flow_Reynolds_1e4.hdf5"
    _well_file(src, field)
    out = tmp_path / "well.nc"
    ds = import_dataset(src, format="well", out=out, field="tracer", steps="1:4", n_train=3, n_test=2)
    want_a = np.concatenate([field[tr, 1:4] for tr in range(5)])
    want_u = np.concatenate([field[tr, 2:5] for tr in range(5)])
    np.testing.assert_array_equal(ds["a"].values, want_a)
    np.testing.assert_array_equal(ds["u"].values, want_u)
    keys = _check_common(ds, src, 3 * 3, 2 * 3, periodic=True)   # 3 pairs per trajectory
    assert keys["steps"] == [1, 2, 3] and keys["trajectories"] == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(ds["y"].values, np.linspace(0, 2, 8, endpoint=False).astype(np.float32))
    assert ds.attrs["equation"] == "shear_flow"
    assert load_operator_data(out).a_test.shape == (6, 8, 8)


def test_well_chosen_trajectories_and_wall_boundaries(tmp_path):
    field = _field(6, 4, 8, 8).astype(np.float32)
    src = tmp_path / "rayleigh.hdf5"
    _well_file(src, field, bc="wall")
    ds = import_dataset(src, format="well", field="pressure", trajectories="5,1,3", steps=[0],
                        n_train=2, n_test=1, subsample=2)
    np.testing.assert_array_equal(ds["a"].values, -field[[5, 1, 3], 0, ::2, ::2])
    np.testing.assert_array_equal(ds["u"].values, -field[[5, 1, 3], 1, ::2, ::2])
    assert ds.attrs["periodic"] == 0


# ----------------------------------------------------------------------------- npz / npy


def test_npz_with_x_y_keys_and_two_npy_files(tmp_path):
    a, u = _field(5, 1, 12), _field(5, 1, 12)
    src = tmp_path / "pairs.npz"
    np.savez(src, x=a, y=u)
    ds = import_dataset(src, format="npz", n_train=3, n_test=2, periodic=False)
    np.testing.assert_array_equal(ds["a"].values, a[:, 0])
    np.testing.assert_allclose(ds["x"].values, np.linspace(0, 1, 12))   # non-periodic grid
    _check_common(ds, src, 3, 2, periodic=False)
    np.save(tmp_path / "a.npy", a[:, 0])
    np.save(tmp_path / "u.npy", u[:, 0])
    ds = import_dataset(tmp_path / "a.npy", format="npy", target_key=str(tmp_path / "u.npy"), n_train=4)
    np.testing.assert_array_equal(ds["u"].values, u[:, 0])
    assert list(np.asarray(ds["split"]).astype(str)) == ["train"] * 4 + ["test"]


def test_calibration_split_sits_between_train_and_test(tmp_path):
    src = tmp_path / "d.npz"
    a = _field(10, 8)
    np.savez(src, a=a, u=a * 2)
    ds = import_dataset(src, format="npz", n_train=5, n_calibration=2, n_test=3)
    assert list(np.asarray(ds["split"]).astype(str)) == ["train"] * 5 + ["calibration"] * 2 + ["test"] * 3
    data = load_operator_data(ds)   # training ignores the calibration samples
    assert data.a_train.shape[0] == 5 and data.a_test.shape[0] == 3


# ----------------------------------------------------------------------------- helpers


def test_split_ranges_defaults_and_test_from():
    assert split_ranges(10) == [("train", 0, 8), ("test", 8, 10)]                      # last fifth
    assert split_ranges(4) == [("train", 0, 3), ("test", 3, 4)]                        # at least one
    assert split_ranges(10, n_test=3) == [("train", 0, 7), ("test", 7, 10)]
    assert split_ranges(10, n_train=4) == [("train", 0, 4), ("test", 4, 10)]
    assert split_ranges(10, n_train=2, test_from=6, n_test=3) == [("train", 0, 2), ("test", 6, 9)]
    with pytest.raises(ValueError, match="overlap"):
        split_ranges(10, n_train=5, test_from=3)


def test_parse_indices_forms():
    assert parse_indices("2:8:3", 10, "t").tolist() == [2, 5]
    assert parse_indices("1,-1", 10, "t").tolist() == [1, 9]
    assert parse_indices(None, 3, "t").tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="outside"):
        parse_indices("12", 10, "trajectory")


# ----------------------------------------------------------------------------- bad input (CLI)


def _bad(tmp_path, capsys, argv, match):
    out = tmp_path / "bad.nc"
    code = main(["import", *argv, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and match in err, err
    assert not out.exists() and not list(tmp_path.glob(".bad.nc*"))


@pytest.fixture
def burgers_mat(tmp_path):
    src = tmp_path / "b.mat"
    scipy.io.savemat(src, {"a": _field(6, 16), "u": _field(6, 16)})
    return src


def test_unknown_keys_name_the_keys_and_the_closest_layout(tmp_path, capsys):
    src = tmp_path / "looks_like_pdebench.h5"
    with h5py.File(src, "w") as f:
        f["tensor"], f["x-coordinate"] = _field(3, 4, 8), np.arange(8.0)
    _bad(tmp_path, capsys, [str(src), "--format", "fno-mat"], "closest to pdebench time series")
    _bad(tmp_path, capsys, [str(src), "--format", "fno-mat"], "tensor (3, 4, 8)")


def test_samples_beyond_the_file(tmp_path, capsys, burgers_mat):
    _bad(tmp_path, capsys, [str(burgers_mat), "--format", "fno-mat", "--n-train", "5", "--n-test", "3"],
         "the file has only 6")


def test_target_time_not_after_input_time(tmp_path, capsys):
    src = tmp_path / "1D_Advection.hdf5"
    with h5py.File(src, "w") as f:
        f["tensor"] = _field(4, 5, 8)
    _bad(tmp_path, capsys, [str(src), "--format", "pdebench", "--t-in", "3", "--t-out", "3"], "not after")
    _bad(tmp_path, capsys, [str(src), "--format", "pdebench", "--t-in", "3", "--t-out", "1"], "not after")


def test_nan_in_the_data(tmp_path, capsys):
    a = _field(6, 16)
    a[4, 3] = np.nan
    src = tmp_path / "nan.mat"
    scipy.io.savemat(src, {"a": a, "u": _field(6, 16)})
    _bad(tmp_path, capsys, [str(src), "--format", "fno-mat", "--n-train", "5"], "sample 4 of the file")


def test_a_and_u_on_different_grids(tmp_path, capsys):
    src = tmp_path / "grids.npz"
    np.savez(src, a=_field(4, 16), u=_field(4, 8))
    _bad(tmp_path, capsys, [str(src), "--format", "npz"], "must share one grid")


def test_missing_file_and_unknown_format(tmp_path, capsys, burgers_mat):
    _bad(tmp_path, capsys, [str(tmp_path / "nope.mat"), "--format", "fno-mat"], "no such file")
    _bad(tmp_path, capsys, [str(burgers_mat), "--format", "matlab"], "unknown format 'matlab'")


def test_cli_writes_the_file_and_prints_json(tmp_path, capsys, burgers_mat):
    out = tmp_path / "ok.nc"
    assert main(["import", str(burgers_mat), "--format", "fno-mat", "--out", str(out), "--n-train", "4",
                 "--subsample", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["n_train"], result["n_test"], result["grid"], result["periodic"]) == (4, 2, "8", True)
    assert read_dataset(out)["a"].shape == (6, 8)


# ----------------------------------------------------------------------------- laziness


def _bytes_read() -> int:
    """Bytes this process has read from files so far (rchar of /proc/self/io, Linux)."""
    with open("/proc/self/io") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("rchar:"))


def _read_cost(src, fmt, **kw):
    import_dataset(src, format=fmt, n_train=1, n_test=1)   # warm-up: modules imported on first use
    before = _bytes_read()
    ds = import_dataset(src, format=fmt, **kw)
    return _bytes_read() - before, ds


lazy = pytest.mark.skipif(not __import__("os").path.exists("/proc/self/io"), reason="needs /proc/self/io")


@lazy
def test_a_pdebench_subset_reads_only_its_frames(tmp_path):
    n, nt, nx = 300, 6, 1024              # 7.4 MB of float32 (N, Nt, Nx), contiguous
    src = tmp_path / "1D_Burgers_big.hdf5"
    with h5py.File(src, "w") as f:
        f["tensor"] = np.ones((n, nt, nx), np.float32)
    read, ds = _read_cost(src, "pdebench", n_train=8, n_test=4, t_in=0, t_out=5, subsample=4)
    assert ds["a"].shape == (12, 256)
    frames = 2 * 12 * nx * 4              # each selected 4 KB frame is read whole (one page anyway)
    # measured: the frames plus ~40 kB of HDF5 metadata; HDF5's default 64 KiB sieve buffer
    # would read 64 KiB per frame (1.5 MB here)
    assert read < frames + 64 * 1024
    assert read < src.stat().st_size / 40


@lazy
def test_a_matlab_v73_subset_reads_only_its_columns(tmp_path):
    n, s = 4000, 512                      # MATLAB (N, s) float64, stored (s, N): 2 x 16 MB
    src = tmp_path / "burgers_v73.mat"
    _matlab_v73(src, {"a": np.ones((n, s)), "u": np.ones((n, s))})
    read, ds = _read_cost(src, "fno-mat", n_train=16, n_test=4, subsample=4)
    assert ds["a"].shape == (20, 128)
    wanted = 2 * 128 * 20 * 8             # 128 strided rows of 20 contiguous samples, a and u
    # measured: ~41 kB + metadata; with the default sieve buffer every row costs 64 KiB (16 MB)
    assert read < wanted + 64 * 1024


def test_h5_take_selects_like_h5py(tmp_path):
    arr = RNG.standard_normal((6, 3, 9, 2)).astype(np.float32)
    with h5py.File(tmp_path / "t.h5", "w") as f:
        f["d"] = arr
    with io._open_h5(tmp_path / "t.h5") as f:
        for index in [(slice(1, 5), 2, slice(None, None, 4), 1), (3, [0, 2], slice(1, 9, 3), slice(None)),
                      (slice(None), 0, 8, 0), (slice(0, 6, 5), slice(None), slice(None), 1)]:
            np.testing.assert_array_equal(io._h5_take(f["d"], index), f["d"][index])
