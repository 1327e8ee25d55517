"""Serving a language model over HTTP: lesson 08's library.

``create_app(model, tokenizer)`` builds the FastAPI service; ``python -m course_utils.serving``
runs it with uvicorn. The pieces, one module per idea:

- :mod:`.generation`: batched generation with left padding and a KV cache;
- :mod:`.batching`: the dynamic batcher, one worker thread that groups concurrent requests;
- :mod:`.engine`: the bridge between async handlers and that thread;
- :mod:`.streaming`: server-sent event frames and incremental decoding;
- :mod:`.schemas`, :mod:`.errors`: validated requests and error bodies;
- :mod:`.app`, :mod:`.openai_compat`: the routes;
- :mod:`.quantize`: int8 dynamic quantization and its before/after table;
- :mod:`.background`: run the server in the background (notebook, tests, benchmark).
"""

from course_utils.serving.app import create_app
from course_utils.serving.background import ServerProcess, ServerThread
from course_utils.serving.batching import DynamicBatcher
from course_utils.serving.generation import generate_batch, left_pad
from course_utils.serving.models import load_model
from course_utils.serving.streaming import IncrementalDecoder, sse_event

__all__ = ["DynamicBatcher", "IncrementalDecoder", "ServerProcess", "ServerThread",
           "create_app", "generate_batch", "left_pad", "load_model", "sse_event"]
