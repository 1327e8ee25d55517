"""Lesson 08, exercise 08.1: the ``/generate`` endpoint, graded by serving requests to it.

The learner writes ``generate_app(engine) -> FastAPI``. For each case the grader builds the
learner's app around a small engine (course-gpt-mini on the course's own :class:`Engine`),
seen through a spy that records every ``submit`` and seeds sampling so that answers repeat;
it sends one request in-process (httpx's ``ASGITransport``, on an event loop in a thread of
its own) and looks at what a client sees (the status and the body), what the handler asked of
the engine, and whether a model ran on the event loop's own thread, which would freeze every
other request. The first case reads the app's published schema (``/openapi.json``) for the
limits. A bad request must get 422 (FastAPI's standard answer) or 400; a good one 200 with
``{"generated_text": prompt + continuation, "finish_reason": ...}``.

No ``from __future__ import annotations``: the known mistakes below are FastAPI apps whose
handlers' annotations FastAPI reads at run time.
"""

import asyncio
import copy
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import torch
from starlette.applications import Starlette

from course_utils.grading.core import Case, Exercise, register
from course_utils.grading.exercise import Message, Mismatch
from course_utils.serving.endpoint import generate_app
from course_utils.serving.schemas import MAX_PROMPT_CHARS, MAX_TOKENS

SCHEMA = {"openapi": "GET /openapi.json"}  # the case that reads the published schema
FIELDS = ("prompt", "max_length", "temperature")
BAD = (400, 422)  # what an invalid request may get from a plain FastAPI app
SEED = 0  # given to the engine when the handler passes none: sampled answers repeat
REQUEST_TIMEOUT = 10.0  # seconds the grader waits for one answer

_ENGINE: Any = None
_ENGINE_LOCK = threading.Lock()


def grading_engine() -> Any:
    """The engine every case runs on: course-gpt-mini, loaded once, its worker started."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            from course_utils.pretrained import load_pretrained
            from course_utils.serving.engine import Engine

            model, tok = load_pretrained("course-gpt-mini")
            tok.model_max_length = 10**9  # a learner's unbounded prompt: no warning to print
            engine = Engine(model, tok, name="course-gpt-mini")
            engine.start()
            _ENGINE = engine
    return _ENGINE


def _ids(prompt_ids: Any) -> Any:
    try:
        return [int(i) for i in prompt_ids]
    except (TypeError, ValueError, RuntimeError):
        return repr(prompt_ids)[:200]


class _Spy:
    """The engine as the learner's handler sees it; ``calls`` records each ``submit``."""

    def __init__(self, engine: Any) -> None:
        self._engine, self.calls = engine, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def submit(self, prompt_ids: Any, max_new_tokens: Any, *, temperature: float = 1.0,
               top_p: float = 1.0, seed: int | None = None, stop: Any = ()) -> Any:
        self.calls.append({"prompt_ids": _ids(prompt_ids), "max_new_tokens": max_new_tokens,
                           "temperature": temperature})
        return self._engine.submit(prompt_ids, max_new_tokens, temperature=temperature,
                                   top_p=top_p, seed=SEED if seed is None else seed, stop=stop)


class _LoopWatch:
    """Counts module forward calls made on the event loop's own thread during a request."""

    def __init__(self) -> None:
        self.loop_thread: int | None = None
        self.hits = 0

    def hook(self, module: Any, args: Any) -> None:
        if threading.get_ident() == self.loop_thread:
            self.hits += 1


def _first_line(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}".rstrip(": ")


async def _send(app: Any, request: dict, watch: _LoopWatch) -> dict:
    watch.loop_thread = threading.get_ident()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://grader") as client:
        try:
            if request == SCHEMA:
                r = await asyncio.wait_for(client.get("/openapi.json"), REQUEST_TIMEOUT)
            else:
                r = await asyncio.wait_for(client.post("/generate", **request),
                                           REQUEST_TIMEOUT)
        except TimeoutError:
            return {"status": None, "raised": f"no answer within {REQUEST_TIMEOUT:g} s"}
        except Exception as exc:  # the app raised: a client would get a 500
            return {"status": 500, "raised": _first_line(exc)}
    try:
        body = r.json()
    except ValueError:
        body = r.text[:300]
    return {"status": r.status_code, "body": body}


