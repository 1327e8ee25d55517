"""Dynamic batching: one worker thread turns concurrent requests into batched forward passes.

A small model on a CPU spends most of a decoding step on fixed costs (Python, dispatching a
dozen small matrix products), so a step for 16 rows costs little more than a step for one.
The worker waits for a first request, then collects more for at most ``max_wait_ms`` or until
``max_batch_size``, runs them as one batch (:func:`~course_utils.lm.generate_ids`), and starts
over. Under load the queue refills while a batch runs, so batches fill up without any waiting
at all.

``max_batch_size=1`` is the cheat-sheet design, one request at a time: the same worker, no
batching, which is what the load test compares against. All model work happens on this one
thread, so concurrent requests never run competing torch thread pools (oversubscription).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers import PreTrainedModel

from course_utils.lm import generate_ids


class QueueFull(RuntimeError):
    """Raised by :meth:`DynamicBatcher.submit` when too many requests wait (answer 503)."""


class ServerShuttingDown(RuntimeError):
    """The error every in-flight and queued request ends with when the batcher stops: a
    stream can then say so and end properly (an error event, then ``[DONE]``)."""

    def __init__(self, message: str = "the server is shutting down"):
        super().__init__(message)


@dataclass
class Job:
    """One request as the worker sees it.

    ``on_token(token_id)`` and ``on_done(finish_reason, error)`` are called on the worker thread;
    ``finish_reason`` is ``"stop"`` (end-of-text or cancelled), ``"length"`` or ``"error"``.
    Setting ``cancelled`` (client gone, stop string found) frees the row at the next step.
    """

    prompt_ids: list[int]
    max_new_tokens: int
    on_token: Callable[[int], None]
    on_done: Callable[[str, BaseException | None], None]
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    done: bool = False

    def finish(self, reason: str, error: BaseException | None = None) -> None:
        """Call ``on_done`` once (a second call, e.g. at shutdown, is ignored)."""
        if not self.done:
            self.done = True
            self.on_done(reason, error)


_STOP = object()


class DynamicBatcher:
    """Run :class:`Job` s on one background thread, batching those that arrive together."""

    def __init__(self, model: PreTrainedModel, *, eos_token_id: int | None, pad_token_id: int,
                 max_batch_size: int = 16, max_wait_ms: float = 5.0, max_queue: int = 256):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self.model = model
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.batches = 0
        self.requests = 0
        self.busy_seconds = 0.0  # time spent generating: busy / wall time = utilisation

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="dynamic-batcher", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """End every request promptly with :class:`ServerShuttingDown` and join the thread.

        Rows in flight leave at their next step; queued jobs never start. Each gets
        ``on_done("error", ServerShuttingDown())`` (a job already finished is left alone).
        """
        if self._thread is None:
            return
        self._stopping.set()
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(job, Job):
                job.finish("error", ServerShuttingDown())

    def submit(self, job: Job) -> None:
        """Queue a job; raises :class:`QueueFull` when ``max_queue`` jobs already wait."""
        if self._thread is None or not self._thread.is_alive():
            raise RuntimeError("the batcher is not running: call start() first")
        if self.waiting >= self.max_queue:
            raise QueueFull(f"{self.max_queue} requests are already waiting")
        self._queue.put(job)

    @property
    def waiting(self) -> int:
        """Jobs queued but not yet in a batch."""
        return self._queue.qsize()

    def stats(self) -> dict:
        """Requests and batches run so far, and the mean batch size (for /health)."""
        return {"requests": self.requests, "batches": self.batches,
                "mean_batch_size": round(self.requests / self.batches, 2) if self.batches else 0,
                "busy_seconds": round(self.busy_seconds, 3), "waiting": self.waiting}

    # ------------------------------------------------------------------ worker thread

    def _collect(self, first: Job) -> tuple[list[Job], bool]:
        """The first job plus whatever arrives within ``max_wait``; True if told to stop."""
        batch = [first]
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_batch_size:
            remaining = deadline - time.monotonic()
            try:
                job = self._queue.get(timeout=remaining) if remaining > 0 else \
                    self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                return batch, True
            batch.append(job)
        return batch, False

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            batch, stopping = self._collect(first)
            live = []
            for job in batch:
                if stopping or self._stopping.is_set():
                    job.finish("error", ServerShuttingDown())
                elif job.cancelled.is_set():
                    job.finish("stop")
                else:
                    live.append(job)
            if live:
                self._run_batch(live)

    def _run_batch(self, batch: list[Job]) -> None:
        self.batches += 1
        self.requests += len(batch)

        def on_token(row: int, token: int) -> bool:
            job = batch[row]
            if self._stopping.is_set():
                job.finish("error", ServerShuttingDown())
            if job.cancelled.is_set() or job.done:
                return False
            job.on_token(token)
            return not job.cancelled.is_set()

        def on_error(row: int, exc: Exception) -> None:  # only this row fails
            batch[row].finish("error", exc)

        started = time.perf_counter()
        try:
            outputs = generate_ids(
                self.model, [j.prompt_ids for j in batch], [j.max_new_tokens for j in batch],
                temperature=[j.temperature for j in batch], top_p=[j.top_p for j in batch],
                generators=[None if j.seed is None else torch.Generator().manual_seed(j.seed)
                            for j in batch],
                eos_token_id=self.eos_token_id, pad_token_id=self.pad_token_id,
                on_token=on_token, on_error=on_error)
        except Exception as exc:  # a bug must fail these requests, not kill the worker
            for job in batch:
                job.finish("error", exc)
            return
        finally:
            self.busy_seconds += time.perf_counter() - started
        for job, out in zip(batch, outputs, strict=True):
            hit_eos = bool(out) and out[-1] == self.eos_token_id
            job.finish("length" if len(out) >= job.max_new_tokens and not hit_eos
                       else "stop")
