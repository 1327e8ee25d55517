"""Lesson 03 exercise 03.14: BERT's MLM masking with the 80/10/10 rule.

A learner's random draws need not be the reference's, so the grade is by properties: labels
are the original ids exactly where a token was chosen and -100 elsewhere; special tokens are
never chosen; only chosen tokens change; and over large batches the chosen share is
``mlm_probability`` and the chosen tokens split 80/10/10 into [MASK] / random / unchanged
(the tolerances are five standard deviations or more).
"""

from __future__ import annotations

import torch

from course_utils import mlm
from course_utils.grading.core import Case, Exercise, register

VOCAB, MASK_ID = 1000, 4


class _Generator(torch.Generator):
    """A generator the learner is *meant* to advance: it equals its copy for the grader."""

    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, torch.Generator)


def _batch(rng, batch, seq, pad_max=0, zeros=False):
    ids = torch.randint(5, VOCAB, (batch, seq), generator=rng)
    if zeros:
        ids = ids.masked_fill(torch.rand(batch, seq, generator=rng) < 0.2, 0)
    special = torch.zeros(batch, seq, dtype=torch.long)
    special[:, 0] = 1
    ids[:, 0] = 2  # [CLS]
    pads = torch.randint(0, pad_max + 1, (batch,), generator=rng)
    for b in range(batch):
        end = seq - 1 - int(pads[b])
        ids[b, end] = 3  # [SEP]
        special[b, end:] = 1
        ids[b, end + 1:] = 1  # [PAD]
    return ids, special


def _cases(rng: torch.Generator):
    def gen():
        g = _Generator()
        g.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=rng)))
        return g

    ids, special = _batch(rng, 128, 128, pad_max=30)
    yield Case((ids, special, MASK_ID, VOCAB, gen()), label="128 x 128 tokens with [CLS], "
               "[SEP] and padding", catches="special tokens chosen; labels not -100 elsewhere; "
               "no 80/10/10 split; [MASK] in the labels")
    ids, special = _batch(rng, 2, 6)
    yield Case((ids, special, MASK_ID, VOCAB, gen()), label="a small batch of 2 x 6",
               catches="shapes flattened or transposed")
    ids, special = _batch(rng, 96, 128, zeros=True)
    yield Case((ids, special, MASK_ID, VOCAB, gen()), label="token id 0 is an ordinary token",
               catches="id 0 taken for padding or special (tokens chosen by value)")
    ids, special = _batch(rng, 3, 8)
    yield Case((ids, torch.ones_like(special), MASK_ID, VOCAB, gen()),
               label="every token special: nothing is chosen",
               catches="special tokens chosen; a crash on an empty selection")
    ids, special = _batch(rng, 64, 128)
    yield Case((ids, special, MASK_ID, VOCAB, gen()), {"mlm_probability": 0.5},
               label="mlm_probability = 0.5", catches="0.15 hard-coded")
    ids, special = _batch(rng, 64, 128, pad_max=20)
    yield Case((ids, special, MASK_ID, VOCAB, gen()), {"mlm_probability": 1.0},
               label="mlm_probability = 1: every ordinary token chosen",
               catches="the 80/10/10 split applied to all tokens instead of the chosen ones")
    ids, special = _batch(rng, 64, 64)
    yield Case((ids, special.bool(), 0, VOCAB, gen()),
               label="[MASK] is id 0, special_tokens_mask as bools",
               catches="`if mask_token_id:` skipping a falsy id; arithmetic on a bool mask")


def _fail_stats(what, got, want, tol):
    return abs(got - want) > tol, f"{what} is {got:.3f}, expected about {want:.2f}"


