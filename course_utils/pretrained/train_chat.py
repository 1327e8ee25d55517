"""Instruction-tune ``course-gpt`` into ``course-gpt-chat``: supervised fine-tuning on chats.

The chats are the train split of :func:`course_utils.data.instructions.instruction_data` (roles,
tasks, templates, conditional and multi-step instructions), rendered with the one chat template
(:data:`course_utils.pretrained.tokenizer_build.CHAT_TEMPLATE`) and labelled by
:func:`course_utils.finetune.sft.chat_features`: the loss counts only each assistant reply and
its eos token. So that the tuned model keeps what pretraining taught it (few-shot labels,
chain-of-thought word problems), every step also takes a few windows of course-gpt's own
pretraining text with the ordinary next-token loss on all tokens (``lm_weight``).

Weights start from ``course-gpt`` (the one under the build's output directory if there is one,
else the bundled one); the tokenizer is course-gpt's, so prompts and template do not change.
The weights saved are an exponential moving average of the trained ones (``ema_decay``); its
loss on the held-out chats is the log's last ``val_loss``. The log records the loss on held-out
("eval") chats and, at the end, the share of held-out instructions followed (``val_follow``),
per technique.
"""

from __future__ import annotations

import math
import random
import time
import warnings
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from course_utils.data.instructions import instruction_data
from course_utils.finetune.sft import (
    IGNORE_INDEX,
    chat_features,
    follow_rates,
    generate_replies,
    pad_chat_batch,
)
from course_utils.pretrained.train_gpt import lr_at, pack


@dataclass
class ChatRecipe:
    """Settings of the fine-tuning run."""

    steps: int = 5000  # 2400 followed 59%/59% of held-out items (seeds 0/1), 5000 70%/68%
    batch_size: int = 8  # chats per step: more, smaller steps learned more in the same time
    lm_blocks: int = 1  # pretraining windows per step (0: chats only)
    lm_weight: float = 1.0
    lr: float = 1e-3
    copy_share: float = 0.35  # extra "repeat after me" chats, as a share of the train chats
    warmup_steps: int = 30
    weight_decay: float = 0.0
    n_train: int = 10000
    n_val: int = 100
    eval_every: int = 100
    seed: int = 0
    # Token embeddings (tied to the output layer) kept as pretraining left them: otherwise every
    # step's softmax pushes down the names that are never a reply's target (the held-out ones)
    # and up the train names, and the tuned model answers with a train name instead of copying.
    freeze_embeddings: bool = True
    # The weights kept are an exponential moving average of the trained ones (Polyak
    # averaging); None keeps the last step's. Each step's small batch pulls the last weights
    # towards a few techniques, so one run's last weights follow some kinds and not others.
    ema_decay: float | None = 0.998  # 5000 steps: 73%/76% with it, 70%/68% without
    time_budget: float | None = 1200.0  # seconds; a busy CPU ends the run early, decay done


def copy_drills(seed: int, n: int) -> list[list[dict[str, str]]]:
    """``n`` chats drilling the sub-skills the checks need, with train names and made-up ones
    only: repeat a sentence word for word, reply with exactly a quoted phrase, fill named slots
    in the order given, say who / what / where a sentence is about, answer a step list on a
    sentence (more of the train split's lists, and their first step asked alone). The tuned
    model must copy names, things and phrases from the request into its reply, and these drills
    practise just that on values it never sees twice."""
    from course_utils.data import world as w
    from course_utils.data.instructions import (
        MADE_UP_NAMES,
        QUOTE_POOL,
        TRAIN_PLACES,
        TRAIN_THINGS,
        _iterative,
    )

    rng = random.Random(f"copy/{seed}")
    asks = ("Repeat after me: ", "Say this back: ", "Copy this: ", "Repeat: ")
    quote_asks = ('Reply with exactly "{q}".', 'Say "{q}" and nothing else.',
                  'Your reply: "{q}"', 'Answer only with "{q}".')
    slot_names = ("Name", "Friend", "Place", "Thing", "Title", "Story", "Moral", "Subject",
                  "Body", "Closing", "From", "To", "Animal", "Where", "Who")
    names = w.names_for("train") + MADE_UP_NAMES
    chats = []
    for i in range(n):
        n1, n2 = rng.sample(names, 2)
        place, thing = rng.choice(TRAIN_PLACES), rng.choice(TRAIN_THINGS)
        kind = i % 6
        if kind == 0:
            text = rng.choice((f"{n1} and {n2} went to the {place}.",
                               f"{n1} gave the {thing} to {n2}.",
                               f"{n1}, {n2}, {thing}, {place}.",
                               rng.choice(w.FRIENDLY_PHRASES + w.NEUTRAL_PHRASES).capitalize()
                               + "."))
            user, reply = rng.choice(asks) + text, text
        elif kind == 1:
            reply = rng.choice(QUOTE_POOL + (f"Hello {n1}.", f"See you at the {place}, {n2}!"))
            user = rng.choice(quote_asks).format(q=reply)
        elif kind == 2:
            slots = rng.sample(slot_names, rng.choice((2, 3, 3)))
            values = [rng.choice((n1, n2, place, thing, f"{n1} and the {thing}"))
                      for _ in slots]
            given = rng.sample(list(zip(slots, values, strict=True)), len(slots))
            user = (f"Fill the slots {', '.join(slots)}. "
                    + " ".join(f"{k} is {v}." for k, v in given))
            reply = "\n".join(f"{k}: {v}" for k, v in zip(slots, values, strict=True))
        elif kind in (4, 5):  # a step list ("First, ... Then, ...") on a story sentence
            item = _iterative(rng, "entities", 0)
            user, reply = item.messages[-1]["content"], item.reply
            if kind == 4:  # its first step alone: the asked value, nothing else
                steps, sentence = user.split("\n")
                first = steps.split(". ")[0].split(", ", 1)[1]
                user = f"{first[0].upper()}{first[1:]}.\n{sentence}"
                reply = item.spec["answers"][0]
        else:
            sentence = rng.choice((f"{n1} saw the {thing} at the {place}.",
                                   f"At the {place}, {n1} found a {thing}.",
                                   f"{n1} took the {thing} to the {place}."))
            q, reply = rng.choice((("Who is in this sentence?", n1),
                                   ("Which place is in this sentence?", place),
                                   ("Which thing is in this sentence?", thing)))
            user = f"{q}\n{sentence}"
        chats.append([{"role": "user", "content": user},
                      {"role": "assistant", "content": reply}])
    return chats


