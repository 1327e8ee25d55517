"""Lesson 05 exercises: tokenize and label a batch, the causal-LM loss, ``compute_metrics``.

The ids follow the notebook's order: 05.1 tokenize, 05.2 the causal-LM loss, 05.3
``compute_metrics`` (accuracy and macro-F1); 05.4, a batch of chats for SFT, in
:mod:`lesson05_sft`.
Every case names the wrong ideas it is there to catch (``catches=``); every mistake runs on
every case, because a mistake's hint is shown only when the learner's function gives that
mistake's output on all of them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from transformers import EvalPrediction

from course_utils.finetune import data, metrics
from course_utils.grading import lesson05_sft  # noqa: F401  (05.4, registered at import)
from course_utils.grading.core import Case, Exercise, compare, register
from course_utils.grading.lesson05_tokenizers import grading_tokenizer

# --------------------------------------------------------------------------- 05.1 tokenize


_TEXTS = ("I loved this lamp. It works perfectly!", "The film was terrible.",
          "We stayed at the hotel last week. Nothing special, the service was okay.",
          "Broke after one day. Never again!",
          "This is my review of the book. Great, would recommend it to a friend.",
          "Average.", "The staff was friendly and the game was fine, but the shop was slow.")
_ODD_TEXTS = ('She said "never again", and it\'s true.', "Zoë’s café: naïve — but “fine” ✨",
              "ok", "TRUE or False? None of it worked; 10/10 would NOT buy.")


def _batch(texts, labels):
    return {"text": list(texts), "label": list(labels)}


def _tokenize_cases(rng: torch.Generator):
    bert, gpt = "course-bert", "course-gpt"
    yield Case((_batch(_TEXTS[:3], [2, 0, 1]), grading_tokenizer(bert), 64),
               label="course-bert, three reviews, max_length=64",
               catches="special tokens dropped (add_special_tokens=False); 'label' kept "
                       "instead of 'labels'; labels changed")
    long_review = " ".join(_TEXTS * 3)  # about 300 course-gpt tokens, beyond its 256
    yield Case((_batch([long_review, _TEXTS[1]], [0, 0]), grading_tokenizer(gpt), 128),
               label="course-gpt, a review longer than the model's 256 tokens, max_length=128",
               catches="truncation=True without max_length (cuts at the model's 256, not at "
                       "max_length); no truncation at all")
    yield Case((_batch(_TEXTS, [2, 0, 1, 0, 2, 1, 1]), grading_tokenizer(bert), 8),
               label="course-bert, max_length=8: long reviews must be truncated",
               catches="no truncation; padding in map(); ids cut by hand (the closing [SEP] "
                       "lost); max_length - 2 'for the special tokens'; truncation=True "
                       "without max_length (cuts at the model's 64)")
    yield Case((_batch([_TEXTS[5]], [1]), grading_tokenizer(bert), 16),
               label="course-bert, a batch of one",
               catches="code that needs several texts")
    yield Case((_batch(_TEXTS[2:6], [0, 0, 0, 0]), grading_tokenizer(bert,
                                                                      truncation_side="left"), 6),
               label="course-bert with truncation_side='left', max_length=6, labels all 0",
               catches="ids sliced by hand (ids[:max_length]) ignore the tokenizer's "
                       "truncation side; labels rebuilt or shifted (0 must stay 0)")
    yield Case((_batch(_ODD_TEXTS, [1, 2, 1, 0]), grading_tokenizer(gpt), 10),
               label="course-gpt (no special tokens), quotes and unicode, max_length=10",
               catches="characters cut instead of tokens (text[:max_length]); words split by "
                       "hand; max_length - 2")
    yield Case((_batch([_TEXTS[5], _TEXTS[0], _TEXTS[6]], [1, 2, 1]),
                grading_tokenizer(gpt, padding_side="left")),
               label="course-gpt with padding_side='left', max_length left at its default",
               catches="padding (here it would go on the left); a default max_length other "
                       "than 64")
    yield Case((_batch(_ODD_TEXTS[:2], [0, 2]), grading_tokenizer(bert), 12),
               label="course-bert, quotes and unicode",
               catches="texts cleaned or changed before tokenizing")
    sides = (("course-bert", {}), ("course-bert", {"truncation_side": "left"}),
             ("course-gpt", {}), ("course-gpt", {"padding_side": "left"}))
    pool = _TEXTS + _ODD_TEXTS
    for n in range(4):
        name, settings = sides[n]
        idx = torch.randperm(len(pool), generator=rng)[:5].tolist()
        labels = torch.randint(0, 3, (5,), generator=rng).tolist()
        max_length = int(torch.randint(4, 25, (1,), generator=rng))
        yield Case((_batch([pool[i] for i in idx], labels), grading_tokenizer(name, **settings),
                    max_length),
                   label=f"random batch of 5, {name} {settings or ''}, max_length={max_length}",
                   catches="any tokenizing difference, on random batches and lengths")


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


def _columns(enc, batch):
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "labels": list(batch["label"])}


def _tok_no_truncation(batch, tokenizer, max_length=64):
    return _columns(tokenizer(batch["text"]), batch)


def _tok_pad_max_length(batch, tokenizer, max_length=64):
    return _columns(tokenizer(batch["text"], truncation=True, max_length=max_length,
                              padding="max_length"), batch)


def _tok_pad_longest(batch, tokenizer, max_length=64):
    return _columns(tokenizer(batch["text"], truncation=True, max_length=max_length,
                              padding=True), batch)


def _tok_no_special(batch, tokenizer, max_length=64):
    return _columns(tokenizer(batch["text"], truncation=True, max_length=max_length,
                              add_special_tokens=False), batch)


def _tok_slice_ids(batch, tokenizer, max_length=64):
    enc = tokenizer(batch["text"])
    return _columns({k: [row[:max_length] for row in enc[k]]
                     for k in ("input_ids", "attention_mask")}, batch)


def _tok_cut_characters(batch, tokenizer, max_length=64):
    return _columns(tokenizer([t[:max_length] for t in batch["text"]]), batch)


def _tok_room_for_specials(batch, tokenizer, max_length=64):
    return _columns(tokenizer(batch["text"], truncation=True, max_length=max_length - 2), batch)


def _tok_model_max_length(batch, tokenizer, max_length=64):
    return _columns(tokenizer(batch["text"], truncation=True), batch)


register(Exercise(
    id="05.1", title="tokenize and label a batch", reference=data.tokenize_and_label,
    cases=_tokenize_cases, compare=_compare_encoding,
    hint="enc = tokenizer(batch['text'], truncation=True, max_length=max_length); return "
         "input_ids and attention_mask from enc and labels=batch['label'] (no padding here: "
         "the collator pads each batch). Let the tokenizer add its special tokens and "
         "truncate; don't change the tokenizer.",
    mistakes=[
        (_tok_no_truncation, "Some reviews are longer than max_length: pass truncation=True "
                             "and max_length=max_length to the tokenizer."),
        (_tok_pad_max_length, "Don't pad in map(): padding every example to max_length wastes "
                              "compute. DataCollatorWithPadding pads each batch to its longest "
                              "example, so leave padding off here."),
        (_tok_pad_longest, "Don't pad in map(): the collator pads each training batch itself "
                           "(DataCollatorWithPadding), so leave padding off here."),
        (_tok_no_special, "Keep the special tokens: BERT's classifier reads the [CLS] token "
                          "and expects [SEP] at the end. Leave add_special_tokens at its "
                          "default (True)."),
        (_tok_slice_ids, "Cutting the ids yourself (ids[:max_length]) drops the closing [SEP] "
                         "and ignores the tokenizer's truncation side: let the tokenizer "
                         "truncate (truncation=True, max_length=max_length)."),
        (_tok_cut_characters, "max_length counts tokens, not characters: cutting the text "
                              "(text[:max_length]) keeps the wrong amount. Let the tokenizer "
                              "truncate (truncation=True, max_length=max_length)."),
        (_tok_room_for_specials, "The tokenizer's max_length already counts the special "
                                 "tokens: pass max_length=max_length, not max_length - 2."),
        (_tok_model_max_length, "truncation=True alone cuts at the model's own limit "
                                "(tokenizer.model_max_length); pass max_length=max_length "
                                "too."),
    ],
))

# --------------------------------------------------------------------------- 05.2 LM loss


def _lm_cases(rng: torch.Generator):
    def labels_with_padding(b, t, v, pad_from):
        y = torch.randint(0, v, (b, t), generator=rng)
        for row, start in enumerate(pad_from):
            y[row, start:] = -100
        return y

    def training(logits):  # logits as a model returns them during training
        return logits.requires_grad_(True)

    yield Case((torch.randn(2, 5, 7, generator=rng), torch.randint(0, 7, (2, 5), generator=rng)),
               label="two sequences of 5 tokens, no padding",
               catches="no shift; the shift the wrong way; torch.roll wrapping the first label "
                       "round to the end; the sum instead of the mean")
    yield Case((training(torch.randn(2, 6, 10, generator=rng)),
                labels_with_padding(2, 6, 10, [6, 3])),
               label="batch of 2 (logits require grad), second row padded (-100) after 3 tokens",
               catches="padding trained on (-100 turned into 0); padding counted in the mean; "
                       "a loss detached from the graph (.item(), torch.tensor(...), no_grad)")
    y = labels_with_padding(3, 8, 11, [8, 5, 2])
    y[:, :2] = -100  # a prompt we do not train on
    yield Case((torch.randn(3, 8, 11, generator=rng) * 2, y),
               label="prompt and padding masked with -100, rows of different lengths",
               catches="each row averaged, then the rows (the mean must run over tokens, not "
                       "rows); the sum divided by the batch size")
    yield Case((torch.randn(1, 9, 13, generator=rng), labels_with_padding(1, 9, 13, [6])),
               label="a batch of one sequence, padded after 6 tokens",
               catches="code that needs several rows; padding counted in the mean")
    yield Case((torch.randn(2, 2, 5, generator=rng), torch.randint(0, 5, (2, 2), generator=rng)),
               label="sequences of 2 tokens: one target each",
               catches="off-by-one shifts on the shortest sequences")
    y = labels_with_padding(3, 7, 9, [7, 0, 4])
    yield Case((torch.randn(3, 7, 9, generator=rng), y),
               label="the middle row is all -100 (nothing to learn from it)",
               catches="a per-row mean (0/0 = NaN for the empty row); rows averaged")
    y = labels_with_padding(4, 6, 8, [6, 2, 6, 3])
    yield Case((training(torch.randn(4, 6, 8, generator=rng)), y),
               label="labels[:, 0] are real tokens, padding at the end",
               catches="targets counted in the unshifted labels (labels[:, 0] is never a "
                       "target); the whole (B, T-1) grid as the denominator")
    y = torch.randint(0, 12, (3, 9), generator=rng)
    y[1, :4] = -100  # left padding: the padding comes first
    y[2, :7] = -100
    yield Case((torch.randn(3, 9, 12, generator=rng), y),
               label="left padding: -100 at the start of the rows",
               catches="code that assumes the padding is at the end (cuts each row at its "
                       "length)")
    yield Case((torch.randn(2, 300, 64, generator=rng),
                labels_with_padding(2, 300, 64, [300, 120])),
               label="two long sequences (300 tokens, 64-token vocabulary)",
               catches="a Python loop over positions (slow); anything tuned to short sequences")
    yield Case((torch.randn(2, 6, 20, generator=rng) * 100, labels_with_padding(2, 6, 20, [6, 4])),
               label="extreme logits (spread of several hundred)",
               catches="log(softmax(x)) underflowing to log(0) = -inf; exp() overflowing")
    logits = torch.randn(2, 7, 10, generator=rng)
    logits[..., 7:] = float("-inf")  # banned tokens: never the target, never predicted
    yield Case((logits, labels_with_padding(2, 7, 7, [7, 5])),
               label="three banned tokens whose logits are -inf",
               catches="the target logit picked with a one-hot product (-inf * 0 = NaN)")
    for n in range(2):
        lengths = torch.randint(3, 10, (4,), generator=rng).tolist()
        logits = torch.randn(4, 9, 16, generator=rng) * (1 + 3 * n)
        yield Case((training(logits) if n else logits, labels_with_padding(4, 9, 16, lengths)),
                   label="random batch of 4 with padding",
                   catches="any loss difference, on random batches")
    for _ in range(3):
        b, t, v = (int(torch.randint(lo, hi, (1,), generator=rng))
                   for lo, hi in ((1, 7), (2, 41), (2, 101)))
        scale = float(10 ** (torch.rand(1, generator=rng) * 4.5 - 3))  # 0.001 to about 30
        y = torch.randint(0, v, (b, t), generator=rng)
        y[torch.rand(b, t, generator=rng) < 0.3] = -100  # prompts, padding, anywhere
        y[0, -1] = int(torch.randint(0, v, (1,), generator=rng))  # at least one target
        yield Case((torch.randn(b, t, v, generator=rng) * scale, y),
                   label=f"random shape ({b}, {t}, {v}), logit scale {scale:.3g}, -100 anywhere",
                   catches="any loss difference, over wide ranges of sizes and magnitudes")


def _compare_loss(got, expected, case: Case):
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return (f"the result should be the loss as a 0-d torch.Tensor, but it is a "
                    f"{type(got).__name__}: Trainer calls loss.backward(), so don't call "
                    f".item() or convert to NumPy.")
        if expected.requires_grad and not got.requires_grad:
            return ("your loss has no gradient (requires_grad is False) although the logits "
                    "require one: it was detached from the graph (.item(), torch.tensor(...), "
                    ".detach() or torch.no_grad()), so backward() could not train the model.")
    return compare(got, expected, atol=1e-5, rtol=1e-4)


def _shifted(logits, labels):
    return logits[:, :-1].reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1)


def _ce(logits, labels, reduction="mean"):
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                           ignore_index=-100, reduction=reduction)


def _lm_no_shift(logits, labels):
    return _ce(logits, labels)


def _lm_wrong_direction(logits, labels):
    return _ce(logits[:, 1:], labels[:, :-1])


def _lm_roll(logits, labels):
    return _ce(logits, labels.roll(-1, dims=1))


def _lm_per_row_mean(logits, labels):
    return torch.stack([_ce(logits[i:i + 1, :-1], labels[i:i + 1, 1:])
                        for i in range(len(labels))]).mean()


def _lm_trains_on_padding(logits, labels):
    return _ce(logits[:, :-1], labels[:, 1:].clamp(min=0))


def _lm_sum(logits, labels):
    return _ce(logits[:, :-1], labels[:, 1:], reduction="sum")


def _lm_pad_in_denominator(logits, labels):
    return _ce(logits[:, :-1], labels[:, 1:], reduction="sum") / labels[:, 1:].numel()


def _lm_count_unshifted(logits, labels):
    return _ce(logits[:, :-1], labels[:, 1:], reduction="sum") / (labels != -100).sum()


def _lm_per_sequence(logits, labels):
    return _ce(logits[:, :-1], labels[:, 1:], reduction="sum") / labels.size(0)


def _lm_log_of_softmax(logits, labels):
    flat_logits, flat_labels = _shifted(logits, labels)
    return F.nll_loss(torch.log(flat_logits.softmax(-1)), flat_labels, ignore_index=-100)


def _lm_one_hot(logits, labels):
    flat_logits, flat_labels = _shifted(logits, labels)
    keep = flat_labels != -100
    onehot = F.one_hot(flat_labels.clamp(min=0), flat_logits.size(-1))
    picked = (flat_logits * onehot).sum(-1)
    return (flat_logits.logsumexp(-1) - picked)[keep].mean()


def _lm_as_float(logits, labels):
    return metrics.causal_lm_loss(logits, labels).item()


def _lm_detached(logits, labels):
    return metrics.causal_lm_loss(logits, labels).detach()


register(Exercise(
    id="05.2", title="the causal-LM loss and its label shift", reference=metrics.causal_lm_loss,
    cases=_lm_cases, compare=_compare_loss, atol=1e-5, rtol=1e-4,
    hint="Score the logits at position t against the label at t + 1: logits[:, :-1] with "
         "labels[:, 1:], flattened, in F.cross_entropy(..., ignore_index=-100): one mean over "
         "all the target tokens of the batch. Return that tensor (no .item()).",
    mistakes=[
        (_lm_no_shift, "No shift: the logits at position t predict the *next* token, so compare "
                       "logits[:, :-1] with labels[:, 1:]."),
        (_lm_wrong_direction, "The shift goes the wrong way: drop the *last* logits and the "
                              "*first* labels (logits[:, :-1], labels[:, 1:])."),
        (_lm_roll, "torch.roll wraps around: the last position's logits get scored against "
                   "the FIRST label. Slice instead: logits[:, :-1] and labels[:, 1:]."),
        (_lm_per_row_mean, "You averaged each row, then the rows: rows with more padding then "
                           "count as much as full ones. Average over all target tokens of the "
                           "batch at once (flatten, then one cross_entropy)."),
        (_lm_trains_on_padding, "Targets of -100 (padding, prompts) must be skipped, not turned "
                                "into token 0: use ignore_index=-100."),
        (_lm_sum, "That is the sum over tokens: the loss is the mean over the target tokens "
                  "(reduction='mean', the default)."),
        (_lm_pad_in_denominator, "You divided by every position, padding included: divide by "
                                 "the number of targets that are not -100 (cross_entropy's "
                                 "default mean with ignore_index does it)."),
        (_lm_count_unshifted, "You counted the targets in the unshifted labels: labels[:, 0] "
                              "is never a target. Count labels[:, 1:] != -100 (or let "
                              "cross_entropy take the mean)."),
        (_lm_per_sequence, "You divided the summed loss by the number of sequences: the mean "
                           "runs over the target tokens, not over the rows."),
        (_lm_log_of_softmax, "log(softmax(x)) underflows: a very unlikely target gets "
                             "probability 0 and log(0) = -inf. Use F.log_softmax, or "
                             "F.cross_entropy on the logits directly."),
        (_lm_one_hot, "Multiplying the logits by a one-hot vector turns -inf logits into NaN "
                      "(-inf * 0): pick the target's value with gather or let "
                      "F.cross_entropy do it."),
        (_lm_detached, "Your loss was detached from the graph (.detach(), torch.tensor(...), "
                       "torch.no_grad()): keep the computation in torch so backward() works."),
        (_lm_as_float, "Return the loss tensor itself: .item() gives a Python float, and "
                       "Trainer needs a tensor to call backward() on."),
    ],
))

# --------------------------------------------------------------------------- 05.3 metrics


class ShownEvalPrediction(EvalPrediction):
    """``Trainer``'s ``EvalPrediction``, with a repr the learner's report can show."""

    def __repr__(self) -> str:
        def arrays(x):
            if isinstance(x, tuple):
                return "(" + ", ".join(arrays(a) for a in x) + ")"
            return f"an array of shape {x.shape}, {x.dtype}" if x.size > 12 else repr(x.tolist())
        return (f"EvalPrediction(predictions={arrays(self.predictions)}, "
                f"label_ids={arrays(self.label_ids)})")


def _eval_pred(logits, labels, extra=None):
    """An ``EvalPrediction`` as ``Trainer`` builds it: NumPy float32 logits (a tuple when the
    model returns more outputs) and int64 label ids."""
    logits = np.asarray(logits, dtype=np.float32)
    predictions = logits if extra is None else (logits, np.asarray(extra, dtype=np.float32))
    return ShownEvalPrediction(predictions=predictions,
                                label_ids=np.asarray(labels, dtype=np.int64))


def _logits_for(preds, num_classes, rng, margin=3.0):
    """Logits whose argmax is ``preds``, with noise below the margin."""
    noise = torch.rand(len(preds), num_classes, generator=rng).numpy()
    logits = noise + margin * np.eye(num_classes)[np.asarray(preds)]
    return logits.astype(np.float32)


def _metrics_cases(rng: torch.Generator):
    yield Case((_eval_pred([[5.0, 0.0, 0.0], [6.0, 1.0, 0.0], [0.0, 0.0, 2.0]], [0, 0, 2]),),
               label="3 examples, 3 classes: a square array, every prediction right",
               catches="argmax over the examples (axis=0), which runs without an error only on "
                       "a square array; the error rate (0.0)")
    # scikit-learn's documented example: accuracy 1/3, macro-F1 0.2667; the micro-F1 (0.333),
    # the F1 of class 1 (0) and the F1 of macro precision and recall (0.2778) all differ.
    yield Case((_eval_pred(_logits_for([0, 2, 1, 0, 0, 1], 3, rng), [0, 1, 2, 0, 1, 2]),),
               label="6 examples, 3 classes (scikit-learn's f1_score example)",
               catches="micro-F1 (= accuracy) instead of macro; the F1 of one class; the F1 of "
                       "the mean precision and mean recall; the count instead of the fraction")
    yield Case((_eval_pred(_logits_for([0, 0, 0, 0, 0, 0, 1, 0, 1, 2], 3, rng),
                           [0, 0, 0, 0, 0, 1, 1, 1, 2, 2]),),
               label="imbalanced: 5 of 10 reviews in class 0",
               catches="the weighted average (by class frequency) instead of the plain mean")
    yield Case((_eval_pred(_logits_for([0, 1, 1, 0, 1, 0, 0], 3, rng), [0, 1, 2, 0, 2, 1, 0]),),
               label="class 2 is never predicted",
               catches="the mean over the predicted classes only (the never-predicted class "
                       "must count with F1 0)")
    yield Case((_eval_pred(_logits_for([0, 2, 1, 1, 0, 2, 3], 4, rng), [0, 2, 1, 1, 0, 1, 0]),),
               label="class 3 is predicted once but never true",
               catches="the mean over the true classes only (a wrongly predicted class counts "
                       "with F1 0)")
    yield Case((_eval_pred(_logits_for([0, 1, 1, 0, 2, 1], 4, rng), [0, 1, 2, 0, 2, 1]),),
               label="4 logit columns, class 3 neither true nor predicted",
               catches="the mean over every logit column (a class that never occurs is not "
                       "in the average, as in scikit-learn)")
    logits = _logits_for([1, 0, 2, 2, 1, 0, 1, 2], 3, rng)
    yield Case((_eval_pred(logits, [1, 0, 2, 1, 1, 0, 0, 2],
                           extra=torch.randn(8, 4, 5, generator=rng).numpy()),),
               label="predictions come as a tuple (logits, hidden states)",
               catches="the tuple not unpacked: the logits are predictions[0]")
    yield Case((_eval_pred(_logits_for([0, 1, 2, 2, 0, 1, 2, 0, 1], 3, rng),
                           [0, 1, -100, 2, -100, 1, -100, 1, 1]),),
               label="three rows labelled -100 (to be skipped, as the loss skips them)",
               catches="-100 rows counted as wrong, or -100 counted as a class")
    yield Case((_eval_pred(_logits_for([1, 0, 1, 1, 0, 1], 2, rng), [1, 0, 0, 1, 0, 0]),),
               label="two classes",
               catches="the F1 of class 1 only (the binary F1), not the mean over both classes")
    yield Case((_eval_pred(np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0], [3.0, 3.0, 3.0],
                                     [0.5, 0.5, 0.1]]), [1, 2, 0, 0]),),
               label="ties: argmax picks the first of equal logits",
               catches="'the label's logit is the largest' counting a tie as right")
    yield Case((_eval_pred(np.array([[1000.0, 2000.0, -5.0], [3000.0, 100.0, 2500.0],
                                     [-80.0, 90.0, 95.0], [1e4, -1e4, 0.0]]), [1, 0, 2, 2]),),
               label="extreme logits (in the thousands)",
               catches="exp() or a softmax by hand overflowing before the argmax")
    yield Case((_eval_pred([[-0.5, 2.0, 0.1]], [1]),), label="a single example, right",
               catches="code that needs several rows")
    yield Case((_eval_pred(_logits_for([2, 0, 1, 2], 3, rng), [2, 0, 1, 2]),),
               label="every prediction right (accuracy and macro-F1 are 1.0)",
               catches="the error rate (0.0)")
    logits = _logits_for(torch.randint(0, 7, (1000,), generator=rng).numpy(), 7, rng, margin=0.4)
    yield Case((_eval_pred(logits, np.zeros(1000, dtype=np.int64)),),
               label="1000 examples, 7 classes, every label 0",
               catches="labels of 0 mishandled; classes absent from the labels dropped")
    for _ in range(3):
        n = int(torch.randint(2, 400, (1,), generator=rng))
        c = int(torch.randint(2, 12, (1,), generator=rng))
        scale = float(10 ** (torch.rand(1, generator=rng) * 4 - 2))
        labels = torch.randint(0, c, (n,), generator=rng)
        labels[torch.rand(n, generator=rng) < 0.1] = -100
        labels[0] = 0
        yield Case((_eval_pred((torch.randn(n, c, generator=rng) * scale).numpy(),
                               labels.numpy()),),
                   label=f"random ({n}, {c}), logit scale {scale:.3g}, some labels -100",
                   catches="any difference in accuracy or macro-F1, over sizes and magnitudes")


def _compare_metrics(got, expected, case: Case):
    if not isinstance(got, Mapping):
        return (f"compute_metrics should return a dict of metric names to numbers, e.g. "
                f"{{'accuracy': 0.8, 'macro_f1': 0.75}}, but it returned a {type(got).__name__}.")
    missing = [k for k in expected if k not in got]
    if missing:
        return (f"the result has no {missing} key; it has {sorted(got)}. Trainer logs each "
                f"key as eval_<key>: return {{'accuracy': ..., 'macro_f1': ...}}.")
    for key in expected:
        value = got[key]
        if _kind(value) != _kind(expected[key]):  # (expected is a mistake's answer when matching)
            return (f"result[{key!r}] is a {type(value).__name__}: return plain Python floats "
                    f"(float(...)), which print, compare and go into JSON logs as they are.")
        msg = compare(_number(value), _number(expected[key]), atol=1e-6, rtol=1e-6,
                      path=f"result[{key!r}]")
        if msg:
            return msg
    return None


def _kind(value) -> str:
    if isinstance(value, torch.Tensor):
        return "tensor"
    if isinstance(value, np.ndarray | np.generic) and not isinstance(value, float):
        return "numpy"  # np.float64 is a Python float and passes as one
    return "bool" if isinstance(value, bool) else "number"


def _number(got):
    if isinstance(got, torch.Tensor) and got.dim() == 0:
        return got.item()
    if isinstance(got, np.ndarray) and got.ndim == 0 or isinstance(got, np.generic):
        return got.item()
    return got


def _unpacked(eval_pred, skip_ignored=True):
    logits, labels = eval_pred.predictions, np.asarray(eval_pred.label_ids)
    if isinstance(logits, tuple):
        logits = logits[0]
    preds = np.asarray(logits).argmax(axis=-1)
    if skip_ignored:
        keep = labels != -100
        preds, labels = preds[keep], labels[keep]
    return preds, labels


def _per_class(preds, labels, classes):
    """Precision, recall and F1 of each class (0 where undefined)."""
    out = []
    for c in classes:
        tp = np.sum((preds == c) & (labels == c))
        n_pred, n_true = np.sum(preds == c), np.sum(labels == c)
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_true if n_true else 0.0
        out.append((precision, recall, 2 * tp / (n_pred + n_true) if n_pred + n_true else 0.0))
    return np.array(out).reshape(-1, 3)


def _metrics_of(preds, labels, f1):
    return {"accuracy": float(np.mean(preds == labels)), "macro_f1": float(f1)}


def _cm_micro(eval_pred):
    preds, labels = _unpacked(eval_pred)
    return _metrics_of(preds, labels, np.mean(preds == labels))


def _cm_weighted(eval_pred):
    preds, labels = _unpacked(eval_pred)
    classes = np.union1d(preds, labels)
    weights = np.array([np.sum(labels == c) for c in classes])
    return _metrics_of(preds, labels, np.sum(_per_class(preds, labels, classes)[:, 2] * weights)
                       / weights.sum())


def _cm_one_class(eval_pred):
    preds, labels = _unpacked(eval_pred)
    return _metrics_of(preds, labels, _per_class(preds, labels, [1])[0, 2])


def _cm_f1_of_means(eval_pred):
    preds, labels = _unpacked(eval_pred)
    p, r, _ = _per_class(preds, labels, np.union1d(preds, labels)).mean(axis=0)
    return _metrics_of(preds, labels, 2 * p * r / (p + r) if p + r else 0.0)


def _cm_predicted_only(eval_pred):
    preds, labels = _unpacked(eval_pred)
    return _metrics_of(preds, labels, _per_class(preds, labels, np.unique(preds))[:, 2].mean())


def _cm_true_only(eval_pred):
    preds, labels = _unpacked(eval_pred)
    return _metrics_of(preds, labels, _per_class(preds, labels, np.unique(labels))[:, 2].mean())


def _cm_counts_ignored(eval_pred):
    preds, labels = _unpacked(eval_pred, skip_ignored=False)
    return _metrics_of(preds, labels, metrics.macro_f1(preds, labels))


def _cm_numpy_values(eval_pred):
    preds, labels = _unpacked(eval_pred)
    return {"accuracy": np.float32(np.mean(preds == labels)),
            "macro_f1": np.float32(metrics.macro_f1(preds, labels))}


def _cm_tensor_values(eval_pred):
    preds, labels = _unpacked(eval_pred)
    return {"accuracy": torch.tensor(float(np.mean(preds == labels))),
            "macro_f1": torch.tensor(metrics.macro_f1(preds, labels))}


def _cm_percent(eval_pred):
    preds, labels = _unpacked(eval_pred)
    return {"accuracy": 100 * float(np.mean(preds == labels)),
            "macro_f1": 100 * metrics.macro_f1(preds, labels)}


register(Exercise(
    id="05.3", title="compute_metrics: accuracy and macro-F1", reference=metrics.compute_metrics,
    cases=_metrics_cases, compare=_compare_metrics, atol=1e-6, rtol=1e-6,
    hint="logits = eval_pred.predictions (its first item if it is a tuple); labels = "
         "eval_pred.label_ids. Keep the rows whose label is not -100; preds = "
         "logits.argmax(axis=-1). accuracy = mean(preds == labels); for each class in labels "
         "OR preds, F1 = 2*TP / (2*TP + FP + FN); macro_f1 = the plain mean of those F1s. Return "
         "{'accuracy': float(...), 'macro_f1': float(...)}.",
    mistakes=[
        (_cm_micro, "That macro_f1 is the micro-F1, which for one label per example equals the "
                    "accuracy: compute the F1 of each class separately, then their plain mean."),
        (_cm_weighted, "That is the weighted F1 (each class weighted by how often it is true): "
                       "macro-F1 is the plain mean, so a rare class counts as much as a common "
                       "one."),
        (_cm_one_class, "That is the F1 of class 1 alone (the binary F1): macro-F1 averages the "
                        "F1 of every class."),
        (_cm_f1_of_means, "You took the F1 of the mean precision and the mean recall: macro-F1 "
                          "is the mean of the per-class F1 scores (compute F1 per class first)."),
        (_cm_predicted_only, "A class the model never predicts still counts, with F1 0: average "
                             "over every class in the labels or the predictions, not only the "
                             "predicted ones."),
        (_cm_true_only, "A class that is predicted but never true still counts, with F1 0: "
                        "average over every class in the labels or the predictions."),
        (_cm_counts_ignored, "Rows labelled -100 are not examples to score (the loss ignores "
                             "them too): drop them before counting, keep = labels != -100."),
        (_cm_numpy_values, "Return plain Python floats: wrap each value in float(...), not a "
                           "NumPy float32."),
        (_cm_tensor_values, "Return plain Python floats: wrap each value in float(...), not a "
                            "torch tensor."),
        (_cm_percent, "Return fractions between 0 and 1, not percentages (no * 100)."),
    ],
))
