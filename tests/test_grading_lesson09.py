"""Known-wrong answers to lesson 09's exercises: the grader must reject each, saying why.

These implementations are written here the way learners write them, independently of the
grader's own list of mistakes, so a grader that stops recognising one of them fails this test.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_utils.distillation import distillation_loss
from course_utils.grading import get_exercise, run_exercise
from course_utils.quantization import quantize_int4, quantize_int8
from course_utils.speculative import verify_greedy


def _verdict(ex_id, fn):
    return run_exercise(get_exercise(ex_id), fn)


# ---- 09.1 int8 per channel
def i8_learner(weight):
    """Correct, written differently: multiply by the inverse scale, a loop over rows."""
    w = torch.as_tensor(weight).detach().to(torch.float32)
    qs, scales = [], []
    for row in w:
        m = float(row.abs().max())
        s = m / 127 if m > 0 else 1.0
        scales.append([s])
        qs.append(torch.round(row / s).clamp(-127, 127))
    return torch.stack(qs).to(torch.int8), torch.tensor(scales, dtype=torch.float32)


def i8_whole_tensor(weight):
    w = weight.detach().float()
    s = w.abs().max() / 127.0
    return (w / s).round().clamp(-127, 127).to(torch.int8), s


def i8_255_levels(weight):
    w = weight.detach().float()
    s = w.abs().max(dim=1, keepdim=True).values / 255.0
    s[s == 0] = 1.0
    return (w / s).round().clamp(-127, 127).to(torch.int8), s


def i8_floor(weight):
    w = weight.detach().float()
    s = w.abs().max(dim=1, keepdim=True).values / 127.0
    s[s == 0] = 1.0
    return torch.floor(w / s).clamp(-127, 127).to(torch.int8), s


def i8_cast_only(weight):
    w = weight.detach().float()
    s = w.abs().max(dim=1, keepdim=True).values / 127.0
    s[s == 0] = 1.0
    return (w / s).clamp(-127, 127).to(torch.int8), s


def i8_plain_max(weight):
    w = weight.detach().float()
    s = w.max(dim=1, keepdim=True).values / 127.0
    return (w / s).round().clamp(-127, 127).to(torch.int8), s


def i8_dim0(weight):
    w = weight.detach().float()
    s = w.abs().max(dim=0, keepdim=True).values / 127.0
    s[s == 0] = 1.0
    return (w / s).round().clamp(-127, 127).to(torch.int8), s


def i8_zero_scale(weight):
    """Forgets the all-zero row: its scale is 0 (and its q NaN before the cast)."""
    w = weight.detach().float()
    s = w.abs().amax(1, keepdim=True) / 127
    q = torch.nan_to_num(w / s).round().clamp(-127, 127).to(torch.int8)
    return q, s


def i8_float_q(weight):
    w = weight.detach().float()
    s = w.abs().amax(1, keepdim=True) / 127
    s[s == 0] = 1.0
    return (w / s).round().clamp(-127, 127), s


def i8_flat_scale(weight):
    q, s = i8_learner(weight)
    return q, s.flatten()


# ---- 09.2 int4 group-wise, packed
def i4_learner(weight, group_size=32):
    """Correct, written with explicit loops over groups and bytes."""
    w = weight.detach().float()
    out, n = w.shape
    scales = torch.ones(out, n // group_size)
    q = torch.zeros(out, n, dtype=torch.int16)
    for g in range(n // group_size):
        cols = slice(g * group_size, (g + 1) * group_size)
        m = w[:, cols].abs().amax(1)
        s = torch.where(m > 0, m / 7, torch.ones_like(m))
        scales[:, g] = s
        q[:, cols] = (w[:, cols] / s[:, None]).round().clamp(-7, 7).to(torch.int16)
    u = q + 8
    packed = torch.zeros(out, n // 2, dtype=torch.int16)
    for j in range(n // 2):
        packed[:, j] = u[:, 2 * j] + 16 * u[:, 2 * j + 1]
    return packed.to(torch.uint8), scales


def i4_row_scale(weight, group_size=32):
    w = weight.detach().float()
    m = w.abs().amax(1, keepdim=True)
    s = torch.where(m > 0, m / 7, torch.ones_like(m))
    u = ((w / s).round().clamp(-7, 7) + 8).to(torch.uint8)
    return u[:, ::2] | (u[:, 1::2] << 4), s


def i4_view_wrong(weight, group_size=32):
    w = weight.detach().float()
    out, n = w.shape
    g = w.view(out, group_size, -1)
    m = g.abs().amax(1)
    s = torch.where(m > 0, m / 7, torch.ones_like(m))
    u = ((g / s[:, None]).round().clamp(-7, 7) + 8).reshape(out, n).to(torch.uint8)
    return u[:, ::2] | (u[:, 1::2] << 4), s


def i4_high_first(weight, group_size=32):
    w = weight.detach().float()
    out, n = w.shape
    g = w.view(out, -1, group_size)
    m = g.abs().amax(-1)
    s = torch.where(m > 0, m / 7, torch.ones_like(m))
    u = ((g / s[..., None]).round().clamp(-7, 7) + 8).reshape(out, n).to(torch.uint8)
    return (u[:, ::2] << 4) + u[:, 1::2], s


def i4_twos_complement(weight, group_size=32):
    w = weight.detach().float()
    out, n = w.shape
    g = w.view(out, -1, group_size)
    m = g.abs().amax(-1)
    s = torch.where(m > 0, m / 7, torch.ones_like(m))
    q = (g / s[..., None]).round().clamp(-7, 7).reshape(out, n).to(torch.int32)
    return ((q[:, ::2] & 15) + ((q[:, 1::2] & 15) * 16)).to(torch.uint8), s


def i4_fifteen(weight, group_size=32):
    w = weight.detach().float()
    out, n = w.shape
    g = w.view(out, -1, group_size)
    m = g.abs().amax(-1)
    s = torch.where(m > 0, m / 15, torch.ones_like(m))
    u = ((g / s[..., None]).round().clamp(-7, 7) + 8).reshape(out, n).to(torch.uint8)
    return u[:, ::2] | (u[:, 1::2] << 4), s


def i4_split_halves(weight, group_size=32):
    w = weight.detach().float()
    out, n = w.shape
    g = w.view(out, -1, group_size)
    m = g.abs().amax(-1)
    s = torch.where(m > 0, m / 7, torch.ones_like(m))
    u = ((g / s[..., None]).round().clamp(-7, 7) + 8).reshape(out, n).to(torch.uint8)
    lo, hi = u.chunk(2, dim=1)
    return lo | (hi << 4), s


def i4_unpacked(weight, group_size=32):
    w = weight.detach().float()
    out, n = w.shape
    g = w.view(out, -1, group_size)
    m = g.abs().amax(-1)
    s = torch.where(m > 0, m / 7, torch.ones_like(m))
    return ((g / s[..., None]).round().clamp(-7, 7) + 8).reshape(out, n).to(torch.uint8), s


# ---- 09.3 distillation loss
def kd_learner(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5,
               ignore_index=-100):
    """Correct, written by hand: log-probabilities and a where() for p = 0."""
    keep = labels != ignore_index
    s = student_logits[keep]
    t = teacher_logits[keep].detach()
    T = temperature
    log_ps = torch.log_softmax(s / T, dim=-1)
    log_pt = torch.log_softmax(t / T, dim=-1)
    p_t = log_pt.exp()
    terms = torch.where(p_t > 0, p_t * (log_pt - log_ps), torch.zeros_like(p_t))
    n = max(int(keep.sum()), 1)
    soft = terms.sum() / n * T * T
    hard = F.cross_entropy(s, labels[keep], reduction="sum") / n
    return alpha * soft + (1 - alpha) * hard


def kd_wrong_direction(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5,
                       ignore_index=-100):
    keep = labels != ignore_index
    s, t, T = student_logits[keep], teacher_logits[keep].detach(), temperature
    kl = F.kl_div(F.log_softmax(t / T, -1), F.softmax(s / T, -1), reduction="sum")
    n = max(int(keep.sum()), 1)
    hard = F.cross_entropy(s, labels[keep], reduction="sum") / n
    return alpha * kl / n * T**2 + (1 - alpha) * hard


def kd_forgot_t2(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5,
                 ignore_index=-100):
    keep = labels != ignore_index
    s, t, T = student_logits[keep], teacher_logits[keep].detach(), temperature
    n = max(int(keep.sum()), 1)
    kl = F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="sum") / n
    hard = F.cross_entropy(s, labels[keep], reduction="sum") / n
    return alpha * kl + (1 - alpha) * hard


def kd_probabilities(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5,
                     ignore_index=-100):
    keep = labels != ignore_index
    s, t, T = student_logits[keep], teacher_logits[keep].detach(), temperature
    n = max(int(keep.sum()), 1)
    kl = F.kl_div(F.softmax(s / T, -1), F.softmax(t / T, -1), reduction="sum") / n
    hard = F.cross_entropy(s, labels[keep], reduction="sum") / n
    return alpha * kl * T**2 + (1 - alpha) * hard


def kd_teacher_grads(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5,
                     ignore_index=-100):
    keep = labels != ignore_index
    s, t, T = student_logits[keep], teacher_logits[keep], temperature
    n = max(int(keep.sum()), 1)
    kl = F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="sum") / n
    hard = F.cross_entropy(s, labels[keep], reduction="sum") / n
    return alpha * kl * T**2 + (1 - alpha) * hard


def kd_all_positions(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5,
                     ignore_index=-100):
    T = temperature
    v = student_logits.shape[-1]
    kl = F.kl_div(F.log_softmax(student_logits.reshape(-1, v) / T, -1),
                  F.softmax(teacher_logits.detach().reshape(-1, v) / T, -1),
                  reduction="batchmean")
    hard = F.cross_entropy(student_logits.reshape(-1, v), labels.reshape(-1),
                           ignore_index=ignore_index)
    return alpha * kl * T**2 + (1 - alpha) * hard


def kd_student_softened_only(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5,
                             ignore_index=-100):
    keep = labels != ignore_index
    s, t, T = student_logits[keep], teacher_logits[keep].detach(), temperature
    n = max(int(keep.sum()), 1)
    kl = F.kl_div(F.log_softmax(s / T, -1), F.softmax(t, -1), reduction="sum") / n
    hard = F.cross_entropy(s, labels[keep], reduction="sum") / n
    return alpha * kl * T**2 + (1 - alpha) * hard


def kd_multiply_mask(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5,
                     ignore_index=-100):
    keep = (labels != ignore_index).float()
    T = temperature
    log_ps = F.log_softmax(student_logits / T, -1)
    p_t = F.softmax(teacher_logits.detach() / T, -1)
    kl = (F.kl_div(log_ps, p_t, reduction="none").sum(-1) * keep).sum() / keep.sum()
    hard = F.cross_entropy(student_logits.flatten(0, -2), labels.flatten(),
                           ignore_index=ignore_index)
    return alpha * kl * T**2 + (1 - alpha) * hard


def kd_float(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5,
             ignore_index=-100):
    return distillation_loss(student_logits, teacher_logits, labels, temperature, alpha).item()


def kd_weights_swapped(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5,
                       ignore_index=-100):
    keep = labels != ignore_index
    s, t, T = student_logits[keep], teacher_logits[keep].detach(), temperature
    n = max(int(keep.sum()), 1)
    kl = F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="sum") / n
    hard = F.cross_entropy(s, labels[keep], reduction="sum") / n
    return (1 - alpha) * kl * T**2 + alpha * hard


# ---- 09.4 verification
def vf_learner(draft_tokens, target_logits):
    """Correct, a plain loop."""
    draft = [int(t) for t in draft_tokens]
    best = target_logits.argmax(dim=-1).tolist()
    n = 0
    for d, b in zip(draft, best, strict=False):
        if d != b:
            break
        n += 1
    return n, torch.tensor(draft[:n] + [best[n]], dtype=torch.long)


def vf_off_by_one(draft_tokens, target_logits):
    draft = [int(t) for t in draft_tokens]
    best = target_logits.argmax(dim=-1).tolist()
    n = len(draft)
    for i, (d, b) in enumerate(zip(draft, best, strict=False)):
        if d != b:
            n = i + 1
            break
    return n, torch.tensor(draft[:n] + [best[n]], dtype=torch.long)


def vf_no_bonus(draft_tokens, target_logits):
    draft = [int(t) for t in draft_tokens]
    best = target_logits.argmax(dim=-1).tolist()
    n = 0
    while n < len(draft) and draft[n] == best[n]:
        n += 1
    return n, torch.tensor(draft[:n], dtype=torch.long)


def vf_keeps_going(draft_tokens, target_logits):
    draft = [int(t) for t in draft_tokens]
    best = target_logits.argmax(dim=-1).tolist()
    accepted = [d for d, b in zip(draft, best, strict=False) if d == b]
    return len(accepted), torch.tensor(accepted + [best[len(accepted)]], dtype=torch.long)


def vf_falls_through(draft_tokens, target_logits):
    draft = [int(t) for t in draft_tokens]
    best = target_logits.argmax(dim=-1).tolist()
    for i, (d, b) in enumerate(zip(draft, best, strict=False)):
        if d != b:
            return i, torch.tensor(draft[:i] + [b], dtype=torch.long)
    return len(draft), torch.tensor(draft, dtype=torch.long)


def vf_next_row(draft_tokens, target_logits):
    draft = [int(t) for t in draft_tokens]
    best = target_logits.argmax(dim=-1).tolist()
    n = 0
    while n < len(draft) and draft[n] == best[n]:
        n += 1
    return n, torch.tensor(draft[:n] + [best[min(n + 1, len(draft))]], dtype=torch.long)


def vf_last_row(draft_tokens, target_logits):
    draft = [int(t) for t in draft_tokens]
    best = target_logits.argmax(dim=-1).tolist()
    n = 0
    while n < len(draft) and draft[n] == best[n]:
        n += 1
    return n, torch.tensor(draft[:n] + [best[-1]], dtype=torch.long)


def vf_truthy(draft_tokens, target_logits):
    """Skips token 0 as if it were 'nothing'."""
    draft = [int(t) for t in draft_tokens if t]
    best = target_logits.argmax(dim=-1).tolist()
    n = 0
    while n < len(draft) and draft[n] == best[n]:
        n += 1
    return n, torch.tensor(draft[:n] + [best[n]], dtype=torch.long)


def vf_list(draft_tokens, target_logits):
    n, new = vf_learner(draft_tokens, target_logits)
    return n, new.tolist()


@pytest.mark.parametrize("ex_id, fn", [
    ("09.1", quantize_int8), ("09.1", i8_learner), ("09.2", quantize_int4),
    ("09.2", i4_learner), ("09.3", distillation_loss), ("09.3", kd_learner),
    ("09.4", verify_greedy), ("09.4", vf_learner)])
def test_the_reference_and_a_learners_solution_pass(ex_id, fn):
    verdict = _verdict(ex_id, fn)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize("ex_id, fn, says", [
    ("09.1", i8_whole_tensor, "ONE scale for the whole tensor"),
    ("09.1", i8_255_levels, "not 255"),
    ("09.1", i8_floor, "floor() always rounds down"),
    ("09.1", i8_cast_only, "cuts the fraction off"),
    ("09.1", i8_plain_max, "ABSOLUTE maximum"),
    ("09.1", i8_dim0, "per input column"),
    ("09.1", i8_zero_scale, "all-zero row"),
    ("09.1", i8_float_q, "dtype"),
    ("09.1", i8_flat_scale, "shape"),
    ("09.2", i4_row_scale, "one scale per row"),
    ("09.2", i4_view_wrong, "CONSECUTIVE inputs"),
    ("09.2", i4_high_first, "nibbles are swapped"),
    ("09.2", i4_twos_complement, "+8 offset"),
    ("09.2", i4_fifteen, "not 15"),
    ("09.2", i4_split_halves, "NEIGHBOURING columns"),
    ("09.2", i4_unpacked, "shape"),
    ("09.3", kd_wrong_direction, "KL(student || teacher)"),
    ("09.3", kd_forgot_t2, "T**2"),
    ("09.3", kd_probabilities, "LOG-probabilities as its first argument"),
    ("09.3", kd_teacher_grads, "detach"),
    ("09.3", kd_all_positions, "averages over the padding"),
    ("09.3", kd_student_softened_only, "divide the teacher's logits by T"),
    ("09.3", kd_multiply_mask, "NaN"),
    ("09.3", kd_float, "0-d torch.Tensor"),
    ("09.3", kd_weights_swapped, "not the other way round"),
    ("09.4", vf_off_by_one, "one token too many"),
    ("09.4", vf_no_bonus, "forgot the bonus token"),
    ("09.4", vf_keeps_going, "AFTER the first mismatch"),
    ("09.4", vf_falls_through, "all k drafted tokens are accepted"),
    ("09.4", vf_next_row, "not row n + 1"),
    ("09.4", vf_last_row, "not always from the last row"),
    ("09.4", vf_truthy, "token id 0"),
    ("09.4", vf_list, "torch.Tensor"),
])
def test_known_wrong_answers_are_rejected_with_their_reason(ex_id, fn, says):
    verdict = _verdict(ex_id, fn)
    assert not verdict.passed
    assert says in verdict.message, verdict.message


def test_an_unsolved_exercise_is_not_attempted():
    def stub(*args, **kwargs):
        raise NotImplementedError("Your turn")

    for ex_id in ("09.1", "09.2", "09.3", "09.4"):
        assert _verdict(ex_id, stub).status == "not attempted"


def test_every_case_says_what_it_catches():
    for ex_id in ("09.1", "09.2", "09.3", "09.4"):
        ex = get_exercise(ex_id)
        cases = list(ex.cases(torch.Generator().manual_seed(ex.seed)))
        assert len(cases) >= 8
        assert all(c.label and c.catches for c in cases)


def test_every_known_mistake_runs_on_every_case():
    """A hint is shown only when the learner matches a mistake on EVERY case, so each mistake
    function must run (not raise) on all of its exercise's cases."""
    import copy

    for ex_id in ("09.1", "09.2", "09.3", "09.4"):
        ex = get_exercise(ex_id)
        cases = list(ex.cases(torch.Generator().manual_seed(ex.seed)))
        for wrong, _ in ex.mistakes:
            for case in cases:
                wrong(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
