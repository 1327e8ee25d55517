"""Load test of lesson 08's service: one request at a time (the cheat-sheet design) vs batching.

    python benchmarks/load_test.py [--model course-gpt] [--clients 1 4 16] [--tokens 32]
    python benchmarks/load_test.py --draft-model course-gpt-mini   # + a speculative server

The script starts one server per mode (``python -m course_utils.serving`` on 127.0.0.1, free
ports), warms them up, then for each number of concurrent clients runs closed loops: every
client sends a request, waits for the answer, sends the next. The two modes take turns in
``--rounds`` short rounds of ``--requests`` requests per client; a level stops early after
``--seconds``, so the run is bounded. With ``--draft-model`` a third server decodes the same
greedy requests speculatively (lesson 09); its results go to ``results/load_test_draft``. It
reports throughput (requests/s and generated tokens/s,
from the API's ``usage``; medians over rounds) and p50/p99 latency, writes
``results/load_test.json`` and ``.md``, and prints the table.

Requests go to the OpenAI-compatible ``/v1/completions`` (greedy, fixed ``max_tokens``) so every
request asks for the same work and the token count is exact. The load generator shares the
machine with the server: on a 2-core machine both compete for the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
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
MODES = {"one at a time": ["--no-batching"], "batched": []}
DRAFT_MODE = "batched + draft"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between order statistics."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


async def run_round(url: str, model: str, clients: int, requests_per_client: int,
                    deadline: float, tokens: int) -> tuple[list[float], int, int, float]:
    """``clients`` closed-loop clients; returns latencies, tokens, failures, elapsed seconds."""
    latencies: list[float] = []
    generated, failures = 0, 0

    async def client(c: httpx.AsyncClient, k: int) -> None:
        nonlocal generated, failures
        for i in range(requests_per_client):
            if time.perf_counter() > deadline:
                return
            body = {"model": model, "prompt": PROMPTS[(k + i) % len(PROMPTS)],
                    "max_tokens": tokens, "temperature": 0}
            start = time.perf_counter()
            r = await c.post("/v1/completions", json=body)
            latencies.append(time.perf_counter() - start)
            if r.status_code == 200:
                generated += r.json()["usage"]["completion_tokens"]
            else:
                failures += 1

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as c:
        start = time.perf_counter()
        await asyncio.gather(*(client(c, k) for k in range(clients)))
        return latencies, generated, failures, time.perf_counter() - start


def measure(args: argparse.Namespace) -> list[dict]:
    """Both servers run side by side and take turns in short rounds at each level, so that
    drift in the machine's load (it is shared) hits both modes alike. Throughput is the
    median over rounds; latency percentiles pool every request of the level."""
    threads = ["--threads", str(args.threads)] if args.threads else []
    modes = dict(MODES)
    if args.draft_model:
        modes[DRAFT_MODE] = ["--draft-model", args.draft_model,
                             "--num-draft-tokens", str(args.num_draft_tokens)]
    rows = []
    with ExitStack() as stack:
        servers = {mode: stack.enter_context(ServerProcess("--model", args.model, *flags,
                                                           *threads, startup_timeout=180))
                   for mode, flags in modes.items()}
        name = httpx.get(f"{servers['batched'].url}/v1/models").json()["data"][0]["id"]
        for server in servers.values():  # warm-up
            asyncio.run(run_round(server.url, name, 2, 2, time.perf_counter() + 30,
                                  args.tokens))
        for clients in args.clients:
            results: dict[str, list] = {mode: [] for mode in servers}
            deadline = time.perf_counter() + args.seconds
            for _ in range(args.rounds):
                for mode, server in servers.items():
                    results[mode].append(asyncio.run(run_round(
                        server.url, name, clients, args.requests, deadline, args.tokens)))
            for mode, rounds in results.items():
                latencies = [x for r in rounds for x in r[0]]
                row = {"mode": mode, "clients": clients, "requests": len(latencies),
                       "failed": sum(r[2] for r in rounds),
                       "requests_per_s": round(statistics.median(
                           len(r[0]) / r[3] for r in rounds), 2),
                       "tokens_per_s": round(statistics.median(r[1] / r[3] for r in rounds), 1),
                       "p50_ms": round(1000 * percentile(latencies, 50), 1),
                       "p99_ms": round(1000 * percentile(latencies, 99), 1)}
                rows.append(row)
                print(f"  {clients:>2} clients, {mode:>13}: {row['requests_per_s']:6.2f} req/s,"
                      f" p50 {row['p50_ms']:7.1f} ms", flush=True)
        for mode, server in servers.items():
            stats = httpx.get(f"{server.url}/health").json()
            print(f"  {mode}: {stats['requests']} requests in {stats['batches']} batches "
                  f"(mean batch size {stats['mean_batch_size']})")
            if "speculative" in stats:
                print(f"  {mode}: acceptance rate {stats['speculative']['acceptance_rate']}")
    return rows


def table(rows: list[dict], clients: list[int]) -> str:
    lines = ["| clients | mode | requests | req/s | tokens/s | p50 ms | p99 ms | failed |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for c in clients:
        for r in (r for r in rows if r["clients"] == c):
            lines.append(f"| {c} | {r['mode']} | {r['requests']} | {r['requests_per_s']} | "
                         f"{r['tokens_per_s']} | {r['p50_ms']} | {r['p99_ms']} | {r['failed']} |")
    lines.append("")
    for c in clients:
        one = next(r for r in rows if r["clients"] == c and r["mode"] == "one at a time")
        bat = next(r for r in rows if r["clients"] == c and r["mode"] == "batched")
        speedup = bat["tokens_per_s"] / one["tokens_per_s"]
        lines.append(f"- {c} clients: batched gives {speedup:.1f}x the throughput of one at a "
                     f"time.")
        draft = next((r for r in rows if r["clients"] == c and r["mode"] == DRAFT_MODE), None)
        if draft is not None:
            ratio = draft["tokens_per_s"] / bat["tokens_per_s"]
            lines.append(f"- {c} clients: the draft gives {ratio:.2f}x the batched throughput "
                         "(its greedy rows are decoded one after the other).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    bundled = Path(__file__).resolve().parent.parent / "course_utils/assets/course-gpt"
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="course-gpt" if (bundled / "config.json").exists()
                        else "random-tiny",
                        help="course-gpt (default when bundled), a checkpoint dir, random-tiny")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--rounds", type=int, default=4, help="turns per mode and level")
    parser.add_argument("--requests", type=int, default=3, help="per client and round")
    parser.add_argument("--seconds", type=float, default=60.0, help="cap per level")
    parser.add_argument("--tokens", type=int, default=32, help="max_tokens per request")
    parser.add_argument("--threads", type=int, default=None, help="server torch threads")
    parser.add_argument("--draft-model", default=None,
                        help="also serve with this draft model (e.g. course-gpt-mini)")
    parser.add_argument("--num-draft-tokens", type=int, default=4)
    args = parser.parse_args(argv)
    print(f"model {args.model}, {args.tokens} tokens per request, clients {args.clients}")
    rows = measure(args)
    data = {"model": args.model, "tokens_per_request": args.tokens, "rows": rows}
    if args.draft_model:
        data |= {"draft_model": args.draft_model, "num_draft_tokens": args.num_draft_tokens}
    write_results("load_test_draft" if args.draft_model else "load_test", data,
                  table(rows, args.clients))
    return data


if __name__ == "__main__":
    main()
