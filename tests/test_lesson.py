"""start_lesson, the first call of every notebook, and the environment defaults behind it."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from course_utils import environment
from course_utils.lesson import start_lesson

ROOT = Path(__file__).resolve().parent.parent


def run(code: str, **env: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter whose environment lacks the course's defaults."""
    base = {k: v for k, v in os.environ.items() if k not in environment.DEFAULTS}
    out = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True,
                         text=True, env={**base, "PYTHONPATH": str(ROOT), **env}, cwd=ROOT,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_it_seeds_python_numpy_and_torch(threads):
    draws = []
    for _ in range(2):
        start_lesson(seed=7)
        draws.append((random.random(), float(np.random.rand()), torch.rand(3).tolist()))
    assert draws[0] == draws[1]
    start_lesson(seed=8)
    assert torch.rand(3).tolist() != draws[0][2]


def test_it_sets_the_thread_count_and_returns_nothing_to_display(threads):
    assert start_lesson(seed=0, threads=1) is None  # a notebook cell shows no stray value
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_a_bad_thread_count_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="threads must be a positive int"):
        start_lesson(seed=0, threads=bad)


def test_a_bad_seed_is_a_clear_error():
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        start_lesson(seed=-1)


def test_quiet_silences_the_hugging_face_bars_and_load_reports():
    code = ("from course_utils import start_lesson\n"
            "start_lesson(seed=0, quiet=True, load_reports=False)\n"
            "import datasets.utils.logging as d, transformers, warnings\n"
            "assert not d.is_progress_bar_enabled()\n"
            "assert not transformers.utils.logging.is_progress_bar_enabled()\n"
            "assert transformers.utils.logging.get_verbosity() == transformers.logging.ERROR\n"
            "warnings.warn(\"'pin_memory' is set but no accelerator is found\")\n"
            "warnings.warn('an unrelated warning')\n"
            "print('ok')")
    out = run(code)
    assert out.stdout.strip().endswith("ok")
    assert "pin_memory" not in out.stderr and "an unrelated warning" in out.stderr
    loud = run("from course_utils import start_lesson\nstart_lesson(seed=0)\n"
               "import sys\nassert 'transformers' not in sys.modules and "
               "'datasets' not in sys.modules\nprint('ok')")
    assert loud.stdout.strip().endswith("ok")  # nothing asked, nothing heavy imported


def test_course_utils_before_torch_gets_sleeping_threads_and_no_warning():
    out = run("import course_utils, os\nimport torch\ncourse_utils.start_lesson(seed=0)\n"
              "assert os.environ['OMP_WAIT_POLICY'] == 'PASSIVE'")
    assert "SlowThreadsWarning" not in out.stderr


def test_torch_before_course_utils_warns_that_the_policy_came_too_late():
    out = run("import torch\nfrom course_utils import start_lesson\nstart_lesson(seed=0)")
    assert "SlowThreadsWarning" in out.stderr and "import course_utils before torch" in out.stderr


def test_a_policy_set_by_the_environment_is_enough_and_is_kept():
    out = run("import torch\nimport os\nfrom course_utils import start_lesson\n"
              "start_lesson(seed=0)\nassert os.environ['OMP_WAIT_POLICY'] == 'PASSIVE'",
              OMP_WAIT_POLICY="PASSIVE")
    assert "SlowThreadsWarning" not in out.stderr
    out = run("import os\nimport course_utils\nassert os.environ['OMP_WAIT_POLICY'] == 'ACTIVE'",
              OMP_WAIT_POLICY="ACTIVE")  # the learner's choice wins over the default


def test_the_warning_says_how_to_fix_it(monkeypatch):
    monkeypatch.setattr(environment, "_torch_first", True)
    monkeypatch.setattr(environment, "_policy_before_torch", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start_lesson(seed=0)
    assert any("import course_utils before torch" in str(w.message) for w in caught)
