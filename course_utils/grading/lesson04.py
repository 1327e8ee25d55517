"""Lesson 04 exercises, in notebook order: 04.1 a balanced few-shot prompt drawn from a pool
(:mod:`lesson04_pool`), 04.2 choosing a label by likelihood (:mod:`lesson04_likelihood`), and
here 04.3, reading the answer off a completion.

Every case names the wrong ideas it is there to catch (``catches=``); every mistake runs on
every case, because a mistake's hint is shown only when the learner's function gives that
mistake's output on all of them.
"""

from __future__ import annotations

import re

import torch

from course_utils.grading import (  # noqa: F401  (registered at import)
    lesson04_likelihood,  # 04.2: choosing a label by likelihood
    lesson04_pool,  # 04.1: a balanced, seeded few-shot prompt from a pool
)
from course_utils.grading.core import Case, Exercise, compare, register
from course_utils.prompting import harness

# ------------------------------------------------------------------ 04.3 extract the answer


def _with_commas(n: int) -> str:
    return f"{n:,}"


def _answer_cases(rng: torch.Generator):
    yield Case((" Mia has 3 + 4 = 7. The answer is 7.",), label="a clean chain of thought",
               catches="the text returned instead of an int")
    yield Case((" 12 - 5 = 7. 7 + 6 = 13. The answer is 13.",), label="two steps",
               catches="the first number of the working taken as the answer")
    yield Case((" 6 + 3 = 9. the answer is 9.",), label="lower case",
               catches="a case-sensitive search (no re.IGNORECASE)")
    yield Case((" The answer is: 15.",), label="a colon after 'is'",
               catches="a pattern without the optional colon; re.match where re.search works "
                       "only by luck")
    yield Case((" 4 - 9 = -5. The answer is -5.",), label="a negative answer",
               catches="a pattern without '-?' (the sign lost, or no match at all)")
    yield Case((" 3 * 400 = 1200. The answer is 1,200.",), label="a thousands comma",
               catches="a pattern that stops at the comma ('1' instead of 1200)")
    yield Case((" 6 + 2 = 8.\n\nQ: Ben has 4 cups. Ben buys 5 more cups. How many cups?\n"
                "A: The answer is 9.",),
               label="no answer of its own, then an invented question with one",
               catches="no cut at all: the invented question's answer read as the answer")
    yield Case((" 2 + 3 = 5. The answer is 5.\n\nQ: Ann has 10 pens and 2 more. How many?\n"
                "A: The answer is 12.",), label="an answer, then an invented question",
               catches="the last number or the last 'The answer is' of the whole text")
    yield Case((" The answer is 8. The answer is 11.",), label="the phrase twice",
               catches="re.findall(...)[-1] instead of the first match")
    yield Case((" I do not know how many apples there are.",), label="no answer at all",
               catches="0 or '' instead of None when there is no answer")
    yield Case(("",), label="an empty completion",
               catches="code that fails on an empty string")
    yield Case((" 5 - 5 = 0. The answer is 0.",), label="the answer is 0",
               catches="`int(...) or None` or `if answer:` turning the real answer 0 into None")
    yield Case((" 3 + 4 = 7.\nThe answer is 7.",), label="the answer on the second line",
               catches="only the first line read (split('\\n')[0]): the answer is on line 2")
    yield Case(("\nThe answer is 5.",), label="a completion that starts with a newline",
               catches="only the first line read: here the first line is empty")
    yield Case((" 6 + 2 = 8.\nQ: Ben has 4 cups. He buys 5 more. How many cups?\n"
                "A: The answer is 9.",),
               label="no answer of its own, then '\\nQ:' without a blank line",
               catches="a cut at the blank line but not at a new '\\nQ:'")
    yield Case((" 5 + 5 = 10.\n\nThe answer is 10.",), label="the phrase only after a blank line",
               catches="no cut at the blank line (what follows it is not the completion's "
                       "own answer)")
    yield Case((" 1,000 + 234,567 + 1,000,000 = 1,235,567. The answer is 1,235,567.",),
               label="two thousands commas",
               catches="a pattern that allows one comma group only ('1,235')")
    yield Case((" 300 * 4 = 1,200. 0 - 1,200 = -1,200. The answer is -1,200.",),
               label="a negative answer with a comma",
               catches="the sign or the comma lost")
    yield Case((" 1000 + 200 = 1200. The answer is 1200.",), label="four digits, no comma",
               catches="a pattern \\d{1,3}(,\\d{3})* without a plain-digits fallback ('120')")
    yield Case((" Zoë’s 3 “red” pens + 4 = 7. The answer is 7",),
               label="unicode and quotes, no full stop at the end",
               catches="a pattern that needs a '.' after the number")
    yield Case((" 10 + 11 = 21. THE ANSWER IS:21.",), label="capitals, no space after the colon",
               catches="a case-sensitive search; a pattern that needs a space after the colon")
    for _ in range(6):
        a, b = (int(x) for x in torch.randint(0, 1500, (2,), generator=rng))
        minus = bool(torch.rand(1, generator=rng) < 0.4)
        total, op = (a - b, "-") if minus else (a + b, "+")
        other = int(torch.randint(2, 99, (1,), generator=rng))
        own = bool(torch.rand(1, generator=rng) < 0.7)
        answer = f" The answer is {_with_commas(total)}." if own else ""
        cut = "\n" if bool(torch.rand(1, generator=rng) < 0.5) else "\n\n"
        yield Case((f" {a} {op} {b} = {_with_commas(total)}.{answer}{cut}Q: Tom has {other} "
                    f"cups.\nA: The answer is {other}.",),
                   label="random: steps, " + ("an answer, " if own else "no answer, ")
                   + f"then an invented question after {cut!r}",
                   catches="every rule at once on random numbers (commas, signs, the cut)")


