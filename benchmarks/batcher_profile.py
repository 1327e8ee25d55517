"""The batchers without HTTP: how fast each mode generates when nothing else uses the CPU.

    python benchmarks/batcher_profile.py [--clients 16] [--seconds 5] [--profile continuous]
    python benchmarks/batcher_profile.py --modes continuous continuous-old none --repeat 2
    python benchmarks/batcher_profile.py --forward-costs    # one forward pass by batch shape

Closed-loop client threads submit :class:`~course_utils.serving.batching.Job` s straight to the
worker (the load test's prompts and mixed output lengths, greedy) and wait for each to finish,
so the figures are the model-side ceiling of ``benchmarks/load_test.py``: what is lost between
them is the HTTP server, the event loop and the load generator. ``--profile MODE`` runs that
mode's worker thread under cProfile and prints where its time goes. Mode ``continuous-old`` is
the continuous batcher as it was at ``--old-rev`` (read with ``git show``), to compare before
and after in one run on a machine whose load changes; ``--repeat`` runs the modes again, in
turn. ``--forward-costs`` times the model alone (median of 60): a decoding step by rows and
cache length, a prefill, and the continuous worker's step with prompts read beside decoding
rows, which bounds what batching can gain (16 rows cost ``t16``, one row ``t1``: at most
``16 t1 / t16`` times one-at-a-time). Prints only; writes nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import torch
from transformers import DynamicCache

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from load_test import PROMPTS  # noqa: E402

from course_utils.serving.batching import DynamicBatcher, Job  # noqa: E402
from course_utils.serving.continuous import ContinuousBatcher, _Row  # noqa: E402
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


@torch.inference_mode()
def forward_costs(model, reps: int = 60) -> None:
    """Median ms of one forward pass: decoding steps by (rows, cache columns), prefills."""
    def median_ms(call) -> float:
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        return 1000 * sorted(times)[len(times) // 2]

    def decode(rows: int, columns: int) -> float:
        ids = torch.randint(5, 1000, (rows, columns))
        past = DynamicCache(config=model.config)
        model(input_ids=ids, cache=past, use_cache=True)
        mask = torch.ones(rows, columns + 1, dtype=torch.long)
        pos = torch.full((rows, 1), columns)

        def step() -> None:
            cache = DynamicCache(config=model.config)
            for layer, held in zip(cache.layers, past.layers, strict=True):
                layer.lazy_initialization(held.keys, held.values)
                layer.keys, layer.values = held.keys, held.values
            model(input_ids=ids[:, :1], attention_mask=mask, position_ids=pos, cache=cache,
                  use_cache=True)
        return median_ms(step)

    for rows, columns in [(1, 10), (1, 50), (4, 30), (8, 30), (11, 30), (16, 30), (16, 60),
                          (16, 100)]:
        print(f"decoding step, {rows:2d} rows, {columns:3d} cached columns: "
              f"{decode(rows, columns):.2f} ms", flush=True)
    for rows, length in [(1, 6), (2, 6), (4, 8), (1, 64), (1, 200)]:
        ids = torch.randint(5, 1000, (rows, length))
        cost = median_ms(lambda ids=ids: model(input_ids=ids, use_cache=True,
                                               cache=DynamicCache(config=model.config),
                                               logits_to_keep=1))
        print(f"prefill, {rows} prompts of {length} tokens: {cost:.2f} ms", flush=True)

    def fused(decoding: int, columns: int, prompts: int, length: int, budget: int) -> float:
        """The continuous worker's step: ``decoding`` rows with ``columns`` cached tokens
        each feed one token, beside ``prompts`` new rows reading (up to ``budget`` of)
        their ``length``-token prompts."""
        batcher = ContinuousBatcher(model, eos_token_id=None, pad_token_id=0,
                                    max_batch_size=decoding + prompts,
                                    max_prefill_tokens=budget)
        rows = []
        for i in range(decoding + prompts):
            prompt = torch.randint(5, 1000, (length if i >= decoding else columns,)).tolist()
            row = _Row(Job(prompt, 1, lambda _t: None, lambda _r, _e: None))
            row.slot, row.length, row.next_token = i, len(prompt) if i < decoding else 0, 7
            rows.append(row)
        feeds = batcher._feeds(rows)
        return median_ms(lambda: batcher._forward(rows, feeds))

    for decoding, prompts, length, budget in [(1, 0, 0, 64), (16, 0, 0, 64), (15, 1, 6, 64),
                                              (14, 2, 6, 64),
                                              (12, 4, 8, 64), (0, 1, 6, 64), (15, 1, 200, 32),
                                              (15, 1, 200, 64), (15, 1, 200, 128),
                                              (15, 1, 200, 256)]:
        print(f"continuous step, {decoding:2d} decoding rows (30 cached columns) + {prompts} "
              f"prompts of {length:3d} tokens, at most {budget} read: "
              f"{fused(decoding, 30, prompts, length, budget):.2f} ms", flush=True)


def old_continuous(rev: str) -> type:
    """``ContinuousBatcher`` as it was at git revision ``rev``."""
    source = subprocess.run(["git", "show", f"{rev}:course_utils/serving/continuous.py"],
                            capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parent.parent).stdout
    module = types.ModuleType(f"continuous_{rev}")
    exec(compile(source, f"continuous.py@{rev}", "exec"), module.__dict__)
    return module.ContinuousBatcher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="course-gpt")
    parser.add_argument("--clients", type=int, nargs="+", default=[16])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--short", type=int, default=8)
    parser.add_argument("--long", type=int, default=96)
    parser.add_argument("--long-every", type=int, default=4)
    parser.add_argument("--max-batch-size", type=int, default=16)
    parser.add_argument("--modes", nargs="+", default=["none", "static", "continuous"],
                        help="none, static, continuous, continuous-old")
    parser.add_argument("--old-rev", default="2c74a7e",
                        help="the git revision continuous-old is read from (before fused steps)")
    parser.add_argument("--repeat", type=int, default=1, help="run the modes this many times")
    parser.add_argument("--max-prefill-tokens", type=int, default=None)
    parser.add_argument("--profile", default=None, help="cProfile this mode's worker")
    parser.add_argument("--sort", default="cumulative", help="the profile's order (tottime...)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--forward-costs", action="store_true",
                        help="time single forward passes instead")
    args = parser.parse_args()
    print("torch threads", configure_torch_threads(args.threads))
    model, tok = load_model(args.model)
    model.eval()
    if args.forward_costs:
        forward_costs(model)
        return
    prompts = [tok(p)["input_ids"] for p in PROMPTS]
    lengths = [args.long if (i + 1) % args.long_every == 0 else args.short
               for i in range(args.long_every)]
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    kinds = {"none": DynamicBatcher, "static": DynamicBatcher, "continuous": ContinuousBatcher}
    if "continuous-old" in args.modes:
        kinds["continuous-old"] = old_continuous(args.old_rev)
    for clients in args.clients:
        for mode in args.modes * args.repeat:
            options = {}
            if mode == "continuous" and args.max_prefill_tokens:
                options["max_prefill_tokens"] = args.max_prefill_tokens
            batcher = kinds[mode](model, eos_token_id=tok.eos_token_id, pad_token_id=pad,
                                  max_batch_size=1 if mode == "none" else args.max_batch_size,
                                  **options)
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
                pstats.Stats(profiler).sort_stats(args.sort).print_stats(45)


if __name__ == "__main__":
    main()
