"""Lesson 04 exercises: a few-shot prompt, reading the answer off a completion, majority vote.

Every case names the wrong ideas it is there to catch (``catches=``); every mistake runs on
every case, because a mistake's hint is shown only when the learner's function gives that
mistake's output on all of them.
"""

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
           ("The lamp works perfectly.", "positive"),
           ('She said "never again" and I agree: it\'s the worst café.', "negative"),
           ("Zoë’s new lamp — “bright”, 10/10 ✨", "positive")]
QUERIES = ["The cake was dry.", "Best day of the year!", "It arrived on Tuesday.",
           "Don't buy it. \"Broken\" — again…"]


def _pick(rng: torch.Generator, n: int) -> list[tuple[str, str]]:
    return [REVIEWS[int(i)] for i in torch.randperm(len(REVIEWS), generator=rng)[:n]]


def _few_shot_cases(rng: torch.Generator):
    three = [REVIEWS[0], REVIEWS[1], REVIEWS[2]]
    yield Case((QUERIES[0], three, 1), label="the first 1 of 3 examples",
               catches="all examples or the last k instead of the first k; single newlines "
                       "between demonstrations; a space after the final colon")
    yield Case((QUERIES[1], three, 0), label="k=0: zero-shot",
               catches="`k or len(examples)` reading 0 as 'all'; examples[-k:] taking every "
                       "example when k=0")
    yield Case((QUERIES[2], three, 3), label="all 3 examples",
               catches="off-by-one slices (examples[:k-1], examples[1:k])")
    yield Case((QUERIES[0], three, 2), {"instruction": None}, label="no instruction",
               catches="'None' printed as the instruction; a blank line left at the start")
    yield Case((QUERIES[1], [(t, {"negative": "bad", "neutral": "okay", "positive": "good"}[w])
                             for t, w in three], 3),
               {"instruction": "Is each review good, okay or bad?"},
               label="other label words and instruction",
               catches="a hard-coded instruction or hard-coded label words")
    yield Case((QUERIES[2], [], 0), {"instruction": None}, label="no examples and no instruction",
               catches="a '\\n\\n'.join that starts the prompt with a blank line; code that "
                       "needs at least one example")
    yield Case((QUERIES[0], [REVIEWS[3]], 1), label="one example, k=1",
               catches="examples[:k+1] or examples[1:k+1]; (label, review) unpacked the "
                       "wrong way round")
    yield Case((QUERIES[3], [REVIEWS[8], REVIEWS[9], REVIEWS[5]], 2),
               label="quotes, apostrophes and unicode in the reviews",
               catches="reviews wrapped in quotes or passed through repr()/str(tuple); text "
                       "cleaned or stripped")
    yield Case((QUERIES[1], list(REVIEWS), len(REVIEWS) - 1), {"instruction": None},
               label=f"{len(REVIEWS) - 1} of {len(REVIEWS)} examples, no instruction",
               catches="examples[:k+1] when k is one short of all; the instruction put after "
                       "the demonstrations")
    for _ in range(4):
        n = int(torch.randint(2, len(REVIEWS) + 1, (1,), generator=rng))
        k = int(torch.randint(1, n + 1, (1,), generator=rng))
        query = QUERIES[int(torch.randint(0, len(QUERIES), (1,), generator=rng))]
        yield Case((query, _pick(rng, n), k), label=f"random: {k} of {n} examples",
                   catches="any layout difference, on random example lists")


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


def _demos(examples, sep="\n\n", colon=": "):
    return "".join(f"Review: {t}\nSentiment{colon}{w}{sep}" for t, w in examples)


def _head(instruction, sep="\n\n"):
    return f"{instruction}{sep}" if instruction is not None else ""


def _fs(text, examples, instruction, **demo_kwargs):
    return f"{_head(instruction)}{_demos(examples, **demo_kwargs)}Review: {text}\nSentiment:"


def _fs_single_newline(text, examples, k, instruction=SENTIMENT_INSTRUCTION):
    return _fs(text, examples[:k], instruction, sep="\n")


def _fs_trailing_space(text, examples, k, instruction=SENTIMENT_INSTRUCTION):
    return _fs(text, examples[:k], instruction) + " "


def _fs_ignores_k(text, examples, k, instruction=SENTIMENT_INSTRUCTION):
    return _fs(text, examples, instruction)


def _fs_zero_means_all(text, examples, k, instruction=SENTIMENT_INSTRUCTION):
    return _fs(text, examples[:k or len(examples)], instruction)


def _fs_last_k(text, examples, k, instruction=SENTIMENT_INSTRUCTION):
    return _fs(text, examples[-k:], instruction)


def _fs_one_more(text, examples, k, instruction=SENTIMENT_INSTRUCTION):
    return _fs(text, examples[:k + 1], instruction)


