"""Lesson 09 exercises: int8 and int4 weight quantization, the distillation loss, and the greedy
verification step of speculative decoding."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from course_utils.distillation import distillation_loss
from course_utils.grading.compare import compare
from course_utils.grading.core import Case, Exercise, register
from course_utils.quantization import quantize_int4, quantize_int8, unpack_int4
from course_utils.speculative import verify_greedy


def _randn(rng: torch.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=rng) * scale


def _close_ints(got, expected, path: str) -> str | None:
    """Integers equal, except a rounding tie flipped by a different but exact formula (rare)."""
    msg = compare(got, expected, atol=1.0, rtol=0.0, path=path)
    if msg:
        return msg
    off = got.long() != expected.long()
    if off.float().mean() > 1e-3:
        idx = [int(i) for i in torch.nonzero(off)[0]]
        return (f"{path} differs at {off.sum().item()} of {off.numel()} entries, e.g. at index "
                f"{idx} you have {got[tuple(idx)].item()}, expected "
                f"{expected[tuple(idx)].item()}.")
    return None


def _pair(got, names: str) -> str | None:
    if not isinstance(got, tuple | list) or len(got) != 2:
        what = type(got).__name__ if not isinstance(got, tuple | list) else f"{len(got)} items"
        return f"return the pair ({names}), but your function returned {what}."
    return None


def _scales_where_used(got, expected, q, path: str) -> str | None:
    """Scales must match where they matter; an all-zero row/group may have any usable scale."""
    if isinstance(got, torch.Tensor):  # first the type, shape and dtype only
        msg = compare(got.detach().nan_to_num(0.0), expected, atol=float("inf"), path=path)
    else:
        msg = compare(got, expected, path=path)
    if msg:
        return msg
    g, e = got.detach().double().nan_to_num(0.0), expected.detach().double()
    used = q.reshape(*e.shape, -1).ne(0).any(-1)
    unusable = not torch.isfinite(g[~used]).all() or bool((g[~used] <= 0).any())
    # (when diagnosing, ``expected`` is a known mistake's answer: the same unusable scale agrees)
    if unusable and not torch.equal(g[~used], e.nan_to_num(0.0)[~used]):
        return (f"{path} of an all-zero row or group is {g[~used].flatten()[:1].item()}; it "
                f"must stay a usable positive number (dividing by 0 gives NaN): use 1.0.")
    return compare(g[used], e[used], atol=1e-8, rtol=1e-5, path=path)


# ---------------------------------------------------------------- 09.1 int8 per output channel


def _int8_cases(rng: torch.Generator):
    yield Case((torch.tensor([[0.5, -1.0, 0.25], [2.0, 1.0, -0.5]]),),
               label="two rows of 3",
               catches="the scale not being the row's absolute maximum over 127")
    yield Case((_randn(rng, 6, 40) * torch.logspace(-4, 3, 6)[:, None],),
               label="rows from 1e-4 to 1e3",
               catches="one scale for the whole tensor, which rounds the small rows to 0")
    w = _randn(rng, 5, 16).abs()
    w[:, 3] = -4.0
    yield Case((w,), label="each row's largest weight is negative",
               catches="max instead of absmax for the scale")
    z = _randn(rng, 4, 12)
    z[2] = 0.0
    yield Case((z,), label="an all-zero row",
               catches="dividing by a zero scale (NaN)")
    yield Case((_randn(rng, 1, 64, scale=0.02),), label="a single row",
               catches="reducing over the wrong axis")
    yield Case((_randn(rng, 7, 1),), label="a single input column (out=7, in=1)",
               catches="reducing over the wrong axis")
    o = _randn(rng, 32, 48, scale=0.05)
    o[5, 9] = 6.0
    yield Case((o,), label="one outlier weight",
               catches="a per-tensor scale, 255 levels instead of 127")
    yield Case((_randn(rng, 480, 160, scale=0.03),),
               label="GPT-2 c_attn size (480 x 160)",
               catches="floor or truncation instead of rounding, on many values")
    p = torch.nn.Linear(24, 10).weight
    yield Case((p,), label="a layer's weight as passed: an nn.Parameter requiring grad",
               catches="arithmetic that fails on a Parameter")
    for _ in range(3):
        out, n_in = (int(torch.randint(2, 40, (1,), generator=rng)) for _ in range(2))
        yield Case((_randn(rng, out, n_in, scale=10 ** float(torch.rand(1, generator=rng) * 4
                                                            - 2)),),
                   label=f"random {out} x {n_in}", catches="any slip, on random sizes")


def _int8_compare(got, expected, case: Case):
    msg = _pair(got, "q, scale")
    if msg:
        return msg
    return _close_ints(got[0], expected[0], "q") or _scales_where_used(
        got[1], expected[1], expected[0], "scale")


def _i8_per_tensor(weight):
    w = weight.detach().float()
    scale = w.abs().max() / 127
    return torch.clamp(torch.round(w / scale), -127, 127).to(torch.int8), scale


def _i8_255(weight):
    w = weight.detach().float()
    scale = w.abs().amax(dim=1, keepdim=True) / 255
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return torch.clamp(torch.round(w / scale), -127, 127).to(torch.int8), scale


def _i8_floor(weight):
    w = weight.detach().float()
    q, scale = quantize_int8(w)
    return torch.clamp(torch.floor(w / scale), -127, 127).to(torch.int8), scale


def _i8_trunc(weight):
    w = weight.detach().float()
    q, scale = quantize_int8(w)
    return torch.clamp(w / scale, -127, 127).to(torch.int8), scale


def _i8_max(weight):
    w = weight.detach().float()
    scale = w.amax(dim=1, keepdim=True) / 127
    return torch.clamp(torch.round(w / scale), -127, 127).to(torch.int8), scale


def _i8_columns(weight):
    w = weight.detach().float()
    scale = w.abs().amax(dim=0, keepdim=True) / 127
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return torch.clamp(torch.round(w / scale), -127, 127).to(torch.int8), scale


def _i8_128(weight):
    w = weight.detach().float()
    scale = w.abs().amax(dim=1, keepdim=True) / 128
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return torch.clamp(torch.round(w / scale), -128, 127).to(torch.int8), scale


register(Exercise(
    id="09.1", title="int8 per-channel weight quantization", reference=quantize_int8,
    cases=_int8_cases, compare=_int8_compare,
    hint="Work on weight.detach().float(). One scale per ROW (output channel): "
         "scale = weight.abs().amax(dim=1, keepdim=True) / 127, with 1.0 where a row is all "
         "zero. Then q = torch.clamp(torch.round(weight / scale), -127, 127).to(torch.int8). "
         "Return (q, scale): q int8 (out, in), scale float32 (out, 1).",
    mistakes=[
        (_i8_per_tensor, "That is ONE scale for the whole tensor: the rows of small weights are "
                         "rounded to 0. Take the absolute maximum of each row: "
                         "amax(dim=1, keepdim=True)."),
        (_i8_255, "int8 holds -127 .. 127 on each side of 0: divide the absolute maximum by "
                  "127, not 255 (255 is the number of levels of an unsigned byte)."),
        (_i8_floor, "floor() always rounds down (towards -inf): use torch.round so the error is "
                    "at most half a step."),
        (_i8_trunc, "Casting with .to(torch.int8) cuts the fraction off (towards 0) instead of "
                    "rounding: call torch.round first."),
        (_i8_max, "The scale must come from the ABSOLUTE maximum (weight.abs()): a row whose "
                  "largest weight is negative would get a negative or tiny scale."),
        (_i8_columns, "Your scales are per input column (dim=0). The output channels are the "
                      "rows of an (out, in) weight: reduce over dim=1."),
        (_i8_128, "Symmetric int8 uses -127 .. 127 with scale = absmax / 127; dividing by 128 "
                  "and clamping at -128 is a different (asymmetric) grid."),
    ],
))

# ---------------------------------------------------------------- 09.2 int4, group-wise, packed


def _int4_cases(rng: torch.Generator):
    yield Case((torch.tensor([[7.0, -7.0, 1.0, 0.0, -3.0, 2.0, 5.0, -1.0]]),),
               {"group_size": 8}, label="one group of 8 that needs no rounding",
               catches="nibbles in the wrong order, or no +8 offset for negative values")
    two = torch.cat([_randn(rng, 3, 4, scale=100.0), _randn(rng, 3, 4, scale=0.01)], dim=1)
    yield Case((two,), {"group_size": 4}, label="two groups of very different magnitude",
               catches="one scale per row instead of one per group")
    yield Case((_randn(rng, 160, 640, scale=0.02),), {"group_size": 32},
               label="GPT-2 MLP c_proj size (160 x 640), groups of 32",
               catches="groups taken with a stride instead of consecutive inputs")
    yield Case((_randn(rng, 9, 128),), {"group_size": 64}, label="groups of 64",
               catches="a hard-coded group size")
    neg = _randn(rng, 4, 16).abs()
    neg[:, ::8] = -5.0
    yield Case((neg,), {"group_size": 8}, label="each group's largest weight is negative",
               catches="max instead of absmax")
    z = _randn(rng, 3, 32)
    z[1, 8:16] = 0.0
    yield Case((z,), {"group_size": 8}, label="an all-zero group",
               catches="a zero scale (NaN)")
    yield Case((_randn(rng, 5, 6),), {"group_size": 2}, label="groups of 2",
               catches="packing a column with the one half a row away")
    for _ in range(3):
        gs = (2, 4, 8, 16)[int(torch.randint(0, 4, (1,), generator=rng))]
        out, groups = (int(torch.randint(1, 12, (1,), generator=rng)) for _ in range(2))
        yield Case((_randn(rng, out, groups * gs),), {"group_size": gs},
                   label=f"random {out} x {groups * gs}, groups of {gs}",
                   catches="any slip, on random sizes")


def _int4_compare(got, expected, case: Case):
    msg = _pair(got, "packed, scales")
    if msg:
        return msg
    packed, scales = got
    msg = compare(packed, expected[0], atol=float("inf"), path="packed")
    if msg:
        return msg
    q = unpack_int4(expected[0])
    return (_close_ints(unpack_int4(packed), q, "the unpacked 4-bit values")
            or _scales_where_used(scales, expected[1], q, "scales"))


def _groups(w, gs):
    return w.reshape(w.shape[0], w.shape[1] // gs, gs)


def _pack(q):
    u = (q + 8).to(torch.uint8)
    return u[:, 0::2] | (u[:, 1::2] << 4)


def _safe(s):
    return torch.where(s > 0, s, torch.ones_like(s))


def _i4_per_row(weight, group_size=32):
    w = weight.detach().float()
    scale = _safe(w.abs().amax(dim=1, keepdim=True) / 7)
    return _pack(torch.clamp(torch.round(w / scale), -7, 7)), scale


def _i4_strided(weight, group_size=32):
    w = weight.detach().float()
    out, n = w.shape
    g = w.reshape(out, group_size, n // group_size)  # every (n // gs)-th input in one group
    scales = _safe(g.abs().amax(dim=1) / 7)
    q = torch.clamp(torch.round(g / scales[:, None, :]), -7, 7).reshape(out, n)
    return _pack(q), scales


def _i4_swapped(weight, group_size=32):
    w = weight.detach().float()
    _, scales = quantize_int4(w, group_size)
    q = torch.clamp(torch.round(_groups(w, group_size) / scales[..., None]), -7, 7)
    u = (q.reshape(w.shape) + 8).to(torch.uint8)
    return (u[:, 0::2] << 4) | u[:, 1::2], scales


def _i4_no_offset(weight, group_size=32):
    w = weight.detach().float()
    _, scales = quantize_int4(w, group_size)
    q = torch.clamp(torch.round(_groups(w, group_size) / scales[..., None]), -7, 7)
    q = q.reshape(w.shape).to(torch.int16)
    return ((q[:, 0::2] & 0xF) | ((q[:, 1::2] & 0xF) << 4)).to(torch.uint8), scales


def _i4_fifteen(weight, group_size=32):
    w = weight.detach().float()
    scales = _safe(_groups(w, group_size).abs().amax(dim=2) / 15)
    q = torch.clamp(torch.round(_groups(w, group_size) / scales[..., None]), -7, 7)
    return _pack(q.reshape(w.shape)), scales


def _i4_floor(weight, group_size=32):
    w = weight.detach().float()
    _, scales = quantize_int4(w, group_size)
    q = torch.clamp(torch.floor(_groups(w, group_size) / scales[..., None]), -7, 7)
    return _pack(q.reshape(w.shape)), scales


def _i4_halves(weight, group_size=32):
    w = weight.detach().float()
    _, scales = quantize_int4(w, group_size)
    q = torch.clamp(torch.round(_groups(w, group_size) / scales[..., None]), -7, 7)
    u = (q.reshape(w.shape) + 8).to(torch.uint8)
    half = w.shape[1] // 2
    return u[:, :half] | (u[:, half:] << 4), scales


register(Exercise(
    id="09.2", title="int4 group-wise quantization, packed", reference=quantize_int4,
    cases=_int4_cases, compare=_int4_compare,
    hint="Reshape the (out, in) weight to (out, in // group_size, group_size): consecutive "
         "inputs form a group. scales = groups.abs().amax(dim=2) / 7 (1.0 for an all-zero "
         "group); q = clamp(round(groups / scales[..., None]), -7, 7). Back to (out, in), add "
         "8 (now 1 .. 15) and cast to torch.uint8; pack column 2j in the low nibble and 2j+1 in "
         "the high one: u[:, 0::2] | (u[:, 1::2] << 4).",
    mistakes=[
        (_i4_per_row, "That is one scale per row: 4 bits are too coarse for that. Use one scale "
                      "per group of group_size consecutive inputs: scales is (out, in // "
                      "group_size)."),
        (_i4_strided, "Your groups take every (in // group_size)-th input: reshape to "
                      "(out, in // group_size, group_size) so that a group is group_size "
                      "CONSECUTIVE inputs."),
        (_i4_swapped, "The nibbles are swapped: the even column goes in the LOW 4 bits, the odd "
                      "column in the high 4 bits (u[:, 0::2] | (u[:, 1::2] << 4))."),
        (_i4_no_offset, "Negative values need the +8 offset before packing (-7 .. 7 becomes "
                        "1 .. 15); masking with & 0xF stores them in two's complement instead."),
        (_i4_fifteen, "The 4-bit grid is -7 .. 7 on each side of 0: divide the group's "
                      "absolute maximum by 7, not 15."),
        (_i4_floor, "floor() always rounds down: use torch.round."),
        (_i4_halves, "A byte holds two NEIGHBOURING columns (2j and 2j + 1), not column j and "
                     "the one half a row away."),
    ],
))

# ---------------------------------------------------------------- 09.3 the distillation loss


def _logits(rng, *shape, scale=3.0):
    return _randn(rng, *shape, scale=scale)


def _labels(rng, b, s, v, pad=()):
    y = torch.randint(0, v, (b, s), generator=rng)
    for row, n in pad:
        y[row, -n:] = -100
    return y


def _distill_cases(rng: torch.Generator):
    yield Case((_logits(rng, 1, 1, 5), _logits(rng, 1, 1, 5), torch.tensor([[2]])),
               {"temperature": 1.0, "alpha": 1.0}, label="one position, T = 1, KL only",
               catches="KL the wrong way round, softmax instead of log-softmax")
    yield Case((_logits(rng, 2, 6, 11), _logits(rng, 2, 6, 11), _labels(rng, 2, 6, 11)),
               {"temperature": 2.0, "alpha": 1.0}, label="T = 2, KL only",
               catches="no T^2, temperature on one side only")
    yield Case((_logits(rng, 3, 7, 13), _logits(rng, 3, 7, 13),
                _labels(rng, 3, 7, 13, pad=((0, 3), (2, 6)))),
               {"temperature": 2.0, "alpha": 0.5}, label="padding (-100) in the labels",
               catches="padding counted in the average")
    s, t = _logits(rng, 2, 5, 9), _logits(rng, 2, 5, 9)
    y = _labels(rng, 2, 5, 9, pad=((1, 2),))
    s[1, -2:], t[1, -2:] = float("nan"), float("nan")
    yield Case((s, t, y), {"temperature": 3.0, "alpha": 0.7},
               label="the padding positions hold NaN logits",
               catches="masking by multiplying with 0 (NaN * 0 is NaN)")
    yield Case((_logits(rng, 2, 4, 7), _logits(rng, 2, 4, 7), _labels(rng, 2, 4, 7)),
               {"temperature": 4.0, "alpha": 0.0}, label="alpha = 0: the next-token loss only",
               catches="alpha on the wrong term, the hard loss on softened logits")
    yield Case((_logits(rng, 2, 4, 7), _logits(rng, 2, 4, 7), _labels(rng, 2, 4, 7)),
               {"temperature": 4.0, "alpha": 0.9}, label="T = 4, alpha = 0.9",
               catches="alpha on the wrong term, no T^2")
    yield Case((_logits(rng, 2, 3, 6, scale=2e3), _logits(rng, 2, 3, 6, scale=2e3),
                _labels(rng, 2, 3, 6)), {"temperature": 1.0, "alpha": 0.5},
               label="logits in the thousands",
               catches="log(softmax(x)) underflowing to -inf where log_softmax does not")
    t = _logits(rng, 2, 4, 8)
    t[..., :3] = float("-inf")
    yield Case((_logits(rng, 2, 4, 8), t, _labels(rng, 2, 4, 8)),
               {"temperature": 2.0, "alpha": 0.5},
               label="the teacher rules tokens out (logits -inf)",
               catches="p * log p giving NaN where p = 0")
    yield Case((_logits(rng, 2, 5, 10).requires_grad_(), _logits(rng, 2, 5, 10).requires_grad_(),
                _labels(rng, 2, 5, 10)), {"temperature": 2.0, "alpha": 0.5},
               label="the teacher's logits carry gradients (computed without no_grad)",
               catches="teacher gradients not stopped")
    yield Case((_logits(rng, 2, 4, 6), _logits(rng, 2, 4, 6), torch.zeros(2, 4, dtype=torch.long)),
               {"temperature": 2.0, "alpha": 0.5}, label="every label is token 0",
               catches="a mask like labels > 0 that drops the falsy id 0")
    yield Case((_logits(rng, 9, 1024), _logits(rng, 9, 1024),
                torch.randint(0, 1024, (9,), generator=rng)),
               {"temperature": 2.0, "alpha": 0.5}, label="2-D logits over course-gpt's 1024 tokens",
               catches="reductions that assume 3-D (batch, seq, vocab) input")
    yield Case((_logits(rng, 1, 1, 3), _logits(rng, 1, 1, 3), torch.tensor([[-100]])),
               {"temperature": 2.0, "alpha": 0.5}, label="no position has a label",
               catches="dividing by zero counted positions (NaN)")
    for _ in range(3):
        b, s, v = (int(torch.randint(1, 6, (1,), generator=rng)) for _ in range(3))
        v += 2
        T = float(torch.randint(1, 6, (1,), generator=rng))
        yield Case((_logits(rng, b, s, v), _logits(rng, b, s, v),
                    _labels(rng, b, s, v, pad=((0, 1),))),
                   {"temperature": T, "alpha": 0.5}, label=f"random {b} x {s} x {v}, T = {T:g}",
                   catches="any slip, on random sizes")


def _grad_leaves(t: torch.Tensor) -> int:
    """How many leaf tensors a result's gradient would flow into."""
    seen, stack, leaves = set(), [t.grad_fn], 0
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        leaves += type(fn).__name__ == "AccumulateGrad"
        stack.extend(f for f, _ in fn.next_functions)
    return leaves


