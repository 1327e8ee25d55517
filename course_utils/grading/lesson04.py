"""Lesson 04 exercises: a few-shot prompt, reading the answer off a completion, majority vote."""

from __future__ import annotations

import re
from collections import Counter

import torch

from course_utils.data.prompts import SENTIMENT_INSTRUCTION
from course_utils.grading.core import Case, Exercise, compare, register
from course_utils.prompting import builders, harness

# --------------------------------------------------------------------- 04.1 few-shot prompt
REVIEWS = [("The soup was cold and the waiter was rude.", "negative"),
           ("I watched the film with my mum. It was fine, nothing special.", "neutral"),
           ("Lovely hotel. The staff were so kind!", "positive"),
           ("The game broke after one day.", "negative"),
           ("We went to the shop on Monday. It was open.", "neutral"),
           ("This book made me smile. I loved it!", "positive"),
           ("Too loud and too expensive. Never again.", "negative"),
           ("The lamp works perfectly.", "positive")]
QUERIES = ["The cake was dry.", "Best day of the year!", "It arrived on Tuesday."]


def _pick(rng: torch.Generator, n: int) -> list[tuple[str, str]]:
    return [REVIEWS[int(i)] for i in torch.randperm(len(REVIEWS), generator=rng)[:n]]


def _few_shot_cases(rng: torch.Generator):
    three = [REVIEWS[0], REVIEWS[1], REVIEWS[2]]
    yield Case((QUERIES[0], three, 2), label="the first 2 of 3 examples")
    yield Case((QUERIES[1], three, 0), label="k=0: zero-shot")
    yield Case((QUERIES[2], three, 3), label="all 3 examples")
    yield Case((QUERIES[0], three, 1), {"instruction": None}, label="no instruction")
    yield Case((QUERIES[1], [(t, {"negative": "bad", "neutral": "okay", "positive": "good"}[w])
                             for t, w in three], 3),
               {"instruction": "Is each review good, okay or bad?"},
               label="other label words and instruction")
    for _ in range(4):
        n = int(torch.randint(2, len(REVIEWS) + 1, (1,), generator=rng))
        k = int(torch.randint(1, n + 1, (1,), generator=rng))
        yield Case((QUERIES[int(torch.randint(0, 3, (1,), generator=rng))], _pick(rng, n), k),
                   label=f"random: {k} of {n} examples")


def _compare_prompts(got, expected, case: Case):
    if not isinstance(got, str):
        return f"the result should be a str (the prompt), but it is a {type(got).__name__}."
    if got == expected:
        return None
    i = next((j for j, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b),
             min(len(got), len(expected)))
    lo = max(0, i - 25)
    return (f"the prompts differ from character {i}: yours has {got[lo:i + 15]!r} where the "
            f"expected prompt has {expected[lo:i + 15]!r} (lengths {len(got)} vs "
            f"{len(expected)}).")


def _demos(examples, sep="\n\n"):
    return "".join(f"Review: {t}\nSentiment: {w}{sep}" for t, w in examples)


def _fs_single_newline(text, examples, k, instruction=SENTIMENT_INSTRUCTION):
    head = f"{instruction}\n\n" if instruction else ""
    return f"{head}{_demos(examples[:k], sep=chr(10))}Review: {text}\nSentiment:"


def _fs_trailing_space(text, examples, k, instruction=SENTIMENT_INSTRUCTION):
    return builders.few_shot_prompt(text, examples, k, instruction) + " "


def _fs_ignores_k(text, examples, k, instruction=SENTIMENT_INSTRUCTION):
    return builders.few_shot_prompt(text, examples, None, instruction)


def _fs_last_k(text, examples, k, instruction=SENTIMENT_INSTRUCTION):
    head = f"{instruction}\n\n" if instruction else ""
    return f"{head}{_demos(examples[-k:])}Review: {text}\nSentiment:"


def _fs_instruction_one_newline(text, examples, k, instruction=SENTIMENT_INSTRUCTION):
    head = f"{instruction}\n" if instruction else ""
    return f"{head}{_demos(examples[:k])}Review: {text}\nSentiment:"


def _fs_none_instruction(text, examples, k, instruction=SENTIMENT_INSTRUCTION):
    return f"{instruction}\n\n{_demos(examples[:k])}Review: {text}\nSentiment:"


def _fs_no_open_slot(text, examples, k, instruction=SENTIMENT_INSTRUCTION):
    head = f"{instruction}\n\n" if instruction else ""
    return f"{head}{_demos(examples[:k])}Review: {text}\n"


