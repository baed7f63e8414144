"""python -m pdes: solve, compare; exit codes and no half-written files on bad input."""

import json
import os

import pytest

from pdes.__main__ import main
from pdes.solution import REQUIRED_ATTRS, read_dataset

SMALL = ["--nx", "17", "--nt", "5"]


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("equation", ["heat", "wave", "burgers", "heat2d"])
def test_solve_exact_writes_a_contract_dataset(equation, tmp_path, capsys):
    path = tmp_path / f"{equation}.nc"
    code, out, err = run(["solve", equation, "--method", "exact", *SMALL, "--out", path], capsys)
    assert code == 0, err
    ds = read_dataset(path)
    assert ds["u"].dims == (("t", "x", "y") if equation == "heat2d" else ("t", "x"))
    assert ds.sizes["x"] == 17 and ds.sizes["t"] == 5
    assert set(REQUIRED_ATTRS) <= set(ds.attrs) and ds.attrs["equation"] == equation
    assert "wrote" in out


def test_solve_json_has_the_headline_keys_and_spectral_matches_exact(tmp_path, capsys):
    code, out, _ = run(["solve", "heat", "--method", "spectral", *SMALL, "--alpha", "0.05", "--json"], capsys)
    assert code == 0
    result = json.loads(out)
    assert {"rel_l2", "max_abs", "wall_time_s"} <= set(result)
    assert result["rel_l2"] < 1e-13  # the preset is a finite sine series: exact up to rounding


def test_solve_plot_writes_a_png(tmp_path, capsys):
    png = tmp_path / "wave.png"
    code, _, err = run(["solve", "wave", "--method", "spectral", *SMALL, "--plot", png], capsys)
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(tmp_path)) == ["wave.png"]  # no temporary left


def test_config_file_sets_problem_and_grid(tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text("[problem]\nnu = 0.05\nt_end = 0.5\n[solve]\nnx = 16\nnt = 3\n")
    code, out, err = run(["solve", "burgers", "--config", cfg, "--out", tmp_path / "b.nc", "--json"], capsys)
    assert code == 0, err
    ds = read_dataset(tmp_path / "b.nc")
    assert ds.sizes["x"] == 16 and float(ds.t[-1]) == 0.5
    assert json.loads(ds.attrs["params"])["nu"] == 0.05


def test_compare_reports_errors_and_says_when_it_interpolated(tmp_path, capsys):
    a, b = tmp_path / "a.nc", tmp_path / "b.nc"
    assert run(["solve", "heat", "--method", "spectral", "--nx", "33", "--nt", "9", "--out", a], capsys)[0] == 0
    assert run(["solve", "heat", "--method", "exact", *SMALL, "--out", b], capsys)[0] == 0
    code, out, _ = run(["compare", a, b, "--json"], capsys)
    assert code == 0
    result = json.loads(out)
    assert result["interpolated"] and result["rel_l2"] < 1e-13  # 17 x 5 points are a subset of 33 x 9
    assert {"rel_l2", "max_abs", "rel_l2_per_t", "t"} <= set(result) and len(result["t"]) == 5
    code, out, _ = run(["compare", a, b], capsys)
    assert code == 0 and "interpolated" in out and "error per time" in out


def test_help_on_every_level(capsys):
    for argv in (["--help"], ["solve", "--help"], ["compare", "--help"], ["identify", "--help"]):
        code, out, _ = run(argv, capsys)
        assert code == 0 and "usage" in out


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["solve", "burgers", "--nu", "0"], "nu"),
        (["solve", "burgers", "--nu", "-0.1"], "nu"),
        (["solve", "heat", "--alpha", "-1"], "alpha"),
        (["solve", "wave", "--c", "0"], "c"),
        (["solve", "heat", "--nx", "7"], "nx"),
        (["solve", "heat", "--nt", "1"], "nt"),
        (["solve", "heat", "--t-end", "0"], "t_end"),
        (["solve", "heat", "--nu", "0.1"], "--nu"),
        (["solve", "heat", "--method", "exact", "--steps", "10"], "--steps"),
        (["solve", "heat", "--config", "missing.toml"], "missing.toml"),
    ],
)
def test_bad_values_exit_2_with_one_line_and_no_file(argv, word, tmp_path, capsys):
    out_file = tmp_path / "never.nc"
    code, _, err = run([*argv, "--out", out_file, "--plot", tmp_path / "never.png"], capsys)
    assert code == 2
    assert err.startswith("pdes: error:") and err.count("\n") == 1 and word in err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["solve", "navier-stokes"],
        ["solve", "heat", "--method", "magic"],
        ["solve", "burgers", "--nu", "nan"],
        ["solve", "burgers", "--nu", "inf"],
        ["solve", "heat", "--nx", "ten"],
        ["frobnicate"],
    ],
)
def test_argparse_rejections_exit_2_and_write_nothing(argv, tmp_path, capsys):
    code, _, err = run([*argv, "--out", tmp_path / "never.nc"], capsys)
    assert code == 2 and "error" in err
    assert os.listdir(tmp_path) == []


def test_out_file_must_be_netcdf_before_any_work(tmp_path, capsys):
    code, _, err = run(["solve", "heat", "--out", tmp_path / "u.txt"], capsys)
    assert code == 2 and "--out" in err and os.listdir(tmp_path) == []


def test_compare_rejects_missing_unreadable_and_mismatched_files(tmp_path, capsys):
    good = tmp_path / "heat.nc"
    assert run(["solve", "heat", *SMALL, "--out", good], capsys)[0] == 0
    burgers = tmp_path / "burgers.nc"
    assert run(["solve", "burgers", *SMALL, "--out", burgers], capsys)[0] == 0
    junk = tmp_path / "junk.nc"
    junk.write_bytes(b"\x00not netcdf")
    for argv, word in (
        (["compare", tmp_path / "missing.nc", good], "no such file"),
        (["compare", junk, good], "not a readable netCDF"),
        (["compare", good, burgers], "different domains"),
        (["compare", good, good, "--var", "u_true"], "no variable"),
    ):
        code, out, err = run(argv, capsys)
        assert code == 2 and word in err and err.count("\n") == 1 and out == ""


def test_moved_commands_forward_to_the_workbench_with_a_note(capsys):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "pdes", "figures", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "python -m workbench figures" in out.stderr and "--only" in out.stdout


def test_spectral_points_flag_and_its_deprecated_alias(tmp_path, capsys):
    code, out, _ = run(["solve", "heat", "--method", "spectral", *SMALL, "--points", "32", "--json"], capsys)
    assert code == 0 and json.loads(out)["rel_l2"] < 1e-10
    code, out, err = run(["solve", "heat", "--method", "spectral", *SMALL, "--modes", "32", "--json"], capsys)
    assert code == 0 and "--modes is deprecated" in err and "--points" in err
