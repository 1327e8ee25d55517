"""BERT's masked-language-modelling input: the 15% / 80-10-10 rule (lesson 03).

Of the tokens that are not special (``[CLS]``, ``[SEP]``, padding), each is *chosen* with
probability ``mlm_probability``; the model must predict the chosen ones (``labels`` hold their
ids, -100 elsewhere so the loss ignores them). Of the chosen tokens, 80% are replaced by
``[MASK]``, 10% by a random token and 10% are left as they are: ``[MASK]`` never appears when
the model is used, so the model must keep a faithful vector for every token, not only for
``[MASK]``. ``transformers``' ``DataCollatorForLanguageModeling`` applies the same rule.
"""

from __future__ import annotations

import torch

IGNORE_INDEX = -100


def mlm_mask(input_ids: torch.Tensor, special_tokens_mask: torch.Tensor, mask_token_id: int,
             vocab_size: int, generator: torch.Generator, mlm_probability: float = 0.15
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(masked_input_ids, labels)`` for a batch; every random draw comes from ``generator``."""
    if not isinstance(input_ids, torch.Tensor) or input_ids.dtype != torch.long:
        raise ValueError("input_ids must be a torch.long tensor of token ids")
    if not 0.0 <= mlm_probability <= 1.0:
        raise ValueError(f"mlm_probability must be in [0, 1], got {mlm_probability}")
    shape = input_ids.shape
    special = special_tokens_mask.bool()
    chosen = (torch.rand(shape, generator=generator) < mlm_probability) & ~special
    labels = input_ids.masked_fill(~chosen, IGNORE_INDEX)
    draw = torch.rand(shape, generator=generator)
    to_mask = chosen & (draw < 0.8)
    to_random = chosen & (draw >= 0.8) & (draw < 0.9)
    random_ids = torch.randint(vocab_size, shape, generator=generator)
    inputs = input_ids.masked_fill(to_mask, mask_token_id)
    inputs = torch.where(to_random, random_ids, inputs)
    return inputs, labels
