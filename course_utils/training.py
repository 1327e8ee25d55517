"""The smallest language-model training loop worth reading (lesson 03).

Lesson 05 trains with ``transformers.Trainer``; here the loop is written out, because what a
language model learns is exactly what this loss says: at every position, the next token.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn


def encode_corpus(documents: Iterable[list[int]], eos_token_id: int) -> torch.Tensor:
    """One long 1-D tensor of token ids: every tokenized document followed by ``eos_token_id``
    so the model learns where a document ends. Tokenize in one batch call, e.g.
    ``encode_corpus(tokenizer(texts)["input_ids"], tokenizer.eos_token_id)``."""
    ids: list[int] = []
    for doc in documents:
        if isinstance(doc, str):
            raise TypeError("encode_corpus takes token ids, not text: pass "
                            "tokenizer(texts)['input_ids']")
        ids.extend(doc)
        ids.append(eos_token_id)
    if not ids:
        raise ValueError("the corpus is empty: pass at least one document")
    return torch.tensor(ids, dtype=torch.long)


def get_batch(tokens: torch.Tensor, batch_size: int, seq_len: int,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """``batch_size`` random windows of ``seq_len`` consecutive tokens, ``(batch, seq_len)``."""
    if tokens.dim() != 1 or tokens.numel() <= seq_len:
        raise ValueError(f"tokens must be a 1-D tensor longer than seq_len={seq_len}, "
                         f"got shape {tuple(tokens.shape)}")
    starts = torch.randint(0, tokens.numel() - seq_len + 1, (batch_size,), generator=generator)
    return torch.stack([tokens[s:s + seq_len] for s in starts.tolist()])


def lm_loss(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy: position ``t``'s logits are scored against token ``t + 1``.

    The shift is the whole objective of a causal LM: the logits at the last position have no
    target, and the first token is never a target.
    """
    if logits.shape[:2] != input_ids.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and input_ids "
                         f"{tuple(input_ids.shape)} must share (batch, seq_len)")
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                           input_ids[:, 1:].reshape(-1))


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: torch.Tensor,
               max_grad_norm: float = 1.0) -> float:
    """One training step of a causal LM; returns the batch's loss before the update.

    Zero the gradients (the model may hold an earlier step's), forward, the shifted loss
    (:func:`lm_loss`), backward, clip the gradients' total norm to ``max_grad_norm``, and
    take the optimizer's step.
    """
    optimizer.zero_grad(set_to_none=True)
    loss = lm_loss(model(batch), batch)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    return loss.item()


def cosine_lr(step: int, total_steps: int, peak_lr: float, warmup_steps: int = 0) -> float:
    """Linear warm-up to ``peak_lr``, then cosine decay to a tenth of it."""
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return peak_lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train_lm(model: nn.Module, tokens: torch.Tensor, steps: int, batch_size: int = 16,
             seq_len: int = 64, peak_lr: float = 3e-3, warmup_steps: int = 10,
             generator: torch.Generator | None = None, progress: bool = True) -> list[float]:
    """Train a model that maps ``input_ids -> logits`` on random windows; return the losses."""
    from tqdm.auto import tqdm

    optimizer = torch.optim.AdamW(model.parameters(), lr=peak_lr, weight_decay=0.01)
    model.train()
    losses = []
    bar = tqdm(range(steps), desc="training", disable=not progress)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, steps, peak_lr, warmup_steps)
        batch = get_batch(tokens, batch_size, seq_len, generator)
        loss = lm_loss(model(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return losses
