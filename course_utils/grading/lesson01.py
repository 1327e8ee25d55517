"""Lesson 01 exercises: a stable softmax, scaled dot-product attention, the additive bias of a
padded (causal) batch."""

from __future__ import annotations

import math

import torch

from course_utils import attention, attention_bias, masks
from course_utils.grading.core import Case, Exercise, register

# --------------------------------------------------------------------------- 01.1 softmax


def _softmax_cases(rng: torch.Generator):
    yield Case((torch.tensor([[1000.0, 1000.0, 999.0]]),), label="huge logits: exp overflows",
               catches="no max shift (exp(1000) = inf, inf/inf = NaN); clamping the scores")
    yield Case((torch.randn(4, 4, generator=rng) * 3,), label="4x4 scores",
               catches="max without keepdim (broadcasts along the wrong axis)")
    yield Case((torch.randn(3, 5, generator=rng),), {"dim": 0}, label="normalise columns (dim=0)",
               catches="dim ignored, always the last axis; max and sum over different axes")
    yield Case((torch.tensor([-1000.0, -1001.0, -1002.0]),), label="very negative: exp underflows",
               catches="no max shift (every exp underflows to 0, 0/0 = NaN); 1-D input")
    yield Case((torch.tensor([[2.0]]),), label="a single score",
               catches="a one-element slice must be exactly 1")
    yield Case((torch.randn(2, 3, 4, generator=rng, dtype=torch.float64) * 20,),
               label="float64 batch", catches="casting to float32 (the result keeps x's dtype)")
    yield Case((torch.tensor([[0.0, 0.0, 0.0, 200.0], [-100.0, 0.0, 0.0, 100.0],
                              [10.0, -90.0, 0.0, 5.0]]),),
               label="rows spanning more than 88, where exp overflows in float32",
               catches="shifting by the minimum or the mean instead of the maximum")
    yield Case((torch.tensor([[-1e9, -1e9, -1e9, -1e9], [1.0, 2.0, 3.0, 4.0],
                              [-1e9, 0.0, -1e9, 1.0]]),),
               label="a fully masked row of -1e9 beside ordinary rows",
               catches="shifting by the global maximum x.max() (the -1e9 row becomes 0/0 = "
                       "NaN); it must come out uniform")
    masked = torch.randn(4, 2, 5, generator=rng) * 4
    masked[:, 1] = -1e9
    yield Case((masked,), {"dim": 0}, label="dim=0 with fully masked slices of -1e9",
               catches="global maximum; max over the last axis while summing over dim")
    yield Case((torch.tensor([[0.0, float("-inf"), 1.0], [float("-inf"), 2.0, 2.0]]),),
               label="-inf scores (masked) get weight 0",
               catches="shifting by the minimum or mean (-inf - -inf = NaN)")
    yield Case((torch.randn(2, 5, 3, generator=rng) * 5, 1),
               label="dim=1 of a 3-D tensor, passed positionally",
               catches="only dims 0 and -1 handled; dim not the second parameter")
    yield Case((torch.randn(1, 1000, generator=rng) * 5,), label="a long row of 1000 scores",
               catches="a fixed length or a Python loop over the scores")
    for _ in range(6):  # property-style: random shapes, axes and magnitudes from 0.01 to 3000
        ndim = int(torch.randint(1, 5, (1,), generator=rng))
        shape = torch.randint(1, 7, (ndim,), generator=rng).tolist()
        dim = int(torch.randint(-ndim, ndim, (1,), generator=rng))
        scale = 10 ** (torch.rand(1, generator=rng).item() * 5.5 - 2)
        yield Case((torch.randn(*shape, generator=rng) * scale,), {"dim": dim},
                   label=f"random shape {tuple(shape)}, dim={dim}, scale {scale:.3g}",
                   catches="any wrong axis, shift or normalisation")


def _softmax_no_shift(x, dim=-1):
    return x.exp() / x.exp().sum(dim=dim, keepdim=True)


def _softmax_fixed_dim(x, dim=-1):
    shifted = x - x.amax(dim=-1, keepdim=True)
    return shifted.exp() / shifted.exp().sum(dim=-1, keepdim=True)


