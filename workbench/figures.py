"""The README gallery's PDE figures (``python -m workbench figures``); the other gallery figures
come from each package's own command line (``docs/make_figures.sh``)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["FIGURE_STEPS", "figures_convergence", "figures_solutions", "make_figures"]


def figures_solutions(out: Path) -> list[str]:
    """Spectral solutions of the presets with their exact references: burgers/heat/wave/heat2d.png."""
    from pdes.plotting import plot_solution
    from pdes.solve import solve

    paths = []
    for name, kwargs in (("burgers", {}), ("heat", {"nx": 129, "nt": 101}), ("wave", {"nx": 129, "nt": 101}),
                         ("heat2d", {"nx": 65, "nt": 11})):
        ds = solve(name, method="spectral", **kwargs)
        path = out / f"{name}.png"
        plot_solution(ds, path, title=f"{name} preset: spectral vs exact")
        paths.append(str(path))
    return paths


def figures_convergence(out: Path) -> list[str]:
    """Convergence of the references: spectral in grid points, ETDRK4 in dt, Cole–Hopf in nodes."""
    from pdes.convergence import cole_hopf_nodes_study, etdrk4_dt_study, spectral_points_study
    from pdes.plotting import plot_convergence

    path = out / "convergence.png"
    plot_convergence(spectral_points_study(), etdrk4_dt_study(), cole_hopf_nodes_study(), path)
    return [str(path)]


# Each figure step takes the output folder and returns the paths it wrote.
FIGURE_STEPS: list[tuple[str, Callable[[Path], list[str]]]] = [
    ("solutions", figures_solutions),
    ("convergence", figures_convergence),
]


def make_figures(out: str | Path, *, only: list[str] | None = None) -> list[str]:
    """Run the figure steps (all, or those in ``only``) into ``out``; return the written paths."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out must be a folder, got the file {str(out)!r}")
    paths: list[str] = []
    for name, step in FIGURE_STEPS:
        if only and name not in only:
            continue
        print(f"figures: {name} ...", file=sys.stderr, flush=True)
        paths.extend(step(out))
    return paths
