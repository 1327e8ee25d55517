"""Train the bundled English -> Lingo :class:`~course_utils.transformer.Translator`.

Teacher forcing on :func:`course_utils.data.translations`: the decoder reads ``<s>`` plus the
target and learns to predict the target plus ``</s>`` (cross-entropy, padding ignored). Used by
``python -m course_utils.pretrained build`` and, for a few steps, by lesson 02.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from course_utils.transformer import Translator, TranslatorConfig, WordVocab


@dataclass
class TranslatorRecipe:
    """Sizes and optimisation of the translator run (the defaults make the bundled one)."""

    d_model: int = 64
    nhead: int = 4
    num_encoder_layers: int = 2
    num_decoder_layers: int = 2
    dim_feedforward: int = 128
    max_len: int = 32
    steps: int = 1200
    batch_size: int = 64
    lr: float = 2e-3
    warmup: int = 60
    eval_every: int = 200
    seed: int = 0


def translation_vocab() -> WordVocab:
    """Every English and Lingo word of the course's world (:data:`course_utils.data.world.LINGO`)
    and the full stop: the words are fixed, only the sentences are held out."""
    from course_utils.data.world import LINGO

    return WordVocab([*LINGO, *LINGO.values(), "."])


def teacher_forcing_loss(model: Translator, sources: Sequence[str], targets: Sequence[str]
                         ) -> torch.Tensor:
    """Mean cross-entropy of the next target word given the source and the target so far."""
    src, src_mask = model.batch(sources)
    tgt, _ = model.batch(targets, add_bos=True)  # <s> w1 ... wn </s> <pad> ...
    inputs, labels = tgt[:, :-1], tgt[:, 1:]
    logits = model(src, inputs, src_mask, (inputs != model.vocab.pad_id).long())
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                           ignore_index=model.vocab.pad_id)


def train_translator(model: Translator, pairs: Sequence[tuple[str, str]], steps: int,
                     batch_size: int = 64, lr: float = 2e-3, warmup: int = 60, seed: int = 0,
                     eval_fn=None, eval_every: int = 0) -> dict:
    """AdamW with linear warm-up and cosine decay; returns the log (loss per step)."""
    generator = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * s / steps)))
    log: dict = {"step": [], "loss": [], "val_step": [], "val_bleu": []}
    t0 = time.time()
    model.train()
    for step in range(steps):
        idx = torch.randint(len(pairs), (batch_size,), generator=generator).tolist()
        loss = teacher_forcing_loss(model, [pairs[i][0] for i in idx],
                                    [pairs[i][1] for i in idx])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        log["step"].append(step)
        log["loss"].append(float(f"{loss.item():.4g}"))
        if eval_fn is not None and eval_every and ((step + 1) % eval_every == 0
                                                   or step + 1 == steps):
            model.eval()
            log["val_step"].append(step)
            log["val_bleu"].append(round(eval_fn(model), 4))
            model.train()
    model.eval()
    log["seconds"] = round(time.time() - t0, 1)
    return log


def held_out_bleu(model: Translator, sources: Sequence[str], targets: Sequence[str],
                  batch_size: int = 100) -> float:
    """Corpus BLEU (the course's metric, 0 to 1) of greedy translations of ``sources``."""
    from course_utils.metrics import bleu

    predictions = []
    for i in range(0, len(sources), batch_size):
        predictions += model.translate(list(sources[i: i + batch_size]))
    return bleu(predictions, list(targets))["bleu"]


def build_translator(recipe: TranslatorRecipe, seed: int = 0) -> tuple[Translator, dict]:
    """A new translator trained on the train split; BLEU on the validation split in the log."""
    from course_utils import data

    torch.manual_seed(recipe.seed)
    ds = data.translations(seed)
    vocab = translation_vocab()
    config = TranslatorConfig(len(vocab), recipe.d_model, recipe.nhead,
                              recipe.num_encoder_layers, recipe.num_decoder_layers,
                              recipe.dim_feedforward, recipe.max_len)
    model = Translator(config, vocab)
    val = ds["validation"]
    val_src, val_tgt = val["source"][:100], val["target"][:100]
    pairs = list(zip(ds["train"]["source"], ds["train"]["target"], strict=True))
    log = train_translator(model, pairs, recipe.steps, recipe.batch_size, recipe.lr,
                           recipe.warmup, recipe.seed,
                           eval_fn=lambda m: held_out_bleu(m, val_src, val_tgt),
                           eval_every=recipe.eval_every)
    log["recipe"] = recipe.__dict__
    log["val_bleu_final"] = log["val_bleu"][-1] if log["val_bleu"] else None
    return model, log
