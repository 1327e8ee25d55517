"""Run the service in the background on 127.0.0.1: in a subprocess, or in a thread.

A notebook cell or a test must not block on ``uvicorn.run``. :class:`ServerProcess` starts
``python -m course_utils.serving`` as a child process (what a deployment runs), waits until
``/health`` answers, and stops it with SIGTERM, which uvicorn handles by finishing the requests
in flight and running the app's shutdown. :class:`ServerThread` runs an app object in this
process, which lets a test inject a model it built itself. Both wait a bounded time and report
the server's own output when it fails to start.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path

import httpx
from fastapi import FastAPI

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float, alive: callable = lambda: True) -> None:
    """Poll ``url/health`` until it answers 200; raise ``TimeoutError`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("the server stopped during start-up")
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"the server at {url} did not become healthy within {timeout:g} s")


def _shut_down(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM (graceful shutdown), then SIGKILL after ``timeout`` s, unless already stopped."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class _Log:
    """The server's output file, already unlinked where the system allows (POSIX), so that it
    disappears even if this process is killed; the reader has its own offset into it."""

    def __init__(self) -> None:
        fd, name = tempfile.mkstemp(prefix="course-server-", suffix=".log")
        self.writer: int | None = fd
        self.reader = open(name, "rb")  # closed by close()
        self.path: Path | None = Path(name)
        try:
            self.path.unlink()
            self.path = None
        except OSError:  # Windows: an open file cannot be deleted; close() deletes it
            pass

    def text(self) -> str:
        if self.reader.closed:
            return ""
        self.reader.seek(0)
        return self.reader.read().decode(errors="replace")

    def close_writer(self) -> None:
        if self.writer is not None:
            os.close(self.writer)
            self.writer = None

    def close(self) -> None:
        self.close_writer()
        self.reader.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def _clean_up(process: subprocess.Popen | None, log: _Log) -> None:
    """The finalizer of a :class:`ServerProcess`: stop its server, delete its log."""
    if process is not None:
        _shut_down(process, timeout=5.0)
    log.close()


class ServerProcess:
    """``python -m course_utils.serving ARGS`` on a free port; use as a context manager.

    The server never outlives its owner: when the object is garbage collected or the
    interpreter exits (a notebook kernel shut down after a failed cell, say), a finalizer stops
    it. ``start(wait=False)`` returns at once, so two servers can load side by side; then
    :meth:`wait_ready`.
    """

    def __init__(self, *args: str, port: int | None = None, startup_timeout: float = 60.0,
                 env: dict[str, str] | None = None):
        self.args, self.port = list(args), port or free_port()
        self.startup_timeout = startup_timeout
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
        self.url = f"http://{HOST}:{self.port}"
        self.process: subprocess.Popen | None = None
        self._log = _Log()
        self._finalizer = weakref.finalize(self, _clean_up, None, self._log)

    def start(self, wait: bool = True) -> ServerProcess:
        """Launch the server; with ``wait`` (the default) return once ``/health`` answers."""
        if self.process is not None:
            raise RuntimeError("this server was already started; make a new ServerProcess")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "course_utils.serving", "--host", HOST,
             "--port", str(self.port), *self.args],
            stdout=self._log.writer, stderr=subprocess.STDOUT, env=self.env)
        self._log.close_writer()  # the child has its own copy
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _clean_up, self.process, self._log)
        return self.wait_ready() if wait else self

    def wait_ready(self) -> ServerProcess:
        """Block until ``/health`` answers (at most ``startup_timeout`` s); stop it on failure."""
        if self.process is None:
            raise RuntimeError("the server is not started: call start() first")
        try:
            wait_healthy(self.url, self.startup_timeout, lambda: self.process.poll() is None)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            raise RuntimeError(f"{exc}. Its output:\n{self.output()[-3000:]}") from None
        return self

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        """Everything the server printed so far."""
        return self._log.text()

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (graceful shutdown), then SIGKILL after ``timeout`` s; return the exit code.

        After a graceful shutdown uvicorn re-raises the signal, so the code is ``-15``.
        """
        if self.process is None:
            return None
        _shut_down(self.process, timeout)
        return self.process.returncode

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._finalizer()


class ServerThread:
    """Serve ``app`` with uvicorn on a free port in a daemon thread of this process."""

    def __init__(self, app: FastAPI, port: int | None = None, startup_timeout: float = 30.0):
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        # Imported here: ServerProcess alone must not load transformers (the engine does).
        from course_utils.serving.connections import server_for

        self.server = server_for(app, HOST, self.port)  # the app's limits, the SIGTERM drain
        self.startup_timeout = startup_timeout
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="uvicorn", daemon=True)

    def _run(self) -> None:
        try:
            self.server.run()
        except BaseException as exc:  # e.g. the app's start-up failed: start() reports it
            self.error = exc

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError(f"uvicorn stopped during start-up ({self.error!r}); "
                                   "the reason is in the log above")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"uvicorn did not start within {self.startup_timeout:g} s")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
