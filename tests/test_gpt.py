"""GPT against transformers' GPT2LMHeadModel with the same (random) weights, and its pieces."""

from __future__ import annotations

import pytest
import torch
from _tiny_lm import tiny_gpt2
from transformers import GPT2LMHeadModel

from course_utils import masks
from course_utils.attention import scaled_dot_product_attention
from course_utils.gpt import (
    GPT,
    GPTConfig,
    KVCache,
    attend_with_cache,
    causal_mask_with_past,
    make_position_ids,
)

SIZES = [  # (n_layer, n_embd, n_head, n_positions, vocab)
    (1, 16, 2, 32, 50),
    (2, 32, 4, 64, 100),
    (3, 48, 3, 40, 77),
    (4, 64, 8, 128, 300),
]


def _hf(n_layer, n_embd, n_head, n_positions, vocab, seed=0, **kw) -> GPT2LMHeadModel:
    return tiny_gpt2(vocab, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
                     n_head=n_head, seed=seed, bos_token_id=None, eos_token_id=None,
                     pad_token_id=0, **kw).eval()


@pytest.mark.parametrize("size", SIZES)
def test_logits_match_gpt2(size):
    hf = _hf(*size, seed=size[1])
    ours = GPT.from_hf(hf)
    assert not ours.training
    ids = torch.randint(0, size[4], (3, min(20, size[3])))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), hf(ids).logits, atol=1e-4, rtol=1e-4)
    assert ours.num_parameters() == hf.num_parameters()


def test_logits_match_gpt2_with_padding_mask():
    hf = _hf(2, 32, 4, 64, 100)
    ours = GPT.from_hf(hf)
    ids = torch.randint(1, 100, (3, 12))
    attention_mask = torch.ones_like(ids)
    attention_mask[0, 9:] = 0
    attention_mask[2, 4:] = 0
    with torch.no_grad():
        got = ours(ids, attention_mask=attention_mask)
        ref = hf(ids, attention_mask=attention_mask).logits
    keep = attention_mask.bool()  # padded query positions are don't-care
    torch.testing.assert_close(got[keep], ref[keep], atol=1e-4, rtol=1e-4)


def test_other_activation_and_inner_size():
    hf = _hf(2, 24, 2, 32, 60, activation_function="gelu", n_inner=40)
    ours = GPT.from_hf(hf)
    ids = torch.randint(0, 60, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), hf(ids).logits, atol=1e-4, rtol=1e-4)


def test_cached_forward_equals_full_forward_and_gpt2_cache():
    hf = _hf(2, 32, 4, 64, 100)
    ours = GPT.from_hf(hf)
    ids = torch.randint(0, 100, (2, 11))
    with torch.no_grad():
        full = ours(ids)
        a, cache = ours(ids[:, :4], use_cache=True)
        b, cache = ours(ids[:, 4:7], past_key_values=cache, use_cache=True)  # 3 at once
        c, cache = ours(ids[:, 7:8], past_key_values=cache, use_cache=True)  # one token
        d, cache = ours(ids[:, 8:], past_key_values=cache, use_cache=True)
        hf_out = hf(ids[:, :7], use_cache=True)
        hf_next = hf(ids[:, 7:], cache=hf_out.cache).logits
    torch.testing.assert_close(torch.cat([a, b, c, d], 1), full, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.cat([c, d], 1), hf_next, atol=1e-4, rtol=1e-4)
    assert isinstance(cache, KVCache) and cache.seq_len == 11
    assert cache.keys[0].shape == (2, 4, 11, 8)


def test_training_mode_and_gradients_flow():
    model = GPT(GPTConfig(vocab_size=40, max_seq_len=16, d_model=16, num_heads=2,
                          num_layers=1, dropout=0.1))
    ids = torch.randint(0, 40, (2, 16))
    logits = model(ids)
    logits.sum().backward()
    assert model.token_embedding.weight.grad is not None
    assert all(p.grad is not None for p in model.parameters())


def test_causal_mask_with_past_matches_the_definition():
    for L, past in [(1, 0), (4, 0), (1, 5), (3, 2), (6, 1)]:
        got = causal_mask_with_past(L, past)
        S = L + past
        expected = torch.tensor([[j <= past + i for j in range(S)] for i in range(L)])
        assert got.dtype == torch.bool and torch.equal(got, expected)
    assert torch.equal(causal_mask_with_past(5), masks.causal_mask(5))


def test_make_position_ids():
    ids = torch.zeros(2, 3, dtype=torch.long)
    assert make_position_ids(ids).tolist() == [[0, 1, 2], [0, 1, 2]]
    assert make_position_ids(ids, past_length=4).tolist() == [[4, 5, 6], [4, 5, 6]]


def test_attend_with_cache_matches_lesson01_attention():
    q_all, k_all, v_all = (torch.randn(2, 3, 7, 4) for _ in range(3))
    full, _ = scaled_dot_product_attention(q_all, k_all, v_all, masks.causal_mask(7))
    out, k, v = attend_with_cache(q_all[:, :, 5:], k_all[:, :, 5:], v_all[:, :, 5:],
                                  k_all[:, :, :5], v_all[:, :, :5])
    torch.testing.assert_close(out, full[:, :, 5:], atol=1e-6, rtol=1e-5)
    assert torch.equal(k, k_all) and torch.equal(v, v_all)
    out, k, v = attend_with_cache(q_all, k_all, v_all)  # no past: plain causal attention
    torch.testing.assert_close(out, full, atol=1e-6, rtol=1e-5)


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(d_model=10, num_heads=3)
    with pytest.raises(ValueError, match="activation"):
        GPTConfig(activation="swish")
    model = GPT(GPTConfig(vocab_size=20, max_seq_len=8, d_model=8, num_heads=2, num_layers=1))
    with pytest.raises(ValueError, match="max_seq_len=8"):
        model(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="batch, seq_len"):
        model(torch.zeros(9, dtype=torch.long))
    with pytest.raises(ValueError, match="attention_mask"):
        model(torch.zeros(1, 4, dtype=torch.long), attention_mask=torch.ones(1, 5))
    with pytest.raises(TypeError, match="GPT2LMHeadModel"):
        GPT.from_hf(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="past_len"):
        causal_mask_with_past(2, -1)


def test_lm_loss_matches_gpt2s_own_loss():
    from course_utils.training import lm_loss

    hf = _hf(2, 32, 4, 64, 100)
    ids = torch.randint(0, 100, (3, 10))
    with torch.no_grad():
        out = hf(ids, labels=ids)
    torch.testing.assert_close(lm_loss(out.logits, ids), out.loss)


def test_a_few_training_steps_learn_a_repeating_pattern():
    from course_utils.training import encode_corpus, get_batch, train_lm

    torch.manual_seed(0)
    tokens = encode_corpus([[0, 1, 2, 3, 4, 5]] * 50, eos_token_id=6)
    assert tokens[:8].tolist() == [0, 1, 2, 3, 4, 5, 6, 0]
    assert get_batch(tokens, 4, 8).shape == (4, 8)
    model = GPT(GPTConfig(vocab_size=7, max_seq_len=16, d_model=32, num_heads=2, num_layers=1))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: one thread is faster and steadier on a busy machine
    try:
        losses = train_lm(model, tokens, steps=60, batch_size=8, seq_len=16, peak_lr=1e-2,
                          progress=False, generator=torch.Generator().manual_seed(0))
    finally:
        torch.set_num_threads(threads)
    assert losses[0] > 1.5 and losses[-1] < 0.3
