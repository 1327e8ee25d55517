# %% [markdown]
# # 08 · Deploying a language model as a service
#
# A model in a notebook helps one person. A model behind an HTTP API helps every program that
# can send a request: a website, a chat app, a batch job, an evaluation harness. This lesson
# takes `course-gpt` from a notebook to a service, and from a first sketch of that service to
# what people run in production.
#
# **You will:** start from the cheat-sheet version, the simplest FastAPI app with a `/generate`
# endpoint, and watch one request freeze all the others; write the endpoint properly yourself
# (validated requests, a handler that awaits the model); run the course's service in the
# background and call it with `httpx` and with the official `openai` client; stream tokens as
# they are generated (server-sent events); measure how batching raises throughput under load;
# shrink the model with int8 quantization and measure what it costs; read a production
# `Dockerfile` line by line; stop the server cleanly; and see where vLLM, TGI and TensorRT-LLM
# go from here.
#
# The exercises: write the `/generate` endpoint (08.1), format a server-sent event (08.2),
# left-pad a batch of prompts (08.3) and a continuous-batching scheduler step (08.4). Each is
# followed by a check cell; `hint("08.1")` and `solution("08.1")` help when stuck.
#
# The service itself lives in `course_utils.serving` (one module per idea, each readable in one
# sitting); this notebook drives it and looks inside.

# %%
import asyncio
import contextlib
import json
import statistics
import time
from pathlib import Path

import httpx
import psutil

from course_utils.serving import ServerProcess

# Loading the service takes a few seconds: start it now, in the background, so that it loads
# while this notebook imports the rest. Section 2 explains what this does.
started = time.perf_counter()
server = ServerProcess("--model", "course-gpt", "--log-level", "info", startup_timeout=180)
server.start(wait=False)

import matplotlib.pyplot as plt
import torch

import course_utils
from course_utils import check, hint, progress, solution, start_lesson  # noqa: F401

start_lesson(seed=0, threads=1)  # leave the other core to the server
ROOT = Path(course_utils.__file__).resolve().parent.parent  # the repository

# %% [markdown]
# ## 1. Where we start: a model behind `/generate`
#
# The first version of almost every model service, and **the cheat-sheet version** that LLM
# cheat-sheets give, looks like this:
#
# ```python
# from fastapi import FastAPI
# from pydantic import BaseModel
# from transformers import pipeline
#
# app = FastAPI()
# generator = pipeline("text-generation", model="course-gpt")   # loaded once, at import
#
# class GenerateRequest(BaseModel):
#     prompt: str
#     max_length: int = 50
#     temperature: float = 1.0
#
# @app.post("/generate")
# async def generate(req: GenerateRequest):
#     out = generator(req.prompt, max_length=req.max_length, do_sample=True,
#                     temperature=req.temperature)
#     return {"generated_text": out[0]["generated_text"]}
# ```
#
# It is the right API: a prompt, a total length in tokens and a temperature in, the text out.
# And it loads the model once, when the module is imported, not on every request. Here it is,
# runnable (the same code with the bundled weights, plus the `/health` route that a load
# balancer polls):

# %%
from fastapi import FastAPI
from pydantic import BaseModel
from transformers import pipeline

from course_utils.pretrained import load_pretrained

model, tok = load_pretrained("course-gpt")
generator = pipeline("text-generation", model=model, tokenizer=tok)  # once, at import


class CheatSheetRequest(BaseModel):
    prompt: str
    max_length: int = 50
    temperature: float = 1.0


cheat_sheet = FastAPI()


@cheat_sheet.post("/generate")
async def generate(req: CheatSheetRequest):
    out = generator(req.prompt, max_length=req.max_length, do_sample=True,
                    temperature=req.temperature)
    return {"generated_text": out[0]["generated_text"]}


@cheat_sheet.get("/health")
async def health():
    return {"status": "ok"}

# %% [markdown]
# Its real problem hides in one word: `async`. FastAPI runs an `async def` handler on the
# **event loop**, the one thread that serves every connection by switching to another handler
# whenever the current one `await`s something. This handler never awaits: the call to
# `generator(...)` holds the thread until the whole text is generated, and meanwhile nothing
# else is served at all.
#
# Let's measure it. Two users ask for a story at the same moment, and 50 ms later a load
# balancer polls `/health`. `httpx.ASGITransport` hands the requests straight to the app, in
# this process and on this notebook's event loop (no network), exactly as uvicorn would.

# %%
async def two_users_and_a_health_check(app) -> dict:
    """Two stories requested at once, then GET /health 50 ms later: when each was answered."""
    story = {"prompt": "Once upon a time", "max_length": 60, "temperature": 0.8}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://in-process") as c:
        t0 = time.perf_counter()

        async def timed(who: str, method: str, url: str, after: float = 0.0, **kwargs):
            await asyncio.sleep(after)
            r = await c.request(method, url, **kwargs)
            return who, r.status_code, time.perf_counter() - t0

        answers = await asyncio.gather(timed("user 1", "POST", "/generate", json=story),
                                       timed("user 2", "POST", "/generate", json=story),
                                       timed("GET /health", "GET", "/health", after=0.05))
    for who, status, seconds in answers:
        print(f"  {who:<12} {status}  answered after {1000 * seconds:5.0f} ms")
    return {who: seconds for who, _, seconds in answers}


print("the cheat-sheet app, the model called inside async def:")
blocked = await two_users_and_a_health_check(cheat_sheet)  # noqa: F704

# %% [markdown]
# User 2 waited for user 1's whole story before its own even started, and `/health`, which
# needs no model at all, waited for both. Under real traffic every request waits for every
# request ahead of it, and an orchestrator that polls `/health` concludes the service is dead.
#
# The fix is to run the model somewhere else and `await` it. The course's `Engine`
# (`course_utils/serving/engine.py`) runs the model on one worker thread; `engine.submit(...)`
# queues a request there at once and returns a stream of its text, and `await collect(...)`
# waits for the whole of it while the event loop serves everyone else. The same handler, with
# only that changed:

# %%
from course_utils.serving.engine import Engine, collect

engine = Engine(model, tok, name="course-gpt")
engine.start()  # its worker thread runs every model call from now on

awaiting = FastAPI()
awaiting.get("/health")(health)


@awaiting.post("/generate")
async def generate_awaiting(body: CheatSheetRequest):
    prompt_ids = engine.encode(body.prompt)
    text = await collect(engine.submit(prompt_ids, body.max_length - len(prompt_ids),
                                       temperature=body.temperature))
    return {"generated_text": body.prompt + text.text}


