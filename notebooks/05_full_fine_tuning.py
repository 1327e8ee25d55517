# %% [markdown]
# # 05 · Full fine-tuning with the Hugging Face `Trainer`
#
# A pretrained model has read a lot of text, but it was never told what *our* task is. In
# lesson 04 we steered it with prompts. **Fine-tuning** goes further: we keep training the
# pretrained weights on labelled examples of the task, so the task is built into the model.
#
# The recipe is always the same, and Hugging Face packages it as the `Trainer`. This is **the
# cheat-sheet version**, as LLM cheat-sheets give it:
#
# ```python
# model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=3)
# tokenizer = AutoTokenizer.from_pretrained("bert-base-uncased")
# # (a GPT-2 tokenizer has no pad token: tokenizer.pad_token = tokenizer.eos_token)
# training_args = TrainingArguments(output_dir="./results", num_train_epochs=3,
#                                   per_device_train_batch_size=4, warmup_steps=500,
#                                   weight_decay=0.01, logging_dir="./logs",
#                                   evaluation_strategy="epoch")
# trainer = Trainer(model=model, args=training_args, tokenizer=tokenizer,
#                   train_dataset=train_dataset, eval_dataset=eval_dataset)
# trainer.train()
# ```
#
# This lesson makes that recipe run for real, offline, on a laptop CPU, and looks inside it.
#
# **You will:** turn a data set into tokenized training examples, pick the right *collator*,
# fine-tune the course's BERT as a classifier and the course's GPT as a text-to-label model,
# measure both before and after (accuracy and macro-F1 in `compute_metrics`), read the loss
# curves (and see overfitting), save and reload a fine-tuned model, and measure what full
# fine-tuning costs. Then **instruction tuning**: chats in the model's chat template, labels on
# the assistant's replies only, a short SFT run, and the bundled instruction-tuned course-gpt-chat
# measured against course-gpt. Lesson 06 compares cheaper methods against these numbers.

# %%
# First, before torch starts: importing course_utils makes waiting OpenMP threads sleep, not
# spin (a spinning thread can make each step many times slower on a busy machine).
from course_utils import check, hint, progress, solution, start_lesson

# Two threads on two cores (the course's budget); quiet: no progress bars from datasets' map()
# or from loading (the Trainer keeps its own), no pin_memory warning (no GPU here).
start_lesson(seed=0, threads=2, quiet=True)

import matplotlib.pyplot as plt
import torch
import transformers
from transformers import (
    AutoModelForSequenceClassification,
    DataCollatorForLanguageModeling,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)

from course_utils.data import reviews

OUT = "runs/05"  # where the Trainer writes; nothing here needs to be kept

# %% [markdown]
# ## 1. The task: sentiment of short reviews
#
# `course_utils.data.reviews()` generates the labelled reviews of the course's world as a
# `datasets.DatasetDict`: `train`, `validation` and `test` splits with a `text` and a
# `label` column (`negative`, `neutral`, `positive`).

# %%
data = reviews(seed=0)
label_names = data["train"].features["label"].names
print(data)
for row in data["train"].select(range(3)):
    print(f"{label_names[row['label']]:>8}: {row['text']}")

# %% [markdown]
# To fit the lesson into a minute and a half of CPU we use small balanced subsets: a few
# hundred training reviews, a validation set the `Trainer` evaluates during training, and a
# held-out test set we touch only to measure before and after. The sizes live in one shared
# `Recipe`, so lesson 06 trains other methods on exactly the same examples.

# %%
from course_utils.finetune import Recipe, sentiment_splits

recipe = Recipe()
splits = sentiment_splits(recipe)
print({name: len(ds) for name, ds in splits.items()}, recipe)

# %% [markdown]
# ## 2. From text to training examples
#
# A model needs token ids, not text. For classification every example becomes
# `input_ids` + `attention_mask` + `labels`. Two details matter:
#
# - **Truncate, don't pad, in `map`.** Cut reviews longer than the model's context, but leave
#   the padding to the collator (below), which pads each *batch* to its own longest example
#   instead of every example to the maximum.
# - **`labels`, plural.** `Trainer` passes each column to the model's `forward` by name, and
#   the model takes its targets as `labels`. (A column called `label` works too, because the
#   collators rename it as a courtesy; a column with any other name is dropped as one the
#   model does not take.)
#
# ### Exercise 05.1: tokenize and label a batch
#
# `Dataset.map(fn, batched=True)` calls `fn` with a dict of columns, e.g.
# `{"text": [...], "label": [...]}`. Return a dict with `input_ids`, `attention_mask` (both
# from the tokenizer, with `truncation=True, max_length=max_length`, no padding) and
# `labels` (the labels as they are). Let the tokenizer do the work: it adds the special tokens
# (`[CLS]` ... `[SEP]` for BERT) and truncates on its own side; the check uses the bundled
# course-bert and course-gpt tokenizers. Don't change the tokenizer you are given.

