"""course_utils.quantization against float references: torch's own per-channel quantizer, the
error bounds that follow from the math, bit-level packing, and layers close to the float ones."""

from __future__ import annotations

import pytest
import torch
from _tiny_lm import tiny_gpt2
from torch import nn
from transformers.pytorch_utils import Conv1D

from course_utils.quantization import (
    QuantizedLinear,
    dequantize_int4,
    dequantize_int8,
    layer_errors,
    per_tensor_int8,
    quantize_int4,
    quantize_int8,
    quantize_model,
    size_on_disk,
    unpack_int4,
    weight_bytes,
)


def weights(seed: int = 0, shape=(48, 96)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g) * torch.logspace(-3, 1, shape[0])[:, None]
    w[3] = 0.0  # an all-zero row
    w[-1, 7] = 40.0  # an outlier
    return w


def test_int8_matches_torch_per_channel_quantizer():
    w = weights()
    q, scale = quantize_int8(w)
    assert q.dtype == torch.int8 and q.shape == w.shape
    assert scale.dtype == torch.float32 and scale.shape == (w.shape[0], 1)
    ref = torch.quantize_per_channel(w, scale.flatten().double(), torch.zeros(w.shape[0],
                                     dtype=torch.long), axis=0, dtype=torch.qint8)
    torch.testing.assert_close(q, ref.int_repr(), rtol=0, atol=0)
    torch.testing.assert_close(dequantize_int8(q, scale), ref.dequantize(), rtol=1e-6,
                               atol=1e-7)


def test_int8_error_is_at_most_half_a_step_and_the_row_maximum_is_exact():
    w = weights(1)
    q, scale = quantize_int8(w)
    back = dequantize_int8(q, scale)
    assert ((back - w).abs() <= scale / 2 * (1 + 1e-5) + 1e-12).all()
    assert q.abs().amax(dim=1)[w.abs().amax(dim=1) > 0].eq(127).all()
    assert q[3].eq(0).all() and torch.isfinite(scale).all() and back[3].eq(0).all()
    assert int(q.min()) >= -127  # symmetric: -128 is never used


def test_per_channel_beats_per_tensor_on_an_outlier():
    w = weights(2)
    channel = dequantize_int8(*quantize_int8(w))
    tensor = per_tensor_int8(w)
    small = slice(0, 20)  # the rows with tiny weights
    assert tensor[small].eq(0).all()  # one scale for the whole tensor rounds them all to 0
    assert ((channel[small] - w[small]).abs().max() < w[small].abs().max() / 100)