await collect(engine.submit(engine.encode("Hello"), 4))  # noqa: F704  (a first, warm-up step)
print("the same handler, awaiting the engine:")
freed = await two_users_and_a_health_check(awaiting)  # noqa: F704
print(f"\n/health answered after {1000 * blocked['GET /health']:.0f} ms behind the blocking "
      f"handler, {1000 * freed['GET /health']:.0f} ms beside the awaiting one (50 ms of it is "
      f"the wait before it was sent)")

# %% [markdown]
# Now `/health` is answered as soon as it is sent, and the two stories finish together: while
# they wait, the engine's worker runs them **as one batch** (section 6 shows why that costs
# little more than one). Declaring the cheat-sheet handler with a plain `def` instead would
# also free the event loop (FastAPI runs `def` handlers in a thread pool), but then each
# request runs its own model call, competing for the same cores, with nothing shared.
#
# The temperature is the cheat-sheet's other trap. In `transformers`, `temperature` only
# matters when sampling (`do_sample=True`), and sampling divides the logits by it; what does
# the installed version do with 0?

# %%
import transformers

print("transformers", transformers.__version__)
try:
    generator("Once upon a time", max_length=12, do_sample=True, temperature=0.0)
except ValueError as err:
    print("do_sample=True, temperature=0.0  ->", type(err).__name__ + ":", str(err))
greedy = generator("Once upon a time", max_length=12, do_sample=False)[0]["generated_text"]
print("do_sample=False                  ->", repr(greedy))
zero = generator("Once upon a time", max_length=12, do_sample=False,
                 temperature=0.0)[0]["generated_text"]
print("do_sample=False, temperature=0.0 -> the same greedy text:", zero == greedy)