# %%
def tokenize_and_label(batch, tokenizer, max_length=64):
    ### BEGIN SOLUTION
    enc = tokenizer(batch["text"], truncation=True, max_length=max_length)
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "labels": batch["label"]}
    ### END SOLUTION


# %%
check("05.1", tokenize_and_label)

# %% [markdown]
# The rest of the lesson uses the reference from `course_utils.finetune`, so every cell below
# runs whether or not your exercise passes yet.

# %%
from course_utils.finetune import classification_dataset, tokenize_and_label
from course_utils.pretrained import load_pretrained

bert, bert_tok = load_pretrained(
    "course-bert", model_class=AutoModelForSequenceClassification, num_labels=3,
    id2label=dict(enumerate(label_names)), label2id={n: i for i, n in enumerate(label_names)})
bert_data = {name: classification_dataset(ds, bert_tok, max_length=64)
             for name, ds in splits.items()}
print(bert_data["train"])
print(bert_tok.convert_ids_to_tokens(bert_data["train"][0]["input_ids"]))

# %% [markdown]
# `load_pretrained("course-bert", model_class=AutoModelForSequenceClassification, ...)` is
# `AutoModelForSequenceClassification.from_pretrained(<bundled path>, ...)`: the encoder's
# weights come from the checkpoint, and a new **classification head** starts random. The head
# does not read the `[CLS]` token's final vector directly: BERT's **pooler** (a dense layer and
# a `tanh`, part of the pretrained checkpoint) turns that vector into the *pooled* `[CLS]`
# output, and the classifier is dropout and one linear layer on top of it. The load report
# above lists only `classifier.*` as newly initialised: that is expected. The modules, printed:

# %%
print("pooler:    ", bert.bert.pooler)
print("dropout:   ", bert.dropout)
print("classifier:", bert.classifier)

# %% [markdown]
#
# ## 3. Collators: batching examples of different lengths
#
# The `Trainer` draws a list of examples and calls the **data collator** to make one batch of
# tensors out of them. Examples have different lengths, so the collator pads:
# `DataCollatorWithPadding` pads to the longest example *in this batch* and returns the
# attention mask that tells the model which positions are padding.

# %%
pad_collator = DataCollatorWithPadding(bert_tok)
batch = pad_collator([bert_data["train"][i] for i in range(4)])
print({k: tuple(v.shape) for k, v in batch.items()})
print("lengths before padding:", [len(bert_data["train"][i]["input_ids"]) for i in range(4)])

# %% [markdown]
# For a causal LM the targets are the inputs themselves, shifted by one.
# `DataCollatorForLanguageModeling(tokenizer, mlm=False)` pads, then copies `input_ids` into
# `labels` and sets padding positions to **-100**, the index PyTorch's cross-entropy ignores.
# (`mlm=True` would instead mask random tokens for BERT-style masked language modelling.)
#
# It needs a pad token. GPT-2's tokenizer has none, which is why the cheat-sheet version sets
# `tokenizer.pad_token = tokenizer.eos_token`. Our course-gpt ships with its own `<|pad|>`;
# here is what happens without one, and the fix:

# %%
import copy

from course_utils.finetune import ensure_pad_token, tokenize_for_causal_lm

gpt, gpt_tok = load_pretrained("course-gpt")
no_pad = copy.deepcopy(gpt_tok)
no_pad.pad_token = None  # as GPT-2's tokenizer comes from the hub
try:
    no_pad(["a short review", "a slightly longer review"], padding=True)
except ValueError as err:
    print("ValueError:", str(err)[:160], "...")
ensure_pad_token(no_pad)  # pad_token = eos_token
print("after the fix, pad token =", repr(no_pad.pad_token), "(the end-of-text token)")

# %% [markdown]
# Reusing end-of-text as padding has one catch worth knowing: the collator sets *every*
# pad-token position to -100, including the real end-of-text token at the end of each
# example, so a model fine-tuned that way never learns when to stop. A separate pad token,
# as course-gpt has, avoids it.
#
# For course-gpt, each review becomes one string, the prompt followed by the answer:

# %%
from course_utils.finetune import LABEL_NAMES, causal_lm_dataset, lm_training_text

print(repr(lm_training_text(splits["train"][0]["text"], LABEL_NAMES[splits["train"][0]["label"]],
                            gpt_tok.eos_token)))
gpt_data = {name: causal_lm_dataset(ds, gpt_tok, LABEL_NAMES, recipe.max_length)
            for name, ds in splits.items() if name != "test"}
lm_collator = DataCollatorForLanguageModeling(gpt_tok, mlm=False)
lm_batch = lm_collator([gpt_data["train"][i] for i in range(4)])
short = int(lm_batch["attention_mask"].sum(dim=1).argmin())  # the row with the most padding
print(f"input_ids[{short}, -6:]:", lm_batch["input_ids"][short, -6:].tolist())
print(f"labels[{short}, -6:]:   ", lm_batch["labels"][short, -6:].tolist(),
      " (-100 = padding, ignored)")

