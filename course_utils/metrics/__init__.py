"""Evaluation metrics, written out and proven against the reference packages (lesson 07).

``bleu`` and ``rouge`` give the numbers of ``evaluate``'s "bleu" and "rouge" (checked against
``sacrebleu`` and ``rouge-score`` in the tests); ``perplexity`` scores a causal LM with a
sliding window. The same metrics exist as local ``evaluate`` modules, so the usual
``evaluate.load(...)`` code runs offline::

    import evaluate
    from course_utils.metrics import evaluate_path
    bleu = evaluate.load(evaluate_path("bleu"))
"""

from __future__ import annotations

from pathlib import Path

from course_utils.metrics.agreement import cohen_kappa
from course_utils.metrics.bleu_metric import (
    bleu,
    brevity_penalty,
    clipped_precision,
    corpus_bleu,
    corpus_bleu_stats,
    ngrams,
    tokenize_13a,
)
from course_utils.metrics.perplexity_metric import (
    perplexity,
    perplexity_from_logprobs,
    token_logprobs,
    windows,
)
from course_utils.metrics.rouge_metric import lcs_length, rouge, rouge_l_scores, rouge_tokenize
from course_utils.metrics.stats import MeanCI, mean_ci, precision_recall_at, t_quantile

EVALUATE_MODULES = Path(__file__).resolve().parent.parent / "evaluate_modules"


def evaluate_path(name: str) -> str:
    """The folder of the local ``evaluate`` module ``name``, for ``evaluate.load(path)``."""
    available = sorted(p.name for p in EVALUATE_MODULES.iterdir()
                       if (p / f"{p.name}.py").is_file())
    if name not in available:
        raise ValueError(f"there is no local evaluate module {name!r}; the course ships "
                         f"{', '.join(available)}")
    return str(EVALUATE_MODULES / name)


__all__ = ["MeanCI", "bleu", "brevity_penalty", "clipped_precision", "cohen_kappa",
           "corpus_bleu", "corpus_bleu_stats",
           "evaluate_path", "lcs_length", "mean_ci", "ngrams", "perplexity",
           "perplexity_from_logprobs", "precision_recall_at", "rouge", "rouge_l_scores",
           "rouge_tokenize",
           "t_quantile", "token_logprobs", "tokenize_13a", "windows"]
