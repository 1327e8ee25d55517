"""Validation and the published schema agree on every limit.

Every bound is read from the service's own ``/openapi.json`` (``minimum``, ``maximum``,
``exclusiveMinimum``, ``minLength``, ``maxLength``, ``minItems``, ``maxItems``, anywhere in a
request body, and the cross-field ``x-limits``); for each, a body at the bound must pass the
route's validation and a body just past it must fail it, and over HTTP be a 400 with OpenAI's
error body naming the field. A bound the schema gains later is tested without editing this file;
a cross-field limit without a case here fails the test.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from serving_helpers import tiny_model, tiny_tokenizer

from course_utils.serving import create_app
from course_utils.serving.schemas import ChatCompletionRequest, CompletionRequest, GenerateRequest

NAME = "tiny-limits"
ROUTES = {
    "/generate": (GenerateRequest, {"prompt": "Hi"}),
    "/v1/completions": (CompletionRequest, {"model": NAME, "prompt": "Hi"}),
    "/v1/chat/completions": (ChatCompletionRequest,
                             {"model": NAME, "messages": [{"role": "user", "content": "Hi"}]}),
}
KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
            "maxLength", "minItems", "maxItems")


@pytest.fixture(scope="module")
def http():
    tok = tiny_tokenizer()
    tok.chat_template = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
    app = create_app(tiny_model(tok), tok, model_name=NAME, num_threads=1,
                     max_body_bytes=1 << 20)
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def schema(http):
    return http.get("/openapi.json").json()


def body_schema(schema: dict, path: str) -> dict:
    return schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]


def walk(node: dict, at: tuple = ()) -> Iterator[tuple[tuple, str, float, dict]]:
    """Every (location in the body, keyword, bound, schema node) of a schema."""
    if "anyOf" in node:
        for branch in node["anyOf"]:
            yield from walk(branch, at)
        return
    for keyword in KEYWORDS:
        if keyword in node:
            yield at, keyword, node[keyword], node
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, (*at, name))
    if "items" in node:
        yield from walk(node["items"], (*at, 0))


def branch(node: dict, kind: str) -> dict:
    return next(b for b in node.get("anyOf", [node]) if b.get("type") == kind)


def example(node: dict):
    """The smallest valid value of a schema node (the first branch of a union)."""
    if "anyOf" in node:
        return example(next(b for b in node["anyOf"] if b.get("type") != "null"))
    if not node:  # any JSON value
        return {}
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return node["enum"][0]
    kind = node.get("type")
    if kind == "string":
        return "a" * max(1, node.get("minLength", 0))
    if kind in ("integer", "number"):
        return node.get("minimum", 1)
    if kind == "boolean":
        return False
    if kind == "array":
        return [example(node["items"])] * max(1, node.get("minItems", 0))
    if kind == "object":
        return {k: example(node["properties"][k]) for k in node.get("required", [])}
    raise AssertionError(f"no example for {node}")


def put(value_here, at: tuple, value, node: dict):
    """``value_here`` with ``value`` placed at ``at``, building what is missing from the schema."""
    if not at:
        return value
    key, rest = at[0], at[1:]
    if isinstance(key, int):
        arr = branch(node, "array")
        items = list(value_here) if isinstance(value_here, list) and value_here \
            else [example(arr["items"])]
        items[0] = put(items[0], rest, value, arr["items"])
        return items
    obj = branch(node, "object")
    out = dict(value_here) if isinstance(value_here, dict) else example(obj)
    out[key] = put(out.get(key), rest, value, obj["properties"][key])
    return out


def at_and_past(keyword: str, bound, node: dict) -> tuple[object, object | None]:
    """A value at the bound and one just past it (None when nothing is past it)."""
    kind = node.get("type")
    if kind == "integer":  # a JSON schema may write the bound 1 as 1.0: the same number
        bound = int(bound)
        return bound, bound - 1 if keyword == "minimum" else bound + 1
    if kind == "number":
        if keyword == "minimum":
            return bound, math.nextafter(bound, -math.inf)
        if keyword == "maximum":
            return bound, math.nextafter(bound, math.inf)
        if keyword == "exclusiveMinimum":
            return math.nextafter(bound, math.inf), bound
        return math.nextafter(bound, -math.inf), bound
    if kind == "string":
        past = bound - 1 if keyword == "minLength" else bound + 1
        return "a" * bound, "a" * past if past >= 0 else None
    if kind == "array":
        past = bound - 1 if keyword == "minItems" else bound + 1
        item = example(node["items"])
        return [item] * bound, [item] * past if past >= 0 else None
    raise AssertionError(f"a {keyword} on a {kind}: add it to at_and_past")


def cases(schema: dict) -> list[tuple[str, tuple, str, object, object]]:
    out = []
    for path, (_, base) in ROUTES.items():
        node = body_schema(schema, path)
        for at, keyword, bound, sub in walk(node):
            good, bad = at_and_past(keyword, bound, sub)
            out.append((path, at, keyword, put(copy.deepcopy(base), at, good, node),
                        None if bad is None else put(copy.deepcopy(base), at, bad, node)))
    return out


def test_every_limit_in_the_schema_is_what_validation_does(schema, http):
    found = cases(schema)
    assert len(found) >= 30, f"only {len(found)} limits found: is the schema complete?"
    where = {(path, at[0]) for path, at, *_ in found}
    for field in ("max_tokens", "temperature", "top_p", "n", "stop", "seed", "prompt"):
        assert ("/v1/completions", field) in where, field
    assert ("/v1/chat/completions", "messages") in where
    for path, at, keyword, good, bad in found:
        model = ROUTES[path][0]
        label = f"{path} {'.'.join(map(str, at))} {keyword}"
        try:
            model.model_validate_json(json.dumps(good))
        except ValidationError as exc:
            pytest.fail(f"{label}: the schema allows {good!r:.120} but validation says {exc}")
        if bad is None:
            continue
        with pytest.raises(ValidationError):
            model.model_validate_json(json.dumps(bad))
        r = http.post(path, json=bad)
        assert r.status_code == 400, f"{label}: {r.status_code} {r.text[:200]}"
        error = r.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert str(at[0]) in (error["param"] or "") + error["message"], (label, error)


def prompts_times_n(limit: int) -> tuple[dict, dict]:
    """At: 2 prompts x n = limit / 2. Past: 2 prompts x (limit / 2 + 1), the nearest over it
    with more than one prompt (a single prompt's n has its own bound)."""
    base = {"model": NAME, "prompt": ["a", "b"]}
    return {**base, "n": limit // 2}, {**base, "n": limit // 2 + 1}


def message_characters(limit: int) -> tuple[dict, dict]:
    """At: messages whose text adds up to the limit. Past: one character more."""
    half = [{"role": "user", "content": "a" * (limit // 2)}] * 2
    extra = [{"role": "user", "content": [{"type": "text", "text": "b"}]}]
    return {"model": NAME, "messages": half}, {"model": NAME, "messages": half + extra}


CROSS = {"prompts_times_n": ("/v1/completions", prompts_times_n),
         "message_characters": ("/v1/chat/completions", message_characters)}


def test_every_limit_across_fields_is_what_validation_does(schema, http):
    found = {}
    for path in ROUTES:
        for name, limit in body_schema(schema, path).get("x-limits", {}).items():
            found[name] = (path, limit)
    assert set(found) == set(CROSS), "a limit across fields needs its case in CROSS"
    for name, (path, limit) in found.items():
        assert CROSS[name][0] == path
        assert str(limit) in json.dumps(body_schema(schema, path)["properties"]), (
            f"{name}: the limit {limit} is not in any field's description")
        good, bad = CROSS[name][1](limit)
        ROUTES[path][0].model_validate_json(json.dumps(good))
        with pytest.raises(ValidationError):
            ROUTES[path][0].model_validate_json(json.dumps(bad))
        r = http.post(path, json=bad)
        assert r.status_code == 400 and r.json()["error"]["param"], r.text
