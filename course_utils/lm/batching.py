"""Prompts to a batch: token ids, left padding, and the position ids of a padded row.

Prompts of different lengths share a batch by **left padding**: the pads go before the prompt,
so every row's last real token sits in the last column and one forward pass gives every row's
next-token logits. Two more things keep a padded row's answer identical to the unpadded one:

- the ``attention_mask`` (0 on padding) stops real tokens from attending to the pads;
- the ``position_ids`` count only real tokens (:func:`position_ids`). GPT-2 adds a learned
  position embedding, and without explicit ids the model would number the pads too, so a
  left-padded prompt would start at position 3 instead of 0 and give different logits.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch


def check_texts(texts: Sequence[str], name: str = "prompts", allow_empty: bool = True
                ) -> list[str]:
    """``texts`` as a list, or a clear error: it must be a list of non-empty strings."""
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a list of strings, got a single str: wrap it in a "
                        f"list, e.g. [{texts[:30]!r}]")
    if not isinstance(texts, Sequence):
        raise TypeError(f"{name} must be a list of strings, got {type(texts).__name__}")
    if not texts and not allow_empty:
        raise ValueError(f"{name} is empty: pass at least one text")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{i}] must be a str, got {type(text).__name__}: {text!r:.60}")
        if not text:
            what = "the prompt is empty" if name == "prompts" else f"{name}[{i}] is empty"
            raise ValueError(f"{what}: type a few words for the model to read")
    return list(texts)


def encode(tokenizer, prompts: Sequence[str], max_len: int) -> list[list[int]]:
    """Token ids of each prompt (no special tokens added); a prompt longer than ``max_len``
    keeps its end, the part next to what the model predicts, with a warning."""
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"no room for the prompt: {max_len!r} positions are left of the "
                         "model's context; ask for fewer new tokens")
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    cut = sum(len(i) > max_len for i in ids)
    if cut:
        warnings.warn(f"{cut} prompt(s) longer than {max_len} tokens lost their beginning "
                      "(the model's context is full): use fewer or shorter examples",
                      stacklevel=3)
    return [i[-max_len:] for i in ids]


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that count real tokens only: 0, 1, 2, ... from each row's first real token,
    and 0 on (left) padding, so a padded row is numbered as if it were alone."""
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


def left_pad(sequences: Sequence[Sequence[int]],
             pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-pad token-id lists into ``(input_ids, attention_mask, position_ids)``.

    All three are ``(batch, longest)`` int64 tensors. ``attention_mask`` is 1 on real tokens and
    0 on padding; ``position_ids`` number the real tokens 0, 1, 2, ... and are 0 on padding.
    """
    if isinstance(sequences, torch.Tensor) or not isinstance(sequences, Sequence):
        raise TypeError("sequences must be a list of token-id lists, e.g. [[5, 7], [9]], "
                        f"got {type(sequences).__name__}")
    if len(sequences) == 0:
        raise ValueError("sequences is empty: pass at least one token-id list")
    if any(len(s) == 0 for s in sequences):
        raise ValueError("every sequence needs at least one token; an empty prompt has nothing "
                         "to predict from")
    longest = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), longest), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, seq in enumerate(sequences):
        input_ids[row, longest - len(seq):] = torch.as_tensor(list(seq), dtype=torch.long)
        attention_mask[row, longest - len(seq):] = 1
    return input_ids, attention_mask, position_ids(attention_mask)


def length_batches(ids: Sequence[Sequence[int]], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first), so padding stays small."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
