"""python -m efficiency: JSON output, help, and one-line errors with exit code 2."""

import json

import pytest

torch = pytest.importorskip("torch")

from efficiency.__main__ import SUBCOMMANDS, main  # noqa: E402

pytestmark = pytest.mark.torch


def test_count_json_reports_the_tiny_preset(capsys):
    assert main(["count", "--preset", "tiny", "--no-minilm", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    tiny = out["models"]["gpt-tiny"]
    assert tiny["total"] == 120_576 and tiny["non_embedding"] == 100_096    # see test_efficiency_gpt


@pytest.mark.parametrize("name", ["count", "amp", "checkpoint", "profile", "quantize"])
def test_every_subcommand_has_help(name, capsys):
    assert name in SUBCOMMANDS
    assert main([name, "--help"]) == 0 and "usage" in capsys.readouterr().out


def test_malformed_flag_is_exit_code_2_without_a_traceback(capsys):
    assert main(["count", "--threads", "0"]) == 2            # argparse: plumbing.cli.positive_int
    assert "must be a positive integer" in capsys.readouterr().err


@pytest.mark.parametrize("argv, needle", [
    (["amp", "--dtype", "int3", "--corpus-bytes", "5000"], "unknown dtype 'int3'"),
    (["amp", "--preset", "tiny", "--seq-len", "999", "--corpus-bytes", "5000"], "sequence length 999"),
    (["quantize", "--model-path", "/no/such/model"], "does not exist"),
    (["count", "--checkpoint", "/no/such/ckpt", "--no-minilm"], "does not exist"),
    (["profile", "--preset", "tiny", "--corpus", "/no/such/corpus"], "does not exist"),
])
def test_bad_input_is_one_line_and_exit_code_2(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("efficiency: error:") and needle in err[0]


def test_plot_path_with_an_unknown_format_is_rejected_before_training(tmp_path, capsys):
    assert main(["amp", "--plot", str(tmp_path / "curves.txt"), "--corpus-bytes", "5000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--plot must end in .png" in err[0]
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_is_a_user_error(capsys):
    assert main(["amp", "--device", "cuda", "--corpus-bytes", "5000"]) == 2
    assert "not available" in capsys.readouterr().err


def test_profile_command_writes_report_and_trace(tmp_path, capsys):
    rc = main(["profile", "--preset", "tiny", "--batch-size", "2", "--seq-len", "16", "--wait", "0",
               "--warmup", "1", "--active", "1", "--corpus-bytes", "20000", "--out", str(tmp_path), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert {p.name for p in tmp_path.iterdir()} == {"report.md", "report.json", "trace.json"}
    assert out["sync"]["item_calls_by_phase"]["log_loss"] == 1


def test_amp_starts_from_a_saved_checkpoint(tmp_path, capsys):
    from efficiency.gpt import GPT, GPTConfig
    from efficiency.train import save_checkpoint
    torch.manual_seed(0)
    m = GPT(GPTConfig(context=16, n_layer=1, n_head=2, d_model=16))
    with torch.no_grad():
        m.lm_head.weight.zero_()        # tied table = 0: every logit is 0, first loss exactly ln 256
    save_checkpoint(m, tmp_path / "ck")
    rc = main(["amp", "--checkpoint", str(tmp_path / "ck"), "--steps", "4", "--batch-size", "2",
               "--corpus-bytes", "5000", "--no-progress", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    first = out["results"][0]["losses"][0]
    assert abs(first - 5.545177444479562) < 1e-5    # ln 256; float32 cross entropy
