"""How the grader decides that two answers are the same, and says how they differ.

:func:`compare` walks tensors, numpy arrays, tuples, lists, dicts, numbers and strings and
returns ``None`` for a match or one sentence for the learner. It never raises for a strange
result (another device, the meta device, another dtype, NaN): each gets its own sentence.
Integer and boolean tensors (ids, masks, counts) must match exactly; floats within
``atol``/``rtol``. :func:`nonfinite_problem` is the rule every exercise applies before its own
comparison: NaN (or inf) in the result where the expected result has none always fails.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

Message = str | None


def type_name(x: Any) -> str:
    """A public name for the type of ``x``: never a grader-internal class."""
    if isinstance(x, torch.Tensor):
        return "torch.Tensor"
    if isinstance(x, np.ndarray):
        return "numpy array"
    if isinstance(x, np.generic):
        return f"numpy {type(x).__name__}"
    for cls in type(x).__mro__:
        if not cls.__name__.startswith("_"):
            return cls.__name__
    return "object"


def _num(v: Any, digits: int = 4) -> str:
    """A number for a report: floats rounded to ``digits`` significant digits, no float noise."""
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, complex):
        return f"{v.real:.{digits}g}{v.imag:+.{digits}g}j"
    return f"{float(v):.{digits}g}"


def _nested(values: Any) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_nested(v) for v in values) + "]"
    return _num(values)


def _is_tokenizer(x: Any) -> bool:
    return callable(getattr(x, "get_vocab", None)) and hasattr(x, "padding_side")


def _fmt(x: Any, budget: int = 200) -> str:
    """A short, rounded description of a value for the learner's report (never raises)."""
    try:
        return _describe(x, budget)
    except Exception:
        return f"a {type_name(x)}"


def _describe(x: Any, budget: int) -> str:
    if isinstance(x, torch.Tensor):
        where = "" if x.device.type == "cpu" else f" on the {x.device} device"
        head = f"tensor of shape {tuple(x.shape)}, dtype {x.dtype}{where}"
        if x.device.type == "meta" or x.layout != torch.strided or not 0 < x.numel() <= 16:
            return head
        try:
            return f"{head}: {_nested(x.detach().cpu().tolist())}"
        except Exception:
            return head
    if isinstance(x, np.ndarray):
        head = f"numpy array of shape {x.shape}, dtype {x.dtype}"
        if 0 < x.size <= 16 and x.dtype.kind in "biufc":
            return f"{head}: {_nested(x.tolist())}"
        return head
    if isinstance(x, bool | int | float | np.generic) and not isinstance(x, np.str_):
        return _num(x)
    if isinstance(x, torch.nn.Module):
        n = sum(p.numel() for p in x.parameters())
        return f"a {type_name(x)} model with {n:,} parameters"
    if _is_tokenizer(x):
        try:
            return f"a tokenizer with a vocabulary of {len(x):,} tokens"
        except Exception:
            return "a tokenizer"
    if isinstance(x, Mapping):
        parts = [f"{k!r}: {_fmt(v, 80)}" for k, v in list(x.items())[:12]]
        text = "{" + ", ".join(parts) + (", ..." if len(x) > 12 else "") + "}"
    elif isinstance(x, list | tuple) and not hasattr(x, "_fields"):
        parts = [_fmt(v, 80) for v in x[:16]]
        close = "]" if isinstance(x, list) else (",)" if len(x) == 1 else ")")
        text = ("[" if isinstance(x, list) else "(") + ", ".join(parts)
        text += (", ..." if len(x) > 16 else "") + close
    elif isinstance(x, str | bytes) or x is None:
        text = repr(x)
    else:
        try:
            text = repr(x)
        except Exception:
            text = ""
        if not text or type(x).__name__.startswith("_") or " object at 0x" in text:
            text = f"a {type_name(x)}"
    return text if len(text) <= budget else text[: budget - 3] + "..."


