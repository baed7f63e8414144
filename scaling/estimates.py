"""Back-of-the-envelope calculators: loss laws, training compute, attention cost, memory, quantization.

Pure numpy/python (no torch, no jax). Units, stated once:

* ``N``: number of parameters, raw count (not billions). Chinchilla's law counts all parameters;
  Kaplan's counts non-embedding parameters.
* ``D``: number of training tokens, raw count.
* ``C``: training compute in FLOPs (floating-point operations, a multiply-add counts as 2).
* loss: cross-entropy in nats per token (Chinchilla: MassiveText; Kaplan: WebText2).
* bytes: ``GB`` means 1e9 bytes (as vendors quote memory); ``GiB`` = 2**30 bytes is given alongside.

Published constants (presets)
-----------------------------
* ``CHINCHILLA``: Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models",
  Approach 3 (eq. 10 / appendix D.2): L(N, D) = E + A / N^alpha + B / D^beta with
  E = 1.69, A = 406.4, B = 410.7, alpha = 0.34, beta = 0.28.
* ``EPOCH``: Besiroglu et al. 2024, "Chinchilla Scaling: A replication attempt" (Epoch AI),
  refit of the same form: E = 1.817, A = 482.01, B = 2085.43, alpha = 0.3478, beta = 0.3658.
* ``KAPLAN``: Kaplan et al. 2020, "Scaling Laws for Neural Language Models". Single-variable laws
  (eqs. 1.1-1.3): L(N) = (N_c / N)^alpha_N, N_c = 8.8e13 non-embedding parameters,
  alpha_N = 0.076; L(D) = (D_c / D)^alpha_D, D_c = 5.4e13 tokens, alpha_D = 0.095;
  L(C_min) = (C_c / C_min)^alpha_C, C_c = 3.1e8 PF-days, alpha_C = 0.050.
  Joint law (eq. 1.5, Table 2): L(N, D) = [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D with
  N_c = 6.4e13, D_c = 1.8e13, alpha_N = 0.076, alpha_D = 0.103. No irreducible term (E = 0).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

PF_DAY = 1e15 * 86400.0  # FLOPs in one petaflop/s-day (Kaplan et al. 2020 express compute in PF-days)
GB = 1e9
GiB = 2.0**30

BITS_PER_PARAM = {"fp32": 32, "fp16": 16, "bf16": 16, "int8": 8, "int4": 4}


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not (value > 0 and math.isfinite(value)):  # also rejects NaN
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return value


def _positive_int(name: str, value: int) -> int:
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


# --------------------------------------------------------------------------- loss laws
@dataclass(frozen=True)
class ChinchillaLaw:
    """L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, eq. 2). N, D raw counts; nats."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    name: str = "custom"
    source: str = "user constants"

    def __post_init__(self) -> None:
        for key in ("A", "B", "alpha", "beta"):
            _positive(key, getattr(self, key))
        if not (self.E >= 0 and math.isfinite(self.E)):
            raise ValueError(f"E must be a finite non-negative number, got {self.E}")

    def loss(self, N: float, D: float = math.inf) -> float:
        """Predicted loss; D = inf gives the infinite-data limit E + A / N^alpha."""
        N = _positive("N", N)
        data = 0.0 if math.isinf(D) else self.B / _positive("D", D) ** self.beta
        return self.E + self.A / N**self.alpha + data

    @property
    def irreducible(self) -> float:
        """The limit of the loss as N and D grow without bound (E)."""
        return self.E

    @property
    def exponents(self) -> tuple[float, float]:
        """(a, b) with N* ~ C^a, D* ~ C^b: a = beta / (alpha + beta), b = alpha / (alpha + beta)."""
        s = self.alpha + self.beta
        return self.beta / s, self.alpha / s

    def optimal_allocation(self, C: float) -> tuple[float, float]:
        """Compute-optimal (N*, D*) under C = 6 N D (Hoffmann et al. 2022, eq. 4 / appendix D.2).

        N*(C) = G (C/6)^a, D*(C) = G^-1 (C/6)^b, G = (alpha A / (beta B))^(1 / (alpha + beta)).
        """
        C = _positive("C", C)
        a, b = self.exponents
        G = (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / (self.alpha + self.beta))
        return G * (C / 6.0) ** a, (C / 6.0) ** b / G