def _serve(app: Any, request: dict) -> dict:
    """One request to ``app`` on a fresh event loop in its own thread (a notebook's main
    thread already runs one), with a watch on which thread runs the model."""
    watch, box = _LoopWatch(), {}

    def run() -> None:
        try:
            box["value"] = asyncio.run(_send(app, request, watch))
        except BaseException as exc:
            box["error"] = exc

    handle = torch.nn.modules.module.register_module_forward_pre_hook(watch.hook)
    try:
        thread = threading.Thread(target=run, name="grader-event-loop", daemon=True)
        thread.start()
        while thread.is_alive():
            thread.join(0.05)  # short waits: the time limit can interrupt between them
    finally:
        handle.remove()
    if "error" in box:
        raise box["error"]
    return {**box["value"], "on_loop": watch.hits > 0}


def _resolve(node: Any, doc: dict) -> Any:
    """A schema node with ``$ref`` followed and a nullable ``anyOf`` reduced to its type."""
    for _ in range(10):
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            target = doc
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target.get(part, {}) if isinstance(target, dict) else {}
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        elif "anyOf" in node:
            options = [o for o in node["anyOf"] if o.get("type") != "null"]
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            node = {**(options[0] if len(options) == 1 else {}), **rest}
        else:
            return node
    return node


_BOUNDS = ("minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
           "exclusiveMaximum")


def published_limits(doc: Any) -> dict:
    """What an OpenAPI document says about ``POST /generate``'s body: the fields, whether
    each is required, its default and bounds (an integer's ``exclusiveMinimum: 0`` is read
    as ``minimum: 1``), and whether unknown fields are refused."""
    try:
        op = doc["paths"]["/generate"]["post"]
    except (KeyError, TypeError):
        return {"route": False}
    try:
        body = _resolve(op["requestBody"]["content"]["application/json"]["schema"], doc)
    except (KeyError, TypeError):
        return {"route": True, "body": False}
    props = body.get("properties", {}) if isinstance(body, dict) else {}
    required = body.get("required", []) if isinstance(body, dict) else []
    fields = {}
    for name, spec in props.items():
        spec = _resolve(spec, doc) if isinstance(spec, dict) else {}
        f = {"required": name in required, "default": spec.get("default")}
        f.update({k: spec[k] for k in _BOUNDS if k in spec})
        if spec.get("type") == "integer":
            if "exclusiveMinimum" in f:
                f["minimum"] = max(f.get("minimum", -10**18), f.pop("exclusiveMinimum") + 1)
            if "exclusiveMaximum" in f:
                f["maximum"] = min(f.get("maximum", 10**18), f.pop("exclusiveMaximum") - 1)
        fields[name] = f
    return {"route": True, "body": True, "fields": fields,
            "extra_forbidden": isinstance(body, dict) and body.get("additionalProperties") is False}


_KIND = {"minLength": "minimum length", "maxLength": "maximum length",
         "minimum": "minimum", "maximum": "maximum", "exclusiveMinimum": "exclusive minimum",
         "exclusiveMaximum": "exclusive maximum"}


def _schema_problem(got: dict, want: dict) -> Message:
    if got == want:
        return None
    if not got.get("route"):
        return ("your app has no POST /generate route in /openapi.json: declare the handler "
                "with @app.post(\"/generate\") on the app that generate_app returns.")
    if not got.get("body"):
        return ("your POST /generate takes no JSON body: give the handler one parameter "
                "annotated with your pydantic request model (req: GenerateRequest).")
    mine, theirs = got.get("fields", {}), want.get("fields", {})
    for name in theirs:
        if name not in mine:
            return (f"your request schema has no field `{name}`: the API's fields are "
                    f"{', '.join(theirs)}.")
    extra = [n for n in mine if n not in theirs]
    if extra:
        return (f"your request schema has fields the API does not have: {extra}; its fields "
                f"are {', '.join(theirs)}.")
    for name, w in theirs.items():
        g = mine[name]
        if g["required"] != w["required"]:
            return (f"`{name}` should be {'required' if w['required'] else 'optional'} (a "
                    f"request {'must' if w['required'] else 'may'} leave it out"
                    f"{'' if w['required'] else ' and get the default'}).")
        if not w["required"] and g.get("default") != w.get("default"):
            return (f"`{name}` defaults to {g.get('default')!r} in your schema; the API's "
                    f"default is {w.get('default')!r}.")
        if (name == "temperature" and "exclusiveMinimum" in g and "minimum" in w
                and "minimum" not in g):
            return ("your schema refuses temperature 0 (gt=0): 0 means greedy decoding (the "
                    "likeliest token every time), which the API allows: use ge=0.0.")
        for key in _BOUNDS:
            if key in w and key not in g:
                return (f"your schema publishes no {_KIND[key]} for `{name}` (the API's is "
                        f"{w[key]!r}): give it with Field({_field_arg(key)}={w[key]!r}), so "
                        f"that a request outside it gets 422 and clients read the limit in "
                        f"/openapi.json.")
            if key in w and g[key] != w[key]:
                return (f"`{name}` has the {_KIND[key]} {g[key]!r} in your schema; the API's "
                        f"is {w[key]!r}.")
            if key in g and key not in w:
                return f"`{name}` has a {_KIND[key]} ({g[key]!r}) that the API does not have."
    if want.get("extra_forbidden") and not got.get("extra_forbidden"):
        return ("your schema accepts unknown fields: a typo such as `max_lenght` would be "
                "silently ignored and the client would get 50 tokens. Refuse them with "
                "model_config = ConfigDict(extra=\"forbid\").")
    return "your published request schema differs from the API's."


