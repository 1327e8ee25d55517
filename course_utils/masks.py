"""Attention masks: causal, padding, their combination, and the two conventions.

Two conventions meet in practice:

* **boolean / 0-1** (the cheat-sheet version's and ``F.scaled_dot_product_attention``'s boolean
  ``attn_mask``):
  ``True``/1 where a query may attend, ``False``/0 where it may not;
* **additive** (``nn.Transformer``, ``nn.MultiheadAttention``'s float ``attn_mask``): a float
  tensor *added to the scores*, 0 where allowed and a large negative number where blocked.

Every function here returns a new tensor and works for any sequence length >= 1.
"""

from __future__ import annotations

import torch

from course_utils.attention import NEG_INF


def _check_len(seq_len: int) -> None:
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
        raise ValueError(f"seq_len must be a positive int, got {seq_len!r}")


def causal_mask(seq_len: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Boolean ``(seq_len, seq_len)`` mask: position ``i`` may attend to ``j <= i`` only."""
    _check_len(seq_len)
    return torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).tril()


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Turn a tokenizer's ``attention_mask`` ``(batch, seq)`` (1 = token, 0 = padding) into a
    boolean key mask of shape ``(batch, 1, seq)`` that broadcasts over the queries."""
    if not isinstance(attention_mask, torch.Tensor) or attention_mask.dim() != 2:
        raise ValueError("attention_mask must be a (batch, seq_len) tensor of 1s (tokens) and "
                         f"0s (padding), got {getattr(attention_mask, 'shape', attention_mask)}")
    return (attention_mask != 0).unsqueeze(-2)


def padding_mask_from_lengths(lengths: list[int] | torch.Tensor, seq_len: int) -> torch.Tensor:
    """The same key mask from the true lengths of right-padded sequences."""
    _check_len(seq_len)
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1 or bool((lengths < 0).any()) or bool((lengths > seq_len).any()):
        raise ValueError(f"lengths must be ints in [0, {seq_len}], got {lengths.tolist()}")
    positions = torch.arange(seq_len)
    return (positions[None, :] < lengths[:, None]).unsqueeze(-2)


def combine_masks(*masks: torch.Tensor | None) -> torch.Tensor | None:
    """A position is allowed only if every mask allows it (broadcasting their shapes)."""
    present = [m for m in masks if m is not None]
    if not present:
        return None
    combined = present[0] != 0
    for m in present[1:]:
        combined = combined & (m != 0)
    return combined


def bool_to_additive(mask: torch.Tensor, fill_value: float = NEG_INF,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """0/1 or boolean mask -> additive float mask (0 where allowed, ``fill_value`` where not)."""
    zeros = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    return zeros.masked_fill(mask == 0, fill_value)


def additive_to_bool(mask: torch.Tensor, threshold: float = -1e4) -> torch.Tensor:
    """Additive float mask -> boolean mask (``True`` where the added value is not very negative)."""
    if not mask.is_floating_point():
        raise TypeError(f"an additive mask is a float tensor, got dtype {mask.dtype}")
    return mask > threshold


def generate_square_subsequent_mask(sz: int, fill_value: float = NEG_INF) -> torch.Tensor:
    """The additive causal mask ``nn.Transformer`` expects: 0 on and below the diagonal, a large
    negative number above it. ``nn.Transformer.generate_square_subsequent_mask`` uses ``-inf``;
    pass ``fill_value=float('-inf')`` for exactly that."""
    return bool_to_additive(causal_mask(sz), fill_value)
