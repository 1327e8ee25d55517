"""One generated example of each task: review, word problem, summary, translation, comment.

Every function takes a seeded ``random.Random`` and the split it is generating for, and returns a
dict of columns. Word problems in the validation and test splits use held-out names and objects
(see :mod:`course_utils.data.world`), so a test question is new to a model pretrained on "train".
"""

from __future__ import annotations

import random

from course_utils.data import world as w

SENTIMENT_LABELS = ("negative", "neutral", "positive")
TOXICITY_LABELS = ("non-toxic", "toxic")


# ----------------------------------------------------------------------------------- reviews
def review(rng: random.Random, split: str, label: int) -> dict:
    """A short product/place review whose sentiment is ``SENTIMENT_LABELS[label]``."""
    kind, items = rng.choice(w.REVIEW_ITEMS)
    item = rng.choice(items)
    who = rng.choice(("my son", "my mum", "a friend", "my partner", "the kids", "my team"))
    day = rng.choice(("Monday", "Saturday", "the weekend"))
    verb = {"restaurant": "ate at", "film": "watched", "book": "read", "hotel": "stayed at",
            "product": "bought", "game": "played", "shop": "went to"}[kind]
    opener = rng.choice((
        f"I {verb} {item} last week.", f"We {verb} {item} on {day}.",
        f"I {verb} {item} with {who}.", f"This is my review of {item}.",
        f"{item[0].upper()}{item[1:]} was new to me.", f"{who.capitalize()} and I {verb} {item}.",
        "",
    ))
    pool = (w.NEGATIVE_PHRASES, w.NEUTRAL_PHRASES, w.POSITIVE_PHRASES)[label]
    phrases = rng.sample(pool, rng.randint(1, 2))
    end = rng.choice((".", ".", "!" if label != 1 else "."))
    body = " ".join(p[0].upper() + p[1:] + end for p in phrases)
    closer = rng.choice(("", "", (
        "Never again.", "Maybe next time it will be better.", "See you soon!")[label]))
    text = " ".join(p for p in (opener, body, closer) if p)
    return {"text": text, "label": label}


# ------------------------------------------------------------------------------ word problems
def _objects_for(split: str) -> list[tuple[str, str, str, str]]:
    held = [c for c in w.COUNTABLES if c[0] in w.HELD_OUT_COUNTABLES]
    return [c for c in w.COUNTABLES if c not in held] if split == "train" else held