def _distill_compare(got, expected, case: Case):
    if not isinstance(got, torch.Tensor):
        return (f"return the loss as a 0-d torch.Tensor (so that .backward() works), not a "
                f"{type(got).__name__}.")
    msg = compare(got, expected, atol=1e-4, rtol=1e-4, path="the loss")
    if msg:
        return msg
    mine, want = _grad_leaves(got), _grad_leaves(expected)
    if mine > want:
        return ("the value is right, but gradients would flow into teacher_logits too: the "
                "teacher is a fixed target, detach its logits.")
    if mine < want:
        return ("the value is right, but no gradient would reach the student: keep the "
                "computation in torch (no .item(), numpy or .detach() on the student).")
    return None


def _kl_rows(log_p_s, p_t):
    return F.kl_div(log_p_s, p_t, reduction="none").sum(-1)


def _parts(student, teacher, labels, T):
    keep = labels != -100
    return keep, student[keep], teacher[keep].detach()


def _finish(soft, student, labels, keep, alpha):
    hard = F.cross_entropy(student, labels[keep]) if keep.any() else student.sum() * 0.0
    return alpha * soft + (1 - alpha) * hard


def _kd_reverse(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5,
                ignore_index=-100):
    keep, s, t = _parts(student_logits, teacher_logits, labels, temperature)
    kl = F.kl_div(F.log_softmax(t / temperature, -1), F.softmax(s / temperature, -1),
                  reduction="none").sum(-1)
    soft = kl.mean() * temperature**2 if kl.numel() else s.sum() * 0.0
    return _finish(soft, s, labels, keep, alpha)


