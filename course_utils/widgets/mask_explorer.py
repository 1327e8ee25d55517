"""Lesson 01's mask explorer: the 0-1 mask, its additive form and the softmax, side by side."""

from __future__ import annotations

import torch

from course_utils import attention, masks
from course_utils.widgets.attention_explorer import MASK_TYPES, explorer_mask


def mask_panels(mask_type: str, seq_len: int, n_pad: int = 0, fill_value: float = -1e9,
                seed: int = 0) -> dict[str, torch.Tensor]:
    """The three pictures: the 0/1 mask, the additive mask, and softmax(scores + additive)."""
    mask = explorer_mask(mask_type, seq_len, n_pad)
    if mask is None:
        mask = torch.ones(seq_len, seq_len, dtype=torch.bool)
    mask = mask.expand(seq_len, seq_len)
    additive = masks.bool_to_additive(mask, fill_value)
    scores = torch.randn(seq_len, seq_len, generator=torch.Generator().manual_seed(seed))
    weights = attention.softmax(scores + additive, dim=-1)
    return {"mask": mask.int(), "additive": additive, "weights": weights}


def draw(panels: dict[str, torch.Tensor], axes=None):
    """Three heatmaps with their values written in the cells."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(13, 4.3))
    n = panels["mask"].shape[0]
    titles = {"mask": "0-1 mask (1 = may attend)", "additive": "additive mask (added to scores)",
              "weights": "softmax(scores + additive)"}
    for ax, key in zip(axes, ("mask", "additive", "weights"), strict=True):
        data = panels[key]
        shown = (data > -1).float() if key == "additive" else data
        ax.imshow(shown.numpy(), cmap="Greens" if key != "weights" else "viridis", vmin=0, vmax=1)
        ax.set_title(titles[key])
        ax.set_xlabel("key")
        ax.set_ylabel("query")
        ax.set_xticks(range(n))
        ax.set_yticks(range(n))
        if n <= 10:
            for i in range(n):
                for j in range(n):
                    v = float(data[i, j])
                    text = ("0" if v == 0 else "-inf" if v == float("-inf") else
                            "-1e9" if v <= -1e8 else f"{v:.2f}" if key == "weights" else f"{v:g}")
                    # Readable on both colour maps: Greens is dark at 1, viridis dark at 0.
                    dark = float(shown[i, j]) > 0.5 if key != "weights" else v <= 0.5
                    ax.text(j, i, text, ha="center", va="center", fontsize=7,
                            color="white" if dark else "black")
    return axes


def mask_explorer(seq_len: int = 6):
    """Build the widget: mask type, sequence length, padding count, fill value."""
    import ipywidgets as W
    import matplotlib.pyplot as plt
    from IPython.display import display

    kind = W.ToggleButtons(options=list(MASK_TYPES), value="causal", description="mask")
    length = W.IntSlider(value=seq_len, min=2, max=10, description="seq_len",
                         continuous_update=False)
    n_pad = W.IntSlider(value=2, min=0, max=9, description="padding",
                        continuous_update=False)
    fill = W.Dropdown(options=[("-1e9 (cheat-sheet)", -1e9), ("-inf", float("-inf"))],
                      value=-1e9, description="fill value")

    def show(kind: str, length: int, n_pad: int, fill: float) -> None:
        # Its own figure, shown and closed explicitly: no reliance on pyplot's "current figure",
        # which once drew an empty figure here in the browser suite.
        fig, axes = plt.subplots(1, 3, figsize=(13, 4.3))
        draw(mask_panels(kind, length, n_pad, fill), axes)
        fig.tight_layout()
        display(fig)
        plt.close(fig)

    out = W.interactive_output(show, {"kind": kind, "length": length, "n_pad": n_pad,
                                      "fill": fill})
    box = W.VBox([kind, W.HBox([length, n_pad, fill]), out])
    box.add_class("course-mask-explorer")
    return box
