"""Known-wrong answers to lesson 05's exercises: the grader must reject each, saying why.

Written here independently of the grader's own list of mistakes, so a grader that stops
recognising one of them fails this test.
"""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _grading_helpers import advice_on_every_case, cases_of
from _tiny_lm import tiny_gpt2
from transformers import AutoTokenizer, EvalPrediction

from course_utils.finetune import causal_lm_loss, compute_metrics, tokenize_and_label
from course_utils.grading import get_exercise, run_exercise
from course_utils.pretrained import asset_path


def _verdict(ex_id, fn):
    return run_exercise(get_exercise(ex_id), fn)




def _assert_rejected_saying(ex_id, fn, says):
    verdict = _verdict(ex_id, fn)
    assert verdict.status == "failed", verdict.message
    assert says in verdict.message, verdict.message
    ex = get_exercise(ex_id)
    if any(says in advice for advice in [ex.hint, *(a for _, a in ex.mistakes)]):
        # the phrase is advice: it must also be the advice when every case is compared
        assert says in advice_on_every_case(ex_id, fn)


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


def tok_one_by_one(batch, tokenizer, max_length=64):
    """Correct too: one text at a time, labels as a tensor (map() accepts either)."""
    ids, masks = [], []
    for text in batch["text"]:
        enc = tokenizer(text, truncation=True, max_length=max_length)
        ids.append(enc["input_ids"])
        masks.append(enc["attention_mask"])
    return {"input_ids": ids, "attention_mask": masks, "labels": torch.tensor(batch["label"])}


def tok_no_special_tokens(batch, tokenizer, max_length=64):
    enc = tokenizer(batch["text"], truncation=True, max_length=max_length,
                    add_special_tokens=False)
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "labels": batch["label"]}


def tok_cut_ids_myself(batch, tokenizer, max_length=64):
    enc = tokenizer(batch["text"])
    return {"input_ids": [ids[:max_length] for ids in enc["input_ids"]],
            "attention_mask": [m[:max_length] for m in enc["attention_mask"]],
            "labels": batch["label"]}


def tok_cut_the_text(batch, tokenizer, max_length=64):
    enc = tokenizer([text[:max_length] for text in batch["text"]])
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "labels": batch["label"]}


def tok_room_for_cls_sep(batch, tokenizer, max_length=64):
    enc = tokenizer(batch["text"], truncation=True, max_length=max_length - 2)
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "labels": batch["label"]}


def tok_truncation_without_length(batch, tokenizer, max_length=64):
    enc = tokenizer(batch["text"], truncation=True)
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "labels": batch["label"]}


def tok_sets_padding_side(batch, tokenizer, max_length=64):
    tokenizer.padding_side = "right"  # "to be safe"
    enc = tokenizer(batch["text"], truncation=True, max_length=max_length)
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "labels": batch["label"]}


def tok_sets_model_max_length(batch, tokenizer, max_length=64):
    tokenizer.model_max_length = max_length
    enc = tokenizer(batch["text"], truncation=True)
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "labels": batch["label"]}


def tok_tensors(batch, tokenizer, max_length=64):
    enc = tokenizer(batch["text"], truncation=True, max_length=max_length, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "labels": torch.tensor(batch["label"])}


def tok_split_words(batch, tokenizer, max_length=64):
    ids = [tokenizer.convert_tokens_to_ids(text.lower().split())[:max_length]
           for text in batch["text"]]
    return {"input_ids": ids, "attention_mask": [[1] * len(row) for row in ids],
            "labels": batch["label"]}


# ---- 05.3 compute_metrics
def _logits_labels(eval_pred):
    logits = eval_pred.predictions
    if isinstance(logits, tuple):
        logits = logits[0]
    return np.asarray(logits), np.asarray(eval_pred.label_ids)


def _f1_per_class(preds, labels, classes):
    scores = []
    for c in classes:
        tp = int(((preds == c) & (labels == c)).sum())
        fp = int(((preds == c) & (labels != c)).sum())
        fn = int(((preds != c) & (labels == c)).sum())
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return scores


def cm_argmax_over_examples(eval_pred):
    logits, labels = _logits_labels(eval_pred)
    preds = logits.argmax(axis=0)
    keep = labels != -100
    preds, labels = preds[keep], labels[keep]
    f1 = np.mean(_f1_per_class(preds, labels, np.union1d(preds, labels)))
    return {"accuracy": float((preds == labels).mean()), "macro_f1": float(f1)}


