"""course_utils.finetune (costs included), checked against transformers, torch and NumPy.

Tiny randomly initialised models and word-level tokenizers (tests/_finetune_fixtures.py): no
downloads, no bundled checkpoint needed, a few seconds in all.
"""

from dataclasses import replace

import numpy as np
import pytest
import torch
from _finetune_fixtures import bert_tokenizer, gpt_tokenizer, tiny_bert, tiny_gpt
from transformers import EvalPrediction, Trainer, TrainingArguments

from course_utils.data import reviews
from course_utils.finetune import (
    LABEL_NAMES,
    LossHistory,
    Recipe,
    balanced_subset,
    causal_lm_dataset,
    causal_lm_loss,
    classification_dataset,
    collator_for,
    compute_metrics,
    confusion_matrix,
    costs,
    ensure_pad_token,
    finetune,
    lm_label_predictions,
    lm_prompt,
    macro_f1,
    tokenize_and_label,
    tokenize_for_causal_lm,
    training_arguments,
)
from course_utils.finetune.lora import inject_lora

torch.set_num_threads(1)
TINY = Recipe(n_train=48, n_eval=12, n_test=15, max_steps=4, eval_steps=2, logging_steps=1,
              batch_size=8)


@pytest.fixture(scope="module")
def review_sets():
    return reviews(seed=0)


# ------------------------------------------------------------------ pad token and tokenizing


def test_pad_token_fix_reuses_eos_and_sets_the_model_config():
    tok, model = gpt_tokenizer(), tiny_gpt(10)
    model.config.pad_token_id = None
    with pytest.raises(ValueError):  # what the fix is for: padding needs a pad token
        tok(["a", "a b"], padding=True)
    ensure_pad_token(tok, model)
    assert tok.pad_token == tok.eos_token and model.config.pad_token_id == tok.eos_token_id
    assert tok(["the", "the film"], padding=True)["input_ids"][0][-1] == tok.eos_token_id


def test_pad_token_fix_without_eos_says_what_to_do():
    tok = bert_tokenizer()
    tok.pad_token = None
    with pytest.raises(ValueError, match="add_special_tokens"):
        ensure_pad_token(tok)


def test_tokenize_and_label_truncates_without_padding_and_renames_label(review_sets):
    tok = bert_tokenizer()
    batch = review_sets["train"][:5]
    out = tokenize_and_label(batch, tok, max_length=7)
    direct = tok(batch["text"], truncation=True, max_length=7)
    assert out["input_ids"] == direct["input_ids"]
    assert all(len(ids) <= 7 for ids in out["input_ids"])
    assert out["labels"] == batch["label"] and "label" not in out
    full = tok(batch["text"])["input_ids"]
    assert [len(i) for i in tokenize_and_label(batch, tok, 200)["input_ids"]] == \
        [len(i) for i in full]  # no padding: each example keeps its own length


@pytest.mark.parametrize("bad, error", [("just a string", TypeError),
                                        ({"text": ["a"]}, ValueError)])
def test_tokenize_and_label_rejects_bad_batches(bad, error):
    with pytest.raises(error):
        tokenize_and_label(bad, bert_tokenizer())


def test_causal_lm_examples_end_with_label_word_and_eos(review_sets):
    tok = gpt_tokenizer(with_pad=True)
    batch = review_sets["train"][:4]
    out = tokenize_for_causal_lm(batch, tok, LABEL_NAMES, max_length=64)
    for ids, text, y in zip(out["input_ids"], batch["text"], batch["label"], strict=True):
        assert ids[-1] == tok.eos_token_id
        assert tok.convert_ids_to_tokens(ids[-2]) == LABEL_NAMES[y]
        assert ids[:-2] == tok(lm_prompt(text))["input_ids"]
    with pytest.raises(ValueError, match="max_length"):
        tokenize_for_causal_lm(batch, tok, LABEL_NAMES, max_length=5)


def test_balanced_subset_is_balanced_and_deterministic(review_sets):
    a = balanced_subset(review_sets["train"], 31, seed=3)
    b = balanced_subset(review_sets["train"], 31, seed=3)
    counts = np.bincount(a["label"], minlength=3)
    assert len(a) == 31 and counts.max() - counts.min() <= 1 and a["text"] == b["text"]


# ------------------------------------------------------------------ collators


def test_lm_collator_copies_inputs_to_labels_and_masks_padding(review_sets):
    tok = gpt_tokenizer(with_pad=True)
    ds = causal_lm_dataset(review_sets["train"].select(range(6)), tok, LABEL_NAMES)
    batch = collator_for("causal-lm", tok)([ds[i] for i in range(6)])
    lengths = [len(ds[i]["input_ids"]) for i in range(6)]
    assert batch["input_ids"].shape == (6, max(lengths))
    for row, n in enumerate(lengths):
        assert torch.equal(batch["labels"][row, :n - 1], batch["input_ids"][row, :n - 1])
        assert (batch["labels"][row, n:] == -100).all()
        assert batch["attention_mask"][row].sum() == n
        # The pitfall of pad_token = eos_token: the real end-of-text target is masked too.
        assert batch["input_ids"][row, n - 1] == tok.eos_token_id
        assert batch["labels"][row, n - 1] == -100