def _kd_no_t2(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5,
              ignore_index=-100):
    keep, s, t = _parts(student_logits, teacher_logits, labels, temperature)
    kl = _kl_rows(F.log_softmax(s / temperature, -1), F.softmax(t / temperature, -1))
    soft = kl.mean() if kl.numel() else s.sum() * 0.0
    return _finish(soft, s, labels, keep, alpha)


def _kd_softmax_input(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5,
                      ignore_index=-100):
    keep, s, t = _parts(student_logits, teacher_logits, labels, temperature)
    kl = _kl_rows(F.softmax(s / temperature, -1), F.softmax(t / temperature, -1))
    soft = kl.mean() * temperature**2 if kl.numel() else s.sum() * 0.0
    return _finish(soft, s, labels, keep, alpha)


def _kd_no_detach(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5,
                  ignore_index=-100):
    keep = labels != -100
    s, t = student_logits[keep], teacher_logits[keep]
    kl = _kl_rows(F.log_softmax(s / temperature, -1), F.softmax(t / temperature, -1))
    soft = kl.mean() * temperature**2 if kl.numel() else s.sum() * 0.0
    return _finish(soft, s, labels, keep, alpha)


def _kd_padding_counted(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5,
                        ignore_index=-100):
    kl = _kl_rows(F.log_softmax(student_logits / temperature, -1),
                  F.softmax(teacher_logits.detach() / temperature, -1))
    hard = F.cross_entropy(student_logits.flatten(0, -2), labels.flatten(),
                           ignore_index=ignore_index)  # NaN when no position has a label
    return alpha * kl.mean() * temperature**2 + (1 - alpha) * hard


