"""A real server process for the SIGTERM test: the tiny test model, slowed to a fixed time per
forward pass, so that a long request is certain to outlast the grace period.

    python tests/_slow_server.py PORT GRACE_SECONDS SECONDS_PER_STEP
"""

from __future__ import annotations

import logging
import sys
import time

from serving_helpers import tiny_model, tiny_tokenizer

from course_utils.serving.app import create_app
from course_utils.serving.connections import ConnectionLimits, serve

NAME = "tiny-test"


def main() -> None:
    port, grace, step = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    logging.basicConfig(level=logging.INFO)
    tok = tiny_tokenizer()
    model = tiny_model(tok)
    forward = model.forward

    def slow_forward(*args, **kwargs):
        time.sleep(step)
        return forward(*args, **kwargs)

    model.forward = slow_forward
    app = create_app(model, tok, model_name=NAME, max_batch_size=8, max_wait_ms=50,
                     num_threads=1, limits=ConnectionLimits(grace_seconds=grace))
    serve(app, port=port, log_level="info")


if __name__ == "__main__":
    main()
