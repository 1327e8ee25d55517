"""Keep the learner's code away from the grader's data: private copies and change detection.

Every call (the reference's, the learner's, each known mistake's) gets its own
:func:`private_copy` of the case, so nothing one of them does to its arguments reaches the
others. :func:`snapshot` reduces a value to a comparable fingerprint (tensor bytes, a model's
``state_dict`` and ``requires_grad`` flags, a tokenizer's vocabulary and settings, public
attributes of other objects), taken before and after the learner's call to tell it that it
changed an argument in place.

An argument that ``copy.deepcopy`` cannot copy (or that copies to itself) is *shared*: the
calls see the same object. The change check still works on it (the fingerprints are taken
around the learner's call), but the change cannot be undone; make case arguments copyable.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

_IMMUTABLE = (type(None), bool, int, float, complex, str, bytes, range, frozenset, type)


def _copy_value(value: Any) -> Any:
    try:
        return copy.deepcopy(value)
    except Exception:  # an uncopyable object is shared (see the module docstring)
        return value


def private_copy(case: Any) -> Any:
    """A deep copy of ``case``; when one argument can't be copied, the rest still are."""
    try:
        return copy.deepcopy(case)
    except Exception:
        pass
    changes = {}
    for f in dataclasses.fields(case):
        value = getattr(case, f.name)
        if isinstance(value, tuple):
            changes[f.name] = tuple(_copy_value(v) for v in value)
        elif isinstance(value, dict):
            changes[f.name] = {k: _copy_value(v) for k, v in value.items()}
        else:
            changes[f.name] = _copy_value(value)
    return dataclasses.replace(case, **changes)


def is_shared(original: Any, mine: Any) -> bool:
    """True when a "copy" is the original mutable object itself."""
    return mine is original and not isinstance(original, _IMMUTABLE)


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _tensor_snapshot(t: torch.Tensor) -> tuple:
    head = ("tensor", tuple(t.shape), str(t.dtype), t.device.type, bool(t.requires_grad))
    if t.device.type == "meta":
        return head
    try:
        data = t.detach()
        if data.layout != torch.strided:
            data = data.to_dense()
        raw = data.cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        return (*head, _digest(raw))
    except Exception:
        return (*head, repr(t))


def _tokenizer_snapshot(tok: Any) -> tuple:
    """A tokenizer's vocabulary, special tokens and settings (not the per-call truncation and
    padding state a fast tokenizer keeps from its last call)."""
    parts: list[Any] = ["tokenizer"]
    backend = getattr(tok, "backend_tokenizer", None)
    try:
        if backend is not None:
            spec = json.loads(backend.to_str())
            spec.pop("truncation", None)
            spec.pop("padding", None)
            parts.append(_digest(json.dumps(spec, sort_keys=True).encode()))
        else:
            parts.append(tuple(sorted(tok.get_vocab().items())))
        parts.append(len(tok))
    except Exception as exc:
        parts.append(repr(exc))
    for name in ("padding_side", "truncation_side", "model_max_length", "chat_template",
                 "model_input_names", "special_tokens_map", "pad_token_id"):
        try:
            parts.append((name, repr(getattr(tok, name, None))))
        except Exception:
            parts.append((name, "?"))
    return tuple(parts)


def _module_snapshot(module: torch.nn.Module) -> tuple:
    return ("module", type(module).__qualname__,
            tuple((k, _tensor_snapshot(v)) for k, v in module.state_dict(keep_vars=True).items()),
            tuple((k, p.requires_grad) for k, p in module.named_parameters()),
            tuple(type(m).__qualname__ for m in module.modules()))


def snapshot(x: Any, _seen: set | None = None, _depth: int = 0) -> Any:
    """A fingerprint of ``x`` that compares equal exactly when ``x`` was not changed."""
    if x is None or isinstance(x, bool | int | str | bytes | complex):
        return x
    if isinstance(x, float):
        return ("float", struct.pack("d", x))  # NaN equals NaN here
    if isinstance(x, torch.Tensor):
        return _tensor_snapshot(x)
    if isinstance(x, np.ndarray):
        if x.dtype == object:
            return ("ndarray", x.shape, tuple(snapshot(v, _seen, _depth + 1) for v in x.flat))
        return ("ndarray", x.shape, x.dtype.str, _digest(np.ascontiguousarray(x).tobytes()))
    if isinstance(x, np.generic):
        return ("numpy", x.dtype.str, x.tobytes())
    if isinstance(x, torch.Generator):
        return ("generator", _digest(x.get_state().numpy().tobytes()))
    seen = set() if _seen is None else _seen
    if id(x) in seen or _depth > 8:
        return ("seen",)
    seen.add(id(x))
    if isinstance(x, torch.nn.Module):
        return _module_snapshot(x)
    if callable(getattr(x, "get_vocab", None)) and hasattr(x, "padding_side"):
        return _tokenizer_snapshot(x)
    if callable(getattr(x, "to_str", None)) and type(x).__module__.startswith("tokenizers"):
        spec = json.loads(x.to_str())
        spec.pop("truncation", None)
        spec.pop("padding", None)
        return ("tokenizers", _digest(json.dumps(spec, sort_keys=True).encode()))
    if isinstance(x, list | tuple):
        return (type(x).__name__, tuple(snapshot(v, seen, _depth + 1) for v in x))
    if isinstance(x, Mapping):
        return ("mapping", tuple(sorted(((repr(k), snapshot(v, seen, _depth + 1))
                                         for k, v in x.items()), key=lambda kv: kv[0])))
    if isinstance(x, set | frozenset):
        return ("set", tuple(sorted(repr(v) for v in x)))
    if callable(x) and hasattr(x, "__qualname__"):  # functions and classes
        return ("callable", getattr(x, "__module__", ""), x.__qualname__)
    attrs = getattr(x, "__dict__", None)
    if isinstance(attrs, dict):  # public attributes only: private ones are often caches
        return ("object", type(x).__qualname__,
                tuple((k, snapshot(v, seen, _depth + 1)) for k, v in sorted(attrs.items())
                      if not k.startswith("_")))
    try:
        return ("repr", type(x).__qualname__, repr(x)[:2000])
    except Exception:
        return ("object", type(x).__qualname__)


def safe_snapshot(x: Any) -> Any:
    """:func:`snapshot`, or a constant marker when ``x`` can't be fingerprinted (no change
    can then be seen, rather than a change that did not happen)."""
    try:
        return snapshot(x)
    except Exception:
        return ("unknown",)
