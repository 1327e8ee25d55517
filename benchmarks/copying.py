"""Can the model copy a token it has just read? The skill course-gpt-chat's held-out
instructions need (a card's name, a message's recipient, a quoted reply), measured directly.

Run:  .venv/bin/python benchmarks/copying.py [--gpt DIR] [--chat DIR] [--n 200]

Prints one table, for course-gpt and course-gpt-chat (or the tuned model in ``--chat``):
1. **repeat accuracy**: a run of 10 random tokens, then the same run again; the share of the
   second run's tokens (after its first) the model predicts (greedy next token). A model with
   an induction head (attend to what followed this token last time, copy it) scores near 1;
   a model of n-gram statistics scores near 0. Separately for the held-out tokens of
   :mod:`course_utils.data.instructions` (held-out names, animals, places, topic words) and for
   all other tokens;
2. **name copied in a card**: for a card request in the held-out wording, the probability the
   model gives the request's name as the first token after ``Title:``, with a train name and
   with a held-out name in the same request;
3. **name in the answer** of a word problem in the pretraining format, where every train
   solution names its person again: the probability of the problem's name as the answer's
   first token, for every train name and every held-out name (the word problems of
   pretraining use train names only).

A model that copies train names in 3 but not held-out ones has learnt copying per token, for
the tokens its training text copied, not as one circuit for any token.

A gap between the train and held-out columns of 2 or 3 means the tuned model recalls names it was
trained to write rather than copying; near-zero repeat accuracy means it has no copying circuit
to fall back on. On the bundled checkpoints (no --gpt/--chat) it writes results/copying.{md,json}.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write_results  # noqa: E402

from course_utils.data import prompts  # noqa: E402
from course_utils.data import world as w  # noqa: E402
from course_utils.data.instructions import (  # noqa: E402
    CARD_ASKS,
    EVAL_ANIMALS,
    EVAL_PLACES,
    EVAL_TOPICS,
)
from course_utils.lm import label_token_ids, next_token_logits  # noqa: E402
from course_utils.pretrained import asset_path, load_pretrained  # noqa: E402

HELD_WORDS = {x.lower() for x in (*w.HELD_OUT_NAMES, *EVAL_ANIMALS, *EVAL_PLACES,
                                  *(x for t in EVAL_TOPICS for x in t.split()[1:]))}


def token_pools(tok) -> tuple[list[int], list[int]]:
    """(held-out token ids, all other non-special token ids)."""
    special = set(tok.all_special_ids)
    held, other = [], []
    for t, i in sorted(tok.get_vocab().items(), key=lambda kv: kv[1]):
        if i in special:
            continue
        (held if tok.convert_tokens_to_string([t]).strip().lower() in HELD_WORDS
         else other).append(i)
    return held, other


@torch.no_grad()
def repeat_accuracy(model, ids: list[int], n: int, seed: int = 0, length: int = 10) -> float:
    """Share of a repeated random run's tokens (after the first) predicted greedily."""
    rng = random.Random(seed)
    runs = [[rng.choice(ids) for _ in range(length)] for _ in range(n)]
    x = torch.tensor([r + r for r in runs])
    pred = model(x).logits[:, length:-1].argmax(-1)
    return (pred == x[:, length + 1:]).float().mean().item()


@torch.no_grad()
def name_probability(model, tok, texts: list[str], names: list[str]) -> float:
    """Mean probability the model gives each text's name (one token) as the next token."""
    unique = sorted(set(names))
    ids = dict(zip(unique, label_token_ids(tok, unique), strict=True))
    probs = next_token_logits(model, tok, texts).softmax(-1)
    return probs[torch.arange(len(names)), [ids[n] for n in names]].mean().item()


def name_copied(model, tok, names: tuple[str, ...], n: int, seed: int = 0) -> float:
    """Mean probability of the request's name as the first token after "Title:"."""
    rng = random.Random(seed)
    picked = [rng.choice(names) for _ in range(n)]
    texts = [tok.apply_chat_template(
        [{"role": "user", "content": CARD_ASKS[1][0].format(n=name, a="wolf", an="a wolf",
                                                              p="hill")}],
        tokenize=False, add_generation_prompt=True) + " Title:" for name in picked]
    return name_probability(model, tok, texts, picked)


def name_in_answer(model, tok, names: tuple[str, ...]) -> float:
    """Mean probability of the problem's name as the first token of the answer of a one-step
    word problem in the pretraining format (``Q: ... A:``), where every train solution starts
    by naming the person again."""
    texts = [prompts.word_problem_prompt(f"{name} has 5 apples. {name} gives 2 apples to Tom. "
                                         f"How many apples does {name} have left?")
             for name in names]
    return name_probability(model, tok, texts, list(names))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gpt", default=None, help="the base GPT (default: the bundled one)")
    ap.add_argument("--chat", default=None,
                    help="the instruction-tuned GPT")
    ap.add_argument("--n", type=int, default=200, help="random runs per pool")
    args = ap.parse_args()
    torch.manual_seed(0)
    rows = []
    chat = args.chat or str(asset_path("course-gpt-chat"))
    gpt = args.gpt or "course-gpt"
    for label, where in (("course-gpt", gpt), ("course-gpt-chat", chat)):
        model, tok = load_pretrained(where)
        model.eval()
        held, other = token_pools(tok)
        rows.append({"model": label,
                     "repeat accuracy, other tokens": repeat_accuracy(model, other, args.n),
                     "repeat accuracy, held-out tokens": repeat_accuracy(model, held, args.n),
                     "P(name copied), train names": name_copied(model, tok,
                                                                w.names_for("train"), 40),
                     "P(name copied), held-out names": name_copied(model, tok,
                                                                   w.HELD_OUT_NAMES, 40),
                     "P(name in answer), train names": name_in_answer(model, tok,
                                                                      w.names_for("train")),
                     "P(name in answer), held-out names": name_in_answer(model, tok,
                                                                         w.HELD_OUT_NAMES)})
    cols = list(rows[0])[1:]
    md = ("Printed by `python benchmarks/copying.py`: repeated random runs of 10 tokens "
          f"({args.n} per pool); the held-out card request with a train or a held-out "
          "name (40 each); a one-step word problem with each train and held-out name."
          "\n\n| model | " + " | ".join(cols) + " |\n|---|"
          + "---:|" * len(cols) + "\n")
    md += "".join(f"| {r['model']} | " + " | ".join(f"{r[c]:.3f}" for c in cols) + " |\n"
                  for r in rows)
    if args.chat is None and args.gpt is None:
        write_results("copying", {"rows": rows, "chat": "course-gpt-chat"}, md)
    else:
        print(md)


if __name__ == "__main__":
    main()
