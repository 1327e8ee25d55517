"""Rebuild the bundled tokenizers and checkpoints from scratch: ``python -m course_utils.pretrained
build``. The files shipped in ``course_utils/assets/`` are this function's output.

For each model the output directory gets the Hugging Face files (``config.json``,
``model.safetensors``, tokenizer files) plus ``training_log.json`` and ``loss_curve.png``.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import torch

from course_utils import data
from course_utils.data.corpus import pretraining_corpus
from course_utils.pretrained import BUNDLED
from course_utils.pretrained.tokenizer_build import train_bert_tokenizer, train_gpt_tokenizer
from course_utils.pretrained.train_bert import BertRecipe, train_bert
from course_utils.pretrained.train_chat import ChatRecipe, train_chat
from course_utils.pretrained.train_gpt import GPTRecipe, train_gpt
from course_utils.pretrained.train_mini import MiniRecipe, train_student
from course_utils.pretrained.train_translator import TranslatorRecipe, build_translator

QUICK_GPT = GPTRecipe(n_layer=1, n_embd=32, n_head=2, n_positions=64, tokens=20 * 8 * 64,
                      batch_size=8, eval_every=10)
QUICK_BERT = BertRecipe(num_hidden_layers=1, hidden_size=32, num_attention_heads=2, max_len=32,
                        steps=20, batch_size=8, eval_every=10)
QUICK_TRANSLATOR = TranslatorRecipe(d_model=16, nhead=2, num_encoder_layers=1,
                                    num_decoder_layers=1, dim_feedforward=32, steps=20,
                                    batch_size=16, eval_every=10)
QUICK_MINI = MiniRecipe(n_layer=1, n_embd=32, n_head=2, n_positions=64, steps=20, batch_size=8,
                        eval_every=10, time_budget=None)
QUICK_CHAT = ChatRecipe(steps=20, batch_size=4, lm_blocks=1, n_train=200, n_val=20,
                        eval_every=10, time_budget=None)
ONLY = BUNDLED  # what --only takes: every bundled checkpoint


def plot_curve(log: dict, metric: str, path: Path, title: str) -> None:
    """Save the training loss (and a validation metric) against the step as a small PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=80)
    ax.plot(log["step"], log["loss"], lw=0.8, alpha=0.6, label="train loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if metric in log and log[metric]:
        other = ax.twinx() if "accuracy" in metric else ax
        other.plot(log["val_step"], log[metric], "o-", ms=3, color="C1", label=metric)
        other.set_ylabel(metric) if other is not ax else None
        other.legend(loc="center right")
    ax.legend(loc="upper right")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _save(model: torch.nn.Module, tokenizer, log: dict, out: Path, metric: str, title: str) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "training_log.json").write_text(json.dumps(log) + "\n")
    plot_curve(log, metric, out / "loss_curve.png", title)


def build(out_dir: Path, quick: bool = False, only: str | None = None, seed: int = 0,
          gpt_recipe: GPTRecipe | None = None, bert_recipe: BertRecipe | None = None,
          threads: int = 2, mini_recipe: MiniRecipe | None = None,
          chat_recipe: ChatRecipe | None = None) -> dict[str, Path]:
    """Generate the corpus, train both tokenizers and models, save them under ``out_dir``.

    ``quick`` uses a tiny slice of the corpus and tiny models (a smoke test, under a minute);
    ``only`` (one of :data:`ONLY`) builds one of them; ``course-gpt-mini`` is distilled from the
    ``course-gpt`` under ``out_dir`` if there is one, else from the bundled one, and
    ``course-gpt-chat`` is fine-tuned from that same ``course-gpt``.
    """
    if only not in (None, *ONLY):
        raise ValueError(f"only must be one of {', '.join(ONLY)}, got {only!r}")
    torch.set_num_threads(threads)
    out_dir = Path(out_dir)
    scale = 0.02 if quick else 1.0
    t0 = time.time()
    docs = pretraining_corpus(seed, scale=scale)
    story_sets = data.stories(seed)
    val_docs = list(story_sets["validation"]["text"])
    print(f"corpus: {len(docs)} documents, {sum(map(len, docs)) / 1e6:.1f}M characters "
          f"({time.time() - t0:.1f} s)")
    made = {}
    if only in (None, "course-gpt"):
        recipe = gpt_recipe or (QUICK_GPT if quick else GPTRecipe(seed=seed))
        # The tokenizer also reads every train story, so the words the lessons test (the
        # label words negative/neutral/positive, held-out names) stay single tokens even
        # though the model trains on only part of the stories. It does not read the copying
        # documents (random word runs would shift its merges for nothing).
        tok_texts = (pretraining_corpus(seed, scale=scale, copy_docs=False)
                     + list(story_sets["train"]["text"]))
        tok = train_gpt_tokenizer(tok_texts, vocab_size=300 if quick else 1024,
                                  model_max_length=recipe.n_positions)
        model, log = train_gpt(tok, docs, val_docs, recipe)
        print(f"course-gpt: {recipe.steps} steps in {log['seconds']} s, "
              f"validation perplexity {log['val_perplexity']}")
        _save(model, tok, log, out_dir / "course-gpt", "val_loss", "course-gpt pretraining")
        made["course-gpt"] = out_dir / "course-gpt"
    if only in (None, "course-bert"):
        texts = list(story_sets["train"]["text"])
        texts = texts[: max(50, int(len(texts) * scale))]
        recipe = bert_recipe or (QUICK_BERT if quick else BertRecipe(seed=seed))
        btok = train_bert_tokenizer(texts, vocab_size=300 if quick else 1536,
                                    model_max_length=recipe.max_len)
        model, log = train_bert(btok, texts, val_docs, recipe)
        print(f"course-bert: {recipe.steps} steps in {log['seconds']} s, "
              f"MLM accuracy {log['mlm_accuracy']:.3f}, NSP accuracy {log['nsp_accuracy']:.3f}")
        _save(model, btok, log, out_dir / "course-bert", "val_mlm_accuracy",
              "course-bert pretraining (MLM + NSP)")
        made["course-bert"] = out_dir / "course-bert"
    if only in (None, "course-translator"):
        model, log = build_translator(QUICK_TRANSLATOR if quick else TranslatorRecipe(seed=seed))
        print(f"course-translator: {log['recipe']['steps']} steps in {log['seconds']} s, "
              f"validation BLEU {log['val_bleu_final']}")
        out = out_dir / "course-translator"
        if out.exists():
            shutil.rmtree(out)
        model.save(out)
        (out / "training_log.json").write_text(json.dumps(log) + "\n")
        plot_curve(log, "val_bleu", out / "loss_curve.png", "course-translator (English -> Lingo)")
        made["course-translator"] = out
    if only in (None, "course-gpt-mini"):
        made["course-gpt-mini"] = _build_mini(out_dir, docs, val_docs,
                                              mini_recipe or (QUICK_MINI if quick else MiniRecipe(
                                                  seed=seed)))
    if only in (None, "course-gpt-chat"):
        made["course-gpt-chat"] = _build_chat(out_dir, docs, chat_recipe or (
            QUICK_CHAT if quick else ChatRecipe(seed=seed)))
    print(f"built {', '.join(made)} in {time.time() - t0:.0f} s under {out_dir}")
    return made


