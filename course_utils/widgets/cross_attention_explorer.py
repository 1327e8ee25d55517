"""Lesson 02's cross-attention explorer: where the translator's decoder looks in the source.

Pick a source sentence (or type one from the course's words), a decoder layer and a head: the
map shows, for each Lingo word the translator writes, how its attention spreads over the English
words. Lingo puts the adjective after the noun ("the red ball" -> "lo pilko ruga"), so a head
that aligns words draws crossing lines there. The maths is in :func:`cross_attention_maps`,
:func:`alignment` and :func:`alignment_accuracy`, which the tests call directly.
"""

from __future__ import annotations

import torch

from course_utils.data.world import LINGO

ENGLISH_OF = {lingo: english for english, lingo in LINGO.items()}
ENGLISH_OF["."] = "."
FUNCTION_WORDS = {"lo", "un", ".", "</s>"}


def cross_attention_maps(translator, sentence: str
                         ) -> tuple[list[str], list[str], torch.Tensor]:
    """``(source words, written words, weights)`` for one English sentence.

    ``weights`` is ``(layers, heads, written, source)``: row ``t`` is the cross-attention of the
    decoder step that wrote word ``t`` (the last word written is ``</s>``). The source words
    include the ``</s>`` the encoder reads at the end.
    """
    if not isinstance(sentence, str) or not sentence.strip():
        raise ValueError("the sentence is empty: type an English sentence, e.g. "
                         "'The cat sees the red ball.'")
    unknown = translator.vocab.unknown_words(sentence)
    if unknown:
        raise ValueError(f"the translator does not know {', '.join(map(repr, unknown))}: use "
                         "the course's words, e.g. cat, dog, sees, likes, red, big, ball, park")
    ids, mask = translator.batch([sentence])
    out, weights = translator.generate(ids, mask, return_cross_attention=True)
    written = out[0].tolist()
    n = written.index(translator.vocab.eos_id) + 1 if translator.vocab.eos_id in written else len(
        written)
    itos = translator.vocab.itos
    source = [itos[i] for i in ids[0].tolist()]
    stacked = torch.stack([w[0, :, :n] for w in weights])  # (layers, heads, written, source)
    return source, [itos[i] for i in written[:n]], stacked


def alignment(weights: torch.Tensor) -> list[int]:
    """For each written word, the source position it attends to most (``weights (T, S)``)."""
    if weights.dim() != 2:
        raise ValueError(f"weights must be one head's (written, source) map, got "
                         f"{tuple(weights.shape)}")
    return weights.argmax(dim=-1).tolist()


def crossings(links: list[int], written: list[str] | None = None) -> int:
    """How many pairs of alignment lines cross: written ``i < j`` linked to source ``a > b``.

    With ``written``, only the content words count (not "lo", "un", "." or ``</s>``, which a
    head may park anywhere)."""
    keep = [i for i in range(len(links))
            if written is None or written[i] not in FUNCTION_WORDS]
    return sum(1 for a, i in enumerate(keep) for j in keep[a + 1:] if links[i] > links[j])


def alignment_accuracy(source: list[str], written: list[str], weights: torch.Tensor) -> float:
    """Share of written Lingo words whose most-attended source word is their English word.

    Lingo is one word for one word (``course_utils.data.world.LINGO``), so the right source word
    is known; ``</s>`` is skipped, and "lo" counts as right on any "the".
    """
    links = alignment(weights)
    scored = [(w, links[t]) for t, w in enumerate(written) if w in ENGLISH_OF]
    if not scored:
        return 0.0
    return sum(source[s] == ENGLISH_OF[w] for w, s in scored) / len(scored)


def best_head(source: list[str], written: list[str], weights: torch.Tensor) -> tuple[int, int]:
    """The ``(layer, head)`` whose map aligns the words best on this sentence."""
    scores = torch.tensor([[alignment_accuracy(source, written, weights[layer, head])
                            for head in range(weights.shape[1])]
                           for layer in range(weights.shape[0])])
    flat = int(scores.argmax())
    return flat // weights.shape[1], flat % weights.shape[1]


