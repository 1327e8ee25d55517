"""The batcher in its own process, so the model and the HTTP server stop sharing one GIL.

In one process, the worker thread (a small model's forward pass is mostly Python: dozens of
small ops, each a few microseconds of interpreter work) and the event loop (parsing HTTP,
formatting a streamed event per token) take turns holding Python's global interpreter lock:
together they use about one core however many the machine has, and the more tokens a
batched step produces, the more the loop takes from the model. vLLM runs its engine core in a
separate process for the same reason. :class:`ProcessBatcher` does that here: the batcher
(continuous, static, one at a time, or speculative) runs in a child process started with
``spawn``, the model handed over once at start-up (its tensors shared, not copied); the
server process keeps the HTTP side.

The two talk over one pipe. The server sends ``submit`` and ``cancel`` messages; the child
sends back, per burst (a decoding step's tokens for every row at once), one message holding
every row's new tokens and finished requests, with the batcher's statistics. In the server
process each request is still a :class:`~.batching.Job` whose callbacks run on one thread (the
pipe's reader), so :class:`~.engine.Engine` works the same over either batcher.

If the child dies, every request it held ends with a clear error and new requests are refused;
the child exits by itself when the server process goes away (its end of the pipe closes).
"""

from __future__ import annotations

import itertools
import multiprocessing
import pickle
import signal
import threading
from typing import Any

from course_utils.serving.batching import Job, QueueFull, ServerShuttingDown

KINDS = ("continuous", "static", "speculative")


class _ForwardingEvent(threading.Event):
    """A job's ``cancelled`` flag that, once set, also tells the child process."""

    def __init__(self, on_set):
        super().__init__()
        self._on_set = on_set

    def set(self) -> None:
        if not self.is_set():
            super().set()
            self._on_set()


def _portable(error: BaseException | None) -> BaseException | None:
    """The error as it can cross the pipe: itself if it pickles, else its type and message."""
    if error is None:
        return None
    try:
        pickle.dumps(error)
        return error
    except Exception:  # noqa: BLE001 - any unpicklable part: send what it says
        return RuntimeError(f"{type(error).__name__}: {error}")


class ProcessBatcher:
    """A batcher of kind ``kind`` running in a child process, with the batcher's interface
    (``start``, ``stop``, ``submit``, ``stats``, ``max_batch_size``, ``waiting``).

    ``kind`` is ``"continuous"``, ``"static"`` (``max_batch_size=1`` for one at a time) or
    ``"speculative"`` (with ``draft``); ``options`` are the batcher's own keyword arguments.
    ``num_threads`` sets the child's torch threads (default: available CPUs minus one).
    """

    def __init__(self, kind: str, model: Any, *, draft: Any = None, num_draft_tokens: int = 4,
                 num_threads: int | None = None, startup_timeout: float = 120.0,
                 **options: Any):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}")
        if (kind == "speculative") != (draft is not None):
            raise ValueError("a draft model goes with kind='speculative', and only with it")
        self.kind, self.model, self.draft = kind, model, draft
        self.num_draft_tokens, self.num_threads = num_draft_tokens, num_threads
        self.startup_timeout = startup_timeout
        self.options = options
        self.max_batch_size = int(options.get("max_batch_size", 16))
        self.max_queue = int(options.get("max_queue", 256))
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count()
        self._send_lock = threading.Lock()
        self._conn = None
        self._process = None
        self._reader: threading.Thread | None = None
        self._stats: dict = {"requests": 0, "batches": 0, "mean_batch_size": 0,
                             "busy_seconds": 0.0, "waiting": 0}
        self._failure: str | None = None

    # ------------------------------------------------------------------ server side

    def start(self) -> None:
        """Start the child and wait until its batcher runs (idempotent)."""
        if self._process is not None and self._process.is_alive():
            return
        ctx = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools
        here, there = ctx.Pipe()
        self._process = ctx.Process(
            target=_child_main, name="engine-core", daemon=True,
            args=(there, self.kind, self.model, self.draft, self.num_draft_tokens,
                  self.num_threads, self.options))
        self._process.start()
        there.close()
        if not here.poll(self.startup_timeout):
            self._process.kill()
            raise RuntimeError(f"the engine process did not start within "
                               f"{self.startup_timeout:g} s")
        try:
            hello = here.recv()
        except EOFError:
            self._process.join(5)
            raise RuntimeError(f"the engine process exited during start-up (exit code "
                               f"{self._process.exitcode}); its error is in the log above") \
                from None
        if hello[0] != "ready":
            self._process.join(5)
            raise RuntimeError(f"the engine process could not start: {hello[1]}")
        self._conn, self._failure = here, None
        self._reader = threading.Thread(target=self._read, name="engine-reader", daemon=True)
        self._reader.start()

    def _send(self, message: tuple) -> None:
        with self._send_lock:
            self._conn.send(message)

    def submit(self, job: Job) -> None:
        """Hand ``job`` to the child; raises :class:`QueueFull` or ``RuntimeError`` at once."""
        if self._failure is not None or self._reader is None or not self._reader.is_alive():
            raise RuntimeError(self._failure or "the batcher is not running: call start() first")
        if len(self._jobs) - self.max_batch_size >= self.max_queue:
            raise QueueFull(f"{self.max_queue} requests are already waiting")
        job_id = next(self._ids)
        job.cancelled = _ForwardingEvent(lambda: self._cancel(job_id))
        self._jobs[job_id] = job
        try:
            self._send(("submit", job_id, list(job.prompt_ids), job.max_new_tokens,
                        job.temperature, job.top_p, job.seed))
        except (OSError, ValueError) as exc:  # the child has gone
            self._jobs.pop(job_id, None)
            raise RuntimeError(f"the engine process is not running ({exc})") from exc

    def _cancel(self, job_id: int) -> None:
        if job_id in self._jobs:
            try:
                self._send(("cancel", job_id))
            except (OSError, ValueError):  # the child has gone: its jobs end in _read
                pass

    def _read(self) -> None:
        """The reader thread: run each job's callbacks as the child's messages arrive."""
        reason = "the engine process exited unexpectedly"
        try:
            while True:
                message = self._conn.recv()
                if message[0] == "stopped":
                    reason = None
                    break
                _, events, stats = message
                self._stats = stats
                for job_id, kind, *rest in events:
                    job = self._jobs.get(job_id)
                    if job is None:
                        continue
                    if kind == "token":
                        if not job.cancelled.is_set():  # sent before the child heard
                            job.on_token(rest[0])
                    else:
                        self._jobs.pop(job_id, None)
                        job.finish(*rest)
        except (EOFError, OSError):
            pass
        if reason is not None:
            self._process.join(1)
            reason = f"{reason} (exit code {self._process.exitcode})"
            self._failure = reason
        for job in list(self._jobs.values()):
            job.finish("error", RuntimeError(reason) if reason else ServerShuttingDown())
        self._jobs.clear()

    def stop(self, timeout: float = 10.0) -> None:
        """End every request (:class:`ServerShuttingDown`), then the child."""
        if self._process is None:
            return
        try:
            self._send(("stop",))
        except (OSError, ValueError, AttributeError):
            pass
        if self._reader is not None:
            self._reader.join(timeout)
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(1)
        for job in list(self._jobs.values()):
            job.finish("error", ServerShuttingDown())
        self._jobs.clear()
        if self._conn is not None:
            self._conn.close()
        self._process = self._reader = self._conn = None

    @property
    def waiting(self) -> int:
        return int(self._stats.get("waiting", 0))

    def stats(self) -> dict:
        """The child batcher's statistics, as of its last message."""
        return dict(self._stats)