def test_classification_collator_pads_to_the_longest_in_the_batch(review_sets):
    tok = bert_tokenizer()
    ds = classification_dataset(review_sets["train"].select(range(5)), tok, max_length=64)
    batch = collator_for("classification", tok)([ds[i] for i in range(5)])
    assert batch["input_ids"].shape[1] == max(len(x) for x in ds["input_ids"])
    assert batch["labels"].tolist() == ds["labels"]
    with pytest.raises(ValueError, match="task must be"):
        collator_for("seq2seq", tok)


# ------------------------------------------------------------------ metrics


def test_macro_f1_matches_scikit_learns_documented_example_and_counts_every_class():
    # sklearn.metrics.f1_score's docstring example: average="macro" gives 0.2666...
    assert macro_f1([0, 2, 1, 0, 0, 1], [0, 1, 2, 0, 1, 2]) == pytest.approx(0.26666666)
    # class 2 is true but never predicted: its F1 of 0 counts; class 3 never occurs: not at all
    f1_0, f1_1 = 2 * 2 / (2 * 2 + 1), 1.0  # class 0: TP 2, FP 1; class 1: TP 1 alone
    assert macro_f1([0, 0, 1, 0], [0, 0, 1, 2]) == pytest.approx((f1_0 + f1_1 + 0) / 3)
    with pytest.raises(ValueError, match="differ in shape"):
        macro_f1([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="zero examples"):
        macro_f1([], [])


def test_compute_metrics_unpacks_tuples_skips_minus_100_and_returns_floats():
    logits = np.eye(3, dtype=np.float32)[[0, 1, 2, 2]]
    labels = np.array([0, 1, -100, 1])
    got = compute_metrics(EvalPrediction(predictions=(logits, np.zeros((4, 2, 5))),
                                         label_ids=labels))
    assert got == {"accuracy": pytest.approx(2 / 3), "macro_f1": pytest.approx(macro_f1(
        [0, 1, 2], [0, 1, 1]))}
    assert all(type(v) is float for v in got.values())
    with pytest.raises(ValueError, match="every label is -100"):
        compute_metrics(EvalPrediction(predictions=logits, label_ids=np.full(4, -100)))
    with pytest.raises(ValueError, match="expected logits"):
        compute_metrics(EvalPrediction(predictions=logits[0], label_ids=labels))


def test_compute_metrics_accuracy_matches_numpy():
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(50, 3)), rng.integers(0, 3, 50)
    expected = float((logits.argmax(1) == labels).mean())
    assert compute_metrics(EvalPrediction(predictions=logits, label_ids=labels))["accuracy"] == \
        pytest.approx(expected)


def test_causal_lm_loss_is_gpt2s_own_loss_on_a_collated_batch(review_sets):
    tok = gpt_tokenizer(with_pad=True)
    model = tiny_gpt(len(tok)).eval()
    ds = causal_lm_dataset(review_sets["train"].select(range(4)), tok, LABEL_NAMES)
    batch = collator_for("causal-lm", tok)([ds[i] for i in range(4)])
    out = model(**batch)
    torch.testing.assert_close(causal_lm_loss(out.logits, batch["labels"]), out.loss)


def test_confusion_matrix_counts_pairs():
    m = confusion_matrix([0, 2, 2, 1, 0], [0, 2, 1, 1, 2], 3)
    assert m.tolist() == [[1, 0, 0], [0, 1, 1], [1, 0, 1]] and m.sum() == 5


@pytest.mark.parametrize("side", ["right", "left"])
def test_label_scoring_in_batches_equals_scoring_each_prompt_alone(review_sets, side):
    tok = gpt_tokenizer(with_pad=True)
    tok.padding_side = side
    model = tiny_gpt(len(tok), seed=3).eval()
    texts = review_sets["test"]["text"][:7]
    got = lm_label_predictions(model, tok, texts, LABEL_NAMES, batch_size=4)
    ids = [tok.convert_tokens_to_ids(w) for w in LABEL_NAMES]
    expected = []
    for text in texts:
        enc = tok(lm_prompt(text), return_tensors="pt")
        expected.append(int(model(**enc).logits[0, -1, ids].argmax()))
    assert got == expected


# ------------------------------------------------------------------ Trainer, callbacks, costs


def test_old_argument_names_fail_with_the_current_api(tmp_path):
    with pytest.raises(TypeError, match="evaluation_strategy"):
        TrainingArguments(output_dir=str(tmp_path), evaluation_strategy="steps")
    args = TrainingArguments(output_dir=str(tmp_path), eval_strategy="steps", report_to="none")
    with pytest.raises(TypeError, match="tokenizer"):
        Trainer(model=tiny_gpt(10), args=args, tokenizer=gpt_tokenizer())