def draw_alignment(source: list[str], written: list[str], weights: torch.Tensor, ax=None,
                   title: str = ""):
    """The map as lines: English words on top, Lingo words below, a line from each written word
    to the source words it attends to (thicker = more attention)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 2.8))
    w = weights.detach()
    xs = lambda n: [i / max(n - 1, 1) for i in range(n)]
    top, bottom = xs(len(source)), xs(len(written))
    for t in range(len(written)):
        for s in range(len(source)):
            if w[t, s] > 0.05:
                ax.plot([bottom[t], top[s]], [0, 1], color="C0", alpha=float(w[t, s]),
                        lw=4 * float(w[t, s]))
    for x, word in zip(top, source, strict=True):
        ax.text(x, 1.05, word, ha="center", va="bottom", fontsize=10)
    for x, word in zip(bottom, written, strict=True):
        ax.text(x, -0.05, word, ha="center", va="top", fontsize=10, color="C1")
    ax.set_ylim(-0.35, 1.35)
    ax.set_xlim(-0.08, 1.08)
    ax.axis("off")
    ax.set_title(title)
    return ax


def draw_map(source: list[str], written: list[str], weights: torch.Tensor, ax=None,
             title: str = ""):
    """Heatmap of one head's ``(written, source)`` weights."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    ax.imshow(weights.detach().numpy(), cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(source)), source, rotation=60, ha="right", fontsize=9)
    ax.set_yticks(range(len(written)), written, fontsize=9)
    ax.set_xlabel("English source word (key)")
    ax.set_ylabel("Lingo word written (query)")
    ax.set_title(title)
    return ax


def cross_attention_explorer(translator, sentences: list[str], layer: int | None = None,
                             head: int | None = None):
    """Build the widget: a sentence menu, a text box, layer and head sliders, the map."""
    import ipywidgets as W
    import matplotlib.pyplot as plt

    if not sentences:
        raise ValueError("give at least one example sentence")
    source, written, weights = cross_attention_maps(translator, sentences[0])
    if layer is None or head is None:
        layer, head = best_head(source, written, weights)
    menu = W.Dropdown(options=list(sentences), value=sentences[0], description="sentence",
                      layout=W.Layout(width="95%"))
    typed = W.Text(value="", placeholder="or type one: The old horse likes the green apple.",
                   description="your own", continuous_update=False,
                   layout=W.Layout(width="95%"))
    layer_s = W.IntSlider(value=layer, min=0, max=weights.shape[0] - 1, description="layer",
                          continuous_update=False)
    head_s = W.IntSlider(value=head, min=0, max=weights.shape[1] - 1, description="head",
                         continuous_update=False)
    label = W.HTML()
    cache: dict[str, tuple] = {}

    def show(chosen: str, own: str, layer: int, head: int) -> None:
        text = own.strip() or chosen
        try:
            if text not in cache:
                cache.clear()
                cache[text] = cross_attention_maps(translator, text)
        except ValueError as exc:
            label.value = f"<b>{exc}</b>"
            return
        src, out, w = cache[text]
        links = alignment(w[layer, head])
        acc = alignment_accuracy(src, out, w[layer, head])
        ids = [translator.vocab.stoi[word] for word in out]
        label.value = (f"translation: <b>{translator.vocab.decode(ids)}</b> &nbsp;|&nbsp; "
                       f"layer {layer}, head {head}: {acc:.0%} of the words look hardest at "
                       f"their English word; {crossings(links, out)} crossing alignment lines")
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.8),
                                       gridspec_kw={"width_ratios": [1.6, 1]})
        draw_alignment(src, out, w[layer, head], ax=ax1, title="English (top) -> Lingo (below)")
        draw_map(src, out, w[layer, head], ax=ax2, title=f"layer {layer}, head {head}")
        plt.tight_layout()
        plt.show()

    out = W.interactive_output(show, {"chosen": menu, "own": typed, "layer": layer_s,
                                      "head": head_s})
    box = W.VBox([menu, typed, W.HBox([layer_s, head_s]), label, out])
    box.add_class("course-cross-attention-explorer")
    return box
