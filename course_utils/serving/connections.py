"""Connections and shutdown: what keeps slow, vanishing or cross-site clients from hurting the
service, and how it stops on SIGTERM without dropping anyone silently.

Every bound lives in one :class:`ConnectionLimits` (``create_app(limits=...)``, and the CLI's
``--header-timeout`` and friends); what enforces it:

- **A request's head** (request line and headers) must arrive within ``header_timeout`` s of
  its first byte, or of the connection's opening: :class:`HeadTimeoutProtocol`, uvicorn's h11
  protocol plus that one timer (uvicorn has none: its keep-alive timer only runs *between*
  requests, and each byte received stops it, so a slow-loris client trickling headers held the
  socket forever). The head's size is bounded by h11 (``max_header_bytes``), the idle time
  between requests by uvicorn's ``timeout_keep_alive``.
- **The body** must arrive within ``body_timeout`` s after the head, and be at most
  ``max_body_bytes``: :class:`BodyReader` reads it whole before any route runs (408 or 413
  otherwise, and the connection is closed, so the socket is freed). A client that goes away
  mid-upload is one INFO line, not an error.
- **Concurrency**: uvicorn's ``limit_concurrency`` (``max_connections``): beyond that many
  open connections or running requests, a new request gets 503 at once.
- **Only JSON bodies**: :class:`JsonOnly` answers 415 to a POST whose ``Content-Type`` is not
  ``application/json`` (or ``application/*+json``, charset UTF-8 if given). A web page can send
  ``text/plain`` or a form to any site without asking (no CORS preflight); JSON it cannot, so
  this is what stops a page in a browser from running generation here on a visitor's behalf.
  CORS itself stays off unless ``cors_origins`` names the origins allowed.
- **SIGTERM** (:class:`DrainingServer`): stop accepting connections, answer new requests 503
  (:class:`DrainGate`), give the requests in flight ``grace_seconds`` to finish, then stop the
  engine, which ends the rest with :class:`~.batching.ServerShuttingDown`: a waiting request is
  answered 503, a running stream ends with an error event and ``data: [DONE]``. Only then does
  uvicorn close what is left (after ``SHUTDOWN_MARGIN`` s more) and run the app's shutdown.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import h11
import uvicorn
from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from course_utils.serving.errors import error_response

log = logging.getLogger("course_utils.serving")

SHUTDOWN_MARGIN = 3.0  # s after the engine stops for the last answers to reach their clients
_CLOSE = {"Connection": "close"}


@dataclass(frozen=True)
class ConnectionLimits:
    """How long and how much a client may take; the defaults suit a service on a LAN or
    behind a reverse proxy. Times are in seconds."""

    header_timeout: float = 10.0  # from a request's first byte to the end of its headers
    body_timeout: float = 30.0  # from the end of the headers to the end of the body
    keep_alive_timeout: float = 5.0  # an idle connection between two requests
    max_connections: int | None = 256  # open connections or running requests, then 503
    max_header_bytes: int = 16 * 1024  # request line plus headers (h11's own default)
    grace_seconds: float = 10.0  # SIGTERM: how long requests in flight may still run

    def __post_init__(self) -> None:
        for name in ("header_timeout", "body_timeout", "keep_alive_timeout", "grace_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{name} must be a number of seconds > 0, got {value!r}")
        if self.max_connections is not None and (isinstance(self.max_connections, bool)
                                                 or not isinstance(self.max_connections, int)
                                                 or self.max_connections < 1):
            raise ValueError(f"max_connections must be an integer >= 1 or None, got "
                             f"{self.max_connections!r}")
        if isinstance(self.max_header_bytes, bool) or not isinstance(self.max_header_bytes, int) \
                or self.max_header_bytes < 1024:
            raise ValueError(f"max_header_bytes must be an integer >= 1024, got "
                             f"{self.max_header_bytes!r}")


class Drain:
    """The shutdown flag one app shares between its server and :class:`DrainGate`."""

    def __init__(self) -> None:
        self.draining = False


def _client(scope: Scope) -> str:
    host, port = scope.get("client") or ("?", 0)
    return f"{host}:{port}"


# --------------------------------------------------------------------------- ASGI middlewares


class DrainGate:
    """503 (with ``Retry-After`` and ``Connection: close``) to every request that arrives once
    the server is shutting down; the others pass."""

    def __init__(self, app: ASGIApp, drain: Drain):
        self.app, self.drain = app, drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.drain.draining:
            response = error_response(503, "the server is shutting down; retry in a moment",
                                      code="server_shutting_down",
                                      headers={"Retry-After": "1", **_CLOSE})
            return await response(scope, receive, send)
        await self.app(scope, receive, send)


def is_json(content_type: str | None) -> bool:
    """True for ``application/json`` and ``application/<x>+json``, with no charset or UTF-8."""
    if not content_type:
        return False
    media, *params = (part.strip().lower() for part in content_type.split(";"))
    kind, _, sub = media.partition("/")
    if kind != "application" or not (sub == "json" or sub.endswith("+json")):
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "charset" and value.strip().strip('"') not in ("utf-8", "utf8"):
            return False
    return True


class JsonOnly:
    """415 to a request with a body (POST, PUT, PATCH) that does not say it is JSON."""

    METHODS = frozenset({"POST", "PUT", "PATCH"})

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in self.METHODS:
            content_type = Headers(scope=scope).get("content-type")
            if not is_json(content_type):
                got = f"got {content_type!r}" if content_type else "there was none"
                response = error_response(
                    415, f"send the body as JSON with the header Content-Type: application/json "
                         f"({got})", code="unsupported_media_type",
                    type_="invalid_request_error", headers=_CLOSE)
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


class BodyReader:
    """Read the whole request body before the app runs, then hand it on in one message.

    413 when ``Content-Length`` says it is over ``max_bytes`` (without reading it), or when a
    chunked body grows past it; 408 when it has not all arrived ``timeout`` s after the headers
    (stalled or trickling). Both close the connection. A client that disconnects mid-upload is
    logged at INFO and gets nothing: there is nobody left to answer.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float):
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = error_response(413, f"the request body is larger than {self.max_bytes} "
                                        f"bytes", code="body_too_large", headers=_CLOSE)
        length = Headers(scope=scope).get("content-length", "0")
        if not length.isdigit() or int(length) > self.max_bytes:
            return await too_large(scope, receive, send)
        deadline = time.monotonic() + self.timeout
        chunks, total = [], 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                log.info("%s took longer than %g s to send the body of %s %s: 408",
                         _client(scope), self.timeout, scope["method"], scope["path"])
                timed_out = error_response(
                    408, f"the request body did not arrive within {self.timeout:g} s",
                    code="request_timeout", type_="invalid_request_error", headers=_CLOSE)
                return await timed_out(scope, receive, send)
            if message["type"] == "http.disconnect":
                log.info("%s went away while sending the body of %s %s (%d bytes received)",
                         _client(scope), scope["method"], scope["path"], total)
                return None
            chunks.append(message.get("body", b""))
            total += len(chunks[-1])
            if total > self.max_bytes:
                return await too_large(scope, receive, send)
            if not message.get("more_body", False):
                break
        body: Message | None = {"type": "http.request", "body": b"".join(chunks),
                                "more_body": False}

        async def replay() -> Message:
            nonlocal body
            if body is not None:
                message, body = body, None
                return message
            return await receive()  # later calls: http.disconnect, for streaming responses

        await self.app(scope, replay, send)


