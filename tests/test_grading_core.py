"""The autograder engine: verdicts, reports, strict mode, time limits, progress."""

import json
import signal
import sys
import threading
import time

import numpy as np
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


# --------------------------------------------------------------------------- robustness (#15)

def _register(monkeypatch, tmp_path, **kw):
    monkeypatch.setenv("COURSE_PROGRESS_FILE", str(tmp_path / "p.json"))
    monkeypatch.delenv("COURSE_STRICT", raising=False)
    fields = {"id": "99.2", "title": "robustness", "reference": _double, "cases": _cases,
              "hint": "multiply by two", "time_limit": 2.0, **kw}
    exercise = Exercise(**fields)
    grading.register(exercise)
    return exercise


@pytest.fixture()
def make(monkeypatch, tmp_path):
    yield lambda **kw: _register(monkeypatch, tmp_path, **kw)
    core._REGISTRY.pop("99.2", None)


def _retry_forever(x):
    while True:
        try:
            while True:
                pass
        except:  # noqa: E722 (the learner's bare except is the point of this test)
            pass


def _retry_sleeping(x):
    while True:
        try:
            time.sleep(5)
        except:  # noqa: E722
            continue


def _retry_helper_fails(x):
    def flaky():
        sum(range(100_000))
        raise ValueError("try again")

    while True:
        try:
            return flaky()
        except BaseException:
            pass


def _retry_nested(x):
    while True:
        try:
            try:
                while True:
                    pass
            except:  # noqa: E722
                pass
        except:  # noqa: E722
            pass


@pytest.mark.parametrize("fn", [_retry_forever, _retry_sleeping, _retry_helper_fails,
                                _retry_nested])
def test_a_bare_except_retry_loop_cannot_swallow_the_time_limit(ex, capsys, fn):
    old_handler = signal.getsignal(signal.SIGALRM)
    started = time.monotonic()
    result = grading.check("99.1", fn)
    took = time.monotonic() - started
    out = capsys.readouterr().out
    assert result.status == "failed" and took < ex.time_limit + 3, took
    assert "longer than 2 s" in out and "all 2 cases of this exercise together" in out
    # the guard is fully disarmed: no timer left, the old handler and tracer are back
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) == old_handler
    assert sys.gettrace() is None or "coverage" in type(sys.gettrace()).__module__
    assert grading.check("99.1", _double).passed  # the next check runs normally


@pytest.mark.parametrize("fn", [_retry_forever, _retry_helper_fails])
def test_the_time_limit_also_holds_outside_the_main_thread(ex, fn):
    results = []
    thread = threading.Thread(target=lambda: results.append(grading.run_exercise(ex, fn)))
    started = time.monotonic()
    thread.start()
    thread.join(timeout=ex.time_limit + 5)
    assert not thread.is_alive() and time.monotonic() - started < ex.time_limit + 5
    assert results[0].status == "failed" and "longer than 2 s" in results[0].message


def test_the_time_limit_is_one_budget_for_the_whole_exercise(ex, capsys):
    def slow(x):
        time.sleep(1.2)  # each case alone is within 2 s; both are not
        return x * 2

    result = grading.check("99.1", slow)
    assert result.status == "failed" and "case 2 of 2" in result.message


def test_a_meta_device_result_gets_a_message(ex):
    result = grading.run_exercise(ex, lambda x: torch.empty_like(x, device="meta"))
    assert result.status == "failed" and "meta device" in result.message


class _OnAnotherDevice(torch.Tensor):
    """A tensor that says it lives on a GPU (this machine has none)."""

    @property
    def device(self):
        return torch.device("cuda:0")


def test_a_result_on_another_device_or_of_another_dtype_gets_a_message(ex):
    gpu = grading.run_exercise(ex, lambda x: torch.Tensor._make_subclass(_OnAnotherDevice,
                                                                         x * 2))
    assert gpu.status == "failed" and "cuda:0 device" in gpu.message and ".to('cpu')" in gpu.message
    half = grading.run_exercise(ex, lambda x: (x * 2).half())
    assert half.status == "failed" and "dtype torch.float16" in half.message


