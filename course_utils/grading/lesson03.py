"""Lesson 03 exercises: GPT's causal mask with a cache, position ids, top-k, a KV-cache step."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from course_utils import generation, gpt
from course_utils.grading.core import Case, Exercise, compare, register

# --------------------------------------------------------------------------- 03.1 causal mask


def _mask_cases(rng: torch.Generator):
    for query_len, past_len in ((4, 0), (1, 0), (1, 5), (3, 2), (2, 6), (5, 1), (6, 0)):
        yield Case((query_len, past_len), label=f"query_len={query_len}, past_len={past_len}")


def _compare_mask(got, expected, case: Case):
    if not isinstance(got, torch.Tensor):
        return f"the result should be a torch.Tensor, but it is a {type(got).__name__}."
    if tuple(got.shape) != tuple(expected.shape):
        return (f"the mask has shape {tuple(got.shape)}, expected {tuple(expected.shape)} = "
                "(query_len, past_len + query_len): one row per new token, one column per key.")
    if got.is_floating_point() and bool(((got != 0) & (got != 1)).any()):
        return ("the mask holds values other than 0 and 1: this exercise wants the boolean/0-1 "
                "form (1 = may attend), not the additive one.")
    allowed = got != 0
    if not torch.equal(allowed, expected):
        i, j = (int(v) for v in torch.nonzero(allowed != expected)[0])
        verb = "allows" if bool(allowed[i, j]) else "blocks"
        return (f"your mask {verb} query {i} (position {case.args[1] + i}) -> key {j}, "
                "but a causal mask should not.")
    return None


def _mask_no_offset(query_len, past_len=0):
    return torch.ones(query_len, past_len + query_len, dtype=torch.bool).tril()


def _mask_square(query_len, past_len=0):
    return torch.ones(query_len, query_len, dtype=torch.bool).tril()


def _mask_no_self(query_len, past_len=0):
    return torch.ones(query_len, past_len + query_len, dtype=torch.bool).tril(past_len - 1)


def _mask_future(query_len, past_len=0):
    return torch.ones(query_len, past_len + query_len, dtype=torch.bool).tril(past_len + 1)


def _mask_triu(query_len, past_len=0):
    return torch.ones(query_len, past_len + query_len, dtype=torch.bool).triu(past_len)


register(Exercise(
    id="03.1", title="GPT's causal mask, with cached tokens",
    reference=gpt.causal_mask_with_past, cases=_mask_cases, compare=_compare_mask,
    hint="Query i is the token at position past_len + i; it may see keys j <= past_len + i. "
         "torch.ones(query_len, past_len + query_len, dtype=torch.bool).tril(diagonal=past_len).",
    mistakes=[
        (_mask_no_offset, "With cached tokens the queries are the *last* rows of the full "
                          "triangle: every new token may see all past_len cached keys. Shift "
                          "the triangle: tril(diagonal=past_len)."),
        (_mask_square, "The keys include the cached ones: the mask is (query_len, past_len + "
                       "query_len), not square."),
        (_mask_no_self, "Off by one: a token may attend to itself. Use diagonal=past_len."),
        (_mask_future, "Off by one: your mask lets each token see one token into the future. "
                       "Use diagonal=past_len."),
        (_mask_triu, "Your mask is the upper triangle: it lets tokens see the future and not "
                     "the past. Use tril."),
    ],
))

# --------------------------------------------------------------------------- 03.2 position ids


def _position_cases(rng: torch.Generator):
    for batch, seq_len, past in ((2, 5, 0), (1, 1, 7), (3, 4, 2), (1, 6, 0), (2, 1, 0),
                                 (2, 3, 10)):
        ids = torch.randint(0, 50, (batch, seq_len), generator=rng)
        yield Case((ids,), {"past_length": past},
                   label=f"{batch} x {seq_len} new tokens after {past} cached")


def _compare_positions(got, expected, case: Case):
    if isinstance(got, torch.Tensor) and tuple(got.shape) != tuple(expected.shape) \
            and got.dim() == 1:
        return (f"the result has shape {tuple(got.shape)}; position ids have one row per "
                f"sequence, {tuple(expected.shape)} = (batch, seq_len), like input_ids.")
    return compare(got, expected, atol=0, rtol=0)


def _positions_restart(input_ids, past_length=0):
    b, s = input_ids.shape
    return torch.arange(s).unsqueeze(0).expand(b, s)


def _positions_from_one(input_ids, past_length=0):
    b, s = input_ids.shape
    return torch.arange(past_length + 1, past_length + s + 1).unsqueeze(0).expand(b, s)


def _positions_token_ids(input_ids, past_length=0):
    return input_ids + past_length


def _positions_only_past(input_ids, past_length=0):
    b, s = input_ids.shape
    return torch.full((b, s), past_length)


register(Exercise(
    id="03.2", title="position ids that continue after the cache",
    reference=gpt.make_position_ids, cases=_position_cases, compare=_compare_positions,
    hint="torch.arange(past_length, past_length + seq_len) (dtype long), then .unsqueeze(0)"
         ".expand(batch, seq_len) so every sequence gets the same positions.",
    mistakes=[
        (_positions_restart, "Your positions restart at 0 for the new tokens, as if the cached "
                             "ones were not there: start at past_length."),
        (_positions_from_one, "Off by one: positions count from 0, so the first new token is "
                              "at position past_length."),
        (_positions_token_ids, "Position ids number the *places* in the sequence, not the "
                               "tokens: they do not depend on which token is where."),
        (_positions_only_past, "Every new token got the same position: the positions run "
                               "past_length, past_length + 1, ..."),
    ],
))

# --------------------------------------------------------------------------- 03.3 top-k


def _topk_cases(rng: torch.Generator):
    def r(*shape):
        return torch.randn(*shape, generator=rng) * 3

    yield Case((torch.tensor([[2.0, -1.0, 0.5, 3.0, 1.0]]), 2), label="5 logits, keep 2")
    yield Case((r(2, 10), 3), label="batch of 2, vocab 10, k=3")
    yield Case((r(1, 6), 1), label="k=1 is greedy")
    yield Case((r(3, 8), 8), label="k = vocab size keeps everything")
    yield Case((r(2, 6), 20), label="k larger than the vocabulary: keep everything")
    yield Case((torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0]]), 2),
               label="ties: every logit equal to the k-th largest is kept")
    yield Case((r(2, 3, 7), 2), label="(batch, seq, vocab) logits")
    yield Case((r(4, 50) - 100, 5), label="very negative logits")


def _compare_filtered(got, expected, case: Case):
    if not isinstance(got, torch.Tensor):
        return f"the result should be a torch.Tensor, but it is a {type(got).__name__}."
    if tuple(got.shape) != tuple(expected.shape):
        return f"the result has shape {tuple(got.shape)}, expected {tuple(expected.shape)}."
    kept = torch.isfinite(expected)
    if not torch.allclose(got[kept].double(), expected[kept].double(), atol=1e-6):
        return ("some logits that should be kept were removed or changed: the k largest in "
                "each row must stay exactly as they were.")
    if bool((got[~kept] > -1e4).any()):
        value = got[~kept][got[~kept] > -1e4][0].item()
        return (f"a logit outside the top k is still {value:.4g}; filtered logits must be "
                "-inf so the softmax gives them probability 0.")
    return None


def _topk(logits, k, *, keep=0, largest=True, dim=-1, fill=float("-inf")):
    k = min(k, logits.shape[dim])
    kth = torch.topk(logits, k, dim=dim, largest=largest).values
    kth = kth.select(dim, -1).unsqueeze(dim)
    drop = (logits < kth) if largest else (logits > kth)
    if keep == -1:
        drop = logits <= kth
    return logits.masked_fill(drop, fill)


def _topk_zero_fill(logits, k):
    return _topk(logits, k, fill=0.0)


def _topk_drops_kth(logits, k):
    return _topk(logits, k, keep=-1)


def _topk_smallest(logits, k):
    return _topk(logits, k, largest=False)


def _topk_probabilities(logits, k):
    return generation.top_k_filter(logits, k).softmax(-1)


def _topk_wrong_dim(logits, k):
    return _topk(logits, k, dim=0)


register(Exercise(
    id="03.3", title="top-k filtering", reference=generation.top_k_filter, cases=_topk_cases,
    compare=_compare_filtered,
    hint="kth = torch.topk(logits, min(k, vocab), dim=-1).values[..., -1:] is each row's k-th "
         "largest logit; return logits.masked_fill(logits < kth, float('-inf')).",
    mistakes=[
        (_topk_zero_fill, "Filtered logits were set to 0, which still has probability: set "
                          "them to float('-inf')."),
        (_topk_drops_kth, "Off by one: you removed the k-th largest logit itself (<=); remove "
                          "only the logits strictly smaller than it (<)."),
        (_topk_smallest, "You kept the k *smallest* logits: keep the largest (torch.topk's "
                         "default, largest=True)."),
        (_topk_probabilities, "Return the filtered logits, not probabilities: the softmax "
                              "comes later."),
        (_topk_wrong_dim, "The top k were taken over the wrong axis: filter each row over the "
                          "vocabulary, dim=-1."),
    ],
))

# --------------------------------------------------------------------------- 03.4 KV cache


def _cache_cases(rng: torch.Generator):
    def r(*shape):
        return torch.randn(*shape, generator=rng)

    yield Case((r(1, 2, 4, 8), r(1, 2, 4, 8), r(1, 2, 4, 8), None, None),
               label="the prompt: 4 tokens, nothing cached yet")
    yield Case((r(1, 2, 1, 8), r(1, 2, 1, 8), r(1, 2, 1, 8), r(1, 2, 5, 8), r(1, 2, 5, 8)),
               label="one new token after 5 cached")
    yield Case((r(2, 3, 1, 4), r(2, 3, 1, 4), r(2, 3, 1, 4), r(2, 3, 2, 4), r(2, 3, 2, 4)),
               label="batch of 2, 3 heads, one new token after 2")
    yield Case((r(2, 2, 3, 4), r(2, 2, 3, 4), r(2, 2, 3, 4), r(2, 2, 4, 4), r(2, 2, 4, 4)),
               label="3 new tokens after 4 cached (they must not see each other's future)")
    yield Case((r(1, 4, 1, 2), r(1, 4, 1, 2), r(1, 4, 1, 2), r(1, 4, 9, 2), r(1, 4, 9, 2)),
               label="one new token after 9 cached")


def _cat(past, new, dim=-2, prepend=False):
    if past is None:
        return new
    return torch.cat([new, past] if prepend else [past, new], dim=dim)


def _cache_top_left_causal(q, k_new, v_new, past_k=None, past_v=None):
    k, v = _cat(past_k, k_new), _cat(past_v, v_new)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=q.shape[-2] > 1)
    return out, k, v


def _cache_no_mask(q, k_new, v_new, past_k=None, past_v=None):
    k, v = _cat(past_k, k_new), _cat(past_v, v_new)
    return F.scaled_dot_product_attention(q, k, v), k, v


def _cache_ignored(q, k_new, v_new, past_k=None, past_v=None):
    return gpt.causal_attention(q, k_new, v_new), _cat(past_k, k_new), _cat(past_v, v_new)


def _cache_prepend(q, k_new, v_new, past_k=None, past_v=None):
    k, v = _cat(past_k, k_new, prepend=True), _cat(past_v, v_new, prepend=True)
    return F.scaled_dot_product_attention(q, k, v), k, v


def _cache_not_updated(q, k_new, v_new, past_k=None, past_v=None):
    out, _, _ = gpt.attend_with_cache(q, k_new, v_new, past_k, past_v)
    return out, (k_new if past_k is None else past_k), (v_new if past_v is None else past_v)


register(Exercise(
    id="03.4", title="one KV-cache step", reference=gpt.attend_with_cache, cases=_cache_cases,
    hint="k = torch.cat([past_k, k_new], dim=-2) (or k_new when past_k is None), the same for v; "
         "then attend q over all of k, v with causal_mask_with_past(q_len, k_len - q_len); "
         "return (output, k, v).",
    mistakes=[
        (_cache_top_left_causal, "is_causal=True aligns the triangle to the top-left, so new "
                                 "tokens cannot see most of the cache: the mask must be "
                                 "causal_mask_with_past(query_len, past_len)."),
        (_cache_no_mask, "Several new tokens at once must not see each other's future: apply "
                         "causal_mask_with_past(query_len, past_len)."),
        (_cache_ignored, "The output ignores the cache: attend over the cached keys and values "
                         "*and* the new ones."),
        (_cache_prepend, "The new keys and values go *after* the cached ones (torch.cat([past, "
                         "new], dim=-2)): the cache must stay in position order."),
        (_cache_not_updated, "Return the updated cache (past + new keys and values), or the "
                             "next step will have lost this token."),
    ],
))
