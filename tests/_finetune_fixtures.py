"""Tiny, randomly initialised GPT-2 and BERT models with word-level tokenizers over the review
vocabulary, built in memory in a second (no downloads, no bundled checkpoint needed).

Shared by the fine-tuning, LoRA and distributed tests.
"""

from __future__ import annotations

import re
from functools import lru_cache

import torch
from _tiny_lm import tiny_gpt2
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)

from course_utils.data import reviews
from course_utils.finetune import LABEL_NAMES


@lru_cache(maxsize=1)
def review_words() -> tuple[str, ...]:
    ds = reviews(seed=0)
    words: set[str] = set()
    for split in ds.values():
        for text in split["text"]:
            words.update(re.findall(r"\w+|[^\w\s]", text))
    words.update([*LABEL_NAMES, "Review", "Sentiment", ":"])
    return tuple(sorted(words))


def _word_tokenizer(specials: list[str], **kwargs) -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate([*specials, *review_words()])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>" if "<unk>" in vocab
                                     else "[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Punctuation()])
    return PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)


def gpt_tokenizer(with_pad: bool = False) -> PreTrainedTokenizerFast:
    """Like GPT-2's tokenizer: an end-of-text token and, by default, no pad token."""
    tok = _word_tokenizer(["<|endoftext|>", "<unk>"], eos_token="<|endoftext|>",
                          bos_token="<|endoftext|>", unk_token="<unk>")
    if with_pad:
        tok.pad_token = tok.eos_token
    return tok


def bert_tokenizer() -> PreTrainedTokenizerFast:
    tok = _word_tokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], pad_token="[PAD]",
                          unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
                          mask_token="[MASK]")
    return tok


def tiny_gpt(vocab_size: int, seed: int = 0, n_embd: int = 32, n_layer: int = 2,
             n_positions: int = 96) -> GPT2LMHeadModel:
    return tiny_gpt2(vocab_size, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
                     n_head=2, seed=seed, bos_token_id=0, eos_token_id=0)


def tiny_bert(vocab_size: int, num_labels: int = 3, seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=96,
                        num_labels=num_labels, pad_token_id=0)
    return BertForSequenceClassification(config)
