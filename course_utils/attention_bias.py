"""The additive attention bias of a right-padded batch, causal or not (lesson 01).

Libraries that take a float mask *add* it to the attention scores: 0 where a query may attend
to a key, a large negative number where it may not. For a batch of sequences of true lengths
``lengths`` (right-padded to ``seq_len``), key ``j`` is allowed for query ``i`` of sequence
``b`` when ``j < lengths[b]`` (not padding) and, for a causal model, ``j <= i``. The blocked
value is -1e9, not ``-inf``: a fully padded sequence then gets uniform weights instead of NaN.
"""

from __future__ import annotations

import torch

from course_utils.masks import bool_to_additive, causal_mask, padding_mask_from_lengths

BLOCKED = -1e9


def attention_bias(lengths, seq_len: int, causal: bool = True) -> torch.Tensor:
    """Float ``(batch, seq_len, seq_len)``: 0 where query ``i`` may attend to key ``j``, -1e9
    where ``j`` is padding (``j >= lengths[b]``) or, if ``causal``, in the future (``j > i``).

    ``lengths`` may be a list, a tensor or a numpy array of ints in ``[0, seq_len]``.
    """
    lengths = torch.as_tensor(lengths)
    allowed = padding_mask_from_lengths(lengths, seq_len)  # (batch, 1, seq)
    if causal:
        allowed = allowed & causal_mask(seq_len)
    allowed = allowed.expand(len(lengths), seq_len, seq_len)
    return bool_to_additive(allowed, BLOCKED)
