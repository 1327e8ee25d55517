"""Request parsing and error bodies: bad input gets a 4xx that says what was wrong, never a 500.

FastAPI's own body parsing uses Python's ``json`` module, which accepts ``NaN``, turns ``1e999``
into ``inf`` and lets lone UTF-16 surrogates through; each of those later fails while
*rendering* the response, which is a 500. :func:`json_body` parses with pydantic's JSON parser
instead (strict UTF-8, finite numbers, bounded nesting) and validates in the same step.

Every error body has OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, which
the ``openai`` client turns into a readable exception, plus FastAPI's usual ``detail``. An
invalid request is a 400 ``invalid_request_error`` on every route, as OpenAI and vLLM answer
(FastAPI's default is 422), so code catching ``openai.BadRequestError`` or the code
``context_length_exceeded`` works against this server too. Errors inside a stream, after the
status line has gone, are sanitised by :func:`stream_error`: the client gets a generic message,
the log gets the detail.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from course_utils.serving.batching import QueueFull, ServerShuttingDown
from course_utils.serving.engine import ContextTooLong, GenerationFailed

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger("course_utils.serving")

_TYPES = {400: "invalid_request_error", 404: "not_found_error", 405: "invalid_request_error",
          413: "invalid_request_error", 415: "invalid_request_error",
          422: "invalid_request_error", 499: "client_closed_request", 503: "server_busy",
          500: "server_error"}
SHUTTING_DOWN = "the server is shutting down; retry in a moment, on this server or another"


class ClientGone(Exception):
    """The client closed the connection before its answer was ready (nothing to answer)."""


def is_shutting_down(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it) is the batcher's ``ServerShuttingDown``."""
    while exc is not None:
        if isinstance(exc, ServerShuttingDown):
            return True
        exc = exc.__cause__
    return False


def stream_error(exc: BaseException) -> dict:
    """The ``data:`` of the error event that ends a failed stream (then comes ``[DONE]``).

    The status line (200) has already been sent, so the error travels in the stream. Its text is
    generic: an exception's message may show internals (tensor shapes, file paths), so it goes
    to the log with its traceback and the client learns only what kind of failure it was.
    """
    if is_shutting_down(exc):
        log.info("a stream was ended by the server's shutdown")
        return {"error": {"message": SHUTTING_DOWN, "type": "server_error", "param": None,
                          "code": "server_shutting_down"}}
    log.error("generation failed in a stream", exc_info=exc)
    return {"error": {"message": "generation failed on the server; this is a bug, please "
                                 "report it", "type": "server_error", "param": None,
                      "code": "internal_error"}}


class APIError(Exception):
    """An error answered as ``status`` with an OpenAI-style body."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None, type_: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.type = type_ or _TYPES.get(status, "invalid_request_error")
        self.headers = headers


def error_response(status: int, message: str, *, param: str | None = None,
                   code: str | None = None, type_: str | None = None, detail: Any = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON error response in the service's one error shape."""
    body = {"error": {"message": message, "type": type_ or _TYPES.get(status, "error"),
                      "param": param, "code": code},
            "detail": detail if detail is not None else message}
    return JSONResponse(body, status_code=status, headers=headers)


def _is_union_tag(part: Any) -> bool:
    """A ``loc`` step naming the branch of a union (``str``, ``list[...]``), not a field."""
    return isinstance(part, str) and (part in ("str", "int", "float", "bool", "list", "dict")
                                      or "[" in part
                                      or part.startswith(("function-", "constrained-")))


def _clean(errors: list[dict]) -> list[dict]:
    """Pydantic errors without the offending input (it may be huge, or not JSON-encodable).

    A value that may be a string or a list (``prompt``, ``stop``, a message's ``content``) fails
    in every branch of its union; the branch whose *type* did not match is noise when another
    branch says what is wrong (too long, too many), so it is dropped.
    """
    out = []
    for e in errors:
        msg = str(e.get("msg", "invalid value")).removeprefix("Value error, ")
        loc = [x if isinstance(x, int) else str(x) for x in e.get("loc", ())
               if not _is_union_tag(x)]
        out.append({"loc": loc, "msg": msg, "type": str(e.get("type", "value_error"))})
    useful = [e["loc"] for e in out if not e["type"].endswith("_type")]
    kept = [e for e in out if not (e["type"].endswith("_type")
                                   and any(u[:len(e["loc"])] == e["loc"] for u in useful))]
    return [e for i, e in enumerate(kept) if e not in kept[:i]]


