"""Perplexity of a causal language model, with a sliding window for long texts (lesson 07).

Perplexity is ``exp`` of the mean negative log-likelihood per predicted token. A text longer
than the model's context is scored in overlapping windows (the Hugging Face "perplexity of
fixed-length models" method): each window moves ``stride`` tokens and only scores the tokens
no earlier window scored, so every token is predicted once, with at least
``max_length - stride`` tokens of context (except near the start of the text).

:func:`perplexity`, :func:`windows` and :func:`token_logprobs` are the LM layer's
(:mod:`course_utils.lm.scoring`, also used by lesson 08's quantization table); the lesson's
exercise, :func:`perplexity_from_logprobs`, is here.
"""

from __future__ import annotations

import torch

from course_utils.lm.scoring import perplexity, token_logprobs, windows


def perplexity_from_logprobs(token_logprobs: torch.Tensor,
                             mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sequence perplexity ``exp(-mean log p)`` over the tokens where ``mask`` is 1.

    ``token_logprobs`` has shape ``(batch, T)`` (natural logs); ``mask`` (same shape, bool or
    0/1) marks real tokens, so padding neither adds log-probability nor counts as a token.
    """
    if not isinstance(token_logprobs, torch.Tensor) or token_logprobs.dim() != 2:
        raise ValueError("token_logprobs must be a (batch, T) tensor of log-probabilities")
    if mask is None:
        mask = torch.ones_like(token_logprobs)
    if mask.shape != token_logprobs.shape:
        raise ValueError(f"mask has shape {tuple(mask.shape)}, token_logprobs "
                         f"{tuple(token_logprobs.shape)}: they must match")
    keep = mask.bool()
    total = token_logprobs.masked_fill(~keep, 0.0).sum(dim=-1)  # padding may hold anything
    nll = -total / keep.sum(dim=-1).to(token_logprobs.dtype)
    return nll.exp()


__all__ = ["perplexity", "perplexity_from_logprobs", "token_logprobs", "windows"]
