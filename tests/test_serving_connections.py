"""Connections and shutdown over real HTTP on 127.0.0.1: slow, stalled and vanishing clients,
the connection bound, JSON-only bodies, redirects, CORS, and SIGTERM under load.

Most tests share one ``python -m course_utils.serving --model random-tiny`` process with short
timeouts (1 s) and read its log; the SIGTERM test runs its own process whose model is slowed to
a fixed time per step (tests/_slow_server.py), so that long requests outlast the grace period.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serving_helpers import tiny_model, tiny_tokenizer

from course_utils.serving import ServerProcess, ServerThread, create_app
from course_utils.serving.background import free_port, wait_healthy
from course_utils.serving.connections import ConnectionLimits, is_json

HERE = Path(__file__).resolve().parent
TIMEOUT = httpx.Timeout(30.0)
J = {"content-type": "application/json"}
LIMIT = 1.0  # the shared server's header and body timeouts, in seconds
MAX_CONNECTIONS = 6


def run_in_fresh_loop(coro):
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=60)


@pytest.fixture(scope="module")
def server():
    with ServerProcess("--model", "random-tiny", "--threads", "1", "--log-level", "info",
                       "--header-timeout", str(LIMIT), "--body-timeout", str(LIMIT),
                       "--max-connections", str(MAX_CONNECTIONS), "--grace-period", "2",
                       startup_timeout=90) as srv:
        yield srv


def address(server) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def read_until_closed(sock: socket.socket, limit: float = 10.0) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed."""
    start, chunks = time.monotonic(), []
    sock.settimeout(limit)
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks), time.monotonic() - start


def error_of(answer: bytes) -> dict:
    return json.loads(answer.partition(b"\r\n\r\n")[2])["error"]


def new_log(server, mark: int) -> str:
    return server.output()[mark:]


# --------------------------------------------------------------------------- slow clients


def test_a_stalled_body_gets_408_and_the_socket_is_freed(server):
    with socket.create_connection(address(server), timeout=10) as s:
        s.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n" + b'{"prompt": "')
        answer, took = read_until_closed(s)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"connection: close" in answer.lower()
    assert error_of(answer)["code"] == "request_timeout"
    assert LIMIT * 0.8 < took < LIMIT + 4, took


def test_a_trickled_body_gets_408_at_the_deadline_not_per_byte(server):
    """One byte every 0.2 s would keep an idle timer alive for ever: the deadline is total."""
    with socket.create_connection(address(server), timeout=10) as s:
        s.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n")
        start, answer = time.monotonic(), b""
        s.settimeout(0.2)
        while time.monotonic() - start < LIMIT + 5:
            try:
                s.sendall(b" ")
                answer = s.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # the server closed while we were sending
                break
            if answer:
                break
        took = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert took < LIMIT + 4, took


def test_a_slow_loris_that_never_finishes_its_headers_is_cut_off(server):
    with socket.create_connection(address(server), timeout=10) as s:
        s.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\n")
        start, answer = time.monotonic(), b""
        s.settimeout(0.2)
        while time.monotonic() - start < LIMIT + 5:
            try:
                s.sendall(b"X-Slow: 1\r\n")
                chunk = s.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            answer += chunk
            if not chunk:  # closed
                break
        took = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert error_of(answer)["code"] == "request_timeout"
    assert took < LIMIT + 4, took


def test_a_silent_connection_is_closed_after_the_header_timeout(server):
    with socket.create_connection(address(server), timeout=10) as s:
        answer, took = read_until_closed(s)
    assert answer == b"" and took < LIMIT + 4, (answer, took)


def test_connections_are_bounded_and_idle_ones_freed(server):
    held = [socket.create_connection(address(server), timeout=10)
            for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.3)  # let the server accept them all
        r = httpx.get(f"{server.url}/health", timeout=TIMEOUT)
        assert r.status_code == 503, r.text
        for s in held:  # the header timeout frees the sockets that never spoke
            assert read_until_closed(s)[0] == b""
    finally:
        for s in held:
            s.close()
    assert httpx.get(f"{server.url}/health", timeout=TIMEOUT).status_code == 200


# --------------------------------------------------------------------------- vanishing clients


@pytest.mark.parametrize("reset", [False, True], ids=["FIN", "RST"])
def test_a_client_that_leaves_mid_upload_is_one_info_line(server, reset):
    mark = len(server.output())
    s = socket.create_connection(address(server), timeout=10)
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 5000\r\n\r\n" + b'{"model": "x", "prompt": "' + b"a" * 500)
    time.sleep(0.2)
    if reset:  # an abortive close: the server sees a reset, not an orderly end
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
    deadline = time.monotonic() + 10
    while "went away" not in new_log(server, mark) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert httpx.get(f"{server.url}/health", timeout=TIMEOUT).status_code == 200
    log = new_log(server, mark)
    lines = [ln for ln in log.splitlines() if "went away" in ln]
    assert len(lines) == 1 and lines[0].startswith("INFO"), log
    assert "ERROR" not in log and "Traceback" not in log, log
    assert '" 500' not in log, log


