"""Getting a causal LM and the facts about it every caller needs: context, pad id, size.

:func:`load_model` takes what a lesson or the server's ``--model`` may name:

- ``"course-gpt"`` (the default): the course's own small GPT-2, baked into the package;
- a directory saved with ``save_pretrained`` (model and tokenizer together);
- ``"random-tiny"``: a randomly initialised GPT-2 of course-gpt's shape with a byte-level
  tokenizer, built in a moment with no files at all. It writes gibberish, but it exercises every
  code path and costs as much per token as the real one, so tests and benchmarks can use it;
- a hub name (e.g. ``"HuggingFaceTB/SmolLM2-135M-Instruct"``) when online. Offline
  (``HF_HUB_OFFLINE=1``, the course default) it fails at once, naming the bundled model,
  instead of waiting on network retries.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

DEFAULT_MODEL = "course-gpt"
EOS = "<|endoftext|>"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")
_CONTEXT_KEYS = ("n_positions", "max_position_embeddings", "n_ctx")
_UNSET_MAX_LENGTH = 10**9  # transformers' tokenizers say int(1e30) when they do not know


class ModelLoadError(OSError, RuntimeError):
    """A model could not be loaded. An ``OSError``, as transformers' own "not found" errors
    are, and a ``RuntimeError``, as the server reports a failed start-up."""


def random_tiny(seed: int = 0) -> tuple[Any, Any]:
    """A random GPT-2 (4 layers, width 160, context 256) and a 257-token byte-level tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

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


def load_model(name: str = DEFAULT_MODEL) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a causal LM in eval mode (see the module docstring for what
    ``name`` may be). A failure raises :class:`ModelLoadError` saying what would load."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"model must be a non-empty name or path, got {name!r}")
    if name == "random-tiny":
        return random_tiny()
    from transformers import AutoModelForCausalLM

    from course_utils.pretrained import BUNDLED, load_pretrained

    try:
        model, tokenizer = load_pretrained(
            name, model_class=None if name in BUNDLED else AutoModelForCausalLM)
    except (OSError, ValueError) as exc:
        # The cause's own words first: they say what went wrong (e.g. offline, not bundled).
        raise ModelLoadError(f"{exc} Cannot load {name!r}: pass the bundled {DEFAULT_MODEL!r}, "
                             "a checkpoint directory, or 'random-tiny' for a random stand-in "
                             "(--model random-tiny for the server).") from exc
    return model.eval(), tokenizer


def context_length(model: Any, tokenizer: Any = None) -> int:
    """How many positions the model attends to (prompt and generated tokens together).

    The config's ``n_positions``, ``max_position_embeddings`` or ``n_ctx`` (the first that is a
    positive int); else the tokenizer's ``model_max_length`` when it is a real limit rather
    than transformers' "unknown" placeholder; else a ``ValueError``.
    """
    config = getattr(model, "config", None)
    for key in _CONTEXT_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 1 <= limit < _UNSET_MAX_LENGTH:
        return limit
    raise ValueError(f"cannot tell the context length of {type(model).__name__}: its config "
                     f"has none of {', '.join(_CONTEXT_KEYS)} and no tokenizer with a "
                     "model_max_length was given; pass the length explicitly")


def pad_token_id(tokenizer: Any) -> int:
    """The id that fills a padded batch: the pad token, else end-of-text (GPT-2 has no pad)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None \
        else tokenizer.eos_token_id
    if pad is None:
        raise ValueError("the tokenizer has neither a pad nor an eos token: set "
                         "tokenizer.pad_token before batching")
    return pad


def size_on_disk(weights: nn.Module | str | os.PathLike) -> int:
    """Bytes a model's weights take on disk.

    A module: what ``torch.save(module.state_dict())`` would write (a quantized model counts
    its int8 weights). A path: the weight files (``*.safetensors``, ``*.bin``, ``*.pt``) saved
    there, e.g. by ``save_pretrained`` (an adapter folder holds only the adapter).
    """
    if isinstance(weights, nn.Module):
        buffer = io.BytesIO()
        torch.save(weights.state_dict(), buffer)
        return buffer.getbuffer().nbytes
    if not isinstance(weights, str | os.PathLike):
        raise TypeError("size_on_disk takes a torch module or the path of saved weights, got "
                        f"{type(weights).__name__}")
    path = Path(weights)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: save the model or adapter there first")
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files if p.suffix in WEIGHT_SUFFIXES)
