"""The pretraining mixture of the bundled ``course-gpt``: stories plus the task formats.

Only train data goes in (the "train" splits, or fresh examples from the train-side generators
with train names and objects), so every validation/test example stays unseen. What each part
teaches (see the design notes on the bundled causal LM):

- stories and prose: English-like grammar and the world's vocabulary;
- labelled lists: several examples in a row with ONE label vocabulary and field format per
  document, the vocabulary changing between documents (most of them random words), so the model
  learns to read the label space off the demonstrations; lists of one-phrase reviews give many
  labels to copy per document. The evaluation words negative/neutral/positive are never labels;
- arithmetic drills (8-20 small facts a document): each step of a worked solution is a known fact;
- word problems, several per document, all with worked steps or all with direct answers;
- summaries ("TL;DR:"), translations ("English:/Lingo:") and short chats ("User:/Assistant:");
- copying (:func:`copying`): text that says again what it has just said (a word list read
  back, a quote repeated, facts asked back, a run of words repeated), over every name, animal,
  place and story word, the held-out ones included. Without it the model copied only the
  tokens its task formats made it copy (numbers, label words) and never a name it had read:
  the skill instruction following needs (a card for the name given, a reply quoted);
- retelling stories (:func:`retell`): short stories that name their people, animals, places and
  topics again and again, held-out ones included, some under a heading ("News about the bake
  sale"). Copying is learnt per token and per context in a model this small; these give every
  name and topic contexts where it is said again (measured in ``benchmarks/copying.py``).
"""

from __future__ import annotations

import random
import re

from course_utils import data
from course_utils.data import prompts, tasks
from course_utils.data import world as w

# Every label word below is a single token of the course tokenizer, a word the stories use
# (tests/test_pretrained.py checks it on the shipped tokenizer): a model copies one token from
# its demonstrations far more easily than a word split into pieces it rarely sees together.
# (negative, neutral, positive) label words with a meaning; never negative/neutral/positive.
TRAIN_LABEL_SETS = (
    ("bad", "fine", "good"), ("bored", "well", "happy"), ("cold", "fine", "hot"),
    ("bad", "new", "best"), ("small", "one", "big"), ("no", "one", "glad"),
)
# Most labelled lists use three words drawn from this pool instead (e.g. fox/cake/red): no
# fixed label set can be memorised, so the model learns to take the labels from the examples.
# The pool is large (the words of the corpus that are one token): with a few dozen words the
# model learned to copy those words only, not new ones.
# tree/river/hill, lamp/chair/door and park/garden/house are kept out: lesson 04 tests them
# as label words never seen as labels; so are negative/neutral/positive and the held-out
# names and objects of the test splits.
RANDOM_LABEL_WORDS = (
    "A", "About", "Adam", "Alex", "Amy", "An", "Anna", "At", "Ava", "Ben", "Beth", "Carl",
    "Dan", "Each", "Emma", "Eva", "Fair", "Grace", "How", "I", "Ian", "It", "Jack", "Jane",
    "Jon", "Kate", "Lena", "Leo", "Lily", "Lo", "Luca", "Lucy", "Max", "Maybe", "Mei", "Mia",
    "My", "Neither", "Never", "Nina", "Noah", "Not", "Nothing", "Owen", "Paul", "Ravi",
    "Really", "Roger", "Rosa", "Sam", "See", "Simply", "Some", "Tara", "Ted", "The", "Then",
    "Theo", "They", "This", "Tom", "We", "Zoe", "a", "about", "afternoon", "again", "an", "and",
    "answer", "apples", "as", "at", "ate", "average", "away", "back", "bad", "bag", "bags",
    "balls", "basket", "be", "beach", "behind", "best", "better", "big", "bird", "book",
    "books", "bored", "bought", "box", "bright", "but", "buy", "buys", "by", "cake", "came",
    "can", "cards", "cat", "choice", "cold", "come", "cook", "cookies", "day", "do", "does",
    "dog", "each", "eggs", "en", "end", "enough", "every", "expected", "experience", "fast",
    "feel", "feelings", "felt", "finds", "fine", "finish", "fish", "flowers", "for", "forest",
    "found", "friend", "friends", "from", "game", "gives", "glad", "good", "guess", "had",
    "happy", "has", "hat", "have", "help", "home", "hot", "in", "is", "it", "jar", "job",
    "kids", "kind", "kitchen", "lake", "last", "left", "lived", "lo", "long", "loses", "loved",
    "made", "man", "many", "marbles", "market", "me", "minute", "more", "morning", "mostly",
    "mouse", "my", "near", "new", "next", "night", "no", "noisy", "nor", "not", "now", "of",
    "okay", "old", "on", "one", "ordinary", "pack", "part", "parts", "pencils", "picks",
    "polite", "pot", "price", "rain", "ran", "read", "review", "s", "said", "school", "sheet",
    "shop", "sleep", "slow", "small", "so", "some", "soon", "special", "staff", "standard",
    "start", "starts", "stayed", "stickers", "strong", "that", "the", "them", "they", "time",
    "to", "town", "tried", "under", "village", "was", "week", "well", "went", "were", "what",
    "will", "with", "work", "works", "would", "you",
)
RANDOM_LABEL_SHARE = 0.8
COPY_DOCS = 6000
RETELL_DOCS = 25000
TOXIC_LABEL_SETS = (("fine", "bad"), ("good", "bad"), ("kind", "bad"), ("no", "up"),
                    ("well", "cold"))
