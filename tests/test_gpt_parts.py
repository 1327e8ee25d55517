"""course_utils.gpt_parts (the block written out) against torch and course_utils.gpt's modules."""

import pytest
import torch
import torch.nn.functional as F
from _tiny_lm import tiny_gpt2

from course_utils import gpt, gpt_parts


@pytest.mark.parametrize("shape, eps", [((2, 5, 8), 1e-5), ((3, 1), 1e-5), ((7,), 0.1),
                                        ((2, 3, 27), 1e-12), ((4, 768), 1e-5)])
def test_layer_norm_matches_torch(shape, eps):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g) * 3 + 1e3
    ln = torch.nn.LayerNorm(shape[-1], eps=eps)
    with torch.no_grad():
        ln.weight.normal_(generator=g)
        ln.bias.normal_(generator=g)
    torch.testing.assert_close(gpt_parts.layer_norm(x, ln.weight, ln.bias, eps), ln(x),
                               atol=1e-4, rtol=1e-4)


def test_gelu_matches_torch_tanh_form_everywhere():
    x = torch.cat([torch.linspace(-10, 10, 10001), torch.tensor([-1e4, 1e4, 0.0, 60.0])])
    torch.testing.assert_close(gpt_parts.gelu_tanh(x), F.gelu(x, approximate="tanh"))
    x64 = x.double()
    torch.testing.assert_close(gpt_parts.gelu_tanh(x64), F.gelu(x64, approximate="tanh"))


@pytest.mark.parametrize("d_model, num_heads", [(8, 2), (27, 3), (16, 1), (64, 16)])
def test_block_forward_matches_gpt_block_and_transformers(d_model, num_heads):
    torch.manual_seed(0)
    config = gpt.GPTConfig(vocab_size=8, max_seq_len=32, d_model=d_model, num_heads=num_heads,
                           num_layers=1, d_ff=3 * d_model + 1, layer_norm_eps=1e-3)
    block = gpt.Block(config, 0).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(std=0.3)
    x = torch.randn(2, 6, d_model)
    mlp = block.mlp
    torch.testing.assert_close(
        gpt_parts.mlp_forward(x, mlp.fc.weight, mlp.fc.bias, mlp.proj.weight, mlp.proj.bias),
        mlp(x))
    ours = gpt_parts.block_forward(block, x)
    torch.testing.assert_close(ours, block(x))
    # transformers' GPT-2 block with the same weights (Conv1D stores them transposed), run
    # inside a 2-layer GPT2Model (which makes the causal mask) with zero position embeddings
    hf = tiny_gpt2(8, n_embd=d_model, n_head=num_heads, n_inner=3 * d_model + 1, n_layer=2,
                   layer_norm_epsilon=1e-3, activation_function="gelu_new", n_positions=32,
                   resid_pdrop=0, attn_pdrop=0, embd_pdrop=0).transformer.eval()
    names = {"ln_1": "ln_1", "ln_2": "ln_2", "attn.W_qkv": "attn.c_attn",
             "attn.W_o": "attn.c_proj", "mlp.fc": "mlp.c_fc", "mlp.proj": "mlp.c_proj"}
    state = block.state_dict()
    hf_state = {"wpe.weight": torch.zeros(32, d_model)}
    for ours_name, theirs in names.items():
        w = state[f"{ours_name}.weight"]
        hf_state[f"h.0.{theirs}.weight"] = w if ours_name.startswith("ln") else w.T
        hf_state[f"h.0.{theirs}.bias"] = state[f"{ours_name}.bias"]
    hf.load_state_dict(hf_state, strict=False)
    with torch.no_grad():
        theirs = hf(inputs_embeds=x, output_hidden_states=True).hidden_states[1]
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_gpt_forward_reproduces_transformers_on_course_gpt():
    from course_utils.pretrained import load_pretrained

    hf, tokenizer = load_pretrained("course-gpt")
    model = gpt.GPT.from_hf(hf).eval()
    ids = torch.tensor([tokenizer("Mia went to the park with her dog. The dog", verbose=False)[
        "input_ids"]])
    with torch.no_grad():
        ours = gpt_parts.gpt_forward(model, ids)
        theirs = hf(ids).logits
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
        # positions after a past: the same as transformers with explicit position ids
        shifted = gpt_parts.gpt_forward(model, ids[:, :5], past_length=7)
        torch.testing.assert_close(
            shifted, hf(ids[:, :5], position_ids=torch.arange(7, 12)[None]).logits,
            atol=1e-4, rtol=1e-4)


def test_pre_norm_block_class_is_gpt_block():
    torch.manual_seed(0)
    config = gpt.GPTConfig(vocab_size=8, max_seq_len=16, d_model=27, num_heads=3,
                           num_layers=1, layer_norm_eps=0.1)
    ours, theirs = gpt_parts.PreNormBlock(config, 0), gpt.Block(config, 0)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 5, 27)
    torch.testing.assert_close(ours(x), theirs(x))


def test_a_context_longer_than_the_training_one_is_refused_clearly():
    model = gpt.GPT(gpt.GPTConfig(vocab_size=8, max_seq_len=6, d_model=8, num_heads=2,
                                  num_layers=1))
    with pytest.raises(ValueError, match="exceed the 6 the model has position embeddings"):
        gpt_parts.gpt_forward(model, torch.zeros(1, 4, dtype=torch.long), past_length=3)
    with pytest.raises(ValueError, match="exceed the model's max_seq_len=6"):
        model(torch.zeros(1, 7, dtype=torch.long))
