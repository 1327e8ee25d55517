"""Command line: ``python -m course_utils.pretrained build [--quick] [--out DIR] [--only NAME]``."""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from course_utils.pretrained import ASSETS_DIR, BUNDLED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.pretrained",
                                     description="Rebuild the bundled course checkpoints.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="train tokenizers and both models from scratch on the CPU")
    b.add_argument("--quick", action="store_true",
                   help="tiny models on a tiny corpus (smoke test); writes to a temp dir")
    b.add_argument("--out", type=Path, default=None,
                   help=f"output directory (default: {ASSETS_DIR}, or a temp dir with --quick)")
    b.add_argument("--only", choices=BUNDLED, default=None)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--gpt-tokens", type=int, default=None, help="override the GPT token budget")
    b.add_argument("--bert-steps", type=int, default=None, help="override the BERT step count")
    b.add_argument("--time-budget", type=float, default=None,
                   help="minutes for the GPT run at most (a busy CPU ends it early, decay done)")
    args = parser.parse_args(argv)

    from course_utils.pretrained.build import QUICK_BERT, QUICK_GPT, build
    from course_utils.pretrained.train_bert import BertRecipe
    from course_utils.pretrained.train_gpt import GPTRecipe

    out = args.out
    if out is None:
        out = Path(tempfile.mkdtemp(prefix="course-build-")) if args.quick else ASSETS_DIR
    gpt = QUICK_GPT if args.quick else GPTRecipe()
    gpt = replace(gpt, seed=args.seed, **({"tokens": args.gpt_tokens} if args.gpt_tokens else {}))
    if args.time_budget:
        gpt = replace(gpt, time_budget=60 * args.time_budget)
    bert = QUICK_BERT if args.quick else BertRecipe()
    bert = replace(bert, seed=args.seed, **({"steps": args.bert_steps} if args.bert_steps else {}))
    build(out, quick=args.quick, only=args.only, seed=args.seed, gpt_recipe=gpt,
          bert_recipe=bert, threads=args.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