def word_problem(rng: random.Random, split: str, num_steps: int | None = None) -> dict:
    """An arithmetic word problem with a worked solution ending in "The answer is N."

    Every step is one small fact (``a + b``, ``a - b`` with small numbers, or ``a * b`` with
    one-digit factors), written out as an equation, so a model that knows its drills can follow.
    """
    if num_steps is None:
        num_steps = rng.choice((1, 2, 2, 2, 3))
    if num_steps not in (1, 2, 3):
        raise ValueError(f"num_steps must be 1, 2 or 3, got {num_steps!r}")
    n, m, k = rng.sample(w.names_for(split), 3)
    _, p, c, cs = rng.choice(_objects_for(split))
    # Small numbers: every step is a fact of the pretraining drills (sums up to 30).
    a, b, c1 = rng.randint(2, 9), rng.randint(2, 4), rng.randint(2, 4)
    if num_steps == 1:
        kind = rng.randrange(3)
        if kind == 0:
            q = f"{n} has {a} {p}. {m} gives {n} {c1} more {p}. How many {p} does {n} have now?"
            steps, ans = [f"{a} + {c1} = {a + c1}."], a + c1
        elif kind == 1:
            a = rng.randint(c1 + 1, 9)
            q = f"{n} has {a} {p}. {n} gives {c1} {p} to {m}. How many {p} does {n} have left?"
            steps, ans = [f"{a} - {c1} = {a - c1}."], a - c1
        else:
            q = f"{n} has {b} {cs}. Each {c} has {c1} {p}. How many {p} does {n} have?"
            steps, ans = [f"{b} * {c1} = {b * c1}."], b * c1
        steps = [f"{n} has {steps[0]}"] if kind != 2 else [f"{b} {cs} of {c1} {p} is {steps[0]}"]
    else:
        kind = rng.randrange(5)
        d_ = rng.randint(2, 6)
        if kind == 0:
            q = (f"{n} has {a} {p}. {n} buys {b} {cs} of {p}. Each {c} has {c1} {p}. "
                 f"How many {p} does {n} have now?")
            d = b * c1
            steps = [f"{n} starts with {a} {p}.", f"{b} {cs} of {c1} {p} is {b} * {c1} = {d} {p}.",
                     f"{a} + {d} = {a + d}."]
            ans = a + d
        elif kind == 1:
            a = rng.randint(c1 + 1, 9)
            q = (f"{n} has {a} {p}. {n} gives {c1} {p} to {m}. Then {n} finds {d_} more {p}. "
                 f"How many {p} does {n} have now?")
            d = a - c1
            steps = [f"{n} gives away {c1}, so {a} - {c1} = {d}.", f"{d} + {d_} = {d + d_}."]
            ans = d + d_
        elif kind == 2:
            d = b * c1
            d_ = rng.randint(1, d - 1)
            q = (f"{n} has {b} {cs} with {c1} {p} in each {c}. {n} gives {d_} {p} to {m}. "
                 f"How many {p} does {n} have left?")
            steps = [f"{b} {cs} of {c1} {p} is {b} * {c1} = {d} {p}.", f"{d} - {d_} = {d - d_}."]
            ans = d - d_
        elif kind == 3:
            q = (f"{n} has {a} {p}. {m} gives {n} {c1} {p}, and {k} gives {n} {d_} {p}. "
                 f"How many {p} does {n} have now?")
            d = a + c1
            steps = [f"{a} + {c1} = {d}.", f"{d} + {d_} = {d + d_}."]
            ans = d + d_
        else:
            d = a + d_
            c1 = rng.randint(1, d - 1)
            q = (f"{n} picks {a} {p} in the morning and {d_} {p} in the afternoon. "
                 f"{n} gives {c1} {p} to {m}. How many {p} does {n} have left?")
            steps = [f"{a} + {d_} = {d}.", f"{d} - {c1} = {d - c1}."]
            ans = d - c1
        if num_steps == 3:
            e = rng.randint(1, max(1, ans - 1))
            q = q.rsplit(". ", 1)[0] + f". At the end, {n} loses {e} {p}. " + q.rsplit(". ", 1)[1]
            q = q.replace(" now?", " left?").replace("have now", "have left")
            steps.append(f"{ans} - {e} = {ans - e}.")
            ans -= e
    solution = " ".join(steps) + f" The answer is {ans}."
    return {"question": q, "solution": solution, "answer": ans, "num_steps": num_steps}


# ---------------------------------------------------------------------------------- summaries
def summary(rng: random.Random, split: str) -> dict:
    """A short passage about one event and a one-line summary of it."""
    n, m = rng.sample(w.NAMES, 2)
    place, place2 = rng.sample(w.PLACES, 2)
    animal, food, time = rng.choice(w.ANIMALS), rng.choice(w.FOODS), rng.choice(w.TIMES)
    weather = rng.choice(w.WEATHER)
    events = (
        (f"{n} found a lost {animal} at the {place}.",
         [f"{time}, {n} went for a walk to the {place}.",
          f"Near a bench, {n} heard a small noise and saw a {animal}.",
          f"The {animal} had no home, so {n} asked {m} for help.",
          f"Together they found the owner, who lived by the {place2}."]),
        (f"{n} baked a {food} cake for {m}'s birthday.",
         [f"{time}, {n} remembered that it was {m}'s birthday.",
          f"{n} went to the {place} to buy {food} and eggs.",
          f"At home, {n} baked a cake with the {food}.",
          f"{m} was very happy with the cake."]),
        (f"{n} won the race at the {place}.",
         [f"The weather was {weather} on the day of the race at the {place}.",
          f"{n} and {m} both ran as fast as they could.",
          f"At the end, {n} was first and {m} was second.",
          f"Everyone had {food} after the race."]),
        (f"Rain stopped the picnic, so {n} and {m} ate at home.",
         [f"{n} and {m} planned a picnic at the {place}.",
          f"They packed {food} and a big blanket.",
          "Just as they left the house, heavy rain began.",
          "So they had the picnic on the kitchen floor instead."]),
        (f"{n} and {m} planted a garden near the {place}.",
         [f"{time}, {n} bought seeds at the {place2}.",
          f"{m} brought a spade and some water.",
          f"They worked all day to plant a garden near the {place}.",
          f"Soon a {animal} came to look at the new plants."]),
    )
    short, sentences = rng.choice(events)
    keep = sentences[:2] + rng.sample(sentences[2:], rng.randint(1, 2))
    return {"document": " ".join(keep), "summary": short}


