"""Batched generation with left padding and a KV cache: what one serving batch runs.

The code is the LM layer's (:mod:`course_utils.lm`); lesson 08 and its exercise know it under
these names. Requests in a batch have prompts of different lengths. A causal LM predicts the
next token from the *last* position, so the prompts are padded on the left (:func:`left_pad`):
every row then ends at the same column and one forward pass gives every row's next-token
logits. The ``attention_mask`` hides the pads and the ``position_ids`` count only real tokens,
so a padded row's answer is identical to the unpadded one. :func:`generate_batch` then feeds
one new token per row, reusing the cached keys and values, and drops rows as they finish.
"""

from course_utils.lm import context_length, left_pad, sample_next
from course_utils.lm import generate_ids as generate_batch

__all__ = ["context_length", "generate_batch", "left_pad", "sample_next"]
