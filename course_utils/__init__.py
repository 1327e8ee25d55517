"""course_utils: the reference implementations, widgets and autograder of the course.

The notebooks import from here; so do the widgets, the grader and the tests. Every module is
importable without Jupyter. The names below are the ones a learner uses in every lesson.
"""

from __future__ import annotations

import os

# Nothing in the course needs the network: never let a hub call wait on retries.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
# Idle OpenMP threads sleep instead of spinning (only effective if torch is not imported yet).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from course_utils.grading import check, exercises, hint, progress, solution  # noqa: E402
from course_utils.seeding import seed_everything  # noqa: E402

__all__ = ["check", "exercises", "hint", "progress", "seed_everything", "solution"]
