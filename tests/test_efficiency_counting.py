"""count_parameters on hand-countable modules and on the GPT."""

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from efficiency.counting import count_parameters  # noqa: E402
from efficiency.gpt import GPT, GPTConfig  # noqa: E402

pytestmark = pytest.mark.torch


def test_counts_of_a_small_module_match_hand_count():
    m = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 3), nn.LayerNorm(3))
    m[2].weight.requires_grad_(False)
    c = count_parameters(m)
    # embedding 10*4 = 40; linear 4*3 + 3 = 15; layernorm 3 + 3 = 6
    assert (c.total, c.embedding, c.non_embedding) == (61, 40, 21)
    assert c.trainable == 58
    assert c.per_module == {"0": 40, "1": 15, "2": 6}
    assert c.bytes_by_dtype == {"float32": 61 * 4}


def test_shared_weights_count_once_and_dtypes_are_split():
    emb, head = nn.Embedding(7, 5), nn.Linear(5, 7, bias=False)
    head.weight = emb.weight
    m = nn.ModuleDict({"emb": emb, "head": head, "extra": nn.Linear(5, 2).half()})
    c = count_parameters(m)
    assert c.total == 35 + 12                                 # tied 7x5 once; 5*2 + 2 in fp16
    assert c.bytes_by_dtype == {"float32": 35 * 4, "float16": 12 * 2}
    assert c.non_embedding == 12


def test_gpt_counts_agree_with_num_parameters_tied_and_untied():
    for tie in (True, False):
        g = GPT(GPTConfig(vocab_size=11, context=16, n_layer=2, n_head=2, d_model=8, d_ff=12, tie_weights=tie))
        c = count_parameters(g)
        assert c.total == g.num_parameters(non_embedding=False)
        assert c.non_embedding == g.num_parameters(non_embedding=True) == 1080   # see test_efficiency_gpt
        assert sum(c.per_module.values()) == c.total


def test_count_rejects_non_modules():
    with pytest.raises(ValueError, match="torch.nn.Module"):
        count_parameters("model")
