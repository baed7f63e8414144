"""PINN run configurations: one frozen dataclass of six sections, named levels per problem,
TOML and flag overrides with dotted names.

A config is a ``PINNConfig`` of sections, each a frozen dataclass::

    network   NetworkConfig    the ansatz: architecture, embeddings, hard constraints, dtype
    sampling  SamplingConfig   collocation points: counts and sampler
    loss      LossConfig       loss weighting (grad-norm) and causal weighting
    adam      AdamConfig       the first phase: steps and learning-rate schedule
    qn        QNConfig         the second phase: quasi-Newton method, steps, points
    run       RunConfig        logging, checkpoint cadence, time budget
    inverse   InverseConfig    trainable PDE coefficients (inverse problems only)

An ablation is a config, not a code copy::

    cfg = get_config("burgers", "fast")
    no_causal = cfg.updated({"loss.causal": False})       # or dataclasses.replace per section

Overrides name fields by section: ``--set qn.steps=2000``, ``parse_overrides({"network.width":
"128"})`` converts strings by the field types; a TOML file has one table per section
(``[network]`` ``width = 128``). Unknown keys raise ``ValueError`` naming them. The flat names of
the previous release (``width``, ``qn_steps``, ...) are accepted for one release with a
``FutureWarning`` naming the new key.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

__all__ = [
    "LEVELS",
    "SECTIONS",
    "AdamConfig",
    "InverseConfig",
    "LossConfig",
    "NetworkConfig",
    "PINNConfig",
    "QNConfig",
    "RunConfig",
    "SamplingConfig",
    "apply_overrides",
    "convert_value",
    "generic_config",
    "get_config",
    "load_overrides",
    "parse_overrides",
    "program_config",
]

ARCHS = ("mlp", "modified_mlp", "pirate")
ACTIVATIONS = ("tanh", "sin", "gelu")
SAMPLERS = ("uniform", "sobol", "rad")
WEIGHTINGS = ("none", "gradnorm")
DTYPES = ("float32", "float64")
QN_METHODS = ("bfgs", "ssbroyden", "lbfgs")


# ----------------------------------------------------------------------------- checks


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {kind}, got {value!r}")


def _number(name: str, value: Any, *, positive: bool = False, lo: float | None = None,
            hi: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value >= hi):
        bound = f">= {lo}" if hi is None else f"< {hi}" if lo is None else f"in [{lo}, {hi})"
        raise ValueError(f"{name} must be {bound}, got {value!r}")


# ----------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class NetworkConfig:
    """The ansatz. ``arch`` is "mlp", "modified_mlp" (Wang, Teng & Perdikaris 2021) or "pirate"
    (PirateNet-style gated residual blocks, Wang et al. 2024); ``depth`` counts hidden layers
    (blocks for "pirate"). ``x_modes`` > 0 embeds x exactly periodically as cos/sin(k pi xi),
    xi = (x - x_min)/L, k = 1..x_modes (period 2L, the odd extension of a zero-Dirichlet
    problem). ``fourier_features`` > 0 adds that many random Fourier features of (t, embedded
    x) with scale ``fourier_scale``. ``rwf`` is random weight factorization W = diag(exp(s)) V,
    s ~ N(rwf_mean, rwf_std). ``hard_ic``/``hard_bc`` build initial (and, for wave, initial-
    velocity) and boundary data into the ansatz. ``odd_symmetric`` builds in
    u(t, c + s) = -u(t, c - s) about the domain's centre c, using (N(t, xi) - N(t, 1 - xi)) / 2
    in place of the network N: valid (and checked) when the initial data are odd about c and the
    equation is invariant under (x, u) -> (2c - x, -u), as for the Burgers preset (it fixes the
    shock at the centre). ``even_symmetric`` builds in u(t, c + s) = u(t, c - s) (checked the
    same way: even initial data, an equation invariant under x -> 2c - x; Allen-Cahn's preset) by
    an embedding of x with only even features, cos(2 pi k (xi - 1/2) / P) or (2 xi - 1)^2, so
    the network is evaluated once per point. ``dropout`` > 0 drops hidden units with one
    mask per function sample (MC dropout). ``u0_feature`` gives the network the initial data
    u0(x) as one more input: a kink of u0 (Allen-Cahn's slope jump across the periodic boundary)
    can then be cancelled by the network as it decays, which the smooth embedding of x cannot
    (the ansatz u0 + t N keeps the kink otherwise). ``kink_diffusivity`` eps > 0 (for an equation
    u_t = eps u_xx + ..., periodic, 1-D) replaces u0 in the ansatz (and as that input) by u0 with
    its slope jump J across the periodic boundary diffused exactly as the heat equation does,
    u0 + (J/2) s ierfc(d / s), s = sqrt(4 eps t), d the distance to the boundary: smooth for
    t > 0, so the residual at collocation points sees the kink's smoothing, which u0 + t N
    (smooth N) cannot represent. ``dtype`` is the Adam phase's float type."""

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
    even_symmetric: bool = False
    output_scale: float = 1.0
    dropout: float = 0.0
    dtype: str = "float32"
    u0_feature: bool = False
    kink_diffusivity: float = 0.0

    def __post_init__(self) -> None:
        _choice("network.arch", self.arch, ARCHS)
        _choice("network.activation", self.activation, ACTIVATIONS)
        _choice("network.dtype", self.dtype, DTYPES)
        _int("network.width", self.width, 1)
        _int("network.depth", self.depth, 1)
        _int("network.x_modes", self.x_modes, 0)
        _int("network.fourier_features", self.fourier_features, 0)
        for name in ("fourier_scale", "output_scale"):
            _number(f"network.{name}", getattr(self, name), positive=True)
        for name in ("rwf_mean", "rwf_std"):
            _number(f"network.{name}", getattr(self, name))
        _number("network.dropout", self.dropout, lo=0.0, hi=1.0)
        _number("network.kink_diffusivity", self.kink_diffusivity, lo=0.0)
        if self.odd_symmetric and self.even_symmetric:
            raise ValueError("network.odd_symmetric and network.even_symmetric exclude each other: set one false")


@dataclass(frozen=True)
class SamplingConfig:
    """Collocation points, fresh every step: ``n_res`` residual points (``n_ic`` initial and
    ``n_bc`` boundary points when those constraints are soft). ``sampler`` "uniform", "sobol"
    (scrambled, shifted by a random vector each step) or "rad" (residual-based adaptive, Wu et
    al. 2023: a pool of ``rad_pool`` times ``n_res`` candidates drawn per chunk, points chosen
    with probability ~ |r|^rad_k / mean + rad_c)."""

    n_res: int = 1024
    n_ic: int = 256
    n_bc: int = 128
    sampler: str = "uniform"
    rad_k: float = 1.0
    rad_c: float = 1.0
    rad_pool: int = 8

    def __post_init__(self) -> None:
        _choice("sampling.sampler", self.sampler, SAMPLERS)
        for name in ("n_res", "n_ic", "n_bc", "rad_pool"):
            _int(f"sampling.{name}", getattr(self, name), 1)
        _number("sampling.rad_k", self.rad_k)
        _number("sampling.rad_c", self.rad_c, positive=True)


@dataclass(frozen=True)
class LossConfig:
    """``weighting`` "gradnorm" rebalances the loss terms every ``weight_every`` steps (Wang et
    al. 2023) with momentum ``weight_momentum``; ``causal`` weights time slices by
    exp(-causal_eps * cumulative earlier residual) over ``causal_chunks`` slices (Wang, Sankaran
    & Perdikaris 2024)."""

    weighting: str = "gradnorm"
    weight_every: int = 100
    weight_momentum: float = 0.9
    causal: bool = False
    causal_eps: float = 1.0
    causal_chunks: int = 16

    def __post_init__(self) -> None:
        _choice("loss.weighting", self.weighting, WEIGHTINGS)
        _int("loss.weight_every", self.weight_every, 1)
        _int("loss.causal_chunks", self.causal_chunks, 1)
        _number("loss.weight_momentum", self.weight_momentum, lo=0.0, hi=1.0)
        _number("loss.causal_eps", self.causal_eps, positive=True)


@dataclass(frozen=True)
class AdamConfig:
    """Adam for ``steps`` steps: linear warm-up over ``warmup_steps`` to ``lr``, then exponential
    decay by ``decay_rate`` every ``decay_steps``."""

    steps: int = 2000
    lr: float = 1e-3
    warmup_steps: int = 100
    decay_rate: float = 0.9
    decay_steps: int = 500

    def __post_init__(self) -> None:
        _int("adam.steps", self.steps, 1)
        _int("adam.warmup_steps", self.warmup_steps, 0)
        _int("adam.decay_steps", self.decay_steps, 1)
        _number("adam.lr", self.lr, positive=True)
        _number("adam.decay_rate", self.decay_rate, positive=True)


@dataclass(frozen=True)
class QNConfig:
    """Then ``steps`` of a quasi-Newton ``method``: dense "bfgs", dense self-scaled Broyden
    "ssbroyden" (Urban, Stefanou & Pons 2025) or optax "lbfgs" with ``memory`` pairs, all with
    the zoom line search, in ``dtype``, on ``n_res`` points redrawn every ``resample_every``
    steps (the dense methods keep their inverse Hessian across redraws; L-BFGS restarts)."""

    method: str = "lbfgs"
    steps: int = 0
    memory: int = 20
    dtype: str = "float64"
    n_res: int = 2048
    resample_every: int = 500

    def __post_init__(self) -> None:
        _choice("qn.method", self.method, QN_METHODS)
        _choice("qn.dtype", self.dtype, DTYPES)
        _int("qn.steps", self.steps, 0)
        for name in ("memory", "n_res", "resample_every"):
            _int(f"qn.{name}", getattr(self, name), 1)


@dataclass(frozen=True)
class RunConfig:
    """``log_every`` steps run as one compiled chunk, after which history and the error against
    the reference are recorded; a checkpoint every ``checkpoint_every`` steps (and at the end)
    when a checkpoint folder is given; ``max_wall_s`` (0: none) ends training at the first chunk
    boundary after that many seconds (the result and a checkpoint are of that state, and
    ``--resume`` goes on from it)."""

    log_every: int = 100
    checkpoint_every: int = 1000
    max_wall_s: float = 0.0

    def __post_init__(self) -> None:
        _int("run.log_every", self.log_every, 1)
        _int("run.checkpoint_every", self.checkpoint_every, 1)
        _number("run.max_wall_s", self.max_wall_s, lo=0.0, hi=math.inf)


@dataclass(frozen=True)
class InverseConfig:
    """Inverse problems (``pdes.inverse``): the unknown coefficients are trainable, value =
    exp(raw), raw trained by its own Adam with peak learning rate ``coeff_lr`` (same warm-up and
    decay shape as the network's, second-moment decay ``coeff_b2``). ``init``: initial guesses
    ((name, value), ...); ``init_spread``: std of the log-normal jitter of the guesses across
    ensemble members (a single run starts at ``init`` exactly); ``bootstrap``: ensemble members
    see bootstrap resamples of the observations; ``data_warmup``: for this fraction of the
    Adam steps the residual's gradient reaches only the coefficients, not the network, so the
    network first follows the data. ``res_weight``: the quasi-Newton phase multiplies the
    residual's (grad-norm balanced) weight by this (with noisy data a large weight makes the
    physics the constraint and the data the fit: the maximum-likelihood setting)."""

    coeff_lr: float = 0.05
    coeff_b2: float = 0.99
    init: tuple[tuple[str, float], ...] = ()
    init_spread: float = 0.3
    bootstrap: bool = True
    data_warmup: float = 0.2
    res_weight: float = 1.0

    def __post_init__(self) -> None:
        _number("inverse.coeff_lr", self.coeff_lr, positive=True)
        _number("inverse.res_weight", self.res_weight, positive=True)
        _number("inverse.coeff_b2", self.coeff_b2, lo=0.0, hi=1.0)
        _number("inverse.init_spread", self.init_spread, lo=0.0, hi=math.inf)
        _number("inverse.data_warmup", self.data_warmup, lo=0.0, hi=1.0)
        for name, value in self.init:
            if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value) and value > 0):
                raise ValueError(f"initial guess of {name} must be a positive finite number, got {value!r}")


