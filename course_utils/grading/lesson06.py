"""Lesson 06 exercises: a LoRA layer as a class with merge/unmerge (06.1), counting trainable
parameters (06.2), injecting LoRA layers by name (06.3), the inputs of prompt tuning (06.4).

Every mistake below is the reference with one wrong idea in it and runs on every case: the
grader names a mistake only when the learner's answer equals it on all cases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.pytorch_utils import Conv1D

from course_utils.finetune import lora, soft_prompt
from course_utils.grading.compare import Message, compare
from course_utils.grading.core import Case, Exercise, register
from course_utils.grading.exercise import Mismatch
from course_utils.grading.modules import ModuleCase, ModuleExercise, _load, forward_and_gradients

# --------------------------------------------------------------------------- 06.1 the layer


def _base_layer(rng: torch.Generator, kind: str, d_in: int, d_out: int, bias: bool = True,
                dtype: torch.dtype = torch.float32) -> nn.Module:
    """A frozen-to-be ``nn.Linear`` or GPT-2 ``Conv1D`` with random weights from ``rng``."""
    layer = nn.Linear(d_in, d_out, bias=bias) if kind == "linear" else Conv1D(d_out, d_in)
    layer = layer.to(dtype)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=rng, dtype=torch.float64).to(dtype) / 3)
    return layer


def _layer_cases(rng: torch.Generator):
    def x(*shape, dtype=torch.float32):
        return torch.randn(*shape, generator=rng, dtype=torch.float64).to(dtype)

    with torch.random.fork_rng():  # nn.Linear's own init must not move the learner's RNG
        yield ModuleCase((_base_layer(rng, "linear", 6, 5),), {"r": 2, "alpha": 4.0},
                         inputs=(x(3, 6),), label="nn.Linear 6 -> 5, r=2, alpha=4 (scaling 2)",
                         catches="no scaling; r / alpha; base layer not frozen; merge without "
                                 "the scaling; merge twice; unmerge that keeps the update")
        yield ModuleCase((_base_layer(rng, "conv1d", 6, 6),), {"r": 3, "alpha": 3.0},
                         inputs=(x(2, 4, 6),), label="a square GPT-2 Conv1D 6 -> 6 (weight is "
                                                     "(d_in, d_out))",
                         catches="Conv1D treated as Linear (runs on a square weight, wrong "
                                 "transpose); merge that adds B @ A untransposed")
        yield ModuleCase((_base_layer(rng, "conv1d", 7, 4),), {"r": 2, "alpha": 8.0},
                         inputs=(x(2, 3, 7),), label="Conv1D 7 -> 4 (not square)",
                         catches="Conv1D treated as Linear (shapes do not fit); d_in and d_out "
                                 "read from the wrong axes of the weight")
        yield ModuleCase((_base_layer(rng, "linear", 16, 12),), {"r": 4, "alpha": 8.0,
                                                                  "dropout": 0.5},
                         inputs=(x(4, 16),), label="dropout=0.5, checked in training mode too",
                         catches="dropout on the base path (or on both paths); dropout after "
                                 "the update; dropout ignored")
        yield ModuleCase((_base_layer(rng, "linear", 5, 3, bias=False),), {"r": 1,
                                                                          "alpha": 16.0},
                         inputs=(x(2, 5),), label="nn.Linear without a bias, r=1",
                         catches="base.bias assumed to exist")
        yield ModuleCase((_base_layer(rng, "linear", 8, 6),), {"r": 4, "alpha": 2},
                         inputs=(x(3, 8),), label="int alpha=2, r=4 (scaling 0.5)",
                         catches="alpha // r (integer division gives 0); alpha / sqrt(r)")
        yield ModuleCase((_base_layer(rng, "conv1d", 10, 8),), {"r": 2, "alpha": 4.0,
                                                                 "dropout": 0.2},
                         inputs=(x(2, 2, 3, 10),), label="x with two batch dimensions, Conv1D, "
                                                         "dropout=0.2",
                         catches="x assumed 2-D or 3-D; dropout on the base path")
        yield ModuleCase((_base_layer(rng, "linear", 6, 9, dtype=torch.float64),),
                         {"r": 3, "alpha": 6.0}, inputs=(x(2, 6, dtype=torch.float64),),
                         label="a float64 layer", catches="A and B made float32 whatever the "
                                                          "base layer's dtype")
        yield ModuleCase((_base_layer(rng, "conv1d", 64, 192),), {"r": 8, "alpha": 16.0,
                                                                   "dropout": 0.1},
                         inputs=(x(2, 9, 64),), label="Conv1D 64 -> 192 (like GPT-2's c_attn), "
                                                      "r=8, dropout=0.1",
                         catches="sizes assumed small or square; any of the above at scale")
        yield ModuleCase((_base_layer(rng, "linear", 12, 10),), {"r": 4, "alpha": 32.0},
                         inputs=(x(5, 12),), label="r=4, alpha=32 (scaling 8)",
                         catches="any scaling other than alpha / r")


def _layer_weight(module: nn.Module) -> torch.Tensor:
    base = getattr(module, "base", None)
    weight = getattr(base, "weight", None)
    if not isinstance(weight, torch.Tensor):
        raise Mismatch("keep the wrapped layer as self.base (its weight is self.base.weight): "
                       "merge() and unmerge() are checked through it.")
    return weight.detach().clone()


def _lora_trace(module: nn.Module, case: ModuleCase, seed: int) -> dict:
    """Everything the layer does: eval forward and gradients, a training-mode forward with a
    fixed dropout seed, then merge(), merge() again and unmerge(), each followed by forward."""
    for method in ("merge", "unmerge"):
        if not callable(getattr(module, method, None)):
            raise Mismatch(f"your class has no {method}() method: write merge() and unmerge() "
                           f"too (they change self.base.weight in place).")
    trace = forward_and_gradients(module, case)
    (x,) = case.inputs
    module.train(True)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        trace["train_output"] = module(x).detach()
    module.train(False)
    with torch.no_grad():
        for step, action in (("merged", module.merge), ("merged_twice", module.merge),
                             ("unmerged", module.unmerge)):
            action()
            trace[f"{step}_weight"] = _layer_weight(module)
            trace[f"{step}_output"] = module(x).detach()
    return trace


_STEPS = (
    ("train_output", "the output in training mode (dropout on, the same random seed as the "
                     "reference)",
     "Dropout belongs on the LoRA path's input only: base(x) + scaling * B(A(dropout(x))); the "
     "frozen path sees the clean x, and dropout is called once per forward."),
    ("merged_weight", "self.base.weight after merge()",
     "merge() adds scaling * (B @ A) to the base weight in the base layer's own layout "
     "((d_out, d_in) for nn.Linear, its transpose for Conv1D)."),
    ("merged_output", "the output after merge()",
     "After merge() the update is inside the weight: forward is the base layer alone (adding "
     "the LoRA path as well counts the update twice)."),
    ("merged_twice_weight", "self.base.weight after a second merge()",
     "Merging a merged layer must change nothing: keep a flag (self.merged) and add the update "
     "only when it is not already in."),
    ("merged_twice_output", "the output after a second merge()", ""),
    ("unmerged_weight", "self.base.weight after unmerge()",
     "unmerge() subtracts the same scaling * (B @ A) that merge() added, so the base weight "
     "is the frozen original again."),
    ("unmerged_output", "the output after unmerge()",
     "After unmerge() forward is base(x) plus the LoRA path again."),
)


@dataclass
class _LoRALayerExercise(ModuleExercise):
    """06.1: a module exercise that also checks the initialisation, training-mode dropout and
    merge()/unmerge(). The reference gets a random ``lora_B`` (at its initial zero every wrong
    forward looks right), which the learner's layer then receives by name."""

    def named_values(self, case: Case) -> list[tuple[str, Any]]:
        base = case.args[0]  # described, not snapshotted: merge() changes it in place, rightly
        d_in, d_out = lora._features(base)
        kind = type(base).__name__
        return [("base", f"{kind}(d_in={d_in}, d_out={d_out}, bias="
                         f"{getattr(base, 'bias', None) is not None}, {base.weight.dtype})"),
                *case.kwargs.items(), ("x", case.inputs[0])]

    def expected_of(self, case: Case) -> tuple[Any, Any]:
        module = self._build(self.reference, case)
        gen = torch.Generator().manual_seed(self.seed)
        with torch.no_grad():
            module.lora_B.copy_(torch.randn(module.lora_B.shape, generator=gen,
                                            dtype=torch.float64) / 2)
        state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        return _lora_trace(module, case, self.seed), state

    def attempt(self, candidate: Any, case: Case, context: Any) -> Any:
        module = self._build(candidate, case)
        initial = {k: v.detach().clone() for k, v in module.state_dict().items()}
        _load(module, context)
        a, b = initial["lora_A"], initial["lora_B"]
        if not bool((b == 0).all()):
            raise Mismatch(
                "lora_B does not start at zero" + (" and lora_A does (the two are swapped)"
                                                   if not bool(a.any()) else "")
                + ". LoRA starts with B = 0 and A random (nn.init.kaiming_uniform_(A, "
                "a=math.sqrt(5)), as peft does): the update B @ A is then exactly 0, so the "
                "wrapped layer starts out as the pretrained one, and the first gradient step "
                "moves B.")
        if not bool(a.any()):
            raise Mismatch("lora_A starts at zero: with B = 0 too, both gradients are zero and "
                           "nothing ever trains. Initialise A randomly "
                           "(nn.init.kaiming_uniform_(A, a=math.sqrt(5))) and B at zero.")
        if a.dtype != case.args[0].weight.dtype:
            raise Mismatch(f"lora_A is {a.dtype}, but the base layer is "
                           f"{case.args[0].weight.dtype}: make A and B like the base weight "
                           f"(dtype=base.weight.dtype).")
        return _lora_trace(module, case, self.seed)

    def compare_lora(self, got: Any, expected: Any, case: Case) -> Message:
        problem = self.compare_modules(got, expected, case)
        if problem:
            return problem
        kw = {"atol": self.atol, "rtol": self.rtol, "check_dtype": self.check_dtype}
        for key, path, advice in _STEPS:
            problem = compare(got[key], expected[key], path=path, **kw)
            if problem:
                return f"{problem} {advice}".rstrip()
        return None

    def __post_init__(self) -> None:
        if self.compare is None:
            self.compare = self.compare_lora


