"""LoRA from scratch (lesson 06): a frozen layer plus a trainable low-rank update.

Fine-tuning changes a weight matrix ``W`` (``d_out x d_in``) by some ``dW``. LoRA bets that
``dW`` has low rank and learns it as a product ``dW = (alpha / r) * B @ A`` with ``A``
(``r x d_in``) and ``B`` (``d_out x r``), ``r`` much smaller than ``d_in`` and ``d_out``:

    h = W x + b + (alpha / r) * B (A dropout(x))

``B`` starts at zero, so the wrapped model starts out computing exactly what the base model did;
``A`` starts random (Kaiming-uniform, as in ``peft``), so gradients reach ``B`` from step one.
Only ``A`` and ``B`` train. After training, ``W + (alpha / r) * B @ A`` is one ordinary matrix:
:func:`merge_lora` folds the update in and the adapter costs nothing at inference.

GPT-2 stores its projections in ``transformers``' ``Conv1D``, a linear layer whose weight is
transposed (``d_in x d_out``, ``y = x @ W + b``); :class:`LoRALayer` handles both layouts, and
matches ``peft``'s LoRA on the same weights (``tests/test_lora.py``).
"""

from __future__ import annotations

import copy
import math
import re

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from course_utils.finetune.costs import count_parameters

LINEAR_TYPES = (nn.Linear, Conv1D)


def lora_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                 A: torch.Tensor, B: torch.Tensor, alpha: float, r: int) -> torch.Tensor:
    """A LoRA linear layer as one expression: ``x @ W.T + b + (alpha / r) * (x @ A.T) @ B.T``.

    ``weight`` is ``(d_out, d_in)`` as in ``nn.Linear``, ``A`` is ``(r, d_in)``, ``B`` is
    ``(d_out, r)``. Going through ``A`` first keeps the cost at ``r * (d_in + d_out)`` per
    token instead of building the full ``d_out x d_in`` product ``B @ A``.
    """
    base = x @ weight.T
    if bias is not None:
        base = base + bias
    return base + (alpha / r) * ((x @ A.T) @ B.T)


def merge_lora_weights(weight: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                       alpha: float, r: int) -> torch.Tensor:
    """The merged weight ``W + (alpha / r) * B @ A`` (``nn.Linear`` layout), as a new tensor."""
    if B.shape[1] != A.shape[0] or (B.shape[0], A.shape[1]) != tuple(weight.shape):
        raise ValueError(f"B {tuple(B.shape)} @ A {tuple(A.shape)} must have the weight's shape "
                         f"{tuple(weight.shape)}")
    return weight + (alpha / r) * (B @ A)


def _features(layer: nn.Module) -> tuple[int, int]:
    """``(d_in, d_out)`` of an ``nn.Linear`` or a GPT-2 ``Conv1D``."""
    if isinstance(layer, nn.Linear):
        return layer.in_features, layer.out_features
    if isinstance(layer, Conv1D):
        return layer.weight.shape[0], layer.weight.shape[1]
    raise TypeError(f"LoRA wraps nn.Linear or transformers' Conv1D, got {type(layer).__name__}")


