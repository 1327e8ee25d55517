"""Known-wrong answers to lesson 06's exercises: the grader must reject each, saying why.

Written here independently of the grader's own list of mistakes: a learner's LoRA layer
written from scratch (06.1) with one wrong idea per subclass, and counting functions (06.2).
"""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers.pytorch_utils import Conv1D

from course_utils.finetune.lora import LoRALayer, count_trainable_parameters
from course_utils.grading import get_exercise, run_exercise


def _verdict(ex_id, fn):
    return run_exercise(get_exercise(ex_id), fn)


# ---- 06.1 the LoRA layer, as a learner writes it
class LearnerLoRA(nn.Module):
    """A correct answer written independently: F.linear per layout, a merged flag."""

    def __init__(self, base, r, alpha, dropout=0.0):
        super().__init__()
        self.base = base
        self.is_conv = isinstance(base, Conv1D)
        d_in, d_out = base.weight.shape if self.is_conv else base.weight.shape[::-1]
        d_in, d_out = self.dims(d_in, d_out)
        base.weight.requires_grad = self.base_trainable
        if base.bias is not None:
            base.bias.requires_grad = self.base_trainable
        self.lora_A = nn.Parameter(torch.zeros(r, d_in, dtype=self.dtype(base)))
        self.lora_B = nn.Parameter(torch.zeros(d_out, r, dtype=self.dtype(base)))
        self.init_ab()
        self.scaling = self.scale(alpha, r)
        self.p = dropout
        self.merged = False

    base_trainable = False

    def dims(self, d_in, d_out):
        return d_in, d_out

    def dtype(self, base):
        return base.weight.dtype

    def init_ab(self):
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def scale(self, alpha, r):
        return alpha / r

    def base_out(self, x):
        w = self.base.weight.T if self.is_conv else self.base.weight
        return F.linear(x, w, self.base.bias)

    def delta(self):
        d = self.scaling * (self.lora_B @ self.lora_A)
        return d.T if self.is_conv else d

    def forward(self, x):
        if self.merged:
            return self.base_out(x)
        h = F.dropout(x, self.p, self.training)
        return self.base_out(x) + self.scaling * F.linear(F.linear(h, self.lora_A), self.lora_B)

    def merge(self):
        if not self.merged:
            self.base.weight.data += self.delta()
            self.merged = True

    def unmerge(self):
        if self.merged:
            self.base.weight.data -= self.delta()
            self.merged = False


class EinsumLoRA(LearnerLoRA):
    """Also correct: the LoRA path through einsum and self.base(x) for the frozen path."""

    def base_out(self, x):
        return self.base(x)

    def forward(self, x):
        if self.merged:
            return self.base(x)
        h = F.dropout(x, self.p, self.training)
        return self.base(x) + torch.einsum("...i,ri,or->...o", h, self.lora_A,
                                           self.lora_B) * self.scaling


class DropoutOnBothPaths(LearnerLoRA):
    def forward(self, x):
        if self.merged:
            return self.base_out(x)
        x = F.dropout(x, self.p, self.training)
        return self.base_out(x) + self.scaling * (x @ self.lora_A.T @ self.lora_B.T)


class DropoutOnTheUpdate(LearnerLoRA):
    def forward(self, x):
        if self.merged:
            return self.base_out(x)
        update = x @ self.lora_A.T @ self.lora_B.T
        return self.base_out(x) + self.scaling * F.dropout(update, self.p, self.training)


class ROverAlpha(LearnerLoRA):
    def scale(self, alpha, r):
        return r / alpha


class FloorDivision(LearnerLoRA):
    def scale(self, alpha, r):
        return alpha // r


class BRandomAZero(LearnerLoRA):
    def init_ab(self):
        nn.init.kaiming_uniform_(self.lora_B, a=math.sqrt(5))


class BothRandom(LearnerLoRA):
    def init_ab(self):
        nn.init.normal_(self.lora_A)
        nn.init.normal_(self.lora_B, std=0.01)