def _field_arg(key: str) -> str:
    return {"minLength": "min_length", "maxLength": "max_length", "minimum": "ge",
            "maximum": "le", "exclusiveMinimum": "gt", "exclusiveMaximum": "lt"}[key]


def _short(body: Any) -> str:
    text = json.dumps(body, ensure_ascii=False) if not isinstance(body, str) else repr(body)
    return text if len(text) <= 160 else text[:157] + "..."


def _requested(case: Case) -> dict:
    return case.args[0].get("json") if isinstance(case.args[0].get("json"), dict) else {}


def _calls_problem(got: list, want: list, case: Case) -> Message:
    if want and not got:
        return ("your handler answered without calling engine.submit: the engine's worker "
                "thread runs the model (batched with the other requests) while the handler "
                "awaits it, so get the text from `await collect(engine.submit(...))`. (A "
                "model called directly inside `async def` blocks the event loop.)")
    if len(got) != len(want):
        return (f"your handler called engine.submit {len(got)} times for one request; once "
                f"is enough.")
    req = _requested(case)
    for g, w in zip(got, want, strict=True):
        if g["prompt_ids"] != w["prompt_ids"]:
            return (f"your handler sent the engine the ids {_short(g['prompt_ids'])}, but "
                    f"engine.encode(prompt) gives {_short(w['prompt_ids'])}: pass those.")
        if g["max_new_tokens"] != w["max_new_tokens"]:
            k = len(w["prompt_ids"]) if isinstance(w["prompt_ids"], list) else "?"
            length = req.get("max_length", 50)
            return (f"your handler asked the engine for {g['max_new_tokens']!r} new tokens, "
                    f"but max_length={length} counts the prompt's {k} tokens too: ask for "
                    f"max_length - len(ids) = {w['max_new_tokens']!r}.")
        if g["temperature"] != w["temperature"]:
            return (f"your handler passed temperature={g['temperature']!r} to the engine, "
                    f"but the request asked for {w['temperature']!r}: pass "
                    f"temperature=req.temperature.")
    return None


def _text_problem(got: Any, want: Any, prompt: str) -> Message:
    if not isinstance(got, str):
        return f"generated_text should be a str, but it is {_short(got)}."
    rest = want[len(prompt):] if want.startswith(prompt) else None
    if rest is not None and got == rest:
        return ("generated_text is only the continuation: the API answers the prompt "
                "followed by its continuation (prompt + text), as the cheat-sheet's "
                "pipeline did.")
    if rest is not None and got == f"{prompt} {rest}":
        return ("you joined the prompt and the continuation with a space: the continuation "
                "brings its own spaces, so join them as they are (prompt + text).")
    if rest is not None and got == prompt + prompt + rest:
        return "the prompt appears twice in generated_text: prompt + continuation, once."
    return f"generated_text is {got!r}, but {want!r} is expected."


