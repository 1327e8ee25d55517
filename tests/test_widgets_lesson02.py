"""Lesson 02's cross-attention explorer: the maths behind it, and that it builds and redraws."""

import matplotlib
import pytest
import torch

from course_utils.transformer import load_translator
from course_utils.widgets import cross_attention_explorer as ce

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def translator():
    return load_translator()


def test_maps_are_distributions_over_the_real_source(translator):
    source, written, w = ce.cross_attention_maps(translator, "The cat sees the red ball.")
    assert source == ["the", "cat", "sees", "the", "red", "ball", ".", "</s>"]
    assert written[-1] == "</s>" and w.shape == (2, 4, len(written), len(source))
    torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]))


def test_a_head_aligns_the_words_and_the_adjective_crosses(translator):
    source, written, w = ce.cross_attention_maps(translator, "The cat sees the red ball.")
    assert written[:6] == ["lo", "gato", "vidas", "lo", "pilko", "ruga"]
    layer, head = ce.best_head(source, written, w)
    links = ce.alignment(w[layer, head])
    assert ce.alignment_accuracy(source, written, w[layer, head]) >= 0.8
    assert source[links[written.index("pilko")]] == "ball"
    assert source[links[written.index("ruga")]] == "red"
    assert ce.crossings(links, written) >= 1


def test_crossings_and_accuracy_by_hand():
    assert ce.crossings([0, 1, 2]) == 0
    assert ce.crossings([0, 2, 1]) == 1
    assert ce.crossings([2, 1, 0]) == 3
    assert ce.crossings([3, 0, 2, 1], ["lo", "gato", "pilko", "ruga"]) == 1
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert ce.alignment_accuracy(["cat", "ball"], ["gato", "pilko"], w) == 1.0
    assert ce.alignment_accuracy(["cat", "ball"], ["pilko", "gato"], w) == 0.0


def test_unknown_or_empty_sentences_are_clear_errors(translator):
    with pytest.raises(ValueError, match="does not know 'zebra'"):
        ce.cross_attention_maps(translator, "The zebra sees the ball.")
    with pytest.raises(ValueError, match="empty"):
        ce.cross_attention_maps(translator, "  ")
    with pytest.raises(ValueError, match="one head"):
        ce.alignment(torch.zeros(2, 3, 4))


def test_widget_builds_and_redraws_when_a_control_moves(translator):
    ipywidgets = pytest.importorskip("ipywidgets")
    box = ce.cross_attention_explorer(translator, ["The cat sees the red ball.",
                                                   "The dog likes the big apple."])
    assert isinstance(box, ipywidgets.VBox)
    assert "course-cross-attention-explorer" in box._dom_classes
    menu, typed, sliders, label = box.children[:4]
    first = label.value
    assert "Lo gato vidas lo pilko ruga." in first
    menu.value = "The dog likes the big apple."
    assert "Lo kano amas lo pomo granda." in label.value
    sliders.children[1].value = (sliders.children[1].value + 1) % 4
    assert "head" in label.value
    typed.value = "The zebra runs."
    assert "does not know" in label.value
