"""The continuous-batching scheduler step: which rows stay, which requests join, and the cache
rows realigned (lesson 08, exercise 08.4).

Continuous batching (iteration-level scheduling, as in Orca and vLLM) decides the batch anew
before every decoding step, instead of once per batch:

1. a row whose request has finished (end-of-text, its budget) or was cancelled (the client
   went) leaves at once, and its rows of the attention mask and of the KV cache go with it;
2. columns that are now padding in every remaining row are cut off the left of the mask and
   the cache (each row is left-padded, ``0 ... 0 1 ... 1``, so such columns form a prefix):
   a long request that left no longer makes every later step attend over its length;
3. waiting requests join in arrival order (FIFO), as many as the batch limit leaves room
   for; a cancelled waiting request is dropped without being admitted.

:func:`schedule` is only the decision, on plain tensors; :func:`append_rows` joins the
admitted rows' mask and cache to a left-padded batch, the lesson's version of the join. The
cache is a list of tensors with the batch on axis 0 and the sequence on axis -2, as a KV
cache's keys and values are ``(batch, heads, seq, head_dim)``. The server's worker
(:mod:`.continuous`) takes the same decision but keeps its cache in fixed slots, one per
batch place, and reads the admitted prompts in the running rows' forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch


@dataclass
class Request:
    """A request as the scheduler sees it (the lesson's and the grader's; the worker's rows
    have the same two flags)."""

    id: Any
    finished: bool = False
    cancelled: bool = False


class Step(NamedTuple):
    """What :func:`schedule` decides (a plain 5-tuple in this order is the same answer)."""

    running: list       # the rows that stay, in their order
    admitted: list      # waiting requests to prefill now, oldest first
    waiting: list       # still waiting, oldest first (cancelled ones dropped)
    mask: torch.Tensor  # the staying rows' attention mask, all-padding columns cut
    cache: list         # each cache tensor: the staying rows, the same columns as the mask


def schedule(running: Sequence, waiting: Sequence, max_batch_size: int,
             mask: torch.Tensor, cache: Sequence[torch.Tensor]) -> Step:
    """One scheduling decision before a decoding step (see the module's docstring).

    ``running[i]`` is row ``i`` of ``mask`` (``(rows, columns)``, 1 on real tokens) and of each
    tensor in ``cache``; requests have ``finished`` and ``cancelled`` flags.
    """
    keep = [i for i, r in enumerate(running) if not (r.finished or r.cancelled)]
    if len(keep) < len(running):
        index = torch.tensor(keep, dtype=torch.long, device=mask.device)
        mask = mask.index_select(0, index)
        cache = [c.index_select(0, index) for c in cache]
    real_columns = (mask != 0).any(dim=0).nonzero()
    start = int(real_columns[0]) if len(real_columns) else mask.shape[1]
    if start:
        mask = mask[:, start:]
        cache = [c[..., start:, :] for c in cache]
    still = [r for r in waiting if not r.cancelled]
    room = max(max_batch_size - len(keep), 0)
    return Step([running[i] for i in keep], still[:room], still[room:], mask, list(cache))


def append_rows(mask: torch.Tensor, cache: Sequence[torch.Tensor], new_mask: torch.Tensor,
                new_cache: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The batch with the newly prefilled rows below it: whichever part is shorter gets
    padding columns on the left (mask 0, cache 0), so every row still ends at the last
    column and its real tokens keep their cache entries."""
    width = max(mask.shape[1], new_mask.shape[1])

    def pad(m: torch.Tensor, c: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list]:
        extra = width - m.shape[1]
        if not extra:
            return m, list(c)
        m = torch.cat([m.new_zeros(m.shape[0], extra), m], dim=1)
        c = [torch.cat([t.new_zeros(*t.shape[:-2], extra, t.shape[-1]), t], dim=-2)
             for t in c]
        return m, c

    (mask, cache), (new_mask, new_cache) = pad(mask, cache), pad(new_mask, new_cache)
    return (torch.cat([mask, new_mask], dim=0),
            [torch.cat([a, b], dim=0) for a, b in zip(cache, new_cache, strict=True)])
