"""A real server process for the SIGTERM test: the tiny test model, slowed to a fixed time per
forward pass, so that a long request is certain to outlast the grace period.

    python tests/_slow_server.py PORT GRACE_SECONDS SECONDS_PER_STEP [process]

With ``process`` the engine runs in its own process (``engine_process=True``).
"""

from __future__ import annotations

import logging
import sys
import time

import torch
from serving_helpers import tiny_model, tiny_tokenizer

from course_utils.serving.app import create_app
from course_utils.serving.connections import ConnectionLimits, serve

NAME = "tiny-test"


class SlowModel(torch.nn.Module):
    """The model, but every forward pass takes ``step`` seconds more (picklable, so that it
    can be handed to an engine process)."""

    def __init__(self, inner: torch.nn.Module, step: float):
        super().__init__()
        self.inner, self.step, self.config = inner, step, inner.config

    @property
    def device(self) -> torch.device:
        return self.inner.device

    def forward(self, *args, **kwargs):
        time.sleep(self.step)
        return self.inner(*args, **kwargs)


def main() -> None:
    port, grace, step = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    process = sys.argv[4:] == ["process"]
    logging.basicConfig(level=logging.INFO)
    tok = tiny_tokenizer()
    model = SlowModel(tiny_model(tok), step)
    app = create_app(model, tok, model_name=NAME, max_batch_size=8, max_wait_ms=50,
                     num_threads=1, limits=ConnectionLimits(grace_seconds=grace),
                     engine_process=process)
    serve(app, port=port, log_level="info")


if __name__ == "__main__":
    main()