def _softmax_global(x, dim=-1):
    shifted = x - x.max()
    return shifted.exp() / shifted.exp().sum()


def _softmax_global_max(x, dim=-1):
    shifted = x - x.max()
    return shifted.exp() / shifted.exp().sum(dim=dim, keepdim=True)


def _softmax_min_shift(x, dim=-1):
    shifted = x - x.amin(dim=dim, keepdim=True)
    return shifted.exp() / shifted.exp().sum(dim=dim, keepdim=True)


def _softmax_mean_shift(x, dim=-1):
    shifted = x - x.mean(dim=dim, keepdim=True)
    return shifted.exp() / shifted.exp().sum(dim=dim, keepdim=True)


def _softmax_not_nan(got, case: Case):
    if isinstance(got, torch.Tensor) and got.is_floating_point() and bool(got.isnan().any()):
        return ("Your softmax gives NaN here: some exp() overflowed to inf (inf/inf) or every "
                "exp() in a slice underflowed to 0 (0/0). Shift each slice by its own maximum, "
                "x.amax(dim=dim, keepdim=True): then the largest exponent is exactly 0.")
    return None


def _rows_sum_to_one(got, case: Case):
    dim = case.kwargs.get("dim", case.args[1] if len(case.args) > 1 else -1)
    if isinstance(got, torch.Tensor) and got.is_floating_point():
        sums = got.sum(dim=dim)
        if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
            return (f"Each slice along dim={dim} must sum to 1; yours sum to "
                    f"{[round(v, 4) for v in sums.flatten()[:4].tolist()]}... Normalise over "
                    "`dim`, the same axis you took the maximum over.")
    return None


register(Exercise(
    id="01.1", title="a numerically stable softmax", reference=attention.softmax,
    cases=_softmax_cases,
    hint="Subtract the maximum along `dim` (keepdim=True), exponentiate, then divide by the "
         "sum along the same `dim` (keepdim=True).",
    properties=[_softmax_not_nan, _rows_sum_to_one],
    mistakes=[
        (_softmax_fixed_dim, "Your softmax always normalises the last axis: use the `dim` "
                             "argument for both the max and the sum."),
        (_softmax_global, "You normalised over the whole tensor: each slice along `dim` must "
                          "sum to 1 on its own (sum with dim=dim, keepdim=True)."),
        (_softmax_global_max, "You subtracted the maximum of the whole tensor, x.max(): a slice "
                              "of very negative scores (a fully masked row of -1e9) then "
                              "underflows to 0/0 = NaN. Subtract each slice's own maximum, "
                              "x.amax(dim=dim, keepdim=True)."),
        (_softmax_min_shift, "You shifted by the minimum: when a slice spans more than ~88, "
                             "exp() of the largest score still overflows. Shift by the maximum "
                             "so every exponent is <= 0."),
        (_softmax_mean_shift, "You shifted by the mean: when a slice spans more than ~88, exp() "
                              "of the largest score still overflows (and a -inf score makes the "
                              "mean -inf). Shift by the maximum so every exponent is <= 0."),
        (_softmax_no_shift, "exp(1000) overflows to inf and inf/inf is NaN: subtract the "
                            "maximum along `dim` before calling exp()."),
    ],
))

# --------------------------------------------------------------------------- 01.2 attention


