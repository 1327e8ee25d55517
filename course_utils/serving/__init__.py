"""Serving a language model over HTTP: lesson 08's library.

``create_app(model, tokenizer)`` builds the FastAPI service; ``python -m course_utils.serving``
runs it with uvicorn. The pieces, one module per idea:

- :mod:`.generation`: batched generation with left padding and a KV cache (built on
  :mod:`course_utils.lm`);
- :mod:`.batching`: the static batcher, one worker thread that groups concurrent requests
  (``max_batch_size=1``: one at a time), and ``ServerShuttingDown``;
- :mod:`.scheduler`, :mod:`.continuous`: continuous batching, the batch decided anew before
  every decoding step (the scheduler step is exercise 08.4), the server's default;
- :mod:`.engine`: the bridge between async handlers and that thread;
- :mod:`.streaming`: server-sent event frames and incremental decoding;
- :mod:`.schemas`, :mod:`.errors`: validated requests and error bodies;
- :mod:`.connections`: read timeouts, the connection bound, JSON-only bodies, CORS (off
  unless configured) and the SIGTERM drain, around the app and in its uvicorn server;
- :mod:`.app`, :mod:`.openai_compat`, :mod:`.chat`: the routes (``/generate``, OpenAI's
  ``/v1/completions`` and ``/v1/models``, ``/v1/chat/completions``), sharing :mod:`.deps` (the
  engine dependency, the SSE headers, cancelling a request whose client has gone);
- :mod:`.endpoint`: ``/generate`` in its smallest correct form, a bounded schema and a handler
  that awaits the engine (lesson 08's exercise 08.1);
- :mod:`.quantize`: int8 dynamic quantization and its before/after table;
- :mod:`.speculative_step`: lesson 09's ``--draft-model`` option, the batcher whose greedy
  requests are decoded speculatively (:mod:`course_utils.speculative`), with the same text;
  sampling requests keep the ordinary path;
- :mod:`.background`: run the server in the background (notebook, tests, benchmark).

The names below are imported on first use: ``from course_utils.serving import ServerProcess``
then does not import transformers, so a notebook can launch the server (a child process that
loads it anyway) before paying for that import itself.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {"create_app": "app", "ServerProcess": "background", "ServerThread": "background",
          "ContinuousBatcher": "continuous", "DynamicBatcher": "batching",
          "generate_batch": "generation", "left_pad": "generation",
          "load_model": "models", "IncrementalDecoder": "streaming", "sse_event": "streaming"}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
