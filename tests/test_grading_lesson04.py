"""Known-wrong answers to lesson 04's exercises: the grader must reject each, saying why.

These implementations are written here, independently of the grader's own list of mistakes,
so a grader that stops recognising one of them fails this test.
"""

from __future__ import annotations

import copy
import re
import statistics
from collections import Counter

import pytest
import torch
from _grading_helpers import advice_on_every_case

from course_utils.grading import compare, get_exercise, run_exercise
from course_utils.prompting import extract_answer, few_shot_prompt, majority_vote

INSTR = "Is each review positive, negative or neutral?"


def _verdict(ex_id, fn):
    return run_exercise(get_exercise(ex_id), fn)




def _assert_rejected_saying(ex_id, fn, says):
    verdict = _verdict(ex_id, fn)
    assert not verdict.passed
    assert says in verdict.message, verdict.message
    ex = get_exercise(ex_id)
    if any(says in advice for advice in [ex.hint, *(a for _, a in ex.mistakes)]):
        # the phrase is advice: it must also be the advice when every case is compared
        assert says in advice_on_every_case(ex_id, fn)


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


def fs_loop(text, examples, k, instruction=INSTR):
    """Correct too: a loop over indices that adds to one string."""
    prompt = ""
    if instruction is not None:
        prompt += instruction + "\n\n"
    for i in range(k):
        review, label = examples[i]
        prompt += f"Review: {review}\nSentiment: {label}\n\n"
    return prompt + f"Review: {text}\nSentiment:"


def fs_join(text, examples, k, instruction=INSTR):
    """Correct too: blocks joined by blank lines, the instruction only when there is one."""
    blocks = [] if instruction is None else [instruction]
    blocks += [f"Review: {review}\nSentiment: {label}" for review, label in examples[:k]]
    blocks.append(f"Review: {text}\nSentiment:")
    return "\n\n".join(blocks)


def fs_zero_is_all(text, examples, k, instruction=INSTR):
    if not k:
        k = len(examples)
    out = f"{instruction}\n\n" if instruction is not None else ""
    for review, label in examples[:k]:
        out += f"Review: {review}\nSentiment: {label}\n\n"
    return out + f"Review: {text}\nSentiment:"


def fs_one_extra(text, examples, k, instruction=INSTR):
    out = f"{instruction}\n\n" if instruction is not None else ""
    for review, label in examples[:k + 1]:
        out += f"Review: {review}\nSentiment: {label}\n\n"
    return out + f"Review: {text}\nSentiment:"


def fs_label_first(text, examples, k, instruction=INSTR):
    out = f"{instruction}\n\n" if instruction is not None else ""
    for label, review in examples[:k]:
        out += f"Review: {review}\nSentiment: {label}\n\n"
    return out + f"Review: {text}\nSentiment:"


def fs_default_instruction(text, examples, k, instruction=INSTR):
    out = "Is each review positive, negative or neutral?\n\n" if instruction else ""
    for review, label in examples[:k]:
        out += f"Review: {review}\nSentiment: {label}\n\n"
    return out + f"Review: {text}\nSentiment:"


def fs_label_glued(text, examples, k, instruction=INSTR):
    out = f"{instruction}\n\n" if instruction is not None else ""
    for review, label in examples[:k]:
        out += "Review: " + review + "\nSentiment:" + label + "\n\n"
    return out + f"Review: {text}\nSentiment:"


def fs_join_empty_instruction(text, examples, k, instruction=INSTR):
    blocks = [f"Review: {review}\nSentiment: {label}" for review, label in examples[:k]]
    return "\n\n".join([instruction or ""] + blocks + [f"Review: {text}\nSentiment:"])


def fs_quoted_reviews(text, examples, k, instruction=INSTR):
    out = f"{instruction}\n\n" if instruction is not None else ""
    for review, label in examples[:k]:
        out += f'Review: "{review}"\nSentiment: {label}\n\n'
    return out + f'Review: "{text}"\nSentiment:'


def fs_instruction_after_examples(text, examples, k, instruction=INSTR):
    out = "".join(f"Review: {r}\nSentiment: {lab}\n\n" for r, lab in examples[:k])
    if instruction is not None:
        out += instruction + "\n\n"
    return out + f"Review: {text}\nSentiment:"


