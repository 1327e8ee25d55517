"""Batched generation: over token ids with a KV cache (what a serving batch runs), and over
strings through ``model.generate`` (what lesson 04's prompting runs).

:func:`generate_ids` left-pads the prompts (:func:`~course_utils.lm.batching.left_pad`), reads
them in one pass, then feeds one new token per row and reuses the cached keys and values
(``DynamicCache``). Rows that finish (end-of-text, their own token budget, or cancelled by the
caller) are dropped from the batch, cache included, so they cost nothing afterwards.

:func:`generate_text` encodes strings, sorts them by length into batches (less padding, less
wasted work), calls ``model.generate`` and returns the new text, cut at a stop string.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from course_utils.lm.batching import (
    check_texts,
    encode,
    left_pad,
    length_batches,
    position_ids,
)
from course_utils.lm.loading import context_length, pad_token_id


def sampling_probs(logits: torch.Tensor, temperature: torch.Tensor,
                   top_p: torch.Tensor) -> torch.Tensor:
    """The (unnormalised) distribution each row samples from: temperature, then nucleus.

    Safe for every accepted value: the logits are shifted by their row maximum *before* the
    division, so a tiny temperature (1e-30) sends the others to ``-inf`` (probability 0) and
    leaves the top token at ``exp(0) = 1``, never ``inf / inf = NaN``; and the most likely token
    always survives nucleus filtering, even when ``top_p`` underflows to 0 in float32
    (transformers' ``TopPLogitsWarper`` keeps it too, with ``min_tokens_to_keep=1``). Rows
    with ``temperature == 0`` are greedy and not sampled; their row here is the greedy one-hot.
    """
    logits = logits.float()
    shifted = logits - logits.max(dim=-1, keepdim=True).values
    safe_t = torch.where(temperature > 0, temperature, torch.ones_like(temperature)).float()
    probs = (shifted / safe_t.unsqueeze(-1)).softmax(dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    # Drop a token when the tokens before it already reach top_p; the first one never goes.
    outside = ((sorted_probs.cumsum(-1) - sorted_probs >= top_p.unsqueeze(-1))
               & (top_p < 1).unsqueeze(-1))
    outside[:, 0] = False
    kept = sorted_probs.masked_fill(outside, 0.0)
    probs = torch.zeros_like(probs).scatter_(-1, order, kept)
    greedy = torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(probs.dtype)
    return torch.where((temperature > 0).unsqueeze(-1), probs, greedy)


def sample_rows(logits: torch.Tensor, temperature: torch.Tensor, top_p: torch.Tensor,
                generators: Sequence[torch.Generator | None]
                ) -> tuple[torch.Tensor, dict[int, Exception]]:
    """Pick one token per row, with row-level isolation: ``(tokens, {row: error})``.

    Greedy where ``temperature == 0``, else a draw from :func:`sampling_probs`. Each row draws
    from its own generator (or torch's global one when it is ``None``), so a request with a
    seed gets the same tokens whichever other requests share its batch. A row that cannot be
    sampled (its logits hold NaN, say) is reported in the dict and the other rows keep their
    tokens; a failed row's token is meaningless, drop that row.
    """
    chosen = logits.argmax(dim=-1)
    if bool((temperature == 0).all()):
        return chosen, {}
    probs = sampling_probs(logits, temperature, top_p)
    errors: dict[int, Exception] = {}
    for row in range(logits.shape[0]):
        if temperature[row] > 0:
            try:
                chosen[row] = torch.multinomial(probs[row], 1, generator=generators[row])[0]
            except (RuntimeError, TypeError, ValueError) as exc:
                errors[row] = RuntimeError(f"no next token could be sampled from this "
                                           f"request's scores ({exc})")
    return chosen, errors


def sample_next(logits: torch.Tensor, temperature: torch.Tensor, top_p: torch.Tensor,
                generators: Sequence[torch.Generator | None]) -> torch.Tensor:
    """:func:`sample_rows` for callers that fail as a whole: raises the first row's error."""
    chosen, errors = sample_rows(logits, temperature, top_p, generators)
    if errors:
        row, exc = next(iter(errors.items()))
        raise RuntimeError(f"row {row} could not be sampled: {exc}") from exc
    return chosen


@torch.inference_mode()
def generate_ids(
    model: Any,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: Sequence[int],
    *,
    temperature: Sequence[float] | None = None,
    top_p: Sequence[float] | None = None,
    generators: Sequence[torch.Generator | None] | None = None,
    eos_token_id: int | None = None,
    pad_token_id: int = 0,
    on_token: Callable[[int, int], bool] | None = None,
    on_error: Callable[[int, Exception], None] | None = None,
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
    from transformers import DynamicCache

    device = model.device
    temps = torch.tensor(temperature if temperature is not None else [0.0] * n, device=device)
    tops = torch.tensor(top_p if top_p is not None else [1.0] * n, device=device)
    gens = list(generators) if generators is not None else [None] * n

    input_ids, attention_mask, positions = (t.to(device) for t in left_pad(prompts,
                                                                           pad_token_id))
    cache = DynamicCache(config=model.config)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
                   cache=cache, use_cache=True).logits[:, -1, :]
    outputs: list[list[int]] = [[] for _ in range(n)]
    active = list(range(n))  # original row index of each row still in the batch
    next_position = positions[:, -1:] + 1
    while True:
        tokens, errors = sample_rows(logits, temps, tops, [gens[r] for r in active])
        if errors and on_error is None:
            i, exc = next(iter(errors.items()))
            raise RuntimeError(f"row {active[i]} could not be sampled: {exc}") from exc
        keep = []
        for i, row in enumerate(active):
            if i in errors:
                on_error(row, errors[i])
                continue
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


def cut_at_stop(text: str, stop: Sequence[str] = ()) -> str:
    """The text up to the first occurrence of any stop string."""
    for s in stop:
        if s and s in text:
            text = text[:text.index(s)]
    return text


@torch.inference_mode()
def shared_prompt_cache(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                        repeats: int):
    """Read each (left-padded) prompt once, all but its last token, and copy the KV cache
    ``repeats`` times, so several samples of one prompt branch off a single reading of it.

    ``generate`` then only has to process each copy's last prompt token: for self-consistency
    with 5 chains this skips 4 of every 5 prompt readings, most of the work.
    """
    positions = position_ids(attention_mask)
    out = model(input_ids=input_ids[:, :-1], attention_mask=attention_mask[:, :-1],
                position_ids=positions[:, :-1], use_cache=True, logits_to_keep=1)
    cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
    cache.batch_repeat_interleave(repeats)
    return cache


@torch.inference_mode()
def generate_text(model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 32, *,
                  batch_size: int = 16, do_sample: bool = False, temperature: float = 1.0,
                  top_k: int | None = None, top_p: float | None = None,
                  num_return_sequences: int = 1, stop: Sequence[str] = ("\n\n",),
                  seed: int = 0) -> list[str] | list[list[str]]:
    """Continue every prompt; returns the new text only, cut at the first ``stop`` string.

    Greedy unless ``do_sample``. With ``num_return_sequences > 1`` (sampling) each prompt gets
    a list of that many continuations, branching off one reading of the prompt
    (:func:`shared_prompt_cache`). Sampling is seeded (``seed``) without touching the
    global random state, so a run is repeatable.
    """
    prompts = check_texts(prompts)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) \
            or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")
    if num_return_sequences > 1 and not do_sample:
        raise ValueError("num_return_sequences > 1 needs do_sample=True (greedy decoding "
                         "returns the same text every time)")
    pad = pad_token_id(tokenizer)
    ids = encode(tokenizer, prompts, context_length(model, tokenizer) - max_new_tokens)
    outputs: list = [None] * len(prompts)
    sampling = dict(do_sample=True, temperature=temperature, top_k=top_k or 0,
                    top_p=1.0 if top_p is None else top_p) if do_sample else \
        dict(do_sample=False)
    stop = [s for s in stop if s]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for batch in length_batches(ids, batch_size):
            input_ids, mask, _ = left_pad([ids[i] for i in batch], pad)
            extra: dict[str, Any] = {"num_return_sequences": num_return_sequences}
            if num_return_sequences > 1 and input_ids.shape[1] > 1:
                extra = {"cache": shared_prompt_cache(model, input_ids, mask,
                                                      num_return_sequences)}
                input_ids = input_ids.repeat_interleave(num_return_sequences, dim=0)
                mask = mask.repeat_interleave(num_return_sequences, dim=0)
            out = model.generate(
                input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                pad_token_id=pad, eos_token_id=tokenizer.eos_token_id,
                stop_strings=stop or None, tokenizer=tokenizer if stop else None,
                **sampling, **extra)
            texts = tokenizer.batch_decode(out[:, input_ids.shape[1]:], skip_special_tokens=True)
            texts = [cut_at_stop(t, stop) for t in texts]
            for j, i in enumerate(batch):
                chunk = texts[j * num_return_sequences:(j + 1) * num_return_sequences]
                outputs[i] = chunk if num_return_sequences > 1 else chunk[0]
    return outputs
