"""Instruction data from the course world: chats whose replies code can check.

Each :class:`Instruction` holds the prompt messages (an optional system turn and one user turn,
in the course's chat template), the reference assistant reply, the prompting technique it
exercises, and :meth:`Instruction.check`, a scorer that says whether a reply *followed* it:

- ``"role"``: a system role changes the reply checkably: a brief answerer gives only the result
  (``The answer is N.``), a teacher the worked steps (true equations, then the answer), a
  storyteller one story sentence (``In the end, ...`` or ``Once upon a time, ...``);
- ``"task"``: the world's tasks asked in words: sentiment, Lingo translation, ``TL;DR``
  summaries, word problems (the right label, translation, answer; a one-line summary that names
  only people of the text);
- ``"template"``: named slots to fill (a Title / Story / Moral card; a message with Subject,
  Body and Closing): every slot filled, in order, with what the request gave, nothing invented;
- ``"conditional"``: "if I am a beginner ..., if I am an expert ..." and "if the review is
  positive reply X, otherwise Y": the right branch taken;
- ``"iterative"``: "first ..., then ..., finally ...": every step done, in order.

:func:`instruction_data` generates a split from a seed. The ``"eval"`` split is held out: its
phrasings (system roles, requests, step wordings, canned replies), its names (the world's
held-out names), its objects, animals, places and topics never occur in ``"train"``, for any
seed. Train wordings are many (:func:`_combos` joins openers, slot lists, content orders and
step words in every way), so a held-out wording is a new mix of pieces the tuned model knows,
never a string it saw. The held-out names occur in course-gpt's pretraining stories
(:mod:`course_utils.data.stories`) but in no train chat. A base model continuing the text fails
most checks; a model tuned on ``"train"`` (``course-gpt-chat``) should pass most of ``"eval"``.

>>> item = instruction_data(seed=0, split="eval", n=5)[0]                    # doctest: +SKIP
>>> item.messages, item.reply, item.technique, item.check(item.reply)  # doctest: +SKIP
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from course_utils.data import tasks
from course_utils.data import world as w

TECHNIQUES = ("role", "task", "template", "conditional", "iterative")
INSTRUCTION_SPLITS = ("train", "eval")
INSTRUCTION_SIZES = {"train": 8000, "eval": 500}
KINDS: dict[str, tuple[str, ...]] = {
    "role": ("brief", "teacher", "storyteller"),
    "task": ("sentiment", "translation", "summary", "word_problem"),
    "template": ("card", "message"),
    "conditional": ("level", "review"),
    "iterative": ("entities", "problem"),
}

# Held-out contents: the eval split draws only these, the train split never does.
EVAL_ANIMALS = ("owl", "frog", "bear", "wolf")
EVAL_PLACES = ("museum", "lake", "hill", "station")
EVAL_TOPICS = ("the music festival", "the town meeting", "the bake sale")

# The train split also draws from wider pools than the world's (made-up names, other nouns as
# the "animal", more places and topics): with many values each seen a few times, the tuned model
# learns to copy what the request says instead of recalling the few values it saw most.
_WORLD_LOWER = frozenset(x.lower() for x in (
    *w.NAMES, *w.ANIMALS, *w.PLACES, *w.FOODS, *w.COLORS, *w.LINGO, *w.LINGO.values(),
    *(c for row in w.COUNTABLES for c in row)))
MADE_UP_NAMES = tuple(c + v + end for c in "BDFGKLMPRTVZ" for v in "aeiou"
                      for end in ("n", "x", "ra", "lo", "mi") if (c + v + end).lower()
                      not in _WORLD_LOWER)
TRAIN_THINGS = tuple(a for a in w.ANIMALS if a not in EVAL_ANIMALS) + (
    "apple", "ball", "book", "cake", "hat", "box", "kite", "drum", "lamp", "pie", "robot",
    "spoon", "boat", "sock", "cup", "bell", "coat", "shoe", "key", "map", "doll", "bag", "clock",
    "chair", "tent", "flag", "cookie", "pencil", "sticker", "marble", "flower", "goose",
    "lamb", "deer", "tiger", "lion", "crab", "snail", "bee", "ant", "seal", "toad")
TRAIN_PLACES = tuple(p for p in w.PLACES if p not in EVAL_PLACES) + (
    "house", "bakery", "harbour", "castle", "zoo", "pond", "bridge", "cafe", "barn", "tower",
    "playground", "island", "hall", "square", "cave", "valley", "shore", "meadow", "mill",
    "corner", "hotel", "office", "church", "stable", "yard", "road", "bus stop", "camp")
TRAIN_TOPICS = tuple(t for t in w.TOPICS if t not in EVAL_TOPICS) + (
    "the school trip", "the pie contest", "the dog show", "the art class", "the book club",
    "the new shop", "the summer camp", "the chess club", "the swimming lessons", "the zoo visit",
    *(f"the {x} {y}" for x in ("garden", "farm", "river", "beach", "forest", "school", "park",
                               "cake", "kite", "boat", "football", "art", "book", "dog", "cat",
                               "summer", "winter", "Monday", "family", "village")
      for y in ("party", "trip", "fair", "show", "club", "picnic", "contest", "race", "day",
                "concert", "lesson", "walk", "plan")))

def _combos(*parts: tuple[str, ...], held: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Every way of joining one piece of each part (in order), minus the held-out ``held``:
    many train wordings, so that an eval wording is a new mix of known pieces."""
    out = [""]
    for part in parts:
        out = [a + b for a in out for b in part]
    return tuple(dict.fromkeys(x for x in out if x not in held))