def install(app: FastAPI, *, limits: ConnectionLimits, max_body_bytes: int,
            cors_origins: Sequence[str] = ()) -> None:
    """Add the middlewares above to ``app`` and keep ``limits`` and the drain flag on its
    state for :func:`server_for`. CORS only when ``cors_origins`` lists some origins."""
    if isinstance(cors_origins, str):
        raise TypeError("cors_origins is a list of origins, e.g. ['http://localhost:3000']")
    drain = Drain()
    app.state.connection_limits, app.state.drain = limits, drain
    app.add_middleware(BodyReader, max_bytes=max_body_bytes, timeout=limits.body_timeout)
    app.add_middleware(JsonOnly)
    app.add_middleware(DrainGate, drain=drain)
    if cors_origins:  # outermost, so that preflights and error answers carry its headers
        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins),
                           allow_methods=["GET", "POST"],
                           allow_headers=["Content-Type", "Authorization"])


# --------------------------------------------------------------------------- the server


class HeadTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's head (``header_timeout``).

    The timer starts when the connection opens and at the first byte of each later request,
    and stops once the headers are complete. When it fires, a client that sent part of a head
    gets 408 and the connection is closed.
    """

    header_timeout: float = ConnectionLimits.header_timeout

    @classmethod
    def with_timeout(cls, seconds: float) -> type[HeadTimeoutProtocol]:
        return type(cls.__name__, (cls,), {"header_timeout": seconds})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._arm()
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # the head is complete (or broken)
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        partial = len(self.conn.trailing_data[0])
        prefix = f"{self.client[0]}:{self.client[1]} " if self.client else ""
        log.info("%sdid not finish a request's headers within %g s (%d bytes): closed",
                 prefix, self.header_timeout, partial)
        if partial:
            body = json.dumps({"error": {
                "message": f"the request headers did not arrive within {self.header_timeout:g} s",
                "type": "invalid_request_error", "param": None,
                "code": "request_timeout"}}).encode()
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json"
                                 b"\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"
                                 % (len(body), body))
        self.transport.close()


class DrainingServer(uvicorn.Server):
    """uvicorn's server with the SIGTERM drain described in the module docstring."""

    def _state(self, name: str) -> Any:
        return getattr(getattr(self.config.app, "state", None), name, None)

    def handle_exit(self, sig: int, frame: Any) -> None:
        drain = self._state("drain")
        if drain is not None:  # from the signal on, new requests get 503
            drain.draining = True
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list | None = None) -> None:
        drain, limits = self._state("drain"), self._state("connection_limits")
        if drain is not None:
            drain.draining = True
        for server in getattr(self, "servers", []):
            server.close()  # no new connections (uvicorn's own shutdown does it again: harmless)
        grace = (limits or ConnectionLimits()).grace_seconds
        tasks = self.server_state.tasks
        if tasks:
            log.info("shutting down: %d request(s) in flight get %g s to finish", len(tasks),
                     grace)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while tasks and loop.time() < deadline and not self.force_exit:
            await asyncio.sleep(0.05)
        engine = self._state("engine")
        if tasks and engine is not None:
            log.warning("%d request(s) still running after the %g s grace period: ending them "
                        "(503, or an error event for a stream)", len(tasks), grace)
            await asyncio.to_thread(engine.stop)  # each row ends with ServerShuttingDown
        await super().shutdown(sockets)


def server_for(app: ASGIApp, host: str, port: int, *, log_level: str = "warning",
               **config: Any) -> DrainingServer:
    """A :class:`DrainingServer` for ``app`` with the app's :class:`ConnectionLimits` (the
    defaults for an app not built by ``create_app``); ``config`` goes to ``uvicorn.Config``."""
    limits = getattr(getattr(app, "state", None), "connection_limits", None) \
        or ConnectionLimits()
    settings: dict[str, Any] = dict(
        http=HeadTimeoutProtocol.with_timeout(limits.header_timeout),
        timeout_keep_alive=limits.keep_alive_timeout,
        limit_concurrency=limits.max_connections,
        h11_max_incomplete_event_size=limits.max_header_bytes,
        timeout_graceful_shutdown=SHUTDOWN_MARGIN)
    return DrainingServer(uvicorn.Config(app, host=host, port=port, log_level=log_level,
                                         **{**settings, **config}))


def serve(app: ASGIApp, host: str = "127.0.0.1", port: int = 8000, *,
          log_level: str = "warning") -> None:
    """Run ``app`` until SIGTERM or Ctrl+C (what ``python -m course_utils.serving`` does)."""
    server_for(app, host, port, log_level=log_level).run()
