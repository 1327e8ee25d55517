"""Known-wrong answers to exercise 08.1, the /generate endpoint: the grader must reject each.

Each answer is a whole ``generate_app(engine)`` as a learner would write it, independently of
the grader's own list of mistakes. No ``from __future__ import annotations`` here: FastAPI
reads the handlers' annotations (local classes) at run time.
"""

import copy
from typing import Annotated

import pytest
import torch
from fastapi import FastAPI, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from course_utils.grading import get_exercise, run_exercise
from course_utils.grading.lesson08_endpoint import SCHEMA, grading_engine, published_limits
from course_utils.serving.endpoint import generate_app
from course_utils.serving.engine import collect


def _verdict(fn):
    return run_exercise(get_exercise("08.1"), fn)


class Body(BaseModel):
    """A learner's schema, right."""

    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1, max_length=4000)
    max_length: int = Field(50, ge=1, le=1024)
    temperature: float = Field(1.0, ge=0.0, le=2.0)


class Answer(BaseModel):
    generated_text: str
    finish_reason: str


def learner_alternative(engine):
    """Correct, written differently: Annotated constraints, gt=0 for an int (the same bound),
    400 for the handler's own refusals, and the stream read chunk by chunk."""

    class Req(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        prompt: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
        max_length: Annotated[int, Field(gt=0, le=1024)] = 50
        temperature: Annotated[float, Field(ge=0, le=2)] = 1.0

    app = FastAPI(title="mine")

    @app.post("/generate", response_model=Answer)
    async def continue_text(body: Req):
        tokens = engine.encode(body.prompt)
        room = body.max_length - len(tokens)
        if room < 1 or body.max_length > engine.context_length:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "max_length does not fit")
        pieces, reason = [], None
        async for chunk in engine.submit(tokens, room, temperature=body.temperature):
            pieces.append(chunk.text)
            reason = chunk.finish_reason or reason
        return {"generated_text": body.prompt + "".join(pieces), "finish_reason": reason}

    return app


def _app(handler_body):
    """A learner's app with the right schema around ``handler_body(engine, req)``."""

    def make(engine):
        app = FastAPI()

        @app.post("/generate")
        async def generate(req: Body) -> Answer:
            return await handler_body(engine, req)

        return app

    return make


def _checked(engine, req):
    ids = engine.encode(req.prompt)
    if not len(ids) < req.max_length <= engine.context_length:
        raise HTTPException(422, "max_length does not fit")
    return ids


async def _cheat_sheet_call(engine, req):
    """Wrong: the model called directly inside async def (blocks the event loop)."""
    ids = _checked(engine, req)
    out = engine.model.generate(torch.tensor([ids]), max_length=req.max_length,
                                do_sample=False, pad_token_id=engine.eos_token_id)
    text = engine.tokenizer.decode(out[0][len(ids):], skip_special_tokens=True)
    return Answer(generated_text=req.prompt + text, finish_reason="length")


async def _not_awaited(engine, req):
    """Wrong: collect(...) is a coroutine; without await, there is no .text."""
    ids = _checked(engine, req)
    out = collect(engine.submit(ids, req.max_length - len(ids), temperature=req.temperature))
    return Answer(generated_text=req.prompt + out.text, finish_reason=out.finish_reason)


async def _new_tokens_wrong_bound(engine, req):
    """Wrong: max_length taken as the number of new tokens, and checked that way."""
    ids = engine.encode(req.prompt)
    if len(ids) + req.max_length > engine.context_length:
        raise HTTPException(422, "too long")
    out = await collect(engine.submit(ids, req.max_length, temperature=req.temperature))
    return Answer(generated_text=req.prompt + out.text, finish_reason=out.finish_reason)


async def _off_by_one_context(engine, req):
    """Wrong: max_length equal to the context refused (>= instead of >)."""
    ids = engine.encode(req.prompt)
    if req.max_length >= engine.context_length or req.max_length <= len(ids):
        raise HTTPException(422, "too long")
    out = await collect(engine.submit(ids, req.max_length - len(ids),
                                      temperature=req.temperature))
    return Answer(generated_text=req.prompt + out.text, finish_reason=out.finish_reason)


async def _continuation_only(engine, req):
    ids = _checked(engine, req)
    out = await collect(engine.submit(ids, req.max_length - len(ids),
                                      temperature=req.temperature))
    return Answer(generated_text=out.text, finish_reason=out.finish_reason)


async def _joined_with_a_space(engine, req):
    ids = _checked(engine, req)
    out = await collect(engine.submit(ids, req.max_length - len(ids),
                                      temperature=req.temperature))
    return Answer(generated_text=f"{req.prompt} {out.text}", finish_reason=out.finish_reason)