# (train phrasings, eval phrasings) of every instruction wording.
BRIEF = (("Answer briefly.", "Give only the result.", "You are a brief answerer: only the result.",
          "Be brief. Reply with the result only.", "Just the answer, please.",
          "You answer in as few words as possible.", "Short answers only.",
          "No steps, only the result.", "Reply with the answer and nothing else.",
          *_combos(("You are a brief assistant. ", "Be short. ", "Keep it short. ", "Be quick. ",
                    "You are a quick helper. ", "No working. "),
                   ("Only the result.", "The result only.", "Just the answer.",
                    "Give only the answer.", "Answer with the result only."))),
         ("Keep it brief: the result only.", "You are a terse assistant. Only the result."))
TEACHER = (("You are a friendly teacher.", "You are a teacher. Show the worked steps.",
            "Explain each step like a teacher.", "You are a patient teacher who shows every step.",
            "Teach me: show your working.", "You are a teacher who explains the steps.",
            "Show me the steps, teacher.", "You are a teacher: explain the working.",
            "Explain it step by step.",
            *_combos(("You are a teacher. ", "You are a patient teacher. ", "Be my teacher. ",
                      "You are a helpful maths teacher. ", "Act as a teacher. "),
                     ("Show the steps.", "Explain every step.", "Show your working.",
                      "Go step by step.", "Explain the working."))),
           ("You are a kind maths teacher. Show each step.",
            "As a teacher, walk me through the steps."))
STORYTELLER = (("You are a storyteller.", "Answer with a story sentence.",
                "You are a storyteller: reply with one story sentence.", "Tell it as a story.",
                "You are a storyteller who answers in one sentence.", "Reply like a storyteller.",
                "Tell me the result as a little story.", "You tell stories. One sentence.",
                *_combos(("You are a storyteller. ", "You tell tales. ", "Be a storyteller. ",
                          "Act as a storyteller. ", "You love stories. "),
                         ("Reply in one story sentence.", "One story sentence.",
                          "Answer with a story sentence.", "Tell it in one sentence."))),
               ("You are a teller of tales. One story sentence.",
                "Reply as a storyteller would, in one sentence."))
PROBLEM_HEADS = (("", "Question: ", "Please help: ", "Solve: ", "Work it out: "),
                 ("Here is a problem: ", "Can you solve this? "))
SENTIMENT_ASKS = (("Is this review positive, negative or neutral?",
                   "What is the sentiment of this review: positive, negative or neutral?",
                   "Classify the review as positive, negative or neutral.",
                   "Positive, negative or neutral?"),
                  ("Tell me if this review is positive, negative or neutral.",
                   "Review sentiment (positive, negative or neutral)?"))
