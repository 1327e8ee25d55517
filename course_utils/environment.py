"""The process-wide defaults the course sets before anything imports torch or Hugging Face.

This is the one place they are set. ``course_utils/__init__.py`` calls :func:`apply_defaults`
first thing, and Python runs a package's ``__init__`` before any of its modules, so every way
into the course applies them first: ``import course_utils``, ``import course_utils.serving.app``,
the server's child process ``python -m course_utils.serving``, a test, a script.

Each default is a ``setdefault``: a value already in the environment (the Makefile, Binder's
``start``, the Dockerfile, or a learner who goes online) wins.

- ``HF_HUB_OFFLINE=1``: nothing in the course needs the network, so no hub call ever waits on
  retries. ``huggingface_hub`` reads it once, when it is first imported; to use the hub, set
  ``HF_HUB_OFFLINE=0`` before importing ``course_utils``.
- ``TRANSFORMERS_NO_ADVISORY_WARNINGS=1``: no "you should train this model" advice per load.
- ``OMP_WAIT_POLICY=PASSIVE``: idle OpenMP threads sleep instead of spinning. On a busy 2-core
  machine (Binder, a shared laptop) spinning threads made two-thread torch steps many times
  slower. OpenMP reads it once, when torch is first imported: :func:`omp_policy_problem` says
  when that happened before these defaults were set.
"""

from __future__ import annotations

import os
import sys

DEFAULTS = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
            "OMP_WAIT_POLICY": "PASSIVE"}

# What torch saw, if it was imported before the defaults were applied (else None).
_policy_before_torch: str | None = None
_torch_first = False


def apply_defaults() -> None:
    """Set every default in :data:`DEFAULTS` that the environment does not already set."""
    global _policy_before_torch, _torch_first
    if "torch" in sys.modules and not _torch_first:
        _torch_first = True
        _policy_before_torch = os.environ.get("OMP_WAIT_POLICY")
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)


def omp_policy_problem() -> str | None:
    """Why idle torch threads may spin in this process, or None if OpenMP got the policy.

    OpenMP reads ``OMP_WAIT_POLICY`` once, when torch is imported. If torch came before
    ``course_utils`` and the environment did not set the policy, setting it later does nothing.
    """
    wanted = os.environ.get("OMP_WAIT_POLICY", DEFAULTS["OMP_WAIT_POLICY"])
    if not _torch_first or (_policy_before_torch or "").upper() == wanted.upper():
        return None
    seen = _policy_before_torch or "unset (OpenMP's default)"
    return (f"torch was imported before course_utils, with OMP_WAIT_POLICY {seen} instead of "
            f"{wanted}: idle threads may spin and slow every step on a busy machine. Restart "
            "the kernel and import course_utils before torch (or export "
            f"OMP_WAIT_POLICY={wanted} before starting Jupyter).")
