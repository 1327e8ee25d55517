"""What GPT's and BERT's configs share: the activation functions and the checks on the sizes.

Both models (lesson 03) take their activation by the name a Hugging Face config uses
(``hidden_act`` / ``activation_function``), so a loaded checkpoint picks the same function,
and both reject a config that cannot build a model with a message naming the bad field.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F

_tanh_gelu = partial(F.gelu, approximate="tanh")
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,  # exact GELU: BERT
    "gelu_new": _tanh_gelu,  # GPT-2's tanh approximation, under its two names
    "gelu_pytorch_tanh": _tanh_gelu,
    "relu": F.relu,
}


def check_config(config: Any, positive_ints: Sequence[str]) -> None:
    """Raise a ``ValueError`` naming the field unless: every field in ``positive_ints`` is a
    positive int, ``d_model`` divides into ``num_heads``, ``activation`` is in
    :data:`ACTIVATIONS` and ``dropout`` is in ``[0, 1)``."""
    kind = type(config).__name__
    for name in positive_ints:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{kind}.{name} must be a positive int, got {value!r}")
    if config.d_model % config.num_heads:
        raise ValueError(f"d_model={config.d_model} must be divisible by "
                         f"num_heads={config.num_heads}")
    if config.activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, "
                         f"got {config.activation!r}")
    if isinstance(config.dropout, bool) or not isinstance(config.dropout, int | float) \
            or not 0.0 <= config.dropout < 1.0:
        raise ValueError(f"{kind}.dropout must be a probability in [0, 1), got "
                         f"{config.dropout!r}")
