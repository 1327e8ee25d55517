"""Lesson 03 exercise 03.12: top-p (nucleus) filtering.

Graded by what a nucleus *is*, so that tied logits at the boundary may be resolved either way
(``transformers``' ``TopPLogitsWarper`` resolves them by its sort order): per row, the kept
logits are unchanged and the others are -inf; the most likely token is always kept; nothing
kept is less likely than something removed; the kept probability is at least ``p``; and
the set is the smallest such (without its least likely token it would fall below ``p``).
"""

from __future__ import annotations

import torch

from course_utils import generation
from course_utils.grading.core import Case, Exercise, register

_TOL = 1e-6


def _cases(rng: torch.Generator):
    def r(*shape, scale=3.0, dtype=torch.float32):
        return torch.randn(*shape, generator=rng, dtype=dtype) * scale

    inf = float("-inf")
    yield Case((r(2, 3, 7), 0.7), label="(batch, seq, vocab) logits",
               catches="code that assumes 2-D logits; every mistake below (each gives a "
                       "different wrong answer here)")
    yield Case((r(2, 6, scale=0.5) - 50, 0.8), label="very negative logits",
               catches="cumulating logits instead of probabilities")
    yield Case((torch.tensor([[2.0, -1.0, 0.5, 3.0, 1.0]]), 0.8), label="5 logits, p = 0.8",
               catches="the token that crosses p dropped; probabilities returned; zeros "
                       "instead of -inf; the least likely kept")
    yield Case((torch.tensor([[5.0, 1.0, 0.0, -1.0]]), 0.5),
               label="the top token alone is above p",
               catches="keeping only tokens whose running total stays below p (none)")
    yield Case((r(2, 12), 1e-4), label="p tiny: only the top token survives",
               catches="the keep-the-top-token rule missing: every token removed")
    yield Case((r(2, 9), 1.0), label="p = 1 keeps everything",
               catches="dropping the tail even at p = 1")
    yield Case((torch.zeros(2, 10), 0.45), label="a flat row: ten tied tokens, p = 0.45",
               catches="ties: any 5 of the 10 are a nucleus, fewer or more are not")
    yield Case((torch.tensor([[3.0, 3.0, 1.0, 0.0]]), 0.5), label="a tie at the top",
               catches="argmax-style code that keeps one of two equally likely tokens")
    yield Case((torch.tensor([[8.0, 0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0, 0.0]]), 0.9),
               label="a peaked row and a flat row in one batch",
               catches="one threshold for the whole batch; the softmax over the batch axis")
    yield Case((torch.tensor([[0.0, inf, 2.0, inf, 1.0]]), 0.95),
               label="-inf already present (after top-k)",
               catches="NaN from the softmax or sums of -inf; -inf counted as tokens")
    yield Case((r(11), 0.6), label="1-D logits of one position",
               catches="code that assumes a batch axis")
    yield Case((r(2, 8, dtype=torch.float64), 0.75), label="float64 logits",
               catches="a float32 -inf tensor that changes the dtype")
    yield Case((torch.tensor([[1000.0, 999.0, 990.0, 0.0]]), 0.9), label="logits near 1000",
               catches="exp() without the max shift overflows (use softmax)")
    yield Case((r(1, 50257), 0.9), label="GPT-2's vocabulary, p = 0.9",
               catches="a Python loop over the vocabulary; any mistake at scale")
    for _ in range(3):  # random shapes and p, rounded logits so ties are common
        n = int(torch.randint(2, 30, (1,), generator=rng))
        p = float(torch.rand(1, generator=rng)) * 0.9 + 0.05
        yield Case((torch.round(r(3, n)), p), label=f"random 3 x {n} rounded logits, p={p:.2f}",
                   catches="ties at the boundary; any axis or threshold mistake")