class Conv1DAsLinear(LearnerLoRA):
    def base_out(self, x):
        return F.linear(x, self.base.weight, self.base.bias)

    def delta(self):
        return self.scaling * (self.lora_B @ self.lora_A)


class Conv1DShapesSwapped(LearnerLoRA):
    def dims(self, d_in, d_out):
        return (d_out, d_in) if self.is_conv else (d_in, d_out)


class MergeForgetsScaling(LearnerLoRA):
    def delta(self):
        d = self.lora_B @ self.lora_A
        return d.T if self.is_conv else d


class MergeWithoutAFlag(LearnerLoRA):
    def merge(self):
        self.base.weight.data += self.delta()
        self.merged = True


class MergedStillAddsTheUpdate(LearnerLoRA):
    def forward(self, x):
        h = F.dropout(x, self.p, self.training)
        return self.base_out(x) + self.scaling * (h @ self.lora_A.T @ self.lora_B.T)


class BaseLeftTrainable(LearnerLoRA):
    base_trainable = True


class AlwaysFloat32(LearnerLoRA):
    def dtype(self, base):
        return torch.float32


class NoMergeMethods(nn.Module):
    def __init__(self, base, r, alpha, dropout=0.0):
        super().__init__()
        helper = LearnerLoRA(base, r, alpha, dropout)
        self.base, self.lora_A, self.lora_B = helper.base, helper.lora_A, helper.lora_B
        self.helper_forward = helper.forward.__func__.__get__(helper)

    def forward(self, x):
        return self.helper_forward(x)


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



@pytest.mark.parametrize("ex_id, fn, words", [
    ("06.1", DropoutOnBothPaths, "Dropout is on the LoRA path only"),
    ("06.1", DropoutOnTheUpdate, "Dropout belongs on the LoRA path's input only"),
    ("06.1", ROverAlpha, "upside down"),
    ("06.1", FloorDivision, "integer division"),
    ("06.1", BRandomAZero, "lora_B does not start at zero and lora_A does"),
    ("06.1", BothRandom, "lora_B does not start at zero. LoRA starts with B = 0"),
    ("06.1", Conv1DAsLinear, "stores its weight as (d_in, d_out)"),
    ("06.1", Conv1DShapesSwapped, "`lora_A` has shape (2, 4), but (2, 7) is expected"),
    ("06.1", MergeForgetsScaling, "same scaled update"),
    ("06.1", MergeWithoutAFlag, "second merge() adds the update again"),
    ("06.1", MergedStillAddsTheUpdate, "forward must skip the LoRA path"),
    ("06.1", BaseLeftTrainable, "Freeze the wrapped layer"),
    ("06.1", AlwaysFloat32, "make A and B like the base weight"),
    ("06.1", NoMergeMethods, "no merge() method"),
    ("06.2", count_everything_trainable, "Frozen parameters count as trainable"),
    ("06.2", count_tensors, "counted tensors"),
    ("06.2", count_state_dict, "buffers"),
    ("06.2", count_named_with_duplicates, "counts it twice"),
    ("06.2", count_frozen_as_trainable, "swapped"),
    ("06.2", count_with_grad, "p.grad is None"),
    ("06.2", count_modules_recursively, "once per enclosing module"),
    ("06.2", count_rows, "but the model has"),
    ("06.2", count_total_first, "wrong order"),
    ("06.2", count_then_unfreeze, "changed its input `model` in place"),
    ("06.2", count_unfrozen_first, "changed its input `model` in place"),
    ("06.2", count_lora_by_name, "trainable is 0, but the model has"),
    ("06.2", count_hf_method, "raised AttributeError"),
])
def test_known_wrong_answers_are_rejected_with_a_reason(ex_id, fn, words):
    result = _verdict(ex_id, fn)
    assert result.status == "failed"
    assert words in result.message, result.message


