"""Attention, written out: softmax and scaled dot-product attention (lesson 01), heads (02).

The mask convention is the cheat-sheet version's: a mask holds 1 (or ``True``) where a query
may look at a key and 0 (or ``False``) where it may not. :mod:`course_utils.masks` builds such
masks and converts them to the additive form (0 / large negative) that ``torch.nn`` layers take.
"""

from __future__ import annotations

import math

import torch

NEG_INF = -1e9
"""The cheat-sheet version's fill value for blocked scores: large and negative, but finite.

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
    """Attention as in the cheat-sheet version: ``softmax(Q K^T / sqrt(d_k), masked) V``.

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


# --------------------------------------------------------------------------- lesson 02: heads


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``(batch, seq, d_model) -> (batch, num_heads, seq, d_k)``, ``d_k = d_model // num_heads``.

    Each head gets its own contiguous slice of ``d_k`` features: view the last axis as
    ``(num_heads, d_k)``, then move the head axis in front of the sequence so every head is an
    independent ``(seq, d_k)`` attention problem.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        raise ValueError("split_heads takes a (batch, seq_len, d_model) tensor, got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1:
        raise ValueError(f"num_heads must be a positive int, got {num_heads!r}")
    batch, seq_len, d_model = x.shape
    if d_model % num_heads:
        raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
    return x.view(batch, seq_len, num_heads, d_model // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``(batch, num_heads, seq, d_k) -> (batch, seq, num_heads * d_k)``: the inverse of
    :func:`split_heads` (head 0's features first, then head 1's, ...)."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError("merge_heads takes a (batch, num_heads, seq_len, d_k) tensor, got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    batch, num_heads, seq_len, d_k = x.shape
    return x.transpose(1, 2).reshape(batch, seq_len, num_heads * d_k)


PARAM_NAMES = ("W_q", "b_q", "W_k", "b_k", "W_v", "b_v", "W_o", "b_o")
"""Keys of the ``params`` dict of :func:`multi_head_attention` (``nn.Linear`` layout:
weights are ``(out_features, in_features)``, applied as ``x @ W.T + b``)."""


def _head_mask(mask: torch.Tensor | None) -> torch.Tensor | None:
    """A 3-D mask ``(batch, queries or 1, keys)`` gets a head axis so it broadcasts per head."""
    if mask is not None and isinstance(mask, torch.Tensor) and mask.dim() == 3:
        return mask.unsqueeze(1)
    return mask


def multi_head_attention(Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor,
                         params: dict[str, torch.Tensor], num_heads: int,
                         mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-head attention as a pure function of its inputs and weights.

    ``Q (batch, L, d_model)``, ``K`` and ``V`` ``(batch, S, d_model)``; ``params`` maps
    :data:`PARAM_NAMES` to tensors. ``mask`` (1 = may attend) is ``(L, S)``, ``(batch, L or 1,
    S)`` or ``(batch, heads, L, S)``. Returns ``(output (batch, L, d_model), attention_weights
    (batch, num_heads, L, S))``: project, split into heads, attend in every head at once, merge,
    and mix the heads with ``W_o``.
    """
    missing = [k for k in PARAM_NAMES if k not in params]
    if missing:
        raise ValueError(f"params is missing {missing}; it needs the keys {list(PARAM_NAMES)}")
    q = split_heads(torch.nn.functional.linear(Q, params["W_q"], params["b_q"]), num_heads)
    k = split_heads(torch.nn.functional.linear(K, params["W_k"], params["b_k"]), num_heads)
    v = split_heads(torch.nn.functional.linear(V, params["W_v"], params["b_v"]), num_heads)
    heads, weights = scaled_dot_product_attention(q, k, v, _head_mask(mask))
    output = torch.nn.functional.linear(merge_heads(heads), params["W_o"], params["b_o"])
    return output, weights


class MultiHeadAttention(torch.nn.Module):
    """The cheat-sheet version's multi-head attention: ``W_q``, ``W_k``, ``W_v`` project
    ``d_model -> d_model`` (all heads at once), :func:`scaled_dot_product_attention` runs per
    head, ``W_o`` mixes the concatenated heads.
    ``forward(Q, K, V, mask=None) -> (output, attention_weights)``."""

    def __init__(self, d_model: int, num_heads: int, bias: bool = True) -> None:
        super().__init__()
        if isinstance(d_model, bool) or not isinstance(d_model, int) or d_model < 1:
            raise ValueError(f"d_model must be a positive int, got {d_model!r}")
        if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1:
            raise ValueError(f"num_heads must be a positive int, got {num_heads!r}")
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} must be divisible by num_heads={num_heads} "
                             "so every head gets d_k = d_model // num_heads features")
        self.d_model, self.num_heads, self.d_k = d_model, num_heads, d_model // num_heads
        self.W_q = torch.nn.Linear(d_model, d_model, bias=bias)
        self.W_k = torch.nn.Linear(d_model, d_model, bias=bias)
        self.W_v = torch.nn.Linear(d_model, d_model, bias=bias)
        self.W_o = torch.nn.Linear(d_model, d_model, bias=bias)

    def params(self) -> dict[str, torch.Tensor]:
        """The weights as the dict :func:`multi_head_attention` takes (missing biases are 0)."""
        out = {}
        for name in ("q", "k", "v", "o"):
            layer = getattr(self, f"W_{name}")
            out[f"W_{name}"] = layer.weight
            out[f"b_{name}"] = (layer.bias if layer.bias is not None
                                else torch.zeros(self.d_model, dtype=layer.weight.dtype,
                                                 device=layer.weight.device))
        return out

    def forward(self, Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Self-attention is ``mha(x, x, x)``; cross-attention passes the encoder's ``K, V``."""
        for name, t in (("Q", Q), ("K", K), ("V", V)):
            if not isinstance(t, torch.Tensor) or t.dim() != 3 or t.shape[-1] != self.d_model:
                raise ValueError(f"{name} must be (batch, seq_len, d_model={self.d_model}), got "
                                 f"{tuple(t.shape) if isinstance(t, torch.Tensor) else t!r}")
        return multi_head_attention(Q, K, V, self.params(), self.num_heads, mask)