@pytest.mark.parametrize("fn, words", [
    (lambda x: sys.exit(), "sys.exit()"),
    (lambda x: exit(3), "sys.exit()"),
    (lambda x: (_ for _ in ()).throw(KeyboardInterrupt), "interrupted (KeyboardInterrupt)"),
    (lambda x: (_ for _ in ()).throw(GeneratorExit), "GeneratorExit"),
])
def test_exits_and_interrupts_in_the_learners_code_become_a_message(ex, capsys, fn, words):
    result = grading.check("99.1", fn)
    assert result.status == "failed" and words in capsys.readouterr().out


def _learner_helper(x):
    raise NotImplementedError("batched inputs are not handled yet")


def test_a_helpers_not_implemented_error_is_an_error_with_its_line(ex):
    def mine(x):
        return _learner_helper(x)

    result = grading.run_exercise(ex, mine)
    assert result.status == "failed" and "not attempted" not in result.message
    assert "NotImplementedError: batched inputs are not handled yet" in result.message
    assert "in `_learner_helper`, line" in result.message

    def bare_in_helper(x):
        def helper():
            raise NotImplementedError
        return helper()
    assert grading.run_exercise(ex, bare_in_helper).status == "not attempted"  # nested in it

    def torch_not_implemented(x):
        raise NotImplementedError("Could not run 'aten::add' with arguments from the 'X' "
                                  "backend.")
    assert grading.run_exercise(ex, torch_not_implemented).status == "failed"


def test_the_student_stub_reads_not_attempted(ex, capsys):
    namespace = {}
    stub = 'raise NotImplementedError("Your turn: replace this line with your code.")'
    exec(f"def softmax(x):\n    {stub}\n", namespace)  # as scripts/build_notebooks.py writes it
    result = grading.check("99.1", namespace["softmax"])
    assert result.status == "not attempted" and "not attempted yet" in capsys.readouterr().out


def test_hint_and_solution_of_an_unknown_id_list_the_known_ids(ex, capsys):
    grading.hint("99.9")
    assert grading.solution("1.1") == ""
    grading.hint(42)
    out = capsys.readouterr().out
    assert out.count("Known exercises") == 3 and "01.1" in out and "99.1" in out


def test_printing_20000_lines_is_cut_before_the_verdict(ex, capsys):
    def chatty(x):
        for i in range(20_000):
            print(f"step {i}")
        return x * 2

    result = grading.check("99.1", chatty)
    out = capsys.readouterr().out
    assert result.passed
    assert "printed 40,000 lines" in out and "more lines not shown" in out
    assert len(out.splitlines()) < 20 and out.index("step 0") < out.index("passed all")


def test_what_stderr_gets_is_captured_too(ex, capsys):
    def warns(x):
        print("careful", file=sys.stderr)
        return x * 2

    assert grading.check("99.1", warns).passed
    captured = capsys.readouterr()
    assert "careful" in captured.out and "careful" not in captured.err


def _threshold(got, expected, case):  # the kind of custom comparison NaN slips through
    return "too small" if got < expected - 0.5 else None


@pytest.mark.parametrize("nan", [float("nan"), np.float32("nan"), np.array(float("nan")),
                                 torch.tensor(float("nan"))])
def test_nan_fails_even_a_threshold_comparison(make, nan):
    ex = make(reference=lambda x: float(x.sum()), compare=_threshold)
    result = grading.run_exercise(ex, lambda x: nan)
    assert result.status == "failed" and "contains NaN" in result.message


@pytest.mark.parametrize("good, bad", [
    ({"score": 0.5}, {"score": float("nan")}),
    ([0.5, 1.0], [0.5, float("inf")]),
    ((np.array([1.0, 2.0]),), (np.array([1.0, np.inf]),)),
])
def test_nan_and_inf_inside_containers_fail(make, good, bad):
    ex = make(reference=lambda x: good, compare=lambda g, e, c: None)  # accepts anything
    assert grading.run_exercise(ex, lambda x: good).passed
    result = grading.run_exercise(ex, lambda x: bad)
    assert result.status == "failed" and ("NaN" in result.message or "inf" in result.message)


