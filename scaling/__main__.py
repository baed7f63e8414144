"""python -m scaling {estimate,exercises,fit,experiment,pde}: calculators, fits, the LM scaling experiment and\nFNO scaling."""

from __future__ import annotations

import argparse
import math
import sys

from plumbing.cli import print_json, run_cli
from plumbing.tables import print_table
from scaling import estimates as est

PROG = "scaling"

_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}


def number(text: str) -> float:
    """A float, also with a K/M/B/T suffix: '70B' -> 7e10, '1.4T' -> 1.4e12."""
    t = text.strip()
    scale = _SUFFIX.get(t[-1:].lower(), None) if t else None
    try:
        return float(t[:-1]) * scale if scale else float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _g(x: float) -> str:
    return f"{x:.4g}"


def _emit(args, result: dict, text) -> None:
    if args.json:
        print_json(result)
    else:
        text()


# --------------------------------------------------------------------------- estimate
def _law(args) -> est.ChinchillaLaw | est.KaplanLaw:
    custom = [args.E, args.A, args.B, args.alpha, args.beta]
    if any(v is not None for v in custom):
        if any(v is None for v in custom):
            raise ValueError("custom constants need all of --E --A --B --alpha --beta")
        return est.ChinchillaLaw(args.E, args.A, args.B, args.alpha, args.beta)
    return est.get_law(args.law)


def cmd_loss(args) -> int:
    law = _law(args)
    rows = []
    for n in args.N:
        for d in (args.D or [math.inf]):
            rows.append({"N": n, "D": d if math.isfinite(d) else None, "loss": law.loss(n, d)})
    result = {"law": est.as_dict(law), "rows": rows, "limit_E": law.irreducible,
              "units": "N raw parameter count (Kaplan: non-embedding), D tokens, loss nats/token"}

    def text():
        if isinstance(law, est.KaplanLaw):
            print(f"Kaplan et al. 2020: L(N) = (N_c/N)^alpha_N, N_c = {law.N_c:g}, alpha_N = {law.alpha_N}; "
                  f"with D: [(N_c/N)^(a_N/a_D) + D_c/D]^a_D (Table 2)")
        else:
            print(f"{law.name}: L(N, D) = {law.E} + {law.A}/N^{law.alpha} + {law.B}/D^{law.beta}  ({law.source})")
        # D = None in the JSON means unlimited data: shown as inf
        print_table([{**r, "D": math.inf if r["D"] is None else r["D"]} for r in rows], ["N", "D", "loss"])
        print(f"limit as N, D -> inf: E = {law.irreducible}  (N raw parameters, D tokens, loss in nats/token)")
    _emit(args, result, text)
    return 0


def cmd_compute(args) -> int:
    c = est.training_flops(args.N, args.D, n_layer=args.n_layer, n_ctx=args.n_ctx, d_model=args.d_model)
    law = _law(args)
    strategies = est.budget_strategies(args.N, args.D, factor=args.factor, law=law) \
        if isinstance(law, est.ChinchillaLaw) else []
    result = {**c, "factor": args.factor, "strategies": strategies}

    def text():
        print(f"C = 6 N D = 6 x {_g(args.N)} x {_g(args.D)} = {_g(c['C_dense'])} FLOPs")
        if c["C_attention"]:
            print(f"  + attention 6 n_layer n_ctx d_model D = {_g(c['C_attention'])} -> C = {_g(c['C'])} FLOPs")
        print(f"  = {_g(c['C_pf_days'])} PF-days")
        if strategies:
            print(f"\n{args.factor:g}x the budget ({law.name} law):")
            print_table(strategies, ["strategy", "N", "D", "tokens_per_param", "loss"])
    _emit(args, result, text)
    return 0


def cmd_attention(args) -> int:
    kw = {"n_layer": args.n_layer, "bytes_per_element": args.bytes, "batch": args.batch}
    if args.to is not None:
        s = est.attention_scaling(args.n_ctx, args.to, d_model=args.d_model, n_heads=args.n_heads, **kw)
        result = s

        def text():
            for k in ("from", "to"):
                r = s[k]
                print(f"n = {r['n_ctx']}: {_g(r['flops'])} FLOPs (4 n^2 d_model x layers), attention matrix "
                      f"{_g(r['matrix_elements'])} elements = {r['matrix_bytes'] / 2**20:.4g} MiB")
            print(f"ratio: operations x{s['flops_ratio']:.4g}, memory x{s['memory_ratio']:.4g} "
                  f"(= ({args.to}/{args.n_ctx})^2)")
    else:
        result = est.attention_cost(args.n_ctx, args.d_model, args.n_heads, **kw)

        def text():
            print(f"n = {args.n_ctx}: {_g(result['flops'])} FLOPs, attention matrix {_g(result['matrix_elements'])} "
                  f"elements = {result['matrix_bytes'] / 2**20:.4g} MiB")
    _emit(args, result, text)
    return 0