def _fs_swapped(text, examples, k, instruction=SENTIMENT_INSTRUCTION):
    return _fs(text, [(w, t) for t, w in examples[:k]], instruction)


def _fs_fixed_instruction(text, examples, k, instruction=SENTIMENT_INSTRUCTION):
    return _fs(text, examples[:k], None if instruction is None else SENTIMENT_INSTRUCTION)


def _fs_label_glued(text, examples, k, instruction=SENTIMENT_INSTRUCTION):
    return _fs(text, examples[:k], instruction, colon=":")


def _fs_instruction_one_newline(text, examples, k, instruction=SENTIMENT_INSTRUCTION):
    return f"{_head(instruction, sep=chr(10))}{_demos(examples[:k])}Review: {text}\nSentiment:"


def _fs_none_instruction(text, examples, k, instruction=SENTIMENT_INSTRUCTION):
    return f"{instruction}\n\n{_demos(examples[:k])}Review: {text}\nSentiment:"


def _fs_join_leading_blank(text, examples, k, instruction=SENTIMENT_INSTRUCTION):
    blocks = [f"Review: {t}\nSentiment: {w}" for t, w in examples[:k]]
    return "\n\n".join([instruction or "", *blocks, f"Review: {text}\nSentiment:"])


def _fs_no_open_slot(text, examples, k, instruction=SENTIMENT_INSTRUCTION):
    return f"{_head(instruction)}{_demos(examples[:k])}Review: {text}\n"


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
        (_fs_zero_means_all, "k=0 means zero-shot: no examples at all. `k or len(examples)` "
                             "(or `if not k`) turns 0 into 'all of them'; slice examples[:k]."),
        (_fs_ignores_k, "Use only the first k examples (examples[:k]), not all of them."),
        (_fs_last_k, "Take the FIRST k examples (examples[:k]); examples[-k:] takes the last "
                     "ones, and with k=0 it takes them all."),
        (_fs_one_more, "Off by one: examples[:k] already gives k examples; your prompt has "
                       "one demonstration too many."),
        (_fs_swapped, "Each example is a (review, label) pair: unpack it in that order, "
                      "`for review, label in examples[:k]`."),
        (_fs_fixed_instruction, "Use the `instruction` argument you are given; your prompt "
                                "always has the default instruction."),
        (_fs_label_glued, "Put a space between 'Sentiment:' and the label in each "
                          "demonstration: 'Sentiment: positive'."),
        (_fs_instruction_one_newline, "Put a blank line after the instruction: "
                                      "f'{instruction}\\n\\n'."),
        (_fs_none_instruction, "When instruction is None, leave it out completely (no 'None' "
                               "and no blank line)."),
        (_fs_join_leading_blank, "With no instruction the prompt must start with 'Review:': "
                                 "joining an empty instruction with '\\n\\n' leaves a blank "
                                 "line at the start. Leave it out of the list instead."),
        (_fs_no_open_slot, "End with the query's 'Review: <text>\\nSentiment:' so the next "
                           "word the model writes is the label."),
    ],
))

# ------------------------------------------------------------------ 04.2 extract the answer


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

# ----------------------------------------------------------------------- 04.3 majority vote
# The rule (the reference's, and the notebook's): only None means "no answer"; every other
# value votes, compared exactly as Python's == compares it, so 0 and False are answers, and 7
# and "7" are two different answers. A tie goes to the answer that appeared first in the list.