@pytest.mark.parametrize("ex_id, fn", [
    ("06.1", LoRALayer), ("06.1", LearnerLoRA), ("06.1", EinsumLoRA),
    ("06.2", count_trainable_parameters), ("06.2", count_by_modules),
    ("06.2", count_by_storage),
])
def test_references_and_other_correct_answers_pass(ex_id, fn):
    verdict = _verdict(ex_id, fn)
    assert verdict.passed, verdict.message


def test_a_function_instead_of_a_class_is_refused_clearly():
    verdict = _verdict("06.1", lambda base, r, alpha: base)
    assert not verdict.passed and "pass your nn.Module subclass itself" in verdict.message


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
        copy_ = copy.deepcopy(model)
        assert copy_ == model, case.label
        params = list(copy_.parameters())
        if params:
            params[-1].requires_grad_(not params[-1].requires_grad)
            assert copy_ != model, case.label


@pytest.mark.parametrize("ex_id", ["06.1", "06.2", "06.3", "06.4"])
def test_every_case_says_what_it_catches(ex_id):
    ex = get_exercise(ex_id)
    for case in ex.cases(torch.Generator().manual_seed(ex.seed)):
        assert case.label and case.catches, case


@pytest.mark.parametrize("ex_id", ["06.2", "06.3", "06.4"])
def test_every_known_mistake_runs_on_every_case(ex_id):
    """A mistake's hint is shown only when the learner matches it on every case."""
    ex = get_exercise(ex_id)
    for case in ex.cases(torch.Generator().manual_seed(ex.seed)):
        if ex_id == "06.3":
            case.kwargs.pop("input_ids")
        for wrong, _ in ex.mistakes:
            wrong(*copy.deepcopy(case.args), **case.kwargs)


def test_every_known_lora_mistake_builds_and_runs_on_every_case():
    ex = get_exercise("06.1")
    for case in ex.cases(torch.Generator().manual_seed(ex.seed)):
        base = case.args[0]
        square = base.weight.shape[0] == base.weight.shape[1]
        for wrong, _ in ex.mistakes:
            layer = wrong(*copy.deepcopy(case.args), **case.kwargs)
            if "conv1d" in wrong.__name__ and isinstance(base, Conv1D) and not square:
                with pytest.raises(RuntimeError):  # as the learner's own code raises
                    layer(case.inputs[0])
                continue
            with torch.no_grad():
                layer.lora_B.normal_()
                layer(case.inputs[0])
                layer.merge()
                layer.merge()
                layer.unmerge()
                layer(case.inputs[0])


def test_counting_is_checked_against_peft():
    """An independent reference: peft's own count on a LoRA model."""
    from _tiny_lm import tiny_gpt2
    from peft import LoraConfig, get_peft_model

    base = tiny_gpt2(50, n_positions=16, n_embd=16, bos_token_id=0, eos_token_id=0)
    model = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["c_attn"],
                                            fan_in_fan_out=True))
    assert count_trainable_parameters(model) == model.get_nb_trainable_parameters()


@pytest.mark.parametrize("ex_id", ["06.1", "06.2", "06.3", "06.4"])
def test_known_mistakes_are_rejected_with_their_own_hint(ex_id):
    ex = get_exercise(ex_id)
    for wrong, hint in ex.mistakes:
        result = run_exercise(ex, wrong)
        assert result.status == "failed" and hint in result.message, (wrong.__name__,
                                                                     result.message)


