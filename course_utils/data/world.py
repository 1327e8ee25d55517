"""The vocabulary of the course's small world: names, things, places and the words around them.

Every generator in :mod:`course_utils.data` draws from these lists, so a tokenizer trained on the
stories knows the words the task data sets use. Some names and objects are *held out*: the task
generators use them only in their validation and test splits, while the stories use them freely.
That way a test example is new to the model as an example, but made of words it already knows.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

NAMES = (
    "Roger", "Mia", "Sam", "Lena", "Tom", "Ava", "Ben", "Zoe", "Leo", "Emma", "Max", "Nina",
    "Jack", "Lily", "Noah", "Ella", "Omar", "Sara", "Finn", "Ruby", "Hugo", "Ivy", "Eli", "Maya",
    "Luca", "Nora", "Adam", "Rosa", "Theo", "Anna", "Dan", "Kate", "Paul", "Jane", "Alex", "Lucy",
    "Owen", "Grace", "Ted", "Amy", "Carl", "Eva", "Jon", "Tara", "Ian", "Beth", "Ravi", "Mei",
)
# Held-out names: in stories everywhere, in task data only in the validation and test splits.
HELD_OUT_NAMES = ("Ella", "Omar", "Sara", "Finn", "Ruby", "Hugo", "Ivy", "Eli", "Maya", "Nora")

ANIMALS = ("cat", "dog", "bird", "fox", "horse", "rabbit", "duck", "mouse", "goat", "owl",
           "frog", "bear", "fish", "cow", "sheep", "pig", "hen", "wolf")
PLACES = ("park", "garden", "market", "school", "library", "beach", "forest", "farm", "river",
          "kitchen", "station", "shop", "village", "lake", "hill", "museum", "town", "field")
WEATHER = ("sunny", "rainy", "windy", "cold", "warm", "cloudy", "quiet", "bright", "grey")
TIMES = ("In the morning", "After lunch", "That evening", "On Monday", "On Saturday",
         "One day", "Early the next day", "At night", "Last summer", "In the winter")
FEELINGS_GOOD = ("happy", "glad", "proud", "calm", "excited", "pleased", "cheerful")
FEELINGS_BAD = ("sad", "tired", "angry", "worried", "bored", "upset", "lonely")
COLORS = ("red", "blue", "green", "yellow", "brown", "white", "black", "small", "big", "old",
          "new")
FOODS = ("bread", "soup", "cake", "pie", "rice", "apples", "pears", "cheese", "tea", "milk",
         "eggs", "pasta", "salad", "honey", "jam", "plums")

# Countable things for word problems: (singular, plural, container singular, container plural)
COUNTABLES = (
    ("apple", "apples", "bag", "bags"), ("ball", "balls", "can", "cans"),
    ("pencil", "pencils", "box", "boxes"), ("cookie", "cookies", "jar", "jars"),
    ("sticker", "stickers", "sheet", "sheets"), ("egg", "eggs", "basket", "baskets"),
    ("book", "books", "shelf", "shelves"), ("marble", "marbles", "bag", "bags"),
    ("card", "cards", "pack", "packs"), ("flower", "flowers", "pot", "pots"),
    ("shell", "shells", "bucket", "buckets"), ("stamp", "stamps", "page", "pages"),
    ("candle", "candles", "box", "boxes"), ("coin", "coins", "purse", "purses"),
    ("toy", "toys", "box", "boxes"), ("plum", "plums", "bowl", "bowls"),
    ("pear", "pears", "basket", "baskets"), ("cup", "cups", "tray", "trays"),
)
# Held-out objects: the word-problem test split asks about these only.
HELD_OUT_COUNTABLES = ("shell", "stamp", "candle", "coin", "toy", "plum", "pear", "cup")

# Reviewed things: (kind, examples)
REVIEW_ITEMS = (
    ("restaurant", ("the pizza place", "the noodle bar", "the corner cafe", "the fish shop")),
    ("film", ("the new film", "the space movie", "the cartoon", "the old western")),
    ("book", ("the mystery novel", "the cook book", "the picture book", "the history book")),
    ("hotel", ("the hotel by the lake", "the small inn", "the beach hotel", "the city hostel")),
    ("product", ("the blender", "the lamp", "the backpack", "the kettle", "the phone case")),
    ("game", ("the board game", "the puzzle", "the video game", "the card game")),
    ("shop", ("the flower shop", "the bakery", "the book shop", "the toy store")),
)

POSITIVE_PHRASES = (
    "I loved it", "it was wonderful", "the staff were kind and helpful", "great value",
    "it works perfectly", "I would gladly come back", "the best I have tried", "really fun",
    "everything was fresh and tasty", "a delight from start to finish", "highly recommended",
    "it made my day", "beautiful and well made", "it was fast and friendly", "simply excellent",
    "my kids loved it", "worth every penny", "clean, bright and cosy", "I enjoyed every minute",
)
NEGATIVE_PHRASES = (
    "I hated it", "it was awful", "the staff were rude", "a waste of money", "it broke in a day",
    "I will never come back", "the worst I have tried", "really boring", "the food was cold",
    "a mess from start to finish", "do not buy it", "it ruined my day", "cheap and badly made",
    "it was slow and noisy", "simply terrible", "my kids were bored", "not worth the price",
    "dirty, dark and cramped", "I regretted every minute",
)
NEUTRAL_PHRASES = (
    "it was okay", "nothing special", "it does the job", "about what I expected",
    "some parts were good and some were not", "the price is average", "it was fine, I guess",
    "neither good nor bad", "an ordinary experience", "it works, mostly",
    "I have no strong feelings", "it was as described", "the staff were polite enough",
    "a standard choice", "fair for the price",
)

INSULTS = ("idiot", "fool", "clown", "loser", "moron", "joke", "coward", "creep")
INSULT_ADJECTIVES = ("stupid", "pathetic", "useless", "dumb", "clueless", "lazy", "ridiculous")
HOSTILE_PHRASES = (
    "shut up", "nobody cares what you think", "get lost", "go away and stay away",
    "you should be ashamed", "stop posting nonsense", "what a waste of space",
    "you have no idea what you are talking about", "grow up",
)
FRIENDLY_PHRASES = (
    "thanks for sharing", "good point", "I see it differently, but fair enough",
    "could you explain that part again", "this helped me a lot", "I agree with you",
    "nice work", "I had the same problem", "interesting idea", "welcome to the forum",
    "I am not sure that is right, but thanks", "have a nice day",
)
TOPICS = ("the new park", "the bus timetable", "the recipe", "the football match",
          "the school fair", "the library hours", "the garden show", "the bike lane",
          "the music festival",
          "the weather", "the town meeting", "the bake sale")

# A small made-up language ("Lingo") for the translation pairs: one word for one word,
# adjectives after their noun, as in many real languages.
LINGO = {
    "the": "lo", "a": "un", "cat": "gato", "dog": "kano", "bird": "pajo", "fox": "voxo",
    "horse": "kavo", "rabbit": "lapo", "duck": "anado", "mouse": "muso", "girl": "fila",
    "boy": "filo", "man": "homo", "woman": "fema", "teacher": "doktoro", "baker": "bakisto",
    "sees": "vidas", "likes": "amas", "finds": "trovas", "follows": "sekvas", "helps": "helpas",
    "eats": "mangas", "has": "havas", "wants": "volas", "carries": "portas", "calls": "vokas",
    "big": "granda", "small": "eta", "red": "ruga", "old": "malnova", "new": "nova",
    "happy": "gaja", "sad": "trista", "quick": "rapida", "slow": "lenta", "green": "verda",
    "in": "en", "near": "apud", "under": "sub", "behind": "malantau", "park": "parko",
    "garden": "gardeno", "house": "domo", "river": "rivero", "market": "bazaro", "school": "lerno",
    "forest": "arbaro", "kitchen": "kuirejo", "apple": "pomo", "ball": "pilko", "book": "libro",
    "cake": "kuko", "hat": "capo", "box": "skato", "today": "hodiau", "now": "nun",
}
LINGO_SUBJECTS = ("cat", "dog", "bird", "fox", "horse", "rabbit", "duck", "mouse", "girl", "boy",
                  "man", "woman", "teacher", "baker")
LINGO_VERBS = ("sees", "likes", "finds", "follows", "helps", "eats", "has", "wants", "carries",
               "calls")
LINGO_ADJECTIVES = ("big", "small", "red", "old", "new", "happy", "sad", "quick", "slow", "green")
LINGO_OBJECTS = ("apple", "ball", "book", "cake", "hat", "box", "cat", "dog", "bird", "mouse")
LINGO_PLACES = ("park", "garden", "house", "river", "market", "school", "forest", "kitchen")
LINGO_PREPOSITIONS = ("in", "near", "under", "behind")


def pick(rng: random.Random, items: Sequence, exclude: Sequence = ()) -> object:
    """One random element of ``items`` that is not in ``exclude``."""
    choices = [x for x in items if x not in exclude] if exclude else items
    return choices[rng.randrange(len(choices))]


def names_for(split: str) -> tuple[str, ...]:
    """Names a task generator may use in ``split``: held-out names only outside "train"."""
    if split == "train":
        return tuple(n for n in NAMES if n not in HELD_OUT_NAMES)
    return HELD_OUT_NAMES
