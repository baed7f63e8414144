"""python -m workbench demo --quick and figures: every step runs, writes its files and reports its errors.

The full demo (``make demo``) trains longer; this checks the same code path with tiny trainings
(``--quick``: PINN 100 + 100 steps, FNO 4 epochs, a 2-member ensemble), so the error bounds
below are loose sanity bounds, not accuracy claims.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from workbench.__main__ import main
from workbench.demo import DEMO_STEPS


def test_demo_lists_the_headline_steps():
    assert [name for name, _ in DEMO_STEPS] == ["reference", "pinn", "fno", "calibration"]


@pytest.mark.slow
def test_quick_demo_runs_every_step_and_ends_with_a_table(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SCIML_CACHE", str(tmp_path / "cache"))  # --quick never reads or writes the cache
    out_dir = tmp_path / "out"
    assert main(["demo", "--out", str(out_dir), "--quick", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = {r["step"]: [] for r in result["rows"]}
    for r in result["rows"]:
        rows[r["step"]].append(r)
    assert set(rows) == {"burgers", "fno", "calibration"}
    methods = [r["method"] for r in rows["burgers"]]
    assert any(m.startswith("exact") for m in methods) and any(m.startswith("spectral") for m in methods)
    assert any(m.startswith("PINN") for m in methods)
    for r in result["rows"]:
        # A tiny training still beats the zero prediction (rel L2 = 1); NaN would fail here too.
        assert 0.0 <= r["rel_l2"] < 1.0, r
    nx = sorted(int(r["method"].split("nx=")[1].split()[0]) for r in rows["fno"])
    assert nx == [256, 1024]
    for name in ("burgers_exact.nc", "burgers_spectral.nc", "burgers_pinn.nc", "burgers_pinn.png",
                 "fno_burgers_pred.nc", "fno_burgers_samples.png", "calibration_pred.nc",
                 "calibration/report.html", "calibration/metrics.json"):
        assert (out_dir / name).is_file(), name
    assert not (tmp_path / "cache").exists()


@pytest.mark.slow
def test_demo_table_names_the_files(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--only", "reference"]) == 0
    text = capsys.readouterr().out
    assert "files" in text and "burgers_spectral.nc" in text and "total" in text


@pytest.mark.slow
def test_demo_reference_writes_both_solutions_a_figure_and_agrees_with_cole_hopf(tmp_path, capsys):
    from pdes.solution import read_dataset

    out_dir = tmp_path / "out"
    assert main(["demo", "--out", str(out_dir), "--only", "reference", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert sorted(p.name for p in out_dir.iterdir()) == ["burgers_exact.nc", "burgers_spectral.nc",
                                                         "burgers_spectral.png"]
    spectral = [r for r in result["rows"] if r["method"].startswith("spectral")][0]
    assert spectral["rel_l2"] < 1e-8  # the default spectral run agrees with Cole-Hopf
    exact = read_dataset(out_dir / "burgers_exact.nc")
    np.testing.assert_allclose(exact["u"].isel(t=0), -np.sin(np.pi * exact.x), atol=1e-15)


def test_figures_convergence_writes_the_gallery_png(tmp_path, capsys):
    assert main(["figures", "--out", str(tmp_path), "--only", "convergence"]) == 0
    assert (tmp_path / "convergence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "wrote" in capsys.readouterr().out


def test_workbench_help_and_bad_flags(capsys):
    assert main(["--help"]) == 0 and "demo" in capsys.readouterr().out
    assert main(["demo", "--only", "nothing"]) == 2
    assert main(["demo", "--out", __file__]) == 2 and "folder" in capsys.readouterr().err