def _request_problem(got: dict, want: dict, case: Case) -> Message:
    if got.get("on_loop") and not want.get("on_loop"):
        return ("a model ran on the event loop's own thread while your handler served this "
                "request: for as long as it computes, no other request (not even /health) "
                "is answered. Let the engine run it: `await collect(engine.submit(...))`.")
    gs, ws = got.get("status"), want.get("status")
    if gs is None and ws is not None:
        return (f"your app gave no answer within {REQUEST_TIMEOUT:g} s ({got.get('raised')}); "
                f"does the handler wait for something that never comes?")
    if ws == 200:
        if gs == 500:
            return f"your app answered 500 to a valid request: your handler raised {got['raised']}."
        if gs in (404, 405):
            return (f"your app answered {gs} to POST /generate: declare the handler with "
                    f"@app.post(\"/generate\").")
        if gs != 200:
            return f"your app refused a valid request with {gs} ({_short(got.get('body'))})."
        problem = _calls_problem(got.get("calls", []), want.get("calls", []), case)
        if problem:
            return problem
        body, expected = got.get("body"), want.get("body")
        if not isinstance(body, dict):
            return (f"your response is {_short(body)}; the API answers a JSON object with "
                    f"generated_text and finish_reason.")
        if isinstance(expected, dict) and set(body) != set(expected):
            return (f"your response has the fields {sorted(body)}; the API's are "
                    f"{sorted(expected)} (declare them in the response model).")
        if isinstance(expected, dict) and "generated_text" in expected:
            prompt = _requested(case).get("prompt", "")
            if body["generated_text"] != expected["generated_text"]:
                return _text_problem(body["generated_text"], expected["generated_text"], prompt)
            if body != expected:
                return (f"finish_reason is {body.get('finish_reason')!r}, but "
                        f"{expected.get('finish_reason')!r} is expected: pass on the engine's "
                        f"out.finish_reason.")
        elif body != expected:
            return f"your response is {_short(body)}, but {_short(expected)} is expected."
        return None
    if ws in BAD:
        if gs == 200:
            return (f"your app answered 200 to a bad request ({case.label}), with "
                    f"{_short(got.get('body'))}: a client cannot tell that it failed. Refuse "
                    f"it with 422: a bound in the schema, or raise HTTPException(422, ...) in "
                    f"the handler (and let other errors be errors, not a 200).")
        if gs == 500:
            return (f"your app crashed with a 500 on a bad request ({case.label}): your handler "
                    f"raised {got['raised']}. Refuse the request with 422 before it reaches "
                    f"the engine: a bound in the schema, or HTTPException(422, ...).")
        if gs not in BAD:
            return (f"your app answered {gs} to a bad request ({case.label}); answer 422, as "
                    f"FastAPI does for an invalid body (400 is accepted too).")
        return None
    # The expected answer is a known mistake's (a 500, or a hang): agree on the same outcome.
    if gs != ws or got.get("raised", "").split(":")[0] != want.get("raised", "").split(":")[0]:
        return f"your app answered {gs}, not {ws}."
    return None


def _compare(got: Any, expected: Any, case: Case) -> Message:
    if not isinstance(got, dict) or not isinstance(expected, dict):
        return "the grader could not read your app's answer."
    if case.args[0] == SCHEMA:
        return _schema_problem(got.get("schema", {}), expected.get("schema", {}))
    return _request_problem(got, expected, case)


@dataclass
class EndpointExercise(Exercise):
    """An exercise whose answer is ``generate_app(engine) -> FastAPI``, graded over HTTP."""

    def named_values(self, case: Case) -> list[tuple[str, Any]]:
        return [("request", case.args[0])]

    def expected_of(self, case: Case) -> tuple[Any, Any]:
        return self.attempt(self.reference, case, None), None

    def attempt(self, candidate: Callable, case: Case, context: Any) -> Any:
        spy = _Spy(grading_engine())
        app = candidate(spy)
        if asyncio.iscoroutine(app):
            app.close()
            raise Mismatch("generate_app should be a plain `def` that builds and returns the "
                           "app (only the handler inside it is `async def`).")
        if not isinstance(app, Starlette):
            raise Mismatch(f"generate_app should return the FastAPI app it built (end with "
                           f"`return app`), but it returned {_short(type(app).__name__)}.")
        request = copy.deepcopy(case.args[0])
        out = _serve(app, request)
        if request == SCHEMA:
            return {"schema": published_limits(out.get("body")) if out.get("status") == 200
                    else {"route": False}}
        return {**out, "calls": spy.calls}


def _prompt_of(tokens: int, engine: Any) -> str:
    """A prompt of about ``tokens`` tokens (ordinary words, so the count is stable)."""
    words = "the little fox and the cat went to the market".split()
    text = ""
    for i in range(4 * tokens):
        longer = f"{text} {words[i % len(words)]}".strip()
        if len(engine.encode(longer)) > tokens:
            break
        text = longer
    return text


