"""What a fine-tuning run costs, measured one way for every method (lessons 05 and 06).

Full fine-tuning, LoRA and prompt tuning are compared on the same figures, measured by the same
code: trainable parameters, optimizer-state memory, peak memory of a training step, time per
step, size of the saved weights on disk, and task accuracy. :class:`CostCallback` measures a
``Trainer`` run from the inside; :class:`RunCost` holds the figures; :func:`save_run` and
:func:`load_run` keep them in a small JSON file under :func:`cache_dir`, so lesson 06 can compare
against lesson 05's run (and recompute it when the learner skipped lesson 05).

Peak memory is counted in tensor bytes, not read from the operating system: a
``TorchDispatchMode`` sees every tensor a training step creates and frees, so the figure is the
same on every machine and every run, and it splits cleanly into weights, gradients, optimizer
state and activations. (The process's resident memory also holds Python, libraries and freed
blocks the allocator keeps; it is far noisier than the differences we want to see.)
"""

from __future__ import annotations

import json
import os
import statistics
import time
import weakref
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from transformers import TrainerCallback

from course_utils.lm import size_on_disk

MB = 2**20


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts; a tied weight (GPT-2's ``wte``/``lm_head``)
    counts once, as ``model.parameters()`` yields each tensor once."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    params = list(model.parameters())
    return (sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params))


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes held by the optimizer's state (AdamW: two moments per trainable parameter)."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        inner = getattr(optimizer, "optimizer", None)  # accelerate wraps the optimizer
        if not isinstance(inner, torch.optim.Optimizer):
            raise TypeError(f"expected a torch optimizer, got {type(optimizer).__name__}")
        optimizer = inner
    return sum(v.numel() * v.element_size() for state in optimizer.state.values()
               for v in state.values() if isinstance(v, torch.Tensor))


class TensorMemoryTracker(TorchDispatchMode):
    """Count the bytes of live tensor storage while active; ``peak`` is the high-water mark.

    Every tensor an operation returns is registered once (by its storage) and subtracted when
    the storage is freed. Call :meth:`add` for tensors that existed before (the weights, the
    optimizer state) so the total is the whole footprint, not only what the step allocated.
    """

    def __init__(self) -> None:
        super().__init__()
        self._live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def add(self, *tensors: Any) -> None:
        """Register tensors (nested lists/dicts are fine) that the step did not create."""
        for t in tree_flatten(tensors)[0]:
            if not isinstance(t, torch.Tensor) or t.device.type == "meta":
                continue
            storage = t.untyped_storage()
            key = id(storage)
            if key in self._live:
                continue
            self._live[key] = storage.nbytes()
            self.current += self._live[key]
            self.peak = max(self.peak, self.current)
            weakref.finalize(storage, self._free, key)

    def _free(self, key: int) -> None:
        self.current -= self._live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.add(out)
        return out


def _model_tensors(model: nn.Module, optimizer: Any) -> list[torch.Tensor]:
    tensors = [*model.parameters(), *model.buffers()]
    tensors += [p.grad for p in model.parameters() if p.grad is not None]
    if optimizer is not None:
        opt = getattr(optimizer, "optimizer", optimizer)
        tensors += [v for s in opt.state.values() for v in s.values()
                    if isinstance(v, torch.Tensor)]
    return tensors


@dataclass
class RunCost:
    """The cost and result of one fine-tuning run; every size is in bytes, times in seconds."""

    method: str
    trainable_params: int
    total_params: int
    optimizer_state_bytes: int = 0
    peak_memory_bytes: int = 0
    time_per_step_s: float = float("nan")
    size_on_disk_bytes: int = 0
    accuracy: float | None = None
    steps: int = 0
    source: str = "measured in this run"
    extra: dict = field(default_factory=dict)

    @property
    def trainable_fraction(self) -> float:
        """Trainable parameters as a fraction of the base model's parameters."""
        return self.trainable_params / max(1, self.total_params)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RunCost:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class CostCallback(TrainerCallback):
    """Measure a ``Trainer`` run: time of every optimizer step, peak tensor memory of one step,
    optimizer state at the end. Pass it in ``callbacks=[...]`` and read :meth:`result`.

    The first ``warmup`` steps are not timed (first-call overheads); step ``memory_step`` runs
    under a :class:`TensorMemoryTracker`, which slows that one step, so it is not timed either.
    """

    def __init__(self, warmup: int = 1, memory_step: int = 1) -> None:
        if warmup < 0 or memory_step < 0:
            raise ValueError("warmup and memory_step must be >= 0")
        self.warmup, self.memory_step = warmup, memory_step
        self.step_times: list[float] = []
        self.peak_memory_bytes = 0
        self.optimizer_state_bytes = 0
        self._tracker: TensorMemoryTracker | None = None
        self._t0 = 0.0

    def on_step_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        if state.global_step == self.memory_step and model is not None:
            self._tracker = TensorMemoryTracker()
            self._tracker.add(_model_tensors(model, optimizer))
            self._tracker.__enter__()
        self._t0 = time.perf_counter()

    def on_step_end(self, args, state, control, optimizer=None, **kwargs):
        elapsed = time.perf_counter() - self._t0
        if self._tracker is not None:
            self._tracker.__exit__(None, None, None)
            self.peak_memory_bytes = self._tracker.peak
            self._tracker = None
        elif state.global_step > self.warmup:
            self.step_times.append(elapsed)
        if optimizer is not None:
            self.optimizer_state_bytes = optimizer_state_bytes(optimizer)

    @property
    def time_per_step(self) -> float:
        """Median seconds per optimizer step (nan when too few steps ran to time one)."""
        return statistics.median(self.step_times) if self.step_times else float("nan")

    def result(self, method: str, model: nn.Module, **extra: Any) -> RunCost:
        """A :class:`RunCost` from what was measured plus ``accuracy=``, ``size_on_disk_bytes=``,
        ``total_params=`` (the base model's count, for adapters) and other fields."""
        trainable, total = count_parameters(model)
        base = {"method": method, "trainable_params": trainable, "total_params": total,
                "optimizer_state_bytes": self.optimizer_state_bytes,
                "peak_memory_bytes": self.peak_memory_bytes,
                "time_per_step_s": self.time_per_step,
                "steps": len(self.step_times) + (self.peak_memory_bytes > 0) + self.warmup}
        base.update(extra)
        return RunCost(**base)


