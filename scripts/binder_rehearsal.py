"""Binder rehearsal: build the environment from ``binder/`` alone and run every student notebook
in it under Binder's 2 GB memory limit.

    python scripts/binder_rehearsal.py               # reuse the cached venv of these requirements
    python scripts/binder_rehearsal.py --fresh       # rebuild that venv from scratch
    python scripts/binder_rehearsal.py --only 01 04 --json /tmp/rehearsal.json

The steps follow repo2docker: a virtual environment of the Python named in ``binder/runtime.txt``
gets ``pip install -r binder/requirements.txt`` (nothing else from the repository), then
``binder/postBuild`` runs from the root of a temporary copy of the repository (the files git
would commit: tracked plus untracked-but-not-ignored), and every student notebook is executed
with nbclient behind ``binder/start``, one kernel at a time, as a learner on Binder would.

The venv is cached under ``~/.cache/llm-course/binder-venv-<hash>``, keyed by the hash of
``requirements.txt`` and ``runtime.txt``: a fresh machine builds it (a few minutes; pip may use
its cache), later runs reuse it, a change to either file builds a new one.

Memory: a watcher polls the process tree (the nbclient runner and the kernel with everything
it starts) every 50 ms with psutil and kills the tree once its resident memory passes the
limit; afterwards the kernel's high-water mark (``VmHWM``) catches a spike between two polls.
``ulimit -v``/``prlimit --as`` is not used because it limits virtual address space, not
memory: torch with 16 threads reserves ~1.9 GB of address space while resident at ~330 MB
(thread stacks, malloc arenas), so on a many-core laptop it kills notebooks that fit Binder
easily; and it is per process, while Binder's limit is on the whole container. A cgroup
(``memory.max``, what Binder itself uses) would be exact but needs a writable cgroup tree,
which containers and CI runners often lack. Resident sizes of the processes are summed, so
shared pages count twice: the figure errs on the safe side.

Writes a table and ``benchmarks/results/binder_rehearsal.json`` (+ ``.md``); exit status 1 if a
notebook fails, times out or goes over the limit.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from memory_watch import watch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
LIMIT_MB = 2048.0
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llm-course"
_COMPLETE = ".rehearsal-complete"


def requirements_key(binder: Path) -> str:
    """A short hash of what the venv is built from (requirements.txt and runtime.txt)."""
    h = hashlib.sha256()
    for name in ("requirements.txt", "runtime.txt"):
        path = binder / name
        h.update(name.encode() + b"\0" + (path.read_bytes() if path.exists() else b""))
    return h.hexdigest()[:16]


def find_python(binder: Path) -> str:
    """The interpreter ``runtime.txt`` asks for (``python-3.11`` -> ``python3.11``)."""
    runtime = (binder / "runtime.txt").read_text().strip() if (binder / "runtime.txt").exists() \
        else f"python-{sys.version_info.major}.{sys.version_info.minor}"
    if not runtime.startswith("python-"):
        raise SystemExit(f"binder/runtime.txt should read like 'python-3.11', got {runtime!r}")
    version = ".".join(runtime.removeprefix("python-").split(".")[:2])
    if version == f"{sys.version_info.major}.{sys.version_info.minor}":
        return getattr(sys, "_base_executable", sys.executable)  # the interpreter, not our venv
    found = shutil.which(f"python{version}")
    if found is None:
        raise SystemExit(f"binder/runtime.txt asks for Python {version}, which is not on PATH: "
                         f"install python{version} (e.g. apt-get install python{version}-venv)")
    return found


def build_venv(binder: Path, fresh: bool = False, cache: Path = CACHE) -> tuple[Path, float]:
    """Create (or reuse) the venv for ``binder/``; return its path and the seconds spent."""
    key = requirements_key(binder)
    venv = cache / f"binder-venv-{key}"
    cache.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(cache / "binder-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once build it once
        if (venv / _COMPLETE).exists() and not fresh:
            (venv / _COMPLETE).touch()  # in use: keeps it from being pruned
            return venv, 0.0
        _prune(cache, keep=venv)
        shutil.rmtree(venv, ignore_errors=True)  # a half-built or --fresh one
        python = find_python(binder)
        print(f"Building {venv} from {binder}/requirements.txt with {python} ...", flush=True)
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        # One retry, not pip's five with back-off: an index that cannot be reached (the
        # PyTorch CPU index on a PyPI-only network) would otherwise cost ~15 s per package.
        env = {**os.environ, "PIP_RETRIES": os.environ.get("PIP_RETRIES", "1")}
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", "-r", "requirements.txt"],
                       cwd=binder, env=env, check=True)
        (venv / _COMPLETE).write_text(key + "\n")
    return venv, time.perf_counter() - start


def _prune(cache: Path, keep: Path, unused_days: float = 2.0) -> None:
    """Delete venvs of older requirements (~1.5 GB each) not used for ``unused_days``;
    a recent one may belong to a run still going on another branch or checkout."""
    for old in cache.glob("binder-venv-*"):
        marker = old / _COMPLETE
        last_used = (marker if marker.exists() else old).stat().st_mtime
        if old.is_dir() and old != keep and time.time() - last_used > unused_days * 86400:
            shutil.rmtree(old, ignore_errors=True)


def copy_repository(dest: Path) -> Path:
    """Copy the files git would commit (tracked + untracked, minus ignored) into ``dest``."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"], cwd=ROOT, check=True,
                                capture_output=True).stdout.decode().split("\0")
        files = [f for f in listed if f and (ROOT / f).is_file()]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "build", "test-artifacts", "__pycache__", ".ipynb_checkpoints"}
        files = [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*")
                 if p.is_file() and not skip & set(p.relative_to(ROOT).parts)]
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    return dest


