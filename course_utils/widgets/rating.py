"""Lesson 07's human-evaluation form: rate generations 1 to 5 on four criteria, into a CSV.

Every saved rating is written to disk at once (to a temporary file, then renamed over the old
one, so a crash never leaves half a file), and a new form reloads the file: ratings survive a
kernel restart. The maths (loading, summarising, agreement) is in pure functions the tests
call; :class:`RatingForm` is only the ipywidgets layer on top.
"""

from __future__ import annotations

import csv
import html
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from course_utils.metrics.agreement import cohen_kappa
from course_utils.metrics.stats import MeanCI, mean_ci

CRITERIA = ("fluency", "relevance", "coherence", "accuracy")
SCALE = (1, 2, 3, 4, 5)
FIELDS = ("item_id", *CRITERIA)

Ratings = dict[str, dict[str, int]]


def check_scores(scores: Mapping[str, int]) -> dict[str, int]:
    """Return the four criteria's scores as ints 1..5, or raise saying what is wrong."""
    if not isinstance(scores, Mapping):
        raise TypeError(f"scores must be a dict of criterion -> 1..5, got {type(scores).__name__}")
    missing = [c for c in CRITERIA if scores.get(c) is None]
    if missing:
        raise ValueError(f"no score for {', '.join(missing)}: rate all of {', '.join(CRITERIA)}")
    extra = sorted(set(scores) - set(CRITERIA))
    if extra:
        raise ValueError(f"unknown criteria {extra}: the criteria are {', '.join(CRITERIA)}")
    out = {}
    for c in CRITERIA:
        v = scores[c]
        if isinstance(v, str) and v.strip().isdigit():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int) or v not in SCALE:
            raise ValueError(f"{c} must be an int from 1 to 5, got {v!r}")
        out[c] = v
    return out


def load_ratings(path: str | os.PathLike) -> Ratings:
    """Read a ratings CSV as ``{item_id: {criterion: score}}``; a missing file is no ratings."""
    path = Path(path)
    if not path.exists():
        return {}
    ratings: Ratings = {}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None:
            return {}
        missing = [c for c in FIELDS if c not in reader.fieldnames]
        if missing:
            raise ValueError(f"{path} is not a ratings file: it lacks the columns {missing}")
        for line, row in enumerate(reader, start=2):
            try:
                ratings[row["item_id"]] = check_scores({c: row[c] for c in CRITERIA})
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}, line {line}: {exc}") from None
    return ratings


def write_ratings(path: str | os.PathLike, ratings: Mapping[str, Mapping[str, int]]) -> None:
    """Write all ratings atomically: a temporary file in the same folder, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"item_id": str(i), **check_scores(s)} for i, s in ratings.items()]
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_rating(path: str | os.PathLike, item_id: str, scores: Mapping[str, int]) -> Ratings:
    """Add or replace one item's rating in the CSV at ``path`` and return all ratings."""
    clean = check_scores(scores)  # fail before touching the file
    ratings = load_ratings(path)
    ratings[str(item_id)] = clean
    write_ratings(path, ratings)
    return ratings


def _as_ratings(ratings: Ratings | str | os.PathLike) -> Ratings:
    return load_ratings(ratings) if isinstance(ratings, str | os.PathLike) else dict(ratings)


def summarize(ratings: Ratings | str | os.PathLike,
              confidence: float = 0.95) -> dict[str, MeanCI]:
    """Mean score per criterion with its t confidence interval (ratings or a CSV path)."""
    ratings = _as_ratings(ratings)
    if not ratings:
        raise ValueError("there are no ratings to summarise yet: rate a few items first")
    return {c: mean_ci([s[c] for s in ratings.values()], confidence) for c in CRITERIA}


def agreement(rater_a: Ratings | str | os.PathLike,
              rater_b: Ratings | str | os.PathLike) -> dict[str, float]:
    """Cohen's kappa per criterion over the items both raters rated (ratings or CSV paths)."""
    a, b = _as_ratings(rater_a), _as_ratings(rater_b)
    shared = [i for i in a if i in b]
    if not shared:
        raise ValueError("the two raters have no item in common: kappa compares ratings of "
                         "the same items")
    return {c: cohen_kappa([a[i][c] for i in shared], [b[i][c] for i in shared])
            for c in CRITERIA}


