"""Continuous batching, numerically safe sampling, row-level isolation, cancellation and
shutdown in every batching mode; the HTTP parts over real uvicorn on 127.0.0.1.

References are independent: transformers' ``TemperatureLogitsWarper``/``TopPLogitsWarper`` for
the sampling distribution, transformers' ``generate`` for greedy text, and each request served
alone for "the same tokens whatever shares the batch".
"""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
import torch
from serving_helpers import Recorder, hf_greedy, run_in_fresh_loop, tiny_model, tiny_tokenizer
from transformers import DynamicCache, TemperatureLogitsWarper, TopPLogitsWarper

from course_utils.lm import sample_next, sample_rows, sampling_probs
from course_utils.serving import ServerThread, create_app
from course_utils.serving.batching import DynamicBatcher, ServerShuttingDown
from course_utils.serving.continuous import ContinuousBatcher
from course_utils.serving.scheduler import Request, append_rows, schedule

PROMPTS = ["Once upon a", "The", "Tea or coffee? The café on the corner", "Two plus two is four",
           "Snow fell on the quiet", "A"]
TIMEOUT = httpx.Timeout(60.0)
MODES = ["continuous", "static", "none"]



@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok)


# --------------------------------------------------------------------------- numerics


def hf_probs(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """transformers' own warpers, then softmax: the distribution generate() samples from."""
    scores = TemperatureLogitsWarper(temperature)(None, logits.clone())
    if top_p < 1:
        scores = TopPLogitsWarper(top_p)(None, scores)
    return scores.softmax(-1)


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.7, 0.9), (1.3, 0.5), (0.2, 0.95),
                                               (1.0, 1e-50), (5.0, 1e-3), (0.05, 0.3)])
def test_sampling_probs_equal_transformers_warpers(temperature, top_p):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 300, generator=g) * 4
    got = sampling_probs(logits, torch.full((5,), temperature), torch.full((5,), top_p))
    got = got / got.sum(-1, keepdim=True)
    torch.testing.assert_close(got, hf_probs(logits, temperature, top_p), atol=1e-6, rtol=1e-5)


def test_top_p_that_underflows_to_zero_keeps_the_top_token():
    logits = torch.tensor([[0.1, 3.0, -2.0, 2.9], [5.0, 5.0 - 1e-3, 0.0, 1.0]])
    tops = torch.tensor([1e-50, 1e-50])
    assert float(tops[0]) == 0.0  # float32: this is the case of the issue
    probs = sampling_probs(logits, torch.ones(2), tops)
    ref = hf_probs(logits, 1.0, 1e-50)  # min_tokens_to_keep=1: the top token only
    assert torch.equal(probs > 0, ref > 0)
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    assert sample_next(logits, torch.ones(2), tops, gens).tolist() == [1, 0]


@pytest.mark.parametrize("temperature", [1e-30, 1e-38, 1e-45, 1e-12])
def test_tiny_temperatures_are_the_greedy_limit_not_nan(temperature):
    logits = torch.randn(4, 500, generator=torch.Generator().manual_seed(3)) * 30
    logits[1, 7] = 1e4  # a huge logit: logits / 1e-30 would overflow to inf
    temps = torch.full((4,), temperature)
    probs = sampling_probs(logits, temps, torch.ones(4))
    assert torch.isfinite(probs).all()
    assert torch.equal(probs.argmax(-1), logits.argmax(-1))
    assert torch.equal(probs > 0, torch.nn.functional.one_hot(logits.argmax(-1), 500) > 0)
    # transformers' warper, for comparison, gives NaN in float32 at the smallest of these.
    gens = [torch.Generator().manual_seed(i) for i in range(4)]
    assert torch.equal(sample_next(logits, temps, torch.ones(4), gens), logits.argmax(-1))
    # ... and the limit is continuous: at 1e-3 transformers agrees on the support.
    assert torch.equal(sampling_probs(logits, torch.full((4,), 1e-3), torch.ones(4)) > 1e-30,
                       hf_probs(logits, 1e-3, 1.0) > 1e-30)


