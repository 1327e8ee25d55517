# %% [markdown]
# # 06 · LoRA and parameter-efficient fine-tuning
#
# In lesson 05 full fine-tuning trained every weight of course-gpt. It worked, and it was
# expensive: a gradient and two AdamW averages for every parameter, and a full copy of the
# model on disk for every task. For a 7-billion-parameter model that is over 100 GB of
# training state and 28 GB per saved task.
#
# **Parameter-efficient fine-tuning** freezes the pretrained weights and trains a small
# number of new ones. This lesson builds the most used method, **LoRA** (low-rank
# adaptation), from scratch, then uses the `peft` library for LoRA and for **prompt tuning**,
# and compares everything with full fine-tuning on the same task and budget.
#
# **You will:** see that a real fine-tuning update has low rank, write a LoRA layer (with
# merge and unmerge) as a module, count trainable parameters, inject LoRA into course-gpt by
# name, apply `peft` (and fix the cheat-sheet version's `target_modules`), build the inputs of
# prompt tuning by hand and meet P-tuning, read a cost/quality table of full fine-tuning,
# LoRA at several ranks and targets, prompt tuning and P-tuning on a short budget, and measure
# what $\alpha / r$ does when the rank changes.

# %%
from course_utils import check, hint, progress, solution, start_lesson

# As in lesson 05 (two threads, no progress bars), and no load reports: lesson 05 covered them.
start_lesson(seed=0, threads=2, quiet=True, load_reports=False)

import copy
import warnings

import matplotlib.pyplot as plt
import torch

from course_utils.finetune import LABEL_NAMES, Recipe, costs, sentiment_splits
from course_utils.pretrained import asset_path, load_pretrained

warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")  # inside peft
OUT = "runs/06"
recipe = Recipe()  # the same task, data and budget as lesson 05
splits = sentiment_splits(recipe)

# %% [markdown]
# ## 1. How much does fine-tuning really change?
#
# Fine-tuning turns each weight matrix $W_0$ into $W_0 + \Delta W$. Lesson 05 kept its fully
# fine-tuned course-gpt; here it is again (if you skipped lesson 05, this cell runs that
# fine-tuning now, with the same recipe, and keeps it).

# %%
from course_utils.finetune import full_finetune_baseline

full_cost, full_dir = full_finetune_baseline(recipe)
print(f"full fine-tuning: test accuracy {full_cost.accuracy:.1%} ({full_cost.source})")
base, tok = load_pretrained("course-gpt")
tuned, _ = load_pretrained(str(full_dir))

# %% [markdown]
# Take the update $\Delta W$ of each attention projection `c_attn` (a
# $d_{model} \times 3 d_{model}$ matrix: queries, keys and values of all heads) and look at
# its **singular values**. A
# matrix of rank $r$ has exactly $r$ non-zero singular values; a matrix that is *close* to
# rank $r$ has $r$ large ones and a tail of small ones. For comparison: random noise of the
# same shape and size, whose singular values are all about equal.

# %%
from course_utils.finetune.lora import rank_for_energy, update_singular_values

fig, ax = plt.subplots(figsize=(6.5, 3.8))
for i, block in enumerate(base.transformer.h):
    w0 = block.attn.c_attn.weight.detach()
    w1 = tuned.transformer.h[i].attn.c_attn.weight.detach()
    sv = update_singular_values(w0, w1)
    ax.semilogy(sv / sv[0], label=f"layer {i}: 90% of the update in {rank_for_energy(sv)} "
                                  f"of {len(sv)} directions")
noise = torch.randn_like(w0) * (w1 - w0).std()
sv_noise = torch.linalg.svdvals(noise)
ax.semilogy(sv_noise / sv_noise[0], "k--",
            label=f"random noise of the same shape: {rank_for_energy(sv_noise)} directions")