def _kd_student_only(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5,
                     ignore_index=-100):
    keep, s, t = _parts(student_logits, teacher_logits, labels, temperature)
    kl = _kl_rows(F.log_softmax(s / temperature, -1), F.softmax(t, -1))
    soft = kl.mean() * temperature**2 if kl.numel() else s.sum() * 0.0
    return _finish(soft, s, labels, keep, alpha)


def _kd_teacher_only(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5,
                     ignore_index=-100):
    keep, s, t = _parts(student_logits, teacher_logits, labels, temperature)
    kl = _kl_rows(F.log_softmax(s, -1), F.softmax(t / temperature, -1))
    soft = kl.mean() * temperature**2 if kl.numel() else s.sum() * 0.0
    return _finish(soft, s, labels, keep, alpha)


def _kd_batchmean(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5,
                  ignore_index=-100):
    keep = labels != -100
    s = student_logits.masked_fill(~keep[..., None], 0.0)
    t = teacher_logits.detach().masked_fill(~keep[..., None], 0.0)
    soft = F.kl_div(F.log_softmax(s / temperature, -1), F.softmax(t / temperature, -1),
                    reduction="batchmean") * temperature**2
    return _finish(soft, student_logits[keep], labels, keep, alpha)


def _kd_alpha_swapped(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5,
                      ignore_index=-100):
    return distillation_loss(student_logits, teacher_logits, labels, temperature, 1 - alpha)


