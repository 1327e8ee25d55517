"""The service over real HTTP: uvicorn on 127.0.0.1 (a free port), driven by httpx and by the
official openai client. The model is a tiny random GPT-2 built in the test; greedy outputs are
compared with transformers' own generate() on the same model."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import signal
import socket

import httpx
import openai
import pytest
from serving_helpers import hf_greedy, tiny_model, tiny_tokenizer

from course_utils.serving import ServerProcess, ServerThread, create_app, load_model

NAME = "tiny-test"
TIMEOUT = httpx.Timeout(60.0)


def run_in_fresh_loop(coro):
    """asyncio.run in a thread of its own: the browser tests' Playwright session keeps an event
    loop running in the main thread for the whole test session."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok)


@pytest.fixture(scope="module")
def server(model, tok):
    app = create_app(model, tok, model_name=NAME, max_batch_size=8, max_wait_ms=50,
                     num_threads=1, max_body_bytes=16_384)
    with ServerThread(app, startup_timeout=60) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        yield c


def expected(model, tok, prompt: str, new_tokens: int) -> str:
    """What greedy decoding must give, from transformers' generate()."""
    out = hf_greedy(model, tok(prompt)["input_ids"], new_tokens)
    return tok.decode(out, skip_special_tokens=True, clean_up_tokenization_spaces=False)


def sse_data(text: str) -> list[str]:
    return [line[len("data: "):] for line in text.splitlines() if line.startswith("data: ")]


# --------------------------------------------------------------------------- endpoints


def test_health(client):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["model"] == NAME
    assert body["context_length"] == 128 and body["max_batch_size"] == 8


def test_generate_greedy_matches_transformers(client, model, tok):
    prompt = "Once upon a time"
    n = len(tok(prompt)["input_ids"])
    r = client.post("/generate", json={"prompt": prompt, "max_length": n + 12,
                                       "temperature": 0})
    assert r.status_code == 200, r.text
    assert r.json()["generated_text"] == prompt + expected(model, tok, prompt, 12)
    assert r.json()["finish_reason"] in ("length", "stop")


def test_generate_defaults_and_sampling(client):
    r = client.post("/generate", json={"prompt": "The robot"})
    assert r.status_code == 200 and r.json()["generated_text"].startswith("The robot")


def test_concurrent_requests_are_batched_and_stay_correct(server, model, tok):
    prompts = ["Once", "The robot counted", "Tea or coffee?", "Snow fell on the", "Two plus",
               "A", "children built a snowman", "and laughed"]
    before = httpx.get(f"{server.url}/health").json()

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as c:
            return await asyncio.gather(*(c.post("/generate", json={
                "prompt": p, "max_length": len(tok(p)["input_ids"]) + 10, "temperature": 0})
                for p in prompts))

    responses = run_in_fresh_loop(run())
    after = httpx.get(f"{server.url}/health").json()
    for p, r in zip(prompts, responses, strict=True):
        assert r.status_code == 200, r.text
        assert r.json()["generated_text"] == p + expected(model, tok, p, 10)
    assert after["requests"] - before["requests"] == len(prompts)
    assert after["batches"] - before["batches"] < len(prompts), "nothing was batched"


def test_stream_sends_pieces_then_the_whole_text(client, model, tok):
    prompt = "Snow fell"
    body = {"prompt": prompt, "max_length": len(tok(prompt)["input_ids"]) + 15,
            "temperature": 0}
    with client.stream("POST", "/generate/stream", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        text = r.read().decode()
    events = sse_data(text)
    assert events[-1] == "[DONE]"
    pieces = [json.loads(e) for e in events[:-1]]
    final = pieces.pop()
    assert len(pieces) > 1, "the text should arrive in several pieces"
    assert "".join(p["text"] for p in pieces) == expected(model, tok, prompt, 15)
    assert final["generated_text"] == prompt + expected(model, tok, prompt, 15)


def test_openai_client_completion(server, model, tok):
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list()] == [NAME]
    prompt = "The robot counted"
    c = client.completions.create(model=NAME, prompt=prompt, max_tokens=9, temperature=0)
    assert c.choices[0].text == expected(model, tok, prompt, 9)
    assert c.usage.prompt_tokens == len(tok(prompt)["input_ids"])
    assert c.usage.completion_tokens == 9 and c.choices[0].finish_reason == "length"


