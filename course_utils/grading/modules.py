"""Grading a class: an exercise where the learner writes an ``nn.Module`` (a block, a layer).

A :class:`ModuleExercise` is an :class:`~course_utils.grading.exercise.Exercise` whose
``reference`` (and answer, and known mistakes) are ``nn.Module`` classes. For each
:class:`ModuleCase` the grader

1. builds the reference from the case's constructor arguments (``args``/``kwargs``), puts it in
   eval mode, runs ``forward`` on a private copy of ``inputs``/``input_kwargs``, and takes the
   gradients of every parameter for a fixed loss: the sum of the outputs weighted by fixed
   random numbers (a plain sum would hide mistakes whose gradient sums to zero, e.g. in a
   softmax);
2. builds the learner's class from the same arguments, loads the reference's ``state_dict``
   into it by name (so both hold the same weights whatever their initialisation) and does the
   same forward and backward;
3. compares the outputs and then the gradients, name by name, with the exercise's
   ``atol``/``rtol``. A missing, unexpected or mis-shaped parameter gets a message listing the
   expected names and shapes; a parameter that should be frozen (or trainable) is named.

Everything runs under the same guard as a function exercise: no raise, the time limit, the
captured prints, the in-place check on the inputs, the every-case rule for ``mistakes``.

Example (see tests/test_grading_core_modules.py)::

    register(ModuleExercise(
        id="09.1", title="a two-layer MLP", reference=course_utils.blocks.MLP,
        cases=lambda rng: [ModuleCase((4, 8), inputs=(torch.randn(3, 4, generator=rng),),
                                      label="d=4, hidden=8", catches="ReLU missing")],
        hint="Linear(d, hidden), ReLU, Linear(hidden, d).",
    ))
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from course_utils.grading.compare import Message, compare
from course_utils.grading.exercise import Case, Exercise, Mismatch

_LOSS_SEED = 20240601


@dataclass
class ModuleCase(Case):
    """``args``/``kwargs`` build the module; ``inputs``/``input_kwargs`` go to ``forward``."""

    inputs: tuple = ()
    input_kwargs: dict = field(default_factory=dict)


def _params(fn: Callable, skip_self: bool = True) -> list[str]:
    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return []
    return names[1:] if skip_self and names[:1] == ["self"] else names


def _shapes(state: dict[str, torch.Tensor]) -> str:
    return ", ".join(f"{k} {tuple(v.shape)}" for k, v in state.items())


def _load(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load the reference's weights into the learner's module, or say which names differ."""
    mine = module.state_dict()
    missing = [k for k in state if k not in mine]
    unexpected = [k for k in mine if k not in state]
    if missing or unexpected:
        parts = ([f"missing {missing}"] if missing else []) + (
            [f"unexpected {unexpected}"] if unexpected else [])
        raise Mismatch(
            f"your module's parameters and buffers do not have the expected names "
            f"({'; '.join(parts)}). The grader loads the reference's weights by name, so "
            f"name the attributes as the exercise says. Expected: {_shapes(state)}.")
    for k, v in state.items():
        if tuple(mine[k].shape) != tuple(v.shape):
            raise Mismatch(f"your module's `{k}` has shape {tuple(mine[k].shape)}, but "
                           f"{tuple(v.shape)} is expected. Expected: {_shapes(state)}.")
    module.load_state_dict(state, strict=True)


def _output_tensors(out: Any) -> list[torch.Tensor]:
    items = list(out) if isinstance(out, tuple | list) else [out]
    return [t for t in items if isinstance(t, torch.Tensor) and t.is_floating_point()]


