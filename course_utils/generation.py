"""Turning logits into text: greedy, temperature, top-k and top-p sampling, and generate().

The filters are pure functions on a ``(..., vocab)`` tensor of logits, so lesson 04's sampling
widget and the tests use them without a model. A filtered-out token gets ``-inf``, which the
softmax turns into probability exactly 0. :func:`generate` runs a :class:`~course_utils.gpt.GPT`
token by token, with the KV cache (:class:`KVCache`, kept in :mod:`course_utils.gpt` next to
the attention that fills it) or without it.
"""

from __future__ import annotations

import torch

from course_utils.gpt import GPT, KVCache

__all__ = ["KVCache", "apply_temperature", "generate", "next_token_distribution",
           "sample_next_token", "top_k_filter", "top_p_filter"]


def _check_logits(logits: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.dim() < 1:
        raise TypeError("logits must be a floating-point tensor of shape (..., vocab_size), got "
                        f"{getattr(logits, 'dtype', type(logits).__name__)}")


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide the logits by ``temperature``: below 1 sharpens the distribution, above 1
    flattens it. (Temperature 0 means greedy: see :func:`next_token_distribution`.)"""
    _check_logits(logits)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}; use temperature=0 in "
                         "next_token_distribution (or greedy decoding) for argmax")
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int, filter_value: float = float("-inf")
                 ) -> torch.Tensor:
    """Keep the ``k`` largest logits in each row (ties with the k-th are kept); the rest get
    ``filter_value``. Returns a new tensor."""
    _check_logits(logits)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    k = min(k, logits.shape[-1])
    kth_largest = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth_largest, filter_value)


def top_p_filter(logits: torch.Tensor, p: float, filter_value: float = float("-inf"),
                 min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most likely tokens whose probabilities add up
    to at least ``p``; the rest get ``filter_value``. Returns a new tensor."""
    _check_logits(logits)
    if not 0.0 < p <= 1.0:
        raise ValueError(f"p must be in (0, 1], got {p}")
    # From the least likely up: drop tokens while their total probability stays <= 1 - p.
    sorted_logits, order = torch.sort(logits, dim=-1)
    mass_up_to = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove_sorted = mass_up_to <= 1 - p
    remove_sorted[..., -min_tokens_to_keep:] = False
    remove = remove_sorted.scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, filter_value)


def next_token_distribution(logits: torch.Tensor, temperature: float = 1.0,
                            top_k: int | None = None, top_p: float | None = None
                            ) -> torch.Tensor:
    """Probabilities of the next token after temperature, top-k and top-p (in that order, as
    ``transformers`` applies them). ``temperature=0`` gives a one-hot argmax (greedy)."""
    _check_logits(logits)
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    logits = apply_temperature(logits, temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None and top_p < 1.0:
        logits = top_p_filter(logits, top_p)
    return logits.softmax(dim=-1)


def sample_next_token(logits: torch.Tensor, do_sample: bool = False, temperature: float = 1.0,
                      top_k: int | None = None, top_p: float | None = None,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """One token id per row of ``logits (batch, vocab)``: the argmax, or a sample."""
    if not do_sample or temperature == 0:
        return logits.argmax(dim=-1)
    probs = next_token_distribution(logits, temperature, top_k, top_p)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate(model: GPT, input_ids: torch.Tensor, max_new_tokens: int, *,
             do_sample: bool = False, temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None, use_cache: bool = True,
             eos_token_id: int | None = None, generator: torch.Generator | None = None
             ) -> torch.Tensor:
    """Extend ``input_ids (batch, seq)`` by up to ``max_new_tokens`` tokens; returns the whole
    sequences. Greedy unless ``do_sample``. With ``use_cache`` each step feeds only the newest
    token and reuses the cached keys and values; without it every step re-reads the whole
    sequence (same tokens, much more work). Rows that produced ``eos_token_id`` keep
    producing it until every row has finished.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"generate runs a course_utils.gpt.GPT, got {type(model).__name__}; "
                        "wrap a transformers GPT-2 with GPT.from_hf(model), or call its own "
                        ".generate()")
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.shape[1] < 1:
        raise ValueError("input_ids must be a non-empty (batch, seq_len) tensor of token ids")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) \
            or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
    if input_ids.shape[1] + max_new_tokens > model.config.max_seq_len:
        raise ValueError(f"{input_ids.shape[1]} prompt + {max_new_tokens} new tokens exceed "
                         f"max_seq_len={model.config.max_seq_len}")
    was_training = model.training
    model.eval()
    tokens = [input_ids]
    finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
    cache, step_input = None, input_ids
    for _ in range(max_new_tokens):
        if use_cache:
            logits, cache = model(step_input, past_key_values=cache, use_cache=True)
        else:
            logits = model(torch.cat(tokens, dim=1))
        next_ids = sample_next_token(logits[:, -1, :], do_sample, temperature, top_k, top_p,
                                     generator)
        if eos_token_id is not None:
            next_ids = next_ids.masked_fill(finished, eos_token_id)
            finished = finished | (next_ids == eos_token_id)
        step_input = next_ids.unsqueeze(1)
        tokens.append(step_input)
        if eos_token_id is not None and bool(finished.all()):
            break
    model.train(was_training)
    return torch.cat(tokens, dim=1)