def _wrong_layer(kind: str) -> type:
    """The reference with one wrong idea in it (each runs on every case)."""

    class WrongLoRALayer(lora.LoRALayer):
        def __init__(self, base, r=8, alpha=16.0, dropout=0.0):
            super().__init__(base, r, alpha, dropout)
            self.scaling = {"r / alpha": r / alpha, "alpha // r": alpha // r,
                            "sqrt": alpha / math.sqrt(r), "no scaling": 1.0}.get(
                                kind, self.scaling)
            if kind == "base trainable":
                self.base.requires_grad_(True)

        def _base(self, x):
            if kind == "conv1d as linear":
                return nn.functional.linear(x, self.base.weight, self.base.bias)
            return self.base(x)

        def forward(self, x):
            if self.merged and kind != "merged adds the update":
                return self._base(x)
            if kind == "dropout on base":
                x = self.dropout(x)
                return self._base(x) + self.scaling * (x @ self.lora_A.T @ self.lora_B.T)
            update = self.scaling * (self.dropout(x) @ self.lora_A.T @ self.lora_B.T)
            return self._base(x) + update

        def _delta(self):  # one helper for merge() and unmerge(), as a learner writes it
            delta = self.lora_B @ self.lora_A * (1.0 if kind == "merge unscaled" else
                                                 self.scaling)
            if isinstance(self.base, Conv1D) and kind != "conv1d as linear":
                delta = delta.T
            return delta

        def merge(self):
            if self.merged and kind != "merge twice":
                return
            with torch.no_grad():
                self.base.weight.add_(self._delta())
            self.merged = True

        def unmerge(self):
            if self.merged and kind != "unmerge keeps the update":
                with torch.no_grad():
                    self.base.weight.sub_(self._delta())
            self.merged = False

    WrongLoRALayer.__name__ = WrongLoRALayer.__qualname__ = f"LoRA_{kind.replace(' ', '_')}"
    return WrongLoRALayer