def test_allow_inf_accepts_inf_where_the_spec_allows_it(make):
    ex = make(reference=lambda x: torch.full((2,), -1e9), allow_inf=True,
              compare=lambda g, e, c: None if bool((g <= -1e4).all()) else "not masked")
    assert grading.run_exercise(ex, lambda x: torch.full((2,), float("-inf"))).passed
    assert not grading.run_exercise(ex, lambda x: torch.full((2,), float("nan"))).passed


def test_a_zero_d_tensor_or_numpy_scalar_is_a_valid_float(make):
    ex = make(reference=lambda x: float(x.sum()))
    for answer in (lambda x: x.sum(), lambda x: np.float32(x.sum()), lambda x: x.sum().numpy()):
        assert grading.run_exercise(ex, answer).passed


def test_integers_and_masks_compare_exactly(make):
    ex = make(reference=lambda x: torch.tensor([10_000_000]), atol=1, rtol=1e-3)
    assert not grading.run_exercise(ex, lambda x: torch.tensor([10_000_001])).passed
    count = make(reference=lambda x: 10_000_000, atol=1, rtol=1e-3)
    assert "10000001, but 10000000" in grading.run_exercise(count, lambda x: 10_000_001).message
    mask = make(reference=lambda x: x > 0)
    assert "masks must match exactly" in grading.run_exercise(mask, lambda x: x >= 0.5).message


def test_inputs_print_rounded_and_without_internal_class_names(make):
    class _Shared(torch.nn.Linear):
        pass

    ex = make(reference=lambda x, m: x * 2,
              cases=lambda rng: [Case((torch.tensor([-0.7945, 0.123456789]), _Shared(2, 2)),
                                      label="two")])
    message = grading.run_exercise(ex, lambda x, m: x * 3).message
    assert "-0.7945, 0.1235" in message and "0.7944999" not in message
    assert "_Shared" not in message and "Linear model with 6 parameters" in message


def test_a_mistake_hint_needs_a_match_on_every_case(make):
    def cases(rng):
        yield Case((torch.tensor([0.0]),), label="zero")  # x * 3 == x * 2 == 0 here
        yield Case((torch.tensor([1.0]),), label="one")

    ex = make(cases=cases, mistakes=[(lambda x: x * 3, "you tripled it"),
                                     (lambda x: torch.zeros_like(x), "all zeros: you forgot x")])
    tripled = grading.run_exercise(ex, lambda x: x * 3)
    assert "you tripled it" in tripled.message
    zero = grading.run_exercise(ex, lambda x: x * 0)  # equals the mistake x * 3 on case 1 only
    assert "you tripled it" not in zero.message and "all zeros" in zero.message
    squared = grading.run_exercise(ex, lambda x: x * x * 4)  # like x * 3 on no case but case 1
    assert "tripled" not in squared.message and "multiply by two" in squared.message

    def fussy(x):  # raises where the learner's answer did not: not a match
        if float(x.sum()) == 0:
            raise ValueError
        return x * 3
    ex.mistakes = [(fussy, "you tripled it")]
    assert "tripled" not in grading.run_exercise(ex, lambda x: x * 3 + x * 0).message