def test_a_row_that_cannot_be_sampled_fails_alone():
    logits = torch.randn(3, 50, generator=torch.Generator().manual_seed(4))
    bad = logits.clone()
    bad[1] = float("nan")
    temps, tops = torch.full((3,), 0.9), torch.full((3,), 0.9)

    def gens():
        return [torch.Generator().manual_seed(s) for s in (10, 11, 12)]
    tokens, errors = sample_rows(bad, temps, tops, gens())
    assert list(errors) == [1] and "could be sampled" in str(errors[1])
    clean = sample_next(logits, temps, tops, gens())
    assert tokens[0] == clean[0] and tokens[2] == clean[2]  # the others' draws are unchanged
    with pytest.raises(RuntimeError, match="row 1"):
        sample_next(bad, temps, tops, gens())


# --------------------------------------------------------------------------- the scheduler


def test_schedule_drops_trims_and_admits_in_order():
    a, b, c = Request("a"), Request("b", finished=True), Request("c")
    w = [Request("w1"), Request("w2", cancelled=True), Request("w3"), Request("w4")]
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1], [0, 1, 1, 1]])
    keys = torch.arange(3 * 4).reshape(3, 1, 4, 1).float()
    step = schedule([a, b, c], w, 4, mask, [keys])
    assert [r.id for r in step.running] == ["a", "c"]
    assert [r.id for r in step.admitted] == ["w1", "w3"]
    assert [r.id for r in step.waiting] == ["w4"]
    assert step.mask.tolist() == [[0, 1, 1], [1, 1, 1]]  # b's long row gone: one column cut
    assert step.cache[0][:, 0, :, 0].tolist() == [[1, 2, 3], [9, 10, 11]]
    mask2, cache2 = append_rows(step.mask, step.cache, torch.tensor([[1, 1, 1, 1, 1]]),
                                [torch.full((1, 1, 5, 1), 7.0)])
    assert mask2.tolist() == [[0, 0, 0, 1, 1], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1]]
    assert cache2[0][:, 0, :, 0].tolist() == [[0, 0, 1, 2, 3], [0, 0, 9, 10, 11], [7] * 5]


# --------------------------------------------------------------------------- the batchers



def batcher(kind: str, model, tok, **kw):
    cls = ContinuousBatcher if kind == "continuous" else DynamicBatcher
    size = kw.pop("max_batch_size", 4)
    size = 1 if kind == "none" else size
    b = cls(model, eos_token_id=None, pad_token_id=tok.pad_token_id, max_batch_size=size,
            max_wait_ms=kw.pop("max_wait_ms", 0), **kw)
    b.start()
    return b


@pytest.mark.parametrize("kind", MODES)
def test_staggered_requests_get_their_solo_tokens(kind, tok):
    model = tiny_model(tok).double()  # float64: no near-tie can flip an argmax
    rec = Recorder(8)
    b = batcher(kind, model, tok, max_batch_size=3)
    budgets = [30, 5, 12, 1, 20, 8, 3, 16]
    seeds = [None, 7, None, 3, 11, None, 5, 2]
    try:
        for i, (budget, seed) in enumerate(zip(budgets, seeds, strict=True)):
            ids = tok(PROMPTS[i % len(PROMPTS)])["input_ids"]
            b.submit(rec.job(i, ids, budget, temperature=0.0 if seed is None else 0.9,
                             top_p=0.9, seed=seed))
            time.sleep(0.003 * (i % 3))  # arrivals while others run
        assert rec.all_done.wait(60)
    finally:
        b.stop()
    for i, (budget, seed) in enumerate(zip(budgets, seeds, strict=True)):
        ids = tok(PROMPTS[i % len(PROMPTS)])["input_ids"]
        assert rec.done[i] == ("length", None)
        if seed is None:
            assert rec.tokens[i] == hf_greedy(model, ids, budget), i
        else:
            alone = Recorder(1)
            solo = batcher("none", model, tok)
            solo.submit(alone.job(0, ids, budget, temperature=0.9, top_p=0.9, seed=seed))
            assert alone.all_done.wait(30)
            solo.stop()
            assert rec.tokens[i] == alone.tokens[0], i


