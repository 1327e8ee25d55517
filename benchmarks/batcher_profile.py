"""The batchers without HTTP: how fast each mode generates when nothing else uses the CPU.

    python benchmarks/batcher_profile.py [--clients 16] [--seconds 5] [--profile continuous]

Closed-loop client threads submit :class:`~course_utils.serving.batching.Job` s straight to the
worker (the load test's prompts and mixed output lengths, greedy) and wait for each to finish,
so the figures are the model-side ceiling of ``benchmarks/load_test.py``: what is lost between
them is the HTTP server, the event loop and the load generator. ``--profile MODE`` runs that
mode's worker thread under cProfile and prints where its time goes. Prints only; writes nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from load_test import PROMPTS  # noqa: E402

from course_utils.serving.batching import DynamicBatcher, Job  # noqa: E402
from course_utils.serving.continuous import ContinuousBatcher  # noqa: E402
from course_utils.serving.models import load_model  # noqa: E402
from course_utils.serving.runtime import configure_torch_threads  # noqa: E402


def run(batcher: DynamicBatcher, prompts: list[list[int]], lengths: list[int], clients: int,
        seconds: float) -> dict:
    """``clients`` threads, each sending its next request when the last one is done."""
    tokens = [0] * clients
    done_requests = [0] * clients
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))

    def client(k: int) -> None:
        while time.perf_counter() < deadline:
            n = next(counter)
            finished = threading.Event()

            def on_token(_token: int, k: int = k) -> None:
                tokens[k] += 1

            batcher.submit(Job(prompts[(k + n) % len(prompts)], lengths[n % len(lengths)],
                               on_token, lambda reason, error, f=finished: f.set(),
                               temperature=0.0))
            finished.wait()
            done_requests[k] += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {"tokens_per_s": round(sum(tokens) / elapsed, 1),
            "requests_per_s": round(sum(done_requests) / elapsed, 2), **batcher.stats()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="course-gpt")
    parser.add_argument("--clients", type=int, nargs="+", default=[16])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--short", type=int, default=8)
    parser.add_argument("--long", type=int, default=96)
    parser.add_argument("--long-every", type=int, default=4)
    parser.add_argument("--max-batch-size", type=int, default=16)
    parser.add_argument("--modes", nargs="+", default=["none", "static", "continuous"])
    parser.add_argument("--profile", default=None, help="cProfile this mode's worker")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    print("torch threads", configure_torch_threads(args.threads))
    model, tok = load_model(args.model)
    model.eval()
    prompts = [tok(p)["input_ids"] for p in PROMPTS]
    lengths = [args.long if (i + 1) % args.long_every == 0 else args.short
               for i in range(args.long_every)]
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    for clients in args.clients:
        for mode in args.modes:
            kind = ContinuousBatcher if mode == "continuous" else DynamicBatcher
            batcher = kind(model, eos_token_id=tok.eos_token_id, pad_token_id=pad,
                           max_batch_size=1 if mode == "none" else args.max_batch_size)
            profiler = cProfile.Profile() if mode == args.profile else None
            if profiler:
                original = batcher._run
                batcher._run = lambda p=profiler, o=original: p.runcall(o)  # type: ignore
            batcher.start()
            run(batcher, prompts, lengths, 2, 0.5)  # warm-up
            stats = run(batcher, prompts, lengths, clients, args.seconds)
            batcher.stop()
            print(f"{clients:>3} clients {mode:>10}: {stats}", flush=True)
            if profiler:
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)


if __name__ == "__main__":
    main()
