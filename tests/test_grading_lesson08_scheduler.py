"""Known-wrong answers to exercise 08.4, the continuous-batching scheduler step: the grader
must reject each, saying why, and accept a correct solution written differently.

The wrong answers are written here the way a learner would write them, independently of the
grader's own list of mistakes, so a grader that stops recognising one of them fails this test.
The cases are the states of scripted arrival sequences (course_utils.grading.lesson08_scheduler).
"""

from __future__ import annotations

import copy

import pytest
import torch

from course_utils.grading import get_exercise, run_exercise
from course_utils.grading.lesson08_scheduler import play
from course_utils.serving.scheduler import Request, schedule

ID = "08.4"


def _verdict(fn):
    return run_exercise(get_exercise(ID), fn)


def _cases():
    ex = get_exercise(ID)
    return list(ex.cases(torch.Generator().manual_seed(ex.seed)))


# ---- correct, written differently


def learner_step(running, waiting, max_batch_size, mask, cache):
    """Loops and a boolean index instead of index_select; a while loop for the trim."""
    stay = torch.tensor([not (r.finished or r.cancelled) for r in running], dtype=torch.bool)
    rows = [r for r, s in zip(running, stay.tolist(), strict=True) if s]
    mask = mask[stay]
    cache = [c[stay] for c in cache]
    start = 0
    while start < mask.shape[1] and not bool(mask[:, start].any()):
        start += 1
    mask = mask[:, start:]
    cache = [c[:, :, start:, :] for c in cache]
    admitted, still = [], []
    for req in waiting:
        if req.cancelled:
            continue
        if len(rows) + len(admitted) < max_batch_size:
            admitted.append(req)
        else:
            still.append(req)
    return rows, admitted, still, mask, cache


# ---- wrong, the way learners get it wrong


def admits_everyone(running, waiting, max_batch_size, mask, cache):
    rows, admitted, still, mask, cache = learner_step(running, waiting, 10**6, mask, cache)
    return rows, admitted, still, mask, cache


def takes_from_the_back(running, waiting, max_batch_size, mask, cache):
    rows, _, _, mask, cache = learner_step(running, [], max_batch_size, mask, cache)
    line = [w for w in waiting if not w.cancelled]
    room = max_batch_size - len(rows)
    admitted = line[::-1][:room]
    return rows, admitted, [w for w in line if w not in admitted], mask, cache


def forgets_cancelled_waiting(running, waiting, max_batch_size, mask, cache):
    rows, _, _, mask, cache = learner_step(running, [], max_batch_size, mask, cache)
    room = max_batch_size - len(rows)
    return rows, list(waiting[:room]), list(waiting[room:]), mask, cache


def drops_only_cancelled(running, waiting, max_batch_size, mask, cache):
    keep = [i for i, r in enumerate(running) if not r.cancelled]
    fake = [Request(r.id, finished=False, cancelled=i not in keep) for i, r in
            enumerate(running)]
    _, admitted, still, mask, cache = learner_step(fake, waiting, max_batch_size, mask, cache)
    return [running[i] for i in keep], admitted, still, mask, cache


def room_from_the_old_batch(running, waiting, max_batch_size, mask, cache):
    rows, _, _, mask, cache = learner_step(running, [], max_batch_size, mask, cache)
    line = [w for w in waiting if not w.cancelled]
    room = max(max_batch_size - len(running), 0)  # counted before the finished rows left
    return rows, line[:room], line[room:], mask, cache


def mask_rows_only(running, waiting, max_batch_size, mask, cache):
    rows, admitted, still, new_mask, _ = learner_step(running, waiting, max_batch_size, mask,
                                                      cache)
    start = mask.shape[1] - new_mask.shape[1]
    cache = [c[:, :, start:, :] for c in cache]  # trimmed, but every old row still there
    return rows, admitted, still, new_mask, cache


def never_trims(running, waiting, max_batch_size, mask, cache):
    stay = [not (r.finished or r.cancelled) for r in running]
    index = torch.tensor(stay, dtype=torch.bool)
    rows, admitted, still, _, _ = learner_step(running, waiting, max_batch_size, mask, cache)
    return rows, admitted, still, mask[index], [c[index] for c in cache]