def test_06_1s_expected_answers_are_peft_s_on_every_case():
    """The grader's expected outputs (eval and training mode, merged, unmerged) are those of
    peft's LoRA layer holding the same base weights, A and B."""
    from peft import LoraConfig, get_peft_model

    class Holder(nn.Module):
        def __init__(self, layer):
            super().__init__()
            self.layer = layer

        def forward(self, x):
            return self.layer(x)

    ex = get_exercise("06.1")
    for case in ex.cases(torch.Generator().manual_seed(ex.seed)):
        expected, state = ex.expected_of(copy.deepcopy(case))
        base = copy.deepcopy(case.args[0])
        kw = case.kwargs
        model = get_peft_model(Holder(base), LoraConfig(
            r=kw["r"], lora_alpha=kw["alpha"], lora_dropout=kw.get("dropout", 0.0),
            target_modules=["layer"], fan_in_fan_out=isinstance(base, Conv1D)))
        layer = model.base_model.model.layer
        with torch.no_grad():
            layer.lora_A["default"].weight.copy_(state["lora_A"])
            layer.lora_B["default"].weight.copy_(state["lora_B"])
        (x,) = case.inputs
        model.train(False)
        torch.testing.assert_close(model(x).detach(), expected["output"], msg=case.label)
        model.train(True)
        with torch.random.fork_rng():
            torch.manual_seed(ex.seed)
            torch.testing.assert_close(model(x).detach(), expected["train_output"],
                                       msg=case.label)
        model.train(False)
        layer.merge()
        torch.testing.assert_close(model(x).detach(), expected["merged_output"], msg=case.label)
        torch.testing.assert_close(layer.base_layer.weight.detach(), expected["merged_weight"])
        layer.unmerge()
        torch.testing.assert_close(model(x).detach(), expected["unmerged_output"],
                                   msg=case.label)


def test_a_version_3_file_drops_lesson_06s_replaced_exercises_once(monkeypatch, tmp_path):
    """The old one-line formulas 06.1 (forward) and 06.3 (merge) are gone; 06.2 stays."""
    import json

    from course_utils.grading import store

    v3 = {"06.1": {"status": "passed", "attempts": 1}, "06.2": {"status": "failed",
                                                               "attempts": 4},
          "06.3": {"status": "passed"}, "05.1": {"status": "passed"}, "_version": 3}
    target = tmp_path / "p.json"
    target.write_text(json.dumps(v3))
    monkeypatch.setenv("COURSE_PROGRESS_FILE", str(target))
    first = store.load()
    assert not {"06.1", "06.3"} & set(first)
    assert first["06.2"]["attempts"] == 4 and first["05.1"]["status"] == "passed"
    assert store.load() == first


# ---- 06.3 injection, as learners write it
def _linear(module):
    return isinstance(module, nn.Linear | Conv1D)


def learner_inject(model, target_modules, r, alpha, dropout=0.0, layer=LoRALayer):
    """Correct, written independently: regex or suffix match, freeze, replace via parents."""
    import re

    def wanted(name):
        if isinstance(target_modules, str):
            return re.fullmatch(target_modules, name) is not None
        return any(name.split(".")[-len(t.split(".")):] == t.split(".") for t in target_modules)

    names = [n for n, m in model.named_modules() if n and wanted(n) and _linear(m)]
    model.requires_grad_(False)
    for name in names:
        *path, child = name.split(".")
        parent = model
        for part in path:
            parent = getattr(parent, part)
        setattr(parent, child, layer(getattr(parent, child), r, alpha, dropout))
    return model


def inject_no_freezing(model, target_modules, r, alpha, dropout=0.0, layer=LoRALayer):
    """Matches like peft, but freezes nothing itself (only the wrapped layers end up frozen)."""
    import re

    for name, module in list(model.named_modules()):
        hit = (re.fullmatch(target_modules, name) if isinstance(target_modules, str)
               else any(name == t or name.endswith("." + t) for t in target_modules))
        if name and hit and _linear(module):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, layer(module, r, alpha, dropout))
    return model


def inject_then_freeze(model, target_modules, r, alpha, dropout=0.0, layer=LoRALayer):
    learner_inject(model, target_modules, r, alpha, dropout, layer)
    for p in model.parameters():
        p.requires_grad = False
    return model