ax.set_xlabel("singular value index")
ax.set_ylabel("singular value / largest")
ax.set_title("Singular values of the full fine-tuning update of c_attn")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The update is far from random: its singular values fall off by more than an order of
# magnitude, and 90% of its energy (the sum of the squared singular values) sits in far fewer
# directions than it does for noise of the same shape. (How low a rank the *task* needs is
# another question: section 5 trains LoRA at ranks 1, 4 and 16 and compares.) The LoRA
# paper (Hu et al., 2021) made the same observation on large models and turned it into a
# method: if $\Delta W$ is close to low rank anyway, **train it in low-rank form from the
# start**.
#
# ## 2. LoRA from scratch
#
# Write the update as a product of two thin matrices, $\Delta W = \frac{\alpha}{r} B A$ with
# $A$ of shape $r \times d_{in}$ and $B$ of shape $d_{out} \times r$:
#
# $$h = W_0 x + b + \frac{\alpha}{r}\, B (A x)$$
#
# - $W_0$ and $b$ stay **frozen**; only $A$ and $B$ train: $r (d_{in} + d_{out})$ parameters
#   instead of $d_{in} d_{out}$ (the cell after the exercise counts them for course-gpt).
# - $B$ starts at **zero**, so at step 0 the model is exactly the pretrained one; $A$ starts
#   random, so the first gradient step moves $B$ (with $A = 0$ as well, both gradients would
#   be zero and nothing would ever train).
# - $\frac{\alpha}{r}$ **scales** the update. Section 7 says exactly what it does (and what it
#   does not do) when the rank changes.
# - Compute $B(Ax)$, never $BA$: two thin matrix products per token are cheaper than
#   building the full $d_{out} \times d_{in}$ matrix.
# - **Dropout** (a regulariser) goes on the LoRA path's input only: the frozen path sees the
#   clean $x$, $h = W_0 x + b + \frac{\alpha}{r} B(A\,\mathrm{dropout}(x))$.
#
# Which layers does course-gpt have to wrap? Ask the model. GPT-2's projections are
# `transformers`' `Conv1D`: a linear layer that stores its weight **transposed**,
# `(d_in, d_out)`, and computes `x @ W + b`.

# %%
from transformers.pytorch_utils import Conv1D

from course_utils.finetune.lora import linear_module_names

print("linear layers of course-gpt:", linear_module_names(base))
c_attn = base.transformer.h[0].attn.c_attn
d_in, d_out = c_attn.weight.shape  # Conv1D: (d_in, d_out)
print(f"c_attn is a {type(c_attn).__name__} with weight {tuple(c_attn.weight.shape)}: "
      f"{d_in * d_out:,} weights; LoRA r=4 trains {4 * (d_in + d_out):,}")

# %% [markdown]
# ### Exercise 06.1: a LoRA layer, as a class
#
# Write `MyLoRALayer(base, r, alpha, dropout=0.0)`, an `nn.Module` that wraps a frozen
# `nn.Linear` **or** `Conv1D`. The grader loads weights into it by name, so keep these names:
#
# - `self.base`: the wrapped layer, frozen (`requires_grad_(False)`);
# - `self.lora_A`: an `nn.Parameter` of shape `(r, d_in)`, Kaiming-uniform
#   (`nn.init.kaiming_uniform_(A, a=math.sqrt(5))`, `peft`'s initialisation);
#   `self.lora_B`: an `nn.Parameter` of shape `(d_out, r)`, zeros. Both with the base
#   weight's dtype;
# - `forward(x)`: `base(x) + (alpha / r) * (dropout(x) @ A.T) @ B.T`, or `base(x)` alone when
#   the layer is merged;
# - `merge()`: add `(alpha / r) * B @ A` to `self.base.weight` in place, **in the base layer's
#   layout** (transposed for `Conv1D`); merging a merged layer changes nothing;
#   `unmerge()`: take it out again.
#
# The grader gives your layer and `peft`'s LoRA layer the same base weights, `A` and a
# non-zero `B`, and compares the outputs (in eval mode, in training mode with the same
# dropout seed, after `merge()`, a second `merge()` and `unmerge()`), the weight after each,
# and the gradients: only `A` and `B` may get one.

# %%
import math


