"""``POST /v1/chat/completions``: OpenAI's chat API, the route most clients call.

A chat model reads a conversation as one text laid out by its **chat template**, a Jinja
template that ships with the tokenizer (``tokenizer.chat_template``): the roles' markers, the
line breaks, the end-of-turn tokens. The server renders the messages with the served
tokenizer's own template (``apply_chat_template(..., add_generation_prompt=True)``, which ends
the text where the assistant's reply begins), so the prompt is exactly the layout the model was
trained on, and then continues it like any prompt. A tokenizer without a template cannot be
chatted with: that request is a 400 saying so.

The answer is OpenAI's ``chat.completion`` (``choices[i].message``), or with ``stream: true`` a
series of ``chat.completion.chunk`` events: per choice, first ``delta: {"role": "assistant"}``,
then ``delta: {"content": ...}`` pieces, then an empty delta with the ``finish_reason``; with
``stream_options.include_usage`` a last chunk with no choices carries the ``usage``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from jinja2 import TemplateError

from course_utils.serving.deps import SSE_HEADERS, EngineDep, collect_all
from course_utils.serving.engine import Engine, TokenStream
from course_utils.serving.errors import APIError, body_schema, json_body
from course_utils.serving.openai_compat import (
    check_budget,
    check_model,
    event_stream_answer,
    merged,
    sse_events,
    submit_all,
    usage,
    warn_ignored,
)
from course_utils.serving.schemas import (
    MAX_TOKENS,
    ChatChoice,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatMessage,
    ChatMessageOut,
    Usage,
)

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])


def render_chat(engine: Engine, messages: list[ChatMessage]) -> list[int]:
    """The conversation's prompt ids, laid out by the served tokenizer's chat template."""
    tokenizer = engine.tokenizer
    if not getattr(tokenizer, "chat_template", None):
        raise APIError(400, f"the served model {engine.name!r} has no chat template (its "
                            "tokenizer's chat_template is not set), so there is no way to lay "
                            "out messages for it: send a plain prompt to /v1/completions, or "
                            "serve a model whose tokenizer has a chat template",
                       param="messages", code="chat_template_missing")
    conversation = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                    for m in messages]
    try:
        ids = tokenizer.apply_chat_template(conversation, add_generation_prompt=True,
                                            tokenize=True, return_dict=False)
    except TemplateError as exc:  # the template's own raise_exception(...): its words
        raise APIError(400, f"the model's chat template refused these messages: {exc}",
                       param="messages") from None
    if hasattr(ids, "keys"):  # some versions answer a BatchEncoding whatever return_dict says
        ids = ids["input_ids"]
    return [int(i) for i in ids]


@router.post("/chat/completions", response_model=ChatCompletionResponse,
             responses=event_stream_answer("`chat.completion.chunk` objects",
                                           ChatCompletionResponse),
             openapi_extra=body_schema(ChatCompletionRequest),
             summary="OpenAI chat completions")
async def chat_completions(
        req: Annotated[ChatCompletionRequest, Depends(json_body(ChatCompletionRequest))],
        request: Request, engine: EngineDep):
    check_model(engine, req.model)
    warn_ignored(req, "/v1/chat/completions")
    ids = render_chat(engine, req.messages)
    requested = req.new_tokens()
    max_tokens = requested or max(1, min(MAX_TOKENS, engine.context_length - len(ids)))
    check_budget(engine, ids, max_tokens,
                 "messages" if requested is None else
                 "max_tokens" if req.max_tokens is not None else "max_completion_tokens")
    streams = submit_all(engine, [ids], max_tokens, req)
    head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()),
            "model": engine.name}
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return StreamingResponse(sse_events(_chunks(streams, head, len(ids), include_usage),
                                            streams),
                                 media_type="text/event-stream", headers=SSE_HEADERS)
    results = await collect_all(request, streams)
    choices = [ChatChoice(index=k, message=ChatMessageOut(content=r.text),
                          finish_reason=r.finish_reason) for k, r in enumerate(results)]
    completion_tokens = sum(r.completion_tokens for r in results)
    return ChatCompletionResponse(**head, choices=choices,
                                  usage=Usage(**usage(len(ids), completion_tokens)))


async def _chunks(streams: list[TokenStream], head: dict, prompt_tokens: int,
                  include_usage: bool) -> AsyncIterator[dict]:
    """The ``chat.completion.chunk`` objects of every choice, interleaved as they come."""
    head = {**head, "object": "chat.completion.chunk"}
    extra = {"usage": None} if include_usage else {}

    def chunk(k: int, delta: dict, finish_reason: str | None = None) -> dict:
        return {**head, "choices": [{"index": k, "delta": delta, "logprobs": None,
                                     "finish_reason": finish_reason}], **extra}

    for k in range(len(streams)):
        yield chunk(k, {"role": "assistant", "content": ""})
    completion_tokens = 0
    async with aclosing(merged(streams)) as pieces:
        async for k, piece in pieces:
            if piece.text:
                yield chunk(k, {"content": piece.text})
            if piece.finish_reason:
                completion_tokens += piece.completion_tokens
                yield chunk(k, {}, piece.finish_reason)
    if include_usage:
        yield {**head, "choices": [], "usage": usage(prompt_tokens, completion_tokens)}
