"""The bundled pretrained models, loaded offline: ``load_pretrained("course-gpt")``.

Small checkpoints ship under ``course_utils/assets/`` (all but the translator in Hugging Face
format):

- ``course-gpt``: a GPT-2-architecture causal LM (``GPT2LMHeadModel``, 4 layers, width 160,
  4 heads, context 256) with a byte-level BPE tokenizer of 1,024 tokens, a pad token
  (``<|pad|>``, distinct from ``<|endoftext|>``), and a chat template (``System:/User:/Assistant:``
  lines, as in its pretraining chats) so ``tokenizer.apply_chat_template`` works;
- ``course-bert``: a BERT-architecture encoder (``BertForPreTraining``: masked language modelling
  and next-sentence prediction) with a lower-cased WordPiece tokenizer;
- ``course-translator``: lesson 02's English -> Lingo encoder-decoder
  (:class:`course_utils.transformer.Translator`, safetensors + ``config.json``, not a
  ``transformers`` model): ``load_pretrained`` returns it with its word vocabulary.
- ``course-gpt-mini``: a 2-layer, width-128 student distilled from ``course-gpt``, with its
  tokenizer (lesson 09's draft model); ``course-gpt-mini/from-scratch/`` holds the same student
  trained on the same tokens without the teacher.
- ``course-gpt-chat``: ``course-gpt`` instruction-tuned (supervised fine-tuning with the loss on
  the assistant's replies only, :mod:`course_utils.finetune.sft`) on the chats of
  :mod:`course_utils.data.instructions`; same size, same tokenizer and chat template.

All three GPTs share one chat template
(:data:`course_utils.pretrained.tokenizer_build.CHAT_TEMPLATE`): ``System:/User:/Assistant:``
lines, each assistant turn ended by the eos token.

Both were trained on :mod:`course_utils.data` (stories plus the task formats of
:mod:`course_utils.data.corpus`); each directory holds its ``training_log.json`` and
``loss_curve.png``. The prompt formats the GPT knows, and that
``benchmarks/capabilities.py`` measures, are in :mod:`course_utils.data.prompts`.
Rebuild both from scratch with ``python -m course_utils.pretrained build``.

Any other name is passed to the Hugging Face hub (``load_pretrained("gpt2")``) when online;
with ``HF_HUB_OFFLINE=1`` (the course default) it fails at once, naming the bundled models.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
BUNDLED = ("course-gpt", "course-bert", "course-translator", "course-gpt-mini", "course-gpt-chat")


def asset_path(name: str) -> Path:
    """The directory of a bundled checkpoint, e.g. ``asset_path("course-gpt")``."""
    if name not in BUNDLED:
        raise ValueError(f"unknown bundled model {name!r}: choose one of {', '.join(BUNDLED)}")
    return ASSETS_DIR / name


def _offline() -> bool:
    flags = (os.environ.get(k, "") for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return any(f.strip().lower() in ("1", "true", "yes", "on") for f in flags)


def _quiet_load(cls: Any, path: str | Path, **kwargs: Any) -> Any:
    """``cls.from_pretrained`` without transformers' "Loading weights" bar for local files.

    A checkpoint of a few MB loads in a fraction of a second, so the bar is only noise in a
    notebook; hub downloads keep their bars. The previous setting is restored afterwards.
    """
    from transformers.utils import logging as hf_logging

    local = Path(path).is_dir()
    was_on = hf_logging.is_progress_bar_enabled()
    if local and was_on:
        hf_logging.disable_progress_bar()
    try:
        return cls.from_pretrained(path, **kwargs)
    finally:
        if local and was_on:
            hf_logging.enable_progress_bar()


def load_pretrained(name: str = "course-gpt", model_class: Any = None,
                    **kwargs: Any) -> tuple[Any, Any]:
    """Return ``(model, tokenizer)`` for a bundled model, a local directory or a hub name.

    ``model_class`` picks the head, e.g. ``AutoModelForSequenceClassification`` with
    ``num_labels=3`` for fine-tuning; by default ``course-gpt`` is a ``GPT2LMHeadModel`` and
    ``course-bert`` a ``BertForPreTraining``. Other keyword arguments go to ``from_pretrained``
    (e.g. ``attn_implementation="eager"`` to get attention weights).
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a model name such as 'course-gpt', got {name!r}")
    from transformers import AutoModelForPreTraining, AutoTokenizer

    if name == "course-translator":  # not a transformers model: course_utils.transformer's own
        from course_utils.transformer import load_translator

        translator = load_translator()
        return translator, translator.vocab
    if name in BUNDLED:
        path: str | Path = asset_path(name)
        if not (Path(path) / "config.json").exists():
            raise FileNotFoundError(
                f"the bundled checkpoint {name!r} is missing from {path}; rebuild it with "
                "`python -m course_utils.pretrained build`")
    elif Path(name).is_dir():
        path = name
    elif _offline():
        raise OSError(
            f"{name!r} is not a bundled model and the hub is offline (HF_HUB_OFFLINE=1), so it "
            "cannot be downloaded. Use the bundled models instead: load_pretrained('course-gpt') "
            "for a GPT-2-style causal LM or load_pretrained('course-bert') for a BERT encoder. "
            "To use the hub, go online and set HF_HUB_OFFLINE=0 before importing course_utils.")
    else:
        path = name
    cls = model_class or AutoModelForPreTraining
    if not hasattr(cls, "from_pretrained"):
        raise TypeError(f"model_class must be a transformers model class, got {cls!r}")
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token  # hub GPT-2 ships without one
    model = _quiet_load(cls, path, **kwargs)
    if getattr(model.config, "pad_token_id", None) is None and tokenizer.pad_token_id is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return model, tokenizer


__all__ = ["ASSETS_DIR", "BUNDLED", "asset_path", "load_pretrained"]