class MyLoRALayer(torch.nn.Module):
    def __init__(self, base, r, alpha, dropout=0.0):
        super().__init__()
        self.base = base
        self.merged = False
        self.dropout = torch.nn.Dropout(dropout)
        ### BEGIN SOLUTION
        self.base.requires_grad_(False)
        self.is_conv1d = isinstance(base, Conv1D)
        d_in, d_out = base.weight.shape if self.is_conv1d else base.weight.shape[::-1]
        like = {"dtype": base.weight.dtype, "device": base.weight.device}
        self.lora_A = torch.nn.Parameter(torch.empty(r, d_in, **like))
        self.lora_B = torch.nn.Parameter(torch.zeros(d_out, r, **like))
        torch.nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scaling = alpha / r
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        if self.merged:
            return self.base(x)
        return self.base(x) + self.scaling * (self.dropout(x) @ self.lora_A.T @ self.lora_B.T)
        ### END SOLUTION

    def merge(self):
        ### BEGIN SOLUTION
        if not self.merged:
            delta = self.scaling * (self.lora_B @ self.lora_A)
            with torch.no_grad():
                self.base.weight += delta.T if self.is_conv1d else delta
            self.merged = True
        ### END SOLUTION

    def unmerge(self):
        ### BEGIN SOLUTION
        if self.merged:
            delta = self.scaling * (self.lora_B @ self.lora_A)
            with torch.no_grad():
                self.base.weight -= delta.T if self.is_conv1d else delta
            self.merged = False
        ### END SOLUTION


# %%
check("06.1", MyLoRALayer)

# %% [markdown]
# `course_utils.finetune.lora.LoRALayer` is this class; `inject_lora` swaps the named layers
# of a model for wrapped ones and freezes everything else (you write it in exercise 06.3).

# %%
from course_utils.finetune.lora import LoRALayer, inject_lora

scratch = inject_lora(copy.deepcopy(base), ["c_attn"], r=4, alpha=8, dropout=0.05)
print(scratch.transformer.h[0].attn)
ids = tok(["Review: I loved it.\nSentiment:"], return_tensors="pt")["input_ids"]
with torch.no_grad():
    print("at initialisation (B = 0) the LoRA model computes what the base model computes:",
          torch.allclose(scratch.eval()(ids).logits, base(ids).logits))

# %% [markdown]
# ### Exercise 06.2: counting trainable parameters
#
# Return `(trainable, total)`: the number of parameters (numbers, not tensors) that will
# train (`requires_grad`), and the number of all parameters. Careful: GPT-2's output layer
# `lm_head` *shares* its weight with the token embedding `wte`; it is one tensor and must be
# counted once. Count without changing the model (its `requires_grad` flags included): the
# grader checks that the model is unchanged afterwards.

# %%
def count_trainable_parameters(model):
    ### BEGIN SOLUTION
    params = list(model.parameters())  # yields a shared tensor once
    return (sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params))
    ### END SOLUTION


# %%
check("06.2", count_trainable_parameters)

# %%
from course_utils.finetune.lora import count_trainable_parameters

trainable, total = count_trainable_parameters(scratch)
print(f"LoRA r=4 on c_attn: {trainable:,} trainable of {total:,} "
      f"({100 * trainable / total:.2f}%)")

# %% [markdown]
# ### Exercise 06.3: injecting LoRA layers by name
#
# `inject_lora(model, target_modules, r, alpha, dropout=0.0, layer=MyLoRALayer)` wraps every
# linear layer (`nn.Linear` or `Conv1D`) whose name matches `target_modules` in
# `layer(old, r, alpha, dropout)`, freezes **everything else**, and returns the model
# (changed in place). Match names the way `peft` does: a list names modules by their last
# components (`"c_attn"` or `"attn.c_proj"` matches when the full name *is* it or ends with
# `"." + it`; a substring is not enough: `"1.mlp.c_fc"` is not block 11's), and a single
# string is a regular expression for the **whole** name (`re.fullmatch`). Collect the names
# before replacing anything; replace a child through its parent
# (`model.get_submodule("transformer.h.0.attn")`). The grader passes its own LoRA layer as
# `layer`, so this exercise does not depend on 06.1.

