"""What the browser tests do to each lesson's widgets, and what must change on screen.

To cover a new widget, add one line under its notebook's name (the file name without
``.ipynb``)::

    Interaction("course-sampling-explorer", "temperature"),

- ``widget``: the CSS class of the widget's top-level box (``box.add_class(...)`` in
  ``course_utils/widgets``; the course's convention is ``course-<name>``).
- ``control``: the control's description, the label the learner reads next to it.
- ``value``: for a dropdown, toggle buttons or radio buttons, the option to pick (default: the
  first option that is not selected); for a slider, how many steps to move it with the arrow
  keys (default 1, negative moves left); for a text box, the text to type (then Enter); for a
  checkbox or a button (``control`` is then the button's text), nothing.
- ``watch``: a CSS selector inside the widget for what must look different afterwards;
  ``img`` (the default) compares the plotted images, anything else the elements' HTML.

The control is found by its label, whatever its kind, so an entry survives a slider becoming
a dropdown. Entries for lessons that have not landed yet are kept: they apply once the
notebook exists.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from playwright.sync_api import Locator


@dataclass(frozen=True)
class Interaction:
    """Move one control of one widget; ``watch`` inside the widget must change."""

    widget: str
    control: str
    value: str | int | None = None
    watch: str = "img"

    @property
    def id(self) -> str:
        """A name fit for a test id and a file name: ``sampling-explorer-top_k_0_off``."""
        control = re.sub(r"[^a-z0-9]+", "_", self.control.lower()).strip("_") or "control"
        return f"{self.widget.removeprefix('course-')}-{control}"


INTERACTIONS: dict[str, list[Interaction]] = {
    "01_attention": [
        Interaction("course-attention-explorer", "query token", value=-2),
        Interaction("course-attention-explorer", "temperature", value=-6),
        Interaction("course-mask-explorer", "mask", value="padding"),
    ],
    "02_multi_head_attention": [
        Interaction("course-cross-attention-explorer", "head", value=1),
        Interaction("course-cross-attention-explorer", "your own",
                    value="The old horse likes the green apple."),
    ],
    "03_gpt_and_bert": [
        Interaction("course-head-explorer", "head", value=1),
        Interaction("course-head-explorer", "layer", value=1),
    ],
    "04_prompting": [
        Interaction("course-sampling-explorer", "temperature", value=-8),
        Interaction("course-sampling-explorer", "top-k (0 off)", value=5),
    ],
    "07_evaluation": [
        Interaction("course-rating-form", "save ▶ next", watch=".widget-html-content"),
    ],
}


def fingerprint(box: Locator, watch: str) -> list[str]:
    """What the learner sees of ``watch`` inside ``box``: image data or the elements' HTML."""
    return box.locator(watch).evaluate_all(
        "els => els.map(e => e.tagName === 'IMG' ? e.getAttribute('src') : e.outerHTML)")


def settle(box: Locator, watch: str, before: list[str], idle: Callable[[], bool],
           timeout: float = 60.0, poll: float = 0.3) -> list[str]:
    """Wait until ``watch`` differs from ``before`` and has stopped changing with the kernel
    idle (a slider moved several steps redraws several times); return what it shows then."""
    last: list[str] = []
    steady = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(poll)
        now = fingerprint(box, watch)
        steady = steady + 1 if now and now != before and now == last and idle() else 0
        if steady >= 3:
            break
        last = now
    return last


def find_control(box: Locator, label: str) -> Locator:
    """The ipywidgets control whose description is ``label`` (or the button with that text)."""
    exact = re.compile(rf"^\s*{re.escape(label)}\s*$")
    labelled = box.locator(".widget-label").filter(has_text=exact).locator("xpath=..")
    if labelled.count() >= 1:
        return labelled.first
    checkbox = box.locator(".widget-checkbox").filter(
        has=box.page.locator(".widget-label-basic", has_text=exact))
    if checkbox.count() >= 1:
        return checkbox.first
    button = box.locator("button.jupyter-button").filter(has_text=exact)
    if button.count() >= 1:
        return button.first
    known = box.locator(".widget-label").all_inner_texts()
    raise AssertionError(f"no control labelled {label!r} in the widget; its labels are "
                         f"{[k for k in known if k.strip()]}")


def perform(box: Locator, action: Interaction) -> str:
    """Do ``action`` on its control, as a learner would; return what was done, for messages."""
    control = find_control(box, action.control)
    classes = control.get_attribute("class") or ""
    if "jupyter-button" in classes and "widget-toggle-button" not in classes:
        control.click()
        return f"clicked {action.control!r}"
    if "widget-slider" in classes:
        steps = int(action.value if action.value is not None else 1)
        handle = control.locator(".noUi-handle").first
        handle.focus()
        for _ in range(abs(steps)):
            handle.press("ArrowRight" if steps > 0 else "ArrowLeft")
        return f"moved {action.control!r} {steps:+d} steps"
    if control.locator("select").count():
        select = control.locator("select").first
        options = select.locator("option").all_inner_texts()
        current = select.evaluate("s => s.options[s.selectedIndex]?.text")
        current = current.replace("\xa0", " ") if current else current
        choice = _choose(action, [o.replace("\xa0", " ") for o in options], current)
        select.select_option(label=choice)
        return f"chose {choice!r} in {action.control!r}"
    if control.locator("button.widget-toggle-button, input[type=radio]").count():
        buttons = control.locator("button.widget-toggle-button, .widget-radio-box label")
        texts = [t.strip() for t in buttons.all_inner_texts()]
        current = control.locator(".mod-active, input:checked").first
        current_text = current.evaluate(
            "e => (e.tagName === 'INPUT' ? e.parentElement : e).innerText.trim()"
        ) if current.count() else None
        choice = _choose(action, texts, current_text)
        buttons.nth(texts.index(choice)).click()
        return f"chose {choice!r} in {action.control!r}"
    if control.locator("input[type=checkbox]").count():
        control.locator("input[type=checkbox]").first.click()
        return f"toggled {action.control!r}"
    if control.locator("input, textarea").count():
        field = control.locator("input, textarea").first
        field.fill(str(action.value or ""))
        field.press("Enter")
        return f"typed {action.value!r} into {action.control!r}"
    raise AssertionError(f"do not know how to operate {action.control!r} (classes: {classes})")


def _choose(action: Interaction, options: list[str], current: str | None) -> str:
    if action.value is not None:
        if str(action.value) not in options:
            raise AssertionError(f"{action.control!r} has no option {action.value!r}; "
                                 f"its options are {options}")
        return str(action.value)
    others = [o for o in options if o != current]
    if not others:
        raise AssertionError(f"{action.control!r} has no other option to pick: {options}")
    return others[0]
