"""Fine-tuning (lessons 05 and 06): data, collators, metrics, loss curves, the shared task, LoRA.

- :mod:`~course_utils.finetune.data`: the pad-token fix, tokenizing and labelling batches for
  classification and for causal-LM text-to-label, the right collator for each;
- :mod:`~course_utils.finetune.metrics`: accuracy and macro-F1 (``compute_metrics``), the
  causal-LM loss with its label shift, confusion matrices, scoring label words with an LM;
- :mod:`~course_utils.finetune.callbacks`: :class:`LossHistory`, the loss curve for plotting;
- :mod:`~course_utils.finetune.args`: :func:`cpu_training_arguments`, the ``TrainingArguments``
  every recipe starts from;
- :mod:`~course_utils.finetune.sentiment`: the sentiment task and budget that lessons 05 and 06
  and ``benchmarks/finetune.py`` share, and :func:`finetune`, one ``Trainer`` run with its cost;
- :mod:`~course_utils.finetune.costs`: what a run costs (parameters, memory, time, size on
  disk), measured one way for every method;
- :mod:`~course_utils.finetune.sft`: supervised fine-tuning on chats (instruction tuning):
  :func:`chat_features` (labels on the assistant's replies and their eos only) and
  :func:`pad_chat_batch`;
- :mod:`~course_utils.finetune.lora`: LoRA from scratch (lesson 06), matching ``peft``;
- :mod:`~course_utils.finetune.methods`: the methods lesson 06 compares (``peft`` configs).

``costs``, ``lora`` and ``methods`` are imported by name (``from course_utils.finetune import
costs``), not re-exported here.
"""

from course_utils.finetune.args import cpu_training_arguments
from course_utils.finetune.callbacks import LossHistory, plot_loss_curves
from course_utils.finetune.data import (
    balanced_subset,
    causal_lm_dataset,
    classification_dataset,
    collator_for,
    ensure_pad_token,
    lm_prompt,
    lm_training_text,
    tokenize_and_label,
    tokenize_for_causal_lm,
)
from course_utils.finetune.metrics import (
    causal_lm_loss,
    compute_metrics,
    confusion_matrix,
    label_token_ids,
    lm_label_accuracy,
    lm_label_predictions,
    macro_f1,
    plot_confusion,
)
from course_utils.finetune.sentiment import (
    LABEL_NAMES,
    Recipe,
    Run,
    baseline_dir,
    finetune,
    full_finetune_baseline,
    sentiment_splits,
    store_full_baseline,
    training_arguments,
)
from course_utils.finetune.sft import chat_features, pad_chat_batch

__all__ = [
    "LABEL_NAMES", "LossHistory", "Recipe", "Run", "balanced_subset",
    "baseline_dir", "causal_lm_dataset", "causal_lm_loss", "chat_features",
    "classification_dataset", "collator_for", "compute_metrics", "confusion_matrix",
    "cpu_training_arguments", "ensure_pad_token", "finetune", "full_finetune_baseline",
    "label_token_ids", "lm_label_accuracy", "lm_label_predictions", "lm_prompt",
    "lm_training_text", "macro_f1", "pad_chat_batch", "plot_confusion", "plot_loss_curves",
    "sentiment_splits", "store_full_baseline", "tokenize_and_label", "tokenize_for_causal_lm",
    "training_arguments",
]
