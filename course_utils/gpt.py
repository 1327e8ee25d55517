"""A GPT (decoder-only transformer) to read in one sitting, loadable from GPT-2 weights (lesson 03).

Token + learned position embeddings, then pre-norm blocks (``x + attn(ln(x))``,
``x + mlp(ln(x))``) with causal self-attention, a final layer norm and an output head tied to
the token embedding. It is GPT-2's architecture, so :meth:`GPT.from_hf` loads a
``GPT2LMHeadModel`` and reproduces its logits.

What it fixes from the cheat-sheet version: that one stacks ``nn.TransformerDecoderLayer``,
whose ``forward(tgt, memory)`` needs an encoder output (``memory``) a decoder-only model does
not have, so its one-argument call fails; here a block is self-attention + MLP only. Positions
come from ``nn.Embedding(max_seq_len, d_model)`` indexed by :func:`make_position_ids` and the
mask from :func:`causal_mask_with_past`, which also cover cached generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.attention import NEG_INF, merge_heads, split_heads
from course_utils.model_config import ACTIVATIONS, check_config


@dataclass
class GPTConfig:
    """Sizes of a :class:`GPT`; ``d_ff`` defaults to ``4 * d_model`` as in GPT-2."""

    vocab_size: int = 1024
    max_seq_len: int = 256
    d_model: int = 128
    num_heads: int = 4
    num_layers: int = 4
    d_ff: int | None = None
    dropout: float = 0.0
    layer_norm_eps: float = 1e-5
    activation: str = "gelu_new"

    def __post_init__(self) -> None:
        check_config(self, ("vocab_size", "max_seq_len", "d_model", "num_heads", "num_layers"))
        self.d_ff = self.d_ff or 4 * self.d_model


def causal_mask_with_past(query_len: int, past_len: int = 0,
                          device: torch.device | str | None = None) -> torch.Tensor:
    """Boolean ``(query_len, past_len + query_len)`` mask, True = may attend.

    The queries are the *last* ``query_len`` positions: query ``i`` sits at position
    ``past_len + i`` and may see every key up to and including itself, so the allowed triangle
    is shifted right by ``past_len``. With ``past_len=0`` it is lesson 01's causal mask.
    """
    for name, value, low in (("query_len", query_len, 1), ("past_len", past_len, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    ones = torch.ones(query_len, past_len + query_len, dtype=torch.bool, device=device)
    return ones.tril(diagonal=past_len)


def make_position_ids(input_ids: torch.Tensor, past_length: int = 0) -> torch.Tensor:
    """Positions ``past_length, ..., past_length + seq_len - 1`` for every row, ``(batch, seq)``.

    With a KV cache only the new tokens go in, but they sit *after* the cached ones: their
    positions continue from ``past_length`` instead of restarting at 0.
    """
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        raise ValueError("input_ids must be a (batch, seq_len) tensor of token ids, got "
                         f"{getattr(input_ids, 'shape', type(input_ids).__name__)}")
    if isinstance(past_length, bool) or not isinstance(past_length, int) or past_length < 0:
        raise ValueError(f"past_length must be an int >= 0, got {past_length!r}")
    batch, seq_len = input_ids.shape
    positions = torch.arange(past_length, past_length + seq_len, device=input_ids.device)
    return positions.unsqueeze(0).expand(batch, seq_len)


class KVCache:
    """Every layer's keys and values ``(batch, heads, seq, d_k)`` for the tokens seen so far.

    Generating token ``t`` needs the keys and values of tokens ``0..t-1`` in every layer. They
    do not change once computed (a causal model never looks forward), so we keep them and only
    compute the new token's: one position per step instead of the whole sequence.
    """

    def __init__(self) -> None:
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []

    @property
    def seq_len(self) -> int:
        """How many positions are cached (0 for an empty cache)."""
        return self.keys[0].shape[-2] if self.keys else 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ``k, v`` to ``layer``'s cache and return all its keys and values."""
        if layer == len(self.keys):
            self.keys.append(k)
            self.values.append(v)
        elif layer < len(self.keys):
            self.keys[layer] = torch.cat([self.keys[layer], k], dim=-2)
            self.values[layer] = torch.cat([self.values[layer], v], dim=-2)
        else:
            raise ValueError(f"layer {layer} updated before layer {len(self.keys)}")
        return self.keys[layer], self.values[layer]


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     key_mask: torch.Tensor | None = None, dropout_p: float = 0.0
                     ) -> torch.Tensor:
    """Causal attention of ``q (b, h, L, d)`` over ``k, v (b, h, S, d)`` with ``S >= L``.

    The queries are the last ``L`` of the ``S`` positions. ``key_mask (b, S)`` is a tokenizer's
    attention mask (1 = token, 0 = padding). Runs on PyTorch's fused kernel; the maths is
    lesson 01's ``softmax(q k^T / sqrt(d)) v`` with :func:`causal_mask_with_past`.
    """
    L, S = q.shape[-2], k.shape[-2]
    sdpa = partial(F.scaled_dot_product_attention, dropout_p=dropout_p)
    if key_mask is None:
        if L == S:
            return sdpa(q, k, v, is_causal=True)
        if L == 1:  # one new token may see everything before it
            return sdpa(q, k, v)
        return sdpa(q, k, v, attn_mask=causal_mask_with_past(L, S - L, q.device))
    allowed = causal_mask_with_past(L, S - L, q.device) & (key_mask[:, None, None, :] != 0)
    # additive form with a finite fill: a padding query with no allowed key stays finite
    additive = torch.zeros(allowed.shape, dtype=q.dtype, device=q.device)
    return sdpa(q, k, v, attn_mask=additive.masked_fill(~allowed, NEG_INF))


