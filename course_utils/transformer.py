"""The original Transformer (lesson 02): encoder, decoder with cross-attention, and a translator.

Built on lesson 02's :class:`~course_utils.attention.MultiHeadAttention`: self-attention is
``mha(x, x, x)``; **cross-attention** is the same module with queries from the decoder and keys
and values from the encoder's output, ``mha(x, memory, memory)``. An encoder layer has two
sub-layers (self-attention, MLP), a decoder layer three (causal self-attention,
cross-attention, MLP), each wrapped in a residual connection and a LayerNorm:

* post-norm (the paper, ``nn.Transformer``'s default): ``x = norm(x + sublayer(x))``;
* pre-norm (``norm_first=True``, as in GPT-2 and most later models):
  ``x = x + sublayer(norm(x))``.

The layers are pure functions of their inputs and a dict of weights (:func:`encoder_layer`,
:func:`decoder_layer`, as :func:`~course_utils.attention.multi_head_attention` is), wrapped in
modules whose :meth:`EncoderDecoder.from_torch` copies a ``torch.nn.Transformer``. Masks follow
the course: an *attention mask* ``(batch, len)`` holds 1 / ``True`` for real tokens and 0 for
padding; the target always gets the causal mask.

:class:`Translator` adds word embeddings, sinusoidal positions and an output head, and
translates with :func:`greedy_decode`, caching the decoder's self-attention keys/values and the
cross-attention keys/values of the source (computed once per sentence).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import masks
from course_utils.attention import (
    MultiHeadAttention,
    merge_heads,
    multi_head_attention,
    scaled_dot_product_attention,
    split_heads,
)
from course_utils.model_config import ACTIVATIONS

Params = dict[str, dict[str, torch.Tensor]]

# --------------------------------------------------------------------------- pure functions


def _key_mask(attention_mask: torch.Tensor | None, batch: int, length: int,
              what: str) -> torch.Tensor | None:
    """A ``(batch, len)`` attention mask (1 = token) -> the ``(batch, 1, len)`` key mask."""
    if attention_mask is None:
        return None
    if not isinstance(attention_mask, torch.Tensor):
        attention_mask = torch.as_tensor(attention_mask)
    if attention_mask.dim() != 2 or tuple(attention_mask.shape) != (batch, length):
        raise ValueError(f"{what} must be (batch, len) = ({batch}, {length}) with 1 for tokens "
                         f"and 0 for padding, got shape {tuple(attention_mask.shape)}")
    return masks.padding_mask(attention_mask)


def cross_attention(x: torch.Tensor, memory: torch.Tensor, params: dict[str, torch.Tensor],
                    num_heads: int, src_attention_mask: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Queries from the decoder's ``x (batch, T, d)``, keys and values from the encoder's
    ``memory (batch, S, d)``: returns ``(output (batch, T, d), weights (batch, heads, T, S))``.

    ``src_attention_mask (batch, S)`` (1 = source token) blocks the padded source positions
    for every query: as a key mask ``(batch, 1, S)``. No causal mask: the whole source is
    known before the first target word is written.
    """
    mask = _key_mask(src_attention_mask, memory.shape[0], memory.shape[1], "src_attention_mask")
    return multi_head_attention(x, memory, memory, params, num_heads, mask)


def layer_norm(x: torch.Tensor, params: dict[str, torch.Tensor], eps: float = 1e-5
               ) -> torch.Tensor:
    """LayerNorm over the features with ``params["weight"]`` and ``params["bias"]``."""
    return F.layer_norm(x, x.shape[-1:], params["weight"], params["bias"], eps)


def feed_forward(x: torch.Tensor, params: dict[str, torch.Tensor],
                 activation: str = "relu") -> torch.Tensor:
    """The position-wise MLP: ``linear2(activation(linear1(x)))``, ``d -> dim_ff -> d``."""
    hidden = F.linear(x, params["linear1.weight"], params["linear1.bias"])
    return F.linear(ACTIVATIONS[activation](hidden), params["linear2.weight"],
                    params["linear2.bias"])


def _sublayer(x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor],
              norm: dict[str, torch.Tensor], norm_first: bool, eps: float) -> torch.Tensor:
    """One residual sub-layer: post-norm ``norm(x + fn(x))`` or pre-norm ``x + fn(norm(x))``."""
    if norm_first:
        return x + fn(layer_norm(x, norm, eps))
    return layer_norm(x + fn(x), norm, eps)