def test_rows_longer_than_the_first_cache_buffer_keep_their_solo_tokens(tok):
    """The continuous worker's cache buffers start narrow and widen (copying the rows) when a
    row outgrows them, here twice while other rows come and go."""
    model = tiny_model(tok).double()
    budgets = [120, 5, 70, 12, 3, 100]
    rec = Recorder(len(budgets))
    b = batcher("continuous", model, tok, max_batch_size=3)
    try:
        for i, budget in enumerate(budgets):
            b.submit(rec.job(i, tok(PROMPTS[i % len(PROMPTS)])["input_ids"], budget,
                             temperature=0.0))
            time.sleep(0.01)
        assert rec.all_done.wait(60)
    finally:
        b.stop()
    for i, budget in enumerate(budgets):
        assert rec.done[i] == ("length", None)
        assert rec.tokens[i] == hf_greedy(model, tok(PROMPTS[i % len(PROMPTS)])["input_ids"],
                                          budget), i


def test_a_new_request_joins_the_running_batch_at_the_next_step(tok, model):
    """Continuous: a short request sent while a long one runs is done long before it."""
    for kind, joins in (("continuous", True), ("static", False)):
        rec = Recorder(2)
        b = batcher(kind, model, tok, max_batch_size=4)
        started = threading.Event()
        long_job = rec.job(0, tok("Once")["input_ids"], 100)
        long_job.on_token = lambda t, rec=rec, started=started: (rec.tokens[0].append(t),
                                                                 started.set())
        try:
            b.submit(long_job)
            assert started.wait(30)
            b.submit(rec.job(1, tok("The")["input_ids"], 3))
            assert rec.all_done.wait(60)
        finally:
            b.stop()
        order = list(rec.done)
        assert (order == [1, 0]) is joins, (kind, order)
        if kind == "continuous":
            assert b.stats()["mean_rows_per_step"] > 1


@pytest.mark.parametrize("kind", MODES)
def test_a_cancelled_row_leaves_at_the_next_step(kind, tok, model):
    rec = Recorder(3)
    b = batcher(kind, model, tok)
    jobs = [rec.job(i, tok(PROMPTS[i])["input_ids"], 40) for i in range(3)]

    def cancel_after_4(token, job=jobs[1]):
        rec.tokens[1].append(token)
        if len(rec.tokens[1]) == 4:
            job.cancelled.set()
    jobs[1].on_token = cancel_after_4
    queued_then_cancelled = rec.job(2, tok(PROMPTS[2])["input_ids"], 40)
    try:
        b.submit(jobs[0])
        b.submit(jobs[1])
        b.submit(queued_then_cancelled)
        queued_then_cancelled.cancelled.set()
        assert rec.all_done.wait(60)
    finally:
        b.stop()
    assert len(rec.tokens[1]) == 4 and rec.done[1] == ("stop", None)
    assert rec.done[0] == ("length", None) and len(rec.tokens[0]) == 40
    assert rec.done[2] == ("stop", None) and rec.tokens[2] == []


@pytest.mark.parametrize("kind", MODES)
def test_stop_ends_every_row_and_queued_job_with_server_shutting_down(kind, tok, model):
    rec = Recorder(6)
    b = batcher(kind, model, tok, max_batch_size=2)
    started = threading.Event()
    try:
        for i in range(6):
            job = rec.job(i, tok(PROMPTS[i])["input_ids"], 120)
            if i == 0:
                job.on_token = lambda t: (rec.tokens[0].append(t), started.set())
            b.submit(job)
        assert started.wait(30)
    finally:
        t0 = time.perf_counter()
        b.stop()
        took = time.perf_counter() - t0
    assert rec.all_done.wait(5) and took < 5
    for reason, error in rec.done.values():
        assert reason == "error" and isinstance(error, ServerShuttingDown)
        assert "shutting down" in str(error)
    assert len(rec.tokens[0]) < 120


class Poisoned(torch.nn.Module):
    """The tiny model, but its scores are NaN wherever the input token they follow is
    ``token`` (whatever the layout: a batch of rows, or the continuous worker's packed
    tokens with ``logits_to_keep`` picking each row's last one)."""

    def __init__(self, inner, token: int):
        super().__init__()
        self.inner, self.token = inner, token
        self.config = inner.config

    @property
    def device(self):
        return self.inner.device

    def forward(self, **kw):
        out = self.inner(**kw)
        ids, keep = kw["input_ids"], kw.get("logits_to_keep", 0)
        at = ids[:, keep] if isinstance(keep, torch.Tensor) else ids[:, -keep:] if keep else ids
        out.logits[at == self.token] = float("nan")
        return out


