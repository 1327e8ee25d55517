"""Known-wrong answers to lesson 05's exercises: the grader must reject each, saying why.

Written here independently of the grader's own list of mistakes, so a grader that stops
recognising one of them fails this test.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

from course_utils.finetune import accuracy_from_logits, causal_lm_loss, tokenize_and_label
from course_utils.grading import get_exercise, run_exercise


def _verdict(ex_id, fn):
    return run_exercise(get_exercise(ex_id), fn)


# ---- 05.1 tokenize and label
def tok_forgets_truncation(batch, tokenizer, max_length=64):
    out = dict(tokenizer(batch["text"]))
    out["labels"] = batch["label"]
    return out


def tok_pads_everything(batch, tokenizer, max_length=64):
    out = dict(tokenizer(batch["text"], padding="max_length", truncation=True,
                         max_length=max_length))
    out["labels"] = batch["label"]
    return out


def tok_keeps_label_name(batch, tokenizer, max_length=64):
    out = dict(tokenizer(batch["text"], truncation=True, max_length=max_length))
    out["label"] = batch["label"]
    return out


def tok_labels_off_by_one(batch, tokenizer, max_length=64):
    out = dict(tokenizer(batch["text"], truncation=True, max_length=max_length))
    out["labels"] = [y + 1 for y in batch["label"]]
    return out


def tok_batch_encoding(batch, tokenizer, max_length=64):
    """Correct, and returns the tokenizer's BatchEncoding rather than a plain dict."""
    enc = tokenizer(batch["text"], truncation=True, max_length=max_length)
    enc["labels"] = batch["label"]
    return enc


# ---- 05.2 accuracy
def acc_over_examples(logits, labels):
    return float(np.mean(np.argmax(np.asarray(logits), axis=0) == np.asarray(labels)))


def acc_number_right(logits, labels):
    return int((torch.argmax(logits, 1) == labels).sum())


def acc_floor_division(logits, labels):
    return int((torch.argmax(logits, 1) == labels).sum()) // labels.numel()


def acc_max_values(logits, labels):
    return (torch.max(logits, 1)[0] == labels).double().mean().item()


def acc_error_rate(logits, labels):
    return 1.0 - (torch.argmax(logits, 1) == labels).double().mean().item()


def acc_numpy(logits, labels):
    """Correct, computed in NumPy as a compute_metrics function would."""
    return float((np.asarray(logits).argmax(-1) == np.asarray(labels)).mean())


# ---- 05.3 causal LM loss
def lm_unshifted(logits, labels):
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten())


def lm_shift_backwards(logits, labels):
    return F.cross_entropy(logits[:, 1:].flatten(0, 1), labels[:, :-1].flatten())


def lm_mean_of_rows(logits, labels):
    rows = [F.cross_entropy(lg[:-1], lb[1:]) for lg, lb in zip(logits, labels, strict=True)]
    return sum(rows) / len(rows)


def lm_pads_are_zero(logits, labels):
    labels = torch.where(labels == -100, torch.zeros_like(labels), labels)
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten())


def lm_summed(logits, labels):
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(),
                           reduction="sum")


def lm_manual(logits, labels):
    """Correct, written with log_softmax and a mask."""
    logp = logits[:, :-1].log_softmax(-1)
    target = labels[:, 1:]
    keep = target != -100
    picked = logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return -(picked * keep).sum() / keep.sum()


@pytest.mark.parametrize("ex_id, fn, words", [
    ("05.1", tok_forgets_truncation, "truncation=True"),
    ("05.1", tok_pads_everything, "Don't pad in map()"),
    ("05.1", tok_keeps_label_name, "no ['labels'] column"),
    ("05.1", tok_labels_off_by_one, "result['labels']"),
    ("05.2", acc_over_examples, "dim=0"),
    ("05.2", acc_number_right, "number of correct predictions"),
    ("05.2", acc_floor_division, "Integer division"),
    ("05.2", acc_max_values, "*index* of the largest logit"),
    ("05.2", acc_error_rate, "error rate"),
    ("05.3", lm_unshifted, "No shift"),
    ("05.3", lm_shift_backwards, "wrong way"),
    ("05.3", lm_mean_of_rows, "averaged each row"),
    ("05.3", lm_pads_are_zero, "ignore_index=-100"),
    ("05.3", lm_summed, "the sum over tokens"),
])
def test_known_wrong_answers_are_rejected_with_a_reason(ex_id, fn, words):
    result = _verdict(ex_id, fn)
    assert result.status == "failed"
    assert words in result.message


@pytest.mark.parametrize("ex_id, fn", [
    ("05.1", tokenize_and_label), ("05.1", tok_batch_encoding),
    ("05.2", accuracy_from_logits), ("05.2", acc_numpy),
    ("05.3", causal_lm_loss), ("05.3", lm_manual),
])
def test_references_and_other_correct_answers_pass(ex_id, fn):
    assert _verdict(ex_id, fn).passed


def test_unsolved_exercise_reads_not_attempted():
    def stub(*args, **kwargs):
        raise NotImplementedError
    for ex_id in ("05.1", "05.2", "05.3"):
        assert _verdict(ex_id, stub).status == "not attempted"


def test_reference_loss_is_what_gpt2_computes_from_labels():
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=40, n_positions=16, n_embd=16, n_layer=1,
                                       n_head=2)).eval()
    ids = torch.randint(0, 40, (3, 9))
    labels = ids.clone()
    labels[1, 6:] = -100
    labels[2, :3] = -100
    out = model(input_ids=ids, labels=labels)
    torch.testing.assert_close(causal_lm_loss(out.logits, labels), out.loss)
