"""Generation benchmarks, side by side in one process (ratios are what to compare).

1. KV cache vs recompute: tokens/s of greedy decoding at 256 and 512 new tokens, batch 1
   (goal: >= 5x at 512).
2. Batched vs one-at-a-time: 16 requests of different prompt lengths decoded in one
   left-padded batch vs one after another (goal: >= 4x tokens/s).
3. INT8 vs FP32: decode latency and output agreement on the default trained model
   (greedy tokens identical, teacher-forced top-1 agreement, validation loss).

Each measurement alternates the variants (A B A B ...) and keeps the median, so load
from other jobs hits both alike.

    python benchmarks/generation.py [--threads 1] [--repeats 3] [--parts cache,batching,int8]
                                    [--checkpoint DIR] [--json OUT.json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from efficiency.data import load_corpus, train_val_split
from efficiency.generate import SamplingParams, generate
from efficiency.gpt import GPT, GPTConfig
from efficiency.service import load_model

GREEDY = SamplingParams(max_new_tokens=1, temperature=0.0)


CPU_TIMES: dict = {}  # the last `alternate` call's median CPU seconds per variant


def alternate(fns: dict, repeats: int) -> dict:
    """Median wall time of each callable, run in alternation `repeats` times (after one warm-up).

    Also stores the median process CPU time in CPU_TIMES: with one thread it counts the work
    done, not the time the scheduler gave to other jobs on a shared machine.
    """
    for f in fns.values():
        f()
    wall = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            f()
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    CPU_TIMES.clear()
    CPU_TIMES.update({k: statistics.median(v) for k, v in cpu.items()})
    return {k: statistics.median(v) for k, v in wall.items()}


def random_model(context: int, seed: int = 0) -> GPT:
    # the shape of the "small" preset (4 layers, 4 heads, width 128) with a longer context;
    # decoding speed does not depend on the weights' values
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return GPT(GPTConfig(context=context, n_layer=4, n_head=4, d_model=128)).eval()


def bench_cache(repeats: int, new_tokens=(256, 512)) -> list[dict]:
    model = random_model(1024)
    prompt = [list(range(65, 81))]  # 16 tokens
    rows = []
    for n in new_tokens:
        p = SamplingParams(max_new_tokens=n, temperature=0.0)
        same = generate(model, prompt, p)[0].tokens == generate(model, prompt, p, use_cache=False)[0].tokens
        t = alternate({"cache": lambda p=p: generate(model, prompt, p),
                       "recompute": lambda p=p: generate(model, prompt, p, use_cache=False)}, repeats)
        rows.append({"new_tokens": n, "cache_tokens_per_s": n / t["cache"], "recompute_tokens_per_s": n / t["recompute"],
                     "speedup": t["recompute"] / t["cache"],
                     "speedup_cpu_time": CPU_TIMES["recompute"] / CPU_TIMES["cache"], "same_tokens": same})
        print(f"  cache vs recompute, {n} new tokens: {rows[-1]['speedup']:.1f}x", file=sys.stderr)
    return rows


def bench_batching(repeats: int, n_requests: int = 16, new_tokens: int = 64) -> dict:
    model = random_model(256)
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(0, 256, (int(torch.randint(8, 65, (), generator=g)),), generator=g).tolist()
               for _ in range(n_requests)]
    p = SamplingParams(max_new_tokens=new_tokens, temperature=0.0)
    batched = [r.tokens for r in generate(model, prompts, p)]
    alone = [generate(model, [q], p)[0].tokens for q in prompts]
    agree = sum(a == b for a, b in zip(batched, alone, strict=True))
    t = alternate({"batched": lambda: generate(model, prompts, p),
                   "one_at_a_time": lambda: [generate(model, [q], p) for q in prompts]}, repeats)
    total = n_requests * new_tokens
    out = {"requests": n_requests, "new_tokens": new_tokens, "prompt_lengths": [len(q) for q in prompts],
           "batched_tokens_per_s": total / t["batched"], "one_at_a_time_tokens_per_s": total / t["one_at_a_time"],
           "speedup": t["one_at_a_time"] / t["batched"],
           "speedup_cpu_time": CPU_TIMES["one_at_a_time"] / CPU_TIMES["batched"],
           "requests_with_identical_greedy_tokens": agree}
    print(f"  batched vs one-at-a-time: {out['speedup']:.1f}x", file=sys.stderr)
    return out


@torch.inference_mode()
def teacher_forced(model: GPT, windows: torch.Tensor) -> tuple[torch.Tensor, float]:
    logits = model(windows[:, :-1])
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), windows[:, 1:].reshape(-1))
    return logits.argmax(-1), float(loss)


def bench_int8(repeats: int, checkpoint: str | None = None) -> dict:
    fp32, info = load_model(checkpoint, progress=True)
    from efficiency.quantize import quantize_gpt, state_bytes

    models = {"fp32": fp32, "int8-weight-only": quantize_gpt(fp32, "weight-only"),
              "int8-dynamic": quantize_gpt(fp32, "dynamic")}
    ctx = fp32.config.context
    _, val = train_val_split(load_corpus().tokens)
    n_win = 32
    starts = torch.arange(n_win) * ((val.numel() - ctx - 1) // n_win)
    windows = val[starts[:, None] + torch.arange(ctx + 1)].long()
    prompts = [w[:32].tolist() for w in windows[:16]]
    p = SamplingParams(max_new_tokens=64, temperature=0.0)
    ref_tf, _ = teacher_forced(fp32, windows)
    ref_gen = [r.tokens for r in generate(fp32, prompts, p)]
    one = [prompts[0]]
    out = {"model": {k: v for k, v in info.items() if k != "corpus"}, "schemes": {}}
    t1 = alternate({k: (lambda m=m: generate(m, one, p)) for k, m in models.items()}, repeats)
    c1 = dict(CPU_TIMES)
    t16 = alternate({k: (lambda m=m: generate(m, prompts, p)) for k, m in models.items()}, repeats)
    c16 = dict(CPU_TIMES)
    for k, m in models.items():
        tf, loss = teacher_forced(m, windows)
        gen = [r.tokens for r in generate(m, prompts, p)]
        prefix = []
        for a, b in zip(gen, ref_gen, strict=True):
            n = next((i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), len(a))
            prefix.append(n)
        out["schemes"][k] = {
            "model_bytes": state_bytes(m),
            "decode_tokens_per_s_batch1": 64 / t1[k],
            "decode_tokens_per_s_batch16": 16 * 64 / t16[k],
            "decode_tokens_per_cpu_s_batch1": 64 / c1[k],
            "decode_tokens_per_cpu_s_batch16": 16 * 64 / c16[k],
            "val_loss_nats": loss,
            "teacher_forced_top1_agreement": float((tf == ref_tf).float().mean()),
            "greedy_identical_sequences": sum(x == len(gen[0]) for x in prefix),
            "greedy_mean_tokens_before_divergence": statistics.mean(prefix),
        }
    print("  int8 vs fp32 done", file=sys.stderr)
    return out


def markdown(res: dict) -> str:
    lines = [] if "cache" not in res else [
        "### KV cache vs recompute (batch 1, 16-token prompt, greedy)", "",
        "| new tokens | cache tokens/s | recompute tokens/s | speedup (wall) | speedup (CPU time) | same tokens |",
        "|---|---|---|---|---|---|"]
    for r in res.get("cache", []):
        lines.append(f"| {r['new_tokens']} | {r['cache_tokens_per_s']:.1f} | {r['recompute_tokens_per_s']:.1f} | "
                     f"{r['speedup']:.1f}x | {r['speedup_cpu_time']:.1f}x | {r['same_tokens']} |")
    b = res.get("batching")
    lines += [] if b is None else ["", f"### Batched vs one-at-a-time ({b['requests']} requests, prompts of "
              f"{min(b['prompt_lengths'])}-{max(b['prompt_lengths'])} tokens, {b['new_tokens']} new tokens each)", "",
              "| mode | tokens/s |", "|---|---|",
              f"| one at a time | {b['one_at_a_time_tokens_per_s']:.1f} |",
              f"| one left-padded batch | {b['batched_tokens_per_s']:.1f} |",
              f"| speedup (wall) | {b['speedup']:.1f}x |",
              f"| speedup (CPU time) | {b['speedup_cpu_time']:.1f}x |",
              f"| requests whose greedy tokens match | {b['requests_with_identical_greedy_tokens']}/{b['requests']} |"]
    if "int8" in res:
        name = res["int8"]["model"].get("checkpoint", "default model")
        lines += ["", f"### INT8 vs FP32 ({name}, 32-token prompts, 64 new tokens, greedy)", "",
                  "| scheme | model bytes | tokens/s batch 1 (wall / CPU) | tokens/s batch 16 (wall / CPU) | "
                  "val loss (nats) | top-1 agreement (teacher forced) | identical greedy sequences (of 16) | "
                  "mean tokens before divergence |",
                  "|---|---|---|---|---|---|---|---|"]
        for k, s in res["int8"]["schemes"].items():
            lines.append(f"| {k} | {s['model_bytes']:,} | {s['decode_tokens_per_s_batch1']:.1f} / "
                         f"{s['decode_tokens_per_cpu_s_batch1']:.1f} | {s['decode_tokens_per_s_batch16']:.1f} / "
                         f"{s['decode_tokens_per_cpu_s_batch16']:.1f} | {s['val_loss_nats']:.4f} | "
                         f"{s['teacher_forced_top1_agreement']:.4f} | {s['greedy_identical_sequences']} | "
                         f"{s['greedy_mean_tokens_before_divergence']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats per variant (median)")
    ap.add_argument("--quick", action="store_true", help="64/128 new tokens, no INT8 part (smoke run)")
    ap.add_argument("--parts", default="cache,batching,int8",
                    help="comma-separated parts to run (default cache,batching,int8; int8 needs the default model)")
    ap.add_argument("--checkpoint", help="GPT checkpoint for the INT8 part (default: the default model)")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = ap.parse_args(argv)
    if args.threads < 1 or args.repeats < 1:
        ap.error("--threads and --repeats must be >= 1")
    torch.set_num_threads(args.threads)
    res = {"machine": "2-core CPU (x86_64), shared with other jobs", "torch": torch.__version__,
           "threads": args.threads, "repeats": args.repeats}
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if parts - {"cache", "batching", "int8"}:
        ap.error(f"unknown --parts {sorted(parts - {'cache', 'batching', 'int8'})}")
    if "cache" in parts:
        res["cache"] = bench_cache(args.repeats, (64, 128) if args.quick else (256, 512))
    if "batching" in parts:
        res["batching"] = bench_batching(args.repeats, new_tokens=16 if args.quick else 64)
    if "int8" in parts and not args.quick:
        res["int8"] = bench_int8(args.repeats, args.checkpoint)
    print(markdown(res))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_suffix(".tmp")
        tmp.write_text(json.dumps(res, indent=2))
        tmp.replace(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
