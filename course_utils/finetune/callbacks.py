"""A ``Trainer`` callback that keeps the loss curve, and the plot that shows it.

``Trainer`` reports the training loss every ``logging_steps`` steps and the eval loss at every
evaluation (``eval_strategy="steps"``, ``eval_steps=...``) through ``on_log``. Keeping those
numbers is all a loss curve needs; ``trainer.state.log_history`` holds them too, but mixed
with learning rates and runtimes.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback


class LossHistory(TrainerCallback):
    """Record ``(step, loss)`` for training and evaluation as ``Trainer`` logs them."""

    def __init__(self) -> None:
        self.train: list[tuple[int, float]] = []
        self.eval: list[tuple[int, float]] = []
        self.metrics: list[tuple[int, dict]] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            self.train.append((state.global_step, float(logs["loss"])))
        if "eval_loss" in logs:
            self.eval.append((state.global_step, float(logs["eval_loss"])))
            others = {k[5:]: v for k, v in logs.items()
                      if k.startswith("eval_") and k != "eval_loss"
                      and isinstance(v, int | float) and "runtime" not in k
                      and "per_second" not in k}
            if others:
                self.metrics.append((state.global_step, others))

    def best_eval_step(self) -> int | None:
        """The step with the lowest eval loss: where early stopping would keep the model."""
        return min(self.eval, key=lambda se: se[1])[0] if self.eval else None


def plot_loss_curves(history: LossHistory, ax: Any = None, title: str = "loss") -> Any:
    """Train and eval loss against the optimizer step, the best eval step marked."""
    import matplotlib.pyplot as plt

    if not isinstance(history, LossHistory):
        raise TypeError(f"expected a LossHistory, got {type(history).__name__}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    if history.train:
        ax.plot(*zip(*history.train, strict=True), label="train loss", lw=1.2)
    if history.eval:
        ax.plot(*zip(*history.eval, strict=True), "o-", label="eval loss", ms=4)
        best = history.best_eval_step()
        ax.axvline(best, color="grey", ls=":", label=f"lowest eval loss (step {best})")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy")
    ax.set_title(title)
    ax.legend()
    return ax