def _compare(got, expected, case: Case):
    logits, p = case.args
    if not isinstance(got, torch.Tensor):
        return f"the result should be a torch.Tensor, but it is a {type(got).__name__}."
    if tuple(got.shape) != tuple(logits.shape):
        return f"the result has shape {tuple(got.shape)}, expected {tuple(logits.shape)}."
    if got.dtype != logits.dtype:
        return (f"the result has dtype {got.dtype}, but the logits were {logits.dtype}: keep "
                "their dtype (masked_fill on the logits does).")
    if isinstance(expected, torch.Tensor) and expected.shape == got.shape and torch.equal(
            got.nan_to_num(0.5, -3e38, -3e38), expected.nan_to_num(0.5, -3e38, -3e38)):
        return None  # the same tensor (how a known mistake is recognised, too)
    if bool(got.isnan().any()):
        return "the result contains NaN: fill removed logits with -inf, don't multiply."
    kept = got > -1e30
    if bool((kept & (got != logits)).any()):
        return ("a kept logit was changed: top-p only removes logits (sets them to -inf); the "
                "kept ones stay exactly as they were, not probabilities or rescaled values.")
    if bool((~kept & (got > -1e30)).any()) or bool(((got <= -1e30) & (got != float("-inf"))
                                                   & (logits > -1e30)).any()):
        return "removed logits must be float('-inf'), so the softmax gives them probability 0."
    probs = logits.double().softmax(-1).reshape(-1, logits.shape[-1])
    kept2, logits2 = kept.reshape(-1, logits.shape[-1]), logits.reshape(-1, logits.shape[-1])
    for row in range(probs.shape[0]):
        k, pr, lg = kept2[row], probs[row], logits2[row]
        where = f" (row {row})" if probs.shape[0] > 1 else ""
        if not bool((k & (lg == lg.max())).any()):
            return (f"the most likely token was removed{where}: top-p always keeps at least "
                    "the top token, even when its probability alone exceeds p.")
        if bool(k.any()) and bool((~k).any()) and lg[~k].max() > lg[k].min():
            return (f"you removed a token more likely than one you kept{where}: the nucleus "
                    "is made of the most likely tokens, sorted in descending order.")
        mass, smallest = pr[k].sum().item(), pr[k].min().item()
        if mass < p - _TOL:
            return (f"the tokens you kept{where} add up to probability {mass:.4f} < p = {p:g}: "
                    "keep tokens up to and including the one that makes the total reach p.")
        if int(k.sum()) > 1 and mass - smallest >= p + _TOL:
            return (f"you kept too many tokens{where}: without the least likely one you kept, "
                    f"the total is still {mass - smallest:.4f} >= p = {p:g}. Keep the "
                    "*smallest* set that reaches p.")
    return None


def _nucleus(logits, p, *, inclusive=True, keep_top=True, descending=True, on="probs",
             dim=-1, fill=float("-inf"), out="logits"):
    x = logits.transpose(dim, -1) if dim != -1 else logits
    values = x.softmax(-1) if on == "probs" else x
    sorted_vals, order = torch.sort(values, dim=-1, descending=descending)
    cum = sorted_vals.cumsum(-1)
    before = cum - sorted_vals
    keep_sorted = before < p if inclusive else cum <= p
    if keep_top:
        keep_sorted[..., 0] = True
    keep = keep_sorted.scatter(-1, order, keep_sorted)
    result = x.masked_fill(~keep, fill)
    result = result.transpose(dim, -1) if dim != -1 else result
    return result.softmax(-1) if out == "probs" else result


def _exclusive_keep_top(logits, p):
    return _nucleus(logits, p, inclusive=False)


def _ascending(logits, p):
    return _nucleus(logits, p, descending=False)


def _cum_logits(logits, p):
    return _nucleus(logits, p, on="logits")


def _probabilities(logits, p):
    return _nucleus(logits, p, out="probs")


def _zero_fill(logits, p):
    return _nucleus(logits, p, fill=0.0)


def _batch_softmax(logits, p):
    return _nucleus(logits, p, dim=0) if logits.dim() > 1 else _nucleus(logits, p)


register(Exercise(
    id="03.12", title="top-p (nucleus) filtering", reference=generation.top_p_filter,
    cases=_cases, compare=_compare,
    hint="probs = logits.softmax(-1); sorted_probs, order = probs.sort(-1, descending=True); "
         "before = sorted_probs.cumsum(-1) - sorted_probs (the mass of the more likely "
         "tokens); keep = before < p (the top token has before = 0, so it is always kept); "
         "map keep back with keep.scatter(-1, order, keep) and masked_fill the rest with -inf.",
    mistakes=[
        (_exclusive_keep_top, "The token that makes the running total reach p belongs to the "
                              "nucleus: keep a token while the mass of the tokens before it is "
                              "below p (cumsum - probs < p), not while the total including it "
                              "is (that can leave no token at all)."),
        (_ascending, "Sort in descending order: the nucleus is the most likely tokens."),
        (_cum_logits, "Add up probabilities (softmax first), not logits."),
        (_probabilities, "Return the filtered logits, not probabilities: the softmax comes "
                         "later."),
        (_zero_fill, "Removed logits must be float('-inf'), not 0 (which still has "
                     "probability)."),
        (_batch_softmax, "The softmax and the sort run over the vocabulary, dim=-1: each row "
                         "is its own distribution."),
    ],
))
