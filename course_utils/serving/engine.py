"""The bridge between async HTTP handlers and the batching worker thread.

Handlers run on uvicorn's event loop; the model runs on the :class:`DynamicBatcher` thread.
Each request gets an ``asyncio.Queue``; the worker hands tokens to the loop through a
:class:`_Mailbox` (``loop.call_soon_threadsafe`` is the only safe way to touch a loop from
another thread), and the handler awaits them, so waiting for the model never blocks the loop
and a thousand waiting clients cost a thousand small queues, not a thousand threads.

Two things keep the cost per token small when many rows share a step. The mailbox wakes the
loop once per burst, not once per token: a decoding step of 16 rows is one wake-up (a write to
the loop's self-pipe, a system call on the worker thread), not 16. And a handler that finds
several tokens waiting sends them as one chunk, so a loop that falls behind (a busy CPU) sends
fewer, larger events instead of falling further behind (vLLM merges its outputs the same way).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from course_utils.lm import context_length
from course_utils.serving.batching import Job
from course_utils.serving.engine_process import ProcessBatcher, make_batcher
from course_utils.serving.streaming import IncrementalDecoder

BATCHING_MODES = ("continuous", "static", "none")


def batching_mode(batching: str | bool) -> str:
    """``"continuous"``, ``"static"`` or ``"none"``; ``True``/``False`` are the old spellings of
    static batching and of one request at a time."""
    if batching is True or batching is False:
        return "static" if batching else "none"
    if batching not in BATCHING_MODES:
        raise ValueError(f"batching must be one of {', '.join(map(repr, BATCHING_MODES))}, "
                         f"got {batching!r}")
    return batching


class ContextTooLong(ValueError):
    """The prompt plus the requested tokens do not fit in the model's context."""


class GenerationFailed(RuntimeError):
    """The worker raised while running the batch this request was in."""


@dataclass
class Chunk:
    """A piece of streamed text; the last one has a ``finish_reason`` and the token count."""

    text: str
    finish_reason: str | None = None
    completion_tokens: int = 0


class TokenStream:
    """An async iterator over one request's :class:`Chunk` s that can cancel the request."""

    def __init__(self, job: Job, chunks: AsyncIterator[Chunk]):
        self.job, self._chunks = job, chunks

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._chunks

    def cancel(self) -> None:
        """Tell the worker to drop this request's row at its next step."""
        self.job.cancelled.set()

    async def aclose(self) -> None:
        self.cancel()
        await self._chunks.aclose()


