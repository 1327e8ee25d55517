"""BERT against transformers' BERT models with the same (random) weights."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    BertConfig,
    BertForPreTraining,
    BertForSequenceClassification,
    BertModel,
)

from course_utils.bert import BERT, BERTConfig
from course_utils.gpt import GPT, GPTConfig

SIZES = [  # (layers, hidden, heads, intermediate, vocab, max_positions)
    (1, 16, 2, 32, 50, 32),
    (2, 32, 4, 64, 100, 40),
    (3, 48, 6, 96, 120, 64),
]


def _config(layers, hidden, heads, inter, vocab, positions, **kw) -> BertConfig:
    return BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
                      num_attention_heads=heads, intermediate_size=inter,
                      max_position_embeddings=positions, **kw)


def _batch(vocab: int, seq: int = 12):
    ids = torch.randint(0, vocab, (3, seq))
    token_type_ids = torch.zeros_like(ids)
    token_type_ids[:, seq // 2:] = 1
    attention_mask = torch.ones_like(ids)
    attention_mask[0, seq - 3:] = 0
    attention_mask[2, seq - 5:] = 0
    return ids, token_type_ids, attention_mask


@pytest.mark.parametrize("size", SIZES)
def test_hidden_states_match_bert_model(size):
    torch.manual_seed(size[1])
    hf = BertModel(_config(*size)).eval()
    ours = BERT.from_hf(hf)
    ids, tt, am = _batch(size[4])
    with torch.no_grad():
        got = ours(ids, token_type_ids=tt, attention_mask=am)
        ref = hf(ids, token_type_ids=tt, attention_mask=am)
    keep = am.bool()
    torch.testing.assert_close(got.last_hidden_state[keep], ref.last_hidden_state[keep],
                               atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got.pooler_output, ref.pooler_output, atol=1e-4, rtol=1e-4)
    # without any mask and without segments
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).last_hidden_state, hf(ids).last_hidden_state,
                                   atol=1e-4, rtol=1e-4)


def test_pretraining_heads_match_bert_for_pretraining():
    torch.manual_seed(1)
    hf = BertForPreTraining(_config(*SIZES[1])).eval()
    ours = BERT.from_hf(hf)
    ids, tt, am = _batch(100)
    with torch.no_grad():
        got = ours(ids, tt, am)
        ref = hf(ids, token_type_ids=tt, attention_mask=am)
    keep = am.bool()
    torch.testing.assert_close(got.mlm_logits[keep], ref.prediction_logits[keep],
                               atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got.logits, ref.seq_relationship_logits, atol=1e-4, rtol=1e-4)
    assert ours.num_parameters() == hf.num_parameters()


def test_classifier_matches_sequence_classification():
    torch.manual_seed(2)
    hf = BertForSequenceClassification(_config(*SIZES[0], num_labels=3)).eval()
    ours = BERT.from_hf(hf)
    ids, tt, am = _batch(50)
    with torch.no_grad():
        torch.testing.assert_close(ours(ids, tt, am).logits,
                                   hf(ids, token_type_ids=tt, attention_mask=am).logits,
                                   atol=1e-4, rtol=1e-4)


def test_every_token_sees_the_future():
    """Encoder-only: changing the last token changes the first token's hidden state."""
    model = BERT(BERTConfig(vocab_size=30, d_model=16, num_heads=2, num_layers=1)).eval()
    ids = torch.randint(0, 30, (1, 6))
    other = ids.clone()
    other[0, -1] = (ids[0, -1] + 1) % 30
    with torch.no_grad():
        a, b = model(ids).last_hidden_state, model(other).last_hidden_state
    assert not torch.allclose(a[0, 0], b[0, 0])


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match="divisible"):
        BERTConfig(d_model=10, num_heads=4)
    model = BERT(BERTConfig(vocab_size=30, max_seq_len=8, d_model=16, num_heads=2,
                            num_layers=1))
    with pytest.raises(ValueError, match="max_seq_len"):
        model(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="token_type_ids"):
        model(torch.zeros(1, 4, dtype=torch.long), token_type_ids=torch.zeros(1, 3))
    with pytest.raises(TypeError, match="BertModel"):
        BERT.from_hf(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("config", [BERTConfig, GPTConfig])
@pytest.mark.parametrize("dropout", [-0.1, 1.0, 1.5, "0.1", True])
def test_bert_and_gpt_share_the_dropout_check(config, dropout):
    with pytest.raises(ValueError, match=rf"{config.__name__}\.dropout must be a probability"):
        config(dropout=dropout)


@pytest.mark.parametrize("name", ["gelu", "gelu_new", "gelu_pytorch_tanh", "relu"])
def test_bert_and_gpt_take_the_same_activations(name):
    x = torch.linspace(-4, 4, 17)
    expected = {"gelu": torch.nn.GELU(), "relu": torch.nn.ReLU()}.get(
        name, torch.nn.GELU(approximate="tanh"))(x)
    for config, model in ((BERTConfig, BERT), (GPTConfig, GPT)):
        net = model(config(vocab_size=20, max_seq_len=8, d_model=8, num_heads=2, num_layers=1,
                           activation=name))
        act = next(m for m in net.modules() if hasattr(m, "act")).act
        torch.testing.assert_close(act(x), expected)
    with pytest.raises(ValueError, match="activation must be one of"):
        BERTConfig(activation="swish")