@pytest.mark.parametrize("kind", ["continuous", "static"])
def test_a_failing_row_fails_alone_and_the_batch_finishes(kind, tok, model):
    poison = tok("Once")["input_ids"][-1]
    rec = Recorder(3)
    b = batcher(kind, Poisoned(model, poison), tok, max_wait_ms=100)
    try:
        b.submit(rec.job(0, tok("The robot")["input_ids"], 10, temperature=0.0))
        b.submit(rec.job(1, tok("Once")["input_ids"], 10, temperature=0.8))
        b.submit(rec.job(2, tok("Two plus")["input_ids"], 10, temperature=0.8, seed=1))
        assert rec.all_done.wait(60)
    finally:
        b.stop()
    assert rec.done[1][0] == "error" and "sampled" in str(rec.done[1][1])
    assert rec.done[0] == ("length", None) and rec.done[2] == ("length", None)
    assert rec.tokens[0] == hf_greedy(model, tok("The robot")["input_ids"], 10)


def hf_logits_after(model, ids: list[int], generated: list[int]) -> torch.Tensor:
    """transformers' own GPT-2 on one unpadded row, the plain way: the prompt in one pass into
    a fresh ``DynamicCache``, then the generated tokens one at a time; the last scores."""
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids]), cache=cache, use_cache=True).logits
        for token in generated:
            logits = model(input_ids=torch.tensor([[token]]), cache=cache,
                           use_cache=True).logits
    return logits[0, -1]


def test_each_row_of_a_fused_step_gets_the_logits_of_its_solo_forward(tok, model):
    """The continuous worker reads prompts (in chunks of at most max_prefill_tokens) in the
    decoding rows' forward pass, packed. Every logit row it samples from equals transformers'
    own forward of that row alone, whatever shared the pass: several prompts read at once,
    a prompt split over steps, decoding rows beside them, rows moved to other slots."""
    prompts = [tok(p)["input_ids"] for p in PROMPTS]
    prompts[3] = (prompts[3] * 6)[:23]  # read in 3 chunks of at most 8 tokens
    prompts[1] = prompts[1][:1]  # a one-token prompt: read as a decoding row reads
    budgets = [2, 9, 12, 7, 5, 6]
    rec = Recorder(len(budgets))
    b = ContinuousBatcher(model, eos_token_id=None, pad_token_id=tok.pad_token_id,
                          max_batch_size=4, max_wait_ms=200, max_prefill_tokens=8)
    seen, shapes = [], []
    sample, forward = b._sample, b._forward

    def record_sample(rows, logits):
        seen.extend((r.job, r.count, logits[i].clone()) for i, r in enumerate(rows))
        sample(rows, logits)

    def record_forward(rows, feeds):
        shapes.append(([r.slot for r in rows], [len(f) for f in feeds]))
        return forward(rows, feeds)
    b._sample, b._forward = record_sample, record_forward
    b.start()
    try:
        jobs = [rec.job(i, prompts[i], budget, temperature=0.0)
                for i, budget in enumerate(budgets)]
        for job in jobs[:4]:
            b.submit(job)
        time.sleep(0.4)
        for job in jobs[4:]:
            b.submit(job)
        assert rec.all_done.wait(60)
    finally:
        b.stop()
    assert all(done == ("length", None) for done in rec.done.values())
    assert model.config._attn_implementation == "sdpa"  # selected for the worker's passes only
    assert len(seen) == sum(budgets)
    for job, count, logits in seen:
        i = jobs.index(job)
        expected = hf_logits_after(model, prompts[i], rec.tokens[i][:count])
        torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)
    # the cases the test is about did happen
    reading_together = [sizes for _, sizes in shapes if sum(s > 1 for s in sizes) > 1]
    assert reading_together, shapes
    assert any(1 in sizes and max(sizes) > 1 for sizes in reading_together), shapes
    # 8 prompt tokens a step, oldest row first, at least one each: 3 + 1 + 4 (of 10), + 1
    assert shapes[0][1] == [3, 1, 4, 1], shapes
    assert sum(8 in sizes for _, sizes in shapes) >= 2, shapes  # the long prompt, in chunks
    apart = [[slot for slot, size in zip(slots, sizes, strict=True) if size > 1]
             for slots, sizes in shapes]
    assert any(r and r != list(range(r[0], r[0] + len(r))) for r in apart), shapes
    assert any(r == [0] and len(slots) > 1 for r, (slots, _) in zip(apart[2:], shapes[2:],
                                                                      strict=True)), shapes


