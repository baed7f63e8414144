"""PDE problems, exact and spectral solutions, PINNs, and the solution data model."""

from pdes.problems import BURGERS, HEAT, HEAT2D, OPERATOR_BURGERS, WAVE, Burgers, Heat, Heat2D, PeriodicBurgers, Wave
from pdes.solution import compare, operator_dataset, read_dataset, read_solution, rel_l2, solution_dataset, write_dataset, write_solution

__all__ = [
    "BURGERS",
    "HEAT",
    "HEAT2D",
    "OPERATOR_BURGERS",
    "WAVE",
    "Burgers",
    "Heat",
    "Heat2D",
    "PeriodicBurgers",
    "Wave",
    "compare",
    "operator_dataset",
    "read_dataset",
    "read_solution",
    "rel_l2",
    "solution_dataset",
    "write_dataset",
    "write_solution",
]
