"""What ``--model`` can name: the bundled checkpoint, a local directory, or a test stand-in.

- ``"course-gpt"`` (the default): the course's own small GPT-2, baked into the package;
- a path to a directory saved with ``save_pretrained`` (model and tokenizer together);
- ``"random-tiny"``: a randomly initialised GPT-2 of course-gpt's shape with a byte-level
  tokenizer, built in a moment with no files at all. It writes gibberish, but it exercises every
  code path and costs as much per token as the real one, so tests and benchmarks can use it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

DEFAULT_MODEL = "course-gpt"
EOS = "<|endoftext|>"


def random_tiny(seed: int = 0) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerFast]:
    """A random GPT-2 (4 layers, width 160, context 256) and a 257-token byte-level tokenizer."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(alphabet)} | {EOS: len(alphabet)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS)
    config = GPT2Config(vocab_size=len(vocab), n_positions=256, n_embd=160, n_layer=4, n_head=4,
                        bos_token_id=vocab[EOS], eos_token_id=vocab[EOS],
                        pad_token_id=vocab[EOS])
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config).eval(), tokenizer


def load_model(name: str = DEFAULT_MODEL) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load ``(model, tokenizer)`` for ``name`` (see the module docstring for what it may be)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"model must be a non-empty name or path, got {name!r}")
    if name == "random-tiny":
        return random_tiny()
    if Path(name).is_dir():
        model = AutoModelForCausalLM.from_pretrained(name)
        return model.eval(), AutoTokenizer.from_pretrained(name)
    try:
        from course_utils.pretrained import load_pretrained
    except ImportError as exc:
        raise RuntimeError(f"cannot load {name!r}: course_utils.pretrained is not available "
                           f"({exc}). Pass a checkpoint directory, or --model random-tiny "
                           f"for a random stand-in.") from exc
    try:
        model, tokenizer = load_pretrained(name)
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"cannot load {name!r}: {exc}. Pass a checkpoint directory, or "
                           f"--model random-tiny for a random stand-in.") from exc
    return model.eval(), tokenizer
