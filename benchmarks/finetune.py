"""Cost and quality of fine-tuning: full fine-tuning vs LoRA at several ranks vs prompt tuning.

    python benchmarks/finetune.py [--steps 12] [--repeats 5] [--threads 2] [--random]

Each run is a real ``Trainer`` run of ``--steps`` optimizer steps on the sentiment task of
lessons 05 and 06 (same data, batch size and sequence lengths: :class:`Recipe`), measured by
:class:`course_utils.finetune.costs.CostCallback`, the meter the lessons use: the median time of an
optimizer step (forward, backward, AdamW) after a warm-up step, and the peak bytes of live
tensors during one step (weights, gradients, optimizer state, activations). The methods take
turns (full, LoRA r=1, ..., prompt tuning, full, ...) ``--repeats`` times and each figure is the
median over the repeats. The model is the bundled course-gpt, or with ``--random`` (or when the
checkpoint is missing) a randomly initialised GPT-2 of the same shape: speed and memory do not
depend on the weights.

Quality (bundled course-gpt only): one seeded run per method with lesson 06's comparison
budget (:func:`course_utils.finetune.methods.comparison_recipe`, a few steps), scored by its
test accuracy, as the lesson does. Writes ``benchmarks/results/finetune.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

# Waiting OpenMP threads sleep instead of spinning: on a busy 2-core machine a spinning thread
# can make a step many times slower, which would measure the neighbours, not the method.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402

from course_utils.finetune import (  # noqa: E402
    LABEL_NAMES,
    Recipe,
    causal_lm_dataset,
    collator_for,
    costs,  # noqa: E402
    sentiment_splits,
    training_arguments,
)
from course_utils.finetune.methods import COMPARISON, Method, comparison_recipe  # noqa: E402

MB = costs.MB


def _base(random_init: bool):
    """(model factory, tokenizer, tokenizer path, description)."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from course_utils.pretrained import asset_path

    path = asset_path("course-gpt")
    if not random_init and (path / "model.safetensors").exists():
        return (lambda: GPT2LMHeadModel.from_pretrained(path), AutoTokenizer.from_pretrained(path),
                path, "bundled course-gpt")
    tmp = Path(tempfile.mkdtemp(prefix="bench-tok-"))
    config = GPT2Config(vocab_size=1024, n_positions=256, n_embd=160, n_layer=4, n_head=4,
                        bos_token_id=0, eos_token_id=0, pad_token_id=0)
    tok = AutoTokenizer.from_pretrained(path) if (path / "tokenizer.json").exists() else None
    if tok is None:  # no bundled tokenizer either: a byte-level BPE trained on the reviews
        from tokenizers import ByteLevelBPETokenizer
        from transformers import PreTrainedTokenizerFast

        bpe = ByteLevelBPETokenizer()
        texts = sentiment_splits(Recipe())["train"]["text"]
        bpe.train_from_iterator([*texts, " negative neutral positive Review Sentiment"],
                                vocab_size=1024, special_tokens=["<|endoftext|>"])
        tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer,
                                      eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    tok.save_pretrained(tmp)

    def make():
        torch.manual_seed(0)
        return GPT2LMHeadModel(config)

    return make, tok, tmp, "random GPT-2 of course-gpt's shape"


def run_once(method: Method, make_model, tokenizer, tok_path, datasets, recipe: Recipe,
             out: Path) -> costs.RunCost:
    """One Trainer run of ``recipe.max_steps`` steps, measured by CostCallback."""
    from transformers import PrinterCallback, Trainer

    base = make_model()
    base_params = costs.count_parameters(base)[1]
    model = method.apply(base, tok_path)
    meter = costs.CostCallback()
    args = training_arguments(out, recipe, learning_rate=method.learning_rate, eval_strategy="no",
                              logging_steps=10_000)
    trainer = Trainer(model=model, args=args, train_dataset=datasets, processing_class=tokenizer,
                      data_collator=collator_for("causal-lm", tokenizer), callbacks=[meter])
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    model.save_pretrained(out)
    return meter.result(method.name, model, total_params=base_params,
                        size_on_disk_bytes=costs.size_on_disk(out))


