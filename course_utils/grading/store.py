"""The learner's progress: a small JSON file, written atomically so no attempt is lost."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path


def path() -> Path:
    """Where progress lives: ``$COURSE_PROGRESS_FILE``, else ``~/.course_progress.json``."""
    env = os.environ.get("COURSE_PROGRESS_FILE")
    return Path(env) if env else Path.home() / ".course_progress.json"


def load() -> dict[str, dict]:
    """Read the progress file; a missing or damaged file reads as no progress."""
    try:
        data = json.loads(path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record(exercise_id: str, status: str) -> None:
    """Record one attempt. A passed exercise stays passed when a later attempt fails."""
    data = load()
    entry = data.get(exercise_id, {})
    entry["attempts"] = int(entry.get("attempts", 0)) + (status != "not attempted")
    if entry.get("status") != "passed" or status == "passed":
        entry["status"] = status
    entry["last_status"] = status
    entry["updated"] = datetime.now(UTC).isoformat(timespec="seconds")
    data[exercise_id] = entry
    target = path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".progress-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(tmp, target)
    except OSError as exc:  # a read-only home must not stop the lesson
        print(f"(could not save progress to {target}: {exc}; set COURSE_PROGRESS_FILE)")
