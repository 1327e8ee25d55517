"""Known-wrong answers to lesson 01's exercises: the grader must reject each, saying why.

These implementations are written here, independently of the grader's own list of mistakes,
so a grader that stops recognising one of them fails this test.
"""

import math

import pytest
import torch

from course_utils.grading import get_exercise, run_exercise


def _verdict(ex_id, fn):
    return run_exercise(get_exercise(ex_id), fn)


# ---- 01.1 softmax
def softmax_naive(x, dim=-1):
    e = torch.exp(x)
    return e / torch.sum(e, dim, keepdim=True)


def softmax_last_axis_only(x, dim=-1):
    return torch.softmax(x, -1)


def softmax_max_without_keepdim(x, dim=-1):
    e = torch.exp(x - torch.max(x, dim).values)
    return e / e.sum(dim, keepdim=True)


def softmax_over_everything(x, dim=-1):
    e = torch.exp(x - x.max())
    return e / e.sum()


def softmax_in_place(x, dim=-1):
    x -= x.amax(dim, keepdim=True)
    x.exp_()
    return x / x.sum(dim, keepdim=True)


# ---- 01.2 attention
def attn(Q, K, V, mask=None, scale=None, dim=-1, blocked=lambda m: m == 0):
    scores = torch.matmul(Q, K.transpose(-1, -2))
    if scale is not None:
        scores = scores / scale(Q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(blocked(mask), -1e9)
    w = torch.softmax(scores, dim=dim)
    return torch.matmul(w, V), w


def attn_without_scale(Q, K, V, mask=None):
    return attn(Q, K, V, mask)


def attn_scaled_by_d_k(Q, K, V, mask=None):
    return attn(Q, K, V, mask, scale=float)


def attn_softmax_over_queries(Q, K, V, mask=None):
    return attn(Q, K, V, mask, scale=math.sqrt, dim=-2)


def attn_mask_inverted(Q, K, V, mask=None):
    return attn(Q, K, V, mask, scale=math.sqrt, blocked=lambda m: m != 0)


def attn_mask_ignored(Q, K, V, mask=None):
    return attn(Q, K, V, None, scale=math.sqrt)


def attn_output_only(Q, K, V, mask=None):
    return attn(Q, K, V, mask, scale=math.sqrt)[0]


# ---- 01.3 causal mask
def causal_upper(n):
    return torch.triu(torch.ones(n, n)).bool()


def causal_no_diagonal(n):
    return torch.tril(torch.ones(n, n), diagonal=-1).bool()


def causal_one_ahead(n):
    return torch.tril(torch.ones(n, n), diagonal=1).bool()


def causal_inverted(n):
    return torch.tril(torch.ones(n, n)) == 0


def causal_additive(n):
    return torch.nn.Transformer.generate_square_subsequent_mask(n)


def causal_all_ones(n):
    return torch.ones(n, n, dtype=torch.bool)


@pytest.mark.parametrize("ex_id, wrong, why", [
    ("01.1", softmax_naive, "subtract the maximum"),
    ("01.1", softmax_last_axis_only, "always normalises the last axis"),
    ("01.1", softmax_max_without_keepdim, "keepdim=True"),
    ("01.1", softmax_over_everything, "whole tensor"),
    ("01.1", softmax_in_place, "in place"),
    ("01.2", attn_without_scale, "not divided by sqrt(d_k)"),
    ("01.2", attn_scaled_by_d_k, "divided by d_k"),
    ("01.2", attn_softmax_over_queries, "dim=-2"),
    ("01.2", attn_mask_inverted, "mask is inverted"),
    ("01.2", attn_mask_ignored, "mask was ignored"),
    ("01.2", attn_output_only, "tuple of 2 items"),
    ("01.3", causal_upper, "transpose"),
    ("01.3", causal_no_diagonal, "diagonal must be allowed"),
    ("01.3", causal_one_ahead, "one token into the"),
    ("01.3", causal_inverted, "inverted"),
    ("01.3", causal_additive, "additive"),
    ("01.3", causal_all_ones, "allows query 0 -> key 1"),
])
def test_known_wrong_answer_is_rejected_with_a_specific_message(ex_id, wrong, why):
    result = _verdict(ex_id, wrong)
    assert result.status == "failed", f"{wrong.__name__} passed {ex_id}"
    assert why in result.message, result.message


@pytest.mark.parametrize("ex_id", ["01.1", "01.2", "01.3"])
def test_reference_is_accepted(ex_id):
    assert _verdict(ex_id, get_exercise(ex_id).reference).passed


def test_other_correct_answers_are_accepted_too():
    assert _verdict("01.1", lambda x, dim=-1: torch.softmax(x, dim)).passed
    assert _verdict("01.2", lambda Q, K, V, mask=None: attn(Q, K, V, mask,
                                                              scale=math.sqrt)).passed
    assert _verdict("01.3", lambda n: torch.tril(torch.ones(n, n))).passed  # 0/1 floats
    assert _verdict("01.3", lambda n: torch.tril(torch.ones(n, n, dtype=torch.int64))).passed
