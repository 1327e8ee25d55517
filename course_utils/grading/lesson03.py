"""Lesson 03 exercises, in notebook order.

Tokens (03.1-03.2) in :mod:`lesson03_tokens`; the block's pieces (03.3-03.6) and the forward
pass (03.9) in :mod:`lesson03_block`; the padded causal mask and position ids (03.7-03.8) in
:mod:`lesson03_padding`; the training step (03.10) in :mod:`lesson03_training`; top-p (03.12)
in :mod:`lesson03_decoding`; here: top-k (03.11) and a KV-cache step (03.13).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from course_utils import generation, gpt
from course_utils.grading import (  # noqa: F401  (registered at import)
    lesson03_block,  # 03.3-03.6: layer norm, GELU, the MLP, the block; 03.9: GPT forward
    lesson03_decoding,  # 03.12: top-p
    lesson03_mlm,  # 03.14: MLM masking
    lesson03_padding,  # 03.7, 03.8: causal + padding mask, position ids
    lesson03_tokens,  # 03.1, 03.2: BPE
    lesson03_training,  # 03.10: one training step
)
from course_utils.grading.core import Case, Exercise, register

# --------------------------------------------------------------------------- 03.11 top-k


def _topk_cases(rng: torch.Generator):
    def r(*shape, dtype=torch.float32):
        return torch.randn(*shape, generator=rng, dtype=dtype) * 3

    inf = float("-inf")
    yield Case((torch.tensor([[2.0, -1.0, 0.5, 3.0, 1.0]]), 2), label="5 logits, keep 2",
               catches="zeros instead of -inf; the k-th itself dropped; the smallest kept; "
                       "probabilities returned; sorted[..., k] (one too many)")
    yield Case((r(2, 10), 3), label="batch of 2, vocab 10, k=3",
               catches="the top k over the wrong axis")
    yield Case((r(1, 6), 1), label="k=1 is greedy", catches="off by one at k=1")
    yield Case((r(3, 8), 8), label="k = vocab size keeps everything",
               catches="dropping the k-th (<= instead of <) when k is the vocabulary")
    yield Case((r(2, 6), 20), label="k larger than the vocabulary: keep everything",
               catches="torch.topk without min(k, vocab) raises")
    yield Case((torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0]]), 2),
               label="ties: every logit equal to the k-th largest is kept",
               catches="keeping exactly k indices (topk().indices + scatter) drops tied logits")
    yield Case((torch.tensor([[3.0, 3.0, 1.0], [0.0, 5.0, 5.0]]), 1),
               label="k=1 with a tie at the maximum", catches="argmax keeps one of the tied")
    yield Case((r(2, 3, 7), 2), label="(batch, seq, vocab) logits",
               catches="code that assumes 2-D logits ([:, -1], logits.shape[1])")
    yield Case((r(4, 50) - 100, 5), label="very negative logits",
               catches="a finite fill value (0, the row minimum) that is not below the kept ones")
    yield Case((torch.tensor([[100.0, 99.0, 98.0, 97.0], [-5.0, -6.0, -7.0, -8.0]]), 2),
               label="rows of very different sizes",
               catches="one threshold for the whole batch instead of one per row")
    yield Case((torch.tensor([[0.0, inf, 2.0, inf, 1.0], [inf, inf, 4.0, 3.0, inf]]), 2),
               label="-inf already present (an earlier filter)",
               catches="multiplying by a 0/1 mask (0 * -inf = NaN)")
    yield Case((torch.tensor([[0.0, inf, 2.0, inf, 1.0]]), 4),
               label="-inf present and k beyond the finite logits",
               catches="counting the -inf logits; NaN from inf - inf")
    yield Case((r(9), 3), label="1-D logits of one position (as the lesson's plot passes)",
               catches="code that assumes a batch axis")
    yield Case((r(2, 5, dtype=torch.float64), 2), label="float64 logits",
               catches="a float32 -inf tensor that changes the dtype")
    yield Case((r(2, 50257), 50), label="GPT-2's vocabulary (50257), k=50",
               catches="a Python loop over the vocabulary; any off-by-one at scale")
    for _ in range(3):  # property-style: random shapes, k and many ties (rounded logits)
        shape = torch.randint(1, 12, (int(torch.randint(1, 4, (1,), generator=rng)),),
                              generator=rng).tolist()
        k = int(torch.randint(1, shape[-1] + 3, (1,), generator=rng))
        yield Case((torch.round(r(*shape)), k),
                   label=f"random {tuple(shape)} rounded logits, k={k}",
                   catches="ties, k near or above the vocabulary, any axis")


def _compare_filtered(got, expected, case: Case):
    if not isinstance(got, torch.Tensor):
        return f"the result should be a torch.Tensor, but it is a {type(got).__name__}."
    if tuple(got.shape) != tuple(expected.shape):
        return f"the result has shape {tuple(got.shape)}, expected {tuple(expected.shape)}."
    if got.dtype != expected.dtype:
        return (f"the result has dtype {got.dtype}, but the logits were {expected.dtype}: keep "
                "their dtype (masked_fill or torch.where on the logits does).")
    if bool(got.isnan().any()):
        return ("the result contains NaN. 0 * -inf is NaN, so don't multiply by a 0/1 mask: "
                "use logits.masked_fill(drop, float('-inf')) or torch.where.")
    kept = torch.isfinite(expected)
    if not torch.allclose(got[kept].double(), expected[kept].double(), atol=1e-6):
        return ("some logits that should be kept were removed or changed: the k largest in "
                "each row (and every logit tied with the k-th) must stay exactly as they were.")
    if bool((got[~kept] > -1e4).any()):
        value = got[~kept][got[~kept] > -1e4][0].item()
        return (f"a logit outside the top k is still {value:.4g}; filtered logits must be "
                "-inf so the softmax gives them probability 0.")
    return None


def _topk(logits, k, *, keep=0, largest=True, dim=-1, fill=float("-inf")):
    k = min(k, logits.shape[dim])
    kth = torch.topk(logits, k, dim=dim, largest=largest).values
    kth = kth.select(dim, -1).unsqueeze(dim)
    drop = (logits < kth) if largest else (logits > kth)
    if keep == -1:
        drop = logits <= kth
    return logits.masked_fill(drop, fill)


def _topk_zero_fill(logits, k):
    return _topk(logits, k, fill=0.0)


def _topk_drops_kth(logits, k):
    return _topk(logits, k, keep=-1)


def _topk_smallest(logits, k):
    return _topk(logits, k, largest=False)


def _topk_probabilities(logits, k):
    return generation.top_k_filter(logits, k).softmax(-1)


def _topk_wrong_dim(logits, k):
    return _topk(logits, k, dim=0)


def _topk_exactly_k(logits, k):
    k = min(k, logits.shape[-1])
    keep = torch.zeros_like(logits, dtype=torch.bool)
    keep.scatter_(-1, torch.topk(logits, k, dim=-1).indices, True)
    return logits.masked_fill(~keep, float("-inf"))


def _topk_one_threshold(logits, k):
    kth = torch.topk(logits.flatten(), min(k, logits.numel())).values[-1]
    return logits.masked_fill(logits < kth, float("-inf"))


register(Exercise(
    id="03.11", title="top-k filtering", reference=generation.top_k_filter, cases=_topk_cases,
    compare=_compare_filtered,
    hint="kth = torch.topk(logits, min(k, vocab), dim=-1).values[..., -1:] is each row's k-th "
         "largest logit; return logits.masked_fill(logits < kth, float('-inf')).",
    mistakes=[
        (_topk_zero_fill, "Filtered logits were set to 0, which still has probability: set "
                          "them to float('-inf')."),
        (_topk_drops_kth, "Off by one: you removed the k-th largest logit itself (<=); remove "
                          "only the logits strictly smaller than it (<)."),
        (_topk_smallest, "You kept the k *smallest* logits: keep the largest (torch.topk's "
                         "default, largest=True)."),
        (_topk_probabilities, "Return the filtered logits, not probabilities: the softmax "
                              "comes later."),
        (_topk_wrong_dim, "The top k were taken over the wrong axis: filter each row over the "
                          "vocabulary, dim=-1."),
        (_topk_exactly_k, "Logits tied with the k-th largest are kept too (as transformers "
                          "does): compare every logit with the k-th value, logits < kth, "
                          "instead of keeping exactly k indices."),
        (_topk_one_threshold, "You used one threshold for the whole batch: each row (each "
                              "position's distribution) has its own k-th largest logit, "
                              "torch.topk(..., dim=-1).values[..., -1:]."),
    ],
))

# --------------------------------------------------------------------------- 03.13 KV cache


def _cache_cases(rng: torch.Generator):
    def step(b, h, new, past, d, scale=1.0, dtype=torch.float32, empty_past=False):
        def r(n):
            return torch.randn(b, h, n, d, generator=rng, dtype=dtype) * scale
        cached = (r(past), r(past)) if past or empty_past else (None, None)
        return (r(new), r(new), r(new), *cached)

    shapes = (
        ((1, 2, 4, 0, 8), {}, "the prompt: 4 tokens, nothing cached yet",
         "no cache yet (past_k is None): the first step must still be causal"),
        ((1, 2, 1, 5, 8), {}, "one new token after 5 cached",
         "the cache ignored; a top-left triangle (is_causal=True) hides the cache"),
        ((2, 3, 1, 2, 4), {}, "batch of 2, 3 heads, one new token after 2",
         "concatenated along the batch or head axis"),
        ((2, 2, 3, 4, 4), {}, "3 new tokens after 4 cached (they must not see each other's "
         "future)", "no mask with several new tokens; a triangle not shifted by past_len"),
        ((1, 4, 1, 9, 2), {}, "one new token after 9 cached", "new keys put before the cache"),
        ((2, 2, 3, 0, 8), {"empty_past": True}, "an empty cache (past of length 0)",
         "`if past_k:` on a tensor; a past of length 0 treated differently from None"),
        ((1, 2, 1, 100, 16), {}, "one new token after a long cache of 100",
         "a mask of fixed size; the old cache returned"),
        ((3, 4, 5, 40, 8), {}, "5 new tokens after 40 cached, batch 3, 4 heads",
         "top-left causal alignment; the new tokens seeing each other's future"),
        ((1, 1, 8, 3, 4), {}, "8 new tokens after only 3 cached (query longer than the past)",
         "a mask built as (past_len, ...) or square"),
        ((2, 2, 2, 3, 8), {"dtype": torch.float64}, "float64 step",
         "casting to float32 (the output keeps the inputs' dtype)"),
        ((1, 2, 3, 6, 16), {"scale": 10.0}, "large scores (above 88)",
         "a softmax without the max shift (exp overflows)"),
    )
    for (b, h, new, past, d), kw, label, catches in shapes:
        yield Case(step(b, h, new, past, d, **kw), label=label, catches=catches)


def _cat(past, new, dim=-2, prepend=False):
    if past is None:
        return new
    return torch.cat([new, past] if prepend else [past, new], dim=dim)


def _cache_top_left_causal(q, k_new, v_new, past_k=None, past_v=None):
    k, v = _cat(past_k, k_new), _cat(past_v, v_new)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=q.shape[-2] > 1)
    return out, k, v


def _cache_no_mask(q, k_new, v_new, past_k=None, past_v=None):
    k, v = _cat(past_k, k_new), _cat(past_v, v_new)
    return F.scaled_dot_product_attention(q, k, v), k, v


def _cache_ignored(q, k_new, v_new, past_k=None, past_v=None):
    return gpt.causal_attention(q, k_new, v_new), _cat(past_k, k_new), _cat(past_v, v_new)


def _cache_prepend(q, k_new, v_new, past_k=None, past_v=None):
    k, v = _cat(past_k, k_new, prepend=True), _cat(past_v, v_new, prepend=True)
    return gpt.causal_attention(q, k, v), k, v


def _cache_not_updated(q, k_new, v_new, past_k=None, past_v=None):
    out, _, _ = gpt.attend_with_cache(q, k_new, v_new, past_k, past_v)
    return out, (k_new if past_k is None else past_k), (v_new if past_v is None else past_v)


def _cache_returns_new(q, k_new, v_new, past_k=None, past_v=None):
    out, _, _ = gpt.attend_with_cache(q, k_new, v_new, past_k, past_v)
    return out, k_new, v_new


def _cache_mask_not_shifted(q, k_new, v_new, past_k=None, past_v=None):
    k, v = _cat(past_k, k_new), _cat(past_v, v_new)
    mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask), k, v


def _cache_output_finite(got, case: Case):
    if isinstance(got, tuple | list) and got and isinstance(got[0], torch.Tensor) \
            and got[0].is_floating_point() and not bool(got[0].isfinite().all()):
        return ("Your output holds NaN or inf: exp() of large scores overflowed. Use "
                "torch.softmax or lesson 01's attention (its softmax subtracts the maximum).")
    return None


register(Exercise(
    id="03.13", title="one KV-cache step", reference=gpt.attend_with_cache, cases=_cache_cases,
    properties=[_cache_output_finite],
    hint="k = torch.cat([past_k, k_new], dim=-2) (or k_new when past_k is None), the same for v; "
         "then attend q over all of k, v with causal_mask_with_past(q_len, k_len - q_len); "
         "return (output, k, v).",
    mistakes=[
        (_cache_top_left_causal, "is_causal=True aligns the triangle to the top-left, so new "
                                 "tokens cannot see most of the cache: the mask must be "
                                 "causal_mask_with_past(query_len, past_len)."),
        (_cache_no_mask, "Several new tokens at once must not see each other's future: apply "
                         "causal_mask_with_past(query_len, past_len)."),
        (_cache_ignored, "The output ignores the cache: attend over the cached keys and values "
                         "*and* the new ones."),
        (_cache_prepend, "The new keys and values go *after* the cached ones (torch.cat([past, "
                         "new], dim=-2)): the cache must stay in position order."),
        (_cache_not_updated, "Return the updated cache (past + new keys and values), or the "
                             "next step will have lost this token."),
        (_cache_returns_new, "Return the updated cache, all keys and values so far (past + "
                             "new), not only the new ones: the next step needs them all."),
        (_cache_mask_not_shifted, "Your triangle starts at the first key, so a new token sees "
                                  "only the first cached tokens: query i sits at position "
                                  "past_len + i, use causal_mask_with_past(query_len, past_len)."),
    ],
))
