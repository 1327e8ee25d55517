"""Drive one notebook in JupyterLab the way a learner does: open it, Run > Run All Cells, look.

Everything here reads the page (the DOM JupyterLab rendered), never the kernel directly,
except ``expected_widget_views``, which reads the saved notebook as the independent record
of how many widget views the kernel asked the page to show.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page

KERNEL_STATUS = '.jp-StatusBar-TextItem[title^="Change kernel"]'
# JupyterLab renders an error output, like a stderr stream, as application/vnd.jupyter.stderr;
# the traceback text tells them apart (a warning on stderr is not an error).
STDERR = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_ERROR_LINE = re.compile(r"^\w*(Error|Exception)\b", re.MULTILINE)
WIDGET_TROUBLE = ("Error displaying widget", "Loading widget...")

_PROMPTS_JS = """() => {
  const prompts = Array.from(document.querySelectorAll(
      '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt'));
  const text = prompts.map(p => p.textContent.trim());
  return {cells: text.length, running: text.filter(t => t.includes('*')).length,
          done: text.filter(t => /\\[\\d+\\]/.test(t)).length};
}"""


@dataclass
class NotebookRun:
    """What a learner saw after running a whole notebook."""

    name: str
    page: Page
    seconds: float = 0.0
    cells: int = 0
    executed: int = 0
    finished: bool = False
    errors: list[str] = field(default_factory=list)
    saved: dict = field(default_factory=dict)
    screenshots: list[Path] = field(default_factory=list)


def kernel_status(page: Page) -> str:
    """The kernel state in the status bar: Idle, Busy, Starting, ... ('' if none yet)."""
    item = page.locator(KERNEL_STATUS)
    if not item.count():
        return ""
    return item.first.inner_text().rsplit("|", 1)[-1].strip()


def wait_idle(page: Page, timeout: float) -> None:
    """Wait until the notebook's kernel reads Idle in the status bar."""
    page.locator(KERNEL_STATUS, has_text="| Idle").wait_for(timeout=timeout * 1000)


def menu(page: Page, top: str, item: str) -> None:
    """Click ``top`` in the menu bar, then ``item`` in its menu."""
    page.get_by_role("menuitem", name=top, exact=True).click()
    label = page.locator(".lm-Menu-itemLabel", has_text=re.compile(rf"^{re.escape(item)}$"))
    page.locator(".lm-Menu .lm-Menu-item").filter(has=label).first.click()


def open_notebook(page: Page, url: str, timeout: float = 120.0) -> None:
    """Open a notebook URL (``/lab/tree/NN.ipynb``) and wait for its kernel to be ready."""
    page.goto(url)
    page.locator(".jp-NotebookPanel .jp-Notebook").first.wait_for(timeout=timeout * 1000)
    wait_idle(page, timeout)


def run_all(page: Page, run: NotebookRun, saved_path: Path, timeout: float) -> None:
    """Run > Run All Cells; wait until no cell is queued and the kernel is idle; then save.

    Errors and execution counts come from the notebook the page saved (what JupyterLab holds,
    output types included); the prompts on the page only say when the run has settled.
    """
    start = time.monotonic()
    menu(page, "Run", "Run All Cells")
    state: dict = {}
    calm = 0
    while time.monotonic() - start < timeout:
        state = page.evaluate(_PROMPTS_JS)
        dialog = page.locator(".jp-Dialog")
        if dialog.count():  # e.g. "Kernel Restarting: the kernel appears to have died"
            run.errors.append("dialog: " + dialog.first.inner_text()[:500])
            break
        settled = state["running"] == 0 and state["done"] > 0 and kernel_status(page) == "Idle"
        calm = calm + 1 if settled else 0
        if calm >= 3:  # 1 s without a queued cell: Run All finished or stopped at an error
            run.finished = True
            break
        time.sleep(0.5)
    run.seconds = time.monotonic() - start
    if page.locator(".jp-Dialog").count():
        page.keyboard.press("Escape")
    try:
        run.saved = save(page, saved_path)
    except PlaywrightError as err:
        run.errors.append(f"could not save the notebook to read its outputs: {err}")
    code = [c for c in run.saved.get("cells", []) if c["cell_type"] == "code"]
    run.cells = len(code) or state.get("cells", 0)
    run.executed = sum(c.get("execution_count") is not None for c in code)
    run.errors += [f"cell {i}: {o['ename']}: {o['evalue']}" for i, c in enumerate(code, 1)
                   for o in c.get("outputs", []) if o["output_type"] == "error"]


