"""Parameter counts for any ``torch.nn.Module``.

Conventions:

* A tensor shared by several modules (tied embedding / output head) is counted once,
  under the first top-level module that reaches it in ``named_parameters`` order.
* "Non-embedding" leaves out the weights of every ``nn.Embedding`` (token, position,
  token-type tables) and, for :class:`efficiency.gpt.GPT` with untied weights, the
  output head: Kaplan et al. (2020)'s N, which does not depend on tying.
* ``bytes_by_dtype`` sums ``numel * element_size`` of the unique parameters per dtype;
  buffers (e.g. INT8 weights of quantized modules, position ids) are reported
  separately in ``buffer_bytes_by_dtype``. Packed weights of ``torch.ao`` dynamic
  quantized layers are neither parameters nor buffers: use
  :func:`efficiency.quantize.state_bytes` for the saved size of such models.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

__all__ = ["ParameterCount", "count_parameters", "format_count"]


@dataclass
class ParameterCount:
    total: int
    trainable: int
    non_embedding: int
    embedding: int
    per_module: dict[str, int]
    bytes_by_dtype: dict[str, int]
    buffer_bytes_by_dtype: dict[str, int]

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes_by_dtype.values())

    def to_dict(self) -> dict:
        return {**asdict(self), "total_bytes": self.total_bytes}


def _dtype(t) -> str:
    return str(t.dtype).removeprefix("torch.")


def count_parameters(model: nn.Module) -> ParameterCount:
    """Total, trainable, non-embedding, per top-level module and bytes per dtype."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"count_parameters needs a torch.nn.Module, got {type(model).__name__}")
    embedding_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    cfg = getattr(model, "config", None)
    head = getattr(model, "lm_head", None)
    if cfg is not None and getattr(cfg, "tie_weights", True) is False and isinstance(head, nn.Linear):
        embedding_ids.add(id(head.weight))
    total = trainable = embedding = 0
    per_module: dict[str, int] = {}
    by_dtype: dict[str, int] = {}
    for name, p in model.named_parameters():  # yields each shared tensor once
        n = p.numel()
        total += n
        trainable += n if p.requires_grad else 0
        embedding += n if id(p) in embedding_ids else 0
        top = name.split(".", 1)[0] if "." in name else "(self)"
        per_module[top] = per_module.get(top, 0) + n
        by_dtype[_dtype(p)] = by_dtype.get(_dtype(p), 0) + n * p.element_size()
    buffers: dict[str, int] = {}
    for b in model.buffers():
        buffers[_dtype(b)] = buffers.get(_dtype(b), 0) + b.numel() * b.element_size()
    return ParameterCount(total=total, trainable=trainable, non_embedding=total - embedding, embedding=embedding,
                          per_module=per_module, bytes_by_dtype=by_dtype, buffer_bytes_by_dtype=buffers)


def format_count(name: str, c: ParameterCount) -> str:
    """A small human-readable table."""
    lines = [f"{name}: total {c.total:,}  trainable {c.trainable:,}  non-embedding {c.non_embedding:,}  "
             f"embedding {c.embedding:,}",
             "  " + "  ".join(f"{k} {v / 2**20:.2f} MiB" for k, v in c.bytes_by_dtype.items()) + " of parameters"]
    width = max((len(k) for k in c.per_module), default=4)
    for k, v in c.per_module.items():
        lines.append(f"    {k:<{width}}  {v:>12,}  {100 * v / max(c.total, 1):5.1f}%")
    return "\n".join(lines)