# %%
import re


def inject_lora_mine(model, target_modules, r, alpha, dropout=0.0, layer=MyLoRALayer):
    ### BEGIN SOLUTION
    def matches(name):
        if isinstance(target_modules, str):
            return re.fullmatch(target_modules, name) is not None
        return any(name == t or name.endswith("." + t) for t in target_modules)

    names = [n for n, m in model.named_modules()
             if n and matches(n) and isinstance(m, torch.nn.Linear | Conv1D)]
    model.requires_grad_(False)
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, layer(getattr(parent, child), r, alpha, dropout))
    return model
    ### END SOLUTION


# %%
check("06.3", inject_lora_mine)

# %% [markdown]
# Is it really `peft`'s LoRA? Build both on course-gpt with the same configuration, copy
# `peft`'s `A` and (non-zero) `B` into ours, and compare the whole model's logits
# (`course_utils`' `inject_lora` is the same function as yours):

# %%
from peft import LoraConfig, get_peft_model

targets = ["c_attn", "mlp.c_proj"]
ours = inject_lora(copy.deepcopy(base), targets, r=4, alpha=8).eval()
theirs = get_peft_model(copy.deepcopy(base), LoraConfig(
    r=4, lora_alpha=8, target_modules=targets, fan_in_fan_out=True)).eval()
wrapped = [n for n, m in ours.named_modules() if isinstance(m, LoRALayer)]
with torch.no_grad():
    for name in wrapped:
        target = theirs.base_model.model.get_submodule(name)
        target.lora_B["default"].weight.normal_(std=0.02)
        ours.get_submodule(name).lora_A.copy_(target.lora_A["default"].weight)
        ours.get_submodule(name).lora_B.copy_(target.lora_B["default"].weight)
    gap = (ours(ids).logits - theirs(ids).logits).abs().max().item()
    moved = (ours(ids).logits - base(ids).logits).abs().max().item()
print(f"{len(wrapped)} LoRA layers; trainable: ours {count_trainable_parameters(ours)[0]:,}, "
      f"peft {theirs.get_nb_trainable_parameters()[0]:,}")
print(f"largest logit difference, ours vs peft: {gap:.1e} (vs the base model: {moved:.2f})")

# %% [markdown]
# After training, $W_0 + \frac{\alpha}{r} B A$ is one ordinary matrix: folding the update
# into the weight removes the extra matrix products, so the fine-tuned model is exactly as
# fast as the base model. `merge_lora` does it for every wrapped layer and hands back plain
# layers:

# %%
from course_utils.finetune.lora import merge_lora

with torch.no_grad():  # pretend training happened: give B some values
    for layer in scratch.modules():
        if isinstance(layer, LoRALayer):
            layer.lora_B.normal_(std=0.02)
    scratch.eval()
    unmerged = scratch(ids).logits
    merged_model = merge_lora(scratch)
    print("after merging, c_attn is a", type(merged_model.transformer.h[0].attn.c_attn).__name__,
          "again; largest difference in the logits:",
          f"{(merged_model(ids).logits - unmerged).abs().max().item():.2e}")

# %% [markdown]
# From here on we use `peft`.
#
# ## 3. LoRA with `peft`: the cheat-sheet version
#
# The configuration that LLM cheat-sheets give, **the cheat-sheet version**, was written for
# LLaMA-style models:

# %%
config = LoraConfig(r=8, lora_alpha=32, target_modules=["q_proj", "v_proj"],
                    lora_dropout=0.05, bias="none", task_type="CAUSAL_LM")
try:
    get_peft_model(copy.deepcopy(base), config)
except ValueError as err:
    print(f"{type(err).__name__}: {err}")

# %% [markdown]
# LLaMA has separate `q_proj`, `k_proj`, `v_proj` layers. GPT-2 computes queries, keys and
# values with **one** fused projection, `c_attn` (and `c_proj`, `c_fc` for the rest), so
# those names do not exist. The names to use are the ones the model has:

# %%
for name, module in base.transformer.h[0].named_modules():
    if name:
        print(f"transformer.h.0.{name:<20} {type(module).__name__}")

# %% [markdown]
# `c_attn` is the projection to use (LoRA on queries and values in LLaMA is LoRA on part of
# `c_attn` in GPT-2). It is a `Conv1D`, whose weight is transposed, so `peft` needs
# `fan_in_fan_out=True` (it sets it itself, with a warning, if you forget).

# %%
config = LoraConfig(r=8, lora_alpha=32, target_modules=["c_attn"], lora_dropout=0.05,
                    bias="none", task_type="CAUSAL_LM", fan_in_fan_out=True)
peft_lora = get_peft_model(copy.deepcopy(base), config)
peft_lora.print_trainable_parameters()

# %% [markdown]
# ## 4. Prompt tuning and P-tuning
#
# Prompt tuning leaves every weight alone and learns a few **virtual tokens**: $n$ input
# embeddings, a tensor of shape `(n, d_model)`, put in front of every example. The frozen
# model never sees token ids for them, only their embeddings; what is trained is the tensor
# itself. Cheat-sheets often call this "P-tuning", but that is a different method:
#
# - **prompt tuning** (`PromptTuningConfig`, Lester et al., 2021) trains the `n` virtual
#   embeddings directly;
# - **P-tuning** (`PromptEncoderConfig`, Liu et al., 2021) *produces* them with a small
#   trainable network, the **prompt encoder** (an MLP or an LSTM over an embedding table of
#   its own), and trains that network. The reparameterisation makes training steadier; after
#   training only its `n` outputs matter.
#
# Both feed the frozen model the same way, and that part you write now.
#
# ### Exercise 06.4: the inputs of prompt tuning
#
# `soft_prompt_inputs(prompt, input_ids, attention_mask, labels, embedding)` returns the dict
# the frozen model is called with (`model(**inputs)`): `inputs_embeds`, the token embeddings
# `embedding(input_ids)` with `prompt` (`(n, d_model)`, the same for every example) in front,
# `(batch, n + seq, d_model)`; `attention_mask` with `n` ones in front (every token may attend
# to the virtual ones); `labels` with `n` labels of `-100` in front (the loss skips them: there
# is nothing to predict there). A `None` mask or `None` labels stay `None`. Keep the gradient
# path to `prompt`: it is the only thing that trains.

# %%
def soft_prompt_inputs(prompt, input_ids, attention_mask, labels, embedding):
    ### BEGIN SOLUTION
    batch, n = input_ids.shape[0], prompt.shape[0]
    embeds = embedding(input_ids)
    virtual = prompt.to(embeds.dtype).unsqueeze(0).expand(batch, -1, -1)
    out = {"inputs_embeds": torch.cat([virtual, embeds], dim=1), "attention_mask": None,
           "labels": None}
    if attention_mask is not None:
        ones = torch.ones(batch, n, dtype=attention_mask.dtype)
        out["attention_mask"] = torch.cat([ones, attention_mask], dim=1)
    if labels is not None:
        out["labels"] = torch.cat([torch.full((batch, n), -100, dtype=labels.dtype), labels],
                                  dim=1)
    return out
    ### END SOLUTION


# %%
check("06.4", soft_prompt_inputs)

# %% [markdown]
# `peft` does the same. With `PromptTuningInit.TEXT` the virtual embeddings start as the
# embeddings of a real instruction, tokenized by the tokenizer at `tokenizer_name_or_path`;
# cheat-sheets put a hub model's name there (`tokenizer_name_or_path="bigscience/bloomz-560m"`),
# we give the bundled tokenizer's directory, so nothing is downloaded. Feeding the frozen
# course-gpt `course_utils`' `soft_prompt_inputs` (the function you just wrote) with `peft`'s
# virtual embeddings gives `peft`'s logits and loss:

# %%
from peft import PromptEncoderConfig, PromptTuningConfig, PromptTuningInit

from course_utils.finetune.soft_prompt import soft_prompt_inputs

