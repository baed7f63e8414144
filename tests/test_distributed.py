"""Multi-process plumbing, one process at a time: where a process learns its place
(flags, SCIML_* variables, SLURM), the rendezvous's one-line errors, the launcher's argument
checks, writes on process 0 only, the sharded reader of operator files, the atomicity of a
checkpoint save, and the data check of an FNO resume. The runs of several processes are in
tests/test_distributed_runs.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from plumbing import distributed
from plumbing.distributed import Cluster, detect, strip_flags


def test_distributed_flags_are_taken_off_the_command_line_anywhere_before_a_double_dash():
    rest, found = strip_flags(["train", "d.nc", "--coordinator", "h:1234", "--num-processes=2", "--out", "m",
                               "--process-id", "1", "--", "--process-id", "7"])
    assert rest == ["train", "d.nc", "--out", "m", "--", "--process-id", "7"]
    assert found == {"coordinator": "h:1234", "num_processes": "2", "process_id": "1"}
    with pytest.raises(ValueError, match="--process-id needs a value"):
        strip_flags(["train", "--process-id"])


def test_flags_win_over_variables_and_ours_over_slurm():
    env = {"SCIML_COORDINATOR": "a:1", "SCIML_NUM_PROCESSES": "4", "SCIML_PROCESS_ID": "3",
           "SLURM_STEP_NUM_TASKS": "8", "SLURM_PROCID": "5"}
    assert detect({"process_id": "2"}, env) == Cluster(4, 2, "a:1", "flags")
    assert detect({}, env) == Cluster(4, 3, "a:1", "env")
    slurm = {k: v for k, v in env.items() if k.startswith("SLURM")}
    assert detect({}, slurm) == Cluster(8, 5, None, "slurm")
    assert detect({}, {"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1"}) == Cluster(2, 1, None, "ompi")
    assert detect({}, {"SLURM_STEP_NUM_TASKS": "1", "SLURM_PROCID": "0"}) == Cluster()  # one task: one process
    assert detect({}, {}) == Cluster() and not Cluster().multi


@pytest.mark.parametrize("flags,message", [
    ({"num_processes": "2", "process_id": "2", "coordinator": "h:1"}, "--process-id must be in 0..1"),
    ({"num_processes": "0"}, "--num-processes must be at least 1"),
    ({"num_processes": "two"}, "--num-processes must be an integer"),
    ({"num_processes": "2", "process_id": "0"}, "need a coordinator"),
    ({"num_processes": "2", "process_id": "0", "coordinator": "nohost"}, "--coordinator must be HOST:PORT"),
    ({"num_processes": "2", "coordinator": "h:1"}, "needs this process's id"),
])
def test_bad_settings_are_named_in_one_line(flags, message):
    with pytest.raises(ValueError, match=message):
        detect(flags, {})


def test_bad_process_id_on_the_command_line_exits_2_before_anything_runs(tmp_path, capsys):
    from operators.__main__ import main

    assert main(["train", "missing.nc", "--out", str(tmp_path / "m"), "--num-processes", "2", "--process-id", "5",
                 "--coordinator", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert err == "operators: error: --process-id must be in 0..1 for 2 processes, got '5'\n"
    assert not (tmp_path / "m").exists()


def test_launch_refuses_a_missing_subcommand_and_a_bad_count(capsys):
    from operators.__main__ import main

    assert main(["launch", "--processes", "2"]) == 2
    assert "launch needs the subcommand" in capsys.readouterr().err
    assert main(["launch", "--processes", "0", "--", "train"]) == 2
    assert "--processes must be at least 1" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _process(i: int, n: int, port: int, *argv: str, timeout: str = "20") -> subprocess.Popen:
    env = dict(os.environ, SCIML_COORDINATOR=f"127.0.0.1:{port}", SCIML_NUM_PROCESSES=str(n),
               SCIML_PROCESS_ID=str(i), SCIML_INIT_TIMEOUT_S=timeout, JAX_PLATFORMS="cpu")
    return subprocess.Popen([sys.executable, "-m", "operators", *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_processes_that_disagree_on_the_count_stop_with_one_line_and_exit_2(tmp_path):
    port = _free_port()
    args = ("train", str(tmp_path / "d.nc"), "--out", str(tmp_path / "m"))
    start = time.monotonic()
    p0, p1 = _process(0, 2, port, *args), _process(2, 3, port, *args)
    (_, err0), (_, err1) = p0.communicate(timeout=60), p1.communicate(timeout=60)
    assert time.monotonic() - start < 60
    assert p0.returncode == 2 and p1.returncode == 2
    assert err0 == "operators: error: process 2 was started for 3 processes, process 0 for 2\n"
    assert err1 == err0  # the coordinator's verdict, passed to every process
    assert not (tmp_path / "m").exists()


def test_an_unreachable_coordinator_is_one_line_and_exit_2_within_the_timeout(tmp_path):
    start = time.monotonic()
    p1 = _process(1, 2, _free_port(), "train", str(tmp_path / "d.nc"), "--out", str(tmp_path / "m"), timeout="2")
    _, err = p1.communicate(timeout=60)
    assert p1.returncode == 2 and time.monotonic() - start < 30
    assert err.startswith("operators: error: the coordinator 127.0.0.1:") and "not reachable" in err
    assert err.count("\n") == 1


def test_a_peers_death_is_told_from_an_error_of_this_process():
    """What the runtime raises when another process is gone, as multihost_utils re-raises it
    (a plain ValueError with the runtime's status) or as the runtime's own error type."""
    runtime_error = type("JaxRuntimeError", (RuntimeError,), {})
    assert distributed.is_peer_failure(ValueError(
        "UNKNOWN: Gloo AllGather failed: [pair.cc:538] Read error [127.0.0.1]:1961: Connection reset by peer"))
    assert distributed.is_peer_failure(runtime_error("UNAVAILABLE: the coordination service heartbeat timed out"))
    assert not distributed.is_peer_failure(ValueError("nu must be positive, got -1 (connection reset)"))
    assert not distributed.is_peer_failure(RuntimeError("UNKNOWN: a shape mismatch in this process"))


def test_import_plumbing_leaves_jax_unimported():
    code = "import sys, plumbing, plumbing.distributed, plumbing.cli; assert 'jax' not in sys.modules, 'jax'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_only_process_0_writes_through_the_atomic_writers(tmp_path, monkeypatch):
    from plumbing.files import atomic_directory, atomic_write_text

    monkeypatch.setitem(distributed._STATE, "process_id", 1)
    atomic_write_text(tmp_path / "a.txt", "one")
    with atomic_directory(tmp_path / "d") as d:
        (d / "x").write_text("x")
    assert sorted(os.listdir(tmp_path)) == []  # nothing written, no temporary left
    monkeypatch.setitem(distributed._STATE, "process_id", 0)
    atomic_write_text(tmp_path / "a.txt", "one")
    assert (tmp_path / "a.txt").read_text() == "one"


def test_allsum_and_gathered_are_the_identity_on_one_process():
    x = jax.numpy.arange(3.0)
    tree = {"x": x}
    assert distributed.gathered(tree) is tree
    np.testing.assert_array_equal(distributed.allsum([1.0, 2.0]), [1.0, 2.0])


# ----------------------------------------------------------------------------- checkpoints


def test_a_save_that_dies_midway_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    """orbax writes a step into a temporary folder and renames it when complete; a save that
    fails (here: the array writer raises, as a killed process would stop) leaves step 1."""
    from plumbing import checkpoint as ckpt

    tree = {"w": np.arange(4.0, dtype=np.float32)}
    ckpt.save(tmp_path / "c", 1, {"state": tree}, {"kind": "t"})
    import orbax.checkpoint as ocp

    def broken(self, *args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(ocp.CheckpointManager, "save", broken)
    with pytest.raises(OSError):
        ckpt.save(tmp_path / "c", 2, {"state": {"w": tree["w"] + 1}}, {"kind": "t"})
    monkeypatch.undo()
    assert ckpt.latest_step(tmp_path / "c") == 1
    got, meta = ckpt.restore(tmp_path / "c", {"state": tree})
    np.testing.assert_array_equal(got["state"]["w"], tree["w"])


# ----------------------------------------------------------------------------- sharded reading


@pytest.fixture(scope="module")
def heat_file(tmp_path_factory):
    from operators.data import GenerateConfig, generate

    path = tmp_path_factory.mktemp("heat") / "heat.nc"
    generate(GenerateConfig(kind="heat", n_train=24, n_test=8, nx=32, fine_nx=64), path, progress=False)
    return path


def test_the_file_reader_returns_the_rows_asked_for_in_their_order(heat_file):
    from operators.loader import FileSource, statistics
    from operators.train import load_operator_data

    d = load_operator_data(heat_file, nx=16)
    src = FileSource(heat_file, nx=16)
    rows = np.array([7, 2, 19, 3])
    a, u = src.read("train", rows)
    np.testing.assert_array_equal(a, d.a_train[rows])
    np.testing.assert_array_equal(u, d.u_train[rows])
    np.testing.assert_array_equal(src.read("test", np.arange(2, 6))[1], d.u_test[2:6])  # contiguous: one slice
    st = statistics(src)
    assert st.a_mean == pytest.approx(float(np.mean(d.a_train, dtype=np.float64)), rel=1e-12)
    assert st.u_std == pytest.approx(float(np.std(d.u_train, dtype=np.float64)), rel=1e-9)
    # two "processes" reading halves and adding their sums (allsum) give the same statistics
    sums = []
    statistics(src, 1, 2, lambda x: sums.append(np.asarray(x)) or x)
    halves = statistics(src, 0, 2, lambda x: np.asarray(x) + sums[0])
    assert halves.a_mean == pytest.approx(st.a_mean, rel=1e-12) and halves.u_std == pytest.approx(st.u_std, rel=1e-12)
    src.close()


def test_prefetch_yields_in_order_and_raises_the_producers_error():
    from operators.loader import Prefetch

    with Prefetch(lambda i: i * i, 6, depth=2) as items:
        assert list(items) == [0, 1, 4, 9, 16, 25]

    def fails(i):
        if i == 2:
            raise ValueError("row 2 is bad")
        return i

    with pytest.raises(ValueError, match="row 2 is bad"), Prefetch(fails, 5) as items:
        list(items)


def test_streaming_one_process_follows_the_in_memory_loss_curve(heat_file):
    from operators import FNOConfig, TrainConfig, train_fno

    cfg = FNOConfig(modes=4, width=8, depth=2, proj_hidden=16)
    runs = [train_fno(heat_file, cfg, TrainConfig(epochs=2, batch_size=8, lr=1e-3, loader=loader), progress=False)[1]
            for loader in ("memory", "stream")]
    # The same permutation, batches and step; only the test error's sum differs in order (float64 vs
    # float32 accumulation, ~1e-7) and the normaliser's statistics (float64 vs float32 sums).
    for mem, stream in zip(*runs, strict=True):
        assert stream["train_loss"] == pytest.approx(mem["train_loss"], rel=1e-5)
        assert stream["test_rel_l2"] == pytest.approx(mem["test_rel_l2"], rel=1e-5)


def test_resuming_on_another_dataset_is_one_line_and_exit_2(heat_file, tmp_path, capsys):
    from operators.__main__ import main
    from operators.data import GenerateConfig, generate

    other = tmp_path / "other.nc"
    generate(GenerateConfig(kind="heat", n_train=24, n_test=8, nx=32, fine_nx=64, seed=1), other, progress=False)
    base = ["--out", str(tmp_path / "m"), "--epochs", "1", "--batch-size", "8", "--modes", "4", "--width", "8",
            "--depth", "1", "--no-progress"]
    assert main(["train", str(heat_file), *base]) == 0
    before = sorted(os.listdir(tmp_path / "m"))
    capsys.readouterr()
    assert main(["train", str(other), *base[:3], "2", *base[4:], "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("operators: error: the checkpoint in") and "another dataset" in err
    assert err.count("\n") == 1 and sorted(os.listdir(tmp_path / "m")) == before
