"""course_utils.distillation: the loss against a hand-written float64 formula and its analytic
gradient, the teacher gets no gradient, padding counts for nothing, and a step learns."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _tiny_lm import tiny_gpt2

from course_utils.distillation import distill_step, distillation_loss, shifted_labels


def batch(seed=0, b=3, s=7, v=11):
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(b, s, v, generator=g) * 3
    teacher = torch.randn(b, s, v, generator=g) * 3
    labels = torch.randint(0, v, (b, s), generator=g)
    labels[0, -3:] = -100  # padding
    return student, teacher, labels


def by_hand(student, teacher, labels, T, alpha):
    """Float64, position by position, from the definition."""
    soft, hard, n = 0.0, 0.0, 0
    for b in range(labels.shape[0]):
        for s in range(labels.shape[1]):
            if labels[b, s] == -100:
                continue
            p_t = torch.softmax(teacher[b, s].double() / T, -1)
            p_s = torch.softmax(student[b, s].double() / T, -1)
            soft += float((p_t * (p_t.log() - p_s.log())).sum())
            hard += -float(torch.log_softmax(student[b, s].double(), -1)[labels[b, s]])
            n += 1
    return alpha * T * T * soft / n + (1 - alpha) * hard / n


@pytest.mark.parametrize("T, alpha", [(1.0, 0.5), (2.0, 0.5), (4.0, 0.9), (2.0, 0.0),
                                      (0.5, 1.0)])
def test_matches_the_definition(T, alpha):
    s, t, y = batch()
    got = distillation_loss(s, t, y, T, alpha)
    assert got.dim() == 0
    assert got.item() == pytest.approx(by_hand(s, t, y, T, alpha), rel=1e-5)


def test_alpha_zero_is_cross_entropy_and_a_perfect_student_has_no_soft_loss():
    s, t, y = batch(1)
    ce = F.cross_entropy(s.flatten(0, 1), y.flatten(), ignore_index=-100)
    torch.testing.assert_close(distillation_loss(s, t, y, 3.0, 0.0), ce)
    assert distillation_loss(t, t, y, 3.0, 1.0).abs().item() < 1e-6


@pytest.mark.parametrize("T", [1.0, 2.0, 5.0])
def test_gradient_is_T_times_the_softened_difference(T):
    """d/dz [T^2 KL(p_t || softmax(z/T))] = T (softmax(z/T) - p_t): T^2 keeps it O(1)."""
    s, t, y = batch(2)
    s.requires_grad_(True)
    t.requires_grad_(True)  # as if the teacher ran without torch.no_grad()
    distillation_loss(s, t, y, T, 1.0).backward()
    keep = y != -100
    expected = T * (torch.softmax(s.detach() / T, -1) - torch.softmax(t.detach() / T, -1))
    expected = expected * keep[..., None] / keep.sum()
    torch.testing.assert_close(s.grad, expected, atol=1e-6, rtol=1e-4)
    assert t.grad is None  # the teacher is a fixed target


def test_padding_counts_for_nothing_even_when_it_holds_nan():
    s, t, y = batch(3)
    ref = distillation_loss(s, t, y)
    s2, t2 = s.clone(), t.clone()
    s2[0, -3:] = float("nan")
    t2[0, -3:] = float("-inf")
    torch.testing.assert_close(distillation_loss(s2, t2, y), ref)


def test_a_teacher_that_rules_tokens_out_is_fine():
    s, t, y = batch(4)
    t[..., :3] = float("-inf")
    assert torch.isfinite(distillation_loss(s, t, y))


def test_shifted_labels():
    ids = torch.tensor([[5, 6, 7, 8], [1, 1, 9, 4]])
    mask = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])
    assert shifted_labels(ids).tolist() == [[6, 7, 8, -100], [1, 9, 4, -100]]
    assert shifted_labels(ids, mask).tolist() == [[6, 7, 8, -100], [-100, 9, 4, -100]]


def test_distill_step_brings_the_student_closer_to_the_teacher():
    teacher = tiny_gpt2(50, n_positions=16, n_embd=32, n_layer=2, seed=0).eval()
    student = tiny_gpt2(50, n_positions=16, n_embd=16, n_layer=1, seed=1)
    torch.manual_seed(0)
    ids = torch.randint(0, 50, (4, 16))
    opt = torch.optim.AdamW(student.parameters(), lr=1e-2)
    losses = [distill_step(student, teacher, ids, opt, alpha=1.0) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]
    assert all(p.grad is None for p in teacher.parameters())


def test_bad_input_is_a_clear_error():
    s, t, y = batch()
    with pytest.raises(ValueError, match="same shape"):
        distillation_loss(s, t[..., :5], y)
    with pytest.raises(ValueError, match="labels must have"):
        distillation_loss(s, t, y[:, :3])
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(s, t, y, temperature=0)
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(s, t, y, alpha=1.5)
    with pytest.raises(TypeError, match="torch.Tensor"):
        distillation_loss(s.tolist(), t, y)


def test_the_bundled_student_shares_the_teachers_tokenizer_and_has_its_twin():
    import json

    from course_utils.pretrained import asset_path, load_pretrained

    teacher, t_tok = load_pretrained("course-gpt")
    mini, m_tok = load_pretrained("course-gpt-mini")
    twin, _ = load_pretrained(str(asset_path("course-gpt-mini") / "from-scratch"))
    assert m_tok.get_vocab() == t_tok.get_vocab()
    assert mini.config.vocab_size == teacher.config.vocab_size
    assert mini.config.n_layer < teacher.config.n_layer
    for key in ("n_layer", "n_embd", "n_head", "n_positions", "vocab_size"):
        assert getattr(twin.config, key) == getattr(mini.config, key)
    assert any((p - q).abs().max() > 0 for p, q in zip(mini.parameters(), twin.parameters(),
                                                        strict=True))
    log = json.loads((asset_path("course-gpt-mini") / "training_log.json").read_text())
    assert log["distilled"] and log["tokens_seen"] == log["from_scratch"]["tokens_seen"]