register(_LoRALayerExercise(
    id="06.1", title="a LoRA layer (a class, with merge and unmerge)", reference=lora.LoRALayer,
    cases=_layer_cases, atol=1e-5, rtol=1e-4,
    hint="Freeze self.base; lora_A = (r, d_in) Kaiming-uniform, lora_B = (d_out, r) zeros, "
         "both nn.Parameter like base.weight; scaling = alpha / r; forward = base(x) + scaling * "
         "(dropout(x) @ A.T) @ B.T, or base(x) alone when merged. Conv1D's weight is "
         "(d_in, d_out), so its delta is (B @ A).T.",
    mistakes=[
        (_wrong_layer("dropout on base"), "Dropout is on the LoRA path only: the frozen layer "
                                          "sees the clean x, base(x) + scaling * "
                                          "B(A(dropout(x)))."),
        (_wrong_layer("r / alpha"), "The scaling is upside down: it is alpha / r."),
        (_wrong_layer("alpha // r"), "alpha // r is integer division (2 // 4 is 0): scale by "
                                     "alpha / r."),
        (_wrong_layer("sqrt"), "alpha / sqrt(r) is rank-stabilised LoRA (use_rslora in "
                               "peft); plain LoRA scales by alpha / r."),
        (_wrong_layer("no scaling"), "The LoRA path is not scaled: multiply it by alpha / r."),
        (_wrong_layer("base trainable"), "Freeze the wrapped layer: "
                                         "self.base.requires_grad_(False); only lora_A and "
                                         "lora_B train."),
        (_wrong_layer("conv1d as linear"), "GPT-2's Conv1D stores its weight as (d_in, d_out) "
                                           "and computes x @ W + b: call self.base(x) (or use "
                                           "the layout of each type), and add (B @ A).T to a "
                                           "Conv1D's weight when merging."),
        (_wrong_layer("merge unscaled"), "merge() must add the same scaled update the forward "
                                         "pass uses: scaling * (B @ A)."),
        (_wrong_layer("merge twice"), "A second merge() adds the update again: keep a flag "
                                      "(self.merged) and merge only an unmerged layer."),
        (_wrong_layer("merged adds the update"), "After merge(), forward must skip the LoRA "
                                                 "path: the update is in the weight already."),
        (_wrong_layer("unmerge keeps the update"), "unmerge() must subtract scaling * (B @ A) "
                                                   "from the weight, not only reset the flag."),
    ],
))

# --------------------------------------------------------------------------- 06.2 counting