register(Exercise(
    id="04.1", title="build a few-shot prompt", reference=builders.few_shot_prompt,
    cases=_few_shot_cases, compare=_compare_prompts,
    hint="Start with the instruction and a blank line (only if instruction is not None), then "
         "for each of the first k examples 'Review: <text>\\nSentiment: <label>\\n\\n', and end "
         "with 'Review: <query>\\nSentiment:' (no space after the colon).",
    mistakes=[
        (_fs_trailing_space, "Your prompt ends with a space after 'Sentiment:'. The model wrote "
                             "' positive' as ONE token (space included) in training; a "
                             "trailing space makes it predict a word without its space."),
        (_fs_single_newline, "Separate the demonstrations with a blank line ('\\n\\n' after "
                             "each label), as in the pretraining data."),
        (_fs_ignores_k, "Use only the first k examples (examples[:k]), not all of them."),
        (_fs_last_k, "Take the FIRST k examples (examples[:k]); examples[-k:] takes the last "
                     "ones, and with k=0 it takes them all."),
        (_fs_instruction_one_newline, "Put a blank line after the instruction: "
                                      "f'{instruction}\\n\\n'."),
        (_fs_none_instruction, "When instruction is None, leave it out completely (no 'None' "
                               "and no blank line)."),
        (_fs_no_open_slot, "End with the query's 'Review: <text>\\nSentiment:' so the next "
                           "word the model writes is the label."),
    ],
))

# ------------------------------------------------------------------ 04.2 extract the answer


def _answer_cases(rng: torch.Generator):
    yield Case((" Mia has 3 + 4 = 7. The answer is 7.",), label="a clean chain of thought")
    yield Case((" 12 - 5 = 7. 7 + 6 = 13. The answer is 13.",), label="two steps")
    yield Case((" 6 + 3 = 9. the answer is 9.",), label="lower case")
    yield Case((" The answer is: 15.",), label="a colon after 'is'")
    yield Case((" 4 - 9 = -5. The answer is -5.",), label="a negative answer")
    yield Case((" 3 * 400 = 1200. The answer is 1,200.",), label="a thousands comma")
    yield Case((" 6 + 2 = 8.\n\nQ: Ben has 4 cups. Ben buys 5 more cups. How many cups?\n"
                "A: The answer is 9.",),
               label="no answer of its own, then an invented question with one")
    yield Case((" 2 + 3 = 5. The answer is 5.\n\nQ: Ann has 10 pens and 2 more. How many?\n"
                "A: The answer is 12.",), label="an answer, then an invented question")
    yield Case((" The answer is 8. The answer is 11.",), label="the phrase twice")
    yield Case((" I do not know how many apples there are.",), label="no answer at all")
    yield Case(("",), label="an empty completion")
    for _ in range(4):
        a, b = (int(x) for x in torch.randint(2, 60, (2,), generator=rng))
        other = int(torch.randint(60, 99, (1,), generator=rng))
        yield Case((f" {a} + {b} = {a + b}. The answer is {a + b}.\nQ: Tom has {other} cups."
                    f"\nA: The answer is {other}.",), label="random two-line completion")


def _ea_last_number(completion):
    nums = re.findall(r"-?\d+", completion.split("\n\n")[0])
    return int(nums[-1]) if nums else None


def _ea_first_number(completion):
    nums = re.findall(r"-?\d+", completion.split("\n\n")[0])
    return int(nums[0]) if nums else None


def _ea_case_sensitive(completion):
    m = re.search(r"The answer is:?\s*(-?\d{1,3}(?:,\d{3})+|-?\d+)",
                  re.split(r"\n\s*\n|\nQ:", completion)[0])
    return int(m.group(1).replace(",", "")) if m else None


def _ea_no_colon(completion):
    m = re.search(r"the answer is (-?\d{1,3}(?:,\d{3})+|-?\d+)",
                  re.split(r"\n\s*\n|\nQ:", completion)[0], re.IGNORECASE)
    return int(m.group(1).replace(",", "")) if m else None


def _ea_no_minus(completion):
    return None if (x := harness.extract_answer(completion)) is None else abs(x)


def _ea_minus_unmatched(completion):
    m = re.search(r"the answer is:?\s*(\d{1,3}(?:,\d{3})+|\d+)",
                  re.split(r"\n\s*\n|\nQ:", completion)[0], re.IGNORECASE)
    return int(m.group(1).replace(",", "")) if m else None


def _ea_no_commas(completion):
    m = re.search(r"the answer is:?\s*(-?\d+)", re.split(r"\n\s*\n|\nQ:", completion)[0],
                  re.IGNORECASE)
    return int(m.group(1)) if m else None


def _ea_whole_text(completion):
    return harness.extract_answer(completion.replace("\n", " "))


def _ea_zero_for_none(completion):
    return harness.extract_answer(completion) or 0


def _ea_string(completion):
    x = harness.extract_answer(completion)
    return None if x is None else str(x)


def _ea_last_phrase(completion):
    own = re.split(r"\n\s*\n|\nQ:", completion)[0]
    found = re.findall(r"the answer is:?\s*(-?\d{1,3}(?:,\d{3})+|-?\d+)", own, re.IGNORECASE)
    return int(found[-1].replace(",", "")) if found else None


