"""Continuous batching: the batch is decided anew before every decoding step (Orca, vLLM).

The static :class:`~.batching.DynamicBatcher` runs a batch until its last row finishes, so a
request arriving meanwhile waits for the whole batch, and a finished row's place stays empty.
:class:`ContinuousBatcher` keeps one running batch instead. Before each step,
:func:`~.scheduler.schedule` drops the finished and cancelled rows (their mask and KV-cache
rows with them, and the columns that became padding everywhere) and admits waiting requests,
oldest first, up to ``max_batch_size``. The admitted prompts are read in one prefill pass,
their first token is sampled at once, and their cache rows join the batch
(:func:`~.scheduler.append_rows`, left-padded to a common width): they take part in the very
next decoding step.

Each row keeps its own positions: the attention mask says which columns are real, and the
position of a row's next token is :func:`course_utils.lm.position_ids` of that mask, so a
row numbered alone and the same row in any batch see the same positions. A seeded row draws
from its own generator; greedy rows take the argmax: either gives the same tokens whatever
shares the batch. A row that cannot be sampled fails alone (:func:`course_utils.lm.sample_rows`).
"""

from __future__ import annotations

import queue
import time
from collections import deque

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from course_utils.lm import left_pad, position_ids, sample_rows
from course_utils.serving.batching import _STOP, DynamicBatcher, Job, ServerShuttingDown
from course_utils.serving.scheduler import append_rows, schedule


class _Row:
    """A job in the batch (or waiting for it), with what the worker knows about it."""

    def __init__(self, job: Job):
        self.job = job
        self.generator = None if job.seed is None else torch.Generator().manual_seed(job.seed)
        self.count = 0  # tokens generated
        self.next_token = -1  # sampled, not yet fed to the model
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


SPARE_COLUMNS = 64  # room a decoding cache is given to grow in place


