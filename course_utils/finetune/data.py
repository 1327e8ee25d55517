"""From a generated task set to tokenized ``datasets`` splits and the collator that batches them.

Two shapes of fine-tuning data appear in lesson 05:

- **classification** (``AutoModelForSequenceClassification``): each example is ``input_ids`` +
  ``attention_mask`` + an integer ``labels``; :class:`~transformers.DataCollatorWithPadding`
  pads each batch to its longest example.
- **causal LM, text-to-label**: each example is one string ``"Review: ...\\nSentiment: positive"``
  followed by the end-of-text token; ``DataCollatorForLanguageModeling(mlm=False)`` pads and
  copies ``input_ids`` into ``labels`` with padding set to -100 (the model shifts them itself).

Tokenize without padding in ``map``: padding every example to ``max_length`` wastes compute on
pad tokens; the collator pads each batch only as far as its longest member.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datasets import Dataset
from transformers import DataCollatorForLanguageModeling, DataCollatorWithPadding

from course_utils.data.prompts import sentiment_prompt

TASKS = ("classification", "causal-lm")


def ensure_pad_token(tokenizer: Any, model: Any = None) -> Any:
    """Give a tokenizer without a pad token one (``pad_token = eos_token``), as cheat-sheets do.

    GPT-2's tokenizer has no pad token, so ``tokenizer(texts, padding=True)`` and every padding
    collator fail. Reusing the end-of-text token is the usual fix; the attention mask keeps the
    model from reading the padding. The model's ``config.pad_token_id`` is set to match.
    """
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError("the tokenizer has neither a pad nor an eos token: add one with "
                             "tokenizer.add_special_tokens({'pad_token': '[PAD]'}) and resize "
                             "the model's embeddings")
        tokenizer.pad_token = tokenizer.eos_token
    if model is not None and getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return tokenizer


def _check_batch(batch: Any, *columns: str) -> None:
    if not isinstance(batch, Mapping):
        raise TypeError(f"batch must be a dict of columns (what Dataset.map(batched=True) "
                        f"passes), got {type(batch).__name__}")
    missing = [c for c in columns if c not in batch]
    if missing:
        raise ValueError(f"batch has no column(s) {missing}; it has {sorted(batch)}")


def tokenize_and_label(batch: dict, tokenizer: Any, max_length: int = 64) -> dict:
    """Tokenize a batch of ``text`` with truncation (no padding) and copy ``label`` to ``labels``.

    ``Trainer`` hands the model every column whose name the model's ``forward`` accepts; a
    sequence-classification model takes ``labels`` (plural), so that is the name to use.
    """
    _check_batch(batch, "text", "label")
    if not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"max_length must be a positive int, got {max_length!r}")
    enc = tokenizer(list(batch["text"]), truncation=True, max_length=max_length)
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "labels": list(batch["label"])}


def lm_prompt(text: str) -> str:
    """The prompt the causal LM completes with a label word: ``"Review: ...\\nSentiment:"``."""
    return sentiment_prompt(text, instruction=None)


def lm_training_text(text: str, label_word: str, eos_token: str) -> str:
    """One training example for text-to-label: the prompt, the label word, end of text."""
    return f"{lm_prompt(text)} {label_word}{eos_token}"


def tokenize_for_causal_lm(batch: dict, tokenizer: Any, label_names: list[str],
                           max_length: int = 64) -> dict:
    """Tokenize ``"Review: ...\\nSentiment: <label word><eos>"`` for each example.

    No truncation: cutting the end would cut off the label word, the one token the example is
    for. The reviews are far shorter than ``max_length``, so a longer example raises instead.
    """
    _check_batch(batch, "text", "label")
    texts = [lm_training_text(t, label_names[y], tokenizer.eos_token)
             for t, y in zip(batch["text"], batch["label"], strict=True)]
    enc = tokenizer(texts, truncation=False)
    too_long = [len(ids) for ids in enc["input_ids"] if len(ids) > max_length]
    if too_long:
        raise ValueError(f"{len(too_long)} examples are longer than max_length={max_length} "
                         f"tokens (up to {max(too_long)}): raise max_length")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def balanced_subset(ds: Dataset, n: int, seed: int = 0, label_column: str = "label") -> Dataset:
    """``n`` examples with the labels as even as possible, shuffled with ``seed``."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    labels = ds[label_column]
    classes = sorted(set(labels))
    per = [n // len(classes) + (i < n % len(classes)) for i in range(len(classes))]
    shuffled = ds.shuffle(seed=seed)
    picked: list[int] = []
    for cls, k in zip(classes, per, strict=True):
        idx = [i for i, y in enumerate(shuffled[label_column]) if y == cls][:k]
        if len(idx) < k:
            raise ValueError(f"only {len(idx)} examples of label {cls} for {k} requested")
        picked += idx
    return shuffled.select(sorted(picked))


def classification_dataset(ds: Dataset, tokenizer: Any, max_length: int = 64) -> Dataset:
    """Tokenized copy of ``ds`` for sequence classification (``map`` with ``batched=True``)."""
    return ds.map(tokenize_and_label, batched=True, remove_columns=ds.column_names,
                  fn_kwargs={"tokenizer": tokenizer, "max_length": max_length})


def causal_lm_dataset(ds: Dataset, tokenizer: Any, label_names: list[str],
                      max_length: int = 64) -> Dataset:
    """Tokenized copy of ``ds`` for text-to-label causal-LM fine-tuning."""
    return ds.map(tokenize_for_causal_lm, batched=True, remove_columns=ds.column_names,
                  fn_kwargs={"tokenizer": tokenizer, "label_names": list(label_names),
                             "max_length": max_length})


def collator_for(task: str, tokenizer: Any) -> Any:
    """The collator for ``task``: ``"causal-lm"`` (labels = inputs, padding -> -100) or
    ``"classification"`` (pad each batch to its longest example)."""
    if task == "causal-lm":
        ensure_pad_token(tokenizer)
        return DataCollatorForLanguageModeling(tokenizer, mlm=False)
    if task == "classification":
        ensure_pad_token(tokenizer)
        return DataCollatorWithPadding(tokenizer)
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")