# ------------------------------------------------------------------------------- translations
def translation(rng: random.Random, split: str) -> dict:
    """An English sentence and its translation into the course's toy language, Lingo."""
    def noun_phrase(noun: str) -> tuple[list[str], list[str]]:
        if rng.random() < 0.5:
            adj = rng.choice(w.LINGO_ADJECTIVES)
            return ["the", adj, noun], ["lo", w.LINGO[noun], w.LINGO[adj]]
        return ["the", noun], ["lo", w.LINGO[noun]]

    subj, verb, obj = (rng.choice(w.LINGO_SUBJECTS), rng.choice(w.LINGO_VERBS),
                       rng.choice(w.LINGO_OBJECTS))
    s_en, s_li = noun_phrase(subj)
    o_en, o_li = noun_phrase(obj)
    en, li = [*s_en, verb, *o_en], [*s_li, w.LINGO[verb], *o_li]
    if rng.random() < 0.6:
        prep, place = rng.choice(w.LINGO_PREPOSITIONS), rng.choice(w.LINGO_PLACES)
        en += [prep, "the", place]
        li += [w.LINGO[prep], "lo", w.LINGO[place]]
    if rng.random() < 0.3:
        when = rng.choice(("today", "now"))
        en.append(when)
        li.append(w.LINGO[when])
    cap = lambda words: " ".join(words)[0].upper() + " ".join(words)[1:] + "."
    return {"source": cap(en), "target": cap(li)}


# ---------------------------------------------------------------------------- toxic comments
def comment(rng: random.Random, split: str, label: int) -> dict:
    """A forum comment: friendly or critical (label 0), or insulting/hostile (label 1)."""
    n, topic = rng.choice(w.NAMES), rng.choice(w.TOPICS)
    if label == 0:
        text = rng.choice((
            f"{rng.choice(w.FRIENDLY_PHRASES).capitalize()}, {n}.",
            f"I think {topic} is {rng.choice(('great', 'fine', 'a bit too long', 'not for me'))}.",
            f"I did not like {topic}, but {rng.choice(w.FRIENDLY_PHRASES)}.",
            f"{n}, {rng.choice(w.FRIENDLY_PHRASES)}. What do you think about {topic}?",
            f"Does anyone know more about {topic}? {rng.choice(w.FRIENDLY_PHRASES).capitalize()}.",
            f"I disagree about {topic}, {n}, but I see why you say it.",
        ))
    else:
        text = rng.choice((
            f"You are such a {rng.choice(w.INSULTS)}, {n}.",
            f"{rng.choice(w.HOSTILE_PHRASES).capitalize()}, {n}.",
            f"Only a {rng.choice(w.INSULT_ADJECTIVES)} {rng.choice(w.INSULTS)} would say that "
            f"about {topic}.",
            f"{n}, you are {rng.choice(w.INSULT_ADJECTIVES)}. {rng.choice(w.HOSTILE_PHRASES)}.",
            f"What a {rng.choice(w.INSULT_ADJECTIVES)} thing to say about {topic}, you "
            f"{rng.choice(w.INSULTS)}.",
            f"{rng.choice(w.HOSTILE_PHRASES).capitalize()}. Your post about {topic} is "
            f"{rng.choice(w.INSULT_ADJECTIVES)}.",
        ))
    return {"text": text, "label": label}
