"""PINN run configurations: one frozen dataclass, named levels per problem, TOML and flag overrides.

An ablation is a config, not a code copy::

    cfg = get_config("burgers", "fast")
    no_causal = dataclasses.replace(cfg, causal=False)

``load_overrides`` reads a flat TOML file (``width = 128``, ``causal = false``);
``parse_overrides`` converts ``{"width": "128"}`` from ``--set KEY=VALUE`` by the field
types. Unknown keys raise ``ValueError`` naming them.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

__all__ = [
    "LEVELS",
    "PINNConfig",
    "apply_overrides",
    "get_config",
    "load_overrides",
    "parse_overrides",
]

ARCHS = ("mlp", "modified_mlp", "pirate")
ACTIVATIONS = ("tanh", "sin", "gelu")
SAMPLERS = ("uniform", "sobol", "rad")
WEIGHTINGS = ("none", "gradnorm")
DTYPES = ("float32", "float64")
QN_METHODS = ("bfgs", "ssbroyden", "lbfgs")


@dataclass(frozen=True)
class PINNConfig:
    """Everything that decides a PINN run. Fields are grouped: network, collocation, loss,
    Adam phase, L-BFGS phase, logging.

    Network: ``arch`` is "mlp", "modified_mlp" (Wang, Teng & Perdikaris 2021) or "pirate"
    (PirateNet-style gated residual blocks, Wang et al. 2024); ``depth`` counts hidden
    layers (blocks for "pirate"). ``x_modes`` > 0 embeds x exactly periodically as
    cos/sin(k pi xi), xi = (x - x_min)/L, k = 1..x_modes (period 2L, the odd extension of
    a zero-Dirichlet problem). ``fourier_features`` > 0 adds that many random Fourier
    features of (t, embedded x) with scale ``fourier_scale``. ``rwf`` is random weight
    factorization W = diag(exp(s)) V, s ~ N(rwf_mean, rwf_std). ``hard_ic``/``hard_bc``
    build initial (and, for wave, initial-velocity) and boundary data into the ansatz.
    ``odd_symmetric`` builds in u(t, c + s) = -u(t, c - s) about the domain's centre c, by
    using (N(t, xi) - N(t, 1 - xi)) / 2 in place of the network N: valid (and checked) when
    the initial data are odd about c, as for the Burgers preset (-sin(pi x) on [-1, 1]), since
    the three equations are invariant under (x, u) -> (2c - x, -u); for Burgers it fixes the
    shock at the centre.
    ``dropout`` > 0 drops hidden units with one mask per function sample (MC dropout).

    Collocation: fresh points every step; ``sampler`` "uniform", "sobol" (scrambled by a
    random shift each step) or "rad" (residual-based adaptive: a pool ``rad_pool`` times
    ``n_res`` drawn per chunk, points chosen with probability ~ |r|^rad_k / mean + rad_c).

    Loss: ``weighting`` "gradnorm" rebalances the loss terms every ``weight_every`` steps
    (Wang et al. 2023); ``causal`` weights time slices by exp(-causal_eps * cumulative
    earlier residual) (Wang, Sankaran & Perdikaris 2024).

    Optimizers: Adam for ``steps`` steps with linear warm-up over ``warmup_steps`` then
    exponential decay by ``decay_rate`` every ``decay_steps``; then ``qn_steps`` of a
    quasi-Newton method ``qn_method`` (dense "bfgs", dense self-scaled Broyden "ssbroyden"
    (Urban, Stefanou & Pons 2025) or optax "lbfgs" with ``qn_memory`` pairs; all with the
    zoom line search) in ``qn_dtype`` on ``qn_n_res`` points redrawn every
    ``qn_resample_every`` steps (the dense methods keep their inverse Hessian across redraws;
    L-BFGS restarts its memory). ``log_every`` steps run as one compiled chunk;
    history and the error against the exact solution are recorded after each chunk.
    ``max_wall_s`` (0: no limit) ends training at the first chunk boundary after that many
    seconds of this run; the result, history and a checkpoint are of that state, and
    ``--resume`` goes on from it.
    """

    # network
    arch: str = "modified_mlp"
    width: int = 64
    depth: int = 3
    activation: str = "tanh"
    x_modes: int = 0
    fourier_features: int = 0
    fourier_scale: float = 1.0
    rwf: bool = True
    rwf_mean: float = 0.5
    rwf_std: float = 0.1
    hard_ic: bool = True
    hard_bc: bool = True
    odd_symmetric: bool = False
    output_scale: float = 1.0
    dropout: float = 0.0
    dtype: str = "float32"
    # collocation
    n_res: int = 1024
    n_ic: int = 256
    n_bc: int = 128
    sampler: str = "uniform"
    rad_k: float = 1.0
    rad_c: float = 1.0
    rad_pool: int = 8
    # loss
    weighting: str = "gradnorm"
    weight_every: int = 100
    weight_momentum: float = 0.9
    causal: bool = False
    causal_eps: float = 1.0
    causal_chunks: int = 16
    # Adam
    steps: int = 2000
    lr: float = 1e-3
    warmup_steps: int = 100
    decay_rate: float = 0.9
    decay_steps: int = 500
    # quasi-Newton
    qn_method: str = "lbfgs"
    qn_steps: int = 0
    qn_memory: int = 20
    qn_dtype: str = "float64"
    qn_n_res: int = 2048
    qn_resample_every: int = 500
    # logging
    log_every: int = 100
    checkpoint_every: int = 1000
    max_wall_s: float = 0.0

    def __post_init__(self) -> None:
        _choice("arch", self.arch, ARCHS)
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("sampler", self.sampler, SAMPLERS)
        _choice("weighting", self.weighting, WEIGHTINGS)
        _choice("dtype", self.dtype, DTYPES)
        _choice("qn_dtype", self.qn_dtype, DTYPES)
        _choice("qn_method", self.qn_method, QN_METHODS)
        for name in ("width", "depth", "n_res", "n_ic", "n_bc", "steps", "log_every", "checkpoint_every",
                     "weight_every", "causal_chunks", "rad_pool", "qn_memory", "qn_n_res",
                     "qn_resample_every", "decay_steps"):
            _positive_int(name, getattr(self, name))
        for name in ("x_modes", "fourier_features", "warmup_steps", "qn_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        for name in ("fourier_scale", "lr", "decay_rate", "output_scale", "rwf_mean", "rwf_std",
                     "causal_eps", "rad_k", "rad_c", "weight_momentum", "dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if (isinstance(self.max_wall_s, bool) or not isinstance(self.max_wall_s, int | float)
                or not math.isfinite(self.max_wall_s) or self.max_wall_s < 0):
            raise ValueError(f"max_wall_s must be a non-negative number of seconds, got {self.max_wall_s!r}")
        if not (0.0 <= self.dropout < 1.0):
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not (0.0 <= self.weight_momentum < 1.0):
            raise ValueError(f"weight_momentum must be in [0, 1), got {self.weight_momentum!r}")
        for name in ("lr", "fourier_scale", "decay_rate", "output_scale", "causal_eps", "rad_c"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.causal and self.n_res % self.causal_chunks:
            raise ValueError(f"n_res ({self.n_res}) must be a multiple of causal_chunks ({self.causal_chunks})")
        if self.causal and self.qn_n_res % self.causal_chunks:
            raise ValueError(
                f"qn_n_res ({self.qn_n_res}) must be a multiple of causal_chunks ({self.causal_chunks})"
            )
        if self.arch == "pirate" and self.fourier_features and 2 * self.fourier_features != self.width:
            pass  # a projection layer maps the embedding to the width

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


_BASE = PINNConfig()

# Named levels per problem. `fast`: under 2 minutes on the 2-core CPU; `accurate`: under 15
# minutes there. All three problems use hard initial/boundary constraints, so the only loss
# term is the PDE residual (weighting then has nothing to balance). Every level is a small
# float64 network: Adam on fresh points, then the dense self-scaled Broyden method
# (Urban, Stefanou & Pons 2025), which reaches errors one to three orders of magnitude below
# dense BFGS in the same steps here. Errors and times measured for each level are in
# benchmarks/results/pinn.md.
_HEAT = replace(_BASE, arch="mlp", width=32, depth=3, x_modes=2, dtype="float64", lr=3e-3, qn_method="ssbroyden")
_WAVE = replace(_BASE, arch="mlp", width=32, depth=3, x_modes=1, fourier_features=16, fourier_scale=2.0, rwf=False,
                dtype="float64", n_res=1024, lr=2e-3, decay_steps=500, qn_method="ssbroyden")
_BURGERS = replace(_BASE, arch="mlp", width=20, depth=3, rwf=False, dtype="float64", odd_symmetric=True, n_res=1024,
                   sampler="rad", rad_k=2.0, lr=3e-3, decay_steps=300, qn_method="ssbroyden", qn_n_res=4096,
                   qn_resample_every=1000)
LEVELS: dict[str, dict[str, PINNConfig]] = {
    "heat": {
        "fast": replace(_HEAT, n_res=1024, steps=1000, decay_steps=300, log_every=250, qn_steps=1000,
                        qn_n_res=2048, qn_resample_every=1000),
        "accurate": replace(_HEAT, n_res=2048, steps=2000, decay_steps=400, log_every=1000, qn_steps=6000,
                            qn_n_res=4096, qn_resample_every=6000),
    },
    "wave": {
        "fast": replace(_WAVE, steps=1500, log_every=250, qn_steps=1000, qn_n_res=2048, qn_resample_every=1000),
        "accurate": replace(_WAVE, steps=3000, log_every=1000, qn_steps=6000, qn_n_res=4096, qn_resample_every=1000),
    },
    "burgers": {
        "fast": replace(_BURGERS, steps=500, log_every=100, qn_steps=3000),
        "accurate": replace(_BURGERS, steps=1000, log_every=1000, qn_steps=12000, checkpoint_every=5000),
    },
}


def get_config(problem_name: str, preset: str = "fast") -> PINNConfig:
    """The named level ``preset`` ("fast" or "accurate") for the problem called ``problem_name``."""
    if problem_name not in LEVELS:
        raise ValueError(f"no PINN presets for problem {problem_name!r}; known: {', '.join(LEVELS)}")
    levels = LEVELS[problem_name]
    if preset not in levels:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(levels)}")
    return levels[preset]


_FIELD_TYPES = {f.name: f.type for f in fields(PINNConfig)}


def _convert(key: str, value: Any) -> Any:
    return convert_value(key, value, _FIELD_TYPES[key])


def convert_value(key: str, value: Any, kind: str) -> Any:
    """``value`` (a string from a flag or a TOML value) as the type named ``kind`` ("bool",
    "int", "float"; anything else gives ``str``); ValueError naming ``key`` when it is not."""
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"{key} must be true or false, got {value!r}")
    if kind == "int":
        if isinstance(value, bool):
            raise ValueError(f"{key} must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        try:
            as_float = float(str(value))
        except ValueError:
            raise ValueError(f"{key} must be an integer, got {value!r}") from None
        if not as_float.is_integer():
            raise ValueError(f"{key} must be an integer, got {value!r}")
        return int(as_float)
    if kind == "float":
        if isinstance(value, bool):
            raise ValueError(f"{key} must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{key} must be a number, got {value!r}") from None
    return str(value)


def _check_keys(keys: Any, source: str) -> None:
    unknown = sorted(set(keys) - set(_FIELD_TYPES))
    if unknown:
        raise ValueError(f"unknown PINN config key(s) in {source}: {', '.join(unknown)}")


def parse_overrides(overrides: dict[str, Any] | None, source: str = "overrides") -> dict[str, Any]:
    """Convert ``{"width": "128", "causal": "false"}`` to typed values by the field types."""
    if not overrides:
        return {}
    _check_keys(overrides, source)
    return {k: _convert(k, v) for k, v in overrides.items()}


def load_overrides(path: str | Path) -> dict[str, Any]:
    """Typed overrides from a flat TOML file of config fields (a ``[pinn]`` table also works)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such config file: {str(path)!r}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{str(path)!r} is not valid TOML: {err}") from None
    if set(data) == {"pinn"} and isinstance(data["pinn"], dict):
        data = data["pinn"]
    nested = sorted(k for k, v in data.items() if isinstance(v, dict))
    if nested:
        _check_keys(nested, str(path))
    return parse_overrides(data, source=str(path))


def apply_overrides(config: PINNConfig, *, config_file: str | Path | None = None,
                    overrides: dict[str, Any] | None = None, steps: int | None = None) -> PINNConfig:
    """config, then the TOML file, then ``overrides`` (--set), then ``steps`` (--steps)."""
    changes: dict[str, Any] = {}
    if config_file is not None:
        changes.update(load_overrides(config_file))
    changes.update(parse_overrides(overrides, source="--set"))
    if steps is not None:
        changes["steps"] = _convert("steps", steps)
    return replace(config, **changes) if changes else config
