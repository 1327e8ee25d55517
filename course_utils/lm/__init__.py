"""The one layer for a causal LM in use, below prompting, serving, metrics, fine-tuning and the
widgets: each idea here is written once, with one behaviour at the edges.

- :mod:`~course_utils.lm.loading`: :func:`load_model` (bundled ``course-gpt``, a checkpoint
  directory, ``random-tiny``, or a hub name when online), :func:`context_length`,
  :func:`pad_token_id`, :func:`size_on_disk`;
- :mod:`~course_utils.lm.batching`: :func:`encode` (a too-long prompt keeps its end, with a
  warning), :func:`left_pad` and the one :func:`position_ids` formula of a padded row;
- :mod:`~course_utils.lm.scoring`: :func:`next_token_logits`, :func:`label_token_ids`,
  :func:`label_logprobs` (choosing a label by likelihood), :func:`perplexity` (sliding window);
- :mod:`~course_utils.lm.generate`: batched generation over token ids with a KV cache
  (:func:`generate_ids`, what the server runs) and over strings through ``model.generate``
  (:func:`generate_text`, what lesson 04 runs).

Lessons import these under the names they teach: ``prompting.generate_batch`` is
:func:`generate_text`, ``serving.generation.generate_batch`` is :func:`generate_ids`,
``serving.generation.left_pad`` is :func:`left_pad`.
"""

from course_utils.lm.batching import check_texts, encode, left_pad, length_batches, position_ids
from course_utils.lm.generate import (
    cut_at_stop,
    generate_ids,
    generate_text,
    sample_next,
    sample_rows,
    sampling_probs,
    shared_prompt_cache,
)
from course_utils.lm.loading import (
    DEFAULT_MODEL,
    ModelLoadError,
    context_length,
    load_model,
    pad_token_id,
    random_tiny,
    size_on_disk,
)
from course_utils.lm.scoring import (
    label_logprobs,
    label_token_ids,
    next_token_logits,
    perplexity,
    token_logprobs,
    windows,
)

__all__ = [
    "DEFAULT_MODEL", "ModelLoadError", "check_texts", "context_length", "cut_at_stop", "encode",
    "generate_ids", "generate_text", "label_logprobs", "label_token_ids", "left_pad",
    "length_batches",
    "load_model", "next_token_logits", "pad_token_id", "perplexity", "position_ids",
    "random_tiny", "sample_next", "sample_rows", "sampling_probs", "shared_prompt_cache",
    "size_on_disk", "token_logprobs", "windows",
]
