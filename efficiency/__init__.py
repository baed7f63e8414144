"""PyTorch side of the workbench: a small GPT, parameter counts, mixed precision,
gradient checkpointing, profiling and INT8 inference (imports torch, never jax)."""

from efficiency.data import ByteTokenizer, Corpus, batches, get_batch, load_corpus, train_val_split
from efficiency.gpt import GPT, GPT_PRESETS, GPTConfig, KVCache
from efficiency.train import (
    TrainResult,
    evaluate_loss,
    load_checkpoint,
    make_train_step,
    parse_dtype,
    resolve_device,
    save_checkpoint,
    train_gpt,
)

__all__ = [
    "GPT", "GPT_PRESETS", "GPTConfig", "KVCache",
    "ByteTokenizer", "Corpus", "batches", "get_batch", "load_corpus", "train_val_split",
    "TrainResult", "evaluate_loss", "load_checkpoint", "make_train_step", "parse_dtype", "resolve_device",
    "save_checkpoint", "train_gpt",
]