def _attention_cases(rng: torch.Generator):
    def r(*shape, dtype=torch.float32):
        return torch.randn(*shape, generator=rng, dtype=dtype)

    yield Case((r(4, 64), r(4, 64), r(4, 8)), label="4 tokens, d_k=64, d_v=8, no mask",
               catches="no scale, scale by d_k or by sqrt(d_v); softmax over the queries")
    yield Case((r(2, 5, 16), r(2, 5, 16), r(2, 5, 16)), {"mask": masks.causal_mask(5)},
               label="batch of 2, causal mask", catches="mask ignored or inverted")
    yield Case((r(3, 6), r(5, 6), r(5, 2)), label="3 queries, 5 keys (rectangular)",
               catches="assuming L == S; K not transposed")
    pad = masks.padding_mask(torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]]))
    yield Case((r(2, 4, 8), r(2, 4, 8), r(2, 4, 8)), {"mask": pad},
               label="padding mask (last keys are padding)",
               catches="a (batch, 1, S) key mask not broadcast over the queries")
    yield Case((r(2, 4, 5, 8), r(2, 4, 5, 8), r(2, 4, 5, 8)),
               {"mask": masks.causal_mask(5).int()}, label="4 heads, causal mask as 0/1 ints",
               catches="~mask on an int mask (bitwise not: ~1 = -2); masked_fill(mask, ...)")
    yield Case((r(1, 7, 32) * 3, r(1, 7, 32) * 3, r(1, 7, 4)), label="larger scores, d_k=32",
               catches="no scale (the softmax saturates)")
    yield Case((r(2, 6, 16) * 10, r(2, 6, 16) * 10, r(2, 6, 4)), {"mask": masks.causal_mask(6)},
               label="huge scores (above 88 after the scale)",
               catches="a softmax without the max shift (exp overflows to inf)")
    K = torch.stack([torch.full((16,), -20.0), torch.full((16,), 20.0)]).unsqueeze(0)
    yield Case((torch.ones(1, 2, 16), K, r(1, 2, 4)), {"mask": masks.causal_mask(2)},
               label="a blocked key scores far above the allowed one",
               catches="masking after the softmax (the allowed weight underflows to 0, "
                       "renormalising gives 0/0)")
    left = masks.combine_masks(masks.causal_mask(4),
                               masks.padding_mask(torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])))
    yield Case((r(2, 4, 8), r(2, 4, 8), r(2, 4, 8)), {"mask": left},
               label="left padding + causal: the first queries have no allowed key",
               catches="-inf fill or masking after the softmax (NaN on a fully masked row; "
                       "the -1e9 fill gives it equal weights)")
    blocked = torch.ones(3, 6, dtype=torch.bool)
    blocked[1] = False
    blocked[2, :4] = False
    yield Case((r(2, 3, 8), r(2, 6, 8), r(2, 6, 3)), {"mask": blocked},
               label="3 queries x 6 keys, query 1 fully masked",
               catches="-inf fill; renormalising after the softmax; mask not (L, S)")
    yield Case((r(1, 2, 3, 8, dtype=torch.float64), r(1, 2, 5, 8, dtype=torch.float64),
                r(1, 2, 5, 8, dtype=torch.float64)),
               {"mask": masks.padding_mask_from_lengths([3], 5).unsqueeze(1)},
               label="float64, 2 heads, a (batch, 1, 1, S) mask",
               catches="casting to float32; a mask broadcast over heads and queries")
    yield Case((r(3, 16), r(3, 16), r(3, 16)), {"mask": None}, label="mask=None given explicitly",
               catches="`if mask:` instead of `if mask is not None:`")
    for n in range(3):
        L = 3 + n
        yield Case((r(2, L, 12), r(2, L, 12), r(2, L, 6)),
                   {"mask": masks.combine_masks(masks.causal_mask(L),
                                                masks.padding_mask_from_lengths([L, L - 1], L))},
                   label=f"random, causal + padding, length {L}",
                   catches="mask ignored, inverted, or applied after the softmax")
    for _ in range(4):  # property-style: random sizes, magnitudes and masks (some rows empty)
        b, L, S = (int(v) for v in torch.randint(1, 9, (3,), generator=rng))
        d_k, d_v = (int(v) for v in torch.randint(1, 33, (2,), generator=rng))
        scale = 10 ** (torch.rand(1, generator=rng).item() * 2 - 1)
        mask = torch.rand(b, L, S, generator=rng) > 0.4
        yield Case((r(b, L, d_k) * scale, r(b, S, d_k) * scale, r(b, S, d_v)), {"mask": mask},
                   label=f"random {b} x {L} queries x {S} keys, d_k={d_k}, random mask",
                   catches="any wrong scale, axis or masking")