def encoder_layer(x: torch.Tensor, params: Params, num_heads: int,
                  src_attention_mask: torch.Tensor | None = None, norm_first: bool = False,
                  activation: str = "relu", eps: float = 1e-5) -> torch.Tensor:
    """Self-attention over the (unpadded) source, then the MLP; residuals and norms around each."""
    mask = _key_mask(src_attention_mask, x.shape[0], x.shape[1], "src_attention_mask")
    x = _sublayer(x, lambda h: multi_head_attention(h, h, h, params["self_attn"], num_heads,
                                                    mask)[0],
                  params["norm1"], norm_first, eps)
    return _sublayer(x, lambda h: feed_forward(h, params["ff"], activation), params["norm2"],
                     norm_first, eps)


def _target_mask(tgt_attention_mask: torch.Tensor | None, batch: int, length: int
                 ) -> torch.Tensor:
    causal = masks.causal_mask(length)
    pad = _key_mask(tgt_attention_mask, batch, length, "tgt_attention_mask")
    return causal if pad is None else masks.combine_masks(causal, pad)


def _decoder_layer(x, memory, params, num_heads, src_attention_mask, tgt_attention_mask,
                   norm_first, activation, eps):
    self_mask = _target_mask(tgt_attention_mask, x.shape[0], x.shape[1])
    x = _sublayer(x, lambda h: multi_head_attention(h, h, h, params["self_attn"], num_heads,
                                                    self_mask)[0],
                  params["norm1"], norm_first, eps)
    weights = []

    def cross(h):
        out, w = cross_attention(h, memory, params["cross_attn"], num_heads, src_attention_mask)
        weights.append(w)
        return out

    x = _sublayer(x, cross, params["norm2"], norm_first, eps)
    x = _sublayer(x, lambda h: feed_forward(h, params["ff"], activation), params["norm3"],
                  norm_first, eps)
    return x, weights[0]


def decoder_layer(x: torch.Tensor, memory: torch.Tensor, params: Params, num_heads: int,
                  src_attention_mask: torch.Tensor | None = None,
                  tgt_attention_mask: torch.Tensor | None = None, norm_first: bool = False,
                  activation: str = "relu", eps: float = 1e-5) -> torch.Tensor:
    """One decoder layer: causal self-attention, cross-attention over ``memory``, MLP.

    Post-norm (the default) computes ``x = norm1(x + self_attn(x))``, then
    ``x = norm2(x + cross_attn(x, memory))``, then ``x = norm3(x + ff(x))``. ``params`` holds
    ``self_attn`` and ``cross_attn`` (:data:`~course_utils.attention.PARAM_NAMES` dicts),
    ``ff`` (``linear1.weight`` ...) and ``norm1``-``norm3`` (``weight``, ``bias``).
    """
    return _decoder_layer(x, memory, params, num_heads, src_attention_mask, tgt_attention_mask,
                          norm_first, activation, eps)[0]


