"""PDE problems, exact and spectral solutions, PINNs, and the solution data model."""

from pdes.exact import exact_solution
from pdes.inverse import IdentifyResult, identify, plot_identify, synthetic_observations
from pdes.plotting import plot_solution
from pdes.problems import (
    BURGERS,
    HEAT,
    HEAT2D,
    OPERATOR_BURGERS,
    WAVE,
    Burgers,
    Heat,
    Heat2D,
    PeriodicBurgers,
    Wave,
)
from pdes.solution import (
    compare,
    operator_dataset,
    read_dataset,
    rel_l2,
    solution_dataset,
    write_dataset,
)
from pdes.solve import solve
from pdes.spectral import solve_burgers_dirichlet, solve_periodic_burgers, solve_spectral

__all__ = [
    "BURGERS",
    "HEAT",
    "HEAT2D",
    "OPERATOR_BURGERS",
    "WAVE",
    "Burgers",
    "Heat",
    "Heat2D",
    "IdentifyResult",
    "PeriodicBurgers",
    "Wave",
    "compare",
    "exact_solution",
    "identify",
    "operator_dataset",
    "plot_identify",
    "plot_solution",
    "read_dataset",
    "rel_l2",
    "solution_dataset",
    "solve",
    "solve_burgers_dirichlet",
    "solve_periodic_burgers",
    "solve_spectral",
    "synthetic_observations",
    "write_dataset",
]