def _attn(Q, K, V, mask=None, *, scale=True, dim=-1, invert=False, fill=-1e9, after=None,
          naive=False):
    d_k = Q.size(-1)
    scores = Q @ K.transpose(-2, -1)
    if scale is True:
        scores = scores / math.sqrt(d_k)
    elif scale == "d_k":
        scores = scores / d_k
    elif scale == "d_v":
        scores = scores / math.sqrt(V.size(-1))
    if mask is not None and after is None:
        scores = scores.masked_fill((mask != 0) if invert else (mask == 0), fill)
    if naive:
        weights = scores.exp() / scores.exp().sum(dim=-1, keepdim=True)
    else:
        weights = torch.softmax(scores, dim=dim)
    if mask is not None and after is not None:
        weights = weights * (mask != 0)
        if after == "renormalise":
            weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights @ V, weights


def _attn_no_scale(Q, K, V, mask=None):
    return _attn(Q, K, V, mask, scale=False)


def _attn_scale_dk(Q, K, V, mask=None):
    return _attn(Q, K, V, mask, scale="d_k")


def _attn_scale_dv(Q, K, V, mask=None):
    return _attn(Q, K, V, mask, scale="d_v")


def _attn_wrong_axis(Q, K, V, mask=None):
    return _attn(Q, K, V, mask, dim=-2)


def _attn_inverted_mask(Q, K, V, mask=None):
    return _attn(Q, K, V, mask, invert=True)


def _attn_ignores_mask(Q, K, V, mask=None):
    return _attn(Q, K, V, None)


def _attn_neg_inf(Q, K, V, mask=None):
    return _attn(Q, K, V, mask, fill=float("-inf"))


def _attn_mask_after(Q, K, V, mask=None):
    return _attn(Q, K, V, mask, after="zero")


def _attn_mask_after_renormalised(Q, K, V, mask=None):
    return _attn(Q, K, V, mask, after="renormalise")


def _attn_naive_softmax(Q, K, V, mask=None):
    return _attn(Q, K, V, mask, naive=True)


def _weights(got):
    if isinstance(got, tuple | list) and len(got) == 2 and isinstance(got[1], torch.Tensor):
        return got[1]
    return None


def _fully_masked_rows_uniform(got, case: Case):
    weights, mask = _weights(got), case.kwargs.get("mask")
    if weights is None or mask is None:
        return None
    allowed = (mask != 0).expand_as(weights)
    empty = ~allowed.any(-1)
    if not bool(empty.any()):
        return None
    rows = weights[empty]
    if not torch.allclose(rows, torch.full_like(rows, 1 / weights.shape[-1]), atol=1e-4,
                          equal_nan=False):
        seen = "NaN" if bool(rows.isnan().any()) else f"{rows[0, :4].tolist()}..."
        return (f"A query whose keys are all blocked (its mask row is all 0) gets equal weights "
                f"1/{weights.shape[-1]} over all keys with the lesson's -1e9 fill; yours are "
                f"{seen}. Fill the blocked scores with -1e9 (not -inf) *before* the softmax, "
                "and don't renormalise afterwards.")
    return None


def _weights_are_distributions(got, case: Case):
    weights = _weights(got)
    if weights is not None:
        sums = weights.sum(-1)
        if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
            return ("Each query's attention weights must sum to 1 over the keys: apply the "
                    "softmax over the last axis (dim=-1), after the mask.")
    return None


def _masked_get_zero(got, case: Case):
    weights, mask = _weights(got), case.kwargs.get("mask")
    if weights is not None and mask is not None:
        blocked = (mask == 0).expand_as(weights)
        blocked = blocked & ~blocked.all(-1, keepdim=True)  # a fully masked row is uniform
        if bool((weights[blocked].abs() > 1e-6).any()):
            return ("Positions where mask == 0 must get zero weight: fill their scores with a "
                    "large negative number *before* the softmax.")
    return None


