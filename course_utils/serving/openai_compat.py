"""OpenAI-compatible routes: ``POST /v1/completions`` (plain and streamed) and ``GET /v1/models``.

Speaking a widely used API means every tool built for it works unchanged: the official
``openai`` client with ``base_url="http://127.0.0.1:8000/v1"``, LangChain, evaluation harnesses.
vLLM and TGI expose the same routes for the same reason. The shapes follow OpenAI's legacy
completions API: ``choices[i].text``, ``finish_reason``, ``usage``; a stream is a series of
``data: {completion chunk}`` events ended by ``data: [DONE]``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from course_utils.serving.deps import SSE_HEADERS, EngineDep
from course_utils.serving.engine import GenerationFailed, TokenStream, collect
from course_utils.serving.errors import APIError, body_schema, json_body
from course_utils.serving.schemas import (
    CompletionChoice,
    CompletionRequest,
    CompletionResponse,
    ErrorResponse,
    Usage,
)
from course_utils.serving.streaming import sse_event

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
_ERRORS = {code: {"model": ErrorResponse} for code in (404, 422, 503)}


@router.get("/models", summary="The served model, as OpenAI's model list")
async def list_models(engine: EngineDep) -> dict:
    return {"object": "list",
            "data": [{"id": engine.name, "object": "model", "created": 0, "owned_by": "course"}]}


@router.post("/completions", response_model=CompletionResponse, responses=_ERRORS,
             openapi_extra=body_schema(CompletionRequest), summary="OpenAI completions")
async def completions(req: Annotated[CompletionRequest, Depends(json_body(CompletionRequest))],
                      engine: EngineDep):
    if req.model != engine.name:
        raise APIError(404, f"the model {req.model!r} does not exist: this server serves "
                            f"{engine.name!r}", param="model", code="model_not_found")
    prompts = req.prompts()
    n, max_tokens = req.n or 1, req.max_tokens or 16
    prompt_ids = [engine.encode(p) for p in prompts]
    for ids in prompt_ids:
        engine.check_budget(ids, max_tokens)
    streams: list[TokenStream] = []
    try:  # index i*n + j is choice j of prompt i, as in OpenAI's API
        for ids in prompt_ids:
            for j in range(n):
                streams.append(engine.submit(
                    ids, max_tokens, stop=req.stops(),
                    temperature=1.0 if req.temperature is None else req.temperature,
                    top_p=1.0 if req.top_p is None else req.top_p,
                    seed=None if req.seed is None else req.seed + j))
    except Exception:  # e.g. the queue filled up half-way: drop what was queued
        for s in streams:
            s.cancel()
        raise
    head = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
            "created": int(time.time()), "model": engine.name}
    echoes = [prompts[k // n] if req.echo else "" for k in range(len(streams))]
    prompt_tokens = sum(len(ids) for ids in prompt_ids)
    if req.stream:
        usage = bool(req.stream_options and req.stream_options.include_usage)
        return StreamingResponse(_events(streams, head, echoes, prompt_tokens, usage),
                                 media_type="text/event-stream", headers=SSE_HEADERS)
    try:
        results = await asyncio.gather(*(collect(s) for s in streams))
    finally:
        for s in streams:
            s.cancel()
    choices = [CompletionChoice(text=echoes[k] + r.text, index=k, finish_reason=r.finish_reason)
               for k, r in enumerate(results)]
    completion_tokens = sum(r.completion_tokens for r in results)
    return CompletionResponse(**head, choices=choices, usage=Usage(
        prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens))


async def _events(streams: list[TokenStream], head: dict, echoes: list[str],
                  prompt_tokens: int, include_usage: bool) -> AsyncIterator[str]:
    """Merge the choices' streams into one series of completion chunks."""
    queue: asyncio.Queue = asyncio.Queue()

    async def pump(k: int, stream: TokenStream) -> None:
        try:
            async with aclosing(stream):
                async for chunk in stream:
                    await queue.put((k, chunk))
        except GenerationFailed as exc:
            await queue.put((k, exc))
        finally:
            await queue.put((k, None))

    def event(k: int, text: str, finish_reason: str | None) -> str:
        return sse_event({**head, "choices": [{"text": text, "index": k, "logprobs": None,
                                                "finish_reason": finish_reason}]})

    tasks = [asyncio.create_task(pump(k, s)) for k, s in enumerate(streams)]
    try:
        for k, echo in enumerate(echoes):
            if echo:
                yield event(k, echo, None)
        remaining, completion_tokens = len(streams), 0
        while remaining:
            k, item = await queue.get()
            if item is None:
                remaining -= 1
            elif isinstance(item, Exception):
                yield sse_event({"error": {"message": str(item), "type": "server_error"}})
            elif item.text or item.finish_reason:
                completion_tokens += item.completion_tokens if item.finish_reason else 0
                yield event(k, item.text, item.finish_reason)
        if include_usage:
            yield sse_event({**head, "choices": [], "usage": {
                "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens}})
        yield sse_event("[DONE]")
    finally:
        for s in streams:
            s.cancel()
        for t in tasks:
            t.cancel()