def _cases(rng: torch.Generator):
    engine = grading_engine()
    ctx = engine.context_length
    yield Case((SCHEMA,), label="the published request schema (/openapi.json)",
               catches="fields without limits; unknown fields accepted; wrong defaults; "
                       "temperature 0 refused")
    j = lambda **body: {"json": body}  # noqa: E731
    yield Case((j(prompt="Once upon a time", max_length=20, temperature=0),),
               label="greedy (temperature 0)",
               catches="the prompt left out of generated_text; the model called on the event "
                       "loop; max_length used as the number of new tokens")
    yield Case((j(prompt="Tom had three apples"),), label="only a prompt: the defaults",
               catches="wrong defaults; max_length 50 taken as 50 new tokens")
    yield Case((j(prompt="The little robot", max_length=30, temperature=0.7),),
               label="sampling at temperature 0.7", catches="temperature not passed on")
    yield Case((j(prompt='She said "it\'s a café ⛄" and', max_length=40, temperature=0),),
               label="quotes, an apostrophe and non-ASCII in the prompt",
               catches="the prompt mangled or re-decoded; a space added between prompt and text")
    short = "Anna went to the market and"
    k = len(engine.encode(short))
    yield Case((j(prompt=short, max_length=k + 1, temperature=0),),
               label="room for exactly one new token",
               catches="max_length compared with the prompt off by one")
    long = _prompt_of(ctx - 6, engine)
    yield Case((j(prompt=long, max_length=ctx, temperature=0),),
               label=f"max_length equal to the context ({ctx} tokens)",
               catches="the context bound off by one (>= instead of >); the prompt's tokens "
                       "added to max_length")
    yield Case((j(prompt="In the forest", max_length=24, temperature=2.0),),
               label="temperature 2.0, the upper bound", catches="the upper bound exclusive")
    bad = [
        (j(prompt=""), "an empty prompt", "no min_length on the prompt"),
        (j(prompt="x" * (MAX_PROMPT_CHARS + 1)), f"a prompt of {MAX_PROMPT_CHARS + 1} characters",
         "no max_length on the prompt"),
        (j(max_length=20), "no prompt", "the prompt given a default"),
        (j(prompt="Hi", max_lenght=20), "a typo: max_lenght", "unknown fields accepted"),
        (j(prompt="Once upon a time", max_length=0), "max_length 0", "no lower bound"),
        (j(prompt="Once upon a time", max_length=2 * MAX_TOKENS), f"max_length {2 * MAX_TOKENS}",
         "no upper bound on max_length"),
        (j(prompt="Once upon a time", max_length=ctx + 1),
         f"max_length {ctx + 1}, one more than the context",
         "max_length not checked against engine.context_length (the engine raises: 500)"),
        (j(prompt=short, max_length=k), f"max_length {k}: the prompt alone is {k} tokens",
         "no room left for a new token: the engine gets 0 new tokens (500)"),
        (j(prompt="Hi", temperature=-0.5), "temperature -0.5", "no lower bound on temperature"),
        (j(prompt="Hi", temperature=2.5), "temperature 2.5", "no upper bound on temperature"),
        (j(prompt=42), "the prompt is a number", "the prompt not typed str"),
        ({"content": b"prompt=Hi", "headers": {"content-type": "application/json"}},
         "a body that is not JSON", "the body read by hand without a schema"),
    ]
    for request, label, catches in bad:
        yield Case((request,), label=f"bad request: {label}", catches=catches)


# ---------------------------------------------------------------- known mistakes


