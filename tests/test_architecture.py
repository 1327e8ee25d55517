"""The layers of ``course_utils`` (docs/ARCHITECTURE.md): nothing imports upward, no cycles,
and the front door and the server load only what they use.

The layer map is the table below. A module takes the layer of the longest entry that is its
name or a package above it; an entry ``pkg.*`` covers the modules under ``pkg`` but not ``pkg``
itself. A new module whose package is not in the table fails ``test_every_module_has_a_layer``:
add it where it belongs (and to docs/ARCHITECTURE.md). Entries for modules that do not exist
(yet, or any more) are harmless.

The package root ``course_utils`` is special. ``import course_utils`` adds no dependency (Python
runs the root before any of its modules anyway, and it loads only ``environment``), so it is not
an edge; ``from course_utils import check`` is an import of the name's real home (the front
door's lazy table says where), here ``course_utils.grading``.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "course_utils"

FRONT_DOOR, PRESENTATION, TECHNIQUES, MODELS, WORLD, FOUNDATION = 5, 4, 3, 2, 1, 0
LAYER_NAMES = {FRONT_DOOR: "the front door", PRESENTATION: "widgets and grading",
               TECHNIQUES: "techniques", MODELS: "the LM layer and the core models",
               WORLD: "the world", FOUNDATION: "the foundation"}

LAYERS: dict[str, int] = {
    # The package itself: it hands names on lazily; no course module may import from it.
    "course_utils": FRONT_DOOR,
    # What a learner sees and what grades them.
    "course_utils.widgets": PRESENTATION,
    "course_utils.grading": PRESENTATION,
    # Techniques: what the lessons teach, built on the models.
    "course_utils.prompting": TECHNIQUES,
    "course_utils.finetune": TECHNIQUES,
    "course_utils.finetune.lora": TECHNIQUES,
    "course_utils.finetune.costs": TECHNIQUES,
    "course_utils.finetune.sft": TECHNIQUES,  # instruction tuning: reply-only labels, batches
    "course_utils.metrics": TECHNIQUES,
    "course_utils.metrics.toxicity": TECHNIQUES,
    "course_utils.metrics.paired": TECHNIQUES,  # lesson 04: McNemar exact, paired bootstrap
    "course_utils.serving": TECHNIQUES,
    "course_utils.serving.chat": TECHNIQUES,  # /v1/chat/completions: chat templates, chunks
    # Timeouts, the connection bound, JSON-only bodies, CORS and the SIGTERM drain (issue 21).
    "course_utils.serving.connections": TECHNIQUES,
    # Lesson 08's batching modes: the scheduler step (exercise 08.4) and the continuous worker.
    "course_utils.serving.scheduler": TECHNIQUES,
    "course_utils.serving.continuous": TECHNIQUES,
    "course_utils.serving.engine_process": TECHNIQUES,  # the batcher in a child process
    "course_utils.evaluate_modules": TECHNIQUES,  # `evaluate.load(path)` wrappers of metrics
    # Lesson 09, smaller and faster: each idea its own module (`course_utils.speculative` is the
    # name the lesson and its issue give the library function).
    "course_utils.quantization": TECHNIQUES,
    "course_utils.distillation": TECHNIQUES,
    "course_utils.speculative": TECHNIQUES,
    "course_utils.model_report": TECHNIQUES,  # size, perplexity, accuracy, speed of a model
    # Building the bundled checkpoints (build, train_gpt, train_bert, train_translator,
    # tokenizer_build, __main__) is training, a technique; loading them (the package's
    # __init__: load_pretrained, asset_path) sits with the models, below.
    "course_utils.pretrained.*": TECHNIQUES,
    # The causal-LM layer and the core models, side by side.
    "course_utils.lm": MODELS,
    # Loading a bundled checkpoint (pretrained/__init__: load_pretrained, asset_path) builds a
    # model object, which for the translator is the course's own core class: the loader sits
    # with the models it builds (the checkpoint files in assets/ are the world's).
    "course_utils.pretrained": MODELS,
    "course_utils.attention": MODELS,
    "course_utils.attention_bias": MODELS,  # lesson 01: the additive bias of a padded batch
    "course_utils.padded_batch": MODELS,  # lesson 03: masks and positions with a cache
    "course_utils.bpe": MODELS,  # lesson 03: byte-pair encoding by hand
    "course_utils.gpt_parts": MODELS,  # lesson 03: layer norm, GELU, MLP, block, forward
    "course_utils.mlm": MODELS,  # lesson 03: BERT's 80/10/10 masking
    "course_utils.masks": MODELS,
    "course_utils.gpt": MODELS,
    "course_utils.bert": MODELS,
    "course_utils.transformer": MODELS,
    "course_utils.model_config": MODELS,
    "course_utils.generation": MODELS,
    "course_utils.training": MODELS,
    # The course's world: generated data and the bundled checkpoints.
    "course_utils.data": WORLD,
    "course_utils.data.instructions": WORLD,  # checkable instruction chats (course-gpt-chat's)
    # Process set-up that anything may use.
    "course_utils.environment": FOUNDATION,
    "course_utils.seeding": FOUNDATION,
    "course_utils.lesson": FOUNDATION,
}

# Same layer, but neither may import the other: a widget never grades, the grader never draws.
APART = [("course_utils.widgets", "course_utils.grading")]

# (importer, imported) pairs allowed to go upward, each with its reason. Keep it empty if you can.
UPWARD_EXCEPTIONS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    lazy: bool  # inside a function: runs on first call, not on import


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def lazy_names() -> dict[str, str]:
    """The front door's table: each name it hands on, and the module that defines it."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and getattr(node.targets[0], "id", None) == "_WHERE"):
            return {k: f"course_utils.{v}" for k, v in ast.literal_eval(node.value).items()}
    return {}


