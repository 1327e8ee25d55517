"""Lesson 06 exercises: the LoRA forward pass, counting trainable parameters, merging."""

from __future__ import annotations

import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from course_utils.finetune import lora
from course_utils.grading.core import Case, Exercise, register

# --------------------------------------------------------------------------- 06.1 forward


def _forward_cases(rng: torch.Generator):
    def r(*shape, scale=1.0):
        return torch.randn(*shape, generator=rng) * scale

    # B is non-zero in every case: with B = 0 (its initial value) every answer looks right.
    yield Case((r(3, 6), r(5, 6), r(5), r(2, 6), r(5, 2)), {"alpha": 4.0, "r": 2},
               label="3 tokens, d_in=6, d_out=5, r=2, alpha=4 (scaling 2)")
    yield Case((r(2, 4, 8), r(8, 8), r(8), r(4, 8), r(8, 4)), {"alpha": 1.0, "r": 4},
               label="a batch of sequences, r=4, alpha=1 (scaling 0.25)")
    yield Case((r(1, 5), r(3, 5), None, r(1, 5), r(3, 1)), {"alpha": 8.0, "r": 1},
               label="no bias, r=1, alpha=8")
    for rank, alpha in ((8, 16.0), (2, 2.0), (4, 32.0)):
        yield Case((r(2, 3, 12), r(10, 12, scale=0.3), r(10), r(rank, 12), r(10, rank)),
                   {"alpha": alpha, "r": rank}, label=f"random, r={rank}, alpha={alpha:g}")


def _fwd(x, weight, bias, A, B, alpha, r, scaling=None, base=True, use_bias=True):
    out = x @ weight.T if base else 0
    if bias is not None and use_bias and base:
        out = out + bias
    s = alpha / r if scaling is None else scaling
    return out + s * (x @ A.T @ B.T)


def _fwd_no_scaling(x, weight, bias, A, B, alpha, r):
    return _fwd(x, weight, bias, A, B, alpha, r, scaling=1.0)


def _fwd_inverse_scaling(x, weight, bias, A, B, alpha, r):
    return _fwd(x, weight, bias, A, B, alpha, r, scaling=r / alpha)


def _fwd_alpha_only(x, weight, bias, A, B, alpha, r):
    return _fwd(x, weight, bias, A, B, alpha, r, scaling=alpha)


def _fwd_no_base(x, weight, bias, A, B, alpha, r):
    return _fwd(x, weight, bias, A, B, alpha, r, base=False)


def _fwd_no_bias(x, weight, bias, A, B, alpha, r):
    return _fwd(x, weight, bias, A, B, alpha, r, use_bias=False)


register(Exercise(
    id="06.1", title="the LoRA forward pass", reference=lora.lora_forward,
    cases=_forward_cases, atol=1e-4, rtol=1e-4,
    hint="Frozen path x @ weight.T (+ bias if there is one), plus the low-rank path "
         "(x @ A.T) @ B.T scaled by alpha / r.",
    mistakes=[
        (_fwd_no_scaling, "The low-rank path is not scaled: multiply it by alpha / r."),
        (_fwd_inverse_scaling, "The scaling is upside down: it is alpha / r, not r / alpha."),
        (_fwd_alpha_only, "You scaled by alpha alone: divide by the rank too (alpha / r), so "
                          "changing r does not change the size of the update."),
        (_fwd_no_base, "Only the update came back: LoRA *adds* B A x to the frozen layer's "
                       "output x @ weight.T + bias."),
        (_fwd_no_bias, "The frozen layer's bias is missing: add it when it is not None."),
    ],
))

# --------------------------------------------------------------------------- 06.2 counting


class _Shared:
    """Graded models are shared, not copied: ``copy.deepcopy`` returns the model itself."""

    def __deepcopy__(self, memo):
        return self


class _SharedSequential(_Shared, nn.Sequential):
    pass


class _SharedGPT2(_Shared, GPT2LMHeadModel):
    pass


def _tiny_gpt2(seed: int, lora_targets: list[str] | None = None) -> nn.Module:
    with torch.random.fork_rng():  # leave the learner's random state alone
        torch.manual_seed(seed)
        model = _SharedGPT2(GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=2,
                                       n_head=2))  # lm_head shares its weight with wte
        if lora_targets:
            lora.inject_lora(model, lora_targets, r=2, alpha=4)
    return model


