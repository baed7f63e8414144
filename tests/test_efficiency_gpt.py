"""The small GPT: counts, FLOPs, KV-cache decoding, padding, checkpointing of blocks."""

import pytest

torch = pytest.importorskip("torch")

from efficiency.gpt import GPT, GPT_PRESETS, GPTConfig, KVCache  # noqa: E402

pytestmark = pytest.mark.torch


TINY = GPTConfig(vocab_size=11, context=16, n_layer=2, n_head=2, d_model=8, d_ff=12)


def hand_count(c: GPTConfig) -> dict:
    d, f, V, L = c.d_model, c.d_ff, c.vocab_size, c.n_layer
    ln = 2 * d                                          # LayerNorm weight + bias
    attn = (d * 3 * d + 3 * d) + (d * d + d)            # qkv and output projection with biases
    mlp = (d * f + f) + (f * d + d)
    block = 2 * ln + attn + mlp
    non_emb = L * block + ln                            # + final LayerNorm
    emb = V * d + c.context * d                         # token + position tables
    return {"non_embedding": non_emb, "total": non_emb + emb + (0 if c.tie_weights else V * d)}


@pytest.mark.parametrize("tie", [True, False])
def test_parameter_count_matches_hand_count(tie):
    c = GPTConfig(vocab_size=11, context=16, n_layer=2, n_head=2, d_model=8, d_ff=12, tie_weights=tie)
    m = GPT(c)
    expected = hand_count(c)
    # d=8, f=12: block = 32 + (216 + 72) + (108 + 104) = 532; 2 blocks + 16 = 1080
    assert expected["non_embedding"] == 1080
    assert m.num_parameters(non_embedding=True) == expected["non_embedding"]
    assert m.num_parameters(non_embedding=False) == expected["total"]


def test_flops_per_token_is_kaplan_6n_plus_attention():
    m = GPT(TINY)
    n = 1080
    assert m.flops_per_token() == 6 * n + 6 * 2 * 16 * 8          # Kaplan et al. 2020, Table 1
    assert m.flops_per_token(context=4, training=False) == 2 * n + 2 * 2 * 4 * 8


def test_presets_build_and_medium_is_about_ten_million():
    assert GPT(GPT_PRESETS["tiny"]).num_parameters() == 99_968 + 128  # 2 blocks of 49 984 + ln_f
    assert 10e6 < GPT(GPT_PRESETS["medium"]).num_parameters() < 11e6


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(d_model=10, n_head=3)
    with pytest.raises(ValueError, match="n_layer"):
        GPTConfig(n_layer=0)
    with pytest.raises(ValueError, match="unknown"):
        GPTConfig.from_dict({"widht": 3})


def test_sequence_longer_than_context_is_rejected():
    m = GPT(TINY)
    with pytest.raises(ValueError, match="exceeds the model context"):
        m(torch.zeros(1, 17, dtype=torch.long))


def _model():
    torch.manual_seed(0)
    return GPT(TINY).double().eval()   # float64: cached vs uncached differ only by rounding


def test_cached_decoding_of_left_padded_batch_equals_uncached_logits():
    m = _model()
    lens, new = [5, 9, 2], 6
    g = torch.Generator().manual_seed(1)
    rows = [torch.randint(0, 11, (n + new,), generator=g) for n in lens]
    with torch.no_grad():
        ref = [m(r[None])[0] for r in rows]                     # each row alone, no cache
        B, P = len(lens), max(lens)
        idx = torch.zeros(B, P, dtype=torch.long)
        pad = torch.zeros(B, P, dtype=torch.bool)
        for i, n in enumerate(lens):
            idx[i, P - n:] = rows[i][:n]
            pad[i, P - n:] = True
        cache = m.new_cache(B, P + new)
        out = m(idx, attn_mask=pad, cache=cache)                # prefill
        for i, n in enumerate(lens):
            torch.testing.assert_close(out[i, P - n:], ref[i][:n], rtol=0, atol=1e-12)
        for s in range(new):                                     # one token per step
            tok = torch.stack([rows[i][lens[i] + s] for i in range(B)])[:, None]
            out = m(tok, cache=cache)
            for i, n in enumerate(lens):
                torch.testing.assert_close(out[i, 0], ref[i][n + s], rtol=0, atol=1e-12)
    assert cache.lengths.tolist() == [n + new for n in lens]
    assert cache.pos == P + new


def test_uncached_padding_mask_gives_the_unpadded_logits():
    m = _model()
    x = torch.randint(0, 11, (1, 7), generator=torch.Generator().manual_seed(2))
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), x], dim=1)
    mask = torch.cat([torch.zeros(1, 3, dtype=torch.bool), torch.ones(1, 7, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        a = m(x)
        b = m(padded, attn_mask=mask)
    assert torch.isfinite(b).all()                  # padding queries see themselves: no NaN rows
    torch.testing.assert_close(b[:, 3:], a, rtol=0, atol=1e-12)


def test_cache_overflow_and_position_past_context_raise():
    m = _model()
    cache = KVCache.allocate(TINY, 1, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="cache overflow"):
        m(torch.zeros(1, 5, dtype=torch.long), cache=cache)
    big = KVCache.allocate(TINY, 1, 20, dtype=torch.float64)
    m(torch.zeros(1, 16, dtype=torch.long), cache=big)
    with pytest.raises(ValueError, match="outside the model context"):
        m(torch.zeros(1, 1, dtype=torch.long), cache=big)


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    c = GPTConfig(vocab_size=11, context=16, n_layer=3, n_head=2, d_model=8, dropout=0.0)
    a, b = GPT(c).double(), GPT(c).double()
    b.load_state_dict(a.state_dict())
    b.gradient_checkpointing = True
    x = torch.randint(0, 11, (2, 16), generator=torch.Generator().manual_seed(3))
    y = torch.roll(x, -1, 1)
    a.train()
    b.train()
    a(x, targets=y)[1].backward()
    b(x, targets=y)[1].backward()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        # recomputation repeats the same float64 operations: equal up to rounding
        torch.testing.assert_close(pb.grad, pa.grad, rtol=0, atol=1e-13, msg=name)


def test_cache_select_keeps_decoding_the_chosen_rows():
    m = _model()
    x = torch.randint(0, 11, (3, 8), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref = m(x[1:2])                                   # row 1 alone, no cache
        cache = m.new_cache(3, 8)
        m(x[:, :5], cache=cache)
        sub = cache.select([1])                           # drop rows 0 and 2
        out = torch.cat([m(x[1:2, i:i + 1], cache=sub) for i in range(5, 8)], dim=1)
    torch.testing.assert_close(out, ref[:, 5:], rtol=0, atol=1e-12)   # float64 rounding