def inject_by_substring(model, target_modules, r, alpha, dropout=0.0, layer=LoRALayer):
    targets = [target_modules] if isinstance(target_modules, str) else target_modules
    model.requires_grad_(False)
    for name, module in list(model.named_modules()):
        if _linear(module) and any(t in name for t in targets):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, layer(module, r, alpha, dropout))
    return model


def inject_by_last_name(model, target_modules, r, alpha, dropout=0.0, layer=LoRALayer):
    model.requires_grad_(False)
    for name, module in list(model.named_modules()):
        if _linear(module) and name.split(".")[-1] in list(target_modules):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, layer(module, r, alpha, dropout))
    return model


def inject_setattr_on_the_model(model, target_modules, r, alpha, dropout=0.0, layer=LoRALayer):
    model.requires_grad_(False)
    for name, module in list(model.named_modules()):
        if _linear(module) and any(name.endswith("." + t) for t in target_modules):
            setattr(model, name.replace(".", "_"), layer(module, r, alpha, dropout))
    return model


def inject_with_default_rank(model, target_modules, r, alpha, dropout=0.0, layer=LoRALayer):
    return learner_inject(model, target_modules, 8, 16, dropout, layer)


def inject_returns_nothing(model, target_modules, r, alpha, dropout=0.0, layer=LoRALayer):
    learner_inject(model, target_modules, r, alpha, dropout, layer)


def inject_misses_top_level_names(model, target_modules, r, alpha, dropout=0.0,
                                  layer=LoRALayer):
    """Only `name.endswith("." + t)`: a top-level layer (lm_head) has no dot before it."""
    if isinstance(target_modules, str):
        return learner_inject(model, target_modules, r, alpha, dropout, layer)
    model.requires_grad_(False)
    for name, module in list(model.named_modules()):
        if _linear(module) and any(name.endswith("." + t) for t in target_modules):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, layer(module, r, alpha, dropout))
    return model


def inject_string_as_one_name(model, target_modules, r, alpha, dropout=0.0,
                              layer=LoRALayer):
    targets = [target_modules] if isinstance(target_modules, str) else target_modules
    model.requires_grad_(False)
    for name, module in list(model.named_modules()):
        if _linear(module) and any(name.endswith("." + t) for t in targets):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, layer(module, r, alpha, dropout))
    return model


@pytest.mark.parametrize("fn, words", [
    (inject_no_freezing, "Freeze the whole model first"),
    (inject_then_freeze, "froze the model after wrapping"),
    (inject_by_substring, "not any name containing it"),
    (inject_by_last_name, "dotted suffix"),
    (inject_setattr_on_the_model, "these should be wrapped but are not"),
    (inject_with_default_rank, "Pass r, alpha and dropout on"),
    (inject_returns_nothing, "return the model (changed in place), not a NoneType"),
    (inject_string_as_one_name, "these should be wrapped but are not"),
    (inject_misses_top_level_names, "these should be wrapped but are not: ['lm_head']"),
])
def test_wrong_injections_are_rejected_with_a_reason(fn, words):
    result = _verdict("06.3", fn)
    assert result.status == "failed"
    assert words in result.message, result.message


def test_the_reference_and_a_learner_injection_pass():
    from course_utils.finetune.lora import inject_lora

    for fn in (inject_lora, learner_inject):
        verdict = _verdict("06.3", fn)
        assert verdict.passed, verdict.message


@pytest.mark.parametrize("targets, r, alpha", [
    (["c_attn"], 2, 4.0), (["c_attn", "c_proj", "c_fc"], 3, 12.0), (["attn.c_proj"], 1, 2.0),
    (r"transformer\.h\.[02]\.attn\.c_attn", 4, 4.0)])
