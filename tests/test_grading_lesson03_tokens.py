"""Known-wrong answers to lesson 03's BPE exercises (03.1, 03.2): each rejected, saying why.

Written independently of the grader's own mistakes; the reference is also checked against
``tokenizers`` in tests/test_bpe.py.
"""

import re
from collections import Counter, defaultdict

import pytest
import torch
from tokenizers import Tokenizer, models

from course_utils.grading import get_exercise, run_exercise
from course_utils.grading.core import Case


def _verdict(ex_id, fn):
    return run_exercise(get_exercise(ex_id), fn)


def _pairs(word):
    return list(zip(word, word[1:], strict=False))


def _merge(word, pair):
    out, i = [], 0
    while i < len(word):
        if tuple(word[i:i + 2]) == pair:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


# ---- 03.1 one training step: learner-style wrong answers
def step_first_seen_tie(word_freqs):
    counts = Counter()
    for word, n in word_freqs.items():
        for p in _pairs(word):
            counts[p] += n
    if not counts:
        return None, dict(word_freqs)
    best = counts.most_common(1)[0][0]
    new = defaultdict(int)
    for word, n in word_freqs.items():
        new[_merge(word, best)] += n
    return best, dict(new)


def step_unweighted(word_freqs):
    counts = Counter(p for word in word_freqs for p in _pairs(word))
    if not counts:
        return None, dict(word_freqs)
    top = max(counts.values())
    best = min(p for p in counts if counts[p] == top)
    new = defaultdict(int)
    for word, n in word_freqs.items():
        new[_merge(word, best)] += n
    return best, dict(new)


def step_sennrich_regex_without_lookarounds(word_freqs):
    counts = Counter()
    for word, n in word_freqs.items():
        for p in _pairs(word):
            counts[p] += n
    if not counts:
        return None, dict(word_freqs)
    top = max(counts.values())
    best = min(p for p in counts if counts[p] == top)
    pattern = re.compile(re.escape(" ".join(best)))
    new = defaultdict(int)
    for word, n in word_freqs.items():
        new[tuple(pattern.sub("".join(best), " ".join(word)).split(" "))] += n
    return best, dict(new)


def step_dict_overwrite(word_freqs):
    counts = Counter()
    for word, n in word_freqs.items():
        for p in _pairs(word):
            counts[p] += n
    if not counts:
        return None, dict(word_freqs)
    top = max(counts.values())
    best = min(p for p in counts if counts[p] == top)
    return best, {_merge(word, best): n for word, n in word_freqs.items()}


def step_crashes_when_done(word_freqs):
    counts = Counter()
    for word, n in word_freqs.items():
        for p in _pairs(word):
            counts[p] += n
    top = max(counts.values())
    best = min(p for p in counts if counts[p] == top)
    new = defaultdict(int)
    for word, n in word_freqs.items():
        new[_merge(word, best)] += n
    return best, dict(new)


def step_set_of_pairs(word_freqs):
    counts = Counter()
    for word, n in word_freqs.items():
        for p in set(_pairs(word)):
            counts[p] += n
    if not counts:
        return None, dict(word_freqs)
    top = max(counts.values())
    best = min(p for p in counts if counts[p] == top)
    new = defaultdict(int)
    for word, n in word_freqs.items():
        new[_merge(word, best)] += n
    return best, dict(new)


def step_sorted_by_count_then_pair_descending(word_freqs):
    counts = Counter()
    for word, n in word_freqs.items():
        for p in _pairs(word):
            counts[p] += n
    if not counts:
        return None, dict(word_freqs)
    best = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[0][0]
    new = defaultdict(int)
    for word, n in word_freqs.items():
        new[_merge(word, best)] += n
    return best, dict(new)


def step_overlapping_merge(word_freqs):
    counts = Counter()
    for word, n in word_freqs.items():
        for p in _pairs(word):
            counts[p] += n
    if not counts:
        return None, dict(word_freqs)
    top = max(counts.values())
    best = min(p for p in counts if counts[p] == top)
    new = defaultdict(int)
    for word, n in word_freqs.items():
        out, i = [], 0
        while i < len(word):
            if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                out.append(word[i] + word[i + 1])  # forgets to skip word[i + 1]
            elif i == 0 or (word[i - 1], word[i]) != best:
                out.append(word[i])
            i += 1
        new[tuple(out)] += n
    return best, dict(new)


