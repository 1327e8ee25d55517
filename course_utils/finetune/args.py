"""``TrainingArguments`` for a CPU and a notebook, the one place every fine-tuning recipe starts.

Each recipe (the sentiment task of lessons 05 and 06, lesson 07's toxicity classifier and
summary fine-tuning, ``scripts/finetune_script.py``) adds its own steps, batch size and
learning rate to the same base: train on the CPU, no worker processes or pinned memory (a
laptop or Binder has neither to spare), no checkpoints (the lessons save the model
themselves), no experiment trackers, no progress bar, and the course's seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import TrainingArguments

CPU_DEFAULTS: dict[str, Any] = dict(
    use_cpu=True, dataloader_num_workers=0, dataloader_pin_memory=False, save_strategy="no",
    report_to="none", disable_tqdm=True, seed=0,
)


def cpu_training_arguments(output_dir: str | Path, **overrides: Any) -> TrainingArguments:
    """``TrainingArguments(output_dir, **CPU_DEFAULTS, **overrides)``: any field may be
    overridden (e.g. ``use_cpu=False`` on a GPU, ``disable_tqdm=False`` to show the bar)."""
    if not isinstance(output_dir, str | Path) or not str(output_dir):
        raise TypeError(f"output_dir must be a folder path, got {output_dir!r}")
    return TrainingArguments(output_dir=str(output_dir), **(CPU_DEFAULTS | overrides))


__all__ = ["CPU_DEFAULTS", "cpu_training_arguments"]