def cm_micro_f1(eval_pred):
    logits, labels = _logits_labels(eval_pred)
    keep = labels != -100
    preds, labels = logits.argmax(-1)[keep], labels[keep]
    tp = (preds == labels).sum()
    fp = fn = (preds != labels).sum()  # summed over classes
    return {"accuracy": float((preds == labels).mean()),
            "macro_f1": float(2 * tp / (2 * tp + fp + fn))}


def cm_positive_class_f1(eval_pred):
    logits, labels = _logits_labels(eval_pred)
    keep = labels != -100
    preds, labels = logits.argmax(-1)[keep], labels[keep]
    return {"accuracy": float((preds == labels).mean()),
            "macro_f1": float(_f1_per_class(preds, labels, [1])[0])}


def cm_tuple_not_unpacked(eval_pred):
    logits, labels = np.array(eval_pred.predictions), np.asarray(eval_pred.label_ids)
    keep = labels != -100
    preds, labels = logits.argmax(-1)[keep], labels[keep]
    f1 = np.mean(_f1_per_class(preds, labels, np.union1d(preds, labels)))
    return {"accuracy": float((preds == labels).mean()), "macro_f1": float(f1)}


def cm_keeps_ignored_rows(eval_pred):
    logits, labels = _logits_labels(eval_pred)
    preds = logits.argmax(-1)
    f1 = np.mean(_f1_per_class(preds, labels, np.union1d(preds, labels)))
    return {"accuracy": float((preds == labels).mean()), "macro_f1": float(f1)}


def cm_numpy_scalars(eval_pred):
    logits, labels = _logits_labels(eval_pred)
    keep = labels != -100
    preds, labels = logits.argmax(-1)[keep], labels[keep]
    f1 = np.mean(np.array(_f1_per_class(preds, labels, np.union1d(preds, labels)),
                          dtype=np.float32))
    return {"accuracy": (preds == labels).mean(dtype=np.float32), "macro_f1": f1}


def cm_torch_tensors(eval_pred):
    logits, labels = _logits_labels(eval_pred)
    logits, labels = torch.from_numpy(logits), torch.from_numpy(labels)
    keep = labels != -100
    preds, labels = logits.argmax(-1)[keep], labels[keep]
    classes = torch.unique(torch.cat([preds, labels]))
    f1 = torch.stack([2 * ((preds == c) & (labels == c)).sum() /
                      ((preds == c).sum() + (labels == c).sum()) for c in classes]).mean()
    return {"accuracy": (preds == labels).float().mean(), "macro_f1": f1}


def cm_only_predicted_classes(eval_pred):
    logits, labels = _logits_labels(eval_pred)
    keep = labels != -100
    preds, labels = logits.argmax(-1)[keep], labels[keep]
    f1 = np.mean(_f1_per_class(preds, labels, np.unique(preds)))
    return {"accuracy": float((preds == labels).mean()), "macro_f1": float(f1)}


def cm_weighted_by_support(eval_pred):
    logits, labels = _logits_labels(eval_pred)
    keep = labels != -100
    preds, labels = logits.argmax(-1)[keep], labels[keep]
    classes = np.union1d(preds, labels)
    support = np.array([(labels == c).sum() for c in classes])
    f1 = np.dot(_f1_per_class(preds, labels, classes), support) / support.sum()
    return {"accuracy": float((preds == labels).mean()), "macro_f1": float(f1)}


def cm_f1_of_macro_precision_recall(eval_pred):
    logits, labels = _logits_labels(eval_pred)
    keep = labels != -100
    preds, labels = logits.argmax(-1)[keep], labels[keep]
    ps, rs = [], []
    for c in np.union1d(preds, labels):
        tp = ((preds == c) & (labels == c)).sum()
        ps.append(tp / (preds == c).sum() if (preds == c).any() else 0.0)
        rs.append(tp / (labels == c).sum() if (labels == c).any() else 0.0)
    p, r = np.mean(ps), np.mean(rs)
    return {"accuracy": float((preds == labels).mean()), "macro_f1": float(2 * p * r / (p + r))}


def cm_over_the_logit_columns(eval_pred):
    """macro over range(num_classes): a class absent from labels and predictions adds a 0."""
    logits, labels = _logits_labels(eval_pred)
    keep = labels != -100
    preds, labels = logits.argmax(-1)[keep], labels[keep]
    f1 = np.mean(_f1_per_class(preds, labels, range(logits.shape[-1])))
    return {"accuracy": float((preds == labels).mean()), "macro_f1": float(f1)}


