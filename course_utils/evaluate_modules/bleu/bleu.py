"""BLEU as a local ``evaluate`` module: ``evaluate.load(<this folder>)`` works offline.

The numbers come from :func:`course_utils.metrics.bleu`, which follows the Hub's "bleu" module.
"""

import datasets
import evaluate

from course_utils.metrics.bleu_metric import bleu, tokenize_13a

_DESCRIPTION = ("BLEU: the geometric mean of clipped n-gram precisions (n = 1..max_order) "
                "times a brevity penalty, computed over the whole corpus.")
_CITATION = ("Papineni, Roukos, Ward and Zhu (2002). BLEU: a Method for Automatic Evaluation "
             "of Machine Translation. ACL.")
_KWARGS = """
Args:
    predictions: list of str, the texts to score.
    references: list of str, or list of lists of str (several references per prediction).
    tokenizer: function from str to a list of tokens (default: mteval-v13a).
    max_order: longest n-gram (default 4).
    smooth: add-one smoothing of every precision (default False).
    ref_length: "shortest" (default, as the Hub module) or "closest" (as sacrebleu).
Returns:
    bleu, precisions, brevity_penalty, length_ratio, translation_length, reference_length.
"""


class Bleu(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS,
            features=[
                datasets.Features({
                    "predictions": datasets.Value("string", id="sequence"),
                    "references": datasets.Sequence(datasets.Value("string", id="sequence"),
                                                    id="references"),
                }),
                datasets.Features({
                    "predictions": datasets.Value("string", id="sequence"),
                    "references": datasets.Value("string", id="sequence"),
                }),
            ],
            reference_urls=["https://aclanthology.org/P02-1040/"],
        )

    def _compute(self, predictions, references, tokenizer=tokenize_13a, max_order=4,
                 smooth=False, ref_length="shortest"):
        return bleu(predictions, references, max_order=max_order, smooth=smooth,
                    tokenize=tokenizer, ref_length=ref_length)
