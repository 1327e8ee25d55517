"""Schemathesis over the service's own OpenAPI schema, over real HTTP on 127.0.0.1, bounded.

Schemathesis reads ``/openapi.json``, generates requests that the schema says are valid and
requests it says are not, sends them, and checks every answer: never a 5xx, a status the schema
documents, a body matching the documented schema, invalid data rejected with a 4xx. The run is
bounded (a few examples per route and mode, no deadline) so it stays a unit test; the tiny
random model answers each request in milliseconds. (Schemathesis's own pytest plug-in does not
run under this pytest, so the strategies are driven with Hypothesis's ``@given``.)

Valid-looking data may still be refused for reasons a JSON schema cannot express (a model name
that is not the served one is 404, a prompt plus ``max_tokens`` over the context is 400
``context_length_exceeded``), both documented, so the "valid data must be accepted" check is off.
"""

from __future__ import annotations

import warnings

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from serving_helpers import tiny_model, tiny_tokenizer

from course_utils.serving import ServerThread, create_app

schemathesis = pytest.importorskip("schemathesis")

EXAMPLES = 15
MODEL = "m"
SHORT = {"max_tokens": 6, "max_completion_tokens": 6, "max_length": 40, "n": 3}


@pytest.fixture(scope="module")
def server():
    tok = tiny_tokenizer()
    tok.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n"
                         "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}")
    app = create_app(tiny_model(tok), tok, model_name=MODEL, num_threads=1, max_wait_ms=1)
    with ServerThread(app, startup_timeout=60) as srv:
        yield srv


@pytest.fixture(scope="module")
def operations(server):
    """The served schema, with ``model`` pinned to the served name (a random name is a 404
    before anything else is looked at, tested elsewhere) and lengths kept short (else nearly
    every request is a 400 ``context_length_exceeded``): the examples then reach generation."""
    schema = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    for post in (ops["post"] for ops in schema["paths"].values() if "post" in ops):
        props = post["requestBody"]["content"]["application/json"]["schema"]["properties"]
        if "model" in props:
            props["model"] = {"type": "string", "enum": [MODEL]}
        for name, most in SHORT.items():  # most requests within the context, and quick
            for branch in props.get(name, {}).get("anyOf", [props.get(name, {})]):
                if branch.get("type") == "integer":
                    branch["maximum"] = most
    for name, floor in unsafe_sampling(server).items():
        warnings.warn(f"{name} below {floor} still fails generation (issue 21, item 1, "
                      "sampling numerics): the fuzz run stays above it until that is fixed",
                      stacklevel=1)
        for post in (ops["post"] for ops in schema["paths"].values() if "post" in ops):
            props = post["requestBody"]["content"]["application/json"]["schema"]["properties"]
            for branch in props.get(name, {}).get("anyOf", []):
                if branch.get("type") == "number":
                    branch.pop("exclusiveMinimum", None)
                    branch["minimum"] = floor
    # An invalid body that is also over the size limit is refused with 413 before it is read:
    # a refusal, which Schemathesis's list of expected statuses for invalid data lacks.
    from schemathesis.config import SchemathesisConfig
    from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES as REFUSED

    config = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {
        "expected-statuses": [*REFUSED, "413"]}}})
    api = schemathesis.openapi.from_dict(schema, config=config)
    return {op.label: op for op in (r.ok() for r in api.get_all_operations())}


def unsafe_sampling(server) -> dict[str, float]:
    """The sampling parameters whose tiny accepted values still make generation fail (float32
    underflow), each with a floor that is safe; empty once sampling is numerically safe."""
    unsafe = {}
    for name, tiny, floor in (("temperature", 1e-300, 1e-3), ("top_p", 1e-50, 1e-3)):
        r = httpx.post(f"{server.url}/v1/completions", timeout=60, json={
            "model": MODEL, "prompt": "Once", "max_tokens": 2, name: tiny})
        if r.status_code >= 500:
            unsafe[name] = floor
    return unsafe


ROUTES = ["GET /health", "GET /v1/models", "GET /v1/models/{model}", "POST /generate",
          "POST /generate/stream", "POST /v1/completions", "POST /v1/chat/completions"]


# Invalid data needs a body (or a parameter with a type to break): the POST routes.
CASES = [(r, "positive") for r in ROUTES] + [(r, "negative") for r in ROUTES
                                             if r.startswith("POST")]


@pytest.mark.parametrize("route,mode", CASES, ids=[f"{r} {m}" for r, m in CASES])
def test_the_schema_holds_for_generated_requests(server, operations, route, mode):
    from schemathesis import GenerationMode
    from schemathesis.checks import CHECKS

    assert set(ROUTES) == set(operations), "a route was added or removed: list it here"
    off = [c for c in CHECKS.get_all() if c.__name__ == "positive_data_acceptance"]
    strategy = operations[route].as_strategy(GenerationMode(mode))

    @given(strategy)
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        response = case.call_and_validate(base_url=server.url, excluded_checks=off, timeout=60)
        statuses.append(response.status_code)

    statuses: list[int] = []
    run()
    if mode == "positive" and route.startswith("POST"):
        assert 200 in statuses, f"no generated request reached the model: {statuses}"