def cm_key_f1(eval_pred):
    logits, labels = _logits_labels(eval_pred)
    keep = labels != -100
    preds, labels = logits.argmax(-1)[keep], labels[keep]
    f1 = np.mean(_f1_per_class(preds, labels, np.union1d(preds, labels)))
    return {"accuracy": float((preds == labels).mean()), "f1": float(f1)}


def cm_unpacks_eval_pred(eval_pred):
    """Correct, the way Hugging Face's examples write it: unpack, then count per class."""
    logits, labels = eval_pred
    if isinstance(logits, tuple):
        logits = logits[0]
    keep = labels != -100
    preds, labels = np.argmax(logits, axis=1)[keep], labels[keep]
    f1 = np.mean(_f1_per_class(preds, labels, sorted(set(preds) | set(labels))))
    return {"accuracy": float(np.mean(preds == labels)), "macro_f1": float(f1)}


def cm_torch_confusion_matrix(eval_pred):
    """Correct too: a confusion matrix in torch, classes that never occur left out."""
    logits, labels = _logits_labels(eval_pred)
    logits, labels = torch.as_tensor(logits), torch.as_tensor(labels)
    keep = labels != -100
    preds, labels = logits.argmax(-1)[keep], labels[keep]
    c = int(max(preds.max(), labels.max())) + 1
    m = torch.zeros(c, c, dtype=torch.long).index_put_((labels, preds), torch.tensor(1),
                                                       accumulate=True)
    tp, n_pred, n_true = m.diag(), m.sum(0), m.sum(1)
    present = (n_pred + n_true) > 0
    f1 = (2 * tp[present] / (n_pred + n_true)[present]).mean()
    return {"accuracy": (tp.sum() / keep.sum()).item(), "macro_f1": f1.item()}


# ---- 05.2 causal LM loss
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


def lm_transposed(logits, labels):
    """Correct too: cross_entropy with the classes on dim 1, no flattening."""
    return F.cross_entropy(logits[:, :-1].transpose(1, 2), labels[:, 1:], ignore_index=-100)


def lm_pad_labels_then_shift(logits, labels):
    """Correct too, as transformers does it: shift the labels left, pad the end with -100."""
    pad = torch.full_like(labels[:, :1], -100)
    targets = torch.cat([labels[:, 1:], pad], dim=1)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def lm_rolled(logits, labels):
    return F.cross_entropy(logits.flatten(0, 1), labels.roll(-1, dims=1).flatten())


def lm_divide_by_positions(logits, labels):
    total = F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(),
                            reduction="sum")
    return total / (labels.shape[0] * (labels.shape[1] - 1))


def lm_count_all_labels(logits, labels):
    total = F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(),
                            reduction="sum")
    return total / (labels != -100).sum()


def lm_per_sequence(logits, labels):
    total = F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(),
                            reduction="sum")
    return total / len(labels)


def lm_log_of_softmax(logits, labels):
    logp = torch.log(torch.softmax(logits[:, :-1], dim=-1))
    return F.nll_loss(logp.flatten(0, 1), labels[:, 1:].flatten())


def lm_one_hot(logits, labels):
    lg, tg = logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten()
    keep = tg != -100
    picked = (lg * F.one_hot(tg.clamp(min=0), lg.shape[-1])).sum(-1)
    return (torch.logsumexp(lg, -1) - picked)[keep].mean()


def lm_item(logits, labels):
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten()).item()


def lm_numpy(logits, labels):
    lg = logits[:, :-1].detach().numpy().reshape(-1, logits.shape[-1])
    tg = labels[:, 1:].numpy().reshape(-1)
    keep = tg != -100
    m = lg.max(-1, keepdims=True)
    logp = lg - m - np.log(np.exp(lg - m).sum(-1, keepdims=True))
    return float(-logp[keep, tg[keep]].mean())


def lm_no_grad(logits, labels):
    with torch.no_grad():
        return F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten())


def lm_cut_rows_at_length(logits, labels):
    losses, count = 0.0, 0
    for lg, lb in zip(logits, labels, strict=True):
        n = int((lb != -100).sum())  # "the real tokens are the first n"
        if n > 1:
            losses = losses + F.cross_entropy(lg[:n - 1], lb[1:n], reduction="sum")
            count += n - 1
    return losses / count


