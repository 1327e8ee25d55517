"""Shared by the benchmark scripts: timing medians with alternation, peak memory, results files.

Each figure is a median over repeated runs, and the compared variants take turns (A B A B ...)
so that drift on a shared machine hits them alike. Results go to ``benchmarks/results/<name>.json``
and a markdown table to ``benchmarks/results/<name>.md``; ``run_all.py`` gathers the tables.
"""

from __future__ import annotations

import json
import platform
import statistics
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def alternate(variants: dict[str, Callable[[], object]], repeats: int = 5,
              warmup: int = 1) -> dict[str, dict[str, float]]:
    """Time every variant ``repeats`` times, in turns; return median and spread in seconds."""
    from course_utils.model_report import timed_in_turns

    samples = timed_in_turns(variants, repeats, warmup)
    return {name: {"median_s": statistics.median(s), "min_s": min(s), "max_s": max(s),
                   "runs": len(s)} for name, s in samples.items()}


def machine() -> dict[str, str]:
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "threads": str(torch.get_num_threads()), "processor": platform.machine(),
            "when": datetime.now(UTC).isoformat(timespec="seconds")}


def write_results(name: str, data: dict, table_md: str) -> Path:
    """Write ``results/<name>.json`` and ``results/<name>.md`` and print the table."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=1) + "\n")
    (RESULTS / f"{name}.md").write_text(table_md.rstrip() + "\n")
    print(table_md)
    return path
