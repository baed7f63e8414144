"""Data-parallel FNO training: the step sharded over 4 (virtual CPU) devices equals the
single-device step. XLA_FLAGS must be set before jax initialises, so the check runs in a
subprocess with its own environment."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    from flax import nnx
    from jax.sharding import Mesh
    from operators import FNO, FNOConfig, TrainConfig, functional, make_optimizer, make_train_epoch, sample_grf

    assert len(jax.devices()) == 4, jax.devices()
    model = FNO(FNOConfig(modes=4, width=8, depth=2, proj_hidden=16), rngs=nnx.Rngs(0))
    apply, params = functional(model)
    rng = np.random.default_rng(0)
    a = jnp.asarray(sample_grf(rng, 16, 32), jnp.float32)
    u = jnp.asarray(0.5 * np.roll(np.asarray(a), 3, axis=1), jnp.float32)
    tx = make_optimizer(TrainConfig(epochs=2, batch_size=8, lr=1e-3), steps_per_epoch=2)
    mesh = Mesh(np.array(jax.devices()), ("data",))
    results = []
    for m in (None, mesh):
        p = jax.tree.map(jnp.array, params)
        step = make_train_epoch(apply, tx, batch_size=8, mesh=m)
        p, s, losses = step(p, tx.init(p), jax.random.key(0), a, u)
        results.append((jax.device_get(p), np.asarray(losses)))
    (p1, l1), (p4, l4) = results
    print("losses", l1, l4)
    np.testing.assert_allclose(l4, l1, rtol=1e-5)
    for x, y in zip(jax.tree.leaves(p1), jax.tree.leaves(p4)):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-4, atol=1e-6)
    print("OK")
    """
)


def test_sharded_training_step_equals_single_device_step():
    flags = f"--xla_force_host_platform_device_count=4 {os.environ.get('XLA_FLAGS', '')}"  # and the suite's thread flags
    env = dict(os.environ, XLA_FLAGS=flags.strip(), JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Tolerances: the two programs differ only in the order of the batch reductions (an
    # all-reduce of 4 partial sums vs one sum), float32 rounding ~1e-7 per operation; two
    # AdamW steps at lr 1e-3 move each weight by ~2e-3, so 1e-4 relative is far above
    # rounding and far below any real difference (a wrong batch split changes the loss at 1e-2).
    assert "OK" in proc.stdout
