"""``/v1/chat/completions``, ``models.retrieve``, OpenAI's 400s and sanitised stream errors, over
real HTTP on 127.0.0.1 with the official ``openai`` client.

The tokenizer is the tiny test one given a chat template of its own (a ChatML-like layout, not
course-gpt's), so the server must use whatever template it is served with. The reference for
every greedy answer is transformers: ``apply_chat_template`` renders the messages, ``generate``
continues them.
"""

from __future__ import annotations

import json
import logging
import threading

import httpx
import openai
import pytest
from serving_helpers import hf_greedy, tiny_model, tiny_tokenizer

from course_utils.serving import ServerThread, create_app
from course_utils.serving.batching import ServerShuttingDown

NAME = "tiny-chat"
TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>{% endif %}")
HELLO = [{"role": "system", "content": "Answer briefly."},
         {"role": "user", "content": "Tea or coffee? The café's crème brûlée 😀"}]


@pytest.fixture(scope="module")
def tok():
    t = tiny_tokenizer()
    t.chat_template = TEMPLATE
    return t


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok, n_positions=128)


class Switch:
    """A forward pre-hook that raises ``error`` while armed: a generation failing inside."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.lock = threading.Lock()

    def __call__(self, module, args, kwargs=None):
        with self.lock:
            if self.error is not None:
                raise self.error


@pytest.fixture(scope="module")
def switch(model):
    s = Switch()
    handle = model.register_forward_pre_hook(s)
    yield s
    handle.remove()


@pytest.fixture(scope="module")
def server(model, tok, switch):
    app = create_app(model, tok, model_name=NAME, max_batch_size=8, max_wait_ms=20,
                     num_threads=1)
    with ServerThread(app, startup_timeout=60) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def rendered(tok, messages) -> list[int]:
    return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                   return_dict=False)


def greedy_reply(model, tok, messages, new_tokens: int) -> str:
    out = hf_greedy(model, rendered(tok, messages), new_tokens)
    return tok.decode(out, skip_special_tokens=True, clean_up_tokenization_spaces=False)


def test_chat_completion_plain(client, model, tok):
    reply = client.chat.completions.create(model=NAME, messages=HELLO, max_tokens=12,
                                           temperature=0)
    assert reply.object == "chat.completion" and reply.id.startswith("chatcmpl-")
    [choice] = reply.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == greedy_reply(model, tok, HELLO, 12)
    assert choice.finish_reason == "length" and choice.index == 0
    assert reply.usage.prompt_tokens == len(rendered(tok, HELLO))
    assert reply.usage.completion_tokens == 12
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 12


def test_chat_completion_streamed_with_usage(client, model, tok):
    chunks = list(client.chat.completions.create(
        model=NAME, messages=HELLO, max_tokens=15, temperature=0, stream=True,
        stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    with_choices = [c for c in chunks if c.choices]
    first = with_choices[0].choices[0]
    assert first.delta.role == "assistant" and not first.delta.content
    pieces = [c.choices[0].delta.content for c in with_choices[1:] if c.choices[0].delta.content]
    assert len(pieces) > 1, "the reply should arrive in several pieces"
    assert "".join(pieces) == greedy_reply(model, tok, HELLO, 15)
    assert [c.choices[0].finish_reason for c in with_choices][-1] == "length"
    assert all(c.usage is None for c in chunks[:-1])
    assert not chunks[-1].choices
    assert chunks[-1].usage.completion_tokens == 15
    assert chunks[-1].usage.prompt_tokens == len(rendered(tok, HELLO))


def test_chat_n_and_seed_streamed_and_plain(client):
    args = dict(model=NAME, messages=HELLO, max_tokens=8, n=3, seed=11, temperature=1.0)
    plain = client.chat.completions.create(**args)
    assert [c.index for c in plain.choices] == [0, 1, 2]
    assert plain.usage.completion_tokens <= 3 * 8
    again = client.chat.completions.create(**args)
    assert [c.message.content for c in again.choices] == [c.message.content
                                                            for c in plain.choices]
    streamed = list(client.chat.completions.create(**args, stream=True))
    texts = {k: "" for k in range(3)}
    roles = []
    for c in streamed:
        for choice in c.choices:
            if choice.delta.role:
                roles.append(choice.index)
            texts[choice.index] += choice.delta.content or ""
    assert sorted(roles) == [0, 1, 2], "each choice starts with the assistant role"
    assert [texts[k] for k in range(3)] == [c.message.content for c in plain.choices]
    assert len(set(texts.values())) > 1, "seed + j: the choices differ"


def test_chat_stop_and_max_completion_tokens(client, model, tok):
    full = greedy_reply(model, tok, HELLO, 20)
    stop = full[6:9]
    cut = client.chat.completions.create(model=NAME, messages=HELLO, max_tokens=20,
                                         temperature=0, stop=[stop, "never-there"])
    assert cut.choices[0].message.content == full[:full.find(stop)]
    assert cut.choices[0].finish_reason == "stop"
    newer = client.chat.completions.create(model=NAME, messages=HELLO, temperature=0,
                                           max_completion_tokens=20)
    assert newer.choices[0].message.content == full


def test_content_parts_and_developer_role(client, model, tok):
    parts = [{"role": "developer", "content": "Answer briefly."},
             {"role": "user", "content": [{"type": "text", "text": "Tea or coffee?"},
                                          {"type": "text", "text": "Say it's \"both\"."}]}]
    same = [{"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Tea or coffee?\nSay it's \"both\"."}]
    reply = client.chat.completions.create(model=NAME, messages=parts, max_tokens=6,
                                           temperature=0)
    assert reply.choices[0].message.content == greedy_reply(model, tok, same, 6)
    assert reply.usage.prompt_tokens == len(rendered(tok, same))


def test_default_max_tokens_fills_the_context(client, tok):
    reply = client.chat.completions.create(model=NAME, messages=HELLO, temperature=0)
    prompt = len(rendered(tok, HELLO))
    assert reply.usage.prompt_tokens + reply.usage.completion_tokens <= 128
    if reply.choices[0].finish_reason == "length":
        assert reply.usage.completion_tokens == 128 - prompt


def test_models_retrieve(client):
    assert client.models.retrieve(NAME).id == NAME
    with pytest.raises(openai.NotFoundError, match="serves 'tiny-chat'") as err:
        client.models.retrieve("gpt-4o")
    assert err.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=HELLO)


def test_context_length_exceeded(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=NAME, messages=HELLO, max_tokens=500)
    assert err.value.code == "context_length_exceeded" and err.value.param == "max_tokens"
    assert "context holds 128 tokens" in err.value.message
    long = [{"role": "user", "content": "Snow fell on the quiet village. " * 30}]
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=NAME, messages=long)
    assert err.value.code == "context_length_exceeded" and err.value.param == "messages"


@pytest.mark.parametrize("messages,phrase", [
    ([], "at least 1"),
    ([{"role": "tool", "content": "42", "tool_call_id": "a"}], "role 'tool' is not supported"),
    ([{"role": "robot", "content": "hi"}], "role 'robot' is not supported"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
     "type 'image_url' are not supported"),
    ([{"role": "assistant", "content": "x", "tool_calls": [{"id": "1"}]}],
     "tool_calls is not supported"),
    ([{"role": "user"}], "messages.0.content: Field required"),
    ([{"role": "user", "content": 7}], "messages.0.content"),
    ([{"role": "user", "content": "a" * 4001}], "at most 4000 characters"),
    ([{"role": "user", "content": "a" * 4000}] * 3, "at most 8000 in all"),
    ([{"role": "user", "content": "hi", "mood": "happy"}], "messages.0.mood"),
], ids=["none", "tool", "unknown role", "image", "tool calls", "no content", "number",
        "too long", "too long in all", "unknown field"])
def test_bad_messages_are_400_saying_why(client, messages, phrase):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=NAME, messages=messages, max_tokens=3)
    assert phrase in err.value.message
    assert err.value.body["type"] == "invalid_request_error"
    assert err.value.param.startswith("messages")


@pytest.mark.parametrize("extra,phrase", [
    ({"stream_options": {"include_usage": True}}, "only allowed with stream: true"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools: not supported"),
    ({"response_format": {"type": "json_object"}}, "response_format: not supported"),
    ({"logprobs": True}, "logprobs: not supported"),
    ({"max_completion_tokens": 4, "max_tokens": 3}, "not two different values"),
    ({"temperature": 2.5}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"n": 17}, "n: Input should be less than or equal to 16"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
])
def test_bad_fields_are_400_naming_the_field(server, extra, phrase):
    r = httpx.post(f"{server.url}/v1/chat/completions", timeout=60,
                   json={"model": NAME, "messages": HELLO, **extra})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert phrase in error["message"]
    assert error["type"] == "invalid_request_error" and error["param"] == next(iter(extra))


def test_vllm_sampling_fields_are_ignored_with_a_warning(client, caplog):
    with caplog.at_level(logging.WARNING, logger="course_utils.serving"):
        reply = client.chat.completions.create(
            model=NAME, messages=HELLO, max_tokens=4, temperature=0, presence_penalty=0.5,
            frequency_penalty=0.1, logit_bias={"5": 3}, user="u1",
            extra_body={"top_k": 5, "repetition_penalty": 1.1, "min_p": 0.05})
        plain = client.chat.completions.create(model=NAME, messages=HELLO, max_tokens=4,
                                               temperature=0)
    assert reply.choices[0].message.content == plain.choices[0].message.content
    [warning] = [r for r in caplog.records if "ignoring" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    for name in ("top_k", "repetition_penalty", "min_p", "presence_penalty",
                 "frequency_penalty", "logit_bias"):
        assert name in warning.getMessage()
    assert "user" not in warning.getMessage().split("ignoring", 1)[1]


def test_completions_ignore_best_of_and_top_k_too(server, caplog):
    with caplog.at_level(logging.WARNING, logger="course_utils.serving"):
        r = httpx.post(f"{server.url}/v1/completions", timeout=60,
                       json={"model": NAME, "prompt": "Once", "max_tokens": 3, "best_of": 2,
                             "top_k": 4})
    assert r.status_code == 200, r.text
    assert any("best_of, top_k" in rec.getMessage() or
               ("best_of" in rec.getMessage() and "top_k" in rec.getMessage())
               for rec in caplog.records)


def test_a_tokenizer_without_a_chat_template_is_a_clear_400(model):
    app = create_app(model, tiny_tokenizer(), model_name="plain", num_threads=1)
    with ServerThread(app, startup_timeout=60) as srv:
        c = openai.OpenAI(base_url=f"{srv.url}/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.BadRequestError, match="no chat template") as err:
            c.chat.completions.create(model="plain", messages=HELLO)
        assert err.value.code == "chat_template_missing"
        assert c.completions.create(model="plain", prompt="Once", max_tokens=2).choices


# --------------------------------------------------------------------------- failures


def events(text: str) -> list[str]:
    return [line[len("data: "):] for line in text.splitlines() if line.startswith("data: ")]


SECRET = "shape mismatch in /home/secret/model.py"


@pytest.mark.parametrize("path,body", [
    ("/v1/chat/completions", {"model": NAME, "messages": HELLO, "max_tokens": 5,
                              "stream": True}),
    ("/v1/completions", {"model": NAME, "prompt": "Once", "max_tokens": 5, "stream": True,
                         "n": 2}),
    ("/generate/stream", {"prompt": "Once", "max_length": 9}),
], ids=["chat", "completions", "generate"])
def test_a_failing_stream_is_sanitised_and_still_ends(server, switch, caplog, path, body):
    switch.error = RuntimeError(SECRET)
    try:
        with caplog.at_level(logging.ERROR, logger="course_utils.serving"):
            r = httpx.post(f"{server.url}{path}", json=body, timeout=60)
    finally:
        switch.error = None
    assert r.status_code == 200
    data = events(r.text)
    assert data[-1] == "[DONE]"
    errors = [json.loads(d)["error"] for d in data[:-1] if "error" in json.loads(d)]
    assert len(errors) == 1, data
    assert errors[0]["type"] == "server_error" and "secret" not in r.text
    assert "generation failed" in errors[0]["message"]
    assert any(SECRET in (rec.exc_text or "") or SECRET in repr(rec.exc_info)
               for rec in caplog.records), "the detail belongs in the log"


def test_a_stream_ended_by_shutdown_says_so(server, switch):
    switch.error = ServerShuttingDown("draining")
    try:
        r = httpx.post(f"{server.url}/v1/chat/completions", timeout=60,
                       json={"model": NAME, "messages": HELLO, "max_tokens": 5, "stream": True})
        plain = httpx.post(f"{server.url}/v1/chat/completions", timeout=60,
                           json={"model": NAME, "messages": HELLO, "max_tokens": 5})
    finally:
        switch.error = None
    data = events(r.text)
    assert data[-1] == "[DONE]"
    error = json.loads(data[-2])["error"]
    assert error["code"] == "server_shutting_down" and error["type"] == "server_error"
    assert "shutting down" in error["message"] and "draining" not in r.text
    assert plain.status_code == 503 and plain.json()["error"]["code"] == "server_shutting_down"


def test_a_failing_plain_request_is_a_generic_500(server, switch):
    switch.error = RuntimeError(SECRET)
    try:
        r = httpx.post(f"{server.url}/v1/chat/completions", timeout=60,
                       json={"model": NAME, "messages": HELLO, "max_tokens": 5})
    finally:
        switch.error = None
    assert r.status_code == 500 and "secret" not in r.text
    assert r.json()["error"]["type"] == "server_error"
    ok = httpx.post(f"{server.url}/v1/chat/completions", timeout=60,
                    json={"model": NAME, "messages": HELLO, "max_tokens": 5})
    assert ok.status_code == 200, "the server still serves after a failure"


# --------------------------------------------------------------------------- schema


def test_the_schema_documents_streams_and_errors(server):
    schema = httpx.get(f"{server.url}/openapi.json").json()
    for path in ("/v1/chat/completions", "/v1/completions", "/generate", "/generate/stream"):
        post = schema["paths"][path]["post"]
        assert {"400", "413", "415", "503"} <= set(post["responses"]), path
        error = post["responses"]["400"]["content"]["application/json"]["schema"]
        assert error["$ref"].endswith("/ErrorResponse")
        if path != "/generate":
            assert "text/event-stream" in post["responses"]["200"]["content"], path
    for path in ("/v1/chat/completions", "/v1/completions"):
        assert "404" in schema["paths"][path]["post"]["responses"]
    assert "404" in schema["paths"]["/v1/models/{model}"]["get"]["responses"]
    assert "422" not in json.dumps(schema["paths"]), "FastAPI's 422 is never answered"
    chat = schema["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]
    props = chat["application/json"]["schema"]["properties"]
    assert "8000 characters" in props["messages"]["description"]
    assert props["messages"]["items"]["properties"]["role"]["enum"] == [
        "system", "developer", "user", "assistant"]
