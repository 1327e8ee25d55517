"""Lesson 01's references against torch: softmax, scaled dot-product attention, masks."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from course_utils import attention, masks


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_matches_torch(dim):
    x = torch.randn(3, 4, 5) * 30
    torch.testing.assert_close(attention.softmax(x, dim), torch.softmax(x, dim))


def test_softmax_survives_huge_and_tiny_logits():
    x = torch.tensor([[1e4, 1e4 - 1, 0.0], [-1e4, -1e4, -1e4]])
    out = attention.softmax(x)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, torch.softmax(x, -1))


def test_softmax_rejects_integers_with_a_clear_message():
    with pytest.raises(TypeError, match="floating-point"):
        attention.softmax(torch.tensor([1, 2, 3]))


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 3), heads=st.integers(1, 3), L=st.integers(1, 7),
       S=st.integers(1, 7), d_k=st.integers(1, 16), d_v=st.integers(1, 8),
       masked=st.booleans(), seed=st.integers(0, 10_000))
def test_attention_matches_torch_sdpa(batch, heads, L, S, d_k, d_v, masked, seed):
    g = torch.Generator().manual_seed(seed)
    Q = torch.randn(batch, heads, L, d_k, generator=g)
    K = torch.randn(batch, heads, S, d_k, generator=g)
    V = torch.randn(batch, heads, S, d_v, generator=g)
    mask = None
    if masked:  # random mask with at least one allowed key per query (else torch gives NaN)
        mask = torch.rand(batch, 1, L, S, generator=g) > 0.4
        mask[..., 0] = True
    out, weights = attention.scaled_dot_product_attention(Q, K, V, mask)
    ref = F.scaled_dot_product_attention(Q, K, V, attn_mask=mask)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)
    assert weights.shape == (batch, heads, L, S)
    torch.testing.assert_close(weights.sum(-1), torch.ones(batch, heads, L))
    if mask is not None:
        assert (weights[~mask.expand_as(weights)] == 0).all()


def test_attention_weights_match_explicit_formula():
    Q, K, V = torch.randn(5, 8), torch.randn(6, 8), torch.randn(6, 3)
    _, weights = attention.scaled_dot_product_attention(Q, K, V)
    torch.testing.assert_close(weights, torch.softmax(Q @ K.T / math.sqrt(8), -1))


def test_causal_attention_matches_torch_is_causal():
    Q, K, V = (torch.randn(2, 3, 9, 4) for _ in range(3))
    out, _ = attention.scaled_dot_product_attention(Q, K, V, masks.causal_mask(9))
    torch.testing.assert_close(out, F.scaled_dot_product_attention(Q, K, V, is_causal=True),
                               atol=1e-6, rtol=1e-5)


def test_attention_does_not_modify_inputs():
    Q, K, V = torch.randn(2, 4, 8), torch.randn(2, 4, 8), torch.randn(2, 4, 8)
    copies = [t.clone() for t in (Q, K, V)]
    attention.scaled_dot_product_attention(Q, K, V, masks.causal_mask(4))
    assert all(torch.equal(a, b) for a, b in zip((Q, K, V), copies, strict=True))


def test_fully_masked_row_is_uniform_with_the_seed_fill():
    Q = K = V = torch.randn(1, 3, 4)
    mask = torch.ones(1, 3, 3, dtype=torch.bool)
    mask[0, 0] = False
    _, weights = attention.scaled_dot_product_attention(Q, K, V, mask)
    torch.testing.assert_close(weights[0, 0], torch.full((3,), 1 / 3))


@pytest.mark.parametrize("bad, message", [
    (lambda: attention.scaled_dot_product_attention(torch.randn(3, 4), torch.randn(3, 5),
                                                    torch.randn(3, 2)), "last dimension"),
    (lambda: attention.scaled_dot_product_attention(torch.randn(3, 4), torch.randn(3, 4),
                                                    torch.randn(2, 2)), "same number"),
    (lambda: attention.scaled_dot_product_attention([1.0], torch.randn(3, 4),
                                                    torch.randn(3, 4)), "torch.Tensor"),
    (lambda: attention.scaled_dot_product_attention(
        torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4),
        masks.generate_square_subsequent_mask(3)), "additive"),
    (lambda: attention.scaled_dot_product_attention(
        torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4),
        torch.ones(5, 5)), "broadcast"),
])
def test_bad_input_gets_a_clear_error(bad, message):
    with pytest.raises((TypeError, ValueError), match=message):
        bad()


@pytest.mark.parametrize("n", [1, 2, 5, 17])
def test_causal_mask_matches_torch(n):
    expected = ~torch.isinf(torch.nn.Transformer.generate_square_subsequent_mask(n))
    assert torch.equal(masks.causal_mask(n), expected)
    additive = masks.generate_square_subsequent_mask(n, fill_value=float("-inf"))
    torch.testing.assert_close(additive, torch.nn.Transformer.generate_square_subsequent_mask(n))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "4"])
def test_causal_mask_rejects_bad_lengths(bad):
    with pytest.raises(ValueError, match="seq_len"):
        masks.causal_mask(bad)


def test_padding_masks_agree_and_block_padding_keys():
    am = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
    pm = masks.padding_mask(am)
    assert pm.shape == (2, 1, 4)
    assert torch.equal(pm, masks.padding_mask_from_lengths([3, 1], 4))
    Q = K = V = torch.randn(2, 4, 8)
    _, w = attention.scaled_dot_product_attention(Q, K, V, pm)
    assert (w[0, :, 3] == 0).all() and (w[1, :, 1:] == 0).all()


def test_additive_and_boolean_masks_give_the_same_attention():
    Q, K, V = (torch.randn(2, 6, 8) for _ in range(3))
    mask = masks.combine_masks(masks.causal_mask(6),
                               masks.padding_mask_from_lengths([6, 4], 6))
    additive = masks.bool_to_additive(mask)
    assert torch.equal(masks.additive_to_bool(additive), mask)
    ours, _ = attention.scaled_dot_product_attention(Q, K, V, mask)
    theirs = F.scaled_dot_product_attention(Q, K, V, attn_mask=additive)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)


def test_combine_masks_is_logical_and():
    a = torch.tensor([[1, 0], [1, 1]])
    b = torch.tensor([[1, 1], [0, 1]], dtype=torch.bool)
    assert torch.equal(masks.combine_masks(a, None, b), torch.tensor([[True, False],
                                                                       [False, True]]))
    assert masks.combine_masks(None, None) is None
