"""course_utils.lm at its edges: the one documented behaviour of each idea, checked against
transformers' own numbers where there is one."""

from __future__ import annotations

import pytest
import torch
from _tiny_lm import tiny_gpt2
from serving_helpers import CORPUS, tiny_tokenizer
from transformers import BertConfig, BertForMaskedLM

from course_utils import lm


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return tiny_gpt2(len(tok), n_positions=24, tokenizer=tok, initializer_range=0.3).eval()


def test_context_length_reads_the_config_then_the_tokenizer_then_says_so(model, tok):
    assert lm.context_length(model) == 24
    bert = BertForMaskedLM(BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1,
                                      num_attention_heads=2, intermediate_size=8,
                                      max_position_embeddings=40))
    assert lm.context_length(bert) == 40

    class NoConfig:
        config = None

    tok_limited = tiny_tokenizer()
    tok_limited.model_max_length = 64
    assert lm.context_length(NoConfig(), tok_limited) == 64
    tok_limited.model_max_length = int(1e30)  # transformers' "unknown"
    with pytest.raises(ValueError, match="cannot tell the context length"):
        lm.context_length(NoConfig(), tok_limited)
    with pytest.raises(ValueError, match="n_positions"):
        lm.context_length(NoConfig())


def test_a_padded_row_gives_the_logits_of_the_prompt_alone(model, tok):
    prompts = [CORPUS[0][:30], CORPUS[1][:8], CORPUS[2][:17]]
    batched = lm.next_token_logits(model, tok, prompts, batch_size=3)
    for row, prompt in zip(batched, prompts, strict=True):
        ids = torch.tensor([tok(prompt, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            alone = model(ids).logits[0, -1]
        torch.testing.assert_close(row, alone, atol=1e-4, rtol=1e-4)
    assert lm.next_token_logits(model, tok, prompts[0]).shape == (len(tok),)


def test_encoding_keeps_the_end_and_warns_and_needs_room(tok):
    text = CORPUS[0]
    ids = tok(text, add_special_tokens=False)["input_ids"]
    with pytest.warns(UserWarning, match="lost their beginning"):
        assert lm.encode(tok, [text], 5) == [ids[-5:]]
    with pytest.raises(ValueError, match="no room for the prompt"):
        lm.encode(tok, [text], 0)


def test_position_ids_count_real_tokens_only():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]])
    assert lm.position_ids(mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4],
                                              [0, 0, 0, 0, 0]]


def test_label_token_ids_rejects_shared_and_split_words(tok):
    with pytest.raises(ValueError, match="share a token"):
        lm.label_token_ids(tok, ["fox", "fox"])
    with pytest.raises(ValueError, match="not one"):
        lm.label_token_ids(tok, ["fox", "zebracornucopia"])
    with pytest.raises(ValueError, match="at least two"):
        lm.label_token_ids(tok, "fox")


def test_size_on_disk_of_a_module_and_of_a_folder(model, tmp_path):
    params = sum(p.numel() for p in model.parameters())
    assert 4 * params <= lm.size_on_disk(model) < 4 * params * 1.2
    model.save_pretrained(tmp_path)
    weights = (tmp_path / "model.safetensors").stat().st_size
    assert lm.size_on_disk(tmp_path) == weights
    with pytest.raises(FileNotFoundError, match="does not exist"):
        lm.size_on_disk(tmp_path / "missing")
    with pytest.raises(TypeError, match="torch module or the path"):
        lm.size_on_disk(3)


def test_a_failed_load_is_an_os_error_and_a_runtime_error_naming_what_loads(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(lm.ModelLoadError) as info:
        lm.load_model("no-such/model")
    assert isinstance(info.value, OSError) and isinstance(info.value, RuntimeError)
    assert str(info.value).startswith("'no-such/model' is not a bundled model")
    assert "random-tiny" in str(info.value)
    with pytest.raises(ValueError, match="non-empty name"):
        lm.load_model("")