def step_returns_only_pair(word_freqs):
    counts = Counter()
    for word, n in word_freqs.items():
        for p in _pairs(word):
            counts[p] += n
    if not counts:
        return None
    top = max(counts.values())
    return min(p for p in counts if counts[p] == top)


# ---- 03.1 correct alternative: sort by (-count, pair), merge with a regex that respects symbols
def step_ok(word_freqs):
    counts = defaultdict(int)
    for word, n in word_freqs.items():
        for i in range(len(word) - 1):
            counts[word[i], word[i + 1]] += n
    if not counts:
        return None, dict(word_freqs)
    best = sorted(counts, key=lambda p: (-counts[p], p))[0]
    pattern = re.compile(r"(?<!\S)" + re.escape(" ".join(best)) + r"(?!\S)")
    new = defaultdict(int)
    for word, n in word_freqs.items():
        new[tuple(pattern.sub("".join(best), " ".join(word)).split(" "))] += n
    return best, dict(new)


# ---- 03.2 the encoder: learner-style wrong answers
def encode_in_word_order(word, merges):
    ranks = merges if isinstance(merges, dict) else {tuple(m): i for i, m in enumerate(merges)}
    tokens = list(word)
    changed = True
    while changed:
        changed = False
        for i in range(len(tokens) - 1):
            if (tokens[i], tokens[i + 1]) in ranks:
                tokens[i:i + 2] = [tokens[i] + tokens[i + 1]]
                changed = True
                break
    return tokens


def encode_single_sweep(word, merges):
    ranks = merges if isinstance(merges, dict) else {tuple(m): i for i, m in enumerate(merges)}
    tokens = list(word)
    i = 0
    while i < len(tokens) - 1:
        if (tokens[i], tokens[i + 1]) in ranks:
            tokens[i:i + 2] = [tokens[i] + tokens[i + 1]]
        else:
            i += 1
    return tokens


def encode_max_rank(word, merges):
    ranks = merges if isinstance(merges, dict) else {tuple(m): i for i, m in enumerate(merges)}
    tokens = tuple(word)
    while True:
        cands = [(ranks[p], p) for p in _pairs(tokens) if p in ranks]
        if not cands:
            return list(tokens)
        tokens = _merge(tokens, max(cands)[1])


def encode_greedy_longest(word, merges):
    pieces = {"".join(m) for m in merges}
    out, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start + 1 and word[start:end] not in pieces:
            end -= 1
        out.append(word[start:end])
        start = end
    return out


def encode_strip_space(word, merges):
    ranks = merges if isinstance(merges, dict) else {tuple(m): i for i, m in enumerate(merges)}
    tokens = tuple(word.lstrip("Ġ"))
    while True:
        cands = [p for p in _pairs(tokens) if p in ranks]
        if not cands:
            return list(tokens)
        tokens = _merge(tokens, min(cands, key=ranks.get))


def encode_from_the_right(word, merges):
    ranks = merges if isinstance(merges, dict) else {tuple(m): i for i, m in enumerate(merges)}
    tokens = list(word)
    while True:
        cands = [p for p in _pairs(tokens) if p in ranks]
        if not cands:
            return tokens
        best = min(cands, key=ranks.get)
        i = len(tokens) - 2
        while i >= 0:
            if (tokens[i], tokens[i + 1]) == best:
                tokens[i:i + 2] = [tokens[i] + tokens[i + 1]]
                i -= 2
            else:
                i -= 1


def encode_ids_not_strings(word, merges):
    ranks = merges if isinstance(merges, dict) else {tuple(m): i for i, m in enumerate(merges)}
    tokens = tuple(word)
    while True:
        cands = [p for p in _pairs(tokens) if p in ranks]
        if not cands:
            return [hash(t) % 1000 for t in tokens]
        tokens = _merge(tokens, min(cands, key=ranks.get))


def encode_list_only(word, merges):
    ranks = {tuple(m): i for i, m in enumerate(list(merges))}
    tokens = tuple(word)
    while True:
        cands = [p for p in _pairs(tokens) if p in ranks]
        if not cands:
            return list(tokens)
        tokens = _merge(tokens, min(cands, key=ranks.get))