def json_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency that parses the raw body as ``model`` with pydantic's JSON parser."""

    async def parse(request: Request) -> M:
        raw = await request.body()
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False,
                                                                             include_input=False)]
            raise RequestValidationError(errors) from None

    return parse


def body_schema(model: type[BaseModel]) -> dict:
    """``openapi_extra`` documenting ``model`` as the JSON request body (``$defs`` inlined)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline({**defs[node["$ref"].rsplit("/", 1)[-1]],
                               **{k: v for k, v in node.items() if k != "$ref"}})
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": inline(schema)}}}}


def _describe(errors: list[dict]) -> tuple[str, str | None, str | None]:
    """One sentence for all validation errors, and the first offending field."""
    parts, param, code = [], None, None
    for e in errors:
        where = ".".join(str(x) for x in e["loc"] if x != "body")
        if e["type"] == "json_invalid":
            parts.append(f"the body is not valid JSON ({e['msg']}); send a JSON object such "
                         'as {"prompt": "Once upon a time"} with Content-Type: '
                         "application/json")
        elif e["type"] in ("model_type", "model_attributes_type") and not where:
            parts.append("the body must be a JSON object")
        else:
            parts.append(f"{where}: {e['msg']}" if where else e["msg"])
        if param is None and not where and (named := re.match(r"([a-z_]+): ", e["msg"])):
            where = named.group(1)  # a check across fields names the field it blames first
        if param is None and where:
            param, code = where, e["type"]
    return "; ".join(parts) or "invalid request", param, code or "invalid_value"


def install_error_handlers(app: FastAPI) -> None:
    """Route every kind of failure to :func:`error_response`."""

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _clean(list(exc.errors()))
        message, param, code = _describe(errors)
        return error_response(400, message, param=param, code=code, detail=errors)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"there is no {request.url.path}: see /docs for the routes"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(APIError)
    async def on_api_error(request: Request, exc: APIError) -> JSONResponse:
        return error_response(exc.status, exc.message, param=exc.param, code=exc.code,
                              type_=exc.type, headers=exc.headers)

    @app.exception_handler(ContextTooLong)
    async def on_context(request: Request, exc: ContextTooLong) -> JSONResponse:
        return error_response(400, str(exc), code="context_length_exceeded")

    @app.exception_handler(QueueFull)
    async def on_busy(request: Request, exc: QueueFull) -> JSONResponse:
        return error_response(503, f"the server is busy ({exc}); retry in a moment",
                              headers={"Retry-After": "1"})

    @app.exception_handler(GenerationFailed)
    async def on_failed(request: Request, exc: GenerationFailed) -> JSONResponse:
        if is_shutting_down(exc):  # SIGTERM's grace period ran out
            return error_response(503, SHUTTING_DOWN, type_="server_error",
                                  code="server_shutting_down",
                                  headers={"Retry-After": "1", "Connection": "close"})
        log.error("generation failed", exc_info=exc)
        return error_response(500, "generation failed on the server; this is a bug, please "
                                   "report it")

    @app.exception_handler(ClientGone)
    async def on_gone(request: Request, exc: ClientGone) -> JSONResponse:
        # Nobody reads this answer; 499 (nginx's "client closed request") marks it in the log.
        log.info("the client left before %s %s was answered; its generation was cancelled",
                 request.method, request.url.path)
        return error_response(499, "the client closed the connection")

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception) -> JSONResponse:
        if is_shutting_down(exc):
            return error_response(503, SHUTTING_DOWN, type_="server_error",
                                  code="server_shutting_down", headers={"Retry-After": "1"})
        log.error("unhandled error", exc_info=exc)
        return error_response(500, "internal error; this is a bug, please report it")
