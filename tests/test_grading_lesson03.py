"""Known-wrong answers to lesson 03's exercises: the grader must reject each, saying why.

Written here, independently of the grader's own list of mistakes, so a grader that stops
recognising one of them fails this test.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import TopKLogitsWarper

from course_utils.attention import scaled_dot_product_attention
from course_utils.gpt import causal_mask_with_past
from course_utils.grading import get_exercise, run_exercise
from course_utils.grading.core import Case


def _verdict(ex_id, fn):
    return run_exercise(get_exercise(ex_id), fn)


# ---- 03.11 top-k
def topk_zeros(logits, k):
    kth = logits.topk(min(k, logits.shape[-1])).values[..., -1:]
    return torch.where(logits >= kth, logits, torch.zeros_like(logits))


def topk_strict(logits, k):
    kth = logits.topk(min(k, logits.shape[-1])).values[..., -1:]
    return torch.where(logits > kth, logits, torch.full_like(logits, -math.inf))


def topk_bottom(logits, k):
    kth = logits.topk(min(k, logits.shape[-1]), largest=False).values[..., -1:]
    return torch.where(logits <= kth, logits, torch.full_like(logits, -math.inf))


def topk_softmaxed(logits, k):
    kth = logits.topk(min(k, logits.shape[-1])).values[..., -1:]
    return torch.where(logits >= kth, logits, torch.full_like(logits, -math.inf)).softmax(-1)


def topk_in_place(logits, k):
    kth = logits.topk(min(k, logits.shape[-1])).values[..., -1:]
    logits[logits < kth] = -math.inf
    return logits


def topk_ok(logits, k):
    values, _ = torch.sort(logits, dim=-1, descending=True)
    kth = values[..., min(k, logits.shape[-1]) - 1:min(k, logits.shape[-1])]
    return torch.where(logits < kth, torch.full_like(logits, -math.inf), logits)


def topk_exactly_k_indices(logits, k):
    idx = torch.topk(logits, min(k, logits.shape[-1]), dim=-1).indices
    out = torch.full_like(logits, -math.inf)
    return out.scatter(-1, idx, logits.gather(-1, idx))


def topk_flattened(logits, k):
    kth = torch.topk(logits.reshape(-1), min(k, logits.numel())).values[-1]
    return logits.masked_fill(logits < kth, -math.inf)


def topk_mask_multiply(logits, k):
    kth = logits.topk(min(k, logits.shape[-1])).values[..., -1:]
    keep = (logits >= kth).float()
    return logits * keep + (1 - keep) * -math.inf


def topk_unclamped(logits, k):
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, -math.inf)


def topk_sorted_index_k(logits, k):
    values = torch.sort(logits, dim=-1, descending=True).values
    kth = values[..., k:k + 1]
    return torch.where(logits < kth, -math.inf, logits)


def topk_fill_row_minimum(logits, k):
    kth = logits.topk(min(k, logits.shape[-1])).values[..., -1:]
    return torch.where(logits >= kth, logits, logits.min(-1, keepdim=True).values)


def topk_two_dims_only(logits, k):
    kth = torch.topk(logits, min(k, logits.shape[-1]), dim=1).values[:, -1].unsqueeze(1)
    return logits.masked_fill(logits < kth, -math.inf)


def topk_cast_to_float(logits, k):
    logits = logits.float()  # "to be safe"
    kth = logits.topk(min(k, logits.shape[-1])).values[..., -1:]
    return logits.masked_fill(logits < kth, -math.inf)


def topk_argmax_when_greedy(logits, k):
    if k == 1:
        best = logits.argmax(-1, keepdim=True)
        return torch.full_like(logits, -math.inf).scatter(-1, best, logits.gather(-1, best))
    kth = logits.topk(min(k, logits.shape[-1])).values[..., -1:]
    return logits.masked_fill(logits < kth, -math.inf)


# ---- 03.11 correct alternatives
def topk_transformers(logits, k):
    """transformers' own top-k warper (the reference implementation's model)."""
    return TopKLogitsWarper(top_k=k)(None, logits)


def topk_where(logits, k):
    kth = torch.topk(logits, min(k, logits.size(-1))).values.min(dim=-1, keepdim=True).values
    return torch.where(logits >= kth, logits, torch.tensor(-math.inf, dtype=logits.dtype))


# ---- 03.13 one KV-cache step
def _attend(q, k, v, mask=None):
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, -1e9)
    return torch.softmax(scores, -1) @ v


def _grow(past, new, first=False):
    if past is None:
        return new
    return torch.cat([new, past] if first else [past, new], dim=2)


def cache_ok(q, k_new, v_new, past_k=None, past_v=None):
    k, v = _grow(past_k, k_new), _grow(past_v, v_new)
    L, S = q.shape[2], k.shape[2]
    mask = torch.arange(S)[None, :] <= torch.arange(L)[:, None] + (S - L)
    return _attend(q, k, v, mask), k, v


def cache_square_causal(q, k_new, v_new, past_k=None, past_v=None):
    k, v = _grow(past_k, k_new), _grow(past_v, v_new)
    L, S = q.shape[2], k.shape[2]
    mask = torch.ones(L, S, dtype=torch.bool).tril() if L > 1 else None
    return _attend(q, k, v, mask), k, v


def cache_no_mask(q, k_new, v_new, past_k=None, past_v=None):
    k, v = _grow(past_k, k_new), _grow(past_v, v_new)
    return _attend(q, k, v), k, v


def cache_only_new(q, k_new, v_new, past_k=None, past_v=None):
    L = q.shape[2]
    mask = torch.ones(L, L, dtype=torch.bool).tril()
    return _attend(q, k_new, v_new, mask), _grow(past_k, k_new), _grow(past_v, v_new)


def cache_new_first(q, k_new, v_new, past_k=None, past_v=None):
    k, v = _grow(past_k, k_new, first=True), _grow(past_v, v_new, first=True)
    L, S = q.shape[2], k.shape[2]
    mask = torch.arange(S)[None, :] <= torch.arange(L)[:, None] + (S - L)
    return _attend(q, k, v, mask), k, v


def cache_returns_old(q, k_new, v_new, past_k=None, past_v=None):
    out, k, v = cache_ok(q, k_new, v_new, past_k, past_v)
    return out, (past_k if past_k is not None else k), (past_v if past_v is not None else v)


def cache_cat_on_heads(q, k_new, v_new, past_k=None, past_v=None):
    k = k_new if past_k is None else torch.cat([past_k, k_new], dim=1)
    v = v_new if past_v is None else torch.cat([past_v, v_new], dim=1)
    return _attend(q, k, v), k, v


def _attend_causal(q, k, v):
    L, S = q.shape[2], k.shape[2]
    return _attend(q, k, v, torch.arange(S)[None, :] <= torch.arange(L)[:, None] + (S - L))


def cache_truthy_past(q, k_new, v_new, past_k=None, past_v=None):
    if past_k:
        k_new, v_new = torch.cat([past_k, k_new], 2), torch.cat([past_v, v_new], 2)
    return _attend_causal(q, k_new, v_new), k_new, v_new


def cache_always_is_causal(q, k_new, v_new, past_k=None, past_v=None):
    k, v = _grow(past_k, k_new), _grow(past_v, v_new)
    return F.scaled_dot_product_attention(q, k, v, is_causal=True), k, v


def cache_returns_only_new(q, k_new, v_new, past_k=None, past_v=None):
    out, _, _ = cache_ok(q, k_new, v_new, past_k, past_v)
    return out, k_new, v_new


def cache_no_scale(q, k_new, v_new, past_k=None, past_v=None):
    k, v = _grow(past_k, k_new), _grow(past_v, v_new)
    L, S = q.shape[2], k.shape[2]
    scores = (q @ k.transpose(-1, -2)).masked_fill(~causal_mask_with_past(L, S - L), -1e9)
    return scores.softmax(-1) @ v, k, v


def cache_mask_counts_all_keys_as_past(q, k_new, v_new, past_k=None, past_v=None):
    k, v = _grow(past_k, k_new), _grow(past_v, v_new)
    mask = causal_mask_with_past(q.shape[-2], k.shape[-2])
    return scaled_dot_product_attention(q, k, v, mask)[0], k, v


def cache_cat_on_batch(q, k_new, v_new, past_k=None, past_v=None):
    k = k_new if past_k is None else torch.cat([past_k, k_new], dim=0)
    v = v_new if past_v is None else torch.cat([past_v, v_new], dim=0)
    return _attend_causal(q, k, v), k, v


def cache_in_float32(q, k_new, v_new, past_k=None, past_v=None):
    out, k, v = cache_ok(q.float(), k_new.float(), v_new.float(),
                         None if past_k is None else past_k.float(),
                         None if past_v is None else past_v.float())
    return out, k, v


def cache_naive_softmax(q, k_new, v_new, past_k=None, past_v=None):
    k, v = _grow(past_k, k_new), _grow(past_v, v_new)
    L, S = q.shape[2], k.shape[2]
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    e = scores.masked_fill(~causal_mask_with_past(L, S - L), -1e9).exp()
    return (e / e.sum(-1, keepdim=True)) @ v, k, v


# ---- 03.13 correct alternatives
def cache_like_the_notebook(q, k_new, v_new, past_k=None, past_v=None):
    k = k_new if past_k is None else torch.cat([past_k, k_new], dim=-2)
    v = v_new if past_v is None else torch.cat([past_v, v_new], dim=-2)
    mask = causal_mask_with_past(q.shape[-2], k.shape[-2] - q.shape[-2])
    return scaled_dot_product_attention(q, k, v, mask)[0], k, v


def cache_fused_bottom_rows(q, k_new, v_new, past_k=None, past_v=None):
    k, v = _grow(past_k, k_new), _grow(past_v, v_new)
    S = k.shape[-2]
    mask = torch.ones(S, S, dtype=torch.bool).tril()[S - q.shape[-2]:]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask), k, v


@pytest.mark.parametrize("ex_id, wrong, why", [
    ("03.11", topk_zeros, "set to 0"),
    ("03.11", topk_strict, "removed the k-th largest logit itself"),
    ("03.11", topk_bottom, "*smallest*"),
    ("03.11", topk_softmaxed, "not probabilities"),
    ("03.11", topk_in_place, "in place"),
    ("03.11", topk_exactly_k_indices, "tied with the k-th largest are kept"),
    ("03.11", topk_flattened, "one threshold for the whole batch"),
    ("03.11", topk_mask_multiply, "0 * -inf is NaN"),
    ("03.11", topk_unclamped, "k larger than the vocabulary"),
    ("03.11", topk_sorted_index_k, "a logit outside the top k is still"),
    ("03.11", topk_fill_row_minimum, "filtered logits must be -inf"),
    ("03.11", topk_two_dims_only, "(batch, seq, vocab) logits"),
    ("03.11", topk_cast_to_float, "keep their dtype"),
    ("03.11", topk_argmax_when_greedy, "tied with the k-th"),
    ("03.13", cache_square_causal, "top-left"),
    ("03.13", cache_no_mask, "each other's future"),
    ("03.13", cache_only_new, "ignores the cache"),
    ("03.13", cache_new_first, "*after* the cached ones"),
    ("03.13", cache_returns_old, "Return the updated cache"),
    ("03.13", cache_cat_on_heads, "shape"),
    ("03.13", cache_truthy_past, "ambiguous"),
    ("03.13", cache_always_is_causal, "Your triangle starts at the first key"),
    ("03.13", cache_returns_only_new, "not only the new ones"),
    ("03.13", cache_no_scale, "causal_mask_with_past(q_len, k_len - q_len)"),
    ("03.13", cache_mask_counts_all_keys_as_past, "does not broadcast"),
    ("03.13", cache_cat_on_batch, "dim=0"),
    ("03.13", cache_in_float32, "dtype"),
    ("03.13", cache_naive_softmax, "exp() of large scores overflowed"),
])
def test_known_wrong_answer_is_rejected_with_a_specific_message(ex_id, wrong, why):
    result = _verdict(ex_id, wrong)
    assert result.status == "failed", f"{wrong.__name__} passed {ex_id}"
    assert why in result.message, result.message


@pytest.mark.parametrize("ex_id", ["03.11", "03.13"])
def test_reference_is_accepted(ex_id):
    assert _verdict(ex_id, get_exercise(ex_id).reference).passed


def test_other_correct_answers_are_accepted_too():
    assert _verdict("03.11", topk_ok).passed
    assert _verdict("03.13", cache_ok).passed
    assert _verdict("03.11", topk_transformers).passed
    assert _verdict("03.11", topk_where).passed
    assert _verdict("03.13", cache_like_the_notebook).passed
    assert _verdict("03.13", cache_fused_bottom_rows).passed


def _cases(ex_id) -> list[Case]:
    ex = get_exercise(ex_id)
    return list(ex.cases(torch.Generator().manual_seed(ex.seed)))


def test_the_old_gaps_are_closed():
    """The wrong answers that used to pass (issue #15) meet the case that now catches them."""
    assert any(not bool(torch.isfinite(c.args[0]).all()) for c in _cases("03.11"))
    assert any(c.args[3] is not None and c.args[3].shape[-2] == 0 for c in _cases("03.13"))


def test_reference_agrees_with_transformers_top_k_on_every_case():
    for case in _cases("03.11"):
        ours = get_exercise("03.11").reference(*case.args)
        assert torch.equal(ours, TopKLogitsWarper(top_k=case.args[1])(None, case.args[0]))


@pytest.mark.parametrize("ex_id", ["03.11", "03.13"])
def test_every_case_says_what_it_is_and_what_it_catches(ex_id):
    for case in _cases(ex_id):
        assert case.label and case.catches, case


@pytest.mark.parametrize("ex_id", ["03.11", "03.13"])
def test_every_mistake_runs_on_every_case_and_gets_its_own_hint(ex_id):
    """A hint is shown only when the learner matches the mistake on every case, so each
    mistake must run on all of them; graded as the learner, it must get its own hint."""
    ex = get_exercise(ex_id)
    for wrong, hint in ex.mistakes:
        for case in _cases(ex_id):
            wrong(*case.args, **case.kwargs)
        result = run_exercise(ex, wrong)
        assert result.status == "failed", wrong.__name__
        assert hint in result.message, (wrong.__name__, result.message)