@dataclass(frozen=True)
class KaplanLaw:
    """Kaplan et al. 2020 power laws (no irreducible loss). N: non-embedding parameters; nats/token."""

    N_c: float = 8.8e13
    alpha_N: float = 0.076
    D_c: float = 5.4e13
    alpha_D: float = 0.095
    C_c_pf_days: float = 3.1e8
    alpha_C: float = 0.050
    joint_N_c: float = 6.4e13
    joint_D_c: float = 1.8e13
    joint_alpha_N: float = 0.076
    joint_alpha_D: float = 0.103
    name: str = "kaplan"
    source: str = "Kaplan et al. 2020, eqs. 1.1-1.3 and 1.5 (Table 2)"

    E = 0.0

    def loss(self, N: float, D: float = math.inf) -> float:
        """L(N) = (N_c/N)^alpha_N for D = inf (eq. 1.1), else the joint eq. 1.5 with Table 2 constants."""
        N = _positive("N", N)
        if math.isinf(D):
            return (self.N_c / N) ** self.alpha_N
        D = _positive("D", D)
        inner = (self.joint_N_c / N) ** (self.joint_alpha_N / self.joint_alpha_D) + self.joint_D_c / D
        return inner**self.joint_alpha_D

    def loss_data(self, D: float) -> float:
        """L(D) = (D_c/D)^alpha_D (eq. 1.2), for a large model trained with early stopping."""
        return (self.D_c / _positive("D", D)) ** self.alpha_D

    def loss_compute(self, C: float) -> float:
        """L(C_min) = (C_c/C_min)^alpha_C (eq. 1.3); C in FLOPs (converted to PF-days here)."""
        return (self.C_c_pf_days / (_positive("C", C) / PF_DAY)) ** self.alpha_C

    @property
    def irreducible(self) -> float:
        return 0.0


CHINCHILLA = ChinchillaLaw(1.69, 406.4, 410.7, 0.34, 0.28, name="chinchilla",
                           source="Hoffmann et al. 2022, Approach 3 (eq. 10)")
EPOCH = ChinchillaLaw(1.817, 482.01, 2085.43, 0.3478, 0.3658, name="epoch",
                      source="Besiroglu et al. 2024 (Epoch AI), refit of Hoffmann et al.'s Approach 3")
KAPLAN = KaplanLaw()
PRESETS: dict[str, ChinchillaLaw | KaplanLaw] = {"chinchilla": CHINCHILLA, "epoch": EPOCH, "kaplan": KAPLAN}