LAZY = lazy_names()


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def resolve(source: str, node: ast.ImportFrom) -> str:
    """The absolute module named by a ``from ... import`` (relative imports too)."""
    if not node.level:
        return node.module or ""
    base = source.split(".")
    base = base[: len(base) - node.level + (1 if is_package(source) else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def edges_of(source: str, text: str | None = None) -> list[Edge]:
    """Every import of a course_utils module in ``source`` (its file, or ``text``), at module
    level or in a function."""
    found: list[Edge] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = resolve(source, child)
                # `from pkg import name`: the submodule pkg.name if there is one, else pkg;
                # a name the front door hands on: the module that defines it
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES
                           else LAZY.get(a.name, base) if base == "course_utils" else base
                           for a in child.names]
            for target in targets:
                if target.startswith("course_utils."):  # the bare root is no dependency
                    found.append(Edge(source, target, child.lineno, lazy))
            visit(child, inner)

    visit(ast.parse(text if text is not None else MODULES[source].read_text(encoding="utf-8")),
          False)
    return found


EDGES = [edge for name in MODULES for edge in edges_of(name)]


def layer_of(name: str) -> int | None:
    """The layer of the longest entry of LAYERS that is ``name`` or a package above it (the
    front door, ``course_utils``, is only itself: it is not a package above everything)."""
    if name == "course_utils":
        return LAYERS[name]
    parts = name.split(".")
    for n in range(len(parts), 1, -1):
        entry = ".".join(parts[:n])
        if n < len(parts) and f"{entry}.*" in LAYERS:
            return LAYERS[f"{entry}.*"]
        if entry in LAYERS:
            return LAYERS[entry]
    return None


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_scan_sees_the_imports_it_must_judge():
    """The scanner itself: lazy imports, `from pkg import submodule` and relative imports."""
    text = ("import torch\nimport course_utils\nfrom course_utils import attention, check\n"
            "import course_utils.data\n\n"
            "def f():\n    from course_utils.grading import check\n\n"
            "class C:\n    def g(self):\n        from course_utils.prompting import runner\n")
    found = {(e.target, e.lazy, e.line) for e in edges_of("course_utils.seeding", text)}
    assert found == {("course_utils.attention", False, 3), ("course_utils.grading", False, 3),
                     ("course_utils.data", False, 4), ("course_utils.grading", True, 7),
                     ("course_utils.prompting.runner", True, 11)}, found
    tree = ast.parse("from .. import data\nfrom .runner import x\n")
    first, second = tree.body
    assert resolve("course_utils.prompting.harness", first) == "course_utils"
    assert resolve("course_utils.prompting.harness", second) == "course_utils.prompting.runner"
    assert resolve("course_utils.prompting", second) == "course_utils.prompting.runner"


def test_layer_of_takes_the_longest_entry_and_never_the_front_door_for_others():
    assert layer_of("course_utils") == FRONT_DOOR
    assert layer_of("course_utils.serving.app") == TECHNIQUES
    assert layer_of("course_utils.pretrained.build") == TECHNIQUES
    assert layer_of("course_utils.pretrained.train_translator") == TECHNIQUES
    assert LAZY["check"] == "course_utils.grading"  # the front door's table was found
    assert layer_of("course_utils.pretrained") == MODELS
    assert layer_of("course_utils.no_such_module") is None


def test_every_module_has_a_layer():
    missing = sorted(name for name in MODULES if layer_of(name) is None)
    assert not missing, (f"no layer for {missing}: add each (or its package) to LAYERS in "
                         "tests/test_architecture.py and to docs/ARCHITECTURE.md")


def test_no_module_imports_upward():
    """Module-level and function-level imports alike: a lazy import is still a dependency."""
    upward = []
    for e in EDGES:
        low, high = layer_of(e.source), layer_of(e.target)
        if low is None or high is None or high <= low:
            continue
        if (e.source, e.target) in UPWARD_EXCEPTIONS:
            continue
        where = "inside a function" if e.lazy else "at module level"
        upward.append(f"{e.source} ({LAYER_NAMES[low]}) imports {e.target} "
                      f"({LAYER_NAMES[high]}) {where}, line {e.line}")
    assert not upward, ("imports upward across the layers of docs/ARCHITECTURE.md:\n"
                        + "\n".join(upward))


def test_the_upward_exceptions_are_still_needed():
    current = {(e.source, e.target) for e in EDGES}
    stale = [pair for pair in UPWARD_EXCEPTIONS if pair not in current]
    assert not stale, f"remove these from UPWARD_EXCEPTIONS, the imports are gone: {stale}"


@pytest.mark.parametrize(("one", "other"), APART)
def test_widgets_and_grading_stay_apart(one, other):
    crossing = [f"{e.source} imports {e.target} (line {e.line})" for e in EDGES
                if (within(e.source, one) and within(e.target, other))
                or (within(e.source, other) and within(e.target, one))]
    assert not crossing, "\n".join(crossing)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := walk(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := walk(node)):
            return found
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles():
    """Among module-level imports (what runs on ``import``); a package importing its own
    modules in ``__init__`` is the usual shape and only a cycle if they import it back."""
    graph: dict[str, set[str]] = {}
    for e in EDGES:
        if not e.lazy and e.target != e.source and e.target in MODULES:
            graph.setdefault(e.source, set()).add(e.target)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


# --- what a fresh process loads --------------------------------------------------------------

CLEAN_ENV = {k: v for k, v in os.environ.items()
             if k not in ("HF_HUB_OFFLINE", "OMP_WAIT_POLICY", "TRANSFORMERS_NO_ADVISORY_WARNINGS")}
CLEAN_ENV["PYTHONPATH"] = str(ROOT)


def loaded_after(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; return what it loaded and its environment."""
    probe = (f"{code}\nimport json, os, sys\n"
             "print(json.dumps({'modules': sorted(sys.modules), 'env': dict(os.environ)}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env=CLEAN_ENV, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def course_modules(modules: list[str], package: str) -> list[str]:
    return [m for m in modules if within(m, package)]


@pytest.mark.parametrize("statement", ["import course_utils", "import course_utils.serving",
                                       "from course_utils.serving import ServerProcess"])
def test_the_front_door_loads_nothing_heavy(statement):
    seen = loaded_after(statement)
    for heavy in ("course_utils.grading", "course_utils.widgets", "torch", "transformers",
                  "huggingface_hub", "ipywidgets"):
        assert not course_modules(seen["modules"], heavy), f"{statement} loaded {heavy}"
    assert seen["env"]["HF_HUB_OFFLINE"] == "1" and seen["env"]["OMP_WAIT_POLICY"] == "PASSIVE"


def test_the_app_module_is_offline_before_the_hub_library_starts():
    """Imported directly, the app still gets the offline default before huggingface_hub reads
    it (it reads HF_HUB_OFFLINE once, on import)."""
    seen = loaded_after("import course_utils.serving.app\nimport huggingface_hub.constants as c\n"
                        "assert c.HF_HUB_OFFLINE is True, c.HF_HUB_OFFLINE")
    assert not course_modules(seen["modules"], "course_utils.grading")
    assert not course_modules(seen["modules"], "course_utils.widgets")


def test_a_learner_can_still_go_online():
    """The default never overrides the environment: HF_HUB_OFFLINE=0 set first is kept."""
    code = ("import os\nos.environ['HF_HUB_OFFLINE'] = '0'\nimport course_utils\n"
            "import huggingface_hub.constants as c\nassert c.HF_HUB_OFFLINE is False")
    assert loaded_after(code)["env"]["HF_HUB_OFFLINE"] == "0"


@pytest.mark.slow
def test_the_servers_process_never_loads_the_grader_or_the_widgets():
    """``python -m course_utils.serving`` itself, as the notebook and Docker start it, with
    Python's import log on (PYTHONPROFILEIMPORTTIME): after start-up and a request to each
    route module, no grader or widget module was ever imported."""
    import httpx

    from course_utils.serving import ServerProcess

    env = {**CLEAN_ENV, "PYTHONPROFILEIMPORTTIME": "1"}
    with ServerProcess("--model", "course-gpt", startup_timeout=300, env=env) as server:
        r = httpx.post(f"{server.url}/generate", timeout=120,
                       json={"prompt": "Once upon a time", "max_length": 12})
        assert r.status_code == 200, r.text
        r = httpx.post(f"{server.url}/v1/completions", timeout=120,
                       json={"model": "course-gpt", "prompt": "Once", "max_tokens": 3})
        assert r.status_code == 200, r.text
        log = server.output()
    imported = {line.rsplit("|", 1)[1].strip() for line in log.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert {"course_utils.serving.app", "course_utils.serving.openai_compat"} <= imported, (
        "the import log did not come through:\n" + log[-2000:])
    assert not course_modules(sorted(imported), "course_utils.grading")
    assert not course_modules(sorted(imported), "course_utils.widgets")