@pytest.mark.parametrize("ex_id, fn, words", [
    ("05.1", tok_forgets_truncation, "truncation=True"),
    ("05.1", tok_pads_everything, "Don't pad in map()"),
    ("05.1", tok_keeps_label_name, "no ['labels'] column"),
    ("05.1", tok_labels_off_by_one, "result['labels']"),
    ("05.3", cm_argmax_over_examples, "argmax(axis=-1)"),
    ("05.3", cm_micro_f1, "is the micro-F1"),
    ("05.3", cm_positive_class_f1, "the F1 of class 1 alone"),
    ("05.3", cm_tuple_not_unpacked, "predictions come as a tuple"),
    ("05.3", cm_keeps_ignored_rows, "Rows labelled -100"),
    ("05.2", lm_unshifted, "No shift"),
    ("05.2", lm_shift_backwards, "wrong way"),
    ("05.2", lm_mean_of_rows, "averaged each row"),
    ("05.2", lm_pads_are_zero, "ignore_index=-100"),
    ("05.2", lm_summed, "the sum over tokens"),
])
def test_known_wrong_answers_are_rejected_with_a_reason(ex_id, fn, words):
    _assert_rejected_saying(ex_id, fn, words)


@pytest.mark.parametrize("ex_id, fn, words", [
    ("05.1", tok_no_special_tokens, "Keep the special tokens"),
    ("05.1", tok_cut_ids_myself, "Cutting the ids yourself"),
    ("05.1", tok_cut_the_text, "max_length counts tokens, not characters"),
    ("05.1", tok_room_for_cls_sep, "already counts the special tokens"),
    ("05.1", tok_truncation_without_length, "the model's own limit"),
    ("05.1", tok_sets_padding_side, "changed its input `tokenizer`"),
    ("05.1", tok_sets_model_max_length, "changed its input `tokenizer`"),
    ("05.1", tok_tensors, "raised ValueError"),
    ("05.1", tok_split_words, "result['input_ids']"),
    ("05.2", lm_rolled, "torch.roll wraps around"),
    ("05.2", lm_divide_by_positions, "padding included"),
    ("05.2", lm_count_all_labels, "counted the targets in the unshifted labels"),
    ("05.2", lm_per_sequence, "divided the summed loss by the number of sequences"),
    ("05.2", lm_log_of_softmax, "log(softmax(x)) underflows"),
    ("05.2", lm_one_hot, "one-hot vector turns -inf logits into NaN"),
    ("05.2", lm_item, "don't call .item()"),
    ("05.2", lm_numpy, "should be the loss as a 0-d torch.Tensor"),
    ("05.2", lm_no_grad, "requires_grad is False"),
    ("05.2", lm_cut_rows_at_length, "differs from the expected values"),
    ("05.3", cm_numpy_scalars, "not a NumPy float32"),
    ("05.3", cm_torch_tensors, "not a torch tensor"),
    ("05.3", cm_only_predicted_classes, "never predicts still counts"),
    ("05.3", cm_weighted_by_support, "weighted F1"),
    ("05.3", cm_f1_of_macro_precision_recall, "mean precision and the mean recall"),
    ("05.3", cm_over_the_logit_columns, "result['macro_f1']"),
    ("05.3", cm_key_f1, "no ['macro_f1'] key"),
])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's overflow in a learner's exp()
def test_learner_style_wrong_answers_are_rejected_with_their_reason(ex_id, fn, words):
    _assert_rejected_saying(ex_id, fn, words)


@pytest.mark.parametrize("ex_id, fn", [
    ("05.1", tokenize_and_label), ("05.1", tok_batch_encoding),
    ("05.1", tok_one_by_one),
    ("05.2", causal_lm_loss), ("05.2", lm_manual), ("05.2", lm_transposed),
    ("05.2", lm_pad_labels_then_shift),
    ("05.3", compute_metrics), ("05.3", cm_unpacks_eval_pred),
    ("05.3", cm_torch_confusion_matrix),
])
def test_references_and_other_correct_answers_pass(ex_id, fn):
    verdict = _verdict(ex_id, fn)
    assert verdict.passed, verdict.message


def test_unsolved_exercise_reads_not_attempted():
    def stub(*args, **kwargs):
        raise NotImplementedError
    for ex_id in ("05.1", "05.2", "05.3"):
        assert _verdict(ex_id, stub).status == "not attempted"


def test_reference_loss_is_what_gpt2_computes_from_labels():
    model = tiny_gpt2(40, n_positions=16, n_embd=16, n_layer=1).eval()
    torch.manual_seed(0)
    ids = torch.randint(0, 40, (3, 9))
    labels = ids.clone()
    labels[1, 6:] = -100
    labels[2, :3] = -100
    out = model(input_ids=ids, labels=labels)
    torch.testing.assert_close(causal_lm_loss(out.logits, labels), out.loss)


def test_cases_are_the_ids_in_notebook_order():
    assert get_exercise("05.2").reference is causal_lm_loss
    assert get_exercise("05.3").reference is compute_metrics


