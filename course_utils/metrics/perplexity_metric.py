"""Perplexity of a causal language model, with a sliding window for long texts (lesson 07).

Perplexity is ``exp`` of the mean negative log-likelihood per predicted token. A text longer
than the model's context is scored in overlapping windows (the Hugging Face "perplexity of
fixed-length models" method): each window moves ``stride`` tokens and only scores the tokens
no earlier window scored, so every token is predicted once, with at least
``max_length - stride`` tokens of context (except near the start of the text).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from course_utils.metrics._checks import check_predictions


def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """``log p(token_t | tokens_<t)`` for t = 1..T-1: position t-1's logits predict token t.

    Shapes: logits ``(batch, T, vocab)``, input_ids ``(batch, T)`` -> ``(batch, T - 1)``.
    """
    logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    return logprobs.gather(-1, input_ids[:, 1:, None]).squeeze(-1)


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


def _context_length(model, max_length: int | None) -> int:
    if max_length is not None:
        if not isinstance(max_length, int) or max_length < 2:
            raise ValueError(f"max_length must be an int >= 2, got {max_length!r}")
        return max_length
    config = getattr(model, "config", None)
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value >= 2:
            return value
    raise ValueError("could not read the model's context length from its config: pass "
                     "max_length=...")


def windows(n_tokens: int, max_length: int, stride: int) -> list[tuple[int, int, int]]:
    """Sliding windows over a text of ``n_tokens`` tokens as ``(begin, end, first_target)``.

    The window covers tokens ``begin:end`` and scores tokens ``first_target:end``. Token 0 is
    never scored (nothing comes before it); with ``stride < max_length`` every other token is
    scored exactly once. With ``stride == max_length`` the windows do not overlap and, as in
    chunked evaluation, the first token of each window goes unscored (it has no context).
    """
    if not 1 <= stride <= max_length:
        raise ValueError(f"stride must be between 1 and max_length ({max_length}), got {stride}: "
                         "a larger stride would skip tokens")
    out, prev_end = [], 0
    for begin in range(0, n_tokens, stride):
        end = min(begin + max_length, n_tokens)
        first = max(prev_end, begin + 1)
        if first < end:
            out.append((begin, end, first))
        prev_end = end
        if end == n_tokens:
            break
    return out


def perplexity(model, tokenizer, texts: Sequence[str], stride: int | None = None,
               batch_size: int = 8, max_length: int | None = None,
               add_start_token: bool = True, progress: bool = False) -> dict:
    """Perplexity of ``model`` on each text, and over all their tokens together.

    Returns ``perplexities`` (one per text), ``mean_perplexity`` (their mean, as ``evaluate``
    reports) and ``perplexity`` (``exp`` of the mean loss over every predicted token of every
    text: the corpus-level number). ``add_start_token`` prepends the tokenizer's BOS token so
    the first word is predicted too (``evaluate``'s default). ``max_length`` defaults to the
    model's context, ``stride`` to half of it; windows run ``batch_size`` at a time.
    """
    check_predictions(texts, "texts")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    max_length = _context_length(model, max_length)
    stride = max_length // 2 if stride is None else stride
    if not isinstance(stride, int) or isinstance(stride, bool):
        raise TypeError(f"stride must be an int, got {stride!r}")
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    if add_start_token:
        if tokenizer.bos_token_id is None:
            raise ValueError("the tokenizer has no BOS token to prepend: pass "
                             "add_start_token=False")
        encoded = [[tokenizer.bos_token_id, *ids] for ids in encoded]
    for i, ids in enumerate(encoded):
        if len(ids) < 2:
            raise ValueError(f"texts[{i}] ({texts[i]!r:.40}) gives {len(ids)} token(s); "
                             "perplexity needs at least one token to predict after the first")

    jobs = [(i, b, e, f) for i, ids in enumerate(encoded)
            for b, e, f in windows(len(ids), max_length, stride)]
    nll = [0.0] * len(texts)
    count = [0] * len(texts)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    batches = range(0, len(jobs), batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="perplexity", unit="batch")
    try:
        with torch.inference_mode():
            for start in batches:
                batch = jobs[start:start + batch_size]
                width = max(e - b for _, b, e, _ in batch)
                ids = torch.zeros(len(batch), width, dtype=torch.long)
                attention = torch.zeros(len(batch), width, dtype=torch.long)
                for row, (i, b, e, _) in enumerate(batch):  # right padding keeps positions
                    ids[row, :e - b] = torch.tensor(encoded[i][b:e])
                    attention[row, :e - b] = 1
                logits = model(input_ids=ids.to(device), attention_mask=attention.to(device)).logits
                logprobs = token_logprobs(logits, ids.to(device)).double().cpu()
                for row, (i, b, e, f) in enumerate(batch):
                    # column t of logprobs scores window token t + 1
                    nll[i] -= logprobs[row, f - b - 1:e - b - 1].sum().item()
                    count[i] += e - f
    finally:
        model.train(was_training)

    per_text = [math.exp(n / c) for n, c in zip(nll, count, strict=True)]
    return {
        "perplexities": per_text,
        "mean_perplexity": sum(per_text) / len(per_text),
        "perplexity": math.exp(sum(nll) / sum(count)),
    }