# ---- 03.2 correct alternatives
def encode_replay_in_order(word, merges):
    """Replaying every merge in learning order is the same as lowest rank first."""
    order = sorted(merges, key=merges.get) if isinstance(merges, dict) else merges
    tokens = tuple(word)
    for pair in order:
        tokens = _merge(tokens, tuple(pair))
    return list(tokens)


def encode_with_tokenizers(word, merges):
    merges = sorted(merges, key=merges.get) if isinstance(merges, dict) else list(merges)
    vocab = {c: i for i, c in enumerate(sorted(set(word) | {c for m in merges for c in m}))}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    return Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m) for m in merges])).encode(
        word).tokens


@pytest.mark.parametrize("ex_id, wrong, why", [
    ("03.1", step_first_seen_tie, "the tie rule takes the *smallest* pair"),
    ("03.1", step_unweighted, "each word counted as often as its frequency"),
    ("03.1", step_sennrich_regex_without_lookarounds, "'xa b' contains 'a b'"),
    ("03.1", step_dict_overwrite, "with count 5"),
    ("03.1", step_crashes_when_done, "max() arg is an empty sequence"),
    ("03.1", step_set_of_pairs, "occurs 3 times"),
    ("03.1", step_sorted_by_count_then_pair_descending, "the tie rule takes the *smallest*"),
    ("03.1", step_overlapping_merge, "should hold ('aa', 'a')"),
    ("03.1", step_returns_only_pair, "you returned only the pair"),
    ("03.2", encode_in_word_order, "applying the merges by rank gives"),
    ("03.2", encode_single_sweep, "One left-to-right pass is not enough"),
    ("03.2", encode_max_rank, "the *lowest* rank"),
    ("03.2", encode_greedy_longest, "applying the merges by rank gives"),
    ("03.2", encode_strip_space, "do not join back into the word"),
    ("03.2", encode_from_the_right, "you returned ['a', 'aaaa']"),
    ("03.2", encode_ids_not_strings, "return a list of token strings"),
    ("03.2", encode_list_only, "applying the merges by rank gives ['ab', 'd']"),
])
def test_known_wrong_answer_is_rejected_with_a_specific_message(ex_id, wrong, why):
    result = _verdict(ex_id, wrong)
    assert result.status == "failed", f"{wrong.__name__} passed {ex_id}"
    assert why in result.message, result.message


@pytest.mark.parametrize("ex_id", ["03.1", "03.2"])
def test_reference_is_accepted(ex_id):
    assert _verdict(ex_id, get_exercise(ex_id).reference).passed


@pytest.mark.parametrize("ex_id, right", [("03.1", step_ok), ("03.2", encode_replay_in_order),
                                          ("03.2", encode_with_tokenizers)])
def test_other_correct_answers_are_accepted_too(ex_id, right):
    result = _verdict(ex_id, right)
    assert result.passed, result.message


def _cases(ex_id) -> list[Case]:
    ex = get_exercise(ex_id)
    return list(ex.cases(torch.Generator().manual_seed(ex.seed)))


def test_the_encoder_is_graded_on_the_course_tokenizer_and_unseen_words():
    cases = [c for c in _cases("03.2") if len(c.args[1]) > 700]
    assert len(cases) > 60
    ref = get_exercise("03.2").reference
    assert any(len(ref(*c.args)) >= 5 for c in cases)  # words that fall apart
    assert any(len(ref(*c.args)) == 1 for c in cases)  # words that are one token


@pytest.mark.parametrize("ex_id", ["03.1", "03.2"])
def test_every_case_says_what_it_is_and_what_it_catches(ex_id):
    for case in _cases(ex_id):
        assert case.label and case.catches, case


@pytest.mark.parametrize("ex_id", ["03.1", "03.2"])
def test_every_mistake_runs_on_every_case_and_gets_its_own_hint(ex_id):
    ex = get_exercise(ex_id)
    for wrong, hint in ex.mistakes:
        for case in _cases(ex_id):
            wrong(*case.args, **case.kwargs)
        result = run_exercise(ex, wrong)
        assert result.status == "failed", wrong.__name__
        assert hint in result.message, (wrong.__name__, result.message)
