"""The service's request and response bodies, validated by pydantic.

Every request model is strict: unknown fields are rejected (a typo such as ``max_lenght`` must
not be silently ignored), types are not coerced (``"50"`` is not a number, ``true`` is not 1),
numbers must be finite (JSON parsers accept ``NaN`` and ``1e999``), and every size is bounded
so that no single request can hold the model for long or exhaust memory. The bounds that depend
on the model (its context length) are checked by the endpoints after tokenizing.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_PROMPT_CHARS = 4000
MAX_TOKENS = 1024
MAX_CHOICES = 16

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class GenerateRequest(BaseModel):
    """The cheat-sheet request: a prompt, a total length in tokens and a sampling temperature."""

    model_config = _STRICT

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS,
                        description="Text to continue.", examples=["Once upon a time"])
    max_length: int = Field(50, ge=1, le=MAX_TOKENS,
                            description="Total length in tokens, prompt included, as in "
                                        "transformers' generate(); at most the model's context.")
    temperature: float = Field(1.0, ge=0.0, le=2.0,
                               description="0 picks the most likely token (greedy); higher is "
                                           "more random.")


class GenerateResponse(BaseModel):
    """The cheat-sheet version's response: the prompt followed by its continuation."""

    generated_text: str
    finish_reason: Literal["stop", "length"] = Field(
        description="'stop': the model ended the text; 'length': max_length was reached.")


class StreamOptions(BaseModel):
    """OpenAI's ``stream_options``: ask for a last chunk carrying the token usage."""

    model_config = _STRICT

    include_usage: bool = False


class CompletionRequest(BaseModel):
    """The body of OpenAI's ``POST /v1/completions``, with the fields this server supports.

    Sampling penalties, ``logprobs``, ``suffix`` and ``best_of`` exist in the OpenAI API but
    not here: they are accepted only at their neutral values, so a client that sends them
    learns so from a clear 422 instead of getting silently different behaviour.
    """

    model_config = _STRICT

    model: str = Field(min_length=1, max_length=200)
    prompt: str | list[str] = Field(description="One prompt, or a list of up to 16.")
    max_tokens: int | None = Field(16, ge=1, le=MAX_TOKENS)
    temperature: float | None = Field(1.0, ge=0.0, le=2.0)
    top_p: float | None = Field(1.0, gt=0.0, le=1.0)
    n: int | None = Field(1, ge=1, le=MAX_CHOICES)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = Field(None, description="Up to 4 strings that end the text.")
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    echo: bool | None = False
    user: str | None = Field(None, max_length=256)
    logprobs: int | None = None
    best_of: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, int] | None = None
    suffix: str | None = None

    @model_validator(mode="after")
    def _check(self) -> CompletionRequest:
        prompts = self.prompts()
        if not 1 <= len(prompts) <= MAX_CHOICES:
            raise ValueError(f"prompt: send 1 to {MAX_CHOICES} prompts, got {len(prompts)}")
        for p in prompts:
            if not 1 <= len(p) <= MAX_PROMPT_CHARS:
                raise ValueError(f"prompt: each prompt needs 1 to {MAX_PROMPT_CHARS} "
                                 f"characters, got {len(p)}")
        if len(prompts) * (self.n or 1) > MAX_CHOICES:
            raise ValueError(f"prompts x n must be at most {MAX_CHOICES} completions")
        stops = self.stops()
        if len(stops) > 4 or any(not 1 <= len(s) <= 50 for s in stops):
            raise ValueError("stop: up to 4 strings of 1 to 50 characters")
        neutral: dict[str, Any] = {"logprobs": (None, 0), "best_of": (None, 1),
                                   "frequency_penalty": (None, 0), "presence_penalty": (None, 0),
                                   "logit_bias": (None, {}), "suffix": (None, "")}
        for name, allowed in neutral.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} is not supported by this server: leave it out")
        return self

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class CompletionChoice(BaseModel):
    text: str
    index: int
    logprobs: None = None
    finish_reason: Literal["stop", "length"] | None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionResponse(BaseModel):
    """OpenAI's completion object (also each streamed chunk, with ``usage`` left out)."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """Every error: OpenAI's ``error`` object (what its client reads) plus FastAPI's ``detail``."""

    error: ErrorBody
    detail: Any = None
