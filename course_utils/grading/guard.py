"""Run a learner's code so that it can neither hang nor flood the grader.

:func:`guarded` calls a function with a time limit and with ``sys.stdout`` and ``sys.stderr``
sent to a :class:`Capture` that keeps only the first lines. It never raises: what happened is
returned as an :class:`Outcome`.

How the time limit holds against a bare ``except:`` that would swallow one exception:

- In the main thread a ``SIGALRM`` timer fires at the limit and then again every
  ``REFIRE`` seconds until the call ends (``signal.setitimer`` with an interval). Each firing
  raises :class:`TimeLimit` where the code is and turns on a line tracer that raises it again
  at a line no ``except`` of the learner's frames covers (the head of a retry loop), and on
  every other firing at the next line at all (the ``except:`` body). So the exception leaves
  retry loops, nested ones included. The timer, the old handler, the old timer and the old
  tracer are always restored before :func:`guarded` returns.
- Outside the main thread (no signals there) a watchdog thread raises :class:`TimeLimit` in the
  caller's thread at the limit and every ``REFIRE`` seconds after, through
  ``PyThreadState_SetAsyncExc``, and the same tracer is turned on when it arrives. It cannot
  stop one long call into C (``time.sleep(60)``, a huge matrix product): that call ends
  first. A retry loop nested inside another bare ``except:`` can outlast it there.
"""

from __future__ import annotations

import ctypes
import dis
import io
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

REFIRE = 0.1  # seconds between firings once the limit has passed


class TimeLimit(BaseException):
    """Raised inside the guarded code when it runs past its time limit."""


class Capture(io.TextIOBase):
    """A text stream that keeps the first ``keep_lines`` lines and counts the rest."""

    def __init__(self, keep_lines: int = 8, max_chars: int = 2000) -> None:
        super().__init__()
        self.keep_lines, self.max_chars = keep_lines, max_chars
        self.kept: list[str] = []
        self.lines = 0  # complete or started lines seen
        self._open = False  # the last line has no newline yet

    encoding = "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: Any) -> int:
        text = str(text)
        for piece in text.splitlines(keepends=True):
            if self._open and self.kept and len(self.kept) == self.lines:
                self.kept[-1] = (self.kept[-1] + piece)[: self.max_chars]
            elif not self._open:
                self.lines += 1
                if len(self.kept) < self.keep_lines:
                    self.kept.append(piece[: self.max_chars])
            self._open = not piece.endswith(("\n", "\r"))
        return len(text)

    def summary(self, who: str = "Your function") -> str:
        """What was printed, cut to the first lines, for the report ("" if nothing)."""
        if not self.lines:
            return ""
        shown = [line.rstrip("\r\n") for line in self.kept]
        cut = self.lines - len(shown)
        head = f"{who} printed {self.lines:,} line{'s' * (self.lines != 1)}"
        head += f"; the first {len(shown)}:" if cut else ":"
        body = "\n".join(f"  | {line}" for line in shown)
        tail = f"\n  ({cut:,} more line{'s' * (cut != 1)} not shown)" if cut else ""
        return f"{head}\n{body}{tail}"


@dataclass
class Outcome:
    """What a guarded call did: its value, or the exception it raised, or that it timed out."""

    value: Any = None
    error: BaseException | None = None
    timed_out: bool = False
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.timed_out


def _handlers(code: Any) -> list[tuple[int, int, int, bool]]:
    """``code``'s exception table: (start, end, target, whether the target can catch).

    A target that cannot catch is a cleanup block that re-raises (after ``except:``)."""
    cached = _HANDLERS.get(code)
    if cached is None:
        try:
            starts = {i.offset for i in dis.get_instructions(code) if i.opname == "PUSH_EXC_INFO"}
            cached = [(e.start, e.end, e.target, e.target in starts)
                      for e in dis._parse_exception_table(code)]
        except Exception:  # another Python's bytecode: treat nothing as protected
            cached = []
        _HANDLERS[code] = cached
    return cached


_HANDLERS: dict[Any, list[tuple[int, int, int, bool]]] = {}


def _caught_in(code: Any, offset: int, depth: int = 0) -> bool:
    """Would an exception raised at ``offset`` be caught inside ``code``?"""
    for start, end, target, catches in _handlers(code):
        if start <= offset < end:
            return catches or (depth < 8 and _caught_in(code, target, depth + 1))
    return False


