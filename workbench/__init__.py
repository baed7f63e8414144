"""The workbench on top of every package: the demo (``python -m workbench demo``) and the
README gallery (``python -m workbench figures``). Imports point one way (DESIGN.md section 1):
plumbing <- pdes <- operators <- uncertainty <- workbench; scaling and efficiency beside them."""

from workbench.demo import DEMO_STEPS, run_demo
from workbench.figures import FIGURE_STEPS, make_figures

__all__ = ["DEMO_STEPS", "FIGURE_STEPS", "make_figures", "run_demo"]