TRANSLATE_ASKS = (("Translate into Lingo: ", "How do you say this in Lingo? ", "Lingo, please: ",
                   "Translate this sentence into Lingo: "),
                  ("Put this sentence into Lingo: ", "What is this in Lingo? "))
SUMMARY_ASKS = (("TL;DR?", "Give me a TL;DR.", "Sum this up in one line.", "TL;DR, please."),
                ("Write a TL;DR of the text above.", "One-line summary, please."))
CARD_ASKS = (("Write a story card about {n}, {an} and the {p}. Use the slots Title, Story and "
              "Moral.",
              "Fill in a card with Title, Story and Moral for a story about {n} and {an} at the "
              "{p}.",
              "Make a Title / Story / Moral card: {n}, {a}, {p}.",
              *_combos(("Write ", "Make ", "Fill in ", "Create ", "Give me ", "Could you write ",
                        "Please write ", "Please make ", "Now fill in "),
                       ("a story card", "a card", "this card", "a little card"),
                       (" (Title, Story, Moral)", " with Title, Story and Moral",
                        " using the slots Title, Story and Moral", " (Title / Story / Moral)",
                        " with the slots Title, Story, Moral"),
                       (" for {n}, {an} and the {p}.", " about {n}, {an} and the {p}.",
                        " for {n} and {an} at the {p}.", " about {n} who meets {an} at the {p}.",
                        " for a story of {an}, {n} and the {p}.",
                        " at the {p} with {n} and {an}.", ": {n}, {a}, {p}."),
                       held=("Please fill this card (Title, Story, Moral) for {n}, {an} and the "
                             "{p}.",))),
             ("Please fill this card (Title, Story, Moral) for {n}, {an} and the {p}.",))
MESSAGE_ASKS = (("Write a message from {n} to {m} about {t}, with Subject, Body and Closing.",
                 "Help {n} write to {m} about {t}. Slots: Subject, Body, Closing.",
                 "Fill in Subject, Body and Closing: a note from {n} to {m} about {t}.",
                 *_combos(("Write ", "Compose ", "Make ", "Prepare ", "Please write ",
                           "Put together ", "Could you write ", "Fill in "),
                          ("a message", "a note", "a letter", "an email", "a short note"),
                          (" (Subject, Body, Closing)", " with Subject, Body and Closing",
                           " (Subject / Body / Closing)",
                           " using the slots Subject, Body and Closing"),
                          (" from {n} to {m} about {t}.", " to {m} from {n} about {t}.",
                           " from {n} to {m} on {t}.", " about {t}, from {n} to {m}.",
                           " for {m}, from {n}, about {t}.", " that {n} sends to {m} about {t}."),
                          held=("Draft a note (Subject / Body / Closing) from {n} to {m} about "
                                "{t}.",))),
                ("Draft a note (Subject / Body / Closing) from {n} to {m} about {t}.",))
_BEGINNER_RULES = ("If I am a beginner, show the steps", "If I am a beginner, explain each step",
                   "For beginners, show your working", "If I am new, go step by step",
                   "A beginner gets the worked steps", "If I am a beginner, work it out in steps")
_EXPERT_RULES = ("if I am an expert, give only the answer", "if I am an expert, just the answer",
                 "experts get only the result", "for experts, the answer alone",
                 "an expert gets just the answer", "if I am an expert, only the result")
LEVEL_RULES = (("If I am a beginner, show the steps; if I am an expert, give only the answer.",
                "Beginners get the steps, experts get only the answer.",
                "If I am an expert, just the answer; if I am a beginner, explain the steps.",
                *_combos(_BEGINNER_RULES, ("; ", ", and "), _EXPERT_RULES, (".",)),
                *(x[0].upper() + x[1:] for x in _combos(_EXPERT_RULES, ("; ", ", but "),
                                                        tuple(b[0].lower() + b[1:]
                                                              for b in _BEGINNER_RULES),
                                                        (".",)))),
               ("For a beginner, explain step by step; for an expert, only the answer.",))
