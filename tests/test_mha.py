"""MultiHeadAttention against torch.nn.MultiheadAttention with the same weights.

Our masks say 1/True = "may attend"; nn.MultiheadAttention's boolean ``attn_mask`` and
``key_padding_mask`` say True = "may NOT attend", so the reference gets the inverted masks.
"""

from __future__ import annotations

import pytest
import torch

from course_utils import masks
from course_utils.attention import (
    MultiHeadAttention,
    merge_heads,
    multi_head_attention,
    split_heads,
)


def _pair(d_model: int, num_heads: int, seed: int = 0, bias: bool = True):
    torch.manual_seed(seed)
    ours = MultiHeadAttention(d_model, num_heads, bias=bias).eval()
    ref = torch.nn.MultiheadAttention(d_model, num_heads, bias=bias, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.W_q.weight, ours.W_k.weight, ours.W_v.weight]))
        ref.out_proj.weight.copy_(ours.W_o.weight)
        if bias:
            ref.in_proj_bias.copy_(torch.cat([ours.W_q.bias, ours.W_k.bias, ours.W_v.bias]))
            ref.out_proj.bias.copy_(ours.W_o.bias)
    return ours, ref


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("d_model,num_heads,L,S", [(16, 4, 5, 5), (24, 3, 4, 7), (8, 1, 6, 6),
                                                   (32, 8, 3, 3)])
def test_matches_torch_without_mask(d_model, num_heads, L, S):
    ours, ref = _pair(d_model, num_heads, seed=d_model + L)
    q, k, v = torch.randn(2, L, d_model), torch.randn(2, S, d_model), torch.randn(2, S, d_model)
    out, weights = ours(q, k, v)
    ref_out, ref_w = ref(q, k, v, need_weights=True, average_attn_weights=False)
    assert weights.shape == (2, num_heads, L, S)
    _close(out, ref_out)
    _close(weights, ref_w)
    # head-averaged weights, nn.MultiheadAttention's default
    _, ref_avg = ref(q, k, v, need_weights=True)
    _close(weights.mean(1), ref_avg)


def test_matches_torch_with_causal_mask_self_attention():
    ours, ref = _pair(16, 4, seed=1)
    x = torch.randn(3, 6, 16)
    causal = masks.causal_mask(6)
    out, weights = ours(x, x, x, mask=causal)
    ref_out, ref_w = ref(x, x, x, attn_mask=~causal, average_attn_weights=False)
    _close(out, ref_out)
    _close(weights, ref_w)
    assert torch.all(weights[..., ~causal] == 0)


def test_matches_torch_with_padding_and_causal_masks():
    ours, ref = _pair(12, 3, seed=2)
    x = torch.randn(2, 5, 12)
    attention_mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]])
    pad = masks.padding_mask(attention_mask)  # (2, 1, 5)
    out, weights = ours(x, x, x, mask=pad)
    ref_out, ref_w = ref(x, x, x, key_padding_mask=attention_mask == 0,
                         average_attn_weights=False)
    _close(out, ref_out)
    _close(weights, ref_w)
    both = masks.combine_masks(masks.causal_mask(5), pad)  # (2, 5, 5)
    out, weights = ours(x, x, x, mask=both)
    ref_out, ref_w = ref(x, x, x, attn_mask=~masks.causal_mask(5),
                         key_padding_mask=attention_mask == 0, average_attn_weights=False)
    _close(out, ref_out)
    _close(weights, ref_w)


def test_matches_torch_with_per_head_mask_and_no_bias():
    ours, ref = _pair(16, 2, seed=3, bias=False)
    q, kv = torch.randn(2, 4, 16), torch.randn(2, 6, 16)
    per_head = torch.rand(2, 2, 4, 6) > 0.4
    per_head[..., 0] = True  # every query keeps at least one key
    out, weights = ours(q, kv, kv, mask=per_head)
    ref_out, ref_w = ref(q, kv, kv, attn_mask=~per_head.reshape(4, 4, 6),
                         average_attn_weights=False)
    _close(out, ref_out)
    _close(weights, ref_w)


def test_split_and_merge_are_inverse_and_slice_features_per_head():
    x = torch.arange(2 * 3 * 8, dtype=torch.float32).reshape(2, 3, 8)
    heads = split_heads(x, 4)
    assert heads.shape == (2, 4, 3, 2)
    # head h of token t holds features [2h, 2h+1] of that token
    assert torch.equal(heads[1, 2, 0], x[1, 0, 4:6])
    assert torch.equal(merge_heads(heads), x)


def test_functional_form_equals_the_module():
    mha = MultiHeadAttention(8, 2)
    x = torch.randn(1, 3, 8)
    a = mha(x, x, x)[0]
    b = multi_head_attention(x, x, x, mha.params(), 2)[0]
    assert torch.equal(a, b)


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="divisible"):
        split_heads(torch.randn(1, 2, 10), 3)
    with pytest.raises(ValueError, match="batch, seq_len, d_model"):
        split_heads(torch.randn(2, 10), 2)
    with pytest.raises(ValueError, match="d_model=8"):
        MultiHeadAttention(8, 2)(torch.randn(1, 3, 6), torch.randn(1, 3, 6), torch.randn(1, 3, 6))
    with pytest.raises(ValueError, match="missing"):
        multi_head_attention(torch.randn(1, 2, 4), torch.randn(1, 2, 4), torch.randn(1, 2, 4),
                             {"W_q": torch.eye(4)}, 2)
