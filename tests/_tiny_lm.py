"""The tests' one tiny causal LM: a randomly initialised GPT-2 of any shape (:func:`tiny_gpt2`),
and a word-level tokenizer, built in memory (no downloads).

Every test that needs a small GPT-2 builds it with :func:`tiny_gpt2`. The perplexity and
evaluate-module tests use :func:`tiny_model` and :func:`tiny_tokenizer`: the model's context
(16 positions) is short so that the test texts need the sliding window.
"""

from __future__ import annotations

from typing import Any

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


def tiny_gpt2(vocab_size: int, *, n_positions: int = CONTEXT, n_embd: int = 32,
              n_layer: int = 2, n_head: int = 2, seed: int = 0, tokenizer: Any = None,
              attn_implementation: str | None = None, **config: Any) -> GPT2LMHeadModel:
    """A random GPT-2 of this shape, its weights drawn after ``torch.manual_seed(seed)``.

    With ``tokenizer``, its end-of-text token is also BOS and EOS and its pad token is the pad
    id; other ``GPT2Config`` fields (``bos_token_id=None``, ``tie_word_embeddings=False``,
    ``initializer_range``, ...) pass through. The model is returned as built (train mode).
    """
    if tokenizer is not None:
        config = {"bos_token_id": tokenizer.eos_token_id, "eos_token_id": tokenizer.eos_token_id,
                  "pad_token_id": tokenizer.pad_token_id} | config
    cfg = GPT2Config(vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd,
                     n_layer=n_layer, n_head=n_head, **config)
    torch.manual_seed(seed)
    if attn_implementation is not None:
        return GPT2LMHeadModel._from_config(cfg, attn_implementation=attn_implementation)
    return GPT2LMHeadModel(cfg)


def tiny_model(vocab_size: int, seed: int = 0) -> GPT2LMHeadModel:
    model = tiny_gpt2(vocab_size, seed=seed, bos_token_id=2, eos_token_id=2)
    with torch.no_grad():  # sharper logits than the 0.02-std init, so perplexity varies
        model.lm_head.weight.mul_(4)
    return model.eval()


def random_text(rng: torch.Generator, n_words: int) -> str:
    idx = torch.randint(0, len(WORDS), (n_words,), generator=rng)
    return " ".join(WORDS[int(i)] for i in idx)