LEVELS = ((("I am a beginner.", "I am new to this, a beginner.", "Beginner here.",
            "I am a total beginner.", "I'm a beginner.", "Level: beginner.",
            "I am a beginner at maths.", "I am only a beginner.", "I just started: a beginner."),
           ("I am an expert.", "I know this well: I am an expert.", "Expert here.",
            "I am an expert in maths.", "I'm an expert.", "Level: expert.", "I am a real expert.",
            "I have done this for years: an expert.")),
          (("I am just starting out, a beginner.",), ("I am an expert at sums.",)))
# Train rules quote any two phrases of this pool (either may be either branch's reply), so the
# reply must be copied from the rule; eval rules quote the held-out GOOD/BAD_REPLIES[1].
QUOTE_POOL = tuple(p[0].upper() + p[1:] + "." for p in (
    *w.FRIENDLY_PHRASES, *w.NEUTRAL_PHRASES, *w.POSITIVE_PHRASES, *w.NEGATIVE_PHRASES)) + _combos(
    ("Thank you", "Thanks", "Thanks a lot", "We are glad", "Great", "Wonderful", "Sorry",
     "We are sorry", "Oh no", "Please come back", "See you soon", "Hello", "Dear customer",
     "Good news", "Bad luck", "Oh dear"),
    (", we will do better.", ", come again.", ", we hope to see you.", ", that is great.",
     ", we will fix it.", ", have a nice day.", ", you made our day.", ", we are listening.",
     ", thanks for telling us.", ", it means a lot.", "!", "."))
GOOD_REPLIES = (("Thank you!", "We are glad you liked it.", "Thanks for the kind words.",
                 "Great to hear!", "See you again soon!"),
                ("Many thanks, come back soon.", "We are so happy you enjoyed it."))
BAD_REPLIES = (("We are sorry.", "Sorry to hear that.", "We will do better.",
                "Please accept our apology."),
               ("We apologise and will improve.", "That is a pity, sorry."))
# Iterative steps on a story sentence: what to do -> which value of the sentence it asks for.
_ASK = ("name ", "write ", "give ", "say ", "tell me ", "write down ", "state ")
STEP_WORDS = (({"person": _combos(_ASK + ("copy ",), ("the person", "the person's name",
                                                      "the name of the person",
                                                      "who it is about"),
                                  held=("give the person's name",)),
                "animal": _combos(_ASK, ("the animal", "which animal it is", "the animal's name"),
                                  held=("tell me the animal",)),
                "place": _combos(_ASK, ("the place", "where it happens", "the place's name",
                                        "where it is"), held=("tell me the place",)),
                "sentence": _combos(("copy ", "write ", "say ", "give ", "write out ", "repeat ",
                                     "write down "),
                                    ("the sentence again", "the whole sentence",
                                     "the sentence back", "the sentence word for word",
                                     "the sentence"), held=("repeat the sentence",))}),
              ({"person": ("give the person's name",), "animal": ("tell me the animal",),
                "place": ("tell me the place",), "sentence": ("repeat the sentence",)}))
CONNECTIVES = ((("First", "Then", "Finally"), ("First", "Next", "Last"),
                ("First", "Second", "Third"), ("To begin", "Then", "Lastly"),
                ("Start", "After this", "At the end"), ("Begin", "Next", "To finish"),
                ("First", "After that", "Finally"), ("To start", "Next", "Lastly"),
                ("Step one", "Step two", "Step three"), ("First of all", "Then", "At last")),
               (("To start", "After that", "In the end"),))
PROBLEM_STEPS = (_combos(("{0}, ",),
                         ("list the numbers in the problem", "write the numbers of the problem",
                          "list the numbers", "copy the numbers of the problem",
                          "write down the numbers", "note the numbers in the problem"),
                         (". {1}, ",),
                         ("solve it step by step", "work it out", "show the steps",
                          "do the sums step by step", "solve it", "work through it step by step"),
                         (". {2}, ",),
                         ("give the answer", "write the answer", "say the answer",
                          "give the result", "state the result", "tell me the answer"),
                         (".",)),
                 ("{0}, write down the numbers of the problem. {1}, work it out step by step. "
                  "{2}, state the answer.",))