@pytest.mark.parametrize("group_size", [32, 64])
def test_int4_error_bound_per_group_and_size(group_size):
    w = weights(3, (40, 128))
    packed, scales = quantize_int4(w, group_size)
    assert packed.dtype == torch.uint8 and packed.shape == (40, 64)
    assert scales.shape == (40, 128 // group_size) and scales.dtype == torch.float32
    back = dequantize_int4(packed, scales, group_size)
    step = scales.repeat_interleave(group_size, dim=1)
    assert ((back - w).abs() <= step / 2 * (1 + 1e-5) + 1e-12).all()
    groups = w.reshape(40, -1, group_size).abs().amax(-1)
    torch.testing.assert_close(scales[groups > 0], groups[groups > 0] / 7)


def test_int4_packing_layout_bit_by_bit():
    w = torch.tensor([[7.0, -7.0, 1.0, 0.0, -3.0, 2.0, 5.0, -1.0]])
    packed, scales = quantize_int4(w, group_size=8)
    assert scales.item() == 1.0
    expected = []
    for lo, hi in [(7, -7), (1, 0), (-3, 2), (5, -1)]:
        expected.append((lo + 8) + ((hi + 8) << 4))  # even column low, odd column high nibble
    assert packed[0].tolist() == expected
    assert unpack_int4(packed)[0].tolist() == [7, -7, 1, 0, -3, 2, 5, -1]


def test_int4_is_coarser_than_int8_but_keeps_direction():
    w = weights(4, (64, 128))
    e8 = (dequantize_int8(*quantize_int8(w)) - w).norm() / w.norm()
    e4 = (dequantize_int4(*quantize_int4(w, 32), 32) - w).norm() / w.norm()
    assert e8 < e4 < 0.2


@pytest.mark.parametrize("bits", [8, 4])
def test_quantized_linear_is_close_to_the_float_layer_and_handles_conv1d(bits):
    torch.manual_seed(0)
    linear = nn.Linear(64, 96)
    conv = Conv1D(96, 64)  # GPT-2's layout: weight (in, out)
    with torch.no_grad():
        conv.weight.copy_(linear.weight.T)
        conv.bias.copy_(linear.bias)
    x = torch.randn(3, 5, 64)
    with torch.no_grad():
        ref = linear(x)
        torch.testing.assert_close(conv(x), ref, atol=1e-5, rtol=1e-5)
        a, b = QuantizedLinear.from_float(linear, bits), QuantizedLinear.from_float(conv, bits)
        torch.testing.assert_close(a(x), b(x))
        # |x @ (W_q - W).T| <= sum_j |x_j| * max error of row i  (Hölder)
        err = (a.weight_float() - linear.weight).abs().amax(dim=1)
        bound = x.abs().sum(-1, keepdim=True) * err
        assert ((a(x) - ref).abs() <= bound + 1e-5).all()
        assert (a(x) - ref).norm() / ref.norm() < (0.02 if bits == 8 else 0.2)
    assert a.qweight.dtype == (torch.int8 if bits == 8 else torch.uint8)


@pytest.fixture(scope="module")
def gpt():
    return tiny_gpt2(200, n_positions=32, n_embd=64, n_layer=2).eval()


def test_quantize_model_replaces_every_projection_but_keeps_the_tied_head(gpt):
    q8 = quantize_model(gpt, bits=8)
    assert not any(isinstance(m, Conv1D) for m in q8.modules())
    assert sum(isinstance(m, QuantizedLinear) for m in q8.modules()) == 8
    assert isinstance(q8.lm_head, nn.Linear)
    assert q8.lm_head.weight.data_ptr() == q8.transformer.wte.weight.data_ptr()
    assert any(isinstance(m, Conv1D) for m in gpt.modules())  # the original is untouched
    ids = torch.randint(0, 200, (2, 20))
    with torch.no_grad():
        ref = gpt(ids).logits
        for bits, tol in ((8, 0.02), (4, 0.2)):
            got = quantize_model(gpt, bits=bits)(ids).logits
            assert (got - ref).norm() / ref.norm() < tol


def test_weight_bytes_and_size_on_disk_shrink(gpt):
    fp = weight_bytes(gpt) - gpt.lm_head.weight.numel() * 4
    q8, q4 = quantize_model(gpt, bits=8), quantize_model(gpt, bits=4)
    w8 = weight_bytes(q8) - q8.lm_head.weight.numel() * 4
    w4 = weight_bytes(q4) - q4.lm_head.weight.numel() * 4
    assert w8 <= 0.3 * fp and w4 <= 0.2 * fp
    assert size_on_disk(q4) < size_on_disk(q8) < size_on_disk(gpt)


def test_layer_errors_lists_every_layer(gpt):
    rows = layer_errors(gpt)
    assert len(rows) == 8 and all(r["int8 per-channel"] <= r["int8 per-tensor"] + 1e-9
                                  for r in rows)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="2-D"):
        quantize_int8(torch.randn(3, 4, 5))
    with pytest.raises(ValueError, match="multiple of group_size"):
        quantize_int4(torch.randn(4, 40), group_size=32)
    with pytest.raises(ValueError, match="inf or NaN"):
        quantize_int8(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(TypeError, match="floats"):
        quantize_int8(torch.ones(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="bits"):
        QuantizedLinear(torch.randn(4, 4), bits=3)
    with pytest.raises(TypeError, match="nn.Linear or a transformers Conv1D"):
        QuantizedLinear.from_float(nn.Embedding(3, 4))
