"""Knowledge distillation: train a small student to match a big teacher's softened predictions.

The teacher's next-token distribution says more than the one right token: that " cat" was
nearly as likely as " dog", and " the" impossible. Distillation (Hinton et al., 2015) trains the
student on both signals:

    loss = alpha * T^2 * KL(p_teacher^T || p_student^T) + (1 - alpha) * CE(student, labels)

where ``p^T = softmax(logits / T)``. A temperature ``T > 1`` flattens both distributions so the
small probabilities carry weight; dividing logits by ``T`` shrinks the gradients by ``T^2``,
so the KL term is multiplied by ``T^2`` to keep its size independent of ``T``. The KL goes
teacher-first (the teacher's distribution is the target), the teacher's logits carry no
gradient, and positions whose label is ``ignore_index`` (padding) are left out of both terms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
           temperature: float, alpha: float) -> None:
    for name, t in (("student_logits", student_logits), ("teacher_logits", teacher_logits),
                    ("labels", labels)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student and teacher logits must have the same shape (the two models "
                         f"share a tokenizer), got {tuple(student_logits.shape)} and "
                         f"{tuple(teacher_logits.shape)}")
    if labels.shape != student_logits.shape[:-1]:
        raise ValueError(f"labels must have the logits' shape without the vocabulary axis, "
                         f"{tuple(student_logits.shape[:-1])}, got {tuple(labels.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha (the weight of the distillation term) must be in [0, 1], "
                         f"got {alpha}")


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      labels: torch.Tensor, temperature: float = 2.0, alpha: float = 0.5,
                      ignore_index: int = -100) -> torch.Tensor:
    """The distillation loss, a 0-d tensor, averaged over the positions that have a label.

    ``student_logits`` and ``teacher_logits`` are ``(..., vocab)``; ``labels`` (same shape
    without the vocabulary axis) holds the next token at each position, already aligned with
    the logits, and ``ignore_index`` where nothing is to be learned (padding).
    """
    _check(student_logits, teacher_logits, labels, temperature, alpha)
    keep = labels != ignore_index
    student = student_logits[keep].float()  # (n, vocab): the counted positions only
    teacher = teacher_logits[keep].detach().float()
    log_p_student = F.log_softmax(student / temperature, dim=-1)
    p_teacher = F.softmax(teacher / temperature, dim=-1)
    # KL(teacher || student) per position; a token the teacher rules out (p = 0) adds nothing.
    kl = F.kl_div(log_p_student, p_teacher, reduction="none").sum(-1)
    soft = kl.mean() * temperature**2 if kl.numel() else student.sum() * 0.0
    hard = (F.cross_entropy(student, labels[keep]) if keep.any() else student.sum() * 0.0)
    return alpha * soft + (1 - alpha) * hard


def shifted_labels(input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                   ignore_index: int = -100) -> torch.Tensor:
    """Labels aligned with a causal LM's logits: position ``i`` is to predict token ``i + 1``.

    The last position has no next token and padding (``attention_mask == 0``) has none to
    learn, so both get ``ignore_index``.
    """
    labels = torch.full_like(input_ids, ignore_index)
    labels[..., :-1] = input_ids[..., 1:]
    if attention_mask is not None:
        labels[..., :-1] = labels[..., :-1].masked_fill(attention_mask[..., 1:] == 0,
                                                        ignore_index)
    return labels


def distill_step(student: torch.nn.Module, teacher: torch.nn.Module | None,
                 input_ids: torch.Tensor, optimizer: torch.optim.Optimizer,
                 attention_mask: torch.Tensor | None = None, temperature: float = 2.0,
                 alpha: float = 0.5) -> float:
    """One optimiser step of distillation on a batch; returns the loss as a float.

    With ``teacher=None`` the step uses the next-token loss alone (training from scratch), and
    runs no teacher.
    """
    labels = shifted_labels(input_ids, attention_mask)
    student_logits = student(input_ids=input_ids, attention_mask=attention_mask).logits
    if teacher is None:
        loss = F.cross_entropy(student_logits.flatten(0, -2), labels.flatten())
    else:
        with torch.no_grad():
            teacher_logits = teacher(input_ids=input_ids, attention_mask=attention_mask).logits
        loss = distillation_loss(student_logits, teacher_logits, labels, temperature, alpha)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
    optimizer.step()
    return loss.item()


__all__ = ["distill_step", "distillation_loss", "shifted_labels"]
