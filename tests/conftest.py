"""Fixtures shared by the whole suite."""

import os
import sys

import pytest


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One torch intra-op thread for tests that use torch: the models under test are tiny, and
    on a busy 2-core machine the OpenMP barrier of two threads made each forward ~25x slower
    (measured: 57 ms vs 2.2 ms per token, tests/test_generate.py). A no-op without torch."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# The command lines turn JAX's persistent compilation cache on in the user's cache folder
# (plumbing.compilation_cache); the suite runs them in-process, so it keeps the user's folder
# out of it unless a test sets the variable itself.
os.environ.setdefault("SCIML_JAX_CACHE", "off")

# `make test` runs two pytest workers on two cores: each process (workers, notebook kernels,
# subprocesses) computes on one XLA thread, so they do not oversubscribe the cores, and they
# share one compilation cache for the session, so a program compiled by one (a PINN preset's
# chunk in a notebook and in a test) is loaded by the others. Set before JAX is imported.
# The suite's programs are small and run briefly: compiling them is most of its time, so they
# are compiled for compile speed (LLVM at -O0, the classic fusion emitters: about half the
# compile time, measured on this 2-core CPU) rather than run speed. Numbers may differ from an
# optimised build in the last bits: no test compares with stored numbers, and the few that
# compare two runs (sharded and plain) allow for rounding.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false "
                                   "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
# Every program is cached, not only those that took a second to compile (JAX's default): the
# many small ones (initialisers, random draws, metrics) recur in every notebook kernel and
# subprocess, and reading one back is cheaper than compiling it again.
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="sciml-test-jax-cache-")
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
