"""What every route of the service shares: the engine dependency, the streaming headers, the
documented error answers, and waiting for a request's answer while watching its client.

:mod:`.app` (``/generate``, ``/health``), :mod:`.openai_compat` (``/v1/completions``,
``/v1/models``) and :mod:`.chat` (``/v1/chat/completions``) import these from here, so no route
module imports another's routes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, Request

from course_utils.serving.engine import Chunk, Engine, TokenStream, collect
from course_utils.serving.errors import ClientGone
from course_utils.serving.schemas import ErrorResponse

# Server-sent events must reach the client as they are written: no caching, and no buffering
# by a reverse proxy (nginx honours X-Accel-Buffering).
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

_WHY = {400: "The request is invalid (OpenAI's `invalid_request_error`; `code` is "
             "`context_length_exceeded` when the prompt and the tokens asked for do not fit "
             "the model's context)",
        404: "The model (or route) does not exist (`not_found_error`)",
        413: "The body is larger than the server's limit",
        415: "The body is not sent as `Content-Type: application/json`",
        503: "Too many requests are waiting, or the server is shutting down "
             "(see `Retry-After`)"}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, each with the one error body."""
    return {code: {"model": ErrorResponse, "description": _WHY[code]} for code in codes}


POST_ERRORS = error_responses(400, 404, 413, 415, 503)


async def get_engine(request: Request) -> Engine:
    """The app's engine (a FastAPI dependency): built in the app's lifespan, one per app.

    ``async`` although it awaits nothing: FastAPI runs a plain ``def`` dependency in a worker
    thread, a thread hop per request for one attribute lookup."""
    return request.app.state.engine


EngineDep = Annotated[Engine, Depends(get_engine)]


async def _disconnected(request: Request) -> None:
    """Return once the client has closed the connection.

    The body has been read, so the next ASGI message the server has for this request is
    ``http.disconnect``: uvicorn sends it when the socket closes (and when the response has been
    sent, by which time nobody is waiting here any more).
    """
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def collect_all(request: Request, streams: Sequence[TokenStream]) -> list[Chunk]:
    """Each stream joined into one chunk, or :class:`ClientGone` if the client leaves first.

    A non-streaming request used to run to its end after its client had gone, holding rows of
    the batch that others were waiting for. Here, if the connection closes first, every stream is
    cancelled (its row leaves the batch at the next step) and ``ClientGone`` is raised.
    """
    work = asyncio.ensure_future(asyncio.gather(*(collect(s) for s in streams)))
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
        if work.done():
            return work.result()
        raise ClientGone()
    finally:
        gone.cancel()
        work.cancel()
        for s in streams:
            s.cancel()
