"""OpenAI-compatible routes: ``POST /v1/completions`` (plain and streamed), ``GET /v1/models``
and ``GET /v1/models/{model}``, and what they share with :mod:`.chat`.

Speaking a widely used API means every tool built for it works unchanged: the official
``openai`` client with ``base_url="http://127.0.0.1:8000/v1"``, LangChain, evaluation harnesses.
vLLM and TGI expose the same routes for the same reason. The shapes follow OpenAI's legacy
completions API: ``choices[i].text``, ``finish_reason``, ``usage``; a stream is a series of
``data: {completion chunk}`` events ended by ``data: [DONE]``. An invalid request is a 400 with
OpenAI's error body; a failure inside a stream is one sanitised error event, then ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from course_utils.serving.deps import (
    POST_ERRORS,
    SSE_HEADERS,
    EngineDep,
    collect_all,
    error_responses,
)
from course_utils.serving.engine import Chunk, ContextTooLong, Engine, TokenStream
from course_utils.serving.errors import APIError, body_schema, json_body, stream_error
from course_utils.serving.schemas import (
    CompletionChoice,
    CompletionRequest,
    CompletionResponse,
    SamplingFields,
    Usage,
)
from course_utils.serving.streaming import sse_event

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
log = logging.getLogger("course_utils.serving")


def event_stream_answer(what: str, model: type) -> dict:
    """OpenAPI ``responses[200]`` of a route that answers JSON, or events with ``stream``."""
    return {200: {"description": f"`{model.__name__}` as JSON; with `stream: true`, "
                                 f"server-sent events instead: {what}, then `data: [DONE]`. "
                                 "A failure after the stream has started is one "
                                 '`data: {"error": {...}}` event, then `data: [DONE]`.',
                  "content": {"text/event-stream": {"schema": {"type": "string"}}}},
            **POST_ERRORS}


def model_card(name: str) -> dict:
    return {"id": name, "object": "model", "created": 0, "owned_by": "course"}


def check_model(engine: Engine, name: str) -> None:
    """404 with OpenAI's body unless ``name`` is the served model."""
    if name != engine.name:
        raise APIError(404, f"the model {name!r} does not exist: this server serves "
                            f"{engine.name!r}", param="model", code="model_not_found")


def check_budget(engine: Engine, ids: Sequence[int], max_tokens: int, param: str) -> None:
    """400 ``context_length_exceeded`` unless prompt + new tokens fit the context."""
    try:
        engine.check_budget(ids, max_tokens)
    except ContextTooLong as exc:
        raise APIError(400, str(exc), param=param, code="context_length_exceeded") from None


def warn_ignored(req: SamplingFields, route: str) -> None:
    if ignored := req.ignored():
        log.warning("%s: ignoring %s (accepted for compatibility, not implemented)", route,
                    ", ".join(ignored))


def submit_all(engine: Engine, prompt_ids: Sequence[list[int]], max_tokens: int,
               req: SamplingFields) -> list[TokenStream]:
    """``n`` streams per prompt (index ``i*n + j`` is choice ``j`` of prompt ``i``, as in
    OpenAI's API; choice ``j`` is seeded ``seed + j``); all or none are queued."""
    streams: list[TokenStream] = []
    try:
        for ids in prompt_ids:
            for j in range(req.n or 1):
                streams.append(engine.submit(
                    ids, max_tokens, stop=req.stops(),
                    temperature=1.0 if req.temperature is None else req.temperature,
                    top_p=1.0 if req.top_p is None else req.top_p,
                    seed=None if req.seed is None else req.seed + j))
    except Exception:  # e.g. the queue filled up half-way: drop what was queued
        for s in streams:
            s.cancel()
        raise
    return streams


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


