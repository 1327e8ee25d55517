"""Speculative decoding: a small draft model guesses, the big target model checks in one pass.

Greedy decoding with the target costs one forward pass of the target per token. Speculative
decoding (Leviathan et al. 2023; Chen et al. 2023) lets a cheap draft model propose ``k`` tokens
one by one, then runs the target ONCE on all of them: its logits at the ``k + 1`` positions
say what the target itself would have produced after each prefix. The longest prefix of the
draft that matches the target's own choices is accepted, and the target's next token after it
comes for free (the "bonus" token), so each round yields between 1 and ``k + 1`` tokens, and
they are exactly the tokens greedy decoding with the target would give. The caches of both
models are then cut back to the accepted length.

It pays off when the draft is much cheaper than the target and agrees with it often. With tiny
models on a CPU, a forward pass costs mostly fixed Python and kernel-launch overhead, so the
draft is not much cheaper than the target: measure before trusting the idea at this size.

With sampling, :func:`verify_sampling` keeps a drafted token with probability
``min(1, p / q)`` and resamples a rejected one from ``max(0, p - q)``, which makes the output
follow the target's distribution exactly; :func:`speculative_generate` itself decodes greedily.

Rows of a batch are decoded one after the other (each accepts a different number of tokens);
speculative decoding is a latency technique for small batches.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence

import torch
from transformers import DynamicCache, PreTrainedModel


def verify_greedy(draft_tokens: torch.Tensor | Sequence[int], target_logits: torch.Tensor
                  ) -> tuple[int, torch.Tensor]:
    """Accept the longest prefix of the draft that the target agrees with, plus its next token.

    ``draft_tokens``: the ``k`` drafted ids. ``target_logits``: ``(k + 1, vocab)``, where row
    ``i`` is the target's prediction after the prefix and the first ``i`` drafted tokens.
    Returns ``(n_accepted, new_tokens)``: ``new_tokens`` (int64, length ``n_accepted + 1``) is
    the accepted draft followed by the target's own choice at the first disagreement (or after
    the whole draft, when all ``k`` are accepted).
    """
    draft = torch.as_tensor(draft_tokens, dtype=torch.long).reshape(-1)
    k = draft.numel()
    if target_logits.dim() != 2 or target_logits.shape[0] != k + 1:
        raise ValueError(f"target_logits must be (k + 1, vocab) = ({k + 1}, vocab) for {k} "
                         f"drafted tokens, got shape {tuple(target_logits.shape)}")
    choice = target_logits.argmax(dim=-1)  # what the target picks at each of the k + 1 spots
    agree = (choice[:k] == draft).long()
    n = int(agree.cumprod(dim=0).sum())  # length of the matching prefix
    return n, torch.cat([draft[:n], choice[n:n + 1]])


def verify_sampling(draft_tokens: torch.Tensor | Sequence[int], draft_probs: torch.Tensor,
                    target_probs: torch.Tensor, generator: torch.Generator | None = None
                    ) -> tuple[int, torch.Tensor]:
    """The accept/reject rule of speculative SAMPLING: the output follows the target exactly.

    ``draft_probs`` ``(k, vocab)``: the draft's distribution ``q_i`` each drafted token was
    sampled from; ``target_probs`` ``(k + 1, vocab)``: the target's ``p_i`` at the same
    positions. Token ``x_i`` is kept with probability ``min(1, p_i(x_i) / q_i(x_i))``; at the
    first rejection a replacement is sampled from ``max(0, p_i - q_i)`` (renormalised) and the
    round ends; if all ``k`` are kept, a bonus token is sampled from ``p_k``. Returns
    ``(n_accepted, new_tokens)`` as :func:`verify_greedy` does.
    """
    draft = torch.as_tensor(draft_tokens, dtype=torch.long).reshape(-1)
    k = draft.numel()
    if draft_probs.shape[0] != k or target_probs.shape[0] != k + 1 \
            or draft_probs.shape[-1] != target_probs.shape[-1]:
        raise ValueError(f"for {k} drafted tokens draft_probs must be (k, vocab) and "
                         f"target_probs (k + 1, vocab), got {tuple(draft_probs.shape)} and "
                         f"{tuple(target_probs.shape)}")
    for i in range(k):
        x = int(draft[i])
        p, q = float(target_probs[i, x]), float(draft_probs[i, x])
        if float(torch.rand((), generator=generator)) * q < p:  # u < p / q, q > 0 as x ~ q
            continue
        residual = (target_probs[i] - draft_probs[i]).clamp(min=0)
        if residual.sum() <= 0:  # p == q: nothing to correct (can't happen after a rejection)
            residual = target_probs[i]
        new = torch.multinomial(residual / residual.sum(), 1, generator=generator)
        return i, torch.cat([draft[:i], new])
    bonus = torch.multinomial(target_probs[k], 1, generator=generator)
    return k, torch.cat([draft, bonus])


def _eos_ids(model: PreTrainedModel) -> set[int]:
    eos = model.generation_config.eos_token_id
    if eos is None:
        return set()
    return {int(e) for e in (eos if isinstance(eos, list | tuple) else [eos])}


def _pad_id(model: PreTrainedModel) -> int:
    for pad in (model.generation_config.pad_token_id, model.config.pad_token_id):
        if pad is not None:
            return int(pad)
    eos = _eos_ids(model)
    return min(eos) if eos else 0


def _context(model: PreTrainedModel) -> int:
    return int(getattr(model.config, "n_positions", None)
               or getattr(model.config, "max_position_embeddings", 10**9))


class _Decoder:
    """One model's KV cache for one row: feeds the tokens the cache is missing, crops back."""

    def __init__(self, model: PreTrainedModel) -> None:
        self.model, self.cache, self.seen = model, DynamicCache(), 0
        self.forward_passes = 0

    def logits(self, tokens: list[int], new: Sequence[int] = (), keep: int = 1) -> torch.Tensor:
        """Feed ``tokens[seen:] + new`` (one forward pass); the last ``keep`` logits rows."""
        feed = tokens[self.seen:] + list(new)
        ids = torch.tensor([feed], dtype=torch.long)
        out = self.model(input_ids=ids, cache=self.cache, use_cache=True, logits_to_keep=keep)
        self.seen += len(feed)
        self.forward_passes += 1
        return out.logits[0]

    def crop(self, length: int) -> None:
        """Forget everything after the first ``length`` tokens."""
        if self.seen > length:
            self.cache.crop(length - self.seen)  # a negative count: tokens to drop
            self.seen = length


