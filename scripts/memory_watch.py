"""Watch a process tree's resident memory and wall time; kill the tree past a limit.

Used by the Binder rehearsal to hold a notebook's runner and kernel to Binder's 2 GB. Polls
with psutil (resident sizes of every process in the tree, summed: shared pages count twice,
so the figure errs on the safe side) and reads the kernel's high-water mark (``VmHWM``) to
catch a spike between two polls.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psutil


def vm_hwm_mb(pid: int) -> float:
    """A process's peak resident size so far in MB (Linux ``VmHWM``), 0 if unknown; the
    course run (``benchmarks/run_notebooks.py``) reads it too."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def watch(proc: subprocess.Popen, limit_mb: float, timeout_s: float,
          interval: float = 0.05) -> dict[str, object]:
    """Wait for ``proc``; kill its tree over ``limit_mb`` resident or after ``timeout_s``.

    Returns the status (ok, error, over-memory, timeout), the wall time and two peaks: the
    kernel tree (the runner's descendants) and the total (runner included).
    """
    root = psutil.Process(proc.pid)
    start = time.perf_counter()
    peak_kernel = peak_total = 0.0
    status: str | None = None
    while proc.poll() is None:
        try:
            kids = root.children(recursive=True)
            kernel = sum(_rss_mb(p) for p in kids)
            kernel_hwm = sum(vm_hwm_mb(p.pid) for p in root.children()) + sum(
                _rss_mb(p) for p in kids if p.ppid() != root.pid)
            peak_kernel = max(peak_kernel, kernel, kernel_hwm)
            peak_total = max(peak_total, kernel + _rss_mb(root), peak_kernel + _rss_mb(root))
        except psutil.Error:
            pass
        if peak_total > limit_mb or time.perf_counter() - start > timeout_s:
            status = "over-memory" if peak_total > limit_mb else "timeout"
            _kill_tree(root)
            break
        time.sleep(interval)
    proc.wait()
    wall = time.perf_counter() - start
    if status is None:
        status = "ok" if proc.returncode == 0 else "error"
    return {"status": status, "wall_s": round(wall, 1), "peak_kernel_mb": round(peak_kernel),
            "peak_total_mb": round(peak_total)}


def _rss_mb(p: psutil.Process) -> float:
    try:
        return p.memory_info().rss / 2**20
    except psutil.Error:
        return 0.0


def _kill_tree(root: psutil.Process) -> None:
    procs = root.children(recursive=True) + [root]
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=10)