def cmd_memory(args) -> int:
    pm = est.parameter_memory(args.N)
    mixed = est.training_memory(args.N, mixed_precision=True)
    fp32 = est.training_memory(args.N, mixed_precision=False)
    result = {"N": args.N, "weights_bytes": pm, "training_mixed": mixed, "training_fp32": fp32}

    def text():
        print(f"N = {_g(args.N)} parameters (GB = 1e9 bytes, GiB = 2^30 bytes)")
        print_table([{"format": k, "bits": float(est.BITS_PER_PARAM[k]), "GB": v / est.GB, "GiB": v / est.GiB}
                     for k, v in pm.items()], ["format", "bits", "GB", "GiB"])
        for name, t in (("mixed precision + Adam", mixed), ("fp32 + Adam", fp32)):
            print(f"\ntraining, {name}: {t['bytes_per_param']:g} bytes/param, {t['total_GB']:.4g} GB "
                  f"({t['total_GiB']:.4g} GiB), activations excluded")
            print_table([{"part": k, "GB": v / est.GB} for k, v in t["parts_bytes"].items()], ["part", "GB"])
    _emit(args, result, text)
    return 0


def cmd_quantization(args) -> int:
    size = args.size_gb * est.GB
    rows = []
    for bits in (8, 4):
        q = est.quantized_size(size, args.from_bits, bits, group_size=args.group_size, scale_bits=args.scale_bits,
                               zero_point_bits=args.zero_point_bits)
        rows.append({"format": f"int{bits}", **q})
    result = {"size_GB": args.size_gb, "from_bits": args.from_bits, "group_size": args.group_size, "rows": rows}

    def text():
        extra = (f", one {args.scale_bits}-bit scale (+{args.zero_point_bits}-bit zero) per {args.group_size} weights"
                 if args.group_size else ", metadata ignored")
        print(f"{args.size_gb:g} GB at {args.from_bits} bits = {_g(rows[0]['n_weights'])} weights{extra}")
        print_table(rows, ["format", "bits_per_weight", "GB", "ratio"])
    _emit(args, result, text)
    return 0


def cmd_exercises(args) -> int:
    from scaling.exercises import exercises

    ex = exercises()

    def text():
        for i, e in enumerate(ex, 1):
            print(f"{i}. {e['question']}\n   formula: {e['formula']}\n   answer:  {e['answer']}\n")
    _emit(args, {"exercises": ex}, text)
    return 0


