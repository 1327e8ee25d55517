"""Continuous batching: the batch is decided anew before every step, and the newly admitted
prompts are read in the same forward pass as the running rows' next tokens (Orca, vLLM,
Sarathi's chunked prefill).

The static :class:`~.batching.DynamicBatcher` runs a batch until its last row finishes, so a
request arriving meanwhile waits for the whole batch, and a finished row's place stays empty.
:class:`ContinuousBatcher` keeps one running batch instead. Before each step,
:func:`~.scheduler.schedule` decides: the finished and cancelled rows leave, and waiting
requests are admitted, oldest first, up to ``max_batch_size``. Then ONE forward pass feeds every
row its new tokens: a decoding row its last sampled token, an admitted row its prompt (or the
next chunk of it, at most ``max_prefill_tokens`` prompt tokens per step in all, so a long
prompt does not stall the decoding rows for a whole long prefill). A row whose prompt is now
read samples its first token at once; a decoding row samples its next one.

The new tokens are packed, ``(1, total new tokens)``, not padded to the longest row: every
per-token layer (the projections, the MLP, the layer norms: nearly all of a step's arithmetic)
works on real tokens only, so a 16-token prompt beside 15 decoding rows costs 31 tokens, not
16 x 16. Only attention needs the rows apart: :func:`_slot_attention` (registered in
transformers' ``AttentionInterface`` and selected for the pass) gives each row's queries its
own cache slot, batched, the decoding rows (one query each) in one call and the rows reading
a prompt (several queries each) in a second, so neither pads the other.

The KV cache lives in fixed buffers with one slot per batch place (as vLLM's cache blocks, in
one block per row): ``(max_batch_size, heads, columns, head_dim)`` per layer, row ``i`` holding
its tokens in columns ``0 .. length_i - 1``. A step writes each row's new keys and values in
place at columns ``length_i ..`` and attends over its own real columns, the rest masked; a
leaving row's slot is refilled by moving the last row into it. So a step costs its
arithmetic, not a copy of the whole cache (which concatenating, re-indexing and left-padding
every step would, on a small model more than the arithmetic):
``benchmarks/batcher_profile.py`` measures it. The lesson's exercise keeps the same decision
on plain tensors (:func:`~.scheduler.schedule`, :func:`~.scheduler.append_rows`).

Each row keeps its own positions: a new token's position is the row's length, so a row alone
and the same row in any batch see the same positions and the same real columns. A seeded row
draws from its own generator; greedy rows take the argmax: either gives the same tokens
whatever shares the batch. A row that cannot be sampled fails alone
(:func:`course_utils.lm.sample_rows`); a prompt that makes the forward pass raise (longer than
the model's positions, say) is retried alone and fails alone. The model must call attention
through transformers' ``AttentionInterface`` and the cache API, as GPT-2 and Llama do.
"""

from __future__ import annotations

import queue
import time
from collections import deque
from contextlib import contextmanager

import torch
from torch.nn import functional as F
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
from transformers.modeling_utils import AttentionInterface

from course_utils.lm import sample_rows
from course_utils.serving.batching import _STOP, DynamicBatcher, Job, ServerShuttingDown
from course_utils.serving.scheduler import schedule

ATTENTION = "course_slots"  # the attention implementation the worker selects for its passes


class _Row:
    """A job in the batch (or waiting for it), with what the worker knows about it."""

    def __init__(self, job: Job):
        self.job = job
        self.generator = None if job.seed is None else torch.Generator().manual_seed(job.seed)
        self.count = 0  # tokens generated
        self.next_token = -1  # sampled, not yet fed to the model
        self.slot = -1  # its place in the batch and the cache buffers
        self.length = 0  # tokens in its cache (prompt + generated, fed to the model)
        self.finished = False

    @property
    def cancelled(self) -> bool:
        return self.job.cancelled.is_set()

    @property
    def reading(self) -> bool:
        """Still reading its prompt (not every prompt token is in its cache yet)."""
        return self.length < len(self.job.prompt_ids)

    def emit(self, token: int, eos_token_id: int | None) -> None:
        """Hand a new token to the request; mark the row finished when it is the last."""
        self.count += 1
        self.next_token = token
        self.job.on_token(token)
        if token == eos_token_id or self.job.cancelled.is_set():
            self.finish("stop")
        elif self.count >= self.job.max_new_tokens:
            self.finish("length")

    def finish(self, reason: str, error: BaseException | None = None) -> None:
        self.finished = True
        self.job.finish(reason, error)


