"""Multi-process runs on JAX's own multi-controller runtime (``jax.distributed``): one way to start.

Every JAX trainer of the workbench (``operators train``, ``uncertainty run``, ``pdes solve
--method pinn``, ``pdes identify``) runs unchanged as one of N processes that form one global
device mesh. Where a process learns N, its id and the coordinator (DESIGN.md section 7,
**contract** names), the first that applies:

1. the flags ``--coordinator HOST:PORT --num-processes N --process-id I`` (taken off the
   command line by ``plumbing.cli.run_cli`` before parsing, so every subcommand accepts them);
2. the environment: ``SCIML_COORDINATOR``, ``SCIML_NUM_PROCESSES``, ``SCIML_PROCESS_ID``
   (a flag wins over its variable);
3. SLURM inside ``srun`` (``SLURM_STEP_NUM_TASKS`` > 1, ``SLURM_PROCID``) or Open MPI
   (``OMPI_COMM_WORLD_SIZE`` > 1, ``OMPI_COMM_WORLD_RANK``): JAX's own cluster detection
   finds the coordinator.

``initialize(cluster)`` then, with an explicit coordinator, first runs a rendezvous of its own
on the coordinator's port (process 0 listens, the others connect and say N, their id and
their command), so a wrong process count, a duplicate id, different commands or an
unreachable coordinator is a one-line ``ValueError`` within ``SCIML_INIT_TIMEOUT_S`` (30 s)
instead of JAX's abort; then it calls ``jax.distributed.initialize`` (gloo collectives on
CPUs) with a heartbeat timeout of ``SCIML_HEARTBEAT_TIMEOUT_S`` (30 s): when a process dies,
JAX stops the others within that time.

After ``initialize`` only process 0 writes files through ``plumbing.files`` (the other
processes' writes go to a temporary file that is removed) and ``run_cli`` silences the other
processes' standard output and progress bars. Checkpoints are the exception: orbax writes
them collectively (``plumbing.checkpoint``).

``python -m PACKAGE launch --processes N -- SUBCOMMAND ...`` (``launch_main``) starts N local
processes with the environment variables set: for tests, and for several GPUs in one box.

The helpers at the end move pytrees between one process and the global mesh: ``put``
(place a pytree, typed PRNG keys included, with a sharding that may span processes),
``gathered`` (every leaf whole on every process), ``allsum`` (an exact float64 sum over the
processes). With one process each is the identity or the plain operation, so a one-process
run does exactly what it did before.

This module imports JAX only inside the functions that need it: ``import plumbing`` stays
free of JAX.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ENV_COORDINATOR",
    "ENV_NUM_PROCESSES",
    "ENV_PROCESS_ID",
    "FLAGS",
    "Cluster",
    "allsum",
    "detect",
    "gathered",
    "global_devices",
    "initialize",
    "is_main",
    "is_peer_failure",
    "launch_main",
    "process_count",
    "process_index",
    "put",
    "strip_flags",
    "writes_files",
]

ENV_COORDINATOR = "SCIML_COORDINATOR"
ENV_NUM_PROCESSES = "SCIML_NUM_PROCESSES"
ENV_PROCESS_ID = "SCIML_PROCESS_ID"
ENV_INIT_TIMEOUT = "SCIML_INIT_TIMEOUT_S"
ENV_HEARTBEAT_TIMEOUT = "SCIML_HEARTBEAT_TIMEOUT_S"

# flag -> (field, environment variable)
FLAGS = {
    "--coordinator": ("coordinator", ENV_COORDINATOR),
    "--num-processes": ("num_processes", ENV_NUM_PROCESSES),
    "--process-id": ("process_id", ENV_PROCESS_ID),
}

INIT_TIMEOUT_S = 30.0
HEARTBEAT_TIMEOUT_S = 30.0
SHUTDOWN_TIMEOUT_S = 120.0

# This process's place, set by ``initialize`` (the CLI runner calls it; nothing sets it at import).
_STATE: dict[str, Any] = {"process_id": 0, "num_processes": 1, "initialized": False}


@dataclass(frozen=True)
class Cluster:
    """What the flags and the environment say: N processes, this one's id, the coordinator
    (None: JAX's cluster detection finds it) and where the settings came from ("flags", "env",
    "slurm", "ompi" or "single")."""

    num_processes: int = 1
    process_id: int = 0
    coordinator: str | None = None
    source: str = "single"

    @property
    def multi(self) -> bool:
        return self.num_processes > 1


# ----------------------------------------------------------------------------- settings


def strip_flags(argv: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """(argv without the distributed flags, {field: value}) for ``--flag VALUE`` and
    ``--flag=VALUE`` anywhere before a ``--``. ValueError for a flag without its value."""
    rest: list[str] = []
    found: dict[str, str] = {}
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        name, eq, value = arg.partition("=")
        if name in FLAGS:
            if not eq:
                if i + 1 >= len(args) or args[i + 1].startswith("--"):
                    raise ValueError(f"{name} needs a value")
                value = args[i + 1]
                i += 1
            found[FLAGS[name][0]] = value
        else:
            rest.append(arg)
        i += 1
    return rest, found


def _int_setting(text: str, what: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise ValueError(f"{what} must be an integer, got {text!r}") from None


def _split_address(address: str, what: str) -> tuple[str, int]:
    host, sep, port = str(address).strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{what} must be HOST:PORT with a port in 1..65535, got {address!r}")
    return host, int(port)


def detect(flags: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None) -> Cluster:
    """The cluster this process belongs to, from ``flags`` (``strip_flags``' dict), then our
    environment variables, then SLURM / Open MPI. One-line ValueError for a bad value (a
    process id outside 0..N-1, a count below 1, a coordinator that is not HOST:PORT)."""
    flags = dict(flags or {})
    env = os.environ if environ is None else environ
    names = {field: (flag, var) for flag, (field, var) in FLAGS.items()}
    values: dict[str, tuple[str, str]] = {}  # field -> (value, name shown in messages)
    for field, (flag, var) in names.items():
        if field in flags:
            values[field] = (flags[field], flag)
        elif env.get(var, "").strip():
            values[field] = (env[var], var)
    if values:
        source = "flags" if any(f in flags for f in names) else "env"
        n_text, n_name = values.get("num_processes", ("1", "--num-processes"))
        n = _int_setting(n_text, n_name)
        if n < 1:
            raise ValueError(f"{n_name} must be at least 1, got {n_text!r}")
        if "process_id" not in values and n > 1:
            raise ValueError(f"{n_name}={n} needs this process's id (--process-id or {ENV_PROCESS_ID})")
        i_text, i_name = values.get("process_id", ("0", "--process-id"))
        i = _int_setting(i_text, i_name)
        if not 0 <= i < n:
            raise ValueError(f"{i_name} must be in 0..{n - 1} for {n} processes, got {i_text!r}")
        coordinator = None
        if "coordinator" in values:
            c_text, c_name = values["coordinator"]
            _split_address(c_text, c_name)
            coordinator = c_text.strip()
        elif n > 1:
            raise ValueError(f"{n} processes need a coordinator (--coordinator HOST:PORT or {ENV_COORDINATOR})")
        return Cluster(n, i, coordinator, source)
    for source, size_var, rank_var in (("slurm", "SLURM_STEP_NUM_TASKS", "SLURM_PROCID"),
                                       ("ompi", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK")):
        if env.get(size_var, "").strip():
            n = _int_setting(env[size_var], size_var)
            if n > 1:
                i = _int_setting(env.get(rank_var, "0"), rank_var)
                if not 0 <= i < n:
                    raise ValueError(f"{rank_var} must be in 0..{n - 1}, got {env.get(rank_var)!r}")
                return Cluster(n, i, None, source)
    return Cluster()


def _seconds(var: str, default: float) -> float:
    text = os.environ.get(var, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{var} must be a number of seconds, got {text!r}") from None
    if not value > 0:
        raise ValueError(f"{var} must be positive, got {text!r}")
    return value


# ----------------------------------------------------------------------------- start-up


def initialize(cluster: Cluster, command: Sequence[str] = ()) -> None:
    """Join the cluster: our rendezvous (explicit coordinator only), then
    ``jax.distributed.initialize``. ``command``: this process's command line without the
    distributed flags (every process must run the same). A no-op for one process or when
    this process has joined already. ValueError (one line) when the processes cannot meet."""
    if not cluster.multi or _STATE["initialized"]:
        return
    init_timeout = _seconds(ENV_INIT_TIMEOUT, INIT_TIMEOUT_S)
    heartbeat = _seconds(ENV_HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_S)
    if cluster.coordinator is not None:
        _rendezvous(cluster, list(command), init_timeout)
    import inspect

    import jax

    try:  # gloo: collectives between CPU processes (the default in jax 0.10, set for older ones)
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except (AttributeError, KeyError, ValueError):  # pragma: no cover - option renamed or gone
        pass
    wanted = {"initialization_timeout": int(init_timeout) + 30, "heartbeat_timeout_seconds": int(heartbeat),
              "shutdown_timeout_seconds": int(SHUTDOWN_TIMEOUT_S)}
    accepted = inspect.signature(jax.distributed.initialize).parameters
    kwargs = {k: v for k, v in wanted.items() if k in accepted}
    if cluster.coordinator is not None:
        jax.distributed.initialize(cluster.coordinator, cluster.num_processes, cluster.process_id, **kwargs)
    else:
        jax.distributed.initialize(**kwargs)
    _STATE.update(process_id=cluster.process_id, num_processes=cluster.num_processes, initialized=True)


def _send(conn: socket.socket, obj: Any) -> None:
    conn.sendall((json.dumps(obj) + "\n").encode())


def _read_line(conn: socket.socket, deadline: float) -> str:
    data = b""
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        conn.settimeout(remaining)
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
        if len(data) > 1 << 16:
            raise ConnectionError("too long")
    return data.decode(errors="replace").strip()


def _rendezvous(cluster: Cluster, command: list[str], timeout: float) -> None:
    """Process 0 listens on the coordinator's port until the N - 1 others have said who they
    are, checks that they agree, answers each, and closes the port for JAX's coordinator."""
    host, port = _split_address(cluster.coordinator or "", "the coordinator")
    address = cluster.coordinator
    deadline = time.monotonic() + timeout
    hello = {"sciml": 1, "num_processes": cluster.num_processes, "process_id": cluster.process_id,
             "command": command}
    if cluster.process_id != 0:
        conn = None
        while conn is None:
            try:
                conn = socket.create_connection((host, port), timeout=max(0.1, min(2.0, deadline - time.monotonic())))
            except OSError:
                if time.monotonic() >= deadline:
                    raise ValueError(f"the coordinator {address} is not reachable: no answer within {timeout:g} s "
                                     f"(is process 0 running, and is the address right?)") from None
                time.sleep(0.2)
        with conn:
            try:
                _send(conn, hello)
                reply = json.loads(_read_line(conn, deadline + 10.0))
            except (OSError, TimeoutError, ConnectionError, ValueError):
                raise ValueError(f"the coordinator {address} did not answer as a workbench process 0 "
                                 f"within {timeout:g} s") from None
            if reply.get("error"):
                raise ValueError(str(reply["error"]))
        return
    try:
        if socket.has_dualstack_ipv6():
            server = socket.create_server(("", port), family=socket.AF_INET6, dualstack_ipv6=True)
        else:  # pragma: no cover - hosts without IPv6
            server = socket.create_server(("", port))
    except OSError as err:
        raise ValueError(f"cannot listen on the coordinator port {port} ({err.strerror or err}); "
                         f"is another run using it?") from None
    conns: list[socket.socket] = []
    ids: set[int] = set()
    error = None
    with server:
        try:
            while len(ids) < cluster.num_processes - 1 and error is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    error = (f"only {len(ids) + 1} of {cluster.num_processes} processes reached the coordinator "
                             f"{address} within {timeout:g} s")
                    break
                server.settimeout(remaining)
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                try:
                    msg = json.loads(_read_line(conn, time.monotonic() + 10.0))
                    if not isinstance(msg, dict) or msg.get("sciml") != 1:
                        raise ValueError
                except (OSError, TimeoutError, ConnectionError, ValueError):
                    conn.close()  # not one of ours (a port scanner, a stale client): ignore it
                    continue
                conns.append(conn)
                pid = msg.get("process_id")
                if msg.get("num_processes") != cluster.num_processes:
                    error = (f"process {pid} was started for {msg.get('num_processes')} processes, process 0 for "
                             f"{cluster.num_processes}")
                elif not isinstance(pid, int) or not 0 < pid < cluster.num_processes:
                    error = f"a process has id {pid!r}, outside 1..{cluster.num_processes - 1}"
                elif pid in ids:
                    error = f"two processes have process id {pid}"
                elif msg.get("command") != command:
                    error = (f"process {pid} runs another command than process 0: "
                             f"{' '.join(map(str, msg.get('command') or []))!r} vs {' '.join(command)!r}")
                ids.add(pid)
        finally:
            for conn in conns:
                _answer(conn, error)
    if error is not None:
        raise ValueError(error)


def _answer(conn: socket.socket, error: str | None) -> None:
    """Reply, then wait for the peer to close first (so this side keeps no TIME_WAIT on the
    coordinator's port), then close."""
    try:
        _send(conn, {"error": error})
        conn.settimeout(5.0)
        while conn.recv(4096):
            pass
    except OSError:
        pass
    finally:
        conn.close()


# ----------------------------------------------------------------------------- roles


def process_index() -> int:
    """This process's id (0 without ``initialize``)."""
    return int(_STATE["process_id"])


def process_count() -> int:
    """The number of processes (1 without ``initialize``)."""
    return int(_STATE["num_processes"])


def is_main() -> bool:
    """Whether this process is process 0 (the one that prints and writes results)."""
    return process_index() == 0


def writes_files() -> bool:
    """Whether this process's ``plumbing.files`` writes reach their targets (process 0 only)."""
    return is_main()


_PEER_SIGNS = ("gloo", "connection reset", "connection refused", "socket closed", "unavailable", "heartbeat",
               "deadline_exceeded", "barrier", "coordination")


_STATUS_CODES = ("unknown", "unavailable", "deadline_exceeded", "internal", "aborted", "cancelled")


def is_peer_failure(err: BaseException) -> bool:
    """Whether ``err`` is JAX's runtime telling this process that another one of the run is
    gone (a collective or the coordination service failed), not an error of this process."""
    text = str(err).lower()
    runtime = type(err).__name__ in ("JaxRuntimeError", "XlaRuntimeError")
    # multihost_utils re-raises some collective failures as a plain ValueError carrying the
    # runtime's status ("UNKNOWN: Gloo AllGather failed: ... Connection reset by peer")
    status = isinstance(err, (ValueError, RuntimeError)) and text.split(":", 1)[0] in _STATUS_CODES
    if not (runtime or status):
        return False
    return any(sign in text for sign in _PEER_SIGNS)


# ----------------------------------------------------------------------------- pytrees (JAX)


def global_devices() -> list[Any]:
    """Every device of every process, grouped by process (then by id): a 1-D mesh over them
    gives each process a contiguous block of a sharded axis."""
    import jax

    return sorted(jax.devices(), key=lambda d: (d.process_index, d.id))


def _is_key(a: Any) -> bool:
    import jax

    return isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)