def binder_env(venv: Path, home: Path) -> dict[str, str]:
    """The environment of a Binder session: the venv first on PATH, nothing from ours."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "MPLBACKEND", "COURSE_STRICT"}
           and not k.startswith(("JUPYTER", "PYTEST"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["JUPYTER_CONFIG_DIR"] = str(home / "jupyter-config")
    env["JUPYTER_DATA_DIR"] = str(home / "jupyter-data")
    env["JUPYTER_RUNTIME_DIR"] = str(home / "jupyter-runtime")
    env["COURSE_PROGRESS_FILE"] = str(home / "progress.json")
    return env


def run_postbuild(repo: Path, env: dict[str, str]) -> float:
    """Run ``binder/postBuild`` from the root of the copy, as repo2docker does."""
    post = repo / "binder" / "postBuild"
    if not post.exists():
        return 0.0
    post.chmod(0o755)
    start = time.perf_counter()
    subprocess.run([str(post)], cwd=repo, env=env, check=True)
    return time.perf_counter() - start


def execute_one(path: Path, cell_timeout: int) -> int:
    """Runner mode (inside the Binder venv): execute one notebook, print its first error.

    The kernel talks over Unix sockets in a private directory (``transport="ipc"``), not
    TCP: with TCP, kernels started at the same moment by other processes on the machine
    (a test run next door) can grab the ports this kernel was given, and then it "dies"
    or never answers.
    """
    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    sockets = Path(tempfile.mkdtemp(prefix="kernel-"))
    km = KernelManager(kernel_name="python3", transport="ipc", ip=str(sockets / "k"))
    client = NotebookClient(nb, km=km, timeout=cell_timeout,
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.perf_counter()
    # One line a cell, so a notebook killed for time or memory says where it was.
    client.on_cell_execute = lambda cell, cell_index: print(
        f"{_CELL}{cell_index} at {time.perf_counter() - started:.1f} s", flush=True)
    code = 0
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as err:
        print(f"{type(err).__name__}: {str(err)[-3000:]}", file=sys.stderr)
        code = 1
    finally:
        nbformat.write(nb, path.with_suffix(".executed.ipynb"))
        print(_SLOWEST + json.dumps(_slowest_cells(nb)), flush=True)
        shutil.rmtree(sockets, ignore_errors=True)
        sys.stderr.flush()
    os._exit(code)  # leftover client threads must not keep the runner alive


_SLOWEST = "slowest cells: "
_CELL = "running cell "


def _slowest_cells(nb, n: int = 3) -> list[list]:
    """The ``n`` longest code cells as ``[index, seconds]``, from nbclient's timestamps."""
    times = []
    for i, cell in enumerate(nb.cells):
        stamps = cell.get("metadata", {}).get("execution", {})
        start, end = stamps.get("iopub.status.busy"), stamps.get("iopub.status.idle")
        if cell.cell_type == "code" and start and end:
            seconds = (datetime.fromisoformat(end.replace("Z", "+00:00"))
                       - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
            times.append([i, round(seconds, 1)])
    return sorted(times, key=lambda t: -t[1])[:n]


def rehearse(only: list[str], limit_mb: float, timeout_s: float, fresh: bool,
             keep: bool = False) -> dict[str, object]:
    """Build, postBuild, execute every (selected) student notebook; return the report.

    Rehearsals share the cached venv, and postBuild installs the repository copy into it, so
    two at once (two checkouts, two test runs) take turns instead of swapping each other's
    ``course_utils`` mid-run.
    """
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "binder-rehearsal.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _rehearse(only, limit_mb, timeout_s, fresh, keep)


def _rehearse(only: list[str], limit_mb: float, timeout_s: float, fresh: bool,
              keep: bool) -> dict[str, object]:
    binder = ROOT / "binder"
    venv, build_s = build_venv(binder, fresh=fresh)
    work = Path(tempfile.mkdtemp(prefix="binder-rehearsal-"))
    try:
        repo = copy_repository(work / "repo")
        env = binder_env(venv, work)
        post_s = run_postbuild(repo, env)
        settings = venv / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
        settings_ok = settings.exists() and json.loads(settings.read_text()) == json.loads(
            (repo / "jupyter" / "overrides.json").read_text())
        notebooks = sorted((repo / "notebooks").glob("[0-9][0-9]_*.ipynb"))
        notebooks = [nb for nb in notebooks if not only or nb.name[:2] in only]
        if not notebooks:
            raise SystemExit(f"no student notebooks matched {only or 'notebooks/NN_*.ipynb'}")
        rows = []
        print(_HEADER, flush=True)
        for nb in notebooks:
            cmd = [str(repo / "binder" / "start"), str(venv / "bin" / "python"),
                   str(repo / "scripts" / "binder_rehearsal.py"), "--execute-one", str(nb)]
            log = work / f"{nb.stem}.log"  # a file, not a pipe: a chatty kernel never blocks
            with open(log, "wb") as sink:
                proc = subprocess.Popen(cmd, cwd=nb.parent, env=env, stdout=sink,
                                        stderr=subprocess.STDOUT)
                row = {"notebook": nb.stem, **watch(proc, limit_mb, timeout_s)}
            output = log.read_text(errors="replace")
            slowest = [ln for ln in output.splitlines() if ln.startswith(_SLOWEST)]
            row["slowest_cells"] = json.loads(slowest[-1][len(_SLOWEST):]) if slowest else []
            if row["status"] != "ok":
                at = [ln for ln in output.splitlines() if ln.startswith(_CELL)]
                where = f" (last started: {at[-1][len(_CELL):]})" if at else ""
                row["error"] = f"{row['status']}{where}\n{output.strip()[-2000:]}"
            rows.append(row)
            print(_row_line(row), flush=True)
    finally:
        if keep:
            print(f"kept the copy in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return {"machine": {"python": platform.python_version(), "processor": platform.machine(),
                        "cpus": os.cpu_count(),
                        "when": datetime.now(UTC).isoformat(timespec="seconds")},
            "requirements_key": requirements_key(binder), "venv": str(venv),
            "venv_build_s": round(build_s, 1), "venv_reused": build_s == 0.0,
            "postbuild_s": round(post_s, 1), "lab_settings_installed": settings_ok,
            "limit_mb": limit_mb, "notebooks": rows,
            "passed": settings_ok and all(r["status"] == "ok" for r in rows)}