MORALS = (("Be kind to animals.", "Friends help each other.", "Never give up.",
           "Always be curious.", "Share what you have."),
          ("Kindness comes back to you.", "Listen before you speak."))
STORY_LINES = ("{n} met {an} at the {p}.", "{n} found a lost {a} near the {p}.",
               "{n} and {an} played at the {p}.")
CLOSINGS = ("Love", "Best wishes", "See you soon", "Thanks")
BODIES = ("Dear {m}, I wanted to tell you about {t}.", "Dear {m}, let us talk about {t} soon.",
          "Dear {m}, what do you think about {t}?")

EQUATION_RE = re.compile(r"(\d+) ([+\-*]) (\d+) = (\d+)")
WORLD_WORDS = frozenset(x.lower() for x in (*w.NAMES, *w.ANIMALS, *w.PLACES))


@dataclass(frozen=True)
class Instruction:
    """One checkable instruction: ``messages`` (prompt turns), the reference ``reply``, its
    ``technique`` (one of :data:`TECHNIQUES`), ``kind`` (e.g. ``"role/brief"``) and ``spec``,
    what :meth:`check` needs to score a reply."""

    messages: tuple[dict[str, str], ...]
    reply: str
    technique: str
    kind: str
    spec: Mapping = field(default_factory=dict)

    def check(self, reply: str) -> bool:
        """Whether ``reply`` followed the instruction (see the module docstring per technique)."""
        if not isinstance(reply, str):
            raise TypeError(f"reply must be a str (the model's text), got {type(reply).__name__}")
        return CHECKS[self.kind](self.spec, reply.strip())

    def chat(self) -> list[dict[str, str]]:
        """The prompt messages followed by the reference reply: one SFT training chat."""
        return [dict(m) for m in self.messages] + [{"role": "assistant", "content": self.reply}]


# ---------------------------------------------------------------------------------- checks
def _norm(text: str) -> str:
    text = text.strip().strip("\"'").strip()
    return re.sub(r"\s+", " ", text).rstrip(".!").strip().lower()


def _lines(reply: str) -> list[str]:
    return [ln.strip() for ln in reply.split("\n") if ln.strip()]


def _only_result(reply: str) -> bool:
    return re.fullmatch(r"(The answer is )?\d+\.?", reply) is not None


def _worked(reply: str, min_steps: int) -> bool:
    """True equations (at least ``min_steps``), then "The answer is N." with N the last result."""
    eqs = EQUATION_RE.findall(reply)
    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
    if len(eqs) < min_steps or not all(ops[o](int(a), int(b)) == int(c) for a, o, b, c in eqs):
        return False
    return _final_answer(reply) == int(eqs[-1][3])


def _final_answer(reply: str) -> int | None:
    """N of a reply that ends with "The answer is N." (a reply that runs on has none)."""
    end = re.search(r"The answer is (\d+)\.?$", reply)
    return int(end.group(1)) if end else None


def _invents(text: str, allowed: set[str]) -> bool:
    """Whether ``text`` names a person, animal or place of the world that is not ``allowed``."""
    words = {x.lower() for x in re.findall(r"[A-Za-z]+", text)}
    return bool((words & WORLD_WORDS) - {a.lower() for a in allowed})


def _story_sentence(spec: Mapping, reply: str) -> bool:
    return (reply.startswith(("Once upon a time", "In the end,")) and "\n" not in reply
            and reply.endswith(".")
            and reply.count(".") == 1 and spec["name"] in reply and "=" not in reply
            and len(reply.split()) <= 25)


def _slots(reply: str, names: tuple[str, ...]) -> list[str] | None:
    lines = _lines(reply)
    if len(lines) != len(names):
        return None
    values = []
    for line, name in zip(lines, names, strict=True):
        if not line.startswith(f"{name}:") or not line[len(name) + 1:].strip():
            return None
        values.append(line[len(name) + 1:].strip())
    return values


