"""Lesson 02 exercises: split heads, merge heads, the multi-head attention forward pass."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from course_utils import attention, masks
from course_utils.grading.core import Case, Exercise, register

# --------------------------------------------------------------------------- 02.1 split heads


def _split_cases(rng: torch.Generator):
    def r(*shape):
        return torch.randn(*shape, generator=rng)

    yield Case((torch.arange(24.0).reshape(1, 3, 8), 2),
               label="1 sentence, 3 tokens, d_model=8, 2 heads")
    yield Case((r(2, 5, 12), 3), label="batch of 2, 5 tokens, d_model=12, 3 heads")
    yield Case((r(2, 4, 16), 4), label="4 tokens and 4 heads (same size: shapes alone can't tell)")
    yield Case((r(3, 1, 6), 1), label="one head keeps all of d_model")
    yield Case((r(1, 7, 6), 6), label="d_k = 1 (as many heads as features)")
    for n in range(3):
        yield Case((r(2, 3 + n, 8 * (n + 1)), 2 * (n + 1)), label=f"random, {2 * (n + 1)} heads")


def _split_no_transpose(x, num_heads):
    b, s, d = x.shape
    return x.reshape(b, num_heads, s, d // num_heads)


def _split_forgot_to_move_heads(x, num_heads):
    b, s, d = x.shape
    return x.view(b, s, num_heads, d // num_heads)


def _split_interleaved(x, num_heads):
    b, s, d = x.shape
    return x.view(b, s, d // num_heads, num_heads).permute(0, 3, 1, 2)


register(Exercise(
    id="02.1", title="split d_model into heads", reference=attention.split_heads,
    cases=_split_cases,
    hint="x.view(batch, seq_len, num_heads, d_k) gives each head a slice of d_k features; then "
         ".transpose(1, 2) puts the head axis before the sequence: (batch, num_heads, seq, d_k).",
    mistakes=[
        (_split_no_transpose, "You viewed straight as (batch, num_heads, seq, d_k) without the "
                              "transpose: that cuts "
                              "the flattened (seq x d_model) numbers into blocks, mixing tokens "
                              "across heads. View as (batch, seq, num_heads, d_k) first, then "
                              "transpose(1, 2)."),
        (_split_forgot_to_move_heads, "The heads are split but the head axis is still after the "
                                      "sequence axis: transpose(1, 2) to get (batch, num_heads, "
                                      "seq, d_k)."),
        (_split_interleaved, "Each head got every num_heads-th feature instead of a contiguous "
                             "slice of d_k features: view the last axis as (num_heads, d_k), "
                             "in that order."),
    ],
))

# --------------------------------------------------------------------------- 02.2 merge heads


def _merge_cases(rng: torch.Generator):
    def r(*shape):
        return torch.randn(*shape, generator=rng)

    yield Case((torch.arange(24.0).reshape(1, 2, 3, 4),), label="1 sentence, 2 heads, 3 tokens")
    yield Case((r(2, 4, 5, 3),), label="batch of 2, 4 heads, 5 tokens, d_k=3")
    yield Case((r(2, 3, 3, 3),), label="3 heads, 3 tokens, d_k=3 (same sizes)")
    yield Case((r(1, 1, 4, 8),), label="a single head")
    yield Case((attention.split_heads(r(2, 6, 12), 4),),
               label="the (non-contiguous) output of split_heads")
    for n in range(3):
        yield Case((r(2, 2 + n, 4, 2 + n),), label="random")


def _merge_no_transpose(x):
    b, h, s, d_k = x.shape
    return x.reshape(b, s, h * d_k)


def _merge_interleaved(x):
    b, h, s, d_k = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, s, d_k * h)


def _merge_sum(x):
    return x.sum(dim=1)


def _merge_mean(x):
    return x.mean(dim=1)


register(Exercise(
    id="02.2", title="merge the heads back", reference=attention.merge_heads,
    cases=_merge_cases,
    hint="Undo split_heads in reverse order: x.transpose(1, 2) gives (batch, seq, num_heads, d_k); "
         "then .reshape(batch, seq, num_heads * d_k) (reshape, because the transpose is not "
         "contiguous and view would fail).",
    mistakes=[
        (_merge_no_transpose, "You reshaped (batch, heads, seq, d_k) straight to (batch, seq, "
                              "d_model): that merges in the wrong order and mixes tokens. "
                              "transpose(1, 2) first so each token's heads sit together."),
        (_merge_interleaved, "The heads' features are interleaved: concatenate head 0's d_k "
                             "features, then head 1's, ...: transpose(1, 2) then reshape."),
        (_merge_sum, "Merging concatenates the heads (d_model = num_heads * d_k); you summed "
                     "them."),
        (_merge_mean, "Merging concatenates the heads (d_model = num_heads * d_k); you averaged "
                      "them."),
    ],
))

# --------------------------------------------------------------------------- 02.3 MHA forward


def _params(rng: torch.Generator, d_model: int) -> dict[str, torch.Tensor]:
    scale = 1 / math.sqrt(d_model)
    out = {}
    for name in "qkvo":
        out[f"W_{name}"] = torch.randn(d_model, d_model, generator=rng) * scale
        out[f"b_{name}"] = torch.randn(d_model, generator=rng) * 0.1
    return out


def _mha_cases(rng: torch.Generator):
    def r(*shape):
        return torch.randn(*shape, generator=rng)

    x = r(2, 5, 8)
    yield Case((x, x, x, _params(rng, 8), 2), label="self-attention, 2 heads, no mask")
    x = r(2, 6, 12)
    yield Case((x, x, x, _params(rng, 12), 3), {"mask": masks.causal_mask(6)},
               label="self-attention, 3 heads, causal mask (6, 6)")
    yield Case((r(2, 3, 16), r(2, 5, 16), r(2, 5, 16), _params(rng, 16), 4),
               label="cross-attention: 3 queries, 5 keys")
    x = r(2, 4, 8)
    yield Case((x, x, x, _params(rng, 8), 4),
               {"mask": masks.padding_mask(torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]]))},
               label="padding mask (batch, 1, keys)")
    x = r(1, 4, 6)
    yield Case((x, x, x, _params(rng, 6), 1), label="a single head")
    for n in range(3):
        L = 3 + n
        x = r(2, L, 8)
        yield Case((x, x, x, _params(rng, 8), 2),
                   {"mask": masks.combine_masks(masks.causal_mask(L),
                                                masks.padding_mask_from_lengths([L, L - 1], L))},
                   label=f"random, causal + padding, length {L}")


def _mha(Q, K, V, p, num_heads, mask=None, *, split=attention.split_heads, scale="d_k",
         out_proj=True, same_proj=False, average=False, use_mask=True):
    q = F.linear(Q, p["W_q"], p["b_q"])
    k = F.linear(K, p["W_q" if same_proj else "W_k"], p["b_q" if same_proj else "b_k"])
    v = F.linear(V, p["W_q" if same_proj else "W_v"], p["b_q" if same_proj else "b_v"])
    d_model = q.shape[-1]
    q, k, v = split(q, num_heads), split(k, num_heads), split(v, num_heads)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1] if scale == "d_k" else d_model)
    if mask is not None and use_mask:
        m = mask.unsqueeze(1) if mask.dim() == 3 else mask
        scores = scores.masked_fill(m == 0, -1e9)
    weights = scores.softmax(-1)
    heads = attention.merge_heads(weights @ v)
    out = F.linear(heads, p["W_o"], p["b_o"]) if out_proj else heads
    return out, (weights.mean(1) if average else weights)


def _mha_no_w_o(Q, K, V, p, num_heads, mask=None):
    return _mha(Q, K, V, p, num_heads, mask, out_proj=False)


def _mha_view_no_transpose(Q, K, V, p, num_heads, mask=None):
    return _mha(Q, K, V, p, num_heads, mask, split=_split_no_transpose)


def _mha_scale_d_model(Q, K, V, p, num_heads, mask=None):
    return _mha(Q, K, V, p, num_heads, mask, scale="d_model")


def _mha_same_projection(Q, K, V, p, num_heads, mask=None):
    return _mha(Q, K, V, p, num_heads, mask, same_proj=True)


def _mha_averaged_weights(Q, K, V, p, num_heads, mask=None):
    return _mha(Q, K, V, p, num_heads, mask, average=True)


def _mha_ignores_mask(Q, K, V, p, num_heads, mask=None):
    return _mha(Q, K, V, p, num_heads, mask, use_mask=False)


def _weights_sum_to_one(got, case: Case):
    if isinstance(got, tuple | list) and len(got) == 2 and isinstance(got[1], torch.Tensor):
        sums = got[1].sum(-1)
        if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
            return ("Each head's attention weights for a query must sum to 1 over the keys: "
                    "softmax over the last axis.")
    return None


register(Exercise(
    id="02.3", title="the multi-head attention forward pass",
    reference=attention.multi_head_attention, cases=_mha_cases,
    hint="q = split_heads(F.linear(Q, params['W_q'], params['b_q']), num_heads), the same for k "
         "and v; (out, weights) = scaled_dot_product_attention(q, k, v, mask) with a 3-D mask "
         "unsqueezed at dim 1; return (F.linear(merge_heads(out), params['W_o'], params['b_o']), "
         "weights).",
    properties=[_weights_sum_to_one],
    mistakes=[
        (_mha_no_w_o, "You forgot W_o: after merging the heads, mix them with the output "
                      "projection F.linear(merged, params['W_o'], params['b_o'])."),
        (_mha_view_no_transpose, "The heads were split with a reshape to (batch, heads, seq, "
                                 "d_k) without the transpose, which mixes tokens: view as "
                                 "(batch, seq, heads, d_k), then transpose(1, 2)."),
        (_mha_scale_d_model, "Each head's scores are scaled by sqrt(d_k), the head size, not "
                             "sqrt(d_model)."),
        (_mha_same_projection, "Q, K and V each have their own projection: W_q for Q, W_k for "
                               "K, W_v for V."),
        (_mha_averaged_weights, "Return one attention map per head, shape (batch, num_heads, "
                                "queries, keys), not their average."),
        (_mha_ignores_mask, "The mask was ignored: pass it to the attention (a 3-D mask needs "
                            "mask.unsqueeze(1) to broadcast over the heads)."),
    ],
))
