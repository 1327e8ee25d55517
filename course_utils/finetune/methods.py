"""The fine-tuning methods lesson 06 compares, each a recipe for what trains and how fast.

- ``full``: every weight trains (lesson 05);
- ``LoRA r=N``: ``peft`` LoRA of rank N on every linear layer of the blocks (or only on the
  attention projection ``c_attn``), with ``lora_alpha = 2 r``, so the update's scaling stays 2
  whatever the rank and one learning rate suits every rank;
- ``prompt tuning``: ``peft`` learns ``num_virtual_tokens`` input embeddings put before every
  example, initialised from the embeddings of a text (``PromptTuningInit.TEXT``);
- ``P-tuning``: the same number of virtual embeddings, produced by a small MLP (``peft``'s
  ``PromptEncoderConfig``), whose weights are what trains.

Fewer trainable parameters usually want a larger learning rate: each method carries its own,
chosen by a small sweep on the validation loss of course-gpt with the lesson's budget.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from peft import (
    LoraConfig,
    PromptEncoderConfig,
    PromptTuningConfig,
    PromptTuningInit,
    TaskType,
    get_peft_model,
)

from course_utils.finetune.sentiment import Recipe

PROMPT_INIT_TEXT = "Is each review positive, negative or neutral?"


def lora_config(r: int, target_modules: tuple[str, ...] = ("c_attn",),
                dropout: float = 0.0) -> LoraConfig:
    """``LoraConfig`` for a GPT-2-style causal LM (``Conv1D`` layers: ``fan_in_fan_out``)."""
    return LoraConfig(task_type=TaskType.CAUSAL_LM, r=r, lora_alpha=2 * r,
                      target_modules=list(target_modules), lora_dropout=dropout,
                      fan_in_fan_out=True)


def prompt_tuning_config(num_virtual_tokens: int, tokenizer_path: str | Path,
                         init_text: str = PROMPT_INIT_TEXT) -> PromptTuningConfig:
    """``PromptTuningConfig`` initialised from ``init_text``, tokenized by the tokenizer saved
    at ``tokenizer_path`` (the bundled one: no hub download)."""
    return PromptTuningConfig(task_type=TaskType.CAUSAL_LM,
                              prompt_tuning_init=PromptTuningInit.TEXT,
                              prompt_tuning_init_text=init_text,
                              num_virtual_tokens=num_virtual_tokens,
                              tokenizer_name_or_path=str(tokenizer_path))


def p_tuning_config(num_virtual_tokens: int, encoder_hidden_size: int = 64) -> PromptEncoderConfig:
    """``PromptEncoderConfig`` (P-tuning): the virtual embeddings are the output of a small MLP
    (the prompt encoder) applied to its own trainable table, not trained directly."""
    return PromptEncoderConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=num_virtual_tokens,
                               encoder_hidden_size=encoder_hidden_size,
                               encoder_reparameterization_type="MLP")


@dataclass(frozen=True)
class Method:
    """One way to fine-tune: ``kind`` is ``"full"``, ``"lora"``, ``"prompt"`` or
    ``"p-tuning"``."""

    name: str
    kind: str
    learning_rate: float
    r: int = 0
    num_virtual_tokens: int = 0
    target_modules: tuple[str, ...] = ("c_attn",)

    def apply(self, model: Any, tokenizer_path: str | Path | None = None, seed: int = 0) -> Any:
        """The model to train: ``model`` itself, or a ``peft`` model wrapping it.

        The new weights (LoRA's ``A``) are drawn from a generator seeded with ``seed``, so a
        run does not depend on what ran before it, and the caller's random state is kept.
        """
        if self.kind == "full":
            return model
        if self.kind == "lora":
            config = lora_config(self.r, self.target_modules)
        elif self.kind == "prompt":
            if tokenizer_path is None:
                raise ValueError("prompt tuning with a TEXT init needs tokenizer_path")
            config = prompt_tuning_config(self.num_virtual_tokens, tokenizer_path)
        elif self.kind == "p-tuning":
            config = p_tuning_config(self.num_virtual_tokens)
        else:
            raise ValueError(f"kind must be 'full', 'lora', 'prompt' or 'p-tuning', got "
                             f"{self.kind!r}")
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return get_peft_model(model, config)


ATTENTION = ("c_attn",)  # GPT-2's fused query/key/value projection: cheat-sheets' q_proj, v_proj
ALL_LINEAR = ("c_attn", "c_proj", "c_fc")  # every linear layer of every block (c_proj: both)

FULL = Method("full", "full", learning_rate=1e-3)
COMPARISON_STEPS = 5  # lesson 06's comparison budget: short enough that the methods differ
COMPARISON = (
    FULL,
    Method("LoRA r=4, c_attn only", "lora", learning_rate=2e-2, r=4, target_modules=ATTENTION),
    Method("LoRA r=1", "lora", learning_rate=1e-2, r=1, target_modules=ALL_LINEAR),
    Method("LoRA r=4", "lora", learning_rate=1e-2, r=4, target_modules=ALL_LINEAR),
    Method("LoRA r=16", "lora", learning_rate=1e-2, r=16, target_modules=ALL_LINEAR),
    Method("prompt tuning", "prompt", learning_rate=1e-1, num_virtual_tokens=8),
    Method("P-tuning", "p-tuning", learning_rate=1e-2, num_virtual_tokens=8),
)


def comparison_recipe(recipe: Recipe | None = None) -> Recipe:
    """``recipe`` cut to :data:`COMPARISON_STEPS` optimizer steps (one of warm-up).

    With lesson 05's 30 steps every method but prompt tuning reaches 100% on the sentiment task
    and the comparison says nothing about quality; after 5 steps they are spread out (see
    ``benchmarks/results/finetune.md``).
    """
    return replace(recipe or Recipe(), max_steps=COMPARISON_STEPS, warmup_steps=1)
