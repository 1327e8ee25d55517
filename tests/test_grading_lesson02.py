"""Known-wrong answers to lesson 02's exercises: the grader must reject each, saying why.

Written here, independently of the grader's own list of mistakes, so a grader that stops
recognising one of them fails this test.
"""

import math

import pytest
import torch

from course_utils.grading import get_exercise, run_exercise


def _verdict(ex_id, fn):
    return run_exercise(get_exercise(ex_id), fn)


# ---- 02.1 split heads
def split_view_only(x, num_heads):
    b, s, d = x.shape
    return x.view(b, num_heads, s, d // num_heads)


def split_no_transpose(x, num_heads):
    b, s, d = x.shape
    return x.reshape(b, s, num_heads, -1)


def split_strided(x, num_heads):
    b, s, d = x.shape
    return torch.stack([x[..., h::num_heads] for h in range(num_heads)], dim=1)


def split_wrong_transpose(x, num_heads):
    b, s, d = x.shape
    return x.view(b, s, num_heads, d // num_heads).transpose(2, 3)


def split_ok(x, num_heads):
    b, s, d = x.shape
    return torch.stack(x.chunk(num_heads, dim=-1), dim=1)


# ---- 02.2 merge heads
def merge_wrong_order(x):
    b, h, s, d_k = x.shape
    return x.contiguous().view(b, s, h * d_k)


def merge_interleaved(x):
    return x.permute(0, 2, 3, 1).flatten(2)


def merge_by_sum(x):
    return x.sum(1)


def merge_view_after_transpose(x):
    b, h, s, d_k = x.shape
    return x.transpose(1, 2).view(b, s, h * d_k)


def merge_ok(x):
    return torch.cat(x.unbind(1), dim=-1)


# ---- 02.3 MHA forward
def _project(x, p, name):
    return x @ p[f"W_{name}"].T + p[f"b_{name}"]


def mha(Q, K, V, p, num_heads, mask=None, split=split_ok, w_o=True, scale_by="d_k",
        average=False):
    q, k, v = (split(_project(t, p, n), num_heads) for t, n in ((Q, "q"), (K, "k"), (V, "v")))
    d = q.shape[-1] if scale_by == "d_k" else Q.shape[-1]
    scores = q @ k.transpose(-1, -2) / math.sqrt(d)
    if mask is not None:
        scores = scores.masked_fill((mask[:, None] if mask.dim() == 3 else mask) == 0, -1e9)
    weights = torch.softmax(scores, -1)
    merged = merge_ok(weights @ v)
    out = merged @ p["W_o"].T + p["b_o"] if w_o else merged
    return out, weights.mean(1) if average else weights


def mha_forgets_w_o(Q, K, V, p, num_heads, mask=None):
    return mha(Q, K, V, p, num_heads, mask, w_o=False)


def mha_view_without_transpose(Q, K, V, p, num_heads, mask=None):
    return mha(Q, K, V, p, num_heads, mask, split=split_view_only)


def mha_scaled_by_d_model(Q, K, V, p, num_heads, mask=None):
    return mha(Q, K, V, p, num_heads, mask, scale_by="d_model")


def mha_head_averaged(Q, K, V, p, num_heads, mask=None):
    return mha(Q, K, V, p, num_heads, mask, average=True)


def mha_query_weights_everywhere(Q, K, V, p, num_heads, mask=None):
    same = {**p, "W_k": p["W_q"], "b_k": p["b_q"], "W_v": p["W_q"], "b_v": p["b_q"]}
    return mha(Q, K, V, same, num_heads, mask)


def mha_mask_dropped(Q, K, V, p, num_heads, mask=None):
    return mha(Q, K, V, p, num_heads)


@pytest.mark.parametrize("ex_id, wrong, why", [
    ("02.1", split_view_only, "without the transpose"),
    ("02.1", split_view_only, "mixing tokens across heads"),
    ("02.1", split_no_transpose, "still after the sequence axis"),
    ("02.1", split_strided, "every num_heads-th feature"),
    ("02.1", split_wrong_transpose, "shape"),
    ("02.2", merge_wrong_order, "wrong order"),
    ("02.2", merge_interleaved, "interleaved"),
    ("02.2", merge_by_sum, "you summed"),
    ("02.2", merge_view_after_transpose, "view size is not compatible"),
    ("02.3", mha_forgets_w_o, "forgot W_o"),
    ("02.3", mha_view_without_transpose, "without the transpose"),
    ("02.3", mha_scaled_by_d_model, "not sqrt(d_model)"),
    ("02.3", mha_head_averaged, "not their average"),
    ("02.3", mha_query_weights_everywhere, "W_k for K"),
    ("02.3", mha_mask_dropped, "mask was ignored"),
])
def test_known_wrong_answer_is_rejected_with_a_specific_message(ex_id, wrong, why):
    result = _verdict(ex_id, wrong)
    assert result.status == "failed", f"{wrong.__name__} passed {ex_id}"
    assert why in result.message, result.message


@pytest.mark.parametrize("ex_id", ["02.1", "02.2", "02.3"])
def test_reference_is_accepted(ex_id):
    assert _verdict(ex_id, get_exercise(ex_id).reference).passed


def test_other_correct_answers_are_accepted_too():
    assert _verdict("02.1", split_ok).passed
    assert _verdict("02.2", merge_ok).passed
    assert _verdict("02.3", mha).passed
