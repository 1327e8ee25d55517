"""Short stories and everyday prose: the pretraining text of the course's world.

Each document is a few sentences about people, animals, places, food and weather, put together
from templates with enough variety that a byte-level BPE tokenizer learns a real vocabulary and a
small language model learns English-like grammar. The words later used as held-out label words
("positive", "negative", "neutral") and the held-out names and objects appear here in ordinary
contexts, so the model knows them before it meets them in a test prompt.
"""

from __future__ import annotations

import random

from course_utils.data import world as w


def _names(rng: random.Random) -> list[str]:
    """Two names; held-out names come up often, so the tokenizer learns them as whole words."""
    pool = w.HELD_OUT_NAMES if rng.random() < 0.5 else w.NAMES
    return rng.sample(pool, 2)


def _thing(rng: random.Random) -> tuple[str, str, str, str]:
    """A countable thing, held-out ones half of the time (same reason as :func:`_names`)."""
    held = [c for c in w.COUNTABLES if c[0] in w.HELD_OUT_COUNTABLES]
    return rng.choice(held if rng.random() < 0.5 else w.COUNTABLES)


def _story(rng: random.Random) -> str:
    name, friend = _names(rng)
    animal, place, place2 = rng.choice(w.ANIMALS), *rng.sample(w.PLACES, 2)
    food, good, bad = rng.choice(w.FOODS), rng.choice(w.FEELINGS_GOOD), rng.choice(w.FEELINGS_BAD)
    color, weather, time = rng.choice(w.COLORS), rng.choice(w.WEATHER), rng.choice(w.TIMES)
    thing = _thing(rng)
    n = rng.randint(2, 12)
    openings = (
        f"{time}, {name} went to the {place} with {friend}.",
        f"{name} had a {color} {animal} that lived near the {place}.",
        f"It was a {weather} day, and {name} wanted to visit the {place}.",
        f"Once upon a time, a little {animal} lived in a {color} house by the {place}.",
        f"{name} and {friend} were best friends who lived in a small village.",
    )
    middles = (
        f"On the way, they saw a {animal} sitting under a {color} tree.",
        f"{friend} found {n} {thing[1]} in an old {thing[2]}.",
        f"They shared some {food} and talked about the {place2}.",
        f"Suddenly it started to rain, so they ran to the {place2}.",
        f"{name} felt {bad} because the {animal} was lost.",
        f"The {animal} ran across the {place2} and hid behind a {thing[2]}.",
        f"{friend} said, \"Let us look near the {place2}.\"",
        f"\"I am {good} that you came,\" said {name}.",
        f"They counted {n} {thing[1]} and put them in a {thing[2]}.",
        f"A kind old man at the {place2} gave them some {food}.",
        f"{name} stayed positive, even when the path was long.",
        f"The news from the {place2} was negative, and {friend} felt {bad}.",
        f"When the two friends argued, the {animal} stayed neutral and went to sleep.",
        f"{name} was positive that the {animal} would come back.",
        f"The sky was {weather}, and the {place} was {rng.choice(('busy', 'empty', 'noisy'))}.",
    )
    endings = (
        f"In the end, {name} felt {good} and went home.",
        f"They found the {animal} at last, and everyone was {good}.",
        f"That night, {name} had {food} for dinner and slept well.",
        f"It was a long day, but {friend} said it was a good one.",
        f"The next day, they went back to the {place} to play again.",
    )
    k = rng.randint(2, 5)
    body = rng.sample(middles, k)
    return " ".join([rng.choice(openings), *body, rng.choice(endings)])


def _prose(rng: random.Random) -> str:
    name, friend = _names(rng)
    place, food, food2 = rng.choice(w.PLACES), *rng.sample(w.FOODS, 2)
    animal, weather = rng.choice(w.ANIMALS), rng.choice(w.WEATHER)
    thing = _thing(rng)
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    kinds = (
        (f"Dear diary, today was {weather}. I went to the {place} and bought {food}. "
         f"{friend} called me after lunch. I feel {rng.choice(w.FEELINGS_GOOD)} tonight."),
        (f"Dear {friend}, thank you for the {food}. The {animal} is well and says hello. "
         f"Come and see us at the {place} soon. Love, {name}."),
        (f"The {place} opens at {a} in the morning. On {weather} days many people come. "
         f"You can buy {food} and {food2} there, and children like to watch the {animal}."),
        (f"A {animal} is an animal that lives near the {place}. "
         f"It likes {food} and sleeps when the day is {weather}."),
        (f"{name} bought {a} {thing[1]} and {b} {thing[1]}. Now {name} has {a + b} {thing[1]}. "
         f"{name} put them in a {thing[2]}."),
        (f"To make {food}, you need a bowl, some milk and {a} eggs. Mix it all well. "
         f"Wait {b} minutes and it is ready."),
        (f"The test came back negative, so {name} could go to the {place} after all. "
         f"{friend} was glad to hear it."),
        (f"{name} gave a positive answer, and {friend} smiled. "
         f"They planned a trip to the {place}."),
        (f"The judge stayed neutral and listened to {name} and {friend}. "
         f"In the end, both of them were calm."),
        (f"Some days are good and some days are bad. Today was an okay day for {name}. "
         f"It was not great, but it was fine."),
    )
    return rng.choice(kinds)


def story(rng: random.Random) -> str:
    """One document: a short story (two thirds of the time) or a piece of everyday prose."""
    return _story(rng) if rng.random() < 0.66 else _prose(rng)