class _Graded:
    """A graded model equals an unchanged copy of itself, so the grader sees a learner's
    function that changes it (``requires_grad``, values, parameters added or removed).

    Each call of the learner's function and of the reference gets its own deep copy of the
    model; comparing the learner's copy afterwards with the original catches changes.
    """

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, nn.Module):
            return NotImplemented
        return _state(self) == _state(other) and all(
            torch.equal(a, b) for a, b in zip(_tensors(self), _tensors(other), strict=True))

    __hash__ = nn.Module.__hash__


def _state(model: nn.Module) -> list[tuple]:
    params = [(n, tuple(p.shape), p.dtype, p.requires_grad)
              for n, p in model.named_parameters(remove_duplicate=False)]
    buffers = [(n, tuple(b.shape), b.dtype) for n, b in model.named_buffers()]
    shared = [n for n, p in model.named_parameters(remove_duplicate=False)
              if n not in dict(model.named_parameters())]
    return params + buffers + [("shared", tuple(shared))]


def _tensors(model: nn.Module) -> list[torch.Tensor]:
    return [t.detach() for _, t in model.named_parameters(remove_duplicate=False)] + [
        b for _, b in model.named_buffers()]


class _GradedSequential(_Graded, nn.Sequential):
    pass


class _GradedGPT2(_Graded, GPT2LMHeadModel):
    pass


class _Scaled(nn.Module):
    """A layer with a 0-d parameter (a learned temperature) next to a frozen embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.embed.requires_grad_(False)
        self.temperature = nn.Parameter(torch.tensor(1.0))
        self.head = nn.Linear(4, 3, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(ids)) / self.temperature


def _tiny_gpt2(seed: int, lora_targets: list[str] | None = None) -> nn.Module:
    with torch.random.fork_rng():  # leave the learner's random state alone
        torch.manual_seed(seed)
        # lm_head shares its weight with wte (tied embeddings, as in GPT-2)
        model = _GradedGPT2(GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=2,
                                       n_head=2, bos_token_id=0, eos_token_id=0))
        if lora_targets:
            lora.inject_lora(model, lora_targets, r=2, alpha=4)
    return model


def _count_cases(rng: torch.Generator) -> list[Case]:
    with torch.random.fork_rng():  # building the models must not move the learner's RNG
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=rng)))
        seq = _GradedSequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        frozen = _GradedSequential(nn.Linear(6, 6), nn.LayerNorm(6), nn.Linear(6, 2))
        frozen[0].requires_grad_(False)
        bn = _GradedSequential(nn.Linear(5, 4), nn.BatchNorm1d(4))
        bn[0].requires_grad_(False)
        all_frozen = _GradedSequential(nn.Linear(3, 3), nn.Linear(3, 2)).requires_grad_(False)
        tied = _GradedSequential(nn.Linear(5, 5), nn.Tanh(), nn.Linear(5, 5))
        tied[2].weight = tied[0].weight  # one tensor used by two layers
        tied[2].bias.requires_grad_(False)
        scaled = _GradedSequential(_Scaled())
        stats_only = _GradedSequential(nn.BatchNorm1d(6, affine=False), nn.ReLU())
        nested = _GradedSequential(nn.Sequential(nn.Linear(3, 4), nn.Sequential(
            nn.Linear(4, 4), nn.Linear(4, 2))), nn.Linear(2, 2))
        nested[0][1].requires_grad_(False)
        return [
            Case((frozen,), label="first layer frozen",
                 catches="every parameter counted as trainable; trainable decided by name"),
            Case((seq,), label="a small MLP, everything trainable",
                 catches="trainable and frozen swapped (gives 0 trainable); tensors counted "
                         "instead of numbers; (total, trainable) in the wrong order"),
            Case((bn,), label="a BatchNorm (buffers are not parameters)",
                 catches="state_dict() counted (it holds the running statistics)"),
            Case((all_frozen,), label="everything frozen: 0 trainable",
                 catches="a falsy 0 replaced; trainable and frozen swapped"),
            Case((tied,), label="two layers share one weight; one bias frozen",
                 catches="a shared tensor counted twice (remove_duplicate=False, state_dict, "
                         "per-module counts)"),
            Case((scaled,), label="a 0-d parameter (a temperature) and a frozen embedding",
                 catches="len(p) or p.shape[0] instead of p.numel()"),
            Case((stats_only,), label="only buffers, no parameters: (0, 0)",
                 catches="state_dict() counted; a crash on an empty parameter list"),
            Case((nested,), label="nested Sequentials, a frozen inner block",
                 catches="parameters counted once per enclosing module (model.modules())"),
            Case((_tiny_gpt2(0),), label="tiny GPT-2 (its lm_head is tied to wte)",
                 catches="the tied lm_head weight counted twice"),
            Case((_tiny_gpt2(1, ["c_attn"]),), label="tiny GPT-2 with LoRA on c_attn",
                 catches="p.grad used instead of p.requires_grad (grad is None before "
                         "backward)"),
            Case((_tiny_gpt2(2, ["c_attn", "c_proj", "c_fc"]),),
                 label="tiny GPT-2 with LoRA on c_attn, c_proj, c_fc",
                 catches="any of the above on a real LoRA model"),
        ]


def _as_count(value) -> int | None:
    """A whole number as an int (int, numpy or 0-d tensor, or an integral float), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            return None
        value = value.item()
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(number) or not number.is_integer():
        return None
    return int(number)