def put(tree: Any, sharding: Any) -> Any:
    """Every array leaf of ``tree`` placed with ``sharding``, dtypes kept (float64 too). A
    sharding may span processes: then every process passes the same values and builds its own
    shards from them (``jax.make_array_from_callback``: no transfer, no cross-process check).
    Typed PRNG keys go through their key data. Non-array leaves stay as they are."""
    import contextlib

    import jax
    import numpy as np

    spans = not sharding.is_fully_addressable

    def one(a: Any) -> Any:
        if not hasattr(a, "shape") or not hasattr(a, "dtype"):
            return a
        if _is_key(a):
            impl = jax.random.key_impl(a)
            data = one(jax.random.key_data(a))
            return jax.jit(lambda d: jax.random.wrap_key_data(d, impl=impl), out_shardings=sharding)(data)
        with jax.enable_x64(True) if np.dtype(a.dtype).itemsize == 8 else contextlib.nullcontext():
            if spans and (not isinstance(a, jax.Array) or a.is_fully_addressable):
                x = np.asarray(a)
                return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])
            return jax.device_put(a, sharding)

    return jax.tree.map(one, tree)


def gathered(tree: Any) -> Any:
    """``tree`` with every leaf that spans other processes' devices made whole on this one:
    a replicated leaf becomes its local copy (no communication); a sharded one is gathered
    from every process (a collective: every process must call this together). Leaves this
    process holds whole already (always, with one process) are returned unchanged."""
    import jax

    leaves, treedef = jax.tree.flatten(tree)
    if not any(isinstance(a, jax.Array) and not a.is_fully_addressable for a in leaves):
        return tree
    import numpy as np
    from jax.experimental import multihost_utils

    out = []
    for a in leaves:
        if not isinstance(a, jax.Array) or a.is_fully_addressable:
            out.append(a)
        elif a.is_fully_replicated:
            out.append(a.addressable_data(0))
        elif _is_key(a):
            data = multihost_utils.process_allgather(jax.random.key_data(a), tiled=True)
            out.append(jax.random.wrap_key_data(np.asarray(data), impl=jax.random.key_impl(a)))
        elif a.dtype.itemsize == 8:  # keep float64 / int64 leaves as they are
            with jax.enable_x64(True):
                out.append(np.asarray(multihost_utils.process_allgather(a, tiled=True)))
        else:
            out.append(np.asarray(multihost_utils.process_allgather(a, tiled=True)))
    return jax.tree.unflatten(treedef, out)


