"""The Binder rehearsal (scripts/binder_rehearsal.py): its memory watcher, then the real thing.

The watcher tests use processes that allocate a known amount, so the reference is the size
we asked for, not the watcher's own earlier output. The rehearsal builds (or reuses) the venv
of binder/requirements.txt, runs postBuild and executes every student notebook under 2 GB.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import binder_rehearsal as br  # noqa: E402
from memory_watch import watch  # noqa: E402

ARTIFACT = ROOT / "test-artifacts" / "binder_rehearsal.json"


def _spawn(mb: int, seconds: float, in_grandchild: bool = True) -> subprocess.Popen:
    """A process whose child (like a kernel under the nbclient runner) holds ``mb`` MB."""
    hold = (f"import time; b = bytearray({mb} * 2**20); b[::4096] = b'x' * len(b[::4096]); "
            f"time.sleep({seconds})")
    code = (f"import subprocess, sys; subprocess.run([sys.executable, '-c', {hold!r}])"
            if in_grandchild else hold)
    return subprocess.Popen([sys.executable, "-c", code])


def test_watcher_reports_the_peak_of_the_child_process():
    row = watch(_spawn(200, 1.5), limit_mb=2048, timeout_s=30)
    assert row["status"] == "ok"
    assert 200 <= row["peak_kernel_mb"] < 200 + 60, row  # the child's 200 MB + its interpreter
    assert row["peak_total_mb"] > row["peak_kernel_mb"]


def test_watcher_kills_the_whole_tree_above_the_limit():
    proc = _spawn(400, 30)
    kids: list[psutil.Process] = []
    for _ in range(50):  # note the child's pid while it is alive, to check it is gone after
        kids = psutil.Process(proc.pid).children(recursive=True)
        if kids:
            break
        time.sleep(0.1)
    row = watch(proc, limit_mb=250, timeout_s=60)
    assert row["status"] == "over-memory", row
    assert row["wall_s"] < 20
    assert kids and not any(k.is_running() and k.status() != psutil.STATUS_ZOMBIE for k in kids)


def test_watcher_stops_a_notebook_that_runs_too_long():
    row = watch(_spawn(10, 60, in_grandchild=False), limit_mb=2048, timeout_s=1)
    assert row["status"] == "timeout" and row["wall_s"] < 10


def test_a_failing_runner_is_an_error():
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    assert watch(proc, limit_mb=2048, timeout_s=30)["status"] == "error"


def test_venv_key_follows_the_binder_files(tmp_path):
    (tmp_path / "requirements.txt").write_text("torch==2.13.0\n")
    (tmp_path / "runtime.txt").write_text("python-3.11\n")
    first = br.requirements_key(tmp_path)
    (tmp_path / "requirements.txt").write_text("torch==2.13.0\nnumpy==2.4.6\n")
    assert br.requirements_key(tmp_path) != first
    (tmp_path / "requirements.txt").write_text("torch==2.13.0\n")
    assert br.requirements_key(tmp_path) == first


@pytest.mark.slow
def test_binder_rehearsal_runs_every_student_notebook_under_2gb(capsys, tmp_path):
    """The rehearsal itself: ~7 min on a fresh machine (venv build), then ~30 s a notebook."""
    out = tmp_path / "binder_rehearsal.json"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "binder_rehearsal.py"),
                           "--json", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=3600)
    assert out.exists(), f"no report; the rehearsal said:\n{done.stdout[-3000:]}" \
                         f"\n{done.stderr[-3000:]}"
    ARTIFACT.parent.mkdir(exist_ok=True)
    shutil.copy(out, ARTIFACT)
    report = json.loads(out.read_text())
    with capsys.disabled():
        print("\n\nBinder rehearsal (" + str(ARTIFACT) + ")\n" + br.table(report) + "\n")
    students = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert [r["notebook"] for r in report["notebooks"]] == students
    assert report["lab_settings_installed"], "postBuild did not install jupyter/overrides.json"
    failed = {r["notebook"]: r.get("error", r["status"]) for r in report["notebooks"]
              if r["status"] != "ok"}
    assert not failed, "\n\n".join(f"{k}: {v[-1500:]}" for k, v in failed.items())
    assert all(r["peak_total_mb"] < br.LIMIT_MB for r in report["notebooks"])
    assert done.returncode == 0, done.stdout[-3000:]