def test_openai_client_streaming(server, model, tok):
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    prompt = "Tea or coffee?"
    chunks = list(client.completions.create(model=NAME, prompt=prompt, max_tokens=12,
                                            temperature=0, stream=True,
                                            stream_options={"include_usage": True}))
    texts = [c.choices[0].text for c in chunks if c.choices]
    assert len(texts) > 1
    assert "".join(texts) == expected(model, tok, prompt, 12)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 12


def test_openai_n_seed_echo_and_stop(server, model, tok):
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    args = dict(model=NAME, prompt=["Once", "Two plus"], max_tokens=8, n=2, seed=3,
                temperature=1.0)
    first, again = client.completions.create(**args), client.completions.create(**args)
    assert [c.index for c in first.choices] == [0, 1, 2, 3]
    assert [c.text for c in first.choices] == [c.text for c in again.choices]
    echoed = client.completions.create(model=NAME, prompt="Once", max_tokens=3, echo=True,
                                       temperature=0)
    assert echoed.choices[0].text == "Once" + expected(model, tok, "Once", 3)
    full = expected(model, tok, "Two plus", 20)
    stop = full[5:8]
    cut = client.completions.create(model=NAME, prompt="Two plus", max_tokens=20,
                                    temperature=0, stop=[stop])
    assert cut.choices[0].text == full[:full.find(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_openai_client_errors_are_readable(server):
    """Invalid requests are 400 with OpenAI's body, as OpenAI and vLLM answer (not 422)."""
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError, match="serves 'tiny-test'"):
        client.completions.create(model="gpt-4", prompt="x")
    with pytest.raises(openai.BadRequestError, match="temperature") as err:
        client.completions.create(model=NAME, prompt="x", temperature=5)
    assert err.value.body["type"] == "invalid_request_error"
    assert err.value.param == "temperature"
    with pytest.raises(openai.BadRequestError, match="not supported"):
        client.completions.create(model=NAME, prompt="x", logprobs=3)
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model=NAME, prompt="x", max_tokens=500)
    assert err.value.code == "context_length_exceeded" and err.value.param == "max_tokens"


def test_docs_render_from_local_files(client):
    html = client.get("/docs").text
    assert "SwaggerUIBundle" in html
    assets = [a for a in ("/docs-static/swagger-ui-bundle.js", "/docs-static/swagger-ui.css")
              if a in html]
    assert len(assets) == 2 and "cdn" not in html.lower()
    for asset in assets:
        assert client.get(asset).status_code == 200
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/generate"]["post"]["requestBody"]["content"]["application/json"]
    assert set(body["schema"]["properties"]) == {"prompt", "max_length", "temperature"}
    assert "/v1/completions" in schema["paths"]


# --------------------------------------------------------------------------- bad input