def _count_cases(rng: torch.Generator) -> list[Case]:
    with torch.random.fork_rng():  # building the models must not move the learner's RNG
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=rng)))
        seq = _SharedSequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        frozen = _SharedSequential(nn.Linear(6, 6), nn.LayerNorm(6), nn.Linear(6, 2))
        frozen[0].requires_grad_(False)
        bn = _SharedSequential(nn.Linear(5, 4), nn.BatchNorm1d(4))
        bn[0].requires_grad_(False)
        return [
            Case((seq,), label="a small MLP, everything trainable"),
            Case((frozen,), label="first layer frozen"),
            Case((bn,), label="a BatchNorm (buffers are not parameters)"),
            Case((_tiny_gpt2(0),), label="tiny GPT-2 (its lm_head is tied to wte)"),
            Case((_tiny_gpt2(1, ["c_attn"]),), label="tiny GPT-2 with LoRA on c_attn"),
            Case((_tiny_gpt2(2, ["c_attn", "c_proj", "c_fc"]),),
                 label="tiny GPT-2 with LoRA on c_attn, c_proj, c_fc"),
        ]


def _compare_counts(got, expected, case: Case):
    if not isinstance(got, tuple | list) or len(got) != 2:
        return f"return a pair (trainable, total), got {type(got).__name__} {got!r}"
    try:
        got = tuple(int(v) for v in got)
    except (TypeError, ValueError):
        return f"both counts must be whole numbers, got {got!r}"
    names = ("trainable", "total")
    for name, g, e in zip(names, got, expected, strict=True):
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


register(Exercise(
    id="06.2", title="counting trainable parameters", reference=lora.count_trainable_parameters,
    cases=_count_cases, compare=_compare_counts,
    hint="Loop over model.parameters() (it yields each tensor once, even when two modules share "
         "it) and add p.numel(); the trainable ones are those with p.requires_grad.",
    mistakes=[
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
    ],
))

# --------------------------------------------------------------------------- 06.3 merging


def _merge_cases(rng: torch.Generator):
    def r(*shape):
        return torch.randn(*shape, generator=rng)

    yield Case((r(5, 5), r(2, 5), r(5, 2)), {"alpha": 4.0, "r": 2},
               label="square 5x5 weight, r=2, alpha=4")
    yield Case((r(3, 7), r(1, 7), r(3, 1)), {"alpha": 2.0, "r": 1},
               label="d_out=3, d_in=7, r=1")
    yield Case((r(6, 6), r(4, 6), r(6, 4)), {"alpha": 1.0, "r": 4}, label="alpha < r")
    for rank in (2, 8):
        yield Case((r(12, 10), r(rank, 10), r(12, rank)), {"alpha": 16.0, "r": rank},
                   label=f"random 12x10, r={rank}, alpha=16")


def _merge_no_scaling(weight, A, B, alpha, r):
    return weight + B @ A


def _merge_inverse_scaling(weight, A, B, alpha, r):
    return weight + (r / alpha) * (B @ A)


def _merge_transposed(weight, A, B, alpha, r):
    return weight + (alpha / r) * (A.T @ B.T)


def _merge_subtract(weight, A, B, alpha, r):
    return weight - (alpha / r) * (B @ A)


def _merge_delta_only(weight, A, B, alpha, r):
    return (alpha / r) * (B @ A)


register(Exercise(
    id="06.3", title="merging LoRA into the weight", reference=lora.merge_lora_weights,
    cases=_merge_cases, atol=1e-4, rtol=1e-4,
    hint="merged = weight + (alpha / r) * (B @ A): B is (d_out, r), A is (r, d_in), so B @ A "
         "has the weight's shape (d_out, d_in). Return a new tensor; don't modify weight.",
    mistakes=[
        (_merge_no_scaling, "The update is not scaled: add (alpha / r) * (B @ A), the same "
                            "scaling the forward pass uses."),
        (_merge_inverse_scaling, "The scaling is upside down: it is alpha / r."),
        (_merge_transposed, "A.T @ B.T is the transpose of the update: in nn.Linear layout "
                            "the update is B @ A, shape (d_out, d_in)."),
        (_merge_subtract, "The update is added to the weight, not subtracted."),
        (_merge_delta_only, "You returned only the update: the merged weight is the frozen "
                            "weight plus the update."),
    ],
))
