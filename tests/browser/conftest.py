"""Browser tests: one JupyterLab server and one headless Chromium for the whole session.

Every student notebook in ``notebooks/NN_*.ipynb`` is picked up automatically; its widget
interactions come from ``interactions.py``. Screenshots go to
``test-artifacts/screenshots/run-<time>/`` (gitignored), which the terminal summary names.
Chromium is Debian's (``/usr/bin/chromium``, no ``playwright install``); without it the tests
fail, never skip, and say how to install it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from interactions import INTERACTIONS
from lab_notebook import (
    NotebookRun,
    course_widgets,
    open_notebook,
    run_all,
    screenshot_notebook,
    wait_widgets_rendered,
)
from lab_server import ROOT, LabServer, student_notebooks

NOTEBOOKS = student_notebooks()
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
# Debian's Chromium; COURSE_CHROMIUM points elsewhere (e.g. a Chrome binary on another system).
CHROMIUM = Path(os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 900}
# Per notebook: the budget is 90 s on 2 cores; slow or shared machines can allow more.
RUN_TIMEOUT_S = float(os.environ.get("COURSE_BROWSER_RUN_TIMEOUT", "300"))

# What the terminal summary reports; "busy" is from the server's start to the last notebook's
# end (the server idles until the session ends, while other tests run).
_SESSION: dict[str, object] = {"runs": {}, "uncovered": {}, "started": 0.0, "busy": 0.0}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One notebook run per student notebook; tests that take an interaction get its pairs."""
    if "notebook" not in metafunc.fixturenames:
        return
    if "interaction" in metafunc.fixturenames:
        pairs = [(nb, it) for nb in NOTEBOOKS for it in INTERACTIONS.get(nb, [])]
        metafunc.parametrize(["notebook", "interaction"], pairs, indirect=["notebook"],
                             ids=[f"{nb}-{it.id}" for nb, it in pairs], scope="module")
    else:
        metafunc.parametrize("notebook", NOTEBOOKS, indirect=True, scope="module")


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """A fresh folder for this run's screenshots: ``test-artifacts/screenshots/run-<time>``.

    One folder per run, so two runs in one checkout never delete each other's pictures; the
    three most recent runs are kept.
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    runs = sorted(p for p in SCREENSHOTS.iterdir() if p.is_dir() and p.name.startswith("run-"))
    for old in runs[:-2]:
        shutil.rmtree(old, ignore_errors=True)
    folder = SCREENSHOTS / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    folder.mkdir()
    _SESSION["screenshots"] = folder
    return folder


@pytest.fixture(scope="session")
def lab(screenshots):
    """JupyterLab on 127.0.0.1 (free port, random token) over a temp copy of notebooks/."""
    _SESSION["started"] = time.monotonic()
    server = LabServer(ROOT / "notebooks")
    yield server
    shutil.copy(server.log_path, screenshots / "jupyterlab.log")
    server.stop()


@pytest.fixture(scope="session")
def browser(screenshots):
    """One headless Chromium with a fresh profile for the session (a Playwright context)."""
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is not installed ({CHROMIUM} is missing) and the browser tests "
                    "need it. Install it with:  sudo apt-get install -y chromium  "
                    "(`make test` does this through `make browser-deps`); no `playwright "
                    "install` needed.", pytrace=False)
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="course-chromium-")
    pw = sync_playwright().start()
    try:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport=VIEWPORT, timeout=60_000)
    except Exception:
        pw.stop()
        raise
    context.set_default_timeout(30_000)
    yield context
    context.close()
    pw.stop()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def notebook(request, lab, browser, screenshots) -> NotebookRun:
    """Open a student notebook, run all cells, screenshot it; end its kernel afterwards."""
    name = request.param
    page = browser.new_page()
    run = NotebookRun(name=name, page=page)
    try:
        open_notebook(page, lab.url(f"lab/tree/{name}.ipynb", "reset"))
        run_all(page, run, lab.root / f"{name}.ipynb", RUN_TIMEOUT_S)
        wait_widgets_rendered(page)
        run.screenshots.append(screenshot_notebook(page, screenshots / name / "after_run_all.png"))
        missing = [w for w in course_widgets(page) if w not in
                   {it.widget for it in INTERACTIONS.get(name, [])}]
        if missing:
            _SESSION["uncovered"][name] = missing
        _SESSION["runs"][name] = run
        yield run
    finally:
        try:
            lab.shutdown_kernels(f"{name}.ipynb")
        except OSError:
            pass
        page.close()
        _SESSION["busy"] = time.monotonic() - _SESSION["started"]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Name the screenshot folder and give each notebook's run time in the browser."""
    folder = _SESSION.get("screenshots")
    if folder is None:
        return
    tr = terminalreporter
    tr.section("browser tests")
    pictures = sorted(Path(folder).rglob("*.png"))
    tr.write_line(f"Screenshots ({len(pictures)}): {folder}")
    for name, run in sorted(_SESSION["runs"].items()):
        state = "finished" if run.finished else "DID NOT FINISH"
        tr.write_line(f"  {name}: Run All {run.seconds:.1f} s, {run.executed}/{run.cells} "
                      f"code cells ran, {len(run.errors)} error output(s), {state}")
    for name, widgets in sorted(_SESSION["uncovered"].items()):
        tr.write_line(f"  {name}: widgets without an interaction in "
                      f"tests/browser/interactions.py: {', '.join(widgets)}")
    if _SESSION["busy"]:
        tr.write_line(f"  Browser suite: {_SESSION['busy']:.0f} s from JupyterLab's start to "
                      f"the last notebook's end; server log: {folder / 'jupyterlab.log'}")