def _card(spec: Mapping, reply: str) -> bool:
    v = _slots(reply, ("Title", "Story", "Moral"))
    n, a, p = spec["name"], spec["animal"], spec["place"]
    return (v is not None and n in v[0] and all(x in v[1] for x in (n, a, p))
            and not _invents(reply, {n, a, p}))


def _message(spec: Mapping, reply: str) -> bool:
    v = _slots(reply, ("Subject", "Body", "Closing"))
    n, m, topic = spec["sender"], spec["recipient"], spec["topic"]
    return (v is not None and topic.removeprefix("the ").lower() in v[0].lower() and m in v[1]
            and v[2].rstrip(".").endswith(n) and not _invents(reply, {n, m, *topic.split()}))


def _numbered(reply: str, k: int) -> list[str] | None:
    lines = _lines(reply)
    if len(lines) != k or not all(ln.startswith(f"{i + 1}. ") for i, ln in enumerate(lines)):
        return None
    return [ln[3:].strip() for ln in lines]


def _entities(spec: Mapping, reply: str) -> bool:
    got = _numbered(reply, len(spec["answers"]))
    return got is not None and all(_norm(g) == _norm(e) for g, e in zip(got, spec["answers"],
                                                                       strict=True))


def _problem_steps(spec: Mapping, reply: str) -> bool:
    got = _numbered(reply, 3)
    if got is None:
        return False
    numbers = [int(x) for x in re.findall(r"\d+", got[0])]
    return numbers == spec["numbers"] and _worked(f"{got[1]} {got[2]}", 1) \
        and _only_result(got[2])


def _summary(spec: Mapping, reply: str) -> bool:
    names = set(re.findall(r"\b[A-Z][a-z]+\b", spec["document"]))
    said = {x for x in re.findall(r"\b[A-Z][a-z]+\b", reply) if x in w.NAMES}
    return ("\n" not in reply and 3 <= len(reply.split()) <= 15 and bool(said)
            and said <= names and not _invents(reply, set(re.findall(r"[A-Za-z]+",
                                                                     spec["document"]))))


CHECKS: dict[str, Callable[[Mapping, str], bool]] = {
    "role/brief": lambda s, r: _only_result(r),
    "role/teacher": lambda s, r: _worked(r, s["num_steps"]),
    "role/storyteller": _story_sentence,
    "task/sentiment": lambda s, r: _norm(r) == s["label"],
    "task/translation": lambda s, r: _norm(r) == _norm(s["target"]),
    "task/summary": _summary,
    "task/word_problem": lambda s, r: _final_answer(r) == s["answer"],
    "template/card": _card,
    "template/message": _message,
    "conditional/level": lambda s, r: _worked(r, 1) if s["level"] == "beginner"
    else _only_result(r),
    "conditional/review": lambda s, r: _norm(r) == _norm(s["expected"]),
    "iterative/entities": _entities,
    "iterative/problem": _problem_steps,
}


# ------------------------------------------------------------------------------ generators
def _user(text: str, system: str | None = None) -> tuple[dict[str, str], ...]:
    head = ({"role": "system", "content": system},) if system else ()
    return (*head, {"role": "user", "content": text})


def _problem(rng: random.Random, held: int) -> dict:
    """A word problem; in train, its names are made-up ones half of the time."""
    r = tasks.word_problem(rng, "test" if held else "train", rng.choice((1, 2, 2)))
    if not held and rng.random() < 0.5:
        for name in sorted(set(re.findall(r"\b[A-Z][a-z]+\b", r["question"])) & set(w.NAMES)):
            new = rng.choice(MADE_UP_NAMES)
            for key in ("question", "solution"):
                r[key] = re.sub(rf"\b{name}\b", new, r[key])
    return r


def _role(rng: random.Random, kind: str, held: int) -> Instruction:
    r = _problem(rng, held)
    pool = {"brief": BRIEF, "teacher": TEACHER, "storyteller": STORYTELLER}[kind][held]
    user = rng.choice(PROBLEM_HEADS[held]) + r["question"]
    name = r["question"].split()[0]
    things = re.search(r"How many (\w+)", r["question"]).group(1)
    reply = {"brief": f"The answer is {r['answer']}.", "teacher": r["solution"],
             "storyteller": f"In the end, {name} had {r['answer']} {things}."}[kind]
    return Instruction(_user(user, rng.choice(pool)), reply, "role", f"role/{kind}",
                       {"num_steps": r["num_steps"], "name": name, "answer": r["answer"]})