J = {"content-type": "application/json"}
BAD = [
    ("/generate", b"", "empty body"),
    ("/generate", b"hello", "not JSON"),
    ("/generate", b'{"prompt": "caf\xe9"}', "invalid UTF-8"),
    ("/generate", b"\xff\xfe\x00", "binary"),
    ("/generate", b"[1, 2]", "a list, not an object"),
    ("/generate", b"{}", "missing prompt"),
    ("/generate", b'{"prompt": ""}', "empty prompt"),
    ("/generate", b'{"prompt": 42}', "prompt not a string"),
    ("/generate", b'{"prompt": "a", "max_length": "20"}', "number as a string"),
    ("/generate", b'{"prompt": "a", "max_length": true}', "bool as a number"),
    ("/generate", b'{"prompt": "a", "max_length": 2.5}', "float length"),
    ("/generate", b'{"prompt": "a", "max_length": -5}', "negative length"),
    ("/generate", b'{"prompt": "a", "max_length": 0}', "zero length"),
    ("/generate", b'{"prompt": "a", "max_length": 100000000000000000000000}', "huge length"),
    ("/generate", b'{"prompt": "a", "max_length": ' + b"9" * 5000 + b"}", "5000 digits"),
    ("/generate", b'{"prompt": "a", "max_length": 1000}', "longer than the context"),
    ("/generate", b'{"prompt": "Once upon a time", "max_length": 2}', "shorter than prompt"),
    ("/generate", b'{"prompt": "a", "temperature": -1}', "negative temperature"),
    ("/generate", b'{"prompt": "a", "temperature": 1e999}', "infinite temperature"),
    ("/generate", b'{"prompt": "a", "temperature": NaN}', "NaN"),
    ("/generate", b'{"prompt": "a", "temperature": Infinity}', "Infinity"),
    ("/generate", b'{"prompt": "a", "top_k": 5}', "unknown field"),
    ("/generate", b'{"prompt": "\\ud800"}', "lone surrogate"),
    ("/generate", b'{"prompt": "' + b"a" * 5000 + b'"}', "prompt too long"),
    ("/generate", b'{"prompt": "' + b"a" * 20000 + b'"}', "body too large"),
    ("/generate", b"[" * 50000, "deep nesting"),
    ("/generate/stream", b'{"prompt": "a", "max_length": -1}', "stream: bad length"),
    ("/generate/stream", b"nope", "stream: not JSON"),
    ("/v1/completions", b'{"prompt": "a"}', "no model"),
    ("/v1/completions", b'{"model": "tiny-test", "prompt": []}', "no prompts"),
    ("/v1/completions", b'{"model": "tiny-test", "prompt": [1, 2]}', "token prompts"),
    ("/v1/completions", b'{"model": "tiny-test", "prompt": "a", "n": 100}', "n too big"),
    ("/v1/completions", b'{"model": "tiny-test", "prompt": "a", "max_tokens": 500}',
     "beyond the context"),
    ("/v1/completions", b'{"model": "tiny-test", "prompt": "a", "stop": ["1","2","3","4","5"]}',
     "too many stops"),
    ("/v1/completions", b'{"model": "tiny-test", "prompt": "a", "top_p": 0}', "top_p 0"),
    ("/v1/completions", b'{"model": "tiny-test", "prompt": "a", "stream": "yes"}',
     "stream not bool"),
    ("/v1/completions", b'{"model": "tiny-test", "prompt": "a", "logprobs": 2}', "logprobs"),
    ("/v1/completions", b'{"model": "tiny-test", "prompt": "a", "stream_options": '
                        b'{"include_usage": true}}', "stream_options without stream"),
    ("/v1/completions", b'{"model": "tiny-test", "prompt": "a", "max_token": 3}', "a typo"),
    ("/v1/completions", b'{"model": "other", "prompt": "a"}', "unknown model"),
]


@pytest.mark.parametrize("path,body,why", BAD, ids=[b[2] for b in BAD])
def test_bad_input_gets_a_4xx_that_says_what_is_wrong(client, path, body, why):
    r = client.post(path, content=body, headers=J)
    assert 400 <= r.status_code < 500, f"{why}: {r.status_code} {r.text[:200]}"
    assert r.status_code != 422, "invalid requests are 400, as OpenAI answers"
    error = r.json()["error"]
    assert error["message"] and error["type"]
    if r.status_code == 400:
        assert error["type"] == "invalid_request_error"
        assert set(error) == {"message", "type", "param", "code"}


def test_bad_methods_paths_and_headers(client):
    assert client.get("/generate").status_code == 405
    assert client.get("/nowhere").json()["error"]["type"] == "not_found_error"
    r = client.post("/generate", content=b'{"prompt": "a"}', headers={"content-type": "text/plain"})
    assert r.status_code == 415  # JSON must say so: text/plain needs no CORS preflight


