"""The FastAPI application: ``/generate`` (the cheat-sheet API), streaming, health and docs.

:func:`create_app` takes a ``(model, tokenizer)`` pair (tests inject a tiny one) or a model name
to load once at start-up in the app's lifespan, never per request. The OpenAI-compatible routes
live in :mod:`course_utils.serving.openai_compat` and :mod:`.chat`; error bodies in
:mod:`.errors`. A non-streaming request whose client leaves is cancelled (:func:`.collect_all`);
a stream whose client leaves is cancelled by Starlette ending its generator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing, asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from course_utils.serving.chat import router as chat_router
from course_utils.serving.connections import ConnectionLimits
from course_utils.serving.connections import install as install_connection_guards
from course_utils.serving.deps import SSE_HEADERS, EngineDep, collect_all, error_responses
from course_utils.serving.engine import Engine, TokenStream, batching_mode
from course_utils.serving.errors import (
    APIError,
    body_schema,
    install_error_handlers,
    json_body,
    stream_error,
)
from course_utils.serving.models import DEFAULT_MODEL, load_model
from course_utils.serving.openai_compat import router as openai_router
from course_utils.serving.runtime import configure_torch_threads
from course_utils.serving.schemas import GenerateRequest, GenerateResponse
from course_utils.serving.streaming import sse_event

Loader = Callable[[str], tuple[PreTrainedModel, PreTrainedTokenizerBase]]
_ERRORS = error_responses(400, 413, 415, 503)


def create_app(model: PreTrainedModel | None = None,
               tokenizer: PreTrainedTokenizerBase | None = None, *,
               model_name: str = DEFAULT_MODEL, loader: Loader = load_model,
               batching: str | bool = "continuous", max_batch_size: int = 16,
               max_wait_ms: float = 5.0, max_queue: int = 256, num_threads: int | None = None,
               quantize: bool = False,
               max_body_bytes: int = 64 * 1024, draft_model: str | None = None,
               num_draft_tokens: int = 4, limits: ConnectionLimits | None = None,
               cors_origins: Sequence[str] = (), engine_process: bool = False) -> FastAPI:
    """Build the service around ``(model, tokenizer)``, or around ``loader(model_name)``.

    ``batching`` is ``"continuous"`` (the default: requests join and leave the running batch
    at every decoding step), ``"static"`` (a batch runs until its last request is done) or
    ``"none"`` (one request at a time, the cheat-sheet design); ``True``/``False`` mean
    ``"static"``/``"none"``. Up to ``max_batch_size`` requests share each forward pass.
    ``quantize=True`` serves int8 weights (a scale per group of 32, dequantized in the forward
    pass: :func:`course_utils.quantization.quantize_model`), so a request's output does not
    depend on what shares its batch, as it would with activation scales computed per batch.
    Bodies over ``max_body_bytes`` get 413.
    ``draft_model`` (a name for ``loader``, e.g. ``"course-gpt-mini"``) decodes greedy
    requests speculatively, ``num_draft_tokens`` drafted per round, with the same text as
    without it; sampling requests take the ordinary path. A draft whose tokenizer is not the
    target's stops the start-up with an error saying so.

    ``engine_process=True`` runs the batcher and the model in a child process
    (:mod:`.engine_process`), so the event loop and the model do not share one GIL: more
    throughput under load, one more process (and its memory) to run.

    ``limits`` (:class:`~.connections.ConnectionLimits`) bounds slow and idle clients and sets
    the SIGTERM grace period; POST bodies must be ``application/json`` (415 otherwise).
    ``cors_origins`` (e.g. ``["http://localhost:3000"]``) turns CORS on for those origins
    only; it is off by default. Serve the app with :func:`~.connections.serve` (or
    ``server_for``), which applies the limits that belong to uvicorn.
    """
    if (model is None) != (tokenizer is None):
        raise TypeError("pass both model and tokenizer, or neither (then model_name is loaded)")
    mode = batching_mode(batching)
    if draft_model is not None and (isinstance(num_draft_tokens, bool)
                                    or not isinstance(num_draft_tokens, int)
                                    or num_draft_tokens < 1):
        raise ValueError(f"num_draft_tokens must be an integer >= 1, got {num_draft_tokens!r}")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threads = configure_torch_threads(num_threads)
        m, tok = (model, tokenizer) if model is not None else loader(model_name)
        if quantize:
            from course_utils.quantization import quantize_model

            m = quantize_model(m, bits=8)
        draft, draft_tok = _load_draft(loader, draft_model) if draft_model else (None, None)
        engine = Engine(m, tok, name=model_name, max_batch_size=max_batch_size,
                        max_wait_ms=max_wait_ms, max_queue=max_queue, draft=draft,
                        draft_tokenizer=draft_tok, draft_name=draft_model,
                        num_draft_tokens=num_draft_tokens, batching=mode,
                        engine_process=engine_process, num_threads=threads)
        engine.start()
        app.state.engine, app.state.threads = engine, threads
        app.state.quantized = quantize
        try:
            yield
        finally:
            engine.stop()

    app = FastAPI(title="course-gpt service", version="1.0",
                  description="A small language model behind a validated, batched, streaming "
                              "HTTP API with OpenAI-compatible /v1/completions and "
                              "/v1/chat/completions. Invalid requests answer 400 with OpenAI's "
                              "error body.",
                  lifespan=lifespan, docs_url=None, redoc_url=None,
                  redirect_slashes=False)  # its redirect's Location is built from Host
    install_connection_guards(app, limits=limits or ConnectionLimits(),
                              max_body_bytes=max_body_bytes, cors_origins=cors_origins)
    install_error_handlers(app)
    _add_docs(app)
    _add_routes(app)
    app.include_router(openai_router)
    app.include_router(chat_router)
    _document_400_not_422(app)
    return app


def _document_400_not_422(app: FastAPI) -> None:
    """FastAPI documents a 422 on every route with parameters; this service answers invalid
    requests 400 (:mod:`.errors`), so the schema says 400 with the service's error body."""
    build = app.openapi

    def openapi() -> dict:
        schema = build()  # FastAPI's, cached; editing it in place is idempotent
        invalid = {"description": "The request is invalid",
                   "content": {"application/json": {
                       "schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
        for operations in schema.get("paths", {}).values():
            for op in operations.values():
                responses = op.get("responses", {})
                if responses.pop("422", None) is not None:
                    responses.setdefault("400", invalid)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        return schema

    app.openapi = openapi


def _load_draft(loader: Loader, name: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The draft model and its tokenizer; a name that does not load says it was the draft."""
    try:
        return loader(name)
    except (OSError, RuntimeError, ValueError) as exc:
        raise RuntimeError(f"cannot load the draft model {name!r} (--draft-model): {exc}") \
            from exc


def _prepare(engine: Engine, req: GenerateRequest) -> tuple[list[int], int]:
    """Prompt ids and the number of new tokens ``max_length`` leaves room for."""
    ids = engine.encode(req.prompt)
    if req.max_length > engine.context_length:
        raise APIError(400, f"max_length is {req.max_length}, but the model's context holds "
                            f"{engine.context_length} tokens", param="max_length")
    if req.max_length <= len(ids):
        raise APIError(400, f"max_length ({req.max_length}) counts the prompt too, which is "
                            f"already {len(ids)} tokens: ask for more than {len(ids)}",
                       param="max_length", code="context_length_exceeded")
    return ids, req.max_length - len(ids)


def _add_routes(app: FastAPI) -> None:
    @app.get("/health", summary="Liveness and load")
    async def health(request: Request, engine: EngineDep) -> dict:
        return {"status": "ok", "model": engine.name, "context_length": engine.context_length,
                "max_batch_size": engine.batcher.max_batch_size, "batching": engine.batching,
                "torch_threads": request.app.state.threads,
                "quantized": request.app.state.quantized, "draft_model": engine.draft_name,
                "engine_process": engine.engine_process,
                **engine.batcher.stats()}

    @app.post("/generate", response_model=GenerateResponse, responses=_ERRORS,
              openapi_extra=body_schema(GenerateRequest), summary="Continue a prompt")
    async def generate(req: Annotated[GenerateRequest, Depends(json_body(GenerateRequest))],
                       request: Request, engine: EngineDep) -> GenerateResponse:
        ids, new_tokens = _prepare(engine, req)
        [out] = await collect_all(request, [engine.submit(ids, new_tokens,
                                                          temperature=req.temperature)])
        return GenerateResponse(generated_text=req.prompt + out.text,
                                finish_reason=out.finish_reason)

    @app.post("/generate/stream", response_class=StreamingResponse,
              openapi_extra=body_schema(GenerateRequest), summary="Continue a prompt, streamed",
              responses={200: {"content": {"text/event-stream": {}},
                               "description": 'Server-sent events: `{"text": ...}` per piece, '
                                              'then `{"generated_text": ..., "finish_reason": '
                                              '...}`, then `[DONE]`. A failure after the '
                                              'stream has started is one `{"error": {...}}` '
                                              'event, then `[DONE]`.'}, **_ERRORS})
    async def generate_stream(
            req: Annotated[GenerateRequest, Depends(json_body(GenerateRequest))],
            engine: EngineDep) -> StreamingResponse:
        ids, new_tokens = _prepare(engine, req)
        chunks = engine.submit(ids, new_tokens, temperature=req.temperature)
        return StreamingResponse(_generate_events(req.prompt, chunks),
                                 media_type="text/event-stream", headers=SSE_HEADERS)


async def _generate_events(prompt: str, chunks: TokenStream) -> AsyncIterator[str]:
    text = prompt
    async with aclosing(chunks):
        try:
            async for chunk in chunks:
                if chunk.text:
                    text += chunk.text
                    yield sse_event({"text": chunk.text})
                if chunk.finish_reason:
                    yield sse_event({"generated_text": text,
                                     "finish_reason": chunk.finish_reason})
        except Exception as exc:  # noqa: BLE001 - the status line is sent: report in the stream
            yield sse_event(stream_error(exc))
    yield sse_event("[DONE]")


def _swagger_assets() -> Path | None:
    """Swagger UI files shipped by the ``fastapi-offline`` package, if it is installed."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    static = Path(fastapi_offline.__file__).parent / "static"
    return static if (static / "swagger-ui-bundle.js").is_file() else None


def _add_docs(app: FastAPI) -> None:
    """Serve /docs and /redoc from local files: FastAPI's defaults load them from a CDN,
    which is a blank page offline. Without the files, /docs explains and /openapi.json stays."""
    static = _swagger_assets()
    if static is None:
        @app.get("/docs", include_in_schema=False)
        async def no_docs() -> None:
            raise APIError(404, "interactive docs are off: their files come from the "
                                "fastapi-offline package, which is not installed. The API "
                                "schema is at /openapi.json", type_="not_found_error")
        return
    app.mount("/docs-static", StaticFiles(directory=static), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(openapi_url=f"{root}/openapi.json",
                                   title=f"{app.title} - docs",
                                   swagger_js_url=f"{root}/docs-static/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}/docs-static/swagger-ui.css",
                                   swagger_favicon_url=f"{root}/docs-static/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(openapi_url=f"{root}/openapi.json", title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{root}/docs-static/redoc.standalone.js",
                              redoc_favicon_url=f"{root}/docs-static/favicon.png",
                              with_google_fonts=False)
