"""Runs of two local processes (``python -m PACKAGE launch --processes 2``, gloo collectives on
this CPU) against one process: the FNO's, an FNO ensemble's and a PINN's loss curves and
results agree; a checkpoint moves between 2 and 1 processes both ways; a killed process stops
the run with one line, and --resume goes on.

Agreement: the two runs do the same arithmetic on the same global batches; they differ only in
the order of sums (a gradient all-reduced from two halves, a test error added in float64 over
two shares), ~1e-7 relative in float32 per step. Over a few steps that stays far below the
1e-5 checked here, while a wrong batch split or a member trained twice changes the losses at
1e-2 (the curves fall by that much per epoch)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from plumbing.checkpoint import read_meta

ENV = dict(os.environ, JAX_PLATFORMS="cpu")
FNO_FLAGS = ["--batch-size", "8", "--modes", "4", "--width", "8", "--depth", "2", "--no-progress"]


def launch(package: str, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", package, "launch", "--processes", "2", "--", *argv], env=ENV,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module", autouse=True)
def compilation_cache(tmp_path_factory):
    """The launched processes share a persistent compilation cache of this module's own: a second
    launch of the same programs (a resume) loads them instead of compiling again."""
    before = ENV.get("SCIML_JAX_CACHE")
    ENV["SCIML_JAX_CACHE"] = str(tmp_path_factory.mktemp("jax_cache"))
    yield
    ENV.pop("SCIML_JAX_CACHE")
    if before is not None:
        ENV["SCIML_JAX_CACHE"] = before


@pytest.fixture(scope="module")
def heat_file(tmp_path_factory):
    from operators.data import GenerateConfig, generate

    path = tmp_path_factory.mktemp("heat") / "heat.nc"
    generate(GenerateConfig(kind="heat", n_train=48, n_test=8, nx=32, fine_nx=64), path, progress=False)
    return path


def _child(parent: int, process_id: int) -> int:
    """The pid of the launcher's child with SCIML_PROCESS_ID=process_id (from /proc)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/environ", "rb") as fh:
                env = fh.read().split(b"\0")
        except OSError:
            continue
        if ppid == parent and f"SCIML_PROCESS_ID={process_id}".encode() in env:
            return int(entry)
    raise AssertionError(f"no process {process_id} under {parent}")


def _curve(model_dir) -> np.ndarray:
    return np.array([[h["train_loss"], h["test_rel_l2"]] for h in read_meta(model_dir)["history"]])


def test_fno_killed_process_resume_on_one_then_two_processes_follows_the_one_process_curve(heat_file, tmp_path):
    """Two processes train (streamed); process 1 is killed after the first checkpoint: the run
    stops with one line within 60 s. One process resumes that checkpoint for an epoch (2 -> 1),
    two processes resume the result for another (1 -> 2): the loss curve is the one of an
    uninterrupted one-process run (in memory)."""
    from operators.__main__ import main

    def args(epochs: int) -> list[str]:  # a constant learning rate: the schedule does not depend on --epochs
        return ["train", str(heat_file), *FNO_FLAGS, "--epochs", str(epochs), "--schedule", "constant",
                "--checkpoint-every", "1", "--out", str(out)]

    out = tmp_path / "m"
    proc = subprocess.Popen([sys.executable, "-m", "operators", "launch", "--processes", "2", "--", *args(100)],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out.is_dir() and any(p.name.isdigit() for p in out.iterdir())):  # the first checkpoint
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
        time.sleep(0.05)
    killed = time.monotonic()
    os.kill(_child(proc.pid, process_id=1), signal.SIGKILL)
    _, err = proc.communicate(timeout=90)
    assert time.monotonic() - killed < 60
    assert proc.returncode == 1
    assert err == "operators: failed: process 1 of 2 was killed by SIGKILL; stopped the other processes\n"
    saved = read_meta(out)["epoch"]
    assert main([*args(saved + 1), "--resume"]) == 0  # one process continues a checkpoint of two
    run = launch("operators", *args(saved + 2), "--resume", "--json")  # two continue one's
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout)["epochs"] == saved + 2  # process 0's result, alone on standard output
    curve = _curve(out)
    out = tmp_path / "ref"
    assert main(args(saved + 2)) == 0
    assert curve.shape == (saved + 2, 2)
    np.testing.assert_allclose(curve, _curve(out), rtol=1e-5)


def test_fno_ensemble_members_spread_over_two_processes_train_as_on_one(tmp_path):
    import xarray as xr

    from uncertainty.__main__ import main

    args = ["run", "fno", "--n-train", "16", "--n-test", "4", "--nx", "32", "--modes", "4", "--width", "8",
            "--depth", "2", "--batch-size", "8", "--epochs", "2", "--members", "2", "--no-progress", "--json"]
    assert main([*args, "--out", str(tmp_path / "one.nc")]) == 0
    run = launch("uncertainty", *args, "--out", str(tmp_path / "two.nc"))
    assert run.returncode == 0, run.stderr[-2000:]
    one, two = xr.open_dataset(tmp_path / "one.nc"), xr.open_dataset(tmp_path / "two.nc")
    scale = float(np.abs(one["u_samples"]).max())
    np.testing.assert_allclose(two["u_samples"], one["u_samples"], atol=1e-5 * scale)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # process 1 left no temporary file


def test_pinn_collocation_points_sharded_over_two_processes_follow_the_one_process_curve(tmp_path):
    import xarray as xr

    from pdes.__main__ import main

    args = ["solve", "heat", "--method", "pinn", "--steps", "20", "--set", "qn.steps=0", "--set", "run.log_every=10",
            "--set", "sampling.n_res=256", "--nx", "16", "--nt", "8", "--no-progress", "--json"]
    assert main([*args, "--out", str(tmp_path / "one.nc")]) == 0
    run = launch("pdes", *args, "--out", str(tmp_path / "two.nc"))
    assert run.returncode == 0, run.stderr[-2000:]
    one, two = xr.open_dataset(tmp_path / "one.nc"), xr.open_dataset(tmp_path / "two.nc")
    # float64 preset: only the order of the residual's sums differs (~1e-15 per step; Adam's
    # normalised steps carry it to ~5e-9 after 20 steps in the suite's -O0 build)
    np.testing.assert_allclose(two["history_loss"], one["history_loss"], rtol=1e-7)
    np.testing.assert_allclose(two["u"], one["u"], rtol=1e-7, atol=1e-10)
