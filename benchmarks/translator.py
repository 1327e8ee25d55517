"""The bundled English -> Lingo translator: held-out BLEU, and greedy decoding with and without
the cache.

    python benchmarks/translator.py [--sentences 300] [--repeats 5] [--threads 1] [--batch 1 32 100]

``course-translator`` (lesson 02, ``course_utils.transformer.Translator``) translates the test
split of ``course_utils.data.translations()``; BLEU is the course's metric
(``course_utils.metrics.bleu``), the same number as ``evaluate``'s "bleu". Speed: tokens per
second of greedy decoding with the cache (the source encoded once, each decoder layer's
cross-attention keys/values computed once, past self-attention keys/values kept) vs without it
(the decoder rerun over the whole prefix at every step), on the same sentences in batches of
``--batch``; both must give identical tokens. Medians over ``--repeats``, the variants taking
turns (``common.alternate``). Also how long the checkpoint takes to load.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import alternate, write_results  # noqa: E402

from course_utils import data  # noqa: E402
from course_utils.metrics import bleu  # noqa: E402
from course_utils.transformer import load_translator  # noqa: E402


def _decode_all(model, batches, use_cache: bool) -> list[torch.Tensor]:
    return [model.generate(ids, mask, use_cache=use_cache) for ids, mask in batches]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 32, 100])
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    load_average = os.getloadavg()[0]
    t0 = time.perf_counter()
    model = load_translator()
    load_s = time.perf_counter() - t0
    test = data.translations(0)["test"]
    sources = list(test["source"][: args.sentences])
    references = list(test["target"][: args.sentences])
    predictions = []
    for i in range(0, len(sources), 100):
        predictions += model.translate(sources[i: i + 100])
    score = bleu(predictions, references)
    exact = sum(p == r for p, r in zip(predictions, references, strict=True))

    rows = []
    for batch_size in args.batch:
        subset = sources[: max(batch_size, min(len(sources), 64))]
        batches = [model.batch(subset[i: i + batch_size])
                   for i in range(0, len(subset), batch_size)]
        fast, slow = _decode_all(model, batches, True), _decode_all(model, batches, False)
        if not all(torch.equal(a, b) for a, b in zip(fast, slow, strict=True)):
            raise RuntimeError("cached and uncached decoding gave different tokens")
        tokens = sum(int((out != model.vocab.pad_id).sum()) for out in fast)
        with torch.no_grad():
            times = alternate({"cached": lambda b=batches: _decode_all(model, b, True),
                               "uncached": lambda b=batches: _decode_all(model, b, False)},
                              repeats=args.repeats)
        row = {"batch_size": batch_size, "sentences": len(subset), "tokens": tokens}
        for name, t in times.items():
            row[f"{name}_tokens_per_s"] = round(tokens / t["median_s"], 1)
            row[f"{name}_median_s"] = round(t["median_s"], 4)
        row["speedup"] = round(row["cached_tokens_per_s"] / row["uncached_tokens_per_s"], 2)
        rows.append(row)

    table = [f"Held-out BLEU of `course-translator` on {len(sources)} test sentences: "
             f"**{score['bleu']:.3f}** ({exact} translated exactly; the checkpoint loads in "
             f"{load_s:.2f} s). Greedy decoding, {args.threads} thread(s), medians of "
             f"{args.repeats} alternating runs (1-minute load average {load_average:.1f} at the "
             "start); cached and uncached give identical tokens. Lingo sentences are short "
             "(about 10 words), so at batch 1 both are bound by per-step overhead and the cache "
             "gains little; it grows with the batch.", "",
             "| batch | sentences | generated tokens | cached tokens/s | uncached tokens/s | "
             "cached / uncached |", "|---:|---:|---:|---:|---:|---:|"]
    table += [f"| {r['batch_size']} | {r['sentences']} | {r['tokens']} | "
              f"{r['cached_tokens_per_s']:,.0f} | {r['uncached_tokens_per_s']:,.0f} | "
              f"{r['speedup']:.2f}x |" for r in rows]
    write_results("translator", {"bleu": score, "exact_matches": exact,
                                 "sentences": len(sources), "load_seconds": round(load_s, 3),
                                 "load_average": load_average,
                                 "rows": rows}, "\n".join(table))


if __name__ == "__main__":
    main()
