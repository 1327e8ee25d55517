"""Continuous batching: the batch is decided anew before every decoding step (Orca, vLLM).

The static :class:`~.batching.DynamicBatcher` runs a batch until its last row finishes, so a
request arriving meanwhile waits for the whole batch, and a finished row's place stays empty.
:class:`ContinuousBatcher` keeps one running batch instead. Before each step,
:func:`~.scheduler.schedule` decides: the finished and cancelled rows leave, and waiting
requests are admitted, oldest first, up to ``max_batch_size``. The admitted prompts are read in
one prefill pass, their first token is sampled at once, and they take part in the very next
decoding step.

The KV cache lives in fixed buffers with one slot per batch place (as vLLM's cache blocks, in
one block per row): ``(max_batch_size, heads, columns, head_dim)`` per layer, row ``i`` holding
its tokens in columns ``0 .. length_i - 1``. A decoding step writes each row's new keys and
values in place at its own length and attends over the longest row's columns, the others'
extra columns masked; a leaving row's slot is refilled by moving the last row into it. So a
step costs its arithmetic, not a copy of the whole cache (which concatenating, re-indexing and
left-padding every step would, on a small model more than the arithmetic):
``benchmarks/batcher_profile.py`` measures it. The lesson's exercise keeps the same decision
on plain tensors (:func:`~.scheduler.schedule`, :func:`~.scheduler.append_rows`).

Each row keeps its own positions: the next token's position is the row's length, so a row
alone and the same row in any batch see the same positions and the same real columns. A
seeded row draws from its own generator; greedy rows take the argmax: either gives the same
tokens whatever shares the batch. A row that cannot be sampled fails alone
(:func:`course_utils.lm.sample_rows`).
"""

from __future__ import annotations

import queue
import time
from collections import deque

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from course_utils.lm import left_pad, sample_rows
from course_utils.serving.batching import _STOP, DynamicBatcher, Job, ServerShuttingDown
from course_utils.serving.scheduler import schedule


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