FIELDS = (("Review", "Sentiment"), ("Review", "Label"), ("Comment", "Verdict"),
          ("Text", "Mood"), ("Feedback", "Rating"), ("Review", "Answer"), ("Input", "Output"))
CHAT_SYSTEM = ("You are a helpful assistant.", "You are a friendly teacher.",
               "You are a storyteller.", "Answer briefly.")


def _short_reviews(rng: random.Random, n: int) -> list[dict]:
    """``n`` one-phrase reviews ("A waste of money.") with their labels: many examples fit in
    one context window, so a list of them has many labels to copy from its demonstrations."""
    pools = (w.NEGATIVE_PHRASES, w.NEUTRAL_PHRASES, w.POSITIVE_PHRASES)
    rows = []
    for _ in range(n):
        label = rng.randrange(3)
        phrase = rng.choice(pools[label])
        end = rng.choice(".!" if label != 1 else ".")
        rows.append({"text": phrase[0].upper() + phrase[1:] + end, "label": label})
    return rows


def _labelled(rng: random.Random, rows: list[dict], label_sets: tuple, fields: tuple,
              short: bool = False) -> str:
    n_labels = len(label_sets[0])
    labels = (tuple(rng.sample(RANDOM_LABEL_WORDS, n_labels))
              if rng.random() < RANDOM_LABEL_SHARE else rng.choice(label_sets))
    f_in, f_out = rng.choice(fields)
    picks = (_short_reviews(rng, rng.randint(8, 16)) if short
             else rng.sample(rows, rng.randint(4, 8)))
    return "".join(f"{f_in}: {r['text']}\n{f_out}: {labels[r['label']]}\n\n" for r in picks)


def drill(rng: random.Random) -> str:
    """8-20 arithmetic facts, one per sentence or line, covering the steps of the word problems
    (a + b with a <= 20 and b <= 16, a - b with a <= 30, products of 2..5): each worked step of
    a word problem is then a fact the model knows."""
    facts = []
    for _ in range(rng.randint(8, 20)):
        op = rng.choice("++--*")
        if op == "*":
            a, b = rng.randint(2, 5), rng.randint(2, 5)
            facts.append(f"{a} * {b} = {a * b}.")
        elif op == "+":
            a, b = rng.randint(0, 20), rng.randint(1, 16)
            facts.append(f"{a} + {b} = {a + b}.")
        else:
            b = rng.randint(1, 16)
            a = rng.randint(b, 30)
            facts.append(f"{a} - {b} = {a - b}.")
    return rng.choice((" ", "\n")).join(facts)