def _vote_cases(rng: torch.Generator):
    yield Case(([7, 7, 3],), label="a clear majority",
               catches="the vote count or (answer, count) returned instead of the answer")
    yield Case(([5, 12, 12, 12, 5],), label="the first answer is not the majority",
               catches="the first answer returned without counting")
    yield Case(([None, None, None, 4, 4],), label="chains with no answer do not vote",
               catches="None counted as an answer (failures outvote real answers)")
    yield Case(([None, 8, None],), label="one answer among failures",
               catches="None counted as an answer")
    yield Case(([],), label="no chains at all",
               catches="Counter(...).most_common(1)[0] on an empty list (IndexError)")
    yield Case(([None, None],), label="no chain gave an answer",
               catches="an IndexError, or None voted in, when nothing is left to count")
    yield Case(([5, 9, 5, 9],), label="a tie, alternating: 5 came first",
               catches="on a tie, the last answer with the top count (>= instead of >, or a "
                       "stable sort by count)")
    yield Case(([5, 9, 9, 5],), label="a tie: 5 came first",
               catches="on a tie, the answer that reached the top count first (9) instead of "
                       "the one that appeared first")
    yield Case(([9, 5, 5, 9],), label="a tie: 9 came first",
               catches="on a tie, the smallest answer (sorted, min, or set order) or the last "
                       "one (>= instead of >)")
    yield Case((["positive", "neutral", "positive"],), label="label words vote too",
               catches="code that only works for numbers")
    yield Case(([0, 0, 5],), label="the answer 0 wins",
               catches="`if a:` dropping the answer 0 (only None means 'no answer')")
    yield Case(([None, 0, 3, 0, None, 3, 0],), label="0 against 3, with failures",
               catches="falsy answers dropped; None counted")
    yield Case(([False, True, False, None],), label="yes/no answers: False wins",
               catches="`if a:` dropping False")
    yield Case((["b", "a", "c"],), label="a three-way tie of words: 'b' came first",
               catches="the smallest (sorted) answer, or an order that depends on hashing "
                       "(max(set(answers), key=answers.count))")
    yield Case((["7", 7, 7, 5, 5, 5],), label="'7' (text) and 7 (number) are different answers",
               catches="answers merged through str() or int(): 7 and '7' are not one answer")
    yield Case(([-3, None, -3, 2],), label="negative answers", catches="code that assumes > 0")
    yield Case(([0],), label="a single answer 0", catches="falsy answers dropped")
    for _ in range(5):
        n = int(torch.randint(3, 10, (1,), generator=rng))
        vals = torch.randint(0, 5, (n,), generator=rng).tolist()
        yield Case(([None if v == 0 else 10 + v for v in vals],), label=f"random {n} chains",
                   catches="any counting or tie error, on random lists")
    for _ in range(3):
        n = int(torch.randint(20, 61, (1,), generator=rng))
        vals = torch.randint(-1, 4, (n,), generator=rng).tolist()
        yield Case(([None if v == -1 else v for v in vals],),
                   label=f"random {n} chains with answers 0-3 and failures",
                   catches="falsy answers dropped and tie errors, on long random lists")


def _votes(answers, keep=lambda a: a is not None):
    return Counter(a for a in answers if keep(a))


def _mv_counts_none(answers):
    return Counter(answers).most_common(1)[0][0] if answers else None


def _mv_count(answers):
    c = _votes(answers)
    return c.most_common(1)[0][1] if c else None


def _mv_pair(answers):
    c = _votes(answers)
    return c.most_common(1)[0] if c else None


def _mv_first(answers):
    return next((a for a in answers if a is not None), None)


def _mv_truthy(answers):
    c = _votes(answers, keep=bool)
    return c.most_common(1)[0][0] if c else None


def _mv_tie_smallest(answers):
    c = _votes(answers)
    if not c:
        return None
    top = max(c.values())
    return min(a for a, n in c.items() if n == top)


def _mv_tie_last(answers):
    best, best_n = None, 0
    for a, n in _votes(answers).items():
        if n >= best_n:
            best, best_n = a, n
    return best


def _mv_first_to_lead(answers):
    counts, best = {}, None
    for a in answers:
        if a is not None:
            counts[a] = counts.get(a, 0) + 1
            if best is None or counts[a] > counts[best]:
                best = a
    return best


def _mv_as_text(answers):
    c = Counter(str(a) for a in answers if a is not None)
    return c.most_common(1)[0][0] if c else None


def _mv_least_common(answers):
    c = _votes(answers)
    return c.most_common()[-1][0] if c else None


register(Exercise(
    id="04.3", title="majority vote (self-consistency)", reference=harness.majority_vote,
    cases=_vote_cases,
    hint="Count the answers that are not None (collections.Counter), return the most common "
         "one; on a tie the one that appeared first; None if nothing is left to count. Only "
         "None is 'no answer': 0 and False vote, and 7 and '7' are different answers.",
    mistakes=[
        (_mv_counts_none, "None means 'this chain gave no answer': leave it out of the count, "
                          "or failures outvote the real answers."),
        (_mv_count, "You returned how many votes the winner got; return the answer itself."),
        (_mv_pair, "Counter.most_common(1) gives [(answer, count)]: return only the answer."),
        (_mv_first, "You returned the first answer; count them all and return the most "
                    "common."),
        (_mv_truthy, "0 and False are answers too: leave out only None (`a is not None`), "
                     "not every falsy answer (`if a:`)."),
        (_mv_tie_smallest, "On a tie, return the answer that appeared first in the list, "
                           "not the smallest one (don't sort)."),
        (_mv_first_to_lead, "You picked the leader while still counting: on a tie the answer "
                            "that appeared first wins, even if another reached that count "
                            "earlier. Count every answer first, then pick."),
        (_mv_tie_last, "On a tie, keep the answer that appeared first: replace only on a "
                       "strictly larger count (>, not >=)."),
        (_mv_as_text, "Vote with the answers as they are: converting them with str() merges 7 "
                      "and '7' and returns text instead of the answer."),
        (_mv_least_common, "most_common() lists the answers from most to least common: take "
                           "the first entry, not the last."),
    ],
))
