"""The service with a draft model (``--draft-model``), over real HTTP on 127.0.0.1.

Two servers answer the same requests: course-gpt alone (in this process), and course-gpt with
course-gpt-mini as its draft, started as ``python -m course_utils.serving --draft-model ...``
(a child process, as the lesson and a deployment start it). Greedy requests must get
byte-identical text, finish reasons and token counts from both, on every route, streamed or
not; the plain server's greedy text is itself checked against transformers' ``generate``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json

import httpx
import pytest
from serving_helpers import hf_greedy, tiny_model, tiny_tokenizer

from course_utils.serving import ServerProcess, ServerThread, create_app, load_model
from course_utils.serving.models import random_tiny
from course_utils.serving.speculative_step import check_draft

MODEL, DRAFT = "course-gpt", "course-gpt-mini"
TIMEOUT = httpx.Timeout(120.0)
PROMPTS = ["Once upon a time", "The robot counted", "Tom had 3 apples and",
           "Café ☕ said \"don't\" to the cat's"]


@pytest.fixture(scope="module")
def target():
    return load_model(MODEL)


@pytest.fixture(scope="module")
def draft_server():
    srv = ServerProcess("--model", MODEL, "--draft-model", DRAFT, "--num-draft-tokens", "3",
                        "--threads", "1", "--max-wait-ms", "50", startup_timeout=300)
    srv.start(wait=False)  # loads while the plain server starts in this process
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def servers(target, draft_server):
    model, tok = target
    app = create_app(model, tok, model_name=MODEL, num_threads=1, max_wait_ms=50)
    with ServerThread(app, startup_timeout=120) as plain:
        draft_server.wait_ready()
        with httpx.Client(base_url=plain.url, timeout=TIMEOUT) as a, \
                httpx.Client(base_url=draft_server.url, timeout=TIMEOUT) as b:
            yield a, b


def both(servers, path: str, body: dict) -> list[dict]:
    out = []
    for client in servers:
        r = client.post(path, json=body)
        assert r.status_code == 200, r.text
        out.append(r.json())
    return out


def streamed(client: httpx.Client, path: str, body: dict) -> list[dict | str]:
    with client.stream("POST", path, json=body) as r:
        assert r.status_code == 200, r.read()
        text = r.read().decode()
    events = [line[len("data: "):] for line in text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def speculative(client: httpx.Client) -> dict:
    return client.get("/health").json()["speculative"]


def test_health_names_the_draft_and_what_it_applies_to(servers):
    plain, draft = (c.get("/health").json() for c in servers)
    assert plain["draft_model"] is None and "speculative" not in plain
    assert draft["draft_model"] == DRAFT
    assert draft["speculative"]["num_draft_tokens"] == 3
    assert "greedy" in draft["speculative"]["applies_to"]
    assert "sampling" in draft["speculative"]["applies_to"]


def test_the_plain_servers_greedy_text_is_transformers_own(servers, target):
    model, tok = target
    ids = tok(PROMPTS[1])["input_ids"]
    want = tok.decode(hf_greedy(model, ids, 20), skip_special_tokens=True,
                      clean_up_tokenization_spaces=False)
    for client in servers:
        r = client.post("/v1/completions", json={"model": MODEL, "prompt": PROMPTS[1],
                                                 "max_tokens": 20, "temperature": 0})
        assert r.json()["choices"][0]["text"] == want


@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("new_tokens", [1, 9, 90])
def test_generate_is_identical_with_the_draft(servers, target, prompt, new_tokens):
    tok = target[1]
    before = speculative(servers[1])
    body = {"prompt": prompt, "max_length": len(tok(prompt)["input_ids"]) + new_tokens,
            "temperature": 0}
    plain, draft = both(servers, "/generate", body)
    assert draft == plain
    after = speculative(servers[1])
    assert after["requests"] == before["requests"] + 1, "the draft path was not used"
    if new_tokens > 1:
        assert after["drafted"] > before["drafted"]


@pytest.mark.parametrize("prompt,max_tokens", [(PROMPTS[0], 100), (PROMPTS[2], 2),
                                                (PROMPTS[3], 33)])
def test_completions_are_identical_with_the_draft(servers, prompt, max_tokens):
    body = {"model": MODEL, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0}
    plain, draft = both(servers, "/v1/completions", body)
    assert draft["choices"] == plain["choices"] and draft["usage"] == plain["usage"]
    if max_tokens == 100:  # this story ends on its own: end-of-text stops both alike
        assert plain["choices"][0]["finish_reason"] == "stop"
        assert plain["usage"]["completion_tokens"] < 100


@pytest.mark.parametrize("prompt,max_tokens", [(PROMPTS[0], 100), (PROMPTS[3], 25)])
def test_streams_send_the_same_text_with_the_draft(servers, prompt, max_tokens):
    """The same text and ending, streamed in several pieces. Not the same pieces: the tokens a
    speculative round accepts arrive together, and tokens that arrive together go out as one
    event (``Engine._chunks``)."""
    body = {"model": MODEL, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
            "stream": True, "stream_options": {"include_usage": True}}
    plain, draft = (streamed(c, "/v1/completions", body) for c in servers)
    pieces = [[(e["choices"][0]["text"], e["choices"][0]["finish_reason"])
               for e in events if e["choices"]] for events in (plain, draft)]
    assert len(pieces[0]) > 2 and len(pieces[1]) > 2
    assert "".join(p for p, _ in pieces[1]) == "".join(p for p, _ in pieces[0])
    assert [r for _, r in pieces[1] if r] == [r for _, r in pieces[0] if r]
    assert draft[-1]["usage"] == plain[-1]["usage"]
    body = {"prompt": prompt, "max_length": 40, "temperature": 0}
    plain, draft = (streamed(c, "/generate/stream", body) for c in servers)
    assert draft[-1] == plain[-1] and len(draft) > 2
    assert "".join(e.get("text", "") for e in draft) == "".join(e.get("text", "")
                                                                 for e in plain)


def test_stop_strings_cut_the_same_text(servers):
    body = {"model": MODEL, "prompt": PROMPTS[0], "max_tokens": 60, "temperature": 0}
    full = servers[0].post("/v1/completions", json=body).json()["choices"][0]["text"]
    stop = full[30:34]
    plain, draft = both(servers, "/v1/completions", {**body, "stop": [stop, "zzz"]})
    assert draft["choices"] == plain["choices"]
    assert draft["choices"][0]["text"] == full[:full.find(stop)]
    assert draft["choices"][0]["finish_reason"] == "stop"


def test_sampling_with_a_draft_takes_the_ordinary_path(servers):
    before = speculative(servers[1])
    body = {"model": MODEL, "prompt": ["Once", "The robot"], "max_tokens": 12, "n": 2,
            "temperature": 0.8, "seed": 5}
    plain, draft = both(servers, "/v1/completions", body)
    assert [c["text"] for c in draft["choices"]] == [c["text"] for c in plain["choices"]]
    assert all(c["text"] for c in draft["choices"])
    assert speculative(servers[1])["requests"] == before["requests"]


def test_concurrent_greedy_and_sampled_requests_on_the_draft_server(servers):
    url = str(servers[1].base_url)
    bodies = [{"model": MODEL, "prompt": p, "max_tokens": 15, "temperature": 0}
              for p in PROMPTS] + [{"model": MODEL, "prompt": "Snow", "max_tokens": 15,
                                    "temperature": 1.0, "seed": 1}]

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as c:
            return await asyncio.gather(*(c.post("/v1/completions", json=b) for b in bodies))

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        responses = pool.submit(asyncio.run, run()).result()
    for body, r in zip(bodies, responses, strict=True):
        assert r.status_code == 200, r.text
        alone = servers[0].post("/v1/completions", json=body).json()
        assert r.json()["choices"] == alone["choices"]


def test_a_client_that_leaves_mid_stream_stops_its_row(servers):
    """The row stops soon after the client goes: far fewer tokens than the whole answer."""
    plain, client = servers
    body = {"model": MODEL, "prompt": "Every day", "max_tokens": 240, "temperature": 0}
    whole = plain.post("/v1/completions", json=body).json()["usage"]["completion_tokens"]
    assert whole > 100  # this prompt's story is long: a row left running would show
    before = speculative(client)
    with client.stream("POST", "/v1/completions", json={**body, "stream": True}) as r:
        next(r.iter_lines())
    # The worker is one thread: this request runs after the abandoned row has stopped.
    r = client.post("/generate", json={"prompt": "Next", "max_length": 8, "temperature": 0})
    assert r.status_code == 200
    assert r.json() == plain.post("/generate", json={"prompt": "Next", "max_length": 8,
                                                     "temperature": 0}).json()
    after = speculative(client)
    produced = sum(after[k] - before[k] for k in ("rounds", "accepted"))  # both requests
    assert produced < whole / 2, f"{produced} tokens decoded for a client that left"
    assert client.get("/health").json()["waiting"] == 0


# --------------------------------------------------------------------------- start-up


def test_a_draft_with_another_vocabulary_is_refused():
    # Same number of tokens, other ids: only the tokenizers' vocabularies tell them apart.
    model, tok = random_tiny()
    other = tiny_tokenizer(len(tok))
    assert len(other) == len(tok)
    with pytest.raises(ValueError, match="does not share the target's tokenizer"):
        check_draft(model, tok, tiny_model(other), other, draft_name="bytes")
    with pytest.raises(ValueError, match="integer >= 1"):
        create_app(model, tok, draft_model="random-tiny", num_draft_tokens=0)


def test_a_mismatched_or_missing_draft_stops_the_start_up_clearly():
    starts = {"vocabulary": ServerProcess("--model", "random-tiny", "--draft-model", MODEL,
                                          "--threads", "1"),
              "missing": ServerProcess("--model", "random-tiny", "--draft-model",
                                       "/no/such/checkpoint", "--threads", "1")}
    for srv in starts.values():
        srv.startup_timeout = 180
        srv.start(wait=False)
    with pytest.raises(RuntimeError, match="does not share the target's tokenizer"):
        starts["vocabulary"].wait_ready()
    with pytest.raises(RuntimeError, match="cannot load the draft model '/no/such/checkpoint'"):
        starts["missing"].wait_ready()
    for srv in starts.values():
        assert not srv.running