class _SpareLayer(DynamicLayer):
    """A ``DynamicLayer`` whose keys and values are views of a buffer with spare columns: a
    decoding step writes its new column in place instead of concatenating (copying) the whole
    cache, as ``DynamicLayer.update`` does at every step. After the scheduler has changed the
    batch (rows left, columns cut, rows joined) the tensors are new, and the first step copies
    them once into a fresh buffer."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._buffers: tuple[torch.Tensor, torch.Tensor] | None = None

    def _in_buffer(self, width: int) -> bool:
        if self._buffers is None:
            return False
        buf = self._buffers[0]
        return (self.keys.data_ptr() == buf.data_ptr() and self.keys.stride() == buf.stride()
                and self.keys.shape[:2] == buf.shape[:2] and width <= buf.shape[2]
                and self.values.data_ptr() == self._buffers[1].data_ptr())

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
               ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        start = self.keys.shape[-2] if self.keys.dim() == 4 else 0
        width = start + key_states.shape[-2]
        if not self._in_buffer(width):
            buffers = []
            for old, new in ((self.keys, key_states), (self.values, value_states)):
                buf = new.new_empty(*new.shape[:2], width + SPARE_COLUMNS, new.shape[-1])
                if start:
                    buf[:, :, :start] = old
                buffers.append(buf)
            self._buffers = (buffers[0], buffers[1])
        keys, values = self._buffers
        keys[:, :, start:width] = key_states
        values[:, :, start:width] = value_states
        self.keys, self.values = keys[:, :, :width], values[:, :, :width]
        return self.keys, self.values


def _tensors(cache: DynamicCache) -> list[torch.Tensor]:
    return [t for layer in cache.layers for t in (layer.keys, layer.values)]


def _hold(cache: DynamicCache, tensors: list[torch.Tensor]) -> DynamicCache:
    """``cache`` made to hold these keys and values (no copy; building a new ``DynamicCache``
    at every step would cost more than the step's arithmetic on a small model)."""
    for layer, keys, values in zip(cache.layers, tensors[0::2], tensors[1::2], strict=True):
        if not layer.is_initialized:
            layer.lazy_initialization(keys, values)
        layer.keys, layer.values = keys, values
    return cache


class ContinuousBatcher(DynamicBatcher):
    """A :class:`DynamicBatcher` whose batch changes at every step (iteration-level
    scheduling). ``stats()`` keeps its keys: ``batches`` counts prefill groups (requests read
    together), and ``steps``/``mean_rows_per_step`` say how full the decoding steps were."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._waiting: deque[_Row] = deque()
        self.steps = 0
        self.row_steps = 0
        self._kv: DynamicCache | None = None  # the decoding steps' cache object, reused

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
        rows: list[_Row] = []
        mask = torch.zeros(0, 0, dtype=torch.long)
        cache: list[torch.Tensor] = []
        while True:
            if self._take_new(block=not rows and not self._waiting) or self._stopping.is_set():
                for row in [*rows, *self._waiting]:
                    row.finish("error", ServerShuttingDown())
                self._waiting.clear()
                return
            step = schedule(rows, self._waiting, self.max_batch_size, mask, cache)
            for row in rows:
                if row.cancelled and not row.finished:
                    row.finish("stop")
            for row in self._waiting:
                if row.cancelled:
                    row.finish("stop")
            rows, mask, cache = step.running, step.mask, step.cache
            self._waiting = deque(step.waiting)
            started = time.perf_counter()
            try:
                if step.admitted:
                    rows, mask, cache = self._admit(step.admitted, rows, mask, cache)
                if rows:
                    mask, cache = self._decode(rows, mask, cache)
            except Exception as exc:  # a bug in a step fails its rows, never the worker
                for row in [*rows, *step.admitted]:
                    if not row.finished:
                        row.finish("error", exc)
                rows, mask, cache = [], torch.zeros(0, 0, dtype=torch.long), []
            finally:
                self.busy_seconds += time.perf_counter() - started

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
    def _admit(self, admitted: list[_Row], rows: list[_Row], mask: torch.Tensor,
               cache: list[torch.Tensor]) -> tuple[list[_Row], torch.Tensor, list]:
        """Prefill the admitted prompts together, sample their first tokens, and join the rows
        that go on to the batch."""
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
            return rows, mask, cache
        self._sample(admitted, logits)
        going_on = [i for i, r in enumerate(admitted) if not r.finished]
        if not going_on:
            return rows, mask, cache
        index = torch.tensor(going_on, device=device)
        new = [t.index_select(0, index) for t in _tensors(new_cache)]
        if not rows:
            return [admitted[i] for i in going_on], new_mask.index_select(0, index), new
        mask, cache = append_rows(mask.to(device), cache, new_mask.index_select(0, index), new)
        return rows + [admitted[i] for i in going_on], mask, cache

    @torch.inference_mode()
    def _decode(self, rows: list[_Row], mask: torch.Tensor,
                cache: list[torch.Tensor]) -> tuple[torch.Tensor, list]:
        """One decoding step for every row: feed each row's last token, sample the next."""
        self.steps += 1
        self.row_steps += len(rows)
        device = self.model.device
        tokens = torch.tensor([[r.next_token] for r in rows], device=device)
        grown = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
        if self._kv is None:
            self._kv = DynamicCache(config=self.model.config)
            self._kv.layers = [_SpareLayer() for _ in self._kv.layers]
        kv = _hold(self._kv, cache)
        try:
            logits = self.model(input_ids=tokens, attention_mask=grown,
                                position_ids=position_ids(grown)[:, -1:], cache=kv,
                                use_cache=True).logits[:, -1, :]
        except Exception as exc:  # a bug must fail these requests, not kill the worker
            for row in rows:
                row.finish("error", exc)
            return mask, cache  # every row has finished: the next schedule drops them all
        self._sample(rows, logits)
        return grown, _tensors(kv)
