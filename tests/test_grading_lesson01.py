"""Known-wrong answers to lesson 01's exercises: the grader must reject each, saying why.

These implementations are written here, independently of the grader's own list of mistakes,
so a grader that stops recognising one of them fails this test.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from course_utils.grading import get_exercise, run_exercise
from course_utils.grading.core import Case


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


def softmax_minus_min(x, dim=-1):
    e = torch.exp(x - torch.min(x, dim=dim, keepdim=True).values)
    return e / e.sum(dim=dim, keepdim=True)


def softmax_minus_mean(x, dim=-1):
    centred = x - x.mean(dim=dim, keepdim=True)
    return centred.exp() / centred.exp().sum(dim=dim, keepdim=True)


def softmax_global_max_row_sums(x, dim=-1):
    e = torch.exp(x - torch.max(x))
    return e / e.sum(dim=dim, keepdim=True)


def softmax_clamped(x, dim=-1):
    e = torch.exp(torch.clamp(x, -80, 80))  # "avoid overflow" by clipping the scores
    return e / e.sum(dim=dim, keepdim=True)


def softmax_nan_patched(x, dim=-1):
    e = x.exp()
    return torch.nan_to_num(e / e.sum(dim=dim, keepdim=True), nan=0.0)


def softmax_in_float32(x, dim=-1):
    x = x.float()
    e = (x - x.amax(dim=dim, keepdim=True)).exp()
    return e / e.sum(dim=dim, keepdim=True)


def softmax_shift_dim_sum_last(x, dim=-1):
    e = (x - x.amax(dim=dim, keepdim=True)).exp()
    return e / e.sum(-1, keepdim=True)


def softmax_max_namedtuple(x, dim=-1):
    e = torch.exp(x - x.max(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)


def softmax_sum_without_keepdim(x, dim=-1):
    e = torch.exp(x - x.amax(dim=dim, keepdim=True))
    return e / e.sum(dim)


def softmax_raw_logsumexp(x, dim=-1):
    # right on paper; in float32 logsumexp of a row of -1e9 rounds back to -1e9, so every
    # weight of a fully masked row comes out 1 (summing to 4), not 1/4
    return torch.exp(x - torch.logsumexp(x, dim=dim, keepdim=True))


# ---- 01.1 correct alternatives
def softmax_via_log_softmax(x, dim=-1):
    return torch.log_softmax(x, dim=dim).exp()


def softmax_via_shifted_logsumexp(x, dim=-1):
    shifted = x - x.amax(dim=dim, keepdim=True)
    return torch.exp(shifted - torch.logsumexp(shifted, dim=dim, keepdim=True))


def softmax_with_torch_max(x, dim=-1):
    top, _ = torch.max(x, dim=dim, keepdim=True)
    numerator = torch.exp(x - top)
    return numerator / torch.sum(numerator, dim=dim, keepdim=True)


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


def attn_fill_neg_inf(Q, K, V, mask=None):
    scores = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(mask == 0, float("-inf"))
    w = scores.softmax(-1)
    return w @ V, w


def attn_zero_weights_after_softmax(Q, K, V, mask=None):
    w = torch.softmax(Q @ K.mT / math.sqrt(Q.shape[-1]), dim=-1)
    if mask is not None:
        w = w * mask
    return w @ V, w


def attn_renormalise_after_softmax(Q, K, V, mask=None):
    w = torch.softmax(Q @ K.mT / math.sqrt(Q.shape[-1]), dim=-1)
    if mask is not None:
        w = w * mask
        w = w / w.sum(dim=-1, keepdim=True)
    return w @ V, w


def attn_scaled_by_d_v(Q, K, V, mask=None):
    return attn(Q, K, V, mask, scale=lambda _: math.sqrt(V.shape[-1]))


def attn_own_naive_softmax(Q, K, V, mask=None):
    scores = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(mask == 0, -1e9)
    e = torch.exp(scores)
    w = e / e.sum(-1, keepdim=True)
    return w @ V, w


def attn_bitwise_not_mask(Q, K, V, mask=None):
    scores = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, -1e9)
    w = scores.softmax(-1)
    return w @ V, w


def attn_truthy_mask(Q, K, V, mask=None):
    scores = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])
    if mask:
        scores = scores.masked_fill(mask == 0, -1e9)
    w = scores.softmax(-1)
    return w @ V, w


def attn_scaled_by_seq_len(Q, K, V, mask=None):
    return attn(Q, K, V, mask, scale=lambda _: math.sqrt(K.shape[-2]))


def attn_weights_first(Q, K, V, mask=None):
    out, w = attn(Q, K, V, mask, scale=math.sqrt)
    return w, out


# ---- 01.2 correct alternatives
def attn_fused_output(Q, K, V, mask=None):
    """The output from PyTorch's kernel with the lesson's -1e9 as an additive mask."""
    additive = None
    if mask is not None:
        additive = torch.zeros(mask.shape, dtype=Q.dtype).masked_fill(mask == 0, -1e9)
    out = F.scaled_dot_product_attention(Q, K, V, attn_mask=additive)
    scores = Q @ K.mT / math.sqrt(Q.shape[-1]) + (0 if additive is None else additive)
    return out, scores.softmax(-1)


def attn_finfo_min(Q, K, V, mask=None):
    scores = torch.einsum("...ld,...sd->...ls", Q, K) * Q.shape[-1] ** -0.5
    if mask is not None:
        scores = torch.where(mask.bool(), scores, torch.finfo(scores.dtype).min)
    w = F.softmax(scores, dim=-1)
    return torch.einsum("...ls,...sd->...ld", w, V), w


# ---- 01.3 the additive attention bias of a padded batch
def _keys(lengths, seq_len):
    return torch.arange(seq_len)[None, :] < torch.as_tensor(lengths)[:, None]


def bias_pads_the_queries(lengths, seq_len, causal=True):
    real = _keys(lengths, seq_len)
    ok = real[:, :, None] & (torch.tril(torch.ones(seq_len, seq_len)).bool() if causal
                             else torch.ones(seq_len, seq_len).bool())
    return torch.zeros(ok.shape).masked_fill(~ok, -1e9)


def bias_with_inf(lengths, seq_len, causal=True):
    ok = _keys(lengths, seq_len)[:, None, :].expand(-1, seq_len, -1)
    if causal:
        ok = ok & torch.tril(torch.ones(seq_len, seq_len)).bool()
    return torch.zeros(ok.shape).masked_fill(~ok, float("-inf"))


def bias_boolean(lengths, seq_len, causal=True):
    ok = _keys(lengths, seq_len)[:, None, :].expand(-1, seq_len, -1)
    return ok & torch.tril(torch.ones(seq_len, seq_len)).bool() if causal else ok


def bias_not_expanded(lengths, seq_len, causal=True):
    ok = _keys(lengths, seq_len)[:, None, :]
    if causal:
        ok = ok & torch.tril(torch.ones(seq_len, seq_len)).bool()
    return torch.zeros(ok.shape).masked_fill(~ok, -1e9)


def bias_mask_times_minus_big(lengths, seq_len, causal=True):
    ok = _keys(lengths, seq_len)[:, None, :].expand(-1, seq_len, -1).float()
    if causal:
        ok = ok * torch.tril(torch.ones(seq_len, seq_len))
    return ok * -1e9


def bias_lengths_inclusive(lengths, seq_len, causal=True):
    real = torch.arange(seq_len)[None, :] <= torch.as_tensor(lengths)[:, None]
    ok = real[:, None, :].expand(-1, seq_len, -1)
    if causal:
        ok = ok & torch.tril(torch.ones(seq_len, seq_len)).bool()
    return torch.zeros(ok.shape).masked_fill(~ok, -1e9)


def bias_triu(lengths, seq_len, causal=True):
    ok = _keys(lengths, seq_len)[:, None, :].expand(-1, seq_len, -1)
    if causal:
        ok = ok & torch.triu(torch.ones(seq_len, seq_len)).bool()
    return torch.zeros(ok.shape).masked_fill(~ok, -1e9)


def bias_causal_always(lengths, seq_len, causal=True):
    ok = _keys(lengths, seq_len)[:, None, :] & torch.tril(torch.ones(seq_len, seq_len)).bool()
    return torch.zeros(ok.shape).masked_fill(~ok, -1e9)


def bias_row_by_row(lengths, seq_len, causal=True):
    rows = []
    for n in lengths:
        row = torch.full((seq_len, seq_len), -1e9)
        row[:, :n] = 0.0
        if causal:
            row = row.masked_fill(torch.ones(seq_len, seq_len).triu(1).bool(), -1e9)
        rows.append(row)
    return torch.stack(rows)


def bias_positive_fill(lengths, seq_len, causal=True):
    return -get_exercise("01.3").reference(lengths, seq_len, causal)


# ---- 01.3 correct alternatives
def bias_by_loops(lengths, seq_len, causal=True):
    lengths = [int(n) for n in lengths]
    out = torch.zeros(len(lengths), seq_len, seq_len)
    for b, n in enumerate(lengths):
        for i in range(seq_len):
            for j in range(seq_len):
                if j >= n or (causal and j > i):
                    out[b, i, j] = -1e9
    return out


def bias_from_course_masks(lengths, seq_len, causal=True):
    from course_utils.masks import bool_to_additive, causal_mask, padding_mask_from_lengths
    ok = padding_mask_from_lengths(torch.as_tensor(lengths), seq_len)
    ok = (ok & causal_mask(seq_len)) if causal else ok.expand(-1, seq_len, -1)
    return bool_to_additive(ok)


@pytest.mark.parametrize("ex_id, wrong, why", [
    ("01.1", softmax_naive, "subtract the maximum"),
    ("01.1", softmax_last_axis_only, "always normalises the last axis"),
    ("01.1", softmax_max_without_keepdim, "keepdim=True"),
    ("01.1", softmax_over_everything, "whole tensor"),
    ("01.1", softmax_in_place, "in place"),
    ("01.1", softmax_minus_min, "shifted by the minimum"),
    ("01.1", softmax_minus_mean, "shifted by the mean"),
    ("01.1", softmax_global_max_row_sums, "maximum of the whole tensor"),
    ("01.1", softmax_clamped, "Subtract the maximum along `dim`"),
    ("01.1", softmax_nan_patched, "must sum to 1"),
    ("01.1", softmax_in_float32, "dtype"),
    ("01.1", softmax_shift_dim_sum_last, "the same axis you took the maximum over"),
    ("01.1", softmax_max_namedtuple, "unsupported operand type"),
    ("01.1", softmax_sum_without_keepdim, "must sum to 1"),
    ("01.1", softmax_raw_logsumexp, "must sum to 1"),
    ("01.2", attn_without_scale, "not divided by sqrt(d_k)"),
    ("01.2", attn_scaled_by_d_k, "divided by d_k"),
    ("01.2", attn_softmax_over_queries, "dim=-2"),
    ("01.2", attn_mask_inverted, "mask is inverted"),
    ("01.2", attn_mask_ignored, "mask was ignored"),
    ("01.2", attn_output_only, "tuple of 2 items"),
    ("01.2", attn_fill_neg_inf, "filled the blocked scores with -inf"),
    ("01.2", attn_zero_weights_after_softmax, "after the softmax, so they no longer sum to 1"),
    ("01.2", attn_renormalise_after_softmax, "renormalised"),
    ("01.2", attn_scaled_by_d_v, "values' width"),
    ("01.2", attn_own_naive_softmax, "overflows on large scores"),
    ("01.2", attn_bitwise_not_mask, "~mask"),
    ("01.2", attn_truthy_mask, "ambiguous"),
    ("01.2", attn_scaled_by_seq_len, "/ sqrt(d_k)"),
    ("01.2", attn_weights_first, "shape"),
    ("01.3", bias_pads_the_queries, "Padding hides *keys*"),
    ("01.3", bias_with_inf, "not -inf"),
    ("01.3", bias_boolean, "additive float form"),
    ("01.3", bias_not_expanded, "expand a (batch, 1, seq_len) key mask"),
    ("01.3", bias_mask_times_minus_big, "The bias is inverted"),
    ("01.3", bias_lengths_inclusive, "(use <, not <=)"),
    ("01.3", bias_triu, "not triu"),
    ("01.3", bias_causal_always, "but that key is a real token the query may see"),
    ("01.3", bias_positive_fill, "large *negative* value"),
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
    assert _verdict("01.3", bias_by_loops).passed
    assert _verdict("01.3", bias_from_course_masks).passed
    assert _verdict("01.3", bias_row_by_row).passed  # a loop over the sequences
    assert _verdict("01.1", softmax_via_log_softmax).passed
    assert _verdict("01.1", softmax_via_shifted_logsumexp).passed
    assert _verdict("01.1", softmax_with_torch_max).passed
    assert _verdict("01.2", attn_fused_output).passed
    assert _verdict("01.2", attn_finfo_min).passed


def test_the_old_gaps_are_closed():
    """The wrong answers that used to pass (issue #15) meet the case that now catches them."""
    labels = {"01.1": [c.label for c in _cases("01.1")], "01.2": [c.label for c in _cases("01.2")]}
    assert any("spanning more than 88" in lbl for lbl in labels["01.1"])
    assert any("-1e9 beside ordinary rows" in lbl for lbl in labels["01.1"])
    assert any("fully masked" in lbl for lbl in labels["01.2"])
    assert max(c.args[1] for c in _cases("01.3")) > 16
    assert any(0 in list(c.args[0]) for c in _cases("01.3"))  # a fully padded sequence


def test_fully_masked_query_gets_equal_weights_as_the_lesson_says():
    """The expected behaviour the prose promises: the -1e9 fill gives a uniform row."""
    Q, K, V = torch.randn(3, 4), torch.randn(5, 4), torch.randn(5, 2)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[1] = False
    out, w = get_exercise("01.2").reference(Q, K, V, mask)
    assert torch.allclose(w[1], torch.full((5,), 0.2))
    assert torch.allclose(out[1], V.mean(0), atol=1e-6)
    # and it matches PyTorch's kernel on every row that has an allowed key
    theirs = F.scaled_dot_product_attention(Q, K, V, attn_mask=mask)
    assert torch.allclose(out[[0, 2]], theirs[[0, 2]], atol=1e-6)


def _cases(ex_id) -> list[Case]:
    ex = get_exercise(ex_id)
    return list(ex.cases(torch.Generator().manual_seed(ex.seed)))


@pytest.mark.parametrize("ex_id", ["01.1", "01.2", "01.3"])
def test_every_case_says_what_it_is_and_what_it_catches(ex_id):
    for case in _cases(ex_id):
        assert case.label and case.catches, case


@pytest.mark.parametrize("ex_id", ["01.1", "01.2", "01.3"])
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
