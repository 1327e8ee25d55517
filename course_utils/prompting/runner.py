"""Running prompts through a causal LM in batches: generation and choosing a label by likelihood.

The batching itself (encoding, left padding, position ids, ``model.generate``) is the LM
layer's, :mod:`course_utils.lm`; lesson 04 knows its string generation as
:func:`generate_batch`. Prompts of different lengths share a batch by **left padding**: the pad
tokens go before the prompt, so every row's last real token sits in the last column and
generation continues from there; the tests check that a padded row computes exactly what it
would alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from course_utils.lm import generate_text as generate_batch
from course_utils.lm import label_logprobs, label_token_ids, load_model

__all__ = ["generate_batch", "label_logprobs", "label_scores", "label_token_ids", "load_model"]


def label_scores(model, tokenizer, prompts: Sequence[str], label_words: Sequence[str],
                 batch_size: int = 16) -> torch.Tensor:
    """Log-probability of each one-token label word as the next token:
    ``(len(prompts), len(labels))``.

    Reading the label off these scores (the argmax) is *choosing by likelihood*: the answer is
    always one of the labels, so an answer that wanders off format still counts as the model's
    best guess. One forward pass per prompt, no generation. Words of several tokens need
    :func:`label_logprobs`, which sums (or averages) their tokens' log-probabilities.
    """
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of strings (wrap a single prompt in a list)")
    label_token_ids(tokenizer, label_words)  # one token each, none shared: or a clear error
    return label_logprobs(model, tokenizer, prompts, label_words, batch_size=batch_size)
