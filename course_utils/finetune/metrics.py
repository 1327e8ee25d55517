"""Measuring a fine-tuned model: accuracy and macro-F1, the causal-LM loss, label-word scoring.

``Trainer`` calls ``compute_metrics(EvalPrediction)`` after each evaluation with the logits and
labels of the whole eval set (NumPy arrays); :func:`compute_metrics` turns them into accuracy and
macro-F1 (:func:`macro_f1`).
A causal LM does not output class logits, so :func:`lm_label_predictions` reads the next-token
logits after ``"Sentiment:"`` and picks the most likely of the label words (their token ids
from :func:`course_utils.lm.label_token_ids`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from course_utils.finetune.data import lm_prompt
from course_utils.lm import label_token_ids


def macro_f1(predictions: Any, labels: Any) -> float:
    """Macro-averaged F1: the F1 of each class, then their plain mean.

    Every class that occurs in ``labels`` or in ``predictions`` counts (as in scikit-learn's
    ``f1_score(labels, predictions, average="macro")``), so a class the model never predicts
    adds an F1 of 0 and a rare class weighs as much as a common one. Per class,
    ``F1 = 2 TP / (2 TP + FP + FN)``.
    """
    p, y = np.asarray(predictions).reshape(-1), np.asarray(labels).reshape(-1)
    if p.shape != y.shape:
        raise ValueError(f"predictions {p.shape} and labels {y.shape} differ in shape")
    if y.size == 0:
        raise ValueError("cannot compute the F1 of zero examples")
    scores = []
    for c in np.union1d(p, y):
        tp = np.sum((p == c) & (y == c))
        fp_fn = np.sum((p == c) != (y == c))  # predicted c wrongly, or missed a true c
        scores.append(2 * tp / (2 * tp + fp_fn))
    return float(np.mean(scores))


def compute_metrics(eval_pred: Any) -> dict[str, float]:
    """``Trainer``'s ``compute_metrics``: accuracy and macro-F1 from an ``EvalPrediction``.

    ``eval_pred.predictions`` are the logits ``(N, C)`` as a NumPy array, or a tuple whose first
    item they are (a model that returns more outputs); ``eval_pred.label_ids`` are ``(N,)``.
    Rows labelled -100 are skipped, as the loss skips them. Returns plain Python floats.
    """
    logits, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]  # some models return extra outputs after the logits
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"expected logits (N, C) and labels (N,), got {logits.shape} and "
                         f"{labels.shape}")
    keep = labels != -100
    if not keep.any():
        raise ValueError("every label is -100: there is nothing to measure")
    preds, labels = logits.argmax(axis=-1)[keep], labels[keep]
    return {"accuracy": float(np.mean(preds == labels)), "macro_f1": macro_f1(preds, labels)}


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy as ``GPT2LMHeadModel(labels=...)`` computes it.

    ``labels`` are the *unshifted* inputs (what the LM collator produces): the logits at
    position ``t`` are scored against ``labels[t + 1]``. Targets equal to -100 (padding, or a
    prompt you do not want to train on) are skipped, and the mean runs over all the remaining
    target tokens of the batch.
    """
    if logits.dim() != 3 or labels.shape != logits.shape[:2]:
        raise ValueError(f"expected logits (B, T, V) and labels (B, T), got "
                         f"{tuple(logits.shape)} and {tuple(labels.shape)}")
    shift_logits = logits[:, :-1, :].reshape(-1, logits.size(-1))
    shift_labels = labels[:, 1:].reshape(-1)
    return F.cross_entropy(shift_logits.float(), shift_labels, ignore_index=-100)


def confusion_matrix(predictions: Sequence[int], labels: Sequence[int],
                     num_classes: int) -> np.ndarray:
    """``m[i, j]`` = how many examples of true class ``i`` were predicted as ``j``."""
    p, y = np.asarray(predictions, dtype=int), np.asarray(labels, dtype=int)
    if p.shape != y.shape:
        raise ValueError(f"predictions {p.shape} and labels {y.shape} differ in shape")
    m = np.zeros((num_classes, num_classes), dtype=int)
    np.add.at(m, (y, p), 1)
    return m


def plot_confusion(matrix: np.ndarray, label_names: Sequence[str], ax: Any = None,
                   title: str = "") -> Any:
    """Show a confusion matrix with counts in the cells (rows: truth, columns: prediction)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(3.6, 3.2))
    ax.imshow(matrix, cmap="Blues", vmin=0)
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center",
                color="white" if v > matrix.max() / 2 else "black")
    ax.set_xticks(range(len(label_names)), label_names, rotation=30)
    ax.set_yticks(range(len(label_names)), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return ax


@torch.no_grad()
def lm_label_predictions(model: Any, tokenizer: Any, texts: Sequence[str],
                         label_names: Sequence[str], batch_size: int = 64) -> list[int]:
    """For each review, the index of the label word the causal LM finds most likely next.

    The logits are read at each row's last real token (after right padding, that is not the
    last position of the row).
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string")
    candidates = torch.tensor(label_token_ids(tokenizer, label_names))
    was_training = model.training
    model.eval()
    preds: list[int] = []
    for start in range(0, len(texts), batch_size):
        prompts = [lm_prompt(t) for t in texts[start:start + batch_size]]
        enc = tokenizer(prompts, return_tensors="pt", padding=True)
        enc = {k: v.to(model.device) for k, v in enc.items() if k in ("input_ids",
                                                                        "attention_mask")}
        logits = model(**enc).logits
        if tokenizer.padding_side == "left":  # every row ends at the last position
            last = torch.full((len(prompts),), enc["input_ids"].size(1) - 1)
        else:
            last = enc["attention_mask"].sum(dim=1) - 1
        last = last + logits.size(1) - enc["input_ids"].size(1)  # prompt tuning prepends tokens
        next_logits = logits[torch.arange(len(prompts)), last]
        preds += next_logits[:, candidates.to(logits.device)].argmax(dim=-1).tolist()
    model.train(was_training)
    return preds


def lm_label_accuracy(model: Any, tokenizer: Any, dataset: Any,
                      label_names: Sequence[str], batch_size: int = 64) -> tuple[float, list[int]]:
    """``(accuracy, predictions)`` of a causal LM on a dataset with ``text`` and ``label``."""
    preds = lm_label_predictions(model, tokenizer, dataset["text"], label_names, batch_size)
    labels = list(dataset["label"])
    return float(np.mean(np.asarray(preds) == np.asarray(labels))), preds
