"""course_utils.data.instructions: every reference reply passes its own check, plausible wrong
replies (a base model running on, a missing slot, the wrong branch, steps out of order) fail
it, and the eval split is held out (phrasings, names, contents)."""

from __future__ import annotations

import re

import pytest

from course_utils.data import instructions as I  # noqa: E741
from course_utils.data import world as w

TRAIN = I.instruction_data(0, "train", 1300)
EVAL = I.instruction_data(0, "eval", 260)


def first(items, kind):
    return next(it for it in items if it.kind == kind)


def test_exported_from_course_utils_data():
    from course_utils import data

    assert data.instruction_data is I.instruction_data and data.Instruction is I.Instruction


def test_every_reference_reply_passes_its_check():
    for it in TRAIN + EVAL + I.instruction_data(3, "eval", 130):
        assert it.check(it.reply), (it.kind, it.messages, it.reply)
        assert it.technique == it.kind.split("/")[0] and it.technique in I.TECHNIQUES


def test_splits_are_balanced_seeded_and_the_chat_ends_with_the_reply():
    for split in (TRAIN, EVAL):
        counts = {t: sum(it.technique == t for it in split) for t in I.TECHNIQUES}
        assert max(counts.values()) - min(counts.values()) <= 1
        assert {it.kind for it in split} == {f"{t}/{k}" for t, ks in I.KINDS.items() for k in ks}
    assert I.instruction_data(0, "eval", 260) == EVAL
    assert I.instruction_data(1, "eval", 260) != EVAL
    chat = EVAL[0].chat()
    assert chat[-1] == {"role": "assistant", "content": EVAL[0].reply}
    assert [m["role"] for m in chat[:-1]] in (["user"], ["system", "user"])


def test_eval_is_held_out():
    train_prompts = {tuple(m["content"] for m in it.messages)
                     for it in I.instruction_data(0, "train")}
    for seed in (0, 1, 7):
        for it in I.instruction_data(seed, "eval", 130):
            assert tuple(m["content"] for m in it.messages) not in train_prompts
            text = " ".join(m["content"] for m in it.messages) + " " + it.reply
            names = set(re.findall(r"\b[A-Z][a-z]+\b", text)) & set(w.NAMES)
            if it.kind != "task/summary":  # the world's summaries use every name
                assert names <= set(w.HELD_OUT_NAMES), (it.kind, names)
    for pool in (I.BRIEF, I.TEACHER, I.STORYTELLER, I.PROBLEM_HEADS, I.SENTIMENT_ASKS,
                 I.TRANSLATE_ASKS, I.SUMMARY_ASKS, I.CARD_ASKS, I.MESSAGE_ASKS, I.LEVEL_RULES,
                 I.GOOD_REPLIES, I.BAD_REPLIES, I.PROBLEM_STEPS, I.MORALS, I.CONNECTIVES):
        assert not set(pool[0]) & set(pool[1])
    # the new contents (summaries and reviews are the world's own draws, with every word)
    train_text = " ".join(m["content"] for it in TRAIN for m in it.messages
                          if it.kind not in ("task/summary", "task/sentiment",
                                             "conditional/review"))
    for word in (*I.EVAL_ANIMALS, *I.EVAL_PLACES, *I.EVAL_TOPICS):
        assert not re.search(rf"\b(a|an|the) {word.removeprefix('the ')}\b", train_text), word


RUN_ON = "\nReview: It was fine.\nSentiment: good\n\nReview: I loved it."


@pytest.mark.parametrize("item", EVAL[:60], ids=lambda it: it.kind)
def test_a_base_model_running_on_fails(item):
    assert not item.check(item.reply + RUN_ON)
    assert not item.check("")