def _compare_counts(got, expected, case: Case):
    if not isinstance(got, tuple | list) or len(got) != 2:
        return f"return a pair (trainable, total), got {type(got).__name__} {got!r:.100}"
    counts = [_as_count(v) for v in got]
    if None in counts:
        return f"both counts must be whole numbers, got {got!r:.100}"
    if tuple(counts) == tuple(expected):
        return None
    if tuple(counts) == tuple(expected)[::-1] and expected[0] != expected[1]:
        return (f"you returned {tuple(counts)}: the pair is in the wrong order; return "
                f"(trainable, total).")
    for name, g, e in zip(("trainable", "total"), counts, expected, strict=True):
        if g != e:
            return f"{name} is {g:,}, but the model has {e:,} {name} parameters."
    return None


def _count_all_trainable(model):
    n = sum(p.numel() for p in model.parameters())
    return n, n


def _count_tensors(model):
    ps = list(model.parameters())
    return sum(p.requires_grad for p in ps), len(ps)


def _count_state_dict(model):
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(t.numel() for t in model.state_dict().values())


def _count_with_duplicates(model):
    ps = [p for _, p in model.named_parameters(remove_duplicate=False)]
    return sum(p.numel() for p in ps if p.requires_grad), sum(p.numel() for p in ps)


def _count_inverted(model):
    ps = list(model.parameters())
    return sum(p.numel() for p in ps if not p.requires_grad), sum(p.numel() for p in ps)


def _count_by_grad(model):
    ps = list(model.parameters())
    return sum(p.numel() for p in ps if p.grad is not None), sum(p.numel() for p in ps)


def _count_per_module(model):
    ps = [p for m in model.modules() for p in m.parameters()]
    return sum(p.numel() for p in ps if p.requires_grad), sum(p.numel() for p in ps)


def _count_reversed(model):
    trainable, total = lora.count_trainable_parameters(model)
    return total, trainable


register(Exercise(
    id="06.2", title="counting trainable parameters", reference=lora.count_trainable_parameters,
    cases=_count_cases, compare=_compare_counts,
    hint="Loop over model.parameters() (it yields each tensor once, even when two modules share "
         "it) and add p.numel(); the trainable ones are those with p.requires_grad. Don't change "
         "the model while counting.",
    mistakes=[
        (_count_reversed, "The pair is in the wrong order: return (trainable, total)."),
        (_count_all_trainable, "Frozen parameters count as trainable in your answer: only "
                               "parameters with p.requires_grad == True are trained."),
        (_count_tensors, "You counted tensors, not numbers: add up p.numel() for each one."),
        (_count_with_duplicates, "GPT-2's lm_head shares its weight with the token embedding: "
                                 "counting it under both names counts it twice. "
                                 "model.parameters() yields it once."),
        (_count_state_dict, "state_dict() also holds buffers (running statistics, masks) and "
                            "lists a shared weight once per module using it: count "
                            "model.parameters() instead."),
        (_count_inverted, "Trainable and frozen are swapped: trainable parameters have "
                          "p.requires_grad == True."),
        (_count_by_grad, "Your trainable count is 0 for every model. If you tested p.grad: "
                         "p.grad is None until a backward pass has run, so it says nothing "
                         "about what will train; test p.requires_grad."),
        (_count_per_module, "model.modules() yields the model and every submodule, and "
                            "m.parameters() recurses into each: a parameter is counted once "
                            "per enclosing module. Call model.parameters() once."),
    ],
))

# --------------------------------------------------------------------------- 06.3 injection


def _gpt2(rng: torch.Generator, n_layer: int, n_embd: int, n_head: int) -> nn.Module:
    with torch.random.fork_rng():  # building the model must not move the learner's RNG
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=rng)))
        return GPT2LMHeadModel(GPT2Config(vocab_size=40, n_positions=12, n_embd=n_embd,
                                          n_layer=n_layer, n_head=n_head, bos_token_id=0,
                                          eos_token_id=0)).eval()