register(Exercise(
    id="01.2", title="scaled dot-product attention",
    reference=attention.scaled_dot_product_attention, cases=_attention_cases,
    hint="scores = Q @ K.transpose(-2, -1) / sqrt(d_k); where mask == 0 fill -1e9; softmax over "
         "the last axis; return (weights @ V, weights).",
    properties=[_fully_masked_rows_uniform, _weights_are_distributions, _masked_get_zero],
    mistakes=[
        (_attn_no_scale, "The scores were not divided by sqrt(d_k): without the scale, large "
                         "d_k makes the softmax saturate."),
        (_attn_scale_dk, "You divided by d_k; the scale is sqrt(d_k) (math.sqrt(Q.size(-1)))."),
        (_attn_scale_dv, "You scaled by the values' width: the scale is sqrt(d_k), the last "
                         "axis of Q and K (math.sqrt(Q.size(-1))), not of V."),
        (_attn_wrong_axis, "The softmax ran over the queries (dim=-2): each query's weights over "
                           "the keys must sum to 1, so use dim=-1."),
        (_attn_inverted_mask, "The mask is inverted: positions where mask == 0 are the blocked "
                              "ones (masked_fill(mask == 0, -1e9))."),
        (_attn_ignores_mask, "The mask was ignored: fill the scores where mask == 0 with -1e9 "
                             "before the softmax."),
        (_attn_neg_inf, "You filled the blocked scores with -inf: a query whose keys are all "
                        "blocked then gets exp(-inf) / 0 = NaN. Fill with -1e9, as the lesson "
                        "does: that row gets equal weights instead."),
        (_attn_mask_after, "The mask was applied to the weights after the softmax, so they no "
                           "longer sum to 1: fill the *scores* with -1e9 before the softmax."),
        (_attn_mask_after_renormalised, "You masked the weights after the softmax and "
                                        "renormalised: a query with no allowed key becomes "
                                        "0/0 = NaN. Fill the *scores* with -1e9 before the "
                                        "softmax instead."),
        (_attn_naive_softmax, "Your softmax overflows on large scores (exp(100) is inf in "
                              "float32): use torch.softmax, or shift by the maximum as in "
                              "exercise 01.1."),
    ],
))

# --------------------------------------------------------------------------- 01.3 attention bias


def _bias_cases(rng: torch.Generator):
    import numpy as np

    fixed = (
        (([3, 5], 5), {}, "2 sequences, one padded by 2, causal",
         "padding applied to the queries (rows) instead of the keys (columns); the triangle "
         "transposed; -inf or a positive fill; the boolean form returned"),
        (([3, 5], 5), {"causal": False}, "the same, not causal (BERT)",
         "causal flag ignored; a (batch, 1, seq) key mask not expanded over the queries"),
        (([0, 4], 4), {}, "a fully padded sequence (length 0)",
         "-inf fills: a row with every key blocked becomes NaN after the softmax"),
        (([1], 1), {}, "one sequence of one token", "empty or squeezed shapes"),
        ((torch.tensor([7, 2, 5]), 7), {}, "lengths as a tensor",
         "an off-by-one at the last real token (j <= length instead of j < length)"),
        ((np.array([4, 17]), 17), {}, "lengths as a numpy array, seq_len 17",
         "a precomputed 16 x 16 triangle; numpy lengths not converted"),
        (([100, 60, 1], 100), {"causal": True}, "seq_len 100, causal passed by keyword",
         "a fixed maximum length; the flag not named causal"),
        (([2, 0, 3], 3), {"causal": False}, "not causal with a fully padded sequence",
         "-inf fills (NaN rows); padding on the queries"),
    )
    for (lengths, seq_len), kw, label, catches in fixed:
        yield Case((lengths, seq_len), kw, label=label, catches=catches)
    for _ in range(3):  # random batches
        seq_len = int(torch.randint(2, 40, (1,), generator=rng))
        lengths = torch.randint(0, seq_len + 1, (int(torch.randint(1, 5, (1,),
                                                                   generator=rng)),),
                                generator=rng).tolist()
        causal = bool(torch.randint(0, 2, (1,), generator=rng))
        yield Case((lengths, seq_len), {"causal": causal},
                   label=f"lengths {lengths}, seq_len {seq_len}, causal={causal}",
                   catches="any of the above on random sizes")