pt_config = PromptTuningConfig(
    task_type="CAUSAL_LM", prompt_tuning_init=PromptTuningInit.TEXT, num_virtual_tokens=8,
    prompt_tuning_init_text="Is each review positive, negative or neutral?",
    tokenizer_name_or_path=str(asset_path("course-gpt")))
peft_prompt = get_peft_model(copy.deepcopy(base), pt_config).eval()
peft_prompt.print_trainable_parameters()
batch = tok([f"Review: {t}\nSentiment:" for t in splits["test"]["text"][:4]],
            return_tensors="pt", padding=True)
labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
virtual = peft_prompt.prompt_encoder["default"].embedding.weight  # (8, d_model): what trains
with torch.no_grad():
    want = peft_prompt(**batch, labels=labels)
    got = base(**soft_prompt_inputs(virtual, batch["input_ids"], batch["attention_mask"], labels,
                                    base.get_input_embeddings()))
print(f"by hand vs peft: logits {tuple(got.logits.shape)}, largest difference "
      f"{(got.logits - want.logits).abs().max().item():.1e}; loss {got.loss.item():.4f} vs "
      f"{want.loss.item():.4f}")

# %% [markdown]
# P-tuning with `peft`: the same 8 virtual tokens, produced by an MLP prompt encoder. It
# trains more parameters (the encoder's), yet at the end it, too, only hands the model 8
# embeddings, which go in through the same `soft_prompt_inputs`:

# %%
p_config = PromptEncoderConfig(task_type="CAUSAL_LM", num_virtual_tokens=8,
                               encoder_hidden_size=64, encoder_reparameterization_type="MLP")
peft_ptuning = get_peft_model(copy.deepcopy(base), p_config).eval()
peft_ptuning.print_trainable_parameters()
with torch.no_grad():
    produced = peft_ptuning.get_prompt(batch_size=1)[0]  # the encoder's output, (8, d_model)
    want = peft_ptuning(**batch, labels=labels)
    got = base(**soft_prompt_inputs(produced, batch["input_ids"], batch["attention_mask"],
                                    labels, base.get_input_embeddings()))
print(f"P-tuning's {tuple(produced.shape)} virtual embeddings by hand vs peft: largest logit "
      f"difference {(got.logits - want.logits).abs().max().item():.1e}")

# %% [markdown]
# ## 5. Full fine-tuning vs LoRA vs prompt tuning and P-tuning
#
# After lesson 05's 30 steps every method but prompt tuning answers every test review right,
# and a table where everything scores 100% says nothing about quality. So the comparison
# gives every method a **short budget**: the same training examples and batch size, but only
# a few optimizer steps, where the methods are still learning and differ. Full fine-tuning
# runs again with this budget. Each method gets the learning rate that suits it (fewer
# trainable parameters usually want a larger one; a small sweep on the validation loss chose
# them). LoRA runs at ranks 1, 4 and 16 on every linear layer of the blocks (`c_attn`,
# `c_proj`, `c_fc`), and once on `c_attn` alone, the GPT-2 counterpart of the cheat-sheet's
# queries-and-values choice; prompt tuning and P-tuning get 8 virtual tokens each. Every run
# is seeded, measured by the same meter as in lesson 05, and saves what it trained: the whole
# model for full fine-tuning, only the adapter for the others.

# %%
from tqdm.auto import tqdm

from course_utils.finetune import finetune
from course_utils.finetune.methods import COMPARISON, comparison_recipe

short = comparison_recipe(recipe)
print(f"budget: {short.max_steps} steps of {short.batch_size} examples "
      f"(lesson 05: {recipe.max_steps} steps)")
base_params = costs.count_parameters(base)[1]
results, runs = [], {}
for method in tqdm(COMPARISON, desc="fine-tuning runs"):
    model = method.apply(copy.deepcopy(base), asset_path("course-gpt"))
    runs[method.name] = finetune(model, tok, method.name, f"{OUT}/{method.name}", short,
                                 splits=splits, base_params=base_params, quiet=True,
                                 learning_rate=method.learning_rate, eval_strategy="no")
    results.append(runs[method.name].cost)