def _inject_cases(rng: torch.Generator):
    small = (2, 16, 2)
    for sizes, targets, r, alpha, label, catches in (
        (small, ["c_attn"], 2, 4.0, "LoRA on c_attn, r=2, alpha=4",
         "nothing frozen but the wrapped layers; everything frozen after wrapping (A and B "
         "too); r, alpha or the layer's arguments not passed on"),
        (small, ["c_attn", "c_proj", "c_fc"], 4, 32.0, "every linear layer of the blocks, "
         "r=4, alpha=32", "only the first target used; setattr on the model with the dotted "
         "name (replaces nothing); defaults used for r and alpha"),
        (small, ["attn.c_proj"], 1, 2.0, "a dotted suffix: the attention's c_proj, not the "
         "MLP's", "only the last name component compared (matches nothing, or both c_proj)"),
        ((12, 8, 2), ["1.mlp.c_fc"], 2, 4.0, "12 blocks, target '1.mlp.c_fc': block 1 only",
         "substring matching (also wraps block 11); endswith without the dot"),
        ((3, 24, 3), r"transformer\.h\.[02]\.attn\.c_attn", 3, 6.0,
         "one string is a regular expression over the whole name (blocks 0 and 2)",
         "a string treated as one name or as a list of characters; re.search instead of "
         "re.fullmatch"),
        ((3, 24, 3), ["c_fc", "lm_head"], 2, 2.0, "lm_head too (its weight is tied to wte)",
         "the tied embedding left trainable; the model's own layers checked by type name"),
    ):
        model = _gpt2(rng, *sizes)
        ids = torch.randint(0, 40, (2, 7), generator=rng)
        yield Case((model, targets), {"r": r, "alpha": alpha, "layer": lora.LoRALayer,
                                      "input_ids": ids}, label=label, catches=catches)


def _fill_lora(model: nn.Module) -> None:
    """Deterministic non-zero A and B in every LoRA layer, by name (at B = 0 every wrong
    injection computes the base model)."""
    for name, layer in model.named_modules():
        if isinstance(layer, lora.LoRALayer):
            gen = torch.Generator().manual_seed(sum(map(ord, name)))
            with torch.no_grad():
                layer.lora_A.copy_(torch.randn(layer.lora_A.shape, generator=gen) / 4)
                layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=gen) / 4)


def _inject_trace(model: Any) -> dict:
    if not isinstance(model, nn.Module):
        raise Mismatch(f"return the model (changed in place), not a {type(model).__name__}.")
    return {"lora": sorted(n for n, m in model.named_modules()
                           if isinstance(m, lora.LoRALayer)),
            "trainable": sorted(n for n, p in model.named_parameters() if p.requires_grad),
            "model": model}


@dataclass
class _InjectExercise(Exercise):
    """06.3: the learner's function changes the model in place (that is its job), so the
    model is described rather than checked for in-place changes, and the verdict looks at
    which layers became LoRA layers, what trains, and the logits with filled-in A and B."""

    def named_values(self, case: Case) -> list[tuple[str, Any]]:
        model = case.args[0]
        cfg = model.config
        return [("model", f"tiny GPT-2 ({cfg.n_layer} blocks, width {cfg.n_embd})"),
                ("target_modules", case.args[1]),
                *((k, v) for k, v in case.kwargs.items() if k not in ("input_ids", "layer"))]

    def expected_of(self, case: Case) -> tuple[Any, Any]:
        return self.attempt(self.reference, case, None), None

    def attempt(self, candidate: Any, case: Case, context: Any) -> Any:
        kwargs = {k: v for k, v in case.kwargs.items() if k != "input_ids"}
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            out = candidate(*case.args, **kwargs)
        trace = _inject_trace(out)
        model = trace.pop("model")
        _fill_lora(model)
        with torch.no_grad():
            trace["logits"] = model.eval()(input_ids=case.kwargs["input_ids"]).logits
        return trace


def _compare_injection(got: Any, expected: Any, case: Case) -> Message:
    if got["lora"] != expected["lora"]:
        extra = [n for n in got["lora"] if n not in expected["lora"]]
        lost = [n for n in expected["lora"] if n not in got["lora"]]
        return ("the LoRA layers are in the wrong places: "
                + (f"these should not be wrapped: {extra[:4]}; " if extra else "")
                + (f"these should be wrapped but are not: {lost[:4]}" if lost else "")
                ).rstrip("; ") + f" (target_modules={case.args[1]!r})."
    if got["trainable"] != expected["trainable"]:
        extra = [n for n in got["trainable"] if n not in expected["trainable"]]
        lost = [n for n in expected["trainable"] if n not in got["trainable"]]
        return ("what trains is wrong: "
                + (f"these train but should be frozen: {extra[:3]}"
                   f"{' and more' if len(extra) > 3 else ''}; " if extra else "")
                + (f"these should train but are frozen: {lost[:3]}"
                   f"{' and more' if len(lost) > 3 else ''}" if lost else "")).rstrip("; ") + "."
    return compare(got["logits"], expected["logits"], path="the model's logits (with the same "
                   "A and B in every LoRA layer)", atol=1e-4, rtol=1e-4)


