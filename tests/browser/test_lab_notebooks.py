"""What a learner sees in JupyterLab: every student notebook runs clean, its widgets render and
answer when moved, and no news or update pop-up gets in the way.

The first test runs a deliberately broken notebook to prove the checks can fail.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from interactions import INTERACTIONS, Interaction, fingerprint, perform, settle
from lab_notebook import (
    NotebookRun,
    course_widgets,
    expected_widget_views,
    kernel_status,
    open_notebook,
    rendered_widget_views,
    run_all,
    screenshot_element,
    tracebacks,
    wait_widgets_rendered,
    widget_trouble,
)
from lab_server import ROOT, student_notebooks

pytestmark = pytest.mark.browser


def test_checks_catch_a_broken_notebook(lab, browser, screenshots):
    """A notebook with a traceback and a widget view whose model does not exist must be caught."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from IPython.display import display\n"
                                  "display({'application/vnd.jupyter.widget-view+json': {"
                                  "'model_id': 'no-such-model', 'version_major': 2, "
                                  "'version_minor': 0}}, raw=True)"),
        nbformat.v4.new_code_cell("raise ValueError('the canary fails on purpose')"),
        nbformat.v4.new_code_cell("print('never runs')"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                "language": "python"}})
    nbformat.write(nb, lab.root / "zz_canary.ipynb")
    page = browser.new_page()
    try:
        run = NotebookRun("zz_canary", page)
        open_notebook(page, lab.url("lab/tree/zz_canary.ipynb", "reset"))
        run_all(page, run, lab.root / "zz_canary.ipynb", timeout=60)
        wait_widgets_rendered(page, timeout=5)
        assert run.finished and run.executed == 2 and run.cells == 3, run
        assert run.errors == ["cell 2: ValueError: the canary fails on purpose"], run.errors
        assert any("the canary fails on purpose" in t for t in tracebacks(page))
        assert widget_trouble(page), "a widget view with no model went unnoticed"
        assert rendered_widget_views(page) < expected_widget_views(run.saved) == 1
    finally:
        lab.shutdown_kernels("zz_canary.ipynb")
        page.close()
        (lab.root / "zz_canary.ipynb").unlink()


CONTROLS = """
import ipywidgets as W
controls = dict(n=W.IntSlider(value=3, max=9, description="n", continuous_update=False),
                kind=W.Dropdown(options=["a", "b c"], description="kind"),
                mode=W.ToggleButtons(options=["x", "y"], description="mode"),
                pick=W.RadioButtons(options=["p", "q"], description="pick"),
                word=W.Text(value="hi", description="word", continuous_update=False),
                flag=W.Checkbox(value=False, description="flag"))
clicks = W.IntText(value=0, description="clicks")
button = W.Button(description="press me")
button.on_click(lambda _: setattr(clicks, "value", clicks.value + 1))
out = W.interactive_output(lambda **kw: print(sorted(kw.items())), {**controls, "clicks": clicks})
box = W.VBox([*controls.values(), button, out])
box.add_class("course-controls-canary")
box
"""


