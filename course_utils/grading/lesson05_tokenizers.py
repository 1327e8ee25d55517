"""The bundled tokenizers as lesson 05's grader hands them to a learner's function.

Shared by 05.1 (:mod:`lesson05`) and 05.4 (:mod:`lesson05_sft`): each case gets a fresh,
private copy, and ``==`` compares the state a learner's function could change.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from typing import Any


def _tokenizer_state(tok: Any) -> tuple:
    """What a learner's function could change in a tokenizer: vocabulary, added and special
    tokens, sides, lengths. The backend's truncation/padding fields are left out: every call
    with ``truncation=True`` sets them, and the next call sets them again."""
    backend = json.loads(tok.backend_tokenizer.to_str())
    backend.pop("truncation", None)
    backend.pop("padding", None)
    return (json.dumps(backend, sort_keys=True), tok.padding_side, tok.truncation_side,
            tok.model_max_length, repr(tok.special_tokens_map), list(tok.model_input_names),
            len(tok))


class _ComparableTokenizer:
    """Mixed into the grading tokenizers: ``==`` compares their state, so a learner's function
    that changes its tokenizer (``padding_side``, ``add_tokens``, ``model_max_length``) is
    told so, and the reference always works on its own private, unchanged copy."""

    grading_name = "tokenizer"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and _tokenizer_state(self) == _tokenizer_state(other)

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        special = "adds [CLS] ... [SEP]" if self.cls_token else "adds no special tokens"
        return (f"<{self.grading_name} tokenizer: {special}, truncation_side="
                f"{self.truncation_side!r}, padding_side={self.padding_side!r}>")


@lru_cache(maxsize=4)
def _comparable_class(base: type) -> type:
    return type(f"Grading{base.__name__}", (_ComparableTokenizer, base), {})


@lru_cache(maxsize=2)
def _template(name: str) -> Any:
    from transformers import AutoTokenizer

    from course_utils.pretrained import asset_path

    tok = AutoTokenizer.from_pretrained(asset_path(name))
    tok.__class__ = _comparable_class(type(tok))
    tok.grading_name = name
    return tok


def grading_tokenizer(name: str = "course-bert", **settings: Any) -> Any:
    """A fresh, private copy of a bundled tokenizer (course-bert: WordPiece with [CLS]/[SEP];
    course-gpt: byte-level BPE, no special tokens), with ``settings`` such as
    ``truncation_side="left"`` applied. Loads offline; every call returns a new object."""
    tok = copy.deepcopy(_template(name))
    for key, value in settings.items():
        setattr(tok, key, value)
    return tok
