"""Perplexity against the model's own loss: ``exp(model(ids, labels=ids).loss)``.

A tiny random GPT-2 with a 16-token context (tests/_tiny_lm.py) makes the sliding window do
real work on texts of 30-40 tokens.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from _tiny_lm import CONTEXT, random_text, tiny_model, tiny_tokenizer

from course_utils.metrics import perplexity, perplexity_from_logprobs, token_logprobs, windows


@pytest.fixture(scope="module")
def lm():
    torch.set_num_threads(1)
    tok = tiny_tokenizer()
    return tiny_model(len(tok)), tok


def _ids(tok, text: str, bos: bool = False) -> list[int]:
    ids = tok(text, add_special_tokens=False)["input_ids"]
    return [tok.bos_token_id, *ids] if bos else ids


def _model_loss(model, ids: list[int], labels: list[int] | None = None) -> tuple[float, int]:
    """The model's own mean loss and how many tokens it averaged over."""
    x = torch.tensor([ids])
    y = x if labels is None else torch.tensor([labels])
    with torch.no_grad():
        loss = model(input_ids=x, labels=y).loss.item()
    return loss, int((y[0, 1:] != -100).sum())


def test_short_text_equals_exp_of_model_loss(lm):
    model, tok = lm
    text = "the cat sat on a mat and then it was happy"
    loss, _ = _model_loss(model, _ids(tok, text))
    out = perplexity(model, tok, [text], add_start_token=False)
    assert out["perplexities"][0] == pytest.approx(math.exp(loss), rel=1e-5)
    loss_bos, _ = _model_loss(model, _ids(tok, text, bos=True))
    out = perplexity(model, tok, [text])  # default: BOS prepended, first word predicted too
    assert out["perplexities"][0] == pytest.approx(math.exp(loss_bos), rel=1e-5)


def test_non_overlapping_windows_equal_chunked_model_loss(lm):
    """stride == context: each chunk is scored on its own, its first token unpredicted."""
    model, tok = lm
    text = random_text(torch.Generator().manual_seed(1), 40)
    ids = _ids(tok, text)
    nll = count = 0.0
    for start in range(0, len(ids), CONTEXT):
        chunk = ids[start:start + CONTEXT]
        if len(chunk) > 1:
            loss, n = _model_loss(model, chunk)
            nll, count = nll + loss * n, count + n
    out = perplexity(model, tok, [text], stride=CONTEXT, add_start_token=False)
    assert out["perplexity"] == pytest.approx(math.exp(nll / count), rel=1e-5)


@pytest.mark.parametrize("stride", [1, 5, 8, 15])
def test_sliding_window_equals_the_hf_recipe(lm, stride):
    """The recipe of the transformers docs ("perplexity of fixed-length models"), with labels
    set to -100 where a window's tokens were already scored, and the model's own loss."""
    model, tok = lm
    texts = [random_text(torch.Generator().manual_seed(s), n) for s, n in ((2, 37), (3, 21))]
    nll_all = count_all = 0.0
    per_text = []
    for text in texts:
        ids = _ids(tok, text)
        nll = count = 0.0
        prev_end = 0
        for begin in range(0, len(ids), stride):
            end = min(begin + CONTEXT, len(ids))
            trg_len = end - prev_end
            window = ids[begin:end]
            labels = [-100] * (len(window) - trg_len) + window[len(window) - trg_len:]
            loss, n = _model_loss(model, window, labels)
            nll, count = nll + loss * n, count + n
            prev_end = end
            if end == len(ids):
                break
        per_text.append(math.exp(nll / count))
        nll_all, count_all = nll_all + nll, count_all + count
        assert count == len(ids) - 1  # every token but the first is scored exactly once
    out = perplexity(model, tok, texts, stride=stride, add_start_token=False, batch_size=3)
    assert out["perplexities"] == pytest.approx(per_text, rel=1e-5)
    assert out["mean_perplexity"] == pytest.approx(sum(per_text) / 2, rel=1e-5)
    assert out["perplexity"] == pytest.approx(math.exp(nll_all / count_all), rel=1e-5)


def test_batch_size_does_not_change_the_result(lm):
    model, tok = lm
    rng = torch.Generator().manual_seed(4)
    texts = [random_text(rng, n) for n in (3, 40, 12, 25, 1)]
    one = perplexity(model, tok, texts, batch_size=1, stride=6)
    many = perplexity(model, tok, texts, batch_size=7, stride=6)
    assert many["perplexities"] == pytest.approx(one["perplexities"], rel=1e-5)


def test_model_mode_is_restored_and_no_grad_is_kept(lm):
    model, tok = lm
    model.train()
    try:
        perplexity(model, tok, ["the cat sat"])
        assert model.training
        assert all(p.grad is None for p in model.parameters())
    finally:
        model.eval()


def test_windows_score_every_token_once():
    for n in (2, 5, 16, 17, 40, 100):
        for length, stride in ((16, 16), (16, 8), (16, 1), (4, 3), (2, 1)):
            scored = [t for _, e, f in windows(n, length, stride) for t in range(f, e)]
            starts = range(0, n, length) if stride == length else [0]  # no overlap: unscored
            assert scored == [t for t in range(n) if t not in starts], (n, length, stride)
            for b, e, f in windows(n, length, stride):
                assert e - b <= length and b < f
                if b > 0:  # after the first window every token keeps length - stride context
                    assert f - b >= length - stride
    with pytest.raises(ValueError, match="skip tokens"):
        windows(10, 4, 5)


def test_token_logprobs_and_perplexity_from_logprobs_against_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 11, generator=g)
    ids = torch.randint(0, 11, (3, 7), generator=g)
    ce = F.cross_entropy(logits[:, :-1].reshape(-1, 11), ids[:, 1:].reshape(-1),
                         reduction="none").view(3, 6)
    lp = token_logprobs(logits, ids)
    assert torch.allclose(lp, -ce, atol=1e-6)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] + [0] * 5])
    lp_padded = lp.masked_fill(mask == 0, float("-inf"))  # garbage in the padding is ignored
    expected = torch.stack([(ce[i, :k].mean()).exp() for i, k in enumerate((6, 4, 1))])
    assert torch.allclose(perplexity_from_logprobs(lp_padded, mask), expected, atol=1e-5)
    assert torch.allclose(perplexity_from_logprobs(lp), ce.mean(-1).exp(), atol=1e-5)


@pytest.mark.parametrize("kwargs, texts, error, words", [
    ({}, "the cat", TypeError, "wrap it in a list"),
    ({}, [], ValueError, "empty"),
    ({"add_start_token": False}, ["cat"], ValueError, "at least one token to predict"),
    ({"stride": 20}, ["the cat sat"], ValueError, "skip tokens"),
    ({"stride": 2.5}, ["the cat sat"], TypeError, "stride must be an int"),
    ({"batch_size": 0}, ["the cat sat"], ValueError, "batch_size"),
    ({"max_length": 1}, ["the cat sat"], ValueError, "max_length"),
])
def test_perplexity_rejects_bad_input(lm, kwargs, texts, error, words):
    model, tok = lm
    with pytest.raises(error, match=words):
        perplexity(model, tok, texts, **kwargs)


def test_missing_bos_token_is_a_clear_error(lm):
    model, _ = lm
    tok = tiny_tokenizer()
    tok.bos_token = None
    with pytest.raises(ValueError, match="add_start_token=False"):
        perplexity(model, tok, ["the cat sat"])
