"""Known-wrong answers to lesson 08's exercises: the grader must reject each, saying why.

These implementations are written here, independently of the grader's own list of mistakes,
so a grader that stops recognising one of them fails this test.
"""

from __future__ import annotations

import json

import pytest
import torch

from course_utils.grading import get_exercise, run_exercise
from course_utils.serving.generation import left_pad
from course_utils.serving.streaming import sse_event


def _verdict(ex_id, fn):
    return run_exercise(get_exercise(ex_id), fn)


# ---- 08.1 left padding
def lp_learner(sequences, pad_token_id):
    """A correct solution written the way a learner would."""
    width = max(map(len, sequences))
    rows, masks, positions = [], [], []
    for seq in sequences:
        gap = width - len(seq)
        rows.append([pad_token_id] * gap + list(seq))
        masks.append([0] * gap + [1] * len(seq))
        positions.append([0] * gap + list(range(len(seq))))
    return torch.tensor(rows), torch.tensor(masks), torch.tensor(positions)


def lp_right_padded(sequences, pad_token_id):
    width = max(map(len, sequences))
    rows = [list(s) + [pad_token_id] * (width - len(s)) for s in sequences]
    masks = [[1] * len(s) + [0] * (width - len(s)) for s in sequences]
    positions = [list(range(len(s))) + [0] * (width - len(s)) for s in sequences]
    return torch.tensor(rows), torch.tensor(masks), torch.tensor(positions)


def lp_arange_positions(sequences, pad_token_id):
    ids, mask, _ = lp_learner(sequences, pad_token_id)
    return ids, mask, torch.arange(ids.shape[1]).repeat(ids.shape[0], 1)


def lp_minus_one(sequences, pad_token_id):
    ids, mask, pos = lp_learner(sequences, pad_token_id)
    return ids, mask, torch.where(mask == 1, pos, torch.full_like(pos, -1))


def lp_bool_inverted(sequences, pad_token_id):
    ids, mask, pos = lp_learner(sequences, pad_token_id)
    return ids, (mask == 0).long(), pos


def lp_zeros(sequences, pad_token_id):
    return lp_learner(sequences, 0)


def lp_compare_pad(sequences, pad_token_id):
    ids, _, _ = lp_learner(sequences, pad_token_id)
    mask = torch.where(ids == pad_token_id, 0, 1)
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    return ids, mask, pos


def lp_int32(sequences, pad_token_id):
    return tuple(t.int() for t in lp_learner(sequences, pad_token_id))


def lp_two_outputs(sequences, pad_token_id):
    return lp_learner(sequences, pad_token_id)[:2]


# ---- 08.2 SSE frame
def sse_learner(data, event=None):
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    out = "" if event is None else "event:" + event + "\n"
    for line in payload.split("\n"):
        out += "data:" + line + "\n"
    return out + "\n"


def sse_one_line_ending(data, event=None):
    return sse_learner(data, event).removesuffix("\n")


def sse_python_repr(data, event=None):
    return sse_learner(str(data) if not isinstance(data, str) else data, event)


def sse_multiline_in_one(data, event=None):
    payload = data if isinstance(data, str) else json.dumps(data)
    head = "" if event is None else f"event: {event}\n"
    return f"{head}data: {payload}\n\n"


def sse_no_event(data, event=None):
    return sse_learner(data)


def sse_twice(data, event=None):
    return sse_learner(data, event) * 2


def sse_bytes(data, event=None):
    return sse_learner(data, event).encode()


@pytest.mark.parametrize("ex_id, fn", [("08.1", left_pad), ("08.1", lp_learner),
                                       ("08.2", sse_event), ("08.2", sse_learner)])
def test_the_reference_and_a_learners_solution_pass(ex_id, fn):
    verdict = _verdict(ex_id, fn)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize("ex_id, fn, says", [
    ("08.1", lp_right_padded, "That is right padding"),
    ("08.1", lp_arange_positions, "count the padding too"),
    ("08.1", lp_minus_one, "clamp the position ids at 0"),
    ("08.1", lp_bool_inverted, "attention mask is inverted"),
    ("08.1", lp_zeros, "not 0"),
    ("08.1", lp_compare_pad, "not by comparing with pad_token_id"),
    ("08.1", lp_int32, "dtype"),
    ("08.1", lp_two_outputs, "items"),
    ("08.2", sse_one_line_ending, "BLANK line"),
    ("08.2", sse_python_repr, "is not JSON"),
    ("08.2", sse_multiline_in_one, "its own 'data: ' line"),
    ("08.2", sse_no_event, "event name"),
    ("08.2", sse_twice, "send exactly 1"),
    ("08.2", sse_bytes, "should be a str"),
])
def test_known_wrong_answers_are_rejected_with_their_reason(ex_id, fn, says):
    verdict = _verdict(ex_id, fn)
    assert not verdict.passed
    assert says in verdict.message, verdict.message


def test_an_unsolved_exercise_is_not_attempted():
    def stub(*args, **kwargs):
        raise NotImplementedError("Your turn")

    for ex_id in ("08.1", "08.2"):
        assert _verdict(ex_id, stub).status == "not attempted"
