"""Known-wrong answers to lesson 03's padded-batch exercises (03.7 mask, 03.8 positions)."""

import pytest
import torch

from course_utils.grading import get_exercise, run_exercise


def _verdict(ex_id, fn):
    return run_exercise(get_exercise(ex_id), fn)


# ---- 03.7 the causal + padding mask
def mask_causal_only(attention_mask, query_len):
    k = attention_mask.shape[1]
    tri = torch.tril(torch.ones(query_len, k), diagonal=k - query_len).bool()
    return tri.unsqueeze(0).repeat(attention_mask.shape[0], 1, 1)


def mask_padding_only(attention_mask, query_len):
    return (attention_mask == 1)[:, None, :].expand(-1, query_len, -1)


def mask_is_causal_style(attention_mask, query_len):
    k = attention_mask.shape[1]
    tri = torch.tril(torch.ones(query_len, k)).bool()
    return tri[None] & attention_mask.bool()[:, None, :]


def mask_pads_queries(attention_mask, query_len):
    k = attention_mask.shape[1]
    tri = torch.tril(torch.ones(query_len, k), diagonal=k - query_len).bool()
    return tri[None] & attention_mask.bool()[:, -query_len:, None]


def mask_additive(attention_mask, query_len):
    k = attention_mask.shape[1]
    tri = torch.tril(torch.ones(query_len, k), diagonal=k - query_len).bool()
    allowed = tri[None] & attention_mask.bool()[:, None, :]
    return torch.zeros(allowed.shape).masked_fill(~allowed, float("-inf"))


def mask_with_head_axis(attention_mask, query_len):
    k = attention_mask.shape[1]
    tri = torch.tril(torch.ones(query_len, k), diagonal=k - query_len).bool()
    return (tri[None] & attention_mask.bool()[:, None, :])[:, None]


def mask_one_minus(attention_mask, query_len):
    k = attention_mask.shape[1]
    tri = torch.tril(torch.ones(query_len, k), diagonal=k - query_len).bool()
    return tri[None] & ~(1 - attention_mask).bool()[:, None, :]


def mask_strict(attention_mask, query_len):
    k = attention_mask.shape[1]
    tri = torch.tril(torch.ones(query_len, k), diagonal=k - query_len - 1).bool()
    return tri[None] & attention_mask.bool()[:, None, :]


def mask_ok_compare_positions(attention_mask, query_len):
    k = attention_mask.shape[1]
    rows = torch.arange(k - query_len, k)[:, None]
    cols = torch.arange(k)[None, :]
    return (cols <= rows)[None] & (attention_mask[:, None, :] > 0)


# ---- 03.8 the position ids
def pos_by_column(attention_mask, query_len):
    k = attention_mask.shape[1]
    return torch.arange(k - query_len, k).unsqueeze(0).repeat(attention_mask.shape[0], 1)


def pos_cumsum_from_one(attention_mask, query_len):
    return torch.cumsum(attention_mask.long(), dim=1)[:, -query_len:]


def pos_minus_one_on_padding(attention_mask, query_len):
    return (torch.cumsum(attention_mask.long(), dim=1) - 1)[:, -query_len:]


def pos_only_new_tokens(attention_mask, query_len):
    new = attention_mask[:, -query_len:].long()
    return (new.cumsum(1) - 1).masked_fill(new == 0, 1)


def pos_past_len_offset(attention_mask, query_len):
    past = attention_mask.shape[1] - query_len
    new = attention_mask[:, -query_len:].long()
    return (past + new.cumsum(1) - 1).masked_fill(new == 0, 1)


def pos_float(attention_mask, query_len):
    pos = attention_mask.float().cumsum(1) - 1
    return pos.masked_fill(attention_mask == 0, 1)[:, -query_len:]


def pos_full_width(attention_mask, query_len):
    return (attention_mask.long().cumsum(1) - 1).clamp(min=0)


def pos_ok_arange_minus_padding(attention_mask, query_len):
    real = attention_mask.long()
    pads_before = (1 - real).cumsum(1)
    pos = torch.arange(real.shape[1])[None] - pads_before
    return pos.clamp(min=0)[:, -query_len:]


@pytest.mark.parametrize("ex_id, wrong, why", [
    ("03.7", mask_causal_only, "Padding keys must be blocked too"),
    ("03.7", mask_padding_only, "must not see its future"),
    ("03.7", mask_is_causal_style, "the *last* rows of the full triangle"),
    ("03.7", mask_pads_queries, "not padding queries"),
    ("03.7", mask_additive, "not an additive one"),
    ("03.7", mask_with_head_axis, "(batch, query_len, key_len)"),
    ("03.7", mask_one_minus, "Subtraction, the `-` operator, with a bool tensor"),
    ("03.7", mask_strict, "may attend to itself"),
    ("03.8", pos_by_column, "Positions count real tokens, not columns"),
    ("03.8", pos_cumsum_from_one, "the first real token is at position 0"),
    ("03.8", pos_minus_one_on_padding, "give padding a valid position"),
    ("03.8", pos_only_new_tokens, "Count the cached real tokens too"),
    ("03.8", pos_past_len_offset, "real tokens come before it"),
    ("03.8", pos_float, "dtype torch.long"),
    ("03.8", pos_full_width, "positions of the new tokens only"),
])
def test_known_wrong_answer_is_rejected_with_a_specific_message(ex_id, wrong, why):
    result = _verdict(ex_id, wrong)
    assert result.status == "failed", wrong.__name__
    assert why in result.message, result.message


@pytest.mark.parametrize("ex_id, right", [("03.7", mask_ok_compare_positions),
                                          ("03.8", pos_ok_arange_minus_padding)])
def test_correct_answers_are_accepted(ex_id, right):
    assert _verdict(ex_id, get_exercise(ex_id).reference).passed
    result = _verdict(ex_id, right)
    assert result.passed, result.message


@pytest.mark.parametrize("ex_id", ["03.7", "03.8"])
def test_cases_and_mistakes_meet_the_standard(ex_id):
    ex = get_exercise(ex_id)
    cases = list(ex.cases(torch.Generator().manual_seed(ex.seed)))
    assert all(c.label and c.catches for c in cases)
    assert any(int((c.args[0] == 0).sum()) for c in cases)
    for wrong, hint in ex.mistakes:
        for case in cases:
            wrong(*case.args, **case.kwargs)
        result = run_exercise(ex, wrong)
        assert result.status == "failed" and hint in result.message, result.message
