"""The fine-tuning task lessons 05 and 06 share: course-gpt learns review -> sentiment word.

One :class:`Recipe` (data sizes, sequence length, batch size, steps, learning rate) fixes the
task and the budget, so full fine-tuning (lesson 05), LoRA and prompt tuning (lesson 06) and
``benchmarks/finetune.py`` train on the same examples for the same number of steps, and their
costs compare. :func:`finetune` runs one method with ``Trainer`` and returns what it cost;
:func:`full_finetune_baseline` returns lesson 05's full fine-tuning run from the cache, or runs
it when the learner has not (the cache key includes the recipe and the checkpoint's bytes).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers import PrinterCallback, Trainer, TrainingArguments

from course_utils.data import reviews
from course_utils.finetune import costs
from course_utils.finetune.args import cpu_training_arguments
from course_utils.finetune.callbacks import LossHistory
from course_utils.finetune.data import balanced_subset, causal_lm_dataset, collator_for
from course_utils.finetune.metrics import lm_label_accuracy

LABEL_NAMES = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class Recipe:
    """Data and budget of a sentiment fine-tuning run, scaled to a CPU and a 90-second lesson."""

    n_train: int = 480
    n_eval: int = 96
    n_test: int = 150
    max_length: int = 64
    batch_size: int = 16
    max_steps: int = 30
    learning_rate: float = 1e-3
    warmup_steps: int = 3
    weight_decay: float = 0.01
    eval_steps: int = 10
    logging_steps: int = 2
    seed: int = 0

    def fingerprint(self, model_dir: str | Path | None = None) -> str:
        """A hash of the recipe and of the checkpoint's weights and config (if given)."""
        h = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode())
        if model_dir is not None:
            for name in ("config.json", "model.safetensors"):
                path = Path(model_dir) / name
                if path.exists():
                    h.update(path.read_bytes())
        return h.hexdigest()[:16]


def sentiment_splits(recipe: Recipe = Recipe()) -> dict[str, Dataset]:
    """Balanced raw ``train`` / ``validation`` / ``test`` subsets of the generated reviews."""
    ds = reviews(seed=recipe.seed)
    return {"train": balanced_subset(ds["train"], recipe.n_train, recipe.seed),
            "validation": balanced_subset(ds["validation"], recipe.n_eval, recipe.seed),
            "test": balanced_subset(ds["test"], recipe.n_test, recipe.seed)}


def training_arguments(output_dir: str | Path, recipe: Recipe = Recipe(),
                       **overrides: Any) -> TrainingArguments:
    """:func:`~course_utils.finetune.args.cpu_training_arguments` for ``recipe``: steps, batch
    size, warm-up, weight decay, logging, evaluation every ``eval_steps``, its seed."""
    return cpu_training_arguments(output_dir, **(dict(
        max_steps=recipe.max_steps, per_device_train_batch_size=recipe.batch_size,
        per_device_eval_batch_size=2 * recipe.batch_size,
        learning_rate=recipe.learning_rate, warmup_steps=recipe.warmup_steps,
        weight_decay=recipe.weight_decay, logging_steps=recipe.logging_steps,
        eval_strategy="steps", eval_steps=recipe.eval_steps, seed=recipe.seed,
    ) | overrides))


def _saved_weights(path: Path) -> list[Path]:
    """Weight and config files a previous ``save_pretrained`` left in ``path`` (top level)."""
    if not path.is_dir():
        return []
    patterns = ("*.safetensors", "*.bin", "config.json", "adapter_config.json")
    return [p for pattern in patterns for p in path.glob(pattern) if p.is_file()]


@dataclass
class Run:
    """What :func:`finetune` returns: the trainer, the loss curve and the measured cost."""

    trainer: Trainer
    history: LossHistory
    cost: costs.RunCost
    predictions: list[int]


def finetune(model: Any, tokenizer: Any, method: str, output_dir: str | Path,
             recipe: Recipe = Recipe(), splits: dict[str, Dataset] | None = None,
             base_params: int | None = None, quiet: bool = False, **arg_overrides: Any) -> Run:
    """Fine-tune ``model`` (full, or a ``peft`` model) on the sentiment task with ``Trainer``.

    Measures the run with :class:`~course_utils.finetune.costs.CostCallback`, then the test
    accuracy, then saves the weights (for a ``peft`` model only the adapter) to ``output_dir`` and
    measures their size. ``base_params`` is the base model's parameter count, so a run's
    "% trainable" is relative to the same number for every method. ``quiet`` drops the
    printed log lines (the loss curve is still recorded).
    """
    if not isinstance(method, str) or not method:
        raise ValueError("method must be a short name for the run, e.g. 'full' or 'LoRA r=8'")
    splits = splits or sentiment_splits(recipe)
    train = causal_lm_dataset(splits["train"], tokenizer, LABEL_NAMES, recipe.max_length)
    val = causal_lm_dataset(splits["validation"], tokenizer, LABEL_NAMES, recipe.max_length)
    history, meter = LossHistory(), costs.CostCallback()
    trainer = Trainer(model=model, args=training_arguments(output_dir, recipe, **arg_overrides),
                      train_dataset=train, eval_dataset=val, processing_class=tokenizer,
                      data_collator=collator_for("causal-lm", tokenizer),
                      callbacks=[history, meter])
    if quiet:
        trainer.remove_callback(PrinterCallback)
    trainer.train()
    accuracy, preds = lm_label_accuracy(model, tokenizer, splits["test"], LABEL_NAMES)
    output_dir = Path(output_dir)
    for old in _saved_weights(output_dir):  # a previous run's weights would count on disk
        old.unlink()
    model.save_pretrained(output_dir)
    extra = {"accuracy": accuracy, "size_on_disk_bytes": costs.size_on_disk(output_dir)}
    if base_params is not None:
        extra["total_params"] = base_params
    return Run(trainer, history, meter.result(method, model, **extra), preds)


def baseline_dir(model_name: str = "course-gpt") -> Path:
    """Where the fully fine-tuned model of lesson 05 is kept for lesson 06."""
    return costs.cache_dir() / f"{model_name}-sentiment-full"


def store_full_baseline(cost: costs.RunCost, model: Any, tokenizer: Any,
                        recipe: Recipe = Recipe(), model_name: str = "course-gpt") -> Path:
    """Keep lesson 05's full fine-tuning run (its cost and its weights) for lesson 06."""
    from course_utils.pretrained import asset_path

    out = baseline_dir(model_name)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    costs.save_run("full", cost, recipe.fingerprint(asset_path(model_name)))
    return out


def full_finetune_baseline(recipe: Recipe = Recipe(), model_name: str = "course-gpt",
                           ) -> tuple[costs.RunCost, Path]:
    """Lesson 05's full fine-tuning run: ``(cost, directory of the fine-tuned model)``.

    Read from :func:`~course_utils.finetune.costs.cache_dir` when lesson 05 stored it with the same
    recipe and checkpoint; otherwise run it now (as long as in lesson 05) and store it.
    """
    from course_utils.pretrained import asset_path, load_pretrained

    out = baseline_dir(model_name)
    cached = costs.load_run("full", recipe.fingerprint(asset_path(model_name)))
    if cached is not None and (out / "model.safetensors").exists():
        return cached, out
    model, tokenizer = load_pretrained(model_name)
    run = finetune(model, tokenizer, "full fine-tuning", out, recipe, quiet=True)
    store_full_baseline(run.cost, model, tokenizer, recipe, model_name)
    return run.cost, out

