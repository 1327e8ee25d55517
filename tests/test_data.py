"""course_utils.data: deterministic, disjoint splits, correct labels and answers, prompt formats."""

from __future__ import annotations

import re

import pytest

from course_utils import data
from course_utils.data import prompts, world
from course_utils.data.corpus import pretraining_corpus

MAKERS = {"stories": ("text",), "reviews": ("text", "label"),
          "word_problems": ("question", "solution", "answer", "num_steps"),
          "summaries": ("document", "summary"), "translations": ("source", "target"),
          "toxic_comments": ("text", "label")}
KEY = {"stories": "text", "reviews": "text", "word_problems": "question",
       "summaries": "document", "translations": "source", "toxic_comments": "text"}


@pytest.fixture(scope="module")
def sets():
    return {name: getattr(data, name)(0) for name in MAKERS}


@pytest.mark.parametrize("name", list(MAKERS))
def test_splits_sizes_and_columns(sets, name):
    ds = sets[name]
    assert list(ds) == ["train", "validation", "test"]
    for split, n in data.SIZES[name].items():
        assert len(ds[split]) == n
        assert ds[split].column_names == list(MAKERS[name])


@pytest.mark.parametrize("name", list(MAKERS))
def test_same_seed_same_data_other_seed_other_data(sets, name):
    again = getattr(data, name)(0)
    other = getattr(data, name)(1)
    for split in data.SPLITS:
        assert again[split].to_list() == sets[name][split].to_list()
    assert other["train"][KEY[name]][:50] != sets[name]["train"][KEY[name]][:50]


@pytest.mark.parametrize("name", list(MAKERS))
def test_no_text_in_two_splits(sets, name):
    keys = {s: set(sets[name][s][KEY[name]]) for s in data.SPLITS}
    assert all(len(keys[s]) == len(sets[name][s]) for s in data.SPLITS), "duplicates in a split"
    assert not keys["train"] & keys["test"]
    assert not keys["train"] & keys["validation"]
    assert not keys["validation"] & keys["test"]


@pytest.mark.parametrize("name,names", [("reviews", ["negative", "neutral", "positive"]),
                                        ("toxic_comments", ["non-toxic", "toxic"])])
def test_labels_are_classlabels_and_balanced(sets, name, names):
    ds = sets[name]
    assert ds["train"].features["label"].names == names
    for split in data.SPLITS:
        counts = [ds[split]["label"].count(i) for i in range(len(names))]
        assert max(counts) - min(counts) <= 1, counts


def test_review_text_matches_its_label(sets):
    pools = (world.NEGATIVE_PHRASES, world.NEUTRAL_PHRASES, world.POSITIVE_PHRASES)
    for r in sets["reviews"]["test"]:
        low = r["text"].lower()
        hits = [any(p.lower() in low for p in pool) for pool in pools]
        assert hits[r["label"]], r


def test_word_problem_solutions_are_correct_arithmetic(sets):
    """Re-compute every equation of every solution with Python's own arithmetic."""
    for split in data.SPLITS:
        for r in sets["word_problems"][split]:
            eqs = re.findall(r"(\d+) ([-+*]) (\d+) = (\d+)", r["solution"])
            assert len(eqs) == r["num_steps"], r
            for a, op, b, c in eqs:
                assert eval(f"{a} {op} {b}") == int(c), r  # noqa: S307 - digits and one operator
            assert int(eqs[-1][3]) == r["answer"]
            assert r["solution"].endswith(f"The answer is {r['answer']}.")
            assert prompts.parse_answer(r["solution"]) == r["answer"]


def test_word_problem_test_split_uses_held_out_names_and_objects(sets):
    held = set(world.HELD_OUT_NAMES) | set(world.HELD_OUT_COUNTABLES)
    words = lambda q: set(re.findall(r"[A-Za-z]+", q)) | {w[:-1] for w in re.findall(r"[a-z]+s", q)}
    assert all(words(q) & held for q in sets["word_problems"]["test"]["question"])
    for q in sets["word_problems"]["train"]["question"]:
        assert not set(re.findall(r"[A-Z][a-z]+", q)) & set(world.HELD_OUT_NAMES), q
    assert 2 in set(sets["word_problems"]["test"]["num_steps"])


def test_translations_follow_the_lexicon(sets):
    lingo = set(world.LINGO.values())
    for r in sets["translations"]["test"]:
        src, tgt = r["source"].lower().rstrip(".").split(), r["target"].lower().rstrip(".").split()
        assert len(src) == len(tgt) and set(tgt) <= lingo, r


def test_toxic_comments_use_the_lexicon_only_when_toxic(sets):
    lexicon = [*world.INSULTS, *world.INSULT_ADJECTIVES, *world.HOSTILE_PHRASES]
    for r in sets["toxic_comments"]["test"]:
        hit = any(re.search(rf"\b{re.escape(w)}\b", r["text"].lower()) for w in lexicon)
        assert hit == (r["label"] == 1), r