def _build_mini(out_dir: Path, docs: list[str], val_docs: list[str], recipe: MiniRecipe) -> Path:
    """Distil ``course-gpt-mini`` and train its from-scratch twin (saved in ``from-scratch/``)."""
    from transformers import AutoTokenizer, GPT2LMHeadModel

    from course_utils.pretrained import ASSETS_DIR

    teacher_dir = out_dir / "course-gpt"
    if not (teacher_dir / "config.json").exists():
        teacher_dir = ASSETS_DIR / "course-gpt"
    teacher = GPT2LMHeadModel.from_pretrained(teacher_dir).eval()
    tok = AutoTokenizer.from_pretrained(teacher_dir)
    student, log = train_student(teacher, tok, docs, val_docs, recipe)
    # The twin takes exactly the steps the distilled run took (a time budget may have cut it).
    twin_recipe = replace(recipe, steps=len(log["step"]), time_budget=None)
    twin, twin_log = train_student(None, tok, docs, val_docs, twin_recipe, "from scratch")
    log["from_scratch"] = {k: twin_log[k] for k in ("val_step", "val_loss", "val_perplexity",
                                                    "seconds", "tokens_seen")}
    log["teacher"] = str(teacher_dir.name)
    print(f"course-gpt-mini: {len(log['step'])} steps in {log['seconds']} s, validation "
          f"perplexity {log['val_perplexity']} distilled vs {twin_log['val_perplexity']} "
          "from scratch")
    out = out_dir / "course-gpt-mini"
    _save(student, tok, log, out, "val_loss", "course-gpt-mini distillation")
    twin.save_pretrained(out / "from-scratch")
    tok.save_pretrained(out / "from-scratch")
    return out


def _build_chat(out_dir: Path, docs: list[str], recipe: ChatRecipe) -> Path:
    """Instruction-tune ``course-gpt`` (under ``out_dir``, else the bundled one)."""
    from transformers import AutoTokenizer, GPT2LMHeadModel

    from course_utils.pretrained import ASSETS_DIR
    from course_utils.pretrained.tokenizer_build import CHAT_TEMPLATE

    base_dir = out_dir / "course-gpt"
    if not (base_dir / "config.json").exists():
        base_dir = ASSETS_DIR / "course-gpt"
    model = GPT2LMHeadModel.from_pretrained(base_dir)
    tok = AutoTokenizer.from_pretrained(base_dir)
    tok.chat_template = CHAT_TEMPLATE
    # A quarter of the (shuffled) pretraining documents: more windows than the run takes.
    model, log = train_chat(model, tok, docs[: max(50, len(docs) // 4)], recipe)
    log["base"] = str(base_dir.name)
    print(f"course-gpt-chat: {len(log['step'])} steps in {log['seconds']} s, loss on held-out "
          f"replies {log['val_loss'][0]} -> {log['val_loss'][-1]}, held-out instructions "
          f"followed {log['val_follow']}")
    out = out_dir / "course-gpt-chat"
    _save(model, tok, log, out, "val_loss", "course-gpt-chat instruction tuning (reply loss)")
    return out