async def _prompt_twice(engine, req):
    ids = _checked(engine, req)
    out = await collect(engine.submit(ids, req.max_length - len(ids),
                                      temperature=req.temperature))
    full = engine.tokenizer.decode(ids) + out.text  # "the whole text", as a pipeline gives
    return Answer(generated_text=req.prompt + full, finish_reason=out.finish_reason)


async def _greedy_forced(engine, req):
    """Wrong: the temperature never reaches the engine (always 0)."""
    ids = _checked(engine, req)
    out = await collect(engine.submit(ids, req.max_length - len(ids), temperature=0.0))
    return Answer(generated_text=req.prompt + out.text, finish_reason=out.finish_reason)


async def _submitted_twice(engine, req):
    """Wrong: the request sent to the engine twice (once to 'check' it)."""
    ids = _checked(engine, req)
    await collect(engine.submit(ids, 1, temperature=req.temperature))
    out = await collect(engine.submit(ids, req.max_length - len(ids),
                                      temperature=req.temperature))
    return Answer(generated_text=req.prompt + out.text, finish_reason=out.finish_reason)


def no_limits(engine):
    class Req(BaseModel):
        prompt: str
        max_length: int = 50
        temperature: float = 1.0

    app = FastAPI()

    @app.post("/generate")
    async def generate(req: Req) -> Answer:
        return await _continuation_fixed(engine, req)

    return app


async def _continuation_fixed(engine, req):
    ids = _checked(engine, req)
    out = await collect(engine.submit(ids, req.max_length - len(ids),
                                      temperature=req.temperature))
    return Answer(generated_text=req.prompt + out.text, finish_reason=out.finish_reason)


def temperature_must_be_positive(engine):
    class Req(Body):
        temperature: float = Field(1.0, gt=0.0, le=2.0)

    app = FastAPI()

    @app.post("/generate")
    async def generate(req: Req) -> Answer:
        return await _continuation_fixed(engine, req)

    return app


def unknown_fields_ignored(engine):
    class Req(BaseModel):
        prompt: str = Field(min_length=1, max_length=4000)
        max_length: int = Field(50, ge=1, le=1024)
        temperature: float = Field(1.0, ge=0.0, le=2.0)

    app = FastAPI()

    @app.post("/generate")
    async def generate(req: Req) -> Answer:
        return await _continuation_fixed(engine, req)

    return app


def wrong_field_names(engine):
    app = FastAPI()

    @app.post("/generate")
    async def generate(req: Body) -> dict:
        ids = _checked(engine, req)
        out = await collect(engine.submit(ids, req.max_length - len(ids),
                                          temperature=req.temperature))
        return {"text": req.prompt + out.text, "finish_reason": out.finish_reason}

    return app


def error_as_a_200_dict(engine):
    """Wrong: a bad max_length answered with an error dict and status 200."""
    app = FastAPI()

    @app.post("/generate")
    async def generate(req: Body):
        ids = engine.encode(req.prompt)
        if not len(ids) < req.max_length <= engine.context_length:
            return {"error": "max_length does not fit"}
        out = await collect(engine.submit(ids, req.max_length - len(ids),
                                          temperature=req.temperature))
        return {"generated_text": req.prompt + out.text, "finish_reason": out.finish_reason}

    return app


def catch_everything(engine):
    """Wrong: no checks of its own, every exception turned into a 200."""
    app = FastAPI()

    @app.post("/generate")
    async def generate(req: Body):
        try:
            ids = engine.encode(req.prompt)
            out = await collect(engine.submit(ids, req.max_length - len(ids),
                                              temperature=req.temperature))
            return {"generated_text": req.prompt + out.text, "finish_reason": out.finish_reason}
        except Exception as exc:
            return {"generated_text": "", "finish_reason": f"error: {exc}"}

    return app


def no_context_check(engine):
    app = FastAPI()

    @app.post("/generate")
    async def generate(req: Body) -> Answer:
        ids = engine.encode(req.prompt)
        out = await collect(engine.submit(ids, req.max_length - len(ids),
                                          temperature=req.temperature))
        return Answer(generated_text=req.prompt + out.text, finish_reason=out.finish_reason)

    return app


def forgot_to_return(engine):
    app = FastAPI()

    @app.post("/generate")
    async def generate(req: Body) -> Answer:
        return await _continuation_fixed(engine, req)


def wrong_path(engine):
    app = FastAPI()

    @app.post("/generation")
    async def generate(req: Body) -> Answer:
        return await _continuation_fixed(engine, req)

    return app