def trims_to_the_shortest_row(running, waiting, max_batch_size, mask, cache):
    rows, admitted, still, mask, cache = learner_step(running, waiting, max_batch_size, mask,
                                                      cache)
    if mask.shape[0]:
        width = int(mask.sum(1).min())  # the shortest row's real tokens: cuts real ones too
        mask, cache = mask[:, -width:] if width else mask[:, :0], \
            [c[..., -width:, :] if width else c[..., :0, :] for c in cache]
    return rows, admitted, still, mask, cache


def cache_not_trimmed(running, waiting, max_batch_size, mask, cache):
    stay = torch.tensor([not (r.finished or r.cancelled) for r in running], dtype=torch.bool)
    rows, admitted, still, mask, _ = learner_step(running, waiting, max_batch_size, mask, cache)
    return rows, admitted, still, mask, [c[stay] for c in cache]


def returns_ids(running, waiting, max_batch_size, mask, cache):
    out = learner_step(running, waiting, max_batch_size, mask, cache)
    return {"running": out[0], "admitted": out[1], "waiting": out[2], "mask": out[3],
            "cache": out[4]}


@pytest.mark.parametrize("fn", [schedule, learner_step])
def test_the_reference_and_a_learners_solution_pass(fn):
    verdict = _verdict(fn)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize("fn, says", [
    (admits_everyone, "more requests than the batch holds"),
    (takes_from_the_back, "arrival order"),
    (forgets_cancelled_waiting, "cancelled waiting request must not be admitted"),
    (drops_only_cancelled, "finished row must leave at once"),
    (room_from_the_old_batch, "free slots after dropping"),
    (mask_rows_only, "cache rows must move with the mask rows"),
    (never_trims, "Cut the columns that are padding in every row"),
    (trims_to_the_shortest_row, "padding in EVERY row"),
    (cache_not_trimmed, "mask and the cache must keep the same columns"),
    (returns_ids, "return five things"),
])
def test_known_wrong_answers_are_rejected_with_their_reason(fn, says):
    verdict = _verdict(fn)
    assert verdict.status == "failed", verdict.message
    assert says in verdict.message, verdict.message


def test_an_unsolved_exercise_is_not_attempted():
    def stub(running, waiting, max_batch_size, mask, cache):
        raise NotImplementedError("Your turn: write the scheduler step")
    assert _verdict(stub).status == "not attempted"


def test_every_case_says_what_it_catches():
    cases = _cases()
    assert len(cases) > 30
    assert all(c.label and c.catches for c in cases)
    labels = " ".join(c.label for c in cases)
    for event in ("arrives", "finishes", "is cancelled while waiting", "is cancelled,",
                  "limit 1", "nothing running"):
        assert event in labels, event


def test_every_known_mistake_runs_on_every_case():
    ex = get_exercise(ID)
    for case in _cases():
        for wrong, _ in ex.mistakes:
            wrong(*copy.deepcopy(case.args))


def test_each_known_mistake_gets_its_own_hint():
    ex = get_exercise(ID)
    for wrong, advice in ex.mistakes:
        verdict = run_exercise(ex, wrong)
        assert verdict.status == "failed" and advice in verdict.message, wrong.__name__


def test_the_scripts_reach_the_edges():
    """Independent of the reference: the scripted states include a full batch with a queue,
    an emptied batch, a long padded row, and requests with the falsy id 0."""
    cases = _cases()
    assert any(len(c.args[0]) == c.args[2] and c.args[1] for c in cases), "a full batch"
    assert any(c.args[0] and all(r.finished or r.cancelled for r in c.args[0])
               for c in cases), "every row leaves at once"
    assert any(c.args[3].shape[1] >= 40 for c in cases), "a long row"
    assert any(r.id == 0 for c in cases for r in c.args[0]), "id 0"


def test_play_follows_a_hand_checked_script():
    """Two requests of 2 and 3 tokens, limit 1: the second waits, then joins alone; its cache
    is not padded once the first row has left."""
    states = play([{"arrive": [("a", 2), ("b", 3)]}, {"finish": ["a"]}, {}], 1)
    (_, s0), (_, s1), (_, s2) = states
    assert [r.id for r in s0[1]] == ["a", "b"] and s0[3].shape == (0, 0)
    assert [r.id for r in s1[0]] == ["a"] and s1[3].tolist() == [[1, 1, 1]]
    assert [r.id for r in s2[0]] == ["b"] and s2[3].tolist() == [[1, 1, 1, 1]]
    assert s2[4][0][0, 0, :, 0].tolist() == [200.0, 201.0, 202.0, 203.0]  # b's positions