_HEADER = (f"{'notebook':<28} {'status':<12} {'wall s':>7} {'peak kernel MB':>15} "
           f"{'peak total MB':>14}   slowest cells")


def _row_line(row: dict) -> str:
    cells = ", ".join(f"#{i} {t:.0f}s" for i, t in row.get("slowest_cells", []))
    return (f"{row['notebook']:<28} {row['status']:<12} {row['wall_s']:>7.1f} "
            f"{row['peak_kernel_mb']:>15} {row['peak_total_mb']:>14}   {cells}")


def table(report: dict) -> str:
    """The report as a markdown table (one row per notebook) with the build times."""
    lines = ["| notebook | status | wall s | peak kernel MB | peak total MB | slowest cells |",
             "|---|---|---:|---:|---:|---|"]
    lines += [f"| {r['notebook']} | {r['status']} | {r['wall_s']:.1f} | {r['peak_kernel_mb']} "
              f"| {r['peak_total_mb']} | "
              + ", ".join(f"#{i} {t:.0f} s" for i, t in r.get("slowest_cells", [])) + " |"
              for r in report["notebooks"]]
    venv = ("reused" if report["venv_reused"]
            else f"built in {report['venv_build_s']} s")
    settings = "installed" if report["lab_settings_installed"] else "MISSING"
    lines.append(f"\nLimit {report['limit_mb']:.0f} MB. Venv {venv}, postBuild "
                 f"{report['postbuild_s']} s, JupyterLab settings (overrides.json) {settings}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=[], help="lesson numbers, e.g. 01 04")
    parser.add_argument("--limit-mb", type=float, default=LIMIT_MB)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per notebook")
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached venv")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    parser.add_argument("--json", type=Path, default=RESULTS / "binder_rehearsal.json")
    parser.add_argument("--execute-one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cell-timeout", type=int, default=300, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.execute_one:
        return execute_one(args.execute_one, args.cell_timeout)
    report = rehearse(args.only, args.limit_mb, args.timeout, args.fresh, args.keep)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    args.json.with_suffix(".md").write_text(table(report) + "\n")
    print(table(report))
    print(f"Wrote {args.json}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
