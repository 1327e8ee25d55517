"""One row of "what does this variant cost and what does it still do": size, quality, speed.

Lesson 09 and ``benchmarks/smaller_faster.py`` compare variants of ``course-gpt`` (quantized,
distilled, trained from scratch) on the same measures, computed here the same way for all:
size on disk, perplexity on held-out stories, few-shot sentiment accuracy (label scoring),
chain-of-thought accuracy on two-step word problems (greedy), and greedy tokens per second with
a KV cache. The prompt formats are those of :mod:`course_utils.data.prompts`.
"""

from __future__ import annotations

import random
import statistics
import time

import torch

from course_utils import data
from course_utils.data import prompts
from course_utils.metrics import perplexity
from course_utils.prompting.runner import generate_batch, label_scores
from course_utils.quantization import size_on_disk
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


def tokens_per_second(model, input_ids: torch.Tensor, new_tokens: int = 48, repeats: int = 3,
                      generate=None) -> float:
    """Median greedy tokens per second (KV cache, one row); ``generate(ids, n)`` overrides.

    The end-of-text token is ignored while timing, so every model generates exactly
    ``new_tokens`` tokens (a model that would stop early is not counted as faster).
    """
    run = generate or (lambda ids, n: greedy_generate(model, ids, n))
    eos = model.generation_config.eos_token_id
    model.generation_config.eos_token_id = None
    try:
        run(input_ids, 2)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run(input_ids, new_tokens)
            times.append(time.perf_counter() - start)
    finally:
        model.generation_config.eos_token_id = eos
    return new_tokens / statistics.median(times)


def parameter_count(model) -> int:
    """Parameters and buffers counted once each (tied weights once; quantized ints included)."""
    seen, total = set(), 0
    for t in [*model.parameters(), *model.buffers()]:
        if t.data_ptr() not in seen:
            seen.add(t.data_ptr())
            total += t.numel()
    return total


def report(name: str, model, tokenizer, prompt: str = "Once upon a time", new_tokens: int = 48,
           chain_of_thought: bool = False, texts: list[str] | None = None) -> dict:
    """One table row for ``model``: size (MB), perplexity, accuracies, tokens per second."""
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    row = {"model": name, "size_mb": round(size_on_disk(model) / 1e6, 2),
           "perplexity": round(held_out_perplexity(model, tokenizer, texts), 3),
           "few_shot": round(few_shot_accuracy(model, tokenizer), 3)}
    if chain_of_thought:
        row["chain_of_thought"] = round(chain_of_thought_accuracy(model, tokenizer), 3)
    row["tokens_per_s"] = round(tokens_per_second(model, ids, new_tokens), 1)
    return row


def markdown_table(rows: list[dict]) -> str:
    """The rows as a markdown table (keys of the first row as the header)."""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


__all__ = ["chain_of_thought_accuracy", "few_shot_accuracy", "held_out_perplexity",
           "held_out_texts", "markdown_table", "parameter_count", "report", "sentiment_prompts",
           "tokens_per_second"]