def fs_trims_the_list(text, examples, k, instruction=INSTR):
    del examples[k:]  # "keep only the k examples I need"
    out = f"{instruction}\n\n" if instruction is not None else ""
    for review, label in examples:
        out += f"Review: {review}\nSentiment: {label}\n\n"
    return out + f"Review: {text}\nSentiment:"


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


def ea_by_hand(completion):
    """Correct too: lower-case, str.find, then read the number by hand."""
    own = re.split(r"\n\s*\n|\nQ:", completion)[0].lower()
    at = own.find("the answer is")
    if at < 0:
        return None
    rest = own[at + len("the answer is"):].lstrip()
    rest = rest[1:].lstrip() if rest.startswith(":") else rest
    m = re.match(r"-?\d[\d,]*", rest)
    return int(m.group(0).rstrip(",").replace(",", "")) if m else None


def ea_first_line_only(completion):
    line = completion.split("\n")[0]
    m = re.search(r"the answer is:?\s*(-?[\d,]*\d)", line, re.IGNORECASE)
    return int(m.group(1).replace(",", "")) if m else None


def ea_cut_at_blank_line(completion):
    own = completion.split("\n\n")[0]
    m = re.search(r"the answer is:?\s*(-?[\d,]*\d)", own, re.IGNORECASE)
    return int(m.group(1).replace(",", "")) if m else None


def ea_falsy_zero(completion):
    own = re.split(r"\n\n|\nQ:", completion)[0]
    m = re.search(r"the answer is:?\s*(-?[\d,]*\d)", own, re.IGNORECASE)
    answer = int(m.group(1).replace(",", "")) if m else 0
    return answer if answer else None


def ea_one_comma(completion):
    own = re.split(r"\n\n|\nQ:", completion)[0]
    m = re.search(r"the answer is:?\s*(-?\d+(?:,\d{3})?)", own, re.IGNORECASE)
    return int(m.group(1).replace(",", "")) if m else None


def ea_needs_dot(completion):
    own = re.split(r"\n\n|\nQ:", completion)[0]
    m = re.search(r"the answer is:?\s*(-?[\d,]*\d)\.", own, re.IGNORECASE)
    return int(m.group(1).replace(",", "")) if m else None


def ea_re_match(completion):
    own = re.split(r"\n\n|\nQ:", completion)[0]
    m = re.match(r"the answer is:?\s*(-?[\d,]*\d)", own, re.IGNORECASE)
    return int(m.group(1).replace(",", "")) if m else None


def ea_groups_of_three(completion):
    own = re.split(r"\n\n|\nQ:", completion)[0]
    m = re.search(r"the answer is:?\s*(-?\d{1,3}(?:,\d{3})*)", own, re.IGNORECASE)
    return int(m.group(1).replace(",", "")) if m else None


def ea_float(completion):
    own = re.split(r"\n\n|\nQ:", completion)[0]
    m = re.search(r"the answer is:?\s*(-?[\d,]*\d)", own, re.IGNORECASE)
    return float(m.group(1).replace(",", "")) if m else None


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


def mv_mode(answers):
    """Correct too: statistics.mode returns the first of equally common values."""
    valid = [a for a in answers if a is not None]
    return statistics.mode(valid) if valid else None


def mv_max_by_count(answers):
    """Correct too: max keeps the first of equal keys, and the list is in order."""
    valid = [a for a in answers if a is not None]
    return max(valid, key=valid.count) if valid else None


def mv_truthy(answers):
    counts = Counter(a for a in answers if a)
    return counts.most_common(1)[0][0] if counts else None


def mv_set_max(answers):
    valid = [a for a in answers if a is not None]
    return max(set(valid), key=valid.count) if valid else None


def mv_as_strings(answers):
    counts = {}
    for a in answers:
        if a is not None:
            counts[str(a)] = counts.get(str(a), 0) + 1
    return max(counts, key=counts.get) if counts else None


def mv_running_leader(answers):
    counts, leader = {}, None
    for a in answers:
        if a is None:
            continue
        counts[a] = counts.get(a, 0) + 1
        if leader is None or counts[a] > counts[leader]:
            leader = a
    return leader


def mv_removes_none(answers):
    while None in answers:
        answers.remove(None)
    return Counter(answers).most_common(1)[0][0] if answers else None


