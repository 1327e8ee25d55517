"""Sampling filters against transformers' logits warpers; generation with and without cache."""

from __future__ import annotations

import pytest
import torch
from _tiny_lm import tiny_gpt2
from transformers.generation.logits_process import (
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from course_utils.generation import (
    apply_temperature,
    generate,
    next_token_distribution,
    sample_next_token,
    top_k_filter,
    top_p_filter,
)
from course_utils.gpt import GPT, GPTConfig


def _logits(seed: int, shape=(4, 50)) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 3


@pytest.mark.parametrize("t", [0.3, 1.0, 2.5])
def test_temperature_matches_transformers(t):
    x = _logits(0)
    torch.testing.assert_close(apply_temperature(x, t), TemperatureLogitsWarper(t)(None, x))


@pytest.mark.parametrize("k", [1, 5, 49, 50, 80])
def test_top_k_matches_transformers(k):
    x = _logits(k)
    assert torch.equal(top_k_filter(x, k), TopKLogitsWarper(k)(None, x.clone()))


def test_top_k_keeps_ties_like_transformers():
    x = torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0]])
    assert torch.equal(top_k_filter(x, 2), TopKLogitsWarper(2)(None, x.clone()))


@pytest.mark.parametrize("p", [0.05, 0.5, 0.9, 0.999, 1.0])
def test_top_p_matches_transformers(p):
    for seed in range(5):
        x = _logits(100 + seed)
        assert torch.equal(top_p_filter(x, p), TopPLogitsWarper(p)(None, x.clone()))


def test_next_token_distribution_composes_like_transformers():
    x = _logits(7)
    ref = TopPLogitsWarper(0.8)(None, TopKLogitsWarper(10)(None, TemperatureLogitsWarper(0.7)(
        None, x.clone())))
    got = next_token_distribution(x, temperature=0.7, top_k=10, top_p=0.8)
    torch.testing.assert_close(got, ref.softmax(-1))
    torch.testing.assert_close(got.sum(-1), torch.ones(4))
    greedy = next_token_distribution(x, temperature=0)
    assert torch.equal(greedy.argmax(-1), x.argmax(-1)) and torch.equal(greedy.sum(-1),
                                                                        torch.ones(4))


def test_filters_do_not_change_their_input():
    x = _logits(3)
    before = x.clone()
    top_k_filter(x, 3), top_p_filter(x, 0.5), apply_temperature(x, 0.5)
    assert torch.equal(x, before)


def test_sampling_respects_top_k():
    x = _logits(11, (1, 30))
    g = torch.Generator().manual_seed(0)
    allowed = set(torch.topk(x[0], 3).indices.tolist())
    seen = {int(sample_next_token(x, True, 1.5, top_k=3, generator=g)) for _ in range(200)}
    assert seen <= allowed and len(seen) > 1


def _pair(n_layer=2, n_embd=32, n_head=4, vocab=100, seed=0):
    hf = tiny_gpt2(vocab, n_positions=128, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
                   seed=seed, bos_token_id=None, eos_token_id=None, pad_token_id=0).eval()
    return hf, GPT.from_hf(hf)


@pytest.mark.parametrize("size", [(1, 16, 2, 50), (2, 32, 4, 100), (3, 48, 6, 200)])
def test_greedy_generation_matches_transformers_with_and_without_cache(size):
    hf, ours = _pair(*size, seed=size[1])
    prompt = torch.randint(0, size[3], (2, 6))
    cached = generate(ours, prompt, 40)
    uncached = generate(ours, prompt, 40, use_cache=False)
    ref = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=40,
                      do_sample=False)
    assert torch.equal(cached, uncached)
    assert torch.equal(cached, ref)


def test_sampled_generation_is_the_same_with_and_without_cache():
    _, ours = _pair()
    prompt = torch.randint(0, 100, (3, 4))
    kw = dict(do_sample=True, temperature=0.9, top_k=20, top_p=0.9)
    a = generate(ours, prompt, 25, generator=torch.Generator().manual_seed(5), **kw)
    b = generate(ours, prompt, 25, use_cache=False,
                 generator=torch.Generator().manual_seed(5), **kw)
    assert torch.equal(a, b)


def test_generation_stops_at_eos():
    _, ours = _pair()
    prompt = torch.randint(0, 100, (1, 4))
    first = int(generate(ours, prompt, 1)[0, -1])
    out = generate(ours, prompt, 20, eos_token_id=first)
    assert out.shape == (1, 5) and int(out[0, -1]) == first


def test_bad_input_gives_clear_errors():
    x = _logits(0)
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(x, 0)
    with pytest.raises(ValueError, match="k must"):
        top_k_filter(x, 0)
    with pytest.raises(ValueError, match="p must"):
        top_p_filter(x, 1.5)
    with pytest.raises(TypeError, match="floating"):
        top_k_filter(torch.tensor([1, 2, 3]), 1)
    model = GPT(GPTConfig(vocab_size=20, max_seq_len=8, d_model=8, num_heads=2, num_layers=1))
    with pytest.raises(ValueError, match="max_seq_len"):
        generate(model, torch.zeros(1, 4, dtype=torch.long), 5)
    with pytest.raises(TypeError, match="from_hf"):
        generate(torch.nn.Linear(2, 2), torch.zeros(1, 4, dtype=torch.long), 5)