class LoRALayer(nn.Module):
    """Wrap a frozen ``nn.Linear`` / ``Conv1D`` with a trainable rank-``r`` update."""

    def __init__(self, base: nn.Module, r: int = 8, alpha: float = 16.0,
                 dropout: float = 0.0) -> None:
        super().__init__()
        d_in, d_out = _features(base)
        if not isinstance(r, int) or r < 1:
            raise ValueError(f"r (the rank) must be a positive int, got {r!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.base, self.r, self.alpha = base, r, float(alpha)
        self.scaling = self.alpha / r
        for p in self.base.parameters():
            p.requires_grad_(False)
        like = base.weight
        self.lora_A = nn.Parameter(torch.empty(r, d_in, dtype=like.dtype, device=like.device))
        self.lora_B = nn.Parameter(torch.zeros(d_out, r, dtype=like.dtype, device=like.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # peft's default for A
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged:  # the update is inside base.weight already
            return self.base(x)
        update = (self.dropout(x) @ self.lora_A.T) @ self.lora_B.T
        return self.base(x) + self.scaling * update

    def _delta_in_base_layout(self) -> torch.Tensor:
        delta = self.delta_weight().detach()
        return delta.T if isinstance(self.base, Conv1D) else delta  # Conv1D: (d_in, d_out)

    def merge(self) -> None:
        """Fold the update into ``base.weight`` (in place); forward is then the base layer
        alone. Merging a merged layer changes nothing (the update is added once)."""
        if not self.merged:
            with torch.no_grad():
                self.base.weight.add_(self._delta_in_base_layout())
            self.merged = True

    def unmerge(self) -> None:
        """Take the update back out of ``base.weight``, so ``A`` and ``B`` can train again."""
        if self.merged:
            with torch.no_grad():
                self.base.weight.sub_(self._delta_in_base_layout())
            self.merged = False

    def delta_weight(self) -> torch.Tensor:
        """``(alpha / r) * B @ A`` in ``nn.Linear`` layout ``(d_out, d_in)``."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def merged_layer(self) -> nn.Module:
        """A plain copy of the base layer with the update folded into its weight."""
        layer = copy.deepcopy(self.base)
        if not self.merged:
            with torch.no_grad():
                layer.weight.add_(self._delta_in_base_layout())
        return layer

    def extra_repr(self) -> str:
        d_in, d_out = _features(self.base)
        return f"d_in={d_in}, d_out={d_out}, r={self.r}, alpha={self.alpha:g}"


def linear_module_names(model: nn.Module) -> list[str]:
    """The distinct short names of the model's linear layers (``nn.Linear`` and ``Conv1D``):
    the names ``target_modules`` can use, e.g. ``['c_attn', 'c_fc', 'c_proj', 'lm_head']``."""
    return sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules()
                   if isinstance(m, LINEAR_TYPES) and name})


def target_matches(name: str, target_modules: str | list[str] | tuple[str, ...]) -> bool:
    """Does module ``name`` match ``target_modules``, as ``peft`` matches them?

    A list names modules by their last components: ``"c_attn"`` or ``"attn.c_attn"`` matches
    ``transformer.h.0.attn.c_attn`` (the full name is it, or ends with ``.`` + it; a plain
    substring is not enough: ``"1.mlp.c_fc"`` must not match ``h.11.mlp.c_fc``). A single
    string is a regular expression that must match the *whole* name.
    """
    if isinstance(target_modules, str):
        return re.fullmatch(target_modules, name) is not None
    return any(name == t or name.endswith("." + t) for t in target_modules)


def inject_lora(model: nn.Module, target_modules: str | list[str] | tuple[str, ...],
                r: int = 8, alpha: float = 16.0, dropout: float = 0.0,
                layer: type[nn.Module] | None = None) -> nn.Module:
    """Freeze ``model`` and wrap every linear layer matching ``target_modules`` with LoRA.

    ``target_modules`` matches names as in ``peft`` (:func:`target_matches`); ``layer`` is the
    LoRA class to wrap with, called as ``layer(base, r, alpha, dropout)`` (default
    :class:`LoRALayer`). Everything is frozen first, so only the new ``A`` and ``B`` train.
    Modifies ``model`` in place and returns it.
    """
    if not isinstance(target_modules, str):
        target_modules = list(target_modules)
    if not target_modules:
        raise ValueError("target_modules is empty: name at least one layer, e.g. ['c_attn']")
    found = [name for name, m in model.named_modules()
             if name and target_matches(name, target_modules) and isinstance(m, LINEAR_TYPES)]
    if not found:
        raise ValueError(f"none of target_modules={target_modules!r} is a linear layer of this "
                         f"{type(model).__name__}; its linear layers are called "
                         f"{linear_module_names(model)}")
    wrap = LoRALayer if layer is None else layer
    for p in model.parameters():
        p.requires_grad_(False)
    for name in found:  # the names were collected first: the tree changes as we replace
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, wrap(getattr(parent, child), r, alpha, dropout))
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every :class:`LoRALayer` in ``model`` by its merged plain layer (in place)."""
    wrapped = [name for name, m in model.named_modules() if isinstance(m, LoRALayer)]
    if not wrapped:
        raise ValueError("the model has no LoRA layers to merge: call inject_lora first")
    for name in wrapped:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, getattr(parent, child).merged_layer())
    return model


def count_trainable_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameters, each shared tensor counted once."""
    return count_parameters(model)


def update_singular_values(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """Singular values (largest first) of the fine-tuning update ``after - before``."""
    if before.shape != after.shape or before.dim() != 2:
        raise ValueError(f"need two weight matrices of the same 2-D shape, got "
                         f"{tuple(before.shape)} and {tuple(after.shape)}")
    return torch.linalg.svdvals((after - before).double()).float()


def rank_for_energy(singular_values: torch.Tensor, energy: float = 0.9) -> int:
    """How many singular directions hold ``energy`` of the update's squared Frobenius norm."""
    if not 0 < energy <= 1:
        raise ValueError(f"energy must be in (0, 1], got {energy!r}")
    share = singular_values.double().square().cumsum(0) / singular_values.double().square().sum()
    return int((share < energy - 1e-12).sum().item()) + 1


__all__ = ["LINEAR_TYPES", "LoRALayer", "count_trainable_parameters", "inject_lora",
           "linear_module_names", "lora_forward", "merge_lora", "merge_lora_weights",
           "rank_for_energy", "target_matches", "update_singular_values"]