def greedy_decode(model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                  src: torch.Tensor, bos_id: int, eos_id: int, pad_id: int,
                  max_new_tokens: int) -> torch.Tensor:
    """Sequence-to-sequence greedy decoding of a batch of sources.

    ``model(src, tgt) -> logits (batch, len(tgt), vocab)``. Every row starts from ``bos_id``
    and appends its most likely next token; a row that has produced ``eos_id`` is finished and
    gets ``pad_id`` from then on; the loop stops when every row is finished or after
    ``max_new_tokens`` steps. Returns the generated tokens ``(batch, steps)`` without the
    start token (each finished row ends with ``eos_id``, then padding).
    """
    batch = src.shape[0]
    tgt = torch.full((batch, 1), bos_id, dtype=torch.long, device=src.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
    for _ in range(max_new_tokens):
        next_token = model(src, tgt)[:, -1].argmax(dim=-1)
        next_token = torch.where(finished, torch.full_like(next_token, pad_id), next_token)
        tgt = torch.cat([tgt, next_token[:, None]], dim=1)
        finished = finished | (next_token == eos_id)
        if bool(finished.all()):
            break
    return tgt[:, 1:]


# --------------------------------------------------------------------------- modules


def _check_int(name: str, value: int, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


class _Layer(nn.Module):
    """What encoder and decoder layers share: the MLP, the norms and the weights dict."""

    def __init__(self, d_model: int, num_heads: int, dim_feedforward: int, activation: str,
                 norm_first: bool, eps: float, num_norms: int) -> None:
        super().__init__()
        _check_int("dim_feedforward", dim_feedforward)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got "
                             f"{activation!r}")
        self.num_heads, self.activation, self.norm_first, self.eps = (num_heads, activation,
                                                                      bool(norm_first), eps)
        self.self_attn = MultiHeadAttention(d_model, num_heads)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        for i in range(1, num_norms + 1):
            setattr(self, f"norm{i}", nn.LayerNorm(d_model, eps=eps))
        self._num_norms = num_norms

    def params(self) -> Params:
        """The weights as the nested dict :func:`encoder_layer` / :func:`decoder_layer` take."""
        out: Params = {"self_attn": self.self_attn.params(),
                       "ff": {f"linear{i}.{p}": getattr(getattr(self, f"linear{i}"), p)
                              for i in (1, 2) for p in ("weight", "bias")}}
        if hasattr(self, "cross_attn"):
            out["cross_attn"] = self.cross_attn.params()
        for i in range(1, self._num_norms + 1):
            norm = getattr(self, f"norm{i}")
            out[f"norm{i}"] = {"weight": norm.weight, "bias": norm.bias}
        return out


class EncoderLayer(_Layer):
    """Self-attention + MLP, each with a residual and a LayerNorm (post-norm unless
    ``norm_first``). ``forward(x, src_attention_mask=None) -> x``."""

    def __init__(self, d_model: int, num_heads: int, dim_feedforward: int = 2048,
                 activation: str = "relu", norm_first: bool = False, eps: float = 1e-5) -> None:
        super().__init__(d_model, num_heads, dim_feedforward, activation, norm_first, eps, 2)

    def forward(self, x: torch.Tensor, src_attention_mask: torch.Tensor | None = None
                ) -> torch.Tensor:
        return encoder_layer(x, self.params(), self.num_heads, src_attention_mask,
                             self.norm_first, self.activation, self.eps)


class DecoderLayer(_Layer):
    """Causal self-attention, cross-attention over the encoder's output, MLP; a residual and a
    LayerNorm around each. ``forward(x, memory, src_attention_mask, tgt_attention_mask)``."""

    def __init__(self, d_model: int, num_heads: int, dim_feedforward: int = 2048,
                 activation: str = "relu", norm_first: bool = False, eps: float = 1e-5) -> None:
        super().__init__(d_model, num_heads, dim_feedforward, activation, norm_first, eps, 3)
        self.cross_attn = MultiHeadAttention(d_model, num_heads)

    def forward(self, x: torch.Tensor, memory: torch.Tensor,
                src_attention_mask: torch.Tensor | None = None,
                tgt_attention_mask: torch.Tensor | None = None, need_weights: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``need_weights=True`` also returns the cross-attention weights (batch, heads, T, S)."""
        out, weights = _decoder_layer(x, memory, self.params(), self.num_heads,
                                      src_attention_mask, tgt_attention_mask, self.norm_first,
                                      self.activation, self.eps)
        return (out, weights) if need_weights else out

    # ---- cached decoding: one new target position at a time

    def cross_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The cross-attention keys and values of a source, ``(batch, heads, S, d_k)`` each:
        they depend only on the source, so a translation computes them once."""
        mha = self.cross_attn
        return (split_heads(mha.W_k(memory), mha.num_heads),
                split_heads(mha.W_v(memory), mha.num_heads))

    def step(self, x: torch.Tensor, cache: list[torch.Tensor], cross_kv: tuple[torch.Tensor,
             torch.Tensor], memory_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the layer on the newest target position ``x (batch, 1, d)``.

        ``cache`` is ``[keys, values]`` of the earlier positions' self-attention (empty at the
        first step) and is extended in place. Returns ``(x, cross_weights (batch, heads, 1, S))``.
        """
        weights = []

        def self_attn(h):
            mha = self.self_attn
            q, k, v = (split_heads(getattr(mha, f"W_{n}")(h), mha.num_heads) for n in "qkv")
            if cache:
                k, v = torch.cat([cache[0], k], dim=-2), torch.cat([cache[1], v], dim=-2)
            cache[:] = [k, v]
            out, _ = scaled_dot_product_attention(q, k, v)  # the newest sees all the past
            return mha.W_o(merge_heads(out))

        def cross(h):
            mha = self.cross_attn
            q = split_heads(mha.W_q(h), mha.num_heads)
            out, w = scaled_dot_product_attention(q, *cross_kv, memory_mask)
            weights.append(w)
            return mha.W_o(merge_heads(out))

        p = self.params()
        x = _sublayer(x, self_attn, p["norm1"], self.norm_first, self.eps)
        x = _sublayer(x, cross, p["norm2"], self.norm_first, self.eps)
        x = _sublayer(x, lambda h: feed_forward(h, p["ff"], self.activation), p["norm3"],
                      self.norm_first, self.eps)
        return x, weights[0]


class EncoderDecoder(nn.Module):
    """``nn.Transformer`` rebuilt on the course's attention: a stack of encoder layers and a
    final norm, a stack of decoder layers and a final norm.

    ``forward(src, tgt, src_attention_mask=None, tgt_attention_mask=None)`` takes embedded
    ``(batch, len, d_model)`` sequences and returns ``(batch, len(tgt), d_model)``: what
    ``nn.Transformer(batch_first=True)`` returns with a causal ``tgt_mask`` and key-padding
    masks made from the attention masks.
    """

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048,
                 activation: str = "relu", norm_first: bool = False,
                 layer_norm_eps: float = 1e-5) -> None:
        super().__init__()
        _check_int("num_encoder_layers", num_encoder_layers)
        _check_int("num_decoder_layers", num_decoder_layers)
        self.d_model, self.nhead = d_model, nhead
        kw = dict(dim_feedforward=dim_feedforward, activation=activation, norm_first=norm_first,
                  eps=layer_norm_eps)
        self.encoder_layers = nn.ModuleList(EncoderLayer(d_model, nhead, **kw)
                                            for _ in range(num_encoder_layers))
        self.decoder_layers = nn.ModuleList(DecoderLayer(d_model, nhead, **kw)
                                            for _ in range(num_decoder_layers))
        self.encoder_norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.decoder_norm = nn.LayerNorm(d_model, eps=layer_norm_eps)

    def _check(self, name: str, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"{name} must be an embedded (batch, len, d_model={self.d_model}) "
                             f"tensor, got {tuple(getattr(x, 'shape', ())) or type(x).__name__}"
                             " (token ids go through an embedding first, as Translator does)")

    def encode(self, src: torch.Tensor, src_attention_mask: torch.Tensor | None = None
               ) -> torch.Tensor:
        """The encoder's output, the decoder's ``memory``: ``(batch, S, d_model)``."""
        self._check("src", src)
        for layer in self.encoder_layers:
            src = layer(src, src_attention_mask)
        return self.encoder_norm(src)

    def decode(self, tgt: torch.Tensor, memory: torch.Tensor,
               src_attention_mask: torch.Tensor | None = None,
               tgt_attention_mask: torch.Tensor | None = None, need_weights: bool = False
               ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """The decoder stack over the whole target; ``need_weights`` adds each layer's
        cross-attention weights ``(batch, heads, T, S)``."""
        self._check("tgt", tgt)
        if memory.shape[0] != tgt.shape[0]:
            raise ValueError(f"src and tgt must have the same batch size, got {memory.shape[0]} "
                             f"and {tgt.shape[0]}")
        weights = []
        for layer in self.decoder_layers:
            tgt, w = layer(tgt, memory, src_attention_mask, tgt_attention_mask, need_weights=True)
            weights.append(w)
        out = self.decoder_norm(tgt)
        return (out, weights) if need_weights else out

    def forward(self, src: torch.Tensor, tgt: torch.Tensor,
                src_attention_mask: torch.Tensor | None = None,
                tgt_attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        memory = self.encode(src, src_attention_mask)
        return self.decode(tgt, memory, src_attention_mask, tgt_attention_mask)

    @classmethod
    def from_torch(cls, t: nn.Transformer) -> EncoderDecoder:
        """A copy of ``torch.nn.Transformer(batch_first=True, ...)`` with the same weights."""
        if not isinstance(t, nn.Transformer):
            raise TypeError(f"from_torch takes a torch.nn.Transformer, got {type(t).__name__}")
        enc0 = t.encoder.layers[0]
        if not t.batch_first:
            raise ValueError("this nn.Transformer has batch_first=False: it takes (len, batch, "
                             "d_model) tensors. Build it with batch_first=True (the course's "
                             "layout, (batch, len, d_model)).")
        if enc0.linear1.bias is None:
            raise ValueError("nn.Transformer(bias=False) is not supported: the course's layers "
                             "have biases")
        names = {F.relu: "relu", F.gelu: "gelu"}
        if enc0.activation not in names:
            raise ValueError(f"only activation='relu' or 'gelu' is supported, got "
                             f"{enc0.activation!r}")
        if t.encoder.norm is None or t.decoder.norm is None:
            raise ValueError("the encoder and the decoder need their final LayerNorm")
        model = cls(t.d_model, t.nhead, len(t.encoder.layers), len(t.decoder.layers),
                    enc0.linear1.out_features, names[enc0.activation], enc0.norm_first,
                    enc0.norm1.eps).to(enc0.linear1.weight.dtype)
        with torch.no_grad():
            for ours, theirs in zip(model.encoder_layers, t.encoder.layers, strict=True):
                _copy_layer(ours, theirs, {"self_attn": "self_attn"})
            for ours, theirs in zip(model.decoder_layers, t.decoder.layers, strict=True):
                _copy_layer(ours, theirs, {"self_attn": "self_attn",
                                           "cross_attn": "multihead_attn"})
            model.encoder_norm.load_state_dict(t.encoder.norm.state_dict())
            model.decoder_norm.load_state_dict(t.decoder.norm.state_dict())
        return model


def _copy_layer(ours: _Layer, theirs: nn.Module, attentions: dict[str, str]) -> None:
    for our_name, their_name in attentions.items():
        mha, src = getattr(ours, our_name), getattr(theirs, their_name)
        for part, (w, b) in zip("qkv", zip(src.in_proj_weight.chunk(3), src.in_proj_bias.chunk(3),
                                           strict=True), strict=True):
            getattr(mha, f"W_{part}").weight.copy_(w)
            getattr(mha, f"W_{part}").bias.copy_(b)
        mha.W_o.load_state_dict(src.out_proj.state_dict())
    for name in ("linear1", "linear2", "norm1", "norm2", "norm3"):
        if hasattr(ours, name):
            getattr(ours, name).load_state_dict(getattr(theirs, name).state_dict())


# --------------------------------------------------------------------------- the translator

SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
_WORD = re.compile(r"\w+|[^\w\s]")


class WordVocab:
    """A word-level vocabulary for the course's English and Lingo sentences.

    ``encode("The cat sees the ball.")`` lower-cases and splits off the punctuation; ``decode``
    joins the words back with a capital letter and the full stop attached, so the output is
    written like the data set's targets. Ids 0-3 are ``<pad>``, ``<s>``, ``</s>``, ``<unk>``.
    """

    def __init__(self, words: Sequence[str]) -> None:
        self.itos = list(SPECIALS) + sorted(set(words) - set(SPECIALS))
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = range(4)

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> WordVocab:
        return cls([w for t in texts for w in cls.words(t)])

    @staticmethod
    def words(text: str) -> list[str]:
        if not isinstance(text, str):
            raise TypeError(f"expected a sentence (str), got {type(text).__name__}")
        return _WORD.findall(text.lower())

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str, add_eos: bool = True) -> list[int]:
        ids = [self.stoi.get(w, self.unk_id) for w in self.words(text)]
        return ids + [self.eos_id] if add_eos else ids

    def unknown_words(self, text: str) -> list[str]:
        return [w for w in self.words(text) if w not in self.stoi]

    def tokens(self, ids: Sequence[int]) -> list[str]:
        """The words of ``ids`` up to (not including) the first end or padding token."""
        out = []
        for i in (int(i) for i in ids):
            if i in (self.eos_id, self.pad_id):
                break
            out.append(self.itos[i])
        return out

    def decode(self, ids: Sequence[int]) -> str:
        text = " ".join(self.tokens(ids))
        text = re.sub(r" ([.,!?])", r"\1", text)
        return text[:1].upper() + text[1:]


@dataclass
class TranslatorConfig:
    """Sizes of a :class:`Translator` (saved next to its weights as ``config.json``)."""

    vocab_size: int
    d_model: int = 64
    nhead: int = 4
    num_encoder_layers: int = 2
    num_decoder_layers: int = 2
    dim_feedforward: int = 128
    max_len: int = 32
    norm_first: bool = False
    activation: str = "relu"


def sinusoidal_positions(max_len: int, d_model: int) -> torch.Tensor:
    """The paper's fixed position encodings ``(max_len, d_model)``: sin on even features, cos on
    odd ones, with wavelengths from 2 pi to 10000 * 2 pi."""
    position = torch.arange(max_len, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32)
                     * (-math.log(10000.0) / d_model))
    pe = torch.zeros(max_len, d_model)
    pe[:, 0::2] = torch.sin(position * freq)
    pe[:, 1::2] = torch.cos(position * freq)[:, : d_model // 2]
    return pe


class Translator(nn.Module):
    """Token embeddings + sinusoidal positions + :class:`EncoderDecoder` + an output head.

    ``forward(src_ids, tgt_ids, src_attention_mask, tgt_attention_mask) -> logits``;
    :meth:`generate` translates with greedy decoding; :meth:`translate` takes and returns text.
    One vocabulary (:class:`WordVocab`) covers both languages; the source and target keep
    separate embeddings.
    """

    def __init__(self, config: TranslatorConfig, vocab: WordVocab) -> None:
        super().__init__()
        if config.vocab_size != len(vocab):
            raise ValueError(f"config.vocab_size={config.vocab_size} but the vocabulary has "
                             f"{len(vocab)} words")
        self.config, self.vocab = config, vocab
        d = config.d_model
        self.src_embed = nn.Embedding(config.vocab_size, d)
        self.tgt_embed = nn.Embedding(config.vocab_size, d)
        self.register_buffer("positions", sinusoidal_positions(config.max_len, d),
                             persistent=False)
        self.transformer = EncoderDecoder(d, config.nhead, config.num_encoder_layers,
                                          config.num_decoder_layers, config.dim_feedforward,
                                          config.activation, config.norm_first)
        self.head = nn.Linear(d, config.vocab_size)

    def _embed(self, table: nn.Embedding, ids: torch.Tensor, offset: int = 0) -> torch.Tensor:
        if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.is_floating_point():
            raise ValueError("token ids must be a (batch, len) integer tensor, got "
                             f"{getattr(ids, 'shape', type(ids).__name__)}")
        if offset + ids.shape[1] > self.config.max_len:
            raise ValueError(f"{offset + ids.shape[1]} positions are more than this translator's "
                             f"context of max_len={self.config.max_len}: shorten the sentence "
                             "(or lower max_new_tokens)")
        pos = self.positions[offset: offset + ids.shape[1]]
        return table(ids) * math.sqrt(self.config.d_model) + pos

    def encode(self, src_ids: torch.Tensor, src_attention_mask: torch.Tensor | None = None
               ) -> torch.Tensor:
        return self.transformer.encode(self._embed(self.src_embed, src_ids), src_attention_mask)

    def forward(self, src_ids: torch.Tensor, tgt_ids: torch.Tensor,
                src_attention_mask: torch.Tensor | None = None,
                tgt_attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        memory = self.encode(src_ids, src_attention_mask)
        out = self.transformer.decode(self._embed(self.tgt_embed, tgt_ids), memory,
                                      src_attention_mask, tgt_attention_mask)
        return self.head(out)

    def batch(self, texts: Sequence[str], add_bos: bool = False
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ids ``(batch, len)`` and their attention mask for a list of sentences."""
        if isinstance(texts, str):
            texts = [texts]
        rows = [([self.vocab.bos_id] if add_bos else []) + self.vocab.encode(t) for t in texts]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.vocab.pad_id, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
        return ids, (ids != self.vocab.pad_id).long()

    @torch.no_grad()
    def generate(self, src_ids: torch.Tensor, src_attention_mask: torch.Tensor | None = None,
                 max_new_tokens: int | None = None, use_cache: bool = True,
                 return_cross_attention: bool = False
                 ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Greedy translation of a batch: ``(batch, steps)`` ids ending in ``</s>`` then padding.

        With ``use_cache`` the source is encoded once, each decoder layer's cross-attention
        keys/values are computed once, and each step feeds only the newest target token (its
        self-attention keys/values are appended to a cache). Without it every step reruns the
        decoder on the whole prefix; both give the same tokens. ``return_cross_attention`` adds
        each layer's weights ``(batch, heads, steps, S)`` (cached decoding only).
        """
        if max_new_tokens is None:
            max_new_tokens = self.config.max_len - 1
        _check_int("max_new_tokens", max_new_tokens)
        if max_new_tokens + 1 > self.config.max_len:
            raise ValueError(f"max_new_tokens={max_new_tokens} plus the start token is more "
                             f"than this translator's context of max_len={self.config.max_len}")
        if return_cross_attention and not use_cache:
            raise ValueError("return_cross_attention needs use_cache=True")
        v = self.vocab
        memory = self.encode(src_ids, src_attention_mask)
        key_mask = _key_mask(src_attention_mask, *src_ids.shape, "src_attention_mask")
        if not use_cache:
            def full(src, tgt):
                out = self.transformer.decode(self._embed(self.tgt_embed, tgt), memory,
                                              src_attention_mask)
                return self.head(out)
            return greedy_decode(full, src_ids, v.bos_id, v.eos_id, v.pad_id, max_new_tokens)
        layers = self.transformer.decoder_layers
        head_mask = None if key_mask is None else key_mask.unsqueeze(1)
        cross_kv = [layer.cross_kv(memory) for layer in layers]
        caches: list[list[torch.Tensor]] = [[] for _ in layers]
        weights: list[list[torch.Tensor]] = [[] for _ in layers]

        def step(src, tgt):
            pos = tgt.shape[1] - 1
            x = self._embed(self.tgt_embed, tgt[:, -1:], offset=pos)
            for i, layer in enumerate(layers):
                x, w = layer.step(x, caches[i], cross_kv[i], head_mask)
                weights[i].append(w)
            return self.head(self.transformer.decoder_norm(x))

        out = greedy_decode(step, src_ids, v.bos_id, v.eos_id, v.pad_id, max_new_tokens)
        if return_cross_attention:
            return out, [torch.cat(w, dim=2) for w in weights]
        return out

    def translate(self, texts: str | Sequence[str], use_cache: bool = True) -> list[str]:
        """English sentences in, Lingo sentences out (words outside the vocabulary are refused)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        for t in texts:
            unknown = self.vocab.unknown_words(t)
            if unknown:
                raise ValueError(f"{t!r} has words this translator never saw: {unknown}. Use "
                                 "the course's words (course_utils.data.world.LINGO)")
        ids, mask = self.batch(texts)
        out = self.generate(ids, mask, use_cache=use_cache)
        return [self.vocab.decode(row) for row in out.tolist()]

    # ---- saving and loading (safetensors + config.json)

    def save(self, directory: str | Path) -> Path:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()},
                  directory / "model.safetensors")
        (directory / "config.json").write_text(json.dumps(
            {"model_type": "course-translator", **asdict(self.config),
             "vocab": self.vocab.itos}, indent=1) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Translator:
        from safetensors.torch import load_file

        directory = Path(directory)
        if not (directory / "config.json").exists():
            raise FileNotFoundError(f"no translator in {directory}; rebuild it with `python -m "
                                    "course_utils.pretrained build --only course-translator`")
        cfg = json.loads((directory / "config.json").read_text())
        cfg.pop("model_type", None)
        vocab = WordVocab(cfg.pop("vocab"))
        model = cls(TranslatorConfig(**cfg), vocab)
        model.load_state_dict(load_file(directory / "model.safetensors"))
        return model.eval()


def load_translator(name_or_path: str | Path = "course-translator") -> Translator:
    """The bundled English -> Lingo translator (or one saved with :meth:`Translator.save`)."""
    if str(name_or_path) == "course-translator":
        from course_utils.pretrained import asset_path

        name_or_path = asset_path("course-translator")
    return Translator.load(name_or_path)


__all__ = ["ACTIVATIONS", "DecoderLayer", "EncoderDecoder", "EncoderLayer", "Translator",
           "TranslatorConfig", "WordVocab", "cross_attention", "decoder_layer", "encoder_layer",
           "feed_forward", "greedy_decode", "layer_norm", "load_translator",
           "sinusoidal_positions"]