def _compare_bias(got, expected, case: Case):
    if not isinstance(got, torch.Tensor):
        return f"the result should be a torch.Tensor, but it is a {type(got).__name__}."
    if isinstance(expected, torch.Tensor) and got.dtype == expected.dtype and torch.equal(
            got, expected):
        return None  # identical (how a known mistake's output is recognised, too)
    if tuple(got.shape) != tuple(expected.shape):
        return (f"the bias has shape {tuple(got.shape)}, expected {tuple(expected.shape)} = "
                "(batch, seq_len, seq_len): one row per query of every sequence (expand a "
                "(batch, 1, seq_len) key mask over the queries).")
    if not got.is_floating_point():
        return ("the result is a boolean/integer mask; this exercise wants the additive float "
                "form: 0.0 where allowed, -1e9 where blocked (e.g. torch.zeros(...).masked_fill"
                "(~allowed, -1e9)).")
    if bool(torch.isinf(got).any()):
        return ("use -1e9, not -inf, for blocked keys: a fully padded sequence has every key "
                "blocked, and a row of -inf becomes NaN after the softmax.")
    if bool((got > 0).any()):
        return "blocked keys get a large *negative* value (-1e9), allowed keys 0."
    if not torch.equal(got, expected):
        blocked, want = got < -1e4, expected < -1e4
        if torch.equal(blocked, want):
            return "use exactly 0.0 for allowed keys and -1e9 for blocked ones."
        b, i, j = (int(v) for v in torch.nonzero(blocked != want)[0])
        length = int(torch.as_tensor(case.args[0])[b])
        causal = case.kwargs.get("causal", True)
        why = (f"key {j} is padding (sequence {b} has {length} real tokens)" if j >= length
               else f"key {j} is in the future of query {i}" if causal and j > i
               else "that key is a real token the query may see")
        verb = "allows" if bool(want[b, i, j]) else "blocks"
        return f"sequence {b}: your bias {verb} query {i} -> key {j}, but {why}."
    return None


def _bias(pad_on_queries=False, fill=-1e9, as_bool=False, inverted=False, off_by_one=False,
          ignore_causal=False, upper=False):
    def attention_bias(lengths, seq_len, causal=True):
        lengths = torch.as_tensor(lengths)
        pos = torch.arange(seq_len)
        real = (pos[None, :] <= lengths[:, None]) if off_by_one else (pos[None] < lengths[:, None])
        allowed = real[:, :, None] if pad_on_queries else real[:, None, :]
        if causal and not ignore_causal:
            tri = torch.ones(seq_len, seq_len, dtype=torch.bool)
            allowed = allowed & (tri.triu() if upper else tri.tril())
        allowed = allowed.expand(len(lengths), seq_len, seq_len)
        if inverted:
            allowed = ~allowed
        if as_bool:
            return allowed
        return torch.zeros(allowed.shape).masked_fill(~allowed, fill)
    return attention_bias


register(Exercise(
    id="01.3", title="the additive attention bias of a padded batch",
    reference=attention_bias.attention_bias, cases=_bias_cases, compare=_compare_bias,
    hint="real = torch.arange(seq_len)[None, :] < lengths[:, None] (batch, seq); allowed = "
         "real[:, None, :] (the keys), & torch.ones(seq_len, seq_len).tril().bool() if causal; "
         "expand to (batch, seq_len, seq_len); return torch.zeros(...).masked_fill(~allowed, "
         "-1e9).",
    mistakes=[
        (_bias(pad_on_queries=True), "Padding hides *keys*: mask the columns j >= length "
                                     "(real[:, None, :]), not the rows."),
        (_bias(fill=float("-inf")), "Use -1e9, not -inf: a fully padded sequence would give "
                                    "NaN rows after the softmax."),
        (_bias(as_bool=True), "Return the additive float form: 0.0 where allowed, -1e9 where "
                              "blocked, not the boolean mask."),
        (_bias(inverted=True), "The bias is inverted: 0 goes where attention is *allowed*, "
                               "-1e9 where it is blocked."),
        (_bias(off_by_one=True), "Off by one: a sequence of length L has real tokens 0 .. L-1, "
                                 "so key j is padding when j >= L (use <, not <=)."),
        (_bias(ignore_causal=True), "With causal=True each query may also not see its future: "
                                    "combine the padding mask with the lower triangle."),
        (_bias(upper=True), "The causal triangle is the lower one (tril: key j <= query i), "
                            "not triu."),
    ],
))
