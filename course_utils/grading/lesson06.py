"""Lesson 06 exercises: the LoRA forward pass, counting trainable parameters, merging.

Every mistake below is the reference with one wrong idea in it and runs on every case: the
grader names a mistake only when the learner's answer equals it on all cases.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from course_utils.finetune import lora
from course_utils.grading.core import Case, Exercise, register

# --------------------------------------------------------------------------- 06.1 forward


def _forward_cases(rng: torch.Generator):
    def r(*shape, scale=1.0, dtype=torch.float32):
        return (torch.randn(*shape, generator=rng, dtype=torch.float64) * scale).to(dtype)

    # B is non-zero in every case but one: with B = 0 (its initial value) most answers look right.
    yield Case((r(3, 6), r(5, 6), r(5), r(2, 6), r(5, 2)), {"alpha": 4.0, "r": 2},
               label="3 tokens, d_in=6, d_out=5, r=2, alpha=4 (scaling 2)",
               catches="no scaling; r / alpha; alpha alone; only the update; no bias")
    yield Case((r(2, 4, 8), r(8, 8), r(8), r(4, 8), r(8, 4)), {"alpha": 1.0, "r": 4},
               label="a batch of sequences, square weight, r=4, alpha=1 (scaling 0.25)",
               catches="x @ weight without the transpose (runs on a square weight); "
                       "alpha // r (gives 0)")
    yield Case((r(1, 5), r(3, 5), None, r(1, 5), r(3, 1)), {"alpha": 8.0, "r": 1},
               label="no bias, r=1, alpha=8", catches="bias=None not handled")
    yield Case((r(4, 6), r(7, 6), r(7), r(4, 6), r(7, 4)), {"alpha": 2, "r": 4},
               label="int alpha=2, r=4 (scaling 0.5)", catches="alpha // r (integer division "
                                                               "gives 0)")
    yield Case((r(4, 6), r(7, 6), r(7), r(2, 6), r(7, 2)), {"alpha": 3, "r": 2},
               label="int alpha=3, r=2 (scaling 1.5)", catches="alpha // r (gives 1)")
    yield Case((r(2, 2, 3, 6), r(5, 6), r(5), r(4, 6), r(5, 4)), {"alpha": 8, "r": 4},
               label="x with two batch dimensions (2, 2, 3, 6)",
               catches="x assumed 2-D or 3-D; alpha / sqrt(r) (rsLoRA)")
    yield Case((r(6), r(4, 6), r(4), r(2, 6), r(4, 2)), {"alpha": 4, "r": 2},
               label="a single vector x of shape (d_in,)", catches="x assumed to have a batch "
                                                                  "dimension")
    yield Case((r(3, 6, dtype=torch.float64), r(5, 6, dtype=torch.float64),
                r(5, dtype=torch.float64), r(2, 6, dtype=torch.float64),
                r(5, 2, dtype=torch.float64)), {"alpha": 16, "r": 2},
               label="float64 inputs give a float64 result", catches="the result cast to float32")
    yield Case((r(2, 5, 12), r(10, 12), r(10), r(8, 12), torch.zeros(10, 8)),
               {"alpha": 16, "r": 8},
               label="B = 0, as at initialisation: the output is the frozen layer's",
               catches="only the update returned (it is all zeros here)")
    yield Case((r(2, 9, 96, scale=0.1), r(40, 96, scale=0.05), r(40), r(8, 96, scale=0.05),
                r(40, 8, scale=0.01)), {"alpha": 16, "r": 8},
               label="d_in=96, d_out=40, realistic small B",
               catches="sizes assumed small or square")
    for rank, alpha in ((8, 16.0), (2, 2.0), (4, 32.0)):
        yield Case((r(2, 3, 12), r(10, 12, scale=0.3), r(10), r(rank, 12), r(10, rank)),
                   {"alpha": alpha, "r": rank}, label=f"random, r={rank}, alpha={alpha:g}",
                   catches="any scaling other than alpha / r")


def _fwd(x, weight, bias, A, B, alpha, r, scaling=None, base=True, use_bias=True,
         bias_twice=False):
    out = x @ weight.T if base else 0
    if bias is not None and use_bias and base:
        out = out + bias
    s = alpha / r if scaling is None else scaling
    update = x @ A.T @ B.T
    if bias_twice and bias is not None:
        update = update + bias
    return out + s * update


def _fwd_no_scaling(x, weight, bias, A, B, alpha, r):
    return _fwd(x, weight, bias, A, B, alpha, r, scaling=1.0)


def _fwd_inverse_scaling(x, weight, bias, A, B, alpha, r):
    return _fwd(x, weight, bias, A, B, alpha, r, scaling=r / alpha)


def _fwd_alpha_only(x, weight, bias, A, B, alpha, r):
    return _fwd(x, weight, bias, A, B, alpha, r, scaling=alpha)


def _fwd_floor_division(x, weight, bias, A, B, alpha, r):
    return _fwd(x, weight, bias, A, B, alpha, r, scaling=alpha // r)


def _fwd_sqrt_scaling(x, weight, bias, A, B, alpha, r):
    return _fwd(x, weight, bias, A, B, alpha, r, scaling=alpha / math.sqrt(r))


def _fwd_no_base(x, weight, bias, A, B, alpha, r):
    return _fwd(x, weight, bias, A, B, alpha, r, base=False)


def _fwd_no_bias(x, weight, bias, A, B, alpha, r):
    return _fwd(x, weight, bias, A, B, alpha, r, use_bias=False)


def _fwd_bias_twice(x, weight, bias, A, B, alpha, r):
    return _fwd(x, weight, bias, A, B, alpha, r, bias_twice=True)


register(Exercise(
    id="06.1", title="the LoRA forward pass", reference=lora.lora_forward,
    cases=_forward_cases, atol=1e-4, rtol=1e-4,
    hint="Frozen path x @ weight.T (+ bias if there is one), plus the low-rank path "
         "(x @ A.T) @ B.T scaled by alpha / r (a float division).",
    mistakes=[
        (_fwd_floor_division, "alpha // r is integer division (2 // 4 is 0): scale by "
                              "alpha / r."),
        (_fwd_sqrt_scaling, "alpha / sqrt(r) is rsLoRA's scaling; LoRA (and peft's default) "
                            "scales by alpha / r."),
        (_fwd_no_scaling, "The low-rank path is not scaled: multiply it by alpha / r."),
        (_fwd_inverse_scaling, "The scaling is upside down: it is alpha / r, not r / alpha."),
        (_fwd_alpha_only, "You scaled by alpha alone: divide by the rank too (alpha / r), so "
                          "changing r does not change the size of the update."),
        (_fwd_no_base, "Only the update came back: LoRA *adds* B A x to the frozen layer's "
                       "output x @ weight.T + bias."),
        (_fwd_no_bias, "The frozen layer's bias is missing: add it when it is not None."),
        (_fwd_bias_twice, "The bias belongs to the frozen layer only: it is added once, not "
                          "inside the low-rank path too."),
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

# --------------------------------------------------------------------------- 06.3 merging


def _merge_cases(rng: torch.Generator):
    def r(*shape, dtype=torch.float32):
        return torch.randn(*shape, generator=rng, dtype=torch.float64).to(dtype)

    yield Case((r(5, 5), r(2, 5), r(5, 2)), {"alpha": 4.0, "r": 2},
               label="square 5x5 weight, r=2, alpha=4",
               catches="(B @ A).T added (runs on a square weight); no scaling; subtracted")
    yield Case((r(3, 7), r(1, 7), r(3, 1)), {"alpha": 2.0, "r": 1},
               label="d_out=3, d_in=7, r=1", catches="A.T @ B.T (shape (7, 3))")
    yield Case((r(6, 6), r(4, 6), r(6, 4)), {"alpha": 1.0, "r": 4}, label="alpha < r",
               catches="alpha // r (gives 0); r / alpha")
    yield Case((r(4, 9), r(2, 9), r(4, 2)), {"alpha": 3, "r": 2},
               label="int alpha=3, r=2 (scaling 1.5)", catches="alpha // r (gives 1)")
    yield Case((r(6, 4), r(4, 4), r(6, 4)), {"alpha": 8, "r": 4},
               label="r=4, alpha=8", catches="alpha / sqrt(r) (rsLoRA)")
    yield Case((r(5, 3, dtype=torch.float64), r(2, 3, dtype=torch.float64),
                r(5, 2, dtype=torch.float64)), {"alpha": 16, "r": 2},
               label="float64 weights stay float64", catches="the result cast to float32")
    yield Case((r(4, 6), r(2, 6), torch.zeros(4, 2)), {"alpha": 16, "r": 2},
               label="B = 0: merging changes nothing",
               catches="only the update returned (all zeros here)")
    yield Case((r(48, 64), r(8, 64), r(48, 8) * 0.01), {"alpha": 16, "r": 8},
               label="d_out=48, d_in=64, realistic small B",
               catches="sizes assumed small or square")
    for rank in (2, 8):
        yield Case((r(12, 10), r(rank, 10), r(12, rank)), {"alpha": 16.0, "r": rank},
                   label=f"random 12x10, r={rank}, alpha=16",
                   catches="any scaling other than alpha / r")


def _merge(weight, A, B, scaling, sign=1.0, base=True):
    return (weight if base else 0) + sign * scaling * (B @ A)


def _merge_no_scaling(weight, A, B, alpha, r):
    return _merge(weight, A, B, 1.0)


def _merge_inverse_scaling(weight, A, B, alpha, r):
    return _merge(weight, A, B, r / alpha)


def _merge_floor_division(weight, A, B, alpha, r):
    return _merge(weight, A, B, alpha // r)


def _merge_sqrt_scaling(weight, A, B, alpha, r):
    return _merge(weight, A, B, alpha / math.sqrt(r))


def _merge_subtract(weight, A, B, alpha, r):
    return _merge(weight, A, B, alpha / r, sign=-1.0)


def _merge_delta_only(weight, A, B, alpha, r):
    return _merge(weight, A, B, alpha / r, base=False)


def _merge_weight_unchanged(weight, A, B, alpha, r):
    return weight.clone()


def _not_transposed(got, case: Case):
    weight, A, B = case.args
    alpha, r = case.kwargs["alpha"], case.kwargs["r"]
    if not isinstance(got, torch.Tensor) or got.shape != weight.shape or got.shape[0] != \
            got.shape[1]:
        return None
    transposed = weight + (alpha / r) * (B @ A).T
    if torch.allclose(got.detach().to(transposed.dtype), transposed, atol=1e-4, rtol=1e-4):
        return ("You added the transpose of the update: in nn.Linear layout the update is "
                "B @ A, shape (d_out, d_in), the weight's own shape.")
    return None


register(Exercise(
    id="06.3", title="merging LoRA into the weight", reference=lora.merge_lora_weights,
    cases=_merge_cases, atol=1e-4, rtol=1e-4, properties=[_not_transposed],
    hint="merged = weight + (alpha / r) * (B @ A): B is (d_out, r), A is (r, d_in), so B @ A "
         "has the weight's shape (d_out, d_in). Return a new tensor; don't modify weight.",
    mistakes=[
        (_merge_floor_division, "alpha // r is integer division (1 // 4 is 0): scale by "
                                "alpha / r."),
        (_merge_sqrt_scaling, "alpha / sqrt(r) is rsLoRA's scaling; LoRA (and peft's default) "
                              "scales by alpha / r, the same as the forward pass."),
        (_merge_no_scaling, "The update is not scaled: add (alpha / r) * (B @ A), the same "
                            "scaling the forward pass uses."),
        (_merge_inverse_scaling, "The scaling is upside down: it is alpha / r."),
        (_merge_subtract, "The update is added to the weight, not subtracted."),
        (_merge_delta_only, "You returned only the update: the merged weight is the frozen "
                            "weight plus the update."),
        (_merge_weight_unchanged, "The weight came back unchanged: add the update "
                                  "(alpha / r) * (B @ A) to it."),
    ],
))
