"""Known-wrong answers to lesson 06's exercises: the grader must reject each, saying why.

Written here independently of the grader's own list of mistakes.
"""

import math

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


def fwd_integer_division(x, weight, bias, A, B, alpha, r):
    scale = alpha // r
    return x @ weight.T + (0 if bias is None else bias) + scale * (x @ A.T @ B.T)


def fwd_rslora(x, weight, bias, A, B, alpha, r):
    return fwd(x, weight, bias, A, B, alpha / r ** 0.5)


def fwd_bias_in_both_paths(x, weight, bias, A, B, alpha, r):
    F = torch.nn.functional
    return F.linear(x, weight, bias) + alpha / r * F.linear(F.linear(x, A), B, bias)


def fwd_no_transpose(x, weight, bias, A, B, alpha, r):
    out = x @ weight
    if bias is not None:
        out = out + bias
    return out + alpha / r * (x @ A.T @ B.T)


def fwd_flattens_the_batch(x, weight, bias, A, B, alpha, r):
    flat = x.reshape(-1, x.shape[-1])  # and forgets to reshape back
    return fwd(flat, weight, bias, A, B, alpha / r)


def fwd_in_float32(x, weight, bias, A, B, alpha, r):
    x, weight, A, B = x.float(), weight.float(), A.float(), B.float()
    return fwd(x, weight, None if bias is None else bias.float(), A, B, alpha / r)


def fwd_assumes_a_bias(x, weight, bias, A, B, alpha, r):
    return x @ weight.T + bias + alpha / r * (x @ A.T @ B.T)


def fwd_einsum(x, weight, bias, A, B, alpha, r):
    """Correct, with einsum over any leading dimensions."""
    out = torch.einsum("...i,oi->...o", x, weight)
    if bias is not None:
        out = out + bias
    low = torch.einsum("...i,ri->...r", x, A)
    return out + (alpha / r) * torch.einsum("...r,or->...o", low, B)


def count_with_grad(model):
    params = list(model.parameters())
    return (sum(p.numel() for p in params if p.grad is not None),
            sum(p.numel() for p in params))


def count_modules_recursively(model):
    trainable = total = 0
    for module in model.modules():
        for p in module.parameters():
            total += p.numel()
            trainable += p.numel() if p.requires_grad else 0
    return trainable, total


def count_rows(model):
    params = list(model.parameters())
    return (sum(p.shape[0] for p in params if p.requires_grad),
            sum(p.shape[0] for p in params))


def count_total_first(model):
    params = list(model.parameters())
    return (sum(p.numel() for p in params),
            sum(p.numel() for p in params if p.requires_grad))


def count_then_unfreeze(model):
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = 0
    for p in model.parameters():
        p.requires_grad = True  # "so that every parameter is seen"
        total += p.numel()
    return trainable, total


def count_unfrozen_first(model):
    model.requires_grad_(True)
    return (sum(p.numel() for p in model.parameters() if p.requires_grad),
            sum(p.numel() for p in model.parameters()))


def count_lora_by_name(model):
    named = list(model.named_parameters())
    return (sum(p.numel() for name, p in named if "lora_" in name),
            sum(p.numel() for _, p in named))


def count_hf_method(model):
    return model.num_parameters(only_trainable=True), model.num_parameters()


def count_by_storage(model):
    """Correct: deduplicate by storage pointer over every name a tensor has."""
    seen = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        seen[p.data_ptr()] = p
    return (sum(p.numel() for p in seen.values() if p.requires_grad),
            sum(p.numel() for p in seen.values()))


