"""Lesson 05 exercises: tokenize and label a batch, accuracy from logits, the causal-LM loss."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from course_utils.finetune import data, metrics
from course_utils.grading.core import Case, Exercise, compare, register

# --------------------------------------------------------------------------- 05.1 tokenize


class _SharedTokenizer(PreTrainedTokenizerFast):
    """The grader's tokenizer: copying it returns itself (the grader copies every argument,
    and a tokenizer has no meaningful ``==`` to check it was left unchanged)."""

    def __deepcopy__(self, memo):
        return self


_WORDS = ("i we the a it was is my and with to of for at on this review last week new good "
          "great bad terrible okay fine film book hotel lamp game shop works perfectly never "
          "again broke after one day loved nothing special average service slow staff friendly "
          "would recommend it . ! ,").split()


@lru_cache(maxsize=1)
def grading_tokenizer() -> _SharedTokenizer:
    """A small word-level tokenizer (lower-cased words, punctuation split off)."""
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", *dict.fromkeys(_WORDS)])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    from tokenizers import normalizers

    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Punctuation()])
    return _SharedTokenizer(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                            model_input_names=["input_ids", "attention_mask"])


_TEXTS = ("I loved this lamp. It works perfectly!", "The film was terrible.",
          "We stayed at the hotel last week. Nothing special, the service was okay.",
          "Broke after one day. Never again!",
          "This is my review of the book. Great, would recommend it to a friend.",
          "Average.", "The staff was friendly and the game was fine, but the shop was slow.")


def _tokenize_cases(rng: torch.Generator):
    tok = grading_tokenizer()
    yield Case(({"text": list(_TEXTS[:3]), "label": [2, 0, 1]}, tok, 64),
               label="three reviews, max_length=64")
    yield Case(({"text": list(_TEXTS), "label": [2, 0, 1, 0, 2, 1, 1]}, tok, 6),
               label="max_length=6: long reviews must be truncated")
    yield Case(({"text": [_TEXTS[5]], "label": [1]}, tok, 16), label="a batch of one")
    for n in range(3):
        idx = torch.randperm(len(_TEXTS), generator=rng)[:4].tolist()
        labels = torch.randint(0, 3, (4,), generator=rng).tolist()
        yield Case(({"text": [_TEXTS[i] for i in idx], "label": labels}, tok, 8 + 4 * n),
                   label=f"random batch of 4, max_length={8 + 4 * n}")


def _as_plain(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "tolist"):  # numpy
        return value.tolist()
    return [list(v) if isinstance(v, tuple) else v for v in value]


def _compare_encoding(got, expected, case: Case):
    if not isinstance(got, Mapping):
        return f"the result should be a dict of columns, but it is a {type(got).__name__}."
    missing = [k for k in expected if k not in got]
    if missing:
        return (f"the result has no {missing} column; it has {sorted(got)}. Expected "
                f"{sorted(expected)}.")
    for key in expected:
        try:
            value = _as_plain(got[key])
        except TypeError:
            return f"result[{key!r}] should be a list, but it is a {type(got[key]).__name__}."
        msg = compare(value, expected[key], path=f"result[{key!r}]")
        if msg:
            return msg
    return None


def _tok_no_truncation(batch, tokenizer, max_length=64):
    enc = tokenizer(batch["text"])
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "labels": batch["label"]}


def _tok_pad_max_length(batch, tokenizer, max_length=64):
    enc = tokenizer(batch["text"], truncation=True, max_length=max_length, padding="max_length")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "labels": batch["label"]}


def _tok_pad_longest(batch, tokenizer, max_length=64):
    enc = tokenizer(batch["text"], truncation=True, max_length=max_length, padding=True)
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "labels": batch["label"]}


register(Exercise(
    id="05.1", title="tokenize and label a batch", reference=data.tokenize_and_label,
    cases=_tokenize_cases, compare=_compare_encoding,
    hint="enc = tokenizer(batch['text'], truncation=True, max_length=max_length); return "
         "input_ids and attention_mask from enc and labels=batch['label'] (no padding here: "
         "the collator pads each batch).",
    mistakes=[
        (_tok_no_truncation, "Some reviews are longer than max_length: pass truncation=True "
                             "and max_length=max_length to the tokenizer."),
        (_tok_pad_max_length, "Don't pad in map(): padding every example to max_length wastes "
                              "compute. DataCollatorWithPadding pads each batch to its longest "
                              "example, so leave padding off here."),
        (_tok_pad_longest, "Don't pad in map(): the collator pads each training batch itself "
                           "(DataCollatorWithPadding), so leave padding off here."),
    ],
))

# --------------------------------------------------------------------------- 05.2 accuracy


def _accuracy_cases(rng: torch.Generator):
    # Made so that each known mistake gives a different number on this first case.
    yield Case((torch.tensor([[0.0, -1.0, -2.0, -3.0], [-1.0, 1.0, -2.0, -3.0],
                              [-3.0, -2.0, 2.5, -1.0], [-0.5, -1.0, -2.0, -0.6]]),
                torch.tensor([0, 1, 2, 3])), label="4 examples, 4 classes, three right")
    yield Case((torch.tensor([[2.0, 0.1, -1.0], [0.0, 3.0, 1.0]]), torch.tensor([0, 2])),
               label="two examples, one right")
    yield Case((torch.tensor([[-1.0, 4.0]]), torch.tensor([0])), label="one example, wrong")
    for n in (8, 5, 13):
        logits = torch.randn(n, 3, generator=rng) * 2
        labels = torch.randint(0, 3, (n,), generator=rng)
        yield Case((logits, labels), label=f"{n} random examples, 3 classes")
    yield Case((torch.randn(6, 4, generator=rng), torch.randint(0, 4, (6,), generator=rng)),
               label="6 examples, 4 classes")


def _acc_axis0(logits, labels):
    return (logits.argmax(dim=0) == labels).float().mean().item()


def _acc_count(logits, labels):
    return (logits.argmax(dim=-1) == labels).sum().item()


def _acc_int_div(logits, labels):
    return (logits.argmax(dim=-1) == labels).sum().item() // len(labels)


def _acc_values(logits, labels):
    return (logits.max(dim=-1).values == labels).float().mean().item()


def _acc_error_rate(logits, labels):
    return (logits.argmax(dim=-1) != labels).float().mean().item()


register(Exercise(
    id="05.2", title="accuracy from logits", reference=metrics.accuracy_from_logits,
    cases=_accuracy_cases, atol=1e-6, rtol=1e-6,
    hint="predictions = logits.argmax(dim=-1) (one class per row); accuracy is the mean of "
         "(predictions == labels) as floats, returned as a Python float.",
    mistakes=[
        (_acc_axis0, "argmax ran over the examples (dim=0): each row is one example, so take "
                     "the argmax over the classes, dim=-1."),
        (_acc_count, "That is the number of correct predictions: divide by the number of "
                     "examples to get a fraction between 0 and 1."),
        (_acc_int_div, "Integer division (//) rounds the fraction down to 0 or 1: use a float "
                       "mean, e.g. (preds == labels).float().mean()."),
        (_acc_values, "You compared the largest logit *value* with the label: the prediction "
                      "is the *index* of the largest logit (argmax)."),
        (_acc_error_rate, "That is the error rate: count predictions equal to the label."),
    ],
))

# --------------------------------------------------------------------------- 05.3 LM loss


def _lm_cases(rng: torch.Generator):
    def labels_with_padding(b, t, v, pad_from):
        y = torch.randint(0, v, (b, t), generator=rng)
        for row, start in enumerate(pad_from):
            y[row, start:] = -100
        return y

    yield Case((torch.randn(1, 5, 7, generator=rng), torch.randint(0, 7, (1, 5), generator=rng)),
               label="one sequence of 5 tokens, no padding")
    yield Case((torch.randn(2, 6, 10, generator=rng), labels_with_padding(2, 6, 10, [6, 3])),
               label="batch of 2, second row padded (-100) after 3 tokens")
    y = labels_with_padding(3, 8, 11, [8, 5, 2])
    y[:, :2] = -100  # a prompt we do not train on
    yield Case((torch.randn(3, 8, 11, generator=rng) * 2, y),
               label="prompt and padding masked with -100, rows of different lengths")
    yield Case((torch.randn(2, 2, 5, generator=rng), torch.randint(0, 5, (2, 2), generator=rng)),
               label="sequences of 2 tokens: one target each")
    for _ in range(2):
        yield Case((torch.randn(4, 9, 16, generator=rng),
                    labels_with_padding(4, 9, 16, torch.randint(3, 10, (4,),
                                                                generator=rng).tolist())),
                   label="random batch of 4 with padding")


def _ce(logits, labels):
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                           ignore_index=-100)


def _lm_no_shift(logits, labels):
    return _ce(logits, labels)


def _lm_wrong_direction(logits, labels):
    return _ce(logits[:, 1:], labels[:, :-1])


def _lm_per_row_mean(logits, labels):
    return torch.stack([_ce(logits[i:i + 1, :-1], labels[i:i + 1, 1:])
                        for i in range(len(labels))]).mean()


def _lm_trains_on_padding(logits, labels):
    return _ce(logits[:, :-1], labels[:, 1:].clamp(min=0))


def _lm_sum(logits, labels):
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)),
                           labels[:, 1:].reshape(-1), ignore_index=-100, reduction="sum")


register(Exercise(
    id="05.3", title="the causal-LM loss and its label shift", reference=metrics.causal_lm_loss,
    cases=_lm_cases, atol=1e-5, rtol=1e-4,
    hint="Score the logits at position t against the label at t + 1: logits[:, :-1] with "
         "labels[:, 1:], flattened, in F.cross_entropy(..., ignore_index=-100).",
    mistakes=[
        (_lm_no_shift, "No shift: the logits at position t predict the *next* token, so compare "
                       "logits[:, :-1] with labels[:, 1:]."),
        (_lm_wrong_direction, "The shift goes the wrong way: drop the *last* logits and the "
                              "*first* labels (logits[:, :-1], labels[:, 1:])."),
        (_lm_per_row_mean, "You averaged each row, then the rows: rows with more padding then "
                           "count as much as full ones. Average over all target tokens of the "
                           "batch at once (flatten, then one cross_entropy)."),
        (_lm_trains_on_padding, "Targets of -100 (padding, prompts) must be skipped, not turned "
                                "into token 0: use ignore_index=-100."),
        (_lm_sum, "That is the sum over tokens: the loss is the mean over the target tokens "
                  "(reduction='mean', the default)."),
    ],
))