def quality(make_model, tokenizer, tok_path) -> dict[str, float]:
    """Test accuracy of each method after lesson 06's short comparison budget (seeded)."""
    from course_utils.finetune import finetune

    recipe = comparison_recipe()
    splits = sentiment_splits(recipe)
    accuracy = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in COMPARISON:
            base = make_model()
            run = finetune(method.apply(base, tok_path), tokenizer, method.name,
                           Path(tmp) / method.name.replace(" ", "_"), recipe, splits=splits,
                           quiet=True, learning_rate=method.learning_rate, eval_strategy="no")
            accuracy[method.name] = run.cost.accuracy
    return accuracy


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--random", action="store_true", help="random weights of course-gpt's shape")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    make_model, tokenizer, tok_path, model_desc = _base(args.random)
    recipe = replace(Recipe(), max_steps=args.steps)
    train = causal_lm_dataset(sentiment_splits(recipe)["train"], tokenizer, LABEL_NAMES,
                              recipe.max_length)
    runs: dict[str, list[costs.RunCost]] = {m.name: [] for m in COMPARISON}
    t0, load_before = time.time(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for method in COMPARISON:  # the methods take turns: drift hits them alike
                cost = run_once(method, make_model, tokenizer, tok_path, train, recipe,
                                Path(tmp) / method.name.replace(" ", "_"))
                runs[method.name].append(cost)
            print(f"repeat {rep + 1}/{args.repeats} done ({time.time() - t0:.0f} s)",
                  flush=True)
    rows = []
    for name, rs in runs.items():
        times = [r.time_per_step_s for r in rs]
        first = rs[0]
        rows.append({
            "method": name, "trainable_params": first.trainable_params,
            "base_params": first.total_params,
            "trainable_percent": 100 * first.trainable_fraction,
            "optimizer_state_mb": first.optimizer_state_bytes / MB,
            "peak_memory_mb": statistics.median(r.peak_memory_bytes for r in rs) / MB,
            "time_per_step_ms_median": 1000 * statistics.median(times),
            "time_per_step_ms_min": 1000 * min(times), "time_per_step_ms_max": 1000 * max(times),
            "size_on_disk_mb": first.size_on_disk_bytes / MB, "runs": len(rs)})
    accuracy = {} if model_desc != "bundled course-gpt" else quality(make_model, tokenizer,
                                                                        tok_path)
    for r in rows:
        r["accuracy"] = accuracy.get(r["method"])
    full = rows[0]
    load = (load_before, os.getloadavg()[0])
    lines = [f"Fine-tuning cost per step ({model_desc}; batch {recipe.batch_size}, "
             f"{args.steps} steps a run, median of {args.repeats} alternating runs, "
             f"{args.threads} threads; machine load average {load[0]:.1f} before, "
             f"{load[1]:.1f} after)", "",
             "| method | trainable params | % of model | optimizer state | peak memory | "
             "time / step (min-max) | vs full | on disk |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['trainable_params']:,} | {r['trainable_percent']:.2f}% | "
            f"{r['optimizer_state_mb']:.2f} MB | {r['peak_memory_mb']:.1f} MB | "
            f"{r['time_per_step_ms_median']:.0f} ms ({r['time_per_step_ms_min']:.0f}-"
            f"{r['time_per_step_ms_max']:.0f}) | "
            f"{r['time_per_step_ms_median'] / full['time_per_step_ms_median']:.2f}x | "
            f"{r['size_on_disk_mb']:.2f} MB |")
    if accuracy:
        steps = comparison_recipe().max_steps
        lines += ["", f"Quality: test accuracy after lesson 06's comparison budget ({steps} "
                      f"steps of {recipe.batch_size}, one seeded run each; chance 33.3%)", "",
                  "| method | trainable params | test accuracy |", "|---|---:|---:|"]
        lines += [f"| {r['method']} | {r['trainable_params']:,} | {r['accuracy']:.1%} |"
                  for r in rows]
    data = {"model": model_desc, "steps": args.steps, "repeats": args.repeats,
            "batch_size": recipe.batch_size, "load_average": load, "methods": rows}
    write_results("finetune", data, "\n".join(lines))
    return data


if __name__ == "__main__":
    main()
