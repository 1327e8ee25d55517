"""Lesson 03 exercises 03.7 and 03.8: the causal + padding mask of a left-padded batch with
cached tokens, and its position ids (references in :mod:`course_utils.padded_batch`)."""

from __future__ import annotations

import torch

from course_utils import padded_batch
from course_utils.grading.core import Case, Exercise, register


def _mask(rows, dtype=torch.long):
    return torch.tensor(rows, dtype=dtype)


def _left_padded(rng, batch, key_len, max_pad):
    pads = torch.randint(0, max_pad + 1, (batch,), generator=rng)
    cols = torch.arange(key_len)[None]
    return (cols >= pads[:, None]).long()


def _cases(rng: torch.Generator, *, for_positions: bool):
    fixed = (
        (_mask([[1, 1, 1, 1, 1], [1, 1, 1, 1, 1]]), 5, "no padding, no cache",
         "the causal triangle missing or transposed"),
        (_mask([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]]), 5, "a left-padded prompt, nothing cached",
         "padding ignored; positions counted by column (shifted by the padding)"),
        (_mask([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]]), 1,
         "one new token after 5 cached columns (2 of them padding)",
         "a top-left triangle that hides the cache; the cached real tokens not counted"),
        (_mask([[0, 1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]]), 3,
         "3 new tokens after 4 cached columns, three paddings",
         "a triangle not shifted by the cache; new tokens seeing each other's future"),
        (_mask([[False, True, True, True], [True, True, True, True]], torch.bool), 2,
         "a boolean attention_mask", "arithmetic that fails on bools (1 - mask)"),
        (_mask([[0.0, 1.0, 1.0], [1.0, 1.0, 1.0]], torch.float32), 3, "a float attention_mask",
         "a float mask used as an index or compared with `is`"),
        (_mask([[1]]), 1, "one token", "empty or squeezed shapes"),
        (_mask([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]]), 6, "a right-padded row",
         "code that assumes the padding is on the left"),
    )
    for mask, q, label, catches in fixed:
        yield Case((mask, q), label=label, catches=catches)
    yield Case((_left_padded(rng, 2, 301, 40), 1), label="a cache of 300 columns, padded rows",
               catches="a mask or position table of fixed size")
    yield Case((_left_padded(rng, 4, 24, 10), 24), label="4 prompts of 24 columns, up to 10 "
               "padding", catches="any of the above at once")
    yield Case((_left_padded(rng, 3, 40, 12), 8), label="8 new tokens after 32 cached columns",
               catches="any of the above at once")
    if for_positions:
        yield Case((_mask([[0, 0, 0, 0, 1, 1]]), 2), label="every cached column is padding",
                   catches="positions counted from the cache length, not the real tokens")


# --------------------------------------------------------------------------- 03.7 mask


def _compare_mask(got, expected, case: Case):
    if not isinstance(got, torch.Tensor):
        return f"the result should be a torch.Tensor, but it is a {type(got).__name__}."
    if tuple(got.shape) != tuple(expected.shape):
        b, q, k = expected.shape
        return (f"the mask has shape {tuple(got.shape)}, expected {(b, q, k)} = (batch, "
                "query_len, key_len): one row per new token, one column per key (cached and "
                "new).")
    if got.dtype != torch.bool and bool(((got != 0) & (got != 1)).any()):
        return ("the mask holds values other than 0 and 1: return the boolean form (True = "
                "may attend), not an additive one.")
    allowed = got != 0
    if not torch.equal(allowed, expected):
        b, i, j = (int(v) for v in torch.nonzero(allowed != expected)[0])
        mask = case.args[0]
        past = mask.shape[1] - case.args[1]
        why = (f"key {j} is padding" if not bool(mask[b, j]) else
               f"key {j} is in the future of query {i} (column {past + i})")
        if bool(allowed[b, i, j]):
            return f"in row {b}, your mask lets query {i} attend to key {j}, but {why}."
        return (f"in row {b}, your mask blocks query {i} (column {past + i}) from key {j}, a "
                "real token at or before it: it should be allowed.")
    return None


def _mask_with(causal=True, padding=True, shift=True, on_queries=False, square=False,
               diagonal=0):
    def mask_fn(attention_mask, query_len):
        real = attention_mask != 0
        key_len = real.shape[1]
        cols = query_len if square else key_len
        tri = torch.ones(query_len, cols, dtype=torch.bool).tril(
            (key_len - query_len if shift else 0) + diagonal)
        if not causal:
            tri = torch.ones_like(tri)
        out = tri[None].expand(real.shape[0], -1, -1)
        if padding:
            if on_queries:
                out = out & real[:, -query_len:, None]
            else:
                out = out & real[:, None, -cols:]
        return out
    return mask_fn