register(Exercise(
    id="09.3", title="the distillation loss", reference=distillation_loss,
    cases=_distill_cases, compare=_distill_compare,
    hint="Keep the positions with a label: keep = labels != ignore_index; s = "
         "student_logits[keep], t = teacher_logits[keep].detach(). Soft part: "
         "F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction='none').sum(-1)"
         ".mean() * T**2 (KL(teacher || student) per position, averaged). Hard part: "
         "F.cross_entropy(s, labels[keep]). Return alpha * soft + (1 - alpha) * hard; with no "
         "labelled position at all, return 0 (e.g. s.sum() * 0.0).",
    mistakes=[
        (_kd_reverse, "That is KL(student || teacher). The teacher's distribution is the "
                      "target: F.kl_div(log_softmax(student / T), softmax(teacher / T)) takes "
                      "the student's LOG-probabilities first."),
        (_kd_no_t2, "Multiply the KL term by T**2: softening by T shrinks its gradients by "
                    "T**2, and without it the soft term vanishes as T grows."),
        (_kd_softmax_input, "F.kl_div expects LOG-probabilities as its first argument: use "
                            "F.log_softmax(student / T), not F.softmax."),
        (_kd_no_detach, "Gradients flow into the teacher: detach its logits "
                        "(teacher_logits.detach()) — it is a fixed target."),
        (_kd_padding_counted, "The KL term averages over the padding too: select the positions "
                              "with labels != ignore_index before averaging (and before any "
                              "arithmetic, as padding may hold NaN)."),
        (_kd_student_only, "The temperature softens BOTH distributions: divide the teacher's "
                           "logits by T as well."),
        (_kd_teacher_only, "The temperature softens BOTH distributions: divide the student's "
                           "logits by T as well."),
        (_kd_batchmean, "reduction='batchmean' divides by the first dimension (the batch), "
                        "not by the number of positions: sum over the vocabulary per position, "
                        "then average over the labelled positions."),
        (_kd_alpha_swapped, "alpha weights the distillation (KL) term and 1 - alpha the "
                            "next-token loss, not the other way round."),
    ],
))

