"""Command-line parts of the generation subcommands, registered by ``python -m efficiency``.

    python -m efficiency generate --prompt TEXT [--checkpoint DIR] [--int8] [--max-new-tokens N]
           [--temperature F] [--top-k K] [--top-p P] [--seed S] [--no-cache] [--json]
    python -m efficiency serve [--host 127.0.0.1] [--port 8000] [--checkpoint DIR] [--int8]
           [--max-batch-size 16] [--max-queue 64] [--timeout 60]
    python -m efficiency loadtest [--url http://127.0.0.1:PORT] [--concurrency 1 4 16 64]
           [--requests N] [--max-new-tokens 32] [--checkpoint DIR] [--int8] [--out FILE.md] [--json]
    python -m efficiency longcontext [--out DIR] [--steps N] [--lengths ...] [--depths ...] [--json]

Each subcommand is an ``add_*_parser(subparsers)`` (it sets ``func``) and a
``cmd_*(args) -> int``; errors propagate to ``__main__``, whose ``plumbing.cli.run_cli``
turns them into exit codes. ``--threads N`` (default 1) sets torch's intra-op threads
for the command (``__main__`` sets and restores them).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from plumbing.cli import positive_int, print_json
from plumbing.files import atomic_write_json, atomic_write_text

__all__ = ["SUBCOMMANDS"]


def _common(p: argparse.ArgumentParser, model: bool = True) -> None:
    if model:
        p.add_argument("--checkpoint", metavar="DIR", help="a GPT checkpoint folder (default: the default "
                       "small model, trained on first use in under 2 minutes and cached in $SCIML_CACHE "
                       "or ~/.cache/sciml-workbench)")
        p.add_argument("--int8", action="store_true", help="INT8 weight-only Linear/Embedding layers")
    p.add_argument("--threads", type=positive_int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")


# --------------------------------------------------------------------------- generate
def add_generate_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("generate", help="generate text from a prompt (KV-cached decoding)",
                       description="Generate text with the default or a given GPT checkpoint.")
    p.add_argument("--prompt", required=True, action="append",
                   help="prompt text; repeat the flag for several prompts (decoded as one batch)")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy (default 0.8)")
    p.add_argument("--top-k", type=int, default=0, help="0 = no top-k filter")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--no-cache", action="store_true", help="recompute every step (no KV cache)")
    p.add_argument("--json", action="store_true", help="print a JSON result on stdout")
    _common(p)
    p.set_defaults(func=cmd_generate)
    return p


def cmd_generate(args) -> int:
    from efficiency.data import ByteTokenizer
    from efficiency.generate import SamplingParams, generate
    from efficiency.service import load_model

    params = SamplingParams(max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                            top_k=args.top_k, top_p=args.top_p, seed=args.seed)
    model, info = load_model(args.checkpoint, int8=args.int8, progress=not args.no_progress)
    tok = ByteTokenizer()
    t0 = time.perf_counter()
    results = generate(model, [tok.encode(p) for p in args.prompt], params, use_cache=not args.no_cache)
    wall = time.perf_counter() - t0
    n = sum(len(r.tokens) for r in results)
    if args.json:
        print_json({"texts": [tok.decode(r.tokens) for r in results], "tokens": n, "wall_time_s": wall,
                    "tokens_per_s": n / wall, "model": {k: v for k, v in info.items() if k != "corpus"}})
    else:
        for p, r in zip(args.prompt, results, strict=True):
            print(p + tok.decode(r.tokens))
        print(f"[{n} tokens in {wall:.2f} s, {n / wall:.1f} tokens/s]", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- serve
def _service_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-batch-size", type=int, default=16, help="rows decoded together (default 16)")
    p.add_argument("--max-queue", type=int, default=64, help="waiting requests before 503 (default 64)")
    p.add_argument("--max-prompt-tokens", type=int, default=None, help="default: model context - 1")
    p.add_argument("--max-new-tokens-limit", type=int, default=None, help="default: model context - 1")
    p.add_argument("--timeout", type=float, default=60.0, help="per-request timeout in seconds (default 60)")


def _service_config(args):
    from efficiency.service import ServiceConfig

    return ServiceConfig(max_batch_size=args.max_batch_size, max_queue=args.max_queue,
                         max_prompt_tokens=args.max_prompt_tokens, max_new_tokens=args.max_new_tokens_limit,
                         request_timeout_s=args.timeout)


def add_serve_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("serve", help="HTTP generation service (FastAPI + uvicorn)",
                       description="POST /generate, GET /health, GET /metrics; batches concurrent requests.")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=8000)
    _service_flags(p)
    _common(p)
    p.set_defaults(func=cmd_serve)
    return p


def cmd_serve(args) -> int:
    from efficiency.service import _check_loopback, create_app, load_model, serve

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in [0, 65535], got {args.port}")
    try:
        _check_loopback(args.host)
    except ValueError:
        print(f"efficiency serve: warning: --host {args.host} is not a loopback address; the service has "
              "no authentication", file=sys.stderr)
    cfg = _service_config(args)
    model, info = load_model(args.checkpoint, int8=args.int8, progress=not args.no_progress)
    info = {k: v for k, v in info.items() if k != "corpus"}
    print(f"efficiency serve: model {info}, http://{args.host}:{args.port}", file=sys.stderr)
    serve(create_app(model, cfg, info=info), host=args.host, port=args.port)
    return 0


# --------------------------------------------------------------------------- loadtest
def add_loadtest_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("loadtest", help="bounded load test of the service on loopback",
                       description="Per concurrency level: TTFT, inter-token and end-to-end latency (p50/p99), "
                                   "tokens/s, requests/s, errors, KV-cache bytes and server peak RSS. Without "
                                   "--url it starts `python -m efficiency serve` on a free loopback port.")
    p.add_argument("--url", help="a running service on loopback, e.g. http://127.0.0.1:8000")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    p.add_argument("--requests", type=int, default=None, help="requests per level (default max(2c, 8))")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--prompt-tokens", type=int, default=32, help="longest prompt (prompts vary down to half)")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--out", type=Path, help="write the table (.md) or the results (.json) here")
    p.add_argument("--json", action="store_true", help="print a JSON result on stdout")
    _service_flags(p)
    _common(p)
    p.set_defaults(func=cmd_loadtest)
    return p


def cmd_loadtest(args) -> int:
    from efficiency.loadtest import (
        LoadConfig,
        check_loopback_url,
        format_table,
        results_json,
        run_loadtest,
        start_server_process,
    )

    cfg = LoadConfig(levels=tuple(args.concurrency), requests=args.requests, max_new_tokens=args.max_new_tokens,
                     prompt_tokens=args.prompt_tokens, temperature=args.temperature)
    if args.out is not None and args.out.suffix not in (".md", ".json"):
        raise ValueError(f"--out must end in .md or .json, got {str(args.out)!r}")
    proc, url, extra = None, args.url, {}
    if url is not None:
        url = check_loopback_url(url)  # before any request leaves this process
    else:
        flags = ["--max-batch-size", str(args.max_batch_size), "--max-queue", str(args.max_queue),
                 "--timeout", str(args.timeout)]
        if args.checkpoint:
            flags += ["--checkpoint", args.checkpoint]
        if args.int8:
            flags.append("--int8")
        flags += ["--threads", str(args.threads)]
        if args.no_progress:
            flags.append("--no-progress")
        proc, url = start_server_process(flags)
        extra["server"] = {"flags": flags}
    try:
        import httpx

        try:
            health = httpx.get(url + "/health", timeout=10, trust_env=False)
        except httpx.HTTPError as err:
            raise ValueError(f"cannot reach {url}/health: {err}") from None
        if health.status_code != 200:
            raise ValueError(f"{url}/health answered {health.status_code}; is the service running?")
        extra["model"] = health.json().get("model")
        results = run_loadtest(url, cfg, progress=not args.no_progress)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except Exception:
                proc.kill()
    table = format_table(results)
    res = results_json(results, cfg, extra)
    if args.out is not None and args.out.suffix == ".json":
        atomic_write_json(args.out, res)
    elif args.out is not None:
        atomic_write_text(args.out, table + "\n")
    if args.json:
        print_json(res)
    else:
        print(table)
    return 0


# --------------------------------------------------------------------------- longcontext
def add_longcontext_parser(sub) -> argparse.ArgumentParser:
    from efficiency.longcontext import LongContextConfig

    d = LongContextConfig()
    p = sub.add_parser("longcontext", help="passkey retrieval vs context length and depth; latency and memory",
                       description="Trains a small GPT on passkey retrieval (minutes on a CPU), then measures "
                                   "accuracy on a length x depth grid (also past the trained context), prefill "
                                   "and decode latency and memory vs length, and writes a heatmap and plots.")
    p.add_argument("--out", type=Path, default=Path("out/longcontext"), help="output folder (default out/longcontext)")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--train-context", type=int, default=d.train_context)
    p.add_argument("--context", type=int, default=d.model.context, help="learned positions of the model")
    p.add_argument("--lengths", type=int, nargs="+", default=list(d.lengths))
    p.add_argument("--depths", type=float, nargs="+", default=list(d.depths))
    p.add_argument("--trials", type=int, default=d.trials)
    p.add_argument("--latency-lengths", type=int, nargs="+", default=list(d.latency_lengths))
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--model-dir", help="evaluate this saved passkey model instead of training one")
    p.add_argument("--json", action="store_true", help="print a JSON result on stdout")
    p.add_argument("--threads", type=positive_int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    p.set_defaults(func=cmd_longcontext)
    return p


def cmd_longcontext(args) -> int:
    from dataclasses import replace

    from efficiency.longcontext import LongContextConfig, run_longcontext
    from efficiency.train import load_checkpoint

    base = LongContextConfig()
    cfg = LongContextConfig(model=replace(base.model, context=args.context), train_context=args.train_context,
                            steps=args.steps, lengths=tuple(args.lengths), depths=tuple(args.depths),
                            trials=args.trials, latency_lengths=tuple(args.latency_lengths), seed=args.seed)
    model = load_checkpoint(args.model_dir) if args.model_dir else None
    res = run_longcontext(cfg, args.out, model=model, progress=not args.no_progress)
    if args.json:
        print_json({k: v for k, v in res.items() if k != "history"})
    else:
        print(format_longcontext(res))
    return 0


def format_longcontext(res: dict) -> str:
    lengths, depths = res["config"]["lengths"], res["config"]["depths"]
    lines = ["passkey retrieval accuracy (rows: prompt length, columns: depth)",
             "| length | " + " | ".join(f"{d:g}" for d in depths) + " | mean |",
             "|---|" + "---|" * (len(depths) + 1)]
    for n, row in zip(lengths, res["accuracy"], strict=True):
        lines.append(f"| {n} | " + " | ".join(f"{a:.2f}" for a in row) + f" | {sum(row) / len(row):.2f} |")
    lines += ["", f"trained on lengths up to {res['config']['train_context'] - res['config']['task']['n_digits']} "
              f"tokens; accuracy within: {res['accuracy_within_trained']}, beyond: {res['accuracy_beyond_trained']}",
              "", "| length | prefill wall / CPU (ms) | decode step wall / CPU (ms) | KV cache (KiB) | "
              "prefill peak RSS growth (MiB) |", "|---|---|---|---|---|"]
    for r in res["scaling"]:
        mem = r["prefill_peak_rss_growth_bytes"]
        lines.append(f"| {r['length']} | {r['prefill_s'] * 1e3:.2f} / {r['prefill_cpu_s'] * 1e3:.2f} | "
                     f"{r['decode_step_s'] * 1e3:.2f} / {r['decode_step_cpu_s'] * 1e3:.2f} | "
                     f"{r['kv_cache_bytes'] / 1024:.0f} | {'-' if mem is None else f'{mem / 2**20:.2f}'} |")
    cpu = res.get("prefill_exponent_cpu_time")
    lines.append(f"fitted growth exponents (t ~ length^p): prefill p = {res['prefill_exponent']:.2f} (wall)"
                 + ("" if cpu is None else f", {cpu:.2f} (CPU time)")
                 + f"; decode step p = {res['decode_exponent']:.2f} (wall)"
                 + ("" if res.get("decode_exponent_cpu_time") is None
                    else f", {res['decode_exponent_cpu_time']:.2f} (CPU time)"))
    if res.get("plots"):
        lines.append("plots: " + ", ".join(res["plots"]))
    return "\n".join(lines)


# name -> builder that adds the subparser and sets `func` (the registry style of __main__.py)
SUBCOMMANDS = {
    "generate": add_generate_parser,
    "serve": add_serve_parser,
    "loadtest": add_loadtest_parser,
    "longcontext": add_longcontext_parser,
}
