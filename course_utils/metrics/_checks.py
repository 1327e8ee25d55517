"""Input checks shared by the text metrics: clear errors instead of silently wrong scores.

A bare string is a sequence too, so ``bleu("a cat", "a cat")`` would score characters; these
checks turn that and other slips (mismatched lengths, ``None`` entries) into a message that
says how to call the metric.
"""

from __future__ import annotations

from collections.abc import Sequence


def check_predictions(predictions: Sequence[str], name: str = "predictions") -> None:
    """Raise unless ``predictions`` is a non-empty list of strings."""
    if isinstance(predictions, str):
        raise TypeError(f"{name} must be a list of strings, got a single str: wrap it in a "
                        f"list, e.g. [{predictions[:30]!r}]")
    if not isinstance(predictions, Sequence):
        raise TypeError(f"{name} must be a list of strings, got {type(predictions).__name__}")
    if len(predictions) == 0:
        raise ValueError(f"{name} is empty: a metric needs at least one text to score")
    for i, p in enumerate(predictions):
        if not isinstance(p, str):
            raise TypeError(f"{name}[{i}] must be a str, got {type(p).__name__}: {p!r:.60}")


def as_reference_lists(references: Sequence[str] | Sequence[Sequence[str]],
                       n_predictions: int) -> list[list[str]]:
    """One list of reference strings per prediction (a plain string becomes a list of one)."""
    if isinstance(references, str) or not isinstance(references, Sequence):
        raise TypeError("references must be a list with one entry per prediction (a str, or a "
                        f"list of str for several references), got {type(references).__name__}")
    if len(references) != n_predictions:
        raise ValueError(f"there are {n_predictions} predictions but {len(references)} "
                         "references: give one reference (or one list of references) per "
                         "prediction")
    out = []
    for i, ref in enumerate(references):
        if isinstance(ref, str):
            out.append([ref])
            continue
        if not isinstance(ref, Sequence) or len(ref) == 0:
            raise ValueError(f"references[{i}] must be a str or a non-empty list of str, got "
                             f"{ref!r:.60}")
        for j, r in enumerate(ref):
            if not isinstance(r, str):
                raise TypeError(f"references[{i}][{j}] must be a str, got {type(r).__name__}")
        out.append(list(ref))
    return out