def _task(rng: random.Random, kind: str, held: int) -> Instruction:
    split = "test" if held else "train"
    if kind == "sentiment":
        r = tasks.review(rng, split, rng.randrange(3))
        label = tasks.SENTIMENT_LABELS[r["label"]]
        return Instruction(_user(f"{rng.choice(SENTIMENT_ASKS[held])}\n{r['text']}"), label,
                           "task", "task/sentiment", {"label": label})
    if kind == "translation":
        r = tasks.translation(rng, split)
        return Instruction(_user(rng.choice(TRANSLATE_ASKS[held]) + r["source"]), r["target"],
                           "task", "task/translation", {"target": r["target"]})
    if kind == "summary":
        r = tasks.summary(rng, split)
        while _invents(r["summary"], set(re.findall(r"[A-Za-z]+", r["document"]))):
            r = tasks.summary(rng, split)  # the passage dropped the sentence naming that place
        return Instruction(_user(f"{r['document']}\n{rng.choice(SUMMARY_ASKS[held])}"),
                           r["summary"], "task", "task/summary", {"document": r["document"]})
    r = _problem(rng, held)
    return Instruction(_user(rng.choice(PROBLEM_HEADS[held]) + r["question"]), r["solution"],
                       "task", "task/word_problem", {"answer": r["answer"]})