# ------------------------------------------------------------------------- the shared store


def cache_dir() -> Path:
    """Where runs are kept between lessons: ``$COURSE_CACHE_DIR``, else ``~/.cache/llm-course``."""
    env = os.environ.get("COURSE_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "llm-course"


def _runs_file() -> Path:
    return cache_dir() / "finetune_runs.json"


def save_run(key: str, cost: RunCost, fingerprint: str) -> Path:
    """Store ``cost`` under ``key`` with the ``fingerprint`` of the recipe that produced it."""
    path = _runs_file()
    try:
        runs = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        runs = {}
    runs[key] = {"fingerprint": fingerprint, "saved": time.strftime("%Y-%m-%d %H:%M"),
                 "cost": cost.to_dict()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(runs, indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_run(key: str, fingerprint: str) -> RunCost | None:
    """The stored run for ``key`` if it came from the same recipe (same ``fingerprint``)."""
    try:
        entry = json.loads(_runs_file().read_text(encoding="utf-8"))[key]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(entry, dict) or entry.get("fingerprint") != fingerprint:
        return None
    cost = RunCost.from_dict(entry["cost"])
    cost.source = f"from an earlier run ({entry.get('saved', '?')})"
    return cost


# ------------------------------------------------------------------------- showing them

COLUMNS = (("method", "method"), ("trainable params", "trainable_params"),
           ("% of model", "trainable_fraction"), ("optimizer state", "optimizer_state_bytes"),
           ("peak memory", "peak_memory_bytes"), ("time / step", "time_per_step_s"),
           ("on disk", "size_on_disk_bytes"), ("accuracy", "accuracy"))


def _cell(cost: RunCost, attr: str) -> str:
    value = getattr(cost, attr)
    if value is None:
        return "-"
    if attr == "trainable_fraction":
        return f"{100 * value:.2f}%"
    if attr.endswith("_bytes"):
        return f"{value / MB:.2f} MB"
    if attr == "time_per_step_s":
        return f"{1000 * value:.0f} ms"
    if attr == "accuracy":
        return f"{100 * value:.1f}%"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def format_table(costs: list[RunCost]) -> str:
    """A markdown table with one row per run; a run not measured in this process is starred,
    with a footnote saying where it comes from (its time was measured under other load)."""
    if not costs:
        raise ValueError("no runs to show: pass a list of RunCost")
    lines = ["| " + " | ".join(h for h, _ in COLUMNS) + " |",
             "|" + "|".join("---" if a == "method" else "---:" for _, a in COLUMNS) + "|"]
    notes = []
    for c in costs:
        cells = [_cell(c, a) for _, a in COLUMNS]
        if c.source != RunCost.source:
            cells[0] += " *"
            notes.append(f"\\* {c.method}: {c.source}; its time per step was measured then, "
                         "alongside whatever else the machine was doing.")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines + ([""] + notes if notes else []))


def plot_costs(costs: list[RunCost], axes: Any = None) -> Any:
    """Bar charts of trainable parameters (log scale), peak memory, time per step, accuracy;
    runs from an earlier process are hatched and starred, as in :func:`format_table`."""
    import matplotlib.pyplot as plt

    panels = (("trainable parameters", lambda c: c.trainable_params, True),
              ("peak memory of a step (MB)", lambda c: c.peak_memory_bytes / MB, False),
              ("time per step (ms)", lambda c: 1000 * c.time_per_step_s, False),
              ("task accuracy (%)", lambda c: 100 * (c.accuracy or 0), False))
    if axes is None:
        _, axes = plt.subplots(1, 4, figsize=(15, 3.6))
    earlier = [c.source != RunCost.source for c in costs]  # starred and hatched
    names = [c.method + (" *" if e else "") for c, e in zip(costs, earlier, strict=True)]
    colors = [f"C{i}" for i in range(len(costs))]
    for ax, (title, get, log) in zip(axes, panels, strict=True):
        bars = ax.bar(range(len(costs)), [get(c) for c in costs], color=colors)
        for bar, e in zip(bars, earlier, strict=True):
            bar.set_hatch("//" if e else "")
        ax.set_xticks(range(len(costs)), names, rotation=35, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        if log:
            ax.set_yscale("log")
    if any(earlier):
        axes[0].figure.text(0.01, 0.0, "* from an earlier run: its time was measured under "
                            "the load of that moment", fontsize=8)
    axes[0].figure.tight_layout()
    return axes


__all__ = ["CostCallback", "MB", "RunCost", "TensorMemoryTracker", "cache_dir", "count_parameters",
           "format_table", "load_run", "optimizer_state_bytes", "plot_costs", "save_run",
           "size_on_disk"]
