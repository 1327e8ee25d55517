"""Masks and positions for a left-padded batch that continues after cached tokens (lesson 03).

When several prompts of different lengths are generated together, the short ones are padded
on the left (so every row's newest token is in the last column) and a tokenizer's
``attention_mask`` (batch, past + new) marks the real tokens with 1. Two things follow:

- a query may attend to key ``j`` only if ``j`` is not in its future *and* is a real token:
  :func:`padded_causal_mask`;
- a token's position is the number of real tokens before it, not its column:
  :func:`padded_position_ids` (real tokens counted from each row's first one, as
  ``transformers`` does).
"""

from __future__ import annotations

import torch

from course_utils.lm.batching import position_ids


def _check(attention_mask: torch.Tensor, query_len: int) -> None:
    if not isinstance(attention_mask, torch.Tensor) or attention_mask.dim() != 2:
        raise ValueError("attention_mask must be a (batch, past + query_len) tensor of 0/1, got "
                         f"{getattr(attention_mask, 'shape', type(attention_mask).__name__)}")
    if isinstance(query_len, bool) or not isinstance(query_len, int) or not (
            1 <= query_len <= attention_mask.shape[1]):
        raise ValueError(f"query_len must be an int in 1..{attention_mask.shape[1]} (the "
                         f"mask's columns), got {query_len!r}")


def padded_causal_mask(attention_mask: torch.Tensor, query_len: int) -> torch.Tensor:
    """Boolean ``(batch, query_len, key_len)``: True where new token ``i`` may attend to key ``j``.

    The queries are the last ``query_len`` columns: query ``i`` sits in column
    ``past + i`` with ``past = key_len - query_len``, so it may see columns ``j <= past + i``
    that hold real tokens (``attention_mask == 1``). A padding query has no real key before it:
    its row is all False (its output is never used).
    """
    _check(attention_mask, query_len)
    key_len = attention_mask.shape[1]
    causal = torch.ones(query_len, key_len, dtype=torch.bool,
                        device=attention_mask.device).tril(diagonal=key_len - query_len)
    return causal[None] & (attention_mask[:, None, :] != 0)


def padded_position_ids(attention_mask: torch.Tensor, query_len: int) -> torch.Tensor:
    """Positions ``(batch, query_len)`` of the newest ``query_len`` tokens of a left-padded batch.

    A real token's position counts the real tokens before it (cached ones included), so left
    padding does not shift it; padding gets position 1, as in ``transformers``' ``generate``
    (any valid position would do: padding is never attended to).
    """
    _check(attention_mask, query_len)
    real = attention_mask.long() != 0
    return position_ids(real.long()).masked_fill(~real, 1)[:, -query_len:]
