"""course_utils.attention_bias against nn.MultiheadAttention's key_padding_mask + attn_mask."""

import numpy as np
import pytest
import torch

from course_utils.attention_bias import attention_bias


@pytest.mark.parametrize("causal", [True, False])
def test_bias_gives_multihead_attentions_padding_and_causal_masks(causal):
    torch.manual_seed(0)
    lengths, seq_len, d = [5, 3, 1], 5, 8
    mha = torch.nn.MultiheadAttention(d, 1, batch_first=True)
    x = torch.randn(3, seq_len, d)
    key_padding = torch.arange(seq_len)[None] >= torch.tensor(lengths)[:, None]
    future = torch.ones(seq_len, seq_len).triu(1).bool() if causal else None
    theirs, _ = mha(x, x, x, key_padding_mask=key_padding, attn_mask=future)
    bias = attention_bias(np.array(lengths), seq_len, causal=causal)
    ours, _ = mha(x, x, x, attn_mask=bias)  # (batch * heads, L, S) float mask, one head
    for b, n in enumerate(lengths):
        torch.testing.assert_close(ours[b, :n], theirs[b, :n])


def test_fully_padded_sequence_stays_finite():
    bias = attention_bias([0, 2], 3)
    assert bias.shape == (2, 3, 3) and bool((bias[0] == -1e9).all())
    assert bool(torch.isfinite((torch.randn(2, 3, 3) + bias).softmax(-1)).all())


def test_bad_lengths_are_refused_clearly():
    with pytest.raises(ValueError, match="lengths must be ints in"):
        attention_bias([4], 3)
