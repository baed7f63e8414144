"""Byte-level tokenizer, a corpus that needs no download, and random training batches.

Tokenizer: :class:`ByteTokenizer` maps text to its UTF-8 bytes, so the vocabulary is
exactly 256 and any text (any language, any file) encodes without unknown tokens.
Decoding replaces an incomplete or invalid UTF-8 sequence with U+FFFD.

Default corpus: the Python standard library's own source files
(``sysconfig.get_paths()["stdlib"]``, every ``*.py`` file below it except
``site-packages``/``dist-packages``, sorted by relative POSIX path, read as UTF-8 and
joined with one newline), cut at ``max_bytes``. It is on every machine that runs this
code; its exact content depends on the Python version, so :class:`Corpus` records the
SHA-256 of the bytes used.
"""

from __future__ import annotations

import hashlib
import os
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["ByteTokenizer", "Corpus", "load_corpus", "train_val_split", "get_batch", "batches",
           "DEFAULT_CORPUS_BYTES"]

DEFAULT_CORPUS_BYTES = 2_000_000
TEXT_SUFFIXES = (".py", ".txt", ".md", ".rst")


class ByteTokenizer:
    """UTF-8 bytes as tokens; ``vocab_size == 256``."""

    vocab_size = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_tensor(self, text: str) -> torch.Tensor:
        """(n,) int64 tokens."""
        return torch.frombuffer(bytearray(text.encode("utf-8")), dtype=torch.uint8).long()

    def decode(self, tokens) -> str:
        if isinstance(tokens, torch.Tensor):
            tokens = tokens.tolist()
        bad = [t for t in tokens if not 0 <= t < 256]
        if bad:
            raise ValueError(f"token {bad[0]} is not a byte (0..255)")
        return bytes(tokens).decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Corpus:
    """tokens: (n,) uint8 byte tokens; sha256 of those bytes; where they came from."""

    tokens: torch.Tensor
    sha256: str
    source: str
    n_files: int

    @property
    def n_bytes(self) -> int:
        return int(self.tokens.numel())

    def describe(self) -> dict:
        return {"source": self.source, "n_files": self.n_files, "n_bytes": self.n_bytes, "sha256": self.sha256}


_SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__"}


def _text_files(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS and not d.startswith(".")]
        files += [Path(dirpath, f) for f in filenames if f.endswith(suffixes)]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def load_corpus(path: str | Path | None = None, max_bytes: int = DEFAULT_CORPUS_BYTES) -> Corpus:
    """Read a corpus as bytes.

    path: ``None`` for the standard-library corpus, a text file, or a directory (all
    ``.py .txt .md .rst`` files below it, sorted, joined with a newline).
    max_bytes: keep at most this many bytes (files are read in order until it is reached).
    """
    if not isinstance(max_bytes, int) or max_bytes < 2:
        raise ValueError(f"max_bytes must be an integer >= 2, got {max_bytes!r}")
    if path is None:
        root = Path(sysconfig.get_paths()["stdlib"])
        files, source = _text_files(root, (".py",)), f"python-stdlib:{root}"
    else:
        root = Path(path)
        if not root.exists():
            raise FileNotFoundError(f"corpus path {str(root)!r} does not exist")
        files = [root] if root.is_file() else _text_files(root, TEXT_SUFFIXES)
        source = str(root)
    if not files:
        raise ValueError(f"no text files found under {str(root)!r}")
    chunks, total, used = [], 0, 0
    for f in files:
        data = f.read_bytes()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            continue  # skip binary / non-UTF-8 files
        chunks.append(data + b"\n")
        total += len(data) + 1
        used += 1
        if total >= max_bytes:
            break
    blob = b"".join(chunks)[:max_bytes]
    if len(blob) < 2:
        raise ValueError(f"corpus {str(root)!r} holds fewer than 2 bytes of UTF-8 text")
    tokens = torch.frombuffer(bytearray(blob), dtype=torch.uint8).clone()
    return Corpus(tokens=tokens, sha256=hashlib.sha256(blob).hexdigest(), source=source, n_files=used)


def train_val_split(tokens: torch.Tensor, val_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Contiguous split: the last ``val_fraction`` of the tokens is validation."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_val = max(1, int(round(tokens.numel() * val_fraction)))
    return tokens[:-n_val], tokens[-n_val:]


def get_batch(tokens: torch.Tensor, batch_size: int, context: int, generator: torch.Generator,
              device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows: x, y = (batch, context) int64, y shifted by one token."""
    n = tokens.numel()
    if n < context + 1:
        raise ValueError(f"{n} tokens are too few for windows of context {context} (+1 target)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    starts = torch.randint(0, n - context, (batch_size,), generator=generator)
    offsets = torch.arange(context + 1)
    win = tokens[starts[:, None] + offsets].long()
    x, y = win[:, :-1], win[:, 1:]
    if torch.device(device).type != "cpu":
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    return x, y


def batches(tokens: torch.Tensor, batch_size: int, context: int, generator: torch.Generator,
            device: torch.device | str = "cpu", steps: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``steps`` random batches (forever if ``None``), drawn with ``generator``."""
    i = 0
    while steps is None or i < steps:
        yield get_batch(tokens, batch_size, context, generator, device)
        i += 1