def tracebacks(scope: Page | Locator) -> list[str]:
    """Error outputs shown on the page (stderr-typed outputs that carry a traceback)."""
    texts = scope.locator(STDERR).all_inner_texts()
    return [t[-1500:] for t in texts
            if "Traceback (most recent call last)" in t or _ERROR_LINE.search(t)]


def wait_widgets_rendered(page: Page, timeout: float = 30.0) -> None:
    """Give widget views time to leave 'Loading widget...' (they render after the comm opens)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not page.get_by_text("Loading widget...", exact=False).count():
            return
        time.sleep(0.25)


def widget_trouble(page: Page) -> list[str]:
    """Messages ipywidgets shows in place of a widget that could not be displayed."""
    found = [f"{page.get_by_text(msg).count()} x {msg!r}" for msg in WIDGET_TROUBLE
             if page.get_by_text(msg).count()]
    broken = page.locator(".jupyter-widgets-error-widget").count()
    return found + ([f"{broken} x error widget (a view failed to render)"] if broken else [])


def rendered_widget_views(page: Page) -> int:
    """Widget views shown as cell outputs (not those nested in a widget's Output area)."""
    return page.locator(".jp-NotebookPanel .jp-Cell-outputArea > .jp-OutputArea-child"
                        " > .jp-OutputArea-output > .jupyter-widgets").count()


def save(page: Page, path: Path, timeout: float = 20.0) -> dict:
    """File > Save Notebook (into the server's temporary root); return the saved notebook."""
    before = path.stat().st_mtime_ns
    menu(page, "File", "Save Notebook")
    deadline = time.monotonic() + timeout
    while path.stat().st_mtime_ns == before and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.3)  # let the write finish
    return json.loads(path.read_text(encoding="utf-8"))


def expected_widget_views(saved: dict) -> int:
    """How many widget views the kernel displayed, from the saved notebook's outputs."""
    return sum(WIDGET_VIEW in o.get("data", {}) for c in saved.get("cells", [])
               if c["cell_type"] == "code" for o in c.get("outputs", []))


def course_widgets(page: Page) -> list[str]:
    """The course-* CSS classes of the widget boxes on the page (the interaction table's keys)."""
    return page.evaluate("""() => Array.from(new Set(
        Array.from(document.querySelectorAll('.jupyter-widgets[class*="course-"]'))
             .flatMap(e => Array.from(e.classList).filter(c => c.startsWith('course-')))))""")


def screenshot_notebook(page: Page, path: Path, max_height: int = 15000) -> Path:
    """The whole notebook in one image: grow the window to the notebook's height, shoot, restore."""
    size = page.viewport_size or {"width": 1280, "height": 900}
    scroller = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer"
    height = page.evaluate(f"""() => {{
        const s = document.querySelector('{scroller}');
        if (!s) return 0;
        s.scrollTop = 0;
        return s.scrollHeight - s.clientHeight + window.innerHeight; }}""")
    page.set_viewport_size({"width": size["width"],
                            "height": max(size["height"], min(height + 50, max_height))})
    page.wait_for_timeout(800)
    page.evaluate(f"() => {{ const s = document.querySelector('{scroller}'); "
                  "if (s) s.scrollTop = 0; }")
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    page.set_viewport_size(size)
    return path


def screenshot_element(element: Locator, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    element.scroll_into_view_if_needed()
    element.screenshot(path=str(path))
    return path