def mv_sorted_by_count(answers):
    counts = Counter(a for a in answers if a is not None)
    return sorted(counts.items(), key=lambda kv: kv[1])[-1][0] if counts else None


def mv_last_of_most_common(answers):
    counts = Counter(a for a in answers if a is not None)
    return counts.most_common()[-1][0] if counts else None


def mv_ints_only(answers):
    counts = Counter(int(a) for a in answers if a is not None)
    return counts.most_common(1)[0][0] if counts else None


@pytest.mark.parametrize("ex_id, fn", [("04.1", few_shot_prompt), ("04.1", fs_learner),
                                       ("04.1", fs_loop), ("04.1", fs_join),
                                       ("04.2", ea_by_hand),
                                       ("04.3", mv_mode), ("04.3", mv_max_by_count),
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
    _assert_rejected_saying(ex_id, fn, says)


@pytest.mark.parametrize("ex_id, fn, says", [
    ("04.1", fs_zero_is_all, "k=0 means zero-shot"),
    ("04.1", fs_one_extra, "one demonstration too many"),
    ("04.1", fs_label_first, "(review, label) pair"),
    ("04.1", fs_default_instruction, "Use the `instruction` argument"),
    ("04.1", fs_label_glued, "Put a space between 'Sentiment:' and the label"),
    ("04.1", fs_join_empty_instruction, "blank line at the start"),
    ("04.1", fs_quoted_reviews, "differ from character"),
    ("04.1", fs_instruction_after_examples, "differ from character 0"),
    ("04.1", fs_trims_the_list, "changed its input `examples`"),
    ("04.2", ea_first_line_only, "You read only the first line"),
    ("04.2", ea_cut_at_blank_line, "Cut at a new '\\nQ:' too"),
    ("04.2", ea_falsy_zero, "0 is a real answer"),
    ("04.2", ea_one_comma, "several thousands commas"),
    ("04.2", ea_needs_dot, "don't require a '.' after it"),
    ("04.2", ea_re_match, "re.match only matches at the very start"),
    ("04.2", ea_groups_of_three, "must stay 1200"),
    ("04.2", ea_float, "should be an int"),
    ("04.3", mv_truthy, "0 and False are answers too"),
    ("04.3", mv_set_max, "appeared first"),
    ("04.3", mv_as_strings, "converting them with str()"),
    ("04.3", mv_running_leader, "picked the leader while still counting"),
    ("04.3", mv_removes_none, "changed its input `answers`"),
    ("04.3", mv_sorted_by_count, "keep the answer that appeared first"),
    ("04.3", mv_last_of_most_common, "take the first entry, not the last"),
    ("04.3", mv_ints_only, "raised ValueError"),
])
def test_learner_style_wrong_answers_are_rejected_with_their_reason(ex_id, fn, says):
    _assert_rejected_saying(ex_id, fn, says)


def test_every_case_says_what_it_catches():
    for ex_id in ("04.1", "04.2", "04.3"):
        ex = get_exercise(ex_id)
        for case in ex.cases(torch.Generator().manual_seed(ex.seed)):
            assert case.label and case.catches, (ex_id, case)


@pytest.mark.parametrize("ex_id", ["04.1", "04.2", "04.3"])
def test_every_mistake_runs_on_every_case_and_is_wrong_somewhere(ex_id):
    ex = get_exercise(ex_id)
    cases = list(ex.cases(torch.Generator().manual_seed(ex.seed)))
    for wrong, _ in ex.mistakes:
        wrong_somewhere = False
        for case in cases:
            got = wrong(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))  # must not raise
            want = ex.reference(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
            wrong_somewhere |= ex.compare(got, want, case) is not None if ex.compare else \
                compare(got, want) is not None
        assert wrong_somewhere, wrong.__name__


def test_an_unsolved_exercise_is_not_attempted():
    def stub(*args, **kwargs):
        raise NotImplementedError("Your turn")

    for ex_id in ("04.1", "04.2", "04.3"):
        assert _verdict(ex_id, stub).status == "not attempted"


def test_a_prompt_difference_is_pointed_at():
    verdict = _verdict("04.1", fs_no_blank_lines)
    assert "differ from character" in verdict.message
