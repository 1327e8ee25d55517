"""Known-wrong answers to lesson 02's exercises: the grader must reject each, saying why.

Written here, independently of the grader's own list of mistakes, so a grader that stops
recognising one of them fails this test.
"""

import math

import pytest
import torch

from course_utils.attention import multi_head_attention
from course_utils.grading import get_exercise, run_exercise


def _verdict(ex_id, fn):
    return run_exercise(get_exercise(ex_id), fn)


# ---- 02.1 split heads
def split_view_only(x, num_heads):
    b, s, d = x.shape
    return x.view(b, num_heads, s, d // num_heads)


def split_no_transpose(x, num_heads):
    b, s, d = x.shape
    return x.reshape(b, s, num_heads, -1)


def split_strided(x, num_heads):
    b, s, d = x.shape
    return torch.stack([x[..., h::num_heads] for h in range(num_heads)], dim=1)


def split_wrong_transpose(x, num_heads):
    b, s, d = x.shape
    return x.view(b, s, num_heads, d // num_heads).transpose(2, 3)


def split_ok(x, num_heads):
    b, s, d = x.shape
    return torch.stack(x.chunk(num_heads, dim=-1), dim=1)


# ---- 02.2 merge heads
def merge_wrong_order(x):
    b, h, s, d_k = x.shape
    return x.contiguous().view(b, s, h * d_k)


def merge_interleaved(x):
    return x.permute(0, 2, 3, 1).flatten(2)


def merge_by_sum(x):
    return x.sum(1)


def merge_view_after_transpose(x):
    b, h, s, d_k = x.shape
    return x.transpose(1, 2).view(b, s, h * d_k)


def merge_ok(x):
    return torch.cat(x.unbind(1), dim=-1)


# ---- 02.3 MHA forward
def _project(x, p, name):
    return x @ p[f"W_{name}"].T + p[f"b_{name}"]


def mha(Q, K, V, p, num_heads, mask=None, split=split_ok, w_o=True, scale_by="d_k",
        average=False):
    q, k, v = (split(_project(t, p, n), num_heads) for t, n in ((Q, "q"), (K, "k"), (V, "v")))
    d = q.shape[-1] if scale_by == "d_k" else Q.shape[-1]
    scores = q @ k.transpose(-1, -2) / math.sqrt(d)
    if mask is not None:
        scores = scores.masked_fill((mask[:, None] if mask.dim() == 3 else mask) == 0, -1e9)
    weights = torch.softmax(scores, -1)
    merged = merge_ok(weights @ v)
    out = merged @ p["W_o"].T + p["b_o"] if w_o else merged
    return out, weights.mean(1) if average else weights


def mha_forgets_w_o(Q, K, V, p, num_heads, mask=None):
    return mha(Q, K, V, p, num_heads, mask, w_o=False)


def mha_view_without_transpose(Q, K, V, p, num_heads, mask=None):
    return mha(Q, K, V, p, num_heads, mask, split=split_view_only)


def mha_scaled_by_d_model(Q, K, V, p, num_heads, mask=None):
    return mha(Q, K, V, p, num_heads, mask, scale_by="d_model")


def mha_head_averaged(Q, K, V, p, num_heads, mask=None):
    return mha(Q, K, V, p, num_heads, mask, average=True)


def mha_query_weights_everywhere(Q, K, V, p, num_heads, mask=None):
    same = {**p, "W_k": p["W_q"], "b_k": p["b_q"], "W_v": p["W_q"], "b_v": p["b_q"]}
    return mha(Q, K, V, same, num_heads, mask)


def mha_mask_dropped(Q, K, V, p, num_heads, mask=None):
    return mha(Q, K, V, p, num_heads)


def split_heads_and_dk_swapped(x, num_heads):
    b, s, d = x.shape
    return x.view(b, s, d // num_heads, num_heads).transpose(1, 2)


def split_permute_wrong(x, num_heads):
    b, s, d = x.shape
    return x.view(b, s, num_heads, d // num_heads).permute(0, 2, 3, 1)


def split_cast_to_float(x, num_heads):
    b, s, d = x.shape
    return x.float().view(b, s, num_heads, d // num_heads).transpose(1, 2)


def merge_heads_first_then_flatten(x):
    return x.flatten(1, 2)


def merge_transpose_only(x):
    return x.transpose(1, 2)


def merge_mean(x):
    return x.mean(dim=1)


def merge_ok_permute(x):
    b, h, s, d_k = x.shape
    return x.permute(0, 2, 1, 3).reshape(b, s, -1)


def mha_neg_inf(Q, K, V, p, num_heads, mask=None):
    q, k, v = (split_ok(_project(t, p, n), num_heads) for t, n in ((Q, "q"), (K, "k"), (V, "v")))
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        m = mask[:, None] if mask.dim() == 3 else mask
        scores = scores.masked_fill(m == 0, float("-inf"))
    w = torch.softmax(scores, -1)
    return merge_ok(w @ v) @ p["W_o"].T + p["b_o"], w


def mha_mask_after_softmax(Q, K, V, p, num_heads, mask=None):
    q, k, v = (split_ok(_project(t, p, n), num_heads) for t, n in ((Q, "q"), (K, "k"), (V, "v")))
    w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1)
    if mask is not None:
        w = w * (mask[:, None] if mask.dim() == 3 else mask)
        w = w / w.sum(-1, keepdim=True)
    return merge_ok(w @ v) @ p["W_o"].T + p["b_o"], w


def mha_mask_not_unsqueezed(Q, K, V, p, num_heads, mask=None):
    q, k, v = (split_ok(_project(t, p, n), num_heads) for t, n in ((Q, "q"), (K, "k"), (V, "v")))
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(mask == 0, -1e9)
    w = torch.softmax(scores, -1)
    return merge_ok(w @ v) @ p["W_o"].T + p["b_o"], w


def mha_precomputed_causal_16(Q, K, V, p, num_heads, mask=None):
    if mask is not None and mask.dim() == 2:
        tri = torch.ones(16, 16).tril()
        n = mask.shape[-1]
        mask = tri[:n, :n] if n <= 16 else torch.cat(
            [tri, torch.ones(16, n - 16)], 1).repeat(n // 16 + 1, 1)[:n, :n]
    return mha(Q, K, V, p, num_heads, mask)


def mha_reference_module(Q, K, V, p, num_heads, mask=None):
    from course_utils.attention import MultiHeadAttention

    m = MultiHeadAttention(Q.shape[-1], num_heads)
    with torch.no_grad():
        for n in "qkvo":
            getattr(m, f"W_{n}").weight.copy_(p[f"W_{n}"])
            getattr(m, f"W_{n}").bias.copy_(p[f"b_{n}"])
        return m(Q, K, V, mask)


# ---- 02.4 cross-attention (learners call the course's multi_head_attention, as the lesson does)
def ca_ok(x, memory, params, num_heads, src_attention_mask=None):
    mask = None if src_attention_mask is None else (src_attention_mask != 0)[:, None, :]
    return multi_head_attention(x, memory, memory, params, num_heads, mask)


def ca_keys_from_decoder(x, memory, params, num_heads, src_attention_mask=None):
    return multi_head_attention(x, x, x, params, num_heads)


def ca_keys_from_decoder_values_from_memory(x, memory, params, num_heads,
                                            src_attention_mask=None):
    return multi_head_attention(x, x, memory, params, num_heads)


def ca_no_mask(x, memory, params, num_heads, src_attention_mask=None):
    return multi_head_attention(x, memory, memory, params, num_heads)


def ca_mask_on_query_axis(x, memory, params, num_heads, src_attention_mask=None):
    if src_attention_mask is None:
        return multi_head_attention(x, memory, memory, params, num_heads)
    T, S = x.shape[1], memory.shape[1]
    m = src_attention_mask.bool()
    rows = m[:, :T] if T <= S else torch.cat([m, m[:, -1:].expand(-1, T - S)], 1)
    return multi_head_attention(x, memory, memory, params, num_heads,
                                rows[:, :, None].expand(-1, T, S))


def ca_causal_too(x, memory, params, num_heads, src_attention_mask=None):
    T, S = x.shape[1], memory.shape[1]
    mask = torch.ones(T, S).tril().bool()
    if src_attention_mask is not None:
        mask = mask & (src_attention_mask != 0)[:, None, :]
    return multi_head_attention(x, memory, memory, params, num_heads, mask)


def ca_mask_inverted(x, memory, params, num_heads, src_attention_mask=None):
    mask = None if src_attention_mask is None else (src_attention_mask == 0)[:, None, :]
    return multi_head_attention(x, memory, memory, params, num_heads, mask)


def ca_2d_mask(x, memory, params, num_heads, src_attention_mask=None):
    return multi_head_attention(x, memory, memory, params, num_heads, src_attention_mask)


def ca_swapped(x, memory, params, num_heads, src_attention_mask=None):
    return multi_head_attention(memory, x, x, params, num_heads)


# ---- 02.5 decoder layer
def _ln(h, n):
    return torch.nn.functional.layer_norm(h, h.shape[-1:], n["weight"], n["bias"])


def _ff(h, q, act=torch.relu):
    return act(h @ q["linear1.weight"].T + q["linear1.bias"]) @ q["linear2.weight"].T \
        + q["linear2.bias"]


def dec(x, memory, p, num_heads, src_attention_mask=None, causal=True, cross_kv="memory",
        src_mask=True, order="sca", style="post", act=torch.relu):
    T = x.shape[1]
    key_mask = (None if src_attention_mask is None or not src_mask
                else (src_attention_mask != 0)[:, None, :])
    subs = {
        "s": lambda h: multi_head_attention(h, h, h, p["self_attn"], num_heads,
                                            torch.ones(T, T).tril() if causal else None)[0],
        "c": lambda h: multi_head_attention(h, memory if cross_kv == "memory" else h,
                                            memory if cross_kv == "memory" else h,
                                            p["cross_attn"], num_heads,
                                            key_mask if cross_kv == "memory" else None)[0],
        "a": lambda h: _ff(h, p["ff"], act),
    }
    for i, name in enumerate(order, start=1):
        n = p[f"norm{i}"]
        if style == "post":
            x = _ln(x + subs[name](x), n)
        elif style == "pre":
            x = x + subs[name](_ln(x, n))
        elif style == "sum after norm":
            x = x + _ln(subs[name](x), n)
        else:  # no residual at all
            x = _ln(subs[name](x), n)
    return x


def dec_ok(x, memory, p, num_heads, src_attention_mask=None):
    return dec(x, memory, p, num_heads, src_attention_mask)


def dec_ok_via_course_pieces(x, memory, p, num_heads, src_attention_mask=None):
    from course_utils.transformer import cross_attention, feed_forward, layer_norm

    sa, _ = multi_head_attention(x, x, x, p["self_attn"], num_heads,
                                 torch.ones(x.shape[1], x.shape[1], dtype=torch.bool).tril())
    x = layer_norm(x + sa, p["norm1"])
    x = layer_norm(x + cross_attention(x, memory, p["cross_attn"], num_heads,
                                       src_attention_mask)[0], p["norm2"])
    return layer_norm(x + feed_forward(x, p["ff"]), p["norm3"])


def dec_not_causal(x, memory, p, num_heads, src_attention_mask=None):
    return dec(x, memory, p, num_heads, src_attention_mask, causal=False)


def dec_cross_keys_from_decoder(x, memory, p, num_heads, src_attention_mask=None):
    return dec(x, memory, p, num_heads, src_attention_mask, cross_kv="x")


def dec_cross_before_self(x, memory, p, num_heads, src_attention_mask=None):
    return dec(x, memory, p, num_heads, src_attention_mask, order="csa")


def dec_pre_norm(x, memory, p, num_heads, src_attention_mask=None):
    return dec(x, memory, p, num_heads, src_attention_mask, style="pre")


def dec_sum_after_norm(x, memory, p, num_heads, src_attention_mask=None):
    return dec(x, memory, p, num_heads, src_attention_mask, style="sum after norm")


def dec_no_residual(x, memory, p, num_heads, src_attention_mask=None):
    return dec(x, memory, p, num_heads, src_attention_mask, style="none")


def dec_no_src_mask(x, memory, p, num_heads, src_attention_mask=None):
    return dec(x, memory, p, num_heads, src_attention_mask, src_mask=False)


def dec_gelu(x, memory, p, num_heads, src_attention_mask=None):
    return dec(x, memory, p, num_heads, src_attention_mask, act=torch.nn.functional.gelu)


def dec_causal_cross_too(x, memory, p, num_heads, src_attention_mask=None):
    T, S = x.shape[1], memory.shape[1]
    sa = multi_head_attention(x, x, x, p["self_attn"], num_heads, torch.ones(T, T).tril())[0]
    x = _ln(x + sa, p["norm1"])
    mask = torch.ones(T, S).tril().bool()
    if src_attention_mask is not None:
        mask = mask & (src_attention_mask != 0)[:, None, :]
    x = _ln(x + multi_head_attention(x, memory, memory, p["cross_attn"], num_heads, mask)[0],
            p["norm2"])
    return _ln(x + _ff(x, p["ff"]), p["norm3"])


# ---- 02.6 greedy decoding
def gd(model, src, bos_id, eos_id, pad_id, max_new_tokens, pad_done=True, until="all",
       first=None, strip=True, feed_all=True, at=-1, pad_with=None, n_steps=None):
    out = torch.full((src.shape[0], 1), bos_id if first is None else first, dtype=torch.long)
    done = torch.zeros(src.shape[0], dtype=torch.bool)
    for _ in range(max_new_tokens if n_steps is None else n_steps(max_new_tokens)):
        nxt = model(src, out if feed_all else out[:, -1:])[:, at].argmax(-1)
        if pad_done:
            nxt[done] = pad_id if pad_with is None else pad_with
        out = torch.cat([out, nxt.unsqueeze(1)], 1)
        done |= nxt == eos_id
        if until == "all" and done.all() or until == "any" and done.any():
            break
    return out[:, 1:] if strip else out


def gd_ok_python_lists(model, src, bos_id, eos_id, pad_id, max_new_tokens):
    rows = [[bos_id] for _ in range(len(src))]
    for _ in range(max_new_tokens):
        if all(eos_id in r[1:] for r in rows):
            break
        logits = model(src, torch.tensor(rows))
        for b, r in enumerate(rows):
            r.append(pad_id if eos_id in r[1:] else int(logits[b, -1].argmax()))
    return torch.tensor([r[1:] for r in rows], dtype=torch.long)


def gd_keeps_going(model, src, bos_id, eos_id, pad_id, max_new_tokens):
    return gd(model, src, bos_id, eos_id, pad_id, max_new_tokens, pad_done=False)


def gd_runs_to_max(model, src, bos_id, eos_id, pad_id, max_new_tokens):
    return gd(model, src, bos_id, eos_id, pad_id, max_new_tokens, until="never")


def gd_stops_at_first_eos(model, src, bos_id, eos_id, pad_id, max_new_tokens):
    return gd(model, src, bos_id, eos_id, pad_id, max_new_tokens, until="any")


def gd_starts_with_eos(model, src, bos_id, eos_id, pad_id, max_new_tokens):
    return gd(model, src, bos_id, eos_id, pad_id, max_new_tokens, first=eos_id)


def gd_returns_start_token(model, src, bos_id, eos_id, pad_id, max_new_tokens):
    return gd(model, src, bos_id, eos_id, pad_id, max_new_tokens, strip=False)


def gd_feeds_last_token(model, src, bos_id, eos_id, pad_id, max_new_tokens):
    return gd(model, src, bos_id, eos_id, pad_id, max_new_tokens, feed_all=False)


def gd_first_position(model, src, bos_id, eos_id, pad_id, max_new_tokens):
    return gd(model, src, bos_id, eos_id, pad_id, max_new_tokens, at=0)


def gd_pads_with_zero(model, src, bos_id, eos_id, pad_id, max_new_tokens):
    return gd(model, src, bos_id, eos_id, pad_id, max_new_tokens, pad_with=0)


def gd_off_by_one(model, src, bos_id, eos_id, pad_id, max_new_tokens):
    return gd(model, src, bos_id, eos_id, pad_id, max_new_tokens, n_steps=lambda n: n - 1)


def gd_scalar_eos_test(model, src, bos_id, eos_id, pad_id, max_new_tokens):
    out = torch.full((src.shape[0], 1), bos_id)
    for _ in range(max_new_tokens):
        nxt = model(src, out)[:, -1].argmax(-1)
        out = torch.cat([out, nxt[:, None]], 1)
        if nxt == eos_id:
            break
    return out[:, 1:]


@pytest.mark.parametrize("ex_id, wrong, why", [
    ("02.1", split_view_only, "without the transpose"),
    ("02.1", split_view_only, "mixing tokens across heads"),
    ("02.1", split_no_transpose, "still after the sequence axis"),
    ("02.1", split_strided, "every num_heads-th feature"),
    ("02.1", split_wrong_transpose, "shape"),
    ("02.2", merge_wrong_order, "wrong order"),
    ("02.2", merge_interleaved, "interleaved"),
    ("02.2", merge_by_sum, "you summed"),
    ("02.2", merge_view_after_transpose, "view size is not compatible"),
    ("02.3", mha_forgets_w_o, "forgot W_o"),
    ("02.3", mha_view_without_transpose, "without the transpose"),
    ("02.3", mha_scaled_by_d_model, "not sqrt(d_model)"),
    ("02.3", mha_head_averaged, "not their average"),
    ("02.3", mha_query_weights_everywhere, "W_k for K"),
    ("02.3", mha_mask_dropped, "mask was ignored"),
    ("02.1", split_heads_and_dk_swapped, "shape"),
    ("02.1", split_permute_wrong, "axes are in the wrong order"),
    ("02.1", split_cast_to_float, "dtype torch.float32"),
    ("02.2", merge_heads_first_then_flatten, "shape"),
    ("02.2", merge_transpose_only, "still have their own axis"),
    ("02.2", merge_mean, "you averaged"),
    ("02.3", mha_neg_inf, "-1e9"),
    ("02.3", mha_mask_after_softmax, "-1e9"),
    ("02.3", mha_mask_not_unsqueezed, "unsqueeze"),
    ("02.3", mha_precomputed_causal_16, "case 7 of"),
    ("02.4", ca_keys_from_decoder, "keys and values come from the decoder"),
    ("02.4", ca_keys_from_decoder_values_from_memory, "Padded source positions get attention"),
    ("02.4", ca_no_mask, "source padding mask was ignored"),
    ("02.4", ca_mask_on_query_axis, "Padded source positions get attention"),
    ("02.4", ca_causal_too, "no causal mask"),
    ("02.4", ca_mask_inverted, "mask is inverted"),
    ("02.4", ca_2d_mask, "does not broadcast to the scores' shape"),
    ("02.4", ca_swapped, "Queries and keys are swapped"),
    ("02.5", dec_not_causal, "causal_mask(T)"),
    ("02.5", dec_cross_keys_from_decoder, "come from memory"),
    ("02.5", dec_cross_before_self, "wrong order"),
    ("02.5", dec_pre_norm, "That is pre-norm"),
    ("02.5", dec_sum_after_norm, "added after the norm"),
    ("02.5", dec_no_residual, "residual connection is missing"),
    ("02.5", dec_no_src_mask, "source padding mask was not passed"),
    ("02.5", dec_gelu, "not GELU"),
    ("02.5", dec_causal_cross_too, "Post-norm, three sub-layers"),
    ("02.6", gd_keeps_going, "Finished rows keep generating"),
    ("02.6", gd_runs_to_max, "always runs max_new_tokens steps"),
    ("02.6", gd_stops_at_first_eos, "stops when the first row finishes"),
    ("02.6", gd_starts_with_eos, "start from bos_id"),
    ("02.6", gd_returns_start_token, "drop the start token"),
    ("02.6", gd_feeds_last_token, "needs the whole prefix"),
    ("02.6", gd_first_position, "logits at the last position"),
    ("02.6", gd_pads_with_zero, "padded with pad_id"),
    ("02.6", gd_off_by_one, "One step short"),
    ("02.6", gd_scalar_eos_test, "Boolean value of Tensor"),
])
def test_known_wrong_answer_is_rejected_with_a_specific_message(ex_id, wrong, why):
    result = _verdict(ex_id, wrong)
    assert result.status == "failed", f"{wrong.__name__} passed {ex_id}"
    assert why in result.message, result.message


@pytest.mark.parametrize("ex_id", ["02.1", "02.2", "02.3", "02.4", "02.5", "02.6"])
def test_reference_is_accepted(ex_id):
    assert _verdict(ex_id, get_exercise(ex_id).reference).passed


def test_other_correct_answers_are_accepted_too():
    assert _verdict("02.1", split_ok).passed
    assert _verdict("02.2", merge_ok).passed
    assert _verdict("02.3", mha).passed
    assert _verdict("02.2", merge_ok_permute).passed
    assert _verdict("02.3", mha_reference_module).passed
    assert _verdict("02.4", ca_ok).passed
    assert _verdict("02.5", dec_ok).passed
    assert _verdict("02.5", dec_ok_via_course_pieces).passed
    assert _verdict("02.6", gd_ok_python_lists).passed


def test_the_shown_decoder_layer_solution_is_the_library_layer():
    from course_utils.transformer import decoder_layer

    ex = get_exercise("02.5")
    assert ex.reference is not decoder_layer
    for case in ex.cases(torch.Generator().manual_seed(ex.seed)):
        torch.testing.assert_close(ex.reference(*case.args), decoder_layer(*case.args))


def test_every_case_says_what_it_catches_and_every_mistake_runs_on_every_case():
    for ex_id in ["02.1", "02.2", "02.3", "02.4", "02.5", "02.6"]:
        ex = get_exercise(ex_id)
        cases = list(ex.cases(torch.Generator().manual_seed(ex.seed)))
        assert len(cases) >= 6
        for case in cases:
            assert case.label and case.catches, (ex_id, case)
            for wrong, _ in ex.mistakes:
                wrong(*case.args, **case.kwargs)  # raises if a mistake can't run on a case


def test_a_learner_who_mutates_the_scripted_model_is_caught():
    def greedy_that_mutates(model, src, bos_id, eos_id, pad_id, max_new_tokens):
        model.eos_id = pad_id
        return get_exercise("02.6").reference(model, src, bos_id, eos_id, pad_id,
                                              max_new_tokens)

    result = _verdict("02.6", greedy_that_mutates)
    assert result.status == "failed" and "changed its input `model`" in result.message