print(costs.format_table(results))

# %%
costs.plot_costs(results)
plt.show()

# %%
ranked = sorted(results, key=lambda c: -c.accuracy)
print("test accuracy after", short.max_steps, "steps, best first (chance is 33.3%):")
for c in ranked:
    print(f"  {c.method:<24} {c.accuracy:6.1%}   training {100 * c.trainable_fraction:6.2f}% "
          f"of the parameters")
full_run = runs["full"].cost
lora_runs = [c for c in results if c.method.startswith("LoRA")]
best = max(lora_runs, key=lambda c: (c.accuracy, -c.trainable_fraction))
print(f"best LoRA: {best.method}, {100 * (best.accuracy - full_run.accuracy):+.1f} points vs "
      f"full fine-tuning, with {100 * best.trainable_fraction:.2f}% of the parameters")

# %% [markdown]
# How to read the table:
#
# - **Trainable parameters and optimizer state** fall by orders of magnitude: AdamW keeps its
#   two averages only for what trains.
# - **Size on disk**: LoRA saves only $A$ and $B$, kilobytes instead of megabytes. One base
#   model can serve many tasks, each a small adapter.
# - **Peak memory** falls less: the activations of the forward pass still have to be kept for
#   the backward pass, and for a model this small they are most of the memory. For a
#   billion-parameter model the 16 bytes per parameter dominate, and LoRA's savings are what
#   make fine-tuning fit on one GPU. Prompt tuning even *adds* activations: its virtual tokens
#   make every sequence longer.
# - **Time per step** barely changes, and can even grow: the forward and backward passes
#   still run through the whole model (the gradient must flow back to the first adapter);
#   only the weight gradients and optimizer updates of the frozen layers are skipped, and in
#   a model this small the adapters' extra small matrix products cost about as much as that
#   saves. Times measured in a notebook also depend on whatever else the machine is doing:
#   `benchmarks/finetune.py` measures them properly, the methods taking turns, medians over
#   repeats (`benchmarks/results/finetune.md`).
# - **Accuracy** on a short budget is a race: read the ranking above. More rank is more
#   capacity to move in a few steps, and *where* the adapters go matters as much as how many
#   there are (compare LoRA r=4 on `c_attn` alone with r=4 on every linear layer). A method's
#   learning rate is part of the method: with its larger rate, a LoRA can even overtake full
#   fine-tuning in a handful of steps, and the order can change with a longer budget (lesson
#   05's 30 steps put nearly everything at 100%). Prompt tuning and P-tuning steer only
#   through the input; with small models and short training they are among the weakest
#   (P-tuning's prompt encoder must first learn what to produce), and they get competitive
#   on large models.
#
# ## 6. Saving, loading and merging a `peft` adapter

# %%
from pathlib import Path

from peft import PeftModel

name = best.method
adapter_dir = Path(OUT) / name
print("saved adapter:", sorted(p.name for p in adapter_dir.iterdir()),
      f"({costs.size_on_disk(adapter_dir) / 1024:.0f} KB)")
loaded = PeftModel.from_pretrained(copy.deepcopy(base), adapter_dir).eval()
probe = tok([f"Review: {t}\nSentiment:" for t in splits["test"]["text"][:8]],
            return_tensors="pt", padding=True)
with torch.no_grad():
    trained_out = runs[name].trainer.model.eval()(**probe).logits
    loaded_out = loaded(**probe).logits
    merged = loaded.merge_and_unload()
    merged_out = merged(**probe).logits
print("loaded adapter == trained model:", torch.allclose(loaded_out, trained_out, atol=1e-5))
print(f"merge_and_unload() gives a plain {type(merged).__name__}; merged == unmerged:",
      torch.allclose(merged_out, loaded_out, atol=1e-5),
      f"(largest difference {(merged_out - loaded_out).abs().max().item():.1e})")