# ---------------------------------------------------------------------- the child process

def make_batcher(kind: str, model: Any, *, draft: Any = None, num_draft_tokens: int = 4,
                 **options: Any):
    """The batcher of ``kind`` (``"continuous"``, ``"static"``, ``"speculative"`` with a
    ``draft``) in this process; ``options`` are its keyword arguments. The engine builds its
    in-thread batcher with it, and the engine process its own."""
    if kind == "speculative":
        from course_utils.serving.speculative_step import SpeculativeBatcher

        return SpeculativeBatcher(model, draft, num_draft_tokens=num_draft_tokens, **options)
    if kind == "continuous":
        from course_utils.serving.continuous import ContinuousBatcher

        return ContinuousBatcher(model, **options)
    from course_utils.serving.batching import DynamicBatcher

    return DynamicBatcher(model, **options)


class _Outbox:
    """The child's outgoing events; a sender thread sends what has piled up as one message."""

    def __init__(self, conn, batcher):
        self.conn, self.batcher = conn, batcher
        self._events: list[tuple] = []
        self._ready = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._send_loop, name="engine-sender",
                                        daemon=True)
        self._thread.start()

    def put(self, event: tuple) -> None:
        with self._ready:
            self._events.append(event)
            if len(self._events) == 1:
                self._ready.notify()

    def _send_loop(self) -> None:
        while True:
            with self._ready:
                while not self._events and not self._closed:
                    self._ready.wait()
                events, self._events = self._events, []
                closed = self._closed
            if events:
                try:
                    self.conn.send(("events", events, self.batcher.stats()))
                except (OSError, ValueError):  # the server process has gone
                    return
            if closed:
                return

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify()
        self._thread.join(10)


def _child_main(conn, kind: str, model: Any, draft: Any, num_draft_tokens: int,
                num_threads: int | None, options: dict) -> None:
    """Run the batcher; obey the server process's messages until ``stop`` or its exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C and SIGTERM are the server's to
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # handle: it drains, then says stop
    try:
        from course_utils.serving.runtime import configure_torch_threads

        configure_torch_threads(num_threads)
        batcher = make_batcher(kind, model, draft=draft, num_draft_tokens=num_draft_tokens,
                               **options)
        batcher.start()
    except Exception as exc:  # noqa: BLE001 - reported to the server, which refuses to start
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    outbox = _Outbox(conn, batcher)
    conn.send(("ready",))
    jobs: dict[int, Job] = {}

    def on_token(job_id: int, token: int) -> None:
        outbox.put((job_id, "token", token))

    def on_done(job_id: int, reason: str, error: BaseException | None) -> None:
        jobs.pop(job_id, None)
        outbox.put((job_id, "done", reason, _portable(error)))

    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):  # the server process has gone
                break
            if message[0] == "submit":
                _, job_id, prompt, max_new, temperature, top_p, seed = message
                job = Job(prompt, max_new, temperature=temperature, top_p=top_p, seed=seed,
                          on_token=lambda t, i=job_id: on_token(i, t),
                          on_done=lambda r, e, i=job_id: on_done(i, r, e))
                jobs[job_id] = job
                try:
                    batcher.submit(job)
                except (QueueFull, RuntimeError) as exc:
                    job.finish("error", exc)
            elif message[0] == "cancel":
                job = jobs.get(message[1])
                if job is not None:
                    job.cancelled.set()
            elif message[0] == "stop":
                break
    finally:
        batcher.stop()
        for job in list(jobs.values()):
            job.finish("error", ServerShuttingDown())
        outbox.close()
        try:
            conn.send(("stopped",))
        except (OSError, ValueError):
            pass
