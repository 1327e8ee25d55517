"""Lesson 09's three ways to a cheaper model, side by side: quantization, distillation, drafts.

    python benchmarks/smaller_faster.py [--texts 200] [--new-tokens 64] [--repeats 5]

1. **Quantization** of ``course-gpt``: fp32, torch's dynamic int8, ``course_utils.quantization``
   int8 (per channel) and int4 (groups of 32), weight-only. Bytes of the projections' weights
   (scales included) against fp32, size on disk, held-out perplexity (``--texts`` test
   stories), greedy tokens per second. Goal: int8 at most 30% of the fp32 weight bytes with
   perplexity within 2% of fp32.
2. **Distillation**: the bundled ``course-gpt-mini`` against its twin trained from scratch on the
   same batches for the same steps (``course-gpt-mini/from-scratch``), and the teacher.
   Perplexity, few-shot and chain-of-thought accuracy. Goal: the distilled student has the
   lower perplexity.
3. **Speculative decoding**: ``speculative_generate(course-gpt, course-gpt-mini, k)`` against
   plain cached greedy decoding of ``course-gpt`` (one target pass per token) and against
   ``generate``, several prompts, batch 1; the outputs must be identical. Goal: >= 1.5x tokens
   per second. Also the cost of a draft pass relative to a target pass (``c``) and the bound
   on the speed-up it implies at the measured acceptance rate.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import alternate, write_results  # noqa: E402

from course_utils.model_report import (  # noqa: E402
    chain_of_thought_accuracy,
    few_shot_accuracy,
    held_out_perplexity,
    held_out_texts,
    markdown_table,
)
from course_utils.pretrained import asset_path, load_pretrained  # noqa: E402
from course_utils.quantization import quantize_model, size_on_disk, weight_bytes  # noqa: E402
from course_utils.speculative import greedy_generate, speculative_generate  # noqa: E402

PROMPTS = ["Once upon a time, a little fox", "Mia went to the park with her dog.",
           "Review: The soup was cold and the waiter was rude.\nSentiment:",
           "Q: Tom has 4 apples and buys 3 more. How many apples does he have?\nA:",
           "User: Tell me a story about a red house.\nAssistant:", "The old man",
           "One day, Theo found a small blue box under the tree.", "English: the cat\nLingo:"]


def _torch_int8(model):
    from course_utils.serving.quantize import quantize_int8

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_int8(model)


def _projection_bytes(model) -> int:
    return weight_bytes(model) - model.lm_head.weight.numel() * model.lm_head.weight.element_size()


def _tokens_per_s(fn_by_name: dict, new_tokens: int, repeats: int) -> dict[str, float]:
    timing = alternate(fn_by_name, repeats=repeats)
    return {name: new_tokens * len(PROMPTS) / t["median_s"] for name, t in timing.items()}


def quantization(model, tok, texts, new_tokens: int, repeats: int) -> list[dict]:
    variants = {"fp32": model, "torch dynamic int8": _torch_int8(model),
                "int8 per channel": quantize_model(model, bits=8),
                "int4 groups of 32": quantize_model(model, bits=4, group_size=32)}
    ids = [tok(p, return_tensors="pt")["input_ids"] for p in PROMPTS]
    eos = model.generation_config.eos_token_id
    for m in variants.values():
        m.generation_config.eos_token_id = None  # every variant generates all tokens

    def run(m):
        return lambda: [greedy_generate(m, x, new_tokens) for x in ids]

    speed = _tokens_per_s({n: run(m) for n, m in variants.items()}, new_tokens, repeats)
    model.generation_config.eos_token_id = eos
    fp_bytes, fp_ppl = _projection_bytes(model), None
    rows = []
    for name, m in variants.items():
        ppl = held_out_perplexity(m, tok, texts)
        fp_ppl = fp_ppl or ppl
        proj = (_projection_bytes(m) if name != "torch dynamic int8" else None)
        rows.append({"variant": name,
                     "projection bytes vs fp32": "n/a" if proj is None
                     else f"{proj / fp_bytes:.1%}",
                     "size on disk (MB)": round(size_on_disk(m) / 1e6, 2),
                     "perplexity": round(ppl, 4), "vs fp32": f"{ppl / fp_ppl - 1:+.2%}",
                     "tokens/s": round(speed[name], 1)})
    return rows


def distillation(teacher, tok, texts) -> list[dict]:
    mini, _ = load_pretrained("course-gpt-mini")
    scratch, _ = load_pretrained(str(asset_path("course-gpt-mini") / "from-scratch"))
    rows = []
    for name, m in (("teacher course-gpt", teacher), ("distilled course-gpt-mini", mini),
                    ("same student from scratch", scratch)):
        rows.append({"model": name, "parameters": sum(p.numel() for p in m.parameters()),
                     "perplexity": round(held_out_perplexity(m, tok, texts), 3),
                     "few-shot": round(few_shot_accuracy(m, tok, n_per_label=20), 3),
                     "chain of thought": round(chain_of_thought_accuracy(m, tok, n=32), 3)})
    return rows


def _one_pass(m, ids):
    """One cached forward pass for one new token, after the prompt is in the cache."""
    from transformers import DynamicCache

    cache = DynamicCache()
    m(input_ids=ids, cache=cache, use_cache=True)
    return lambda: m(input_ids=ids[:, -1:], cache=cache, use_cache=True, logits_to_keep=1)


def speculative(target, tok, new_tokens: int, repeats: int, ks: list[int]) -> tuple[list, dict]:
    draft, _ = load_pretrained("course-gpt-mini")
    ids = [tok(p, return_tensors="pt")["input_ids"] for p in PROMPTS]
    plain = [greedy_generate(target, x, new_tokens) for x in ids]
    for x, ref in zip(ids, plain, strict=True):  # the baseline is transformers' own greedy
        hf = target.generate(x, do_sample=False, max_new_tokens=new_tokens)
        assert torch.equal(hf, ref[:, :hf.shape[1]]), "the baseline differs from generate"
    stats = {k: {} for k in ks}
    identical = all(torch.equal(speculative_generate(target, draft, x, new_tokens, k,
                                                     stats=stats[k]), ref)
                    for k in ks for x, ref in zip(ids, plain, strict=True))
    fns = {"plain cached greedy": lambda: [greedy_generate(target, x, new_tokens) for x in ids],
           "transformers generate": lambda: [target.generate(x, do_sample=False,
                                                             max_new_tokens=new_tokens)
                                             for x in ids]}
    for k in ks:
        fns[f"speculative k={k}"] = (lambda k=k: [speculative_generate(target, draft, x,
                                                                       new_tokens, k)
                                                  for x in ids])
    timing = alternate(fns, repeats=repeats)
    produced = sum(int((r[0, x.shape[1]:] != target.generation_config.pad_token_id).sum())
                   for x, r in zip(ids, plain, strict=True))
    base = timing["plain cached greedy"]["median_s"]
    with torch.inference_mode():
        passes = alternate({"target": _one_pass(target, ids[0]),
                            "draft": _one_pass(draft, ids[0])}, repeats=200)
    c = passes["draft"]["median_s"] / passes["target"]["median_s"]
    rows = []
    for name, t in timing.items():
        row = {"decoding": name, "tokens/s": round(produced / t["median_s"], 1),
               "speed-up vs plain": f"{base / t['median_s']:.2f}x"}
        if name.startswith("speculative"):
            k = int(name.split("=")[1])
            a = stats[k]["accepted"] / max(1, stats[k]["drafted"])
            m = produced / stats[k]["target_passes"]  # tokens per round
            row.update({"acceptance": f"{a:.1%}", "tokens per target pass": round(m, 2),
                        "bound m/(k*c+1)": f"{m / (k * c + 1):.2f}x"})
        rows.append(row)
    return rows, {"identical_to_greedy": identical, "draft_over_target_pass": round(c, 3),
                  "tokens": produced}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=200, help="held-out stories for perplexity")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 3, 4, 6])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, tok = load_pretrained("course-gpt")
    texts = held_out_texts(args.texts)
    quant = quantization(model, tok, texts, args.new_tokens, args.repeats)
    distil = distillation(model, tok, texts)
    spec, spec_info = speculative(model, tok, args.new_tokens, args.repeats, args.ks)
    int8 = next(r for r in quant if r["variant"] == "int8 per channel")
    goals = {
        "int8 <= 30% of fp32 weight bytes": float(int8["projection bytes vs fp32"][:-1]) <= 30,
        "int8 perplexity within 2% of fp32": abs(float(int8["vs fp32"][:-1])) <= 2,
        "distilled perplexity < from scratch": distil[1]["perplexity"] < distil[2]["perplexity"],
        "speculative >= 1.5x plain greedy, identical output": spec_info["identical_to_greedy"]
        and max(float(r["speed-up vs plain"][:-1]) for r in spec
                if r["decoding"].startswith("speculative")) >= 1.5,
    }
    md = "\n\n".join([
        f"Quantization of course-gpt (perplexity on {len(texts)} held-out stories, tokens/s "
        f"over {len(PROMPTS)} prompts x {args.new_tokens} tokens, batch 1, "
        f"{args.threads} thread(s); weight-only int8/int4 dequantize in every call):",
        markdown_table(quant),
        "Distillation (the twin saw the same batches for the same steps, without the teacher):",
        markdown_table(distil),
        f"Speculative decoding, target course-gpt, draft course-gpt-mini; output identical to "
        f"plain greedy: {spec_info['identical_to_greedy']}; a draft pass costs "
        f"{spec_info['draft_over_target_pass']} of a target pass (c):",
        markdown_table(spec),
        "Goals: " + "; ".join(f"{g}: {'met' if ok else 'NOT met'}" for g, ok in goals.items()),
    ])
    write_results("smaller_faster", {"quantization": quant, "distillation": distil,
                                     "speculative": spec, "speculative_info": spec_info,
                                     "goals": goals, "args": vars(args)}, md)


if __name__ == "__main__":
    main()