def merge_integer_division(weight, A, B, alpha, r):
    return weight + (alpha // r) * (B @ A)


def merge_rslora(weight, A, B, alpha, r):
    return weight + alpha / math.sqrt(r) * (B @ A)


def merge_forgets_the_update(weight, A, B, alpha, r):
    merged = weight.clone()
    delta = alpha / r * (B @ A)  # computed, never added
    assert delta.shape == merged.shape
    return merged


def merge_a_t_b_t(weight, A, B, alpha, r):
    return weight + alpha / r * (A.T @ B.T)


def merge_through_data(weight, A, B, alpha, r):
    merged = weight
    merged.data.add_(alpha / r * (B @ A))
    return merged


def merge_in_float32(weight, A, B, alpha, r):
    return (weight.float() + alpha / r * (B.float() @ A.float()))


def merge_by_probing(weight, A, B, alpha, r):
    """Correct: the merged weight is the LoRA layer's answer to each unit vector."""
    eye = torch.eye(weight.shape[1], dtype=weight.dtype)
    return lora_forward(eye, weight, None, A, B, alpha, r).T


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
    ("06.1", fwd_integer_division, "integer division"),
    ("06.1", fwd_rslora, "rsLoRA"),
    ("06.1", fwd_bias_in_both_paths, "added once"),
    ("06.1", fwd_no_transpose, "raised RuntimeError"),
    ("06.1", fwd_flattens_the_batch, "has shape (8, 8), but the expected shape is (2, 4, 8)"),
    ("06.1", fwd_in_float32, "expected dtype is torch.float64"),
    ("06.1", fwd_assumes_a_bias, "raised TypeError"),
    ("06.2", count_with_grad, "p.grad is None"),
    ("06.2", count_modules_recursively, "once per enclosing module"),
    ("06.2", count_rows, "but the model has"),
    ("06.2", count_total_first, "wrong order"),
    ("06.2", count_then_unfreeze, "changed its input `model` in place"),
    ("06.2", count_unfrozen_first, "changed its input `model` in place"),
    ("06.2", count_lora_by_name, "trainable is 0, but the model has"),
    ("06.2", count_hf_method, "raised AttributeError"),
    ("06.3", merge_integer_division, "integer division"),
    ("06.3", merge_rslora, "rsLoRA"),
    ("06.3", merge_forgets_the_update, "came back unchanged"),
    ("06.3", merge_a_t_b_t, "transpose of the update"),
    ("06.3", merge_through_data, "in place"),
    ("06.3", merge_in_float32, "expected dtype is torch.float64"),
])
def test_known_wrong_answers_are_rejected_with_a_reason(ex_id, fn, words):
    result = _verdict(ex_id, fn)
    assert result.status == "failed"
    assert words in result.message, result.message


@pytest.mark.parametrize("ex_id, fn", [
    ("06.1", lora_forward), ("06.1", fwd_merged_first),
    ("06.2", count_trainable_parameters), ("06.2", count_by_modules),
    ("06.3", merge_lora_weights), ("06.3", merge_einsum),
    ("06.1", fwd_einsum), ("06.2", count_by_storage), ("06.3", merge_by_probing),
])
def test_references_and_other_correct_answers_pass(ex_id, fn):
    verdict = _verdict(ex_id, fn)
    assert verdict.passed, verdict.message


def test_grading_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _verdict("06.2", count_trainable_parameters)
    torch.testing.assert_close(torch.rand(3), expected)


def test_a_learner_who_changes_the_model_does_not_change_the_expected_answer():
    """The models are private copies: unfreezing everything is caught, not rewarded."""
    ex = get_exercise("06.2")
    case = ex.cases(torch.Generator().manual_seed(ex.seed))[0]
    model = case.args[0]
    before = [p.requires_grad for p in model.parameters()]
    verdict = run_exercise(ex, count_unfrozen_first)
    assert not verdict.passed and "in place" in verdict.message
    fresh = ex.cases(torch.Generator().manual_seed(ex.seed))[0].args[0]
    assert [p.requires_grad for p in fresh.parameters()] == before


def test_graded_models_compare_by_their_state():
    ex = get_exercise("06.2")
    cases = ex.cases(torch.Generator().manual_seed(ex.seed))
    for case in cases:
        model = case.args[0]
        copy_ = __import__("copy").deepcopy(model)
        assert copy_ == model, case.label
        params = list(copy_.parameters())
        if params:
            params[-1].requires_grad_(not params[-1].requires_grad)
            assert copy_ != model, case.label


@pytest.mark.parametrize("ex_id", ["06.1", "06.2", "06.3"])
def test_every_case_says_what_it_catches(ex_id):
    ex = get_exercise(ex_id)
    for case in ex.cases(torch.Generator().manual_seed(ex.seed)):
        assert case.label and case.catches, case


@pytest.mark.parametrize("ex_id", ["06.1", "06.2", "06.3"])
def test_every_known_mistake_runs_on_every_case(ex_id):
    """A mistake's hint is shown only when the learner matches it on every case."""
    ex = get_exercise(ex_id)
    for case in ex.cases(torch.Generator().manual_seed(ex.seed)):
        for wrong, _ in ex.mistakes:
            wrong(*__import__("copy").deepcopy(case.args), **case.kwargs)


def test_counting_is_checked_against_peft():
    """An independent reference: peft's own count on a LoRA model."""
    from _tiny_lm import tiny_gpt2
    from peft import LoraConfig, get_peft_model

    base = tiny_gpt2(50, n_positions=16, n_embd=16, bos_token_id=0, eos_token_id=0)
    model = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["c_attn"],
                                            fan_in_fan_out=True))
    assert count_trainable_parameters(model) == model.get_nb_trainable_parameters()


@pytest.mark.parametrize("ex_id", ["06.1", "06.2", "06.3"])
def test_known_mistakes_are_rejected_with_their_own_hint(ex_id):
    ex = get_exercise(ex_id)
    for wrong, hint in ex.mistakes:
        result = run_exercise(ex, wrong)
        assert result.status == "failed" and hint in result.message, (wrong.__name__,
                                                                     result.message)
