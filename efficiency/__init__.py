"""PyTorch side of the workbench: a small GPT, parameter counts, mixed precision,
gradient checkpointing, profiling and INT8 inference (imports torch, never jax)."""

from efficiency.amp import AmpResult, compare_amp, peak_step_memory
from efficiency.checkpointing import CheckpointPoint, sweep_checkpointing
from efficiency.counting import ParameterCount, count_parameters
from efficiency.data import ByteTokenizer, Corpus, batches, get_batch, load_corpus, train_val_split
from efficiency.gpt import GPT, GPT_PRESETS, GPTConfig, KVCache
from efficiency.profiling import ProfileReport, profile_training
from efficiency.quantize import (
    SCHEMES,
    compare_gpt,
    compare_minilm,
    load_minilm,
    quantize_gpt,
    quantize_model,
)
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
    "ParameterCount", "count_parameters",
    "AmpResult", "compare_amp", "peak_step_memory",
    "CheckpointPoint", "sweep_checkpointing",
    "ProfileReport", "profile_training",
    "SCHEMES", "compare_gpt", "compare_minilm", "load_minilm", "quantize_gpt", "quantize_model",
]
