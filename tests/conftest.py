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
