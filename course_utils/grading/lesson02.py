"""Lesson 02 exercises: split and merge heads, the multi-head forward pass, cross-attention with
a source padding mask, the decoder layer, and the sequence-to-sequence greedy decoding loop."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from course_utils import attention, masks, transformer
from course_utils.grading.core import Case, Exercise, register

# --------------------------------------------------------------------------- 02.1 split heads


def _split_cases(rng: torch.Generator):
    def r(*shape, dtype=torch.float32):
        return torch.randn(*shape, generator=rng, dtype=dtype)

    yield Case((torch.arange(24.0).reshape(1, 3, 8), 2),
               label="1 sentence, 3 tokens, d_model=8, 2 heads",
               catches="a single view to the final shape (right shape, tokens mixed)")
    yield Case((r(2, 5, 12), 3), label="batch of 2, 5 tokens, d_model=12, 3 heads",
               catches="the head axis left after the sequence axis")
    yield Case((r(2, 4, 16), 4), label="4 tokens and 4 heads of d_k=4 (same sizes)",
               catches="shape-only checks: seq, heads and d_k all equal, so only the content "
                       "tells a wrong transpose or interleaved features apart")
    yield Case((r(3, 1, 6), 1), label="one head keeps all of d_model, a one-token sentence",
               catches="sizes hard-coded for several heads or tokens")
    yield Case((r(1, 7, 6), 6), label="d_k = 1 (as many heads as features)",
               catches="num_heads and d_k swapped in the view")
    yield Case((r(3, 33, 96) * 1e4, 12), label="3 x 33 tokens, d_model=96, 12 heads, values 1e4",
               catches="sizes beyond the small ones; a precomputed index table")
    yield Case((r(2, 6, 10, dtype=torch.float64), 5), label="float64 input, d_k=2",
               catches="a cast to float32")
    for n in range(3):
        yield Case((r(2, 3 + n, 8 * (n + 1)), 2 * (n + 1)), label=f"random, {2 * (n + 1)} heads",
                   catches="random content")


def _split_no_transpose(x, num_heads):
    b, s, d = x.shape
    return x.reshape(b, num_heads, s, d // num_heads)


def _split_forgot_to_move_heads(x, num_heads):
    b, s, d = x.shape
    return x.view(b, s, num_heads, d // num_heads)


def _split_interleaved(x, num_heads):
    b, s, d = x.shape
    return x.view(b, s, d // num_heads, num_heads).permute(0, 3, 1, 2)


def _split_heads_last(x, num_heads):
    b, s, d = x.shape
    return x.view(b, s, num_heads, d // num_heads).transpose(1, 3)


def _split_axes(got, case: Case):
    x, num_heads = case.args
    b, s, d = x.shape
    expected = (b, num_heads, s, d // num_heads)
    if (isinstance(got, torch.Tensor) and tuple(got.shape) != expected
            and sorted(got.shape) == sorted(expected)):
        return (f"The axes are in the wrong order: you return {tuple(got.shape)}, the heads "
                f"are (batch, num_heads, seq, d_k) = {expected}. View as (batch, seq, "
                "num_heads, d_k), then transpose(1, 2).")
    return None


register(Exercise(
    id="02.1", title="split d_model into heads", reference=attention.split_heads,
    cases=_split_cases, properties=[_split_axes],
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
        (_split_heads_last, "The axes are in the wrong order: the result is (batch, num_heads, "
                            "seq, d_k), so transpose(1, 2) (swap seq and heads), not a permute "
                            "that moves d_k."),
    ],
))

# --------------------------------------------------------------------------- 02.2 merge heads


def _merge_cases(rng: torch.Generator):
    def r(*shape, dtype=torch.float32):
        return torch.randn(*shape, generator=rng, dtype=dtype)

    yield Case((torch.arange(24.0).reshape(1, 2, 3, 4),), label="1 sentence, 2 heads, 3 tokens",
               catches="a reshape without the transpose (tokens mixed)")
    yield Case((r(2, 4, 5, 3),), label="batch of 2, 4 heads, 5 tokens, d_k=3",
               catches="heads interleaved feature by feature; heads summed or averaged")
    yield Case((r(2, 3, 3, 3),), label="3 heads, 3 tokens, d_k=3 (same sizes)",
               catches="shape-only checks: only the content tells the axes apart")
    yield Case((r(1, 1, 4, 8),), label="a single head",
               catches="sum or mean over the heads (identical with one head: other cases catch "
                       "it)")
    yield Case((attention.split_heads(r(2, 6, 12), 4),),
               label="the (non-contiguous) output of split_heads",
               catches=".view after .transpose (fails on a non-contiguous tensor)")
    yield Case((r(3, 12, 40, 8) * 1e4,), label="3 x 40 tokens, 12 heads of 8, values 1e4",
               catches="sizes beyond the small ones")
    yield Case((r(2, 2, 1, 5, dtype=torch.float64),), label="float64, a one-token sentence",
               catches="a cast to float32; a squeeze that drops the sequence axis")
    for n in range(3):
        yield Case((r(2, 2 + n, 4, 2 + n),), label="random", catches="random content")


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


def _merge_no_reshape(x):
    return x.transpose(1, 2)


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
        (_merge_no_reshape, "After transpose(1, 2) the heads still have their own axis: "
                            "reshape to (batch, seq, num_heads * d_k) to concatenate them."),
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

    def lengths(ls, n):
        return masks.padding_mask_from_lengths(ls, n)

    x = r(2, 5, 8)
    yield Case((x, x, x, _params(rng, 8), 2), label="self-attention, 2 heads, no mask",
               catches="W_o forgotten; one projection for Q, K and V; averaged head maps")
    x = r(2, 6, 12)
    yield Case((x, x, x, _params(rng, 12), 3), {"mask": masks.causal_mask(6)},
               label="self-attention, 3 heads, causal mask (6, 6)",
               catches="the mask ignored; scores scaled by sqrt(d_model)")
    yield Case((r(2, 3, 16), r(2, 5, 16), r(2, 5, 16), _params(rng, 16), 4),
               label="cross-attention: 3 queries, 5 keys",
               catches="L and S confused (queries and keys of different lengths)")
    x = r(2, 4, 8)
    yield Case((x, x, x, _params(rng, 8), 2),
               {"mask": masks.padding_mask(torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]]))},
               label="padding mask (batch, 1, keys), batch = heads = 2",
               catches="a 3-D mask without unsqueeze(1): with batch == heads it broadcasts "
                       "silently onto the heads")
    x = r(1, 4, 6)
    yield Case((x, x, x, _params(rng, 6), 1), label="a single head",
               catches="sizes hard-coded for several heads")
    x = r(2, 4, 8)
    full = torch.tensor([[[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]],
                         [[1, 1, 1, 1], [0, 0, 0, 0], [0, 1, 0, 0], [1, 1, 1, 0]]])
    yield Case((x, x, x, _params(rng, 8), 2), {"mask": full},
               label="(batch, L, S) mask with fully masked query rows",
               catches="-inf fill or mask-after-softmax (NaN on a fully masked row, where "
                       "lesson 01's -1e9 gives a uniform row)")
    x = r(1, 40, 16)
    yield Case((x, x, x, _params(rng, 16), 4), {"mask": masks.causal_mask(40).long()},
               label="40 tokens, causal 0/1 integer mask",
               catches="masks larger than 16 x 16; `mask == False` tests on integer masks")
    q, kv = r(3, 7, 24) * 30, r(3, 11, 24) * 30
    kv[1, 6:] = 1e4  # padded keys hold garbage
    pad = lengths([11, 6, 1], 11).float()
    yield Case((q, kv, kv, _params(rng, 24), 6), {"mask": pad},
               label="large inputs (x30), float 0/1 mask, padding holding 1e4, one real key",
               catches="padding that leaks; a softmax that overflows on saturated scores")
    x = r(2, 3, 8)
    yield Case((x, x, x, _params(rng, 8), 4),
               {"mask": masks.causal_mask(3)[None, None].expand(2, 4, 3, 3).clone()},
               label="4-D mask (batch, heads, L, S)",
               catches="an unsqueeze applied to a mask that already has the head axis")
    for n in range(3):
        L = 3 + n
        x = r(2, L, 8)
        yield Case((x, x, x, _params(rng, 8), 2),
                   {"mask": masks.combine_masks(masks.causal_mask(L), lengths([L, L - 1], L))},
                   label=f"random, causal + padding, length {L}", catches="random content")


def _mha(Q, K, V, p, num_heads, mask=None, *, split=attention.split_heads, scale="d_k",
         out_proj=True, same_proj=False, average=False, use_mask=True, fill=-1e9,
         after_softmax=False):
    q = F.linear(Q, p["W_q"], p["b_q"])
    k = F.linear(K, p["W_q" if same_proj else "W_k"], p["b_q" if same_proj else "b_k"])
    v = F.linear(V, p["W_q" if same_proj else "W_v"], p["b_q" if same_proj else "b_v"])
    d_model = q.shape[-1]
    q, k, v = split(q, num_heads), split(k, num_heads), split(v, num_heads)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1] if scale == "d_k" else d_model)
    m = None
    if mask is not None and use_mask:
        m = mask.unsqueeze(1) if mask.dim() == 3 else mask
        if not after_softmax:
            scores = scores.masked_fill(m == 0, fill)
    weights = scores.softmax(-1)
    if m is not None and after_softmax:
        weights = weights * (m != 0)
        weights = weights / weights.sum(-1, keepdim=True)
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


def _mha_fill_inf(Q, K, V, p, num_heads, mask=None):
    return _mha(Q, K, V, p, num_heads, mask, fill=float("-inf"))


def _mha_mask_after_softmax(Q, K, V, p, num_heads, mask=None):
    return _mha(Q, K, V, p, num_heads, mask, after_softmax=True)


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
        (_mha_fill_inf, "Blocked scores filled with -inf give NaN on a query whose every key is "
                        "blocked: use lesson 01's finite -1e9 (scaled_dot_product_attention "
                        "does)."),
        (_mha_mask_after_softmax, "The mask must act on the scores before the softmax (fill "
                                  "with -1e9); zeroing weights afterwards and renormalising "
                                  "divides by 0 on a fully masked row."),
    ],
))

# --------------------------------------------------------------------------- 02.4 cross-attention


def _src_mask(lengths: list[int], S: int, dtype=torch.long) -> torch.Tensor:
    return (torch.arange(S)[None, :] < torch.tensor(lengths)[:, None]).to(dtype)


def _cross_cases(rng: torch.Generator):
    def r(*shape):
        return torch.randn(*shape, generator=rng)

    yield Case((r(2, 4, 8), r(2, 4, 8), _params(rng, 8), 2, _src_mask([4, 2], 4)),
               label="target and source of the same length (4)",
               catches="keys or values from the decoder, the mask on the query axis (shapes "
                       "alone can't tell)")
    yield Case((r(2, 3, 8), r(2, 5, 8), _params(rng, 8), 2, _src_mask([5, 3], 5)),
               label="3 target tokens, 5 source tokens, the 2nd source padded",
               catches="keys from the decoder; the source mask ignored; a causal mask")
    yield Case((r(3, 3, 12), r(3, 6, 12), _params(rng, 12), 3, _src_mask([6, 1, 4], 6)),
               label="batch = target length = 3, a one-token source",
               catches="the (batch, S) mask passed as 2-D (read as (queries, keys)); the mask "
                       "inverted")
    yield Case((r(1, 1, 16), r(1, 7, 16), _params(rng, 16), 4, None),
               label="no mask, one target token (the first decoding step)",
               catches="code that breaks on src_attention_mask=None")
    memory = r(2, 6, 8) * 10
    memory[0, 4:] = 1e4  # the padding holds garbage
    yield Case((r(2, 5, 8) * 10, memory, _params(rng, 8), 4, _src_mask([4, 6], 6, torch.bool)),
               label="boolean mask, inputs x10, padded source positions holding 1e4",
               catches="padding that leaks into the output; `mask == 0` vs bool masks")
    yield Case((r(3, 9, 24), r(3, 40, 24), _params(rng, 24), 6,
                _src_mask([40, 17, 1], 40).float()),
               label="40 source tokens, 9 target tokens, float 0/1 mask",
               catches="a causal mask on cross-attention (blocks later source words); sizes "
                       "beyond the small ones")
    for n in range(2):
        S = 4 + 2 * n
        yield Case((r(2, 3 + n, 8), r(2, S, 8), _params(rng, 8), 2, _src_mask([S, S - 2], S)),
                   label=f"random, source length {S}", catches="random content")


def _ca_keys_from_decoder(x, memory, p, num_heads, src_attention_mask=None):
    return attention.multi_head_attention(x, x, x, p, num_heads)


def _ca_no_mask(x, memory, p, num_heads, src_attention_mask=None):
    return attention.multi_head_attention(x, memory, memory, p, num_heads)


def _ca_mask_inverted(x, memory, p, num_heads, src_attention_mask=None):
    mask = None if src_attention_mask is None else masks.padding_mask(
        (src_attention_mask == 0).long())
    return attention.multi_head_attention(x, memory, memory, p, num_heads, mask)


def _ca_causal(x, memory, p, num_heads, src_attention_mask=None):
    T, S = x.shape[1], memory.shape[1]
    mask = torch.ones(T, S, dtype=torch.bool).tril()
    if src_attention_mask is not None:
        mask = masks.combine_masks(mask, masks.padding_mask(src_attention_mask))
    return attention.multi_head_attention(x, memory, memory, p, num_heads, mask)


def _ca_queries_from_encoder(x, memory, p, num_heads, src_attention_mask=None):
    return attention.multi_head_attention(memory, x, x, p, num_heads)


def _cross_properties(got, case: Case):
    x, memory, _, _, m = case.args
    if not (isinstance(got, tuple | list) and len(got) == 2
            and all(isinstance(g, torch.Tensor) for g in got)):
        return None
    out, w = got
    T, S = x.shape[1], memory.shape[1]
    if out.dim() == 3 and out.shape[1] != T:
        return (f"The output has {out.shape[1]} positions but the target has {T}: the queries "
                "come from the decoder (x), the keys and values from the encoder (memory).")
    if w.dim() != 4 or w.shape[-2:] != (T, S):
        return (f"The weights should be (batch, heads, T={T}, S={S}): one row per target token, "
                "one column per source token. Keys and values come from memory, queries from x.")
    if m is not None:
        padded = (torch.as_tensor(m) == 0)[:, None, None, :].expand_as(w)
        if padded.any() and bool((w[padded].abs() > 1e-6).any()):
            return ("Padded source positions get attention: block every key where "
                    "src_attention_mask is 0, for every query of its own sentence, with a key "
                    "mask of shape (batch, 1, S) (masks.padding_mask(src_attention_mask)).")
        real = ~padded
        if bool((w[real] == 0).any()):
            return ("Some real source tokens get exactly zero attention: cross-attention has no "
                    "causal mask (the whole source is known), and the mask blocks only padding.")
    return None


register(Exercise(
    id="02.4", title="cross-attention with a source padding mask",
    reference=transformer.cross_attention,
    cases=_cross_cases,
    hint="Queries from the decoder, keys and values from the encoder: multi_head_attention(x, "
         "memory, memory, params, num_heads, mask) with mask = masks.padding_mask("
         "src_attention_mask) (shape (batch, 1, S)), or None when there is no mask.",
    properties=[_cross_properties],
    mistakes=[
        (_ca_keys_from_decoder, "Your keys and values come from the decoder: that is "
                                "self-attention. In cross-attention K and V are the encoder's "
                                "output, memory."),
        (_ca_queries_from_encoder, "Queries and keys are swapped: the queries come from the "
                                   "decoder (x), the keys and values from memory."),
        (_ca_no_mask, "The source padding mask was ignored: padded source words get attention. "
                      "Pass masks.padding_mask(src_attention_mask)."),
        (_ca_mask_inverted, "The mask is inverted: 1 in src_attention_mask marks a real source "
                            "token, which may be attended."),
        (_ca_causal, "Cross-attention has no causal mask: every target position may look at the "
                     "whole source sentence. Only the padding is blocked."),
    ],
))

# --------------------------------------------------------------------------- 02.5 decoder layer


def _layer_params(rng: torch.Generator, d: int, ff: int) -> dict:
    def lin(n_out, n_in):
        return (torch.randn(n_out, n_in, generator=rng) / math.sqrt(n_in),
                torch.randn(n_out, generator=rng) * 0.1)

    w1, b1 = lin(ff, d)
    w2, b2 = lin(d, ff)
    out = {"self_attn": _params(rng, d), "cross_attn": _params(rng, d),
           "ff": {"linear1.weight": w1, "linear1.bias": b1,
                  "linear2.weight": w2, "linear2.bias": b2}}
    for i in (1, 2, 3):  # norms that are not the identity, so each one's place matters
        out[f"norm{i}"] = {"weight": 1 + 0.5 * torch.randn(d, generator=rng),
                           "bias": 0.5 * torch.randn(d, generator=rng)}
    return out


def _decoder_cases(rng: torch.Generator):
    def r(*shape):
        return torch.randn(*shape, generator=rng)

    yield Case((r(2, 3, 8), r(2, 5, 8), _layer_params(rng, 8, 16), 2, _src_mask([5, 2], 5)),
               label="3 target tokens, 5 source tokens, padding",
               catches="sub-layers in the wrong order; pre-norm instead of post-norm; a norm "
                       "or a residual missing")
    yield Case((r(2, 4, 8), r(2, 4, 8), _layer_params(rng, 8, 12), 2, _src_mask([4, 3], 4)),
               label="target and source of the same length",
               catches="keys from the decoder in cross-attention (shapes alone can't tell)")
    yield Case((r(1, 1, 12), r(1, 6, 12), _layer_params(rng, 12, 20), 3, None),
               label="one target token, no mask", catches="code that breaks on a None mask")
    yield Case((r(2, 6, 12), r(2, 2, 12), _layer_params(rng, 12, 7), 3, _src_mask([2, 1], 2)),
               label="6 target tokens over a 2-token source, dim_ff=7",
               catches="the causal mask missing in self-attention (later words leak)")
    yield Case((r(3, 10, 16) * 30, r(3, 17, 16), _layer_params(rng, 16, 24), 4,
                _src_mask([17, 9, 1], 17, torch.bool)),
               label="inputs x30, 10 x 17 tokens, boolean mask, a one-token source",
               catches="norm before vs after the residual mixed up (large inputs make every "
                       "norm count)")
    for n in range(2):
        yield Case((r(2, 3 + n, 8), r(2, 4, 8), _layer_params(rng, 8, 16), 2,
                    _src_mask([4, 2 + n], 4)), label="random", catches="random content")


def _dl(x, memory, p, num_heads, m=None, *, order=("self", "cross", "ff"), causal=True,
        cross_keys="memory", norm="post", src_mask=True, act=F.relu, norms=(1, 2, 3)):
    T = x.shape[1]
    key_mask = masks.padding_mask(m) if (m is not None and src_mask) else None

    def self_attn(h):
        mask = masks.causal_mask(T) if causal else None
        return attention.multi_head_attention(h, h, h, p["self_attn"], num_heads, mask)[0]

    def cross(h):
        kv = memory if cross_keys == "memory" else h
        return attention.multi_head_attention(h, kv, kv, p["cross_attn"], num_heads,
                                              key_mask if cross_keys == "memory" else None)[0]

    def ff(h):
        q = p["ff"]
        return F.linear(act(F.linear(h, q["linear1.weight"], q["linear1.bias"])),
                        q["linear2.weight"], q["linear2.bias"])

    fns = {"self": self_attn, "cross": cross, "ff": ff}
    for name, i in zip(order, norms, strict=True):
        n = p[f"norm{i}"]

        def ln(h, n=n):
            return F.layer_norm(h, h.shape[-1:], n["weight"], n["bias"], 1e-5)

        if norm == "post":
            x = ln(x + fns[name](x))
        elif norm == "pre":
            x = x + fns[name](ln(x))
        elif norm == "no residual":
            x = ln(fns[name](x))
        else:  # "residual after the norm"
            x = x + ln(fns[name](x))
    return x


def _dl_no_causal(x, memory, p, num_heads, m=None):
    return _dl(x, memory, p, num_heads, m, causal=False)


def _dl_cross_first(x, memory, p, num_heads, m=None):
    return _dl(x, memory, p, num_heads, m, order=("cross", "self", "ff"), norms=(2, 1, 3))


def _dl_cross_first_norms_in_place(x, memory, p, num_heads, m=None):
    return _dl(x, memory, p, num_heads, m, order=("cross", "self", "ff"))


def _dl_pre_norm(x, memory, p, num_heads, m=None):
    return _dl(x, memory, p, num_heads, m, norm="pre")


def _dl_no_residual(x, memory, p, num_heads, m=None):
    return _dl(x, memory, p, num_heads, m, norm="no residual")


def _dl_residual_after_norm(x, memory, p, num_heads, m=None):
    return _dl(x, memory, p, num_heads, m, norm="residual after norm")


def _dl_keys_from_decoder(x, memory, p, num_heads, m=None):
    return _dl(x, memory, p, num_heads, m, cross_keys="decoder")


def _dl_no_src_mask(x, memory, p, num_heads, m=None):
    return _dl(x, memory, p, num_heads, m, src_mask=False)


def _dl_gelu(x, memory, p, num_heads, m=None):
    return _dl(x, memory, p, num_heads, m, act=F.gelu)


def _dl_one_norm(x, memory, p, num_heads, m=None):
    return _dl(x, memory, p, num_heads, m, norms=(1, 1, 1))


def decoder_layer(x, memory, params, num_heads, src_attention_mask=None):
    """The post-norm decoder layer written out (what ``solution("02.5")`` shows); the tests
    prove it equals :func:`course_utils.transformer.decoder_layer` and so ``nn.Transformer``."""
    T = x.shape[1]
    sa, _ = attention.multi_head_attention(x, x, x, params["self_attn"], num_heads,
                                           masks.causal_mask(T))
    x = transformer.layer_norm(x + sa, params["norm1"])
    ca, _ = transformer.cross_attention(x, memory, params["cross_attn"], num_heads,
                                        src_attention_mask)
    x = transformer.layer_norm(x + ca, params["norm2"])
    return transformer.layer_norm(x + transformer.feed_forward(x, params["ff"]), params["norm3"])


register(Exercise(
    id="02.5", title="the decoder layer's forward pass",
    reference=decoder_layer,
    cases=_decoder_cases,
    hint="Post-norm, three sub-layers in this order: x = norm(x, p['norm1']) of x + causal "
         "self-attention of x; then x = norm of x + cross_attention(x, memory, "
         "p['cross_attn'], num_heads, src_attention_mask)[0] with norm2; then x = norm of x + "
         "feed_forward(x, p['ff']) with norm3.",
    mistakes=[
        (_dl_no_causal, "Self-attention in the decoder is causal: without "
                        "masks.causal_mask(T) each target word sees the words after it."),
        (_dl_cross_first, "The sub-layers are in the wrong order: causal self-attention first "
                          "(norm1), then cross-attention (norm2), then the MLP (norm3)."),
        (_dl_cross_first_norms_in_place, "The sub-layers are in the wrong order: causal "
                                         "self-attention first (norm1), then cross-attention "
                                         "(norm2), then the MLP (norm3)."),
        (_dl_pre_norm, "That is pre-norm (x + sublayer(norm(x))). This layer is post-norm, as "
                       "in the paper and nn.Transformer's default: x = norm(x + sublayer(x))."),
        (_dl_no_residual, "The residual connection is missing: add the sub-layer's input back, "
                          "x = norm(x + sublayer(x))."),
        (_dl_residual_after_norm, "The residual is added after the norm (x + norm(sublayer(x))); "
                                  "post-norm normalises the sum: norm(x + sublayer(x))."),
        (_dl_keys_from_decoder, "In the cross-attention sub-layer the keys and values come from "
                                "memory (the encoder's output), not from the decoder."),
        (_dl_no_src_mask, "The source padding mask was not passed to the cross-attention: "
                          "padded source words get attention."),
        (_dl_gelu, "nn.Transformer's default MLP uses ReLU, not GELU: use feed_forward(x, "
                   "p['ff']) (activation 'relu')."),
        (_dl_one_norm, "Each sub-layer has its own LayerNorm: norm1, norm2, norm3, in order."),
    ],
))

# --------------------------------------------------------------------------- 02.6 greedy decoding


class ScriptedSeq2Seq:
    """A stand-in seq2seq model for grading: ``model(src, tgt) -> logits (batch, len, vocab)``.

    Its logits at each position depend on the whole target prefix up to there (so the start
    token, every appended token and the prefix that is fed all matter); the end token wins once
    the row has produced as many words as its source has real (non-padding) tokens, and
    ``<pad>``, ``<s>`` and ``</s>`` never win before that.
    """

    def __init__(self, vocab_size: int, bos_id: int, eos_id: int, pad_id: int,
                 seed: int = 0) -> None:
        self.vocab_size, self.bos_id, self.eos_id, self.pad_id = (vocab_size, bos_id, eos_id,
                                                                  pad_id)
        self.seed = seed

    def __eq__(self, other: object) -> bool:  # the grader's "inputs unchanged" test
        return isinstance(other, ScriptedSeq2Seq) and vars(self) == vars(other)

    __hash__ = None

    def __repr__(self) -> str:
        return (f"model(vocab_size={self.vocab_size}, bos={self.bos_id}, eos={self.eos_id}, "
                f"pad={self.pad_id})")

    def __call__(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        if not isinstance(tgt, torch.Tensor) or tgt.dim() != 2 or tgt.shape[1] == 0:
            raise ValueError("model(src, tgt) takes tgt as a (batch, len >= 1) tensor of ids, "
                             f"got {getattr(tgt, 'shape', type(tgt).__name__)}")
        if tgt.shape[0] != src.shape[0]:
            raise ValueError(f"src has {src.shape[0]} rows but tgt has {tgt.shape[0]}")
        out = torch.empty(tgt.shape[0], tgt.shape[1], self.vocab_size)
        for b in range(tgt.shape[0]):
            n_words = int((src[b] != self.pad_id).sum())
            for t in range(tgt.shape[1]):
                key = hash((self.seed, *tgt[b, : t + 1].tolist())) % (2**31)
                row = torch.rand(self.vocab_size, generator=torch.Generator().manual_seed(key))
                row[[self.bos_id, self.pad_id]] = -5.0
                row[self.eos_id] = 5.0 if t >= n_words else -5.0
                out[b, t] = row
        return out


def _src_ids(lengths: list[int], width: int, pad_id: int, vocab: int,
             rng: torch.Generator) -> torch.Tensor:
    ids = torch.randint(4, vocab, (len(lengths), width), generator=rng)
    for i, n in enumerate(lengths):
        ids[i, n:] = pad_id
    return ids


def _decode_cases(rng: torch.Generator):
    V = 12
    yield Case((ScriptedSeq2Seq(V, 1, 2, 0), _src_ids([3, 1, 4], 4, 0, V, rng), 1, 2, 0, 10),
               label="3 sentences that finish at different steps",
               catches="finished rows not padded; stopping when the first row ends; never "
                       "stopping early")
    yield Case((ScriptedSeq2Seq(V, 1, 2, 0), _src_ids([5, 4], 5, 0, V, rng), 1, 2, 0, 2),
               label="max_new_tokens=2 stops before any end token",
               catches="one step too many or too few; the start token returned")
    yield Case((ScriptedSeq2Seq(V, 0, 1, 3), _src_ids([2, 0, 3], 3, 3, V, rng), 0, 1, 3, 8),
               label="start token 0, pad 3, a sentence that ends at once",
               catches="`if bos_id:` dropping the falsy id 0; padding with 0 instead of pad_id")
    yield Case((ScriptedSeq2Seq(V, 1, 2, 0, seed=1), _src_ids([4], 4, 0, V, rng), 1, 2, 0, 1),
               label="one sentence, max_new_tokens=1", catches="batch-only code")
    yield Case((ScriptedSeq2Seq(V, 3, 2, 2), _src_ids([1, 3], 3, 2, V, rng), 3, 2, 2, 6),
               label="pad and end token the same id (2)", catches="end tests that look for pad")
    yield Case((ScriptedSeq2Seq(16, 1, 2, 0, seed=2),
                _src_ids([9, 2, 0, 15, 6, 12], 15, 0, 16, rng), 1, 2, 0, 12),
               label="6 sentences, one longer than max_new_tokens=12",
               catches="rows that never finish; logits read at the first position instead of "
                       "the last; only the last token fed to the model")


def _gd(model, src, bos_id, eos_id, pad_id, max_new_tokens, *, pad_finished=True, stop="all",
        start=None, keep_start=False, feed="all", position=-1, pad_value=None, steps_delta=0):
    batch = src.shape[0]
    tgt = torch.full((batch, 1), bos_id if start is None else start(bos_id, eos_id, pad_id))
    done = torch.zeros(batch, dtype=torch.bool)
    for _ in range(max_new_tokens + steps_delta):
        logits = model(src, tgt if feed == "all" else tgt[:, -1:])
        nxt = logits[:, position].argmax(-1)
        if pad_finished:
            nxt = torch.where(done, torch.full_like(nxt, pad_id if pad_value is None
                                                   else pad_value), nxt)
        tgt = torch.cat([tgt, nxt[:, None]], dim=1)
        done = done | (nxt == eos_id)
        if (stop == "all" and bool(done.all())) or (stop == "any" and bool(done.any())):
            break
    return tgt if keep_start else tgt[:, 1:]


def _gd_no_pad(*a):
    return _gd(*a, pad_finished=False)


def _gd_never_stops(*a):
    return _gd(*a, stop="never")


def _gd_stops_at_first(*a):
    return _gd(*a, stop="any")


def _gd_starts_with_pad(*a):
    return _gd(*a, start=lambda bos, eos, pad: pad)


def _gd_starts_with_eos(*a):
    return _gd(*a, start=lambda bos, eos, pad: eos)


def _gd_keeps_start(*a):
    return _gd(*a, keep_start=True)


def _gd_last_token_only(*a):
    return _gd(*a, feed="last")


def _gd_first_position(*a):
    return _gd(*a, position=0)


def _gd_pads_with_zero(*a):
    return _gd(*a, pad_value=0)


def _gd_one_step_short(*a):
    return _gd(*a, steps_delta=-1)


def _decode_properties(got, case: Case):
    model, src, bos_id, eos_id, pad_id, max_new = case.args
    if not isinstance(got, torch.Tensor) or got.dim() != 2 or got.shape[0] != src.shape[0]:
        return None
    if got.shape[1] > max_new:
        return (f"{got.shape[1]} tokens per row, but max_new_tokens={max_new}: stop after "
                "max_new_tokens steps, and don't return the start token.")
    for row in got.tolist():
        if eos_id in row:
            after = row[row.index(eos_id) + 1:]
            if any(t != pad_id for t in after):
                return ("A row goes on after its end token: once a row has produced eos_id it "
                        "is finished, and every later position holds pad_id.")
    return None


register(Exercise(
    id="02.6", title="the sequence-to-sequence greedy decoding loop",
    reference=transformer.greedy_decode,
    cases=_decode_cases, properties=[_decode_properties],
    hint="tgt = torch.full((batch, 1), bos_id); finished = all False. Repeat max_new_tokens "
         "times: next = model(src, tgt)[:, -1].argmax(-1); next = torch.where(finished, pad_id, "
         "next); append it; finished |= next == eos_id; break when finished.all(). Return "
         "tgt[:, 1:].",
    mistakes=[
        (_gd_no_pad, "Finished rows keep generating: once a row has produced eos_id, append "
                     "pad_id to it (torch.where(finished, pad_id, next))."),
        (_gd_never_stops, "The loop always runs max_new_tokens steps: stop as soon as every row "
                          "has produced eos_id (if finished.all(): break)."),
        (_gd_stops_at_first, "The loop stops when the first row finishes: stop only when every "
                             "row has (finished.all(), not .any())."),
        (_gd_starts_with_pad, "Every row must start from bos_id, the start token the decoder "
                              "was trained to begin with."),
        (_gd_starts_with_eos, "Every row must start from bos_id, the start token the decoder "
                              "was trained to begin with (not the end token)."),
        (_gd_keeps_start, "Return only the generated tokens: drop the start token (tgt[:, 1:])."),
        (_gd_last_token_only, "Without a cache the model needs the whole prefix: call "
                              "model(src, tgt), not only the last token."),
        (_gd_first_position, "The next token comes from the logits at the last position "
                             "(logits[:, -1]), not the first."),
        (_gd_pads_with_zero, "Finished rows are padded with pad_id (which need not be 0)."),
        (_gd_one_step_short, "One step short: the loop may take up to max_new_tokens steps."),
    ],
))