class _SlotLayer(DynamicLayer):
    """One layer's keys and values in fixed buffers, one row (slot) per batch place:
    ``(max_batch_size, heads, columns, head_dim)``. Row ``i`` holds its tokens in columns
    ``0 .. length_i - 1``; a decoding step writes each row's new column in place (at its own
    length) and attends over the first ``width`` columns, the rest masked. Nothing is
    concatenated or re-indexed per step, as a ``DynamicLayer`` would (a copy of the whole
    cache per layer per step, more than the step's arithmetic on a small model)."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor):
        super().__init__()
        self.buffers = (keys, values)
        self.is_initialized = True
        self._rows = torch.arange(0)
        self._write_at = torch.zeros(0, dtype=torch.long)
        self._width = 0

    def prepare(self, rows: torch.Tensor, write_at: torch.Tensor, width: int) -> None:
        """Before a step: row ``i`` writes column ``write_at[i]``; attention sees ``width``."""
        self._rows, self._write_at, self._width = rows, write_at, width
        n = len(rows)
        # what the model asks (get_seq_length, get_mask_sizes) is the past: width - 1
        self.keys = self.buffers[0][:n, :, :width - 1]
        self.values = self.buffers[1][:n, :, :width - 1]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
               ) -> tuple[torch.Tensor, torch.Tensor]:
        keys, values = self.buffers
        keys[self._rows, :, self._write_at] = key_states[:, :, -1]
        values[self._rows, :, self._write_at] = value_states[:, :, -1]
        n = len(self._rows)
        return keys[:n, :, :self._width], values[:n, :, :self._width]


class ContinuousBatcher(DynamicBatcher):
    """A :class:`DynamicBatcher` whose batch changes at every step (iteration-level
    scheduling). ``stats()`` keeps its keys: ``batches`` counts prefill groups (requests read
    together), and ``steps``/``mean_rows_per_step`` say how full the decoding steps were."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
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
            # The decision is the scheduler's; the cache rows move in place (_compact), and
            # its mask (each row's real columns, from the left) needs no trimming.
            step = schedule(rows, self._waiting, self.max_batch_size, _mask(rows), [])
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
                    self._decode(rows)
            except Exception as exc:  # a bug in a step fails its rows, never the worker
                for row in [*rows, *step.running, *step.admitted]:
                    if not row.finished:
                        row.finish("error", exc)
                rows = []
            finally:
                self.busy_seconds += time.perf_counter() - started

    def _layers(self) -> list[_SlotLayer]:
        return self._kv.layers if self._kv is not None else []

    @torch.inference_mode()
    def _compact(self, staying: list[_Row]) -> list[_Row]:
        """The staying rows in slots ``0 .. n - 1``: a row beyond them moves (its cache columns
        copied) into a slot a leaving row freed."""
        n = len(staying)
        holes = sorted(set(range(n)) - {r.slot for r in staying})
        movers = [r for r in staying if r.slot >= n]
        for row, slot in zip(movers, holes, strict=True):
            for layer in self._layers():
                for buf in layer.buffers:
                    buf[slot, :, :row.length] = buf[row.slot, :, :row.length]
            row.slot = slot
        return sorted(staying, key=lambda r: r.slot)

    def _buffers(self, like: DynamicCache, columns: int) -> None:
        """Make the slot buffers shaped as ``like``'s layers (a prefill's cache), or widen
        them: ``max_batch_size`` rows and at least ``columns`` columns."""
        layers = self._layers()
        if layers and layers[0].buffers[0].shape[2] >= columns:
            return
        # twice what is needed: a longer row widens them again (rarely: a copy each doubling),
        # and a model with a long context does not hold max_batch_size x context columns
        columns = max(2 * columns, 64)
        if layers:  # widening: keep what the rows hold
            shaped = [layer.buffers for layer in layers]
        else:
            shaped = [(source.keys, source.values) for source in like.layers]
        new = []
        for keys, values in shaped:
            bufs = [t.new_zeros(self.max_batch_size, t.shape[1], columns, t.shape[-1])
                    for t in (keys, values)]
            if layers:
                bufs[0][:, :, :keys.shape[2]] = keys
                bufs[1][:, :, :values.shape[2]] = values
            new.append(_SlotLayer(*bufs))
        if self._kv is None:
            self._kv = DynamicCache(config=self.model.config)
        self._kv.layers = new

    def _sample(self, rows: list[_Row], logits: torch.Tensor) -> None:
        """Sample each row's next token and hand it over; a row that fails fails alone."""
        device = logits.device
        temps = torch.tensor([r.job.temperature for r in rows], device=device)
        tops = torch.tensor([r.job.top_p for r in rows], device=device)
        tokens, errors = sample_rows(logits, temps, tops, [r.generator for r in rows])
        for i, row in enumerate(rows):
            if i in errors:
                row.finish("error", errors[i])
            elif not row.finished:
                row.emit(int(tokens[i]), self.eos_token_id)

    @torch.inference_mode()
    def _admit(self, admitted: list[_Row], rows: list[_Row]) -> list[_Row]:
        """Prefill the admitted prompts together, sample their first tokens, and copy the
        cache of the rows that go on into the next free slots."""
        self.batches += 1
        self.requests += len(admitted)
        device = self.model.device
        new_cache = DynamicCache(config=self.model.config)
        try:  # e.g. an empty prompt from a caller that did not validate: left_pad refuses it
            ids, new_mask, positions = (t.to(device) for t in left_pad(
                [r.job.prompt_ids for r in admitted], self.pad_token_id))
            logits = self.model(input_ids=ids, attention_mask=new_mask, position_ids=positions,
                                cache=new_cache, use_cache=True,
                                logits_to_keep=1).logits[:, -1, :]
        except Exception as exc:  # these prompts fail; the running rows go on
            for row in admitted:
                row.finish("error", exc)
            return rows
        self._sample(admitted, logits)
        going_on = [(i, r) for i, r in enumerate(admitted) if not r.finished]
        if not going_on:
            return rows
        width = ids.shape[1]
        self._buffers(new_cache, max([r.length for r in rows] + [width]) + 1)
        for slot, (i, row) in enumerate(going_on, start=len(rows)):
            length = len(row.job.prompt_ids)  # left-padded: its last `length` columns
            for layer, source in zip(self._layers(), new_cache.layers, strict=True):
                for buf, part in zip(layer.buffers, (source.keys, source.values), strict=True):
                    buf[slot, :, :length] = part[i, :, width - length:]
                    buf[slot, :, length:] = 0  # a previous row's columns: masked, but not NaN
            row.slot, row.length = slot, length
        return rows + [r for _, r in going_on]

    @torch.inference_mode()
    def _decode(self, rows: list[_Row]) -> None:
        """One decoding step for every row: feed each row's last token, sample the next."""
        self.steps += 1
        self.row_steps += len(rows)
        device = self.model.device
        lengths = torch.tensor([r.length for r in rows], device=device)
        width = int(lengths.max()) + 1
        self._buffers(self._kv, width)
        mask = (torch.arange(width, device=device) <= lengths[:, None]).long()
        rows_index = torch.arange(len(rows), device=device)
        for layer in self._layers():
            layer.prepare(rows_index, lengths, width)
        tokens = torch.tensor([[r.next_token] for r in rows], device=device)
        try:
            logits = self.model(input_ids=tokens, attention_mask=mask,
                                position_ids=lengths[:, None], cache=self._kv,
                                use_cache=True).logits[:, -1, :]
        except Exception as exc:  # a bug must fail these requests, not kill the worker
            for row in rows:
                row.finish("error", exc)
            return  # every row has finished: the next schedule drops them all
        for row in rows:
            row.length += 1
        self._sample(rows, logits)


def _mask(rows: list[_Row]) -> torch.Tensor:
    """The batch's attention mask as the scheduler sees it: row ``i`` has ``length_i`` real
    columns, from the left."""
    if not rows:
        return torch.zeros(0, 0, dtype=torch.long)
    lengths = torch.tensor([r.length for r in rows])
    return (torch.arange(int(lengths.max())) < lengths[:, None]).long()
