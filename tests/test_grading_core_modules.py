"""Grading a class (grading.modules): a small MLP written two ways, and learner-style mistakes.

The MLP is a throwaway module for these tests, not a lesson exercise.
"""

import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import grading
from course_utils.grading import core
from course_utils.grading.modules import ModuleCase, ModuleExercise


class MLP(nn.Module):
    """The reference: Linear, ReLU, Linear."""

    def __init__(self, d, hidden):
        super().__init__()
        self.fc1 = nn.Linear(d, hidden)
        self.fc2 = nn.Linear(hidden, d)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class _Dense(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in) / d_in ** 0.5)
        self.bias = nn.Parameter(torch.zeros(d_out))


class MLPByHand(nn.Module):
    """Correct too: its own parameters, the maths written out, the same names."""

    def __init__(self, d, hidden):
        super().__init__()
        self.fc1, self.fc2 = _Dense(d, hidden), _Dense(hidden, d)

    def forward(self, x):
        h = (x @ self.fc1.weight.T + self.fc1.bias).clamp(min=0)
        return h @ self.fc2.weight.T + self.fc2.bias


class MLPNoReLU(MLP):
    def forward(self, x):
        return self.fc2(self.fc1(x))


class MLPSigmoid(MLP):
    def forward(self, x):
        return self.fc2(torch.sigmoid(self.fc1(x)))


class MLPOtherNames(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.lin1, self.lin2 = nn.Linear(d, hidden), nn.Linear(hidden, d)

    def forward(self, x):
        return self.lin2(F.relu(self.lin1(x)))


class MLPSwappedSizes(MLP):
    def __init__(self, d, hidden):
        nn.Module.__init__(self)
        self.fc1, self.fc2 = nn.Linear(d, d), nn.Linear(d, d)


class MLPDetached(MLP):
    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)).detach())


class MLPFrozen(MLP):
    def __init__(self, d, hidden):
        super().__init__(d, hidden)
        self.fc1.requires_grad_(False)


class MLPInPlace(MLP):
    def forward(self, x):
        x *= 2  # changes the caller's tensor
        return super().forward(x / 2)


class MLPUnsolved(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        raise NotImplementedError("Your turn: replace this line with your code.")

    def forward(self, x):
        raise NotImplementedError("Your turn: replace this line with your code.")


class MLPForever(MLP):
    def forward(self, x):
        while True:
            try:
                time.sleep(1)
            except:  # noqa: E722
                pass


class MLPNaN(MLP):
    def forward(self, x):
        return super().forward(x) * float("nan")


def _cases(rng):
    yield ModuleCase((4, 8), inputs=(torch.randn(3, 4, generator=rng),), label="d=4, hidden=8",
                     catches="a missing or wrong activation")
    yield ModuleCase((6, 3), inputs=(torch.randn(2, 5, 6, generator=rng) * 3,),
                     label="a batch of sequences, hidden < d", catches="sizes swapped")


@pytest.fixture()
def ex(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_PROGRESS_FILE", str(tmp_path / "p.json"))
    monkeypatch.delenv("COURSE_STRICT", raising=False)
    exercise = grading.register(ModuleExercise(
        id="99.5", title="a two-layer MLP", reference=MLP, cases=_cases, time_limit=2.0,
        hint="fc1 = Linear(d, hidden), ReLU, fc2 = Linear(hidden, d).",
        mistakes=[(MLPNoReLU, "The ReLU between the layers is missing.")]))
    yield exercise
    core._REGISTRY.pop("99.5", None)


@pytest.mark.parametrize("cls", [MLP, MLPByHand])
def test_the_reference_and_a_different_correct_class_pass(ex, cls):
    result = grading.run_exercise(ex, cls)
    assert result.passed, result.message


@pytest.mark.parametrize("cls, says", [
    (MLPNoReLU, "The ReLU between the layers is missing."),  # the known mistake, every case
    (MLPSigmoid, "the output of forward differs"),
    (MLPOtherNames, "missing ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']"),
    (MLPSwappedSizes, "has shape (4, 4), but (8, 4) is expected"),
    (MLPDetached, "no gradient reaches `fc1.weight`"),
    (MLPFrozen, "no gradient reaches `fc1.weight`"),
    (MLPInPlace, "changed its input `x` in place"),
    (MLPNaN, "NaN"),
    (lambda d, hidden: MLP(d, hidden), "grades a class"),
])
def test_wrong_classes_are_rejected_with_their_reason(ex, cls, says):
    result = grading.run_exercise(ex, cls)
    assert result.status == "failed" and says in result.message, result.message


def test_expected_names_and_shapes_are_listed(ex):
    message = grading.run_exercise(ex, MLPOtherNames).message
    assert "Expected: fc1.weight (8, 4), fc1.bias (8,), fc2.weight (4, 8)" in message
    assert "lin1.weight" in message  # what the learner's module has instead


def test_a_gradient_difference_is_caught_when_outputs_agree(ex):
    class ScaledGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            return 2 * g

    class MLPWrongBackward(MLP):
        def forward(self, x):
            return self.fc2(ScaledGrad.apply(torch.relu(self.fc1(x))))

    message = grading.run_exercise(ex, MLPWrongBackward).message
    assert "the gradient of `fc1.weight` differs" in message


def test_the_frozen_parameter_is_named_when_the_reference_freezes_it(ex):
    class FrozenRef(MLP):
        def __init__(self, d, hidden):
            super().__init__(d, hidden)
            self.fc1.requires_grad_(False)

    ex.reference = FrozenRef
    assert grading.run_exercise(ex, FrozenRef).passed
    assert "`fc1.weight` gets a gradient, but it should be frozen" in \
        grading.run_exercise(ex, MLP).message


def test_unsolved_time_limit_and_strict_mode(ex, monkeypatch):
    assert grading.run_exercise(ex, MLPUnsolved).status == "not attempted"
    started = time.monotonic()
    slow = grading.run_exercise(ex, MLPForever)
    assert "longer than 2 s" in slow.message and time.monotonic() - started < 5
    monkeypatch.setenv("COURSE_STRICT", "1")
    with pytest.raises(grading.ExerciseFailed):
        grading.check("99.5", MLPSigmoid)
    assert grading.check("99.5", MLPByHand).passed


def test_grading_a_class_leaves_the_global_random_state_alone(ex):
    torch.manual_seed(7)
    before = torch.get_rng_state()
    grading.run_exercise(ex, MLPByHand)
    assert torch.equal(torch.get_rng_state(), before)
