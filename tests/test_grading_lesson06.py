"""Known-wrong answers to lesson 06's exercises: the grader must reject each, saying why.

Written here independently of the grader's own list of mistakes.
"""

import pytest
import torch

from course_utils.finetune.lora import count_trainable_parameters, lora_forward, merge_lora_weights
from course_utils.grading import get_exercise, run_exercise


def _verdict(ex_id, fn):
    return run_exercise(get_exercise(ex_id), fn)


# ---- 06.1 forward
def fwd(x, weight, bias, A, B, scale, with_base=True, with_bias=True):
    out = torch.nn.functional.linear(x, weight, bias if with_bias else None)
    return (out if with_base else 0) + scale * torch.nn.functional.linear(
        torch.nn.functional.linear(x, A), B)


def fwd_unscaled(x, weight, bias, A, B, alpha, r):
    return fwd(x, weight, bias, A, B, 1)


def fwd_r_over_alpha(x, weight, bias, A, B, alpha, r):
    return fwd(x, weight, bias, A, B, r / alpha)


def fwd_times_alpha(x, weight, bias, A, B, alpha, r):
    return fwd(x, weight, bias, A, B, alpha)


def fwd_update_only(x, weight, bias, A, B, alpha, r):
    return fwd(x, weight, bias, A, B, alpha / r, with_base=False)


def fwd_drops_bias(x, weight, bias, A, B, alpha, r):
    return fwd(x, weight, bias, A, B, alpha / r, with_bias=False)


def fwd_merged_first(x, weight, bias, A, B, alpha, r):
    """Correct: merge, then one linear layer."""
    return torch.nn.functional.linear(x, weight + alpha / r * B @ A, bias)


# ---- 06.2 counting
def count_everything_trainable(model):
    total = sum(p.numel() for p in model.parameters())
    return total, total


def count_tensors(model):
    return (len([p for p in model.parameters() if p.requires_grad]),
            len(list(model.parameters())))


def count_state_dict(model):
    sd = model.state_dict()
    return (sum(p.numel() for p in model.parameters() if p.requires_grad),
            sum(v.numel() for v in sd.values()))


def count_named_with_duplicates(model):
    named = list(model.named_parameters(remove_duplicate=False))
    return (sum(p.numel() for _, p in named if p.requires_grad),
            sum(p.numel() for _, p in named))


def count_frozen_as_trainable(model):
    return (sum(p.numel() for p in model.parameters() if not p.requires_grad),
            sum(p.numel() for p in model.parameters()))


def count_by_modules(model):
    """Correct: walk the modules without recursing, skipping shared tensors."""
    seen, trainable, total = set(), 0, 0
    for module in model.modules():
        for p in module.parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            total += p.numel()
            trainable += p.numel() * p.requires_grad
    return trainable, total


# ---- 06.3 merging
def merge_unscaled(weight, A, B, alpha, r):
    return weight + B @ A


def merge_r_over_alpha(weight, A, B, alpha, r):
    return weight + r / alpha * B @ A


def merge_transposed_update(weight, A, B, alpha, r):
    return weight + alpha / r * (B @ A).T


def merge_subtracts(weight, A, B, alpha, r):
    return weight - alpha / r * B @ A


def merge_only_update(weight, A, B, alpha, r):
    return alpha / r * B @ A


def merge_in_place(weight, A, B, alpha, r):
    weight += alpha / r * B @ A
    return weight


def merge_einsum(weight, A, B, alpha, r):
    """Correct, with einsum."""
    return weight + (alpha / r) * torch.einsum("or,ri->oi", B, A)


@pytest.mark.parametrize("ex_id, fn, words", [
    ("06.1", fwd_unscaled, "not scaled"),
    ("06.1", fwd_r_over_alpha, "upside down"),
    ("06.1", fwd_times_alpha, "alpha alone"),
    ("06.1", fwd_update_only, "*adds*"),
    ("06.1", fwd_drops_bias, "bias is missing"),
    ("06.2", count_everything_trainable, "Frozen parameters count as trainable"),
    ("06.2", count_tensors, "counted tensors"),
    ("06.2", count_state_dict, "buffers"),
    ("06.2", count_named_with_duplicates, "counts it twice"),
    ("06.2", count_frozen_as_trainable, "swapped"),
    ("06.3", merge_unscaled, "not scaled"),
    ("06.3", merge_r_over_alpha, "upside down"),
    ("06.3", merge_transposed_update, "transpose of the update"),
    ("06.3", merge_subtracts, "not subtracted"),
    ("06.3", merge_only_update, "only the update"),
    ("06.3", merge_in_place, "in place"),
])
def test_known_wrong_answers_are_rejected_with_a_reason(ex_id, fn, words):
    result = _verdict(ex_id, fn)
    assert result.status == "failed"
    assert words in result.message, result.message


@pytest.mark.parametrize("ex_id, fn", [
    ("06.1", lora_forward), ("06.1", fwd_merged_first),
    ("06.2", count_trainable_parameters), ("06.2", count_by_modules),
    ("06.3", merge_lora_weights), ("06.3", merge_einsum),
])
def test_references_and_other_correct_answers_pass(ex_id, fn):
    assert _verdict(ex_id, fn).passed


def test_grading_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _verdict("06.2", count_trainable_parameters)
    torch.testing.assert_close(torch.rand(3), expected)
