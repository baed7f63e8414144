"""Physics-informed neural networks (JAX + Flax NNX + optax) for the heat, wave and Burgers problems.

Quick use::

    from pdes.problems import BURGERS
    from pdes.pinn import solve_pinn
    ds = solve_pinn(BURGERS, preset="fast")          # xarray.Dataset: u, u_true, history_*
    print(ds.attrs["rel_l2"])

Configs are frozen dataclasses of sections (network, sampling, loss, adam, qn, run, inverse)
with named levels (``get_config("burgers", "accurate")``); an ablation is
``cfg.updated({"loss.causal": False})``; ``solve_pinn(..., config_file="run.toml",
overrides={"network.width": "128"})`` overrides fields by dotted name (unknown keys: ValueError).

Functional core (for ensembles, MC dropout and inverse problems)
----------------------------------------------------------------
``pinn = build_pinn(problem, config)`` returns a frozen ``PINN`` whose methods are pure::

    params = pinn.init(key)                          # {"net": nnx.State, "coeffs": {}}
    u = pinn.apply(params, t, x, dropout_key=None)   # t, x: (N,) physical coords -> (N,)
    r = pinn.residual(params, t, x)                  # PDE residual (N,)
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
"ic", "ic_v", "bc", and "data" for a PINN fitted to observations). MC dropout: set
``network.dropout`` > 0; training draws one mask per step, and ``apply(params, t, x,
dropout_key=k)`` evaluates the function sample of mask k. Inverse problems:
``build_pinn(problem, config, unknowns=("l2",), residual=..., coeffs=..., with_data=True)``
makes those coefficients trainable (``params["coeffs"]``, value = exp(raw)) and adds the data
term; observations are the ``obs`` argument of the losses and chunks. The quasi-Newton phase
(optax L-BFGS, or dense BFGS / self-scaled Broyden with ``qn.method = "bfgs"`` /
``"ssbroyden"``, see ``pdes.pinn.optim``) is ``params, opt_state, batch, metrics =
pinn.qn_chunk(params, opt_state, weights, batch, key, fresh, n)`` starting from ``opt_state,
batch = pinn.init_qn(params)`` and ``fresh=True``.

Training runs the phases (``pdes.pinn.phases``) with one chunked driver (``pdes.pinn.driver``:
NaN guard, time budget, checkpoints, progress callbacks), for one model or M stacked members.
Compiled programs are cached by what shapes them (``Programs``, keyed by ``PINN.program_key``).

Derivatives are forward-mode (nested ``jax.jvp``), see ``pdes.pinn.residuals``.
"""

from pdes.pinn.configs import (
    LEVELS,
    AdamConfig,
    InverseConfig,
    LossConfig,
    NetworkConfig,
    PINNConfig,
    QNConfig,
    RunConfig,
    SamplingConfig,
    apply_overrides,
    get_config,
    load_overrides,
    parse_overrides,
)
from pdes.pinn.core import PINN, Programs, TrainState, build_pinn
from pdes.pinn.driver import DriveResult, Phase, drive
from pdes.pinn.models import PINNNet
from pdes.pinn.phases import PROGRAMS, fit, pinn_phases
from pdes.pinn.residuals import burgers_residual, heat_residual, wave_residual
from pdes.pinn.train import TrainResult, reference_solution, resolve_config, solve_pinn, train

__all__ = [
    "LEVELS",
    "PINN",
    "PROGRAMS",
    "AdamConfig",
    "DriveResult",
    "InverseConfig",
    "LossConfig",
    "NetworkConfig",
    "PINNConfig",
    "PINNNet",
    "Phase",
    "Programs",
    "QNConfig",
    "RunConfig",
    "SamplingConfig",
    "TrainResult",
    "TrainState",
    "apply_overrides",
    "build_pinn",
    "drive",
    "fit",
    "burgers_residual",
    "get_config",
    "heat_residual",
    "load_overrides",
    "parse_overrides",
    "pinn_phases",
    "reference_solution",
    "resolve_config",
    "solve_pinn",
    "train",
    "wave_residual",
]