def _variant(engine: Any, *, limits: bool = True, forbid: bool = True, greedy_ok: bool = True,
             check_context: bool = True, new_tokens_from_prompt: bool = True,
             with_prompt: bool = True, blocking: bool = False, errors_as_200: bool = False,
             pass_temperature: bool = True) -> Any:
    """The reference with one wrong idea switched on (each mistake below names it)."""
    from fastapi import FastAPI, HTTPException
    from pydantic import BaseModel, ConfigDict, Field

    from course_utils.serving.engine import collect

    temperature_field = Field(1.0, ge=0.0, le=2.0) if greedy_ok else Field(1.0, gt=0.0, le=2.0)

    class Request(BaseModel):
        model_config = ConfigDict(extra="forbid" if forbid else "ignore")
        if limits:
            prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
            max_length: int = Field(50, ge=1, le=MAX_TOKENS)
            temperature: float = temperature_field
        else:
            prompt: str
            max_length: int = 50
            temperature: float = 1.0

    app = FastAPI()

    async def handle(req: Request) -> dict:
        ids = engine.encode(req.prompt)
        if check_context and not len(ids) < req.max_length <= engine.context_length:
            raise HTTPException(422, "max_length does not fit")
        new = req.max_length - len(ids) if new_tokens_from_prompt else req.max_length
        if blocking:
            model = engine.model
            out = model.generate(torch.tensor([ids]), max_new_tokens=new, do_sample=False,
                                 pad_token_id=engine.eos_token_id)
            text = engine.tokenizer.decode(out[0, len(ids):], skip_special_tokens=True)
            reason = "length"
        else:
            kwargs = {"temperature": req.temperature} if pass_temperature else {}
            chunk = await collect(engine.submit(ids, new, **kwargs))
            text, reason = chunk.text, chunk.finish_reason
        return {"generated_text": req.prompt + text if with_prompt else text,
                "finish_reason": reason}

    async def generate(req: Request) -> dict:
        if not errors_as_200:
            return await handle(req)
        try:
            return await handle(req)
        except Exception as exc:
            return {"error": str(exc)}

    app.post("/generate")(generate)
    return app


def _no_limits(engine):
    return _variant(engine, limits=False)


def _unknown_fields_ignored(engine):
    return _variant(engine, forbid=False)


def _greedy_refused(engine):
    return _variant(engine, greedy_ok=False)


def _no_context_check(engine):
    return _variant(engine, check_context=False)


def _max_length_as_new_tokens(engine):
    return _variant(engine, new_tokens_from_prompt=False, check_context=False)


def _continuation_only(engine):
    return _variant(engine, with_prompt=False)


def _model_on_the_loop(engine):
    return _variant(engine, blocking=True)


def _every_error_a_200(engine):
    return _variant(engine, check_context=False, errors_as_200=True)


def _temperature_dropped(engine):
    return _variant(engine, pass_temperature=False)


register(EndpointExercise(
    id="08.1", title="the /generate endpoint", reference=generate_app, cases=_cases,
    compare=_compare, time_limit=30.0,
    hint="Inside generate_app(engine): a pydantic GenerateRequest with "
         "model_config = ConfigDict(extra=\"forbid\") and Field limits (prompt: min_length=1, "
         "max_length=4000; max_length: default 50, ge=1, le=1024; temperature: default 1.0, "
         "ge=0.0, le=2.0); a GenerateResponse(generated_text, finish_reason); and "
         "@app.post(\"/generate\") on an `async def` handler that encodes the prompt, raises "
         "HTTPException(422, ...) unless len(ids) < max_length <= engine.context_length, then "
         "`out = await collect(engine.submit(ids, max_length - len(ids), "
         "temperature=req.temperature))` and returns prompt + out.text with "
         "out.finish_reason. Return the app.",
    mistakes=[
        (_model_on_the_loop, "Calling the model inside `async def` runs it on the event loop: "
                             "every other request waits until it finishes. Submit the request "
                             "to the engine and await it: "
                             "`await collect(engine.submit(...))`."),
        (_no_limits, "Give every field its limits with Field(...): an empty or huge prompt, "
                     "max_length 0 or 10**6 and temperature 5 must be refused with 422."),
        (_unknown_fields_ignored, "Refuse unknown fields: "
                                  "model_config = ConfigDict(extra=\"forbid\")."),
        (_greedy_refused, "Temperature 0 is allowed (greedy): ge=0.0, not gt=0.0."),
        (_no_context_check, "Some limits need the model: after engine.encode(prompt), refuse "
                            "with HTTPException(422, ...) a max_length beyond "
                            "engine.context_length or not above the prompt's token count."),
        (_max_length_as_new_tokens, "max_length is the TOTAL length, prompt included (as in "
                                    "transformers' generate()): ask the engine for "
                                    "max_length - len(ids) new tokens."),
        (_continuation_only, "generated_text is the prompt followed by the continuation: "
                             "req.prompt + out.text."),
        (_every_error_a_200, "Don't turn errors into 200 answers: a bad request gets a 422, "
                             "and an error of the server stays an error (500)."),
        (_temperature_dropped, "Pass the request's temperature to the engine: "
                               "engine.submit(ids, n, temperature=req.temperature)."),
    ],
))