# %% [markdown]
# ## 7. What $\frac{\alpha}{r}$ does when the rank changes
#
# The LoRA update is $\Delta W = s\,BA$ with the scaling $s = \frac{\alpha}{r}$. Precisely:
#
# - with $\alpha$ **fixed**, $s$ shrinks as $r$ grows: doubling the rank halves the factor;
# - with $\alpha$ **tied** to $r$ (this course's recipes use $\alpha = 2r$), $s = 2$ for every
#   rank: the factor is constant;
# - **neither** makes the size of the update independent of $r$. $BA$ is a sum of $r$
#   rank-one terms, and Adam moves every entry of $A$ and $B$ by about the learning rate
#   whatever the rank, so with a constant factor the update grows with $r$; dividing by $r$
#   at fixed $\alpha$ over-corrects, and high ranks then learn slowly. Rank-stabilised LoRA
#   (Kalajdzievski, 2023; `use_rslora=True` in `peft`) scales by $\frac{\alpha}{\sqrt{r}}$,
#   between the two, which its analysis shows keeps learning stable as $r$ grows large.
#
# Measured: one LoRA layer (`d_in = d_out = 64`, the twin of your class from `course_utils`)
# trained by Adam for 10 steps towards a random target, at four ranks and the three
# scalings; the size of the update $\|s\,BA\|_F$ after those steps, and how it changes from
# $r = 4$ to $r = 64$:

# %%
def update_norm(r, scaling, steps=10, d=64):
    torch.manual_seed(0)
    layer = LoRALayer(torch.nn.Linear(d, d), r=r, alpha=scaling * r)  # so that alpha / r = s
    x, target = torch.randn(256, d), torch.randn(256, d)
    optimizer = torch.optim.Adam([layer.lora_A, layer.lora_B], lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(layer(x), target).backward()
        optimizer.step()
    return layer.delta_weight().norm().item()


ranks = (1, 4, 16, 64)
schemes = {"alpha = 8 fixed (s = 8 / r)": lambda r: 8 / r,
           "alpha = 2r (s = 2)": lambda r: 2.0,
           "rsLoRA, alpha = 2 (s = 2 / sqrt r)": lambda r: 2 / math.sqrt(r)}
print(f"{'':36}" + "".join(f"r={r:<8}" for r in ranks) + "r=64 / r=4")
for label, s in schemes.items():
    norms = [update_norm(r, s(r)) for r in ranks]
    print(f"{label:36}" + "".join(f"{n:<10.3f}" for n in norms) + f"x{norms[3] / norms[1]:.2f}")

# %% [markdown]
# Read the last column: with $\alpha = 2r$ (a constant factor) the update keeps growing with
# the rank, with $\alpha$ fixed it falls at high ranks, and $\frac{\alpha}{\sqrt r}$ lies
# between them. So changing $r$ in a recipe with $\alpha = 2r$ is not free: the effective step
# size changes with it, and the learning rate may need retuning (or use rsLoRA).
#
# ## Summary
#
# - A fine-tuning update is close to low rank; LoRA trains it as $\frac{\alpha}{r} BA$ with
#   $B = 0$ at the start, on frozen weights, and merges it back for free inference.
# - With `peft`: `LoraConfig` + `get_peft_model`, with `target_modules` named after *your*
#   model's layers (`c_attn` for GPT-2, `q_proj`/`v_proj` for LLaMA).
# - LoRA is a module around a frozen layer (mind `Conv1D`'s transposed weight), injected by
#   name with `peft`'s matching rules.
# - Prompt tuning trains only a few input embeddings, prepended with a longer mask and -100
#   labels; `PromptTuningInit.TEXT` starts them from a real instruction. P-tuning produces
#   them with a small prompt encoder instead.
# - $\frac{\alpha}{r}$ with $\alpha = 2r$ keeps the factor constant, not the update's size;
#   rsLoRA's $\frac{\alpha}{\sqrt r}$ is the stable middle.
# - Parameter-efficient methods cut trainable parameters, optimizer state and checkpoint size
#   by orders of magnitude; activations and compute per step stay.

# %%
progress()