def test_strict_mode_raises_on_every_kind_of_failure(ex, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_STRICT", "1")
    for fn in (_retry_forever, lambda x: sys.exit(), lambda x: torch.empty(2, device="meta")):
        with pytest.raises(grading.ExerciseFailed):
            grading.check("99.1", fn)
    with pytest.raises(grading.ExerciseFailed, match="no exercise"):
        grading.check("42.42", _double)


def test_a_bug_in_the_grader_is_not_blamed_on_the_learner(make):
    def broken_cases(rng):
        raise IndexError("oops")
        yield

    ex = make(cases=broken_cases)
    result = grading.run_exercise(ex, _double)
    assert result.status == "error" and "grader itself failed" in result.message
    assert "making the cases" in result.message and "not in your code" in result.message
    ex2 = make(reference=lambda x: 1 / 0)
    assert "the reference on case 1" in grading.run_exercise(ex2, _double).message


def test_a_result_that_cannot_be_compared_is_a_message_not_a_traceback(make):
    class Weird(list):
        def __len__(self):
            raise RuntimeError("no length")

    ex = make(reference=lambda x: [1, 2])
    result = grading.run_exercise(ex, lambda x: Weird([1, 2]))
    assert result.status == "failed" and "could not be checked" in result.message


# --------------------------------------------------------------------------- isolation


class _NoCopy:
    """An argument that copy.deepcopy cannot copy."""

    def __init__(self, v):
        self.v = v

    def __deepcopy__(self, memo):
        raise TypeError("cannot copy")


def test_expected_values_come_from_private_copies_before_the_learner_runs(make):
    seen = []

    def reference(x, box):
        seen.append(box.v.clone())
        return x * box.v

    ex = make(reference=reference, cases=lambda rng: [Case((torch.ones(2), _NoCopy(
        torch.tensor([2.0, 3.0]))), label="uncopyable box")])

    def mutating(x, box):
        box.v = box.v * 0  # changes the shared (uncopyable) object
        return x * 0

    result = grading.run_exercise(ex, mutating)
    assert result.status == "failed" and "changed its input `box`" in result.message
    assert "shared with the rest of the lesson" in result.message
    assert torch.equal(seen[0], torch.tensor([2.0, 3.0]))  # the reference saw the original
    assert grading.run_exercise(ex, lambda x, box: x * box.v).passed


def _model_cases(rng):
    torch.manual_seed(0)
    yield Case((torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU()),), label="mlp")


def _count(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("sneaky", [
    lambda m: (m[0].weight.data.zero_(), _count(m))[1],
    lambda m: (m.requires_grad_(False), 8)[1],
    lambda m: (m.append(torch.nn.Linear(2, 2)), 8)[1],
])
def test_changing_a_model_argument_is_caught(make, sneaky):
    ex = make(reference=_count, cases=_model_cases)
    result = grading.run_exercise(ex, sneaky)
    assert result.status == "failed" and "changed its input `model`" in result.message
    assert grading.run_exercise(ex, lambda m: (m.eval(), _count(m))[1]).passed  # mode is fine


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate("[PAD] [UNK] the cat sat on a mat".split())}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")


def _encode(texts, tokenizer):
    return tokenizer(texts, truncation=True, max_length=3)["input_ids"]


@pytest.mark.parametrize("sneaky", [
    lambda texts, tok: (setattr(tok, "padding_side", "left"), _encode(texts, tok))[1],
    lambda texts, tok: (tok.add_tokens(["dog"]), _encode(texts, tok))[1],
    lambda texts, tok: (setattr(tok, "model_max_length", 3), _encode(texts, tok))[1],
])
def test_changing_a_tokenizer_argument_is_caught(make, tokenizer, sneaky):
    ex = make(reference=_encode, cases=lambda rng: [
        Case((["the cat sat on a mat", "a cat"], tokenizer), label="two texts")])
    result = grading.run_exercise(ex, sneaky)
    assert result.status == "failed" and "changed its input `tokenizer`" in result.message
    # calling it (which leaves truncation state in a fast tokenizer) is not a change
    assert grading.run_exercise(ex, lambda texts, tok: tok(texts, truncation=True, max_length=3,
                                                           padding=True)["input_ids"]).status \
        == "failed"  # padded: a wrong answer, but not reported as a change
    assert grading.run_exercise(ex, _encode).passed
    assert tokenizer.padding_side == "right" and len(tokenizer) == 8  # the fixture is untouched


# --------------------------------------------------------------------------- progress store


