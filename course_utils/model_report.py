"""One row of "what does this variant cost and what does it still do": size, quality, speed.

Lesson 09 and ``benchmarks/smaller_faster.py`` compare variants of ``course-gpt`` (quantized,
distilled, trained from scratch) on the same measures, computed here the same way for all:
size on disk, perplexity on held-out stories, few-shot sentiment accuracy (label scoring),
chain-of-thought accuracy on two-step word problems (greedy), and greedy tokens per second with
a KV cache (timed in turns, see :func:`median_seconds`). The prompt formats are those of
:mod:`course_utils.data.prompts`.
"""

from __future__ import annotations

import contextlib
import random
import statistics
import time
from collections.abc import Callable

import torch

from course_utils import data
from course_utils.data import prompts
from course_utils.lm import perplexity, size_on_disk
from course_utils.prompting.runner import generate_batch, label_scores
from course_utils.speculative import greedy_generate

LABELS = list(data.SENTIMENT_LABELS)


def held_out_texts(n: int = 40) -> list[str]:
    """The first ``n`` stories of the test split (never trained on)."""
    return list(data.stories(0)["test"]["text"][:n])


def held_out_perplexity(model, tokenizer, texts: list[str] | None = None) -> float:
    """Corpus-level perplexity (exp of the mean token loss) on held-out stories."""
    return perplexity(model, tokenizer, texts or held_out_texts())["perplexity"]


def sentiment_prompts(n_per_label: int = 10, shots: int = 3, seed: int = 0
                      ) -> tuple[list[str], list[int]]:
    """Balanced few-shot sentiment prompts from the test split, demonstrations from validation."""
    ds = data.reviews(0)
    test = [r for r in ds["test"].to_list()]
    chosen = [r for lab in range(3) for r in [t for t in test if t["label"] == lab][:n_per_label]]
    pool = ds["validation"].to_list()
    by_label = {lab: [r for r in pool if r["label"] == lab] for lab in range(3)}
    rng = random.Random(seed)
    out = []
    for r in chosen:
        demos = [rng.choice(by_label[lab]) for lab in range(3)][:shots]
        rng.shuffle(demos)
        out.append(prompts.sentiment_prompt(r["text"], [(d["text"], LABELS[d["label"]])
                                                        for d in demos]))
    return out, [r["label"] for r in chosen]


def few_shot_accuracy(model, tokenizer, n_per_label: int = 10, seed: int = 0) -> float:
    """Share of few-shot sentiment prompts whose most likely label word is the right one."""
    texts, labels = sentiment_prompts(n_per_label, seed=seed)
    best = label_scores(model, tokenizer, texts, LABELS).argmax(-1)
    return (best == torch.tensor(labels)).float().mean().item()


def chain_of_thought_accuracy(model, tokenizer, n: int = 16, shots: int = 2, seed: int = 0,
                              max_new_tokens: int = 48) -> float:
    """Greedy chain-of-thought accuracy on two-step word problems of the test split."""
    ds = data.word_problems(0)
    test = [r for r in ds["test"].to_list() if r["num_steps"] == 2][:n]
    pool = [r for r in ds["validation"].to_list() if r["num_steps"] == 2]
    rng = random.Random(seed)
    texts = [prompts.word_problem_prompt(r["question"], [(d["question"], d["solution"])
                                                         for d in rng.sample(pool, shots)])
             for r in test]
    outs = generate_batch(model, tokenizer, texts, max_new_tokens, stop=("\n",))
    return sum(prompts.parse_answer(o) == r["answer"] for o, r in zip(outs, test, strict=True)
               ) / len(test)


@contextlib.contextmanager
def without_eos(*models):
    """Ignore the end-of-text token while timing, so every model generates every token."""
    saved = [m.generation_config.eos_token_id for m in models]
    for m in models:
        m.generation_config.eos_token_id = None
    try:
        yield
    finally:
        for m, eos in zip(models, saved, strict=True):
            m.generation_config.eos_token_id = eos


def timed_in_turns(runs: dict[str, Callable[[], object]], repeats: int = 3,
                   warmup: int = 1) -> dict[str, list[float]]:
    """Wall times of each run, the runs taking turns (A B C A B C ...) after ``warmup``
    rounds, so that a machine slowing down or speeding up affects them alike."""
    for _ in range(warmup):
        for fn in runs.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def median_seconds(runs: dict[str, Callable[[], object]], repeats: int = 3
                   ) -> dict[str, float]:
    """Median wall time of each run, timed in turns (:func:`timed_in_turns`)."""
    return {name: statistics.median(t) for name, t in timed_in_turns(runs, repeats).items()}


def tokens_per_second(models: dict, input_ids: torch.Tensor, new_tokens: int = 48,
                      repeats: int = 3) -> dict[str, float]:
    """Greedy tokens per second (KV cache, batch 1) of each named model, timed in turns.

    The end-of-text token is ignored while timing, so every model generates exactly
    ``new_tokens`` tokens (a model that would stop early is not counted as faster).
    """
    with without_eos(*models.values()):
        secs = median_seconds({name: (lambda m=m: greedy_generate(m, input_ids, new_tokens))
                               for name, m in models.items()}, repeats)
    return {name: new_tokens / t for name, t in secs.items()}


def parameter_count(model) -> int:
    """Parameters and buffers counted once each (tied weights once; quantized ints included)."""
    seen, total = set(), 0
    for t in [*model.parameters(), *model.buffers()]:
        if t.data_ptr() not in seen:
            seen.add(t.data_ptr())
            total += t.numel()
    return total


def report(name: str, model, tokenizer, chain_of_thought: bool = False,
           texts: list[str] | None = None, tokens_per_s: float | None = None) -> dict:
    """One table row for ``model``: size (MB), perplexity, accuracies (and a measured speed)."""
    row = {"model": name, "size_mb": round(size_on_disk(model) / 1e6, 2),
           "perplexity": round(held_out_perplexity(model, tokenizer, texts), 3),
           "few_shot": round(few_shot_accuracy(model, tokenizer), 3)}
    if chain_of_thought:
        row["chain_of_thought"] = round(chain_of_thought_accuracy(model, tokenizer), 3)
    if tokens_per_s is not None:
        row["tokens_per_s"] = round(tokens_per_s, 1)
    return row


def markdown_table(rows: list[dict]) -> str:
    """The rows as a markdown table (every key of any row as a column, in order of appearance)."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


__all__ = ["chain_of_thought_accuracy", "few_shot_accuracy", "held_out_perplexity",
           "held_out_texts", "markdown_table", "median_seconds", "parameter_count", "report",
           "sentiment_prompts", "timed_in_turns", "tokens_per_second", "without_eos"]
