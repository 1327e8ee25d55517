"""The autograder engine: verdicts, reports, strict mode, time limits, progress."""

import json

import pytest
import torch

from course_utils import grading
from course_utils.grading import Case, Exercise, core, store


def _double(x):
    return x * 2


def _cases(rng):
    yield Case((torch.randn(3, generator=rng),), label="three numbers")
    yield Case((torch.tensor([1.0, -1.0]),), label="two numbers")


@pytest.fixture()
def ex(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_PROGRESS_FILE", str(tmp_path / "p.json"))
    monkeypatch.delenv("COURSE_STRICT", raising=False)
    exercise = Exercise(id="99.1", title="double it", reference=_double, cases=_cases,
                        hint="multiply by two", time_limit=2.0,
                        mistakes=[(lambda x: x * 3, "you tripled it")])
    grading.register(exercise)
    yield exercise
    core._REGISTRY.pop("99.1", None)


def test_reference_passes_and_result_is_truthy(ex, capsys):
    result = grading.check("99.1", _double)
    assert result.passed and result and result.status == "passed"
    assert "passed all 2 checks" in capsys.readouterr().out


def test_wrong_answer_reports_case_expected_and_specific_hint(ex, capsys):
    result = grading.check("99.1", lambda x: x * 3)
    out = capsys.readouterr().out
    assert not result.passed and result.status == "failed"
    assert "three numbers" in out and "you tripled it" in out and "Traceback" not in out


def test_unsolved_reads_not_attempted_and_never_raises(ex, capsys):
    def unsolved(x):
        raise NotImplementedError("Your turn")

    result = grading.check("99.1", unsolved)
    assert result.status == "not attempted"
    assert "not attempted yet" in capsys.readouterr().out


def test_strict_mode_raises_on_failure_and_unsolved(ex, monkeypatch):
    monkeypatch.setenv("COURSE_STRICT", "1")
    with pytest.raises(grading.ExerciseFailed, match="failed"):
        grading.check("99.1", lambda x: x)
    with pytest.raises(grading.ExerciseFailed, match="not attempted"):
        grading.check("99.1", lambda x: (_ for _ in ()).throw(NotImplementedError))
    assert grading.check("99.1", _double).passed


@pytest.mark.parametrize("fn, words", [
    (lambda x: 1 / 0, "ZeroDivisionError"),
    (lambda x: [1, 2], "should be a torch.Tensor"),
    (lambda x: torch.zeros(5), "shape"),
    (lambda x: (x * 2).double(), "dtype"),
    (lambda x: x * float("nan"), "NaN"),
    ("not a function", "needs your function"),
])
def test_learner_errors_get_one_clear_line(ex, capsys, fn, words):
    result = grading.check("99.1", fn)
    out = capsys.readouterr().out
    assert not result.passed and words in out and "Traceback" not in out


def test_in_place_change_of_an_input_is_caught(ex, capsys):
    def sneaky(x):
        x.mul_(2)
        return x

    assert not grading.check("99.1", sneaky).passed
    assert "in place" in capsys.readouterr().out


def test_time_limit_stops_an_endless_loop(ex, capsys):
    def forever(x):
        while True:
            pass

    result = grading.check("99.1", forever)
    assert result.status == "failed" and "longer than 2 s" in capsys.readouterr().out


def test_unknown_exercise_is_a_friendly_error(ex, capsys):
    result = grading.check("42.42", _double)
    assert result.status == "error" and "no exercise" in capsys.readouterr().out


def test_progress_is_saved_and_a_pass_is_kept(ex, tmp_path, capsys):
    grading.check("99.1", _double)
    grading.check("99.1", lambda x: x)
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["99.1"]["status"] == "passed" and data["99.1"]["attempts"] == 2
    assert data["99.1"]["last_status"] == "failed"
    assert grading.progress()["99.1"] == "passed"


def test_damaged_progress_file_reads_as_empty(monkeypatch, tmp_path):
    bad = tmp_path / "p.json"
    bad.write_text("{not json")
    monkeypatch.setenv("COURSE_PROGRESS_FILE", str(bad))
    assert store.load() == {}
    store.record("01.1", "passed")
    assert store.load()["01.1"]["status"] == "passed"


def test_hint_and_solution_show_the_reference(ex, capsys):
    grading.hint("99.1")
    src = grading.solution("99.1")
    assert "multiply by two" in capsys.readouterr().out
    assert "def _double" in src


def test_exercises_lists_every_lesson_with_its_reference():
    ids = grading.exercises()
    assert {"01.1", "01.2", "01.3"} <= set(ids)
    assert all(callable(f) for f in ids.values())


def test_every_registered_reference_passes_its_own_grader():
    for ex_id in grading.exercises():
        ex = grading.get_exercise(ex_id)
        result = grading.run_exercise(ex, ex.reference)
        assert result.passed, result.message