def attend_with_cache(q: torch.Tensor, k_new: torch.Tensor, v_new: torch.Tensor,
                      past_k: torch.Tensor | None = None, past_v: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One KV-cache step: append the new keys/values to the cached ones, attend, return
    ``(output, all_keys, all_values)``. Shapes ``(batch, heads, seq, d_k)``."""
    k = k_new if past_k is None else torch.cat([past_k, k_new], dim=-2)
    v = v_new if past_v is None else torch.cat([past_v, v_new], dim=-2)
    return causal_attention(q, k, v), k, v


class CausalSelfAttention(nn.Module):
    """Lesson 02's multi-head attention with ``W_q, W_k, W_v`` fused into one ``W_qkv``
    (GPT-2's ``c_attn``), a causal mask, and an optional :class:`KVCache`."""

    def __init__(self, config: GPTConfig, layer_idx: int) -> None:
        super().__init__()
        self.num_heads, self.layer_idx, self.dropout_p = (config.num_heads, layer_idx,
                                                          config.dropout)
        self.W_qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.W_o = nn.Linear(config.d_model, config.d_model)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None,
                cache: KVCache | None = None) -> torch.Tensor:
        q, k, v = (split_heads(t, self.num_heads) for t in self.W_qkv(x).chunk(3, dim=-1))
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)
        y = causal_attention(q, k, v, key_mask, self.dropout_p if self.training else 0.0)
        return self.dropout(self.W_o(merge_heads(y)))


