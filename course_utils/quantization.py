"""Weight quantization by hand: int8 per output channel, int4 group-wise, and a layer using them.

A float32 weight takes 4 bytes. Symmetric quantization stores it as a small integer ``q`` and a
float ``scale`` shared by many weights, with ``w ~ q * scale``:

- **int8, per output channel**: one scale per row of the ``(out, in)`` weight,
  ``scale = max|row| / 127``, ``q = clamp(round(w / scale), -127, 127)``. The error of one weight
  is at most ``scale / 2``. One scale per *row* (rather than per tensor) keeps a row of small
  weights from being flattened to zero by an outlier elsewhere in the matrix.
- **int4, group-wise**: 4 bits leave only 15 levels (``-7 .. 7``), so each row is cut into
  groups of ``group_size`` consecutive inputs with a scale each (``max|group| / 7``); two 4-bit
  values (stored as ``q + 8``, i.e. 1 .. 15) are packed into one byte, the even column in the
  low nibble and the odd column in the high nibble.

:class:`QuantizedLinear` stores the integers and the scales, and in ``forward`` dequantizes the
weight and multiplies in float ("weight-only" quantization). It saves memory and disk, not time:
on a CPU, at this model size the matrices fit in cache, so reading fewer bytes gains nothing
and the dequantization is extra work. Speed-ups need kernels that compute on the integers
(torch's dynamic int8 does, for int8) or memory-bound sizes (large models, small batches).

GPT-2's projections are ``transformers.pytorch_utils.Conv1D`` with the weight stored
``(in, out)``; :meth:`QuantizedLinear.from_float` transposes it to the ``(out, in)`` layout.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from transformers.pytorch_utils import Conv1D

from course_utils.lm import size_on_disk  # the one definition; lesson 09 imports it from here

INT8_MAX = 127
INT4_MAX = 7  # symmetric: -7 .. 7, stored with an offset of 8 as 1 .. 15


def _as_weight(weight, name: str = "weight") -> torch.Tensor:
    if not isinstance(weight, torch.Tensor):
        try:
            weight = torch.as_tensor(weight, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(f"{name} must be a 2-D tensor of floats, got "
                            f"{type(weight).__name__}") from exc
    if weight.dim() != 2:
        raise ValueError(f"{name} must be 2-D (out_features, in_features), got shape "
                         f"{tuple(weight.shape)}")
    if not weight.is_floating_point():
        raise TypeError(f"{name} must hold floats, got dtype {weight.dtype}")
    if not torch.isfinite(weight).all():
        raise ValueError(f"{name} holds inf or NaN: a finite scale cannot represent it")
    return weight.detach().float()


def _safe_scale(absmax: torch.Tensor, levels: int) -> torch.Tensor:
    """``absmax / levels``, with 1.0 for an all-zero row or group (any scale gives q = 0)."""
    scale = absmax / levels
    return torch.where(absmax > 0, scale, torch.ones_like(scale))


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel int8: ``(q, scale)``, q int8 ``(out, in)``, scale ``(out, 1)``.

    ``scale`` is float32, the row's absolute maximum over 127 (1.0 for an all-zero row), and
    ``q = clamp(round(weight / scale), -127, 127)``; ``q * scale`` is within ``scale / 2``.
    """
    w = _as_weight(weight)
    scale = _safe_scale(w.abs().amax(dim=1, keepdim=True), INT8_MAX)
    q = torch.clamp(torch.round(w / scale), -INT8_MAX, INT8_MAX).to(torch.int8)
    return q, scale


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The float32 weight ``q * scale`` back from :func:`quantize_int8`."""
    return q.float() * scale


def _check_groups(in_features: int, group_size: int) -> None:
    if not isinstance(group_size, int) or group_size < 2 or group_size % 2:
        raise ValueError(f"group_size must be an even integer >= 2 (e.g. 32 or 64), "
                         f"got {group_size!r}")
    if in_features % group_size:
        raise ValueError(f"in_features ({in_features}) must be a multiple of group_size "
                         f"({group_size}): pick a group size that divides it")


def quantize_int4(weight: torch.Tensor, group_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Group-wise symmetric int4, packed two per byte: ``(packed, scales)``.

    ``packed`` is uint8 ``(out, in // 2)``: byte ``j`` of a row holds column ``2j`` in its low
    4 bits and column ``2j + 1`` in its high 4 bits, each as ``q + 8``. ``scales`` is float32
    ``(out, in // group_size)``: column ``g`` is the scale of inputs ``g * group_size`` up to
    ``(g + 1) * group_size``, ``max|group| / 7`` (1.0 for an all-zero group);
    ``q = clamp(round(w / scale), -7, 7)``.
    """
    w = _as_weight(weight)
    out, n_in = w.shape
    _check_groups(n_in, group_size)
    groups = w.reshape(out, n_in // group_size, group_size)
    scales = _safe_scale(groups.abs().amax(dim=2), INT4_MAX)
    q = torch.clamp(torch.round(groups / scales[..., None]), -INT4_MAX, INT4_MAX)
    u = (q.reshape(out, n_in) + 8).to(torch.uint8)  # 1 .. 15
    packed = u[:, 0::2] | (u[:, 1::2] << 4)
    return packed, scales


def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """The signed 4-bit values (``int8``, ``-7 .. 7``) of a packed ``(out, in // 2)`` tensor."""
    low = (packed & 0x0F).to(torch.int8) - 8
    high = (packed >> 4).to(torch.int8) - 8
    return torch.stack((low, high), dim=-1).reshape(packed.shape[0], -1)


def dequantize_int4(packed: torch.Tensor, scales: torch.Tensor, group_size: int = 32
                    ) -> torch.Tensor:
    """The float32 weight back from :func:`quantize_int4`."""
    q = unpack_int4(packed).float()
    return q * scales.repeat_interleave(group_size, dim=1)


class QuantizedLinear(nn.Module):
    """A linear layer whose weight is stored as int8 (per channel) or packed int4 (per group).

    ``forward(x) = x @ dequantize(weight).T + bias``: weight-only quantization, so the model
    shrinks but each call pays for the dequantization.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None, bits: int = 8,
                 group_size: int = 32) -> None:
        super().__init__()
        if bits not in (8, 4):
            raise ValueError(f"bits must be 8 or 4, got {bits!r}")
        w = _as_weight(weight)
        self.out_features, self.in_features = w.shape
        self.bits, self.group_size = bits, group_size
        if bits == 8:
            q, scale = quantize_int8(w)
        else:
            q, scale = quantize_int4(w, group_size)
        self.register_buffer("qweight", q)
        self.register_buffer("scale", scale)
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())

    @classmethod
    def from_float(cls, module: nn.Module, bits: int = 8, group_size: int = 32
                   ) -> QuantizedLinear:
        """Quantize an ``nn.Linear`` or a GPT-2 ``Conv1D`` (weight ``(in, out)``, transposed)."""
        if isinstance(module, nn.Linear):
            weight = module.weight
        elif isinstance(module, Conv1D):
            weight = module.weight.T
        else:
            raise TypeError(f"from_float takes an nn.Linear or a transformers Conv1D, got "
                            f"{type(module).__name__}")
        return cls(weight, module.bias, bits, group_size)

    def weight_float(self) -> torch.Tensor:
        """The dequantized ``(out, in)`` weight this layer computes with."""
        if self.bits == 8:
            return dequantize_int8(self.qweight, self.scale)
        return dequantize_int4(self.qweight, self.scale, self.group_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight_float().to(x.dtype),
                        None if self.bias is None else self.bias.to(x.dtype))

    def extra_repr(self) -> str:
        group = f", group_size={self.group_size}" if self.bits == 4 else ""
        return f"in={self.in_features}, out={self.out_features}, bits={self.bits}{group}"


def quantize_model(model: nn.Module, bits: int = 8, group_size: int = 32,
                   skip: tuple[str, ...] = ("lm_head",)) -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear``/``Conv1D`` (except ``skip``) quantized.

    The output head is skipped by default: GPT-2 ties it to the token embedding, which stays
    float32, so quantizing the head would store a second copy instead of saving anything.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch module, got {type(model).__name__}")
    model = copy.deepcopy(model).cpu().eval()

    def swap(parent: nn.Module, prefix: str) -> None:
        for name, child in list(parent.named_children()):
            full = f"{prefix}{name}"
            if isinstance(child, nn.Linear | Conv1D) and not any(
                    full == s or full.endswith("." + s) for s in skip):
                setattr(parent, name, QuantizedLinear.from_float(child, bits, group_size))
            else:
                swap(child, full + ".")

    swap(model, "")
    return model


def quantizable_layers(model: nn.Module, skip: tuple[str, ...] = ("lm_head",)
                       ) -> dict[str, torch.Tensor]:
    """Name -> ``(out, in)`` float weight of every linear/Conv1D layer ``quantize_model`` takes."""
    layers = {}
    for name, m in model.named_modules():
        if any(name == s or name.endswith("." + s) for s in skip):
            continue
        if isinstance(m, nn.Linear):
            layers[name] = m.weight.detach().float()
        elif isinstance(m, Conv1D):
            layers[name] = m.weight.detach().float().T
    return layers


def weight_bytes(model: nn.Module) -> int:
    """Bytes of the weights (and their scales) of the linear layers, float or quantized."""
    total = 0
    for m in model.modules():
        if isinstance(m, QuantizedLinear):
            total += m.qweight.numel() * m.qweight.element_size()
            total += m.scale.numel() * m.scale.element_size()
        elif isinstance(m, nn.Linear | Conv1D):
            total += m.weight.numel() * m.weight.element_size()
    return total


def relative_error(weight: torch.Tensor, approx: torch.Tensor) -> float:
    """``||approx - weight|| / ||weight||`` (Frobenius norms)."""
    return ((approx - weight).norm() / weight.norm().clamp(min=1e-12)).item()


def per_tensor_int8(weight: torch.Tensor) -> torch.Tensor:
    """The dequantized weight with ONE scale for the whole tensor (the outlier demo's foil)."""
    w = _as_weight(weight)
    scale = _safe_scale(w.abs().amax(), INT8_MAX)
    return torch.clamp(torch.round(w / scale), -INT8_MAX, INT8_MAX) * scale


def layer_errors(model: nn.Module, group_size: int = 32) -> list[dict]:
    """Per layer: the relative weight error of per-tensor int8, per-channel int8 and int4."""
    rows = []
    for name, w in quantizable_layers(model).items():
        rows.append({"layer": name, "shape": tuple(w.shape),
                     "int8 per-tensor": relative_error(w, per_tensor_int8(w)),
                     "int8 per-channel": relative_error(w, dequantize_int8(*quantize_int8(w))),
                     f"int4 g{group_size}": relative_error(
                         w, dequantize_int4(*quantize_int4(w, group_size), group_size))})
    return rows


__all__ = ["QuantizedLinear", "dequantize_int4", "dequantize_int8", "layer_errors",
           "per_tensor_int8", "quantizable_layers", "quantize_int4", "quantize_int8",
           "quantize_model", "relative_error", "size_on_disk", "unpack_int4", "weight_bytes"]