def _wrong_inject(kind: str):
    def inject(model, target_modules, r=8, alpha=16.0, dropout=0.0, layer=None):
        if kind == "no freeze":
            found = [n for n, m in model.named_modules()
                     if n and lora.target_matches(n, target_modules)
                     and isinstance(m, lora.LINEAR_TYPES)]
            for name in found:
                parent, _, child = name.rpartition(".")
                holder = model.get_submodule(parent)
                setattr(holder, child, layer(getattr(holder, child), r, alpha, dropout))
            return model
        if kind == "freeze after":
            lora.inject_lora(model, target_modules, r, alpha, dropout, layer)
            return model.requires_grad_(False)
        if kind == "defaults":
            return lora.inject_lora(model, target_modules, layer=layer)
        if kind == "substring":
            targets = [target_modules] if isinstance(target_modules, str) else target_modules
            names = [n for n, m in model.named_modules() if isinstance(m, lora.LINEAR_TYPES)
                     and any(t in n for t in targets)]
            return lora.inject_lora(model, names, r, alpha, dropout, layer) \
                if names else model.requires_grad_(False)
        if kind == "last component":
            targets = [target_modules] if isinstance(target_modules, str) else target_modules
            names = sorted({n for n, m in model.named_modules()
                            if isinstance(m, lora.LINEAR_TYPES) and n.rsplit(".", 1)[-1]
                            in targets})
            return lora.inject_lora(model, names, r, alpha, dropout, layer) \
                if names else model.requires_grad_(False)
        raise AssertionError(kind)
    inject.__name__ = f"inject_{kind.replace(' ', '_')}"
    return inject


register(_InjectExercise(
    id="06.3", title="injecting LoRA layers by name", reference=lora.inject_lora,
    cases=_inject_cases, compare=_compare_injection,
    hint="Collect the names first: [n for n, m in model.named_modules() if it matches and m is "
         "an nn.Linear or Conv1D] (a list matches when name == t or name.endswith('.' + t); a "
         "string with re.fullmatch). Freeze every parameter, then for each name replace the "
         "child on its parent: setattr(model.get_submodule(parent), child, layer(old, r, "
         "alpha, dropout)).",
    mistakes=[
        (_wrong_inject("no freeze"), "Freeze the whole model first (model.requires_grad_("
                                     "False)): the embeddings, norms and unwrapped layers "
                                     "must not train; only A and B do."),
        (_wrong_inject("freeze after"), "You froze the model after wrapping, which froze A "
                                        "and B too: freeze first, then wrap."),
        (_wrong_inject("defaults"), "Pass r, alpha and dropout on to the layer: "
                                    "layer(old, r, alpha, dropout)."),
        (_wrong_inject("substring"), "A target matches a name that is it or ends with '.' + "
                                     "it, not any name containing it ('1.mlp.c_fc' is not "
                                     "block 11's)."),
        (_wrong_inject("last component"), "A target can be a dotted suffix ('attn.c_proj'): "
                                          "compare with name.endswith('.' + t), not only the "
                                          "last component."),
    ],
))

# --------------------------------------------------------------------------- 06.4 soft prompts


def _prompt_cases(rng: torch.Generator):
    def emb(vocab, d, dtype=torch.float32):
        with torch.random.fork_rng():
            torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=rng)))
            return nn.Embedding(vocab, d).to(dtype).requires_grad_(False)

    def prompt(n, d, dtype=torch.float32):
        return torch.randn(n, d, generator=rng, dtype=dtype).requires_grad_(True)

    def ids(b, t, vocab):
        return torch.randint(1, vocab, (b, t), generator=rng)

    x = ids(2, 5, 30)
    yield Case((prompt(3, 8), x, torch.ones(2, 5, dtype=torch.long), x.clone(), emb(30, 8)),
               label="batch 2, 5 tokens, 3 virtual tokens, no padding",
               catches="the prompt appended instead of prepended; labels not extended; "
                       "the prompt detached (no gradient reaches it)")
    x = ids(3, 6, 40)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4])
    labels = x.masked_fill(mask == 0, -100)
    yield Case((prompt(4, 12), x, mask, labels, emb(40, 12)),
               label="right padding: the mask has zeros at the end",
               catches="the virtual positions masked with zeros; the ones added at the end")
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    x = ids(2, 5, 40)
    yield Case((prompt(2, 6), x, mask, x.masked_fill(mask == 0, -100), emb(40, 6)),
               label="left padding", catches="the mask's own zeros moved or dropped")
    x = ids(4, 3, 25)
    yield Case((prompt(1, 10), x, torch.ones(4, 3, dtype=torch.long), x.clone(), emb(25, 10)),
               label="a single virtual token, batch 4",
               catches="the prompt not repeated for every example of the batch")
    x = ids(2, 4, 30)
    yield Case((prompt(3, 8), x, torch.ones(2, 4, dtype=torch.long), None, emb(30, 8)),
               label="labels=None (inference): stays None", catches="labels assumed given")
    x = ids(2, 4, 30)
    yield Case((prompt(3, 8), x, None, x.clone(), emb(30, 8)),
               label="attention_mask=None: stays None", catches="attention_mask assumed given")
    x = torch.zeros(1, 4, dtype=torch.long)
    yield Case((prompt(2, 8), x, torch.ones(1, 4, dtype=torch.long), x.clone(), emb(30, 8)),
               label="batch 1 of token id 0 with label 0",
               catches="virtual labels 0 (they would be trained to predict token 0)")
    x = ids(2, 5, 30)
    yield Case((prompt(3, 8, torch.float64), x, torch.ones(2, 5, dtype=torch.long), x.clone(),
                emb(30, 8, torch.float64)), label="a float64 model",
               catches="the embeddings cast to float32")
    x = ids(4, 30, 200)
    mask = (torch.arange(30) < torch.tensor([[30], [17], [5], [1]])).long()
    yield Case((prompt(20, 64), x, mask, x.masked_fill(mask == 0, -100), emb(200, 64)),
               label="20 virtual tokens, width 64, 30 tokens with padding",
               catches="sizes assumed small; n and the batch size confused")