def test_bad_seed_is_a_clear_error():
    with pytest.raises(ValueError, match="seed"):
        data.reviews(-1)
    with pytest.raises(ValueError, match="seed"):
        data.stories("0")


def test_prompt_formats():
    p = prompts.sentiment_prompt("Great soup.", [("Bad.", "negative")])
    assert p == (f"{prompts.SENTIMENT_INSTRUCTION}\n\nReview: Bad.\nSentiment: negative\n\n"
                 "Review: Great soup.\nSentiment:")
    assert prompts.sentiment_prompt("x", instruction=None) == "Review: x\nSentiment:"
    demo = ("Q1?", "2 + 3 = 5. The answer is 5.")
    assert prompts.word_problem_prompt("Q2?", [demo]) == f"Q: Q1?\nA: {demo[1]}\n\nQ: Q2?\nA:"
    assert prompts.word_problem_prompt("Q2?", [demo], chain_of_thought=False) == (
        "Q: Q1?\nA: The answer is 5.\n\nQ: Q2?\nA: The answer is")
    assert prompts.parse_answer(" 7 + 5 = 12. The answer is 12.\nQ:") == 12
    assert prompts.parse_answer(" 42.") == 42
    assert prompts.parse_answer("no idea") is None
    with pytest.raises(TypeError):
        prompts.sentiment_prompt("x", ["not a pair"])
    with pytest.raises(ValueError):
        prompts.word_problem_example("Q?", "no final answer", chain_of_thought=False)


def test_pretraining_corpus_holds_no_held_out_example_and_no_eval_labels(sets):
    corpus = "\n".join(pretraining_corpus(0, scale=0.2))
    for split in ("validation", "test"):
        assert not any(q in corpus for q in sets["word_problems"][split]["question"][:100])
        assert not any(d in corpus for d in sets["summaries"][split]["document"][:100])
    # the evaluation label words never serve as labels in pretraining
    assert not re.search(r"^\w+: (negative|neutral|positive)$", corpus, flags=re.M)
    assert " positive" in corpus and " negative" in corpus and " neutral" in corpus


def _repeats(doc: str) -> bool:
    """Whether the second half of a copying document says again what the first half said."""
    if '"' in doc:  # a quote said again by someone else
        return all(len(set(re.findall(r'"([^"]+)"', line))) == 1 for line in doc.split("\n"))
    if "?" in doc:  # facts asked back: every answer is in the facts, in the same words
        facts, *asks = doc.split("\n")
        return bool(asks) and all(a.split("? ")[1].removeprefix("At ").removeprefix("The ")
                                  .rstrip(".").lower() in facts.lower() for a in asks)
    blocks = [b.split("\n") for b in doc.split("\n\n")]
    return all(len(b) == 2 and b[0].split(": ", 1)[-1] == b[1].split(": ", 1)[-1]
               for b in blocks)


def test_copying_documents_repeat_what_they_said_with_every_name():
    import random

    from course_utils.data.corpus import _words, copying

    pool = _words(list(data.stories(0)["train"]["text"]))
    rng = random.Random(0)
    docs = [copying(rng, pool) for _ in range(400)]
    assert all(_repeats(d) for d in docs), next(d for d in docs if not _repeats(d))
    # the held-out names are copied too: the skill is for every token, not the task formats'
    text = " ".join(docs)
    assert all(re.search(rf"\b{n}\b", text) for n in world.HELD_OUT_NAMES)
    # a broken document is caught: the check above can fail
    assert not _repeats("Say: Ella owl lake.\nAgain: Ella owl hill.")
    assert not _repeats('Tom said, "Hi there." Then Mia said, "Hi you." too.')


def test_copying_documents_leave_the_other_documents_and_their_order_unchanged():
    from course_utils.data.corpus import COPY_DOCS, RETELL_DOCS

    plain = pretraining_corpus(0, scale=0.05, copy_docs=False)
    full = pretraining_corpus(0, scale=0.05)
    assert len(full) - len(plain) == int(COPY_DOCS * 0.05) + int(RETELL_DOCS * 0.05)
    rest = iter(full)
    assert all(any(d == x for x in rest) for d in plain)  # plain is a subsequence of full


def test_retelling_stories_name_their_people_again_held_out_ones_included():
    import random

    from course_utils.data import world as w
    from course_utils.data.corpus import retell

    rng = random.Random(0)
    docs = [retell(rng) for _ in range(400)]
    named = {n for d in docs for n in w.NAMES if re.search(rf"\b{n}\b", d)}
    assert set(w.HELD_OUT_NAMES) <= named  # every held-out name is retold somewhere
    counts = [len(re.findall(rf"\b{n}\b", d)) for d in docs for n in w.NAMES
              if re.search(rf"\b{n}\b", d)]
    assert sum(c >= 2 for c in counts) > 0.5 * len(counts)  # most names are said again (63%)
