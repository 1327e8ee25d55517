"""The autograder: ``check(id, fn)``, ``hint(id)``, ``solution(id)``, ``progress()``.

Exercises live in ``lessonNN.py`` modules next to this file, one per lesson, each registering
its exercises with :func:`course_utils.grading.core.register`.
"""

from course_utils.grading.core import (
    Case,
    CheckResult,
    Exercise,
    ExerciseFailed,
    check,
    compare,
    exercises,
    get_exercise,
    hint,
    progress,
    register,
    run_exercise,
    solution,
)

__all__ = ["Case", "CheckResult", "Exercise", "ExerciseFailed", "check", "compare", "exercises",
           "get_exercise", "hint", "progress", "register", "run_exercise", "solution"]
