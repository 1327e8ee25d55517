"""Exercise 04.1: a few-shot prompt whose demonstrations are drawn from a pool.

The learner's ``few_shot_from_pool(test, pool, k, label_words, seed)`` may draw in any way
that is right (the random calls are theirs), so the grader does not compare prompts with the
reference's; it checks what a right draw must be. Each case runs the function once per seed
in ``DrawCase.seeds`` and once more with the first seed (:class:`PoolExercise.attempt`), and
the result, a :class:`Draws`, is judged by its *problems*: the demonstrations come from the
pool with their own labels, without replacement, ``k`` of them, balanced across the labels,
never the test's text; the same seed gives the same prompt, different seeds differ, the
global random generators are left alone, and (on the cases with several demonstrations per
label) the labels are not always in blocks or in a fixed cycle; when the pool cannot supply a
balanced set the function raises ``ValueError`` naming the label that is short. Two results
"agree" (for the every-case rule of the hints) when they have the same problems.
"""

from __future__ import annotations

import copy
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from course_utils.data.prompts import SENTIMENT_INSTRUCTION
from course_utils.grading.core import Case, Exercise, register
from course_utils.prompting import builders

LABELS = ["negative", "neutral", "positive"]
TEXTS = {
    0: ["The soup was cold.", "Too loud and too expensive.", "The game broke after one day.",
        "She said \"never again\" and I agree.", "It's the worst café in town.",
        "The bus was late and dirty.", "I hated the ending."],
    1: ["It arrived on Tuesday.", "The shop was open.", "We went there on Monday.",
        "The film was fine, nothing special.", "It's a lamp. It gives light.",
        "The room had two chairs.", "Zoë’s tea was warm."],
    2: ["Lovely hotel, so kind!", "This book made me smile.", "The lamp works perfectly.",
        "Best day of the year!", "I loved the music ✨", "Great value, 10/10.",
        "The cake was delicious."],
}


@dataclass
class DrawCase(Case):
    """A case run once per seed; ``expect_error``: the pool cannot supply a balanced set;
    ``check_order``: enough demonstrations per label that their order can be judged."""

    seeds: tuple = (0, 1, 2, 3, 4, 5)
    expect_error: bool = False
    check_order: bool = False


@dataclass(frozen=True)
class Raised:
    kind: str
    message: str


@dataclass
class Draws:
    """The prompts (or raised errors) per seed, the first seed's again, and which global
    random generators the calls changed."""

    prompts: list = field(default_factory=list)
    repeat: Any = None
    touched: list = field(default_factory=list)

    def __repr__(self) -> str:
        first = self.prompts[0] if self.prompts else None
        return f"<{len(self.prompts)} draws, the first: {first!r:.200}>"


def _rows(label_counts: dict[int, int], start: int = 0) -> list[dict]:
    return [{"id": start + 10 * lab + j, "text": TEXTS[lab][j], "label": lab}
            for lab, n in label_counts.items() for j in range(n)]


_GENERATORS = ("random", "numpy.random", "torch")


def _global_states() -> tuple:
    return random.getstate(), np.random.get_state(), torch.random.get_rng_state()


def _same_state(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, tuple) and a and isinstance(a[1], np.ndarray):
        return a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:]
    return a == b


def _restore(name: str, state: Any) -> None:
    """Put a global generator back, so grading leaves the lesson's own randomness as it was."""
    if name == "random":
        random.setstate(state)
    elif name == "numpy.random":
        np.random.set_state(state)
    else:
        torch.random.set_rng_state(state)


class PoolExercise(Exercise):
    """Runs a candidate on every seed of a :class:`DrawCase` and returns its :class:`Draws`."""

    def expected_of(self, case: Case) -> tuple[Any, Any]:
        return self.attempt(self.reference, case, None), None

    def attempt(self, candidate: Callable, case: Case, context: Any) -> Any:
        seeds = getattr(case, "seeds", (case.kwargs.get("seed", 0),))
        kwargs = {k: v for k, v in case.kwargs.items() if k != "seed"}
        before = _global_states()
        out = Draws()
        for n, seed in enumerate([*seeds, seeds[0]]):
            args = case.args if n == 0 else copy.deepcopy(case.args)  # the first call's inputs
            try:                                                    # are checked for changes
                got = candidate(*args, **copy.deepcopy(kwargs), seed=seed)
            except NotImplementedError:
                raise
            except Exception as exc:
                if not getattr(case, "expect_error", False):
                    raise
                got = Raised(type(exc).__name__, str(exc))
            if n < len(seeds):
                out.prompts.append(got)
            else:
                out.repeat = got
        for name, b, a in zip(_GENERATORS, before, _global_states(), strict=True):
            if not _same_state(a, b):
                out.touched.append(name)
                _restore(name, b)
        return out


