"""Greedy generation speed: KV cache vs no cache vs transformers' generate, same weights.

    python benchmarks/generation.py [--new-tokens 64 256] [--repeats 5] [--prompt 16] [--threads 1]

One GPT-2-architecture model (the bundled course-gpt's sizes, with a 512-token context so a
16-token prompt plus 256 new tokens fits) runs three ways on the same prompt, batch 1:
``course_utils.generation.generate`` with the KV cache, the same without it (every step
re-reads the whole sequence), and ``GPT2LMHeadModel.generate`` (greedy, with its cache). All
three must produce identical tokens. Each figure is the median over ``--repeats`` runs, the
variants taking turns. Goals: KV cache >= 1.0x generate, and >= 5x no cache at 256 tokens.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import alternate, write_results  # noqa: E402

from course_utils.generation import generate  # noqa: E402
from course_utils.gpt import GPT  # noqa: E402

CONFIG = dict(vocab_size=1024, n_positions=512, n_embd=160, n_layer=4, n_head=4)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--prompt", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: batch-1 decoding is a chain of tiny "
                             "ops, where a second thread costs more in synchronisation than it "
                             "gains, and on a shared machine it makes every variant erratic)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(**CONFIG, bos_token_id=None, eos_token_id=None,
                                    pad_token_id=0)).eval()
    ours = GPT.from_hf(hf)
    prompt = torch.randint(0, CONFIG["vocab_size"], (1, args.prompt),
                           generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(prompt)

    def variants(n: int) -> dict:
        def hf_generate():
            with torch.inference_mode():
                return hf.generate(prompt, attention_mask=mask, max_new_tokens=n,
                                   min_new_tokens=n, do_sample=False)

        return {"KV cache": lambda: generate(ours, prompt, n),
                "no cache": lambda: generate(ours, prompt, n, use_cache=False),
                "transformers generate": hf_generate}

    rows = []
    for n in args.new_tokens:
        runs = variants(n)
        outputs = {name: fn() for name, fn in runs.items()}
        first = outputs["KV cache"]
        assert all(torch.equal(o, first) for o in outputs.values()), "the variants disagree"
        times = alternate(runs, repeats=args.repeats)
        row = {"new_tokens": n, **{f"{name} tokens/s": n / t["median_s"]
                                   for name, t in times.items()}, "times": times}
        kv = row["KV cache tokens/s"]
        row["KV cache / generate"] = kv / row["transformers generate tokens/s"]
        row["KV cache / no cache"] = kv / row["no cache tokens/s"]
        rows.append(row)
        print(f"{n} new tokens: {row['KV cache / generate']:.2f}x generate, "
              f"{row['KV cache / no cache']:.2f}x no cache", flush=True)
    table = [f"Greedy generation, GPT-2 architecture {CONFIG}, batch 1, {args.prompt}-token "
             f"prompt, torch threads: {args.threads}; median of {args.repeats} alternating "
             "runs; all three produce identical tokens.", "",
             "| new tokens | KV cache (tok/s) | no cache (tok/s) | transformers generate "
             "(tok/s) | KV cache / generate | KV cache / no cache |",
             "|---:|---:|---:|---:|---:|---:|"]
    table += [f"| {r['new_tokens']} | {r['KV cache tokens/s']:.0f} | "
              f"{r['no cache tokens/s']:.0f} | {r['transformers generate tokens/s']:.0f} | "
              f"{r['KV cache / generate']:.2f}x | {r['KV cache / no cache']:.2f}x |"
              for r in rows]
    table += ["", "Goals: KV cache >= 1.0x generate; >= 5x no cache at 256 new tokens."]
    write_results("generation", {"config": CONFIG, "prompt_len": args.prompt, "rows": rows,
                                 "goals": {"vs_generate": 1.0, "vs_no_cache_at_256": 5.0}},
                  "\n".join(table))


if __name__ == "__main__":
    main()
