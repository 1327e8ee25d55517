"""A private JupyterLab server for the browser tests: temp copy of the notebooks, token, free port.

The server runs from the test interpreter's environment (``.venv``), so the course's JupyterLab
settings installed there (``share/jupyter/lab/settings/overrides.json``) apply, as they do for
``make lab``. Everything a run could leave behind (user settings, workspaces, runtime files,
the progress file, executed notebooks) goes to a temporary directory: running cells never
dirties the committed notebooks.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]


def student_notebooks() -> list[str]:
    """The student editions the suite covers: every ``notebooks/NN_name.ipynb``, by name."""
    return sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


# Test-only user setting: render every cell (no virtual scrolling), so a full-page screenshot
# and the DOM checks see the whole notebook. Learners keep JupyterLab's default.
_USER_SETTINGS = {"@jupyterlab/notebook-extension/tracker.jupyterlab-settings":
                  {"windowingMode": "none"}}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """Start JupyterLab on 127.0.0.1 with token auth; ``stop()`` shuts it and its kernels down."""

    def __init__(self, notebooks: Path, startup_timeout: float = 90.0) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="course-lab-"))
        self.root = self.tmp / "notebooks"
        shutil.copytree(notebooks, self.root, ignore=shutil.ignore_patterns(
            ".ipynb_checkpoints", "__pycache__", "runs", "outputs"))
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = self.tmp / "jupyterlab.log"
        self.progress_file = self.tmp / "progress.json"
        self._proc: subprocess.Popen | None = None
        self._start(startup_timeout)

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in {"MPLBACKEND", "COURSE_STRICT", "JUPYTER_PATH"}}
        env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                   COURSE_PROGRESS_FILE=str(self.progress_file),
                   JUPYTER_CONFIG_DIR=str(self.tmp / "config"),
                   JUPYTER_RUNTIME_DIR=str(self.tmp / "runtime"),
                   JUPYTERLAB_SETTINGS_DIR=str(self.tmp / "user-settings"),
                   JUPYTERLAB_WORKSPACES_DIR=str(self.tmp / "workspaces"))
        for rel, value in _USER_SETTINGS.items():
            path = self.tmp / "user-settings" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        return env

    def _start(self, timeout: float) -> None:
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
               f"--ServerApp.root_dir={self.root}",
               # Kernels on Unix sockets, not TCP ports that kernels of another test run on
               # the same machine could grab at the same moment (the notebook sees no change).
               "--KernelManager.transport=ipc"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop)
        self._proc = subprocess.Popen(cmd, cwd=self.root, env=self._env(), stdout=self._log,
                                      stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self._proc.returncode}:\n"
                                   + self.log_tail())
            try:
                self.api("GET", "api/status")
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n"
                           + self.log_tail())

    def url(self, path: str, query: str = "") -> str:
        """A browser URL on the server that logs in with the token."""
        return f"{self.base}/{path.lstrip('/')}?token={self.token}{'&' + query if query else ''}"

    def api(self, method: str, path: str, timeout: float = 10.0) -> object:
        """Call the server's REST API with the token; return the decoded JSON (or None)."""
        req = urllib.request.Request(f"{self.base}/{path.lstrip('/')}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self, notebook_path: str | None = None) -> None:
        """End the sessions (and kernels) of one notebook, or of all notebooks."""
        for session in self.api("GET", "api/sessions"):
            if notebook_path is None or session.get("path") == notebook_path:
                self.api("DELETE", f"api/sessions/{session['id']}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 20.0) -> None:
        """Ask the server to shut down (kernels included); terminate, then kill, what is left."""
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        try:
            family = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            family = []
        if proc.poll() is None:
            try:
                self.api("POST", "api/shutdown")
            except (OSError, urllib.error.URLError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for child in family:  # kernels the server failed to end
            try:
                child.kill()
            except psutil.Error:
                pass
        self._log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
