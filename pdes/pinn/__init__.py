"""Physics-informed neural networks (JAX + Flax NNX + optax) for the heat, wave and Burgers problems.

Quick use::

    from pdes.problems import BURGERS
    from pdes.pinn import solve_pinn
    ds = solve_pinn(BURGERS, preset="fast")          # xarray.Dataset: u, u_true, history_*
    print(ds.attrs["rel_l2"])

Configs are frozen dataclasses with named levels (``get_config("burgers", "accurate")``);
an ablation is ``dataclasses.replace(cfg, causal=False)``; ``solve_pinn(..., config_file=
"run.toml", overrides={"width": "128"})`` overrides fields by name (unknown keys: ValueError).

Functional core (for ensembles, MC dropout and inverse problems)
----------------------------------------------------------------
``pinn = build_pinn(problem, config)`` returns a frozen ``PINN`` whose methods are pure::

    params = pinn.init(key)                          # pytree (nnx.State of the network)
    u = pinn.apply(params, t, x, dropout_key=None)   # t, x: (N,) physical coords -> (N,)
    r = pinn.residual(params, t, x, coeffs=None)     # PDE residual (N,); coeffs {"nu": ...}
    loss, aux = pinn.loss(params, weights, key)      # fresh collocation points from key
    state = pinn.init_train_state(params, key)       # TrainState(params, opt_state, weights, key, step)
    state, metrics = pinn.adam_chunk(state, n)       # n Adam steps in one lax.scan (n static)
    u_grid = pinn.predict_grid(params, t, x)         # (nt, nx)

All of them vmap over a leading member axis, e.g. a deep ensemble of M members in one
compiled program::

    keys = jax.random.split(key, M)
    states = jax.vmap(lambda k: pinn.init_train_state(pinn.init(k), k))(keys)
    chunk = jax.jit(jax.vmap(lambda s: pinn.adam_chunk(s, 200)))
    states, metrics = chunk(states)

``weights`` is ``pinn.init_weights()`` ({term: 1.0}; terms "res" and, for soft constraints,
"ic", "ic_v", "bc"). MC dropout: set ``config.dropout`` > 0; training draws one mask per
step (``adam_chunk``), and ``apply(params, t, x, dropout_key=k)`` evaluates the function
sample of mask k (one mask for all points); no key means no dropout. Inverse problems:
``residual``/``loss_terms``/``weighted_loss`` take ``coeffs`` (a dict of arrays, may be
trainable). The quasi-Newton phase (optax L-BFGS, or dense BFGS / self-scaled Broyden with
``qn_method="bfgs"`` / ``"ssbroyden"``, see ``pdes.pinn.optim``) is
``params, opt_state, batch, metrics = pinn.qn_chunk(params, opt_state, weights, batch, key,
fresh, n)`` starting from ``opt_state, batch = pinn.init_qn(params)`` and ``fresh=True``
(which redraws the batch from key and restarts the optimizer inside the compiled call).

Derivatives are forward-mode (nested ``jax.jvp``), see ``pdes.pinn.residuals``.
"""

from pdes.pinn.configs import LEVELS, PINNConfig, apply_overrides, get_config, load_overrides, parse_overrides
from pdes.pinn.core import PINN, TrainState, build_pinn
from pdes.pinn.models import PINNNet
from pdes.pinn.residuals import burgers_residual, heat_residual, wave_residual
from pdes.pinn.train import TrainResult, reference_solution, resolve_config, solve_pinn, train

__all__ = [
    "LEVELS",
    "PINN",
    "PINNConfig",
    "PINNNet",
    "TrainResult",
    "TrainState",
    "apply_overrides",
    "build_pinn",
    "burgers_residual",
    "get_config",
    "heat_residual",
    "load_overrides",
    "parse_overrides",
    "reference_solution",
    "resolve_config",
    "solve_pinn",
    "train",
    "wave_residual",
]
