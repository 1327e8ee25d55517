"""Fine-tune course-gpt on the sentiment task: one script for one process or many.

    python scripts/finetune_script.py --max-steps 30
    torchrun --standalone --nproc_per_node 2 scripts/finetune_script.py --max-steps 30
    accelerate launch --multi_gpu --num_processes 2 scripts/finetune_script.py --max-steps 30

The script does not change between the three: ``torchrun`` and ``accelerate launch`` start N
copies of it and tell each its rank through environment variables (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``...). ``Trainer`` reads them, joins the process group (``gloo``
on CPUs, ``nccl`` on GPUs), wraps the model in ``DistributedDataParallel`` and gives each
process its own share of every batch, so the gradients are averaged across processes before
each optimizer step. Each process sees ``--batch-size`` examples per step: the effective batch
is ``batch_size * world_size``. Only process 0 evaluates, saves and prints the result.

On a machine without GPUs, ``accelerate launch --multi_gpu`` still starts one process per
``--num_processes`` (through the same launcher as ``torchrun``) and they train on the CPU; with
``--cpu`` instead, accelerate needs MPI (``mpirun``) to start more than one process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="course-gpt",
                   help="a bundled model name or a directory with a saved causal LM")
    p.add_argument("--method", choices=("full", "lora"), default="full")
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--max-steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=16, help="per process")
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--n-train", type=int, default=480)
    p.add_argument("--n-test", type=int, default=150)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--output-dir", default="runs/sentiment")
    return p.parse_args(argv)


def _checksum(model) -> float:
    """A number that changes with any trained weight: compares the processes' copies."""
    return float(sum((p.detach().double() * (i + 1)).sum()
                     for i, p in enumerate(model.parameters()) if p.requires_grad))


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer

    from course_utils.finetune import (
        LABEL_NAMES,
        Recipe,
        causal_lm_dataset,
        collator_for,
        ensure_pad_token,
        lm_label_accuracy,
        sentiment_splits,
        training_arguments,
    )

    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if args.model in ("course-gpt",):
        from course_utils.pretrained import asset_path

        path = asset_path(args.model)
    else:
        path = Path(args.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    ensure_pad_token(tokenizer, model)
    if args.method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r,
                                                 target_modules=["c_attn"],
                                                 fan_in_fan_out=True, task_type="CAUSAL_LM"))
    lr = args.learning_rate or (1e-3 if args.method == "full" else 5e-3)
    recipe = replace(Recipe(), n_train=args.n_train, n_test=args.n_test,
                     max_steps=args.max_steps, batch_size=args.batch_size, learning_rate=lr,
                     eval_steps=max(1, args.max_steps // 2))
    splits = sentiment_splits(recipe)
    train = causal_lm_dataset(splits["train"], tokenizer, LABEL_NAMES, recipe.max_length)
    val = causal_lm_dataset(splits["validation"], tokenizer, LABEL_NAMES, recipe.max_length)
    training_args = training_arguments(
        args.output_dir, recipe, ddp_backend="gloo" if not torch.cuda.is_available() else None,
        use_cpu=not torch.cuda.is_available(), ddp_find_unused_parameters=False)
    trainer = Trainer(model=model, args=training_args, train_dataset=train, eval_dataset=val,
                      data_collator=collator_for("causal-lm", tokenizer),
                      processing_class=tokenizer)
    print(f"[rank {rank} of {world}] training {args.method} on {len(train)} examples, "
          f"{args.batch_size} per process per step", flush=True)
    t0 = time.perf_counter()
    out = trainer.train()
    result = {"rank": rank, "world_size": trainer.args.world_size, "method": args.method,
              "global_steps": trainer.state.global_step, "epoch": trainer.state.epoch,
              "train_loss": out.training_loss, "seconds": time.perf_counter() - t0,
              "weights_checksum": _checksum(trainer.model)}
    # Every process ends with the same weights: DDP averaged the gradients of each step.
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    Path(args.output_dir, f"rank{rank}.json").write_text(json.dumps(result) + "\n")
    if trainer.is_world_process_zero():
        unwrapped = trainer.model  # Trainer keeps the model unwrapped; DDP wraps a copy
        result["accuracy"], _ = lm_label_accuracy(unwrapped, tokenizer, splits["test"],
                                                  LABEL_NAMES)
        trainer.save_model(args.output_dir)
        Path(args.output_dir, "result.json").write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
