"""Perplexity as a local ``evaluate`` module: ``evaluate.load(<this folder>)`` works offline.

The numbers come from :func:`course_utils.metrics.perplexity`. ``model_id`` may be a local
checkpoint folder, a bundled course model name, or a hub name when online; a loaded model and
its tokenizer can be passed as ``model=`` and ``tokenizer=`` instead.
"""

import datasets
import evaluate

from course_utils.metrics.perplexity_metric import perplexity

_DESCRIPTION = ("Perplexity: exp of the mean negative log-likelihood per token under a causal "
                "language model; texts longer than the context are scored with a sliding "
                "window.")
_CITATION = "https://huggingface.co/docs/transformers/perplexity"
_KWARGS = """
Args:
    predictions: list of str, the texts to score.
    model_id: folder, bundled name or hub name of a causal LM (or pass model= and tokenizer=).
    batch_size: windows per forward pass (default 16).
    add_start_token: prepend the BOS token so the first token is scored (default True).
    device: "cpu" or "cuda" (default: where the model already is, else cpu).
    max_length: window length (default: the model's context).
    stride: how far the window moves (default: half the window).
Returns:
    perplexities (one per text), mean_perplexity, perplexity (over all tokens).
"""


def _load(model_id):
    """A bundled name, a local folder, or a hub name when online: (causal LM, tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        from course_utils.pretrained import load_pretrained
    except ImportError:  # an older course_utils without the bundled-model loader
        return (AutoModelForCausalLM.from_pretrained(model_id),
                AutoTokenizer.from_pretrained(model_id))
    return load_pretrained(model_id, model_class=AutoModelForCausalLM)


class Perplexity(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            module_type="metric",
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string")}),
            reference_urls=["https://huggingface.co/docs/transformers/perplexity"],
        )

    def _compute(self, predictions, model_id=None, batch_size=16, add_start_token=True,
                 device=None, max_length=None, stride=None, model=None, tokenizer=None):
        if model is None:
            if model_id is None:
                raise ValueError("pass model_id=<folder or name>, or model= and tokenizer=")
            model, tokenizer = _load(model_id)
        elif tokenizer is None:
            raise ValueError("with model= pass its tokenizer= too")
        if device is not None:
            model = model.to(device)
        return perplexity(model, tokenizer, predictions, stride=stride, batch_size=batch_size,
                          max_length=max_length, add_start_token=add_start_token)