register(Exercise(
    id="03.7", title="causal + padding mask with cached tokens",
    reference=padded_batch.padded_causal_mask, cases=lambda rng: _cases(rng, for_positions=False),
    compare=_compare_mask,
    hint="past = key_len - query_len; causal = torch.ones(query_len, key_len, dtype=torch.bool)"
         ".tril(diagonal=past); return causal[None] & (attention_mask[:, None, :] != 0).",
    mistakes=[
        (_mask_with(padding=False), "Padding keys must be blocked too: combine the causal "
                                    "triangle with attention_mask != 0 over the keys."),
        (_mask_with(causal=False), "A GPT token must not see its future: combine the padding "
                                   "mask with the causal triangle."),
        (_mask_with(shift=False), "With cached tokens the new queries are the *last* rows of "
                                  "the full triangle: tril(diagonal=key_len - query_len)."),
        (_mask_with(square=True), "The keys include the cached ones: the mask is (batch, "
                                  "query_len, key_len), not square."),
        (_mask_with(on_queries=True), "The padding mask hides padding *keys* (columns, "
                                      "attention_mask[:, None, :]), not padding queries."),
        (_mask_with(diagonal=-1), "Off by one: a token may attend to itself."),
        (_mask_with(diagonal=1), "Off by one: your mask lets each token see one token into "
                                 "the future."),
    ],
))

# --------------------------------------------------------------------------- 03.8 positions


def _compare_positions(got, expected, case: Case):
    mask, query_len = case.args
    if not isinstance(got, torch.Tensor):
        return f"the result should be a torch.Tensor, but it is a {type(got).__name__}."
    if tuple(got.shape) != tuple(expected.shape):
        return (f"the result has shape {tuple(got.shape)}, expected {tuple(expected.shape)} = "
                "(batch, query_len): positions of the new tokens only, not of the cached ones.")
    if got.dtype != torch.long:
        return (f"position ids index the position table: return dtype torch.long, not "
                f"{got.dtype}.")
    if torch.equal(got, expected):
        return None
    real = mask[:, -query_len:] != 0
    if bool((got[~real] < 0).any()):
        return ("a padding token got a negative position (cumsum - 1 gives -1 before the first "
                "real token), which is not a row of the position table: give padding any valid "
                "position, e.g. masked_fill(attention_mask == 0, 1).")
    if not torch.equal(got[real], expected[real]):
        b, i = (int(v) for v in torch.nonzero(real & (got != expected))[0])
        n_before = int((mask[b, :mask.shape[1] - query_len + i] != 0).sum())
        return (f"row {b}, new token {i}: position {int(got[b, i])}, but {n_before} real "
                f"tokens come before it (cached ones included, padding not), so its position "
                f"is {int(expected[b, i])}.")
    return None


def _pos_columns(attention_mask, query_len):
    key_len = attention_mask.shape[1]
    return torch.arange(key_len - query_len, key_len).expand(attention_mask.shape[0], -1)


def _pos_cumsum(attention_mask, query_len):
    return attention_mask.long().cumsum(-1)[:, -query_len:]


def _pos_no_fill(attention_mask, query_len):
    return (attention_mask.long().cumsum(-1) - 1)[:, -query_len:]


def _pos_new_only(attention_mask, query_len):
    new = attention_mask[:, -query_len:].long()
    return (new.cumsum(-1) - 1).clamp(min=0)


def _pos_from_right(attention_mask, query_len):
    real = attention_mask.long()
    lengths = real.sum(-1, keepdim=True)
    cols = torch.arange(real.shape[1])[None]
    from_end = real.shape[1] - 1 - cols
    return (lengths - 1 - from_end).clamp(min=0)[:, -query_len:]


def _pos_count_padding_as_tokens(attention_mask, query_len):
    key_len = attention_mask.shape[1]
    pads = (attention_mask == 0).long().sum(-1, keepdim=True)
    cols = torch.arange(key_len - query_len, key_len)[None]
    return (cols + pads).clamp(min=0)


register(Exercise(
    id="03.8", title="position ids of a left-padded batch with a cache",
    reference=padded_batch.padded_position_ids,
    cases=lambda rng: _cases(rng, for_positions=True), compare=_compare_positions,
    hint="positions = attention_mask.long().cumsum(-1) - 1 counts the real tokens before each "
         "column; give padding a valid position (.masked_fill(attention_mask == 0, 1)) and "
         "return the last query_len columns.",
    mistakes=[
        (_pos_columns, "Positions count real tokens, not columns: left padding must not push "
                       "a sequence's positions up. Use attention_mask.cumsum(-1) - 1."),
        (_pos_cumsum, "Off by one: the first real token is at position 0 (cumsum - 1)."),
        (_pos_no_fill, "cumsum - 1 is -1 on padding before the first real token; give padding "
                       "a valid position."),
        (_pos_new_only, "Count the cached real tokens too: take the cumsum over the whole "
                        "attention_mask, then keep the last query_len columns."),
        (_pos_from_right, "Count positions from the first real token (the left), not back "
                          "from the end."),
        (_pos_count_padding_as_tokens, "Padding adds nothing to a position: don't add the "
                                       "number of padding columns."),
    ],
))
