"""Text generation: greedy and sampled decoding, KV cache, batched requests, INT8 weights.

The engine drives any `efficiency.gpt.GPT`:

- `SamplingParams` holds one request's decoding settings (temperature 0 means greedy).
- `DecodeBatch` decodes several prompts of different lengths together. Prompts are
  left-padded to a common length P; row b's real tokens sit at columns P - L_b .. P - 1
  and get positions 0 .. L_b - 1, and a key mask hides the padding columns, so every
  row sees exactly what it would see alone. With the KV cache each step feeds one new
  column (the cache is preallocated for P + max_new_tokens columns); without it each
  step recomputes the whole sequence (the reference the cache is tested against).
  Finished rows leave the batch (their cache rows are dropped), so a long request does
  not keep short ones' compute alive. `DecodeBatch.admit` adds requests between two
  steps (continuous batching): the newcomers are prefilled into a cache of the same
  layout and stacked under the running rows (see its docstring).
- `generate(model, prompts, params)` runs a `DecodeBatch` to the end.

INT8: pass a model from `efficiency.quantize.quantize_gpt(model, "weight-only")`; its
activations stay float, so results stay independent of the batch (dynamic INT8 shares
one activation scale per tensor across rows and is not batch-invariant).

Sampling is per row with the row's own `torch.Generator` (seeded from
`SamplingParams.seed`), so a seeded request gives the same text whether it runs alone
or batched with others.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from efficiency.gpt import GPT, KVCache

__all__ = [
    "DecodeBatch",
    "GenerationResult",
    "SamplingParams",
    "generate",
    "sample_next",
]


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings of one request.

    temperature: 0 means greedy (argmax); > 0 divides the logits before sampling.
    top_k: keep the k most likely tokens (0 = all). top_p: keep the smallest set of
    tokens whose probability reaches top_p (1.0 = all). seed: seeds the request's own
    torch.Generator (None: a fresh random seed). max_new_tokens: tokens to generate.
    """

    max_new_tokens: int = 64
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int):
            raise ValueError(f"max_new_tokens must be an integer, got {self.max_new_tokens!r}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not (isinstance(self.temperature, int | float) and not isinstance(self.temperature, bool)):
            raise ValueError(f"temperature must be a number, got {self.temperature!r}")
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError(f"temperature must be finite and >= 0, got {self.temperature}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise ValueError(f"top_k must be an integer >= 0, got {self.top_k!r}")
        if not (isinstance(self.top_p, int | float) and not isinstance(self.top_p, bool)):
            raise ValueError(f"top_p must be a number, got {self.top_p!r}")
        if not (0 < self.top_p <= 1):
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError(f"seed must be an integer or None, got {self.seed!r}")
        if self.seed is not None and not (0 <= self.seed < 2**63):
            raise ValueError(f"seed must be in [0, 2**63), got {self.seed}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def make_generator(self) -> torch.Generator:
        """The request's own random stream (seeded, or from os.urandom when seed is None)."""
        seed = self.seed if self.seed is not None else int.from_bytes(os.urandom(8), "little") >> 1
        return torch.Generator().manual_seed(seed)


@dataclass
class GenerationResult:
    """Generated token ids (the prompt excluded) and why decoding stopped."""

    tokens: list[int] = field(default_factory=list)
    finish_reason: str = "length"  # "length", "stop" (end-of-text token) or "cancelled"


def sample_next(
    logits: torch.Tensor, params: Sequence[SamplingParams], generators: Sequence[torch.Generator | None]
) -> torch.Tensor:
    """Pick one token per row. logits: (B, V) float -> (B,) int64.

    Greedy rows take the argmax. Sampled rows divide by the temperature, keep the top_k
    logits and the top_p nucleus (always at least the most likely token), and draw by
    inverting the cumulative distribution at one uniform number from the row's generator.
    """
    B, V = logits.shape
    if len(params) != B or len(generators) != B:
        raise ValueError(f"need {B} params and generators, got {len(params)} and {len(generators)}")
    logits = logits.float()
    out = logits.argmax(dim=-1)
    rows = [b for b in range(B) if not params[b].greedy]
    if not rows:
        return out
    idx = torch.tensor(rows)
    temp = torch.tensor([params[b].temperature for b in rows], dtype=torch.float32)[:, None]
    scaled = logits[idx] / temp
    sorted_logits, order = scaled.sort(dim=-1, descending=True)  # (R, V)
    rank = torch.arange(V)[None, :]
    top_k = torch.tensor([params[b].top_k or V for b in rows])[:, None]
    keep = rank < top_k
    probs = torch.softmax(sorted_logits.masked_fill(~keep, -math.inf), dim=-1)
    cum_before = probs.cumsum(dim=-1) - probs  # mass of strictly more likely tokens
    top_p = torch.tensor([params[b].top_p for b in rows], dtype=torch.float32)[:, None]
    keep &= (cum_before < top_p) | (rank == 0)
    probs = probs.masked_fill(~keep, 0.0)
    cdf = probs.cumsum(dim=-1)
    u = torch.stack([torch.rand((), generator=generators[b]) for b in rows]) * cdf[:, -1]
    pick = torch.searchsorted(cdf, u[:, None], right=True).clamp_(max=V - 1)
    # searchsorted can land on a zero-probability tail entry only through rounding; step back
    pick = torch.minimum(pick, keep.sum(dim=-1, keepdim=True) - 1)
    out[idx] = order.gather(1, pick)[:, 0]
    return out


def _check_prompts(model: GPT, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams]) -> None:
    cfg = model.config
    for i, p in enumerate(prompts):
        if len(p) == 0:
            raise ValueError(f"prompt {i} is empty")
        if min(p) < 0 or max(p) >= cfg.vocab_size:
            raise ValueError(f"prompt {i} has token ids outside [0, {cfg.vocab_size})")
        if len(p) + params[i].max_new_tokens > cfg.context:
            raise ValueError(
                f"prompt {i}: {len(p)} prompt tokens + max_new_tokens {params[i].max_new_tokens} "
                f"exceed the model's context of {cfg.context} tokens"
            )


def _left_pad(prompts: Sequence[Sequence[int]], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(len(prompts), width) tokens right-aligned, and the (same shape) bool mask of real tokens."""
    lengths = torch.tensor([len(p) for p in prompts])
    tokens = torch.zeros(len(prompts), width, dtype=torch.long)
    for b, p in enumerate(prompts):
        tokens[b, width - len(p) :] = torch.as_tensor(list(p), dtype=torch.long)
    return tokens, torch.arange(width)[None, :] >= (width - lengths)[:, None]


def _pad_cache(cache: KVCache, left: int, max_len: int) -> KVCache:
    """A copy of `cache` with `left` empty slots in front and room for max_len slots."""
    def grow(t: torch.Tensor) -> torch.Tensor:
        out = t.new_zeros((*t.shape[:2], max_len, *t.shape[3:]))
        out[:, :, left : left + cache.pos] = t[:, :, : cache.pos]
        return out

    valid = cache.valid.new_zeros((cache.batch_size, max_len))
    valid[:, left : left + cache.pos] = cache.valid[:, : cache.pos]
    return KVCache(k=[grow(t) for t in cache.k], v=[grow(t) for t in cache.v], valid=valid,
                   lengths=cache.lengths.clone(), pos=cache.pos + left)


def _cat_caches(a: KVCache, b: KVCache) -> KVCache:
    """Rows of `a` then rows of `b` (same pos and max_len)."""
    return KVCache(k=[torch.cat(t, 0) for t in zip(a.k, b.k, strict=True)],
                   v=[torch.cat(t, 0) for t in zip(a.v, b.v, strict=True)],
                   valid=torch.cat([a.valid, b.valid]), lengths=torch.cat([a.lengths, b.lengths]), pos=a.pos)


def _logits(model: GPT, idx: torch.Tensor, **kw) -> torch.Tensor:
    out = model(idx, **kw)
    return out[0] if isinstance(out, tuple) else out


class DecodeBatch:
    """Decode several prompts together, one token per row per `step()`.

    model: a GPT (eval mode is set by the caller; decoding runs under torch.inference_mode).
    prompts: token-id lists, each non-empty; prompt + max_new_tokens must fit the model's
    context (`config.context`). params: one SamplingParams per prompt (or one for all).
    use_cache: keep keys/values in a preallocated KVCache (else recompute each step).
    eos_id: a token that ends a row early (None: rows run to max_new_tokens).
    """

    def __init__(
        self,
        model: GPT,
        prompts: Sequence[Sequence[int]],
        params: SamplingParams | Sequence[SamplingParams],
        *,
        use_cache: bool = True,
        eos_id: int | None = None,
    ) -> None:
        if len(prompts) == 0:
            raise ValueError("prompts is empty")
        if isinstance(params, SamplingParams):
            params = [params] * len(prompts)
        if len(params) != len(prompts):
            raise ValueError(f"got {len(prompts)} prompts but {len(params)} SamplingParams")
        _check_prompts(model, prompts, params)
        self.model = model
        self.params = list(params)
        self.use_cache = use_cache
        self.eos_id = eos_id
        self.device = next(model.parameters()).device
        self.results = [GenerationResult() for _ in prompts]
        self.generators = [p.make_generator() for p in self.params]
        P = max(len(p) for p in prompts)
        self.capacity = P + max(p.max_new_tokens for p in self.params)
        tokens, valid = _left_pad(prompts, P)
        self.tokens = tokens.to(self.device)  # (B, T) left-padded, grows by one column a step
        self.valid = valid.to(self.device)  # (B, T) True on real tokens
        self.active = list(range(len(prompts)))  # request index of each batch row
        self.cache: KVCache | None = None
        self.steps = 0
        self.peak_cache_bytes = 0

    @property
    def done(self) -> bool:
        return not self.active

    def cache_bytes(self) -> int:
        """Bytes held by the KV cache now (0 without a cache)."""
        return 0 if self.cache is None else self.cache.nbytes()

    def cancel(self, request: int) -> None:
        """Stop decoding request `request` (e.g. its client went away or timed out)."""
        if request in self.active:
            self.results[request].finish_reason = "cancelled"
            self._drop([r != request for r in self.active])

    def release(self, request: int) -> None:
        """Forget a finished request's tokens and generator (a long-running batch in a
        server admits requests for ever; this keeps its bookkeeping bounded)."""
        if request in self.active:
            raise ValueError(f"request {request} is still decoding; cancel it first")
        self.results[request] = GenerationResult(finish_reason=self.results[request].finish_reason)
        self.generators[request] = None

    def _drop(self, keep: list[bool]) -> None:
        if all(keep):
            return
        rows = torch.tensor([i for i, k in enumerate(keep) if k], dtype=torch.long, device=self.device)
        self.active = [r for r, k in zip(self.active, keep, strict=True) if k]
        if not self.active:
            self.cache = None
            return
        self.tokens = self.tokens[rows]
        self.valid = self.valid[rows]
        if self.cache is not None:
            self.cache = self.cache.select(rows)
        self._trim()

    def _remaining(self, req: int) -> int:
        return self.params[req].max_new_tokens - len(self.results[req].tokens)

    @torch.inference_mode()
    def admit(self, prompts: Sequence[Sequence[int]],
              params: SamplingParams | Sequence[SamplingParams]) -> list[int]:
        """Add requests to a running batch (continuous batching); returns their request indices.

        Between steps every row has T columns, the last one not yet in the cache. A new
        prompt of length L is left-padded to max(T, L) columns (the running rows get
        L - T padding columns in front when L > T), its first columns are prefilled into
        a cache of the same layout, and the caches are stacked row-wise. Its first token
        comes with the next `step()`, like everyone else's.
        """
        if isinstance(params, SamplingParams):
            params = [params] * len(prompts)
        if len(params) != len(prompts):
            raise ValueError(f"got {len(prompts)} prompts but {len(params)} SamplingParams")
        if len(prompts) == 0:
            return []
        _check_prompts(self.model, prompts, params)
        first = len(self.params)
        self.params += list(params)
        self.results += [GenerationResult() for _ in prompts]
        self.generators += [p.make_generator() for p in params]
        new_ids = list(range(first, first + len(prompts)))
        T = self.tokens.shape[1] if self.active else 0
        W = max(T, max(len(p) for p in prompts))
        tokens, valid = _left_pad(prompts, W)
        tokens, valid = tokens.to(self.device), valid.to(self.device)
        if not self.active:  # nothing running: start afresh with the new rows
            self.tokens, self.valid, self.cache, self.active = tokens, valid, None, new_ids
            self.capacity = W + max(p.max_new_tokens for p in params)
            return new_ids
        shift = W - T
        if shift:
            pad = torch.zeros(len(self.active), shift, dtype=torch.long, device=self.device)
            self.tokens = torch.cat([pad, self.tokens], dim=1)
            self.valid = torch.cat([pad.bool(), self.valid], dim=1)
        self.tokens = torch.cat([self.tokens, tokens])
        self.valid = torch.cat([self.valid, valid])
        self.active += new_ids
        need = W - 1 + max(self._remaining(r) for r in self.active)
        self.capacity = max(self.capacity + shift, need)
        if self.cache is None:
            return new_ids  # not started yet: the first step prefills everyone
        main = _pad_cache(self.cache, shift, self.capacity) if (shift or need > self.cache.max_len) \
            else self.cache
        self.capacity = main.max_len
        fresh = self.model.new_cache(len(prompts), main.max_len)
        if W > 1:
            self.model(tokens[:, :-1], attn_mask=valid[:, :-1], cache=fresh)
        self.cache = _cat_caches(main, fresh)
        return new_ids

    def _trim(self) -> None:
        """Drop leading columns that are padding in every row (after rows left)."""
        first = int(self.valid.any(0).int().argmax())
        if first == 0:
            return
        self.tokens, self.valid = self.tokens[:, first:], self.valid[:, first:]
        if self.cache is not None:
            c = self.cache
            self.cache = KVCache(k=[t[:, :, first:] for t in c.k], v=[t[:, :, first:] for t in c.v],
                                 valid=c.valid[:, first:], lengths=c.lengths, pos=c.pos - first)
            self.capacity = self.cache.max_len

    @torch.inference_mode()
    def step(self) -> list[tuple[int, int]]:
        """Generate one token for every active row; returns (request index, token) pairs."""
        if self.done:
            return []
        if self.use_cache:
            if self.cache is None:  # prefill: the whole padded prompt at once
                self.cache = self.model.new_cache(len(self.active), self.capacity)
                new_cols = slice(0, self.tokens.shape[1])
            else:
                new_cols = slice(self.tokens.shape[1] - 1, None)
            logits = _logits(self.model, self.tokens[:, new_cols], attn_mask=self.valid[:, new_cols],
                             cache=self.cache)
            self.peak_cache_bytes = max(self.peak_cache_bytes, self.cache.nbytes())
        else:  # recompute every column; positions follow from the padding mask
            logits = _logits(self.model, self.tokens, attn_mask=self.valid)
        params = [self.params[r] for r in self.active]
        gens = [self.generators[r] for r in self.active]
        nxt = sample_next(logits[:, -1, :], params, gens)
        self.steps += 1
        self.tokens = torch.cat([self.tokens, nxt[:, None]], dim=1)
        self.valid = torch.cat([self.valid, torch.ones_like(self.valid[:, :1])], dim=1)
        emitted = []
        keep = []
        for row, req in enumerate(self.active):
            tok = int(nxt[row])
            res = self.results[req]
            res.tokens.append(tok)
            emitted.append((req, tok))
            if self.eos_id is not None and tok == self.eos_id:
                res.finish_reason = "stop"
                keep.append(False)
            else:
                keep.append(len(res.tokens) < self.params[req].max_new_tokens)
        self._drop(keep)
        return emitted


def generate(
    model: GPT,
    prompts: Sequence[Sequence[int]],
    params: SamplingParams | Sequence[SamplingParams] = SamplingParams(temperature=0.0),
    *,
    use_cache: bool = True,
    eos_id: int | None = None,
    on_step: Callable[[list[tuple[int, int]]], None] | None = None,
) -> list[GenerationResult]:
    """Decode every prompt to the end; returns one GenerationResult per prompt, in order."""
    batch = DecodeBatch(model, prompts, params, use_cache=use_cache, eos_id=eos_id)
    while not batch.done:
        emitted = batch.step()
        if on_step is not None:
            on_step(emitted)
    return batch.results
