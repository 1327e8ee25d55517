"""Lesson 01 exercises: a stable softmax, scaled dot-product attention, a causal mask."""

from __future__ import annotations

import math

import torch

from course_utils import attention, masks
from course_utils.grading.core import Case, Exercise, register

# --------------------------------------------------------------------------- 01.1 softmax


def _softmax_cases(rng: torch.Generator):
    yield Case((torch.tensor([[1000.0, 1000.0, 999.0]]),), label="huge logits: exp overflows")
    yield Case((torch.randn(4, 4, generator=rng) * 3,), label="4x4 scores")
    yield Case((torch.randn(3, 5, generator=rng),), {"dim": 0}, label="normalise columns (dim=0)")
    yield Case((torch.tensor([-1000.0, -1001.0, -1002.0]),), label="very negative: exp underflows")
    yield Case((torch.tensor([[2.0]]),), label="a single score")
    yield Case((torch.randn(2, 3, 4, generator=rng, dtype=torch.float64) * 20,),
               label="float64 batch")
    for _ in range(4):
        yield Case((torch.randn(2, 6, 6, generator=rng) * 10,), {"dim": -1},
                   label="random 2x6x6 scores")


def _softmax_no_shift(x, dim=-1):
    return x.exp() / x.exp().sum(dim=dim, keepdim=True)


def _softmax_fixed_dim(x, dim=-1):
    shifted = x - x.amax(dim=-1, keepdim=True)
    return shifted.exp() / shifted.exp().sum(dim=-1, keepdim=True)


def _softmax_no_keepdim(x, dim=-1):
    shifted = x - x.amax(dim=dim)
    return shifted.exp() / shifted.exp().sum(dim=dim, keepdim=True)


def _softmax_global(x, dim=-1):
    shifted = x - x.max()
    return shifted.exp() / shifted.exp().sum()


def _rows_sum_to_one(got, case: Case):
    dim = case.kwargs.get("dim", -1)
    if isinstance(got, torch.Tensor) and got.is_floating_point():
        sums = got.sum(dim=dim)
        if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
            return (f"Each slice along dim={dim} must sum to 1; yours sum to "
                    f"{sums.flatten()[:4].tolist()}... Normalise over `dim`.")
    return None


register(Exercise(
    id="01.1", title="a numerically stable softmax", reference=attention.softmax,
    cases=_softmax_cases,
    hint="Subtract the maximum along `dim` (keepdim=True), exponentiate, then divide by the "
         "sum along the same `dim` (keepdim=True).",
    properties=[_rows_sum_to_one],
    mistakes=[
        (_softmax_no_shift, "exp(1000) overflows to inf and inf/inf is NaN: subtract the "
                            "maximum along `dim` before calling exp()."),
        (_softmax_fixed_dim, "Your softmax always normalises the last axis: use the `dim` "
                             "argument for both the max and the sum."),
        (_softmax_no_keepdim, "The maximum was subtracted without keepdim=True, so it broadcast "
                              "along the wrong axis: use x.amax(dim=dim, keepdim=True)."),
        (_softmax_global, "You normalised over the whole tensor: each slice along `dim` must "
                          "sum to 1 on its own (sum with dim=dim, keepdim=True)."),
    ],
))

# --------------------------------------------------------------------------- 01.2 attention


def _attention_cases(rng: torch.Generator):
    def r(*shape):
        return torch.randn(*shape, generator=rng)

    yield Case((r(4, 64), r(4, 64), r(4, 8)), label="4 tokens, d_k=64, no mask")
    yield Case((r(2, 5, 16), r(2, 5, 16), r(2, 5, 16)), {"mask": masks.causal_mask(5)},
               label="batch of 2, causal mask")
    yield Case((r(3, 6), r(5, 6), r(5, 2)), label="3 queries, 5 keys (rectangular)")
    pad = masks.padding_mask(torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]]))
    yield Case((r(2, 4, 8), r(2, 4, 8), r(2, 4, 8)), {"mask": pad},
               label="padding mask (last keys are padding)")
    yield Case((r(2, 4, 5, 8), r(2, 4, 5, 8), r(2, 4, 5, 8)),
               {"mask": masks.causal_mask(5).int()}, label="4 heads, causal mask as 0/1 ints")
    yield Case((r(1, 7, 32) * 3, r(1, 7, 32) * 3, r(1, 7, 4)), label="larger scores, d_k=32")
    for n in range(3):
        L = 3 + n
        yield Case((r(2, L, 12), r(2, L, 12), r(2, L, 6)),
                   {"mask": masks.combine_masks(masks.causal_mask(L),
                                                masks.padding_mask_from_lengths([L, L - 1], L))},
                   label=f"random, causal + padding, length {L}")


def _attn(Q, K, V, mask=None, *, scale=True, dim=-1, invert=False, transpose=True):
    d_k = Q.size(-1)
    scores = Q @ (K.transpose(-2, -1) if transpose else K)
    if scale is True:
        scores = scores / math.sqrt(d_k)
    elif scale == "d_k":
        scores = scores / d_k
    if mask is not None:
        scores = scores.masked_fill((mask != 0) if invert else (mask == 0), -1e9)
    weights = torch.softmax(scores, dim=dim)
    return weights @ V, weights