def allsum(values: Any) -> Any:
    """The float64 sum of ``values`` (an array or a number) over all processes, every process
    getting the same result (summed in process order). One process: the values themselves."""
    import numpy as np

    x = np.asarray(values, dtype=np.float64)
    import jax

    if jax.process_count() == 1:
        return x
    from jax.experimental import multihost_utils

    flat = x.reshape(-1)
    padded = np.zeros(-(-max(flat.size, 1) // 8) * 8)  # sizes in steps of 8: one compiled gather serves many calls
    padded[:flat.size] = flat
    every = np.asarray(multihost_utils.process_allgather(padded.view(np.uint32)))  # exact: no float32 on the way
    parts = np.ascontiguousarray(every).view(np.float64)[:, :flat.size].reshape(-1, *x.shape)
    total = parts[0].copy()
    for part in parts[1:]:
        total = total + part
    return total


# ----------------------------------------------------------------------------- local launcher


def _launch_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"{prog} launch",
        description=f"Start N local processes of `python -m {prog} SUBCOMMAND ...` that train as one (jax.distributed "
                    f"with gloo on CPUs; one GPU share each when the box has GPUs). Only process 0 prints and writes. "
                    f"When one process fails, the others are stopped and one line says which and why.",
        epilog=f"example: python -m {prog} launch --processes 2 -- train DATA.nc --out MODEL_DIR")
    p.add_argument("--processes", type=int, required=True, metavar="N", help="number of processes (>= 1)")
    p.add_argument("--port", type=int, default=0, help="coordinator port on 127.0.0.1 (default: a free one)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- SUBCOMMAND ARGS... (what every process runs)")
    return p


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gpu_shares(n: int) -> list[str | None]:
    """CUDA_VISIBLE_DEVICES for each of n processes: the box's GPUs split evenly (None: leave
    the environment alone: no GPUs, or a count that n does not divide)."""
    import shutil

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        gpus = [g for g in visible.split(",") if g.strip()]
    elif shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False).stdout
        except (OSError, subprocess.SubprocessError):
            return [None] * n
        gpus = [str(k) for k, line in enumerate(out.splitlines()) if line.startswith("GPU ")]
    else:
        return [None] * n
    if not gpus or len(gpus) % n:
        return [None] * n
    per = len(gpus) // n
    return [",".join(gpus[i * per:(i + 1) * per]) for i in range(n)]


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def launch_main(prog: str, module: str, argv: Sequence[str]) -> int:
    """``python -m MODULE launch --processes N [--port P] -- SUBCOMMAND ...``: run N local
    processes and return the run's exit code. Process 0's output passes through; the others'
    standard error is kept and shown only when one of them is the first to fail. When a
    process fails, the others get 3 s to stop by themselves, then SIGTERM (SIGKILL 5 s later)."""
    parser = _launch_parser(prog)
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exit_:
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if args.processes < 1:
        print(f"{prog}: error: --processes must be at least 1, got {args.processes}", file=sys.stderr)
        return 2
    if not command or command[0] == "launch":
        print(f"{prog}: error: launch needs the subcommand to run, e.g. `{prog} launch --processes 2 -- train ...`",
              file=sys.stderr)
        return 2
    if not 0 <= args.port < 65536:
        print(f"{prog}: error: --port must be in 1..65535, got {args.port}", file=sys.stderr)
        return 2
    n = args.processes
    port = args.port or _free_port()
    shares = _gpu_shares(n)
    procs: list[subprocess.Popen] = []
    tails: list[collections.deque] = []
    relay: dict[str, Any] = {"on": True, "prefix": f"{prog}: ".encode(), "held": []}
    threads = []
    for i in range(n):
        env = dict(os.environ, **{ENV_COORDINATOR: f"127.0.0.1:{port}", ENV_NUM_PROCESSES: str(n),
                                  ENV_PROCESS_ID: str(i)})
        if shares[i] is not None:
            env["CUDA_VISIBLE_DEVICES"] = shares[i]
        proc = subprocess.Popen([sys.executable, "-m", module, *command], env=env, stdin=subprocess.DEVNULL,
                                stdout=None if i == 0 else subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(proc)
        tail: collections.deque = collections.deque(maxlen=50)
        tails.append(tail)
        t = threading.Thread(target=_drain, args=(proc.stderr, tail, relay if i == 0 else None), daemon=True)
        t.start()
        threads.append(t)
    first: tuple[int, int] | None = None  # (process, code) of the first failure
    try:
        while True:
            codes = [p.poll() for p in procs]
            if first is None:
                failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
                if failed:  # a process killed by a signal is the cause; the others' exits are its effects
                    first = min(failed, key=lambda f: (f[1] > 0, f[0]))
            if all(c is not None for c in codes):
                break
            if first is not None:
                if first[0] != 0:
                    relay["on"] = False  # process 0's reaction to another's failure is noise
                _stop(procs, grace=0.0 if first[1] < 0 else 3.0)
                break
            time.sleep(0.05)
    except KeyboardInterrupt:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        _stop(procs, grace=5.0)
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    for t in threads:
        t.join(timeout=2.0)
    if first is None or (first[0] == 0 and first[1] > 0):  # process 0's own outcome: its messages
        for line in relay["held"]:
            sys.stderr.write(line)
        sys.stderr.flush()
    if first is None:
        return 0
    i, code = first
    if i == 0 and code > 0:
        return code  # process 0 said why on its own standard error
    lines = [line for line in tails[i] if line.strip()]
    last = lines[-1] if lines else ""
    if code > 0 and last.startswith(f"{prog}: "):
        print(f"{prog}: process {i} of {n}: {last[len(prog) + 2:]}", file=sys.stderr)
        return code if code in (1, 2) else 1
    print(f"{prog}: failed: process {i} of {n} {_describe_exit(code)}; stopped the other processes", file=sys.stderr)
    return 1


NOISE = (b"[Gloo] ",)  # gloo announces every connection; the launcher drops those lines


def _drain(stream: Any, tail: collections.deque, relay: dict[str, Any] | None) -> None:
    """Read a child's standard error and keep its last lines. Process 0's (``relay``) passes
    through while ``relay['on']``, except gloo's connection notes (dropped) and its closing
    lines (``PROG: error/failed/internal error: ...``), which are held until the launcher knows
    whether process 0's failure or another process's is the one to report."""
    pending = b""
    unsent = b""  # the start of a line not yet passed through (it may be a closing line)
    closing = tuple(relay["prefix"] + word for word in (b"error:", b"failed:", b"internal error:", b"interrupted")) \
        if relay is not None else ()
    while True:
        chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            tail.append(line.decode(errors="replace").rstrip("\r"))
        if relay is not None:
            unsent += chunk
            *done, unsent = unsent.split(b"\n")
            out = b"".join(line + b"\n" for line in done if not line.startswith(closing + NOISE))
            relay["held"].extend(line.decode(errors="replace") + "\n" for line in done if line.startswith(closing))
            if unsent and not any(c.startswith(unsent[:len(c)]) for c in closing + NOISE):
                out, unsent = out + unsent, b""  # progress bars end in \r, not \n: pass them now
            if out and relay["on"]:
                _write_stderr(out)
    if pending:
        tail.append(pending.decode(errors="replace"))
    if relay is not None and unsent:
        if unsent.startswith(closing):
            relay["held"].append(unsent.decode(errors="replace") + "\n")
        elif relay["on"]:
            _write_stderr(unsent)


def _write_stderr(data: bytes) -> None:
    out = getattr(sys.stderr, "buffer", None)
    if out is not None:
        out.write(data)
        out.flush()
    else:  # pragma: no cover - a replaced sys.stderr
        sys.stderr.write(data.decode(errors="replace"))
        sys.stderr.flush()


def _stop(procs: list[subprocess.Popen], grace: float) -> None:
    """Give running processes ``grace`` seconds, then SIGTERM, then SIGKILL after 5 s."""
    end = time.monotonic() + grace
    while time.monotonic() < end and any(p.poll() is None for p in procs):
        time.sleep(0.05)
    for p in procs:
        if p.poll() is None:
            p.terminate()
    end = time.monotonic() + 5.0
    while time.monotonic() < end and any(p.poll() is None for p in procs):
        time.sleep(0.05)
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