# --------------------------------------------------------------------------- fit
def cmd_fit(args) -> int:
    from scaling.laws import drop_highest_loss, fit_runs, load_runs

    data = load_runs(args.runs)
    if args.drop_highest:
        data = drop_highest_loss(data, args.drop_highest)
    bar = None
    if args.bootstrap and not args.no_progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=args.bootstrap, desc="bootstrap", file=sys.stderr)
    try:
        fit = fit_runs(data, form=args.form, variable=args.x, bootstrap=args.bootstrap, seed=args.seed,
                       n_starts=args.n_starts or None,
                       progress=(lambda i: bar.update(1)) if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    result = fit.to_dict()
    if args.form == "chinchilla":
        cs = [float(c) for c in args.frontier_at]
        fr = fit.frontier(cs)
        result["frontier"] = [{"C": c, "N_opt": float(n), "D_opt": float(d), "tokens_per_param": float(t),
                               "loss": float(lo)} for c, n, d, t, lo in
                              zip(cs, fr["N_opt"], fr["D_opt"], fr["tokens_per_param"], fr["loss"], strict=True)]
    if args.plot:
        from scaling.plots import plot_fit
        result["plots"] = [str(p) for p in plot_fit(fit, data, args.plot)]

    def text():
        var = "N" if args.form == "chinchilla" else args.x
        form = ("L(N, D) = E + A/N^alpha + B/D^beta" if args.form == "chinchilla" else f"L({var}) = E + A/{var}^alpha")
        print(f"{form}  ({fit.n_points} points, Huber delta 1e-3 on log loss, L-BFGS)")
        for k, v in fit.params.items():
            ci = fit.ci.get(k)
            tail = f"   {100 * fit.ci_level:.0f}% CI [{_g(ci[0])}, {_g(ci[1])}]" if ci else ""
            print(f"  {k:>5} = {_g(v)}{tail}")
        if args.form == "chinchilla":
            print(f"compute-optimal: N* ~ C^{result['frontier_exponents']['a']:.4f}, "
                  f"D* ~ C^{result['frontier_exponents']['b']:.4f}")
            print_table(result["frontier"], ["C", "N_opt", "D_opt", "tokens_per_param", "loss"])
        for p in result.get("plots", []):
            print(f"plot: {p}")
    _emit(args, result, text)
    return 0


# --------------------------------------------------------------------------- experiment
def cmd_experiment(args) -> int:
    from dataclasses import replace

    from scaling.experiment import ExperimentConfig, parse_size, quick_config

    cfg = quick_config() if args.quick else ExperimentConfig()
    if args.isoflop and not args.quick:
        from scaling.experiment import ISOFLOP_SIZES
        cfg = replace(cfg, sizes=ISOFLOP_SIZES)
    changes = {"isoflop": args.isoflop}
    if args.large:
        from scaling.experiment import LARGE_SIZES
        changes.update(sizes=LARGE_SIZES, steps=500)
    if args.sizes:
        changes["sizes"] = tuple(parse_size(s) for s in args.sizes)
    for key in ("steps", "batch_size", "context", "lr", "seed", "threads", "corpus_bytes"):
        if getattr(args, key) is not None:
            changes[key] = getattr(args, key)
    if args.corpus is not None:
        changes["corpus"] = args.corpus
    if args.budgets:
        changes["budgets"] = tuple(args.budgets)
    cfg = replace(cfg, **changes)
    from scaling.experiment import run_experiment

    summary = run_experiment(cfg, args.out, progress=not args.no_progress, resume=args.resume)

    def text():
        print(f"corpus: {summary['corpus']['source']} ({summary['corpus']['n_bytes']} bytes, "
              f"sha256 {summary['corpus']['sha256'][:16]}...), {summary['n_runs']} runs, N span "
              f"{summary['span_N']:.1f}x, {summary['wall_time_s']:.0f} s")
        print_table(summary["runs"], ["name", "N", "steps", "D", "C", "loss", "wall_time_s"])
        for name, f in summary["fits"].items():
            if isinstance(f, dict):
                extra = f", B = {_g(f['B'])}, beta = {f['beta']:.4f}" if "beta" in f else ""
                print(f"{name}: E = {f['E']:.4f}, A = {_g(f['A'])}, alpha = {f['alpha']:.4f}{extra}")
            elif name == "isoflop_N_opt_exponent":
                print(f"IsoFLOP: N_opt ~ C^{f[0]['a']:.3f} over {f[0]['n_budgets']} budgets")
            else:
                for m in f:
                    print(f"isoflop C = {_g(m['budget'])}: best {m['best_run']} (N = {m['best_N']}), loss "
                          f"{m['best_loss']:.4f}; parabola N_opt = {m['N_opt_parabola']}")
        print(f"wrote {args.out}/runs.csv, curves.csv, fits.json, config.json and plots")
    _emit(args, summary, text)
    return 0


def cmd_pde(args) -> int:
    from dataclasses import replace

    from scaling.pde import QUICK_PDE, PDEScalingConfig, run_pde_scaling

    cfg = QUICK_PDE if args.quick else PDEScalingConfig()
    changes = {k: getattr(args, k) for k in ("steps", "seed") if getattr(args, k) is not None}
    if args.widths:
        changes["widths"] = tuple(args.widths)
    if args.samples:
        changes["samples"] = tuple(args.samples)
    summary = run_pde_scaling(replace(cfg, **changes), args.out, progress=not args.no_progress)

    def text():
        print_table(summary["runs"], ["sweep", "width", "n_train", "params", "steps", "test_rel_l2"])
        for name, f in summary["fits"].items():
            print(f"{name}: E = {_g(f['E'])}, A = {_g(f['A'])}, alpha = {f['alpha']:.4f}")
        print(f"wrote {args.out}/pde_runs.csv, pde_fits.json, pde_scaling.png ({summary['wall_time_s']:.0f} s)")
    _emit(args, summary, text)
    return 0


# --------------------------------------------------------------------------- parser
def _law_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--law", default="chinchilla", choices=sorted(est.PRESETS),
                   help="published constants: chinchilla (Hoffmann et al. 2022), epoch (Besiroglu et al. 2024), "
                        "kaplan (Kaplan et al. 2020)")
    for name in ("E", "A", "B", "alpha", "beta"):
        p.add_argument(f"--{name}", type=float, help=f"custom constant {name} (give all five)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scaling", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p_est = sub.add_parser("estimate", help="back-of-the-envelope calculators")
    est_sub = p_est.add_subparsers(dest="what", required=True)

    p = est_sub.add_parser("loss", help="L(N) = E + A/N^alpha (+ B/D^beta) from published or custom constants")
    p.add_argument("--N", type=number, nargs="+", required=True, help="parameters, raw count (1e9 or 1B)")
    p.add_argument("--D", type=number, nargs="+", help="training tokens (default: unlimited data)")
    _law_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_loss)

    p = est_sub.add_parser("compute", help="C = 6 N D (+ attention), and ways to spend a larger budget")
    p.add_argument("--N", type=number, required=True, help="parameters")
    p.add_argument("--D", type=number, required=True, help="training tokens")
    p.add_argument("--n-layer", type=int, help="layers (with --n-ctx and --d-model: add the attention term)")
    p.add_argument("--n-ctx", type=int, help="sequence length")
    p.add_argument("--d-model", type=int, help="model width")
    p.add_argument("--factor", type=number, default=2.0, help="budget multiplier for the strategies (default 2)")
    _law_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compute)

    p = est_sub.add_parser("attention", help="attention FLOPs and attention-matrix memory vs sequence length")
    p.add_argument("--n-ctx", type=int, default=2048, help="sequence length (default 2048)")
    p.add_argument("--to", type=int, help="a second sequence length to compare with (e.g. 8192)")
    p.add_argument("--d-model", type=int, default=4096)
    p.add_argument("--n-heads", type=int, default=32)
    p.add_argument("--n-layer", type=int, default=1)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--bytes", type=float, default=2.0, help="bytes per attention-matrix element (2: fp16)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_attention)

    p = est_sub.add_parser("memory", help="weights in fp32/fp16/bf16/int8/int4 and training memory with Adam")
    p.add_argument("--N", type=number, default=8e9, help="parameters (default 8e9)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_memory)

    p = est_sub.add_parser("quantization", help="storage of a model after int8 / int4 quantization")
    p.add_argument("--size-gb", type=float, default=40.0, help="model size in GB (1e9 bytes; default 40)")
    p.add_argument("--from-bits", type=int, default=16, help="bits per weight now (default 16: fp16)")
    p.add_argument("--group-size", type=int, help="weights per quantization group (adds scale bits per group)")
    p.add_argument("--scale-bits", type=int, default=16)
    p.add_argument("--zero-point-bits", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_quantization)

    p = sub.add_parser("exercises", help="the chapter's exercises worked out, each with its formula")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_exercises)

    p = sub.add_parser("fit", help="fit a scaling law to a runs CSV")
    p.add_argument("runs", help="CSV with a loss column and N, D and/or C columns (aliases: params, tokens, flops, "
                                "'Model Size', 'Training FLOP', val_loss); D = C/(6N) when only C is given")
    p.add_argument("--form", choices=["power", "chinchilla"], default="chinchilla")
    p.add_argument("--x", choices=["N", "D", "C"], default="N", help="the variable of the power form (default N)")
    p.add_argument("--bootstrap", type=int, default=0, help="bootstrap resamples for 95%% intervals (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-starts", type=int, default=64,
                   help="L-BFGS runs from the best grid starts (0: from every grid point; default 64)")
    p.add_argument("--drop-highest", type=int, default=0, help="drop the K highest-loss points first")
    p.add_argument("--frontier-at", type=number, nargs="+", default=[1e20, 1e21, 1e22, 1e23, 1e24],
                   help="compute budgets (FLOPs) for the frontier table (chinchilla form)")
    p.add_argument("--plot", metavar="DIR", help="write plots (PNG) into DIR")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("experiment", help="train GPTs of several sizes, write runs.csv, fit L(N) and L(C), plot")
    p.add_argument("--out", required=True, metavar="RUN_DIR")
    p.add_argument("--sizes", nargs="+", metavar="LxD[xH]", help="model sizes, e.g. 1x32 2x48x2 4x128x4")
    p.add_argument("--corpus", help="a text file or folder (default: the Python standard library's source)")
    p.add_argument("--corpus-bytes", type=int, help="bytes of corpus to read")
    p.add_argument("--quick", action="store_true", help="tiny models and few steps (under 2 minutes)")
    p.add_argument("--isoflop", action="store_true", help="IsoFLOP mode: several sizes per fixed compute budget")
    p.add_argument("--budgets", type=number, nargs="+", help="IsoFLOP budgets in FLOPs")
    p.add_argument("--steps", type=int, help="training steps per size (fixed-token mode)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--context", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=int, help="torch threads (default 1)")
    p.add_argument("--resume", action="store_true",
                   help="reuse the runs already in RUN_DIR/runs.csv that match the plan (same other settings!)")
    p.add_argument("--large", action="store_true",
                   help="the larger sizes 1x32 .. 4x128 (12.8k-793k parameters) with 500 steps (~17 min idle)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_experiment)

    p = sub.add_parser("pde", help="FNO (operators) test error vs parameters and vs training samples, fitted")
    p.add_argument("--out", required=True, metavar="RUN_DIR")
    p.add_argument("--quick", action="store_true", help="tiny sweep (for tests)")
    p.add_argument("--widths", type=int, nargs="+", help="FNO widths of the parameter sweep")
    p.add_argument("--samples", type=int, nargs="+", help="training-set sizes of the sample sweep")
    p.add_argument("--steps", type=int, help="optimiser steps per run")
    p.add_argument("--seed", type=int)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_pde)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