async def merged(streams: Sequence[TokenStream]) -> AsyncIterator[tuple[int, Chunk]]:
    """The choices' chunks as they come, tagged with their index; raises the first failure.

    Leaving early (the client has gone, a choice failed) cancels every stream. One stream (the
    usual ``n=1``) is read directly, without a task and a queue between it and the response.
    """
    if len(streams) == 1:
        try:
            async with aclosing(streams[0]) as only:
                async for chunk in only:
                    yield 0, chunk
        finally:
            streams[0].cancel()
        return
    queue: asyncio.Queue = asyncio.Queue()

    async def pump(k: int, stream: TokenStream) -> None:
        try:
            async with aclosing(stream):
                async for chunk in stream:
                    await queue.put((k, chunk))
        except Exception as exc:  # noqa: BLE001 - handed to the reader, which re-raises it
            await queue.put((k, exc))
        finally:
            await queue.put((k, None))

    tasks = [asyncio.create_task(pump(k, s)) for k, s in enumerate(streams)]
    try:
        remaining = len(streams)
        while remaining:
            k, item = await queue.get()
            if item is None:
                remaining -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                yield k, item
    finally:
        for s in streams:
            s.cancel()
        for t in tasks:
            t.cancel()


async def sse_events(events: AsyncIterator[dict],
                     streams: Sequence[TokenStream] = ()) -> AsyncIterator[str]:
    """Frame ``events`` as SSE; a failure becomes one sanitised error event; ``[DONE]`` last.

    However the response ends (finished, failed, client gone), ``streams`` are cancelled.
    """
    try:
        async with aclosing(events):
            async for data in events:
                yield sse_event(data)
    except Exception as exc:  # noqa: BLE001 - the status line is sent: report in the stream
        yield sse_event(stream_error(exc))
    finally:
        for s in streams:
            s.cancel()
    yield sse_event("[DONE]")


@router.get("/models", summary="The served model, as OpenAI's model list")
async def list_models(engine: EngineDep) -> dict:
    return {"object": "list", "data": [model_card(engine.name)]}


@router.get("/models/{model:path}", summary="One model (OpenAI's models.retrieve)",
            responses=error_responses(404))
async def retrieve_model(model: str, engine: EngineDep) -> dict:
    check_model(engine, model)
    return model_card(engine.name)


@router.post("/completions", response_model=CompletionResponse,
             responses=event_stream_answer("`text_completion` chunks", CompletionResponse),
             openapi_extra=body_schema(CompletionRequest), summary="OpenAI completions")
async def completions(req: Annotated[CompletionRequest, Depends(json_body(CompletionRequest))],
                      request: Request, engine: EngineDep):
    check_model(engine, req.model)
    warn_ignored(req, "/v1/completions")
    prompts = req.prompts()
    n, max_tokens = req.n or 1, req.max_tokens or 16
    prompt_ids = [engine.encode(p) for p in prompts]
    for ids in prompt_ids:
        check_budget(engine, ids, max_tokens, "max_tokens")
    streams = submit_all(engine, prompt_ids, max_tokens, req)
    head = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
            "created": int(time.time()), "model": engine.name}
    echoes = [prompts[k // n] if req.echo else "" for k in range(len(streams))]
    prompt_tokens = sum(len(ids) for ids in prompt_ids)
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return StreamingResponse(
            sse_events(_completion_chunks(streams, head, echoes, prompt_tokens, include_usage),
                       streams),
            media_type="text/event-stream", headers=SSE_HEADERS)
    results = await collect_all(request, streams)
    choices = [CompletionChoice(text=echoes[k] + r.text, index=k, finish_reason=r.finish_reason)
               for k, r in enumerate(results)]
    completion_tokens = sum(r.completion_tokens for r in results)
    return CompletionResponse(**head, choices=choices,
                              usage=Usage(**usage(prompt_tokens, completion_tokens)))


async def _completion_chunks(streams: list[TokenStream], head: dict, echoes: list[str],
                             prompt_tokens: int, include_usage: bool) -> AsyncIterator[dict]:
    def chunk(k: int, text: str, finish_reason: str | None) -> dict:
        return {**head, "choices": [{"text": text, "index": k, "logprobs": None,
                                     "finish_reason": finish_reason}]}

    for k, echo in enumerate(echoes):
        if echo:
            yield chunk(k, echo, None)
    completion_tokens = 0
    async with aclosing(merged(streams)) as pieces:
        async for k, piece in pieces:
            if piece.finish_reason:
                completion_tokens += piece.completion_tokens
            if piece.text or piece.finish_reason:
                yield chunk(k, piece.text, piece.finish_reason)
    if include_usage:
        yield {**head, "choices": [], "usage": usage(prompt_tokens, completion_tokens)}