def raw_request(server, data: bytes) -> bytes:
    """Send bytes on a fresh socket, half-close, return what the server answers."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except OSError:
            pass
    return b"".join(chunks)


def test_a_declared_huge_body_is_refused_before_it_is_read(server):
    answer = raw_request(server, b"POST /generate HTTP/1.1\r\nHost: x\r\n"
                                 b"Content-Type: application/json\r\n"
                                 b"Content-Length: 999999999\r\n\r\n{}")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]


def test_garbage_on_the_socket_does_not_stop_the_server(server, client):
    for junk in (b"\x00\xff garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                 b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
                 b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n"):
        answer = raw_request(server, junk)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer[:100]
    assert client.get("/health").status_code == 200


def test_still_serving_after_the_battery(client):
    r = client.post("/generate", json={"prompt": "Still", "max_length": 12})
    assert r.status_code == 200 and r.json()["generated_text"].startswith("Still")
    assert client.get("/health").json()["status"] == "ok"


# --------------------------------------------------------------------------- load


def test_concurrent_load_has_no_failed_request(server):
    async def one(c: httpx.AsyncClient, i: int) -> bool:
        body = {"prompt": f"Request {i}", "max_length": 24, "temperature": 0.8}
        if i % 3 == 0:
            async with c.stream("POST", "/generate/stream", json=body) as r:
                data = sse_data((await r.aread()).decode())
                return r.status_code == 200 and data[-1] == "[DONE]"
        r = await c.post("/generate", json=body)
        return r.status_code == 200 and r.json()["generated_text"].startswith(f"Request {i}")

    async def run() -> list[bool]:
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT, limits=limits) as c:
            return await asyncio.gather(*(one(c, i) for i in range(48)))

    assert all(run_in_fresh_loop(run()))


def test_a_client_that_leaves_mid_stream_frees_its_row(server, client):
    with client.stream("POST", "/generate/stream",
                       json={"prompt": "Leaving", "max_length": 120}) as r:
        next(r.iter_lines())
    for _ in range(100):
        if client.get("/health").json()["waiting"] == 0:
            break
    assert client.post("/generate", json={"prompt": "Next", "max_length": 8}).status_code == 200


# --------------------------------------------------------------------------- start-up


def test_the_model_loads_once_at_startup(model, tok):
    calls = []

    def loader(name: str):
        calls.append(name)
        return model, tok

    app = create_app(model_name="loaded", loader=loader, batching=False, num_threads=1)
    with ServerThread(app, startup_timeout=60) as srv:
        for _ in range(3):
            assert httpx.post(f"{srv.url}/generate", json={"prompt": "x", "max_length": 5},
                              timeout=TIMEOUT).status_code == 200
        health = httpx.get(f"{srv.url}/health").json()
    assert calls == ["loaded"]
    assert health["model"] == "loaded" and health["max_batch_size"] == 1


def test_create_app_needs_both_or_neither(model):
    with pytest.raises(TypeError, match="both"):
        create_app(model)


@pytest.mark.slow
def test_python_m_course_utils_serving_starts_and_stops_cleanly():
    with ServerProcess("--model", "random-tiny", "--no-batching", "--threads", "1",
                       "--log-level", "info", startup_timeout=120) as srv:
        r = httpx.post(f"{srv.url}/generate", json={"prompt": "hi", "max_length": 6},
                       timeout=TIMEOUT)
        assert r.status_code == 200
        assert httpx.get(f"{srv.url}/health").json()["max_batch_size"] == 1
        code, output = srv.stop(), srv.output()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells why.
    assert "Application shutdown complete" in output, output
    assert code in (0, -signal.SIGTERM), output


def test_a_model_that_cannot_load_says_why_and_the_server_does_not_start():
    with pytest.raises(RuntimeError, match="random-tiny"):
        load_model("/no/such/checkpoint")
    app = create_app(model_name="/no/such/checkpoint", num_threads=1)
    with pytest.raises(RuntimeError, match="start-up"):
        ServerThread(app, startup_timeout=60).start()