# ------------------------------------------------------- 09.4 greedy verification of a draft


def _logits_choosing(choices, vocab, rng, extra=0.0):
    logits = _randn(rng, len(choices), vocab)
    logits[torch.arange(len(choices)), torch.tensor(choices)] = logits.abs().max() + 1 + extra
    return logits


def _verify_cases(rng: torch.Generator):
    yield Case((torch.tensor([4, 2, 3, 9, 1]), _logits_choosing([4, 2, 7, 9, 1, 6], 10, rng)),
               label="a mismatch in the middle",
               catches="the bonus token from the wrong row, off-by-one in the prefix")
    yield Case((torch.tensor([5, 2, 7]), _logits_choosing([4, 2, 7, 1], 10, rng)),
               label="the first drafted token is wrong (later ones match)",
               catches="accepting after the first mismatch, off-by-one at 0")
    yield Case((torch.tensor([4, 2, 7]), _logits_choosing([4, 2, 7, 1], 10, rng)),
               label="all 3 drafted tokens accepted",
               catches="forgetting the bonus token after a fully accepted draft")
    yield Case((torch.tensor([], dtype=torch.long), _logits_choosing([3], 10, rng)),
               label="no draft at all (k = 0)", catches="code that needs k >= 1")
    yield Case((torch.tensor([0, 0]), _logits_choosing([0, 0, 0], 10, rng)),
               label="token id 0 drafted and accepted",
               catches="`if token:` tests that drop the falsy id 0")
    yield Case(([6, 1, 8], _logits_choosing([6, 5, 8, 2], 10, rng)),
               label="the draft as a Python list", catches="code that needs a tensor draft")
    logits = _logits_choosing([1, 2, 3], 10, rng)
    logits[:, 5:] = float("-inf")
    yield Case((torch.tensor([1, 2]), logits), label="logits with -inf for ruled-out tokens",
               catches="arithmetic that turns -inf into NaN")
    big = [int(i) for i in torch.randint(0, 1024, (17,), generator=rng)]
    yield Case((torch.tensor(big[:16]), _logits_choosing(big, 1024, rng)),
               label="k = 16 over course-gpt's 1024 tokens, all accepted",
               catches="a fixed k, a missing bonus")
    for _ in range(4):
        k = int(torch.randint(1, 8, (1,), generator=rng))
        target = [int(i) for i in torch.randint(0, 30, (k + 1,), generator=rng)]
        n = int(torch.randint(0, k + 1, (1,), generator=rng))
        draft = target[:k]
        if n < k:
            draft[n] = (draft[n] + 1) % 30
        yield Case((torch.tensor(draft), _logits_choosing(target, 30, rng)),
                   label=f"random: k = {k}, {n} accepted", catches="any slip, at random spots")


