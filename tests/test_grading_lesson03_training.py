"""Known-wrong answers to lesson 03's training step (03.10): each rejected, saying why."""

import pytest
import torch
import torch.nn.functional as F

from course_utils.grading import get_exercise, run_exercise
from course_utils.training import lm_loss


def _verdict(fn):
    return run_exercise(get_exercise("03.10"), fn)


def _ce(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def step_unshifted(model, optimizer, batch, max_grad_norm=1.0):
    optimizer.zero_grad()
    loss = _ce(model(batch), batch)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    return loss.item()


def step_shift_backwards(model, optimizer, batch, max_grad_norm=1.0):
    optimizer.zero_grad()
    loss = _ce(model(batch)[:, 1:], batch[:, :-1])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    return loss.item()


def step_zero_grad_at_the_end_only(model, optimizer, batch, max_grad_norm=1.0):
    loss = lm_loss(model(batch), batch)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def step_zero_grad_between_backward_and_step(model, optimizer, batch, max_grad_norm=1.0):
    loss = lm_loss(model(batch), batch)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()


def step_clip_after_step(model, optimizer, batch, max_grad_norm=1.0):
    optimizer.zero_grad()
    loss = lm_loss(model(batch), batch)
    loss.backward()
    optimizer.step()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    return loss.item()


def step_clip_values(model, optimizer, batch, max_grad_norm=1.0):
    optimizer.zero_grad()
    loss = lm_loss(model(batch), batch)
    loss.backward()
    torch.nn.utils.clip_grad_value_(model.parameters(), max_grad_norm)
    optimizer.step()
    return loss.item()


def step_clip_fixed(model, optimizer, batch, max_grad_norm=1.0):
    optimizer.zero_grad()
    loss = lm_loss(model(batch), batch)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss.item()


def step_sum_loss(model, optimizer, batch, max_grad_norm=1.0):
    optimizer.zero_grad()
    logits = model(batch)[:, :-1]
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1),
                           reduction="sum")
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    return loss.item()


def step_new_optimizer(model, optimizer, batch, max_grad_norm=1.0):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt.zero_grad()
    loss = lm_loss(model(batch), batch)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    opt.step()
    return loss.item()


def step_returns_tensor_loss_after_update(model, optimizer, batch, max_grad_norm=1.0):
    optimizer.zero_grad()
    loss = lm_loss(model(batch), batch)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    with torch.no_grad():
        return lm_loss(model(batch), batch).item()


def step_ok_set_to_none_and_tensor_loss(model, optimizer, batch, max_grad_norm=1.0):
    for p in model.parameters():
        p.grad = None
    logits = model(batch)
    loss = F.cross_entropy(logits[:, :-1].transpose(1, 2), batch[:, 1:])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(list(model.parameters()), max_norm=max_grad_norm)
    optimizer.step()
    optimizer.zero_grad()
    return loss.detach()


@pytest.mark.parametrize("wrong, why", [
    (step_unshifted, "the shifted next-token loss"),
    (step_shift_backwards, "the shifted next-token loss"),
    (step_zero_grad_at_the_end_only, "PyTorch adds new gradients to the old ones"),
    (step_zero_grad_between_backward_and_step, "the parameters did not change"),
    (step_clip_after_step, "changes nothing in this update"),
    (step_clip_values, "not each value"),
    (step_clip_fixed, "not a fixed 1.0"),
    (step_sum_loss, "the shifted next-token loss"),
    (step_new_optimizer, "the optimizer you were given took no step"),
    (step_returns_tensor_loss_after_update, "(before the update)"),
])
def test_known_wrong_answer_is_rejected_with_a_specific_message(wrong, why):
    result = _verdict(wrong)
    assert result.status == "failed", wrong.__name__
    assert why in result.message, result.message


def test_reference_and_an_alternative_are_accepted():
    assert _verdict(get_exercise("03.10").reference).passed
    result = _verdict(step_ok_set_to_none_and_tensor_loss)
    assert result.passed, result.message


def test_grading_leaves_the_global_random_state_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    _verdict(get_exercise("03.10").reference)
    assert torch.equal(torch.rand(3), expected)


def test_cases_and_mistakes_meet_the_standard():
    ex = get_exercise("03.10")
    cases = list(ex.cases(torch.Generator().manual_seed(ex.seed)))
    assert all(c.label and c.catches for c in cases)
    assert any(p.grad is not None for c in cases for p in c.args[0].parameters())
    for wrong, hint in ex.mistakes:
        for case in list(ex.cases(torch.Generator().manual_seed(ex.seed))):
            wrong(*case.args, **case.kwargs)
        result = run_exercise(ex, wrong)
        assert result.status == "failed" and hint in result.message, result.message
