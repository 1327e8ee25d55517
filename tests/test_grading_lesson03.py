"""Known-wrong answers to lesson 03's exercises: the grader must reject each, saying why.

Written here, independently of the grader's own list of mistakes, so a grader that stops
recognising one of them fails this test.
"""

import math

import pytest
import torch

from course_utils.grading import get_exercise, run_exercise


def _verdict(ex_id, fn):
    return run_exercise(get_exercise(ex_id), fn)


# ---- 03.1 causal mask with a cache
def mask_ignores_past(query_len, past_len=0):
    return torch.tril(torch.ones(query_len, query_len + past_len)).bool()


def mask_square(query_len, past_len=0):
    return torch.tril(torch.ones(query_len, query_len)).bool()


def mask_cannot_see_itself(query_len, past_len=0):
    return torch.tril(torch.ones(query_len, query_len + past_len), past_len - 1).bool()


def mask_peeks_ahead(query_len, past_len=0):
    return torch.tril(torch.ones(query_len, query_len + past_len), past_len + 1).bool()


def mask_additive(query_len, past_len=0):
    allowed = torch.tril(torch.ones(query_len, query_len + past_len), past_len)
    return torch.zeros_like(allowed).masked_fill(allowed == 0, float("-inf"))


def mask_ok(query_len, past_len=0):
    i = torch.arange(query_len)[:, None] + past_len
    j = torch.arange(query_len + past_len)[None, :]
    return (j <= i).int()


# ---- 03.2 position ids
def positions_restart_at_zero(input_ids, past_length=0):
    return torch.arange(input_ids.shape[1]).repeat(input_ids.shape[0], 1)


def positions_one_based(input_ids, past_length=0):
    return torch.arange(1, input_ids.shape[1] + 1).repeat(input_ids.shape[0], 1) + past_length


def positions_unbatched(input_ids, past_length=0):
    return torch.arange(input_ids.shape[1]) + past_length


def positions_as_floats(input_ids, past_length=0):
    return torch.arange(input_ids.shape[1]).float().repeat(input_ids.shape[0], 1) + past_length


def positions_ok(input_ids, past_length=0):
    return torch.cumsum(torch.ones_like(input_ids), dim=1) - 1 + past_length


# ---- 03.3 top-k
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


# ---- 03.4 one KV-cache step
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


@pytest.mark.parametrize("ex_id, wrong, why", [
    ("03.1", mask_ignores_past, "Shift the triangle"),
    ("03.1", mask_square, "not square"),
    ("03.1", mask_cannot_see_itself, "may attend to itself"),
    ("03.1", mask_peeks_ahead, "one token into the future"),
    ("03.1", mask_additive, "not the additive one"),
    ("03.2", positions_restart_at_zero, "restart at 0"),
    ("03.2", positions_one_based, "count from 0"),
    ("03.2", positions_unbatched, "one row per sequence"),
    ("03.2", positions_as_floats, "dtype"),
    ("03.3", topk_zeros, "set to 0"),
    ("03.3", topk_strict, "removed the k-th largest logit itself"),
    ("03.3", topk_bottom, "*smallest*"),
    ("03.3", topk_softmaxed, "not probabilities"),
    ("03.3", topk_in_place, "in place"),
    ("03.4", cache_square_causal, "top-left"),
    ("03.4", cache_no_mask, "each other's future"),
    ("03.4", cache_only_new, "ignores the cache"),
    ("03.4", cache_new_first, "*after* the cached ones"),
    ("03.4", cache_returns_old, "Return the updated cache"),
    ("03.4", cache_cat_on_heads, "shape"),
])
def test_known_wrong_answer_is_rejected_with_a_specific_message(ex_id, wrong, why):
    result = _verdict(ex_id, wrong)
    assert result.status == "failed", f"{wrong.__name__} passed {ex_id}"
    assert why in result.message, result.message


@pytest.mark.parametrize("ex_id", ["03.1", "03.2", "03.3", "03.4"])
def test_reference_is_accepted(ex_id):
    assert _verdict(ex_id, get_exercise(ex_id).reference).passed


def test_other_correct_answers_are_accepted_too():
    assert _verdict("03.1", mask_ok).passed
    assert _verdict("03.2", positions_ok).passed
    assert _verdict("03.3", topk_ok).passed
    assert _verdict("03.4", cache_ok).passed
