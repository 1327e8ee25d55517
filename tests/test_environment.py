"""The environment files agree with each other and with what is installed."""

import re
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = {"torch", "jupyterlab", "ipywidgets", "matplotlib", "transformers", "peft", "datasets",
            "evaluate", "nbval", "jupytext", "tokenizers", "safetensors", "sacrebleu",
            "rouge-score", "fastapi", "uvicorn", "httpx", "pytest"}


def pins(text: str) -> dict[str, str]:
    found = re.findall(r"^\s*(?:-\s+)?([A-Za-z0-9_.-]+)==([^\s#]+)", text, re.M)
    return {name.lower(): version for name, version in found}


def test_every_direct_dependency_is_pinned_and_torch_is_cpu():
    text = (ROOT / "requirements.txt").read_text()
    req = pins(text)
    assert REQUIRED <= set(req), REQUIRED - set(req)
    assert req["torch"] == "2.13.0"
    assert "download.pytorch.org/whl/cpu" in text
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "--")):
            assert "==" in line, f"unpinned: {line}"


def test_binder_and_conda_files_have_the_same_pins():
    req = pins((ROOT / "requirements.txt").read_text())
    assert pins((ROOT / "binder" / "requirements.txt").read_text()) == req
    assert pins((ROOT / "environment.yml").read_text()) == req


def test_installed_versions_match_the_pins():
    wrong = {}
    for name, version in pins((ROOT / "requirements.txt").read_text()).items():
        installed = metadata.version(name).split("+")[0]
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"pinned vs installed: {wrong}"


def test_binder_files_are_executable_and_offline():
    for name in ("postBuild", "start"):
        path = ROOT / "binder" / name
        assert path.stat().st_mode & 0o111, f"binder/{name} must be executable"
    assert "HF_HUB_OFFLINE=1" in (ROOT / "binder" / "start").read_text()
    assert "build_notebooks.py" in (ROOT / "binder" / "postBuild").read_text()
