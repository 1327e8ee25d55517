"""A BERT (encoder-only transformer), loadable from Hugging Face BERT weights (lesson 03).

Token + position + segment embeddings, normalised; then post-norm encoder layers
(``ln(x + attn(x))``, ``ln(x + mlp(x))``) whose attention is lesson 02's
:class:`~course_utils.attention.MultiHeadAttention`, **without** a causal mask: every token
sees the whole sentence. On top sit the two pre-training heads: a masked-LM head (predict the
hidden tokens, output tied to the token embedding) and a classifier on the ``[CLS]`` token
(next-sentence prediction in pre-training, any sentence label after fine-tuning).
:meth:`BERT.from_hf` copies a ``BertModel``, ``BertForPreTraining`` or
``BertForSequenceClassification`` and reproduces its hidden states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.attention import MultiHeadAttention
from course_utils.masks import padding_mask
from course_utils.model_config import ACTIVATIONS, check_config


@dataclass
class BERTConfig:
    """Sizes of a :class:`BERT`; ``d_ff`` defaults to ``4 * d_model``."""

    vocab_size: int = 1024
    max_seq_len: int = 256
    type_vocab_size: int = 2
    d_model: int = 128
    num_heads: int = 4
    num_layers: int = 4
    d_ff: int | None = None
    dropout: float = 0.0
    layer_norm_eps: float = 1e-12
    activation: str = "gelu"
    num_labels: int = 2

    def __post_init__(self) -> None:
        check_config(self, ("vocab_size", "max_seq_len", "type_vocab_size", "d_model",
                            "num_heads", "num_layers", "num_labels"))
        self.d_ff = self.d_ff or 4 * self.d_model


class BERTOutput(NamedTuple):
    """What :meth:`BERT.forward` returns."""

    last_hidden_state: torch.Tensor  # (batch, seq, d_model): one vector per token
    pooler_output: torch.Tensor  # (batch, d_model): tanh(dense([CLS]))
    logits: torch.Tensor  # (batch, num_labels): the [CLS] classifier
    mlm_logits: torch.Tensor  # (batch, seq, vocab): the masked-LM head


class EncoderLayer(nn.Module):
    """Post-norm encoder layer (as in BERT): attend, add, normalise; MLP, add, normalise."""

    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(config.d_model, config.num_heads)
        self.ln_1 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.fc = nn.Linear(config.d_model, config.d_ff)
        self.proj = nn.Linear(config.d_ff, config.d_model)
        self.ln_2 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.act = ACTIVATIONS[config.activation]
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        attended, _ = self.attn(x, x, x, mask)
        x = self.ln_1(x + self.dropout(attended))
        return self.ln_2(x + self.dropout(self.proj(self.act(self.fc(x)))))


class BERT(nn.Module):
    """Encoder-only model: ``forward(input_ids, token_type_ids, attention_mask) ->``
    :class:`BERTOutput`."""

    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.position_embedding = nn.Embedding(config.max_seq_len, config.d_model)
        self.segment_embedding = nn.Embedding(config.type_vocab_size, config.d_model)
        self.ln_embed = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_layers))
        self.pooler = nn.Linear(config.d_model, config.d_model)
        self.classifier = nn.Linear(config.d_model, config.num_labels)
        self.mlm_dense = nn.Linear(config.d_model, config.d_model)
        self.mlm_ln = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.mlm_bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_parameters(self) -> int:
        """Parameters counted once (the masked-LM output shares the token embedding)."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None) -> BERTOutput:
        """``token_type_ids``: 0 for sentence A, 1 for sentence B (default all 0).
        ``attention_mask``: 1 = token, 0 = padding (padding keys get no weight)."""
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
            raise ValueError("input_ids must be a (batch, seq_len) tensor of token ids, got "
                             f"{getattr(input_ids, 'shape', type(input_ids).__name__)}")
        batch, seq_len = input_ids.shape
        if seq_len > self.config.max_seq_len:
            raise ValueError(f"{seq_len} tokens exceed max_seq_len={self.config.max_seq_len}")
        for name, t in (("token_type_ids", token_type_ids), ("attention_mask", attention_mask)):
            if t is not None and tuple(t.shape) != (batch, seq_len):
                raise ValueError(f"{name} must have input_ids' shape {(batch, seq_len)}, "
                                 f"got {tuple(t.shape)}")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        positions = torch.arange(seq_len, device=input_ids.device).unsqueeze(0)
        x = (self.token_embedding(input_ids) + self.segment_embedding(token_type_ids)
             + self.position_embedding(positions))
        x = self.dropout(self.ln_embed(x))
        mask = None if attention_mask is None else padding_mask(attention_mask)  # (b, 1, S)
        for layer in self.layers:
            x = layer(x, mask)
        pooled = torch.tanh(self.pooler(x[:, 0]))  # the [CLS] token sums up the sequence
        logits = self.classifier(self.dropout(pooled))
        h = self.mlm_ln(ACTIVATIONS[self.config.activation](self.mlm_dense(x)))
        mlm_logits = F.linear(h, self.token_embedding.weight, self.mlm_bias)
        return BERTOutput(x, pooled, logits, mlm_logits)

    @classmethod
    def from_hf(cls, hf_model: nn.Module) -> BERT:
        """Copy a transformers ``BertModel`` (or a model with one in ``.bert``) into a BERT.

        ``BertForPreTraining`` also brings its masked-LM head and its next-sentence head (as
        the classifier); ``BertForSequenceClassification`` brings its classifier. Heads the
        Hugging Face model lacks keep their random initialisation.
        """
        base = getattr(hf_model, "bert", hf_model)
        c = getattr(base, "config", None)
        if getattr(c, "model_type", None) != "bert":
            raise TypeError("BERT.from_hf takes a transformers BertModel, BertForPreTraining or "
                            f"BertForSequenceClassification, got {type(hf_model).__name__}")
        if getattr(base, "pooler", None) is None:
            raise ValueError("the model has no pooler (add_pooling_layer=False); BERT needs it "
                             "for the [CLS] head")
        heads = getattr(hf_model, "cls", None)
        nsp = getattr(heads, "seq_relationship", None)
        classifier = getattr(hf_model, "classifier", None)
        classifier = classifier if classifier is not None else nsp
        num_labels = classifier.out_features if classifier is not None else c.num_labels
        config = BERTConfig(vocab_size=c.vocab_size, max_seq_len=c.max_position_embeddings,
                            type_vocab_size=c.type_vocab_size, d_model=c.hidden_size,
                            num_heads=c.num_attention_heads, num_layers=c.num_hidden_layers,
                            d_ff=c.intermediate_size, dropout=c.hidden_dropout_prob,
                            layer_norm_eps=c.layer_norm_eps, activation=c.hidden_act,
                            num_labels=num_labels)
        hf = base.state_dict()
        state = {"token_embedding.weight": hf["embeddings.word_embeddings.weight"],
                 "position_embedding.weight": hf["embeddings.position_embeddings.weight"],
                 "segment_embedding.weight": hf["embeddings.token_type_embeddings.weight"],
                 "ln_embed.weight": hf["embeddings.LayerNorm.weight"],
                 "ln_embed.bias": hf["embeddings.LayerNorm.bias"],
                 "pooler.weight": hf["pooler.dense.weight"],
                 "pooler.bias": hf["pooler.dense.bias"]}
        names = {"attn.W_q": "attention.self.query", "attn.W_k": "attention.self.key",
                 "attn.W_v": "attention.self.value", "attn.W_o": "attention.output.dense",
                 "ln_1": "attention.output.LayerNorm", "fc": "intermediate.dense",
                 "proj": "output.dense", "ln_2": "output.LayerNorm"}
        for i in range(c.num_hidden_layers):
            for ours, theirs in names.items():
                for p in ("weight", "bias"):
                    state[f"layers.{i}.{ours}.{p}"] = hf[f"encoder.layer.{i}.{theirs}.{p}"]
        model = cls(config)
        missing = model.load_state_dict(state, strict=False).missing_keys
        if any(not k.startswith(("classifier", "mlm_")) for k in missing):
            raise ValueError(f"could not map these weights from the Hugging Face model: {missing}")
        with torch.no_grad():
            if classifier is not None:
                model.classifier.load_state_dict(classifier.state_dict())
            mlm = getattr(heads, "predictions", None)
            if mlm is not None:
                model.mlm_dense.load_state_dict(mlm.transform.dense.state_dict())
                model.mlm_ln.load_state_dict(mlm.transform.LayerNorm.state_dict())
                model.mlm_bias.copy_(mlm.bias)
        return model.train(hf_model.training)