class _Limit:
    """The state shared by the guard, the signal handler and the tracer.

    Once the limit has passed, the tracer raises :class:`TimeLimit` at a line where no
    handler of the learner's frames can catch it (e.g. the head of a retry loop), so it leaves
    the learner's code; on every other firing it also raises inside a protected line (an
    ``except:`` body), which ends code whose outermost ``try`` wraps the whole loop. A tracer
    that raises is switched off by Python, which is why it does not do so on every firing.
    """

    def __init__(self, stop_frame: Any) -> None:
        self.active = True
        self.expired = False
        self.firings = 0
        self.stop_frame = stop_frame  # the guard's own frame: never traced

    def _protected(self, frame: Any) -> bool:
        f = frame
        while f is not None and f is not self.stop_frame:
            if _caught_in(f.f_code, f.f_lasti):
                return True
            f = f.f_back
        return False

    def tracer(self, frame: Any, event: str, arg: Any) -> Any:
        if not self.active:
            return None
        if self.expired and event == "line":  # not while an exception unwinds
            if self.firings % 2 == 1 or not self._protected(frame):
                raise TimeLimit
        return self.tracer

    def trace_from(self, frame: Any) -> None:
        """Turn the tracer on for this thread and every frame from ``frame`` to the guard."""
        self.expired = True
        f = frame
        while f is not None and f is not self.stop_frame:
            f.f_trace = self.tracer
            f.f_trace_lines = True
            f = f.f_back
        sys.settrace(self.tracer)

    def fire(self, signum: int, frame: Any) -> None:
        if self.active:
            self.firings += 1
            self.trace_from(frame)
            raise TimeLimit


_THREAD = threading.local()  # the _Limit of the guarded call running in this thread


class _AsyncTimeLimit(TimeLimit):
    """What the watchdog raises in another thread. It is created in the learner's thread
    when the exception is delivered, which is where the tracer must be turned on."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        limit = getattr(_THREAD, "limit", None)
        if limit is not None and limit.active:
            limit.firings += 1
            limit.trace_from(sys._getframe(1))


def _signals_usable() -> bool:
    return threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")


def guarded(fn: Callable[[], Any], seconds: float, capture: Capture | None = None) -> Outcome:
    """Call ``fn()`` for at most ``seconds``; never raises, see :class:`Outcome`.

    ``capture`` receives what ``fn`` prints (a fresh :class:`Capture` that is thrown away
    when None). ``KeyboardInterrupt`` and ``SystemExit`` raised by ``fn`` are returned as
    errors like any other exception.
    """
    sink = capture if capture is not None else Capture(keep_lines=0)
    if _signals_usable():
        return _guarded_by_signal(fn, max(seconds, 0.001), sink)
    return _guarded_by_watchdog(fn, max(seconds, 0.001), sink)


def _guarded_by_signal(fn: Callable[[], Any], seconds: float, sink: Capture) -> Outcome:
    limit = _Limit(sys._getframe())
    out = Outcome()
    old_out, old_err, old_trace = sys.stdout, sys.stderr, sys.gettrace()
    old_handler = signal.getsignal(signal.SIGALRM)
    started = time.monotonic()
    try:
        signal.signal(signal.SIGALRM, limit.fire)
        old_timer = signal.setitimer(signal.ITIMER_REAL, seconds, REFIRE)
        sys.stdout = sys.stderr = sink
        try:
            out.value = fn()
        except TimeLimit:
            out.timed_out = True
        except BaseException as exc:  # the learner's code: every kind is reported, none raised
            out.error = exc
    except TimeLimit:  # fired between the learner's return and this line
        out.timed_out = True
    finally:
        limit.active = False  # from here on the handler and the tracer do nothing
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.stdout, sys.stderr = old_out, old_err
        sys.settrace(old_trace)
        signal.signal(signal.SIGALRM, old_handler if old_handler is not None else signal.SIG_DFL)
        out.seconds = time.monotonic() - started
        if "old_timer" in locals() and old_timer[0] > 0:  # an outer timer keeps its deadline
            signal.setitimer(signal.ITIMER_REAL, max(old_timer[0] - out.seconds, 0.001),
                             old_timer[1])
    return out


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                               ctypes.py_object(exc) if exc else None)


def _guarded_by_watchdog(fn: Callable[[], Any], seconds: float, sink: Capture) -> Outcome:
    target = threading.get_ident()
    lock, done = threading.Lock(), threading.Event()
    limit = _Limit(sys._getframe())
    previous, _THREAD.limit = getattr(_THREAD, "limit", None), limit

    def watch() -> None:
        if done.wait(seconds):
            return
        while True:
            with lock:
                if not limit.active:
                    return
                _raise_in(target, _AsyncTimeLimit)
            if done.wait(REFIRE):
                return

    out = Outcome()
    old_out, old_err, old_trace = sys.stdout, sys.stderr, sys.gettrace()
    started = time.monotonic()
    watchdog = threading.Thread(target=watch, daemon=True, name="course-grader-watchdog")
    try:
        watchdog.start()
        sys.stdout = sys.stderr = sink
        try:
            out.value = fn()
        except TimeLimit:
            out.timed_out = True
        except BaseException as exc:
            out.error = exc
    except TimeLimit:
        out.timed_out = True
    finally:
        limit.active = False
        with lock:
            _raise_in(target, None)  # drop a firing not yet delivered
        done.set()
        _THREAD.limit = previous
        sys.stdout, sys.stderr = old_out, old_err
        sys.settrace(old_trace)
        out.seconds = time.monotonic() - started
    return out
