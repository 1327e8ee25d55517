"""Lesson 04's prompting toolkit: build prompts, run them in batches, measure the answers.

- :mod:`~course_utils.prompting.builders`: zero-shot, few-shot (k, which examples, their
  order), chain of thought, chat/role prompts through the tokenizer's chat template, templates
  with validated slots, conditional prompts and iterative refinement chains;
- :mod:`~course_utils.prompting.runner`: batched generation with left padding, label-word
  scoring, and loading ``course-gpt`` or (online) a hub instruct model with the same code
  (all three from the LM layer, :mod:`course_utils.lm`);
- :mod:`~course_utils.prompting.harness`: answer extraction, majority vote, Wilson intervals,
  :func:`evaluate`, which runs a strategy over a data set, and :func:`gain`, which compares two
  strategies on the same rows with a paired test.

The sentiment and word-problem formats come from :mod:`course_utils.data.prompts`, the ones
``course-gpt`` was pretrained on and ``benchmarks/capabilities.py`` measures.
"""

from course_utils.prompting.builders import (
    ORDERS,
    chat_messages,
    chat_prompt,
    choose_examples,
    conditional_prompt,
    few_shot_from_pool,
    few_shot_prompt,
    fill_template,
    iterative_refinement,
    order_examples,
    role_prompt,
    template_slots,
    word_problem_prompt,
    zero_shot_prompt,
)
from course_utils.prompting.harness import (
    Evaluation,
    by_answer,
    by_generated_label,
    by_label_scores,
    by_self_consistency,
    difference,
    evaluate,
    extract_answer,
    extract_label,
    format_table,
    gain,
    majority_vote,
    paired,
    plot_evaluations,
    same_items,
    subset,
    wilson_interval,
)
from course_utils.prompting.runner import (
    generate_batch,
    label_logprobs,
    label_scores,
    label_token_ids,
    load_model,
)

__all__ = [
    "ORDERS", "Evaluation", "by_answer", "by_generated_label", "by_label_scores",
    "by_self_consistency", "chat_messages", "chat_prompt", "choose_examples",
    "conditional_prompt", "difference", "evaluate", "extract_answer", "extract_label",
    "few_shot_from_pool", "few_shot_prompt", "fill_template", "format_table", "gain",
    "generate_batch", "iterative_refinement", "label_logprobs", "label_scores",
    "label_token_ids", "load_model", "majority_vote", "order_examples", "paired",
    "plot_evaluations", "role_prompt", "same_items", "subset", "template_slots",
    "wilson_interval", "word_problem_prompt", "zero_shot_prompt",
]
