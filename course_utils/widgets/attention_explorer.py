"""Lesson 01's attention explorer: a tokens x tokens heatmap you can steer.

Pick the query token, the temperature (a multiplier on sqrt(d_k)) and the mask, and see the
weights change. The maths lives in :func:`explorer_weights`, which the tests call directly.
"""

from __future__ import annotations

import zlib

import torch

from course_utils import attention, masks

MASK_TYPES = ("none", "causal", "padding", "causal + padding")

# Words that mean related things share a direction, so attention finds them.
_GROUPS = {
    "animal": {"cat", "dog", "bird", "it", "she", "he", "they", "fox"},
    "place": {"mat", "park", "home", "garden", "house", "river"},
    "action": {"sat", "ran", "slept", "jumped", "was", "saw"},
    "feeling": {"tired", "happy", "hungry", "sad", "sleepy"},
}


def toy_embeddings(tokens: list[str], d_model: int = 16, seed: int = 0) -> torch.Tensor:
    """One vector per token: a shared direction per meaning group plus a word's own noise.

    Deterministic for a given word (the seed mixes with a stable hash of the word), so the
    same sentence always gives the same picture.
    """
    if not tokens:
        raise ValueError("need at least one token; type a sentence with words in it")
    g = torch.Generator().manual_seed(seed)
    group_dirs = {name: torch.randn(d_model, generator=g) for name in _GROUPS}
    rows = []
    for tok in tokens:
        word = tok.lower().strip(".,!?")
        wg = torch.Generator().manual_seed(seed * 7919 + zlib.crc32(word.encode()))
        vec = 0.6 * torch.randn(d_model, generator=wg)
        for name, members in _GROUPS.items():
            if word in members:
                vec = vec + 1.5 * group_dirs[name]
        rows.append(vec)
    return torch.stack(rows)


def explorer_mask(mask_type: str, seq_len: int, n_pad: int = 2) -> torch.Tensor | None:
    """The boolean mask for one of :data:`MASK_TYPES` (padding = the last ``n_pad`` tokens)."""
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type must be one of {MASK_TYPES}, got {mask_type!r}")
    n_pad = max(0, min(n_pad, seq_len - 1))
    causal = masks.causal_mask(seq_len) if "causal" in mask_type else None
    padding = (masks.padding_mask_from_lengths([seq_len - n_pad], seq_len)[0]
               if "padding" in mask_type else None)
    return masks.combine_masks(causal, padding)


def explorer_weights(tokens: list[str], temperature: float = 1.0, mask_type: str = "none",
                     n_pad: int = 2, d_model: int = 16) -> torch.Tensor:
    """The (tokens x tokens) attention weights the explorer draws."""
    x = toy_embeddings(tokens, d_model)
    mask = explorer_mask(mask_type, len(tokens), n_pad)
    return attention.attention_weights(x, x, mask, temperature=temperature)


def draw(tokens: list[str], query: int, weights: torch.Tensor, ax_map=None, ax_bar=None):
    """Heatmap of all weights with the query's row outlined, and that row as bars."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if ax_map is None or ax_bar is None:
        _, (ax_map, ax_bar) = plt.subplots(1, 2, figsize=(11, 4.2),
                                           gridspec_kw={"width_ratios": [1.1, 1]})
    w = weights.detach().numpy()
    ax_map.imshow(w, cmap="viridis", vmin=0, vmax=1)
    ax_map.set_xticks(range(len(tokens)), tokens, rotation=60, ha="right")
    ax_map.set_yticks(range(len(tokens)), tokens)
    ax_map.set_xlabel("key (looked at)")
    ax_map.set_ylabel("query (looking)")
    ax_map.add_patch(Rectangle((-0.5, query - 0.5), len(tokens), 1, fill=False,
                               edgecolor="red", linewidth=2))
    ax_map.set_title("attention weights")
    ax_bar.bar(range(len(tokens)), w[query], color="tab:red")
    ax_bar.set_xticks(range(len(tokens)), tokens, rotation=60, ha="right")
    ax_bar.set_ylim(0, 1)
    ax_bar.set_title(f"where '{tokens[query]}' looks (row sums to {w[query].sum():.2f})")
    return ax_map, ax_bar


def attention_explorer(sentence: str = "the cat sat on the mat because it was tired"):
    """Build the widget: query slider, temperature slider, mask dropdown, live figure."""
    import ipywidgets as W
    import matplotlib.pyplot as plt

    tokens = sentence.split()
    if not tokens:
        raise ValueError("the sentence is empty; pass a few words")
    query = W.IntSlider(value=min(7, len(tokens) - 1), min=0, max=len(tokens) - 1,
                        description="query token", continuous_update=False)
    temperature = W.FloatLogSlider(value=1.0, base=10, min=-1, max=1, step=0.05,
                                   description="temperature", continuous_update=False)
    mask_type = W.Dropdown(options=list(MASK_TYPES), value="none", description="mask")
    label = W.HTML()

    def show(query: int, temperature: float, mask_type: str) -> None:
        weights = explorer_weights(tokens, temperature, mask_type)
        label.value = (f"query <b>{tokens[query]}</b>; scores divided by "
                       f"sqrt(d_k) &times; {temperature:.2f}")
        draw(tokens, query, weights)
        plt.tight_layout()
        plt.show()

    out = W.interactive_output(show, {"query": query, "temperature": temperature,
                                      "mask_type": mask_type})
    box = W.VBox([W.HBox([query, temperature, mask_type]), label, out])
    box.add_class("course-attention-explorer")
    return box