SECTIONS: dict[str, type] = {"network": NetworkConfig, "sampling": SamplingConfig, "loss": LossConfig,
                             "adam": AdamConfig, "qn": QNConfig, "run": RunConfig, "inverse": InverseConfig}


@dataclass(frozen=True)
class PINNConfig:
    """Everything that decides a PINN run, in sections (see the module doc)."""

    network: NetworkConfig = field(default_factory=NetworkConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    adam: AdamConfig = field(default_factory=AdamConfig)
    qn: QNConfig = field(default_factory=QNConfig)
    run: RunConfig = field(default_factory=RunConfig)
    inverse: InverseConfig = field(default_factory=InverseConfig)

    def __post_init__(self) -> None:
        for name, kind in SECTIONS.items():
            if not isinstance(getattr(self, name), kind):
                raise ValueError(f"{name} must be a {kind.__name__}, got {type(getattr(self, name)).__name__}")
        if self.loss.causal:
            for where, n in (("sampling.n_res", self.sampling.n_res), ("qn.n_res", self.qn.n_res)):
                if n % self.loss.causal_chunks:
                    raise ValueError(f"{where} ({n}) must be a multiple of loss.causal_chunks "
                                     f"({self.loss.causal_chunks})")

    def to_dict(self) -> dict[str, Any]:
        """{section: {field: value}} (JSON-able)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PINNConfig:
        """The config of ``to_dict`` (missing sections and fields take their defaults)."""
        _check_keys(_flatten(data), "config")
        sections = {}
        for name, kind in SECTIONS.items():
            values = dict(data.get(name, {}))
            if name == "inverse" and "init" in values:
                values["init"] = tuple((str(k), float(v)) for k, v in
                                       (values["init"].items() if isinstance(values["init"], dict) else values["init"]))
            sections[name] = kind(**values)
        return cls(**sections)

    def updated(self, changes: Mapping[str, Any]) -> PINNConfig:
        """A copy with the typed values of ``changes`` ({"section.field": value}) set."""
        by_section: dict[str, dict[str, Any]] = {}
        for key, value in changes.items():
            section, name = _split_key(key)
            by_section.setdefault(section, {})[name] = value
        return replace(self, **{s: replace(getattr(self, s), **v) for s, v in by_section.items()})

    def get(self, key: str) -> Any:
        """The value of "section.field"."""
        section, name = _split_key(key)
        return getattr(getattr(self, section), name)


def program_config(config: PINNConfig) -> PINNConfig:
    """The config with the fields that do not enter any compiled program (run lengths, logging,
    checkpoints, time budget, inverse start values) set to fixed values: two runs whose configs
    have the same program_config share their compiled programs."""
    return replace(config, adam=replace(config.adam, steps=1), qn=replace(config.qn, steps=0, resample_every=1),
                   run=RunConfig(), inverse=replace(config.inverse, init=(), init_spread=0.0, bootstrap=False))


# ----------------------------------------------------------------------------- keys and overrides

_FIELD_TYPES: dict[str, str] = {f"{s}.{f.name}": str(f.type) for s, kind in SECTIONS.items() for f in fields(kind)}
# the flat field names of the previous release -> their dotted names
_FLAT_ALIASES: dict[str, str] = {
    **{f.name: f"network.{f.name}" for f in fields(NetworkConfig)},
    **{f.name: f"sampling.{f.name}" for f in fields(SamplingConfig)},
    **{f.name: f"loss.{f.name}" for f in fields(LossConfig)},
    **{f.name: f"adam.{f.name}" for f in fields(AdamConfig)},
    **{f"qn_{f.name}": f"qn.{f.name}" for f in fields(QNConfig)},
    **{f.name: f"run.{f.name}" for f in fields(RunConfig)},
}


def _split_key(key: str) -> tuple[str, str]:
    if key not in _FIELD_TYPES:
        raise ValueError(f"unknown PINN config key {key!r}")
    section, name = key.split(".", 1)
    return section, name


def _canonical(key: str, source: str) -> str:
    """The dotted name of ``key``; a flat name of the previous release is mapped with a FutureWarning."""
    if key in _FIELD_TYPES:
        return key
    if key in _FLAT_ALIASES:
        new = _FLAT_ALIASES[key]
        warnings.warn(f"PINN config key {key!r} ({source}) is deprecated; use {new!r}", FutureWarning, stacklevel=4)
        return new
    return key


def _check_keys(keys: Any, source: str) -> None:
    unknown = sorted(set(keys) - set(_FIELD_TYPES) - set(_FLAT_ALIASES))
    if unknown:
        raise ValueError(f"unknown PINN config key(s) in {source}: {', '.join(unknown)} "
                         f"(keys are section.field, sections {', '.join(SECTIONS)})")


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
    if kind.startswith("tuple"):  # inverse.init: "name=value,name=value" or a mapping
        return _parse_init(key, value)
    return str(value)


def _parse_init(key: str, value: Any) -> tuple[tuple[str, float], ...]:
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, tuple | list):
        items = list(value)
    else:
        items = [part.split("=", 1) if "=" in part else (part, "") for part in str(value).split(",") if part.strip()]
    out = []
    for name, v in items:
        out.append((str(name).strip(), convert_value(f"{key} {str(name).strip()}", v, "float")))
    return tuple(out)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"qn": {"steps": 5}} -> {"qn.steps": 5}; flat keys stay as they are."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and name in SECTIONS:
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def parse_overrides(overrides: Mapping[str, Any] | None, source: str = "overrides") -> dict[str, Any]:
    """Convert ``{"network.width": "128", "loss.causal": "false"}`` (nested mappings by section
    work too) to typed values by the field types; unknown keys raise ValueError naming them."""
    if not overrides:
        return {}
    flat = _flatten(overrides)
    _check_keys(flat, source)
    out = {}
    for key, value in flat.items():
        key = _canonical(key, source)
        out[key] = convert_value(key, value, _FIELD_TYPES[key])
    return out


def load_overrides(path: str | Path) -> dict[str, Any]:
    """Typed overrides from a TOML file with one table per section (``[qn]`` ``steps = 2000``);
    a ``[pinn]`` table holding those tables also works."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such config file: {str(path)!r}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{str(path)!r} is not valid TOML: {err}") from None
    if set(data) == {"pinn"} and isinstance(data["pinn"], dict):
        data = data["pinn"]
    nested = sorted(k for k, v in data.items() if isinstance(v, dict) and k not in SECTIONS)
    if nested:
        raise ValueError(f"unknown table(s) in {str(path)!r}: {', '.join(nested)} (tables are the sections "
                         f"{', '.join(SECTIONS)})")
    return parse_overrides(data, source=str(path))


