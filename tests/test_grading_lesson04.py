"""Known-wrong answers to lesson 04's exercises: the grader must reject each, saying why.

These implementations are written here, independently of the grader's own list of mistakes,
so a grader that stops recognising one of them fails this test.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from course_utils.grading import get_exercise, run_exercise
from course_utils.prompting import extract_answer, few_shot_prompt, majority_vote

INSTR = "Is each review positive, negative or neutral?"


def _verdict(ex_id, fn):
    return run_exercise(get_exercise(ex_id), fn)


# ---- 04.1 few-shot prompt
def fs_learner(text, examples, k, instruction=INSTR):
    """A correct solution written the way a learner would."""
    parts = [instruction + "\n\n"] if instruction is not None else []
    for review, label in examples[:k]:
        parts.append("Review: " + review + "\nSentiment: " + label + "\n\n")
    parts.append("Review: " + text + "\nSentiment:")
    return "".join(parts)


def fs_space_at_end(text, examples, k, instruction=INSTR):
    return fs_learner(text, examples, k, instruction) + " "


def fs_no_blank_lines(text, examples, k, instruction=INSTR):
    head = instruction + "\n\n" if instruction is not None else ""
    demos = "".join(f"Review: {r}\nSentiment: {lab}\n" for r, lab in examples[:k])
    return f"{head}{demos}Review: {text}\nSentiment:"


def fs_every_example(text, examples, k, instruction=INSTR):
    return fs_learner(text, examples, len(examples), instruction)


def fs_tail(text, examples, k, instruction=INSTR):
    return fs_learner(text, list(examples[len(examples) - k:]) if k else examples,
                      len(examples[len(examples) - k:]) if k else len(examples), instruction)


def fs_prints_none(text, examples, k, instruction=INSTR):
    return f"{instruction}\n\n" + fs_learner(text, examples, k, None)


def fs_no_sentiment_slot(text, examples, k, instruction=INSTR):
    return fs_learner(text, examples, k, instruction)[: -len("Sentiment:")]


def fs_returns_list(text, examples, k, instruction=INSTR):
    return fs_learner(text, examples, k, instruction).split("\n\n")


# ---- 04.2 extract the answer
def ea_learner(completion):
    first = re.split(r"\n\n|\nQ:", completion)[0]
    m = re.search(r"answer is\s*:?\s*(-?[\d,]*\d)", first, flags=re.I)
    return int(m.group(1).replace(",", "")) if m else None


def ea_final_number(completion):
    found = re.findall(r"-?\d+", completion)
    return int(found[-1]) if found else None


def ea_first_number(completion):
    found = re.findall(r"\d+", completion)
    return int(found[0]) if found else None


def ea_exact_case(completion):
    m = re.search(r"The answer is:? *(-?[\d,]*\d)", re.split(r"\n\n|\nQ:", completion)[0])
    return int(m.group(1).replace(",", "")) if m else None


def ea_no_sign(completion):
    m = re.search(r"answer is\s*:?\s*([\d,]*\d)", re.split(r"\n\n|\nQ:", completion)[0], re.I)
    return int(m.group(1).replace(",", "")) if m else None


def ea_comma_stops_number(completion):
    m = re.search(r"answer is\s*:?\s*(-?\d+)", re.split(r"\n\n|\nQ:", completion)[0], re.I)
    return int(m.group(1)) if m else None


def ea_reads_everything(completion):
    m = re.search(r"answer is\s*:?\s*(-?[\d,]*\d)", completion, re.I)
    return int(m.group(1).replace(",", "")) if m else None


def ea_zero(completion):
    got = ea_learner(completion)
    return 0 if got is None else got


def ea_text(completion):
    m = re.search(r"answer is\s*:?\s*(-?[\d,]*\d)", re.split(r"\n\n|\nQ:", completion)[0], re.I)
    return m.group(1) if m else None


def ea_last_match(completion):
    found = re.findall(r"answer is\s*:?\s*(-?[\d,]*\d)", re.split(r"\n\n|\nQ:", completion)[0],
                       re.I)
    return int(found[-1].replace(",", "")) if found else None


# ---- 04.3 majority vote
def mv_learner(answers):
    counts = {}
    for a in answers:
        if a is not None:
            counts[a] = counts.get(a, 0) + 1
    best = None
    for a, n in counts.items():
        if best is None or n > counts[best]:
            best = a
    return best


def mv_none_votes(answers):
    return Counter(answers).most_common(1)[0][0] if answers else None


def mv_how_many(answers):
    counts = Counter(a for a in answers if a is not None)
    return max(counts.values()) if counts else None


def mv_tuple(answers):
    counts = Counter(a for a in answers if a is not None)
    return counts.most_common(1)[0] if counts else None


def mv_no_vote(answers):
    return next((a for a in answers if a is not None), None)


def mv_min_on_tie(answers):
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    top = max(counts.values())
    return min(a for a, n in counts.items() if n == top)


def mv_later_on_tie(answers):
    counts = Counter(a for a in answers if a is not None)
    best = None
    for a in counts:
        if best is None or counts[a] >= counts[best]:
            best = a
    return best


def mv_crashes_on_empty(answers):
    return Counter(a for a in answers if a is not None).most_common(1)[0][0]


@pytest.mark.parametrize("ex_id, fn", [("04.1", few_shot_prompt), ("04.1", fs_learner),
                                       ("04.2", extract_answer), ("04.2", ea_learner),
                                       ("04.3", majority_vote), ("04.3", mv_learner)])
def test_the_reference_and_a_learners_solution_pass(ex_id, fn):
    verdict = _verdict(ex_id, fn)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize("ex_id, fn, says", [
    ("04.1", fs_space_at_end, "space after 'Sentiment:'"),
    ("04.1", fs_no_blank_lines, "blank line ('\\n\\n' after each label)"),
    ("04.1", fs_every_example, "only the first k examples"),
    ("04.1", fs_tail, "FIRST k examples"),
    ("04.1", fs_prints_none, "instruction is None, leave it out"),
    ("04.1", fs_no_sentiment_slot, "End with the query's"),
    ("04.1", fs_returns_list, "should be a str"),
    ("04.2", ea_final_number, "the last number in the text"),
    ("04.2", ea_first_number, "the first number in the text"),
    ("04.2", ea_exact_case, "re.IGNORECASE"),
    ("04.2", ea_no_sign, "Keep the minus sign"),
    ("04.2", ea_comma_stops_number, "thousands commas"),
    ("04.2", ea_reads_everything, "cut it at the first blank line"),
    ("04.2", ea_zero, "not 0"),
    ("04.2", ea_text, "as an int"),
    ("04.2", ea_last_match, "the first one is the answer"),
    ("04.3", mv_none_votes, "leave it out of the count"),
    ("04.3", mv_how_many, "how many votes"),
    ("04.3", mv_tuple, "return only the answer"),
    ("04.3", mv_no_vote, "You returned the first answer"),
    ("04.3", mv_min_on_tie, "not the smallest"),
    ("04.3", mv_later_on_tie, "strictly larger count"),
    ("04.3", mv_crashes_on_empty, "IndexError"),
])
def test_known_wrong_answers_are_rejected_with_their_reason(ex_id, fn, says):
    verdict = _verdict(ex_id, fn)
    assert not verdict.passed
    assert says in verdict.message, verdict.message


def test_an_unsolved_exercise_is_not_attempted():
    def stub(*args, **kwargs):
        raise NotImplementedError("Your turn")

    for ex_id in ("04.1", "04.2", "04.3"):
        assert _verdict(ex_id, stub).status == "not attempted"


def test_a_prompt_difference_is_pointed_at():
    verdict = _verdict("04.1", fs_no_blank_lines)
    assert "differ from character" in verdict.message
