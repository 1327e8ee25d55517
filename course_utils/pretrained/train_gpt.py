"""Pretrain ``course-gpt``: a small GPT-2 on the course corpus, next-token prediction, on a CPU.

The recipe follows the design notes: 4 layers, width 160, 4 heads, context 256, BPE vocabulary
1,024, about 8M training tokens in batches of 16 windows, AdamW with peak learning rate 2e-3,
short warm-up, cosine decay. On a busy shared CPU a run may be cut short by a time budget
(``--time-budget``); ``training_log.json`` records how many tokens a run actually saw.
Documents are joined with ``<|endoftext|>`` and cut into windows of ``n_positions`` tokens.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerBase


@dataclass
class GPTRecipe:
    """Sizes and optimiser settings of one pretraining run."""

    n_layer: int = 4
    n_embd: int = 160
    n_head: int = 4
    n_positions: int = 256
    tokens: int = 8_000_000
    batch_size: int = 16
    lr: float = 2e-3
    warmup_steps: int = 30
    weight_decay: float = 0.1
    eval_every: int = 100
    seed: int = 0
    time_budget: float | None = None  # seconds; on a busy CPU, stop early with the decay done

    @property
    def steps(self) -> int:
        return max(1, self.tokens // (self.batch_size * self.n_positions))


def pack(tokenizer: PreTrainedTokenizerBase, docs: list[str], block: int) -> torch.Tensor:
    """Token ids of all ``docs`` joined by EOS, cut into rows of ``block`` tokens (tail dropped)."""
    ids: list[int] = []
    eos = tokenizer.eos_token_id
    for enc in tokenizer(docs, add_special_tokens=False, verbose=False)["input_ids"]:
        ids.extend(enc)
        ids.append(eos)
    n = len(ids) // block
    if n == 0:
        raise ValueError(f"corpus too small: {len(ids)} tokens for one block of {block}")
    return torch.tensor(ids[: n * block], dtype=torch.long).view(n, block)


def lr_at(step: int, recipe, total: int, elapsed_fraction: float = 0.0) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak.

    The decay follows the step count, or the elapsed share of a time budget when that is
    further along, so a run cut short by a slow machine still ends with a low learning rate.
    """
    if step < recipe.warmup_steps:
        return recipe.lr * (step + 1) / recipe.warmup_steps
    progress = (step - recipe.warmup_steps) / max(1, total - recipe.warmup_steps)
    progress = max(progress, elapsed_fraction)
    return recipe.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


@torch.no_grad()
def mean_loss(model: torch.nn.Module, blocks: torch.Tensor, batch_size: int = 32) -> float:
    """Average next-token cross-entropy over ``blocks`` (exp of it is the perplexity)."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(blocks), batch_size):
        x = blocks[i: i + batch_size]
        out = model(input_ids=x, labels=x)
        n = x.numel() - x.shape[0]
        total += out.loss.item() * n
        count += n
    model.train()
    return total / count


def train_gpt(tokenizer: PreTrainedTokenizerBase, train_docs: list[str], val_docs: list[str],
              recipe: GPTRecipe) -> tuple[GPT2LMHeadModel, dict]:
    """Train a fresh GPT-2 and return it with a log of train/validation losses."""
    torch.manual_seed(recipe.seed)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=recipe.n_positions, n_embd=recipe.n_embd,
        n_layer=recipe.n_layer, n_head=recipe.n_head, n_inner=4 * recipe.n_embd,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    model = GPT2LMHeadModel(config)
    train = pack(tokenizer, train_docs, recipe.n_positions)
    val = pack(tokenizer, val_docs, recipe.n_positions)[:24]
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=recipe.lr, betas=(0.9, 0.95))
    total = recipe.steps
    order: list[int] = []
    rng = random.Random(recipe.seed)
    log: dict = {"recipe": dict(recipe.__dict__, steps=total), "train_blocks": len(train),
                 "step": [], "loss": [], "val_step": [], "val_loss": []}
    start = time.time()
    model.train()
    bar = tqdm(range(total), desc="course-gpt", unit="step")
    for step in bar:
        if len(order) < recipe.batch_size:  # a new epoch: reshuffle the blocks
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
            group["lr"] = lr_at(step, recipe, total, frac)
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        log["step"].append(step)
        log["loss"].append(round(loss.item(), 4))
        if (step + 1) % recipe.eval_every == 0 or step == total - 1:
            log["val_step"].append(step)
            log["val_loss"].append(round(mean_loss(model, val), 4))
            bar.set_postfix(loss=f"{loss.item():.3f}", val=f"{log['val_loss'][-1]:.3f}")
    if not log["val_step"] or log["val_step"][-1] != log["step"][-1]:
        log["val_step"].append(log["step"][-1])
        log["val_loss"].append(round(mean_loss(model, val), 4))
    log["seconds"] = round(time.time() - start, 1)
    log["tokens_seen"] = len(log["step"]) * recipe.batch_size * recipe.n_positions
    log["val_perplexity"] = round(math.exp(log["val_loss"][-1]), 3)
    model.eval()
    return model, log
