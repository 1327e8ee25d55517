"""A small toxicity classifier, fine-tuned offline from course-bert (lesson 07).

The cheat-sheet version scores text with
``pipeline("text-classification", model="unitary/toxic-bert")``, which needs the hub.
:func:`train_toxicity_classifier` fine-tunes the bundled ``course-bert`` on the generated
:func:`course_utils.data.toxic_comments` for a few dozen steps and saves it with its tokenizer,
so the cheat-sheet's line runs unchanged with the saved folder as ``model=``.
:func:`toxic_scores` reads the probability of the label ``"toxic"`` from a pipeline's output;
``unitary/toxic-bert`` has a label of that name too, so the same code scores with either.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course_utils.data import TOXICITY_LABELS, toxic_comments

TOXIC = "toxic"


@dataclass(frozen=True)
class ToxicityRecipe:
    """Data and budget of the classifier's fine-tuning run (seconds on a laptop CPU)."""

    n_train: int = 960
    max_steps: int = 60
    batch_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    max_length: int = 48
    seed: int = 0


def train_toxicity_classifier(output_dir: str | os.PathLike,
                              recipe: ToxicityRecipe = ToxicityRecipe(),
                              base: str = "course-bert",
                              extra_non_toxic: Sequence[str] = ()) -> Path:
    """Fine-tune ``base`` as a toxic / non-toxic classifier and save it to ``output_dir``.

    Returns the folder, which ``pipeline("text-classification", model=folder)`` loads like a
    hub name. The labels are named (``id2label``), so the pipeline reports ``"toxic"`` and
    ``"non-toxic"`` rather than ``LABEL_1``. ``extra_non_toxic`` adds harmless texts of the
    kind the classifier will screen (e.g. a model's generations), labelled non-toxic.
    """
    if not isinstance(recipe, ToxicityRecipe):
        raise TypeError(f"recipe must be a ToxicityRecipe, got {type(recipe).__name__}")
    if recipe.max_steps < 1 or recipe.n_train < 2:
        raise ValueError("max_steps must be >= 1 and n_train >= 2")
    if isinstance(extra_non_toxic, str) or not all(isinstance(t, str) for t in extra_non_toxic):
        raise TypeError("extra_non_toxic must be a list of strings")
    from datasets import Dataset, concatenate_datasets
    from transformers import (
        AutoModelForSequenceClassification,
        PrinterCallback,
        Trainer,
        set_seed,
    )

    from course_utils.finetune import balanced_subset, classification_dataset, collator_for
    from course_utils.finetune.args import cpu_training_arguments
    from course_utils.pretrained import load_pretrained

    names = list(TOXICITY_LABELS)
    set_seed(recipe.seed)  # the new classification head's initial weights
    model, tokenizer = load_pretrained(
        base, model_class=AutoModelForSequenceClassification, num_labels=len(names),
        id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    data = toxic_comments(seed=recipe.seed)
    raw = balanced_subset(data["train"], recipe.n_train, recipe.seed)
    if extra_non_toxic:
        extra = Dataset.from_dict({"text": list(extra_non_toxic),
                                   "label": [names.index("non-toxic")] * len(extra_non_toxic)},
                                  features=raw.features)
        raw = concatenate_datasets([raw, extra]).shuffle(seed=recipe.seed)
    train = classification_dataset(raw, tokenizer, recipe.max_length)
    out = Path(output_dir)
    args = cpu_training_arguments(out / "trainer", max_steps=recipe.max_steps,
                                  per_device_train_batch_size=recipe.batch_size,
                                  learning_rate=recipe.learning_rate,
                                  weight_decay=recipe.weight_decay,
                                  logging_steps=recipe.max_steps, seed=recipe.seed)
    trainer = Trainer(model=model, args=args, train_dataset=train, processing_class=tokenizer,
                      data_collator=collator_for("classification", tokenizer))
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def toxic_scores(classifier: Any, texts: Sequence[str], label: str = TOXIC,
                 batch_size: int = 32) -> list[float]:
    """The probability of ``label`` for each text, from a text-classification pipeline.

    Asks the pipeline for every label's score (``top_k=None``) and keeps the one named
    ``label`` (case-insensitive), so a two-label softmax model and a multi-label model such
    as ``unitary/toxic-bert`` (sigmoid per label) are read the same way.
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError("texts must be a list of strings; wrap a single text in a list")
    if not callable(classifier):
        raise TypeError("classifier must be a pipeline('text-classification', ...)")
    if not texts:
        return []
    outputs = classifier(list(texts), top_k=None, batch_size=batch_size, truncation=True)
    scores = []
    for i, per_label in enumerate(outputs):
        per_label = per_label if isinstance(per_label, list) else [per_label]
        found = [d["score"] for d in per_label if str(d["label"]).lower() == label.lower()]
        if not found:
            labels = sorted(str(d["label"]) for d in per_label)
            raise ValueError(f"the classifier has no label {label!r} (text {i} got {labels}); "
                             "pass label= with the name of its toxic class")
        scores.append(float(found[0]))
    return scores


__all__ = ["TOXIC", "ToxicityRecipe", "toxic_scores", "train_toxicity_classifier"]
