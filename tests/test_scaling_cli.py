"""python -m scaling: estimate, exercises and fit from the command line (JSON results, exit codes)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scaling.__main__ import main

REPO = Path(__file__).resolve().parents[1]


def _json(capsys, argv):
    assert main(argv + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_estimate_loss_json_with_suffixed_numbers(capsys):
    out = _json(capsys, ["estimate", "loss", "--N", "70B", "--D", "1.4T"])
    assert out["rows"][0]["N"] == 7e10 and out["rows"][0]["D"] == 1.4e12
    assert out["rows"][0]["loss"] == pytest.approx(1.936645, abs=2e-6)   # see test_scaling_estimates
    assert out["limit_E"] == 1.69


def test_estimate_loss_with_unlimited_data_is_valid_json(capsys):
    out = _json(capsys, ["estimate", "loss", "--law", "kaplan", "--N", "1e9"])
    assert out["rows"][0]["D"] is None and out["rows"][0]["loss"] == pytest.approx(2.375640, abs=2e-6)


def test_estimate_loss_with_custom_constants(capsys):
    out = _json(capsys, ["estimate", "loss", "--N", "100", "--E", "1", "--A", "10", "--B", "1", "--alpha", "0.5",
                         "--beta", "1"])
    assert out["rows"][0]["loss"] == pytest.approx(2.0)       # 1 + 10 / sqrt(100)


def test_estimate_compute_attention_memory_quantization(capsys):
    c = _json(capsys, ["estimate", "compute", "--N", "70e9", "--D", "1.4e12"])
    assert c["C"] == pytest.approx(5.88e23) and len(c["strategies"]) == 5
    a = _json(capsys, ["estimate", "attention", "--n-ctx", "2048", "--to", "8192"])
    assert a["flops_ratio"] == 16 and a["memory_ratio"] == 16
    m = _json(capsys, ["estimate", "memory", "--N", "8e9"])
    assert m["weights_bytes"]["int4"] == 4e9 and m["training_mixed"]["total_bytes"] == 128e9
    q = _json(capsys, ["estimate", "quantization", "--size-gb", "40"])
    assert [r["GB"] for r in q["rows"]] == [20.0, 10.0]


def test_exercises_print_formula_and_answer(capsys):
    assert main(["exercises"]) == 0
    text = capsys.readouterr().out
    assert text.count("formula:") == text.count("answer:") == 9
    assert "operations x16" in text and "int8 20 GB, int4 10 GB" in text


def test_fit_power_form_from_csv_with_plot(tmp_path, capsys):
    f = tmp_path / "runs.csv"
    rows = [(n, 1.5 + 50 * n**-0.3) for n in (1e3, 1e4, 1e5, 1e6, 1e7)]
    f.write_text("params,val_loss\n" + "".join(f"{n},{v}\n" for n, v in rows))
    out = _json(capsys, ["fit", str(f), "--form", "power", "--plot", str(tmp_path / "plots")])
    assert out["alpha"] == pytest.approx(0.3, rel=1e-3)      # noise-free data (see test_scaling_laws)
    assert Path(out["plots"][0]).is_file()


@pytest.mark.parametrize(("text", "argv"), [
    ("", ["--form", "power"]),
    ("N,loss\n", ["--form", "power"]),
    ("N,loss\n1,2\n2,oops\n", ["--form", "power"]),
    ("N,foo\n1,2\n2,3\n3,4\n", ["--form", "power"]),
    ("N,loss\n1,2\n2,0\n3,1\n", ["--form", "power"]),
    ("N,loss\n-1,2\n2,1\n3,1\n", ["--form", "power"]),
    ("N,loss\n1,2\n2,1\n", ["--form", "power"]),
    ("N,D,loss\n1,1,2\n2,2,1\n3,3,1\n", ["--form", "chinchilla"]),
    ("N,loss\n1,2\n2,1\n3,1\n", ["--form", "chinchilla"]),
])
def test_fit_bad_input_is_one_line_and_exit_2(tmp_path, capsys, text, argv):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    assert main(["fit", str(f), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("scaling: error:")


def test_missing_file_and_bad_flag_exit_2(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "nope.csv")]) == 2
    assert main(["estimate", "loss", "--N", "lots"]) == 2     # argparse's error, returned by run_cli
    assert main(["estimate", "--help"]) == 0


def test_estimate_loss_table_shows_unlimited_data_as_inf(capsys):
    assert main(["estimate", "loss", "--law", "kaplan", "--N", "1e9"]) == 0
    rows = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(rows) if line.split() == ["N", "D", "loss"])
    assert rows[header + 2].split()[1] == "inf"


def test_module_runs_as_a_script():
    r = subprocess.run([sys.executable, "-m", "scaling", "estimate", "attention", "--to", "8192", "--json"],
                       cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(r.stdout)["flops_ratio"] == 16
