"""Run every benchmark in one go and gather their tables into ``benchmarks/RESULTS.md``.

    python benchmarks/run_all.py                 # everything (about 15-25 minutes on 2 cores)
    python benchmarks/run_all.py --only attention generation
    python benchmarks/run_all.py --collect       # only rebuild RESULTS.md from results/*.md

Each script writes ``results/<name>.json`` and ``results/<name>.md``; the numbers in RESULTS.md
are exactly what the scripts printed. Benchmarks are not tests: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

# (script, results name, heading, what it compares)
BENCHMARKS = [
    ("run_notebooks.py", "course_run", "Course run",
     "Each notebook, both editions: time and peak memory. Budget: 90 s and 1.5 GB each, the "
     "whole course under 8 minutes per edition."),
    ("attention.py", "attention", "Attention",
     "Lesson 01's reference attention vs `torch.nn.functional.scaled_dot_product_attention`."),
    ("training.py", "training", "Training",
     "Tokens per second of `course_utils.gpt.GPT` vs `transformers`' `GPT2LMHeadModel` of the same "
     "configuration on the same batches. Goal: at least 1.0x."),
    ("generation.py", "generation", "Generation",
     "Greedy tokens per second: KV cache vs no cache vs `transformers` `generate`, same weights. "
     "Goals: KV cache >= 1.0x `generate`, >= 5x no cache at 256 tokens."),
    ("translator.py", "translator", "Translator",
     "Lesson 02's encoder-decoder translator: held-out BLEU, and greedy tokens per second with "
     "the cache (encoder output and cross-attention K/V once per source) vs without."),
    ("load_test.py", "load_test", "Serving",
     "Lesson 08's load test: one request at a time vs static vs continuous batching, mixed "
     "output lengths, 1/4/16/64 clients: throughput, time to first token, p99 latency. Goals at "
     "16 clients: continuous >= 5x one at a time and >= 1.3x static throughput, p99 TTFT <= 1/3 "
     "of static's, 0 failed. Each server runs its batcher in an engine process "
     "(`--engine-process`)."),
    ("load_test.py --engine thread", "load_test_thread", "Serving, batcher in the server's thread",
     "The same load test with each server's batcher in its own thread (the default of "
     "`python -m course_utils.serving`): the model and the event loop share one GIL."),
    ("finetune.py", "finetune", "Fine-tuning",
     "Full fine-tuning vs LoRA vs prompt tuning: time per step and peak memory."),
    ("../scripts/binder_rehearsal.py", "binder_rehearsal", "Binder rehearsal",
     "Every student notebook in a fresh venv built from `binder/` alone, under Binder's 2 GB "
     "limit: wall time and peak memory (kernel, and kernel plus children)."),
    ("smaller_faster.py", "smaller_faster", "Smaller and faster",
     "Lesson 09: int8/int4 weight quantization vs fp32, the distilled course-gpt-mini vs its "
     "twin trained from scratch, speculative decoding vs plain cached greedy. Goals: int8 <= 30% "
     "of the weight bytes within 2% perplexity; distilled < from scratch; >= 1.5x tokens/s."),
    ("copying.py", "copying", "Copying (why course-gpt-chat misses held-out instructions)",
     "Whether course-gpt and course-gpt-chat copy a token they have just read: repeated random "
     "runs (an induction head scores near 1), a held-out card request's name, and a word "
     "problem's name, which pretraining copies for train names only."),
    ("capabilities.py", "capabilities", "Bundled checkpoints",
     "What `course-gpt` and `course-bert` can do: few-shot vs zero-shot, chain of thought vs "
     "direct, perplexity, MLM accuracy."),
]


def collect() -> Path:
    """Write RESULTS.md from whatever results/<name>.md exist."""
    parts = ["# Benchmark results", "",
             "Written by `python benchmarks/run_all.py` on a 2-core CPU machine; every figure is "
             "what the script printed (medians over repeated, alternating runs). Re-run it to "
             "refresh. Raw numbers are in `benchmarks/results/*.json`.", ""]
    for script, name, heading, what in BENCHMARKS:
        md = RESULTS / f"{name}.md"
        parts += [f"## {heading}", "", what, ""]
        if md.exists():
            parts += [md.read_text().rstrip(), ""]
            if (RESULTS / f"{name}.png").exists():
                parts += [f"![{heading}](results/{name}.png)", ""]
        else:
            parts += [f"_Not measured yet: run `python benchmarks/{script}`._", ""]
    out = HERE / "RESULTS.md"
    out.write_text("\n".join(parts))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="results names, e.g. attention generation")
    parser.add_argument("--collect", action="store_true", help="only rebuild RESULTS.md")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per benchmark")
    args = parser.parse_args(argv)
    failed = []
    if not args.collect:
        for script, name, heading, _ in BENCHMARKS:
            if args.only and name not in args.only:
                continue
            path, *options = script.split()
            if not (HERE / path).exists():
                print(f"-- {heading}: {path} does not exist, skipped")
                continue
            print(f"== {heading}: python benchmarks/{script}", flush=True)
            started = time.perf_counter()
            try:
                code = subprocess.run([sys.executable, str(HERE / path), *options],
                                      timeout=args.timeout).returncode
            except subprocess.TimeoutExpired:
                code = "timeout"
            print(f"== {heading}: exit {code} after {time.perf_counter() - started:.0f} s")
            if code != 0:
                failed.append(name)
    print(f"Wrote {collect()}")
    if failed:
        print(f"Benchmarks that failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
