"""Imports point one way (DESIGN.md section 1):

    plumbing <- pdes <- operators <- uncertainty <- workbench;  scaling beside them
    (scaling -> efficiency for the language model, scaling -> operators for FNO scaling).

Checked twice: statically, every import statement of every module (also those inside functions),
and dynamically, each package imported alone in a fresh interpreter.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("plumbing", "pdes", "operators", "uncertainty", "scaling", "efficiency", "workbench")
ALLOWED = {
    "plumbing": set(),
    "pdes": {"plumbing"},
    "operators": {"pdes", "plumbing"},
    "uncertainty": {"operators", "pdes", "plumbing"},
    "efficiency": {"plumbing"},
    "scaling": {"efficiency", "operators", "pdes", "plumbing"},
    "workbench": set(PACKAGES) - {"workbench"},
}
# third-party packages a package must not pull in when it is imported (optional extras and
# DESIGN.md section 1: pdes and operators never import torch, efficiency never imports jax)
FORBIDDEN_AT_IMPORT = {
    "plumbing": {"jax", "torch", "matplotlib", "xarray"},
    "pdes": {"torch"},
    "operators": {"torch"},
    "uncertainty": {"torch"},
    "scaling": {"torch", "jax"},
    "efficiency": {"jax"},
}


def _imports(path: Path) -> set[str]:
    """Top-level project packages named by the import statements of one file (any depth)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_import_statement_points_down_the_layers(package):
    bad = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        wrong = _imports(path) - ALLOWED[package] - {package}
        if wrong:
            bad[str(path.relative_to(ROOT))] = sorted(wrong)
    assert not bad, f"{package} imports packages above it: {bad}"


def test_each_package_imported_alone_loads_only_what_it_may():
    script = ("import importlib, json, sys; importlib.import_module(sys.argv[1]); "
              "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    procs = {p: subprocess.Popen([sys.executable, "-c", script, p], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, cwd=ROOT) for p in PACKAGES}
    for package, proc in procs.items():  # all interpreters start at once: one wait for the slowest
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"import {package} failed: {err[-2000:]}"
        loaded = set(json.loads(out.strip().splitlines()[-1]))
        above = (loaded & set(PACKAGES)) - ALLOWED[package] - {package}
        assert not above, f"import {package} loaded {sorted(above)}"
        extra = loaded & FORBIDDEN_AT_IMPORT.get(package, set())
        assert not extra, f"import {package} loaded {sorted(extra)}"
