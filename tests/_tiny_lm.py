"""A tiny, randomly initialised GPT-2 and a word-level tokenizer, built in memory (no downloads).

Shared by the perplexity and evaluate-module tests: the model's context (16 positions) is short
so that the test texts need the sliding window.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

WORDS = ("the cat dog sat ran on a mat log big small red blue and then it was very happy "
         "sad day night park home tree bird sang").split()
CONTEXT = 16


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "<bos>", *WORDS, "."])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", unk_token="<unk>",
                                   pad_token="<pad>")


def tiny_model(vocab_size: int, seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=vocab_size, n_positions=CONTEXT, n_embd=32, n_layer=2,
                        n_head=2, bos_token_id=2, eos_token_id=2)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():  # sharper logits than the 0.02-std init, so perplexity varies
        model.lm_head.weight.mul_(4)
    return model.eval()


def random_text(rng: torch.Generator, n_words: int) -> str:
    idx = torch.randint(0, len(WORDS), (n_words,), generator=rng)
    return " ".join(WORDS[int(i)] for i in idx)
