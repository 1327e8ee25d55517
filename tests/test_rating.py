"""The human-evaluation form: saves at once, atomically, reloads after a "restart", summarises.

A kernel restart is simulated by building a new form (and reading the file with the csv
module, not the code under test) after the old one is gone.
"""

from __future__ import annotations

import csv
import math
import statistics

import pytest

from course_utils.widgets.rating import (
    CRITERIA,
    RatingForm,
    agreement,
    check_scores,
    format_summary,
    load_ratings,
    save_rating,
    summarize,
    write_ratings,
)

TEXTS = ["The cat sat on the mat.", "A dog ran in the park.", "The bird sang all day."]


def _rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _scores(*values):
    return dict(zip(CRITERIA, values, strict=True))


def test_save_writes_the_file_at_once_and_reloads(tmp_path):
    path = tmp_path / "ratings.csv"
    save_rating(path, "0", _scores(5, 4, 4, 3))
    assert _rows(path) == [{"item_id": "0", "fluency": "5", "relevance": "4",
                            "coherence": "4", "accuracy": "3"}]
    save_rating(path, "2", _scores(1, 2, 3, 4))
    save_rating(path, "0", _scores(2, 2, 2, 2))  # re-rating replaces, never duplicates
    assert load_ratings(path) == {"0": _scores(2, 2, 2, 2), "2": _scores(1, 2, 3, 4)}
    assert [r["item_id"] for r in _rows(path)] == ["0", "2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ratings.csv"]  # no temp files left


def test_a_failed_write_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "ratings.csv"
    save_rating(path, "0", _scores(5, 5, 5, 5))
    before = path.read_text()
    with pytest.raises(ValueError, match="accuracy must be an int from 1 to 5"):
        save_rating(path, "1", _scores(3, 3, 3, 6))
    with pytest.raises(ValueError, match="from 1 to 5"):
        write_ratings(path, {"0": _scores(5, 5, 5, 5), "1": _scores(0, 3, 3, 3)})
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ratings.csv"]


@pytest.mark.parametrize("scores, words", [
    ({"fluency": 3, "relevance": 3, "coherence": 3}, "no score for accuracy"),
    ({**_scores(3, 3, 3, 3), "humour": 4}, "unknown criteria"),
    (_scores(3, 3, 3, True), "accuracy must be an int"),
    (_scores(3, 3, 3, 2.5), "accuracy must be an int"),
    ([3, 3, 3, 3], "must be a dict"),
])
def test_bad_scores_are_explained(scores, words):
    with pytest.raises((TypeError, ValueError), match=words):
        check_scores(scores)


def test_a_damaged_file_names_the_line(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("item_id,fluency,relevance,coherence,accuracy\n0,5,5,5,5\n1,5,9,5,5\n")
    with pytest.raises(ValueError, match="line 3: relevance"):
        load_ratings(path)
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a ratings file"):
        load_ratings(other)
    assert load_ratings(tmp_path / "missing.csv") == {}


def test_form_saves_on_click_and_a_new_form_resumes(tmp_path):
    path = tmp_path / "me.csv"
    form = RatingForm(TEXTS, path, prompts=["p0", "p1", "p2"])
    assert form.index == 0 and "The cat sat" in form.body.value and "p0" in form.body.value
    form.next.click()  # nothing chosen yet: refused, with a note, and nothing written
    assert not path.exists() and "rate all of" in form.status.value and form.index == 0
    for c, v in zip(CRITERIA, (4, 5, 3, 2), strict=True):
        form.buttons[c].value = v
    form.next.click()
    assert _rows(path)[0] == {"item_id": "0", "fluency": "4", "relevance": "5",
                              "coherence": "3", "accuracy": "2"}
    assert form.index == 1 and all(b.value is None for b in form.buttons.values())
    del form  # "restart the kernel"

    again = RatingForm(TEXTS, path)
    assert again.index == 1  # the first unrated item
    again.previous.click()
    assert again.index == 0 and again.buttons["relevance"].value == 5  # saved scores shown
    assert "1 rated" in again.header.value


def test_form_escapes_html_and_checks_its_arguments(tmp_path):
    form = RatingForm(["<b>bold</b> & co"], tmp_path / "x.csv")
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in form.body.value
    with pytest.raises(ValueError, match="non-empty list"):
        RatingForm([], tmp_path / "x.csv")
    with pytest.raises(ValueError, match="2 prompts for 1 texts"):
        RatingForm(["a"], tmp_path / "x.csv", prompts=["p", "q"])
    with pytest.raises(ValueError, match="unique"):
        RatingForm(["a", "b"], tmp_path / "x.csv", ids=["x", "x"])


def test_summary_means_and_intervals_by_hand(tmp_path):
    path = tmp_path / "r.csv"
    rows = [(5, 4, 4, 3), (4, 4, 5, 3), (3, 2, 4, 1), (5, 5, 5, 4)]
    for i, r in enumerate(rows):
        save_rating(path, str(i), _scores(*r))
    summary = summarize(path)
    t3 = 3.182446305284263  # t(0.975, df=3), from t tables
    for k, c in enumerate(CRITERIA):
        values = [r[k] for r in rows]
        half = t3 * statistics.stdev(values) / math.sqrt(4)
        assert summary[c].mean == pytest.approx(statistics.fmean(values))
        assert summary[c].low == pytest.approx(statistics.fmean(values) - half, abs=1e-8)
        assert summary[c].n == 4
    text = format_summary(summary)
    assert "fluency" in text and "4.25" in text
    with pytest.raises(ValueError, match="no ratings"):
        summarize(tmp_path / "none.csv")


def test_agreement_between_two_raters_files(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    # fluency: 6 shared items, A = 5 5 4 4 3 3, B = 5 4 4 4 3 2 -> p_o = 4/6;
    # marginals A (5: 2, 4: 2, 3: 2), B (5: 1, 4: 3, 3: 1, 2: 1):
    # p_e = (2*1 + 2*3 + 2*1) / 36 = 10/36, kappa = (24/36 - 10/36) / (26/36) = 14/26
    flu_a, flu_b = [5, 5, 4, 4, 3, 3], [5, 4, 4, 4, 3, 2]
    for i in range(6):
        save_rating(a, str(i), _scores(flu_a[i], 3, 3, 3))
        save_rating(b, str(i), _scores(flu_b[i], 3, 3, 3))
    save_rating(a, "only-a", _scores(1, 1, 1, 1))  # not rated by B: left out
    kappas = agreement(a, b)
    assert kappas["fluency"] == pytest.approx(14 / 26)
    assert math.isnan(kappas["relevance"])  # both always said 3: kappa undefined
    assert "kappa" in format_summary(summarize(a), kappas)
    with pytest.raises(ValueError, match="no item in common"):
        agreement({"x": _scores(1, 1, 1, 1)}, {"y": _scores(1, 1, 1, 1)})
