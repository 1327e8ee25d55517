"""Int8 dynamic quantization of a causal LM, and a before/after table of size, speed, quality.

Dynamic quantization stores each linear layer's weights as int8 (one scale per tensor) and, at
run time, quantizes the activations on the fly, multiplies in int8 and rescales. Weights shrink
4x; on a CPU the matrix products can get faster when they are big enough for int8 kernels to
beat the cost of quantizing activations. Embeddings, layer norms and biases stay float32.

GPT-2 has a catch: its attention and MLP projections are ``transformers.pytorch_utils.Conv1D``,
not ``nn.Linear`` (a "1-D convolution" with kernel size 1, written as ``x @ W + b`` with ``W`` of
shape ``(in, out)``, a leftover of the original TensorFlow code). ``quantize_dynamic`` only
replaces the module types it is given, so on a GPT-2 it would quietly quantize nothing but the
output head. :func:`conv1d_to_linear` first swaps each ``Conv1D`` for the equivalent
``nn.Linear`` (same numbers, weight transposed to ``(out, in)``).

``torch.ao.quantization`` is deprecated in recent torch in favour of the separate ``torchao``
package (``torchao.quantization.quantize_``); the idea and the numbers are the same, and the old
API still works, so the course uses it without an extra dependency and silences its warnings.
"""

from __future__ import annotations

import copy
import statistics
import time
import warnings
from collections.abc import Sequence

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.pytorch_utils import Conv1D

from course_utils.lm import generate_ids, perplexity, size_on_disk


def conv1d_to_linear(module: nn.Module) -> nn.Module:
    """Replace every GPT-2 ``Conv1D`` inside ``module`` with an equal ``nn.Linear`` (in place)."""
    for name, child in list(module.named_children()):
        if isinstance(child, Conv1D):
            n_in, n_out = child.weight.shape
            linear = nn.Linear(n_in, n_out, bias=child.bias is not None,
                               device=child.weight.device, dtype=child.weight.dtype)
            with torch.no_grad():
                linear.weight.copy_(child.weight.T)
                if child.bias is not None:
                    linear.bias.copy_(child.bias)
            setattr(module, name, linear)
        else:
            conv1d_to_linear(child)
    return module


def quantize_int8(model: PreTrainedModel) -> PreTrainedModel:
    """An int8 dynamically quantized copy of ``model`` (every linear layer, head included)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch module, got {type(model).__name__}")
    if next(model.parameters()).dtype != torch.float32:
        raise ValueError("dynamic quantization starts from a float32 model: call .float() first")
    converted = conv1d_to_linear(copy.deepcopy(model).cpu().eval())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        return torch.ao.quantization.quantize_dynamic(converted, {nn.Linear}, dtype=torch.qint8)


def corpus_perplexity(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                      texts: Sequence[str]) -> float:
    """The table's perplexity: :func:`course_utils.lm.perplexity` over all tokens of ``texts``.

    Each text is scored from its first token (no start token prepended) and tokens are
    weighted equally, so long texts count more than short ones. Texts go one at a time:
    dynamic quantization scales the activations of a whole batch tensor at once, so padding a
    text into a batch would change an int8 model's numbers.
    """
    if isinstance(texts, str) or not texts:
        raise ValueError("texts must be a non-empty list of strings")
    return perplexity(model, tokenizer, texts, batch_size=1, add_start_token=False)["perplexity"]


def ms_per_token(model: PreTrainedModel, prompt_ids: Sequence[int], new_tokens: int = 32,
                 repeats: int = 3, batch_size: int = 1) -> float:
    """Median wall time per generated token (greedy, KV cache), in milliseconds."""
    generate_ids(model, [prompt_ids] * batch_size, [2] * batch_size)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        generate_ids(model, [prompt_ids] * batch_size, [new_tokens] * batch_size)
        times.append((time.perf_counter() - start) / new_tokens)
    return 1000 * statistics.median(times)


def quantization_table(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                       texts: Sequence[str], prompt: str = "Once upon a time",
                       new_tokens: int = 32, repeats: int = 3) -> list[dict]:
    """One row each for float32 and int8: size on disk (MB), ms per token, perplexity."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    rows = []
    for label, m in (("float32", model.eval()), ("int8 dynamic", quantize_int8(model))):
        rows.append({"model": label,
                     "size_mb": round(size_on_disk(m) / 1e6, 2),
                     "ms_per_token": round(ms_per_token(m, prompt_ids, new_tokens, repeats), 2),
                     "perplexity": round(corpus_perplexity(m, tokenizer, texts), 3)})
    return rows
