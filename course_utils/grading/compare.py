"""How the grader decides that two answers are the same, and says how they differ.

:func:`compare` walks tensors, tuples, lists, dicts, numbers and strings and returns ``None``
for a match or one sentence for the learner; :func:`same_inputs` is the exact equality used to
catch a function that changed its arguments in place.
"""

from __future__ import annotations

import math
from typing import Any

import torch

Message = str | None

def _fmt(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.numel() <= 16:
            vals = [round(v, 4) if isinstance(v, float) else v for v in x.flatten().tolist()]
            body = str(torch.tensor(vals).reshape(x.shape).tolist()) if vals else "[]"
            return f"tensor of shape {tuple(x.shape)}, dtype {x.dtype}: {body}"
        return f"tensor of shape {tuple(x.shape)}, dtype {x.dtype}"
    if isinstance(x, dict) and any(isinstance(v, torch.Tensor) for v in x.values()):
        parts = [f"{k}: {tuple(v.shape)}" if isinstance(v, torch.Tensor) else f"{k}: {v!r}"
                 for k, v in x.items()]
        return "dict of " + ", ".join(parts)
    text = repr(x)
    return text if len(text) <= 200 else text[:197] + "..."


def compare(got: Any, expected: Any, *, atol: float = 1e-5, rtol: float = 1e-4,
            check_dtype: bool = True, path: str = "the result") -> Message:
    """Return ``None`` when ``got`` matches ``expected``, else one sentence saying how not."""
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"{path} should be a torch.Tensor, but it is a {type(got).__name__}."
        if tuple(got.shape) != tuple(expected.shape):
            return (f"{path} has shape {tuple(got.shape)}, "
                    f"but the expected shape is {tuple(expected.shape)}.")
        if check_dtype and got.dtype != expected.dtype:
            return f"{path} has dtype {got.dtype}, but the expected dtype is {expected.dtype}."
        g, e = got.detach().double(), expected.detach().double()
        if torch.isnan(g).any() and not torch.isnan(e).any():
            return f"{path} contains NaN; the expected result has none."
        if torch.isinf(g).any() and not torch.isinf(e).any():
            return f"{path} contains inf; the expected result has none."
        if g.numel() and not torch.allclose(g, e, atol=atol, rtol=rtol, equal_nan=True):
            diff = (g - e).abs().nan_to_num(nan=float("inf"))
            idx = tuple(int(i) for i in torch.nonzero(diff == diff.max())[0])
            return (f"{path} differs from the expected values: at index {list(idx)} you have "
                    f"{g[idx].item():.6g}, expected {e[idx].item():.6g} "
                    f"(largest difference {diff.max().item():.3g}).")
        return None
    if isinstance(expected, tuple | list):
        if not isinstance(got, tuple | list):
            return (f"{path} should be a {type(expected).__name__} of {len(expected)} items, "
                    f"but it is a {type(got).__name__}.")
        if len(got) != len(expected):
            return f"{path} has {len(got)} items, but {len(expected)} are expected."
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            msg = compare(g, e, atol=atol, rtol=rtol, check_dtype=check_dtype,
                          path=f"{path}[{i}]")
            if msg:
                return msg
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"{path} should be a dict, but it is a {type(got).__name__}."
        if set(got) != set(expected):
            return f"{path} has keys {sorted(got)}, but the expected keys are {sorted(expected)}."
        for k in expected:
            msg = compare(got[k], expected[k], atol=atol, rtol=rtol, check_dtype=check_dtype,
                          path=f"{path}[{k!r}]")
            if msg:
                return msg
        return None
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        if got != expected or type(got) is not type(expected):
            return f"{path} is {_fmt(got)}, but {_fmt(expected)} is expected."
        return None
    if isinstance(expected, int | float):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if not isinstance(got, int | float) or isinstance(got, bool):
            return f"{path} should be a number, but it is a {type(got).__name__}."
        if math.isnan(got) and not math.isnan(expected):
            return f"{path} is NaN, but {expected!r} is expected."
        if not math.isclose(got, expected, rel_tol=rtol, abs_tol=atol):
            return f"{path} is {got!r}, but {expected!r} is expected."
        return None
    if got != expected:
        return f"{path} is {_fmt(got)}, but {_fmt(expected)} is expected."
    return None


def same_inputs(before: Any, after: Any) -> bool:
    if isinstance(before, torch.Tensor):
        return (isinstance(after, torch.Tensor) and before.shape == after.shape
                and before.dtype == after.dtype
                and torch.equal(before.nan_to_num(0.123), after.nan_to_num(0.123)))
    if isinstance(before, tuple | list):
        return len(before) == len(after) and all(map(same_inputs, before, after))
    if isinstance(before, dict):
        return before.keys() == after.keys() and all(same_inputs(before[k], after[k])
                                                       for k in before)
    try:
        return bool(before == after)
    except Exception:  # objects without a meaningful ==
        return True