def forward_and_gradients(module: nn.Module, case: ModuleCase) -> dict[str, Any]:
    """Eval-mode forward on ``case.inputs`` and the gradients of a fixed weighted-sum loss."""
    module.train(False)
    module.zero_grad(set_to_none=True)
    out = module(*case.inputs, **case.input_kwargs)
    tensors = _output_tensors(out)
    if not tensors:
        raise Mismatch(f"forward should return a floating-point tensor (or a tuple of them), "
                       f"but it returned a {type(out).__name__}.")
    trainable = [p for p in module.parameters() if p.requires_grad]
    if trainable and any(t.requires_grad for t in tensors):
        gen = torch.Generator().manual_seed(_LOSS_SEED)
        loss = sum((t * torch.randn(t.shape, generator=gen).to(t.dtype)).sum()
                   for t in tensors if t.requires_grad)
        loss.backward()
    grads = {name: None if p.grad is None else p.grad.detach().clone()
             for name, p in module.named_parameters()}
    detached = (tuple(t.detach() if isinstance(t, torch.Tensor) else t for t in out)
                if isinstance(out, tuple | list) else out.detach())
    return {"output": detached, "gradients": grads}


@dataclass
class ModuleExercise(Exercise):
    """An exercise whose answer is an ``nn.Module`` class (see the module docstring)."""

    def __post_init__(self) -> None:
        if self.compare is None:
            self.compare = self.compare_modules

    def named_values(self, case: Case) -> list[tuple[str, Any]]:
        init = _params(self.reference.__init__)
        names = [init[i] if i < len(init) else f"argument {i + 1}" for i in range(len(case.args))]
        values = [*zip(names, case.args, strict=True), *case.kwargs.items()]
        if isinstance(case, ModuleCase):
            fwd = _params(self.reference.forward)
            names = [fwd[i] if i < len(fwd) else f"input {i + 1}" for i in range(len(case.inputs))]
            values += [*zip(names, case.inputs, strict=True), *case.input_kwargs.items()]
        return values

    def _build(self, cls: Any, case: Case) -> nn.Module:
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise Mismatch(f"this exercise grades a class: pass your nn.Module subclass "
                           f"itself (e.g. check(\"{self.id}\", MyModule)), not a "
                           f"{type(cls).__name__}.")
        with torch.random.fork_rng():  # building must not move the learner's random state
            torch.manual_seed(self.seed)
            module = cls(*case.args, **case.kwargs)
        if not isinstance(module, nn.Module):
            raise Mismatch(f"{cls.__name__}(...) did not make an nn.Module: call "
                           f"super().__init__() and subclass nn.Module.")
        return module

    def expected_of(self, case: Case) -> tuple[Any, Any]:
        module = self._build(self.reference, case)
        state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        return forward_and_gradients(module, case), state

    def attempt(self, candidate: Callable, case: Case, context: Any) -> Any:
        module = self._build(candidate, case)
        _load(module, context)
        return forward_and_gradients(module, case)

    def compare_modules(self, got: Any, expected: Any, case: Case) -> Message:
        """Outputs first (what forward computes), then each parameter's gradient."""
        kw = {"atol": self.atol, "rtol": self.rtol, "check_dtype": self.check_dtype}
        problem = compare(got["output"], expected["output"], path="the output of forward", **kw)
        if problem:
            return problem
        mine, want = got["gradients"], expected["gradients"]
        if set(mine) != set(want):
            extra = sorted(set(mine) - set(want))
            lost = sorted(set(want) - set(mine))
            return ("your module's trainable parameters differ from the reference's: "
                    + (f"{extra} should be buffers (not nn.Parameter); " if extra else "")
                    + (f"{lost} should be nn.Parameter, not buffers or plain tensors"
                       if lost else "")).rstrip("; ") + "."
        for name, g in want.items():
            if g is None and mine[name] is not None:
                return (f"`{name}` gets a gradient, but it should be frozen: set "
                        f"requires_grad=False on it (or don't let it reach the output).")
            if g is not None and mine[name] is None:
                return (f"no gradient reaches `{name}`: it should be trainable and used in "
                        f"forward (is it frozen, detached, or replaced by a copy?).")
            if g is not None:
                problem = compare(mine[name], g, path=f"the gradient of `{name}`", **kw)
                if problem:
                    return (f"{problem} The output is right, so look at what autograd "
                            f"sees: an in-place change, a .detach(), or .data in forward.")
        return None
