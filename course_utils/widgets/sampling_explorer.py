"""Lesson 04's sampling explorer: how temperature, top-k and top-p reshape the next token.

Type a prompt, move the sliders, and watch the next-token distribution change, with a sampled
continuation underneath. The sampling maths is :mod:`course_utils.generation`'s (lesson 03),
the logits :func:`course_utils.lm.next_token_logits`'s; this module only runs and draws.
:func:`distribution_table` and :func:`sample_continuation` are the pure parts the tests call.
"""

from __future__ import annotations

import html
from typing import Any

import torch

from course_utils.generation import next_token_distribution, sample_next_token
from course_utils.lm import check_texts, context_length, encode, next_token_logits


def _settings(temperature: float, top_k: int | None, top_p: float | None
              ) -> tuple[float, int | None, float | None]:
    """Slider values to filter arguments: top-k 0 and top-p 1 mean "off"."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    return float(temperature), (int(top_k) if top_k else None), \
        (None if top_p is None or top_p >= 1.0 else float(top_p))


def distribution_table(logits: torch.Tensor, tokenizer, temperature: float = 1.0,
                       top_k: int | None = None, top_p: float | None = None,
                       n: int = 12) -> list[dict[str, Any]]:
    """The ``n`` most likely next tokens: their text, probability before (temperature 1, no
    filter) and after the settings. Greedy (temperature 0) puts all the mass on one token."""
    t, k, p = _settings(temperature, top_k, top_p)
    before = next_token_distribution(logits, 1.0)
    after = next_token_distribution(logits, t, k, p)
    order = torch.argsort(before, descending=True)[:n]
    return [{"token": tokenizer.decode([int(i)]), "id": int(i), "before": float(before[i]),
             "after": float(after[i])} for i in order]


def kept_tokens(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None) -> int:
    """How many tokens still have a non-zero chance of being drawn under the settings."""
    return int((next_token_distribution(logits, *_settings(temperature, top_k, top_p)) > 0).sum())


@torch.inference_mode()
def sample_continuation(model, tokenizer, prompt: str, temperature: float = 1.0,
                        top_k: int | None = None, top_p: float | None = None,
                        max_new_tokens: int = 30, seed: int = 0) -> str:
    """Continue ``prompt`` token by token with the KV cache, sampling each token with
    :func:`course_utils.generation.sample_next_token` (greedy at temperature 0)."""
    t, k, p = _settings(temperature, top_k, top_p)
    room = context_length(model, tokenizer) - max_new_tokens
    ids = torch.tensor([encode(tokenizer, check_texts([prompt]), room)[0]])
    generator = torch.Generator().manual_seed(seed)
    past, step, new = None, ids, []
    mask = torch.ones_like(ids)
    for _ in range(max_new_tokens):
        out = model(input_ids=step, attention_mask=mask, cache=past, use_cache=True)
        past = out.cache
        nxt = sample_next_token(out.logits[:, -1].float(), do_sample=t > 0, temperature=t or 1.0,
                                top_k=k, top_p=p, generator=generator)
        if tokenizer.eos_token_id is not None and int(nxt) == tokenizer.eos_token_id:
            break
        new.append(int(nxt))
        step = nxt.view(1, 1)
        mask = torch.cat([mask, torch.ones_like(step)], dim=1)
    return tokenizer.decode(new, skip_special_tokens=True)


def draw(table: list[dict[str, Any]], title: str = "", ax=None):
    """Bars of the probabilities after the settings, with the unfiltered ones as outlines."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.4))
    labels = [repr(r["token"])[1:-1].replace(" ", "␣") or "∅" for r in table]
    xs = range(len(table))
    ax.bar(xs, [r["after"] for r in table], color="tab:blue", label="after the settings")
    ax.bar(xs, [r["before"] for r in table], fill=False, edgecolor="black", linewidth=1.2,
           label="temperature 1, no filter")
    ax.set_xticks(list(xs), labels, rotation=45, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_title(title or "next-token distribution")
    ax.legend(loc="upper right")
    return ax


def sampling_explorer(model=None, tokenizer=None, prompt: str = "Once upon a time,",
                      max_new_tokens: int = 30):
    """Build the widget (the bundled ``course-gpt`` unless a model and tokenizer are given)."""
    import ipywidgets as W
    import matplotlib.pyplot as plt

    if model is None or tokenizer is None:
        from course_utils.pretrained import load_pretrained

        model, tokenizer = load_pretrained("course-gpt")
    text = W.Textarea(value=prompt, description="prompt", layout=W.Layout(width="95%"),
                      continuous_update=False)
    wide = {"style": {"description_width": "initial"}, "continuous_update": False}
    temperature = W.FloatSlider(value=1.0, min=0.0, max=2.0, step=0.05,
                                description="temperature", **wide)
    top_k = W.IntSlider(value=0, min=0, max=50, description="top-k (0 off)", **wide)
    top_p = W.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05, description="top-p (1 off)",
                          **wide)
    seed = W.IntText(value=0, description="seed", layout=W.Layout(width="140px"),
                     style={"description_width": "initial"})
    sample = W.HTML()
    cache: dict[str, torch.Tensor] = {}

    def show(prompt: str, temperature: float, top_k: int, top_p: float, seed: int) -> None:
        if not prompt:
            sample.value = "<i>type a prompt</i>"
            return
        if prompt not in cache:
            cache.clear()
            cache[prompt] = next_token_logits(model, tokenizer, prompt)
        table = distribution_table(cache[prompt], tokenizer, temperature, top_k, top_p)
        kept = kept_tokens(cache[prompt], temperature, top_k, top_p)
        draw(table, f"T={temperature:.2f}, top-k={top_k or 'off'}, "
                    f"top-p={top_p if top_p < 1 else 'off'}: {kept} tokens can be drawn")
        plt.tight_layout()
        plt.show()
        cont = sample_continuation(model, tokenizer, prompt, temperature, top_k, top_p,
                                   max_new_tokens, seed)
        sample.value = (f"<b>sampled continuation</b> (seed {seed}):<br><pre>"
                        f"{html.escape(prompt)}<b>{html.escape(cont)}</b></pre>")

    out = W.interactive_output(show, {"prompt": text, "temperature": temperature,
                                      "top_k": top_k, "top_p": top_p, "seed": seed})
    controls = W.HBox([temperature, top_k, top_p, seed], layout=W.Layout(flex_flow="row wrap"))
    box = W.VBox([text, controls, out, sample])
    box.add_class("course-sampling-explorer")
    return box