@pytest.mark.parametrize("ex_id", ["05.1", "05.2", "05.3"])
def test_every_case_says_what_it_catches_and_every_mistake_runs_on_it(ex_id):
    ex = get_exercise(ex_id)
    cases = cases_of(ex_id)
    for case in cases:
        assert case.label and case.catches, case
    for wrong, _ in ex.mistakes:
        wrong_somewhere = False
        for case in cases:
            got = wrong(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))  # must not raise
            want = ex.reference(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
            wrong_somewhere |= ex.compare(got, want, case) is not None
        assert wrong_somewhere, wrong.__name__


def test_the_grading_tokenizers_are_the_real_ones_and_private_to_each_case():
    bert = AutoTokenizer.from_pretrained(asset_path("course-bert"))
    first, second = cases_of("05.1"), cases_of("05.1")
    batch, tok, max_length = first[0].args
    assert tok is not second[0].args[1]
    ids = tok(batch["text"], truncation=True, max_length=max_length)["input_ids"]
    assert ids == bert(batch["text"], truncation=True, max_length=max_length)["input_ids"]
    assert all(row[0] == bert.cls_token_id and row[-1] == bert.sep_token_id for row in ids)
    tok.padding_side = "left"
    tok.add_tokens(["zzz"])
    assert tok != second[0].args[1]  # a changed tokenizer is seen as changed ...
    assert second[0].args[1] == cases_of("05.1")[0].args[1]  # ... and the others are untouched
    sides = {(c.args[1].truncation_side, c.args[1].padding_side, c.args[1].cls_token is None)
             for c in first}
    assert {("left", "right", False), ("right", "left", True), ("right", "right", True),
            ("right", "right", False)} <= sides


def test_metrics_reference_matches_scikit_learns_documented_values():
    # sklearn.metrics.f1_score's docstring: y_true [0, 1, 2, 0, 1, 2], y_pred [0, 2, 1, 0, 0, 1]
    # give macro 0.26666..., micro 0.33333..., weighted 0.26666...
    logits = np.eye(3, dtype=np.float32)[[0, 2, 1, 0, 0, 1]]
    got = compute_metrics(EvalPrediction(predictions=logits,
                                         label_ids=np.array([0, 1, 2, 0, 1, 2])))
    assert got == {"accuracy": pytest.approx(1 / 3), "macro_f1": pytest.approx(0.26666666)}
    assert all(type(v) is float for v in got.values())


def test_metrics_reference_agrees_with_an_independent_count_on_every_case():
    for case in cases_of("05.3"):
        got = compute_metrics(*case.args)
        logits, labels = _logits_labels(case.args[0])
        keep = labels != -100
        preds, labels = logits.argmax(-1)[keep], labels[keep]
        f1s = _f1_per_class(preds, labels, sorted(set(preds.tolist()) | set(labels.tolist())))
        assert got["accuracy"] == pytest.approx(float((preds == labels).mean()))
        assert got["macro_f1"] == pytest.approx(float(np.mean(f1s)))


def test_metrics_reference_agrees_with_scikit_learn_on_every_case():
    sk = pytest.importorskip("sklearn.metrics")  # not a course dependency; checked where present
    for case in cases_of("05.3"):
        logits, labels = _logits_labels(case.args[0])
        keep = labels != -100
        preds = logits.argmax(-1)[keep]
        got = compute_metrics(*case.args)
        assert got["accuracy"] == pytest.approx(sk.accuracy_score(labels[keep], preds))
        assert got["macro_f1"] == pytest.approx(sk.f1_score(labels[keep], preds,
                                                            average="macro"))


def test_metrics_cases_reach_the_boundaries():
    preds = [c.args[0].predictions for c in cases_of("05.3")]
    labels = [np.asarray(c.args[0].label_ids) for c in cases_of("05.3")]
    assert any(isinstance(p, tuple) for p in preds)
    assert any((y == -100).any() for y in labels)
    assert any(np.asarray(p).shape[-1] == 2 for p in preds if not isinstance(p, tuple))
    assert any(len(y) >= 1000 for y in labels) and any(len(y) == 1 for y in labels)


def test_loss_cases_reach_the_boundaries():
    cases = cases_of("05.2")
    assert any(((c.args[1][:, 1:] == -100).all(dim=1)).any() for c in cases)  # an empty row
    assert any(c.args[0].requires_grad for c in cases)
    assert any(c.args[0].shape[1] >= 256 for c in cases)
    assert any(torch.isinf(c.args[0]).any() for c in cases)
    for case in cases:
        assert torch.isfinite(causal_lm_loss(*case.args))