def apply_overrides(config: PINNConfig, *, config_file: str | Path | None = None,
                    overrides: Mapping[str, Any] | None = None, steps: int | None = None) -> PINNConfig:
    """config, then the TOML file, then ``overrides`` (--set), then ``steps`` (--steps: adam.steps)."""
    changes: dict[str, Any] = {}
    if config_file is not None:
        changes.update(load_overrides(config_file))
    changes.update(parse_overrides(overrides, source="--set"))
    if steps is not None:
        changes["adam.steps"] = convert_value("steps", steps, "int")
    return config.updated(changes) if changes else config


# ----------------------------------------------------------------------------- presets

# Named levels per problem. `fast`: under 2 minutes on a 2-core CPU; `accurate`: under 15
# minutes there. All three problems use hard initial/boundary constraints, so the only loss
# term is the PDE residual. Every level is a small float64 network: Adam on fresh points, then
# the dense self-scaled Broyden method (Urban, Stefanou & Pons 2025). Errors and times measured
# for each level are in benchmarks/results/pinn.md.
_HEAT = PINNConfig(network=NetworkConfig(arch="mlp", width=32, depth=3, x_modes=2, dtype="float64"),
                   adam=AdamConfig(lr=3e-3), qn=QNConfig(method="ssbroyden"))