def test_finetune_records_the_loss_curve_costs_and_saves_what_it_trained(tmp_path):
    tok = gpt_tokenizer(with_pad=True)
    model = tiny_gpt(len(tok))
    trainable, total = costs.count_parameters(model)
    run = finetune(model, tok, "full", tmp_path / "full", TINY)
    logged = [(e["step"], e["loss"]) for e in run.trainer.state.log_history if "loss" in e]
    assert run.history.train == [(s, pytest.approx(v)) for s, v in logged]
    assert [s for s, _ in run.history.eval] == [2, 4]
    cost = run.cost
    assert cost.trainable_params == trainable == total
    # AdamW keeps two float32 moments per trainable parameter (plus a step count each).
    assert 8 * trainable <= cost.optimizer_state_bytes <= 8 * trainable + 8 * 1000
    weights = sum(p.numel() * 4 for p in model.parameters())
    assert cost.peak_memory_bytes > 2 * weights + cost.optimizer_state_bytes  # + grads + acts
    assert cost.time_per_step_s > 0 and 0 <= cost.accuracy <= 1
    assert cost.size_on_disk_bytes == pytest.approx(weights, rel=0.1)
    reloaded = type(model).from_pretrained(tmp_path / "full")
    texts = reviews(seed=0)["test"]["text"][:6]
    assert lm_label_predictions(reloaded, tok, texts, LABEL_NAMES) == \
        lm_label_predictions(model, tok, texts, LABEL_NAMES)


def test_lora_run_costs_less_optimizer_state_and_memory(tmp_path):
    tok = gpt_tokenizer(with_pad=True)
    full = finetune(tiny_gpt(len(tok)), tok, "full", tmp_path / "a", TINY).cost
    model = inject_lora(tiny_gpt(len(tok)), ["c_attn"], r=2, alpha=4)
    lora = finetune(model, tok, "lora", tmp_path / "b", TINY).cost
    assert lora.trainable_params < full.trainable_params / 10
    assert lora.optimizer_state_bytes < full.optimizer_state_bytes / 10
    assert lora.peak_memory_bytes < full.peak_memory_bytes


def test_classification_trainer_with_compute_metrics(tmp_path, review_sets):
    tok = bert_tokenizer()
    model = tiny_bert(len(tok))
    train = classification_dataset(review_sets["train"].select(range(32)), tok)
    args = training_arguments(tmp_path, TINY, learning_rate=1e-3)
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=train,
                      data_collator=collator_for("classification", tok), processing_class=tok,
                      compute_metrics=compute_metrics, callbacks=[LossHistory()])
    metrics = trainer.evaluate()
    preds = trainer.predict(train)
    assert metrics["eval_accuracy"] == pytest.approx(
        float((preds.predictions.argmax(-1) == np.array(train["labels"])).mean()))


def test_memory_tracker_sees_allocations_and_frees():
    tracker = costs.TensorMemoryTracker()
    with tracker:
        a = torch.ones(1000, 250)  # 1,000,000 bytes
        b = a * 2
        del a, b
        c = torch.zeros(10)
    assert tracker.peak >= 2_000_000 and tracker.current == c.untyped_storage().nbytes()


def test_run_store_round_trip_and_fingerprint(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    cost = costs.RunCost("full", 10, 10, 80, 1000, 0.01, 40, 0.9)
    costs.save_run("full", cost, "abc")
    back = costs.load_run("full", "abc")
    assert back.to_dict() | {"source": ""} == cost.to_dict() | {"source": ""}
    assert costs.load_run("full", "other recipe") is None
    assert costs.load_run("missing", "abc") is None
    assert Recipe().fingerprint() != Recipe(max_steps=1).fingerprint()
    assert "| full |" in costs.format_table([cost])


def test_full_baseline_runs_once_then_comes_from_the_cache(tmp_path, monkeypatch):
    """Lesson 06 needs lesson 05's run: computed when missing, reused when the recipe and
    checkpoint match, recomputed when either changes."""
    import course_utils.pretrained as pretrained
    from course_utils.finetune import baseline_dir, full_finetune_baseline

    assets = tmp_path / "assets"
    tok = gpt_tokenizer(with_pad=True)
    model = tiny_gpt(len(tok))
    model.save_pretrained(assets / "course-gpt")
    tok.save_pretrained(assets / "course-gpt")
    monkeypatch.setattr(pretrained, "ASSETS_DIR", assets)
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    first, path = full_finetune_baseline(TINY)
    assert first.source == "measured in this run" and path == baseline_dir()
    assert (path / "model.safetensors").exists()
    second, _ = full_finetune_baseline(TINY)
    assert second.source.startswith("from an earlier run")
    assert second.accuracy == first.accuracy and second.trainable_params == first.trainable_params
    third, _ = full_finetune_baseline(replace(TINY, max_steps=3))
    assert third.source == "measured in this run"
