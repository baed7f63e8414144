"""The fitter: recovery of known laws, Epoch AI's refit of the Chinchilla data, bootstrap, bad input."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scaling.laws import csv_text, drop_highest_loss, fit_chinchilla, fit_power_law, fit_runs, load_runs

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    env = os.environ.get("SCIML_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


CHINCHILLA_CSV = _shared_data() / "chinchilla_svg_extracted.csv"


def test_importing_scaling_does_not_import_torch():
    code = "import scaling, scaling.laws, scaling.estimates, sys; assert 'torch' not in sys.modules, 'torch'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_plots_import_one_way_and_leave_pyplot_alone():
    # scaling.plots draws on Figure objects: it imports neither the experiment (which imports it) nor pyplot
    code = ("import sys, scaling.plots, scaling.pde; bad = {'scaling.experiment', 'matplotlib.pyplot', 'torch'} "
            "& set(sys.modules); assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_plot_functions_return_a_figure_and_keep_the_backend(tmp_path):
    import matplotlib
    from matplotlib.figure import Figure

    from scaling.plots import plot_fit, plot_power_fit

    backend = matplotlib.get_backend()
    x = np.geomspace(1e3, 1e7, 5)
    data = {"N": x, "loss": 1.5 + 50 * x**-0.3}
    fit = fit_power_law(x, data["loss"])
    assert isinstance(plot_power_fit(fit, data), Figure)
    assert plot_fit(fit, data, tmp_path) == [tmp_path / "fit_power_N.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["fit_power_N.png"]
    assert matplotlib.get_backend() == backend


def test_csv_text_is_what_load_runs_reads(tmp_path):
    rows = [{"N": 1000, "D": 2e6, "loss": 3.5}, {"N": 4000, "D": 2e6, "loss": 3.1}]
    (tmp_path / "runs.csv").write_text(csv_text(rows), newline="")
    data = load_runs(tmp_path / "runs.csv")
    assert data["N"].tolist() == [1000, 4000] and data["loss"].tolist() == [3.5, 3.1]
    with pytest.raises(ValueError, match="no rows"):
        csv_text([])


def test_power_law_recovers_exact_constants():
    x = np.geomspace(1e3, 1e8, 12)
    y = 1.5 + 50.0 * x**-0.3
    fit = fit_power_law(x, y)
    # noise-free data: the minimum is the truth; L-BFGS stops at ftol 1e-15 on the objective, which leaves
    # log residuals ~1e-8, i.e. parameters good to ~1e-5 relative
    assert fit.params["E"] == pytest.approx(1.5, rel=1e-4)
    assert fit.params["A"] == pytest.approx(50.0, rel=1e-3)
    assert fit.params["alpha"] == pytest.approx(0.3, rel=1e-4)


def test_chinchilla_form_recovers_exact_constants_on_a_grid():
    N, D = (a.ravel() for a in np.meshgrid(np.geomspace(1e7, 1e10, 6), np.geomspace(1e9, 1e12, 6)))
    L = 1.69 + 406.4 / N**0.34 + 410.7 / D**0.28
    fit = fit_chinchilla(N, D, L, n_starts=8)
    p = fit.params
    # as above, noise-free: limited by the optimiser's stopping rule (ftol 1e-15)
    assert p["E"] == pytest.approx(1.69, rel=1e-3)
    assert p["alpha"] == pytest.approx(0.34, abs=1e-3) and p["beta"] == pytest.approx(0.28, abs=1e-3)
    assert p["A"] == pytest.approx(406.4, rel=2e-2) and p["B"] == pytest.approx(410.7, rel=2e-2)
    fr = fit.frontier(np.array([1e21, 1e23]))
    assert np.allclose(6 * fr["N_opt"] * fr["D_opt"], [1e21, 1e23], rtol=1e-12)
    assert fr["a"] + fr["b"] == pytest.approx(1.0)


@pytest.mark.skipif(not CHINCHILLA_CSV.is_file(),
                    reason=f"Chinchilla data not found at {CHINCHILLA_CSV} (set SCIML_SHARED_DATA to its folder)")
def test_refit_of_chinchilla_data_reproduces_epoch_ai():
    # Besiroglu et al. 2024 (Epoch AI): tokens = C / (6N), the five highest-loss points dropped,
    # Huber delta 1e-3 on log loss, L-BFGS. Their estimates: E 1.817, A 482.01, B 2085.43,
    # alpha 0.3478, beta 0.3658; 95% intervals E [1.769, 1.871], alpha [0.317, 0.373], beta [0.331, 0.415].
    data = drop_highest_loss(load_runs(CHINCHILLA_CSV), 5)
    assert data["loss"].size == 240
    p = fit_chinchilla(data["N"], data["D"], data["loss"], n_starts=8).params
    assert 1.769 < p["E"] < 1.871 and 0.317 < p["alpha"] < 0.373 and 0.331 < p["beta"] < 0.415
    assert p["E"] == pytest.approx(1.817, abs=0.005)
    assert p["alpha"] == pytest.approx(0.348, abs=0.005) and p["beta"] == pytest.approx(0.366, abs=0.005)
    # A and B lie along flat valleys of the objective (A trades with alpha, B with beta): Epoch's own
    # bootstrap interval for B spans about a factor 4; optimiser stopping moves them by a few percent.
    assert p["A"] == pytest.approx(482.0, rel=0.05) and p["B"] == pytest.approx(2085.0, rel=0.05)


def test_bootstrap_interval_brackets_estimate_and_scales_with_noise():
    x = np.geomspace(1e4, 1e8, 15)
    eps = np.random.default_rng(1).normal(0, 1, x.size)
    widths = {}
    for sigma in (0.01, 0.001):                       # 1% and 0.1% multiplicative noise, same draws
        y = (2.0 + 30.0 * x**-0.25) * np.exp(sigma * eps)
        fit = fit_power_law(x, y, bootstrap=20, seed=0, n_starts=8)
        lo, hi = fit.ci["alpha"]
        assert lo <= fit.params["alpha"] <= hi
        assert abs(fit.params["alpha"] - 0.25) < 3 * (hi - lo)   # the truth within a few interval widths
        widths[sigma] = hi - lo
    # for small noise the estimate is linear in the noise, so the width is ~10x; allow half of that
    assert widths[0.01] > 5 * widths[0.001]
    assert fit.n_bootstrap == 20 and fit.to_dict()["ci"]["alpha"] == list(fit.ci["alpha"])


@pytest.mark.parametrize(("x", "y", "match"), [
    ([1, 2, 3], [2, -1, 1], "loss must be positive"),
    ([1, 0, 3], [2, 1, 1], "N must be positive"),
    ([1, 2, np.nan], [2, 1, 1], "N must be positive"),
    ([1, 2], [2, 1], "3 parameters but only 2 points"),
    ([1, 2, 3, 4], [2, 1, 1], "has 4 values but loss has 3"),
])
def test_power_fit_rejects_bad_input(x, y, match):
    with pytest.raises(ValueError, match=match):
        fit_power_law(np.array(x, float), np.array(y, float))


def test_chinchilla_fit_needs_five_points():
    with pytest.raises(ValueError, match="5 parameters but only 4 points"):
        fit_chinchilla(np.ones(4), np.ones(4), np.ones(4))


@pytest.mark.parametrize(("text", "match"), [
    ("", "is empty"),
    ("N,loss\n", "no data rows"),
    ("N,foo\n1,2\n", "no loss column"),
    ("N,loss\n1,abc\n", "not a number"),
    ("N,loss\n1,2,3\n", "has 3 cells"),
])
def test_load_runs_rejects_malformed_csv(tmp_path, text, match):
    f = tmp_path / "runs.csv"
    f.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_runs(f)


def test_load_runs_derives_tokens_from_compute(tmp_path):
    f = tmp_path / "runs.csv"
    f.write_text("Model Size,Training FLOP,loss\n1e6,6e12,3.0\n")
    data = load_runs(f)
    assert data["D"][0] == pytest.approx(1e6)    # C / (6 N) = 6e12 / 6e6
    with pytest.raises(ValueError, match="power form over D"):
        fit_runs({"loss": data["loss"], "N": data["N"]}, form="power", variable="D")
