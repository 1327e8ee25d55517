"""Lesson 03 exercises on tokens: one BPE training step (03.1) and the BPE encoder (03.2)."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

import torch

from course_utils import bpe
from course_utils.grading.core import Case, Exercise, register

# Course-like text: names, objects, numbers, quotes, apostrophes, and words the course
# tokenizer never saw (they fall apart into pieces), unicode and emoji (several bytes each).
SENTENCES = (
    "Once upon a time, Mia went to the park with her dog.",
    "Omar found 5 coins in an old box, and he was happy.",
    '"Can we go home now?" asked Lena. "It\'s late!"',
    "Review: The soup was cold and the staff was slow. Sentiment: bad",
    "Kate's cat didn't like the rain; they'd stayed inside all afternoon.",
    "The antidisestablishmentarianism of Zyxquorb surprised everyone at 11:45.",
    "Naïve café owners serve crème brûlée for 12,345 yen. 😀 “Quoted” — done.",
    "tabs\tand  double  spaces\n\nand newlines",
)


def _words() -> list[str]:
    return [w for s in SENTENCES for w in bpe.pretokenize(s)]


@lru_cache(maxsize=1)
def _course_merges() -> tuple[tuple[str, str], ...]:
    return tuple(bpe.course_bpe().merges)


# --------------------------------------------------------------------------- 03.1 train step


def _train_cases(rng: torch.Generator):
    def w(*words_and_counts):
        return {tuple(word.split()): n for word, n in words_and_counts}

    yield Case((w(("l o w </w>", 5), ("l o w e r </w>", 2), ("n e w e s t </w>", 6),
                  ("w i d e s t </w>", 3)),),
               label="Sennrich et al.'s example: (e, s), (s, t), (t, </w>) tie at 9",
               catches="ties broken by first seen or by the largest pair; counts not weighted")
    yield Case((w(("a b", 1), ("a b x", 1), ("a b y", 1), ("c d", 10)),),
               label="(a, b) is in more words, (c, d) occurs more often",
               catches="counting each word once instead of weighting it by its frequency")
    yield Case((w(("x y", 3), ("b c", 3), ("a c", 3)),),
               label="a three-way tie, table not in sorted order",
               catches="max(counts, key=counts.get) takes the first pair seen, not the smallest")
    yield Case((w(("z z q", 4), ("a a q", 4)),),
               label="a tie where the first word seen holds the largest pair",
               catches="ties broken by the largest pair or by the table's order")
    yield Case((w(("a a a", 3), ("b a", 1)),),
               label="a word 'a a a': (a, a) occurs twice in it, merged once",
               catches="pairs counted once per word (a set); overlapping merges (aa aa)")
    yield Case((w(("a a a a", 2), ("a b", 3)),),
               label="'a a a a' becomes 'aa aa'",
               catches="only the first occurrence merged; merging from the right")
    yield Case(({("a", "b"): 2, ("ab",): 3, ("c",): 1},),
               label="after merging, two words are equal: their counts add up",
               catches="a dict comprehension that overwrites a word's count")
    yield Case(({("xa", "b"): 1, ("a", "b"): 5, ("q", "xa"): 3},),
               label="symbols longer than one character: 'xa b' must not merge as 'a b'",
               catches="merging with str.replace on the joined string (' '.join / replace)")
    yield Case(({("abc",): 4, ("d",): 1},), label="every word is one symbol: nothing to merge",
               catches="max() of an empty count raises; not returning (None, table)")
    yield Case(({},), label="an empty table", catches="max() of an empty count raises")
    yield Case(({("Ġ", "t", "h", "e"): 7, ("Ġ", "c", "a", "f", "Ã", "©"): 2,
                 ("t", "h", "e"): 1, ("Ġ", "ðŁ", "ĺ", "Ģ"): 1},),
               label="byte-level symbols (Ġ for a space, Ã© for é)",
               catches="code that splits or strips the symbols' characters")
    yield Case(({("a", "b"): 10**12, ("b", "c"): 10**12 - 1},),
               label="very large counts", catches="counts truncated or compared as floats")
    yield Case(({("h", "e", "l", "l", "o"): 0, ("l", "o"): 1},),
               label="a word with count 0 (its pairs add nothing)",
               catches="counting words instead of adding their frequencies")
    freqs = Counter(tuple(word) for word in _words())
    yield Case((dict(freqs),), label=f"the lesson's sentences: {len(freqs)} distinct words",
               catches="anything above, at the scale of real text")
    letters = list("abcde")
    for i in range(2):  # random tables of short words over 5 letters: many ties
        table: dict = {}
        for _ in range(12):
            n = int(torch.randint(1, 6, (1,), generator=rng))
            word = tuple(letters[j] for j in torch.randint(0, 5, (n,), generator=rng).tolist())
            table[word] = table.get(word, 0) + int(torch.randint(1, 5, (1,), generator=rng))
        yield Case((table,), label=f"random table {i + 1} over a..e",
                   catches="ties, repeated letters, words of one symbol")


def _fmt_pair(pair) -> str:
    return "None" if pair is None else f"({', '.join(repr(s) for s in pair)})"


def _compare_train(got, expected, case: Case):
    table = case.args[0]
    if isinstance(got, tuple) and len(got) == 2 and all(isinstance(s, str) for s in got):
        return (f"you returned only the pair {got!r}: return (pair, new_word_freqs), the pair "
                "and the table after merging it.")
    if not isinstance(got, tuple | list) or len(got) != 2:
        return ("return a tuple (pair, new_word_freqs): the merged pair and the table after "
                f"the merge; got {type(got).__name__}.")
    pair, merged = got
    want_pair, want_merged = expected
    counts = bpe.count_pairs(table)
    if want_pair is None:
        if pair is not None:
            return (f"no word has two symbols, so there is nothing to merge: return None as "
                    f"the pair (you returned {pair!r}).")
    else:
        if pair is None or not isinstance(pair, tuple | list) or tuple(pair) != want_pair:
            try:
                n_got = counts.get(tuple(pair), 0)
            except TypeError:
                return f"the pair should be a tuple of two symbols, got {pair!r}."
            best = counts[want_pair]
            if n_got == best:
                return (f"you chose {_fmt_pair(pair)}, which ties with {_fmt_pair(want_pair)} at "
                        f"{best} occurrences: the tie rule takes the *smallest* pair "
                        "(min over the tied pairs).")
            return (f"you chose {_fmt_pair(pair)}, which occurs {n_got} times (each word "
                    f"counted as often as its frequency); {_fmt_pair(want_pair)} occurs {best} "
                    "times.")
    if not isinstance(merged, dict):
        return f"the new table should be a dict, got {type(merged).__name__}."
    if merged != want_merged:
        for word, n in want_merged.items():
            if merged.get(word) != n:
                return (f"after merging {_fmt_pair(want_pair)}, the table should hold {word!r} "
                        f"with count {n}; yours has {merged.get(word)!r}.")
        extra = next(iter(set(merged) - set(want_merged)))
        return (f"your table holds {extra!r}, which should not be there after merging "
                f"{_fmt_pair(want_pair)}.")
    return None


def _merge_all(table, pair, merge=bpe.merge_word):
    out: dict = {}
    for word, n in table.items():
        new = merge(tuple(word), pair)
        out[new] = out.get(new, 0) + n
    return out


def _step_with(choose, merge=bpe.merge_word, count=bpe.count_pairs):
    def step(word_freqs):
        counts = count(word_freqs)
        if not counts:
            return None, dict(word_freqs)
        pair = choose(counts)
        return pair, _merge_all(word_freqs, pair, merge)
    return step


def _first_seen(counts):
    return max(counts, key=counts.get)


def _smallest_best(counts):
    best = max(counts.values())
    return min(p for p, n in counts.items() if n == best)


def _largest_best(counts):
    return max(counts, key=lambda p: (counts[p], p))


def _count_once_per_word(table):
    return Counter(p for word in table for p in zip(word, word[1:], strict=False))


def _count_distinct_per_word(table):
    c: Counter = Counter()
    for word, n in table.items():
        for p in set(zip(word, word[1:], strict=False)):
            c[p] += n
    return c


def _merge_first_only(word, pair):
    for i in range(len(word) - 1):
        if (word[i], word[i + 1]) == pair:
            return (*word[:i], word[i] + word[i + 1], *word[i + 2:])
    return word


def _merge_no_skip(word, pair):
    out = []
    for i in range(len(word)):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(word[i] + word[i + 1])
        elif not (i > 0 and (word[i - 1], word[i]) == pair):
            out.append(word[i])
    return tuple(out)


def _merge_replace(word, pair):
    return tuple(" ".join(word).replace(" ".join(pair), "".join(pair)).split(" "))


def _step_overwrites(word_freqs):
    pair, _ = bpe.bpe_train_step(word_freqs)
    if pair is None:
        return None, dict(word_freqs)
    return pair, {bpe.merge_word(tuple(w), pair): n for w, n in word_freqs.items()}


def _step_not_merged(word_freqs):
    pair, _ = bpe.bpe_train_step(word_freqs)
    return pair, dict(word_freqs)


register(Exercise(
    id="03.1", title="one BPE training step", reference=bpe.bpe_train_step,
    cases=_train_cases, compare=_compare_train,
    hint="Count pairs: for each word and its count n, add n for every (word[i], word[i + 1]). "
         "best = max(counts.values()); pair = min(p for p in counts if counts[p] == best). "
         "Then rebuild each word left to right, joining word[i] + word[i + 1] where they form "
         "the pair (skip both), and add the counts of words that became equal.",
    mistakes=[
        (_step_with(_first_seen), "A tie was broken by the order of the table (max with "
                                  "key=counts.get keeps the first pair seen): the rule is the "
                                  "*smallest* tied pair, min(p for p in counts if counts[p] == "
                                  "best)."),
        (_step_with(_largest_best), "A tie went to the largest pair: the rule takes the "
                                    "smallest one."),
        (_step_with(_smallest_best, count=_count_once_per_word),
         "Each word counts as often as it occurs: add the word's frequency for each of its "
         "pairs, not 1."),
        (_step_with(_smallest_best, count=_count_distinct_per_word),
         "A pair that occurs twice in one word ('a a a' holds (a, a) twice) counts twice: "
         "don't count a word's pairs through a set."),
        (_step_with(_smallest_best, merge=_merge_first_only),
         "Merge the pair *everywhere* in each word, not only its first occurrence."),
        (_step_with(_smallest_best, merge=_merge_replace),
         "Joining the symbols with spaces and using str.replace matches across symbol "
         "boundaries ('xa b' contains 'a b'): compare whole symbols, word[i] == pair[0] and "
         "word[i + 1] == pair[1]."),
        (_step_with(_smallest_best, merge=_merge_no_skip),
         "In 'a a a' the pair (a, a) occurs twice but overlaps: after joining word[i] and "
         "word[i + 1], skip both (i += 2), so 'a a a' becomes 'aa a'."),
        (_step_overwrites, "Two words can become the same after a merge (('a', 'b') and "
                           "('ab',)): add their counts instead of keeping only the last one."),
        (_step_not_merged, "The pair is right, but the table must come back with the pair "
                           "merged in every word."),
    ],
))

# --------------------------------------------------------------------------- 03.2 encoder


def _encode_cases(rng: torch.Generator):
    merges = list(_course_merges())
    toy = [("b", "c"), ("a", "b"), ("a", "bc")]
    yield Case(("abc", [("a", "b"), ("b", "c"), ("ab", "c")]),
               label="toy merges: (a, b) first, then (ab, c)",
               catches="merging the highest rank first; stopping before the merged symbols merge")
    yield Case(("aaaaa", [("a", "a"), ("aa", "aa")]), label="'aaaaa': aa aa a, then aaaa a",
               catches="stopping after one pass over the word")
    yield Case(("abc", toy), label="toy merges: (b, c) has the lower rank than (a, b)",
               catches="merging the leftmost pair, or pairs in the word's order, not by rank")
    yield Case(("abcabc", toy), label="toy merges, the word twice",
               catches="merging only the first occurrence of the best pair")
    yield Case(("aaa", [("a", "a")]), label="'aaa' with (a, a): 'aa' then 'a'",
               catches="merging from the right; overlapping merges")
    yield Case(("xyz", toy), label="no pair of the word is in the merges",
               catches="an empty result or an error when nothing merges")
    yield Case(("q", toy), label="a word of one character", catches="an empty result")
    yield Case(("abd", {("b", "d"): 1, ("a", "b"): 0}), label="merges given as {pair: rank}",
               catches="code that only accepts a list, or reads a dict's order as the ranks")
    for word in _words():
        yield Case((word, merges), label=f"course-gpt merges on {word!r}",
                   catches="any rank or pass mistake on a real word; unseen words that must "
                           "fall apart into pieces; the Ġ space marker removed or replaced")
    for word in bpe.pretokenize(" antidisestablishmentarianism Zyxquorb negative positive"
                                " 🙂🙂 \u00e9t\u00e9") + ["ĠĠĠ"]:
        yield Case((word, merges), label=f"course-gpt merges on {word!r}",
                   catches="rare and unseen words; several spaces in a row")


def _compare_encode(got, expected, case: Case):
    word = case.args[0]
    if isinstance(got, tuple):
        got = list(got)
    if not isinstance(got, list) or not all(isinstance(t, str) for t in got):
        return ("return a list of token strings (the pieces of the word), e.g. ['Ġpar', 'k']; "
                f"got {got!r:.80}.")
    if "".join(got) != "".join(expected):  # (expected joins back to the word)
        return (f"your tokens {got!r} do not join back into the word {word!r}: BPE only joins "
                "neighbouring symbols, it never drops, adds or changes a character.")
    if got != expected:
        return f"for {word!r} you returned {got!r}; applying the merges by rank gives {expected!r}."
    return None


def _ranks(merges):
    return merges if isinstance(merges, dict) else {tuple(p): r for r, p in enumerate(merges)}


def _encode_leftmost(word, merges):
    ranks, symbols = _ranks(merges), list(word)
    while True:
        for i in range(len(symbols) - 1):
            if (symbols[i], symbols[i + 1]) in ranks:
                symbols[i:i + 2] = [symbols[i] + symbols[i + 1]]
                break
        else:
            return symbols


def _encode_one_pass(word, merges):
    ranks, out = _ranks(merges), []
    for ch in word:
        if out and (out[-1], ch) in ranks:
            out[-1] += ch
        else:
            out.append(ch)
    return out


def _encode_highest_rank(word, merges):
    ranks, symbols = _ranks(merges), tuple(word)
    while True:
        pairs = [p for p in zip(symbols, symbols[1:], strict=False) if p in ranks]
        if not pairs:
            return list(symbols)
        symbols = bpe.merge_word(symbols, max(pairs, key=ranks.__getitem__))


def _encode_longest_match(word, merges):
    vocab = {a + b for a, b in _ranks(merges)}
    out, i = [], 0
    while i < len(word):
        j = len(word)
        while j > i + 1 and word[i:j] not in vocab:
            j -= 1
        out.append(word[i:j])
        i = j
    return out


def _encode_one_merge(word, merges):
    ranks, symbols = _ranks(merges), tuple(word)
    pairs = [p for p in zip(symbols, symbols[1:], strict=False) if p in ranks]
    if pairs:
        symbols = bpe.merge_word(symbols, min(pairs, key=ranks.__getitem__))
    return list(symbols)


def _encode_space_replaced(word, merges):
    return bpe.bpe_encode_word(word.replace("Ġ", " "), merges)


register(Exercise(
    id="03.2", title="the BPE encoder: merges applied by rank", reference=bpe.bpe_encode_word,
    cases=_encode_cases, compare=_compare_encode,
    hint="ranks = {pair: i for i, pair in enumerate(merges)}; symbols = list(word); repeat: "
         "collect the adjacent pairs that are in ranks, stop if none, else merge the one with "
         "the smallest rank everywhere (left to right, as in 03.1).",
    mistakes=[
        (_encode_longest_match, "Longest-match from the vocabulary (as WordPiece does) is not "
                                "BPE: replay the merges by rank."),
        (_encode_leftmost, "You merged the leftmost pair that is in the merges; BPE merges the "
                           "pair with the *lowest rank* (learned earliest) first, wherever it "
                           "is in the word."),
        (_encode_one_pass, "One left-to-right pass is not enough: merged symbols form new pairs "
                           "(ab + c -> abc); repeat until no pair of the word is in the merges, "
                           "lowest rank first."),
        (_encode_highest_rank, "The pair to merge is the one with the *lowest* rank (learned "
                               "first), min(..., key=rank), not the highest."),
        (_encode_one_merge, "Keep merging until no adjacent pair is in the merge list, not just "
                            "once."),
        (_encode_space_replaced, "'Ġ' is how byte-level BPE writes the space byte: the merges "
                                 "contain it ('Ġ', 't'), so keep it as it is."),
    ],
))