async def ask(app, body: dict) -> httpx.Response:
    """One request to ``app`` in-process; an error in the app becomes its 500 answer."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://in-process") as c:
        return await c.post("/generate", json=body)


r = await ask(cheat_sheet, {"prompt": "Once upon a time", "temperature": 0})  # noqa: F704
print("\nthe cheat-sheet app, temperature 0:", r.status_code, r.text)
r = await ask(cheat_sheet, {"prompt": "Once upon a time", "max_lenght": 12})  # noqa: F704
print("the cheat-sheet app, a typo (max_lenght 12):", r.status_code, "and",
      len(tok(r.json()["generated_text"])["input_ids"]), "tokens: the default max_length, 50")

# %% [markdown]
# So sampling refuses a temperature of 0 with a `ValueError`, and the cheat-sheet's client gets
# a bare 500. Greedy decoding (always the likeliest token, what "temperature 0" means in most
# APIs) is `do_sample=False`, which ignores the temperature: `transformers` warns that the
# flag is not valid there. A server that accepts `temperature: 0` must therefore switch to
# greedy itself, as the course's engine does.
#
# The other problems of the cheat-sheet version show up the first day it meets real traffic:
#
# | problem | what happens | what fixes it (in `course_utils.serving`) |
# |---|---|---|
# | the model called inside `async def` | it runs on the event loop: every other request, even `/health`, waits (above) | one worker thread runs the model; handlers `await` it (`engine.py`) |
# | `temperature: 0` | `transformers` raises `ValueError`: a 500 (above) | 0 means greedy; bounds 0 to 2 (`schemas.py`) |
# | silent typos | `{"max_lenght": 12}` is ignored: the client gets 50 tokens and no warning (above) | unknown fields rejected (`extra="forbid"`) |
# | no bounds | nothing limits `max_length` or the prompt's size: one request can ask for as much work and memory as it likes | pydantic bounds, a body-size limit (`schemas.py`, `errors.py`) |
# | every request alone | 16 users mean 16 separate generations | batching, many requests per forward pass (`batching.py`, section 6) |
# | the answer arrives all at once | a user stares at nothing for seconds | streaming with server-sent events (`streaming.py`) |
# | its own API | every client must be written for it | an OpenAI-compatible `/v1` API (`openai_compat.py`) |
# | no health check, runs as root, depends on the network | orchestrators can't manage it | `/health`, a `Dockerfile` (section 8) |
#
# ## 2. Start the service in the background
#
# `python -m course_utils.serving` loads the model once and serves it with uvicorn.
# A notebook cell must not block on a server, so `ServerProcess` runs that command as a **child
# process** on 127.0.0.1 (never reachable from outside this machine) on a free port. The first
# cell launched it with `server.start(wait=False)`; `wait_ready()` waits until `GET /health`
# answers (a plain `start()` does both). `--log-level info` makes uvicorn log its start-up and
# shutdown, to a file we read in section 9.
#
# A server that outlives its notebook holds memory and a port. `ServerProcess` stops its child
# when you call `stop()` (section 9), and a finalizer stops it anyway when the kernel shuts
# down, even after a cell failed half-way.

# %%
server.wait_ready()
print(f"the service is up at {server.url} (pid {server.process.pid}), "
      f"{time.perf_counter() - started:.1f} s after it was launched")

http = httpx.Client(base_url=server.url, timeout=120)
print(json.dumps(http.get("/health").json(), indent=1))

# %% [markdown]
# `/health` is what a load balancer or Kubernetes polls: it answers only once the model is
# loaded, and it reports the load. `torch_threads` is one less than the CPUs the process may
# use (its affinity and any container quota), and at least one: a core stays free for the
# event loop that parses HTTP while the model computes, and no more threads than cores fight
# for the CPU.
#
# Now the cheat-sheet's call, unchanged: a prompt, a total `max_length` in tokens (prompt
# included, as in `transformers`' `generate()`), and a temperature of 0, which this server
# reads as greedy decoding.

# %%
reply = http.post("/generate", json={"prompt": "Once upon a time", "max_length": 40,
                                     "temperature": 0})
print(reply.status_code, reply.headers["content-type"])
print(json.dumps(reply.json(), indent=1))

# %% [markdown]
# ## 3. The schema, and what a bad request gets
#
# The request body is a pydantic model. Every field has a type and bounds, unknown fields are
# an error, and strings are not silently turned into numbers. FastAPI publishes the same schema
# as OpenAPI at `/openapi.json` and renders it at `/docs` (from local files, so it works
# offline):

# %%
from course_utils.serving.schemas import GenerateRequest

schema = http.get("/openapi.json").json()
body = schema["paths"]["/generate"]["post"]["requestBody"]["content"]["application/json"]
fields = body["schema"]["properties"]
print(f"{'field':<12} {'type':<8} {'default':<18} bounds")
for name, spec in fields.items():
    bounds = {k: v for k, v in spec.items() if k in ("minLength", "maxLength", "minimum",
                                                     "maximum")}
    print(f"{name:<12} {spec['type']:<8} {str(spec.get('default', '(required)')):<18} {bounds}")
print("extra fields allowed:", GenerateRequest.model_config.get("extra") != "forbid")
print("GET /docs ->", http.get("/docs").status_code)

# %% [markdown]
# A bad request must get a **4xx status with a JSON body that says what was wrong**, never a
# 500 and never a crash. Here is one with a typo and a temperature out of range:

# %%
bad = http.post("/generate", json={"prompt": "Once upon a time", "max_lenght": 20,
                                   "temperature": 5})
print("status:", bad.status_code)
print(json.dumps(bad.json(), indent=1))

# %% [markdown]
# The body has OpenAI's error shape (an `error` with `message`, `type`, `param` and `code`),
# which the `openai` client turns into a readable exception. A battery of bad requests, each
# answered with a status and a one-line reason:

# %%
too_long = {"prompt": "Once upon a time", "max_length": 1000}
battery = {
    "empty prompt": {"json": {"prompt": ""}},
    "wrong type": {"json": {"prompt": "Hi", "max_length": "50"}},
    "negative length": {"json": {"prompt": "Hi", "max_length": -3}},
    "longer than the context": {"json": too_long},
    "prompt is a number": {"json": {"prompt": 42}},
    "not JSON": {"content": b"prompt=Hi", "headers": {"content-type": "application/json"}},
    "invalid UTF-8": {"content": b'{"prompt": "\xff\xfe"}',
                      "headers": {"content-type": "application/json"}},
    "a 1 MB body": {"json": {"prompt": "x" * 1_000_000}},
}
statuses = {}
for label, kwargs in battery.items():
    r = http.post("/generate", **kwargs)
    statuses[label] = r.status_code
    print(f"{label:<24} {r.status_code}  {r.json()['error']['message'][:95]}")
print("\nstill serving:", http.get("/health").json()["status"])

# %% [markdown]
# Two kinds of check: those that need only the body (types, bounds, unknown fields) run in
# pydantic before the handler; those that need the model (does `max_length` fit its context?)
# run in the handler after tokenizing. Both answer in the same shape. The 1 MB body is refused
# by a middleware before it is even read into memory.
#
# ### Exercise 08.1: write the `/generate` endpoint
#
# Now build the endpoint yourself, properly. Write `generate_app(engine)` that makes a FastAPI
# app and returns it, with:
#
# - a pydantic request model: `prompt`, a required string of 1 to 4000 characters;
#   `max_length`, an int from 1 to 1024, default 50 (the total length in tokens, prompt
#   included); `temperature`, a float from 0 to 2, default 1.0 (0 is greedy). Give the limits
#   with `Field(...)` so that `/openapi.json` publishes them, and refuse unknown fields
#   (`model_config = ConfigDict(extra="forbid")`);
# - a response model with `generated_text` (the prompt followed by its continuation) and
#   `finish_reason`;
# - `@app.post("/generate")` on an **`async def`** handler that tokenizes with
#   `engine.encode(prompt)`, refuses with `HTTPException(422, ...)` a `max_length` beyond
#   `engine.context_length` or not above the prompt's token count (no room for a new token),
#   and otherwise **awaits** the engine:
#   `await collect(engine.submit(ids, max_new_tokens, temperature=...))`, whose result has
#   `.text` and `.finish_reason`.
#
# A plain FastAPI app answers an invalid body with **422** and a `detail` list; the grader
# accepts 422 or 400 for every bad request. It builds your app around a small engine
# (`course-gpt-mini`), sends it good and bad requests in-process, and checks what a client would
# see, what your handler asked the engine for, and that no model runs on the event loop.

# %%
from fastapi import HTTPException
from pydantic import ConfigDict, Field


def generate_app(engine: Engine) -> FastAPI:
    ### BEGIN SOLUTION
    class GenerateRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        prompt: str = Field(min_length=1, max_length=4000)
        max_length: int = Field(50, ge=1, le=1024)
        temperature: float = Field(1.0, ge=0.0, le=2.0)

    class GenerateResponse(BaseModel):
        generated_text: str
        finish_reason: str

    app = FastAPI()

    @app.post("/generate")
    async def generate(req: GenerateRequest) -> GenerateResponse:
        ids = engine.encode(req.prompt)
        if not len(ids) < req.max_length <= engine.context_length:
            raise HTTPException(422, f"max_length must be above the prompt's {len(ids)} "
                                     f"tokens and at most {engine.context_length}")
        out = await collect(engine.submit(ids, req.max_length - len(ids),
                                          temperature=req.temperature))
        return GenerateResponse(generated_text=req.prompt + out.text,
                                finish_reason=out.finish_reason)

    return app
    ### END SOLUTION


# %%
check("08.1", generate_app)

# %% [markdown]
# From here on the lesson uses the reference from `course_utils`, so every cell runs whether or
# not your exercise passed yet. The same two users and health check as in section 1, now
# against the endpoint you wrote (the reference), and the course server beside it:

# %%
from course_utils.serving.endpoint import generate_app

endpoint = generate_app(engine)
endpoint.get("/health")(health)
print("generate_app(engine), two users and /health:")
await two_users_and_a_health_check(endpoint)  # noqa: F704

typo = {"prompt": "Once upon a time", "max_lenght": 20}
r = await ask(endpoint, typo)  # noqa: F704
print(f"\na typo: {r.status_code} from generate_app ({r.json()['detail'][0]['msg']}), "
      f"{http.post('/generate', json=typo).status_code} from the course server")
engine.stop()  # this notebook's engine is done; the course server has its own

# %% [markdown]
# A plain FastAPI app answers invalid input with FastAPI's 422 and its `detail` list; the course
# server answers with the status printed beside it and OpenAI's error body, which clients of
# OpenAI-compatible servers expect.
#
# ## 4. The OpenAI-compatible API
#
# Our `/generate` is fine, but every client must be written for it. The OpenAI HTTP API is the
# de facto standard: vLLM, TGI, llama.cpp and most hosted services speak it, so do LangChain,
# evaluation harnesses and IDE plug-ins. The service also serves OpenAI's `POST /v1/completions`
# and `POST /v1/chat/completions`, so the **official `openai` client works unchanged**: point its
# `base_url` at the server.

# %%
from openai import BadRequestError, NotFoundError, OpenAI

client = OpenAI(base_url=f"{server.url}/v1", api_key="not-needed-locally", max_retries=0)
print("models:", [m.id for m in client.models.list().data],
      "| retrieve:", client.models.retrieve("course-gpt").id)

completion = client.completions.create(model="course-gpt", prompt="Tom had three apples",
                                       max_tokens=30, temperature=0)
print(repr(completion.choices[0].text))
print("finish_reason:", completion.choices[0].finish_reason, "| usage:", completion.usage)

try:
    client.completions.create(model="gpt-4o", prompt="Hi", max_tokens=5)
except NotFoundError as err:
    print(f"\n{type(err).__name__} ({err.status_code}): {err.body['message']}")

# %% [markdown]
# A wrong model name becomes the same `NotFoundError` a hosted API would raise: a program
# written against OpenAI's service runs against ours by changing one URL.
#
# Most clients call the **chat** route: a conversation as a list of messages with roles
# (`system`, `user`, `assistant`). A model reads it as one text, laid out by its **chat
# template**, a small Jinja template shipped with the tokenizer. The server renders the messages
# with the served tokenizer's own template (`apply_chat_template(..., add_generation_prompt=
# True)`, which ends the text where the assistant's turn begins) and continues that text. Here is
# `course-gpt`'s layout:

# %%
from transformers import AutoTokenizer

from course_utils.pretrained import asset_path

conversation = [{"role": "system", "content": "You tell short stories about animals."},
                {"role": "user", "content": "Tell me about a fox."}]
chat_tokenizer = AutoTokenizer.from_pretrained(asset_path("course-gpt"))
print(repr(chat_tokenizer.apply_chat_template(conversation, tokenize=False,
                                              add_generation_prompt=True)))

# %% [markdown]
# `client.chat.completions.create` sends the messages; the answer is OpenAI's `chat.completion`:
# the reply is `choices[0].message`, with the same `finish_reason` and `usage`. `course-gpt` is a
# base model, not trained to follow instructions, so its reply is a continuation in the
# template's layout rather than an answer (an instruction-tuned model with the same template
# mechanism answers). With `stream=True` the chunks carry a `delta`: first the role, then pieces
# of content, then the finish reason; `stream_options={"include_usage": True}` adds a last chunk
# with the token counts.

# %%
reply = client.chat.completions.create(model="course-gpt", messages=conversation,
                                       max_tokens=30, temperature=0)
print("message:", reply.choices[0].message.role, repr(reply.choices[0].message.content))
print("finish_reason:", reply.choices[0].finish_reason, "| usage:", reply.usage)

pieces, last = [], None
for chunk in client.chat.completions.create(model="course-gpt", messages=conversation,
                                            max_tokens=30, temperature=0, stream=True,
                                            stream_options={"include_usage": True}):
    if chunk.choices and chunk.choices[0].delta.role:
        pieces.append(f"[{chunk.choices[0].delta.role}]")
    elif chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)
    last = chunk
print("\nstreamed:", "|".join(pieces))
print("same text as the plain reply:",
      "".join(pieces[1:]) == reply.choices[0].message.content, "| last chunk's usage:",
      last.usage)

try:
    client.chat.completions.create(model="course-gpt", messages=conversation, max_tokens=1000)
except BadRequestError as err:
    print(f"\n{type(err).__name__} ({err.status_code}, code={err.code}): {err.body['message']}")

# %% [markdown]
# An invalid request is a `400` with OpenAI's error body, so it is the `BadRequestError` a
# hosted API raises, and asking for more tokens than the context holds carries the code
# `context_length_exceeded`, which client code checks for (to shorten the conversation and
# retry).
#
# ## 5. Streaming: tokens as they are generated
#
# Generating 100 tokens takes a while; a user should see the first word at once. HTTP can keep a
# response open and send it in pieces. **Server-sent events** (SSE) are the simplest format for
# that, and the one OpenAI's API uses: plain text, each event is `data: ...` lines ended by a
# **blank line**:
#
# ```
# data: {"text": " upon"}
#
# data: {"text": " a"}
#
# data: [DONE]
#
# ```
#
# Rules that matter: an event ends at an empty line (`\n\n`), so without it the client waits
# forever; a line break inside the data would end the field early, so text with line breaks
# becomes several `data:` lines (the client joins them back with `\n`); an optional `event:`
# line names the event.
#
# ### Exercise 08.2: format a server-sent event
#
# Write `sse_event(data, event=None)` returning one frame as a string: `data` that is not a
# string is sent as JSON (`json.dumps`); if `event` is given, start with `event: <event>`; then
# one `data: <line>` per line of the text; end with a blank line. Every value that is not a
# string is JSON, including `None`, `0` and `False`. The grader parses your frame the way a
# browser's `EventSource` does, so any spelling the SSE format allows passes (`\r\n` line
# endings, `data:` without the space, JSON with other spacing).

# %%
def sse_event(data, event=None) -> str:
    ### BEGIN SOLUTION
    text = data if isinstance(data, str) else json.dumps(data)
    lines = [f"event: {event}"] if event is not None else []
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # SSE's three line breaks
    lines += [f"data: {line}" for line in text.split("\n")]
    return "\n".join(lines) + "\n\n"
    ### END SOLUTION


# %%
check("08.2", sse_event)

# %% [markdown]
# From here on the lesson uses the reference from `course_utils`, so every cell runs whether or
# not your exercise passed yet.

# %%
from course_utils.serving.streaming import sse_event

print(repr(sse_event({"text": " upon"})))
print(repr(sse_event("two\nlines", event="note")))

# %% [markdown]
# Now the real stream. `POST /generate/stream` takes the same body as `/generate` and answers
# with `text/event-stream`. Each frame is printed with the time it arrived: the first one comes
# long before the last.

# %%
request = {"prompt": "Once upon a time", "max_length": 30, "temperature": 0}
t0 = time.perf_counter()
frames = []
with http.stream("POST", "/generate/stream", json=request) as response:
    print(response.status_code, response.headers["content-type"])
    for line in response.iter_lines():
        if line:
            frames.append((1000 * (time.perf_counter() - t0), line))
for ms, line in frames[:8] + [(None, "...")] + frames[-3:]:
    print(f"{'' if ms is None else f'{ms:7.1f} ms'}  {line}")
print(f"\n{len(frames)} frames; first after {frames[0][0]:.0f} ms, last after "
      f"{frames[-1][0]:.0f} ms")

# %% [markdown]
# The last frames carry the whole text and the finish reason, then `[DONE]`. With the `openai`
# client, `stream=True` gives an iterator of completion chunks parsed from the same kind of
# frames. Each piece below is separated by `|`: mostly one token each. (A token that ends in the
# middle of a multi-byte UTF-8 character, an emoji say, is held back until the character is
# complete, so a piece may span two tokens.)

# %%
pieces = []
stream = client.completions.create(model="course-gpt", prompt="Anna went to the market and",
                                   max_tokens=25, temperature=0, stream=True)
for chunk in stream:
    pieces.append(chunk.choices[0].text)
print("|".join(pieces))

# %% [markdown]
# ## 6. Serving many users: dynamic batching
#
# `course-gpt` is tiny, so a decoding step costs mostly fixed overhead (Python, launching a
# dozen small matrix products), not arithmetic. A step for 16 sequences costs little more than
# a step for one. The service exploits this with a **dynamic batcher**: one worker thread takes
# the first waiting request, waits a few milliseconds for others to arrive, and runs them all
# as one batch with a shared forward pass per token.
#
# A batch needs its prompts in one rectangular tensor. A causal LM predicts the next token from
# the **last** position, so prompts are padded on the **left**: every row then ends at the same
# column. Two more details keep a padded row's answer identical to the unpadded one:
#
# - the `attention_mask` is 0 on padding, so no real token attends to a pad;
# - the `position_ids` count real tokens only. GPT-2 adds a learned position embedding; without
#   explicit ids, a prompt behind three pads would start at position 3 instead of 0.
#
# ```
# prompts     [5, 6, 7]    [8]
# input_ids   [5, 6, 7]    [P, P, 8]      (P = pad_token_id)
# mask        [1, 1, 1]    [0, 0, 1]
# positions   [0, 1, 2]    [0, 0, 0]      (padding gets 0, a valid position)
# ```
#
# ### Exercise 08.3: left-pad a batch
#
# Write `left_pad(sequences, pad_token_id)` that takes a list of token-id lists and returns
# `(input_ids, attention_mask, position_ids)`, three `(batch, longest)` int64 tensors as above.
# Build the mask from the lengths, not by comparing with `pad_token_id` (the pad id can be a real
# token too). `attention_mask.cumsum(-1) - 1`, clamped at 0, gives the positions.

# %%
def left_pad(sequences, pad_token_id):
    ### BEGIN SOLUTION
    longest = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), longest), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, seq in enumerate(sequences):
        input_ids[row, longest - len(seq):] = torch.tensor(seq, dtype=torch.long)
        attention_mask[row, longest - len(seq):] = 1
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    return input_ids, attention_mask, position_ids
    ### END SOLUTION


# %%
check("08.3", left_pad)

# %%
from course_utils.pretrained import load_pretrained
from course_utils.serving.generation import generate_batch, left_pad

model, tok = load_pretrained("course-gpt")
prompts = ["Once upon a time", "Tom had three apples", "The little robot went to"]
ids = [tok(p)["input_ids"] for p in prompts]
input_ids, attention_mask, position_ids = left_pad(ids, tok.pad_token_id)
print("input_ids:\n", input_ids, "\nposition_ids:\n", position_ids)

# Does padding change the answer? The last position's logits, padded vs each prompt alone.
with torch.no_grad():
    alone = torch.stack([model(torch.tensor([i])).logits[0, -1] for i in ids])
    padded = model(input_ids, attention_mask=attention_mask,
                   position_ids=position_ids).logits[:, -1]
    no_pos = model(input_ids, attention_mask=attention_mask).logits[:, -1]
print(f"max |padded - alone| with position_ids:    {(padded - alone).abs().max():.2e}")
print(f"max |padded - alone| without position_ids: {(no_pos - alone).abs().max():.2e}")

together = generate_batch(model, ids, [12] * len(ids), eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id)
one_by_one = [generate_batch(model, [i], [12], eos_token_id=tok.eos_token_id)[0] for i in ids]
print("greedy continuations, batched == one at a time:", together == one_by_one)

# %% [markdown]
# With `position_ids` the padded batch gives the same logits as each prompt alone (up to
# float rounding); without them, the shorter prompts get shifted positions and different
# predictions. `generate_batch` then decodes all rows together with a KV cache, dropping each
# row when it finishes.
#
# ### Continuous batching: a new batch at every step
#
# A batch formed once and run to its end (**static** batching) has two costs when requests
# ask for different lengths. A request that arrives while a batch runs waits for the whole
# batch, its longest row included, before it even starts; and each row that finishes early
# leaves an empty slot that nobody uses until the last row is done.
#
# **Continuous batching** (iteration-level scheduling, from the Orca paper, and what vLLM, TGI
# and TensorRT-LLM do) decides the batch anew before *every* decoding step:
#
# 1. rows whose request finished (end-of-text, its `max_tokens`) or was cancelled (the client
#    went away) leave at once, with their rows of the attention mask and of the KV cache;
# 2. the columns that are now padding in every remaining row are cut off (rows are
#    left-padded, so such columns are a prefix): a long prompt that left no longer makes every
#    later step attend over its length;
# 3. waiting requests join, oldest first, as many as the batch limit leaves room for: their
#    prompts are read (prefilled), their first token sampled and their cache rows appended to
#    the batch (left-padded to a common width), so they take part in the very next step.
#
# The course's server goes one step further, as vLLM and Sarathi-Serve do (**chunked
# prefill**): it reads the new prompts in the same forward pass as the running rows' next
# tokens, packed one after the other, so joining costs no pass of its own, and a long prompt is
# read a chunk per step, so the running rows never stall behind it. (It also keeps each row's
# cache in a fixed slot instead of re-padding the batch: `course_utils/serving/continuous.py`.)
#
# ```
# before:  a [0 1 1 1 1]   finished   ->   after:  c [0 1 1 1]     (one column cut)
#          b [1 1 1 1 1]   finished             d [1 1 1 1]
#          c [0 0 1 1 1]                        + e (waiting, admitted: prefilled, then joins)
#          d [0 1 1 1 1]
# ```
#
# Every row keeps its own positions (the mask says which columns are real, and the position
# of a row's next token counts its real tokens, the formula of exercise 08.3), so a row gives
# the same tokens whatever shares its batch. `python -m course_utils.serving` does this by
# default (`--batching continuous`); `--batching static` and `--batching none` are the two
# designs it replaces.
#
# ### Exercise 08.4: the scheduler step
#
# Write `schedule_step(running, waiting, max_batch_size, mask, cache)`. `running` is the list
# of requests in the batch (row `i` of `mask` and of every cache tensor is `running[i]`),
# `waiting` the queue in arrival order; a request has the flags `.finished` and `.cancelled`.
# `mask` is the `(rows, columns)` attention mask (1 on real tokens), `cache` a list of tensors
# shaped `(rows, heads, columns, head_dim)` (a KV cache's keys and values). Return
# `(running, admitted, waiting, mask, cache)`: the rows that stay (in order), the requests to
# admit now (oldest first, never a cancelled one, at most `max_batch_size` minus the rows that
# stay), the requests still waiting, and the mask and cache of the rows that stay with the
# all-padding columns cut. The grader plays scripted arrival sequences (bursts, cancellations
# while waiting, a long prompt that leaves, a batch that empties) and checks every step.

# %%
def schedule_step(running, waiting, max_batch_size, mask, cache):
    ### BEGIN SOLUTION
    keep = [i for i, r in enumerate(running) if not (r.finished or r.cancelled)]
    index = torch.tensor(keep, dtype=torch.long)
    mask = mask.index_select(0, index)
    cache = [c.index_select(0, index) for c in cache]
    real = (mask != 0).any(dim=0).nonzero()
    start = int(real[0]) if len(real) else mask.shape[1]
    mask, cache = mask[:, start:], [c[..., start:, :] for c in cache]
    line = [r for r in waiting if not r.cancelled]
    room = max(max_batch_size - len(keep), 0)
    return [running[i] for i in keep], line[:room], line[room:], mask, cache
    ### END SOLUTION


# %%
check("08.4", schedule_step)

# %% [markdown]
# The server's version is `course_utils.serving.scheduler.schedule`. On the picture above,
# with a batch limit of 3:

# %%
from course_utils.serving.scheduler import Request, schedule

rows = [Request("a", finished=True), Request("b", finished=True), Request("c"), Request("d")]
queue = [Request("e"), Request("f", cancelled=True), Request("g")]
mask = torch.tensor([[0, 1, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [0, 1, 1, 1, 1]])
keys = torch.arange(4 * 5, dtype=torch.float32).reshape(4, 1, 5, 1)  # one number per entry
step = schedule(rows, queue, 3, mask, [keys])
print("stay:", [r.id for r in step.running], " admitted:", [r.id for r in step.admitted],
      " still waiting:", [r.id for r in step.waiting])
print("mask:\n", step.mask, "\ncache entries of the rows that stay:\n", step.cache[0][:, 0, :, 0])

# %% [markdown]
# ### A short load test: three ways to serve
#
# Now the question that matters: how many tokens per second does the service deliver as more
# users arrive, and how long does each user wait for its first token? A **closed-loop** load
# generator simulates `clients` users, each sending a request, reading the streamed answer,
# and sending the next, for a fixed time. `async` `httpx` keeps all of them in flight from one
# thread. Output lengths are **mixed**, as real traffic is: three requests in four ask for 4
# tokens, every fourth for 32 (greedy, via `/v1/completions`, whose `usage` counts the tokens
# exactly). For each request we record the **time to first token** (TTFT: from sending to the
# first streamed text, waiting in line included) and the whole latency.
#
# Three servers run the same model in this kernel (`ServerThread`, each on its own port):
# one request at a time (the first sketch), static batching and continuous batching. They take
# turns in short rounds, so a burst of other work on the machine hits them alike. The numbers
# depend on the machine and on what else runs on it: the load generator shares the CPU with
# the servers. (`benchmarks/load_test.py` runs the same comparison longer, with real server
# processes and up to 64 clients.)

# %%
from course_utils.serving import ServerThread, create_app

PROMPTS = ["Once upon a time", "The little robot", "Tom had three apples", "In the forest",
           "Anna went to the market and", "The sky was"]
LENGTHS = [4, 4, 4, 32]  # max_tokens of successive requests: mostly short, some long


async def closed_loop(url: str, clients: int, seconds: float) -> dict:
    """`clients` users, each streaming requests back to back for `seconds`; what they got."""
    ttft, latencies, tokens, sent = [], [], 0, 0
    deadline = time.perf_counter() + seconds

    async def user(c: httpx.AsyncClient, k: int) -> None:
        nonlocal tokens, sent
        while time.perf_counter() < deadline:
            body = {"model": "course-gpt", "prompt": PROMPTS[(k + sent) % 6],
                    "max_tokens": LENGTHS[sent % len(LENGTHS)], "temperature": 0,
                    "stream": True, "stream_options": {"include_usage": True}}
            sent += 1
            start, first = time.perf_counter(), None
            async with c.stream("POST", "/v1/completions", json=body) as r:
                r.raise_for_status()
                async for line in r.aiter_lines():
                    if not line.startswith("data: {"):
                        continue
                    event = json.loads(line[len("data: "):])
                    if first is None and event["choices"] and event["choices"][0]["text"]:
                        first = time.perf_counter() - start
                    if event.get("usage"):
                        tokens += event["usage"]["completion_tokens"]
            latencies.append(time.perf_counter() - start)
            ttft.append(latencies[-1] if first is None else first)

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as c:
        start = time.perf_counter()
        await asyncio.gather(*(user(c, k) for k in range(clients)))
        return {"ttft": ttft, "latencies": latencies, "tokens": tokens,
                "seconds": time.perf_counter() - start}


def p99(values: list[float]) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(0.99 * len(values)))]


def summary(rounds: list[dict]) -> dict:
    """Median tokens per second over the rounds; percentiles over all requests, in ms."""
    ttft = [x for r in rounds for x in r["ttft"]]
    latencies = [x for r in rounds for x in r["latencies"]]
    return {"requests": len(latencies),
            "tokens_per_s": statistics.median(r["tokens"] / r["seconds"] for r in rounds),
            "ttft_p50_ms": 1000 * statistics.median(ttft), "ttft_p99_ms": 1000 * p99(ttft),
            "p99_ms": 1000 * p99(latencies)}


modes = {"one at a time": "none", "static": "static", "continuous": "continuous"}
kernel_threads = torch.get_num_threads()  # each app sets torch's threads as the server does
servers = {mode: ServerThread(create_app(model, tok, model_name="course-gpt", batching=kind,
                                         max_batch_size=16), startup_timeout=60).start()
           for mode, kind in modes.items()}
for srv in servers.values():  # warm-up: the first requests pay one-off costs
    await closed_loop(srv.url, clients=2, seconds=0.2)  # noqa: F704

print(f"max_tokens of successive requests: {LENGTHS} (then again)")
levels, results = [1, 4, 16], {mode: [] for mode in modes}
for clients in levels:
    rounds = {mode: [] for mode in modes}
    for turn in range(2):  # alternate which mode goes first
        for mode in list(modes)[::1 if turn % 2 else -1]:
            rounds[mode].append(await closed_loop(  # noqa: F704
                servers[mode].url, clients, seconds=0.4))
    for mode in modes:
        row = summary(rounds[mode])
        results[mode].append(row)
        print(f"{clients:>2} client{'s' if clients > 1 else ' '}, {mode:<13}: "
              f"{row['requests']:>3} requests, {row['tokens_per_s']:5.0f} tokens/s, TTFT p50 "
              f"{row['ttft_p50_ms']:5.0f} ms, p99 {row['ttft_p99_ms']:5.0f} ms; latency p99 "
              f"{row['p99_ms']:5.0f} ms")
continuous_stats = httpx.get(f"{servers['continuous'].url}/health").json()
for srv in servers.values():
    srv.stop()
torch.set_num_threads(kernel_threads)
print(f"continuous: {continuous_stats['steps']} steps (one forward pass each, new prompts "
      f"read in it), {continuous_stats['mean_rows_per_step']} rows per step on average")

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
for mode, rows in results.items():
    for ax, key in zip(axes, ("tokens_per_s", "ttft_p99_ms", "p99_ms"), strict=True):
        ax.plot(levels, [r[key] for r in rows], "o-", label=mode)
titles = ("throughput (tokens/s): higher is better", "time to first token, p99 (ms)",
          "latency p99 (ms): lower is better")
for ax, title in zip(axes, titles, strict=True):
    ax.set_xscale("log", base=2)
    ax.set_xticks(levels, [str(c) for c in levels])
    ax.set_xlabel("concurrent clients")
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.legend()
plt.tight_layout()
plt.show()

by_mode = {mode: dict(zip(levels, rows, strict=True)) for mode, rows in results.items()}
for clients in levels:
    one, static, cont = (by_mode[m][clients] for m in modes)
    print(f"{clients:>2} client{'s' if clients > 1 else ' '}: continuous gives "
          f"{cont['tokens_per_s'] / one['tokens_per_s']:.1f}x the throughput of one at a time "
          f"and {cont['tokens_per_s'] / static['tokens_per_s']:.1f}x static's; its p99 time to "
          f"first token is {cont['ttft_p99_ms']:.0f} ms against static's "
          f"{static['ttft_p99_ms']:.0f} ms")

# %% [markdown]
# With one client there is nothing to batch: all three modes run the same requests, so any
# gap between them there is the noise of a shared machine (the measure of how far to trust the
# other points). As clients arrive, one-at-a-time throughput stays flat, so each user waits in a
# longer line: its time to first token grows in step with the number of clients. Both batching
# servers share each decoding step, so their throughput grows with load; this is the single
# most important idea in LLM serving: a decoding step is cheap to share.
#
# The two batching modes differ in *when* a request may join. Under static batching a short
# request that arrives behind a long one waits for the whole batch, so its time to first token
# includes someone else's 32 tokens, and the slots of the rows that finished early stay empty
# until the longest is done. Under continuous batching it joins at the next step: compare the
# p99 times to first token printed above at 4 and 16 clients, and the throughput the filled
# slots give. `benchmarks/load_test.py` measures the same three servers as separate processes
# at 1 to 64 clients.
#
# One more limit hides in these servers, and it is Python's. The batcher's thread and the event
# loop live in one process, and a small model's decoding step is mostly interpreter work (dozens
# of small operations of a few microseconds each), so the two take turns holding the **global
# interpreter lock**: together they use about one core, however many the machine has, and the
# more tokens a batched step streams out, the more the loop takes from the model. That is why
# vLLM runs its engine core in a separate process. This server can too:
# `python -m course_utils.serving --engine-process` runs the batcher in a child process
# (`course_utils/serving/engine_process.py`), which receives requests and sends back each
# step's tokens over a pipe; `benchmarks/load_test.py` measures the three modes that way (and
# with `--engine thread` as here).
#
# ## 7. Smaller weights: int8 dynamic quantization
#
# Each weight is a 32-bit float. **Int8 dynamic quantization** stores every linear layer's
# weights as 8-bit integers with a scale, and at run time quantizes the activations on the fly,
# multiplies in int8 and rescales. Weights shrink 4x; embeddings and layer norms stay float32.
# (GPT-2's projections are `Conv1D` modules, not `nn.Linear`, so `quantize.py` first swaps them
# for equivalent `nn.Linear` layers: otherwise PyTorch would quietly quantize only the output
# head.) Three numbers decide whether it is worth it: size on disk, time per token, and quality
# (perplexity on held-out stories: lower is better).

# %%
from course_utils import data
from course_utils.serving.quantize import quantization_table

texts = data.stories()["test"]["text"][:20]
table = quantization_table(model, tok, texts, prompt="Once upon a time", new_tokens=16)
print(f"{'model':<14} {'size on disk (MB)':>18} {'ms per token':>13} {'perplexity':>11}")
for row in table:
    print(f"{row['model']:<14} {row['size_mb']:>18.2f} {row['ms_per_token']:>13.2f} "
          f"{row['perplexity']:>11.3f}")
fp32, int8 = table
print(f"\nint8 is {fp32['size_mb'] / int8['size_mb']:.1f}x smaller, "
      f"{fp32['ms_per_token'] / int8['ms_per_token']:.2f}x the speed per token, and its "
      f"perplexity changes by {100 * (int8['perplexity'] / fp32['perplexity'] - 1):+.2f}%")

# %% [markdown]
# The size shrinks by less than 4x because the embedding table, a large part of a model this
# small, stays float32. Perplexity barely moves: 8 bits per weight keep almost all the
# information. Speed is the surprise: for matrices this small, quantizing the activations at
# every step costs about as much as the int8 arithmetic saves, and int8 may even be slower.
# Quantization pays on big models, where decoding is limited by reading the weights from memory:
# 4x fewer bytes is up to 4x faster, and a model that did not fit in memory now does. That is
# why servers for billion-parameter models run int8, int4 or fp8 weights.
#
# The server's `--quantize` does *not* serve this dynamic model. Dynamic quantization picks the
# activations' scale from the whole tensor it multiplies, and in a server that tensor holds
# every row of the batch: a request's answer would change with whoever shares its batch. So
# `python -m course_utils.serving --quantize` serves int8 *weights* only (one scale per group
# of 32 weights, dequantized in the forward pass: lesson 09's `quantize_model`), and every
# request gets the tokens it would get alone, a promise the test suite checks in every
# batching mode.
#
# ## 8. Shipping it: the Dockerfile
#
# A service is deployed as a container image: the code, its exact dependencies and the model,
# in one artefact that runs the same on a laptop and in a cluster. There is no Docker engine
# here, so we read it rather than build it:

# %%
dockerfile = (ROOT / "Dockerfile").read_text()
print(dockerfile)

# %% [markdown]
# Part by part:
#
# - **`FROM python:3.11-slim`**: a slim Debian base, the same Python as the course. The full
#   image carries compilers and headers a server never uses: hundreds of MB more to pull and
#   more software to keep patched.
# - **`ENV ...`**: unbuffered output (logs appear at once in `docker logs`), no `.pyc` files, no
#   pip cache in the image, and `HF_HUB_OFFLINE=1`: the container never tries the network.
# - **`RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu torch==...`**: the
#   dependencies come **before** the code, so editing the code reuses the cached layer instead
#   of reinstalling. Torch comes from PyTorch's **CPU-only** index: the default Linux wheel pulls
#   in gigabytes of CUDA libraries a CPU container never uses. Every version is pinned, the same
#   as `requirements.txt`, and only what serving needs is installed (no Jupyter).
# - **`COPY course_utils/ ./course_utils/`**: the code, **with the model baked in**
#   (`course_utils/assets/course-gpt`). A container starts without downloading anything, and the
#   image tag names exactly which weights it serves. (`.dockerignore` keeps `.git`, `.venv`,
#   notebooks and tests out of the build context.)
# - **`useradd ... app` / `USER app`**: never run a network service as root; a compromised
#   process then owns only this user's files.
# - **`HEALTHCHECK ... /health`**: Docker (and an orchestrator) marks the container unhealthy
#   when `/health` stops answering and can restart it. The slim image has no `curl`, so Python
#   asks.
# - **`CMD [...] --host 0.0.0.0`**: inside a container the server must listen on all
#   interfaces, or the published port reaches nothing. The exec form (a JSON list, no shell)
#   makes the server PID 1, so `docker stop`'s SIGTERM reaches uvicorn, which finishes the
#   requests in flight and shuts down cleanly. `--engine-process` runs the model in a child
#   process with its own GIL (section 6): the child ignores SIGTERM, and the server stops it
#   once the requests in flight are done.
#
# The pins in the image must match what the course was tested with. A quick check against this
# environment (the test suite checks more, in `tests/test_dockerfile.py`):

# %%
import re
from importlib import metadata

pins = dict(re.findall(r"^\s+([A-Za-z0-9_.-]+)==([0-9][^\s\\]*)", dockerfile, re.MULTILINE))
for package, pinned in pins.items():
    installed = metadata.version(package)
    print(f"{package:<16} image {pinned:<10} here {installed:<12} "
          f"{'same' if installed.split('+')[0] == pinned else 'DIFFERENT'}")
print("\nbuild and run it where Docker is installed:\n"
      "  docker build -t course-gpt-service .\n"
      "  docker run --rm -p 8000:8000 --cpus 2 course-gpt-service")

# %% [markdown]
# ## 9. Stop the server
#
# `stop()` sends SIGTERM, the signal `docker stop` and Kubernetes send. Uvicorn stops accepting
# connections, lets the requests in flight finish within a grace period, runs the app's
# shutdown (the engine's worker thread ends), and exits; a server that still hangs after
# `stop()`'s own timeout gets SIGKILL. We check that the process is gone and the port no longer
# answers.

# %%
import signal

http.close()
pid = server.process.pid
code = server.stop()
print("exit code:", code, f"(-{signal.SIGTERM.name}: uvicorn shut down gracefully and then "
      f"re-raised the signal)" if code == -signal.SIGTERM else "")
print("its log ends with:", *server.output().strip().splitlines()[-3:], sep="\n  ")
print("process", pid, "still exists:", psutil.pid_exists(pid) and
      psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
try:
    httpx.get(f"{server.url}/health", timeout=2)
except httpx.ConnectError as err:
    print("GET /health now fails:", type(err).__name__)
print(f"\nthis notebook ran in {time.perf_counter() - started:.0f} s")

# %% [markdown]
# ## 10. What comes next
#
# `course_utils.serving` has the pieces every production LLM server has: validated requests,
# a model loaded once and run off the event loop, batching, streaming, an OpenAI-compatible
# API, a health check, a container. Dedicated serving engines go much further; all three
# below speak the same OpenAI-compatible API, so the client code of this lesson works with
# them unchanged.
#
# - **[vLLM](https://docs.vllm.ai)**: introduced **PagedAttention**. The KV cache is the
#   memory that limits how many requests fit in a batch; allocating it per request for the
#   maximum length wastes most of it. vLLM stores it in fixed-size blocks, like an operating
#   system's memory pages, so almost nothing is wasted and requests with a common prefix (the
#   same system prompt) share blocks. Its scheduler does **continuous batching**
#   (iteration-level scheduling, first described for Orca): requests join and leave the
#   running batch at *every decoding step*, so a new request never waits for a batch to
#   finish and a finished one frees its slot at once, the idea of section 6's scheduler.
# - **[Text Generation Inference (TGI)](https://huggingface.co/docs/text-generation-inference)**:
#   Hugging Face's server, a Rust router with continuous batching in front of optimized model
#   code, tensor parallelism over several GPUs, quantized weights, and production features
#   (metrics, tracing, guided JSON output).
# - **[TensorRT-LLM](https://nvidia.github.io/TensorRT-LLM/)**: NVIDIA's library that compiles
#   a model into fused GPU kernels, with in-flight (continuous) batching, a paged KV cache,
#   fp8/int4 quantization and speculative decoding; usually served through Triton.
#
# Other ideas worth a search: **speculative decoding** (a small model drafts several tokens, the
# big one checks them in one pass), **prefix caching**, **chunked prefill**, and autoscaling on
# queue length rather than CPU use.
#
# ## Summary
#
# - The cheat-sheet's `/generate` loads its model once, but calls it inside `async def`: the
#   event loop is held for the whole generation and every other request, `/health` too, waits.
#   Run the model on a worker (the engine) and `await` it.
# - In `transformers`, sampling refuses `temperature=0` with a `ValueError`; greedy decoding is
#   `do_sample=False`. A server that accepts 0 must switch to greedy itself.
# - A model service validates every request (types, bounds, unknown fields, sizes: in the
#   schema, so that `/openapi.json` publishes the limits, and in the handler for what needs the
#   model) and answers bad input with a 4xx and a JSON message, never a 500.
# - Speaking the OpenAI API makes every existing client and tool work with your server.
# - Server-sent events stream tokens as `data:` lines ended by a blank line; the first token
#   arrives long before the last.
# - Batching shares each decoding step between requests: throughput grows with load instead of
#   latency. Left padding, the attention mask and position ids keep every row's answer intact.
#   Continuous batching re-decides the batch at every step, so a new request starts at once and
#   a finished one frees its slot.
# - Int8 quantization shrinks weights with almost no loss of quality; speed gains come on big,
#   memory-bound models.
# - A container image pins the dependencies, bakes in the model, runs as a non-root user and
#   has a health check; the server shuts down gracefully on SIGTERM.
#
# That is the course: from one attention head to a model served over HTTP.

# %%
progress()