def _nonfinite(x: Any, depth: int = 0) -> tuple[bool, bool]:
    """(has NaN, has inf) anywhere in ``x``: tensors, arrays, numbers, nested containers."""
    if depth > 20:
        return False, False
    if isinstance(x, torch.Tensor):
        if x.device.type == "meta" or not (x.is_floating_point() or x.is_complex()):
            return False, False
        try:
            x = x.detach()
            return bool(torch.isnan(x).any()), bool(torch.isinf(x).any())
        except Exception:
            return False, False
    if isinstance(x, np.ndarray | np.floating | np.complexfloating):
        if np.asarray(x).dtype.kind not in "fc":
            return False, False
        return bool(np.isnan(x).any()), bool(np.isinf(x).any())
    if isinstance(x, float | complex):
        return x != x, x == x and abs(x) == math.inf
    if isinstance(x, Mapping):
        items = list(x.values())
    elif isinstance(x, list | tuple):
        items = list(x)
    else:
        return False, False
    nan = inf = False
    for v in items[:100_000]:
        n, i = _nonfinite(v, depth + 1)
        nan, inf = nan or n, inf or i
        if nan and inf:
            break
    return nan, inf


def nonfinite_problem(got: Any, expected: Any, *, allow_inf: bool = False,
                      path: str = "the result") -> Message:
    """NaN (or inf, unless ``allow_inf``) in ``got`` where ``expected`` has none: a sentence."""
    got_nan, got_inf = _nonfinite(got)
    if not (got_nan or got_inf):
        return None
    want_nan, want_inf = _nonfinite(expected)
    if got_nan and not want_nan:
        return (f"{path} contains NaN, but the expected result has none. NaN comes from 0/0, "
                f"inf - inf or a softmax over a row that is all -inf.")
    if got_inf and not want_inf and not allow_inf:
        return f"{path} contains inf, but the expected result has none (an overflow?)."
    return None


def _as_number(x: Any) -> Any:
    """A Python number from a number-like value (0-d tensor, numpy scalar), else ``x``."""
    if isinstance(x, torch.Tensor) and x.numel() == 1 and x.device.type != "meta":
        return x.detach().cpu().item()
    if isinstance(x, np.ndarray) and x.size == 1:
        return x.item()
    if isinstance(x, np.generic):
        return x.item()
    return x


def _compare_tensor(got: Any, expected: torch.Tensor, atol: float, rtol: float,
                    check_dtype: bool, path: str) -> Message:
    if isinstance(got, np.ndarray):
        return (f"{path} should be a torch.Tensor, but it is a numpy array: "
                f"use torch.as_tensor(...) or stay in torch.")
    if not isinstance(got, torch.Tensor):
        return f"{path} should be a torch.Tensor, but it is a {type_name(got)}."
    if got.device.type == "meta":
        return (f"{path} is on the meta device: it has a shape but no values. Compute it from "
                f"the inputs (on their device) instead of creating it with device='meta'.")
    if got.device.type != expected.device.type:
        return (f"{path} is on the {got.device} device, but the expected result is on "
                f"{expected.device}: create it on the inputs' device (e.g. device=x.device) "
                f"or move it with .to({str(expected.device)!r}).")
    if got.layout != torch.strided:
        return f"{path} is a {got.layout} tensor: return an ordinary (dense) tensor."
    if tuple(got.shape) != tuple(expected.shape):
        return (f"{path} has shape {tuple(got.shape)}, "
                f"but the expected shape is {tuple(expected.shape)}.")
    if check_dtype and got.dtype != expected.dtype:
        return f"{path} has dtype {got.dtype}, but the expected dtype is {expected.dtype}."
    if got.is_complex() and not expected.is_complex():
        return f"{path} is complex ({got.dtype}); real numbers are expected."
    g, e = got.detach().cpu(), expected.detach().cpu()
    if not g.numel():
        return None
    exact = not (e.is_floating_point() or e.is_complex())
    if exact:  # ids, counts and masks: no tolerance
        if g.is_floating_point() or g.is_complex():
            wrong = g.to(torch.complex128) != e.to(torch.complex128)
        elif e.dtype == torch.bool:
            wrong = g != e if g.dtype == torch.bool else g.long() != e.long()
        else:
            wrong = g.long() != e.long()
        if not bool(wrong.any()):
            return None
        idx = tuple(int(i) for i in torch.nonzero(wrong)[0])
        return (f"{path} differs from the expected values at index {list(idx)}: you have "
                f"{_num(g[idx].item())}, expected {_num(e[idx].item())} "
                f"({'masks' if e.dtype == torch.bool else 'integers'} must match exactly; "
                f"{int(wrong.sum())} of {wrong.numel()} entries differ).")
    g, e = g.to(torch.complex128 if e.is_complex() else torch.float64), e.to(
        torch.complex128 if e.is_complex() else torch.float64)
    bad_nan = torch.isnan(g) & ~torch.isnan(e)
    if bool(bad_nan.any()):
        idx = tuple(int(i) for i in torch.nonzero(bad_nan)[0])
        return (f"{path} is NaN at index {list(idx)} ({int(bad_nan.sum())} entries in all), "
                f"expected {_num(e[idx].item())}.")
    close = torch.isclose(g, e, atol=atol, rtol=rtol, equal_nan=True)
    if bool(close.all()):
        return None
    diff = (g - e).abs().nan_to_num(nan=math.inf, posinf=math.inf)
    diff = torch.where(close, torch.zeros_like(diff), diff)
    idx = tuple(int(i) for i in torch.nonzero(diff == diff.max())[0])
    return (f"{path} differs from the expected values: at index {list(idx)} you have "
            f"{_num(g[idx].item(), 6)}, expected {_num(e[idx].item(), 6)} "
            f"({int((~close).sum())} of {close.numel()} entries differ; largest difference "
            f"{_num(diff.max().item(), 3)}).")


