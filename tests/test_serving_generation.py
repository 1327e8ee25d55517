"""Units of course_utils.serving without HTTP: left padding, batched generation, the batcher,
SSE frames and incremental decoding, each checked against transformers, tokenizers or the
openai client's own SSE parser."""

from __future__ import annotations

import threading

import pytest
import torch
from openai._streaming import SSEDecoder
from serving_helpers import hf_greedy, tiny_model, tiny_tokenizer

from course_utils.serving.batching import DynamicBatcher, Job, QueueFull
from course_utils.serving.generation import generate_batch, left_pad
from course_utils.serving.streaming import IncrementalDecoder, sse_event

PROMPTS = ["Once upon a", "The", "Tea or coffee? The café on the corner", "Two plus two is four"]


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok)


def test_left_pad_matches_the_tokenizer_and_counts_positions(tok):
    seqs = [tok(p)["input_ids"] for p in PROMPTS]
    ids, mask, pos = left_pad(seqs, tok.pad_token_id)
    tok.padding_side = "left"
    ref = tok(PROMPTS, padding=True, return_tensors="pt")
    assert torch.equal(ids, ref["input_ids"])
    assert torch.equal(mask, ref["attention_mask"])
    for row, seq in enumerate(seqs):
        real = pos[row][mask[row].bool()]
        assert real.tolist() == list(range(len(seq)))
        assert (pos[row][~mask[row].bool()] == 0).all()


def test_left_pad_rejects_bad_input():
    with pytest.raises(ValueError, match="empty"):
        left_pad([], 0)
    with pytest.raises(ValueError, match="at least one token"):
        left_pad([[1, 2], []], 0)
    with pytest.raises(TypeError):
        left_pad(torch.ones(2, 2), 0)


def test_padded_logits_equal_unpadded(tok, model):
    """Left padding + mask + position ids: the last position's logits do not change."""
    seqs = [tok(p)["input_ids"] for p in PROMPTS]
    ids, mask, pos = left_pad(seqs, tok.pad_token_id)
    with torch.no_grad():
        batched = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -1]
        for row, seq in enumerate(seqs):
            alone = model(input_ids=torch.tensor([seq])).logits[0, -1]
            torch.testing.assert_close(batched[row], alone, atol=1e-4, rtol=1e-4)
        # Without position ids the padded rows are shifted, and the logits differ.
        shifted = model(input_ids=ids, attention_mask=mask).logits[:, -1]
        assert not torch.allclose(shifted[1], batched[1], atol=1e-3)


def test_batched_greedy_equals_transformers_generate(tok):
    model = tiny_model(tok).double()  # float64: no near-tie can flip an argmax
    seqs = [tok(p)["input_ids"] for p in PROMPTS]
    budgets = [12, 20, 5, 16]
    outs = generate_batch(model, seqs, budgets, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id)
    for seq, budget, out in zip(seqs, budgets, outs, strict=True):
        assert out == hf_greedy(model, seq, budget)
        assert len(set(out)) > 2, "the test model should not just repeat itself"


def test_generate_batch_on_token_can_cancel_a_row(tok, model):
    seqs = [tok(p)["input_ids"] for p in PROMPTS[:2]]
    seen: list[tuple[int, int]] = []

    def on_token(row: int, token: int) -> bool:
        seen.append((row, token))
        return not (row == 0 and len([s for s in seen if s[0] == 0]) == 3)

    outs = generate_batch(model, seqs, [10, 10], on_token=on_token)
    assert len(outs[0]) == 3 and len(outs[1]) == 10
    assert outs[1] == hf_greedy(model, seqs[1], 10)
    with pytest.raises(ValueError, match="context"):
        generate_batch(model, seqs, [500, 1])


