"""Load test of lesson 08's service: one request at a time vs static vs continuous batching.

    python benchmarks/load_test.py [--model course-gpt] [--clients 1 4 16 64]
    python benchmarks/load_test.py --quick                         # a smoke run (CI)
    python benchmarks/load_test.py --draft-model course-gpt-mini   # + a speculative server
    python benchmarks/load_test.py --engine thread   # the batcher in the server's own thread

The script starts one server per mode (``python -m course_utils.serving --batching
{none,static,continuous}`` on 127.0.0.1, free ports), side by side, warms them up, then for
each number of concurrent clients runs closed loops: every client sends a request, reads the
streamed answer, sends the next. Output lengths are mixed: most requests ask for ``--short``
tokens, every ``--long-every``-th one for ``--long`` (a chat answer vs a story), which is what
makes a static batch wait for its longest row. The modes take turns in ``--rounds`` rounds of
``--seconds`` each per level (a client sends no new request after that; the ones in flight
finish), so drift in the shared machine's load hits them alike and the run is bounded.

It reports throughput (generated tokens/s from the API's ``usage``, and requests/s; medians
over rounds), time to first token (TTFT: from sending to the first streamed text, queueing
included) at p50 and p99, latency p99, and failed requests; writes ``results/load_test.json``
and ``.md``, and prints the table and the ratios the issue asks for (continuous vs one at a
time and vs static at 16 clients). With ``--draft-model`` a fourth server decodes the same
greedy requests speculatively on the static batcher (lesson 09); its results go to
``results/load_test_draft``.

Every server runs its model in an engine process (``--engine-process``: the model and the
HTTP side do not share one GIL, which on this small model is what bounds a batched step);
``--engine thread`` measures the servers with the batcher in the server's own thread instead
(results in ``results/load_test_thread``).

Requests go to the OpenAI-compatible ``/v1/completions`` (greedy, streamed with
``stream_options.include_usage`` so the token count is exact). The load generator shares the
machine with the servers: on a 2-core machine they compete for the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import write_results  # noqa: E402

from course_utils.serving.background import ServerProcess  # noqa: E402

PROMPTS = ["Once upon a time", "The little robot", "Tom had three apples", "In the forest",
           "Question: what is two plus three?", "Anna went to the market and"]
MODES = {"one at a time": ["--batching", "none"], "static": ["--batching", "static"],
         "continuous": ["--batching", "continuous"]}
DRAFT_MODE = "static + draft"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between order statistics."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


async def one_request(c: httpx.AsyncClient, body: dict) -> tuple[float, float, int]:
    """Send a streamed completion; (time to first text, total latency, completion tokens)."""
    sent = time.perf_counter()
    first, tokens = None, 0
    async with c.stream("POST", "/v1/completions", json=body) as r:
        if r.status_code != 200:
            await r.aread()
            raise RuntimeError(f"HTTP {r.status_code}")
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[len("data: "):])
            if "error" in event:
                raise RuntimeError(event["error"].get("message", "stream error"))
            if first is None and any(ch.get("text") for ch in event.get("choices", [])):
                first = time.perf_counter() - sent
            if event.get("usage"):
                tokens = event["usage"]["completion_tokens"]
    latency = time.perf_counter() - sent
    return (latency if first is None else first), latency, tokens


async def run_round(url: str, model: str, clients: int, seconds: float,
                    lengths: list[int]) -> dict:
    """``clients`` closed-loop clients for ``seconds``; what they measured."""
    ttft, latency = [], []
    tokens, failed, sent = 0, 0, 0
    deadline = time.perf_counter() + seconds

    async def client(c: httpx.AsyncClient, k: int) -> None:
        nonlocal tokens, failed, sent
        i = 0
        while time.perf_counter() < deadline:
            n = sent
            sent += 1
            body = {"model": model, "prompt": PROMPTS[(k + i) % len(PROMPTS)],
                    "max_tokens": lengths[n % len(lengths)], "temperature": 0, "stream": True,
                    "stream_options": {"include_usage": True}}
            i += 1
            try:
                first, total, got = await one_request(c, body)
            except (httpx.HTTPError, RuntimeError):
                failed += 1
                continue
            ttft.append(first)
            latency.append(total)
            tokens += got

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as c:
        start = time.perf_counter()
        await asyncio.gather(*(client(c, k) for k in range(clients)))
        elapsed = time.perf_counter() - start
    return {"ttft": ttft, "latency": latency, "tokens": tokens, "failed": failed,
            "seconds": elapsed}


def summarise(mode: str, clients: int, rounds: list[dict]) -> dict:
    ttft = [x for r in rounds for x in r["ttft"]]
    latency = [x for r in rounds for x in r["latency"]]
    return {"mode": mode, "clients": clients, "requests": len(latency),
            "failed": sum(r["failed"] for r in rounds),
            "requests_per_s": round(statistics.median(len(r["latency"]) / r["seconds"]
                                                      for r in rounds), 2),
            "tokens_per_s": round(statistics.median(r["tokens"] / r["seconds"]
                                                    for r in rounds), 1),
            "ttft_p50_ms": round(1000 * percentile(ttft, 50), 1),
            "ttft_p99_ms": round(1000 * percentile(ttft, 99), 1),
            "latency_p50_ms": round(1000 * percentile(latency, 50), 1),
            "latency_p99_ms": round(1000 * percentile(latency, 99), 1)}


def measure(args: argparse.Namespace) -> tuple[list[dict], dict]:
    """The servers run side by side and take turns at each level (the first mode changes
    every round). Throughput is the median over rounds; percentiles pool every request."""
    threads = ["--threads", str(args.threads)] if args.threads else []
    if args.engine == "process":
        threads.append("--engine-process")
    modes = dict(MODES)
    if args.draft_model:
        modes[DRAFT_MODE] = ["--batching", "static", "--draft-model", args.draft_model,
                             "--num-draft-tokens", str(args.num_draft_tokens)]
    size = ["--max-batch-size", str(args.max_batch_size)]
    lengths = [args.long if (i + 1) % args.long_every == 0 else args.short
               for i in range(args.long_every)]
    rows, health = [], {}
    with ExitStack() as stack:
        servers = {}
        for mode, flags in modes.items():  # all load at once
            srv = ServerProcess("--model", args.model, *flags, *size, *threads,
                                startup_timeout=300)
            srv.start(wait=False)
            stack.callback(srv.stop)
            servers[mode] = srv
        for srv in servers.values():
            srv.wait_ready()
        first = next(iter(servers.values()))
        name = httpx.get(f"{first.url}/v1/models").json()["data"][0]["id"]
        for srv in servers.values():  # warm-up: one-off costs, and every prompt length
            asyncio.run(run_round(srv.url, name, 2, 0.5, lengths))
        for clients in args.clients:
            results: dict[str, list] = {mode: [] for mode in servers}
            order = list(servers)
            for turn in range(args.rounds):
                for mode in order[turn % len(order):] + order[:turn % len(order)]:
                    results[mode].append(asyncio.run(run_round(
                        servers[mode].url, name, clients, args.seconds, lengths)))
            for mode, rounds in results.items():
                row = summarise(mode, clients, rounds)
                rows.append(row)
                print(f"  {clients:>2} clients, {mode:>14}: {row['tokens_per_s']:7.1f} tok/s, "
                      f"TTFT p50 {row['ttft_p50_ms']:7.1f} p99 {row['ttft_p99_ms']:7.1f} ms, "
                      f"latency p99 {row['latency_p99_ms']:7.1f} ms, {row['failed']} failed",
                      flush=True)
        for mode, srv in servers.items():
            health[mode] = httpx.get(f"{srv.url}/health").json()
    return rows, health


def ratios(rows: list[dict], clients: int) -> dict | None:
    """The issue's targets at ``clients``: continuous vs one at a time and vs static."""
    by = {r["mode"]: r for r in rows if r["clients"] == clients}
    if not {"one at a time", "static", "continuous"} <= set(by):
        return None
    one, static, cont = by["one at a time"], by["static"], by["continuous"]
    return {"clients": clients,
            "continuous_vs_one_at_a_time_throughput": round(
                cont["tokens_per_s"] / one["tokens_per_s"], 2),
            "continuous_vs_static_throughput": round(
                cont["tokens_per_s"] / static["tokens_per_s"], 2),
            "continuous_vs_static_ttft_p99": round(
                cont["ttft_p99_ms"] / static["ttft_p99_ms"], 3),
            "failed": sum(r["failed"] for r in by.values())}