def test_injected_logits_equal_peft_s_with_the_same_a_and_b(targets, r, alpha):
    """The reference injection against peft on a 3-block GPT-2 of width 24: same targets
    (a list, or one regex), A and B copied from peft, the same logits and trainable names."""
    from _tiny_lm import tiny_gpt2
    from peft import LoraConfig, get_peft_model

    from course_utils.finetune.lora import inject_lora

    base = tiny_gpt2(40, n_positions=12, n_embd=24, n_layer=3, n_head=3).eval()
    theirs = get_peft_model(copy.deepcopy(base), LoraConfig(
        r=r, lora_alpha=alpha, target_modules=targets, fan_in_fan_out=True, lora_dropout=0.0))
    mine = inject_lora(copy.deepcopy(base), targets, r=r, alpha=alpha)
    inner = theirs.base_model.model
    wrapped = [n for n, m in mine.named_modules() if isinstance(m, LoRALayer)]
    assert wrapped and wrapped == [n for n, m in inner.named_modules() if hasattr(m, "lora_A")
                                   and not isinstance(m, nn.ModuleDict)]
    for name in wrapped:
        layer, target = mine.get_submodule(name), inner.get_submodule(name)
        with torch.no_grad():
            target.lora_B["default"].weight.normal_()
            layer.lora_A.copy_(target.lora_A["default"].weight)
            layer.lora_B.copy_(target.lora_B["default"].weight)
    assert sum(p.numel() for p in mine.parameters() if p.requires_grad) == \
        theirs.get_nb_trainable_parameters()[0]
    ids = torch.randint(0, 40, (2, 9))
    with torch.no_grad():
        out = mine(input_ids=ids).logits
        assert not torch.allclose(out, base(input_ids=ids).logits, atol=1e-3)
        torch.testing.assert_close(out, theirs(input_ids=ids).logits)


# ---- 06.4 soft prompts, as learners write them
def sp_learner(prompt, input_ids, attention_mask, labels, embedding):
    """Correct, written independently: repeat instead of expand, F.pad for mask and labels."""
    b, n = input_ids.shape[0], prompt.shape[0]
    out = {"inputs_embeds": torch.cat([prompt.repeat(b, 1, 1), embedding(input_ids)], 1)}
    out["attention_mask"] = None if attention_mask is None else F.pad(attention_mask, (n, 0),
                                                                      value=1)
    out["labels"] = None if labels is None else F.pad(labels, (n, 0), value=-100)
    return out


def sp_prompt_after(prompt, input_ids, attention_mask, labels, embedding):
    out = sp_learner(prompt, input_ids, attention_mask, labels, embedding)
    b = input_ids.shape[0]
    out["inputs_embeds"] = torch.cat([embedding(input_ids), prompt.repeat(b, 1, 1)], 1)
    return out


def sp_mask_of_zeros(prompt, input_ids, attention_mask, labels, embedding):
    out = sp_learner(prompt, input_ids, attention_mask, labels, embedding)
    if attention_mask is not None:
        out["attention_mask"] = F.pad(attention_mask, (prompt.shape[0], 0), value=0)
    return out


def sp_mask_padded_on_the_right(prompt, input_ids, attention_mask, labels, embedding):
    out = sp_learner(prompt, input_ids, attention_mask, labels, embedding)
    if attention_mask is not None:
        out["attention_mask"] = F.pad(attention_mask, (0, prompt.shape[0]), value=1)
    return out


def sp_same_mask(prompt, input_ids, attention_mask, labels, embedding):
    out = sp_learner(prompt, input_ids, attention_mask, labels, embedding)
    out["attention_mask"] = attention_mask
    return out


def sp_labels_padded_with_pad_id(prompt, input_ids, attention_mask, labels, embedding):
    out = sp_learner(prompt, input_ids, attention_mask, labels, embedding)
    if labels is not None:
        out["labels"] = F.pad(labels, (prompt.shape[0], 0), value=0)
    return out


def sp_labels_unchanged(prompt, input_ids, attention_mask, labels, embedding):
    out = sp_learner(prompt, input_ids, attention_mask, labels, embedding)
    out["labels"] = labels
    return out