def get_law(name: str) -> ChinchillaLaw | KaplanLaw:
    """A preset by name: chinchilla, epoch or kaplan."""
    if name not in PRESETS:
        raise ValueError(f"unknown law preset {name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[name]


# --------------------------------------------------------------------------- compute
def training_flops(N: float, D: float, *, n_layer: int | None = None, n_ctx: int | None = None,
                   d_model: int | None = None) -> dict:
    """Training compute in FLOPs.

    C = 6 N D (2 N FLOPs per token forward, 4 N backward). When ``n_layer``, ``n_ctx`` and ``d_model``
    are given, the attention term of Kaplan et al. 2020 (Table 1: forward 2 n_layer n_ctx d_attn per
    token, with d_attn = d_model; training = 3 x forward) is added: C_attn = 6 n_layer n_ctx d_model D.
    """
    N, D = _positive("N", N), _positive("D", D)
    out = {"N": N, "D": D, "C_dense": 6.0 * N * D, "C_attention": 0.0}
    given = [v is not None for v in (n_layer, n_ctx, d_model)]
    if any(given) and not all(given):
        raise ValueError("the attention term needs all of n_layer, n_ctx and d_model")
    if all(given):
        out["C_attention"] = 6.0 * _positive_int("n_layer", n_layer) * _positive_int("n_ctx", n_ctx) \
            * _positive_int("d_model", d_model) * D
    out["C"] = out["C_dense"] + out["C_attention"]
    out["C_pf_days"] = out["C"] / PF_DAY
    return out


def budget_strategies(N: float, D: float, factor: float = 2.0, law: ChinchillaLaw = CHINCHILLA) -> list[dict]:
    """Ways to spend ``factor`` times the compute C = 6 N D of a run (N params, D tokens).

    Rows: all to N (N x factor), all to D (D x factor), the compute-optimal split from the law's
    exponents (N x factor^a, D x factor^b with a = beta/(alpha+beta), b = alpha/(alpha+beta)), and the
    law's absolute optimum N*(C'), D*(C') at the new budget C'. Each row has N, D, C and the predicted loss.
    """
    N, D, factor = _positive("N", N), _positive("D", D), _positive("factor", factor)
    if not isinstance(law, ChinchillaLaw):
        raise ValueError("budget strategies need a law of the form E + A/N^alpha + B/D^beta")
    a, b = law.exponents
    C_new = 6.0 * N * D * factor
    n_opt, d_opt = law.optimal_allocation(C_new)
    rows = [("baseline", N, D), ("all to N", N * factor, D), ("all to D", N, D * factor),
            ("split by exponents", N * factor**a, D * factor**b), ("optimum at new budget", n_opt, d_opt)]
    return [{"strategy": s, "N": n, "D": d, "C": 6.0 * n * d, "tokens_per_param": d / n,
             "loss": law.loss(n, d)} for s, n, d in rows]


# --------------------------------------------------------------------------- attention
def attention_cost(n_ctx: int, d_model: int, n_heads: int = 1, n_layer: int = 1, bytes_per_element: float = 2.0,
                   batch: int = 1) -> dict:
    """Cost of the attention scores and the weighted sum, for one forward pass.

    FLOPs: Q K^T is (n x d_head)(d_head x n) per head -> 2 n^2 d_head; A V another 2 n^2 d_head; summed
    over heads: 4 n^2 d_model per layer (grows as n^2 d). Attention matrix: n^2 elements per head per
    layer (grows as n^2), stored at ``bytes_per_element`` (2 for fp16/bf16).
    """
    n = _positive_int("n_ctx", n_ctx)
    d = _positive_int("d_model", d_model)
    h = _positive_int("n_heads", n_heads)
    layers = _positive_int("n_layer", n_layer)
    batch = _positive_int("batch", batch)
    if d % h:
        raise ValueError(f"d_model ({d}) must be divisible by n_heads ({h})")
    flops = 4.0 * n * n * d * layers * batch
    elements = float(n) * n * h * layers * batch
    return {"n_ctx": n, "d_model": d, "n_heads": h, "n_layer": layers, "batch": batch,
            "flops": flops, "score_elements_per_head": float(n) * n, "matrix_elements": elements,
            "matrix_bytes": elements * _positive("bytes_per_element", bytes_per_element)}


def attention_scaling(n_from: int, n_to: int, d_model: int = 4096, n_heads: int = 32, **kw) -> dict:
    """Ratios of attention FLOPs and matrix memory between two sequence lengths ((n_to/n_from)^2 both)."""
    a = attention_cost(n_from, d_model, n_heads, **kw)
    b = attention_cost(n_to, d_model, n_heads, **kw)
    return {"from": a, "to": b, "flops_ratio": b["flops"] / a["flops"],
            "memory_ratio": b["matrix_bytes"] / a["matrix_bytes"]}


# --------------------------------------------------------------------------- memory
def parameter_memory(N: float) -> dict[str, float]:
    """Bytes to store N parameters in each format: bits / 8 per parameter (fp32 4, fp16/bf16 2, int8 1, int4 0.5)."""
    N = _positive("N", N)
    return {fmt: N * bits / 8.0 for fmt, bits in BITS_PER_PARAM.items()}


def training_memory(N: float, mixed_precision: bool = True) -> dict:
    """Bytes of model state when training N parameters with Adam (activations not included).

    fp32: weights 4 + gradients 4 + Adam first moment 4 + second moment 4 = 16 bytes/param.
    Mixed precision (fp16/bf16 weights and gradients with fp32 master weights; Micikevicius et al. 2018,
    Rajbhandari et al. 2020 "ZeRO", sec. 3.1): 2 + 2 + master 4 + 4 + 4 = 16 bytes/param.
    """
    N = _positive("N", N)
    if mixed_precision:
        parts = {"weights (16-bit)": 2, "gradients (16-bit)": 2, "master weights (fp32)": 4,
                 "Adam first moment (fp32)": 4, "Adam second moment (fp32)": 4}
    else:
        parts = {"weights (fp32)": 4, "gradients (fp32)": 4, "Adam first moment (fp32)": 4,
                 "Adam second moment (fp32)": 4}
    rows = {k: v * N for k, v in parts.items()}
    total = sum(rows.values())
    return {"N": N, "mixed_precision": mixed_precision, "bytes_per_param": float(sum(parts.values())),
            "parts_bytes": rows, "total_bytes": total, "total_GB": total / GB, "total_GiB": total / GiB}


def quantized_size(size_bytes: float, from_bits: int = 16, to_bits: int = 4, group_size: int | None = None,
                   scale_bits: int = 16, zero_point_bits: int = 0) -> dict:
    """Storage of a model of ``size_bytes`` at ``from_bits`` per weight after quantizing to ``to_bits``.

    N = size_bytes * 8 / from_bits weights. Without groups: N * to_bits / 8 bytes (metadata ignored).
    With ``group_size`` g, each group stores a scale (``scale_bits``) and optionally a zero point, so
    bits per weight = to_bits + (scale_bits + zero_point_bits) / g.
    """
    size = _positive("size_bytes", size_bytes)
    for key, val in (("from_bits", from_bits), ("to_bits", to_bits)):
        _positive_int(key, val)
    n = size * 8.0 / from_bits
    overhead = 0.0
    if group_size is not None:
        overhead = (scale_bits + zero_point_bits) / _positive_int("group_size", group_size)
    bits = to_bits + overhead
    out_bytes = n * bits / 8.0
    return {"n_weights": n, "bits_per_weight": bits, "bytes": out_bytes, "GB": out_bytes / GB,
            "ratio": size / out_bytes}


def as_dict(law: ChinchillaLaw | KaplanLaw) -> dict:
    """A law's constants as a plain dict (for --json)."""
    return asdict(law)
