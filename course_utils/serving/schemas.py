"""The service's request and response bodies, validated by pydantic.

Every request model is strict: unknown fields are rejected (a typo such as ``max_lenght`` must
not be silently ignored), types are not coerced (``"50"`` is not a number, ``true`` is not 1),
numbers must be finite (JSON parsers accept ``NaN`` and ``1e999``), and every size is bounded
so that no single request can hold the model for long or exhaust memory. Every bound is in the
JSON schema (``/openapi.json``): per field as ``minimum``, ``maxLength``, ``maxItems``...; the
limits across fields (prompts times ``n``, the characters of all messages) in the field's
description and in the model's ``x-limits``; ``tests/test_serving_limits.py`` checks validation
at and just past each. The bounds that depend on the model (its context length) are checked by
the endpoints after tokenizing (400, ``context_length_exceeded``). The sampling fields vLLM
accepts but this server does not implement are accepted and ignored with a warning
(:class:`SamplingFields` lists them).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_PROMPT_CHARS = 4000
MAX_TOKENS = 1024
MAX_CHOICES = 16
MAX_STOPS = 4
MAX_STOP_CHARS = 50
MAX_MESSAGES = 64
MAX_PARTS = 16
MAX_CHAT_CHARS = 2 * MAX_PROMPT_CHARS
# The schema publishes bounds as JSON numbers, which clients (and FastAPI's OpenAPI models) read
# as doubles: 2**63 - 1 would be published as 2**63. The largest integer a double holds exactly.
MAX_SEED = 2**53 - 1

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class _Request(BaseModel):
    """Strict, except that an integral float is an integer: JSON has one kind of number, so
    ``4.0`` is the integer 4 (JSON Schema says so too, and schema-driven clients send it);
    ``4.5`` and ``true`` are still refused."""

    model_config = _STRICT

    @model_validator(mode="before")
    @classmethod
    def _integral_floats(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, value in data.items():
            field = cls.model_fields.get(name)
            if field is not None and isinstance(value, float) and value.is_integer() and \
                    int in (field.annotation, *get_args(field.annotation)):
                out[name] = int(value)
        return out


class GenerateRequest(_Request):
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


Prompt = Annotated[str, Field(min_length=1, max_length=MAX_PROMPT_CHARS)]
StopString = Annotated[str, Field(min_length=1, max_length=MAX_STOP_CHARS)]
Stop = StopString | Annotated[list[StopString], Field(max_length=MAX_STOPS)]

# Fields vLLM accepts that this server does not implement: accepted and ignored, with a WARNING
# in the log when set to anything but their neutral values (which change nothing anyway).
IGNORED: dict[str, tuple[Any, ...]] = {
    "top_k": (None, -1, 0), "min_p": (None, 0, 0.0), "repetition_penalty": (None, 1, 1.0),
    "presence_penalty": (None, 0, 0.0), "frequency_penalty": (None, 0, 0.0),
    "logit_bias": (None, {}), "best_of": (None, 1)}
_IGNORED_NOTE = "Accepted for compatibility with vLLM and ignored (a WARNING is logged)."
_UNSUPPORTED = "Not supported: leave it out (only its neutral value is accepted)."


def refuse(data: Any, unsupported: dict[str, tuple[Any, ...]]) -> Any:
    """Check, before field validation, that the fields this server does not implement hold only
    their neutral values, and say so in words (the schema allows only those values too)."""
    if isinstance(data, dict):
        for name, allowed in unsupported.items():
            if data.get(name) not in allowed:
                raise ValueError(f"{name}: not supported by this server; leave it out")
    return data


class SamplingFields(_Request):
    """The fields ``/v1/completions`` and ``/v1/chat/completions`` share.

    Honoured: ``n``, ``stop``, ``temperature``, ``top_p``, ``seed``, ``stream`` and
    ``stream_options.include_usage`` (plus each route's ``max_tokens``). Accepted and ignored,
    with a WARNING in the server's log when set: ``top_k``, ``min_p``, ``repetition_penalty``,
    ``presence_penalty``, ``frequency_penalty``, ``logit_bias``, ``best_of`` (vLLM accepts them,
    so clients send them), and ``user`` (metadata, silently). Any other field is refused: a
    typo such as ``max_token`` must not be silently ignored.
    """

    model_config = _STRICT

    temperature: float | None = Field(1.0, ge=0.0, le=2.0,
                                      description="0 picks the most likely token (greedy).")
    top_p: float | None = Field(1.0, gt=0.0, le=1.0,
                                description="Nucleus sampling: keep the most likely tokens "
                                            "whose probabilities add up to top_p.")
    n: int | None = Field(1, ge=1, le=MAX_CHOICES, description="Completions per prompt.")
    stream: bool | None = Field(False, description="Answer with server-sent events.")
    stream_options: StreamOptions | None = Field(
        None, description="Only with `stream: true`; otherwise the request is refused.")
    stop: Stop | None = Field(None, description=f"Up to {MAX_STOPS} strings of 1 to "
                                                f"{MAX_STOP_CHARS} characters that end the "
                                                "text (not included in it).")
    seed: int | None = Field(None, ge=0, le=MAX_SEED,
                             description="Same seed, same parameters: the same text, whatever "
                                         "else shares the batch (choice j uses seed + j).")
    user: str | None = Field(None, max_length=256, description="Ignored (metadata).")
    top_k: int | None = Field(None, description=_IGNORED_NOTE)
    min_p: float | None = Field(None, description=_IGNORED_NOTE)
    repetition_penalty: float | None = Field(None, description=_IGNORED_NOTE)
    presence_penalty: float | None = Field(None, description=_IGNORED_NOTE)
    frequency_penalty: float | None = Field(None, description=_IGNORED_NOTE)
    logit_bias: dict[str, float] | None = Field(None, description=_IGNORED_NOTE)
    best_of: int | None = Field(None, description=_IGNORED_NOTE)

    @model_validator(mode="after")
    def _check_stream(self) -> SamplingFields:
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options: only allowed with stream: true")
        return self

    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def ignored(self) -> list[str]:
        """The ignored fields this request set to something other than their neutral value."""
        return [name for name, neutral in IGNORED.items()
                if getattr(self, name) not in neutral
                and not (name == "best_of" and getattr(self, name) == (self.n or 1))]


class CompletionRequest(SamplingFields):
    """The body of OpenAI's ``POST /v1/completions``, with the fields this server supports.

    ``logprobs`` and ``suffix`` exist in the OpenAI API but not here: they would change what
    the answer holds, so they are accepted only at their neutral values and otherwise refused
    with a clear 400. See :class:`SamplingFields` for the sampling fields.
    """

    model_config = ConfigDict(**_STRICT, json_schema_extra={
        "x-limits": {"prompts_times_n": MAX_CHOICES}})

    model: str = Field(min_length=1, max_length=200)
    prompt: Prompt | Annotated[list[Prompt], Field(min_length=1, max_length=MAX_CHOICES)] = \
        Field(description=f"One prompt, or a list of up to {MAX_CHOICES}; each of 1 to "
                          f"{MAX_PROMPT_CHARS} characters. The number of prompts times `n` "
                          f"must be at most {MAX_CHOICES}.")
    max_tokens: int | None = Field(16, ge=1, le=MAX_TOKENS,
                                   description="New tokens per completion; the prompt's tokens "
                                               "plus these must fit the model's context.")
    echo: bool | None = False
    logprobs: int | None = Field(None, ge=0, le=0, description=_UNSUPPORTED)
    suffix: str | None = Field(None, max_length=0, description=_UNSUPPORTED)

    @model_validator(mode="before")
    @classmethod
    def _unsupported(cls, data: Any) -> Any:
        return refuse(data, {"logprobs": (None, 0), "suffix": (None, "")})

    @model_validator(mode="after")
    def _check(self) -> CompletionRequest:
        if len(self.prompts()) * (self.n or 1) > MAX_CHOICES:
            raise ValueError(f"prompt: the number of prompts ({len(self.prompts())}) times n "
                             f"({self.n}) must be at most {MAX_CHOICES} completions")
        return self

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


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


class TextPart(BaseModel):
    """One part of a message's ``content`` given as a list: only text parts are supported."""

    model_config = _STRICT

    type: Literal["text"]
    text: str = Field(max_length=MAX_PROMPT_CHARS)


ROLES = ("system", "developer", "user", "assistant")


class TextFormat(BaseModel):
    """The only ``response_format`` this server produces: plain text."""

    model_config = _STRICT

    type: Literal["text"]


class ChatMessage(BaseModel):
    """One message of a conversation: a role and its text.

    ``content`` is a string or, as OpenAI allows, a list of text parts (joined with line
    breaks). ``developer`` is OpenAI's newer name for ``system`` and is rendered as one. Tool
    and function messages, tool calls and non-text parts (images, audio) are refused with a
    400 saying so: this server has no tools and reads only text.
    """

    model_config = _STRICT

    role: Literal["system", "developer", "user", "assistant"]
    content: Annotated[str, Field(max_length=MAX_PROMPT_CHARS)] | Annotated[
        list[TextPart], Field(min_length=1, max_length=MAX_PARTS)] = Field(
        description=f"A string, or a list of up to {MAX_PARTS} text parts "
                    '`{"type": "text", "text": ...}`.')
    name: str | None = Field(None, max_length=64, description="Ignored.")

    @model_validator(mode="before")
    @classmethod
    def _say_what_is_unsupported(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        role = data.get("role")
        if isinstance(role, str) and role not in ROLES:
            raise ValueError(f"role {role!r} is not supported: this server has no tools; use "
                             f"one of {', '.join(ROLES)}")
        for key in ("tool_calls", "function_call", "tool_call_id"):
            if data.get(key) is not None:
                raise ValueError(f"{key} is not supported: this server has no tools")
        content = data.get("content")
        if isinstance(content, list):
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if isinstance(kind, str) and kind != "text":
                    raise ValueError(f"content parts of type {kind!r} are not supported: "
                                     "send text only")
        return data

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content)


class ChatCompletionRequest(SamplingFields):
    """The body of OpenAI's ``POST /v1/chat/completions``, with the fields this server supports.

    The messages are rendered with the served tokenizer's own chat template. ``max_tokens``
    (or its newer name ``max_completion_tokens``) defaults to what the context leaves, at most
    1024. Tools, ``response_format`` other than text and ``logprobs`` would change what the
    answer holds, so they are refused unless left at their neutral values. See
    :class:`SamplingFields` for the sampling fields.
    """

    model_config = ConfigDict(**_STRICT, json_schema_extra={
        "x-limits": {"message_characters": MAX_CHAT_CHARS}})

    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessage] = Field(
        min_length=1, max_length=MAX_MESSAGES,
        description=f"The conversation so far: 1 to {MAX_MESSAGES} messages whose text adds "
                    f"up to at most {MAX_CHAT_CHARS} characters.")
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS,
                                   description="New tokens per choice (default: what the "
                                               "context leaves, at most 1024); the rendered "
                                               "messages' tokens plus these must fit the "
                                               "model's context.")
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS,
                                              description="OpenAI's newer name for "
                                                          "max_tokens; send one of the two.")
    logprobs: Literal[False] | None = Field(None, description=_UNSUPPORTED)
    top_logprobs: int | None = Field(None, ge=0, le=0, description=_UNSUPPORTED)
    tools: list[Any] | None = Field(None, max_length=0, description=_UNSUPPORTED)
    tool_choice: Literal["none"] | None = Field(None, description=_UNSUPPORTED)
    parallel_tool_calls: bool | None = Field(None, description="Ignored (no tools).")
    response_format: TextFormat | None = Field(None, description=_UNSUPPORTED)

    @model_validator(mode="before")
    @classmethod
    def _unsupported(cls, data: Any) -> Any:
        return refuse(data, {"logprobs": (None, False), "top_logprobs": (None, 0),
                             "tools": (None, []), "tool_choice": (None, "none"),
                             "response_format": (None, {"type": "text"})})

    @model_validator(mode="after")
    def _check(self) -> ChatCompletionRequest:
        chars = sum(len(m.text()) for m in self.messages)
        if chars > MAX_CHAT_CHARS:
            raise ValueError(f"messages: their text is {chars} characters; at most "
                             f"{MAX_CHAT_CHARS} in all")
        if None not in (self.max_tokens, self.max_completion_tokens) and \
                self.max_tokens != self.max_completion_tokens:
            raise ValueError("max_completion_tokens: send max_tokens or max_completion_tokens "
                             "(the same limit under its newer name), not two different values")
        return self

    def new_tokens(self) -> int | None:
        return self.max_completion_tokens if self.max_tokens is None else self.max_tokens


class ChatMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class ChatChoice(BaseModel):
    index: int
    message: ChatMessageOut
    logprobs: None = None
    finish_reason: Literal["stop", "length"] | None


class ChatCompletionResponse(BaseModel):
    """OpenAI's ``chat.completion`` object. A stream sends ``chat.completion.chunk`` objects
    instead: ``choices[i].delta`` holds ``role`` first, then pieces of ``content``."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """Every error: OpenAI's ``error`` object (what its client reads) plus FastAPI's ``detail``."""

    error: ErrorBody
    detail: Any = None
