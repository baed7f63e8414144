"""The chapter's mathematical exercises, worked out with the calculators of `scaling.estimates`.

Each exercise is a dict: ``id``, ``question``, ``formula``, ``answer`` (a line of text) and ``values``
(the numbers, for tests and --json).
"""

from __future__ import annotations

from scaling.estimates import (
    CHINCHILLA,
    GB,
    KAPLAN,
    attention_scaling,
    budget_strategies,
    parameter_memory,
    quantized_size,
    training_flops,
    training_memory,
)


def _g(x: float) -> str:
    return f"{x:.4g}"


def exercises() -> list[dict]:
    """All exercises, in chapter order."""
    out = []

    # 1. loss vs parameters with Chinchilla's constants, and the limit
    ns = [1e8, 1e9, 1e10, 1e11, 1e12]
    losses = [CHINCHILLA.loss(n) for n in ns]
    out.append({
        "id": "loss_vs_parameters",
        "question": "Chinchilla's law with unlimited data: the loss at N = 1e8 ... 1e12 parameters, and as N grows.",
        "formula": "L(N) = E + A / N^alpha = 1.69 + 406.4 / N^0.34 (N raw parameters, loss in nats/token); "
                   "L -> E = 1.69 as N -> inf",
        "answer": ", ".join(f"L({n:.0e}) = {v:.4f}" for n, v in zip(ns, losses, strict=True))
                  + f"; limit E = {CHINCHILLA.E}",
        "values": {"N": ns, "loss": losses, "limit": CHINCHILLA.E},
    })

    # 2. Chinchilla itself: 70B parameters, 1.4T tokens
    n, d = 70e9, 1.4e12
    loss = CHINCHILLA.loss(n, d)
    terms = (CHINCHILLA.A / n**CHINCHILLA.alpha, CHINCHILLA.B / d**CHINCHILLA.beta)
    out.append({
        "id": "chinchilla_loss",
        "question": "Predicted loss of Chinchilla (N = 70e9 parameters, D = 1.4e12 tokens).",
        "formula": "L = E + A/N^alpha + B/D^beta = 1.69 + 406.4/(7e10)^0.34 + 410.7/(1.4e12)^0.28",
        "answer": f"L = 1.69 + {terms[0]:.4f} + {terms[1]:.4f} = {loss:.4f} nats/token",
        "values": {"N": n, "D": d, "param_term": terms[0], "data_term": terms[1], "loss": loss},
    })

    # 3. Kaplan's L(N)
    n = 1e9
    lk = KAPLAN.loss(n)
    out.append({
        "id": "kaplan_loss",
        "question": "Kaplan et al.'s L(N) for a model with 1e9 non-embedding parameters (converged, no data limit).",
        "formula": "L(N) = (N_c / N)^alpha_N = (8.8e13 / 1e9)^0.076 (nats/token on WebText2); no irreducible term",
        "answer": f"L = (8.8e4)^0.076 = {lk:.4f} nats/token",
        "values": {"N": n, "loss": lk},
    })

    # 4. training compute
    c = training_flops(70e9, 1.4e12)
    g3 = training_flops(175e9, 300e9, n_layer=96, n_ctx=2048, d_model=12288)
    out.append({
        "id": "training_compute",
        "question": "Training compute of Chinchilla (70e9 params, 1.4e12 tokens) and of GPT-3 (175e9 params, "
                    "300e9 tokens; 96 layers, context 2048, d_model 12288) with its attention term.",
        "formula": "C = 6 N D; attention adds 6 n_layer n_ctx d_model D (Kaplan et al. 2020, Table 1)",
        "answer": f"Chinchilla C = 6 * 7e10 * 1.4e12 = {_g(c['C'])} FLOPs ({c['C_pf_days']:.4g} PF-days); "
                  f"GPT-3 C = {_g(g3['C_dense'])} + {_g(g3['C_attention'])} = {_g(g3['C'])} FLOPs "
                  f"(attention {100 * g3['C_attention'] / g3['C']:.2f}% of the total)",
        "values": {"chinchilla_C": c["C"], "gpt3_C_dense": g3["C_dense"], "gpt3_C_attention": g3["C_attention"],
                   "gpt3_C": g3["C"]},
    })

    # 5. doubled budget
    rows = budget_strategies(1e9, 20e9, factor=2.0)
    a, b = CHINCHILLA.exponents
    out.append({
        "id": "doubled_budget",
        "question": "A 1e9-parameter model trained on 2e10 tokens: with twice the compute, compare putting it all "
                    "into N, all into D, or splitting it by the fitted exponents (Chinchilla constants).",
        "formula": f"C = 6 N D; N ~ C^a, D ~ C^b with a = beta/(alpha+beta) = {a:.4f}, b = alpha/(alpha+beta) "
                   f"= {b:.4f}, so N x 2^a, D x 2^b; L = E + A/N^alpha + B/D^beta",
        "answer": "; ".join(f"{r['strategy']}: N = {_g(r['N'])}, D = {_g(r['D'])}, L = {r['loss']:.4f}"
                            for r in rows),
        "values": {"rows": rows, "a": a, "b": b},
    })

    # 6. compute-optimal allocation at Chinchilla's budget
    C = 6 * 70e9 * 1.4e12
    n_opt, d_opt = CHINCHILLA.optimal_allocation(C)
    out.append({
        "id": "compute_optimal",
        "question": "The compute-optimal N*, D* and tokens per parameter for C = 5.88e23 FLOPs (Chinchilla's law).",
        "formula": "N* = G (C/6)^a, D* = (C/6)^b / G, G = (alpha A / (beta B))^(1/(alpha+beta))",
        "answer": f"N* = {_g(n_opt)} params, D* = {_g(d_opt)} tokens, D*/N* = {d_opt / n_opt:.1f} tokens/param",
        "values": {"C": C, "N_opt": n_opt, "D_opt": d_opt, "tokens_per_param": d_opt / n_opt},
    })

    # 7. attention scaling 2048 -> 8192
    s = attention_scaling(2048, 8192, d_model=4096, n_heads=32)
    out.append({
        "id": "attention_scaling",
        "question": "Going from a 2048- to an 8192-token context: how do attention operations and the attention "
                    "matrix memory grow?",
        "formula": "operations ~ n^2 d (4 n^2 d_model FLOPs per layer), matrix ~ n^2 per head; ratio (8192/2048)^2",
        "answer": f"operations x{s['flops_ratio']:.0f}, attention-matrix memory x{s['memory_ratio']:.0f} "
                  f"({s['from']['matrix_bytes'] / 2**20:.0f} MiB -> {s['to']['matrix_bytes'] / 2**20:.0f} MiB per "
                  "layer for 32 heads in fp16)",
        "values": {"flops_ratio": s["flops_ratio"], "memory_ratio": s["memory_ratio"],
                   "bytes_from": s["from"]["matrix_bytes"], "bytes_to": s["to"]["matrix_bytes"]},
    })

    # 8. memory of an 8e9 model
    pm = parameter_memory(8e9)
    tm = training_memory(8e9, mixed_precision=True)
    tf = training_memory(8e9, mixed_precision=False)
    out.append({
        "id": "memory_8b",
        "question": "Memory of an 8e9-parameter model: weights in each format, and training with Adam.",
        "formula": "bytes = N * bits/8; Adam training: fp32 4+4+4+4 = 16 B/param, mixed precision "
                   "2+2+4(master)+4+4 = 16 B/param (activations excluded); GB = 1e9 bytes",
        "answer": ", ".join(f"{k} {v / GB:.0f} GB" for k, v in pm.items())
                  + f"; training with Adam: {tm['total_GB']:.0f} GB mixed precision, {tf['total_GB']:.0f} GB fp32",
        "values": {"weights_bytes": pm, "train_mixed_bytes": tm["total_bytes"], "train_fp32_bytes": tf["total_bytes"]},
    })

    # 9. quantized storage
    q8 = quantized_size(40 * GB, 16, 8)
    q4 = quantized_size(40 * GB, 16, 4)
    q4g = quantized_size(40 * GB, 16, 4, group_size=128)
    out.append({
        "id": "quantized_storage",
        "question": "A 40 GB fp16 model stored in int8 and int4 (metadata ignored; then int4 with one fp16 scale per "
                    "group of 128 weights).",
        "formula": "N = 40e9 * 8 / 16 = 2e10 weights; bytes = N * bits / 8; groups add 16/128 = 0.125 bits/weight",
        "answer": f"int8 {q8['GB']:.0f} GB, int4 {q4['GB']:.0f} GB, int4 with g=128 scales {q4g['GB']:.4g} GB",
        "values": {"int8_GB": q8["GB"], "int4_GB": q4["GB"], "int4_group128_GB": q4g["GB"]},
    })
    return out