# --------------------------------------------------------------------------- JSON only


@pytest.mark.parametrize("content_type", [
    "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x", None, "", "application/json; charset=latin-1",
    "text/json", "application/jsonp", "application/json-seq"])
@pytest.mark.parametrize("path", ["/generate", "/generate/stream", "/v1/completions"])
def test_a_body_not_declared_as_json_gets_415(server, path, content_type):
    headers = {} if content_type is None else {"content-type": content_type}
    r = httpx.post(f"{server.url}{path}", timeout=TIMEOUT, headers=headers,
                   content=b'{"model": "random-tiny", "prompt": "hi", "max_length": 4}')
    assert r.status_code == 415, r.text
    error = r.json()["error"]
    assert set(error) >= {"message", "type", "code"} and "application/json" in error["message"]
    assert error["code"] == "unsupported_media_type"


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON;Charset=\"UTF-8\"",
                                          "application/merge-patch+json"])
def test_json_content_types_are_accepted(server, content_type):
    r = httpx.post(f"{server.url}/generate", content=b'{"prompt": "hi", "max_length": 4}',
                   headers={"content-type": content_type}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text


def test_is_json():
    assert is_json("application/json") and is_json("application/vnd.api+json; charset=utf8")
    assert not is_json(None) and not is_json("application/json; charset=utf-16")
    assert not is_json("application/ json-ish") and not is_json("json")


# --------------------------------------------------------------------------- redirects, CORS


@pytest.mark.parametrize("method,path", [("GET", "/health/"), ("GET", "/v1/models/"),
                                         ("GET", "/docs/"), ("GET", "/docs-static"),
                                         ("POST", "/generate/"), ("POST", "/v1/completions/")])
def test_no_redirect_echoes_a_forged_host(server, method, path):
    r = httpx.request(method, f"{server.url}{path}", timeout=TIMEOUT, follow_redirects=False,
                      headers={"host": "evil.example", **J}, content=b'{"prompt": "hi"}')
    assert "evil.example" not in r.headers.get("location", ""), r.headers
    assert not 300 <= r.status_code < 400, (r.status_code, r.headers)


def test_cors_is_off_by_default(server):
    origin = {"origin": "http://evil.example"}
    preflight = httpx.options(f"{server.url}/generate", timeout=TIMEOUT, headers={
        **origin, "access-control-request-method": "POST",
        "access-control-request-headers": "content-type"})
    plain = httpx.get(f"{server.url}/health", headers=origin, timeout=TIMEOUT)
    for r in (preflight, plain):
        assert not any(h.startswith("access-control-") for h in r.headers), r.headers
    assert preflight.status_code >= 400


def test_cors_answers_only_the_configured_origins():
    tok = tiny_tokenizer()
    app = create_app(tiny_model(tok), tok, model_name="tiny", num_threads=1,
                     cors_origins=["http://localhost:3000"])
    with ServerThread(app, startup_timeout=60) as srv:
        def preflight(origin: str) -> httpx.Response:
            return httpx.options(f"{srv.url}/v1/completions", timeout=TIMEOUT, headers={
                "origin": origin, "access-control-request-method": "POST",
                "access-control-request-headers": "content-type"})

        ok, other = preflight("http://localhost:3000"), preflight("http://evil.example")
        get = httpx.get(f"{srv.url}/health", headers={"origin": "http://localhost:3000"},
                        timeout=TIMEOUT)
        refused = httpx.post(f"{srv.url}/generate", content=b"{}", timeout=TIMEOUT,
                             headers={"origin": "http://localhost:3000",
                                      "content-type": "text/plain"})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "POST" in ok.headers["access-control-allow-methods"]
    assert "access-control-allow-origin" not in other.headers
    assert get.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert refused.status_code == 415  # readable by the allowed page: the answer has CORS too
    assert refused.headers["access-control-allow-origin"] == "http://localhost:3000"
    with pytest.raises(TypeError, match="list of origins"):
        create_app(cors_origins="http://localhost:3000")


# --------------------------------------------------------------------------- limits and drain


def test_limits_refuse_nonsense():
    for bad in (dict(header_timeout=0), dict(body_timeout=-1), dict(grace_seconds=True),
                dict(max_connections=0), dict(max_header_bytes=10),
                dict(keep_alive_timeout="5")):
        with pytest.raises(ValueError, match=next(iter(bad))):
            ConnectionLimits(**bad)
    from course_utils.serving.__main__ import main

    with pytest.raises(SystemExit):
        main(["--body-timeout", "0"])


def test_a_draining_app_answers_503_with_the_error_body():
    tok = tiny_tokenizer()
    app = create_app(tiny_model(tok), tok, model_name="tiny", num_threads=1)
    with ServerThread(app, startup_timeout=60) as srv:
        app.state.drain.draining = True
        r = httpx.post(f"{srv.url}/generate", json={"prompt": "hi"}, timeout=TIMEOUT)
        app.state.drain.draining = False
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.headers["connection"] == "close"
    assert r.json()["error"]["code"] == "server_shutting_down"


def sse_data(text: str) -> list[str]:
    return [line[len("data: "):] for line in text.splitlines() if line.startswith("data: ")]


GRACE, STEP = 2.0, 0.05  # seconds; a long request (100 steps) needs 5 s


async def _sigterm_scenario(url: str, process: subprocess.Popen) -> dict:
    async def stream(c: httpx.AsyncClient, path: str, body: dict) -> tuple[int, list[str]]:
        async with c.stream("POST", path, json=body) as r:
            return r.status_code, sse_data((await r.aread()).decode())

    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as c:
        short = [asyncio.create_task(c.post("/generate", json={
            "prompt": p, "max_length": 22, "temperature": 0})) for p in ("Once", "Two plus")]
        await asyncio.sleep(0.15)  # the short ones (~1 s) are a batch now; the long ones next
        long_streams = [
            asyncio.create_task(stream(c, "/generate/stream", {
                "prompt": "Snow fell on the", "max_length": 110, "temperature": 0})),
            asyncio.create_task(stream(c, "/v1/completions", {
                "model": "tiny-test", "prompt": "Tea or coffee?", "max_tokens": 100,
                "temperature": 0, "stream": True}))]
        long_plain = asyncio.create_task(c.post("/generate", json={
            "prompt": "The robot counted", "max_length": 110, "temperature": 0}))
        async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as probe:
            for _ in range(60):  # until all five are queued or running (at most 3 s)
                stats = (await probe.get("/health")).json()
                if stats.get("requests", 0) + stats.get("waiting", 0) >= 5:
                    break
                await asyncio.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        short_done = await asyncio.gather(*short)
        await asyncio.sleep(0.3)
        late = []
        for attempt in range(2):  # a fresh connection, and one from the pool if any is idle
            try:
                async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as fresh:
                    late.append(await (fresh if attempt == 0 else c).get("/health"))
            except httpx.TransportError as exc:  # refused (or closed): also right
                late.append(exc)
        streams = await asyncio.gather(*long_streams)
        plain = await long_plain
    exit_code = await asyncio.to_thread(process.wait, GRACE + 8)
    return dict(short=short_done, late=late, streams=streams, plain=plain, exit_code=exit_code,
                exit_after=time.monotonic() - sent)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["thread", "process"])