def test_seeded_sampling_is_independent_of_the_batch(tok, model):
    seq = tok(PROMPTS[0])["input_ids"]
    def run(batch: list[list[int]]) -> list[int]:
        n = len(batch)
        gens = [torch.Generator().manual_seed(7)] + [None] * (n - 1)
        return generate_batch(model, batch, [15] * n, temperature=[0.9] * n, top_p=[0.9] * n,
                              generators=gens)[0]
    alone = run([seq])
    assert alone == run([seq, tok(PROMPTS[2])["input_ids"], tok(PROMPTS[3])["input_ids"]])


def test_batcher_groups_concurrent_jobs(tok, model):
    batcher = DynamicBatcher(model, eos_token_id=None, pad_token_id=tok.pad_token_id,
                             max_batch_size=4, max_wait_ms=200)
    results: dict[int, list[int]] = {i: [] for i in range(6)}
    all_done = threading.Event()
    reasons = {}

    def job(i: int) -> Job:
        def finish(reason, error, i=i):
            reasons[i] = (reason, error)
            if len(reasons) == 6:
                all_done.set()
        return Job(tok(PROMPTS[i % 4])["input_ids"], 6, temperature=0.0,
                   on_token=results[i].append, on_done=finish)

    with pytest.raises(RuntimeError, match="start"):
        batcher.submit(job(0))
    batcher.start()
    for i in range(6):
        batcher.submit(job(i))
    assert all_done.wait(60)
    batcher.stop()
    assert all(r == ("length", None) for r in reasons.values())
    assert batcher.requests == 6 and batcher.batches == 2  # 4 + 2, not 6 singles
    for i in range(6):
        assert results[i] == hf_greedy(model, tok(PROMPTS[i % 4])["input_ids"], 6)


def test_batcher_queue_limit(tok, model):
    batcher = DynamicBatcher(model, eos_token_id=None, pad_token_id=0, max_queue=0)
    batcher.start()
    try:
        with pytest.raises(QueueFull):
            batcher.submit(Job([1], 1, on_token=print, on_done=print))
    finally:
        batcher.stop()
    with pytest.raises(ValueError):
        DynamicBatcher(model, eos_token_id=None, pad_token_id=0, max_batch_size=0)


@pytest.mark.parametrize("data,event", [({"text": "hi"}, None), ("[DONE]", None),
                                        ("line one\nline two", "message"),
                                        ({"text": "a\nb ü"}, "token"), ("", None)])
def test_sse_event_parses_with_the_openai_client_decoder(data, event):
    frame = sse_event(data, event=event)
    assert frame.endswith("\n\n")
    parsed = list(SSEDecoder().iter_bytes(iter([frame.encode()])))
    assert len(parsed) == 1
    expected = data if isinstance(data, str) else __import__("json").dumps(data)
    assert parsed[0].data == expected
    assert parsed[0].event == event
    with pytest.raises(ValueError):
        sse_event("x", event="two\nlines")


TEXT = "Snow fell; children built a snowman ⛄ and laughed 😀. Crème brûlée!"


def _pieces(tok, text: str, stop=()) -> tuple[list[str], IncrementalDecoder]:
    dec = IncrementalDecoder(tok, stop)
    pieces = []
    for t in tok(text)["input_ids"]:
        pieces.append(dec.push(t))
        if dec.stopped:
            break
    pieces.append(dec.flush())
    return pieces, dec


def test_incremental_decoder_never_splits_a_character(tok):
    ids = tok(TEXT)["input_ids"]
    assert any("\ufffd" in tok.decode([i]) for i in ids), "the text should split a character"
    pieces, dec = _pieces(tok, TEXT)
    assert "".join(pieces) == tok.decode(ids) == TEXT
    assert not any("\ufffd" in p for p in pieces)
    assert dec.tokens == len(ids)


@pytest.mark.parametrize("stop", [["snowman"], ["⛄"], ["zzz", "laughed"], ["!"], ["nowhere"]])
def test_incremental_decoder_stops_before_a_stop_string(tok, stop):
    pieces, dec = _pieces(tok, TEXT, stop)
    cut = min((TEXT.find(s) for s in stop if s in TEXT), default=len(TEXT))
    assert "".join(pieces) == TEXT[:cut]
    assert dec.stopped == (cut < len(TEXT))
