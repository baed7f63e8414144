"""Long-context evaluation: passkey prompts, power-law fit, scaling sweep, the full run."""

import json

import numpy as np
import pytest
import torch

from efficiency.gpt import GPT, GPTConfig
from efficiency.longcontext import (
    KEY_TEMPLATE,
    QUESTION,
    LongContextConfig,
    PasskeyTask,
    fit_power_law,
    measure_scaling,
    prefill_peak_memory,
    run_longcontext,
)


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # see tests/test_generate.py
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("depth", [0.0, 0.5, 1.0])
def test_passkey_prompt_has_the_requested_length_and_hides_the_key_at_the_depth(depth):
    task = PasskeyTask()
    prompt, key = task.sample(200, depth, torch.Generator().manual_seed(3))
    assert len(prompt) == 200 and prompt.endswith(QUESTION)
    assert len(key) == 5 and key.isdigit() and len(set(key)) == 5
    sentence = KEY_TEMPLATE.format(key=key)
    at = prompt.index(sentence)
    n_fill = 200 - task.overhead
    assert at == round(depth * n_fill)  # filler before the key = depth x all filler
    assert sum(c.isdigit() for c in prompt) == 5  # the filler holds no digits


def test_passkey_rejects_lengths_too_short_for_key_and_question():
    with pytest.raises(ValueError, match="length must be"):
        PasskeyTask().sample(PasskeyTask().overhead, 0.5, torch.Generator())
    with pytest.raises(ValueError, match="depth"):
        PasskeyTask().sample(200, 1.5, torch.Generator())


def test_fit_power_law_recovers_a_known_exponent():
    x = np.array([64, 128, 256, 512, 1024])
    p, c = fit_power_law(x, 3e-5 * x**1.7)
    assert p == pytest.approx(1.7, abs=1e-9) and c == pytest.approx(3e-5, rel=1e-9)  # exact data: rounding only


def test_scaling_sweep_reports_a_kv_cache_linear_in_length():
    model = GPT(GPTConfig(context=128, n_layer=2, n_head=2, d_model=32)).eval()
    rows = measure_scaling(model, (32, 64, 128), repeats=1, progress=False, memory=False)
    # keys and values: 2 x layers x heads x length x head_dim float32 (4 bytes)
    assert [r["kv_cache_bytes"] for r in rows] == [2 * 2 * 2 * n * 16 * 4 for n in (32, 64, 128)]
    assert all(r["prefill_s"] > 0 and r["decode_step_s"] > 0 for r in rows)


def test_config_rejects_lengths_past_the_model_context():
    with pytest.raises(ValueError, match="evaluation length"):
        LongContextConfig(lengths=(10_000,))
    with pytest.raises(ValueError, match="train_context"):
        LongContextConfig(train_context=10_000)


def test_a_tiny_run_writes_results_heatmap_plots_and_the_model(tmp_path):
    cfg = LongContextConfig(model=GPTConfig(context=192, n_layer=1, n_head=2, d_model=32), train_context=110,
                            steps=3, batch_size=4, lengths=(90, 150), depths=(0.0, 1.0), trials=2,
                            latency_lengths=(32, 64), repeats=1)
    res = run_longcontext(cfg, tmp_path, progress=False, memory=False)
    acc = np.array(res["accuracy"])
    assert acc.shape == (2, 2) and ((acc >= 0) & (acc <= 1)).all()
    assert res["accuracy_within_trained"] is not None and res["accuracy_beyond_trained"] is not None
    for name in ("results.json", "passkey_heatmap.png", "latency_memory_vs_length.png", "model/model.pt"):
        assert (tmp_path / name).is_file()
    assert (tmp_path / "results.json").stat().st_mode & 0o044 == 0o044 & ~_umask()  # readable like open()'s
    from matplotlib.figure import Figure

    from efficiency.longcontext import plot_heatmap

    assert isinstance(plot_heatmap(res), Figure)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["accuracy"] == res["accuracy"] and np.isfinite(saved["prefill_exponent"])
    from efficiency.serving_cli import format_longcontext

    text = format_longcontext(res)
    assert "passkey retrieval accuracy" in text and "| 150 |" in text and "prefill p =" in text


def test_passkey_training_is_seeded_without_touching_the_global_rng():
    from efficiency.longcontext import train_passkey_model

    cfg = LongContextConfig(model=GPTConfig(context=192, n_layer=1, n_head=2, d_model=32), train_context=110,
                            steps=2, batch_size=2, lengths=(90,), latency_lengths=(32,), seed=3)
    state = torch.random.get_rng_state()
    a, _ = train_passkey_model(cfg, progress=False)
    assert torch.equal(torch.random.get_rng_state(), state)   # seeded inside fork_rng, then restored
    torch.manual_seed(12345)                                   # the caller's generator does not matter
    b, _ = train_passkey_model(cfg, progress=False)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_prefill_memory_probe_sees_at_least_the_kv_cache():
    cfg = GPTConfig(context=2048, n_layer=1, n_head=4, d_model=64)
    growth = prefill_peak_memory(cfg, 2048)
    if growth is None:
        pytest.skip("needs Linux /proc/self/clear_refs")
    # the cache (k and v: 2 x 4 heads x 2048 slots x 16 x 4 bytes = 1 MiB) is allocated and
    # written inside the measured window, so its pages must become resident
    assert growth >= 2 * 4 * 2048 * 16 * 4
