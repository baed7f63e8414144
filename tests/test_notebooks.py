"""Every notebook runs top to bottom (quick setting) and is stored without outputs.

The notebooks are the public API's living documentation (issue 9): executing them in the suite
is how we notice when an API they use changes. Each runs in a fresh ``python3`` kernel of this
interpreter with cwd = notebooks/ and ``SCIML_QUICK=1``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
# Quick-mode CPU time of each notebook's kernel, measured on the shared 2-core machine
# (benchmarks/results/notebooks.md): 01 45 s, 02 73 s, 03 18 s, 04 53 s, 05 13 s, 06 53 s.
# Those above ~20 s are marked slow (they still run in `make test`).
FAST = {"03_fno_burgers", "05_scaling_laws"}


def _params():
    for path in NOTEBOOKS:
        marks = () if path.stem in FAST else (pytest.mark.slow,)
        yield pytest.param(path, id=path.stem, marks=marks)


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 6, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path):
    book = nbformat.read(path, as_version=4)
    nbformat.validate(book)
    assert book.cells[0].cell_type == "markdown", "a notebook opens with what it shows"
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has stored outputs"


def test_notebooks_match_their_builder():
    """notebooks/build_notebooks.py is the source; the stored files are its output."""
    sys.path.insert(0, str(NOTEBOOK_DIR))
    try:
        import build_notebooks
    finally:
        sys.path.pop(0)
    assert sorted(build_notebooks.NOTEBOOKS) == [p.stem for p in NOTEBOOKS]
    for path in NOTEBOOKS:
        stored = nbformat.read(path, as_version=4)
        sources = [(c.cell_type[:4].replace("mark", "md"), c.source) for c in stored.cells]
        assert sources == list(build_notebooks.NOTEBOOKS[path.stem]), f"rebuild {path.name}"


def test_kernel_runs_this_interpreter():
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    # jupyter_client replaces a bare "python" with sys.executable when it launches the kernel.
    assert spec.argv[0] in ("python", "python3", sys.executable), spec.argv


@pytest.mark.parametrize("path", list(_params()))
def test_notebook_runs_top_to_bottom(path, monkeypatch):
    monkeypatch.setenv("SCIML_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # one compute thread per kernel, as in the suite's own processes (tests/conftest.py): torch's
    # and BLAS's default of one per core made notebook 06 4-5x slower beside the other worker
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(var, "1")
    book = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        book, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}}
    )
    client.execute()  # raises CellExecutionError (with the cell and traceback) on any error
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
