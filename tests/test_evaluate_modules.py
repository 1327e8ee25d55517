"""The local ``evaluate`` modules load offline and give the numbers of course_utils.metrics,
which the other tests prove against sacrebleu, rouge-score and the model's own loss."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import evaluate
import pytest
import sacrebleu
import torch
from _tiny_lm import random_text, tiny_model, tiny_tokenizer
from rouge_score import rouge_scorer

from course_utils.metrics import bleu, evaluate_path, perplexity, rouge

PREDS = ["the cat is on the mat", "there is a dog in the park today", "", "Größe, café!"]
REFS = [["the cat sat on the mat", "there is a cat on the mat"],
        ["a dog is in the park", "there is a dog in the park"],
        ["a bird sang"], ["Größe café"]]


@pytest.fixture(scope="module")
def modules():
    return {name: evaluate.load(evaluate_path(name)) for name in ("bleu", "rouge", "perplexity")}


def test_bleu_module_matches_the_library_and_sacrebleu(modules):
    out = modules["bleu"].compute(predictions=PREDS, references=REFS)
    assert out == bleu(PREDS, REFS)
    single = [r[0] for r in REFS]
    out = modules["bleu"].compute(predictions=PREDS, references=single, smooth=False)
    ref = sacrebleu.corpus_bleu(PREDS, [single], smooth_method="none", tokenize="13a")
    assert out["bleu"] == pytest.approx(ref.score / 100, abs=1e-6)
    closest = modules["bleu"].compute(predictions=PREDS, references=REFS, ref_length="closest")
    assert closest == bleu(PREDS, REFS, ref_length="closest")


def test_rouge_module_matches_the_library_and_rouge_score(modules):
    out = modules["rouge"].compute(predictions=PREDS, references=REFS)
    assert out == pytest.approx(rouge(PREDS, REFS))
    per_item = modules["rouge"].compute(predictions=PREDS, references=[r[0] for r in REFS],
                                        use_aggregator=False, use_stemmer=True)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"],
                                      use_stemmer=True)
    for i, pred in enumerate(PREDS):
        expected = scorer.score(REFS[i][0], pred)
        for kind, scores in per_item.items():
            assert scores[i] == pytest.approx(expected[kind].fmeasure, abs=1e-6)


def test_perplexity_module_with_a_model_object_and_a_local_folder(modules, tmp_path):
    torch.set_num_threads(1)
    tok = tiny_tokenizer()
    model = tiny_model(len(tok))
    texts = [random_text(torch.Generator().manual_seed(s), n) for s, n in ((0, 30), (1, 6))]
    expected = perplexity(model, tok, texts, stride=4)
    out = modules["perplexity"].compute(predictions=texts, model=model, tokenizer=tok, stride=4)
    assert out["perplexities"] == pytest.approx(expected["perplexities"], rel=1e-9)
    assert out["perplexity"] == pytest.approx(expected["perplexity"], rel=1e-9)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    out = modules["perplexity"].compute(predictions=texts, model_id=str(tmp_path), stride=4)
    assert out["perplexities"] == pytest.approx(expected["perplexities"], rel=1e-5)
    with pytest.raises(ValueError, match="model_id"):
        modules["perplexity"].compute(predictions=texts)


def test_evaluate_path_names_what_exists():
    assert os.path.isfile(os.path.join(evaluate_path("bleu"), "bleu.py"))
    with pytest.raises(ValueError, match="bleu, perplexity, rouge"):
        evaluate_path("sacrebleu")


@pytest.mark.slow
def test_modules_load_offline_with_an_empty_cache(tmp_path):
    """A fresh process, an empty HF cache and an unreachable hub: loading still works."""
    code = textwrap.dedent("""
        import evaluate
        from course_utils.metrics import evaluate_path
        b = evaluate.load(evaluate_path("bleu"))
        r = evaluate.load(evaluate_path("rouge"))
        text = "the cat sat on the mat"
        print(b.compute(predictions=[text], references=[[text]])["bleu"],
              r.compute(predictions=["the cat"], references=["the cat"])["rouge1"])
    """)
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1",
           "HF_ENDPOINT": "http://127.0.0.1:9", "HF_EVALUATE_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1.0", "1.0"]
