"""Capability bars of the bundled checkpoints, measured on held-out generated examples.

Run:  .venv/bin/python benchmarks/capabilities.py [--gpt DIR] [--chat DIR] [--bert DIR]
      [--seeds 0 1 2]

Prints one table:
1. sentiment, reviews test split (balanced): accuracy zero-shot vs 4-shot, same instruction,
   label words negative/neutral/positive (never labels in pretraining); the prediction is the
   label word with the highest next-token probability after "Sentiment:";
2. two-step word problems, test split (held-out names and objects): accuracy with chain of thought
   (the model writes its steps, greedy) vs direct answer ("A: The answer is" then the number);
   both with the same 2 demonstrations, in the matching format;
3. instruction following on held-out cases (``instruction_data(S, "eval")``: held-out
   phrasings, names and contents; seed S draws them), for course-gpt and the instruction-tuned
   course-gpt-chat, per technique (role, task, template, conditional, iterative) and in all:
   the fraction of replies (greedy, chat template, up to the eos token or a new turn) that pass
   the item's check; and the few-shot and chain-of-thought figures of 1-2 for course-gpt-chat,
   which must stay within 5 points of course-gpt's;
4. validation perplexity of course-gpt on held-out stories; MLM and NSP accuracy of course-bert;
5. a few generated samples.
On the shipped checkpoints (no --gpt/--bert) it also writes results/capabilities.{md,json}.
Prompts come from :mod:`course_utils.data.prompts`, the formats lesson 04 uses.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write_results  # noqa: E402

from course_utils import data  # noqa: E402
from course_utils.data import instruction_data, prompts  # noqa: E402
from course_utils.data.instructions import TECHNIQUES  # noqa: E402
from course_utils.finetune.sft import follow_rates, generate_replies  # noqa: E402
from course_utils.pretrained import asset_path, load_pretrained  # noqa: E402

LABELS = list(data.SENTIMENT_LABELS)


def _ids(tok, text: str, room: int) -> torch.Tensor:
    ids = tok(text, return_tensors="pt")["input_ids"]
    keep = max(1, tok.model_max_length - room)
    return ids[:, -keep:]  # keep the end if a prompt is too long


def _best_label(model, ids: torch.Tensor, label_ids: list[list[int]]) -> int:
    """Index of the label whose tokens are most likely after ``ids`` (summed log-probs)."""
    logp = model(ids).logits[0, -1].log_softmax(-1)
    if all(len(lab) == 1 for lab in label_ids):  # one forward pass is enough
        return int(torch.stack([logp[lab[0]] for lab in label_ids]).argmax())
    scores = []
    for lab in label_ids:
        full = torch.cat([ids, torch.tensor([lab])], dim=1)
        lp = model(full).logits[0, ids.shape[1] - 1: -1].log_softmax(-1)
        scores.append(lp[torch.arange(len(lab)), lab].sum())
    return int(torch.stack(scores).argmax())


@torch.no_grad()
def sentiment_accuracy(model, tok, shots: int, n_per_label: int, seed: int) -> float:
    """Accuracy on a balanced slice of the reviews test split with ``shots`` demonstrations."""
    ds = data.reviews(0)
    test = [r for lab in range(3) for r in ds["test"].filter(lambda r, lab=lab: r["label"] == lab)
            .select(range(n_per_label))]
    pool = ds["validation"].to_list()
    by_label = {lab: [r for r in pool if r["label"] == lab] for lab in range(3)}
    label_ids = [tok(" " + w)["input_ids"] for w in LABELS]
    rng = random.Random(seed)
    correct = 0
    for r in test:
        demos = [rng.choice(by_label[lab]) for lab in range(3)] if shots else []
        demos += [rng.choice(pool) for _ in range(max(0, shots - 3))]
        rng.shuffle(demos)
        prompt = prompts.sentiment_prompt(r["text"], [(d["text"], LABELS[d["label"]])
                                                      for d in demos[:shots]])
        ids = _ids(tok, prompt, max(map(len, label_ids)))
        correct += int(_best_label(model, ids, label_ids) == r["label"])
    return correct / len(test)


@torch.no_grad()
def word_problem_accuracy(model, tok, chain_of_thought: bool, n: int, seed: int,
                          shots: int = 2) -> float:
    """Greedy accuracy on two-step problems of the test split."""
    ds = data.word_problems(0)
    test = ds["test"].filter(lambda r: r["num_steps"] == 2).select(range(n))
    pool = [r for r in ds["validation"] if r["num_steps"] == 2]
    rng = random.Random(seed)
    correct = 0
    for r in test:
        demos = [(d["question"], d["solution"]) for d in rng.sample(pool, shots)]
        prompt = prompts.word_problem_prompt(r["question"], demos, chain_of_thought)
        room = min(64, tok.model_max_length // 2) if chain_of_thought else 6
        ids = _ids(tok, prompt, room)
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=room,
                             do_sample=False, pad_token_id=tok.pad_token_id)
        text = tok.decode(out[0, ids.shape[1]:]).split("\n")[0]
        got = prompts.parse_answer(text if chain_of_thought else "The answer is" + text)
        correct += int(got == r["answer"])
    return correct / len(test)


@torch.no_grad()
def perplexity(model, tok, split: str = "test") -> float:
    """exp(mean next-token loss) on held-out stories packed into full-context blocks."""
    from course_utils.pretrained.train_gpt import mean_loss, pack

    docs = list(data.stories(0)[split]["text"])
    return math.exp(mean_loss(model, pack(tok, docs, tok.model_max_length)))


@torch.no_grad()
def bert_accuracy(model, tok) -> tuple[float, float]:
    """MLM accuracy (80/10/10 masking, seed 0) and NSP accuracy on held-out story pairs."""
    from course_utils.pretrained.train_bert import encode, evaluate_bert, sentence_pairs

    docs = list(data.stories(0)["test"]["text"])
    batch = encode(tok, sentence_pairs(docs, 1000, random.Random(0)), tok.model_max_length)
    return evaluate_bert(model, tok, batch)


def samples(model, tok, seed: int = 0) -> list[str]:
    torch.manual_seed(seed)
    chat = tok.apply_chat_template([{"role": "user", "content": "Tell me a short story."}],
                                   tokenize=False, add_generation_prompt=True)
    outs = []
    for p in ("Once upon a time,", "Mia went to the market", chat,
              prompts.translation_prompt("The dog sees the red ball.",
                                         [("The cat eats the cake.", "Lo gato mangas lo kuko.")])):
        ids = _ids(tok, p, 50)
        new = min(50, tok.model_max_length - ids.shape[1])
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new,
                             do_sample=True, top_k=20, temperature=0.8,
                             pad_token_id=tok.pad_token_id)
        outs.append(p + tok.decode(out[0, ids.shape[1]:]))
    return outs


@torch.no_grad()
def instruction_following(model, tok, n: int, seed: int) -> dict[str, float]:
    """Fraction of ``n`` held-out instructions (seed ``seed``) followed, per technique and all."""
    items = instruction_data(seed, "eval", n)
    return follow_rates(items, generate_replies(model, tok, items))


def _meets(value: float, bar: str) -> bool | None:
    """Whether ``value`` meets a bar written ">= X"; None for figures that are only reported."""
    return value >= float(bar[2:]) if bar.startswith(">=") else None


def _markdown(rows: list[tuple[str, float, str]], gpt_log: dict, seeds: list[int],
              n_reviews: int, n_problems: int, sample_texts: list[str],
              n_instructions: int) -> str:
    recipe = gpt_log.get("recipe", {})
    head = (f"Printed by `python benchmarks/capabilities.py --seeds {' '.join(map(str, seeds))}` "
            f"on the shipped checkpoints (course-gpt {recipe.get('n_layer')} layers x "
            f"{recipe.get('n_embd')} wide, {gpt_log.get('tokens_seen', 0) / 1e6:.1f}M training "
            f"tokens in {gpt_log.get('seconds', 0) / 60:.0f} min): {n_reviews} balanced held-out "
            f"reviews, {n_problems} held-out two-step word problems and {n_instructions} held-out "
            "instructions (course-gpt vs the instruction-tuned course-gpt-chat) per "
            "demonstration seed.")
    lines = [head, "", "| measure | value | bar |", "|---|---:|---|"]
    for name, value, bar in rows:
        met = _meets(value, bar)
        verdict = "" if met is None else " **met**" if met else " **missed**"
        lines.append(f"| {name.strip()} | {value:.3f} | {bar}{verdict} |")
    lines += ["", "Samples from course-gpt (top-k 20, temperature 0.8):", ""]
    lines += ["```text\n" + s.strip() + "\n```" for s in sample_texts]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_gpt, default_bert = str(asset_path("course-gpt")), str(asset_path("course-bert"))
    ap.add_argument("--gpt", default=default_gpt)
    ap.add_argument("--bert", default=default_bert)
    default_chat = str(asset_path("course-gpt-chat"))
    ap.add_argument("--chat", default=default_chat, help="the instruction-tuned GPT")
    ap.add_argument("--n-instructions", type=int, default=150,
                    help="held-out instructions per seed (balanced over the techniques)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0],
                    help="seeds for choosing the demonstrations")
    ap.add_argument("--n-per-label", type=int, default=60)
    ap.add_argument("--n-problems", type=int, default=150)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    model, tok = load_pretrained(args.gpt)
    chat, chat_tok = load_pretrained(args.chat)
    rows, few_gains, cot_gains, follow_gains = [], [], [], []
    for seed in args.seeds:
        zs = sentiment_accuracy(model, tok, 0, args.n_per_label, seed)
        fs = sentiment_accuracy(model, tok, 4, args.n_per_label, seed)
        direct = word_problem_accuracy(model, tok, False, args.n_problems, seed)
        cot = word_problem_accuracy(model, tok, True, args.n_problems, seed)
        few_gains.append(100 * (fs - zs))
        cot_gains.append(100 * (cot - direct))
        rows += [(f"sentiment zero-shot (seed {seed})", zs, ""),
                 (f"sentiment 4-shot (seed {seed})", fs, ""),
                 ("  few-shot gain, points", few_gains[-1], ">= 15"),
                 (f"2-step problems direct (seed {seed})", direct, ""),
                 (f"2-step problems chain of thought (seed {seed})", cot, ""),
                 ("  chain-of-thought gain, points", cot_gains[-1], ">= 20")]
        c_fs = sentiment_accuracy(chat, chat_tok, 4, args.n_per_label, seed)
        c_cot = word_problem_accuracy(chat, chat_tok, True, args.n_problems, seed)
        rows += [(f"course-gpt-chat sentiment 4-shot (seed {seed})", c_fs, ""),
                 ("  4-shot, chat minus base, points", 100 * (c_fs - fs), ">= -5"),
                 (f"course-gpt-chat 2-step chain of thought (seed {seed})", c_cot, ""),
                 ("  chain of thought, chat minus base, points", 100 * (c_cot - cot), ">= -5")]
        base_follow = instruction_following(model, tok, args.n_instructions, seed)
        chat_follow = instruction_following(chat, chat_tok, args.n_instructions, seed)
        for technique in TECHNIQUES:
            rows += [(f"instruction following: {technique}, course-gpt (seed {seed})",
                      base_follow[technique], ""),
                     (f"instruction following: {technique}, course-gpt-chat (seed {seed})",
                      chat_follow[technique], "")]
        follow_gains.append(100 * (chat_follow["all"] - base_follow["all"]))
        rows += [(f"instruction following, course-gpt (seed {seed})", base_follow["all"], ""),
                 (f"instruction following, course-gpt-chat (seed {seed})", chat_follow["all"],
                  ">= 0.7"),
                 ("  instruction-following gain, points", follow_gains[-1], ">= 40")]
    if len(args.seeds) > 1:
        rows += [("few-shot gain, mean over seeds", sum(few_gains) / len(few_gains), ">= 15"),
                 ("chain-of-thought gain, mean over seeds", sum(cot_gains) / len(cot_gains),
                  ">= 20"),
                 ("instruction-following gain, mean over seeds",
                  sum(follow_gains) / len(follow_gains), ">= 40")]
    rows.append(("course-gpt perplexity, held-out stories", perplexity(model, tok), "report"))
    bert, btok = load_pretrained(args.bert)
    mlm, nsp = bert_accuracy(bert, btok)
    rows += [("course-bert MLM accuracy, held-out stories", mlm, "report"),
             ("course-bert NSP accuracy, held-out stories", nsp, "report")]
    print(f"\n{'measure':<62} {'value':>8}  bar")
    print("-" * 80)
    for name, value, bar in rows:
        met = _meets(value, bar)
        ok = "" if met is None else "  PASS" if met else "  MISS"
        print(f"{name:<62} {value:>8.3f}  {bar}{ok}")
    print(f"\n({args.n_per_label * 3} balanced reviews, {args.n_problems} two-step problems, "
          f"{args.n_instructions} held-out instructions per seed, {time.time() - t0:.0f} s)"
          "\n\nSamples from course-gpt (top-k 20, temperature 0.8):")
    sample_texts = samples(model, tok)
    for s in sample_texts:
        print("---\n" + s)
    shipped = (args.gpt, args.bert, args.chat) == (default_gpt, default_bert, default_chat)
    if shipped:  # the shipped checkpoints
        log = json.loads((Path(args.gpt) / "training_log.json").read_text())
        md = _markdown(rows, log, args.seeds, args.n_per_label * 3, args.n_problems, sample_texts,
                       args.n_instructions)
        write_results("capabilities", {"seeds": args.seeds, "rows": rows,
                                       "samples": sample_texts}, md)


if __name__ == "__main__":
    main()
