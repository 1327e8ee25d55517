"""Int8 dynamic quantization: Conv1D -> Linear is exact, the int8 model is close, smaller and
really quantized, and perplexity agrees with transformers' own loss."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from serving_helpers import CORPUS, tiny_model, tiny_tokenizer
from torch import nn
from transformers.pytorch_utils import Conv1D

from course_utils.serving.quantize import (
    conv1d_to_linear,
    ms_per_token,
    quantization_table,
    quantize_int8,
    size_on_disk,
)
from course_utils.serving.quantize import (
    corpus_perplexity as perplexity,
)


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    torch.set_num_threads(1)
    return tiny_model(tok)


def count(module: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in module.modules())


def test_conv1d_to_linear_is_exact(model):
    assert count(model, Conv1D) == 8  # 4 per block: c_attn, c_proj, mlp.c_fc, mlp.c_proj
    converted = conv1d_to_linear(copy.deepcopy(model))
    assert count(converted, Conv1D) == 0
    assert count(converted, nn.Linear) == 8 + 1  # plus the output head
    ids = torch.randint(0, model.config.vocab_size, (2, 17))
    with torch.no_grad():
        torch.testing.assert_close(converted(ids).logits, model(ids).logits, atol=1e-5,
                                   rtol=1e-5)


def test_quantize_dynamic_alone_would_miss_gpt2s_projections(model):
    """Why the conversion is needed: quantize_dynamic only knows nn.Linear."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        naive = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {nn.Linear})
    assert count(naive, Conv1D) == 8


def test_int8_model_is_quantized_close_and_smaller(model):
    quantized = quantize_int8(model)
    qlinear = torch.ao.nn.quantized.dynamic.Linear
    assert count(quantized, qlinear) == 9 and count(quantized, Conv1D) == 0
    assert quantized.transformer.h[0].attn.c_attn.weight().dtype == torch.qint8
    assert count(model, Conv1D) == 8, "the original model must be left alone"
    ids = torch.randint(0, model.config.vocab_size, (2, 17))
    with torch.no_grad():
        ref, got = model(ids).logits, quantized(ids).logits
    rel = (got - ref).norm() / ref.norm()
    assert rel < 0.15, f"int8 logits are {rel:.3f} away (relative) from float32"
    assert (got.argmax(-1) == ref.argmax(-1)).float().mean() > 0.8
    assert size_on_disk(quantized) < 0.6 * size_on_disk(model)


def test_quantize_rejects_what_it_cannot_take(model):
    with pytest.raises(TypeError):
        quantize_int8("gpt2")
    with pytest.raises(ValueError, match="float32"):
        quantize_int8(copy.deepcopy(model).double())


def test_size_on_disk_counts_parameters(model):
    params = sum(p.numel() for p in model.parameters())  # tied head counted once
    assert 4 * params <= size_on_disk(model) < 4 * params * 1.2


def test_perplexity_matches_transformers_loss(model, tok):
    texts = CORPUS[:3]
    total, count_ = 0.0, 0
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([tok(text)["input_ids"]])
            loss = model(input_ids=ids, labels=ids).loss.item()  # mean over len - 1 targets
            total += loss * (ids.shape[1] - 1)
            count_ += ids.shape[1] - 1
    assert perplexity(model, tok, texts) == pytest.approx(math.exp(total / count_), rel=1e-5)
    with pytest.raises(ValueError):
        perplexity(model, tok, "a single string")
    with pytest.raises(ValueError, match="2 tokens"):
        perplexity(model, tok, ["a"])


def test_quantization_table_has_one_row_each(model, tok):
    rows = quantization_table(model, tok, CORPUS[:2], new_tokens=4, repeats=1)
    assert [r["model"] for r in rows] == ["float32", "int8 dynamic"]
    assert set(rows[0]) == {"model", "size_mb", "ms_per_token", "perplexity"}
    assert rows[1]["size_mb"] < rows[0]["size_mb"]
    assert rows[0]["perplexity"] == pytest.approx(perplexity(model, tok, CORPUS[:2]), rel=1e-3)
    assert all(r["ms_per_token"] > 0 for r in rows)
    assert ms_per_token(model, [1, 2, 3], new_tokens=2, repeats=1) > 0
