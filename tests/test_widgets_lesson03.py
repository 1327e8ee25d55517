"""Lesson 03's head explorer: the maths behind it, and that it builds and redraws."""

import matplotlib
import pytest
import torch
from _tiny_lm import tiny_gpt2
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

from course_utils.attention import merge_heads, scaled_dot_product_attention, split_heads
from course_utils.masks import causal_mask
from course_utils.widgets import head_explorer as he

matplotlib.use("Agg")
WORDS = "the cat sat on a mat and it was tired".split()


def _tokenizer() -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate(["[UNK]", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")


def _model(attn_implementation="eager") -> GPT2LMHeadModel:
    return tiny_gpt2(len(WORDS) + 1, n_positions=32, n_embd=16, n_layer=2, n_head=4,
                     bos_token_id=None, eos_token_id=None, initializer_range=0.5,
                     attn_implementation=attn_implementation).eval()


def test_maps_are_layer_0s_attention_recomputed_by_hand():
    model, tok = _model(), _tokenizer()
    tokens, weights = he.attention_maps(model, tok, "the cat sat on the mat")
    assert tokens == "the cat sat on the mat".split()
    assert weights.shape == (2, 4, 6, 6)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 6))
    assert (weights.triu(1) == 0).all()  # a causal model never looks ahead
    # layer 0 by hand: embeddings -> ln_1 -> c_attn -> per-head softmax(q k^T / sqrt(d_k))
    ids = tok("the cat sat on the mat", return_tensors="pt")["input_ids"]
    block = model.transformer.h[0]
    with torch.no_grad():
        x = block.ln_1(model.transformer.wte(ids) + model.transformer.wpe(torch.arange(6)))
        q, k, v = block.attn.c_attn(x).split(16, dim=-1)
        _, expected = scaled_dot_product_attention(split_heads(q, 4), split_heads(k, 4),
                                                   split_heads(v, 4), causal_mask(6))
    torch.testing.assert_close(weights[0], expected[0], atol=1e-5, rtol=1e-4)
    assert merge_heads(split_heads(q, 4)).shape == q.shape


def test_head_scores_recognise_the_patterns():
    seq = 5
    previous = torch.zeros(seq, seq)
    previous[0, 0] = 1
    previous[torch.arange(1, seq), torch.arange(seq - 1)] = 1
    same, first = torch.eye(seq), torch.zeros(seq, seq)
    first[:, 0] = 1
    weights = torch.stack([previous, same, first]).unsqueeze(0)  # (1 layer, 3 heads, 5, 5)
    s = he.head_scores(weights)
    assert s["previous token"].tolist() == [[1.0, 0.0, 0.25]]
    assert s["same token"].tolist() == [[0.0, 1.0, 0.0]]
    assert s["first token"].tolist() == [[0.25, 0.0, 1.0]]  # query 1 -> key 0 is both


def test_clear_errors():
    with pytest.raises(ValueError, match='attn_implementation="eager"'):
        he.attention_maps(_model("sdpa"), _tokenizer(), "the cat")
    with pytest.raises(ValueError, match="empty"):
        he.attention_maps(_model(), _tokenizer(), "  ")
    with pytest.raises(ValueError, match="layers, heads, seq, seq"):
        he.head_scores(torch.ones(2, 3, 3))


def test_widget_builds_and_redraws_when_a_control_moves():
    ipywidgets = pytest.importorskip("ipywidgets")
    box = he.head_explorer(_model(), _tokenizer(), "the cat sat on the mat")
    assert isinstance(box, ipywidgets.VBox) and "course-head-explorer" in box._dom_classes
    text, (layer, head), label = box.children[0], box.children[1].children, box.children[2]
    assert (layer.max, head.max) == (1, 3)
    before = label.value
    head.value = 3
    layer.value = 1
    assert label.value != before and "previous token" in label.value
    text.value = "it was tired"
    assert "previous token" in label.value
