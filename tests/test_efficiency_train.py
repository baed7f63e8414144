"""Tokenizer, corpus, batches, training loop and checkpoints."""

import hashlib

import pytest

torch = pytest.importorskip("torch")

from efficiency.data import ByteTokenizer, batches, load_corpus, train_val_split  # noqa: E402
from efficiency.gpt import GPTConfig  # noqa: E402
from efficiency.train import (  # noqa: E402
    load_checkpoint,
    parse_dtype,
    resolve_device,
    save_checkpoint,
    train_gpt,
)

pytestmark = pytest.mark.torch


def test_byte_tokenizer_round_trips_any_text():
    tok = ByteTokenizer()
    text = "def f(x):\n    return 'é∑🙂'\n"
    ids = tok.encode(text)
    assert max(ids) < 256 and len(ids) == len(text.encode("utf-8"))
    assert tok.decode(ids) == text
    assert tok.encode_tensor(text).tolist() == ids


def test_default_corpus_is_the_stdlib_and_records_its_hash():
    c = load_corpus(max_bytes=50_000)
    assert c.n_bytes == 50_000 and c.source.startswith("python-stdlib:")
    assert c.sha256 == hashlib.sha256(bytes(c.tokens.tolist())).hexdigest()
    assert load_corpus(max_bytes=50_000).sha256 == c.sha256           # deterministic order


def test_corpus_from_missing_path_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_corpus(tmp_path / "nope")
    f = tmp_path / "a.txt"
    f.write_text("hello world")
    assert bytes(load_corpus(f).tokens.tolist()) == b"hello world\n"


def test_batches_are_shifted_windows_and_reproducible():
    tokens = torch.arange(100, dtype=torch.uint8)
    a = list(batches(tokens, 4, 8, torch.Generator().manual_seed(0), steps=2))
    b = list(batches(tokens, 4, 8, torch.Generator().manual_seed(0), steps=2))
    for (x, y), (x2, _) in zip(a, b, strict=True):
        assert torch.equal(x, x2) and torch.equal(y[:, :-1], x[:, 1:]) and x.dtype == torch.long
    tr, va = train_val_split(tokens, 0.1)
    assert tr.numel() == 90 and va.numel() == 10


def test_bad_device_and_dtype_raise_value_error():
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown dtype"):
        parse_dtype("int3")
    assert parse_dtype("bf16") is torch.bfloat16 and parse_dtype("fp32") is None


def test_training_lowers_the_loss_and_checkpoint_round_trips(tmp_path):
    corpus = load_corpus(max_bytes=200_000)
    cfg = GPTConfig(context=32, n_layer=1, n_head=2, d_model=32)
    res = train_gpt(cfg, corpus.tokens, steps=40, batch_size=8, lr=3e-3, seed=0, progress=False, eval_every=20)
    # byte-level start is ~ln(256) = 5.55 nats; 40 steps learn at least the byte frequencies
    assert res.losses[0] > 5.0 and res.val_loss < 3.8
    assert res.eval_steps == [20, 40] and len(res.losses) == 40
    d = save_checkpoint(res.model, tmp_path / "ckpt", extra={"corpus": corpus.sha256})
    save_checkpoint(res.model, d)                      # replacing an existing checkpoint works
    m = load_checkpoint(d)
    x = torch.randint(0, 256, (2, 12))
    with torch.no_grad():
        torch.testing.assert_close(m(x), res.model(x), rtol=0, atol=0)   # same weights, same ops
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporary folders left


def test_checkpoint_refuses_to_clobber_a_foreign_folder_and_missing_one_raises(tmp_path):
    from efficiency.gpt import GPT
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match="refusing"):
        save_checkpoint(GPT(GPTConfig(context=8, n_layer=1, n_head=1, d_model=8)), tmp_path)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing")


def test_training_is_reproducible_and_leaves_the_global_rng_alone():
    tokens = torch.randint(0, 256, (3000,), generator=torch.Generator().manual_seed(0)).to(torch.uint8)
    cfg = GPTConfig(context=16, n_layer=1, n_head=2, d_model=16, dropout=0.1)
    state = torch.random.get_rng_state()
    a = train_gpt(cfg, tokens, steps=3, batch_size=2, seed=5, progress=False)
    assert torch.equal(torch.random.get_rng_state(), state)     # fork_rng restored it
    b = train_gpt(cfg, tokens, steps=3, batch_size=2, seed=5, progress=False)
    assert a.losses == b.losses                                 # same init, dropout masks and batches
