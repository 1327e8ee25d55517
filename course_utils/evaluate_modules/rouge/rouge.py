"""ROUGE as a local ``evaluate`` module: ``evaluate.load(<this folder>)`` works offline.

The numbers come from :func:`course_utils.metrics.rouge`, which follows ``rouge-score``.
"""

import datasets
import evaluate

from course_utils.metrics.rouge_metric import ROUGE_TYPES, rouge

_DESCRIPTION = ("ROUGE: n-gram (rouge1, rouge2) and longest-common-subsequence (rougeL, "
                "rougeLsum) overlap F-measures between predictions and references.")
_CITATION = ("Lin (2004). ROUGE: A Package for Automatic Evaluation of Summaries. Text "
             "Summarization Branches Out, ACL.")
_KWARGS = """
Args:
    predictions: list of str.
    references: list of str, or list of lists of str (the best reference counts).
    rouge_types: subset of rouge1..rouge9, rougeL, rougeLsum (default all four standard ones).
    use_aggregator: mean over predictions (default True) or one score per prediction.
    use_stemmer: Porter-stem tokens longer than 3 characters (default False).
    tokenizer: function from str to tokens, or an object with a tokenize method.
Returns:
    {rouge_type: F-measure}.
"""


class Rouge(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS,
            features=[
                datasets.Features({
                    "predictions": datasets.Value("string", id="sequence"),
                    "references": datasets.Sequence(datasets.Value("string", id="sequence")),
                }),
                datasets.Features({
                    "predictions": datasets.Value("string", id="sequence"),
                    "references": datasets.Value("string", id="sequence"),
                }),
            ],
            reference_urls=["https://aclanthology.org/W04-1013/"],
        )

    def _compute(self, predictions, references, rouge_types=None, use_aggregator=True,
                 use_stemmer=False, tokenizer=None):
        return rouge(predictions, references, rouge_types=rouge_types or ROUGE_TYPES,
                     use_stemmer=use_stemmer, use_aggregator=use_aggregator,
                     tokenizer=tokenizer)
