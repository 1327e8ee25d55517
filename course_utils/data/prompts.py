"""The plain-text prompt formats the bundled model was pretrained on, and a parser for answers.

The benchmark (``benchmarks/capabilities.py``) and lesson 04 build their prompts with these
helpers, so both measure the same thing. The formats::

    Sentiment (few-shot: k demonstrations, then the query; zero-shot: k = 0)
        <instruction>\\n\\n
        Review: <text>\\nSentiment: <label>\\n\\n        (x k)
        Review: <text>\\nSentiment:                     (the model continues with " <label>")

    Word problems, chain of thought
        Q: <question>\\nA: <steps> The answer is N.\\n\\n   (x k)
        Q: <question>\\nA:                             (the model writes its steps)
    Word problems, direct answer
        Q: <question>\\nA: The answer is N.\\n\\n        (x k)
        Q: <question>\\nA: The answer is               (the model writes " N.")

    Summaries: "<document>\\nTL;DR: <summary>"; translations: "English: <source>\\nLingo: <target>".

The label words ``negative``/``neutral``/``positive`` never served as labels in pretraining (other
label words did, e.g. bad/okay/good, no/maybe/yes): demonstrations are what tell the model the
label space, which is why few-shot beats zero-shot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

SENTIMENT_INSTRUCTION = "Is each review positive, negative or neutral?"
ANSWER_RE = re.compile(r"The answer is (-?\d+)")


def _pairs(examples: Iterable[Sequence], what: str) -> list[tuple]:
    out = []
    for ex in examples:
        if isinstance(ex, str) or len(ex) != 2:
            raise TypeError(f"{what} examples must be (input, output) pairs, got {ex!r}")
        out.append(tuple(ex))
    return out


def sentiment_example(text: str, label: str) -> str:
    """One demonstration: ``"Review: <text>\\nSentiment: <label>\\n\\n"``."""
    return f"Review: {text}\nSentiment: {label}\n\n"


def sentiment_prompt(text: str, examples: Iterable[tuple[str, str]] = (),
                     instruction: str | None = SENTIMENT_INSTRUCTION) -> str:
    """Instruction, then the (text, label-word) demonstrations, then the query review."""
    head = f"{instruction}\n\n" if instruction else ""
    demos = "".join(sentiment_example(t, lab) for t, lab in _pairs(examples, "sentiment"))
    return f"{head}{demos}Review: {text}\nSentiment:"


def word_problem_example(question: str, solution: str, chain_of_thought: bool = True) -> str:
    """One demonstration. With ``chain_of_thought=False`` only the final sentence is kept."""
    if not chain_of_thought:
        answer = parse_answer(solution)
        if answer is None:
            raise ValueError(f"solution must end with 'The answer is N.', got {solution!r}")
        solution = f"The answer is {answer}."
    return f"Q: {question}\nA: {solution}\n\n"


def word_problem_prompt(question: str, examples: Iterable[tuple[str, str]] = (),
                        chain_of_thought: bool = True) -> str:
    """Demonstrations (question, solution), then the question.

    Chain of thought ends with ``"A:"`` so the model writes its steps; the direct format ends
    with ``"A: The answer is"`` so the model must give the number at once.
    """
    demos = "".join(word_problem_example(q, s, chain_of_thought)
                    for q, s in _pairs(examples, "word problem"))
    tail = "A:" if chain_of_thought else "A: The answer is"
    return f"{demos}Q: {question}\n{tail}"


def parse_answer(text: str) -> int | None:
    """The N of the first "The answer is N" in ``text`` (or a bare leading number), else None."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    m = ANSWER_RE.search(text)
    if m:
        return int(m.group(1))
    m = re.match(r"\s*(-?\d+)", text)
    return int(m.group(1)) if m else None


def summary_prompt(document: str) -> str:
    """``"<document>\\nTL;DR:"``: the model continues with a one-line summary."""
    return f"{document}\nTL;DR:"


def translation_prompt(source: str, examples: Iterable[tuple[str, str]] = ()) -> str:
    """(English, Lingo) demonstrations, then ``"English: <source>\\nLingo:"``."""
    demos = "".join(f"English: {s}\nLingo: {t}\n\n" for s, t in _pairs(examples, "translation"))
    return f"{demos}English: {source}\nLingo:"