_PATTERN = r"the answer is\s*:?\s*(-?\d{1,3}(?:,\d{3})+|-?\d+)"
_CUT = r"\n\s*\n|\nQ:"


def _search(completion, pattern=_PATTERN, cut=_CUT, flags=re.IGNORECASE, group=True):
    own = re.split(cut, completion, maxsplit=1)[0] if cut else completion
    m = re.search(pattern, own, flags)
    return (int(m.group(1).replace(",", "")) if group else m.group(1)) if m else None


def _ea_last_number(completion):
    nums = re.findall(r"-?\d+", completion)
    return int(nums[-1]) if nums else None


def _ea_first_number(completion):
    nums = re.findall(r"\d+", completion)
    return int(nums[0]) if nums else None


def _ea_case_sensitive(completion):
    return _search(completion, _PATTERN.replace("the", "The", 1), flags=0)


def _ea_no_colon(completion):
    return _search(completion, _PATTERN.replace(r"\s*:?\s*", " "))


def _ea_no_minus(completion):
    return None if (x := harness.extract_answer(completion)) is None else abs(x)


def _ea_minus_unmatched(completion):
    return _search(completion, _PATTERN.replace("-?", ""))


def _ea_no_commas(completion):
    return _search(completion, r"the answer is\s*:?\s*(-?\d+)")


def _ea_one_comma_group(completion):
    return _search(completion, r"the answer is\s*:?\s*(-?\d+(?:,\d{3})?)")


def _ea_three_digits(completion):
    return _search(completion, r"the answer is\s*:?\s*(-?\d{1,3}(?:,\d{3})*)")


def _ea_needs_full_stop(completion):
    return _search(completion, _PATTERN + r"\.")


def _ea_match_at_start(completion):
    own = re.split(_CUT, completion, maxsplit=1)[0]
    m = re.match(_PATTERN, own, re.IGNORECASE)
    return int(m.group(1).replace(",", "")) if m else None


def _ea_whole_text(completion):
    return _search(completion, cut=None)


def _ea_first_line(completion):
    return _search(completion, cut=r"\n")


def _ea_blank_line_only(completion):
    return _search(completion, cut=r"\n\s*\n")


def _ea_zero_for_none(completion):
    return harness.extract_answer(completion) or 0


def _ea_zero_dropped(completion):
    return harness.extract_answer(completion) or None


def _ea_string(completion):
    return _search(completion, group=False)


def _ea_last_phrase(completion):
    own = re.split(_CUT, completion)[0]
    found = re.findall(_PATTERN, own, re.IGNORECASE)
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
    id="04.3", title="extract the answer robustly", reference=harness.extract_answer,
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
        (_ea_first_line, "You read only the first line: the answer can be on a later line of "
                         "the completion's own answer. Cut at the first blank line or "
                         "'\\nQ:', not at the first newline."),
        (_ea_blank_line_only, "Cut at a new '\\nQ:' too, not only at a blank line: the model "
                              "often starts its invented question on the very next line."),
        (_ea_whole_text, "Only the completion's own answer counts: cut it at the first blank "
                         "line or '\\nQ:', where the model starts inventing a new question."),
        (_ea_last_number, "You returned the last number in the text: read the number right "
                          "after 'The answer is', which is not always the last one."),
        (_ea_case_sensitive, "Small models write 'the answer is' in any capitalisation: "
                             "search with re.IGNORECASE."),
        (_ea_no_colon, "Allow an optional colon and spaces after 'is' ('The answer is: 15')."),
        (_ea_no_minus, _MINUS),
        (_ea_minus_unmatched, _MINUS),
        (_ea_no_commas, "'1,200' is one number: allow thousands commas in the pattern and "
                        "remove them before int()."),
        (_ea_one_comma_group, "A number can have several thousands commas ('1,235,567'): "
                              "repeat the comma group, (?:,\\d{3})+."),
        (_ea_three_digits, "'1200' has no comma and must stay 1200: your pattern stops after "
                           "three digits. Try the commas first, then plain digits: "
                           "-?\\d{1,3}(?:,\\d{3})+|-?\\d+."),
        (_ea_needs_full_stop, "The completion can end right after the number: don't require "
                              "a '.' after it."),
        (_ea_zero_for_none, "Return None when there is no answer, not 0: 0 can be a real "
                            "answer, and None lets the harness count it as 'no answer'."),
        (_ea_zero_dropped, "0 is a real answer: return it. Only 'no match' gives None; test "
                           "`if m` (the match), not the number's truthiness (`x or None`)."),
        (_ea_match_at_start, "re.match only matches at the very start of the text: use "
                             "re.search to find the phrase anywhere in it."),
    ],
))
