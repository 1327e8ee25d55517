"""The ``/generate`` endpoint in its smallest correct form (lesson 08's exercise 08.1).

:func:`generate_app` builds a FastAPI app around an :class:`~.engine.Engine`: a request schema
whose every field is bounded (so ``/openapi.json`` publishes the limits), and an ``async``
handler that *awaits* the engine. The model runs on the engine's worker thread, so while one
request is generated the event loop goes on serving every other one. Errors are FastAPI's
standard ones (422 with a ``detail``). The course's full service, with OpenAI-style error
bodies, a body-size limit and streaming, is :mod:`.app`.

No ``from __future__ import annotations`` here: FastAPI reads the handler's annotations at
run time, and the schema classes are local to :func:`generate_app`, as in the exercise.
"""

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from course_utils.serving.engine import Engine, collect
from course_utils.serving.schemas import MAX_PROMPT_CHARS, MAX_TOKENS


def generate_app(engine: Engine) -> FastAPI:
    """A FastAPI app whose ``POST /generate`` continues a prompt with ``engine``."""

    class GenerateRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")  # a typo such as max_lenght is an error

        prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
        max_length: int = Field(50, ge=1, le=MAX_TOKENS)  # in tokens, the prompt included
        temperature: float = Field(1.0, ge=0.0, le=2.0)  # 0 picks the likeliest token

    class GenerateResponse(BaseModel):
        generated_text: str  # the prompt, then its continuation
        finish_reason: str  # "stop" (end of text) or "length" (max_length reached)

    app = FastAPI()

    @app.post("/generate")
    async def generate(req: GenerateRequest) -> GenerateResponse:
        ids = engine.encode(req.prompt)  # the bounds that need the model are checked here
        if req.max_length > engine.context_length:
            raise HTTPException(422, f"max_length is {req.max_length}, but the model's "
                                     f"context holds {engine.context_length} tokens")
        if req.max_length <= len(ids):
            raise HTTPException(422, f"max_length ({req.max_length}) counts the prompt, "
                                     f"which is already {len(ids)} tokens")
        stream = engine.submit(ids, req.max_length - len(ids), temperature=req.temperature)
        out = await collect(stream)  # the event loop serves others meanwhile
        return GenerateResponse(generated_text=req.prompt + out.text,
                                finish_reason=out.finish_reason)

    return app
