"""Lesson 08 exercise 08.4: the continuous-batching scheduler step (reference
:func:`course_utils.serving.scheduler.schedule`).

The cases are the states a server passes through on scripted arrival sequences: requests
arrive, finish and are cancelled (running or still waiting) while the batch runs. Each script
is played with the reference scheduler and the library's own prefill-and-join
(:func:`~course_utils.serving.scheduler.append_rows`) and one decoding column per step; the
state before every step is one case. Cache entries encode the request and the position of
the token (padding is 0), so a row or a column out of place is visible.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from course_utils.grading.compare import compare as compare_values
from course_utils.grading.core import Case, Exercise, register
from course_utils.serving.scheduler import Request, Step, append_rows, schedule

HEADS, HEAD_DIM, LAYERS = 2, 3, 2


def _entries(code: int, positions: list[int]) -> list[torch.Tensor]:
    """Cache columns of the ``code``-th request (keys, values per layer):
    ``(1, HEADS, len, HEAD_DIM)``, each entry saying whose token and which position it is."""
    pos = torch.tensor(positions, dtype=torch.float32)[None, None, :, None]
    offsets = (torch.arange(HEADS)[:, None, None] * 0.1 + torch.arange(HEAD_DIM) * 0.01)[None]
    base = (code + 1) * 100 + pos + offsets
    return [sign * (layer + 1) * base for layer in range(LAYERS) for sign in (1, -1)]


def _empty_state() -> tuple[torch.Tensor, list[torch.Tensor]]:
    return (torch.zeros(0, 0, dtype=torch.long),
            [torch.zeros(0, HEADS, 0, HEAD_DIM) for _ in range(2 * LAYERS)])


def play(script: list[dict], max_batch_size: int) -> list[tuple[str, tuple]]:
    """The state before each step of ``script`` (a list of ``{"arrive": [(id, prompt_len)],
    "finish": [ids], "cancel": [ids]}``), with a description of what just happened."""
    requests: dict[Any, Request] = {}
    lengths: dict[Any, int] = {}
    real: dict[Any, int] = {}  # tokens of each running request in the cache
    codes: dict[Any, int] = {}  # the number its cache entries carry
    running: list[Request] = []
    waiting: list[Request] = []
    mask, cache = _empty_state()
    states = []
    for t, events in enumerate(script):
        said = []
        for rid, n in events.get("arrive", ()):
            requests[rid], lengths[rid] = Request(rid), n
            codes[rid] = len(codes)
            waiting.append(requests[rid])
            said.append(f"{rid} arrives ({n} prompt token{'s' if n != 1 else ''})")
        for rid in events.get("finish", ()):
            requests[rid].finished = True
            said.append(f"{rid} finishes")
        for rid in events.get("cancel", ()):
            requests[rid].cancelled = True
            said.append(f"{rid} is cancelled" + (" while waiting" if requests[rid] in waiting
                                                  else ""))
        state = (running, waiting, max_batch_size, mask, cache)
        states.append((f"step {t}: {', '.join(said) or 'nothing new'}", copy.deepcopy(state)))
        step = schedule(*state)
        running, waiting, mask, cache = step.running, step.waiting, step.mask, step.cache
        if step.admitted:  # the engine's part: prefill the admitted prompts, join them
            width = max(lengths[r.id] for r in step.admitted)
            new_mask = torch.tensor([[0] * (width - lengths[r.id]) + [1] * lengths[r.id]
                                     for r in step.admitted])
            new_cache = [torch.cat(parts) for parts in zip(*(
                [torch.cat([torch.zeros(1, HEADS, width - lengths[r.id], HEAD_DIM), e], 2)
                 for e in _entries(codes[r.id], list(range(lengths[r.id])))]
                for r in step.admitted), strict=True)]
            mask, cache = append_rows(mask, cache, new_mask, new_cache)
            running = running + step.admitted
            for r in step.admitted:
                real[r.id] = lengths[r.id]
        if running:  # one decoding step: every row gets one more column
            mask = torch.cat([mask, torch.ones(len(running), 1, dtype=torch.long)], 1)
            columns = [_entries(codes[r.id], [real[r.id]]) for r in running]
            cache = [torch.cat([c, torch.cat([col[i] for col in columns])], 2)
                     for i, c in enumerate(cache)]
            for r in running:
                real[r.id] += 1
    return states


_SCRIPTS = {
    "arrivals while the batch runs (limit 3)": (3, [
        {"arrive": [(0, 3), (1, 5)]},
        {"arrive": [(2, 2)]},
        {"arrive": [(3, 4), (4, 1)], "finish": [1]},
        {"finish": [0], "cancel": [2]},
        {"arrive": [(5, 6)], "cancel": [4]},
        {"finish": [3]},
        {"finish": [5]},
    ]),
    "a burst beyond the limit (limit 2)": (2, [
        {"arrive": [(10, 2), (11, 7), (12, 1), (13, 3), (14, 4), (15, 2)]},
        {"cancel": [12]},
        {"finish": [10]},
        {"cancel": [14], "finish": [11]},
        {},
        {"finish": [13, 15]},
    ]),
    "one at a time (limit 1)": (1, [
        {"arrive": [(7, 4), (8, 2)]},
        {"arrive": [(9, 3)], "finish": [7]},
        {"cancel": [8]},
        {"cancel": [9]},
    ]),
    "a long prompt leaves (limit 4)": (4, [
        {"arrive": [("long", 40), ("a", 2)]},
        {"arrive": [("b", 3)]},
        {"finish": ["long"]},
        {"arrive": [("c", 1), ("d", 5), ("e", 2)], "finish": ["a"]},
        {"finish": ["b", "c"], "cancel": ["d"]},
        {"finish": ["e"]},
    ]),
    "everything leaves at once (limit 3)": (3, [
        {"arrive": [(0, 5), (1, 2), (2, 3)]},
        {"cancel": [0], "finish": [1, 2], "arrive": [(3, 2)]},
        {},
    ]),
}


def _random_script(rng: torch.Generator, steps: int) -> list[dict]:
    script, alive, nxt = [], [], 100
    for _ in range(steps):
        events: dict = {"arrive": [], "finish": [], "cancel": []}
        for _ in range(int(torch.randint(0, 4, (1,), generator=rng))):
            events["arrive"].append((nxt, int(torch.randint(1, 12, (1,), generator=rng))))
            alive.append(nxt)
            nxt += 1
        for rid in list(alive):
            roll = float(torch.rand(1, generator=rng))
            if roll < 0.2:
                events["finish"].append(rid)
            elif roll < 0.3:
                events["cancel"].append(rid)
            if roll < 0.3:
                alive.remove(rid)
        script.append(events)
    return script


def _finish_only_running(script: list[dict], limit: int) -> list[dict]:
    """A random script may 'finish' a request that is still waiting; only running requests
    can finish (a waiting one can only be cancelled): turn those into cancellations."""
    fixed, waiting, running = [], [], []
    for events in script:
        events = {k: list(v) for k, v in events.items()}
        waiting += [rid for rid, _ in events.get("arrive", ())]
        for rid in list(events.get("finish", ())):
            if rid in waiting:
                events["finish"].remove(rid)
                events.setdefault("cancel", []).append(rid)
        gone = set(events.get("finish", ())) | set(events.get("cancel", ()))
        running = [r for r in running if r not in gone]
        waiting = [w for w in waiting if w not in gone]
        room = max(limit - len(running), 0)
        running += waiting[:room]
        waiting = waiting[room:]
        fixed.append(events)
    return fixed


def _cases(rng: torch.Generator):
    mask, cache = _empty_state()
    yield Case(([], [], 4, mask, cache), label="nothing running, nothing waiting",
               catches="a crash on an empty batch (0 rows, 0 columns)")
    for name, (limit, script) in _SCRIPTS.items():
        for said, state in play(script, limit):
            yield Case(state, label=f"{name}, {said}",
                       catches="admits beyond the limit or out of arrival order; cancelled "
                               "waiting requests admitted; finished or cancelled rows kept; "
                               "cache rows not moved with the mask rows; padding columns not "
                               "cut, or cut too far")
    for k in range(2):
        limit = int(torch.randint(2, 7, (1,), generator=rng))
        script = _finish_only_running(_random_script(rng, 12), limit)
        for said, state in play(script, limit):
            yield Case(state, label=f"random script {k + 1} (limit {limit}), {said}",
                       catches="any of the above at once")


def _ids(rows: Any) -> Any:
    try:
        return [getattr(r, "id", r) for r in rows]
    except TypeError:
        return rows


def _compare(got: Any, expected: Any, case: Case) -> str | None:
    if not isinstance(got, tuple | list) or len(got) != 5:
        return ("return five things, (running, admitted, waiting, mask, cache), e.g. "
                f"Step(...) or a plain tuple; got a {type(got).__name__}"
                + (f" of {len(got)}" if isinstance(got, tuple | list) else "") + ".")
    if not isinstance(expected, tuple | list) or len(expected) != 5:
        return "the result differs from the expected one."
    names = ("running", "admitted", "waiting")
    for name, g, e in zip(names, got[:3], expected[:3], strict=True):
        if _ids(g) != _ids(e):
            return (f"in the case '{case.label}', your {name} requests are {_ids(g)!r}, but "
                    f"{_ids(e)!r} are expected.")
    problem = compare_values(got[3], expected[3])
    if problem:
        return f"in the case '{case.label}', the mask: {problem}"
    if not isinstance(got[4], tuple | list) or len(got[4]) != len(expected[4]):
        return (f"in the case '{case.label}', the cache should be a list of "
                f"{len(expected[4]) if isinstance(expected[4], list) else 'its'} tensors, one "
                "per key or value tensor given.")
    for i, (g, e) in enumerate(zip(got[4], expected[4], strict=True)):
        problem = compare_values(g, e)
        if problem:
            return f"in the case '{case.label}', cache tensor {i}: {problem}"
    return None


# ---------------------------------------------------------------- known mistakes


def _step(running, waiting, limit, mask, cache, *, drop=("finished", "cancelled"),
          skip_cancelled_waiting=True, room_from_old=False, lifo=False, move_cache=True,
          trim="left", trim_cache=True) -> Step:
    keep = [i for i, r in enumerate(running) if not any(getattr(r, f) for f in drop)]
    index = torch.tensor(keep, dtype=torch.long)
    mask = mask.index_select(0, index)
    if move_cache:
        cache = [c.index_select(0, index) for c in cache]
    if trim == "left":
        cols = (mask != 0).any(0).nonzero()
        start = int(cols[0]) if len(cols) else mask.shape[1]
    elif trim == "any":  # cut every column that is padding in ANY row
        cols = (mask != 0).all(0).nonzero()
        start = int(cols[0]) if len(cols) and len(mask) else mask.shape[1]
    else:
        start = 0
    mask = mask[:, start:]
    if trim_cache:
        cache = [c[..., start:, :] for c in cache]
    line = [r for r in waiting if not (skip_cancelled_waiting and r.cancelled)]
    room = max(limit - (len(running) if room_from_old else len(keep)), 0)
    admitted = line[::-1][:room] if lifo else line[:room]
    still = [r for r in line if not any(r is a for a in admitted)]
    return Step([running[i] for i in keep], admitted, still, mask, list(cache))


def _admit_all(running, waiting, limit, mask, cache):
    return _step(running, waiting, 10**9, mask, cache)


def _newest_first(running, waiting, limit, mask, cache):
    return _step(running, waiting, limit, mask, cache, lifo=True)


def _admits_cancelled(running, waiting, limit, mask, cache):
    return _step(running, waiting, limit, mask, cache, skip_cancelled_waiting=False)


def _keeps_finished(running, waiting, limit, mask, cache):
    return _step(running, waiting, limit, mask, cache, drop=("cancelled",))


def _keeps_cancelled(running, waiting, limit, mask, cache):
    return _step(running, waiting, limit, mask, cache, drop=("finished",))


def _room_before_dropping(running, waiting, limit, mask, cache):
    return _step(running, waiting, limit, mask, cache, room_from_old=True)


def _cache_rows_not_moved(running, waiting, limit, mask, cache):
    return _step(running, waiting, limit, mask, cache, move_cache=False)


def _no_trim(running, waiting, limit, mask, cache):
    return _step(running, waiting, limit, mask, cache, trim="none")


def _trim_too_far(running, waiting, limit, mask, cache):
    return _step(running, waiting, limit, mask, cache, trim="any")


def _mask_trimmed_cache_not(running, waiting, limit, mask, cache):
    return _step(running, waiting, limit, mask, cache, trim_cache=False)


register(Exercise(
    id="08.4", title="the continuous-batching scheduler step", reference=schedule,
    cases=_cases, compare=_compare,
    hint="keep = the indices of running rows neither finished nor cancelled; select those rows "
         "of the mask and of every cache tensor (index_select(0, ...)); the first column that "
         "is real in any kept row is (mask != 0).any(0).nonzero()[0] (or all columns when no "
         "row is left): cut the columns before it from the mask and from every cache tensor "
         "(c[..., start:, :]); then admit the waiting requests that are not cancelled, oldest "
         "first, max_batch_size - len(kept rows) of them; the rest keep waiting.",
    mistakes=[
        (_admit_all, "You admit more requests than the batch holds: admit at most "
                     "max_batch_size minus the rows that stay; the others keep waiting."),
        (_newest_first, "Admit the waiting requests in arrival order (oldest first, FIFO): "
                        "the newest first lets an early request starve."),
        (_admits_cancelled, "A cancelled waiting request must not be admitted (its client is "
                            "gone): drop it from the waiting line instead."),
        (_keeps_finished, "A finished row must leave at once: keeping it for another step "
                          "wastes its slot and a decoding step on it."),
        (_keeps_cancelled, "A cancelled row (its client went) must leave at this step too, "
                           "not only finished ones."),
        (_room_before_dropping, "Count the free slots after dropping the finished and "
                                "cancelled rows: their slots are free for this step's "
                                "admissions."),
        (_cache_rows_not_moved, "The cache rows must move with the mask rows: select the "
                                "same rows of every cache tensor (axis 0), or a row would "
                                "read another request's keys."),
        (_no_trim, "Cut the columns that are padding in every row that stays: a long request "
                   "that left would otherwise make every later step attend over its length."),
        (_trim_too_far, "Cut only the columns that are padding in EVERY row: a column where "
                        "any row has a real token holds that token's keys and values."),
        (_mask_trimmed_cache_not, "The mask and the cache must keep the same columns: cut "
                                  "the same leading columns from every cache tensor (the "
                                  "sequence axis, -2)."),
    ],
))
