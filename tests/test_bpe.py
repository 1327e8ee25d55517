"""course_utils.bpe against the Hugging Face ``tokenizers`` library (an independent BPE)."""

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from course_utils import bpe
from course_utils.data import stories
from course_utils.pretrained import asset_path


@pytest.fixture(scope="module")
def hf_tokenizer():
    return Tokenizer.from_file(str(asset_path("course-gpt") / "tokenizer.json"))


@pytest.fixture(scope="module")
def ours():
    return bpe.course_bpe()


UNUSUAL = [
    "The antidisestablishmentarianism of Zyxquorb surprised everyone.",
    "Naïve café owners serve crème brûlée for 12,345 yen. 😀 “Quoted” — done.",
    "it's they'll we'd I'm you've she's  two  spaces\t\ttabs\n\n\nnewlines   ",
    "ÅÄÖ Ωμέγα Привет 你好 مرحبا",
    "!!!???... ((([[{}]]))) @#$%^&*_+=~`|\\/<>",
    " leading space, trailing space ",
    "",
]


def test_encode_matches_tokenizers_on_the_course_stories(hf_tokenizer, ours):
    texts = stories()["train"][:400]["text"] + stories()["validation"][:100]["text"]
    words = {w for t in texts for w in t.split()}
    assert len(words) > 300
    for text in texts:
        assert ours.encode(text) == hf_tokenizer.encode(text).ids, text


@pytest.mark.parametrize("text", UNUSUAL)
def test_encode_matches_tokenizers_on_rare_and_unseen_words(hf_tokenizer, ours, text):
    assert ours.encode(text) == hf_tokenizer.encode(text).ids
    assert ours.decode(ours.encode(text)) == text


def test_pretokenize_matches_the_byte_level_pre_tokenizer():
    pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    for text in UNUSUAL:
        assert bpe.pretokenize(text) == [w for w, _ in pre.pre_tokenize_str(text)], text


def test_unseen_words_fall_apart_and_label_words_are_one_token(ours):
    assert len(ours.tokenize(" Zyxquorb")) > 3
    for word in (" negative", " neutral", " positive", " happy", " Mia"):
        assert len(ours.tokenize(word)) == 1, word


def test_space_is_the_G_character_and_belongs_to_the_next_word():
    assert bpe.bytes_to_unicode()[ord(" ")] == "Ġ"
    assert bpe.bytes_to_unicode()[ord("\n")] == "Ċ"
    assert sorted(bpe.bytes_to_unicode()) == list(range(256))
    assert len(set(bpe.bytes_to_unicode().values())) == 256
    assert bpe.pretokenize("Hi there") == ["Hi", "Ġthere"]


def test_train_step_on_sennrich_et_al_example():
    """The first merges of the BPE paper's example (Sennrich et al. 2016, Fig. 1)."""
    table = {tuple("low") + ("</w>",): 5, tuple("lower") + ("</w>",): 2,
             tuple("newest") + ("</w>",): 6, tuple("widest") + ("</w>",): 3}
    assert bpe.train_bpe(table, 5) == [("e", "s"), ("es", "t"), ("est", "</w>"), ("l", "o"),
                                       ("lo", "w")]


def test_train_step_merges_everywhere_and_adds_counts():
    pair, table = bpe.bpe_train_step({("a", "a", "a", "a"): 2, ("a", "b"): 3, ("aa",): 1})
    assert pair == ("a", "a")
    assert table == {("aa", "aa"): 2, ("a", "b"): 3, ("aa",): 1}
    assert bpe.bpe_train_step({("ab",): 1}) == (None, {("ab",): 1})


def test_encoder_agrees_with_tokenizers_bpe_on_merges_trained_here():
    """Merges learned by our trainer, encoded by our encoder and by tokenizers' BPE model."""
    texts = stories()["train"][:200]["text"]
    words = [w for t in texts for w in bpe.pretokenize(t)]
    table: dict = {}
    for w in words:
        table[tuple(w)] = table.get(tuple(w), 0) + 1
    merges = bpe.train_bpe(table, 150)
    assert len(merges) == 150
    alphabet = sorted({c for w in words for c in w})
    vocab = {c: i for i, c in enumerate(alphabet)}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    hf = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    for w in set(words):
        assert bpe.bpe_encode_word(w, merges) == hf.encode(w).tokens, w


def test_bad_input_is_refused_clearly():
    with pytest.raises(TypeError, match="one pre-tokenized word"):
        bpe.bpe_encode_word(["a", "b"], [])
    with pytest.raises(TypeError, match="dict mapping words"):
        bpe.bpe_train_step([("a", "b")])
    with pytest.raises(TypeError, match="takes a str"):
        bpe.pretokenize(None)