def _problems(rng: random.Random) -> str:
    """2-5 freshly generated train-style problems (train names and objects only), all with
    worked steps or all with direct answers: fresh numbers every time, so the model learns to
    copy them from the question rather than memorise a fixed set of problems."""
    cot = rng.random() < 0.7
    picks = [tasks.word_problem(rng, "train") for _ in range(rng.randint(2, 5))]
    return "".join(prompts.word_problem_example(r["question"], r["solution"], cot) for r in picks)


def _chat(rng: random.Random, stories: list[str], problems: list[dict]) -> str:
    head = f"System: {rng.choice(CHAT_SYSTEM)}\n" if rng.random() < 0.5 else ""
    if rng.random() < 0.5:
        r = rng.choice(problems)
        return f"{head}User: {r['question']}\nAssistant: {r['solution']}\n"
    s = rng.choice(stories)
    topic = rng.choice(("a short story", "a story", "a little story about your day"))
    return f"{head}User: Tell me {topic}.\nAssistant: {s}\n"


_ECHO_HEADS = (("Say:", "Again:"), ("Read:", "Read back:"), ("The list:", "Once more:"),
               ("Words:", "The same words:"), ("He wrote:", "She copied:"))
_QUOTE_VERBS = ("said", "wrote", "asked", "called out", "read out", "whispered")


def _words(stories: list[str]) -> tuple[str, ...]:
    """Every word of the world and of the stories (letters only), sorted: the copying pool."""
    words = set(re.findall(r"[A-Za-z]+", " ".join(stories)))
    words.update((*w.NAMES, *w.ANIMALS, *w.PLACES, *w.FOODS, *w.COLORS))
    return tuple(sorted(words))


def copying(rng: random.Random, words: tuple[str, ...]) -> str:
    """One document whose later half repeats something of its first half, word for word.

    Four kinds: a list of random words read back; a quoted phrase said again by another
    person; facts ("Ella has the owl.") asked back ("Who has the owl? Ella."); a run of random
    words written twice with nothing around it (the plain induction pattern). Names, animals and
    places come from the whole world, held-out ones included, so the copy is learnt for every
    token rather than for the few the task formats repeat."""
    kind = rng.randrange(4)
    if kind == 0:
        parts = []
        for _ in range(rng.randint(2, 4)):
            first, again = rng.choice(_ECHO_HEADS)
            run = " ".join(rng.choice(words) for _ in range(rng.randint(3, 10)))
            parts.append(f"{first} {run}.\n{again} {run}.")
        return "\n\n".join(parts)
    if kind == 1:
        lines = []
        for _ in range(rng.randint(2, 4)):
            a, b = rng.sample(w.NAMES, 2)
            phrase = rng.choice((*w.FRIENDLY_PHRASES, *w.NEUTRAL_PHRASES, *w.POSITIVE_PHRASES,
                                 " ".join(rng.choice(words) for _ in range(rng.randint(3, 7)))))
            phrase = phrase[0].upper() + phrase[1:]
            lines.append(f'{a} {rng.choice(_QUOTE_VERBS)}, "{phrase}." '
                         f'Then {b} {rng.choice(_QUOTE_VERBS)}, "{phrase}." too.')
        return "\n".join(lines)
    if kind == 2:
        k = rng.randint(2, 4)
        people = rng.sample(w.NAMES, k)
        things = rng.sample((*w.ANIMALS, *w.FOODS, *(c[0] for c in w.COUNTABLES)), k)
        places = rng.sample(w.PLACES, k)
        facts = [f"{p} has the {t} at the {q}." for p, t, q in zip(people, things, places,
                                                                     strict=True)]
        asks = []
        for i in rng.sample(range(k), k):
            p, t, q = people[i], things[i], places[i]
            asks.append(rng.choice((f"Who has the {t}? {p}.", f"What does {p} have? The {t}.",
                                    f"Where is {p}? At the {q}.",
                                    f"Who is at the {q}? {p}.")))
        return " ".join(facts) + "\n" + "\n".join(asks)
    run = ", ".join(rng.choice(words) for _ in range(rng.randint(6, 16)))
    return f"{run}\n{run}"