def wrong_replies(it) -> list[str]:
    """Plausible wrong replies to ``it``, each a different way of not following it."""
    s, r = it.spec, it.reply
    question = it.messages[-1]["content"]
    kind = it.kind
    if kind == "role/brief":
        return ["2 + 3 = 5. The answer is 5.", f"{r} Mia was glad.", "In the end, Mia had 5 "
                "apples.", "The answer is five."]
    if kind in ("role/teacher", "conditional/level") and s.get("level", "beginner") == \
            "beginner":
        return ["The answer is 5.", "2 + 3 = 6. The answer is 6.", "2 + 3 = 5. The answer is 6.",
                "5"]
    if kind == "conditional/level":  # an expert: only the answer
        return ["2 + 3 = 5. The answer is 5.", "I am an expert. The answer is 5.", "Expert here."]
    if kind == "role/storyteller":
        return ["2 + 3 = 5. The answer is 5.", r.replace("In the end, ", ""),
                r + " Then they went home.", r.replace(s["name"], "somebody")]
    if kind == "task/sentiment":
        other = next(x for x in ("negative", "neutral", "positive") if x != s["label"])
        return [other, f"{s['label']} and {other}", f"Sentiment: {s['label']}\n\nReview: ok"]
    if kind == "task/translation":
        english = question.split(": ", 1)[-1].split("? ", 1)[-1]
        return [english, " ".join(r.split()[::-1]), r.replace("lo ", "")]
    if kind == "task/summary":
        doc = s["document"]
        return [doc, "Somebody did something somewhere.", "Roger found a lost bear at the park."
                if "Roger" not in doc else "Mia found a lost bear at the park.",
                r + "\nTL;DR: " + r]
    if kind == "task/word_problem":
        n = int(re.search(r"(\d+)\.$", r).group(1))
        return [r.replace(f"The answer is {n}.", f"The answer is {n + 1}."), f"{r} Then more.",
                "I do not know."]
    if kind == "template/card":
        lines = r.split("\n")
        return ["\n".join(lines[:2]), "\n".join([lines[1], lines[0], lines[2]]),
                r.replace(s["animal"], "dog" if s["animal"] != "dog" else "cat"),
                r.rsplit("Moral: ", 1)[0] + "Moral:", r + "\nAuthor: Roger"]
    if kind == "template/message":
        lines = r.split("\n")
        other = "Roger" if s["sender"] != "Roger" else "Mia"
        return ["\n".join(lines[:2]), "\n".join(lines[::-1]),
                r.replace(f", {s['sender']}.", f", {other}."),
                r.replace(f"Dear {s['recipient']}", "Dear friend"),
                r.replace("Body: ", "Body: ").replace(", I", f", {other} and I")]
    if kind == "conditional/review":
        rule = question.split("\n")[0]
        quoted = re.findall(r'"([^"]+)"', rule)
        wrong = next(q for q in quoted if q != s["expected"])
        return [wrong, f"{s['expected']} {wrong}", "positive"]
    if kind == "iterative/entities":
        lines = r.split("\n")
        swapped = [lines[1].replace("2.", "1."), lines[0].replace("1.", "2."), lines[2]]
        return ["\n".join(lines[:2]), "\n".join(swapped),
                "\n".join(ln[3:] for ln in lines), r.replace("3. ", "3. the ")]
    if kind == "iterative/problem":
        lines = r.split("\n")
        return ["\n".join(lines[1:]), "\n".join([lines[0], lines[2], lines[1]]),
                r.replace("1. ", "1. 99, "), lines[1][3:] + " " + lines[2][3:]]
    raise AssertionError(f"no wrong replies for {kind}")


@pytest.mark.parametrize("item", EVAL[:130], ids=lambda it: it.kind)
def test_plausible_wrong_replies_fail(item):
    for bad in wrong_replies(item):
        if bad.strip() != item.reply:
            assert not item.check(bad), (item.kind, item.reply, bad)


def test_the_two_branches_and_the_roles_are_told_apart():
    """The same problem, scored by the other role's or branch's check, fails: the checks
    really tell the replies apart."""
    brief, teacher = first(EVAL, "role/brief"), first(EVAL, "role/teacher")
    story = first(EVAL, "role/storyteller")
    assert not brief.check(teacher.reply) and not teacher.check(brief.reply)
    assert not story.check(teacher.reply) and not brief.check(story.reply)
    levels = [it for it in EVAL if it.kind == "conditional/level"]
    beginner = next(it for it in levels if it.spec["level"] == "beginner")
    expert = next(it for it in levels if it.spec["level"] == "expert")
    assert not beginner.check(expert.reply) and not expert.check(beginner.reply)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="split"):
        I.instruction_data(0, "test")
    with pytest.raises(ValueError, match="seed"):
        I.instruction_data("0")
    assert I.instruction_data(-3, "eval", 5) != I.instruction_data(3, "eval", 5)
    with pytest.raises(ValueError, match="techniques"):
        I.instruction_data(0, "eval", 5, techniques=("magic",))
    with pytest.raises(TypeError, match="reply must be a str"):
        EVAL[0].check(None)
    only = I.instruction_data(0, "eval", 6, techniques=("template",))
    assert {it.technique for it in only} == {"template"}
