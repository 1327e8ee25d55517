"""The batcher in its own process (``engine_process=True``, ``--engine-process``): the same
answers as in the server's own thread, cancellation, shutdown, and a child that dies or cannot
start. References: transformers' ``generate`` for greedy text, the in-thread engine for seeded
sampling. The SIGTERM drain with an engine process is in ``test_serving_connections.py``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import httpx
import pytest
from serving_helpers import Recorder, hf_greedy, run_in_fresh_loop, tiny_model, tiny_tokenizer

from course_utils.serving import ServerThread, create_app
from course_utils.serving.batching import ServerShuttingDown
from course_utils.serving.engine_process import ProcessBatcher

TIMEOUT = httpx.Timeout(60.0)
PROMPTS = ["Once upon a", "The", "Tea or coffee? The café on the corner", "Two plus two is four",
           "Snow fell on the quiet", "A"]
BODIES = [{"prompt": "Once upon a", "max_tokens": 14, "temperature": 0},
          {"prompt": "The robot counted", "max_tokens": 6, "temperature": 0.9, "seed": 3},
          {"prompt": "Tea or coffee?", "max_tokens": 11, "temperature": 1.0, "top_p": 1e-50,
           "seed": 4},
          {"prompt": "Two plus two", "max_tokens": 20, "temperature": 0.7, "top_p": 0.9,
           "seed": 6},
          {"prompt": "A", "max_tokens": 3, "temperature": 0}]


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok)




def process_batcher(kind, model, tok, **kw):
    b = ProcessBatcher(kind, model, eos_token_id=None, pad_token_id=tok.pad_token_id,
                       max_batch_size=kw.pop("max_batch_size", 4), max_wait_ms=0, num_threads=1,
                       **kw)
    b.start()
    return b


@pytest.fixture(scope="module", params=["continuous", "static", "none"])
def servers(request, model, tok):
    """The same mode served twice: the batcher in the server's thread and in a process."""
    made = []
    for engine_process in (False, True):
        app = create_app(model, tok, model_name="tiny", batching=request.param,
                         max_batch_size=8, max_wait_ms=30, num_threads=1,
                         engine_process=engine_process)
        made.append(ServerThread(app, startup_timeout=120).start())
    yield request.param, made
    for srv in made:
        srv.stop()


def test_the_engine_process_answers_as_the_thread_does(servers, tok, model):
    """Greedy (checked against transformers' generate), seeded, top_p=1e-50 requests, alone
    and together, streamed and not: the same text in the process as in the thread."""
    mode, (in_thread, in_process) = servers

    async def together(url: str) -> list[str]:
        async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as c:
            rs = await asyncio.gather(*(c.post("/v1/completions", json={"model": "tiny", **b})
                                        for b in BODIES))
        assert all(r.status_code == 200 for r in rs), [r.text for r in rs]
        return [r.json()["choices"][0]["text"] for r in rs]

    texts = {srv.url: run_in_fresh_loop(together(srv.url)) for srv in (in_thread, in_process)}
    assert texts[in_process.url] == texts[in_thread.url]
    greedy = tok.decode(hf_greedy(model, tok("Once upon a")["input_ids"], 14))
    assert texts[in_process.url][0] == greedy
    with httpx.Client(base_url=in_process.url, timeout=TIMEOUT) as c:
        body = {"model": "tiny", **BODIES[3], "stream": True}
        with c.stream("POST", "/v1/completions", json=body) as r:
            lines = [x for x in r.iter_lines() if x.startswith("data: ")]
        health = c.get("/health").json()
    assert lines[-1] == "data: [DONE]"
    assert health["engine_process"] is True and health["batching"] == mode
    assert health["requests"] >= len(BODIES) + 1


def test_a_cancelled_job_stops_in_the_child(tok, model):
    rec = Recorder(2)
    b = process_batcher("continuous", model, tok)
    long_job = rec.job(0, tok(PROMPTS[0])["input_ids"], 100, temperature=0.0)

    def cancel_after_4(token, job=long_job):
        rec.tokens[0].append(token)
        if len(rec.tokens[0]) == 4:
            job.cancelled.set()
    long_job.on_token = cancel_after_4
    try:
        b.submit(long_job)
        b.submit(rec.job(1, tok(PROMPTS[1])["input_ids"], 30, temperature=0.0))
        assert rec.all_done.wait(60)
        stats = b.stats()
    finally:
        b.stop()
    assert rec.done[0] == ("stop", None) and len(rec.tokens[0]) == 4
    assert rec.done[1] == ("length", None)
    assert rec.tokens[1] == hf_greedy(model, tok(PROMPTS[1])["input_ids"], 30)
    # the long row left the batch soon after: far fewer steps than its 100 tokens
    assert stats["steps"] < 60, stats


def test_stop_ends_every_job_with_server_shutting_down(tok, model):
    rec = Recorder(5)
    b = process_batcher("continuous", model, tok, max_batch_size=2)
    started = threading.Event()
    for i in range(5):
        job = rec.job(i, tok(PROMPTS[i])["input_ids"], 120)
        if i == 0:
            job.on_token = lambda t: (rec.tokens[0].append(t), started.set())
        b.submit(job)
    assert started.wait(30)
    b.stop()
    assert rec.all_done.wait(5)
    for reason, error in rec.done.values():
        assert reason == "error" and isinstance(error, ServerShuttingDown)
    with pytest.raises(RuntimeError, match="not running"):
        b.submit(rec.job(0, [1, 2], 3))


def test_a_child_that_dies_ends_its_jobs_with_a_clear_error(tok, model):
    rec = Recorder(2)
    b = process_batcher("static", model, tok)
    started = threading.Event()
    try:
        job = rec.job(0, tok(PROMPTS[0])["input_ids"], 110)
        job.on_token = lambda t: (rec.tokens[0].append(t), started.set())
        b.submit(job)
        assert started.wait(30)
        os.kill(b._process.pid, signal.SIGKILL)
        rec.all_done.wait(10)
        assert rec.done[0][0] == "error"
        assert "exited unexpectedly" in str(rec.done[0][1])
        with pytest.raises(RuntimeError, match="exited unexpectedly"):
            b.submit(rec.job(1, [1, 2], 3))
    finally:
        b.stop()


def test_a_child_that_cannot_start_says_why(tok, model):
    b = ProcessBatcher("continuous", model, eos_token_id=None, pad_token_id=0,
                       max_batch_size=0)
    with pytest.raises(RuntimeError, match="could not start.*max_batch_size must be at least 1"):
        b.start()
    with pytest.raises(ValueError, match="kind must be one of"):
        ProcessBatcher("dynamic", model)
    with pytest.raises(ValueError, match="draft"):
        ProcessBatcher("speculative", model)


def test_the_queue_bound_holds_across_the_pipe(tok, model):
    b = process_batcher("static", model, tok, max_batch_size=1, max_queue=2)
    rec = Recorder(3)
    try:
        for i in range(3):
            b.submit(rec.job(i, tok(PROMPTS[i])["input_ids"], 60))
        from course_utils.serving.batching import QueueFull

        with pytest.raises(QueueFull):
            b.submit(rec.job(0, [1, 2], 3))
    finally:
        b.stop()
