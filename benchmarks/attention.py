"""Attention: lesson 01's reference vs torch's fused kernel, across sequence lengths.

    python benchmarks/attention.py [--lengths 128 256 512 1024 2048] [--repeats 7]

Time: medians over repeated runs, the two implementations alternating. Memory: the peak extra
resident memory of one forward pass, each measured in a fresh process (so one measurement's
allocations cannot hide another's). The reference materialises the (L x L) weights, so its
memory grows with L^2; the fused kernel works in blocks. Plots both to
``benchmarks/results/attention.png``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from common import RESULTS, alternate, write_results  # noqa: E402
from memory_watch import vm_hwm_mb  # noqa: E402

from course_utils.attention import scaled_dot_product_attention  # noqa: E402

BATCH, HEADS, D_K = 1, 4, 64


def _inputs(L: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    return tuple(torch.randn(BATCH, HEADS, L, D_K, generator=g) for _ in range(3))


def _run(impl: str, q, k, v):
    with torch.no_grad():
        if impl == "reference":
            return scaled_dot_product_attention(q, k, v)[0]
        return F.scaled_dot_product_attention(q, k, v)


def _peak_extra_mb(impl: str, L: int, queue) -> None:
    torch.set_num_threads(2)
    q, k, v = _inputs(L)
    _run(impl, *_inputs(8))  # load the kernels before the baseline
    # This process's peak resident memory (VmHWM). Not ru_maxrss: that survives exec, so a
    # spawned child would start with its parent's peak.
    before = vm_hwm_mb(os.getpid())
    if not before:
        raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")
    _run(impl, q, k, v)
    queue.put(vm_hwm_mb(os.getpid()) - before)


def peak_extra_mb(impl: str, L: int) -> float:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_peak_extra_mb, args=(impl, L, queue))
    proc.start()
    value = queue.get(timeout=300)
    proc.join()
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 256, 512, 1024, 2048])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    rows = []
    for L in args.lengths:
        q, k, v = _inputs(L)
        times = alternate({"reference": partial(_run, "reference", q, k, v),
                           "torch_sdpa": partial(_run, "torch_sdpa", q, k, v)},
                          repeats=args.repeats)
        torch.testing.assert_close(_run("reference", q, k, v), _run("torch_sdpa", q, k, v),
                                   atol=1e-5, rtol=1e-4)
        row = {"seq_len": L,
               "reference_ms": times["reference"]["median_s"] * 1e3,
               "torch_ms": times["torch_sdpa"]["median_s"] * 1e3,
               "reference_mb": peak_extra_mb("reference", L),
               "torch_mb": peak_extra_mb("torch_sdpa", L)}
        row["time_ratio"] = row["reference_ms"] / row["torch_ms"]
        rows.append(row)
        print(f"L={L}: {row}", flush=True)

    table = [f"Attention forward, batch {BATCH}, {HEADS} heads, d_k {D_K}, 2 threads; "
             f"median of {args.repeats} alternating runs; memory = peak extra RSS of one pass.",
             "", "| seq_len | reference (ms) | torch SDPA (ms) | reference / torch time | "
             "reference (MB) | torch SDPA (MB) |", "|---:|---:|---:|---:|---:|---:|"]
    table += [f"| {r['seq_len']} | {r['reference_ms']:.2f} | {r['torch_ms']:.2f} | "
              f"{r['time_ratio']:.2f}x | {r['reference_mb']:.1f} | {r['torch_mb']:.1f} |"
              for r in rows]
    write_results("attention", {"rows": rows, "batch": BATCH, "heads": HEADS, "d_k": D_K},
                  "\n".join(table))
    _plot(rows)


def _plot(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Ls = [r["seq_len"] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    a1.loglog(Ls, [r["reference_ms"] for r in rows], "o-", label="course reference")
    a1.loglog(Ls, [r["torch_ms"] for r in rows], "o-", label="torch SDPA")
    a1.loglog(Ls, [rows[0]["reference_ms"] * (L / Ls[0]) ** 2 for L in Ls], ":", c="gray",
              label="~ L^2")
    a1.set_xlabel("sequence length L")
    a1.set_ylabel("time (ms)")
    a1.legend()
    a2.loglog(Ls, [max(r["reference_mb"], 0.1) for r in rows], "o-", label="course reference")
    a2.loglog(Ls, [max(r["torch_mb"], 0.1) for r in rows], "o-", label="torch SDPA")
    a2.set_xlabel("sequence length L")
    a2.set_ylabel("peak extra memory (MB)")
    a2.legend()
    fig.suptitle("attention cost grows quadratically with the sequence length")
    fig.tight_layout()
    fig.savefig(RESULTS / "attention.png", dpi=110)


if __name__ == "__main__":
    main()
