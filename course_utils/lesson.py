"""``start_lesson``: the one call at the top of every notebook.

It does what each lesson used to repeat in its first cell: seed every random number generator,
give torch its thread budget, check that idle OpenMP threads sleep, and (for the lessons that
train with the Hugging Face ``Trainer``) quiet the progress bars and load reports. It prints
nothing when all is well.

The OpenMP wait policy is read once, when torch is first imported, so it cannot be set here:
:mod:`course_utils.environment` sets it as soon as ``course_utils`` is imported. A notebook
therefore imports ``course_utils`` before torch; if torch came first, ``start_lesson`` warns.
"""

from __future__ import annotations

import warnings

from course_utils.environment import omp_policy_problem
from course_utils.seeding import seed_everything


class SlowThreadsWarning(UserWarning):
    """torch was imported before the OpenMP wait policy was set: idle threads may spin."""


def start_lesson(seed: int = 0, *, threads: int | None = None, quiet: bool = False,
                 load_reports: bool = True) -> None:
    """Set up a lesson so that it runs the same on every run, within the course's CPU budget.

    - ``seed``: passed to :func:`~course_utils.seeding.seed_everything` (Python, NumPy, torch,
      deterministic kernels).
    - ``threads``: ``torch.set_num_threads(threads)``; None leaves torch's default. Lessons use
      1 or 2: the course's budget is 2 CPU cores, and on a shared machine threads that wait for
      each other cost more than they give.
    - ``quiet``: no progress bars from ``datasets`` (``map()``) or ``transformers`` (loading),
      and no warning that ``pin_memory`` has no GPU to pin for. The ``Trainer`` keeps its own.
    - ``load_reports=False``: ``transformers`` logs errors only (no load reports).

    Warns (:class:`SlowThreadsWarning`) when torch was imported before ``course_utils`` without
    ``OMP_WAIT_POLICY`` set, since setting it now is too late.
    """
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool)
                                or threads < 1):
        raise ValueError(f"threads must be a positive int (or None for torch's default), "
                         f"got {threads!r}")
    problem = omp_policy_problem()
    if problem:
        warnings.warn(problem, SlowThreadsWarning, stacklevel=2)
    seed_everything(seed)
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    if quiet:
        import datasets.utils.logging
        import transformers

        datasets.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()
        warnings.filterwarnings("ignore", message=".*pin_memory.*")  # no GPU here: nothing to pin
    if not load_reports:
        import transformers

        transformers.utils.logging.set_verbosity_error()