def test_a_prompt_the_model_cannot_take_beside_decoding_rows_fails_alone(tok, model):
    """A prompt longer than the model's positions (a caller that did not validate) makes the
    fused pass raise midway through its chunks: the pass is retried without it, so the
    decoding rows keep their solo tokens and only that request fails."""
    too_long = (tok(PROMPTS[2])["input_ids"] * 40)[:model.config.n_positions + 20]
    rec = Recorder(3)
    b = batcher("continuous", model, tok, max_wait_ms=0)
    started = threading.Event()
    try:
        first = rec.job(0, tok("Once upon a")["input_ids"], 40, temperature=0.0)
        first.on_token = lambda t: (rec.tokens[0].append(t), started.set())
        b.submit(first)
        assert started.wait(30)
        b.submit(rec.job(1, too_long, 5, temperature=0.0))
        b.submit(rec.job(2, tok("The robot")["input_ids"], 12, temperature=0.0))
        assert rec.all_done.wait(60)
    finally:
        b.stop()
    assert rec.done[1][0] == "error" and rec.tokens[1] == []
    assert rec.done[0] == ("length", None) and rec.done[2] == ("length", None)
    assert rec.tokens[0] == hf_greedy(model, tok("Once upon a")["input_ids"], 40)
    assert rec.tokens[2] == hf_greedy(model, tok("The robot")["input_ids"], 12)


@pytest.mark.parametrize("failing_first", [False, True], ids=["slot-reused", "row-moved"])
def test_a_row_whose_cache_holds_nan_does_not_poison_the_next_row_in_its_slot(tok,
                                                                              failing_first):
    """A token whose embedding is NaN makes its row's keys and values NaN. That row fails
    (alone); the request admitted into its cache slot next must not see the NaN, masked or not
    (0 x NaN is NaN), nor must the row that moves into the freed slot (``failing_first``: the
    failing row takes slot 0, the other row moves there from slot 1)."""
    clean = tiny_model(tok)
    first = tok("The robot counted")["input_ids"]
    # the other row must attend (masked) columns beyond its own length where the NaN was:
    # a short row beside a long one in the reused slot, a long one beside the moved row
    later = (tok("Snow fell on the quiet")["input_ids"] * 9)[:40] if failing_first else \
        tok("A")["input_ids"]
    expected = {0: hf_greedy(clean, first, 30), 2: hf_greedy(clean, later, 12)}
    used = set(first + later + expected[0] + expected[2])
    poison = next(t for t in tok("Once upon a time, far")["input_ids"] if t not in used)
    model = tiny_model(tok)
    with torch.no_grad():  # untie the output head first: only the input embedding is NaN
        model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.clone())
        model.transformer.wte.weight[poison] = float("nan")
    rec = Recorder(3)
    b = batcher("continuous", model, tok, max_batch_size=2,
                max_wait_ms=300 if failing_first else 0)
    started = threading.Event()
    try:
        job = rec.job(0, first, 30, temperature=0.0)
        job.on_token = lambda t: (rec.tokens[0].append(t), started.set())
        failing = rec.job(1, [poison] * 9 + first, 5, temperature=0.7)
        if failing_first:  # admitted together: the failing row in slot 0
            b.submit(failing)
            b.submit(job)
        else:
            b.submit(job)
            assert started.wait(30)
            b.submit(failing)
        deadline = time.monotonic() + 30
        while 1 not in rec.done and time.monotonic() < deadline:
            time.sleep(0.005)
        b.submit(rec.job(2, later, 12, temperature=0.0))
        assert rec.all_done.wait(60)
    finally:
        b.stop()
    assert rec.done[1][0] == "error" and rec.tokens[1] == []
    assert rec.done[0] == ("length", None) and rec.tokens[0] == expected[0]
    assert rec.done[2] == ("length", None) and rec.tokens[2] == expected[2]