def speculative_rounds(target: PreTrainedModel, draft: PreTrainedModel, prompt: Sequence[int],
                       max_new_tokens: int, num_draft_tokens: int = 4,
                       eos_token_ids: Collection[int] = (), stats: dict | None = None
                       ) -> Iterator[list[int]]:
    """Decode one unpadded prompt speculatively, yielding each round's new tokens as they come.

    Each round yields between 1 and ``num_draft_tokens + 1`` ids: the accepted draft and the
    target's own next token. All rounds together are the target's greedy continuation, ended by
    an id of ``eos_token_ids`` (included) or after ``max_new_tokens``. A caller that streams
    (the server) can stop iterating at any round; ``stats`` counts as in
    :func:`speculative_generate`. The models run under ``torch.inference_mode``.
    """
    counts = stats if stats is not None else {}
    for key in ("drafted", "accepted", "rounds", "target_passes", "draft_passes"):
        counts.setdefault(key, 0)
    eos = set(eos_token_ids)
    tokens = list(prompt)
    t, d = _Decoder(target), _Decoder(draft)
    produced = 0
    try:
        while produced < max_new_tokens:
            with torch.inference_mode():
                room = min(num_draft_tokens, max_new_tokens - produced - 1)
                drafted: list[int] = []
                # The draft proposes `room` tokens greedily; its cache keeps all but the last.
                for _ in range(room):
                    drafted.append(int(d.logits(tokens, drafted[-1:])[-1].argmax()))
                # The target scores the missing committed tokens and the whole draft at once.
                logits = t.logits(tokens, drafted, keep=len(drafted) + 1)
                n, new = verify_greedy(drafted, logits)
            counts["drafted"] += len(drafted)
            counts["accepted"] += n
            counts["rounds"] += 1
            new = new.tolist()
            for i, tok in enumerate(new):
                if tok in eos:
                    new = new[: i + 1]
                    break
            tokens += new
            produced += len(new)
            yield new
            if new[-1] in eos:
                return
            # Keep only the caches of committed tokens (the last one is fed next time).
            t.crop(len(tokens) - 1)
            d.crop(len(tokens) - 1)
    finally:
        counts["target_passes"] += t.forward_passes
        counts["draft_passes"] += d.forward_passes