def table(rows: list[dict], clients: list[int], health: dict) -> str:
    lines = ["| clients | mode | requests | tokens/s | req/s | TTFT p50 ms | TTFT p99 ms | "
             "latency p50 ms | latency p99 ms | failed |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in clients:
        for r in (r for r in rows if r["clients"] == c):
            lines.append(f"| {c} | {r['mode']} | {r['requests']} | {r['tokens_per_s']} | "
                         f"{r['requests_per_s']} | {r['ttft_p50_ms']} | {r['ttft_p99_ms']} | "
                         f"{r['latency_p50_ms']} | {r['latency_p99_ms']} | {r['failed']} |")
    lines.append("")
    for c in clients:
        ratio = ratios(rows, c)
        if ratio is None:
            continue
        lines.append(
            f"- {c} clients: continuous gives {ratio['continuous_vs_one_at_a_time_throughput']}x "
            f"the throughput of one at a time and {ratio['continuous_vs_static_throughput']}x "
            f"static batching's; its p99 time to first token is "
            f"{ratio['continuous_vs_static_ttft_p99']} of static's; {ratio['failed']} failed.")
        by = {r["mode"]: r for r in rows if r["clients"] == c}
        if DRAFT_MODE in by:
            lines.append(f"- {c} clients: the draft gives "
                         f"{by[DRAFT_MODE]['tokens_per_s'] / by['static']['tokens_per_s']:.2f}x "
                         "the static throughput (its greedy rows are decoded one after the "
                         "other).")
    for mode, stats in health.items():
        extra = (f", {stats['steps']} steps (one forward pass each, new prompts read in it) "
                 f"with {stats['mean_rows_per_step']} rows on average" if "steps" in stats
                 else "")
        lines.append(f"- {mode}: {stats['requests']} requests in {stats['batches']} batches "
                     f"(mean {stats['mean_batch_size']}){extra}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    bundled = Path(__file__).resolve().parent.parent / "course_utils/assets/course-gpt"
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="course-gpt" if (bundled / "config.json").exists()
                        else "random-tiny",
                        help="course-gpt (default when bundled), a checkpoint dir, random-tiny")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--rounds", type=int, default=3, help="turns per mode and level")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="length of a round (clients send no new request after it)")
    parser.add_argument("--short", type=int, default=8, help="max_tokens of most requests")
    parser.add_argument("--long", type=int, default=96, help="max_tokens of the long ones")
    parser.add_argument("--long-every", type=int, default=4,
                        help="every n-th request is a long one")
    parser.add_argument("--max-batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None, help="server torch threads")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: random-tiny, 1 and 4 clients, short rounds; "
                             "prints the table without writing results/")
    parser.add_argument("--draft-model", default=None,
                        help="also serve with this draft model (e.g. course-gpt-mini)")
    parser.add_argument("--num-draft-tokens", type=int, default=4)
    parser.add_argument("--engine", choices=["process", "thread"], default="process",
                        help="where each server runs its batcher: an engine process "
                             "(--engine-process, the default) or the server's own thread")
    args = parser.parse_args(argv)
    if args.quick:
        args.model, args.clients, args.rounds, args.seconds = "random-tiny", [1, 4], 1, 1.0
    print(f"model {args.model}, max_tokens {args.short} (and {args.long} for every "
          f"{args.long_every}th request), clients {args.clients}, {args.rounds} rounds of "
          f"{args.seconds} s per mode and level, batcher in an engine {args.engine}")
    started = time.perf_counter()
    rows, health = measure(args)
    data = {"model": args.model, "short_tokens": args.short, "long_tokens": args.long,
            "long_every": args.long_every, "max_batch_size": args.max_batch_size,
            "rounds": args.rounds, "round_seconds": args.seconds, "engine": args.engine,
            "rows": rows,
            "ratios": [r for c in args.clients if (r := ratios(rows, c))],
            "seconds": round(time.perf_counter() - started, 1)}
    if args.draft_model:
        data |= {"draft_model": args.draft_model, "num_draft_tokens": args.num_draft_tokens}
    if args.quick:  # a smoke run: printed, not written over the real results
        print(table(rows, args.clients, health))
        return data
    name = "load_test_draft" if args.draft_model else "load_test"
    write_results(name if args.engine == "process" else f"{name}_thread", data,
                  table(rows, args.clients, health))
    return data


if __name__ == "__main__":
    main()
