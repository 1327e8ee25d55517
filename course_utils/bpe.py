"""Byte-pair encoding by hand: one training step, and an encoder that applies a merge list.

BPE builds a vocabulary bottom-up. Training starts from single symbols (for GPT-2's byte-level
BPE: the 256 bytes, each shown as one printable character) and repeats one step: count every
pair of adjacent symbols over a word-frequency table, and merge the most frequent pair into one
new symbol. The list of merges, in the order they were learned, *is* the tokenizer.

Encoding a word replays that list by rank: among the word's adjacent pairs, merge the one
learned earliest, everywhere it occurs, and repeat until no pair of the word is in the list.

:func:`encode` does the whole byte-level pipeline (split the text into words, map bytes to
characters, BPE each word, look the pieces up) and reproduces the ids of the Hugging Face
``tokenizers`` library for the course tokenizer (``tests/test_bpe.py`` checks it).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import regex

Word = tuple[str, ...]
Pair = tuple[str, str]

# GPT-2's pre-tokenizer: contractions, runs of letters / digits / other symbols, each with at
# most one leading space, and whitespace (a space is kept at the *start* of the next word).
GPT2_SPLIT = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte (0..255) to one printable character.

    Printable bytes stand for themselves; the others (space, newline, control bytes, ...) are
    moved to characters from 256 on, so the space byte 32 becomes "Ġ" and newline 10 "Ċ".
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    chars = list(keep)
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(keep, chars, strict=True)}


def pretokenize(text: str) -> list[str]:
    """Split ``text`` into words as GPT-2 does and write each word's bytes as characters.

    ``"Hi there"`` becomes ``["Hi", "Ġthere"]``: the space belongs to the word after it.
    """
    if not isinstance(text, str):
        raise TypeError(f"pretokenize takes a str, got {type(text).__name__}")
    table = bytes_to_unicode()
    return ["".join(table[b] for b in piece.encode("utf-8")) for piece in GPT2_SPLIT.findall(text)]


# --------------------------------------------------------------------------- training


def count_pairs(word_freqs: Mapping[Word, int]) -> Counter[Pair]:
    """How often each pair of adjacent symbols occurs, each word weighted by its frequency."""
    counts: Counter[Pair] = Counter()
    for word, freq in word_freqs.items():
        for pair in zip(word, word[1:], strict=False):
            counts[pair] += freq
    return counts


def merge_word(word: Word, pair: Pair) -> Word:
    """``word`` with every occurrence of ``pair`` joined, left to right, without overlaps.

    ``("a", "a", "a")`` with ``("a", "a")`` gives ``("aa", "a")``: the first two merge, and the
    third "a" has no partner left.
    """
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == pair[0] and word[i + 1] == pair[1]:
            out.append(word[i] + word[i + 1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def bpe_train_step(word_freqs: Mapping[Word, int]) -> tuple[Pair | None, dict[Word, int]]:
    """One BPE training step: the pair to merge and the word-frequency table after merging it.

    ``word_freqs`` maps each word, a tuple of symbols, to how often it occurs. The pair merged
    is the most frequent adjacent pair; **ties go to the smallest pair** in Python's ordering of
    tuples of strings (so ``("a", "b")`` before ``("a", "c")`` before ``("b", "a")``), which
    makes the result independent of the table's order. With no pair left (every word is one
    symbol) it returns ``(None, table)`` unchanged. Words that become equal add their counts.
    """
    if not isinstance(word_freqs, Mapping):
        raise TypeError("word_freqs must be a dict mapping words (tuples of symbols) to counts, "
                        f"got {type(word_freqs).__name__}")
    counts = count_pairs(word_freqs)
    if not counts:
        return None, dict(word_freqs)
    best = max(counts.values())
    pair = min(p for p, n in counts.items() if n == best)
    merged: dict[Word, int] = {}
    for word, freq in word_freqs.items():
        new = merge_word(tuple(word), pair)
        merged[new] = merged.get(new, 0) + freq
    return pair, merged


def train_bpe(word_freqs: Mapping[Word, int], num_merges: int) -> list[Pair]:
    """The first ``num_merges`` merges learned from ``word_freqs`` (fewer if none are left)."""
    merges = []
    for _ in range(num_merges):
        pair, word_freqs = bpe_train_step(word_freqs)
        if pair is None:
            break
        merges.append(pair)
    return merges


# --------------------------------------------------------------------------- encoding


def bpe_encode_word(word: str, merges: Sequence[Pair] | Mapping[Pair, int]) -> list[str]:
    """Split one pre-tokenized word into tokens by applying ``merges`` by rank.

    Start from single characters; while some adjacent pair is in ``merges``, merge the pair
    with the lowest rank (learned earliest) everywhere in the word. ``merges`` is the list in
    learning order, or a dict ``{pair: rank}``.
    """
    if not isinstance(word, str):
        raise TypeError(f"word must be a str (one pre-tokenized word), got {type(word).__name__}")
    ranks = merges if isinstance(merges, Mapping) else {tuple(p): r for r, p in enumerate(merges)}
    symbols = tuple(word)
    while len(symbols) > 1:
        pairs = [p for p in zip(symbols, symbols[1:], strict=False) if p in ranks]
        if not pairs:
            break
        symbols = merge_word(symbols, min(pairs, key=ranks.__getitem__))
    return list(symbols)


class ByteLevelBPE:
    """A byte-level BPE tokenizer built from a ``tokenizer.json``'s vocabulary and merges.

    ``ByteLevelBPE.from_file(path).encode(text)`` gives the same ids as the ``tokenizers``
    library for GPT-2-style tokenizers (no added special tokens in ``text``).
    """

    def __init__(self, vocab: Mapping[str, int], merges: Sequence[Pair]):
        self.vocab = dict(vocab)
        self.merges = [tuple(p) for p in merges]
        self.ranks = {p: r for r, p in enumerate(self.merges)}
        self.id_to_token = {i: t for t, i in self.vocab.items()}

    @classmethod
    def from_file(cls, path: str | Path) -> ByteLevelBPE:
        """Read ``vocab`` and ``merges`` from a Hugging Face ``tokenizer.json``."""
        model = json.loads(Path(path).read_text(encoding="utf-8"))["model"]
        if model.get("type") != "BPE":
            raise ValueError(f"{path} holds a {model.get('type')} model, not BPE")
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
                  for m in model["merges"]]
        return cls(model["vocab"], merges)

    def tokenize(self, text: str) -> list[str]:
        """The token strings of ``text``, word by word."""
        return [t for word in pretokenize(text) for t in bpe_encode_word(word, self.ranks)]

    def encode(self, text: str) -> list[int]:
        """The token ids of ``text``."""
        return [self.vocab[t] for t in self.tokenize(text)]

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids`` (bytes mapped back from their characters)."""
        back = {c: b for b, c in bytes_to_unicode().items()}
        data = bytes(back[c] for i in ids for c in self.id_to_token[int(i)])
        return data.decode("utf-8", errors="replace")


def course_bpe() -> ByteLevelBPE:
    """The course-gpt tokenizer's merges and vocabulary, as a :class:`ByteLevelBPE`."""
    from course_utils.pretrained import asset_path

    return ByteLevelBPE.from_file(asset_path("course-gpt") / "tokenizer.json")
