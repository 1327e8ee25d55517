"""The pretraining mixture of the bundled ``course-gpt``: stories plus the task formats.

Only the "train" splits go in, so every validation/test example stays unseen. What each part
teaches (see the design notes on the bundled causal LM):

- stories and prose: English-like grammar and the world's vocabulary;
- labelled lists: several examples in a row with ONE label vocabulary and field format per
  document, the vocabulary changing between documents. The model learns to read the label space
  off the demonstrations. The evaluation words negative/neutral/positive are never labels here;
- arithmetic drills (8-20 small facts a document): each step of a worked solution is a known fact;
- word problems, several per document, all with worked steps or all with direct answers;
- summaries ("TL;DR:"), translations ("English:/Lingo:") and short chats ("User:/Assistant:").
"""

from __future__ import annotations

import random

from course_utils import data
from course_utils.data import prompts

# (negative, neutral, positive) label words used in pretraining; never negative/neutral/positive.
TRAIN_LABEL_SETS = (
    ("bad", "okay", "good"), ("awful", "fine", "great"), ("no", "maybe", "yes"),
    ("sad", "calm", "happy"), ("low", "medium", "high"), ("down", "flat", "up"),
    ("cold", "warm", "hot"), ("boo", "meh", "yay"), ("red", "yellow", "green"),
    ("one", "three", "five"), ("worse", "same", "better"), ("angry", "bored", "glad"),
)
TOXIC_LABEL_SETS = (("fine", "rude"), ("ok", "mean"), ("kind", "unkind"), ("no", "yes"),
                    ("safe", "toxic"), ("polite", "insult"))
FIELDS = (("Review", "Sentiment"), ("Review", "Label"), ("Comment", "Verdict"),
          ("Text", "Mood"), ("Feedback", "Rating"), ("Review", "Answer"), ("Input", "Output"))
CHAT_SYSTEM = ("You are a helpful assistant.", "You are a friendly teacher.",
               "You are a storyteller.", "Answer briefly.")


def _labelled(rng: random.Random, rows: list[dict], label_sets: tuple, fields: tuple) -> str:
    labels, (f_in, f_out) = rng.choice(label_sets), rng.choice(fields)
    picks = rng.sample(rows, rng.randint(4, 8))
    return "".join(f"{f_in}: {r['text']}\n{f_out}: {labels[r['label']]}\n\n" for r in picks)


def drill(rng: random.Random) -> str:
    """8-20 arithmetic facts with small answers, one per sentence or line."""
    facts = []
    for _ in range(rng.randint(8, 20)):
        op = rng.choice("+-*")
        if op == "*":
            a, b = rng.randint(2, 9), rng.randint(2, 9)
            facts.append(f"{a} * {b} = {a * b}.")
        elif op == "+":
            a, b = rng.randint(0, 90), rng.randint(1, 20)
            facts.append(f"{a} + {b} = {a + b}.")
        else:
            b = rng.randint(1, 40)
            a = rng.randint(b, 100)
            facts.append(f"{a} - {b} = {a - b}.")
    return rng.choice((" ", "\n")).join(facts)


def _problems(rng: random.Random, rows: list[dict]) -> str:
    cot = rng.random() < 0.7
    picks = rng.sample(rows, rng.randint(2, 5))
    return "".join(prompts.word_problem_example(r["question"], r["solution"], cot) for r in picks)


def _chat(rng: random.Random, stories: list[str], problems: list[dict]) -> str:
    head = f"System: {rng.choice(CHAT_SYSTEM)}\n" if rng.random() < 0.5 else ""
    if rng.random() < 0.5:
        r = rng.choice(problems)
        return f"{head}User: {r['question']}\nAssistant: {r['solution']}\n"
    s = rng.choice(stories)
    topic = rng.choice(("a short story", "a story", "a little story about your day"))
    return f"{head}User: Tell me {topic}.\nAssistant: {s}\n"


def pretraining_corpus(seed: int = 0, scale: float = 1.0) -> list[str]:
    """Shuffled documents (strings) for pretraining; ``scale`` shrinks it for quick builds."""
    if not (0 < scale <= 1):
        raise ValueError(f"scale must be in (0, 1], got {scale!r}")
    rng = random.Random(f"corpus/{seed}")
    stories = list(data.stories(seed)["train"]["text"])
    reviews = data.reviews(seed)["train"].to_list()
    toxic = data.toxic_comments(seed)["train"].to_list()
    problems = data.word_problems(seed)["train"].to_list()
    summ = data.summaries(seed)["train"].to_list()
    trans = data.translations(seed)["train"].to_list()
    n = lambda k: max(1, int(k * scale))
    docs = stories[: n(len(stories) // 2)]  # half the stories: more room for the task formats
    docs += [_labelled(rng, reviews, TRAIN_LABEL_SETS, FIELDS) for _ in range(n(5000))]
    docs += [_labelled(rng, toxic, TOXIC_LABEL_SETS, FIELDS[1:]) for _ in range(n(600))]
    docs += [drill(rng) for _ in range(n(6000))]
    docs += [_problems(rng, problems) for _ in range(n(5000))]
    docs += ["".join(f"{r['document']}\nTL;DR: {r['summary']}\n\n"
                     for r in rng.sample(summ, rng.randint(1, 3))) for _ in range(n(1500))]
    docs += ["".join(f"English: {r['source']}\nLingo: {r['target']}\n\n"
                     for r in rng.sample(trans, rng.randint(3, 8))) for _ in range(n(1000))]
    docs += [_chat(rng, stories, problems) for _ in range(n(1500))]
    rng.shuffle(docs)
    return [d.strip() for d in docs]