def _compare(got, expected, case: Case):
    ids, special, mask_id, vocab = case.args[:4]
    p = case.kwargs.get("mlm_probability", 0.15)
    if not (isinstance(got, tuple | list) and len(got) == 2
            and all(isinstance(t, torch.Tensor) for t in got)):
        return "return a tuple (masked_input_ids, labels) of two tensors."
    inputs, labels = got
    if isinstance(expected, tuple) and all(
            torch.equal(a, b) for a, b in zip(got, expected, strict=True)):
        return None
    for name, t in (("masked_input_ids", inputs), ("labels", labels)):
        if tuple(t.shape) != tuple(ids.shape):
            return f"{name} has shape {tuple(t.shape)}, expected {tuple(ids.shape)}."
        if t.dtype != torch.long:
            return f"{name} should be torch.long token ids, got {t.dtype}."
    special = special.bool()
    chosen = labels != -100
    if bool((labels[chosen] != ids[chosen]).any()):
        if bool((labels[chosen] == mask_id).any()):
            return ("your labels hold the [MASK] id: a label is the *original* token, the "
                    "answer the model must predict.")
        return "where a token was chosen, its label must be the original token id."
    if bool((chosen & special).any()):
        return ("a special token ([CLS], [SEP], padding) was chosen: choose only among "
                "tokens with special_tokens_mask == 0.")
    if bool((~chosen & (inputs != ids)).any()):
        return ("a token that was not chosen (label -100) was changed: only the chosen tokens "
                "are replaced; every other label must be -100.")
    if bool(((inputs < 0) | (inputs >= vocab)).any()):
        return "a replacement id lies outside 0 .. vocab_size - 1."
    n_ordinary, n_chosen = int((~special).sum()), int(chosen.sum())
    if n_ordinary >= 4000:
        bad, msg = _fail_stats("the share of ordinary tokens chosen", n_chosen / n_ordinary, p,
                               0.03)
        if bad:
            return (f"{msg} (mlm_probability = {p:g}): choose each non-special token with "
                    "probability mlm_probability.")
    if n_chosen >= 2000:
        masked = int((chosen & (inputs == mask_id) & (ids != mask_id)).sum()) / n_chosen
        same = int((chosen & (inputs == ids)).sum()) / n_chosen
        other = 1 - masked - same
        for what, got_share, want in (("[MASK]", masked, 0.8), ("random", other, 0.1),
                                      ("unchanged", same, 0.1)):
            bad, msg = _fail_stats(f"the share of chosen tokens replaced by {what}"
                                   if what != "unchanged" else
                                   "the share of chosen tokens left unchanged",
                                   got_share, want + (0.1 / vocab if what == "unchanged" else 0),
                                   0.04)
            if bad:
                return (f"{msg}: of the chosen tokens, 80% become [MASK], 10% a random token "
                        "and 10% stay as they are.")
        if other > 0.05 and int(inputs[chosen & (inputs != ids) & (inputs != mask_id)]
                                .unique().numel()) < 20:
            return ("the random replacements are nearly all the same token: draw each one "
                    "uniformly from the vocabulary.")
    return None


def _wrong(kind):
    def mlm_mask(input_ids, special_tokens_mask, mask_token_id, vocab_size, generator,
                 mlm_probability=0.15):
        prob = 0.15 if kind == "fixed rate" else mlm_probability
        special = special_tokens_mask.bool() if kind != "specials" else torch.zeros_like(
            special_tokens_mask, dtype=torch.bool)
        chosen = (torch.rand(input_ids.shape, generator=generator) < prob) & ~special
        labels = input_ids.masked_fill(~chosen, -100)
        draw = torch.rand(input_ids.shape, generator=generator)
        mask_share, random_share = {"all mask": (1.0, 1.0), "no unchanged": (0.8, 1.0)}.get(
            kind, (0.8, 0.9))
        to_mask = chosen & (draw < mask_share)
        to_random = chosen & (draw >= mask_share) & (draw < random_share)
        random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
        inputs = input_ids.masked_fill(to_mask, mask_token_id)
        inputs = torch.where(to_random, random_ids, inputs)
        if kind == "mask label":
            labels = labels.masked_fill(chosen, mask_token_id)
        if kind == "labels everywhere":
            labels = input_ids.clone()
        return inputs, labels
    mlm_mask.__name__ = f"mlm_{kind.replace(' ', '_')}"
    return mlm_mask


class _MaskingExercise(Exercise):
    """The generator is *meant* to advance: only the token tensors are checked for changes."""

    def named_values(self, case: Case) -> list[tuple[str, object]]:
        names = ("input_ids", "special_tokens_mask", "mask_token_id", "vocab_size")
        return [*zip(names, case.args[:4], strict=True), *case.kwargs.items()]


register(_MaskingExercise(
    id="03.14", title="MLM masking, the 80/10/10 rule", reference=mlm.mlm_mask, cases=_cases,
    compare=_compare,
    hint="chosen = (torch.rand(shape, generator=generator) < mlm_probability) & ~special; "
         "labels = input_ids.masked_fill(~chosen, -100); draw = torch.rand(shape, "
         "generator=generator); [MASK] where chosen & (draw < 0.8); a random id (torch.randint"
         "(vocab_size, shape, generator=generator)) where chosen & (0.8 <= draw < 0.9).",
    mistakes=[
        (_wrong("all mask"), "Not every chosen token becomes [MASK]: 80% do, 10% get a random "
                             "token and 10% stay unchanged."),
        (_wrong("no unchanged"), "Leave 10% of the chosen tokens unchanged (80% [MASK], 10% "
                                 "random, 10% as they are)."),
        (_wrong("specials"), "Never choose special tokens: exclude special_tokens_mask == 1."),
        (_wrong("fixed rate"), "Use the mlm_probability you are given, not a fixed 0.15."),
        (_wrong("mask label"), "A label is the original token, the answer to predict, not "
                               "[MASK]."),
        (_wrong("labels everywhere"), "Labels are -100 wherever a token was not chosen, so "
                                      "the loss is taken on the chosen tokens only."),
    ],
))
