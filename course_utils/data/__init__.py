"""The course's own data sets, generated from a seed: no downloads, the same on every machine.

Each function returns a :class:`datasets.DatasetDict` with splits ``"train"``, ``"validation"``
and ``"test"``, built in a second or two. No text appears in two splits, and classification
splits are balanced (the same number of examples per label).

>>> from course_utils.data import reviews
>>> ds = reviews(seed=0)
>>> ds["train"][0]                                   # doctest: +SKIP
{'text': 'I bought the lamp for my mum. It works perfectly.', 'label': 2}

Instruction chats with a scorer each (roles, tasks, templates, conditional and multi-step
instructions), for instruction tuning and for measuring it, are :func:`instruction_data`
(:mod:`course_utils.data.instructions`): splits ``"train"`` and held-out ``"eval"``.

Prompt formats shared by the benchmark and lesson 04 live in :mod:`course_utils.data.prompts`;
the pretraining mixture of the bundled model is in :mod:`course_utils.data.corpus`.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from course_utils.data import tasks
from course_utils.data.instructions import Instruction, instruction_data
from course_utils.data.stories import story
from course_utils.data.tasks import SENTIMENT_LABELS, TOXICITY_LABELS

SPLITS = ("train", "validation", "test")

SIZES: dict[str, dict[str, int]] = {
    "stories": {"train": 20000, "validation": 500, "test": 500},
    "reviews": {"train": 3000, "validation": 300, "test": 300},
    "word_problems": {"train": 4000, "validation": 300, "test": 300},
    "summaries": {"train": 2000, "validation": 200, "test": 200},
    "translations": {"train": 3000, "validation": 300, "test": 300},
    "toxic_comments": {"train": 1500, "validation": 200, "test": 200},
}


def _check_seed(seed: int) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")


def _generate(name: str, seed: int, make: Callable[[random.Random, str, int], dict], key: str,
              features: Features, num_labels: int = 0) -> DatasetDict:
    """Fill test, then validation, then train with examples whose ``key`` is new.

    Generating the held-out splits first and skipping any text already used keeps the splits
    disjoint; cycling through the labels keeps classification splits balanced.
    """
    _check_seed(seed)
    seen: set[str] = set()
    out = {}
    for split in ("test", "validation", "train"):
        rng = random.Random(f"{name}/{seed}/{split}")
        target, rows, tries = SIZES[name][split], [], 0
        while len(rows) < target:
            tries += 1
            if tries > 50 * target:
                raise RuntimeError(f"{name}: could only make {len(rows)} unique {split} examples")
            row = make(rng, split, len(rows) % num_labels if num_labels else 0)
            if row[key] not in seen:
                seen.add(row[key])
                rows.append(row)
        rng.shuffle(rows)
        out[split] = Dataset.from_list(rows, features=features)
    return DatasetDict({s: out[s] for s in SPLITS})


def stories(seed: int = 0) -> DatasetDict:
    """The pretraining text: short stories and everyday prose (column ``text``)."""
    return _generate("stories", seed, lambda rng, split, _: {"text": story(rng)}, "text",
                     Features({"text": Value("string")}))


def reviews(seed: int = 0) -> DatasetDict:
    """Short reviews with a sentiment ``label`` (names ``negative``, ``neutral``, ``positive``)."""
    return _generate("reviews", seed, tasks.review, "text",
                     Features({"text": Value("string"),
                               "label": ClassLabel(names=list(SENTIMENT_LABELS))}),
                     num_labels=len(SENTIMENT_LABELS))


def word_problems(seed: int = 0) -> DatasetDict:
    """Arithmetic word problems: ``question``, worked ``solution``, ``answer`` and ``num_steps``.

    The validation and test splits use names and objects never used in the train split.
    """
    return _generate("word_problems", seed, lambda rng, split, _: tasks.word_problem(rng, split),
                     "question",
                     Features({"question": Value("string"), "solution": Value("string"),
                               "answer": Value("int64"), "num_steps": Value("int64")}))


def summaries(seed: int = 0) -> DatasetDict:
    """Short passages (``document``) with a one-line ``summary`` each, for ROUGE."""
    return _generate("summaries", seed, lambda rng, split, _: tasks.summary(rng, split),
                     "document",
                     Features({"document": Value("string"), "summary": Value("string")}))


def translations(seed: int = 0) -> DatasetDict:
    """English ``source`` sentences with their ``target`` in the toy language Lingo, for BLEU."""
    return _generate("translations", seed, lambda rng, split, _: tasks.translation(rng, split),
                     "source", Features({"source": Value("string"), "target": Value("string")}))


def toxic_comments(seed: int = 0) -> DatasetDict:
    """Forum comments with a ``label`` (names ``non-toxic``, ``toxic``); mild insults, no slurs."""
    return _generate("toxic_comments", seed, tasks.comment, "text",
                     Features({"text": Value("string"),
                               "label": ClassLabel(names=list(TOXICITY_LABELS))}),
                     num_labels=len(TOXICITY_LABELS))


__all__ = ["SENTIMENT_LABELS", "SIZES", "SPLITS", "TOXICITY_LABELS", "Instruction",
           "instruction_data", "reviews", "stories", "summaries", "toxic_comments", "translations",
           "word_problems"]
