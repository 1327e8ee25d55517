"""The learner's progress: a small JSON file, written atomically so no attempt is lost.

The file maps exercise ids to ``{"status", "last_status", "attempts", "updated"}`` and holds
its format version under ``"_version"``. Version 2 renumbered exercises into notebook order
(05.2 <-> 05.3, 08.1 <-> 08.2), version 3 renumbered lesson 03 and version 4 lessons 06 and 07
(see ``_RENAMES``): an older file is read once with its ids mapped and written back with the
version, so no mapping is ever applied twice. A damaged file is kept as a backup next to it
and progress starts afresh; nothing here ever stops a lesson.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

VERSION = 5
_VERSION_KEY = "_version"
# Old id -> new id (None: that exercise is gone, its progress is dropped), for files written
# before each version. Version 3: lesson 03 became the whole GPT; its old top-k and KV-cache
# exercises moved to 03.11 and 03.13, while the old 03.1/03.2 (one-line masks and positions)
# and 01.3 (a plain causal mask) are different exercises now. Version 4: lesson 06's one-line
# forward (06.1) and merge (06.3) formulas gave way to a LoRA layer class (the new 06.1) and
# new exercises after the count (06.2, unchanged), so their progress is dropped.
_RENAMES: dict[int, dict[str, str | None]] = {
    2: {"05.2": "05.3", "05.3": "05.2", "08.1": "08.2", "08.2": "08.1"},
    3: {"03.3": "03.11", "03.4": "03.13", "03.1": None, "03.2": None, "01.3": None},
    # Version 4: lesson 07's brevity penalty became part of corpus BLEU (the new 07.2; the old
    # 07.2's progress is dropped), ROUGE-L took 07.4, so perplexity moved to 07.5; lesson 06's
    # forward and merge formulas (06.1, 06.3) gave way to the LoRA layer class and injection.
    4: {"07.2": None, "07.4": "07.5", "06.1": None, "06.3": None},
    # Version 5: lesson 04's few-shot string (04.1) and majority vote (04.3) gave way to a
    # few-shot prompt drawn from a pool (04.1) and choosing by likelihood (04.2); answer
    # extraction moved to 04.3. Lesson 05's accuracy from logits (05.3) became compute_metrics.
    # Lesson 08's /generate endpoint came first as 08.1, so the SSE frame and left padding
    # moved to 08.2 and 08.3 (08.4, the scheduler step, is new).
    5: {"04.1": None, "04.2": "04.3", "04.3": None, "05.3": None,
        "08.1": "08.2", "08.2": "08.3"},
}


def path() -> Path:
    """Where progress lives: ``$COURSE_PROGRESS_FILE``, else ``~/.course_progress.json``."""
    env = os.environ.get("COURSE_PROGRESS_FILE")
    return Path(env) if env else Path.home() / ".course_progress.json"


def _write(target: Path, data: dict) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".progress-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({**data, _VERSION_KEY: VERSION}, fh, indent=1, sort_keys=True)
        os.replace(tmp, target)
    except OSError as exc:  # a read-only home must not stop the lesson
        print(f"(could not save progress to {target}: {exc}; set COURSE_PROGRESS_FILE)")


def _back_up(target: Path, why: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    backup = target.with_name(f"{target.name}.damaged-{stamp}")
    try:
        os.replace(target, backup)
        print(f"(your progress file {target} was damaged ({why}); it is kept as {backup} "
              f"and progress starts afresh)")
    except OSError:
        print(f"(your progress file {target} is damaged ({why}); progress starts afresh)")


def _migrate(data: dict, version: int) -> dict:
    for to_version in sorted(_RENAMES):
        if version < to_version:
            renames = _RENAMES[to_version]
            data = {renames.get(k, k): v for k, v in data.items()
                    if renames.get(k, k) is not None}
    return data


def _clean(entry: dict) -> dict:
    """An entry with fields of the right types (a hand-edited file may hold anything)."""
    entry = dict(entry)
    if not isinstance(entry.get("attempts", 0), int):
        entry["attempts"] = 0
    for key in ("status", "last_status", "updated"):
        if key in entry and not isinstance(entry[key], str):
            del entry[key]
    return entry


def load() -> dict[str, dict]:
    """Read the progress file: exercise id -> entry. Missing or damaged reads as no progress."""
    target = path()
    try:
        text = target.read_text(encoding="utf-8")
    except OSError:
        return {}
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError(f"a JSON {type(raw).__name__}, not an object")
        version = raw.pop(_VERSION_KEY, 1)
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError(f"a version that is not a number: {version!r}")
    except ValueError as exc:
        _back_up(target, str(exc).splitlines()[0][:80])
        return {}
    data = {k: _clean(v) for k, v in raw.items() if isinstance(k, str) and isinstance(v, dict)}
    if version < VERSION:
        data = _migrate(data, version)
        _write(target, data)  # once: the file now says it is in the new numbering
    return data


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
    _write(path(), data)
