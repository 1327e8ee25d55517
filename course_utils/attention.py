"""Attention, written out: a stable softmax and scaled dot-product attention (lesson 01).

The mask convention is the seed's: a mask holds 1 (or ``True``) where a query may look at a
key and 0 (or ``False``) where it may not. :mod:`course_utils.masks` builds such masks and
converts them to the additive form (0 / large negative) that ``torch.nn`` layers take.
"""

from __future__ import annotations

import math

import torch

NEG_INF = -1e9
"""The seed's fill value for blocked scores: large and negative, but finite.

With ``-inf`` a row whose every key is blocked becomes ``exp(-inf) / 0 = NaN``; with ``-1e9``
it becomes a uniform distribution instead. Lesson 01 shows both.
"""


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Numerically stable softmax: subtracting the maximum keeps ``exp`` from overflowing.

    ``softmax(x) == softmax(x - c)`` for any constant ``c``, so shifting by the maximum changes
    nothing mathematically but keeps every exponent at most 0.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"softmax takes a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"softmax needs a floating-point tensor, got dtype {x.dtype}; "
                        "call .float() first")
    shifted = x - x.amax(dim=dim, keepdim=True)
    exp = shifted.exp()
    return exp / exp.sum(dim=dim, keepdim=True)


def _check_qkv(Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor) -> None:
    for name, t in (("Q", Q), ("K", K), ("V", V)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() < 2:
            raise ValueError(f"{name} must have shape (..., seq_len, d), got {tuple(t.shape)}")
    if Q.shape[-1] != K.shape[-1]:
        raise ValueError(f"Q and K must share their last dimension d_k, got Q {tuple(Q.shape)} "
                         f"and K {tuple(K.shape)}")
    if K.shape[-2] != V.shape[-2]:
        raise ValueError(f"K and V must have the same number of positions, got K "
                         f"{tuple(K.shape)} and V {tuple(V.shape)}")


def attention_scores(Q: torch.Tensor, K: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Scaled similarity of every query with every key: ``Q K^T / (sqrt(d_k) * temperature)``."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    d_k = Q.shape[-1]
    return Q @ K.transpose(-2, -1) / (math.sqrt(d_k) * temperature)


def apply_mask(scores: torch.Tensor, mask: torch.Tensor | None,
               fill_value: float = NEG_INF) -> torch.Tensor:
    """Set the scores where ``mask == 0`` to ``fill_value`` (a new tensor; no in-place change)."""
    if mask is None:
        return scores
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor or None, got {type(mask).__name__}")
    if mask.is_floating_point() and not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("mask must hold 0/1 or True/False (1 = may attend). This looks like "
                         "an additive mask (0 / -inf); convert it with "
                         "course_utils.masks.additive_to_bool(mask).")
    try:
        return scores.masked_fill(mask == 0, fill_value)
    except RuntimeError as exc:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' "
                         f"shape {tuple(scores.shape)} (..., queries, keys)") from exc


def scaled_dot_product_attention(
    Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention as in the seed: ``softmax(Q K^T / sqrt(d_k), masked) V``.

    Shapes: ``Q (..., L, d_k)``, ``K (..., S, d_k)``, ``V (..., S, d_v)``; ``mask`` broadcasts to
    ``(..., L, S)`` with 0 where a query may not attend. Returns ``(output, attention_weights)``
    with shapes ``(..., L, d_v)`` and ``(..., L, S)``. Matches
    ``torch.nn.functional.scaled_dot_product_attention`` (with a boolean ``attn_mask``) wherever
    a row has at least one allowed key.
    """
    _check_qkv(Q, K, V)
    scores = apply_mask(attention_scores(Q, K), mask)
    weights = softmax(scores, dim=-1)
    return weights @ V, weights


def attention_weights(Q: torch.Tensor, K: torch.Tensor, mask: torch.Tensor | None = None,
                      temperature: float = 1.0, fill_value: float = NEG_INF) -> torch.Tensor:
    """Only the weights, with a temperature (used by the lesson's explorer widget)."""
    scores = apply_mask(attention_scores(Q, K, temperature), mask, fill_value)
    return softmax(scores, dim=-1)