def _compare_prompt(got: Any, expected: Any, case: Case) -> Message:
    if not isinstance(got, dict):
        return (f"return a dict with inputs_embeds, attention_mask and labels, not a "
                f"{type(got).__name__}.")
    missing = [k for k in expected if k not in got]
    if missing:
        return f"your dict has no {missing}: return inputs_embeds, attention_mask and labels."
    prompt = case.args[0]
    for key, path in (("inputs_embeds", "inputs_embeds"), ("attention_mask", "attention_mask"),
                      ("labels", "labels")):
        want, mine = expected[key], got[key]
        if want is None:
            if mine is not None:
                return f"{key} was None, so it stays None: got a {type(mine).__name__}."
            continue
        if key == "attention_mask" and isinstance(mine, torch.Tensor):
            mine, want = mine.to(torch.float64), want.to(torch.float64)  # peft's is float
        problem = compare(mine, want, path=path, atol=1e-6, rtol=1e-5)
        if problem:
            return problem
    embeds = got["inputs_embeds"]
    if prompt.requires_grad and not embeds.requires_grad:
        return ("inputs_embeds does not depend on the prompt for autograd: the prompt was "
                "detached (or copied with torch.tensor), so training would never change it.")
    return None


def _sp(prompt, input_ids, attention_mask, labels, embedding, where="front", mask_fill=1,
        mask_at="front", label_fill=-100, extend_labels=True, extend_mask=True):
    b, n = input_ids.shape[0], prompt.shape[0]
    embeds = embedding(input_ids)
    p = prompt.to(embeds.dtype).expand(b, -1, -1)
    cat = torch.cat([p, embeds] if where == "front" else [embeds, p], dim=1)
    mask = attention_mask
    if mask is not None and extend_mask:
        fill = torch.full((b, n), mask_fill, dtype=mask.dtype)
        mask = torch.cat([fill, mask] if mask_at == "front" else [mask, fill], dim=1)
    lab = labels
    if lab is not None and extend_labels:
        lab = torch.cat([torch.full((b, n), label_fill, dtype=lab.dtype), lab], dim=1)
    return {"inputs_embeds": cat, "attention_mask": mask, "labels": lab}


def _sp_appended(prompt, input_ids, attention_mask, labels, embedding):
    return _sp(prompt, input_ids, attention_mask, labels, embedding, where="back")


def _sp_mask_zeros(prompt, input_ids, attention_mask, labels, embedding):
    return _sp(prompt, input_ids, attention_mask, labels, embedding, mask_fill=0)


def _sp_mask_at_end(prompt, input_ids, attention_mask, labels, embedding):
    return _sp(prompt, input_ids, attention_mask, labels, embedding, mask_at="back")


def _sp_mask_not_extended(prompt, input_ids, attention_mask, labels, embedding):
    return _sp(prompt, input_ids, attention_mask, labels, embedding, extend_mask=False)


def _sp_labels_zero(prompt, input_ids, attention_mask, labels, embedding):
    return _sp(prompt, input_ids, attention_mask, labels, embedding, label_fill=0)


def _sp_labels_not_extended(prompt, input_ids, attention_mask, labels, embedding):
    return _sp(prompt, input_ids, attention_mask, labels, embedding, extend_labels=False)


register(Exercise(
    id="06.4", title="soft prompts: the inputs of prompt tuning",
    reference=soft_prompt.soft_prompt_inputs, cases=_prompt_cases, compare=_compare_prompt,
    hint="embeds = embedding(input_ids); put prompt.expand(batch, -1, -1) in front "
         "(torch.cat along dim 1); attention_mask: ones (batch, n) in front; labels: -100 "
         "(batch, n) in front; a None mask or labels stays None.",
    mistakes=[
        (_sp_appended, "The virtual tokens go in *front* of the text: a causal model reads "
                       "left to right, so a prompt after the text cannot steer it."),
        (_sp_mask_zeros, "The virtual positions must be attended to: put ones (not zeros) in "
                         "front of the attention mask."),
        (_sp_mask_at_end, "The new mask entries belong in front, where the virtual tokens "
                          "are, not at the end."),
        (_sp_mask_not_extended, "The attention mask must grow by n too: ones for the virtual "
                                "tokens in front of the batch's mask."),
        (_sp_labels_zero, "Label the virtual positions -100 (ignored by the loss), not 0: "
                          "with 0 the model is trained to predict token 0 there."),
        (_sp_labels_not_extended, "The labels must line up with the longer input: put n "
                                  "labels of -100 in front."),
    ],
))