_WAVE = PINNConfig(network=NetworkConfig(arch="mlp", width=32, depth=3, x_modes=1, fourier_features=16,
                                         fourier_scale=2.0, rwf=False, dtype="float64"),
                   sampling=SamplingConfig(n_res=1024), adam=AdamConfig(lr=2e-3, decay_steps=500),
                   qn=QNConfig(method="ssbroyden"))
_BURGERS = PINNConfig(network=NetworkConfig(arch="mlp", width=20, depth=3, rwf=False, dtype="float64",
                                            odd_symmetric=True),
                      sampling=SamplingConfig(n_res=1024, sampler="rad", rad_k=2.0),
                      adam=AdamConfig(lr=3e-3, decay_steps=300),
                      qn=QNConfig(method="ssbroyden", n_res=4096, resample_every=1000))
# Allen-Cahn and KdV (issue 21): periodic, x embedded exactly periodically, initial data built in.
# Allen-Cahn's u0 = x^2 cos(pi x) has a kink across the periodic boundary (slope jump 4, decaying as e^{-10 t}
# while diffusion smooths it over sqrt(eps t)). It held 98.5 % of the squared error of `accurate`
# (7.6e-4): the ansatz starts from u0 with the kink diffused exactly (kink_diffusivity = the
# equation's eps) and N takes that function as an input (u0_feature), so it can let the kink decay
# (1.42e-4 with the input alone, 5.1e-5 with both); u0 and the equation are even in x, so the
# network is too (even_symmetric: 1.19e-6).
_ALLEN_CAHN = PINNConfig(network=NetworkConfig(arch="mlp", width=32, depth=3, x_modes=4, rwf=False,
                                               dtype="float64", u0_feature=True, kink_diffusivity=1e-4,
                                               even_symmetric=True),
                         sampling=SamplingConfig(n_res=2048, n_ic=512, n_bc=128),
                         adam=AdamConfig(lr=3e-3, decay_steps=400), qn=QNConfig(method="ssbroyden", n_res=4096))