# %% [markdown]
# ### Exercise 05.2: the causal-LM loss and its label shift
#
# The labels the collator makes are *not* shifted: `labels[t]` is the token at position `t`.
# The model shifts them inside its loss: the logits at position `t` predict the token at
# `t + 1`. Write `causal_lm_loss(logits, labels)`: logits `(B, T, V)`, labels `(B, T)`; the
# mean cross-entropy over all target tokens of the batch, skipping targets equal to -100.
# It must equal the loss `GPT2LMHeadModel` returns when you pass `labels=`, and stay a tensor
# in the graph (no `.item()`): `Trainer` calls `backward()` on it.

# %%
import torch.nn.functional as F


def causal_lm_loss(logits, labels):
    ### BEGIN SOLUTION
    shift_logits = logits[:, :-1, :].reshape(-1, logits.size(-1))
    shift_labels = labels[:, 1:].reshape(-1)
    return F.cross_entropy(shift_logits, shift_labels, ignore_index=-100)
    ### END SOLUTION


# %%
check("05.2", causal_lm_loss)

# %%
from course_utils.finetune import causal_lm_loss

with torch.no_grad():
    out = gpt(**lm_batch)
print(f"model's own loss {out.loss.item():.5f}  ==  causal_lm_loss "
      f"{causal_lm_loss(out.logits, lm_batch['labels']).item():.5f}")

# %% [markdown]
# ## 4. Fine-tuning course-bert as a classifier
#
# ### Exercise 05.3: `compute_metrics`, as `Trainer` calls it
#
# After each evaluation the `Trainer` calls `compute_metrics(eval_pred)` with one
# `EvalPrediction` for the whole eval set: `eval_pred.predictions` holds the logits
# `(N, num_classes)` as a **NumPy array** (or a *tuple* whose first item they are, when the
# model returns more outputs), `eval_pred.label_ids` the labels `(N,)`. Rows labelled -100
# are not examples (the loss skips them, so do you). Return a dict of plain Python floats:
#
# - `"accuracy"`: the fraction of rows whose largest logit is at the label's index;
# - `"macro_f1"`: the F1 of each class, `2·TP / (2·TP + FP + FN)`, then their plain mean,
#   over every class that occurs in the labels *or* the predictions (as scikit-learn's
#   `f1_score(..., average="macro")`). Unlike the accuracy, a class the model never predicts
#   pulls it down, however rare the class is.

# %%
import numpy as np


def compute_metrics(eval_pred):
    ### BEGIN SOLUTION
    logits, labels = eval_pred.predictions, np.asarray(eval_pred.label_ids)
    if isinstance(logits, tuple):
        logits = logits[0]
    keep = labels != -100
    preds, labels = np.asarray(logits).argmax(axis=-1)[keep], labels[keep]
    f1s = []
    for c in np.union1d(preds, labels):
        tp = np.sum((preds == c) & (labels == c))
        f1s.append(2 * tp / (np.sum(preds == c) + np.sum(labels == c)))
    return {"accuracy": float(np.mean(preds == labels)), "macro_f1": float(np.mean(f1s))}
    ### END SOLUTION


# %%
check("05.3", compute_metrics)

# %%
from course_utils.finetune import LossHistory, compute_metrics, confusion_matrix, plot_confusion

# %% [markdown]
# Now the recipe with today's argument names. Two names that older code passes changed in
# recent `transformers`: `evaluation_strategy` is now **`eval_strategy`**, and the `Trainer`'s
# `tokenizer=` is now **`processing_class=`** (it may be a tokenizer, an image processor, ...).
# The old names are not deprecated any more; they are gone:

# %%
try:
    TrainingArguments(output_dir=OUT, evaluation_strategy="steps")
except TypeError as err:
    print("TypeError:", err)
try:
    Trainer(model=bert, args=TrainingArguments(output_dir=OUT, report_to="none"),
            tokenizer=bert_tok)
except TypeError as err:
    print("TypeError:", err)

# %% [markdown]
# The run below is the cheat-sheet's recipe scaled to a CPU: a warm-up of the learning rate, weight
# decay, a loss logged every few steps and an evaluation on the validation set every
# `eval_steps` (that gives the eval curve). `save_strategy="no"`: we save the model ourselves.
# `LossHistory` is a small `TrainerCallback` that keeps the logged losses for plotting.
#
# First, the classifier **before** fine-tuning: its head is random.