@pytest.mark.parametrize("kind", MODES)
def test_a_prompt_the_worker_cannot_prefill_fails_alone_and_the_worker_lives(kind, tok, model):
    """An empty prompt (a caller that skipped validation) once killed the continuous worker
    thread, so every later request hung; now that request fails and the next one is served."""
    rec = Recorder(2)
    b = batcher(kind, model, tok)
    try:
        b.submit(rec.job(0, [], 5, temperature=0.0))
        time.sleep(0.2)
        b.submit(rec.job(1, tok("The robot")["input_ids"], 5, temperature=0.0))
        assert rec.all_done.wait(60), "the worker stopped serving"
    finally:
        b.stop()
    assert rec.done[0][0] == "error" and "at least one token" in str(rec.done[0][1])
    assert rec.done[1] == ("length", None)
    assert rec.tokens[1] == hf_greedy(model, tok("The robot")["input_ids"], 5)


# --------------------------------------------------------------------------- over HTTP


@pytest.fixture(scope="module", params=[(m, q) for q in (False, True) for m in MODES],
                ids=lambda p: f"{p[0]}{'-int8' if p[1] else ''}")
def server(request, model, tok):
    mode, quantize = request.param
    app = create_app(model, tok, model_name="tiny", batching=mode, quantize=quantize,
                     max_batch_size=8, max_wait_ms=30, num_threads=1)
    with ServerThread(app, startup_timeout=60) as srv:
        yield srv, mode


BODIES = [{"prompt": "Once upon a", "max_tokens": 14, "temperature": 0},
          {"prompt": "The robot counted", "max_tokens": 6, "temperature": 0.9, "seed": 3},
          {"prompt": "Tea or coffee?", "max_tokens": 11, "temperature": 1.0, "top_p": 1e-50,
           "seed": 4},
          {"prompt": "Snow fell", "max_tokens": 9, "temperature": 1e-30, "seed": 5},
          {"prompt": "Two plus two", "max_tokens": 20, "temperature": 0.7, "top_p": 0.9,
           "seed": 6},
          {"prompt": "A", "max_tokens": 3, "temperature": 0}]


def test_every_request_gets_its_solo_text_whatever_shares_the_batch(server):
    """Greedy, seeded, top_p=1e-50 and temperature=1e-30 requests together: all succeed, each
    with the text it gets alone, in every mode, int8 included."""
    srv, mode = server
    with httpx.Client(base_url=srv.url, timeout=TIMEOUT) as c:
        alone = []
        for body in BODIES:
            r = c.post("/v1/completions", json={"model": "tiny", **body})
            assert r.status_code == 200, r.text
            alone.append(r.json()["choices"][0]["text"])
        before = c.get("/health").json()

    async def together() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=srv.url, timeout=TIMEOUT) as c:
            return await asyncio.gather(*(c.post("/v1/completions", json={"model": "tiny",
                                                                          **b}) for b in BODIES))

    responses = run_in_fresh_loop(together())
    after = httpx.get(f"{srv.url}/health").json()
    for body, r, text in zip(BODIES, responses, alone, strict=True):
        assert r.status_code == 200, (body, r.text)
        assert r.json()["choices"][0]["text"] == text, body
    assert after["batching"] == mode
    if mode != "none":
        assert after["batches"] - before["batches"] < len(BODIES), "nothing was batched"


def test_batching_modes_and_their_old_spellings(model, tok):
    from course_utils.serving.__main__ import main
    from course_utils.serving.engine import Engine

    for given, mode in (("continuous", "continuous"), ("static", "static"), ("none", "none"),
                        (True, "static"), (False, "none")):
        engine = Engine(model, tok, name="t", batching=given)
        assert engine.batching == mode
        assert isinstance(engine.batcher, ContinuousBatcher) == (mode == "continuous")
        assert engine.batcher.max_batch_size == (1 if mode == "none" else 16)
    with pytest.raises(ValueError, match="continuous"):
        create_app(model, tok, batching="dynamic")
    with pytest.raises(SystemExit):
        main(["--batching", "sometimes"])