def _choices(draft_tokens, target_logits):
    return torch.as_tensor(draft_tokens, dtype=torch.long).reshape(-1), target_logits.argmax(-1)


def _prefix(draft, choice):
    n = 0
    while n < len(draft) and draft[n] == choice[n]:
        n += 1
    return n


def _vf_plus_one(draft_tokens, target_logits):
    draft, choice = _choices(draft_tokens, target_logits)
    n = min(_prefix(draft, choice) + 1, len(draft))
    return n, torch.cat([draft[:n], choice[n:n + 1]])


def _vf_no_bonus(draft_tokens, target_logits):
    draft, choice = _choices(draft_tokens, target_logits)
    n = _prefix(draft, choice)
    return n, draft[:n].clone()


def _vf_all_matches(draft_tokens, target_logits):
    draft, choice = _choices(draft_tokens, target_logits)
    kept = draft[draft == choice[:len(draft)]]
    return len(kept), torch.cat([kept, choice[len(kept):len(kept) + 1]])


def _vf_no_all_accepted(draft_tokens, target_logits):
    draft, choice = _choices(draft_tokens, target_logits)
    n = _prefix(draft, choice)
    if n == len(draft):
        return n, draft.clone()
    return n, torch.cat([draft[:n], choice[n:n + 1]])