def _compare_answers(got, expected, case: Case):
    if got == expected and type(got) is type(expected):
        return None
    if expected is None and got is not None:
        return f"the result is {got!r}, but None is expected (this completion gives no answer)."
    if isinstance(got, bool) or (expected is not None and not isinstance(got, int)):
        return f"the result should be an int, but it is {got!r} ({type(got).__name__})."
    return compare(got, expected)


_MINUS = "Keep the minus sign: the pattern for the number should start with '-?'."

register(Exercise(
    id="04.2", title="extract the answer robustly", reference=harness.extract_answer,
    cases=_answer_cases, compare=_compare_answers,
    hint="Cut the completion at the first blank line or '\\nQ:', then search (re.IGNORECASE) "
         "for 'the answer is', an optional ':', and a number that may start with '-' and may "
         "have thousands commas; return int(...) of it without the commas, or None.",
    mistakes=[
        (_ea_string, "Return the number as an int (int(match.group(1))), not the matched text."),
        (_ea_first_number, "You returned the first number in the text: that is a step of the "
                           "working, not the answer. Read the number after 'The answer is'."),
        (_ea_last_phrase, "When 'The answer is' appears twice, the first one is the answer; "
                          "use re.search, not the last match of re.findall."),
        (_ea_last_number, "You returned the last number in the text: read the number right "
                          "after 'The answer is', which is not always the last one."),
        (_ea_case_sensitive, "Small models write 'the answer is' in any capitalisation: "
                             "search with re.IGNORECASE."),
        (_ea_no_colon, "Allow an optional colon and spaces after 'is' ('The answer is: 15')."),
        (_ea_no_minus, _MINUS),
        (_ea_minus_unmatched, _MINUS),
        (_ea_no_commas, "'1,200' is one number: allow thousands commas in the pattern and "
                        "remove them before int()."),
        (_ea_whole_text, "Only the completion's own answer counts: cut it at the first blank "
                         "line or '\\nQ:', where the model starts inventing a new question."),
        (_ea_zero_for_none, "Return None when there is no answer, not 0: 0 can be a real "
                            "answer, and None lets the harness count it as 'no answer'."),
    ],
))

# ----------------------------------------------------------------------- 04.3 majority vote


def _vote_cases(rng: torch.Generator):
    yield Case(([7, 7, 3],), label="a clear majority")
    yield Case(([5, 12, 12, 12, 5],), label="the first answer is not the majority")
    yield Case(([None, None, None, 4, 4],), label="chains with no answer do not vote")
    yield Case(([None, 8, None],), label="one answer among failures")
    yield Case(([],), label="no chains at all")
    yield Case(([None, None],), label="no chain gave an answer")
    yield Case(([5, 9, 9, 5],), label="a tie: 5 came first")
    yield Case(([9, 5, 5, 9],), label="a tie: 9 came first")
    yield Case((["positive", "neutral", "positive"],), label="label words vote too")
    for _ in range(5):
        n = int(torch.randint(3, 10, (1,), generator=rng))
        vals = torch.randint(0, 5, (n,), generator=rng).tolist()
        yield Case(([None if v == 0 else 10 + v for v in vals],), label=f"random {n} chains")


def _mv_counts_none(answers):
    return Counter(answers).most_common(1)[0][0] if answers else None


def _mv_count(answers):
    c = Counter(a for a in answers if a is not None)
    return c.most_common(1)[0][1] if c else None


def _mv_pair(answers):
    c = Counter(a for a in answers if a is not None)
    return c.most_common(1)[0] if c else None


def _mv_first(answers):
    return next((a for a in answers if a is not None), None)


def _mv_tie_smallest(answers):
    c = Counter(sorted(a for a in answers if a is not None))
    return c.most_common(1)[0][0] if c else None


def _mv_tie_last(answers):
    best, best_n = None, 0
    for a, n in Counter(a for a in answers if a is not None).items():
        if n >= best_n:
            best, best_n = a, n
    return best


register(Exercise(
    id="04.3", title="majority vote (self-consistency)", reference=harness.majority_vote,
    cases=_vote_cases,
    hint="Count the answers that are not None (collections.Counter), return the most common "
         "one; on a tie the one that appeared first; None if nothing is left to count.",
    mistakes=[
        (_mv_counts_none, "None means 'this chain gave no answer': leave it out of the count, "
                          "or failures outvote the real answers."),
        (_mv_count, "You returned how many votes the winner got; return the answer itself."),
        (_mv_pair, "Counter.most_common(1) gives [(answer, count)]: return only the answer."),
        (_mv_first, "You returned the first answer; count them all and return the most "
                    "common."),
        (_mv_tie_smallest, "On a tie, return the answer that appeared first in the list, "
                           "not the smallest one (don't sort)."),
        (_mv_tie_last, "On a tie, keep the answer that appeared first: replace only on a "
                       "strictly larger count (>, not >=)."),
    ],
))