def _parse(prompt: str, test_text: str, instruction: str | None) -> list | None:
    head = f"{instruction}\n\n" if instruction is not None else ""
    tail = f"Review: {test_text}\nSentiment:"
    if not prompt.startswith(head) or not prompt.endswith(tail) or len(prompt) < len(head + tail):
        return None
    middle = prompt[len(head):len(prompt) - len(tail)]
    if middle and not middle.endswith("\n\n"):
        return None
    demos = []
    for block in middle.split("\n\n")[:-1] if middle else []:
        m = re.fullmatch(r"Review: ([^\n]*)\nSentiment: ([^\n]*)", block)
        if m is None:
            return None
        demos.append((m.group(1), m.group(2)))
    return demos


def _blocks(seq: list) -> bool:
    changes = sum(a != b for a, b in zip(seq, seq[1:], strict=False))
    return changes == len(set(seq)) - 1


def _cycle(seq: list) -> bool:
    n = len(set(seq))
    return n > 1 and all(seq[i] == seq[i % n] for i in range(len(seq)))


def problems(d: Any, case: Case) -> list[tuple[str, str]]:
    """The ``(code, sentence)`` problems of a :class:`Draws` on ``case``; none for a right one."""
    if not isinstance(d, Draws):
        return [("type", f"the grader expected its record of your draws, got {d!r:.80}")]
    test, pool, k, words = case.args[:4]
    instruction = case.kwargs.get("instruction", SENTIMENT_INSTRUCTION)
    found: list[tuple[str, str]] = []

    def add(code: str, sentence: str) -> None:
        if code not in {c for c, _ in found}:
            found.append((code, sentence))

    if getattr(case, "expect_error", False):
        short = [w for lab, w in enumerate(words)
                 if sum(r["label"] == lab and r["text"] != test["text"] for r in pool)
                 < k // len(words)]
        for seed, got in zip(case.seeds, d.prompts, strict=True):
            if not isinstance(got, Raised):
                add("no-error", f"with seed={seed} your function returned a prompt, but this pool "
                                f"cannot give a balanced set of k={k} without the test review "
                                f"(too few {short[0]!r} rows): it should raise ValueError.")
            elif got.kind != "ValueError":
                add("wrong-error", f"with seed={seed} your function raised {got.kind} "
                                   f"({got.message[:80]!r}); raise ValueError saying which label "
                                   f"is short.")
            elif not any(w in got.message for w in short):
                add("vague-error", f"your ValueError says {got.message[:100]!r}: name the label "
                                   f"that is short ({short[0]!r}) so the caller knows what to "
                                   f"add.")
    else:
        have = Counter((r["text"], words[r["label"]]) for r in pool if r["text"] != test["text"])
        sequences = []
        for seed, got in zip(case.seeds, d.prompts, strict=True):
            if not isinstance(got, str):
                add("type", f"the result should be a str (the prompt), but it is "
                            f"{type(got).__name__}.")
                continue
            demos = _parse(got, test["text"], instruction)
            if demos is None:
                add("layout", f"with seed={seed} the result is not a few-shot prompt for the test "
                              f"review: build it with few_shot_prompt(test['text'], demos, k, "
                              f"instruction). It starts {got[:80]!r}.")
                continue
            if len(demos) != k:
                add("count", f"with seed={seed} the prompt has {len(demos)} demonstrations; "
                             f"k={k} were asked for.")
            if any(t == test["text"] for t, _ in demos):
                add("leak", f"with seed={seed} the test review {test['text']!r} is among its own "
                            f"demonstrations, with its answer.")
            used = Counter(demos)
            if any(pair not in have and pair[0] != test["text"] for pair in used):
                pair = next(p for p in used if p not in have and p[0] != test["text"])
                add("invented", f"with seed={seed} the demonstration {pair} is not a pool row "
                                f"with its own label word (label_words[row['label']]).")
            elif any(n > have[pair] for pair, n in used.items() if pair in have):
                add("replacement", f"with seed={seed} a pool row appears twice among the "
                                   f"demonstrations: draw without replacement.")
            counts = [sum(w == word for _, w in demos) for word in words]
            if max(counts) - min(counts) > 1:
                spread = dict(zip(words, counts, strict=True))
                add("unbalanced", f"with seed={seed} the labels are {spread}: "
                                  f"a balanced draw gives every label {k // len(words)} or "
                                  f"{k // len(words) + 1}.")
            sequences.append([w for _, w in demos])
        if d.repeat != d.prompts[0]:
            add("not-seeded", f"two calls with the same seed={case.seeds[0]} gave different "
                              f"prompts: every random choice must come from the seed.")
        elif k > 0 and len(case.seeds) > 1 and all(p == d.prompts[0] for p in d.prompts):
            add("seed-ignored", f"every seed {case.seeds} gave the same prompt: the seed must "
                                f"change the draw.")
        seeded = not {"not-seeded", "seed-ignored"} & {c for c, _ in found}
        if getattr(case, "check_order", False) and len(sequences) == len(case.seeds) and seeded:
            if all(_blocks(s) for s in sequences):
                add("blocks", "with every seed the demonstrations come in blocks of one label: "
                              "they are not shuffled.")
            elif all(_cycle(s) for s in sequences):
                add("cycle", "with every seed the labels come in turn (a, b, c, a, b, c, ...): "
                             "that is a fixed pattern, not a shuffle.")
    if d.touched:
        add("global", f"your function changed the global random state ({', '.join(d.touched)}): "
                      f"the rest of the program's randomness then depends on it.")
    return found


def _compare_draws(got: Any, expected: Any, case: Case) -> str | None:
    mine, theirs = problems(got, case), problems(expected, case)
    if [c for c, _ in mine] == [c for c, _ in theirs]:
        return None
    others = {c for c, _ in theirs}
    extra = [s for c, s in mine if c not in others]
    return extra[0] if extra else "your draws do not have the problems expected here."


def _cases(rng: torch.Generator):
    def pool_of(counts, start=0, interleave=False):
        rows = _rows(counts, start)
        if interleave:
            rows = [rows[int(i)] for i in torch.randperm(len(rows), generator=rng)]
        return rows

    outside = {"id": 99, "text": "The tea was too sweet.", "label": 0}
    yield DrawCase((outside, pool_of({0: 5, 1: 5, 2: 5}), 6, LABELS), check_order=True,
                   label="k=6 from 15 rows grouped by label; the test is not in the pool",
                   catches="a plain sample (unbalanced); demonstrations in blocks or taken in "
                           "turn; the global random module; the seed ignored")
    pool = pool_of({0: 5, 1: 5, 2: 5})
    yield DrawCase((pool[6], pool, 6, LABELS), check_order=True,
                   label="the test review is itself a row of the pool",
                   catches="the test item drawn as its own demonstration (its answer leaked)")
    pool = pool_of({0: 4, 1: 4, 2: 4}, interleave=True)
    twin = {"id": 77, "text": pool[2]["text"], "label": pool[2]["label"]}
    yield DrawCase((twin, pool, 6, LABELS), check_order=True,
                   label="a copy of the test's text in the pool, under another id",
                   catches="the test left out by identity or id (`r is not test`, `r != test`) "
                           "but not by its text")
    yield DrawCase((outside, pool_of({0: 4, 1: 4, 2: 4}), 4, LABELS),
                   label="k=4 over 3 labels: one label gets 2",
                   catches="k // L per label only (3 demonstrations instead of 4); k per label")
    yield DrawCase((outside, pool_of({0: 3, 1: 3, 2: 3}), 0, LABELS), label="k=0: zero-shot",
                   catches="`k or ...` turning 0 into a default; code that needs a demonstration")
    yield DrawCase((outside, pool_of({0: 3, 1: 3, 2: 3}), 1, LABELS), label="k=1",
                   catches="a label count off by one when k < the number of labels")
    yield DrawCase((outside, pool_of({0: 2, 1: 2, 2: 2}), 6, LABELS), check_order=True,
                   label="exactly enough rows: 2 of each label for k=6",
                   catches="raising when a label has exactly as many rows as it needs (<=)")
    pool = pool_of({0: 2, 1: 2, 2: 2})
    yield DrawCase((pool[3], pool, 6, LABELS), expect_error=True,
                   label="exactly enough rows, but one of them is the test review",
                   catches="the test item used to make up the numbers; no error when a label is "
                           "short once the test is left out")
    yield DrawCase((outside, pool_of({0: 4, 1: 4, 2: 1}), 6, LABELS), expect_error=True,
                   label="only one 'positive' row for k=6",
                   catches="a smaller or unbalanced set returned silently; an IndexError or "
                           "KeyError instead of a ValueError naming the label")
    yield DrawCase((outside, pool_of({0: 4, 1: 0, 2: 4}), 3, LABELS), expect_error=True,
                   label="no 'neutral' row at all",
                   catches="a label missing from the pool skipped silently (a dict built from "
                           "the pool's labels, not from label_words)")
    yes_no = [{"id": 200 + i, "text": TEXTS[2 * (i % 2)][i // 2], "label": i % 2}
              for i in range(10)]
    yield DrawCase(({"id": 300, "text": "Was it good? Yes.", "label": 1}, yes_no, 4,
                    ["no", "yes"]), {"instruction": "Did they like it, yes or no?"},
                   label="two labels, other words and instruction",
                   catches="hard-coded label words or instruction; the label index written "
                           "instead of its word")
    yield DrawCase((outside, pool_of({0: 7, 1: 7, 2: 7}, interleave=True), 9, LABELS),
                   {"instruction": None}, check_order=True,
                   label="k=9 from 21 shuffled rows, no instruction",
                   catches="any counting error on a larger draw; the instruction printed as "
                           "'None'")


def _learner_like(test, pool, k, label_words, seed, instruction=SENTIMENT_INSTRUCTION,
                  *, leave_out=lambda r, test: r["text"] == test["text"], rng_of=None,
                  per_label=None, replace=False, shuffle=True, lenient=False):
    """The reference's shape with one choice changed: the mistakes below are built from it."""
    rng = rng_of(seed) if rng_of else random.Random(seed)
    rows = [r for r in pool if not leave_out(r, test)]
    n = len(label_words)
    extra = set(rng.sample(range(n), k % n))
    picks = []
    for lab, word in enumerate(label_words):
        have = [r for r in rows if r["label"] == lab]
        need = per_label if per_label is not None else k // n + (lab in extra)
        need = min(need, len(have)) if lenient else need
        if len(have) < need:
            raise ValueError(f"a balanced set needs {need} {word!r} rows, the pool has "
                             f"{len(have)}")
        picks += [rng.choice(have) for _ in range(need)] if replace else rng.sample(have, need)
    if shuffle:
        rng.shuffle(picks)
    return builders.few_shot_prompt(test["text"], [(r["text"], label_words[r["label"]])
                                                   for r in picks], len(picks), instruction)


def _m_leak(*a, **kw):
    return _learner_like(*a, **kw, leave_out=lambda r, test: False)


def _m_same_row_only(*a, **kw):
    return _learner_like(*a, **kw, leave_out=lambda r, test: r == test)


def _m_plain_sample(test, pool, k, label_words, seed, instruction=SENTIMENT_INSTRUCTION):
    rows = [r for r in pool if r["text"] != test["text"]]
    if k > len(rows):
        raise ValueError(f"k={k} is more than the {len(rows)} rows")
    picks = random.Random(seed).sample(rows, k)
    return builders.few_shot_prompt(test["text"], [(r["text"], label_words[r["label"]])
                                                   for r in picks], k, instruction)


def _m_replacement(*a, **kw):
    return _learner_like(*a, **kw, replace=True)


class _GlobalRandom:
    """``random.Random``'s interface on the global generator, ignoring the seed."""

    def __init__(self, seed):
        pass

    def __getattr__(self, name):
        return getattr(random, name)


def _m_global_random(*a, **kw):
    return _learner_like(*a, **kw, rng_of=_GlobalRandom)


def _m_reseeds_global(*a, **kw):
    def reseed(seed):
        random.seed(seed)
        return random
    return _learner_like(*a, **kw, rng_of=reseed)


def _m_fixed_seed(*a, **kw):
    return _learner_like(*a, **kw, rng_of=lambda seed: random.Random(0))


def _m_blocks(*a, **kw):
    return _learner_like(*a, **kw, shuffle=False)


def _m_cycle(test, pool, k, label_words, seed, instruction=SENTIMENT_INSTRUCTION):
    rng = random.Random(seed)
    by = {lab: rng.sample([r for r in pool if r["label"] == lab and r["text"] != test["text"]],
                          len([r for r in pool if r["label"] == lab
                               and r["text"] != test["text"]]))
          for lab in range(len(label_words))}
    if any(len(by[lab]) < k // len(label_words) for lab in by):
        short = next(label_words[lab] for lab in by if len(by[lab]) < k // len(label_words))
        raise ValueError(f"not enough {short!r} rows")
    picks = []
    while len(picks) < k:
        for lab in range(len(label_words)):
            if len(picks) < k and by[lab]:
                picks.append(by[lab].pop())
    return builders.few_shot_prompt(test["text"], [(r["text"], label_words[r["label"]])
                                                   for r in picks], k, instruction)


def _m_only_k_over_l(*a, **kw):
    k, n = a[2], len(a[3])
    return _learner_like(*a, **kw, per_label=k // n)


def _m_no_error(*a, **kw):
    return _learner_like(*a, **kw, lenient=True)


def _m_leave_out_after(test, pool, k, label_words, seed, instruction=SENTIMENT_INSTRUCTION):
    rng = random.Random(seed)
    n = len(label_words)
    extra = set(rng.sample(range(n), k % n))
    picks = []
    for lab, word in enumerate(label_words):
        have = [r for r in pool if r["label"] == lab]
        need = k // n + (lab in extra)
        if len(have) < need:
            raise ValueError(f"not enough {word!r} rows")
        picks += rng.sample(have, need)
    rng.shuffle(picks)
    demos = [(r["text"], label_words[r["label"]]) for r in picks if r["text"] != test["text"]]
    return builders.few_shot_prompt(test["text"], demos, len(demos), instruction)


_LEAK = ("Leave the test review out of the pool before drawing: drop every row whose text is "
         "the test's text (`r['text'] != test['text']`).")

register(PoolExercise(
    id="04.1", title="draw a balanced few-shot prompt from a pool",
    reference=builders.few_shot_from_pool, cases=_cases, compare=_compare_draws,
    hint="rng = random.Random(seed); rows = the pool without the test's text; for each label, "
         "rng.sample its rows (k // L each, one more for k % L labels picked with rng; a "
         "ValueError naming the label if it has too few); rng.shuffle the picks; then "
         "few_shot_prompt(test['text'], pairs, k, instruction).",
    mistakes=[
        (_m_leak, _LEAK),
        (_m_same_row_only, _LEAK + " The same review can be in the pool twice under another "
                                   "id: compare texts, not rows."),
        (_m_leave_out_after, "Leave the test review out before drawing, not after: removing "
                             "it afterwards leaves fewer than k demonstrations."),
        (_m_plain_sample, "A plain sample of the pool is not balanced: draw per label, k // L "
                          "rows of each label, and one more for k % L labels chosen at random."),
        (_m_only_k_over_l, "k // L per label gives fewer than k when k is not a multiple of "
                           "the number of labels: give k % L randomly chosen labels one more."),
        (_m_replacement, "Draw without replacement (rng.sample, not rng.choice in a loop): a "
                         "review shown twice is wasted context."),
        (_m_global_random, "Make a generator of your own, rng = random.Random(seed), and use "
                           "it for every random choice: the random module's own functions "
                           "give a different prompt on every call."),
        (_m_reseeds_global, "random.seed(seed) resets the random state of the whole program "
                            "(the lesson's sampling too): use a private rng = "
                            "random.Random(seed)."),
        (_m_fixed_seed, "Use the seed you are given: random.Random(seed), not a fixed number."),
        (_m_blocks, "Shuffle the demonstrations after drawing them (rng.shuffle(picks)): drawn "
                    "label by label they come in blocks, and a small model leans on the label "
                    "it read last."),
        (_m_cycle, "Taking the labels in turn (a, b, c, a, b, c) is a fixed pattern, not a "
                   "shuffle: draw per label, then rng.shuffle the picks."),
        (_m_no_error, "When a label has fewer rows than a balanced set needs (after leaving "
                      "the test out), raise ValueError naming that label; a smaller or "
                      "unbalanced prompt would be measured as if it were the real one."),
    ],
))