def sp_prompt_as_a_new_tensor(prompt, input_ids, attention_mask, labels, embedding):
    out = sp_learner(torch.tensor(prompt.tolist(), dtype=prompt.dtype), input_ids,
                     attention_mask, labels, embedding)
    return out


def sp_no_batch_repeat(prompt, input_ids, attention_mask, labels, embedding):
    out = sp_learner(prompt, input_ids, attention_mask, labels, embedding)
    out["inputs_embeds"] = torch.cat([prompt.unsqueeze(0), embedding(input_ids)], 1)
    return out


def sp_assumes_labels(prompt, input_ids, attention_mask, labels, embedding):
    out = sp_learner(prompt, input_ids, attention_mask, labels, embedding)
    out["labels"] = F.pad(labels, (prompt.shape[0], 0), value=-100)
    return out


def sp_in_float32(prompt, input_ids, attention_mask, labels, embedding):
    out = sp_learner(prompt, input_ids, attention_mask, labels, embedding)
    out["inputs_embeds"] = out["inputs_embeds"].float()
    return out


@pytest.mark.parametrize("fn, words", [
    (sp_prompt_after, "go in *front* of the text"),
    (sp_mask_of_zeros, "put ones (not zeros)"),
    (sp_mask_padded_on_the_right, "belong in front, where the virtual tokens are"),
    (sp_same_mask, "The attention mask must grow by n too"),
    (sp_labels_padded_with_pad_id, "not 0: with 0 the model is trained to predict token 0"),
    (sp_labels_unchanged, "put n labels of -100 in front"),
    (sp_prompt_as_a_new_tensor, "the prompt was detached"),
    (sp_no_batch_repeat, "raised RuntimeError"),
    (sp_assumes_labels, "raised TypeError"),
    (sp_in_float32, "torch.float64"),
])
def test_wrong_soft_prompts_are_rejected_with_a_reason(fn, words):
    result = _verdict("06.4", fn)
    assert result.status == "failed"
    assert words in result.message, result.message


def test_the_reference_and_a_learner_soft_prompt_pass():
    from course_utils.finetune.soft_prompt import soft_prompt_inputs

    for fn in (soft_prompt_inputs, sp_learner):
        verdict = _verdict("06.4", fn)
        assert verdict.passed, verdict.message


@pytest.mark.parametrize("n, batch, seq", [(3, 2, 5), (1, 3, 7), (11, 1, 4)])
def test_soft_prompt_inputs_give_peft_s_prompt_tuning_loss_and_logits(n, batch, seq):
    """The frozen model fed soft_prompt_inputs equals peft's prompt tuning with the same
    virtual embeddings copied in: logits at every position and the loss, with padding."""
    from _tiny_lm import tiny_gpt2
    from peft import PromptTuningConfig, TaskType, get_peft_model

    from course_utils.finetune.soft_prompt import soft_prompt_inputs

    base = tiny_gpt2(50, n_positions=32, n_embd=24, n_layer=2, n_head=3, seed=n).eval()
    peft_model = get_peft_model(copy.deepcopy(base), PromptTuningConfig(
        task_type=TaskType.CAUSAL_LM, num_virtual_tokens=n)).eval()
    prompt = torch.randn(n, 24)
    with torch.no_grad():
        peft_model.prompt_encoder["default"].embedding.weight.copy_(prompt)
    ids = torch.randint(0, 50, (batch, seq))
    mask = torch.ones(batch, seq, dtype=torch.long)
    mask[0, seq - 2:] = 0
    labels = ids.masked_fill(mask == 0, -100)
    with torch.no_grad():
        want = peft_model(input_ids=ids, attention_mask=mask, labels=labels)
        got = base(**soft_prompt_inputs(prompt, ids, mask, labels, base.get_input_embeddings()))
    torch.testing.assert_close(got.logits, want.logits)
    torch.testing.assert_close(got.loss, want.loss)