def format_summary(summary: Mapping[str, MeanCI],
                   kappas: Mapping[str, float] | None = None) -> str:
    """A small text table: mean, 95% interval and (optionally) kappa per criterion."""
    head = f"{'criterion':<11} {'mean':>5}  {'95% CI':<13} {'n':>3}"
    lines = [head + ("  kappa" if kappas else "")]
    for c, s in summary.items():
        ci = "n/a" if s.n < 2 else f"[{s.low:.2f}, {s.high:.2f}]"
        line = f"{c:<11} {s.mean:>5.2f}  {ci:<13} {s.n:>3}"
        if kappas:
            line += "    n/a" if math.isnan(kappas[c]) else f"  {kappas[c]:>5.2f}"
        lines.append(line)
    return "\n".join(lines)


class RatingForm:
    """One generation at a time, four 1-5 buttons, "save" writes the CSV at once.

    A new form on the same ``path`` picks up where the last one stopped (the first unrated
    item). ``texts`` are the generations; ``prompts`` (optional) are shown above them.
    """

    def __init__(self, texts: Sequence[str], path: str | os.PathLike,
                 prompts: Sequence[str] | None = None, ids: Sequence[str] | None = None):
        import ipywidgets as W

        if isinstance(texts, str) or not texts:
            raise ValueError("texts must be a non-empty list of generations to rate")
        self.texts = list(texts)
        self.prompts = list(prompts) if prompts is not None else None
        self.ids = [str(i) for i in (ids if ids is not None else range(len(self.texts)))]
        if self.prompts is not None and len(self.prompts) != len(self.texts):
            raise ValueError(f"{len(self.prompts)} prompts for {len(self.texts)} texts")
        if len(self.ids) != len(self.texts) or len(set(self.ids)) != len(self.ids):
            raise ValueError("ids must be unique, one per text")
        self.path = Path(path)
        self.ratings = load_ratings(self.path)
        self.header = W.HTML()
        self.body = W.HTML()
        self.buttons = {c: W.ToggleButtons(options=list(SCALE), value=None, description=c,
                                           style={"button_width": "36px"}) for c in CRITERIA}
        self.previous = W.Button(description="◀ previous")
        self.next = W.Button(description="save ▶ next", button_style="primary")
        self.status = W.HTML()
        self.previous.on_click(lambda _: self.go(self.index - 1))
        self.next.on_click(lambda _: self.save_and_next())
        self.widget = W.VBox([self.header, self.body, *self.buttons.values(),
                              W.HBox([self.previous, self.next]), self.status])
        self.widget.add_class("course-rating-form")
        unrated = [i for i, item in enumerate(self.ids) if item not in self.ratings]
        self.index = 0
        self.go(unrated[0] if unrated else 0)

    def go(self, index: int) -> None:
        """Show item ``index`` (clamped to the list), with its saved scores if any."""
        self.index = max(0, min(index, len(self.texts) - 1))
        item = self.ids[self.index]
        done = sum(i in self.ratings for i in self.ids)
        self.header.value = (f"<b>item {self.index + 1} of {len(self.texts)}</b> "
                             f"· {done} rated · saved to <code>{html.escape(str(self.path))}"
                             "</code>")
        prompt = ("" if self.prompts is None else
                  f"<p><i>prompt:</i> {html.escape(self.prompts[self.index])}</p>")
        self.body.value = (f"{prompt}<p style='white-space: pre-wrap; border-left: 3px solid "
                           f"#999; padding-left: 8px'>{html.escape(self.texts[self.index])}</p>")
        saved = self.ratings.get(item, {})
        for c, b in self.buttons.items():
            b.value = saved.get(c)

    def save_and_next(self) -> bool:
        """Save the current scores to the CSV and move on; False (with a note) if incomplete."""
        scores = {c: b.value for c, b in self.buttons.items()}
        try:
            self.ratings = save_rating(self.path, self.ids[self.index], scores)
        except ValueError as exc:
            self.status.value = f"<span style='color: #b00'>{html.escape(str(exc))}</span>"
            return False
        left = [i for i, item in enumerate(self.ids) if item not in self.ratings]
        self.status.value = (f"saved item {self.index + 1}" if left else
                             f"saved item {self.index + 1}: all {len(self.ids)} items are rated")
        self.go(left[0] if left and left[0] > self.index else self.index + 1)
        return True

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def rating_form(texts: Sequence[str], path: str | os.PathLike,
                prompts: Sequence[str] | None = None,
                ids: Sequence[str] | None = None) -> RatingForm:
    """Build the rating form over ``texts``, saving to (and reloading from) ``path``."""
    return RatingForm(texts, path, prompts=prompts, ids=ids)
