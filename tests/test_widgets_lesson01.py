"""Lesson 01's widgets: the maths behind them, and that they build and redraw."""

import matplotlib
import pytest
import torch

from course_utils import masks
from course_utils.widgets import attention_explorer as ae
from course_utils.widgets import mask_explorer as me

matplotlib.use("Agg")
TOKENS = "the cat sat on the mat because it was tired".split()


def test_related_words_attend_to_each_other():
    w = ae.explorer_weights(TOKENS)
    it, cat, on = TOKENS.index("it"), TOKENS.index("cat"), TOKENS.index("on")
    assert w[it, cat] > w[it, on]
    torch.testing.assert_close(w.sum(-1), torch.ones(len(TOKENS)))


def test_temperature_sharpens_and_flattens():
    cold = ae.explorer_weights(TOKENS, temperature=0.1).amax(-1).mean()
    warm = ae.explorer_weights(TOKENS, temperature=10).amax(-1).mean()
    assert cold > 0.8 > 0.3 > warm  # ("the" appears twice: its row splits 50/50)


@pytest.mark.parametrize("kind", ae.MASK_TYPES)
def test_blocked_positions_get_zero_weight(kind):
    w = ae.explorer_weights(TOKENS, mask_type=kind, n_pad=2)
    mask = ae.explorer_mask(kind, len(TOKENS), 2)
    if mask is None:
        assert (w > 0).all()
    else:
        assert (w[~mask.expand_as(w)] == 0).all()
    if "causal" in kind:
        assert (w.triu(1) == 0).all()


def test_unknown_mask_type_is_a_clear_error():
    with pytest.raises(ValueError, match="mask_type must be one of"):
        ae.explorer_weights(TOKENS, mask_type="diagonal")


def test_mask_panels_are_consistent():
    p = me.mask_panels("causal + padding", 6, n_pad=2)
    expected = masks.combine_masks(masks.causal_mask(6),
                                   masks.padding_mask_from_lengths([4], 6)[0])
    assert torch.equal(p["mask"].bool(), expected)
    assert torch.equal(p["additive"] == 0, expected)
    assert (p["weights"][~expected] == 0).all()
    p_inf = me.mask_panels("padding", 4, n_pad=3, fill_value=float("-inf"))
    assert torch.isfinite(p_inf["weights"]).all()  # one real key remains per row


def test_widgets_build_and_redraw_when_a_control_moves():
    ipywidgets = pytest.importorskip("ipywidgets")
    box = ae.attention_explorer()
    assert isinstance(box, ipywidgets.VBox) and "course-attention-explorer" in box._dom_classes
    query = box.children[0].children[0]
    label = box.children[1]
    query.value = 1
    assert "<b>cat</b>" in label.value
    box2 = me.mask_explorer()
    assert "course-mask-explorer" in box2._dom_classes
    with pytest.raises(ValueError, match="empty"):
        ae.attention_explorer("   ")
