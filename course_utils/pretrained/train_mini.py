"""Distil ``course-gpt-mini``: a 2-layer student of ``course-gpt``, plus its from-scratch twin.

Both students have the same size, the same initial weights, see the same windows of the course
corpus in the same order for the same number of steps, with the same optimiser; the only
difference is the loss. (On a busy CPU the distilled run may stop at its time budget; the twin
then trains for exactly as many steps.) The distilled one learns from
:func:`course_utils.distillation.distillation_loss` (the teacher's softened distribution mixed
with the next token), the twin from the next token alone. So the lesson's and the benchmark's
"distilled vs from scratch" comparison measures the loss and nothing else. The twin is saved in
``course-gpt-mini/from-scratch/``. The tokenizer is the teacher's (the draft model of
speculative decoding must share it).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerBase

from course_utils.distillation import distillation_loss, shifted_labels
from course_utils.pretrained.train_gpt import lr_at, mean_loss, pack


@dataclass
class MiniRecipe:
    """Sizes and optimiser settings of the student runs."""

    n_layer: int = 2
    n_embd: int = 128
    n_head: int = 4
    n_positions: int = 256
    steps: int = 800
    batch_size: int = 8
    lr: float = 2e-3
    warmup_steps: int = 30
    weight_decay: float = 0.1
    temperature: float = 1.0  # T = 2 was worse than from scratch in a 120-step trial
    alpha: float = 0.5
    eval_every: int = 100
    seed: int = 0
    time_budget: float | None = 360.0  # seconds for the distilled run; a busy CPU ends it early


def new_student(tokenizer: PreTrainedTokenizerBase, recipe: MiniRecipe) -> GPT2LMHeadModel:
    """A freshly initialised student (seeded, so both twins start from the same weights)."""
    torch.manual_seed(recipe.seed)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=recipe.n_positions, n_embd=recipe.n_embd,
        n_layer=recipe.n_layer, n_head=recipe.n_head, n_inner=4 * recipe.n_embd,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    return GPT2LMHeadModel(config)


def train_student(teacher: GPT2LMHeadModel | None, tokenizer: PreTrainedTokenizerBase,
                  train_docs: list[str], val_docs: list[str], recipe: MiniRecipe,
                  name: str = "course-gpt-mini") -> tuple[GPT2LMHeadModel, dict]:
    """Train a student: distilled from ``teacher``, or from scratch when ``teacher`` is None."""
    if teacher is not None and len(tokenizer) != teacher.config.vocab_size:
        raise ValueError("the student must share the teacher's tokenizer: vocabulary sizes "
                         f"{len(tokenizer)} and {teacher.config.vocab_size} differ")
    model = new_student(tokenizer, recipe)
    block = min(recipe.n_positions, teacher.config.n_positions if teacher else 10**9)
    train = pack(tokenizer, train_docs, block)
    val = pack(tokenizer, val_docs, block)[:24]
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=recipe.lr, betas=(0.9, 0.95))
    rng = random.Random(recipe.seed)
    order: list[int] = []
    labels_of = shifted_labels
    log: dict = {"recipe": dict(recipe.__dict__), "distilled": teacher is not None,
                 "train_blocks": len(train), "step": [], "loss": [], "val_step": [],
                 "val_loss": []}
    if teacher is not None:
        teacher.eval()
    start = time.time()
    model.train()
    for step in tqdm(range(recipe.steps), desc=name, unit="step"):
        if len(order) < recipe.batch_size:
            fresh = list(range(len(train)))
            rng.shuffle(fresh)
            order.extend(fresh)
        idx, order = order[: recipe.batch_size], order[recipe.batch_size:]
        x = train[idx]
        frac = (time.time() - start) / recipe.time_budget if recipe.time_budget else 0.0
        if frac >= 1.0:
            log["stopped_early_at_step"] = step
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(step, recipe, recipe.steps, frac)
        logits = model(input_ids=x).logits
        if teacher is not None:
            with torch.no_grad():
                teacher_logits = teacher(input_ids=x).logits
            loss = distillation_loss(logits, teacher_logits, labels_of(x), recipe.temperature,
                                     recipe.alpha)
        else:
            loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1),
                                                     x[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        log["step"].append(step)
        log["loss"].append(round(loss.item(), 4))
        if (step + 1) % recipe.eval_every == 0 or step == recipe.steps - 1:
            log["val_step"].append(step)
            log["val_loss"].append(round(mean_loss(model, val), 4))
    if not log["val_step"] or log["val_step"][-1] != log["step"][-1]:
        log["val_step"].append(log["step"][-1])
        log["val_loss"].append(round(mean_loss(model, val), 4))
    log["seconds"] = round(time.time() - start, 1)
    log["tokens_seen"] = len(log["step"]) * recipe.batch_size * block
    log["val_perplexity"] = round(math.exp(log["val_loss"][-1]), 3)
    model.eval()
    return model, log