def _attn_no_scale(Q, K, V, mask=None):
    return _attn(Q, K, V, mask, scale=False)


def _attn_scale_dk(Q, K, V, mask=None):
    return _attn(Q, K, V, mask, scale="d_k")


def _attn_wrong_axis(Q, K, V, mask=None):
    return _attn(Q, K, V, mask, dim=-2)


def _attn_inverted_mask(Q, K, V, mask=None):
    return _attn(Q, K, V, mask, invert=True)


def _attn_ignores_mask(Q, K, V, mask=None):
    return _attn(Q, K, V, None)


def _weights_are_distributions(got, case: Case):
    if isinstance(got, tuple | list) and len(got) == 2 and isinstance(got[1], torch.Tensor):
        sums = got[1].sum(-1)
        if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
            return ("Each query's attention weights must sum to 1 over the keys: apply the "
                    "softmax over the last axis (dim=-1).")
    return None


def _masked_get_zero(got, case: Case):
    mask = case.kwargs.get("mask")
    if mask is not None and isinstance(got, tuple | list) and len(got) == 2:
        blocked = (mask == 0).expand_as(got[1])
        if bool((got[1][blocked].abs() > 1e-6).any()):
            return ("Positions where mask == 0 must get zero weight: fill their scores with a "
                    "large negative number *before* the softmax.")
    return None


register(Exercise(
    id="01.2", title="scaled dot-product attention",
    reference=attention.scaled_dot_product_attention, cases=_attention_cases,
    hint="scores = Q @ K.transpose(-2, -1) / sqrt(d_k); where mask == 0 fill -1e9; softmax over "
         "the last axis; return (weights @ V, weights).",
    properties=[_weights_are_distributions, _masked_get_zero],
    mistakes=[
        (_attn_no_scale, "The scores were not divided by sqrt(d_k): without the scale, large "
                         "d_k makes the softmax saturate."),
        (_attn_scale_dk, "You divided by d_k; the scale is sqrt(d_k) (math.sqrt(Q.size(-1)))."),
        (_attn_wrong_axis, "The softmax ran over the queries (dim=-2): each query's weights over "
                           "the keys must sum to 1, so use dim=-1."),
        (_attn_inverted_mask, "The mask is inverted: positions where mask == 0 are the blocked "
                              "ones (masked_fill(mask == 0, -1e9))."),
        (_attn_ignores_mask, "The mask was ignored: fill the scores where mask == 0 with -1e9 "
                             "before the softmax."),
    ],
))

# --------------------------------------------------------------------------- 01.3 causal mask


def _causal_cases(rng: torch.Generator):
    for n in (4, 1, 2, 7, 16):
        yield Case((n,), label=f"seq_len={n}")


def _compare_mask(got, expected, case: Case):
    if not isinstance(got, torch.Tensor):
        return f"the result should be a torch.Tensor, but it is a {type(got).__name__}."
    if tuple(got.shape) != tuple(expected.shape):
        return f"the mask has shape {tuple(got.shape)}, expected {tuple(expected.shape)}."
    if got.is_floating_point() and bool(((got != 0) & (got != 1)).any()):
        return ("the mask holds values other than 0 and 1: this exercise wants the boolean/0-1 "
                "form (1 = may attend), not the additive one.")
    allowed = got != 0
    if not torch.equal(allowed, expected):
        i, j = (int(v) for v in torch.nonzero(allowed != expected)[0])
        verb = "allows" if bool(allowed[i, j]) else "blocks"
        return f"your mask {verb} query {i} -> key {j}, but a causal mask should not."
    return None


def _causal_triu(n):
    return torch.ones(n, n, dtype=torch.bool).triu()


def _causal_strict(n):
    return torch.ones(n, n, dtype=torch.bool).tril(-1)


def _causal_plus_one(n):
    return torch.ones(n, n, dtype=torch.bool).tril(1)


def _causal_inverted(n):
    return ~torch.ones(n, n, dtype=torch.bool).tril()


register(Exercise(
    id="01.3", title="a causal mask", reference=masks.causal_mask, cases=_causal_cases,
    compare=_compare_mask,
    hint="Row i is the query, column j the key; allow j <= i: torch.ones(n, n).tril() (as bool).",
    mistakes=[
        (_causal_triu, "Your mask is the transpose: it lets each token see the future and not "
                       "the past. Use the lower triangle (tril), not triu."),
        (_causal_strict, "Off by one: the diagonal must be allowed, since a token may attend to "
                         "itself. Use tril() with diagonal=0."),
        (_causal_plus_one, "Off by one: your mask lets each token see one token into the "
                           "future. Use tril() with diagonal=0."),
        (_causal_inverted, "The mask is inverted: 1/True means 'may attend', so the allowed "
                           "positions are on and below the diagonal."),
    ],
))