# %%
bert_args = TrainingArguments(
    output_dir=f"{OUT}/bert",
    num_train_epochs=2,
    per_device_train_batch_size=16,
    per_device_eval_batch_size=64,
    learning_rate=2e-3,
    warmup_steps=6,
    weight_decay=0.01,
    logging_steps=5,
    eval_strategy="steps",
    eval_steps=10,
    save_strategy="no",
    report_to="none",
    seed=0,
)
bert_history = LossHistory()
bert_trainer = Trainer(
    model=bert, args=bert_args, train_dataset=bert_data["train"],
    eval_dataset=bert_data["validation"], data_collator=pad_collator,
    processing_class=bert_tok, compute_metrics=compute_metrics, callbacks=[bert_history])

before = bert_trainer.predict(bert_data["test"])
bert_before = before.metrics["test_accuracy"]
print(f"course-bert before fine-tuning: test accuracy {bert_before:.1%}, "
      f"macro-F1 {before.metrics['test_macro_f1']:.3f}")

# %%
bert_trainer.train()
after = bert_trainer.predict(bert_data["test"])
bert_after = after.metrics["test_accuracy"]
print(f"course-bert test accuracy: {bert_before:.1%} before -> {bert_after:.1%} after "
      f"fine-tuning ({len(bert_data['train'])} reviews, {bert_trainer.state.global_step} steps); "
      f"macro-F1 {before.metrics['test_macro_f1']:.3f} -> {after.metrics['test_macro_f1']:.3f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
for ax, result, when in ((axes[0], before, "before"), (axes[1], after, "after")):
    m = confusion_matrix(result.predictions.argmax(-1), result.label_ids, 3)
    plot_confusion(m, label_names, ax=ax,
                   title=f"{when}: accuracy {result.metrics['test_accuracy']:.0%}")
fig.tight_layout()
plt.show()

# %% [markdown]
# Read the matrices row by row: row = the true label, column = the prediction. Before, the
# random head sends most reviews to the same column or spreads them by chance (which is why its
# macro-F1 is far below its accuracy: the classes it never predicts count with F1 0); after,
# the mass sits on the diagonal. The off-diagonal cells that remain say which labels still get
# confused with which.
#
# ## 5. Fine-tuning course-gpt: sentiment as text-to-label
#
# A causal LM has no classification head. We ask it to *continue* the text
# `"Review: ...\nSentiment:"` and compare the probabilities it gives the three label words.
# Before fine-tuning, the model has never seen these label words used as labels (lesson 04
# needed demonstrations for that); after, the format is part of the model.

# %%
from course_utils.finetune import costs, lm_label_accuracy, training_arguments

gpt_before, preds_before = lm_label_accuracy(gpt, gpt_tok, splits["test"], LABEL_NAMES)
print(f"course-gpt before fine-tuning: test accuracy {gpt_before:.1%}")

# %% [markdown]
# The same `Trainer`, now with the causal-LM collator. Its arguments come from the shared
# `Recipe` (`training_arguments(...)` is a `TrainingArguments` built from it), so that lesson
# 06 can repeat exactly this run. `CostCallback` measures the cost of the run: the time of
# each optimizer step, and the peak memory of one step counted tensor by tensor.

# %%
gpt_args = training_arguments(f"{OUT}/gpt", recipe, disable_tqdm=False)
print({k: getattr(gpt_args, k) for k in ("max_steps", "per_device_train_batch_size",
                                         "learning_rate", "warmup_steps", "weight_decay",
                                         "eval_strategy", "eval_steps", "logging_steps")})
weights_before = {n: p.detach().clone() for n, p in gpt.named_parameters()}
gpt_history, meter = LossHistory(), costs.CostCallback()
gpt_trainer = Trainer(
    model=gpt, args=gpt_args, train_dataset=gpt_data["train"],
    eval_dataset=gpt_data["validation"], data_collator=lm_collator, processing_class=gpt_tok,
    callbacks=[gpt_history, meter])
gpt_trainer.train()
gpt_after, preds_after = lm_label_accuracy(gpt, gpt_tok, splits["test"], LABEL_NAMES)
print(f"course-gpt test accuracy: {gpt_before:.1%} before -> {gpt_after:.1%} after")

# %%
fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
for ax, preds, acc, when in ((axes[0], preds_before, gpt_before, "before"),
                             (axes[1], preds_after, gpt_after, "after")):
    plot_confusion(confusion_matrix(preds, splits["test"]["label"], 3), label_names, ax=ax,
                   title=f"course-gpt {when}: accuracy {acc:.0%}")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 6. Reading the loss curves: overfitting and early stopping

# %%
from course_utils.finetune import plot_loss_curves

fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
plot_loss_curves(bert_history, axes[0], "course-bert, classification")
plot_loss_curves(gpt_history, axes[1], "course-gpt, text-to-label")
fig.tight_layout()
plt.show()

# %% [markdown]
# The training loss (measured on the batches the model is learning from) and the eval loss
# (on validation reviews it never trains on) fall together here: the model is still learning
# things that carry over to new reviews. Train longer on few examples and the curves part:
# the training loss keeps falling while the eval loss turns **up**. That is **overfitting**,
# the model memorising its training examples. Here it is on purpose, with 24 reviews and
# many passes over them:

# %%
small = bert_data["train"].select(range(24))
overfit_model, _ = load_pretrained(
    "course-bert", model_class=AutoModelForSequenceClassification, num_labels=3)
overfit_history = LossHistory()
Trainer(model=overfit_model,
        args=TrainingArguments(output_dir=f"{OUT}/overfit", num_train_epochs=15,
                               per_device_train_batch_size=8, learning_rate=1e-3,
                               logging_steps=3, eval_strategy="steps", eval_steps=3,
                               save_strategy="no", report_to="none", seed=0),
        train_dataset=small, eval_dataset=bert_data["validation"], data_collator=pad_collator,
        processing_class=bert_tok, callbacks=[overfit_history]).train()
ax = plot_loss_curves(overfit_history, title="24 training reviews, 15 epochs: overfitting")
plt.show()
best = overfit_history.best_eval_step()
print(f"lowest eval loss at step {best} of {overfit_history.eval[-1][0]}; final train loss "
      f"{overfit_history.train[-1][1]:.3f}, final eval loss {overfit_history.eval[-1][1]:.3f}")

# %% [markdown]
# **Early stopping** keeps the model from the dotted line: evaluate regularly, remember the
# best checkpoint, stop when the eval loss has not improved for a few evaluations. With
# `Trainer` that is `callbacks=[EarlyStoppingCallback(early_stopping_patience=3)]` plus
# `load_best_model_at_end=True`, `metric_for_best_model="eval_loss"` and a `save_strategy`
# equal to the `eval_strategy` (it needs the saved checkpoints to go back to). More data, weight
# decay, fewer epochs or a smaller learning rate push the turning point later.
#
# ## 7. Saving and loading the fine-tuned model
#
# `save_pretrained` writes the config and the weights (`model.safetensors`); save the
# tokenizer next to them and the directory is a complete model that `from_pretrained` loads,
# exactly like the bundled checkpoints.

# %%
from pathlib import Path

from transformers import AutoModelForCausalLM

save_dir = Path(OUT) / "course-gpt-sentiment"
gpt.save_pretrained(save_dir)
gpt_tok.save_pretrained(save_dir)
print(sorted(p.name for p in save_dir.iterdir()))
reloaded = AutoModelForCausalLM.from_pretrained(save_dir)
_, preds_reloaded = lm_label_accuracy(reloaded, gpt_tok, splits["test"], LABEL_NAMES)
probe = gpt_tok(["Review: The staff were friendly.\nSentiment:"], return_tensors="pt")
with torch.no_grad():
    same_logits = torch.allclose(gpt(**probe).logits, reloaded(**probe).logits)
print("same predictions on all", len(preds_reloaded), "test reviews:",
      preds_reloaded == preds_after, "| same logits:", same_logits)

# %% [markdown]
# ## 8. What full fine-tuning costs
#
# Every weight of the model trained. For each trainable parameter (4 bytes in float32) the
# training step also holds a gradient (4 bytes), and AdamW keeps two running averages
# (8 bytes): about 16 bytes per parameter before counting any **activations**, the
# intermediate results the backward pass needs. The meter counted them:

# %%
full_cost = meter.result("full fine-tuning", gpt, accuracy=gpt_after,
                         size_on_disk_bytes=costs.size_on_disk(save_dir))
trainable, total = costs.count_parameters(gpt)
weights_mb = trainable * 4 / costs.MB
print(f"trainable parameters: {trainable:,} of {total:,}")
print(f"weights {weights_mb:.1f} MB + gradients {weights_mb:.1f} MB + AdamW state "
      f"{full_cost.optimizer_state_bytes / costs.MB:.1f} MB; peak of a training step "
      f"{full_cost.peak_memory_bytes / costs.MB:.1f} MB, so activations and temporaries take "
      f"about {full_cost.peak_memory_bytes / costs.MB - 2 * weights_mb - full_cost.optimizer_state_bytes / costs.MB:.1f} MB")
print(costs.format_table([full_cost]))

# %% [markdown]
# For our small model the activations dominate. Scale the same 16 bytes per parameter up to
# a 7-billion-parameter model and the state alone, before any activation, is this:

# %%
params_7b = 7e9
state_gb = {"weights": 4 * params_7b / 1e9, "gradients": 4 * params_7b / 1e9,
            "AdamW state": 8 * params_7b / 1e9}  # float32: 4 bytes; AdamW: 2 x 4 bytes
total_gb = sum(state_gb.values())
print(" + ".join(f"{name} {gb:.0f} GB" for name, gb in state_gb.items()),
      f"= {total_gb:.0f} GB; AdamW's share: {state_gb['AdamW state'] / total_gb:.0%}")
memory_gb = {"a laptop (16 GB of RAM)": 16, "a 24 GB GPU": 24, "an 80 GB GPU (A100/H100)": 80,
             "a 141 GB GPU (H200)": 141}
for device, gb in memory_gb.items():
    print(f"{device:>26}:", f"fits, {gb - total_gb:.0f} GB left for activations"
          if total_gb < gb else f"does not fit (short by {total_gb - gb:.0f} GB)")

# %% [markdown]
# The optimizer state dominates: AdamW keeps two running averages per parameter, twice the
# memory of the weights themselves, and it exists only during training (inference needs the
# weights alone). The total does not fit a laptop or most single accelerators; the largest
# single GPUs of today (an H200) hold it, with little room left for activations. Cutting
# what is *trained*, and so the gradients and optimizer state, is what lesson 06 does. We keep
# this run (its cost and its weights) for lesson 06, which compares cheaper methods against
# it and looks at the weight update it made.

# %%
from course_utils.finetune import store_full_baseline

print("kept for lesson 06 in", store_full_baseline(full_cost, gpt, gpt_tok, recipe))

# %% [markdown]
# ## 9. Instruction tuning: fine-tuning on chats
#
# Sections 4 and 5 taught a model *one* task in *one* format. An assistant has to do what each
# instruction says: answer briefly when told to be brief, fill a template's slots, take the
# branch a condition picks. Lesson 04 showed course-gpt, a base model, has no reason to do any
# of that. What gives it one is **supervised fine-tuning (SFT)**, also called *instruction
# tuning*: the same causal-LM training as section 5, on **chats** (an optional system turn, a
# user's instruction and the reply we want), many different instructions instead of one task.
#
# ### The chat template
#
# A chat is a list of messages `{"role": ..., "content": ...}`. The tokenizer's **chat template**
# (a small Jinja program shipped in the tokenizer's files) renders it into the one string the
# model reads. Training and use must render chats the same way, so both call
# `apply_chat_template`; for use, `add_generation_prompt=True` ends the text with the header the
# model should continue.

# %%
print(gpt_tok.chat_template)
chat = [{"role": "system", "content": "You are a brief answerer: give only the result."},
        {"role": "user", "content": "What is 7 + 5?"},
        {"role": "assistant", "content": "12"}]
print(gpt_tok.apply_chat_template(chat, tokenize=False))
print(repr(gpt_tok.apply_chat_template(chat[:2], tokenize=False, add_generation_prompt=True)))

# %% [markdown]
# ### Why the prompt tokens get label -100
#
# We want the model to learn to *write the reply*, not to predict the user's instruction or the
# `System:` line: those are given at use time. So every token gets label **-100** (which the
# cross-entropy skips, exactly as padding in section 3) except the tokens of each assistant
# reply **and its end-of-turn token** (here the eos token): learning to produce that token is
# how the tuned model learns to stop when its answer is done. `course_utils.finetune.sft`
# does it (`chat_features`); the template marks the reply with `{% generation %}`, so
# `transformers` can tell which tokens the assistant wrote
# (`return_assistant_tokens_mask=True`):

# %%
from course_utils.finetune import chat_features

features = chat_features(gpt_tok, chat)
tokens = gpt_tok.convert_ids_to_tokens(features["input_ids"])
learned = [tok for tok, lab in zip(tokens, features["labels"], strict=True) if lab != -100]
print(f"{len(tokens)} tokens, {len(learned)} learned:", learned)
print("labels[-8:]:", features["labels"][-8:])

# %% [markdown]
# ### Exercise 05.4: a batch of chats for SFT
#
# Write `chat_batch(chats, tokenizer)`: for a list of chats, return a dict of `torch.long`
# tensors `input_ids`, `attention_mask` and `labels`, shape `(len(chats), longest chat)`:
#
# - `input_ids`: the chat rendered by the tokenizer's template (`apply_chat_template`);
# - `labels`: the token's id where the assistant wrote it (the reply and its eos token, in
#   *every* assistant turn of the chat), -100 everywhere else: system and user turns, the
#   `Assistant:` header, the newline after a turn. Not shifted: the model shifts them (05.2);
# - padding on the **right**, as for training: `input_ids` padded with
#   `tokenizer.pad_token_id`, `attention_mask` 0 there, `labels` -100 there.
#
# `apply_chat_template(chat, return_dict=True, return_assistant_tokens_mask=True)` returns the
# ids and an `assistant_masks` list (1 on the assistant's tokens). The check uses the course-gpt
# tokenizers, chats with system turns, several exchanges, quotes and unicode.

# %%
def chat_batch(chats, tokenizer):
    ### BEGIN SOLUTION
    rows = []
    for messages in chats:
        out = tokenizer.apply_chat_template(messages, return_dict=True,
                                            return_assistant_tokens_mask=True)
        ids, mask = out["input_ids"], out["assistant_masks"]
        rows.append((ids, [t if m else -100 for t, m in zip(ids, mask, strict=True)]))
    width = max(len(ids) for ids, _ in rows)
    batch = {"input_ids": [], "attention_mask": [], "labels": []}
    for ids, labels in rows:
        gap = width - len(ids)
        batch["input_ids"].append(ids + [tokenizer.pad_token_id] * gap)
        batch["attention_mask"].append([1] * len(ids) + [0] * gap)
        batch["labels"].append(labels + [-100] * gap)
    return {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}
    ### END SOLUTION


# %%
check("05.4", chat_batch)

# %% [markdown]
# The library's version is `chat_features` for each chat, then `pad_chat_batch` to pad them:

# %%
from course_utils.finetune import pad_chat_batch


def chat_batch(chats, tokenizer):
    return pad_chat_batch([chat_features(tokenizer, c) for c in chats], tokenizer.pad_token_id)


sft_batch = chat_batch([chat, chat[1:]], gpt_tok)
print({k: tuple(v.shape) for k, v in sft_batch.items()})
for key, row in sft_batch.items():  # the shorter chat (no system turn) ends in padding
    print(f"{key + '[1, -12:]':>22}", row[1, -12:].tolist())

# %% [markdown]
# ### A short SFT run
#
# `course_utils.data.instruction_data(seed, split)` generates the course's instruction data:
# chats from the course world whose replies code can check (`item.check(reply)`), over the
# prompting techniques of lesson 04 (a system *role*, the world's *tasks*, *templates* with
# slots, *conditional* and *iterative* instructions), and a held-out `"eval"` split whose phrasings,
# names and contents never occur in `"train"`. To fit the lesson's minute we tune a fresh
# course-gpt on one instruction only, the *brief answerer* role ("give only the result"), for a
# few steps: the same `Trainer`, with `pad_chat_batch` as the collator.

# %%
from datasets import Dataset

from course_utils.data import instruction_data
from course_utils.data.instructions import TECHNIQUES
from course_utils.finetune.sft import follow_rates, generate_replies


def brief_role(split, n):
    """The first n brief-answerer instructions of a split."""
    items = instruction_data(seed=0, split=split, n=8 * n, techniques=("role",))
    return [it for it in items if it.kind == "role/brief"][:n]


sft_train, sft_held = brief_role("train", 80), brief_role("eval", 12)
probe = sft_held[0]
print("held-out instruction:", probe.messages)
sft_model, _ = load_pretrained("course-gpt")
replies_before = generate_replies(sft_model, gpt_tok, sft_held, max_new_tokens=24)
print(f"base course-gpt: {repr(replies_before[0])} -> followed: {probe.check(replies_before[0])}")


def chat_dataset(items):
    return Dataset.from_list([chat_features(gpt_tok, it.chat()) for it in items])


sft_history = LossHistory()
sft_trainer = Trainer(
    model=sft_model,
    args=TrainingArguments(output_dir=f"{OUT}/sft", max_steps=10, per_device_train_batch_size=8,
                           learning_rate=2e-3, warmup_steps=2, weight_decay=0.01,
                           logging_steps=2, save_strategy="no", report_to="none", seed=0),
    train_dataset=chat_dataset(sft_train), eval_dataset=chat_dataset(sft_held),
    data_collator=lambda feats: pad_chat_batch(feats, gpt_tok.pad_token_id),
    callbacks=[sft_history])
held_loss_before = sft_trainer.evaluate()["eval_loss"]
sft_trainer.train()
held_loss_after = sft_trainer.evaluate()["eval_loss"]
print("loss on assistant tokens, training batches:",
      [f"{loss:.2f}" for _, loss in sft_history.train])
print(f"loss on the held-out chats' assistant tokens: {held_loss_before:.2f} -> "
      f"{held_loss_after:.2f}")

# %%
replies_after = generate_replies(sft_model, gpt_tok, sft_held, max_new_tokens=24)
print(f"after SFT:       {repr(replies_after[0])} -> followed: {probe.check(replies_after[0])}")
import re


def last_number(reply):
    numbers = re.findall(r"\d+", reply)
    return int(numbers[-1]) if numbers else None


print(f"{sft_trainer.state.global_step} steps on {len(sft_train)} chats")
for when, replies in (("before", replies_before), ("after", replies_after)):
    right = sum(last_number(r) == it.spec["answer"] for r, it in zip(replies, sft_held, strict=True))
    print(f"{when:>6}: brief role followed on {follow_rates(sft_held, replies)['all']:.0%} of "
          f"{len(sft_held)} held-out problems; the reply's last number is the right answer on "
          f"{right / len(sft_held):.0%}")

# %% [markdown]
# A few steps changed *how* the model answers: whatever the system turn says, the base model
# continues the text the way pretraining taught it (worked steps, or a story about the
# problem's people, as printed above); after SFT it gives only the result, on problems it
# never saw, in wordings of the role it never saw. The
# check scores the format the role asks for, not the arithmetic, so the last line counts the
# right answers too: compare them before and after. Answering at once takes away the worked
# steps the base model computed with (lesson 04's chain of thought), and these few steps of
# tuning taught the format, not how to do the sums in one go. SFT teaches the *behaviour* the
# chats show; what the model can compute comes from pretraining, or from far more tuning.
#
# ### The bundled instruction-tuned model: course-gpt-chat
#
# `course-gpt-chat` is course-gpt after SFT on every technique of the `"train"` split, with the
# loss on assistant tokens only, as above (`python -m course_utils.pretrained build` makes it,
# like the other checkpoints). Its tokenizer carries the same chat template. Here both models
# answer the same held-out instructions, scored by the items' own checks; the benchmark
# `benchmarks/capabilities.py` runs the same two functions on more of them.

# %%
chat_model, chat_tok = load_pretrained("course-gpt-chat")
base_model, _ = load_pretrained("course-gpt")
held_out = instruction_data(seed=0, split="eval", n=40)
rates = {name: follow_rates(held_out, generate_replies(model, tok, held_out))
         for name, model, tok in (("course-gpt", base_model, gpt_tok),
                                  ("course-gpt-chat", chat_model, chat_tok))}
print(f"instructions followed, {len(held_out)} held-out instructions "
      f"({len(held_out) // len(TECHNIQUES)} per technique):")
print(f"{'technique':>12} " + " ".join(f"{name:>16}" for name in rates))
for technique in [*rates["course-gpt"]]:
    print(f"{technique:>12} " + " ".join(f"{r[technique]:>16.0%}" for r in rates.values()))
gain = rates["course-gpt-chat"]["all"] - rates["course-gpt"]["all"]
print(f"course-gpt-chat follows {100 * gain:+.0f} points more of the same held-out instructions")

# %%
fig, ax = plt.subplots(figsize=(7, 3))
techniques = list(rates["course-gpt"])
for k, (name, r) in enumerate(rates.items()):
    ax.bar([i + 0.4 * k for i in range(len(techniques))], [r[t] for t in techniques], width=0.4,
           label=name)
ax.set_xticks([i + 0.2 for i in range(len(techniques))], techniques)
ax.set_ylabel("fraction followed")
ax.set_ylim(0, 1)
ax.legend()
ax.set_title("held-out instructions followed")
plt.show()

# %% [markdown]
# Both models answered the same items, so the difference per technique is what SFT on the
# `"train"` chats bought, on phrasings, names and contents it never saw. Where course-gpt-chat
# still fails, read its replies (`generate_replies(chat_model, chat_tok, held_out)`) beside
# `item.reply`: a slot left out, a branch not taken, a step skipped. On this few items the figures
# move by several points from one seed to another; lesson 04 measures each advanced prompting
# technique on both models over more items, with a paired test.
#
# ## 10. When one machine is not enough
#
# Everything above ran in one process. The same `Trainer` code scales out without changes:
# [`scripts/finetune_script.py`](../scripts/finetune_script.py) is this lesson's course-gpt
# run as a script, and a launcher starts several copies of it:
#
# ```bash
# python scripts/finetune_script.py --max-steps 30                               # 1 process
# torchrun --standalone --nproc_per_node 2 scripts/finetune_script.py --max-steps 30
# accelerate launch --multi_gpu --num_processes 2 scripts/finetune_script.py --max-steps 30
# ```
#
# The launcher gives each copy its rank in environment variables (`RANK`, `WORLD_SIZE`, ...).
# `Trainer` reads them, joins a process group (`gloo` on CPUs, `nccl` on GPUs) and wraps the
# model in `DistributedDataParallel`: every process computes gradients on its own share of
# each batch, the gradients are averaged across processes, and all copies take the same
# optimizer step, so they stay identical. The course's tests run the script this way with two
# CPU processes (`tests/test_distributed_finetune.py`) and check the two copies end with the
# same weights. On CPUs it is slower, not faster; the path is the one you take to several GPUs.
#
# ## Summary
#
# - `Trainer` + `TrainingArguments` is the training loop: batching, optimizer, schedule,
#   logging, evaluation. You supply tokenized data sets, a collator and (for metrics)
#   `compute_metrics`.
# - Tokenize with truncation in `map`; let the collator pad per batch.
#   `DataCollatorWithPadding` for classification, `DataCollatorForLanguageModeling(mlm=False)`
#   for causal LMs (labels = inputs, shifted inside the model, padding = -100).
# - Measure before and after on held-out data; watch train *and* eval loss; stop where eval
#   loss is lowest.
# - Full fine-tuning trains every weight and pays ~16 bytes per parameter plus activations;
#   AdamW's state is the largest part.
# - Instruction tuning (SFT) is the same causal-LM training on chats rendered by the chat
#   template, with label -100 on everything but the assistant's replies and their end-of-turn
#   token; it teaches the behaviour the chats show (following a role, a format), measured on
#   held-out instructions by code.

# %%
progress()