def _features(tok, chats: list[list[dict]], max_length: int) -> tuple[list[dict], int]:
    """Features of every chat, cut to ``max_length``; chats with no reply token left are
    dropped. Returns the features and how many chats were cut or dropped."""
    out, cut = [], 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for chat in chats:
            try:
                out.append(chat_features(tok, chat, max_length=max_length))
            except ValueError:
                cut += 1
    return out, cut + len(caught)


@torch.no_grad()
def reply_loss(model, batches: list[dict]) -> float:
    """Mean cross-entropy over the reply tokens of ``batches`` (padded chat batches)."""
    model.eval()
    total, count = 0.0, 0
    for b in batches:
        n = int((b["labels"][:, 1:] != IGNORE_INDEX).sum())
        total += model(**b).loss.item() * n
        count += n
    model.train()
    return total / max(1, count)


def train_chat(model, tokenizer, lm_docs: list[str], recipe: ChatRecipe) -> tuple[object, dict]:
    """Fine-tune ``model`` (course-gpt) on instruction chats; returns it with its log."""
    torch.manual_seed(recipe.seed)
    block = model.config.n_positions
    train_items = instruction_data(recipe.seed, "train", recipe.n_train)
    val_items = instruction_data(recipe.seed, "eval", recipe.n_val)
    drills = copy_drills(recipe.seed, int(recipe.copy_share * len(train_items)))
    train, cut = _features(tokenizer, [it.chat() for it in train_items] + drills, block)
    val, _ = _features(tokenizer, [it.chat() for it in val_items], block)
    if not train or not val:
        raise ValueError(f"no chat fits the context of {block} tokens with a reply token left: "
                         "use a model with a longer context")
    pad = tokenizer.pad_token_id
    val_batches = [pad_chat_batch(val[i: i + 32], pad) for i in range(0, len(val), 32)]
    lm = pack(tokenizer, lm_docs, block) if recipe.lm_blocks else None
    if recipe.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    trained = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trained if p.dim() >= 2]
    no_decay = [p for p in trained if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=recipe.lr, betas=(0.9, 0.95))
    rng = random.Random(recipe.seed)
    order: list[int] = []
    log: dict = {"recipe": dict(recipe.__dict__), "train_chats": len(train),
                 "chats_cut_to_context": cut, "step": [], "loss": [], "lm_loss": [],
                 "val_step": [], "val_loss": []}
    log["val_step"].append(-1)
    log["val_loss"].append(round(reply_loss(model, val_batches), 4))
    ema = [p.detach().clone() for p in trained] if recipe.ema_decay else None
    start = time.time()
    model.train()
    for step in tqdm(range(recipe.steps), desc="course-gpt-chat", unit="step"):
        frac = (time.time() - start) / recipe.time_budget if recipe.time_budget else 0.0
        if frac >= 1.0:
            log["stopped_early_at_step"] = step
            break
        if len(order) < recipe.batch_size:
            fresh = list(range(len(train)))
            rng.shuffle(fresh)
            order.extend(fresh)
        idx, order = order[: recipe.batch_size], order[recipe.batch_size:]
        for group in opt.param_groups:
            group["lr"] = lr_at(step, recipe, recipe.steps, frac)
        loss = model(**pad_chat_batch([train[i] for i in idx], pad)).loss
        total = loss
        if lm is not None:
            x = lm[torch.tensor(rng.sample(range(len(lm)), min(recipe.lm_blocks, len(lm))))]
            lm_loss = model(input_ids=x, labels=x).loss
            total = loss + recipe.lm_weight * lm_loss
            log["lm_loss"].append(round(lm_loss.item(), 4))
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        opt.step()
        if ema is not None:
            with torch.no_grad():
                for e, p in zip(ema, trained, strict=True):
                    e.lerp_(p, 1 - recipe.ema_decay)
        log["step"].append(step)
        log["loss"].append(round(loss.item(), 4))
        if (step + 1) % recipe.eval_every == 0 or step == recipe.steps - 1:
            log["val_step"].append(step)
            log["val_loss"].append(round(reply_loss(model, val_batches), 4))
    if ema is not None:
        with torch.no_grad():
            for p, e in zip(trained, ema, strict=True):
                p.copy_(e)
        log["val_step"].append(log["step"][-1])
        log["val_loss"].append(round(reply_loss(model, val_batches), 4))
    if log["step"] and log["val_step"][-1] != log["step"][-1]:
        log["val_step"].append(log["step"][-1])
        log["val_loss"].append(round(reply_loss(model, val_batches), 4))
    log["seconds"] = round(time.time() - start, 1)
    model.eval()
    replies = generate_replies(model, tokenizer, val_items, max_new_tokens=min(80, block // 2))
    log["val_follow"] = {k: round(v, 3) for k, v in follow_rates(val_items, replies).items()}
    log["val_perplexity_replies"] = round(math.exp(log["val_loss"][-1]), 3)
    return model, log
