"""Lesson 03 exercise 03.10: one training step of a causal LM.

Graded by the parameters after the learner's step: each case gives a small GPT and an
optimizer (SGD, so the gradient clipping shows in the update, and AdamW), sometimes with
stale gradients from an earlier step; the answer compared is the state the step leaves.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from course_utils import gpt, training
from course_utils.grading.core import Case, Exercise, register


class _TrainedGPT(gpt.GPT):
    """A GPT whose deep copies keep their parameters' ``.grad`` (a Parameter's own deepcopy
    drops it), so a case can hand the learner stale gradients."""

    def __deepcopy__(self, memo):
        clone = self.__class__.__new__(self.__class__)
        memo[id(self)] = clone
        for k, v in self.__dict__.items():
            setattr(clone, k, copy.deepcopy(v, memo))
        for mine, theirs in zip(self.parameters(), clone.parameters(), strict=True):
            if mine.grad is not None:
                theirs.grad = mine.grad.clone()
        return clone


@dataclass
class _After:
    """What a training step left behind: its returned loss, the parameters afterwards,
    whether they changed, and whether the given optimizer took a step."""

    loss: object
    params: dict
    changed: bool
    stepped: bool


class _TrainingExercise(Exercise):
    """A training step is *meant* to change the model and the optimizer: only the batch is
    checked for changes, and the answer compared is the state after the step."""

    def named_values(self, case: Case) -> list[tuple[str, object]]:
        return [("batch", case.args[2]), *case.kwargs.items()]

    def expected_of(self, case: Case):
        return self.attempt(self.reference, case, None), None

    def attempt(self, candidate, case: Case, context):
        model, optimizer = case.args[0], case.args[1]
        before = {k: v.detach().clone() for k, v in model.named_parameters()}
        loss = candidate(*case.args, **case.kwargs)
        after = {k: v.detach().clone() for k, v in model.named_parameters()}
        return _After(loss, after, any(not torch.equal(after[k], before[k]) for k in after),
                      bool(optimizer.state))


def _setup(rng, d_model=16, num_heads=2, num_layers=2, vocab=40, opt="sgd", lr=0.5,
           stale=False, batch=(3, 9), big=False):
    with torch.random.fork_rng():  # the learner's global random state is left alone
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=rng)))
        model = _TrainedGPT(gpt.GPTConfig(vocab_size=vocab, max_seq_len=32, d_model=d_model,
                                          num_heads=num_heads, num_layers=num_layers))
    if big:
        with torch.no_grad():
            model.token_embedding.weight.mul_(50)
    optimizer = (torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9) if opt == "sgd"
                 else torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1))
    ids = torch.randint(0, vocab, batch, generator=rng)
    ids[0, :3] = 0  # token id 0 is an ordinary token, a target like any other
    if stale:  # gradients left from an earlier step that the learner must clear
        training.lm_loss(model(ids.flip(-1)), ids.flip(-1)).backward()
    return model, optimizer, ids


def _cases(rng: torch.Generator):
    for kw, extra, label, catches in (
        ({"big": True}, {"max_grad_norm": 0.5}, "large gradients, max_grad_norm=0.5",
         "max_grad_norm ignored or hard-coded to 1.0; clipping by value instead of norm"),
        ({}, {}, "a 2-layer GPT, SGD with momentum", "the loss not shifted, or shifted the "
         "wrong way; no optimizer step; clipping missing or after the step"),
        ({"stale": True}, {}, "the model holds stale gradients from an earlier step",
         "no zero_grad before backward (old gradients added to the new ones)"),
        ({"big": True}, {}, "large gradients, max_grad_norm left at 1.0",
         "no default max_grad_norm=1.0"),
        ({"opt": "adamw", "lr": 1e-2}, {}, "AdamW with weight decay",
         "an optimizer built inside the step (its state is the caller's)"),
        ({"d_model": 27, "num_heads": 3, "num_layers": 1, "batch": (1, 2)}, {},
         "odd width, one sequence of two tokens (a single target)",
         "a loss summed instead of averaged; a shift by more than one"),
        ({"vocab": 7, "batch": (4, 20), "stale": True}, {"max_grad_norm": 100.0},
         "a loose max_grad_norm of 100 (no clipping happens)",
         "clipping to a fixed value instead of the given max_grad_norm"),
    ):
        model, optimizer, ids = _setup(rng, **kw)
        yield Case((model, optimizer, ids), extra, label=label, catches=catches)


def _params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach() for k, v in model.named_parameters()}


def _compare(got: _After, expected: _After, case: Case):
    loss = got.loss
    if isinstance(loss, torch.Tensor) and loss.numel() == 1:
        loss = loss.item()
    if not isinstance(loss, float | int) or isinstance(loss, bool):
        return (f"return the loss as a Python float (loss.item()), got "
                f"{type(got.loss).__name__}.")
    want = float(expected.loss)
    if abs(loss - want) > 1e-4 * max(1.0, abs(want)):
        return (f"your loss is {loss:.5f}, the shifted next-token loss of this batch (before "
                f"the update) is {want:.5f}.")
    for name, value in expected.params.items():
        if not torch.allclose(got.params[name], value, atol=1e-5, rtol=1e-4):
            if not got.changed:
                return ("the parameters did not change: call optimizer.step() after "
                        "loss.backward() (and don't zero the gradients between the two).")
            if not got.stepped:
                return ("the optimizer you were given took no step, yet the parameters "
                        "changed: use that optimizer (a new one loses its state and its "
                        "learning rate).")
            gap = (got.params[name] - value).abs().max().item()
            return (f"after your step, parameter {name} differs from the reference step by "
                    f"up to {gap:.2e}: the update itself is wrong.")
    return None


def _step(shift=1, clip="norm", zero=True, reduction="mean", step=True, norm=None,
          fresh_optimizer=False):
    def train_step(model, optimizer, batch, max_grad_norm=1.0):
        if zero:
            optimizer.zero_grad()
        logits = model(batch)
        vocab = logits.shape[-1]
        if shift == 1:
            pred, target = logits[:, :-1], batch[:, 1:]
        elif shift == 0:
            pred, target = logits, batch
        else:  # the wrong way round
            pred, target = logits[:, 1:], batch[:, :-1]
        loss = F.cross_entropy(pred.reshape(-1, vocab), target.reshape(-1), reduction=reduction)
        loss.backward()
        limit = max_grad_norm if norm is None else norm
        if clip == "norm":
            torch.nn.utils.clip_grad_norm_(model.parameters(), limit)
        elif clip == "value":
            torch.nn.utils.clip_grad_value_(model.parameters(), limit)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2) if fresh_optimizer else optimizer
        if step:
            opt.step()
        if clip == "after":
            torch.nn.utils.clip_grad_norm_(model.parameters(), limit)
        return loss.item()
    return train_step


register(_TrainingExercise(
    id="03.10", title="one training step", reference=training.train_step, cases=_cases,
    compare=_compare,
    hint="optimizer.zero_grad(); logits = model(batch); loss = F.cross_entropy(logits[:, :-1]"
         ".reshape(-1, vocab), batch[:, 1:].reshape(-1)); loss.backward(); torch.nn.utils."
         "clip_grad_norm_(model.parameters(), max_grad_norm); optimizer.step(); return "
         "loss.item().",
    mistakes=[
        (_step(shift=0), "The logits at position t predict token t + 1: score logits[:, :-1] "
                         "against batch[:, 1:]. Without the shift the model learns to copy "
                         "its input."),
        (_step(shift=-1), "The shift goes the other way: logits[:, :-1] against batch[:, 1:] "
                          "(position t predicts the *next* token)."),
        (_step(zero=False), "Zero the gradients before backward (optimizer.zero_grad()): "
                            "PyTorch adds new gradients to the old ones."),
        (_step(clip=None), "Clip the gradients' total norm *before* the step: "
                           "torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm) "
                           "(clipping after optimizer.step() changes nothing in this update)."),
        (_step(clip="value"), "Clip the gradients' total *norm* (clip_grad_norm_), not each "
                              "value (clip_grad_value_)."),
        (_step(norm=1.0), "Use the max_grad_norm you are given, not a fixed 1.0."),
        (_step(reduction="sum"), "Average the loss over the tokens (cross_entropy's default "
                                 "reduction='mean'), not their sum."),
        (_step(step=False), "Take the optimizer's step: optimizer.step() after backward."),
        (_step(fresh_optimizer=True), "Use the optimizer you are given: a new one inside the "
                                      "step loses its state (momentum, Adam's moments) and "
                                      "its learning rate."),
    ],
))