class MLP(nn.Module):
    """Position-wise feed-forward: ``d_model -> d_ff -> d_model`` with GELU (tanh form)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.d_model, config.d_ff)
        self.proj = nn.Linear(config.d_ff, config.d_model)
        self.act = ACTIVATIONS[config.activation]
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(self.act(self.fc(x))))


class Block(nn.Module):
    """Pre-norm decoder block: normalise, attend, add; normalise, MLP, add."""

    def __init__(self, config: GPTConfig, layer_idx: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.attn = CausalSelfAttention(config, layer_idx)
        self.ln_2 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None,
                cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), key_mask, cache)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Decoder-only language model: ``forward(input_ids) -> logits (batch, seq, vocab)``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.position_embedding = nn.Embedding(config.max_seq_len, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.num_layers))
        self.ln_f = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_parameters(self) -> int:
        """Parameters counted once (the output head shares the token embedding)."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                past_key_values: KVCache | None = None, use_cache: bool = False,
                position_ids: torch.Tensor | None = None
                ) -> torch.Tensor | tuple[torch.Tensor, KVCache]:
        """Logits for every position; with ``use_cache=True`` also the updated :class:`KVCache`.

        ``attention_mask (batch, past + seq)``: 1 = token, 0 = padding (padding keys get no
        weight). ``past_key_values``: the cache from the previous call; ``input_ids`` then
        holds only the new tokens.
        """
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
            raise ValueError("input_ids must be a (batch, seq_len) tensor of token ids, got "
                             f"{getattr(input_ids, 'shape', type(input_ids).__name__)}")
        past = past_key_values.seq_len if past_key_values is not None else 0
        batch, seq_len = input_ids.shape
        if past + seq_len > self.config.max_seq_len:
            raise ValueError(f"{past} cached + {seq_len} new tokens exceed the model's "
                             f"max_seq_len={self.config.max_seq_len}; shorten the input")
        if attention_mask is not None:
            if tuple(attention_mask.shape) != (batch, past + seq_len):
                raise ValueError(f"attention_mask must be (batch, past + seq_len) = "
                                 f"{(batch, past + seq_len)}, got {tuple(attention_mask.shape)}")
            if bool(attention_mask.all()):
                attention_mask = None  # nothing to hide: keep the fast causal path
        if position_ids is None:
            position_ids = make_position_ids(input_ids, past)
        x = self.dropout(self.token_embedding(input_ids) + self.position_embedding(position_ids))
        cache = past_key_values if past_key_values is not None else (
            KVCache() if use_cache else None)
        for block in self.blocks:
            x = block(x, attention_mask, cache)
        logits = F.linear(self.ln_f(x), self.token_embedding.weight)  # tied output head
        return (logits, cache) if use_cache else logits

    @classmethod
    def from_hf(cls, hf_model: nn.Module) -> GPT:
        """Copy a ``GPT2LMHeadModel`` (or ``GPT2Model``) into a new :class:`GPT`.

        GPT-2 stores its linear layers as ``Conv1D`` with the weight transposed
        (``(in, out)``), so every weight is transposed on the way in.
        """
        base = getattr(hf_model, "transformer", hf_model)
        c = getattr(base, "config", None)
        if getattr(c, "model_type", None) != "gpt2":
            raise TypeError("GPT.from_hf takes a transformers GPT2LMHeadModel or GPT2Model, "
                            f"got {type(hf_model).__name__}")
        if (not c.scale_attn_weights or c.scale_attn_by_inverse_layer_idx
                or c.reorder_and_upcast_attn or c.add_cross_attention):
            raise ValueError("this GPT-2 config uses attention options GPT does not implement "
                             "(scale_attn_weights must be True; inverse-layer scaling, "
                             "reorder_and_upcast_attn and cross-attention off)")
        head = getattr(hf_model, "lm_head", None)
        if head is not None and not torch.equal(head.weight, base.wte.weight):
            raise ValueError("the model's lm_head is not tied to its token embedding; "
                             "GPT always ties them")
        config = GPTConfig(vocab_size=c.vocab_size, max_seq_len=c.n_positions,
                           d_model=c.n_embd, num_heads=c.n_head, num_layers=c.n_layer,
                           d_ff=c.n_inner, dropout=c.resid_pdrop,
                           layer_norm_eps=c.layer_norm_epsilon,
                           activation=c.activation_function)
        hf = base.state_dict()
        state = {"token_embedding.weight": hf["wte.weight"],
                 "position_embedding.weight": hf["wpe.weight"],
                 "ln_f.weight": hf["ln_f.weight"], "ln_f.bias": hf["ln_f.bias"]}
        names = {"ln_1": "ln_1", "ln_2": "ln_2", "attn.W_qkv": "attn.c_attn",
                 "attn.W_o": "attn.c_proj", "mlp.fc": "mlp.c_fc", "mlp.proj": "mlp.c_proj"}
        for i in range(c.n_layer):
            for ours, theirs in names.items():
                weight = hf[f"h.{i}.{theirs}.weight"]
                state[f"blocks.{i}.{ours}.weight"] = weight if ours.startswith("ln") else weight.T
                state[f"blocks.{i}.{ours}.bias"] = hf[f"h.{i}.{theirs}.bias"]
        model = cls(config)
        model.load_state_dict(state)
        return model.train(hf_model.training)
