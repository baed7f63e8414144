"""Figures: every panel draws, history curves appear, files are written atomically."""

import os

import numpy as np
import pytest

from pdes.exact import exact_solution
from pdes.plotting import history_vars, plot_solution
from pdes.problems import HEAT, HEAT2D
from pdes.solution import solution_dataset

PNG = b"\x89PNG\r\n\x1a\n"


def heat_dataset(with_history=False):
    t, x = np.linspace(0, 1, 5), np.linspace(0, 1, 17)
    u = exact_solution(HEAT, t, x)
    ds = solution_dataset(u + 1e-6, t=t, x=x, equation="heat", method="pinn", u_true=u)
    if with_history:
        step = np.arange(1, 101)
        ds = ds.assign_coords(step=step)
        ds["history_rel_l2"] = ("step", 1.0 / step)
        ds["history_loss"] = ("step", 10.0 / step**2)
        ds["history_wall_time_s"] = ("step", 0.1 * step)
    return ds


def test_solution_figure_with_training_history(tmp_path):
    import matplotlib
    from matplotlib.figure import Figure

    backend = matplotlib.get_backend()
    ds = heat_dataset(with_history=True)
    assert history_vars(ds) == ["history_rel_l2", "history_loss", "history_wall_time_s"]
    fig = plot_solution(ds, tmp_path / "fig.png", times=[0.0, 0.5])
    assert isinstance(fig, Figure) and len(fig.axes) >= 5  # u, u_true, error, slices, history (+ colorbars)
    assert (tmp_path / "fig.png").read_bytes()[:8] == PNG and os.listdir(tmp_path) == ["fig.png"]
    assert matplotlib.get_backend() == backend  # a notebook's backend is never switched


def test_two_dimensional_figure_shows_the_last_time(tmp_path):
    t, x = np.linspace(0, 1, 3), np.linspace(0, 1, 9)
    u = exact_solution(HEAT2D, t, x, x)
    ds = solution_dataset(u, t=t, x=x, y=x, equation="heat2d", method="exact")
    plot_solution(ds, tmp_path / "h2.png")
    assert (tmp_path / "h2.png").read_bytes()[:8] == PNG


def test_unknown_figure_format_is_rejected_before_drawing(tmp_path):
    with pytest.raises(ValueError, match="figure file"):
        plot_solution(heat_dataset(), tmp_path / "fig.bmp")
    assert os.listdir(tmp_path) == []
