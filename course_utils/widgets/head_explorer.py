"""Lesson 03's head explorer: one attention head's map on a sentence you type.

Pick a layer and a head of a Hugging Face model (loaded with ``attn_implementation="eager"``,
the only implementation that returns attention weights) and see where each token looks. The
maths lives in :func:`attention_maps` and :func:`head_scores`, which the tests call directly.
"""

from __future__ import annotations

import torch

PATTERNS = ("previous token", "same token", "first token")


def display_tokens(tokenizer, input_ids: list[int]) -> list[str]:
    """Readable labels for a plot: each token decoded on its own, spaces shown as ``·``."""
    return [tokenizer.decode([i]).replace(" ", "·").replace("\n", "⏎") or "∅" for i in input_ids]


@torch.no_grad()
def attention_maps(model, tokenizer, text: str) -> tuple[list[str], torch.Tensor]:
    """``(tokens, weights)`` for ``text``; ``weights`` is ``(layers, heads, seq, seq)``.

    Row ``i`` of ``weights[l, h]`` is how token ``i`` spreads its attention in layer ``l``,
    head ``h``: non-negative, summing to 1.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text is empty: type a sentence")
    if getattr(model.config, "_attn_implementation", "eager") != "eager":
        raise ValueError("this model does not return attention weights: load it with "
                         'attn_implementation="eager", e.g. load_pretrained("course-gpt", '
                         'attn_implementation="eager")')
    max_len = getattr(model.config, "n_positions", None) or model.config.max_position_embeddings
    enc = tokenizer(text, return_tensors="pt", truncation=True, max_length=max_len)
    out = model(**enc, output_attentions=True)
    weights = torch.stack([a[0] for a in out.attentions])  # (layers, heads, seq, seq)
    return display_tokens(tokenizer, enc["input_ids"][0].tolist()), weights


def head_scores(weights: torch.Tensor) -> dict[str, torch.Tensor]:
    """How much of each head's attention goes to the previous token, to the token itself and
    to the first token, averaged over the queries that have such a key: ``(layers, heads)``.

    Different heads specialise: a "previous token" head scores near 1 on the first pattern.
    """
    if weights.dim() != 4 or weights.shape[-1] != weights.shape[-2]:
        raise ValueError(f"weights must be (layers, heads, seq, seq), got {tuple(weights.shape)}")
    seq = weights.shape[-1]
    if seq < 2:
        raise ValueError("need at least 2 tokens to tell the patterns apart")
    diag = weights.diagonal(dim1=-2, dim2=-1)  # (layers, heads, seq)
    prev = weights.diagonal(offset=-1, dim1=-2, dim2=-1)  # query i -> key i - 1
    first = weights[..., 1:, 0]  # queries after the first token -> key 0
    return {"previous token": prev.mean(-1), "same token": diag[..., 1:].mean(-1),
            "first token": first.mean(-1)}


def draw_head(tokens: list[str], weights: torch.Tensor, ax=None, title: str = ""):
    """Heatmap of one head's ``(seq, seq)`` weights: rows = queries, columns = keys.

    The colour scale tops out at the 98th percentile of the weights on and below the diagonal
    (the first rows of a causal map have one or two keys, so their weights are near 1 and would
    wash out every other pattern).
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5))
    w = weights.detach()
    lower = w[torch.ones_like(w, dtype=torch.bool).tril()].float()
    vmax = max(float(torch.quantile(lower, 0.98)), 1e-6)
    ax.imshow(w.numpy(), cmap="viridis", vmin=0, vmax=vmax)
    ax.set_xticks(range(len(tokens)), tokens, rotation=70, ha="right", fontsize=8)
    ax.set_yticks(range(len(tokens)), tokens, fontsize=8)
    ax.set_xlabel("key (looked at)")
    ax.set_ylabel("query (looking)")
    ax.set_title(title)
    return ax


def head_explorer(model, tokenizer, text: str = "Mia found a red ball in the park and gave it "
                  "to her brother."):
    """Build the widget: a text box, layer and head sliders, the head's map and its scores."""
    import ipywidgets as W
    import matplotlib.pyplot as plt

    num_layers = len(attention_maps(model, tokenizer, "a b")[1])
    num_heads = model.config.num_attention_heads
    box_text = W.Text(value=text, description="sentence", continuous_update=False,
                      layout=W.Layout(width="95%"))
    layer = W.IntSlider(value=0, min=0, max=num_layers - 1, description="layer",
                        continuous_update=False)
    head = W.IntSlider(value=0, min=0, max=num_heads - 1, description="head",
                       continuous_update=False)
    label = W.HTML()
    cache: dict[str, tuple[list[str], torch.Tensor]] = {}

    def show(text: str, layer: int, head: int) -> None:
        try:
            if text not in cache:
                cache.clear()
                cache[text] = attention_maps(model, tokenizer, text)
        except ValueError as exc:
            label.value = f"<b>{exc}</b>"
            return
        tokens, weights = cache[text]
        scores = head_scores(weights) if len(tokens) > 1 else None
        if scores is not None:
            label.value = "; ".join(f"{name}: {scores[name][layer, head]:.2f}"
                                    for name in PATTERNS)
        draw_head(tokens, weights[layer, head], title=f"layer {layer}, head {head}")
        plt.tight_layout()
        plt.show()

    out = W.interactive_output(show, {"text": box_text, "layer": layer, "head": head})
    box = W.VBox([box_text, W.HBox([layer, head]), label, out])
    box.add_class("course-head-explorer")
    return box
