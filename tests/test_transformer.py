"""course_utils.transformer: the encoder-decoder equals torch.nn.Transformer, the decoder layer's
pure function equals the module, cached and uncached greedy decoding agree, bad input is refused
clearly, and the bundled translator loads and translates."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from torch import nn

from course_utils import transformer as T

warnings.filterwarnings("ignore", message=".*nested tensors.*")

# (d_model, heads, enc layers, dec layers, dim_ff, activation, norm_first, src len, tgt len)
CONFIGS = [
    (16, 2, 1, 1, 32, "relu", False, 7, 4),
    (15, 1, 2, 3, 7, "gelu", True, 5, 9),       # odd d_model, one head, odd dim_ff
    (24, 12, 3, 2, 31, "gelu", False, 11, 3),   # many heads (d_k = 2)
    (32, 4, 2, 2, 64, "relu", True, 1, 6),      # a one-token source
    (8, 8, 1, 1, 9, "relu", False, 6, 1),       # d_k = 1, a one-token target
]


def _torch_transformer(d, h, ne, nd, ff, act, norm_first, seed=0):
    torch.manual_seed(seed)
    t = nn.Transformer(d, h, ne, nd, ff, dropout=0.0, activation=act, norm_first=norm_first,
                       batch_first=True)
    with torch.no_grad():  # LayerNorms start at (1, 0): make them non-trivial so a swap shows
        for m in t.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return t.eval()


def _masks(batch, S, L):
    src_mask = torch.ones(batch, S, dtype=torch.long)
    tgt_mask = torch.ones(batch, L, dtype=torch.bool)
    if batch > 1:
        src_mask[1, max(1, S - 2):] = 0   # right padding, at least one real token
        tgt_mask[1, max(1, L - 1):] = False
    if batch > 2:
        src_mask[2, 1:] = 0
    return src_mask, tgt_mask


def _reference(t, src, tgt, src_mask, tgt_mask):
    L = tgt.shape[1]
    with torch.no_grad():
        return t(src, tgt, tgt_mask=nn.Transformer.generate_square_subsequent_mask(L),
                 src_key_padding_mask=None if src_mask is None else src_mask == 0,
                 memory_key_padding_mask=None if src_mask is None else src_mask == 0,
                 tgt_key_padding_mask=None if tgt_mask is None else tgt_mask == 0,
                 tgt_is_causal=True)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(map(str, c)))
@pytest.mark.parametrize("masked", [False, True], ids=["no padding", "padding"])
def test_equals_nn_transformer(config, masked):
    d, h, ne, nd, ff, act, nf, S, L = config
    t = _torch_transformer(d, h, ne, nd, ff, act, nf)
    ours = T.EncoderDecoder.from_torch(t).eval()
    src, tgt = torch.randn(3, S, d) * 2, torch.randn(3, L, d) * 2
    src_mask, tgt_mask = _masks(3, S, L) if masked else (None, None)
    with torch.no_grad():
        got = ours(src, tgt, src_mask, tgt_mask)
    torch.testing.assert_close(got, _reference(t, src, tgt, src_mask, tgt_mask),
                               atol=1e-5, rtol=1e-5)


def test_equals_nn_transformer_in_train_mode_without_dropout():
    """In eval mode PyTorch may take its fused path; training mode runs the plain maths."""
    t = _torch_transformer(20, 4, 2, 2, 40, "relu", False).train()
    ours = T.EncoderDecoder.from_torch(t)
    src, tgt = torch.randn(2, 5, 20), torch.randn(2, 8, 20)
    src_mask, tgt_mask = _masks(2, 5, 8)
    torch.testing.assert_close(ours(src, tgt, src_mask, tgt_mask),
                               _reference(t, src, tgt, src_mask, tgt_mask), atol=1e-5, rtol=1e-5)


def test_masks_accept_bool_and_int_and_padding_changes_nothing_real():
    t = _torch_transformer(16, 2, 1, 1, 32, "relu", False)
    ours = T.EncoderDecoder.from_torch(t).eval()
    src, tgt = torch.randn(2, 6, 16), torch.randn(2, 4, 16)
    m = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        a = ours(src, tgt, m, None)
        b = ours(src, tgt, m.bool(), None)
        garbage = src.clone()
        garbage[0, 4:] = 1e4  # what sits at padded positions must not matter
        c = ours(garbage, tgt, m, None)
        short = ours(src[:1, :4], tgt[:1])
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)
    torch.testing.assert_close(a[:1], short, atol=1e-5, rtol=1e-5)


def test_the_decoder_never_looks_ahead():
    ours = T.EncoderDecoder(16, 2, 1, 2, 32).eval()
    src, tgt = torch.randn(1, 5, 16), torch.randn(1, 6, 16)
    changed = tgt.clone()
    changed[:, 4:] = torch.randn(1, 2, 16)
    with torch.no_grad():
        a, b = ours(src, tgt), ours(src, changed)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_decoder_layer_function_is_the_module():
    layer = T.DecoderLayer(12, 3, 20).eval()
    x, memory = torch.randn(2, 4, 12), torch.randn(2, 7, 12)
    m = torch.tensor([[1] * 7, [1] * 3 + [0] * 4])
    with torch.no_grad():
        out, w = layer(x, memory, m, need_weights=True)
        torch.testing.assert_close(out, T.decoder_layer(x, memory, layer.params(), 3, m))
    assert w.shape == (2, 3, 4, 7)
    assert (w[1, ..., 3:] == 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 4))


def test_cross_attention_is_mha_with_keys_from_the_encoder():
    torch.manual_seed(1)
    ref = nn.MultiheadAttention(8, 2, batch_first=True)
    mha = T.MultiHeadAttention(8, 2)
    with torch.no_grad():
        for part, w, b in zip("qkv", ref.in_proj_weight.chunk(3), ref.in_proj_bias.chunk(3),
                              strict=True):
            getattr(mha, f"W_{part}").weight.copy_(w)
            getattr(mha, f"W_{part}").bias.copy_(b)
        mha.W_o.load_state_dict(ref.out_proj.state_dict())
        x, memory = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
        m = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
        out, w = T.cross_attention(x, memory, mha.params(), 2, m)
        ref_out, ref_w = ref(x, memory, memory, key_padding_mask=m == 0,
                             average_attn_weights=False)
    torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(w, ref_w, atol=1e-6, rtol=1e-5)


def test_from_torch_refuses_what_it_cannot_copy():
    with pytest.raises(ValueError, match="batch_first=True"):
        T.EncoderDecoder.from_torch(nn.Transformer(8, 2, 1, 1, 16))
    with pytest.raises(TypeError, match="nn.Transformer"):
        T.EncoderDecoder.from_torch(nn.Linear(2, 2))
    ours = T.EncoderDecoder(8, 2, 1, 1, 16)
    with pytest.raises(ValueError, match="embedded"):
        ours(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="src_attention_mask must be"):
        ours(torch.randn(2, 3, 8), torch.randn(2, 2, 8), torch.ones(2, 4))
    with pytest.raises(ValueError, match="activation"):
        T.EncoderDecoder(8, 2, activation="tanh")


# --------------------------------------------------------------------------- greedy decoding


class _Scripted:
    """A fake seq2seq model: logits depend on the source and the whole target prefix."""

    def __init__(self, vocab=9, eos=2):
        self.vocab, self.eos = vocab, eos

    def __call__(self, src, tgt):
        out = torch.zeros(tgt.shape[0], tgt.shape[1], self.vocab)
        for b in range(tgt.shape[0]):
            n_src = int((src[b] != 0).sum())
            for t in range(tgt.shape[1]):
                g = torch.Generator().manual_seed(hash(tuple(tgt[b, : t + 1].tolist())) % 2**31)
                out[b, t] = torch.rand(self.vocab, generator=g)
                out[b, t, self.eos] = 5.0 if t >= n_src else -5.0
        return out


def test_greedy_decode_stops_rows_at_their_end_token():
    src = torch.tensor([[5, 6, 7, 0], [5, 0, 0, 0], [5, 6, 7, 8]])
    out = T.greedy_decode(_Scripted(), src, bos_id=1, eos_id=2, pad_id=0, max_new_tokens=10)
    assert out.shape == (3, 5)  # the longest row: 4 words + </s>
    assert out[1, 1].item() == 2 and (out[1, 2:] == 0).all()
    assert out[0, 3].item() == 2 and out[0, 4].item() == 0
    assert out[2, 4].item() == 2 and (out[:, :1] != 2).all()
    cut = T.greedy_decode(_Scripted(), src, bos_id=1, eos_id=2, pad_id=0, max_new_tokens=2)
    assert torch.equal(cut, out[:, :2])


@pytest.fixture(scope="module", params=[(False, "relu"), (True, "gelu")],
                ids=["post-norm relu", "pre-norm gelu"])
def tiny_translator(request):
    words = "the cat dog sees likes red big lo gato kano vidas amas ruga granda ."
    vocab = T.WordVocab(words.split())
    torch.manual_seed(0)
    norm_first, activation = request.param
    model = T.Translator(T.TranslatorConfig(len(vocab), d_model=16, nhead=2, max_len=12,
                                            dim_feedforward=24, norm_first=norm_first,
                                            activation=activation), vocab).eval()
    return model


def test_cached_and_uncached_decoding_give_the_same_tokens(tiny_translator):
    sentences = ["The cat sees the dog.", "The red dog likes the big cat.", "The cat."]
    ids, mask = tiny_translator.batch(sentences)
    fast = tiny_translator.generate(ids, mask, max_new_tokens=11)
    slow = tiny_translator.generate(ids, mask, max_new_tokens=11, use_cache=False)
    assert torch.equal(fast, slow)
    assert fast.shape[1] >= 1
    _, weights = tiny_translator.generate(ids, mask, max_new_tokens=5,
                                          return_cross_attention=True)
    assert weights[0].shape[:2] == (3, 2) and weights[0].shape[-1] == ids.shape[1]
    assert (weights[0][2, ..., mask[2] == 0] == 0).all()


def test_cached_step_logits_equal_the_full_decoder(tiny_translator):
    m = tiny_translator
    ids, mask = m.batch(["The cat sees the dog.", "The dog."])
    tgt = torch.tensor([[1, 5, 6, 7, 8], [1, 9, 10, 4, 3]])
    with torch.no_grad():
        full = m(ids, tgt, mask)
        memory = m.encode(ids, mask)
        layers = m.transformer.decoder_layers
        kv = [layer.cross_kv(memory) for layer in layers]
        caches = [[] for _ in layers]
        key_mask = mask[:, None, None, :].bool()
        for pos in range(tgt.shape[1]):
            x = m._embed(m.tgt_embed, tgt[:, pos: pos + 1], offset=pos)
            for i, layer in enumerate(layers):
                x, _ = layer.step(x, caches[i], kv[i], key_mask)
            step_logits = m.head(m.transformer.decoder_norm(x))[:, 0]
            torch.testing.assert_close(step_logits, full[:, pos], atol=1e-5, rtol=1e-5)


def test_a_context_longer_than_the_model_is_refused(tiny_translator):
    long = " ".join(["the cat"] * 10) + "."
    with pytest.raises(ValueError, match="max_len=12"):
        tiny_translator.translate(long)
    ids, mask = tiny_translator.batch(["The cat."])
    with pytest.raises(ValueError, match="context of max_len=12"):
        tiny_translator.generate(ids, mask, max_new_tokens=12)
    with pytest.raises(ValueError, match="never saw"):
        tiny_translator.translate("The zebra sees the cat.")


def test_vocab_round_trip():
    v = T.WordVocab("the cat sees lo gato vidas .".split())
    ids = v.encode("The cat sees the cat.")
    assert ids[-1] == v.eos_id and v.decode(ids) == "The cat sees the cat."
    assert v.decode([v.pad_id]) == ""


def test_save_and_load_round_trip(tmp_path, tiny_translator):
    tiny_translator.save(tmp_path / "t")
    again = T.Translator.load(tmp_path / "t")
    ids, mask = tiny_translator.batch(["The cat sees the dog."])
    assert torch.equal(again.generate(ids, mask, max_new_tokens=8),
                       tiny_translator.generate(ids, mask, max_new_tokens=8))
    assert json.loads((tmp_path / "t" / "config.json").read_text())["d_model"] == 16
    with pytest.raises(FileNotFoundError, match="build --only course-translator"):
        T.Translator.load(tmp_path / "missing")


def test_bundled_translator_translates_held_out_sentences():
    from course_utils import data
    from course_utils.metrics import bleu

    model = T.load_translator()  # (benchmarks/translator.py measures how long this takes)
    ds = data.translations(0)["test"]
    src, ref = ds["source"][:60], ds["target"][:60]
    got = model.translate(src)
    assert bleu(got, ref)["bleu"] > 0.8, list(zip(got, ref, strict=True))[:5]
    ids, mask = model.batch(src)
    assert torch.equal(model.generate(ids, mask), model.generate(ids, mask, use_cache=False))


def test_load_pretrained_gives_the_translator_and_its_vocabulary():
    from course_utils.pretrained import load_pretrained

    model, vocab = load_pretrained("course-translator")
    assert isinstance(model, T.Translator) and vocab is model.vocab
    assert model.translate("The cat sees the red ball.") == ["Lo gato vidas lo pilko ruga."]


def test_quick_build_makes_a_loadable_translator(tmp_path):
    from course_utils.pretrained.build import build

    made = build(tmp_path, quick=True, only="course-translator", threads=1)
    model = T.load_translator(made["course-translator"])
    log = json.loads((made["course-translator"] / "training_log.json").read_text())
    assert len(log["loss"]) == log["recipe"]["steps"]
    assert (made["course-translator"] / "loss_curve.png").exists()
    assert isinstance(model.translate("The cat sees the dog.")[0], str)
