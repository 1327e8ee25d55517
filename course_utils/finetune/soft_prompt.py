"""Prompt tuning by hand (lesson 06): what ``peft``'s prompt tuning feeds the frozen model.

Prompt tuning trains ``n`` *virtual token* embeddings, a tensor ``prompt`` of shape
``(n, d_model)``, and nothing else. Each batch is then run as

- ``inputs_embeds``: the prompt (the same for every example) in front of the token
  embeddings, ``(batch, n + seq, d_model)``;
- ``attention_mask``: ones for the ``n`` virtual positions in front of the batch's own mask
  (every real token may attend to the prompt);
- ``labels``: ``-100`` (ignored by the loss) on the virtual positions in front of the labels.

P-tuning (``peft``'s ``PromptEncoderConfig``) feeds the model the same way, but *produces*
the ``n`` embeddings with a small trainable network (an MLP or LSTM, the prompt encoder)
from its own embedding table, instead of training them directly.
"""

from __future__ import annotations

import torch
from torch import nn

IGNORE_INDEX = -100  # the label that PyTorch's cross-entropy (and transformers) skips


def soft_prompt_inputs(prompt: torch.Tensor, input_ids: torch.Tensor,
                       attention_mask: torch.Tensor | None, labels: torch.Tensor | None,
                       embedding: nn.Module) -> dict[str, torch.Tensor | None]:
    """``inputs_embeds``, ``attention_mask`` and ``labels`` with ``prompt`` prepended, as
    ``peft``'s prompt tuning builds them (a ``None`` mask or labels stays ``None``)."""
    if prompt.dim() != 2:
        raise ValueError(f"prompt must be (num_virtual_tokens, d_model), got shape "
                         f"{tuple(prompt.shape)}")
    batch, n = input_ids.shape[0], prompt.shape[0]
    embeds = embedding(input_ids)
    virtual = prompt.to(embeds.dtype).unsqueeze(0).expand(batch, -1, -1)
    out = {"inputs_embeds": torch.cat([virtual, embeds], dim=1), "attention_mask": None,
           "labels": None}
    if attention_mask is not None:
        ones = torch.ones(batch, n, dtype=attention_mask.dtype, device=attention_mask.device)
        out["attention_mask"] = torch.cat([ones, attention_mask], dim=1)
    if labels is not None:
        ignore = torch.full((batch, n), IGNORE_INDEX, dtype=labels.dtype, device=labels.device)
        out["labels"] = torch.cat([ignore, labels], dim=1)
    return out


__all__ = ["IGNORE_INDEX", "soft_prompt_inputs"]
