"""Training speed: course_utils.gpt.GPT vs transformers' GPT2LMHeadModel, same config and batches.

    python benchmarks/training.py [--steps 3] [--repeats 5] [--batch 8] [--seq 128]

Both models start from the same weights (``GPT.from_hf``), train with AdamW on the same fixed
batches, and score the same next-token loss (:func:`course_utils.training.lm_loss`), so the
only difference is the model code. A run is ``--steps`` full training steps (forward,
backward, optimizer step); each figure is the median over ``--repeats`` runs, the two models
taking turns. The configuration is the bundled course-gpt's: 4 layers, width 160, 4 heads,
vocabulary 1,024. Goal: GPT at least 1.0x the tokens per second of GPT2LMHeadModel.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import alternate, write_results  # noqa: E402

from course_utils.gpt import GPT  # noqa: E402
from course_utils.training import lm_loss  # noqa: E402

CONFIG = dict(vocab_size=1024, n_positions=256, n_embd=160, n_layer=4, n_head=4)


def _models():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(**CONFIG, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=None, eos_token_id=None)
    hf = GPT2LMHeadModel(config).train()
    return hf, GPT.from_hf(hf).train()


def _trainer(model, batches, logits_of):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def run() -> float:
        for batch in batches:
            loss = lm_loss(logits_of(model, batch), batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return loss.item()

    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    hf, ours = _models()
    g = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, CONFIG["vocab_size"], (args.batch, args.seq), generator=g)
               for _ in range(args.steps)]
    with torch.no_grad():  # same weights, same batch: the same loss before any step
        torch.testing.assert_close(lm_loss(ours(batches[0]), batches[0]),
                                   lm_loss(hf(batches[0]).logits, batches[0]))
    times = alternate({
        "course GPT": _trainer(ours, batches, lambda m, b: m(b)),
        "GPT2LMHeadModel": _trainer(hf, batches, lambda m, b: m(b).logits),
    }, repeats=args.repeats)
    tokens = args.steps * args.batch * args.seq
    rows = {name: {"tokens_per_s": tokens / t["median_s"], **t} for name, t in times.items()}
    ratio = rows["course GPT"]["tokens_per_s"] / rows["GPT2LMHeadModel"]["tokens_per_s"]
    table = [f"Training, GPT-2 architecture {CONFIG}, batch {args.batch} x {args.seq} tokens, "
             f"AdamW, torch threads: {args.threads}; median of {args.repeats} alternating runs of "
             f"{args.steps} steps.", "",
             "| model | tokens/s | median run (s) |", "|---|---:|---:|"]
    table += [f"| {name} | {r['tokens_per_s']:.0f} | {r['median_s']:.3f} |"
              for name, r in rows.items()]
    table += ["", f"**course GPT / GPT2LMHeadModel: {ratio:.2f}x** (goal >= 1.0x)"]
    write_results("training", {"config": CONFIG, "batch": args.batch, "seq_len": args.seq,
                               "steps_per_run": args.steps, "rows": rows, "ratio": ratio,
                               "goal": 1.0}, "\n".join(table))


if __name__ == "__main__":
    main()
