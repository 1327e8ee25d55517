"""Batched generation with left padding and a KV cache: what one serving batch runs.

Requests in a batch have prompts of different lengths. A causal LM predicts the next token from
the *last* position, so the prompts are padded on the left: every row then ends at the same
column and one forward pass gives every row's next-token logits. Two more things keep a padded
row's answer identical to the unpadded one:

- the ``attention_mask`` (0 on padding) stops real tokens from attending to the pads;
- the ``position_ids`` count only real tokens. GPT-2 adds a learned position embedding, and
  without explicit ids the model would number the pads too, so a left-padded prompt would start
  at position 3 instead of 0 and give different logits.

After the prompt pass, each step feeds one new token per row and reuses the cached keys and
values (``DynamicCache``). Rows that finish (end-of-text, their own token budget, or cancelled by
the server) are dropped from the batch, cache included, so they cost nothing afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from transformers import DynamicCache, PreTrainedModel


def left_pad(sequences: Sequence[Sequence[int]],
             pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-pad token-id lists into ``(input_ids, attention_mask, position_ids)``.

    All three are ``(batch, longest)`` int64 tensors. ``attention_mask`` is 1 on real tokens and
    0 on padding; ``position_ids`` number the real tokens 0, 1, 2, ... and are 0 on padding.
    """
    if isinstance(sequences, torch.Tensor) or not isinstance(sequences, Sequence):
        raise TypeError("sequences must be a list of token-id lists, e.g. [[5, 7], [9]], "
                        f"got {type(sequences).__name__}")
    if len(sequences) == 0:
        raise ValueError("sequences is empty: pass at least one token-id list")
    if any(len(s) == 0 for s in sequences):
        raise ValueError("every sequence needs at least one token; an empty prompt has nothing "
                         "to predict from")
    longest = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), longest), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, seq in enumerate(sequences):
        input_ids[row, longest - len(seq):] = torch.as_tensor(list(seq), dtype=torch.long)
        attention_mask[row, longest - len(seq):] = 1
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    return input_ids, attention_mask, position_ids


def sample_next(logits: torch.Tensor, temperature: torch.Tensor, top_p: torch.Tensor,
                generators: Sequence[torch.Generator | None]) -> torch.Tensor:
    """Pick one token per row: greedy where ``temperature == 0``, else nucleus sampling.

    Each row draws from its own generator (or torch's global one when it is ``None``), so a
    request with a seed gets the same tokens whichever other requests share its batch.
    """
    greedy = logits.argmax(dim=-1)
    if bool((temperature == 0).all()):
        return greedy
    scaled = logits.float() / temperature.clamp(min=1e-6).unsqueeze(-1)
    probs = scaled.softmax(dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    # Keep the smallest set of tokens whose probability reaches top_p (always the first one).
    outside = ((sorted_probs.cumsum(-1) - sorted_probs >= top_p.unsqueeze(-1))
               & (top_p < 1).unsqueeze(-1))
    sorted_probs = sorted_probs.masked_fill(outside, 0.0)
    chosen = greedy.clone()
    for row in range(logits.shape[0]):
        if temperature[row] > 0:
            pick = torch.multinomial(sorted_probs[row], 1, generator=generators[row])
            chosen[row] = order[row, pick.item()]
    return chosen


def context_length(model: PreTrainedModel) -> int:
    """How many positions the model has (GPT-2: ``n_positions``)."""
    config = model.config
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    raise ValueError("cannot tell the model's context length from its config")


@torch.inference_mode()
def generate_batch(
    model: PreTrainedModel,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: Sequence[int],
    *,
    temperature: Sequence[float] | None = None,
    top_p: Sequence[float] | None = None,
    generators: Sequence[torch.Generator | None] | None = None,
    eos_token_id: int | None = None,
    pad_token_id: int = 0,
    on_token: Callable[[int, int], bool] | None = None,
) -> list[list[int]]:
    """Generate continuations for several prompts in one batch; return the new token ids.

    ``max_new_tokens``, ``temperature`` (0 = greedy, the default) and ``top_p`` are per row.
    A row stops after its budget or after ``eos_token_id`` (which is included, as in
    ``model.generate``). ``on_token(row, token)`` is called for each new token; returning
    ``False`` cancels that row.
    """
    n = len(prompts)
    if len(max_new_tokens) != n:
        raise ValueError(f"got {n} prompts but {len(max_new_tokens)} max_new_tokens")
    if any(m < 1 for m in max_new_tokens):
        raise ValueError("every max_new_tokens must be at least 1")
    limit = context_length(model)
    for row, (p, m) in enumerate(zip(prompts, max_new_tokens, strict=True)):
        if len(p) + m > limit:
            raise ValueError(f"row {row}: {len(p)} prompt tokens + {m} new tokens exceed the "
                             f"model's context of {limit} positions")
    device = model.device
    temps = torch.tensor(temperature if temperature is not None else [0.0] * n, device=device)
    tops = torch.tensor(top_p if top_p is not None else [1.0] * n, device=device)
    gens = list(generators) if generators is not None else [None] * n

    input_ids, attention_mask, position_ids = (t.to(device) for t in left_pad(prompts,
                                                                              pad_token_id))
    cache = DynamicCache(config=model.config)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                   cache=cache, use_cache=True).logits[:, -1, :]
    outputs: list[list[int]] = [[] for _ in range(n)]
    active = list(range(n))  # original row index of each row still in the batch
    next_position = position_ids[:, -1:] + 1
    while True:
        tokens = sample_next(logits, temps, tops, [gens[r] for r in active])
        keep = []
        for i, row in enumerate(active):
            token = int(tokens[i])
            outputs[row].append(token)
            wanted = on_token(row, token) if on_token is not None else True
            finished = (not wanted or token == eos_token_id
                        or len(outputs[row]) >= max_new_tokens[row])
            if not finished:
                keep.append(i)
        if not keep:
            return outputs
        if len(keep) < len(active):  # drop finished rows from every tensor and the cache
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            tokens, attention_mask = tokens[index], attention_mask[index]
            next_position, temps, tops = next_position[index], temps[index], tops[index]
            active = [active[i] for i in keep]
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(active), 1)], 1)
        logits = model(input_ids=tokens.unsqueeze(-1), attention_mask=attention_mask,
                       position_ids=next_position, cache=cache, use_cache=True).logits[:, -1, :]
        next_position = next_position + 1