_RETELL = (
    "{n} went to the {p} with a {a}. At the {p}, {n} and the {a} played. {n} was happy, and "
    "the {a} was happy too.",
    "{n} met a {a} at the {p}. The {a} looked at {n}. Then {n} and the {a} walked home from "
    "the {p}.",
    "This is {n}. {n} has a {a}. Every day {n} takes the {a} to the {p}, and {n} sings there.",
    "One day {n} saw a {a} near the {p}. \"Hello, {a},\" said {n}. The {a} stayed at the {p} "
    "with {n} until night.",
    "{n} and {m} talked about {t}. \"I liked {t},\" said {m}. {n} said, \"Me too, {m}.\"",
    "Dear {m}, I went to {t} at the {p}. I hope to see you soon. Best wishes, {n}.",
    "{m} wrote to {n} about {t}. In the note, {m} asked {n} to come to the {p}. {n} said yes "
    "to {m}.",
    "At the {p}\n{n} was at the {p} with a {a}. The {p} was quiet, so the {a} slept at the {p}.",
    "News about {t}\nEveryone talked about {t}. {n} wrote about {t} for the town paper.",
    "The {a} of the {p}\nA {a} lived at the {p}. {n} visited the {a} at the {p} each week.",
)


def retell(rng: random.Random) -> str:
    """2-4 short stories that name their people, animals, places and topics again and again,
    drawn from the whole world (held-out names included): each later mention is a copy of the
    first. The model learns to copy a name it has read only in contexts where names are copied
    (measured: it copied train names in word problems, never held-out ones)."""
    parts = []
    for _ in range(rng.randint(2, 4)):
        n, m = rng.sample(w.NAMES, 2)
        parts.append(rng.choice(_RETELL).format(n=n, m=m, a=rng.choice(w.ANIMALS),
                                                p=rng.choice(w.PLACES), t=rng.choice(w.TOPICS)))
    return " ".join(parts) if rng.random() < 0.5 else "\n".join(parts)


def pretraining_corpus(seed: int = 0, scale: float = 1.0, copy_docs: bool = True) -> list[str]:
    """Shuffled documents (strings) for pretraining; ``scale`` shrinks it for quick builds.

    ``copy_docs=False`` leaves out the copying documents (and only them: the others are the
    same, in the same order); the course tokenizer is trained on that corpus."""
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
    docs = stories[: n(len(stories) // 3)]  # a third of the stories: room for the task formats
    docs += [_labelled(rng, reviews, TRAIN_LABEL_SETS, FIELDS) for _ in range(n(5000))]
    docs += [_labelled(rng, reviews, TRAIN_LABEL_SETS, FIELDS, short=True) for _ in range(n(8000))]
    docs += [_labelled(rng, toxic, TOXIC_LABEL_SETS, FIELDS[1:]) for _ in range(n(600))]
    docs += [drill(rng) for _ in range(n(9000))]
    docs += [_problems(rng) for _ in range(n(9000))]
    docs += ["".join(f"{r['document']}\nTL;DR: {r['summary']}\n\n"
                     for r in rng.sample(summ, rng.randint(1, 3))) for _ in range(n(1500))]
    docs += ["".join(f"English: {r['source']}\nLingo: {r['target']}\n\n"
                     for r in rng.sample(trans, rng.randint(3, 8))) for _ in range(n(1000))]
    docs += [_chat(rng, stories, problems) for _ in range(n(1500))]
    rng.shuffle(docs)
    if copy_docs:  # their own random stream, so the other documents do not change
        crng, pool = random.Random(f"copying/{seed}"), _words(stories)
        for _ in range(n(COPY_DOCS)):
            docs.insert(crng.randrange(len(docs) + 1), copying(crng, pool))
        for _ in range(n(RETELL_DOCS)):
            docs.insert(crng.randrange(len(docs) + 1), retell(crng))
    return [d.strip() for d in docs]
