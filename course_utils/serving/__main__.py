"""``python -m course_utils.serving``: serve a model with uvicorn (127.0.0.1:8000 by default).

    python -m course_utils.serving --model course-gpt --port 8000
    python -m course_utils.serving --host 0.0.0.0          # in a container
    python -m course_utils.serving --batching static       # batches fixed once they start
    python -m course_utils.serving --no-batching           # the cheat-sheet's one-at-a-time design
    python -m course_utils.serving --draft-model course-gpt-mini   # speculative greedy decoding
    python -m course_utils.serving --cors-origin http://localhost:3000   # let one page call it

One server process: the model lives in memory once, and the batcher, not extra workers, is what
uses the CPU under load; ``--engine-process`` moves the model and its batcher into one child
process, so that it and the HTTP side each have their own GIL (as vLLM's engine core). Run more
replicas behind a load balancer to scale.

Slow and idle clients are bounded (``--header-timeout``, ``--body-timeout``,
``--keep-alive-timeout``, ``--max-connections``), and SIGTERM (``docker stop``) drains: no new
connections, new requests 503, ``--grace-period`` seconds for the requests in flight, then the
rest end with 503 or a stream's error event and ``[DONE]``
(:mod:`course_utils.serving.connections`).
"""

from __future__ import annotations

import argparse
import logging

from course_utils.serving.app import create_app
from course_utils.serving.connections import ConnectionLimits, serve
from course_utils.serving.models import DEFAULT_MODEL

_DEFAULTS = ConnectionLimits()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m course_utils.serving",
                                     description="Serve a causal LM over HTTP.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to listen on (0.0.0.0 inside a container)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help="course-gpt, a checkpoint directory, or random-tiny")
    parser.add_argument("--batching", choices=["continuous", "static", "none"],
                        default="continuous",
                        help="continuous: requests join and leave the running batch at every "
                             "step (default); static: a batch runs until its last request is "
                             "done; none: one request at a time")
    parser.add_argument("--no-batching", action="store_true",
                        help="the same as --batching none (the cheat-sheet design)")
    parser.add_argument("--max-batch-size", type=int, default=16)
    parser.add_argument("--max-wait-ms", type=float, default=5.0,
                        help="how long the batcher waits for more requests to join a batch")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: available CPUs minus one)")
    parser.add_argument("--engine-process", action="store_true",
                        help="run the model and its batcher in a child process, so that they "
                             "and the HTTP server do not share one GIL (more throughput under "
                             "load; one more process)")
    parser.add_argument("--quantize", action="store_true", help="serve the int8 model")
    parser.add_argument("--draft-model", default=None, metavar="NAME",
                        help="a smaller model with the same tokenizer (e.g. course-gpt-mini): "
                             "greedy requests (temperature 0) are decoded speculatively, with "
                             "the same text, one row at a time (for latency at light load); "
                             "sampling requests take the ordinary batched path")
    parser.add_argument("--num-draft-tokens", type=int, default=4, metavar="K",
                        help="tokens the draft proposes per round (with --draft-model)")
    clients = parser.add_argument_group("clients and shutdown (seconds)")
    clients.add_argument("--header-timeout", type=float, default=_DEFAULTS.header_timeout,
                         help="a request's headers must arrive within this, or 408 and the "
                              "connection is closed (slow-loris clients)")
    clients.add_argument("--body-timeout", type=float, default=_DEFAULTS.body_timeout,
                         help="a request's body must arrive within this after its headers, "
                              "or 408")
    clients.add_argument("--keep-alive-timeout", type=float,
                         default=_DEFAULTS.keep_alive_timeout,
                         help="close a connection idle this long between requests")
    clients.add_argument("--max-connections", type=int, default=_DEFAULTS.max_connections,
                         help="beyond this many open connections or running requests, answer "
                              "503 at once (0: no limit)")
    clients.add_argument("--grace-period", type=float, default=_DEFAULTS.grace_seconds,
                         help="on SIGTERM, how long requests in flight may still run")
    clients.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                         help="allow browser pages from ORIGIN (e.g. http://localhost:3000) to "
                              "call the API; repeat for several. CORS is off without it")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    try:
        limits = ConnectionLimits(header_timeout=args.header_timeout,
                                  body_timeout=args.body_timeout,
                                  keep_alive_timeout=args.keep_alive_timeout,
                                  max_connections=args.max_connections or None,
                                  grace_seconds=args.grace_period)
    except ValueError as exc:
        parser.error(str(exc))
    app = create_app(model_name=args.model, batching="none" if args.no_batching else args.batching,
                     max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
                     num_threads=args.threads, quantize=args.quantize,
                     draft_model=args.draft_model, num_draft_tokens=args.num_draft_tokens,
                     limits=limits, cors_origins=args.cors_origin,
                     engine_process=args.engine_process)
    serve(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