def _an(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _train_name(rng: random.Random) -> str:
    return rng.choice(w.names_for("train") if rng.random() < 0.5 else MADE_UP_NAMES)


def _contents(rng: random.Random, held: int) -> tuple[str, str, str, str, str]:
    """Two names, an animal (or, in train, another thing), a place and a topic."""
    if held:
        n, m = rng.sample(w.HELD_OUT_NAMES, 2)
        return n, m, rng.choice(EVAL_ANIMALS), rng.choice(EVAL_PLACES), rng.choice(EVAL_TOPICS)
    n, m = _train_name(rng), _train_name(rng)
    while m == n:
        m = _train_name(rng)
    return n, m, rng.choice(TRAIN_THINGS), rng.choice(TRAIN_PLACES), rng.choice(TRAIN_TOPICS)


def _template(rng: random.Random, kind: str, held: int) -> Instruction:
    n, m, a, p, t = _contents(rng, held)
    if kind == "card":
        reply = (f"Title: {n} and {_an(a)}\n"
                 f"Story: {rng.choice(STORY_LINES).format(n=n, a=a, an=_an(a), p=p)}\n"
                 f"Moral: {rng.choice(MORALS[held])}")
        ask = rng.choice(CARD_ASKS[held]).format(n=n, a=a, an=_an(a), p=p)
        return Instruction(_user(ask), reply, "template", "template/card",
                           {"name": n, "animal": a, "place": p})
    reply = (f"Subject: News about {t}\n"
             f"Body: {rng.choice(BODIES).format(m=m, t=t)}\n"
             f"Closing: {rng.choice(CLOSINGS)}, {n}.")
    return Instruction(_user(rng.choice(MESSAGE_ASKS[held]).format(n=n, m=m, t=t)), reply,
                       "template", "template/message", {"sender": n, "recipient": m, "topic": t})


def _conditional(rng: random.Random, kind: str, held: int) -> Instruction:
    if kind == "level":
        r = _problem(rng, held)
        level = rng.randrange(2)
        who = rng.choice(LEVELS[held][level])
        user = f"{rng.choice(LEVEL_RULES[held])} {who}\n{r['question']}"
        reply = r["solution"] if level == 0 else f"The answer is {r['answer']}."
        return Instruction(_user(user), reply, "conditional", "conditional/level",
                           {"level": ("beginner", "expert")[level]})
    label = rng.choice((2, 2, 0, 1))  # positive half of the time
    r = tasks.review(rng, "test" if held else "train", label)
    if held:
        good, bad = rng.choice(GOOD_REPLIES[1]), rng.choice(BAD_REPLIES[1])
    else:
        good, bad = rng.sample(QUOTE_POOL + GOOD_REPLIES[0] + BAD_REPLIES[0], 2)
    if rng.random() < 0.5:
        rule = f'If the review is positive, reply "{good}"; otherwise reply "{bad}".'
    else:
        rule = f'If the review is not positive, reply "{bad}"; if it is positive, reply "{good}".'
    expected = good if label == 2 else bad
    return Instruction(_user(f"{rule}\nReview: {r['text']}"), expected, "conditional",
                       "conditional/review", {"expected": expected})


def _iterative(rng: random.Random, kind: str, held: int) -> Instruction:
    c = rng.choice(CONNECTIVES[held])
    if kind == "entities":
        n, _, a, p, _ = _contents(rng, held)
        if a not in w.ANIMALS:  # the step asks for "the animal"
            a = rng.choice([x for x in w.ANIMALS if x not in EVAL_ANIMALS])
        sentence = rng.choice((f"{rng.choice(w.TIMES)}, {n} saw {_an(a)} near the {p}.",
                               f"{n} took the {a} to the {p}.",
                               f"At the {p}, {n} fed {_an(a)}."))
        values = {"person": n, "animal": a, "place": p, "sentence": sentence}
        steps = rng.sample(list(values), 3)
        words = [rng.choice(STEP_WORDS[held][s]) for s in steps]
        user = " ".join(f"{c[i]}, {words[i]}." for i in range(3)) + f"\nSentence: {sentence}"
        answers = [values[s] for s in steps]
        reply = "\n".join(f"{i + 1}. {v}" for i, v in enumerate(answers))
        return Instruction(_user(user), reply, "iterative", "iterative/entities",
                           {"answers": answers})
    r = _problem(rng, held)
    numbers = [int(x) for x in re.findall(r"\d+", r["question"])]
    steps = r["solution"].rsplit(" The answer is", 1)[0]
    user = f"{rng.choice(PROBLEM_STEPS[held]).format(*c)}\n{r['question']}"
    reply = (f"1. {', '.join(map(str, numbers))}\n2. {steps}\n"
             f"3. The answer is {r['answer']}.")
    return Instruction(_user(user), reply, "iterative", "iterative/problem", {"numbers": numbers})


MAKERS = {"role": _role, "task": _task, "template": _template, "conditional": _conditional,
          "iterative": _iterative}


def instruction_data(seed: int = 0, split: str = "train", n: int | None = None,
                 techniques: tuple[str, ...] = TECHNIQUES) -> list[Instruction]:
    """``n`` instructions of ``split`` ("train" or the held-out "eval"), the same for a seed.

    Techniques take turns (so any ``n`` is balanced over them), and so do the kinds within a
    technique; no prompt appears twice. ``n`` defaults to :data:`INSTRUCTION_SIZES`.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):  # any int: the benchmark's seeds
        raise ValueError(f"seed must be an int, got {seed!r}")
    if split not in INSTRUCTION_SPLITS:
        raise ValueError(f"split must be one of {INSTRUCTION_SPLITS}, got {split!r}")
    bad = [t for t in techniques if t not in TECHNIQUES]
    if bad or not techniques:
        raise ValueError(f"techniques must be some of {TECHNIQUES}, got {techniques!r}")
    n = INSTRUCTION_SIZES[split] if n is None else n
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    rng = random.Random(f"instructions/{seed}/{split}")
    held = int(split == "eval")
    out: list[Instruction] = []
    seen: set[tuple] = set()
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n:
            raise RuntimeError(f"could only make {len(out)} unique {split} instructions")
        technique = techniques[len(out) % len(techniques)]
        kinds = KINDS[technique]
        kind = kinds[(len(out) // len(techniques)) % len(kinds)]
        item = MAKERS[technique](rng, kind, held)
        key = tuple(m["content"] for m in item.messages)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


__all__ = ["CHECKS", "INSTRUCTION_SIZES", "INSTRUCTION_SPLITS", "KINDS", "TECHNIQUES",
           "Instruction", "instruction_data"]