class _Plan:
    """Where one step's packed tokens go: built once per step, read by every layer.

    ``feeds[i]`` are row ``i``'s new tokens (it sits in slot ``slots[i]`` with ``lengths[i]``
    tokens already cached). Token ``t`` of the packed sequence belongs to row ``row_of[t]``
    and is written at column ``column[t]`` of its slot (its position). Each row's last new
    token (``last``) gives its next-token logits; those queries are attended in one batched
    call, the other tokens of the rows reading a prompt in a second one (``reading``: their
    slots, queries padded to the longest, mask). A padding query repeats a real one (it sees
    real columns, so it is never NaN) and its output is dropped.
    """

    def __init__(self, slots: list[int], lengths: list[int], feeds: list[list[int]],
                 device: torch.device):
        n = len(feeds)
        sizes = [len(f) for f in feeds]
        starts = [0] * n
        for i in range(1, n):
            starts[i] = starts[i - 1] + sizes[i - 1]
        self.total = starts[-1] + sizes[-1]
        self.columns = max(length + size for length, size in zip(lengths, sizes, strict=True))
        slot_of = [s for s, size in zip(slots, sizes, strict=True) for _ in range(size)]
        cols = [length + j for length, size in zip(lengths, sizes, strict=True)
                for j in range(size)]
        self.ids = torch.tensor([[t for f in feeds for t in f]], device=device)
        self.column = torch.tensor(cols, device=device)
        self.positions = self.column[None]
        self.row_of = torch.tensor(slot_of, device=device)
        self.contiguous = slots == list(range(n))
        self.slots = None if self.contiguous else torch.tensor(slots, device=device)
        self.single = self.total == n  # every row feeds one token: a plain decoding step
        self.last = None if self.single else torch.tensor(
            [s + size - 1 for s, size in zip(starts, sizes, strict=True)], device=device)
        ends = torch.tensor([length + size - 1 for length, size in zip(lengths, sizes,
                                                                        strict=True)],
                            device=device)
        # (n, 1, 1, columns): True where the row's last new token may attend
        self.mask = (torch.arange(self.columns, device=device) <= ends[:, None])[:, None, None]
        self._additive: dict = {}
        self.reading = None
        reading = [i for i in range(n) if sizes[i] > 1]
        if reading:  # each reading row's queries but its last, padded to `width`
            width = max(sizes[i] for i in reading) - 1
            where = [slots[i] for i in reading]
            first = where[0]
            if where == list(range(first, first + len(where))):  # as admitted: a view
                where = slice(first, first + len(where))
            else:
                where = torch.tensor(where, device=device)
            if len(reading) == 1:  # one prompt (the usual case): its queries are a span
                queries = slice(starts[reading[0]], starts[reading[0]] + width)
            else:
                index, real = [], []
                for i in reading:
                    for j in range(width):
                        index.append(starts[i] + min(j, sizes[i] - 2))  # padding: a copy
                        real.append(j < sizes[i] - 1)
                index_t = torch.tensor(index, device=device)
                real_t = torch.tensor(real, device=device)
                queries = (index_t, real_t, index_t[real_t])
            see = torch.tensor([[lengths[i] + min(j, sizes[i] - 2) for j in range(width)]
                                for i in reading], device=device)
            columns = max(lengths[i] + sizes[i] - 1 for i in reading)
            allowed = torch.arange(columns, device=device) <= see[:, None, :, None]
            self.reading = (where, columns, width, queries, allowed)

    def attend(self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
               scale: float | None) -> torch.Tensor:
        """Each row's queries over its own slot: ``query`` ``(1, heads, total, head_dim)``,
        ``keys``/``values`` the whole buffers; returns ``(1, total, heads, head_dim)``."""
        n = self.mask.shape[0]
        if self.contiguous:
            k, v = keys[:n, :, :self.columns], values[:n, :, :self.columns]
        else:
            k = keys[:, :, :self.columns].index_select(0, self.slots)
            v = values[:, :, :self.columns].index_select(0, self.slots)
        q = query[0] if self.single else query[0].index_select(1, self.last)
        out = F.scaled_dot_product_attention(q.transpose(0, 1)[:, :, None], k, v,
                                             attn_mask=self.additive(0, self.mask, q.dtype),
                                             scale=scale)[:, :, 0]
        if self.single:
            return out[None]
        packed = out.new_empty(self.total, *out.shape[1:])
        packed[self.last] = out
        where, columns, width, queries, allowed = self.reading
        k, v = keys[:, :, :columns][where], values[:, :, :columns][where]
        if isinstance(queries, slice):
            q = query[:, :, queries]
        else:
            q = query[0].index_select(1, queries[0]).view(query.shape[1], -1, width,
                                                          query.shape[-1]).transpose(0, 1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=self.additive(1, allowed,
                                                                              q.dtype),
                                             scale=scale)  # (rows, heads, width, head_dim)
        out = out.transpose(1, 2)  # (rows, width, heads, head_dim)
        if isinstance(queries, slice):
            packed[queries] = out[0]
        else:
            packed[queries[2]] = out.reshape(-1, *out.shape[2:])[queries[1]]
        return packed[None]

    def additive(self, which: int, allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Mask ``which`` as the scores' additive mask (0 or the dtype's lowest), made at the
        first layer (in the queries' dtype) and reused by the others: a little faster in sdpa
        than a boolean one, and never NaN, as each query may attend at least one column."""
        if which not in self._additive:
            self._additive[which] = torch.zeros(allowed.shape, dtype=dtype,
                                                device=allowed.device).masked_fill_(
                ~allowed, torch.finfo(dtype).min)
        return self._additive[which]


def _slot_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                    slot_plan: _Plan | None = None, **kwargs):
    """transformers' attention interface for the worker's packed steps (see the module's
    docstring); a pass without a plan (another caller of the model meanwhile) is plain sdpa."""
    if slot_plan is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      scaling=scaling, dropout=dropout, **kwargs)
    return slot_plan.attend(query, key, value, scaling), None


AttentionInterface.register(ATTENTION, _slot_attention)
AttentionMaskInterface.register(ATTENTION, sdpa_mask)  # for a pass without a plan


@contextmanager
def _attention(config, name: str):
    """``config`` selects attention ``name`` for the duration of one forward pass."""
    saved = config._attn_implementation
    config._attn_implementation = name
    try:
        yield
    finally:
        config._attn_implementation = saved


class _SlotLayer(DynamicLayer):
    """One layer's keys and values in fixed buffers, one row (slot) per batch place:
    ``(max_batch_size, heads, columns, head_dim)``, made at the first step (shaped as the
    model's keys) and widened (copied) when a row outgrows them. Row ``i`` holds its tokens in
    columns ``0 .. length_i - 1``; a step writes each new token's keys and values in place, at
    its row's slot and column (:class:`_Plan`). Nothing is concatenated or re-indexed per
    step, as a ``DynamicLayer`` would (a copy of the whole cache per layer per step, more than
    the step's arithmetic on a small model)."""

    def __init__(self, slots: int):
        super().__init__()
        self.slots = slots
        self.buffers: tuple[torch.Tensor, torch.Tensor] | None = None
        self.is_initialized = True
        self.plan: _Plan | None = None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
               ) -> tuple[torch.Tensor, torch.Tensor]:
        plan = self.plan
        self._fit(key_states, plan.columns)
        keys, values = self.buffers
        keys[plan.row_of, :, plan.column] = key_states[0].transpose(0, 1)
        values[plan.row_of, :, plan.column] = value_states[0].transpose(0, 1)
        return keys, values

    def _fit(self, like: torch.Tensor, columns: int) -> None:
        """Buffers with at least ``columns`` columns: twice what is needed when made or
        widened, so a longer row widens them again rarely (a copy each doubling), and a model
        with a long context does not hold max_batch_size x context columns."""
        if self.buffers is not None and self.buffers[0].shape[2] >= columns:
            return
        columns = max(2 * columns, 64)
        new = tuple(like.new_zeros(self.slots, like.shape[1], columns, like.shape[-1])
                    for _ in range(2))
        if self.buffers is not None:  # widening: keep what the rows hold
            for old, buf in zip(self.buffers, new, strict=True):
                buf[:, :, :old.shape[2]] = old
        self.buffers = new
        self.keys, self.values = new

    def move(self, source: int, target: int) -> None:
        """Slot ``source``'s columns (all: beyond its length they are zeros) to ``target``."""
        if self.buffers is not None:
            for buf in self.buffers:
                buf[target] = buf[source]

    def clear(self, first: int, end: int) -> None:
        """Zero slots ``first .. end - 1``, for rows joining: a previous row's columns are
        masked, but a NaN there would still poison the new row (0 x NaN)."""
        if self.buffers is not None:
            for buf in self.buffers:
                buf[first:end] = 0


class ContinuousBatcher(DynamicBatcher):
    """A :class:`DynamicBatcher` whose batch changes at every step (iteration-level
    scheduling), the admitted prompts read in the running rows' step (chunked prefill).

    ``max_prefill_tokens`` bounds the prompt tokens read per step (a longer prompt is read in
    chunks over several steps; each reading row gets at least one token per step).
    ``stats()`` keeps its keys: ``batches`` counts the steps that admitted requests (the
    admission groups), ``steps`` the forward passes (one per step, prefill included) and
    ``mean_rows_per_step`` how many rows each carried."""

    def __init__(self, *args, max_prefill_tokens: int = 64, **kwargs):
        super().__init__(*args, **kwargs)
        if max_prefill_tokens < 1:
            raise ValueError(f"max_prefill_tokens must be at least 1, got {max_prefill_tokens}")
        self.max_prefill_tokens = max_prefill_tokens
        self._waiting: deque[_Row] = deque()
        self.steps = 0
        self.row_steps = 0
        self._kv: DynamicCache | None = None  # the slot buffers (_SlotLayer), made once

    @property
    def waiting(self) -> int:
        return self._queue.qsize() + len(self._waiting)

    def stats(self) -> dict:
        return {**super().stats(), "steps": self.steps,
                "mean_rows_per_step": round(self.row_steps / self.steps, 2) if self.steps
                else 0}

    # ------------------------------------------------------------------ worker thread

    def _take_new(self, block: bool) -> bool:
        """Move queued jobs to the waiting line; True if told to stop. When ``block`` (nothing
        to do), wait for a first job, then ``max_wait`` for company, as the static batcher."""
        deadline = None
        while True:
            try:
                if block and deadline is None:
                    item = self._queue.get()
                    deadline = time.monotonic() + self.max_wait
                elif block and len(self._waiting) < self.max_batch_size:
                    item = self._queue.get(timeout=max(deadline - time.monotonic(), 0))
                else:
                    item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            self._waiting.append(_Row(item))

    def _run(self) -> None:
        rows: list[_Row] = []  # rows[i] is in slot i
        while True:
            if self._take_new(block=not rows and not self._waiting) or self._stopping.is_set():
                for row in [*rows, *self._waiting]:
                    row.finish("error", ServerShuttingDown())
                self._waiting.clear()
                return
            # The decision is the scheduler's; the cache rows move in place (_compact). Each
            # row's real columns start at column 0 of its slot, so no column is all padding:
            # the scheduler is given a mask with nothing to trim.
            step = schedule(rows, self._waiting, self.max_batch_size,
                            torch.ones(len(rows), 0), [])
            for row in rows:
                if row.cancelled and not row.finished:
                    row.finish("stop")
            for row in self._waiting:
                if row.cancelled:
                    row.finish("stop")
            self._waiting = deque(step.waiting)
            started = time.perf_counter()
            try:
                rows = self._compact(step.running)
                if step.admitted:
                    rows = self._admit(step.admitted, rows)
                if rows:
                    self._step(rows)
            except Exception as exc:  # a bug in a step fails its rows, never the worker
                for row in [*rows, *step.running, *step.admitted]:
                    if not row.finished:
                        row.finish("error", exc)
                rows = []
            finally:
                self.busy_seconds += time.perf_counter() - started

    def _layers(self) -> list[_SlotLayer]:
        if self._kv is None:
            self._kv = DynamicCache(config=self.model.config)
            count = len(self._kv.layers) or self.model.config.num_hidden_layers
            self._kv.layers = [_SlotLayer(self.max_batch_size) for _ in range(count)]
        return self._kv.layers

    @torch.inference_mode()
    def _compact(self, staying: list[_Row]) -> list[_Row]:
        """The staying rows in slots ``0 .. n - 1``: a row beyond them moves (its cache columns
        copied) into a slot a leaving row freed."""
        n = len(staying)
        holes = sorted(set(range(n)) - {r.slot for r in staying})
        movers = [r for r in staying if r.slot >= n]
        for row, slot in zip(movers, holes, strict=True):
            for layer in self._layers():
                layer.move(row.slot, slot)
            row.slot = slot
        return sorted(staying, key=lambda r: r.slot)

    @torch.inference_mode()
    def _admit(self, admitted: list[_Row], rows: list[_Row]) -> list[_Row]:
        """Give the admitted rows the next free slots (zeroed); the step reads their prompts.
        An empty prompt (a caller that did not validate) fails here, alone."""
        self.batches += 1
        self.requests += len(admitted)
        joining = []
        for row in admitted:
            if not row.job.prompt_ids:
                row.finish("error", ValueError(
                    "the prompt needs at least one token: an empty prompt has "
                    "nothing to continue"))
            else:
                joining.append(row)
        for slot, row in enumerate(joining, start=len(rows)):
            row.slot, row.length = slot, 0
        for layer in self._layers():
            layer.clear(len(rows), len(rows) + len(joining))
        return rows + joining

    def _feeds(self, rows: list[_Row]) -> list[list[int]]:
        """Each row's new tokens this step: its last sampled token, or its prompt's next
        chunk (``max_prefill_tokens`` in all, oldest row first, at least one each)."""
        budget = self.max_prefill_tokens
        feeds = []
        for row in rows:
            if row.reading:
                take = max(1, min(len(row.job.prompt_ids) - row.length, budget))
                budget -= take
                feeds.append(row.job.prompt_ids[row.length:row.length + take])
            else:
                feeds.append([row.next_token])
        return feeds

    @torch.inference_mode()
    def _step(self, rows: list[_Row]) -> None:
        """One forward pass for every row, then sample the rows that have read their prompt.
        If the pass raises with rows reading a prompt among them, the decoding rows and each
        reading row are retried apart, so a prompt the model cannot take fails alone."""
        feeds = self._feeds(rows)
        try:
            logits = self._forward(rows, feeds)
        except Exception as exc:  # a bug must fail these requests, not kill the worker
            groups = [[i for i, r in enumerate(rows) if not r.reading]]
            groups += [[i] for i, r in enumerate(rows) if r.reading]
            groups = [g for g in groups if g]
            if len(groups) < 2:
                for row in rows:
                    row.finish("error", exc)
                return  # every row has finished: the next schedule drops them all
            for group in groups:
                part = [rows[i] for i in group]
                try:
                    logits = self._forward(part, [feeds[i] for i in group])
                except Exception as exc_part:
                    for row in part:
                        row.finish("error", exc_part)
                    continue
                self._advance(part, [feeds[i] for i in group], logits)
            return
        self._advance(rows, feeds, logits)

    def _advance(self, rows: list[_Row], feeds: list[list[int]], logits: torch.Tensor) -> None:
        for row, feed in zip(rows, feeds, strict=True):
            row.length += len(feed)
        ready = [i for i, r in enumerate(rows) if not r.reading]
        if len(ready) == len(rows):
            self._sample(rows, logits)
        elif ready:
            self._sample([rows[i] for i in ready], logits[ready])

    def _forward(self, rows: list[_Row], feeds: list[list[int]]) -> torch.Tensor:
        """The model on the rows' packed new tokens: each row's next-token logits."""
        self.steps += 1
        self.row_steps += len(rows)
        plan = _Plan([r.slot for r in rows], [r.length for r in rows], feeds,
                     self.model.device)
        for layer in self._layers():
            layer.plan = plan
        with _attention(self.model.config, ATTENTION):
            # the 4D mask is only there to make transformers skip building one
            out = self.model(input_ids=plan.ids, position_ids=plan.positions,
                             attention_mask=plan.mask, cache=self._kv, use_cache=True,
                             logits_to_keep=0 if plan.single else plan.last,
                             slot_plan=plan)
        return out.logits[0]

    def _sample(self, rows: list[_Row], logits: torch.Tensor) -> None:
        """Sample each row's next token and hand it over; a row that fails fails alone."""
        device = logits.device
        temps = torch.tensor([r.job.temperature for r in rows], device=device)
        tops = torch.tensor([r.job.top_p for r in rows], device=device)
        chosen, errors = sample_rows(logits, temps, tops, [r.generator for r in rows])
        tokens = chosen.tolist()
        for i, row in enumerate(rows):
            if i in errors:
                row.finish("error", errors[i])
            elif not row.finished:
                row.emit(tokens[i], self.eos_token_id)
