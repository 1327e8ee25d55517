"""Known-wrong answers to lesson 03's block exercises (03.3-03.6): each rejected, saying why.

Written independently of the grader's own mistakes; the references are checked against torch
and transformers in tests/test_gpt_parts.py.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from course_utils import gpt
from course_utils.gpt import MLP, CausalSelfAttention
from course_utils.grading import get_exercise, run_exercise
from course_utils.grading.core import Case


def _verdict(ex_id, fn):
    return run_exercise(get_exercise(ex_id), fn)


# ---- 03.3 layer norm
def ln_torch_var(x, weight, bias, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(torch.var(x, -1, keepdim=True) + eps) * weight + bias


def ln_std_plus_eps(x, weight, bias, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    sd = x.std(-1, keepdim=True, unbiased=False)
    return (x - mu) / (sd + eps) * weight + bias


def ln_no_affine(x, weight, bias, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps)


def ln_fixed_eps(x, weight, bias, eps=1e-5):
    return F.layer_norm(x, x.shape[-1:], weight, bias, 1e-5)


def ln_one_pass_variance(x, weight, bias, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    var = (x ** 2).mean(-1, keepdim=True) - mu ** 2
    return (x - mu) * torch.rsqrt(var + eps) * weight + bias


def ln_over_all_axes(x, weight, bias, eps=1e-5):
    mu, var = x.mean(), x.var(unbiased=False)
    return (x - mu) / torch.sqrt(var + eps) * weight + bias


def ln_shift_then_scale(x, weight, bias, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return ((x - mu) / torch.sqrt(var + eps) + bias) * weight


def ln_no_eps(x, weight, bias, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / var.sqrt() * weight + bias


def ln_eps_no_default(x, weight, bias, eps):
    return F.layer_norm(x, x.shape[-1:], weight, bias, eps)


def ln_ok_rsqrt(x, weight, bias, eps=1e-5):
    var, mean = torch.var_mean(x, dim=-1, keepdim=True, correction=0)
    return torch.addcmul(bias, (x - mean) * torch.rsqrt(var + eps), weight)


def ln_ok_torch_module(x, weight, bias, eps=1e-5):
    ln = torch.nn.LayerNorm(x.shape[-1], eps=eps, dtype=x.dtype)
    with torch.no_grad():
        ln.weight.copy_(weight)
        ln.bias.copy_(bias)
        return ln(x)


# ---- 03.4 GELU
def gelu_erf(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def gelu_wrong_constant(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 * math.pi) * (x + 0.044715 * x ** 3)))


def gelu_no_half(x):
    return x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def gelu_squared(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x * x)))


def gelu_quick(x):
    return x * torch.sigmoid(1.702 * x)


def gelu_manual_tanh(x):
    z = math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)
    tanh = (torch.exp(z) - torch.exp(-z)) / (torch.exp(z) + torch.exp(-z))
    return 0.5 * x * (1 + tanh)


def gelu_relu(x):
    return torch.clamp(x, min=0)


def gelu_float_constant_tensor(x):
    c = torch.tensor(math.sqrt(2 / math.pi), dtype=torch.float32)
    return (0.5 * x * (1 + torch.tanh(c * (x + 0.044715 * x ** 3)))).float()


def gelu_forgot_x(x):
    return 0.5 * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def gelu_ok_sigmoid_identity(x):
    # 0.5 (1 + tanh(z)) = sigmoid(2 z)
    return x * torch.sigmoid(2 * math.sqrt(2 / math.pi) * (x + 0.044715 * x.pow(3)))


def gelu_ok_torch(x):
    return F.gelu(x, approximate="tanh")


# ---- 03.5 MLP
def _gelu(h):
    return F.gelu(h, approximate="tanh")


def mlp_exact_gelu(x, fc_weight, fc_bias, proj_weight, proj_bias):
    return F.gelu(x @ fc_weight.T + fc_bias) @ proj_weight.T + proj_bias


def mlp_relu(x, fc_weight, fc_bias, proj_weight, proj_bias):
    return torch.relu(x @ fc_weight.T + fc_bias) @ proj_weight.T + proj_bias


def mlp_not_transposed(x, fc_weight, fc_bias, proj_weight, proj_bias):
    return _gelu(x @ fc_weight + fc_bias) @ proj_weight + proj_bias


def mlp_no_activation(x, fc_weight, fc_bias, proj_weight, proj_bias):
    return (x @ fc_weight.T + fc_bias) @ proj_weight.T + proj_bias


def mlp_gelu_on_output(x, fc_weight, fc_bias, proj_weight, proj_bias):
    return _gelu(_gelu(x @ fc_weight.T + fc_bias) @ proj_weight.T + proj_bias)


def mlp_forgot_fc_bias(x, fc_weight, fc_bias, proj_weight, proj_bias):
    return _gelu(x @ fc_weight.T) @ proj_weight.T + proj_bias


def mlp_with_residual(x, fc_weight, fc_bias, proj_weight, proj_bias):
    return x + _gelu(x @ fc_weight.T + fc_bias) @ proj_weight.T + proj_bias


def mlp_gelu_first(x, fc_weight, fc_bias, proj_weight, proj_bias):
    return (_gelu(x) @ fc_weight.T + fc_bias) @ proj_weight.T + proj_bias


def mlp_ok_linear(x, fc_weight, fc_bias, proj_weight, proj_bias):
    return F.linear(F.gelu(F.linear(x, fc_weight, fc_bias), approximate="tanh"), proj_weight,
                    proj_bias)


def mlp_ok_einsum(x, fc_weight, fc_bias, proj_weight, proj_bias):
    h = torch.einsum("...d,fd->...f", x, fc_weight) + fc_bias
    return torch.einsum("...f,df->...d", _gelu(h), proj_weight) + proj_bias


# ---- 03.6 the block, as a class: the __init__ the notebook gives, then a learner's forward
class _GivenInit(torch.nn.Module):
    def __init__(self, config, layer_idx=0):
        super().__init__()
        self.ln_1 = torch.nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.attn = CausalSelfAttention(config, layer_idx)
        self.ln_2 = torch.nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.mlp = MLP(config)


class BlockPostNorm(_GivenInit):
    def forward(self, x):
        x = self.ln_1(x + self.attn(x))
        return self.ln_2(x + self.mlp(x))


class BlockForgetsAttentionResidual(_GivenInit):
    def forward(self, x):
        h = self.attn(self.ln_1(x))
        return h + self.mlp(self.ln_2(h))


class BlockForgetsMlpResidual(_GivenInit):
    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return self.mlp(self.ln_2(x))


class BlockNormalisesTheSum(_GivenInit):
    def forward(self, x):
        x = self.ln_1(x + self.attn(self.ln_1(x)))
        return self.ln_2(x + self.mlp(self.ln_2(x)))


class BlockAddsToTheNormed(_GivenInit):
    def forward(self, x):
        a = self.ln_1(x)
        x = a + self.attn(a)
        b = self.ln_2(x)
        return b + self.mlp(b)


class BlockParallelBranches(_GivenInit):
    def forward(self, x):
        return x + self.attn(self.ln_1(x)) + self.mlp(self.ln_2(x))


class BlockOneNorm(_GivenInit):
    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_1(x))


class BlockDefaultEps(_GivenInit):
    def forward(self, x):
        def ln(mod, t):
            return F.layer_norm(t, mod.normalized_shape, mod.weight, mod.bias)
        x = x + self.attn(ln(self.ln_1, x))
        return x + self.mlp(ln(self.ln_2, x))


class BlockExactGelu(_GivenInit):
    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp.proj(F.gelu(self.mlp.fc(self.ln_2(x))))


class BlockDetachedResidual(_GivenInit):
    def forward(self, x):
        x = x + self.attn(self.ln_1(x)).detach()
        return x + self.mlp(self.ln_2(x))


class BlockRenamedNorms(torch.nn.Module):
    def __init__(self, config, layer_idx=0):
        super().__init__()
        self.norm1 = torch.nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.attn = CausalSelfAttention(config, layer_idx)
        self.norm2 = torch.nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


# ---- 03.6 correct alternatives
class BlockOkModules(_GivenInit):
    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class BlockOkByHand(_GivenInit):
    def forward(self, x):
        def ln(mod, t):
            var, mean = torch.var_mean(t, -1, keepdim=True, correction=0)
            return (t - mean) / torch.sqrt(var + mod.eps) * mod.weight + mod.bias
        h = x + self.attn(ln(self.ln_1, x))
        m = self.mlp
        return h + F.linear(_gelu(F.linear(ln(self.ln_2, h), m.fc.weight, m.fc.bias)),
                            m.proj.weight, m.proj.bias)


@pytest.mark.parametrize("ex_id, wrong, why", [
    ("03.3", ln_torch_var, "divides by d - 1"),
    ("03.3", ln_std_plus_eps, "inside the square root"),
    ("03.3", ln_no_affine, "scale by weight and shift by bias"),
    ("03.3", ln_fixed_eps, "not a fixed 1e-5"),
    ("03.3", ln_one_pass_variance, "E[x^2] - E[x]^2"),
    ("03.3", ln_over_all_axes, "one mean and variance per position"),
    ("03.3", ln_shift_then_scale, "Scale first, then shift"),
    ("03.3", ln_no_eps, "a constant row has variance 0"),
    ("03.3", ln_eps_no_default, "missing 1 required positional argument: 'eps'"),
    ("03.4", gelu_erf, "That is the exact GELU"),
    ("03.4", gelu_wrong_constant, "sqrt(2 / pi), about 0.798"),
    ("03.4", gelu_no_half, "factor 0.5"),
    ("03.4", gelu_squared, "x ** 3"),
    ("03.4", gelu_quick, "'quick' GELU"),
    ("03.4", gelu_manual_tanh, "NaN or inf on finite inputs"),
    ("03.4", gelu_relu, "ReLU is not GELU"),
    ("03.4", gelu_float_constant_tensor, "dtype"),
    ("03.4", gelu_forgot_x, "the result differs"),
    ("03.5", mlp_exact_gelu, "not the exact erf GELU"),
    ("03.5", mlp_relu, "not ReLU"),
    ("03.5", mlp_not_transposed, "cannot be multiplied"),
    ("03.5", mlp_no_activation, "collapse into one"),
    ("03.5", mlp_gelu_on_output, "not after the output projection"),
    ("03.5", mlp_forgot_fc_bias, "Add fc_bias"),
    ("03.5", mlp_with_residual, "don't add x here"),
    ("03.5", mlp_gelu_first, "then GELU"),
    ("03.6", BlockPostNorm, "post-norm"),
    ("03.6", BlockForgetsAttentionResidual, "not x = attn(...)"),
    ("03.6", BlockForgetsMlpResidual, "return x + mlp(ln_2(x))"),
    ("03.6", BlockNormalisesTheSum, "is not normalised"),
    ("03.6", BlockAddsToTheNormed, "*un-normalised*"),
    ("03.6", BlockParallelBranches, "*after* the attention was added"),
    ("03.6", BlockOneNorm, "not ln_1"),
    ("03.6", BlockDefaultEps, "each norm's own eps"),
    ("03.6", BlockExactGelu, "the output of forward"),
    ("03.6", BlockDetachedResidual, "gradient"),
    ("03.6", BlockRenamedNorms, "do not have the expected names"),
])
def test_known_wrong_answer_is_rejected_with_a_specific_message(ex_id, wrong, why):
    result = _verdict(ex_id, wrong)
    assert result.status == "failed", f"{wrong.__name__} passed {ex_id}"
    assert why in result.message, result.message


@pytest.mark.parametrize("ex_id", ["03.3", "03.4", "03.5", "03.6"])
def test_reference_is_accepted(ex_id):
    assert _verdict(ex_id, get_exercise(ex_id).reference).passed


@pytest.mark.parametrize("ex_id, right", [
    ("03.3", ln_ok_rsqrt), ("03.3", ln_ok_torch_module), ("03.4", gelu_ok_sigmoid_identity),
    ("03.4", gelu_ok_torch), ("03.5", mlp_ok_linear), ("03.5", mlp_ok_einsum),
    ("03.6", BlockOkModules), ("03.6", BlockOkByHand), ("03.6", gpt.Block)])
def test_other_correct_answers_are_accepted_too(ex_id, right):
    result = _verdict(ex_id, right)
    assert result.passed, result.message


def _cases(ex_id) -> list[Case]:
    ex = get_exercise(ex_id)
    return list(ex.cases(torch.Generator().manual_seed(ex.seed)))


def test_the_block_cases_reach_unusual_sizes():
    configs = [c.args[0] for c in _cases("03.6")]
    assert 27 in {c.d_model for c in configs} and {1, 16} <= {c.num_heads for c in configs}
    assert {c.layer_norm_eps for c in configs} >= {1e-5, 0.1}


@pytest.mark.parametrize("ex_id", ["03.3", "03.4", "03.5", "03.6"])
def test_every_case_says_what_it_is_and_what_it_catches(ex_id):
    for case in _cases(ex_id):
        assert case.label and case.catches, case


@pytest.mark.parametrize("ex_id", ["03.3", "03.4", "03.5", "03.6"])
def test_every_mistake_runs_on_every_case_and_gets_its_own_hint(ex_id):
    ex = get_exercise(ex_id)
    for wrong, hint in ex.mistakes:
        for case in _cases(ex_id):
            if ex_id == "03.6":  # a class: build it, run forward
                wrong(*case.args, **case.kwargs)(*case.inputs)
            else:
                wrong(*case.args, **case.kwargs)
        result = run_exercise(ex, wrong)
        assert result.status == "failed", wrong
        assert hint in result.message, (wrong, result.message)


# ---- 03.9 the GPT forward pass: learner-style wrong answers
def _run_blocks(model, x):
    for block in model.blocks:
        x = block(x)
    return x


def gpt_without_positions(model, input_ids, past_length=0):
    x = _run_blocks(model, model.token_embedding(input_ids))
    return model.ln_f(x) @ model.token_embedding.weight.T


def gpt_positions_from_zero(model, input_ids, past_length=0):
    pos = torch.arange(input_ids.shape[1])
    x = _run_blocks(model, model.token_embedding(input_ids) + model.position_embedding(pos))
    return model.ln_f(x) @ model.token_embedding.weight.T


def gpt_positions_from_one(model, input_ids, past_length=0):
    pos = torch.arange(past_length + 1, past_length + 1 + input_ids.shape[1])
    x = _run_blocks(model, model.token_embedding(input_ids) + model.position_embedding(pos))
    return model.ln_f(x) @ model.token_embedding.weight.T


def gpt_without_final_norm(model, input_ids, past_length=0):
    pos = torch.arange(past_length, past_length + input_ids.shape[1])
    x = _run_blocks(model, model.token_embedding(input_ids) + model.position_embedding(pos))
    return x @ model.token_embedding.weight.T


def gpt_scaled_embeddings(model, input_ids, past_length=0):
    pos = torch.arange(past_length, past_length + input_ids.shape[1])
    x = model.token_embedding(input_ids) * model.config.d_model ** 0.5
    x = _run_blocks(model, x + model.position_embedding(pos))
    return model.ln_f(x) @ model.token_embedding.weight.T


def gpt_last_block_only(model, input_ids, past_length=0):
    pos = torch.arange(past_length, past_length + input_ids.shape[1])
    x = model.token_embedding(input_ids) + model.position_embedding(pos)
    return model.ln_f(model.blocks[-1](x)) @ model.token_embedding.weight.T


def gpt_softmax(model, input_ids, past_length=0):
    pos = torch.arange(past_length, past_length + input_ids.shape[1])
    x = _run_blocks(model, model.token_embedding(input_ids) + model.position_embedding(pos))
    return torch.softmax(model.ln_f(x) @ model.token_embedding.weight.T, dim=-1)


def gpt_norm_in_every_block(model, input_ids, past_length=0):
    pos = torch.arange(past_length, past_length + input_ids.shape[1])
    x = model.token_embedding(input_ids) + model.position_embedding(pos)
    for block in model.blocks:
        x = model.ln_f(block(x))
    return x @ model.token_embedding.weight.T


def gpt_ok_modules(model, input_ids, past_length=0):
    pos = torch.arange(past_length, past_length + input_ids.shape[1])
    x = _run_blocks(model, model.token_embedding(input_ids) + model.position_embedding(pos))
    return F.linear(model.ln_f(x), model.token_embedding.weight)


def gpt_ok_course_gpt(model, input_ids, past_length=0):
    from course_utils.gpt import make_position_ids
    return model(input_ids, position_ids=make_position_ids(input_ids, past_length))


@pytest.mark.parametrize("wrong, why", [
    (gpt_without_positions, "Add the position embedding"),
    (gpt_positions_from_zero, "not at 0"),
    (gpt_positions_from_one, "counted from 0"),
    (gpt_without_final_norm, "final layer norm"),
    (gpt_scaled_embeddings, "sqrt(d_model)"),
    (gpt_last_block_only, "the result differs"),
    (gpt_softmax, "not probabilities"),
    (gpt_norm_in_every_block, "the result differs"),
])
def test_gpt_forward_wrong_answers_are_rejected(wrong, why):
    result = _verdict("03.9", wrong)
    assert result.status == "failed", wrong.__name__
    assert why in result.message, result.message


@pytest.mark.parametrize("right", [gpt_ok_modules, gpt_ok_course_gpt])
def test_gpt_forward_correct_answers_are_accepted(right):
    assert _verdict("03.9", right).passed
    assert _verdict("03.9", get_exercise("03.9").reference).passed


def test_gpt_forward_cases_and_mistakes_meet_the_standard():
    ex = get_exercise("03.9")
    cases = _cases("03.9")
    assert all(c.label and c.catches for c in cases)
    for wrong, hint in ex.mistakes:
        for case in cases:
            wrong(*case.args, **case.kwargs)
        result = run_exercise(ex, wrong)
        assert result.status == "failed" and hint in result.message, result.message