def _check_models(target: PreTrainedModel, draft: PreTrainedModel) -> None:
    for name, m in (("target", target), ("draft", draft)):
        if not hasattr(m, "generation_config") or not callable(m):
            raise TypeError(f"{name} must be a transformers causal LM (as load_pretrained "
                            f"returns), got {type(m).__name__}")
    if target.config.vocab_size != draft.config.vocab_size:
        raise ValueError(f"target and draft must share a tokenizer: vocabulary sizes "
                         f"{target.config.vocab_size} and {draft.config.vocab_size} differ")


def speculative_generate(target: PreTrainedModel, draft: PreTrainedModel,
                         input_ids: torch.Tensor, max_new_tokens: int,
                         num_draft_tokens: int = 4, attention_mask: torch.Tensor | None = None,
                         stats: dict | None = None) -> torch.Tensor:
    """Greedy decoding of ``target``, sped up by ``draft``: ``(batch, prompt_len + max_new)`` ids.

    The output equals ``target.generate(input_ids, attention_mask=..., do_sample=False,
    max_new_tokens=...)`` token for token whatever the draft; a row that emits the end-of-text
    token stops there and is filled with the pad token, as ``generate`` does (``generate`` may
    return fewer columns when every row stopped; this always returns ``max_new_tokens`` new
    columns). A batch with prompts of several lengths is left-padded, with its
    ``attention_mask``. Pass a dict as ``stats`` to get the counts of drafted and accepted
    tokens, rounds and forward passes.
    """
    _check_models(target, draft)
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        raise ValueError("input_ids must be a (batch, prompt_len) tensor of token ids; for one "
                         "prompt use ids[None] or tokenizer(..., return_tensors='pt')")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if not isinstance(num_draft_tokens, int) or num_draft_tokens < 0:
        raise ValueError(f"num_draft_tokens must be an integer >= 0, got {num_draft_tokens!r}")
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    if attention_mask.shape != input_ids.shape:
        raise ValueError(f"attention_mask must have the shape of input_ids "
                         f"{tuple(input_ids.shape)}, got {tuple(attention_mask.shape)}")
    mask = attention_mask.bool()
    if (mask[:, :-1] & ~mask[:, 1:]).any():
        raise ValueError("the batch must be LEFT-padded (padding before each prompt, the "
                         "attention_mask 0 there): set tokenizer.padding_side = 'left'")
    if not mask[:, -1].all():
        raise ValueError("every row needs at least one prompt token (attention_mask 1)")
    longest = int(mask.sum(1).max()) + max_new_tokens
    limit = min(_context(target), _context(draft))
    if longest > limit:
        raise ValueError(f"prompt plus max_new_tokens is {longest} tokens, more than the "
                         f"models' context of {limit}: ask for fewer new tokens")
    counts = stats if stats is not None else {}
    for key in ("drafted", "accepted", "rounds", "target_passes", "draft_passes"):
        counts.setdefault(key, 0)
    eos, pad = _eos_ids(target), _pad_id(target)
    rows = []
    for ids, m in zip(input_ids.tolist(), mask.tolist(), strict=True):
        prompt = [t for t, keep in zip(ids, m, strict=True) if keep]
        new = [tok for chunk in speculative_rounds(target, draft, prompt, max_new_tokens,
                                                   num_draft_tokens, eos, counts)
               for tok in chunk]
        rows.append(ids + new + [pad] * (max_new_tokens - len(new)))
    return torch.tensor(rows, dtype=torch.long, device=input_ids.device)


@torch.inference_mode()
def greedy_generate(model: PreTrainedModel, input_ids: torch.Tensor, max_new_tokens: int,
                    attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Plain cached greedy decoding, the baseline: the same as ``speculative_generate`` with the
    target alone (one forward pass per token), same output layout."""
    return speculative_generate(model, model, input_ids, max_new_tokens, 0, attention_mask)


__all__ = ["greedy_generate", "speculative_generate", "speculative_rounds", "verify_greedy",
           "verify_sampling"]