def test_every_kind_of_control_can_be_operated(lab, browser, screenshots):
    """The interaction table's verbs work on each ipywidgets control a lesson may use."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CONTROLS)], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                       "language": "python"}})
    nbformat.write(nb, lab.root / "zz_controls.ipynb")
    page = browser.new_page()
    try:
        run = NotebookRun("zz_controls", page)
        open_notebook(page, lab.url("lab/tree/zz_controls.ipynb", "reset"))
        run_all(page, run, lab.root / "zz_controls.ipynb", timeout=60)
        wait_widgets_rendered(page)
        box = page.locator(".course-controls-canary")
        steps = [Interaction("course-controls-canary", c, v, watch=".widget-output")
                 for c, v in [("n", 2), ("kind", None), ("mode", "y"), ("pick", "q"),
                              ("word", "hello"), ("flag", None), ("press me", None)]]
        for step in steps:
            before = fingerprint(box, step.watch)
            did = perform(box, step)
            after = settle(box, step.watch, before, lambda: kernel_status(page) == "Idle",
                           timeout=20)
            assert after and after != before, f"{did}: the output did not change"
        text = box.locator(".widget-output").inner_text()
        for expected in ("('n', 5)", "('kind', 'b c')", "('mode', 'y')", "('pick', 'q')",
                         "('word', 'hello')", "('flag', True)", "('clicks', 1)"):
            assert expected in text, text
    finally:
        lab.shutdown_kernels("zz_controls.ipynb")
        page.close()
        (lab.root / "zz_controls.ipynb").unlink()


def test_course_settings_silence_news_and_update_checks(lab, browser, screenshots):
    """The course's overrides.json is installed, in effect, and no news toast shows up."""
    installed = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    assert installed.exists(), (f"{installed} is missing: `make install` copies "
                                "jupyter/overrides.json there")
    assert json.loads(installed.read_text()) == json.loads(
        (ROOT / "jupyter" / "overrides.json").read_text()), f"{installed} is stale: make install"
    effective = lab.api("GET", "lab/api/settings/@jupyterlab/apputils-extension:notification")
    defaults = {k: v.get("default") for k, v in effective["schema"]["properties"].items()}
    assert defaults["fetchNews"] == "false" and defaults["checkForUpdates"] is False, defaults
    assert not effective["settings"], f"user settings override the course's: {effective}"
    page = browser.new_page()
    try:
        page.goto(lab.url("lab", "reset"))
        page.locator("#jp-main-statusbar").wait_for(timeout=60_000)
        page.wait_for_timeout(6000)  # without the overrides the news toast shows within ~2 s
        page.screenshot(path=str(screenshots / "lab_start.png"))
        toasts = page.locator(".Toastify__toast").all_inner_texts()
        assert not [t for t in toasts if "news" in t.lower() or "update" in t.lower()], toasts
    finally:
        page.close()


def test_interaction_table_names_real_notebooks():
    """A typo in a table key would silently switch its interactions off."""
    for name in INTERACTIONS:
        same_lesson = [nb for nb in student_notebooks() if nb[:2] == name[:2]]
        assert not same_lesson or name in same_lesson, (
            f"interactions.py has {name!r} but the notebook is {same_lesson[0]!r}")


def test_runs_without_errors(notebook: NotebookRun):
    """No error output (warnings on stderr are fine) and every code cell ran."""
    assert notebook.finished, (f"Run All did not finish within the time limit "
                               f"({notebook.executed}/{notebook.cells} cells ran)")
    assert not notebook.errors, (f"{notebook.name}: error output in the browser:\n"
                                 + "\n".join(notebook.errors))
    assert notebook.executed == notebook.cells, (
        f"only {notebook.executed} of {notebook.cells} code cells ran")


def _ran_through(notebook: NotebookRun) -> None:
    if not notebook.finished or notebook.executed < notebook.cells:
        pytest.fail(f"{notebook.name} did not run through ({notebook.executed}/{notebook.cells} "
                    "cells), so its widgets cannot be checked: see test_runs_without_errors",
                    pytrace=False)


def test_every_widget_renders(notebook: NotebookRun):
    _ran_through(notebook)
    page = notebook.page
    assert not widget_trouble(page), f"{notebook.name}: {widget_trouble(page)}"
    expected = expected_widget_views(notebook.saved)
    shown = rendered_widget_views(page)
    assert shown == expected, (f"{notebook.name}: the kernel displayed {expected} widget(s), "
                               f"the page shows {shown}")
    for widget in course_widgets(page):
        box = page.locator(f".{widget}").first
        assert box.locator(".jupyter-widgets").count(), f"{widget} rendered empty"
        screenshot_element(box, notebook.screenshots[0].parent / f"{widget}.png")


def test_interaction_changes_what_is_shown(notebook: NotebookRun, interaction: Interaction,
                                           screenshots):
    _ran_through(notebook)
    page, it = notebook.page, interaction
    box = page.locator(f".{it.widget}")
    assert box.count(), (f"{notebook.name} shows no widget with class {it.widget!r}; it shows "
                         f"{course_widgets(page)} (fix interactions.py or the widget's class)")
    box = box.first
    stem = screenshots / notebook.name / it.id
    before = fingerprint(box, it.watch)
    assert before, f"nothing matches {it.watch!r} inside {it.widget} before the interaction"
    screenshot_element(box, stem.with_name(stem.name + "_before.png"))
    did = perform(box, it)
    after = settle(box, it.watch, before, idle=lambda: kernel_status(page) == "Idle")
    screenshot_element(box, stem.with_name(stem.name + "_after.png"))
    errors = tracebacks(box)
    assert not errors, f"{did} raised in the widget:\n" + "\n".join(errors)
    assert after and after != before, (f"{notebook.name}: {did} but {it.watch!r} did not change;"
                                       f" the widget reads:\n{box.inner_text()[:1500]}")