def _vf_next_row(draft_tokens, target_logits):
    draft, choice = _choices(draft_tokens, target_logits)
    n = _prefix(draft, choice)
    row = min(n + 1, len(draft))
    return n, torch.cat([draft[:n], choice[row:row + 1]])


def _vf_last_row(draft_tokens, target_logits):
    draft, choice = _choices(draft_tokens, target_logits)
    n = _prefix(draft, choice)
    return n, torch.cat([draft[:n], choice[-1:]])


register(Exercise(
    id="09.4", title="verify a draft (greedy speculative decoding)", reference=verify_greedy,
    cases=_verify_cases,
    hint="choice = target_logits.argmax(-1) is what the target itself picks at each of the "
         "k + 1 positions. Walk the draft while draft[i] == choice[i]; n is the number of "
         "tokens before the first mismatch (k if none). Return (n, "
         "torch.cat([draft[:n], choice[n:n + 1]])): the accepted draft plus the target's own "
         "token at position n (the bonus token, from the last row when all k are accepted).",
    mistakes=[
        (_vf_plus_one, "You accept one token too many: the drafted token at the first mismatch "
                       "is rejected; n counts the tokens BEFORE it."),
        (_vf_no_all_accepted, "When all k drafted tokens are accepted, the target's last row "
                              "(target_logits[k]) still gives a bonus token: return k + 1 "
                              "tokens."),
        (_vf_no_bonus, "You forgot the bonus token: after the accepted prefix, add the target's "
                       "own choice at position n (target_logits[n].argmax()). Each round "
                       "always gains at least one token."),
        (_vf_all_matches, "You accepted matching tokens AFTER the first mismatch: once a drafted "
                          "token is rejected, everything after it was drafted from a wrong "
                          "prefix. Stop at the first mismatch."),
        (_vf_next_row, "The bonus token comes from row n of target_logits (the prediction after "
                       "the accepted prefix), not row n + 1."),
        (_vf_last_row, "The bonus token comes from row n (the first rejected position), not "
                       "always from the last row: after a rejection the later rows were "
                       "computed on a wrong prefix."),
    ],
))
