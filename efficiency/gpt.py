"""A small decoder-only GPT with a preallocated KV cache.

Design (what other modules rely on):

* Positions are **learned absolute embeddings** (GPT-2 style, one row per position
  ``0 .. context-1``). Every forward accepts explicit per-row ``positions`` so that a
  left-padded batch gives each row's first real token position 0.
* Blocks are pre-LayerNorm (``x + attn(ln(x))``, ``x + mlp(ln(x))``) with
  :func:`torch.nn.functional.scaled_dot_product_attention` and a GELU MLP.
* ``attn_mask`` is a **padding mask** of shape ``(batch, T)``, ``True`` for a real
  token and ``False`` for padding; causality is always applied on top of it.
* A :class:`KVCache` holds per-layer keys and values of shape
  ``(batch, n_head, max_len, head_dim)``. All rows share one write pointer
  (``cache.pos``, the number of filled slots); ``cache.valid`` ``(batch, max_len)``
  marks which slots hold real tokens and ``cache.lengths`` ``(batch,)`` counts the
  real tokens of each row (the next position of that row). Left-padded prompts of
  different lengths are therefore prefilled in one call and decoded one token per
  step for every row.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

__all__ = ["GPT", "GPTConfig", "GPT_PRESETS", "KVCache"]


@dataclass(frozen=True)
class GPTConfig:
    """Shape of a GPT.

    vocab_size: tokens in the vocabulary (256 for :class:`efficiency.data.ByteTokenizer`).
    context: longest sequence (the number of learned positions).
    n_layer, n_head, d_model: depth, heads, width; ``d_model`` must divide by ``n_head``.
    d_ff: hidden width of the MLP; ``None`` means ``4 * d_model``.
    dropout: dropout on attention weights and residual branches (training only).
    bias: biases in the linear layers and LayerNorms.
    tie_weights: share the token embedding with the output projection.
    """

    vocab_size: int = 256
    context: int = 128
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    d_ff: int | None = None
    dropout: float = 0.0
    bias: bool = True
    tie_weights: bool = True

    def __post_init__(self) -> None:
        for name in ("vocab_size", "context", "n_layer", "n_head", "d_model"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_head={self.n_head}")
        if self.d_ff is None:
            object.__setattr__(self, "d_ff", 4 * self.d_model)
        elif not isinstance(self.d_ff, int) or self.d_ff < 1:
            raise ValueError(f"d_ff must be a positive integer, got {self.d_ff!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GPTConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown GPTConfig fields: {sorted(unknown)}")
        return cls(**d)


GPT_PRESETS: dict[str, GPTConfig] = {
    # ~0.1 M parameters: unit tests and smoke runs.
    "tiny": GPTConfig(context=64, n_layer=2, n_head=2, d_model=64),
    # ~0.8 M parameters: the default for the CLI exercises and the generation service.
    "small": GPTConfig(context=128, n_layer=4, n_head=4, d_model=128),
    # ~10.7 M parameters: large enough for INT8 and profiling to matter.
    "medium": GPTConfig(context=256, n_layer=6, n_head=6, d_model=384),
}


@dataclass
class KVCache:
    """Preallocated keys/values for incremental decoding.

    k, v: one tensor per layer, each ``(batch, n_head, max_len, head_dim)``.
    valid: ``(batch, max_len)`` bool, ``True`` where a slot holds a real (non-padding) token.
    lengths: ``(batch,)`` int64, real tokens seen per row (= the next position of that row).
    pos: slots filled so far (shared by all rows).
    """

    k: list[torch.Tensor]
    v: list[torch.Tensor]
    valid: torch.Tensor
    lengths: torch.Tensor
    pos: int = 0

    @classmethod
    def allocate(cls, config: GPTConfig, batch_size: int, max_len: int | None = None, *,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> KVCache:
        """Zero cache for ``batch_size`` rows and ``max_len`` slots (default: the context)."""
        max_len = config.context if max_len is None else max_len
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {max_len}")
        shape = (batch_size, config.n_head, max_len, config.head_dim)
        k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        valid = torch.zeros(batch_size, max_len, dtype=torch.bool, device=device)
        lengths = torch.zeros(batch_size, dtype=torch.long, device=device)
        return cls(k=k, v=v, valid=valid, lengths=lengths, pos=0)

    @property
    def batch_size(self) -> int:
        return self.valid.shape[0]

    @property
    def max_len(self) -> int:
        return self.valid.shape[1]

    def reset(self) -> None:
        """Forget every token (keeps the memory)."""
        self.valid.zero_()
        self.lengths.zero_()
        self.pos = 0

    def select(self, rows: torch.Tensor | list[int]) -> KVCache:
        """A new cache holding only ``rows`` (e.g. drop finished sequences)."""
        rows = torch.as_tensor(rows, dtype=torch.long, device=self.valid.device)
        return KVCache(k=[t.index_select(0, rows) for t in self.k],
                       v=[t.index_select(0, rows) for t in self.v],
                       valid=self.valid.index_select(0, rows),
                       lengths=self.lengths.index_select(0, rows), pos=self.pos)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.k, *self.v))


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.head_dim = config.head_dim
        self.dropout = config.dropout
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=config.bias)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=config.bias)
        self.resid_drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None,
                cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        """x: (B, T, d_model); mask: (B, 1, T, S) bool (True = may attend) or None for causal."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        k = k.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        v = v.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        if cache is not None:
            start = cache.pos
            cache.k[layer][:, :, start:start + T] = k.to(cache.k[layer].dtype)
            cache.v[layer][:, :, start:start + T] = v.to(cache.v[layer].dtype)
            k = cache.k[layer][:, :, :start + T].to(q.dtype)
            v = cache.v[layer][:, :, :start + T].to(q.dtype)
        p = self.dropout if self.training else 0.0
        if mask is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_drop(self.proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.d_model, config.d_ff, bias=config.bias)
        self.proj = nn.Linear(config.d_ff, config.d_model, bias=config.bias)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-LN transformer block."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.d_model, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.d_model, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None,
                cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), mask, cache, layer)
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """Decoder-only transformer language model.

    ``model(idx)`` -> logits ``(B, T, vocab)``; with ``targets`` -> ``(logits, loss)``
    (mean cross entropy over targets that are not ``-100``).
    Set ``model.gradient_checkpointing = True`` to recompute each block in the
    backward pass (``torch.utils.checkpoint``, ``use_reentrant=False``).
    """

    def __init__(self, config: GPTConfig, *, gradient_checkpointing: bool = False) -> None:
        super().__init__()
        self.config = config
        self.gradient_checkpointing = gradient_checkpointing
        self.wte = nn.Embedding(config.vocab_size, config.d_model)
        self.wpe = nn.Embedding(config.context, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.d_model, bias=config.bias)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.wte.weight
        self._init_weights()

    def _init_weights(self) -> None:
        # GPT-2 initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2 n_layer).
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * self.config.n_layer) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, mean=0.0, std=std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    # ----------------------------------------------------------------- counting
    def num_parameters(self, non_embedding: bool = True) -> int:
        """Parameter count; ``non_embedding`` leaves out the token and position tables and
        an untied output projection (Kaplan et al. 2020's N, independent of tying)."""
        n = sum(p.numel() for p in self.parameters())  # shared tensors are counted once
        if non_embedding:
            n -= self.wte.weight.numel() + self.wpe.weight.numel()
            if not self.config.tie_weights:
                n -= self.lm_head.weight.numel()
        return n

    def flops_per_token(self, context: int | None = None, *, training: bool = True) -> int:
        """FLOPs per token after Kaplan et al. 2020, Table 1.

        Forward: ``2 N + 2 n_layer n_ctx d_model`` (N = non-embedding parameters, the
        second term the attention scores and weighted sum); training (forward +
        backward) is three times that: ``6 N + 6 n_layer n_ctx d_model``.
        """
        c = self.config
        n_ctx = c.context if context is None else context
        forward = 2 * self.num_parameters(non_embedding=True) + 2 * c.n_layer * n_ctx * c.d_model
        return 3 * forward if training else forward

    # ----------------------------------------------------------------- forward
    def forward(self, idx: torch.Tensor, *, positions: torch.Tensor | None = None,
                attn_mask: torch.Tensor | None = None, cache: KVCache | None = None,
                targets: torch.Tensor | None = None):
        """idx: (B, T) int64 tokens.

        positions: (B, T) int64, default: from the padding mask (and the cache's lengths).
        attn_mask: (B, T) bool padding mask of ``idx`` (True = real token), default all real.
        cache: a :class:`KVCache`; the new keys/values are written at ``cache.pos`` and the
            cache is advanced (``pos += T``, ``lengths += real tokens``).
        targets: (B, T) int64 next tokens, ``-100`` to ignore.
        """
        if idx.dim() != 2:
            raise ValueError(f"idx must have shape (batch, T), got {tuple(idx.shape)}")
        B, T = idx.shape
        c = self.config
        if attn_mask is not None and attn_mask.shape != idx.shape:
            raise ValueError(f"attn_mask shape {tuple(attn_mask.shape)} != idx shape {tuple(idx.shape)}")
        if attn_mask is not None:
            attn_mask = attn_mask.to(torch.bool)
        if cache is not None:
            if cache.batch_size != B:
                raise ValueError(f"cache holds {cache.batch_size} rows, idx has {B}")
            if cache.pos + T > cache.max_len:
                raise ValueError(f"cache overflow: {cache.pos} + {T} tokens > max_len {cache.max_len}")
        elif T > c.context:
            raise ValueError(f"sequence length {T} exceeds the model context {c.context}")

        real = attn_mask if attn_mask is not None else torch.ones_like(idx, dtype=torch.bool)
        if positions is not None:
            if positions.shape != idx.shape:
                raise ValueError(f"positions shape {tuple(positions.shape)} != idx shape {tuple(idx.shape)}")
            check = True
        elif cache is None and attn_mask is None:
            positions = torch.arange(T, device=idx.device).expand(B, T)  # T <= context checked above
            check = False
        else:
            start = cache.lengths[:, None] if cache is not None else 0
            positions = (start + real.long().cumsum(1) - 1).clamp_min(0)
            check = cache is not None
        if check:  # one host sync; only when positions can run past the table
            top, low = int(positions.max()), int(positions.min())
            if top >= c.context or low < 0:
                raise ValueError(f"position {top if top >= c.context else low} is outside "
                                 f"the model context [0, {c.context})")

        mask = self._mask(real, cache, explicit=attn_mask is not None)
        x = self.drop(self.wte(idx) + self.wpe(positions))
        use_ckpt = self.gradient_checkpointing and self.training and cache is None and torch.is_grad_enabled()
        for i, block in enumerate(self.blocks):
            if use_ckpt:
                x = checkpoint(block, x, mask, use_reentrant=False)
            else:
                x = block(x, mask, cache, i)
        logits = self.lm_head(self.ln_f(x))
        if cache is not None:
            cache.valid[:, cache.pos:cache.pos + T] = real
            cache.lengths += real.long().sum(1)
            cache.pos += T
        if targets is None:
            return logits
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
        return logits, loss

    @staticmethod
    def _mask(real: torch.Tensor, cache: KVCache | None, *, explicit: bool) -> torch.Tensor | None:
        """(B, 1, T, S) bool: causal, real keys only, and every query sees itself (so a
        padding query never has an empty row, which would give NaN)."""
        B, T = real.shape
        if cache is None and not explicit:
            return None  # plain causal: SDPA's is_causal fast path
        start = cache.pos if cache is not None else 0
        S = start + T
        keys = real if cache is None else torch.cat([cache.valid[:, :start], real], dim=1)
        q_idx = torch.arange(start, S, device=real.device)[:, None]
        k_idx = torch.arange(S, device=real.device)[None, :]
        causal = k_idx <= q_idx                                   # (T, S)
        mask = causal[None] & keys[:, None, :]                    # (B, T, S)
        mask = mask | (k_idx == q_idx)[None]
        return mask[:, None]

    def new_cache(self, batch_size: int, max_len: int | None = None, *, dtype: torch.dtype | None = None) -> KVCache:
        """A :class:`KVCache` on this model's device (dtype: the model's by default)."""
        p = self.ln_f.weight  # a float parameter in every variant, INT8 ones included
        return KVCache.allocate(self.config, batch_size, max_len, device=p.device, dtype=dtype or p.dtype)