_KDV = PINNConfig(network=NetworkConfig(arch="mlp", width=32, depth=3, x_modes=4, rwf=False, dtype="float64"),
                  sampling=SamplingConfig(n_res=2048), adam=AdamConfig(lr=3e-3, decay_steps=400),
                  qn=QNConfig(method="ssbroyden", n_res=4096))
LEVELS: dict[str, dict[str, PINNConfig]] = {
    "allen_cahn": {
        "fast": _ALLEN_CAHN.updated({"sampling.sampler": "rad", "adam.steps": 500, "qn.steps": 4000,
                                     "qn.resample_every": 1000, "run.log_every": 250}),
        "accurate": _ALLEN_CAHN.updated({"sampling.sampler": "rad", "adam.steps": 1000, "qn.steps": 14000,
                                         "qn.resample_every": 2000, "run.log_every": 1000}),
    },
    "kdv": {
        "fast": _KDV.updated({"adam.steps": 1000, "qn.steps": 4000, "qn.resample_every": 1000, "run.log_every": 250}),
        # Sobol points (a low-discrepancy quadrature of the residual): 1.7e-4, uniform points 3.5e-4
        "accurate": _KDV.updated({"sampling.sampler": "sobol", "sampling.n_res": 4096, "adam.steps": 1000,
                                  "qn.steps": 20000, "qn.resample_every": 2000, "run.log_every": 1000}),
    },
    "heat": {
        "fast": _HEAT.updated({"sampling.n_res": 1024, "adam.steps": 1000, "adam.decay_steps": 300,
                               "run.log_every": 250, "qn.steps": 1000, "qn.n_res": 2048, "qn.resample_every": 1000}),
        "accurate": _HEAT.updated({"sampling.n_res": 2048, "adam.steps": 2000, "adam.decay_steps": 400,
                                   "run.log_every": 1000, "qn.steps": 6000, "qn.n_res": 4096,
                                   "qn.resample_every": 6000}),
    },
    "wave": {
        "fast": _WAVE.updated({"adam.steps": 1500, "run.log_every": 250, "qn.steps": 1000, "qn.n_res": 2048,
                               "qn.resample_every": 1000}),
        "accurate": _WAVE.updated({"adam.steps": 3000, "run.log_every": 1000, "qn.steps": 6000, "qn.n_res": 4096,
                                   "qn.resample_every": 1000}),
    },
    "burgers": {
        "fast": _BURGERS.updated({"adam.steps": 500, "run.log_every": 100, "qn.steps": 3000}),
        # 8192 Sobol points in the quasi-Newton phase: the error falls steadily to ~3e-7 where 4096
        # RAD points left it wandering at 1-6e-6 (it jumped at every redraw)
        "accurate": _BURGERS.updated({"sampling.sampler": "sobol", "adam.steps": 1000, "run.log_every": 1000,
                                      "qn.steps": 12000, "qn.n_res": 8192, "run.checkpoint_every": 5000}),
    },
}


