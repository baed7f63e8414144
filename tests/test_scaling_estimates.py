"""Calculators and the chapter's exercises, checked against arithmetic done by hand in each test."""

import math

import pytest

from scaling import estimates as est
from scaling.exercises import exercises


def test_chinchilla_loss_of_chinchilla_matches_the_formula_written_out():
    # Hoffmann et al. 2022, eq. 10: E = 1.69, A = 406.4, B = 410.7, alpha = 0.34, beta = 0.28.
    # ln(7e10) = 24.97176, x0.34 = 8.49040 -> 7e10^0.34 = 4867.8 -> 406.4 / 4867.8 = 0.083487
    # ln(1.4e12) = 27.96749, x0.28 = 7.83090 -> 2517.2 -> 410.7 / 2517.2 = 0.163158
    got = est.CHINCHILLA.loss(70e9, 1.4e12)
    assert got == pytest.approx(1.69 + 0.083487 + 0.163158, abs=2e-6)  # 6 decimals carried by hand


def test_loss_without_data_term_tends_to_E_as_N_grows():
    losses = [est.CHINCHILLA.loss(n) for n in (1e9, 1e12, 1e15, 1e30)]
    assert all(a > b for a, b in zip(losses, losses[1:], strict=False))
    assert losses[-1] == pytest.approx(1.69, abs=3e-8)      # 406.4 / 1e30^0.34 = 406.4 / 10^10.2 = 2.6e-8
    assert est.CHINCHILLA.irreducible == 1.69


def test_kaplan_loss_of_a_billion_parameters():
    # (8.8e13 / 1e9)^0.076: ln(8.8e4) = 11.385092, x0.076 = 0.865267, exp = e^0.8 x e^0.065267
    # = 2.225541 x 1.067444 = 2.375640
    assert est.KAPLAN.loss(1e9) == pytest.approx(2.375640, abs=2e-6)
    assert est.KAPLAN.irreducible == 0.0


def test_kaplan_joint_law_reduces_to_single_variable_form_with_unlimited_data():
    # eq. 1.5 with D -> inf is (N_c/N)^alpha_N with Table 2's N_c = 6.4e13
    assert est.KAPLAN.loss(1e9, 1e40) == pytest.approx((6.4e13 / 1e9) ** 0.076, rel=1e-9)


def test_kaplan_compute_law_converts_flops_to_pf_days():
    # C = 3.1e8 PF-days gives L = 1 exactly (eq. 1.3); 1 PF-day = 8.64e19 FLOPs
    assert est.KAPLAN.loss_compute(3.1e8 * 8.64e19) == pytest.approx(1.0, rel=1e-12)


def test_training_flops_is_6ND_plus_the_attention_term():
    c = est.training_flops(70e9, 1.4e12)
    assert c["C"] == pytest.approx(5.88e23, rel=1e-12)      # 6 x 7e10 x 1.4e12
    g = est.training_flops(175e9, 300e9, n_layer=96, n_ctx=2048, d_model=12288)
    assert g["C_attention"] == pytest.approx(6 * 96 * 2048 * 12288 * 300e9, rel=1e-12)  # = 4.349e21
    assert g["C"] == pytest.approx(3.15e23 + 4.3486e21, rel=1e-4)


def test_doubling_the_budget_three_ways():
    rows = {r["strategy"]: r for r in est.budget_strategies(1e9, 20e9, factor=2.0)}
    assert rows["all to N"]["N"] == 2e9 and rows["all to N"]["D"] == 20e9
    assert rows["all to D"]["N"] == 1e9 and rows["all to D"]["D"] == 40e9
    # exponent split: a = 0.28 / 0.62 = 0.451613, b = 0.548387; 2^a = 1.36758, 2^b = 1.46245
    assert rows["split by exponents"]["N"] == pytest.approx(1.36758e9, rel=1e-5)
    assert rows["split by exponents"]["D"] == pytest.approx(29.2490e9, rel=1e-5)
    for r in rows.values():
        if r["strategy"] != "baseline":
            assert r["C"] == pytest.approx(2 * 6 * 1e9 * 20e9, rel=1e-12)   # every strategy spends 2C
    best = rows["optimum at new budget"]["loss"]
    assert all(best <= r["loss"] + 1e-12 for r in rows.values())


def test_compute_optimal_allocation_satisfies_the_lagrange_condition():
    law = est.CHINCHILLA
    n, d = law.optimal_allocation(1e23)
    assert 6 * n * d == pytest.approx(1e23, rel=1e-12)
    # at the optimum of E + A N^-alpha + B D^-beta on N D = const: alpha A N^-alpha = beta B D^-beta
    assert law.alpha * law.A * n ** -law.alpha == pytest.approx(law.beta * law.B * d ** -law.beta, rel=1e-10)


def test_attention_from_2048_to_8192_costs_16_times_more():
    s = est.attention_scaling(2048, 8192, d_model=4096, n_heads=32)
    assert s["flops_ratio"] == 16.0 and s["memory_ratio"] == 16.0   # (8192 / 2048)^2
    a = s["from"]
    assert a["flops"] == 4 * 2048**2 * 4096                           # 4 n^2 d per layer
    assert a["matrix_bytes"] == 2048**2 * 32 * 2                      # n^2 per head, fp16 = 256 MiB


def test_memory_of_an_8b_model():
    pm = est.parameter_memory(8e9)
    assert pm == {"fp32": 32e9, "fp16": 16e9, "bf16": 16e9, "int8": 8e9, "int4": 4e9}
    assert est.training_memory(8e9)["total_bytes"] == 128e9           # (2+2+4+4+4) x 8e9
    assert est.training_memory(8e9, mixed_precision=False)["total_bytes"] == 128e9   # 4 x 4 x 8e9


def test_quantized_storage_of_a_40gb_fp16_model():
    assert est.quantized_size(40e9, 16, 8)["bytes"] == 20e9
    assert est.quantized_size(40e9, 16, 4)["bytes"] == 10e9
    # one fp16 scale per 128 weights: 4 + 16/128 = 4.125 bits -> 2e10 x 4.125 / 8 = 10.3125e9
    assert est.quantized_size(40e9, 16, 4, group_size=128)["bytes"] == pytest.approx(10.3125e9, rel=1e-12)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_calculators_reject_non_positive_inputs(bad):
    with pytest.raises(ValueError, match="N must be"):
        est.CHINCHILLA.loss(bad)
    with pytest.raises(ValueError):
        est.training_flops(1e9, bad)


def test_exercises_carry_formula_and_hand_checked_answers():
    ex = {e["id"]: e for e in exercises()}
    assert all(e["formula"] and e["answer"] for e in ex.values())
    assert ex["training_compute"]["values"]["chinchilla_C"] == pytest.approx(5.88e23)
    assert ex["attention_scaling"]["values"]["flops_ratio"] == 16
    assert ex["quantized_storage"]["values"]["int8_GB"] == 20 and ex["quantized_storage"]["values"]["int4_GB"] == 10
    assert ex["memory_8b"]["values"]["train_mixed_bytes"] == 128e9
    assert ex["kaplan_loss"]["values"]["loss"] == pytest.approx(2.375640, abs=2e-6)
    assert ex["chinchilla_loss"]["values"]["loss"] == pytest.approx(1.936645, abs=2e-6)
    assert ex["loss_vs_parameters"]["values"]["limit"] == 1.69