def compare(got: Any, expected: Any, *, atol: float = 1e-5, rtol: float = 1e-4,
            check_dtype: bool = True, path: str = "the result") -> Message:
    """Return ``None`` when ``got`` matches ``expected``, else one sentence saying how not."""
    kw = {"atol": atol, "rtol": rtol, "check_dtype": check_dtype}
    if isinstance(expected, torch.Tensor):
        return _compare_tensor(got, expected, atol, rtol, check_dtype, path)
    if isinstance(expected, np.ndarray):
        if not isinstance(got, np.ndarray | torch.Tensor):
            return f"{path} should be a numpy array, but it is a {type_name(got)}."
        got_t = torch.as_tensor(got) if isinstance(got, np.ndarray) else got
        return _compare_tensor(got_t, torch.as_tensor(expected), atol, rtol, False, path)
    if isinstance(expected, np.generic):
        expected = expected.item()
    if isinstance(expected, tuple | list):
        if not isinstance(got, tuple | list):
            return (f"{path} should be a {type(expected).__name__} of {len(expected)} items, "
                    f"but it is a {type_name(got)}.")
        if len(got) != len(expected):
            return f"{path} has {len(got)} items, but {len(expected)} are expected."
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            msg = compare(g, e, path=f"{path}[{i}]", **kw)
            if msg:
                return msg
        return None
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping):
            return f"{path} should be a dict, but it is a {type_name(got)}."
        if set(got) != set(expected):
            return (f"{path} has keys {sorted(map(str, got))}, but the expected keys are "
                    f"{sorted(map(str, expected))}.")
        for k in expected:
            msg = compare(got[k], expected[k], path=f"{path}[{k!r}]", **kw)
            if msg:
                return msg
        return None
    if isinstance(expected, bool):
        value = _as_number(got)
        if not isinstance(value, bool):
            return f"{path} should be True or False, but it is {_fmt(got)}."
        return None if value == expected else f"{path} is {value}, but {expected} is expected."
    if expected is None or isinstance(expected, str):
        if type(got) is not type(expected) or got != expected:
            return f"{path} is {_fmt(got)}, but {_fmt(expected)} is expected."
        return None
    if isinstance(expected, int | float):
        value = _as_number(got)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{path} should be a number, but it is a {type_name(got)}."
        if math.isnan(value) or math.isnan(expected):
            if math.isnan(value) and math.isnan(expected):
                return None
            return f"{path} is {_num(value, 6)}, but {_num(expected, 6)} is expected."
        if isinstance(expected, int):  # a count or an id: exactly
            ok = value == expected
        else:
            ok = math.isclose(value, expected, rel_tol=rtol, abs_tol=atol)
        return None if ok else f"{path} is {_num(value, 6)}, but {_num(expected, 6)} is expected."
    try:
        same = bool(got == expected)
    except Exception:
        same = False
    return None if same else f"{path} is {_fmt(got)}, but {_fmt(expected)} is expected."

