"""Course run: execute every lesson, both editions, and measure time and peak memory.

    python benchmarks/run_notebooks.py                 # all lessons, both editions
    python benchmarks/run_notebooks.py --only 01 03    # some lessons
    python benchmarks/run_notebooks.py --edition student

Budgets (COURSE_DESIGN.md): each notebook <= 90 s and < 1.5 GB, the whole course < 8 minutes,
on 2 cores. Peak memory is the kernel's peak resident set (``VmHWM``) plus what its child
processes (e.g. lesson 08's server) use at their peak, polled every 50 ms. The solution edition
runs in strict mode, as in the tests. Writes ``benchmarks/results/course_run.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import build_notebooks  # noqa: E402
from common import write_results  # noqa: E402
from memory_watch import vm_hwm_mb  # noqa: E402

TIME_BUDGET_S = 90.0
MEMORY_BUDGET_MB = 1536.0
COURSE_BUDGET_S = 480.0


class PeakMemory(threading.Thread):
    """Poll the kernel of an nbclient client: its own high-water mark plus its children."""

    def __init__(self, client: NotebookClient, interval: float = 0.05):
        super().__init__(daemon=True)
        self.client, self.interval, self.peak_mb = client, interval, 0.0
        self._done = threading.Event()

    def _kernel(self) -> psutil.Process | None:
        km = getattr(self.client, "km", None)
        pid = getattr(getattr(km, "provisioner", None), "pid", None)
        try:
            return psutil.Process(pid) if pid else None
        except psutil.Error:
            return None

    def run(self) -> None:
        while not self._done.is_set():
            proc = self._kernel()
            if proc is not None:
                try:
                    hwm = vm_hwm_mb(proc.pid)
                    rss = proc.memory_info().rss / 2**20
                    kids = sum(c.memory_info().rss for c in proc.children(recursive=True)) / 2**20
                    self.peak_mb = max(self.peak_mb, hwm + kids, rss + kids)
                except psutil.Error:
                    pass
            self._done.wait(self.interval)

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak_mb


def run_notebook(path: Path, strict: bool, timeout: int = 600) -> dict:
    """Execute one notebook in a fresh kernel; return time, peak memory and any error."""
    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               COURSE_PROGRESS_FILE=str(Path(tempfile.mkdtemp()) / "progress.json"))
    env.pop("COURSE_STRICT", None)
    if strict:
        env["COURSE_STRICT"] = "1"
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    watcher = PeakMemory(client)
    watcher.start()
    started = time.perf_counter()
    error = None
    try:
        client.execute(env=env)
    except Exception as exc:  # report, don't stop the whole run
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:200]}"
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 1), "peak_mb": round(watcher.stop(), 0), "error": error}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="lesson numbers, e.g. 01 03")
    parser.add_argument("--edition", choices=["student", "solution", "both"], default="both")
    args = parser.parse_args(argv)
    build_notebooks.build()
    rows = []
    for src in build_notebooks.sources():
        if args.only and src.stem[:2] not in args.only:
            continue
        editions = ["student", "solution"] if args.edition == "both" else [args.edition]
        for edition in editions:
            path = (src.with_suffix(".ipynb") if edition == "student"
                    else build_notebooks.SOLUTIONS / f"{src.stem}.ipynb")
            result = run_notebook(path, strict=edition == "solution")
            ok = (result["error"] is None and result["seconds"] <= TIME_BUDGET_S
                  and result["peak_mb"] < MEMORY_BUDGET_MB)
            rows.append({"notebook": src.stem, "edition": edition, **result, "within_budget": ok})
            print(f"{src.stem:<28} {edition:<8} {result['seconds']:>6.1f} s "
                  f"{result['peak_mb']:>6.0f} MB {'ok' if ok else 'OVER BUDGET'}"
                  f"{'  ' + result['error'] if result['error'] else ''}", flush=True)
    total = sum(r["seconds"] for r in rows)
    table = ["| notebook | edition | time (s) | peak memory (MB) | within budget |",
             "|---|---|---:|---:|---|"]
    table += [f"| {r['notebook']} | {r['edition']} | {r['seconds']:.1f} | {r['peak_mb']:.0f} | "
              f"{'yes' if r['within_budget'] else 'NO'}"
              f"{' (' + r['error'] + ')' if r['error'] else ''} |" for r in rows]
    per_edition = {e: sum(r["seconds"] for r in rows if r["edition"] == e)
                   for e in ("student", "solution")}
    table.append(f"\nTotal: {total:.0f} s for {len(rows)} runs (student edition "
                 f"{per_edition['student']:.0f} s, solution edition {per_edition['solution']:.0f}"
                 f" s; budget: the whole course < {COURSE_BUDGET_S:.0f} s per edition).")
    write_results("course_run", {"rows": rows, "total_seconds": round(total, 1),
                                 "per_edition_seconds": per_edition,
                                 "budgets": {"notebook_s": TIME_BUDGET_S,
                                             "notebook_mb": MEMORY_BUDGET_MB,
                                             "course_s": COURSE_BUDGET_S}}, "\n".join(table))
    return 0 if all(r["error"] is None for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
