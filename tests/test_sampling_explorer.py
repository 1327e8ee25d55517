"""Lesson 04's sampling explorer: its numbers against transformers' own logits warpers and
generate(), and that the widget redraws when a slider moves (on a tiny random model)."""

from __future__ import annotations

import matplotlib
import pytest
import torch
from _tiny_lm import tiny_gpt2
from transformers.generation.logits_process import (
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from course_utils.pretrained.tokenizer_build import train_gpt_tokenizer
from course_utils.widgets import sampling_explorer as se

matplotlib.use("Agg")
TEXTS = ["Once upon a time there was a cat who sat on a mat in the park.",
         "The dog ran to the river and the bird sang in the tree all day."] * 10
PROMPT = "Once upon a time the"


@pytest.fixture(scope="module")
def tok():
    return train_gpt_tokenizer(TEXTS, vocab_size=330, model_max_length=40)


@pytest.fixture(scope="module")
def model(tok):
    m = tiny_gpt2(len(tok), n_positions=40, tokenizer=tok, tie_word_embeddings=False).eval()
    with torch.no_grad():
        m.lm_head.weight.mul_(60)
    return m


def _reference_probs(logits, t, k, p):
    x = logits[None].clone()
    x = TemperatureLogitsWarper(t)(None, x)
    if k:
        x = TopKLogitsWarper(k)(None, x)
    if p < 1:
        x = TopPLogitsWarper(p)(None, x)
    return x.softmax(-1)[0]


@pytest.mark.parametrize("t, k, p", [(1.0, 0, 1.0), (0.5, 0, 1.0), (1.7, 5, 1.0),
                                     (1.0, 0, 0.6), (0.8, 10, 0.9)])
def test_distribution_matches_transformers_warpers(model, tok, t, k, p):
    logits = se.next_token_logits(model, tok, PROMPT)
    ref = _reference_probs(logits, t, k, p)
    table = se.distribution_table(logits, tok, t, k, p, n=len(tok))
    got = torch.zeros(len(tok))
    got[[r["id"] for r in table]] = torch.tensor([r["after"] for r in table])
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=1e-5)
    assert se.kept_tokens(logits, t, k, p) == int((ref > 0).sum())
    before = torch.tensor([r["before"] for r in table])
    assert (before[:-1] >= before[1:]).all() and abs(before.sum() - 1) < 1e-5


def test_temperature_changes_the_chart_numbers(model, tok):
    logits = se.next_token_logits(model, tok, PROMPT)
    cold = se.distribution_table(logits, tok, 0.3)[0]["after"]
    warm = se.distribution_table(logits, tok, 2.0)[0]["after"]
    greedy = se.distribution_table(logits, tok, 0.0)
    assert cold > greedy[0]["before"] > warm
    assert greedy[0]["after"] == 1.0 and se.kept_tokens(logits, 0.0) == 1


def test_greedy_continuation_matches_generate(model, tok):
    ids = tok(PROMPT, return_tensors="pt")["input_ids"]
    ref = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=10,
                         do_sample=False, pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id)
    expected = tok.decode(ref[0, ids.shape[1]:], skip_special_tokens=True)
    assert se.sample_continuation(model, tok, PROMPT, 0.0, max_new_tokens=10) == expected
    assert se.sample_continuation(model, tok, PROMPT, 1.5, top_k=1, max_new_tokens=10,
                                  seed=3) == expected


def test_sampling_is_seeded_and_respects_top_k(model, tok):
    a = se.sample_continuation(model, tok, PROMPT, 1.5, max_new_tokens=8, seed=1)
    assert a == se.sample_continuation(model, tok, PROMPT, 1.5, max_new_tokens=8, seed=1)
    outs = {se.sample_continuation(model, tok, PROMPT, 2.0, max_new_tokens=8, seed=s)
            for s in range(4)}
    assert len(outs) > 1
    logits = se.next_token_logits(model, tok, PROMPT)
    top2 = {tok.decode([int(i)]) for i in logits.topk(2).indices}
    firsts = {se.sample_continuation(model, tok, PROMPT, 3.0, top_k=2, max_new_tokens=1, seed=s)
              for s in range(12)}
    assert firsts <= top2


def test_bad_settings_are_clear_errors(model, tok):
    with pytest.raises(ValueError, match="prompt is empty"):
        se.next_token_logits(model, tok, "")
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        se.sample_continuation(model, tok, PROMPT, -1.0)


def test_widget_builds_and_redraws_when_the_temperature_moves(model, tok):
    ipywidgets = pytest.importorskip("ipywidgets")
    box = se.sampling_explorer(model, tok, prompt=PROMPT, max_new_tokens=8)
    assert isinstance(box, ipywidgets.VBox) and "course-sampling-explorer" in box._dom_classes
    text, sliders, _, sample = box.children
    temperature = sliders.children[0]
    assert temperature.description == "temperature" and text.value == PROMPT
    temperature.value = 0.0
    greedy = sample.value
    assert se.sample_continuation(model, tok, PROMPT, 0.0, max_new_tokens=8) in \
        greedy.replace("<b>", "").replace("</b>", "")
    temperature.value = 2.0
    sliders.children[3].value = 4  # a new seed
    assert sample.value != greedy
