"""The autograder: ``check(id, fn)``, ``hint(id)``, ``solution(id)``, ``progress()``.

Exercises live in ``lessonNN.py`` modules next to this file, one per lesson, each registering
its exercises with :func:`course_utils.grading.core.register`. An exercise whose answer is an
``nn.Module`` class is a :class:`~course_utils.grading.modules.ModuleExercise`.
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
from course_utils.grading.modules import ModuleCase, ModuleExercise

__all__ = ["Case", "CheckResult", "Exercise", "ExerciseFailed", "ModuleCase", "ModuleExercise",
           "check", "compare", "exercises", "get_exercise", "hint", "progress", "register",
           "run_exercise", "solution"]