def test_sigterm_finishes_short_requests_and_ends_the_rest_properly(tmp_path, where):
    """Two short requests in flight finish (200); two long streams and a long plain request
    outlast the grace period: the streams end with an error event and [DONE], the plain one
    gets 503; a request after the signal is refused or gets 503; the process exits soon after
    the grace period."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, str(HERE / "_slow_server.py"), str(port),
                                    str(GRACE), str(STEP), where], stdout=out,
                                   stderr=subprocess.STDOUT, env=env)
    try:
        wait_healthy(url, 90, lambda: process.poll() is None)
        result = run_in_fresh_loop(_sigterm_scenario(url, process))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    output = log.read_text(errors="replace")
    for r in result["short"]:
        assert r.status_code == 200, (r.text, output[-3000:])
    for r in result["late"]:
        if isinstance(r, httpx.Response):
            assert r.status_code == 503 and r.json()["error"]["code"] == "server_shutting_down"
    for status, events in result["streams"]:
        assert status == 200 and events[-1] == "[DONE]", (events[-3:], output[-3000:])
        assert "error" in json.loads(events[-2]), events[-3:]
        assert len(events) > 3, "the stream should have run until the grace period ended"
    plain = result["plain"]
    assert plain.status_code == 503, plain.text
    assert set(plain.json()["error"]) >= {"message", "type", "code"}
    assert result["exit_code"] in (0, -signal.SIGTERM), output[-3000:]
    assert result["exit_after"] < GRACE + 5, result["exit_after"]
    assert "Traceback" not in output and "ERROR" not in output, output[-3000:]