@pytest.mark.parametrize("fn", [generate_app, learner_alternative, _app(_continuation_fixed)])
def test_the_reference_and_learners_solutions_pass(fn):
    verdict = _verdict(fn)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize("fn, says", [
    (_app(_cheat_sheet_call), "on the event loop's own thread"),
    (_app(_not_awaited), "raised AttributeError: 'coroutine' object has no attribute 'text'"),
    (_app(_new_tokens_wrong_bound), "counts the prompt's 4 tokens too"),
    (_app(_off_by_one_context), "refused a valid request with 422"),
    (_app(_continuation_only), "only the continuation"),
    (_app(_joined_with_a_space), "with a space"),
    (_app(_prompt_twice), "the prompt appears twice"),
    (_app(_greedy_forced), "passed temperature=0.0 to the engine"),
    (_app(_submitted_twice), "called engine.submit 2 times"),
    (no_limits, "publishes no minimum length for `prompt`"),
    (temperature_must_be_positive, "refuses temperature 0 (gt=0)"),
    (unknown_fields_ignored, "accepts unknown fields"),
    (wrong_field_names, "your response has the fields ['finish_reason', 'text']"),
    (error_as_a_200_dict, "answered 200 to a bad request"),
    (catch_everything, "answered 200 to a bad request"),
    (no_context_check, "crashed with a 500 on a bad request"),
    (forgot_to_return, "end with `return app`"),
    (wrong_path, "no POST /generate route"),
])
def test_learner_style_wrong_answers_are_rejected_with_their_reason(fn, says):
    verdict = _verdict(fn)
    assert verdict.status == "failed", verdict.message
    assert says in verdict.message, verdict.message


def test_an_unsolved_exercise_is_not_attempted():
    def stub(engine):
        raise NotImplementedError("Your turn: replace this line with your code.")

    assert _verdict(stub).status == "not attempted"


def test_every_case_says_what_it_catches():
    ex = get_exercise("08.1")
    cases = list(ex.cases(torch.Generator().manual_seed(ex.seed)))
    assert len(cases) >= 15
    for case in cases:
        assert case.label and case.catches, case


def test_every_known_mistake_runs_on_every_case():
    """A mistake's hint is shown only when the learner matches it on every case."""
    ex = get_exercise("08.1")
    for case in ex.cases(torch.Generator().manual_seed(ex.seed)):
        for wrong, _ in ex.mistakes:
            ex.attempt(wrong, copy.deepcopy(case), None)


def test_known_mistakes_are_rejected_with_their_own_hint():
    ex = get_exercise("08.1")
    for wrong, hint in ex.mistakes:
        result = run_exercise(ex, wrong)
        assert result.status == "failed" and hint in result.message, (wrong.__name__,
                                                                     result.message)


def test_the_cases_reach_the_context_boundary():
    """The 'max_length = context' case leaves room for a few tokens, and a bad case asks one
    token more than the context (the boundary the handler checks)."""
    engine = grading_engine()
    ex = get_exercise("08.1")
    bodies = [c.args[0].get("json") for c in ex.cases(torch.Generator().manual_seed(ex.seed))
              if c.args[0] != SCHEMA]
    at_context = [b for b in bodies if b and b.get("max_length") == engine.context_length]
    assert at_context and 0 < engine.context_length - len(engine.encode(
        at_context[0]["prompt"])) <= 8
    assert any(b and b.get("max_length") == engine.context_length + 1 for b in bodies)


def test_published_limits_reads_what_fastapi_publishes():
    """Against FastAPI's own OpenAPI document of an independent schema: the bounds, defaults,
    required fields, an int's exclusive minimum read as an inclusive one, a nullable field."""

    class Req(BaseModel):
        model_config = ConfigDict(extra="forbid")
        prompt: str = Field(min_length=2, max_length=9)
        max_length: int = Field(7, gt=0, lt=11)
        temperature: float | None = Field(0.5, gt=0.0, le=1.5)

    app = FastAPI()

    @app.post("/generate")
    async def generate(req: Req) -> dict:
        return {}

    limits = published_limits(app.openapi())
    assert limits["extra_forbidden"] is True
    assert limits["fields"] == {
        "prompt": {"required": True, "default": None, "minLength": 2, "maxLength": 9},
        "max_length": {"required": False, "default": 7, "minimum": 1, "maximum": 10},
        "temperature": {"required": False, "default": 0.5, "exclusiveMinimum": 0.0,
                        "maximum": 1.5}}
    assert published_limits({"paths": {}}) == {"route": False}