def generic_config(problem: Any, preset: str = "fast") -> PINNConfig:
    """A starting config for a problem without presets of its own (the user's ``pdes.PDE``): a
    small float64 MLP (x embedded periodically, 2 modes, for a periodic problem), Adam, then
    the self-scaled Broyden method; "fast" 2000 + 2000 steps, "accurate" 3000 + 8000."""
    if preset not in ("fast", "accurate"):
        raise ValueError(f"unknown preset {preset!r}; choose one of fast, accurate")
    periodic = problem.boundary.kind == "periodic"
    base = PINNConfig(network=NetworkConfig(arch="mlp", width=32, depth=3, x_modes=2 if periodic else 0, rwf=False,
                                            dtype="float64"),
                      adam=AdamConfig(lr=3e-3, decay_steps=400), qn=QNConfig(method="ssbroyden"))
    if preset == "fast":
        return base.updated({"adam.steps": 2000, "qn.steps": 2000, "qn.n_res": 2048, "qn.resample_every": 1000,
                             "run.log_every": 250})
    return base.updated({"sampling.n_res": 2048, "adam.steps": 3000, "qn.steps": 8000, "qn.n_res": 4096,
                         "qn.resample_every": 2000, "run.log_every": 1000})


def get_config(problem_name: str, preset: str = "fast") -> PINNConfig:
    """The named level ``preset`` ("fast" or "accurate") for the problem called ``problem_name``."""
    if problem_name not in LEVELS:
        raise ValueError(f"no PINN presets for problem {problem_name!r}; known: {', '.join(LEVELS)}")
    levels = LEVELS[problem_name]
    if preset not in levels:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(levels)}")
    return levels[preset]
