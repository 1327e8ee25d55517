"""Pretrain ``course-bert``: a small BERT with masked language modelling + next-sentence prediction.

As in the BERT paper: each example is a pair of sentence spans ``[CLS] A [SEP] B [SEP]``; half the
time B follows A in the same story (NSP label 0), half the time it comes from another story
(label 1). 15% of the tokens are chosen for prediction: 80% become ``[MASK]``, 10% a random token,
10% stay as they are.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers import BertConfig, BertForPreTraining, BertTokenizerFast

from course_utils.pretrained.train_gpt import lr_at


@dataclass
class BertRecipe:
    """Sizes and optimiser settings of one BERT pretraining run."""

    num_hidden_layers: int = 2
    hidden_size: int = 128
    num_attention_heads: int = 4
    max_len: int = 64
    steps: int = 1500
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 50
    weight_decay: float = 0.01
    eval_every: int = 100
    seed: int = 0


def split_sentences(docs: list[str]) -> list[list[str]]:
    """Each document as a list of sentences (documents of one sentence are dropped)."""
    return [s for s in (re.split(r"(?<=[.!?])\s+", d) for d in docs) if len(s) >= 2]


def sentence_pairs(docs: list[str] | list[list[str]], n: int,
                   rng: random.Random) -> list[tuple[str, str, int]]:
    """``n`` (A, B, is_random_next) pairs from documents (strings or lists of sentences)."""
    split = split_sentences(docs) if docs and isinstance(docs[0], str) else docs
    pairs = []
    for _ in range(n):
        sents = rng.choice(split)
        i = rng.randrange(len(sents) - 1)
        if rng.random() < 0.5:
            pairs.append((sents[i], sents[i + 1], 0))
        else:
            pairs.append((sents[i], rng.choice(rng.choice(split)), 1))
    return pairs


def mask_tokens(input_ids: torch.Tensor, special: torch.Tensor, tokenizer: BertTokenizerFast,
                gen: torch.Generator, prob: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's 80/10/10 masking; labels are -100 except at the chosen positions."""
    labels = input_ids.clone()
    chosen = (torch.rand(input_ids.shape, generator=gen) < prob) & ~special
    labels[~chosen] = -100
    ids = input_ids.clone()
    r = torch.rand(input_ids.shape, generator=gen)
    ids[chosen & (r < 0.8)] = tokenizer.mask_token_id
    rand_pos = chosen & (r >= 0.8) & (r < 0.9)
    ids[rand_pos] = torch.randint(len(tokenizer), input_ids.shape, generator=gen)[rand_pos]
    return ids, labels


def encode(tokenizer: BertTokenizerFast, pairs: list[tuple[str, str, int]], max_len: int) -> dict:
    enc = tokenizer([a for a, _, _ in pairs], [b for _, b, _ in pairs], truncation=True,
                    max_length=max_len, padding="max_length", return_tensors="pt",
                    return_special_tokens_mask=True)
    enc["next_sentence_label"] = torch.tensor([y for _, _, y in pairs])
    return enc


@torch.no_grad()
def evaluate_bert(model: BertForPreTraining, tokenizer: BertTokenizerFast, batch: dict,
                  seed: int = 0) -> tuple[float, float]:
    """(MLM accuracy on the chosen positions, NSP accuracy) on an encoded batch."""
    gen = torch.Generator().manual_seed(seed)
    ids, labels = mask_tokens(batch["input_ids"], batch["special_tokens_mask"].bool(), tokenizer,
                              gen)
    model.eval()
    out = model(input_ids=ids, attention_mask=batch["attention_mask"],
                token_type_ids=batch["token_type_ids"])
    model.train()
    keep = labels != -100
    mlm = (out.prediction_logits.argmax(-1)[keep] == labels[keep]).float().mean().item()
    nsp = (out.seq_relationship_logits.argmax(-1) == batch["next_sentence_label"]).float().mean()
    return mlm, nsp.item()


def train_bert(tokenizer: BertTokenizerFast, train_docs: list[str], val_docs: list[str],
               recipe: BertRecipe) -> tuple[BertForPreTraining, dict]:
    """Train a fresh BertForPreTraining and return it with a log of losses and accuracies."""
    torch.manual_seed(recipe.seed)
    rng = random.Random(recipe.seed)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=recipe.hidden_size,
        num_hidden_layers=recipe.num_hidden_layers, num_attention_heads=recipe.num_attention_heads,
        intermediate_size=4 * recipe.hidden_size, max_position_embeddings=recipe.max_len,
        pad_token_id=tokenizer.pad_token_id)
    model = BertForPreTraining(config)
    val = encode(tokenizer, sentence_pairs(val_docs, 512, random.Random(1)), recipe.max_len)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    gen = torch.Generator().manual_seed(recipe.seed)
    log: dict = {"recipe": dict(recipe.__dict__), "step": [], "loss": [], "val_step": [],
                 "val_mlm_accuracy": [], "val_nsp_accuracy": []}
    train_sents = split_sentences(train_docs)
    start = time.time()
    model.train()
    bar = tqdm(range(recipe.steps), desc="course-bert", unit="step")
    for step in bar:
        batch = encode(tokenizer, sentence_pairs(train_sents, recipe.batch_size, rng),
                       recipe.max_len)
        ids, labels = mask_tokens(batch["input_ids"], batch["special_tokens_mask"].bool(),
                                  tokenizer, gen)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, recipe, recipe.steps)
        out = model(input_ids=ids, attention_mask=batch["attention_mask"],
                    token_type_ids=batch["token_type_ids"], labels=labels,
                    next_sentence_label=batch["next_sentence_label"])
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        log["step"].append(step)
        log["loss"].append(round(out.loss.item(), 4))
        if (step + 1) % recipe.eval_every == 0 or step == recipe.steps - 1:
            mlm, nsp = evaluate_bert(model, tokenizer, val)
            log["val_step"].append(step)
            log["val_mlm_accuracy"].append(round(mlm, 4))
            log["val_nsp_accuracy"].append(round(nsp, 4))
            bar.set_postfix(loss=f"{out.loss.item():.3f}", mlm=f"{mlm:.3f}")
    log["seconds"] = round(time.time() - start, 1)
    log["mlm_accuracy"] = log["val_mlm_accuracy"][-1]
    log["nsp_accuracy"] = log["val_nsp_accuracy"][-1]
    model.eval()
    return model, log
