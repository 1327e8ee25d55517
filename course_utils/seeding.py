"""Seeding Python, NumPy and torch, so that a lesson runs the same on every run.

Notebooks call it through :func:`course_utils.lesson.start_lesson`; tests and scripts call it
directly.
"""

from __future__ import annotations

import os
import random


def seed_everything(seed: int = 0, *, deterministic: bool = True) -> int:
    """Seed every random number generator the course uses and return the seed.

    With ``deterministic=True`` torch is asked for deterministic kernels where it has them,
    so two runs of a notebook print the same numbers.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover - numpy ships with torch
        pass
    import torch

    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    return seed
