"""Mixed precision, gradient checkpointing sweep and the profiler report."""

import json

import pytest

torch = pytest.importorskip("torch")

from efficiency.amp import compare_amp, peak_step_memory  # noqa: E402
from efficiency.checkpointing import sweep_checkpointing  # noqa: E402
from efficiency.gpt import GPTConfig  # noqa: E402
from efficiency.profiling import profile_training  # noqa: E402

pytestmark = pytest.mark.torch


CFG = GPTConfig(context=32, n_layer=2, n_head=2, d_model=32)


@pytest.fixture(scope="module")
def tokens():
    return torch.randint(0, 256, (5000,), generator=torch.Generator().manual_seed(0)).to(torch.uint8)


def test_peak_step_memory_sees_the_live_maximum_not_the_sum():
    keep = []

    def step():
        a = torch.empty(1_000_000)          # 4 MB, freed before the next one
        del a
        keep.append(torch.empty(1_000_000))  # 4 MB, kept

    # the running sum of allocations peaks at one 4 000 000-byte float32 tensor
    assert peak_step_memory(step, torch.device("cpu")) == 4_000_000


def test_bf16_autocast_tracks_the_fp32_loss_and_allocates_less(tokens):
    fp32, bf16 = compare_amp(CFG, tokens, steps=6, batch_size=4, progress=False)
    assert (fp32.dtype, bf16.dtype) == ("fp32", "bf16")
    # bf16 keeps 8 significant bits (relative rounding 2^-9 ~ 2e-3); on a loss of ~5.5
    # nats after 6 steps from identical weights the curves stay within 0.02
    assert max(abs(a - b) for a, b in zip(fp32.losses, bf16.losses, strict=True)) < 0.02
    assert bf16.peak_step_bytes < fp32.peak_step_bytes   # 2-byte activations
    assert fp32.state_bytes == bf16.state_bytes            # FP32 master weights + AdamW moments in both


def test_amp_rejects_sequence_longer_than_context(tokens):
    with pytest.raises(ValueError, match="sequence length 33"):
        compare_amp(CFG, tokens, steps=4, seq_len=33, progress=False)


def test_checkpointing_keeps_the_loss_and_lowers_peak_memory(tokens):
    (p,) = sweep_checkpointing(CFG, tokens, depths=(3,), seq_lens=(32,), batch_size=4, steps=1, progress=False)
    assert p.loss_ckpt == p.loss_plain        # same weights, same batch, same forward operations
    assert p.memory_ratio < 0.9               # only block inputs kept for 3 blocks


def test_profile_reports_operators_memory_syncs_and_writes_a_chrome_trace(tokens, tmp_path):
    r = profile_training(CFG, tokens, batch_size=4, wait=0, warmup=1, active=2, trace_path=tmp_path / "t.json")
    assert r.top_ops and r.memory_ops
    assert {"forward", "backward", "optimizer", "log_loss"} <= set(r.phases)
    assert r.sync["item_calls_by_phase"]["log_loss"] == 2   # one loss.item() per active step
    trace = json.loads((tmp_path / "t.json").read_text())
    assert any(e.get("name") == "forward" for e in trace["traceEvents"])


def test_plots_return_figures_without_touching_pyplot_or_the_backend(tokens, tmp_path):
    import sys

    import matplotlib
    from matplotlib.figure import Figure

    from efficiency.amp import plot_amp
    from efficiency.checkpointing import plot_checkpointing

    backend = matplotlib.get_backend()
    res = compare_amp(CFG, tokens, steps=4, batch_size=2, progress=False)
    fig = plot_amp(res)                                      # no path: nothing written
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    (p,) = sweep_checkpointing(CFG, tokens, depths=(1,), seq_lens=(16,), batch_size=2, steps=1, progress=False)
    assert isinstance(plot_checkpointing([p], tmp_path / "ckpt.png"), Figure)
    assert (tmp_path / "ckpt.png").read_bytes().startswith(b"\x89PNG")
    assert [f.name for f in tmp_path.iterdir()] == ["ckpt.png"]   # no temporary file left behind
    assert matplotlib.get_backend() == backend
    if "matplotlib.pyplot" in sys.modules:                   # another test may have imported it
        import matplotlib.pyplot as plt
        assert not plt.get_fignums()                          # these figures are not pyplot's
