"""course_utils.pretrained: the bundled checkpoints load offline, tokenizers round-trip,
hub names fail fast offline, and the build command runs end to end."""

from __future__ import annotations

import json
import math
import os
import time

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertForPreTraining,
    GPT2LMHeadModel,
)

from course_utils.pretrained import ASSETS_DIR, asset_path, load_pretrained

GPT, BERT, CHAT = asset_path("course-gpt"), asset_path("course-bert"), asset_path("course-gpt-chat")


@pytest.fixture(scope="module")
def gpt():
    return load_pretrained("course-gpt")


@pytest.fixture(scope="module")
def bert():
    return load_pretrained("course-bert")


def test_offline_is_set():
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_assets_are_small_safetensors():
    files = [p for p in ASSETS_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 30 * 2**20
    for path in (GPT, BERT, CHAT):
        assert (path / "model.safetensors").exists() and (path / "config.json").exists()
        assert (path / "loss_curve.png").exists() and (path / "training_log.json").exists()


def test_plain_from_pretrained_loads_the_bundled_files():
    m = AutoModelForCausalLM.from_pretrained(GPT)
    assert isinstance(m, GPT2LMHeadModel)
    assert isinstance(AutoModelForPreTraining.from_pretrained(BERT), BertForPreTraining)


def test_load_pretrained_matches_plain_from_pretrained(gpt):
    model, tok = gpt
    ref = GPT2LMHeadModel.from_pretrained(GPT).eval()
    ids = tok("Once upon a time, a little fox", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, ref(ids).logits)


def test_gpt_tokenizer_round_trips_and_is_configured(gpt):
    model, tok = gpt
    for s in ["Mia has 5 apples. 2 * 3 = 6. The answer is 11.", "  two  spaces\n\nand lines",
              "Ünïcödé × emoji 🙂 and <tags>", ""]:
        assert tok.decode(tok(s)["input_ids"]) == s
    assert len(tok) == model.config.vocab_size == 1024
    assert tok.pad_token is not None and tok.pad_token_id != tok.eos_token_id
    assert tok.model_max_length == model.config.n_positions
    chat = tok.apply_chat_template([{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": "Hi"}],
                                   tokenize=False, add_generation_prompt=True)
    assert chat == "System: Be brief.\nUser: Hi\nAssistant:"


def test_chat_model_is_course_gpt_tuned_with_the_same_tokenizer_and_template(gpt):
    from course_utils.pretrained.tokenizer_build import CHAT_TEMPLATE

    model, tok = load_pretrained("course-gpt-chat")
    base, base_tok = gpt
    shape = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "eos_token_id",
             "pad_token_id")
    assert isinstance(model, GPT2LMHeadModel)
    assert [getattr(model.config, k) for k in shape] == [getattr(base.config, k) for k in shape]
    assert tok.get_vocab() == base_tok.get_vocab() and tok.pad_token == base_tok.pad_token
    assert tok.chat_template == base_tok.chat_template == CHAT_TEMPLATE
    ids = tok("User: Hi\nAssistant:", return_tensors="pt")["input_ids"]
    with torch.no_grad():  # fine-tuned: not the same weights
        assert not torch.allclose(model(ids).logits, base(ids).logits)
    log = json.loads((CHAT / "training_log.json").read_text())
    assert log["base"] == "course-gpt" and log["val_loss"][-1] < log["val_loss"][0]


def test_label_words_are_single_tokens_and_held_out_words_never_labels(gpt):
    """The in-context learning the lessons measure rests on this (see course_utils.data.corpus):
    every label word of the corpus, the evaluation words, lesson 04's never-seen words and the
    test splits' held-out names are single tokens, and the held-out words are never labels."""
    from course_utils.data import SENTIMENT_LABELS
    from course_utils.data import world as w
    from course_utils.data.corpus import RANDOM_LABEL_WORDS, TOXIC_LABEL_SETS, TRAIN_LABEL_SETS

    _, tok = gpt
    trained = {w for s in TRAIN_LABEL_SETS + TOXIC_LABEL_SETS for w in s} | set(RANDOM_LABEL_WORDS)
    held_out = (set(SENTIMENT_LABELS) | {"tree", "river", "hill", "park", "garden", "house"}
                | set(w.HELD_OUT_NAMES))
    split = sorted(w for w in trained | held_out if len(tok(" " + w)["input_ids"]) != 1)
    assert not split, f"label words split into several tokens: {split}"
    assert not trained & held_out


def test_bert_tokenizer_is_wordpiece_with_bert_specials(bert):
    model, tok = bert
    enc = tok("Mia went to the park.", "The fox ran away.")
    tokens = tok.convert_ids_to_tokens(enc["input_ids"])
    assert tokens[0] == "[CLS]" and tokens.count("[SEP]") == 2 and "[UNK]" not in tokens
    assert tok.decode(enc["input_ids"], skip_special_tokens=True) == (
        "mia went to the park. the fox ran away.")
    assert set(enc["token_type_ids"]) == {0, 1}
    assert len(tok) == model.config.vocab_size


def test_gpt_has_learned_the_language(gpt):
    """Loss on held-out text is far below the uniform guess log(vocab)."""
    from course_utils import data

    model, tok = gpt
    text = " ".join(data.stories(0)["test"]["text"][:5])
    ids = tok(text, return_tensors="pt")["input_ids"][:, :256]
    with torch.no_grad():
        loss = model(ids, labels=ids).loss.item()
    assert loss < 0.5 * math.log(len(tok))


def test_bert_fills_a_mask(bert):
    model, tok = bert
    enc = tok("once upon a [MASK], a little fox lived in a red house.", return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).prediction_logits
    pos = enc["input_ids"][0].tolist().index(tok.mask_token_id)
    top = tok.convert_ids_to_tokens(logits[0, pos].topk(5).indices.tolist())
    assert "time" in top


def test_model_class_and_kwargs_pass_through():
    model, _ = load_pretrained("course-bert", model_class=AutoModelForSequenceClassification,
                               num_labels=3)
    assert model.config.num_labels == 3 and model.classifier.out_features == 3
    model, _ = load_pretrained("course-gpt", attn_implementation="eager")
    assert model.config._attn_implementation == "eager"
    model, _ = load_pretrained(str(GPT))  # a local directory works too
    assert isinstance(model, GPT2LMHeadModel)


def test_offline_hub_name_fails_fast_and_names_the_bundled_models():
    start = time.perf_counter()
    with pytest.raises(OSError) as err:
        load_pretrained("gpt2")
    assert time.perf_counter() - start < 2.0
    msg = str(err.value)
    assert "offline" in msg and "course-gpt" in msg and "course-bert" in msg


def test_bad_names_are_clear_errors():
    with pytest.raises(TypeError):
        load_pretrained(None)
    with pytest.raises(ValueError, match="course-gpt"):
        asset_path("gpt2")


def test_quick_build_runs_end_to_end(tmp_path):
    from course_utils.pretrained.__main__ import main

    assert main(["build", "--quick", "--out", str(tmp_path), "--threads", "1"]) == 0
    for name, cls in (("course-gpt", AutoModelForCausalLM),
                      ("course-bert", AutoModelForPreTraining),
                      ("course-gpt-chat", AutoModelForCausalLM)):
        out = tmp_path / name
        model = cls.from_pretrained(out)
        tok = AutoTokenizer.from_pretrained(out)
        assert len(tok) == model.config.vocab_size
        log = json.loads((out / "training_log.json").read_text())
        assert len(log["loss"]) == log["recipe"]["steps"] and (out / "loss_curve.png").exists()
    # course-gpt-chat was tuned from the course-gpt of this build, with its tokenizer
    assert json.loads((tmp_path / "course-gpt-chat" / "training_log.json").read_text())[
        "base"] == "course-gpt"
    assert AutoTokenizer.from_pretrained(tmp_path / "course-gpt-chat").get_vocab() == \
        AutoTokenizer.from_pretrained(tmp_path / "course-gpt").get_vocab()


def test_step_list_drills_ask_train_values_and_pass_the_lists_check():
    from course_utils.data import world as w
    from course_utils.data.instructions import CHECKS, EVAL_ANIMALS, EVAL_PLACES
    from course_utils.pretrained.train_chat import copy_drills

    drills = copy_drills(0, 120)
    held = {*EVAL_ANIMALS, *EVAL_PLACES, *w.HELD_OUT_NAMES}
    for single, whole in zip(drills[4::6], drills[5::6], strict=True):
        ask, sentence = single[0]["content"].split("\n")
        assert sentence.startswith("Sentence: ") and "." not in ask[:-1]  # one step only
        assert single[1]["content"] in sentence and single[1]["content"] not in held
        lines = whole[1]["content"].split("\n")
        assert CHECKS["iterative/entities"]({"answers": [ln[3:] for ln in lines]},
                                            whole[1]["content"])
        assert not any(x in whole[0]["content"].split() for x in held)


def test_the_chat_run_keeps_the_averaged_weights():
    from course_utils.pretrained.tokenizer_build import CHAT_TEMPLATE
    from course_utils.pretrained.train_chat import ChatRecipe, train_chat

    def run(ema_decay):
        model, tok = load_pretrained("course-gpt")
        tok.chat_template = CHAT_TEMPLATE
        start = {k: v.clone() for k, v in model.state_dict().items()}
        recipe = ChatRecipe(steps=3, batch_size=2, lm_blocks=0, n_train=8, n_val=5,
                            copy_share=0.0, warmup_steps=1, ema_decay=ema_decay, time_budget=None)
        model, _ = train_chat(model, tok, [], recipe)
        return max((v - start[k]).abs().max().item() for k, v in model.state_dict().items())

    assert run(None) > 1e-3  # three steps at lr 1e-3 move the last weights
    assert run(1 - 1e-9) < 1e-6  # an average that barely moves keeps the starting weights