def test_an_old_progress_file_is_renumbered_exactly_once(monkeypatch, tmp_path):
    old = {"05.2": {"status": "passed", "attempts": 1},  # old 05.2 = accuracy (now 05.3)
           "05.3": {"status": "failed", "attempts": 4},  # old 05.3 = LM loss (now 05.2)
           "08.1": {"status": "passed", "attempts": 2}, "01.1": {"status": "passed"}}
    target = tmp_path / "p.json"
    target.write_text(json.dumps(old))
    monkeypatch.setenv("COURSE_PROGRESS_FILE", str(target))
    first = store.load()
    # accuracy went 05.2 -> 05.3 (version 2) and was dropped when 05.3 became compute_metrics
    assert "05.3" not in first and first["05.2"]["attempts"] == 4
    # left padding went 08.1 -> 08.2 (version 2) -> 08.3 (version 5, the endpoint came first)
    assert first["08.3"]["status"] == "passed" and not {"08.1", "08.2"} & set(first)
    assert json.loads(target.read_text())["_version"] == store.VERSION
    assert store.load() == first  # read again: not swapped back
    store.record("05.2", "passed")
    again = store.load()
    assert again["05.2"]["attempts"] == 5 and "05.3" not in again
    assert "_version" not in again and again["01.1"]["status"] == "passed"


def test_a_version_2_file_gets_lesson_03s_new_numbers_once(monkeypatch, tmp_path):
    v2 = {"03.3": {"status": "passed", "attempts": 2},  # top-k, now 03.11
          "03.4": {"status": "failed", "attempts": 3},  # the KV-cache step, now 03.13
          "03.1": {"status": "passed"}, "03.2": {"status": "passed"},  # gone: new exercises
          "01.3": {"status": "passed"}, "02.1": {"status": "passed"}, "_version": 2}
    target = tmp_path / "p.json"
    target.write_text(json.dumps(v2))
    monkeypatch.setenv("COURSE_PROGRESS_FILE", str(target))
    first = store.load()
    assert first["03.11"]["attempts"] == 2 and first["03.13"]["attempts"] == 3
    assert not {"03.1", "03.2", "01.3", "03.3", "03.4"} & set(first)
    assert first["02.1"]["status"] == "passed"
    assert store.load() == first


def test_a_version_4_file_gets_lessons_04_05_and_08_new_numbers_once(monkeypatch, tmp_path):
    v4 = {"04.1": {"status": "passed"}, "04.2": {"status": "failed", "attempts": 3},
          "04.3": {"status": "passed"}, "05.3": {"status": "passed"},
          "05.2": {"status": "passed", "attempts": 2}, "08.1": {"status": "passed",
                                                               "attempts": 1},
          "08.2": {"status": "failed", "attempts": 6}, "_version": 4}
    target = tmp_path / "p.json"
    target.write_text(json.dumps(v4))
    monkeypatch.setenv("COURSE_PROGRESS_FILE", str(target))
    first = store.load()
    assert first["04.3"]["attempts"] == 3 and "04.1" not in first and "04.2" not in first
    assert "05.3" not in first and first["05.2"]["attempts"] == 2
    assert first["08.2"]["attempts"] == 1 and first["08.3"]["attempts"] == 6
    assert "08.1" not in first and "08.4" not in first
    assert store.load() == first


def test_ids_are_listed_in_notebook_order():
    from course_utils.grading.core import id_order

    ids = list(grading.exercises())
    assert ids == sorted(ids, key=id_order)
    assert ids.index("03.9") < ids.index("03.10") < ids.index("03.14") < ids.index("04.1")


def test_a_damaged_progress_file_is_kept_as_a_backup_and_check_still_runs(ex, tmp_path,
                                                                          capsys):
    target = tmp_path / "p.json"
    target.write_text('{"01.1": {"status": "passed"')
    assert grading.check("99.1", _double).passed
    backups = list(tmp_path.glob("p.json.damaged-*"))
    assert len(backups) == 1 and backups[0].read_text().startswith('{"01.1"')
    assert "damaged" in capsys.readouterr().out
    assert store.load()["99.1"]["status"] == "passed"
    target.write_text('{"99.1": "passed", "01.2": {"attempts": "many"}}')  # wrong shapes
    assert grading.check("99.1", _double).passed
    assert store.load()["01.2"]["attempts"] == 0 and store.load()["99.1"]["attempts"] == 1