class _Mailbox:
    """Events from the worker thread to one event loop, with one wake-up per burst.

    ``put`` (worker thread) appends; the first ``put`` after a delivery schedules one
    :meth:`_deliver` on the loop, which moves everything queued by then into the requests'
    queues. An event is never lost or reordered; a closed loop drops them (nobody listens).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self._items: list[tuple[asyncio.Queue, tuple]] = []
        self._lock = threading.Lock()
        self._scheduled = False

    def put(self, events: asyncio.Queue, item: tuple) -> None:
        with self._lock:
            self._items.append((events, item))
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._deliver)
        except RuntimeError:  # the loop has closed: nobody is listening any more
            with self._lock:
                self._items.clear()
                self._scheduled = False

    def _deliver(self) -> None:
        with self._lock:
            items, self._items, self._scheduled = self._items, [], False
        for events, item in items:
            events.put_nowait(item)


class Engine:
    """A loaded model and tokenizer, their batcher, and :meth:`submit`, which streams a request's
    text (:func:`collect` joins the stream into one chunk)."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *,
                 name: str, max_batch_size: int = 16, max_wait_ms: float = 5.0,
                 max_queue: int = 256, draft: PreTrainedModel | None = None,
                 draft_tokenizer: PreTrainedTokenizerBase | None = None,
                 draft_name: str | None = None, num_draft_tokens: int = 4,
                 batching: str | bool = "continuous", engine_process: bool = False,
                 num_threads: int | None = None):
        """``batching`` is ``"continuous"`` (:mod:`.continuous`: requests join and leave the
        running batch at every step), ``"static"`` (:class:`~.batching.DynamicBatcher`: a batch
        runs until its last row is done) or ``"none"`` (one request at a time). With a
        ``draft`` (and its tokenizer, which must be the target's), greedy requests are decoded
        speculatively (:mod:`.speculative_step`, which extends the static batcher:
        ``"continuous"`` then means ``"static"``); the text is the same.

        ``engine_process=True`` runs the batcher in a child process
        (:class:`~.engine_process.ProcessBatcher`, with ``num_threads`` torch threads), so the
        model and the event loop do not share one GIL; the requests' results are the same."""
        self.model = model.eval()
        self._mailboxes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.tokenizer = tokenizer
        self.name = name
        self.context_length = context_length(model)
        self.eos_token_id = tokenizer.eos_token_id
        self.draft_name = draft_name if draft is not None else None
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_token_id
        self.batching = batching_mode(batching)
        self.engine_process = engine_process
        options = dict(eos_token_id=self.eos_token_id, pad_token_id=pad if pad is not None else 0,
                       max_batch_size=1 if self.batching == "none" else max_batch_size,
                       max_wait_ms=max_wait_ms, max_queue=max_queue)
        kind = "continuous" if self.batching == "continuous" else "static"
        extra: dict = {}
        if draft is not None:
            from course_utils.serving.speculative_step import check_draft

            check_draft(model, tokenizer, draft, draft_tokenizer or tokenizer,
                        draft_name=draft_name or "the draft")
            if self.batching == "continuous":  # the speculative step extends the static one
                self.batching = "static"
            # Both models see prompt + new tokens: the shorter context is the service's.
            self.context_length = min(self.context_length, context_length(draft))
            kind, extra = "speculative", dict(draft=draft, num_draft_tokens=num_draft_tokens)
        if engine_process:
            self.batcher = ProcessBatcher(kind, model, num_threads=num_threads, **extra,
                                          **options)
        else:
            self.batcher = make_batcher(kind, model, **extra, **options)

    def start(self) -> None:
        self.batcher.start()

    def stop(self) -> None:
        self.batcher.stop()

    def encode(self, text: str) -> list[int]:
        """Token ids of a prompt, as the tokenizer's own conventions make them."""
        return list(self.tokenizer(text)["input_ids"])

    def check_budget(self, prompt_ids: Sequence[int], max_new_tokens: int) -> None:
        """Raise :class:`ContextTooLong` unless prompt + new tokens fit the context."""
        if len(prompt_ids) + max_new_tokens > self.context_length:
            raise ContextTooLong(
                f"the prompt is {len(prompt_ids)} tokens and {max_new_tokens} more were "
                f"requested, but the model's context holds {self.context_length} tokens: "
                f"shorten the prompt or ask for fewer tokens")

    def submit(self, prompt_ids: list[int], max_new_tokens: int, *,
               temperature: float = 1.0, top_p: float = 1.0, seed: int | None = None,
               stop: Sequence[str] = ()) -> TokenStream:
        """Queue a request now; return a :class:`TokenStream` of its text as it is generated.

        Raises :class:`ContextTooLong` or ``QueueFull`` right away, before any response has
        started, so a handler can still answer 422 or 503. The iterator's last chunk carries
        the finish reason; it raises :class:`GenerationFailed` if the batch failed. Closing it
        (``aclose()``, e.g. when the client has gone) cancels the request's row in its batch.
        Call from the event loop.
        """
        if len(prompt_ids) == 0:
            raise ValueError("prompt_ids is empty: a model needs at least one token to continue "
                             "from (refuse empty prompts in the request schema)")
        self.check_budget(prompt_ids, max_new_tokens)
        loop = asyncio.get_running_loop()
        mailbox = self._mailboxes.get(loop)
        if mailbox is None:
            mailbox = self._mailboxes[loop] = _Mailbox(loop)
        events: asyncio.Queue = asyncio.Queue()

        def post(*item: object) -> None:  # called on the worker thread
            mailbox.put(events, item)

        job = Job(prompt_ids=list(prompt_ids), max_new_tokens=max_new_tokens,
                  temperature=temperature, top_p=top_p, seed=seed,
                  on_token=lambda token: post("token", token),
                  on_done=lambda reason, error: post("done", reason, error))
        decoder = IncrementalDecoder(self.tokenizer, stop)
        self.batcher.submit(job)
        return TokenStream(job, self._chunks(job, events, decoder))

    @staticmethod
    async def _chunks(job: Job, events: asyncio.Queue,
                      decoder: IncrementalDecoder) -> AsyncIterator[Chunk]:
        try:
            while True:
                batch = [await events.get()]
                while not events.empty():  # tokens that came meanwhile go out as one chunk
                    batch.append(events.get_nowait())
                parts = []
                for kind, *rest in batch:
                    if kind == "token":
                        parts.append(decoder.push(rest[0]))
                        if decoder.stopped:
                            job.cancelled.set()
                            yield Chunk("".join(parts), "stop", decoder.tokens)
                            return
                        continue
                    reason, error = rest
                    if error is not None:
                        if any(parts):  # the text generated before the failure is sent
                            yield Chunk("".join(parts), None, decoder.tokens)
                        raise GenerationFailed(f"generation failed: {error}") from error
                    yield Chunk("".join(parts) + decoder.flush(), reason, decoder.tokens)
                    return
                if any(parts):
                    yield Chunk("".join(parts), None, decoder.tokens)
        finally:
            job.cancelled.set()


async def collect(stream: TokenStream) -> Chunk:
    """Join a stream's chunks into one (closing the stream even if the caller is cancelled)."""
    parts, last = [], Chunk("")
    async with aclosing(stream):
        async for last in stream:
            parts.append(last.text)
    return Chunk("".join(parts), last.finish_reason, last.completion_tokens)
