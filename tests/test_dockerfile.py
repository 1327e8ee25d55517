"""The Dockerfile and .dockerignore, checked statically: there is no Docker engine here.

What a reviewer would check by eye: a slim base, CPU-only torch pinned as in requirements.txt,
a non-root user, a health check on /health, the port, the bundled model copied in, a CMD that
starts the service on 0.0.0.0, and a build context without .venv or .git. One more: every
package the service's code imports must be installed in the image (with its dependencies).
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import shlex
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuations joined."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def first(name: str) -> list[str]:
    return [args for ins, args in instructions() if ins == name]


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            spec = str(req.specifier)
            if spec.startswith("=="):
                pins[canon(req.name)] = spec[2:]
    return pins


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def docker_pins() -> dict[str, str]:
    """Packages the Dockerfile pip-installs, mapped to their pinned versions."""
    pins = {}
    for run in first("RUN"):
        if "pip install" not in run:
            continue
        for word in shlex.split(run.split("pip install", 1)[1]):
            if word.startswith("-") or "://" in word:
                continue
            req = Requirement(word)
            spec = str(req.specifier)
            assert spec.startswith("=="), f"{word}: pin every package with == in the Dockerfile"
            pins[canon(req.name)] = spec[2:]
    return pins


def test_base_image_is_a_slim_python_matching_the_course():
    froms = first("FROM")
    assert froms, "the Dockerfile needs a FROM"
    image = froms[-1].split()[0]
    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", image), image
    assert image.split(":")[1].startswith(f"{sys.version_info.major}.{sys.version_info.minor}")


def test_cpu_only_torch_pinned_as_in_requirements():
    runs = " ".join(r for r in first("RUN") if "pip install" in r)
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in runs
    pins, required = docker_pins(), requirement_pins()
    assert pins.get("torch") == required["torch"], "torch must be pinned as in requirements.txt"
    for name, version in pins.items():
        if name in required:
            assert version == required[name], f"{name}: {version} here, {required[name]} there"


def test_runs_as_a_non_root_user_declared_after_the_installs():
    ins = instructions()
    users = [i for i, (name, _) in enumerate(ins) if name == "USER"]
    assert users, "add a USER: a service should not run as root"
    last_user = ins[users[-1]][1].split(":")[0]
    assert last_user not in ("root", "0")
    last_install = max(i for i, (name, args) in enumerate(ins)
                       if name == "RUN" and "pip install" in args)
    assert users[-1] > last_install


def test_healthcheck_asks_the_health_endpoint():
    checks = first("HEALTHCHECK")
    assert checks and "NONE" not in checks[-1].upper()
    assert "/health" in checks[-1] and "--timeout" in checks[-1]


def test_exposes_the_port_the_command_listens_on():
    cmd = json.loads(first("CMD")[-1])  # exec form: the server gets SIGTERM directly
    assert cmd[:3] == ["python", "-m", "course_utils.serving"]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    port = cmd[cmd.index("--port") + 1] if "--port" in cmd else "8000"
    assert port in first("EXPOSE")[-1].split()


def test_the_command_line_is_one_the_server_accepts(monkeypatch):
    """The CMD's options parse with the server's own argument parser (a typo in an option
    would only show when the container starts)."""
    from course_utils.serving import __main__ as cli

    seen = {}
    monkeypatch.setattr(cli, "create_app", lambda **kw: seen.setdefault("app", kw))
    monkeypatch.setattr(cli, "serve", lambda app, **kw: seen.setdefault("serve", kw))
    cli.main(json.loads(first("CMD")[-1])[3:])
    assert seen["serve"]["host"] == "0.0.0.0" and seen["app"]["engine_process"] is True


def test_the_model_is_baked_in_and_the_hub_is_off():
    copies = [args.split() for args in first("COPY")]
    sources = [src.rstrip("/") for args in copies for src in args[:-1]
               if not src.startswith("--")]
    assert any(s in ("course_utils", "course_utils/assets", ".") for s in sources), sources
    env = " ".join(first("ENV"))
    assert "HF_HUB_OFFLINE=1" in env


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def ignored(path: str) -> bool:
    result = False
    for pattern in dockerignore():
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").rstrip("/")
        hit = any(fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(p, pat.removeprefix("**/"))
                  for p in [path, *[path.split("/")[i] for i in range(path.count("/") + 1)]])
        if hit:
            result = not negate
    return result


@pytest.mark.parametrize("path", [".venv", ".git", "course_utils/__pycache__", "build",
                                  "notebooks", "tests", ".pytest_cache", "x.pyc"])
def test_dockerignore_keeps_the_context_small(path):
    assert ignored(path), f"{path} should be in .dockerignore"


@pytest.mark.parametrize("path", ["course_utils", "course_utils/assets",
                                  "course_utils/assets/course-gpt/model.safetensors",
                                  "course_utils/serving/app.py"])
def test_dockerignore_keeps_what_the_image_needs(path):
    assert not ignored(path), f"{path} is needed in the image but .dockerignore drops it"


def closure(names: set[str]) -> set[str]:
    """The installed distributions ``names`` need, dependencies included (extras skipped)."""
    seen, todo = set(), list(names)
    while todo:
        name = canon(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def imports_of(paths: list[Path]) -> set[str]:
    """Top-level names of every module imported anywhere in these files (lazy imports too)."""
    names = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"course_utils"}


def test_everything_the_service_imports_is_installed_in_the_image():
    pkg = ROOT / "course_utils"
    files = [pkg / "__init__.py", pkg / "environment.py", pkg / "seeding.py",
             *pkg.glob("grading/*.py"),
             *pkg.glob("serving/*.py"), *pkg.glob("pretrained/__init__.py")]
    by_module = metadata.packages_distributions()
    installed = closure(set(docker_pins()))
    missing = {f"{module} (from {dist})" for module in imports_of(files)
               for dist in by_module.get(module, [module]) if canon(dist) not in installed}
    assert not missing, f"imported by the service but not installed in the image: {missing}"
