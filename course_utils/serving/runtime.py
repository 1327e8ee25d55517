"""CPU threads for a server: give torch the cores it can really use, and no more.

torch sizes its thread pool from the machine's cores. In a container limited with
``--cpus 2`` on a 64-core host that is 64 threads fighting over 2 cores, and every request
slows down (oversubscription). Here the count comes from what this process may actually use:
its CPU affinity and the cgroup quota that Docker and Kubernetes set. One core is left to the
event loop, which parses HTTP and JSON and tokenizes while the model computes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch


def available_cpus() -> int:
    """CPUs this process may use: affinity, capped by a cgroup v2/v1 CPU quota if set."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    quota = None
    v2 = Path("/sys/fs/cgroup/cpu.max")
    v1q = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
    v1p = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
    try:
        if v2.exists():
            limit, period = v2.read_text().split()[:2]
            if limit != "max":
                quota = int(limit) / int(period)
        elif v1q.exists() and v1p.exists():
            limit, period = int(v1q.read_text()), int(v1p.read_text())
            if limit > 0:
                quota = limit / period
    except (OSError, ValueError):
        quota = None
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def configure_torch_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op threads (default: available CPUs minus one) and return the count.

    Inter-op parallelism is set to 1 when torch still allows it (only before its first
    parallel work): a server runs one model call at a time on its batching thread.
    """
    if num_threads is None:
        num_threads = max(1, available_cpus() - 1)
    if not isinstance(num_threads, int) or isinstance(num_threads, bool) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive integer, got {num_threads!r}")
    torch.set_num_threads(num_threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or parallel work has started: keep what it is
        pass
    return num_threads
