"""Lesson 03 exercises on GPT's block: layer norm (03.3), GELU (03.4), the MLP (03.5), the
pre-norm block with both residuals (03.6), and the whole forward pass (03.9).

The block is graded as an ``nn.Module`` class (:class:`ModuleExercise`): built from configs of
unusual sizes, loaded with the reference's weights by name (``ln_1``, ``attn``, ``ln_2``,
``mlp.fc``, ``mlp.proj``), its outputs and every parameter's gradient compared.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from course_utils import gpt, gpt_parts
from course_utils.grading.core import Case, Exercise, register
from course_utils.grading.modules import ModuleCase, ModuleExercise


def _randn(rng, *shape, dtype=torch.float32):
    return torch.randn(*shape, generator=rng, dtype=dtype)


def _nan_property(what: str):
    def prop(got, case: Case):
        if isinstance(got, torch.Tensor) and got.is_floating_point() \
                and not bool(got.isfinite().all()) and all(
                    bool(a.isfinite().all()) for a in case.args if isinstance(a, torch.Tensor)):
            return f"Your {what} gives NaN or inf on finite inputs. " + {
                "layer norm": "Is eps added inside the square root (a constant row has "
                              "variance 0)? Is the variance computed around the mean, "
                              "((x - mean) ** 2).mean(), not as E[x^2] - E[x]^2?",
                "GELU": "tanh written with exp() overflows for large inputs: use torch.tanh."}[
                    what]
        return None
    return prop


# --------------------------------------------------------------------------- 03.3 layer norm


def _ln_cases(rng: torch.Generator):
    def affine(d, dtype=torch.float32):
        return 1 + 0.5 * _randn(rng, d, dtype=dtype), 0.5 * _randn(rng, d, dtype=dtype)

    d = 8
    yield Case((_randn(rng, 2, 5, d), torch.ones(d), torch.zeros(d)), {"eps": 1e-5},
               label="(2, 5, 8), weight 1, bias 0",
               catches="the unbiased variance (divides by d - 1); normalising the wrong axis")
    yield Case((_randn(rng, 2, 5, d), *affine(d)), {"eps": 1e-5},
               label="random weight and bias", catches="affine parameters ignored; the bias "
                                                       "added before the scale")
    yield Case((_randn(rng, 4, 3, 30), *affine(30)), {"eps": 1e-5},
               label="(4, 3, 30): batch, seq and width all different",
               catches="statistics over the batch or sequence axis")
    yield Case((0.3 * _randn(rng, 3, 16), *affine(16)), {"eps": 0.1},
               label="eps = 0.1 with a small variance",
               catches="eps hard-coded to 1e-5; eps added outside the square root (std + eps)")
    yield Case((torch.full((2, 6), 7.0), *affine(6)), {"eps": 1e-5},
               label="constant rows (variance 0)", catches="no eps: 0 / 0 = NaN")
    yield Case((1e8 + _randn(rng, 3, 64, dtype=torch.float64), *affine(64, torch.float64)),
               {"eps": 1e-5}, label="inputs near 100,000,000 (float64)",
               catches="the variance as E[x^2] - E[x]^2 (cancellation, even negative)")
    yield Case((_randn(rng, 3, 32) * torch.tensor([[1e-3], [1.0], [1e3]]), *affine(32)),
               {"eps": 1e-12}, label="rows of very different scales, eps = 1e-12",
               catches="one mean or variance for all rows")
    yield Case((_randn(rng, 5, 1), *affine(1)), {"eps": 1e-5},
               label="width 1: every output is the bias",
               catches="the unbiased variance (0 / 0 with d - 1 = 0)")
    yield Case((_randn(rng, 16), *affine(16)), {"eps": 1e-5},
               label="a 1-D vector", catches="code that assumes a batch axis")
    yield Case((_randn(rng, 2, 4, 12, dtype=torch.float64), *affine(12, torch.float64)),
               {"eps": 1e-5}, label="float64", catches="casting to float32")
    yield Case((_randn(rng, 2, 3, 160), *affine(160)), label="eps left at its default (1e-5)",
               catches="no default eps=1e-5")
    yield Case((3 * _randn(rng, 1, 7, 768) + 2, *affine(768)), {"eps": 1e-5},
               label="GPT-2's width 768", catches="any of the above at scale")


def _ln(mean_of_sq=False, unbiased=False, eps_outside=False, eps=None, affine=True,
        bias_first=False, dim=-1):
    def layer_norm(x, weight, bias, eps_=1e-5, **kw):
        e = kw.get("eps", eps_) if eps is None else eps
        mean = x.mean(dim=dim, keepdim=True)
        if mean_of_sq:
            var = (x * x).mean(dim=dim, keepdim=True) - mean * mean
        else:
            var = x.var(dim=dim, keepdim=True, unbiased=unbiased)
        xhat = (x - mean) / (var.sqrt() + e if eps_outside else (var + e).sqrt())
        if not affine:
            return xhat
        return weight * (xhat + bias) if bias_first else xhat * weight + bias
    return layer_norm


def _ln_all_axes(x, weight, bias, eps=1e-5):
    mean = x.mean()
    return (x - mean) / torch.sqrt(((x - mean) ** 2).mean() + eps) * weight + bias


register(Exercise(
    id="03.3", title="layer normalisation", reference=gpt_parts.layer_norm, cases=_ln_cases,
    properties=[_nan_property("layer norm")],
    hint="mean = x.mean(-1, keepdim=True); var = ((x - mean) ** 2).mean(-1, keepdim=True); "
         "return (x - mean) / torch.sqrt(var + eps) * weight + bias.",
    mistakes=[
        (_ln(unbiased=True), "torch.var divides by d - 1 by default; layer norm uses the "
                             "biased variance (divide by d): var(..., unbiased=False) or "
                             "((x - mean) ** 2).mean(-1)."),
        (_ln(eps_outside=True), "eps goes inside the square root: sqrt(var + eps), not "
                                "sqrt(var) + eps."),
        (_ln(eps=1e-5), "Use the eps you are given (GPT-2 and BERT use different ones), not "
                        "a fixed 1e-5."),
        (_ln(eps=0.0), "Add eps to the variance: a constant row has variance 0."),
        (_ln(affine=False), "After normalising, scale by weight and shift by bias (the "
                            "learned affine parameters)."),
        (_ln(bias_first=True), "Scale first, then shift: xhat * weight + bias."),
        (_ln(dim=0), "Normalise each vector over its features, the last axis (dim=-1), not "
                     "over the batch."),
        (_ln_all_axes, "Normalise each vector over its own features (the last axis): one "
                       "mean and variance per position, not one for the whole tensor."),
        (_ln(mean_of_sq=True), "E[x^2] - E[x]^2 loses all precision when the values are far "
                               "from 0 (10^8 here): compute the variance around the mean, "
                               "((x - mean) ** 2).mean(-1)."),
    ],
))

# --------------------------------------------------------------------------- 03.4 GELU


def _gelu_cases(rng: torch.Generator):
    yield Case((torch.linspace(-6, 6, 1201),), label="-6 to 6 in steps of 0.01",
               catches="the exact (erf) GELU; sqrt(2 * pi); no 0.5; x^2 instead of x^3; "
                       "x * sigmoid(1.702 x)")
    yield Case((torch.tensor([-1e3, -50.0, -20.0, 20.0, 50.0, 1e3]),),
               label="large inputs (the tanh saturates)",
               catches="tanh written with exp(), which overflows to inf / inf = NaN")
    yield Case((torch.tensor([0.0, 1e-8, -1e-8, 1e-30]),), label="0 and tiny inputs",
               catches="a division by x")
    yield Case((3 * _randn(rng, 2, 3, 16),), label="(2, 3, 16) activations",
               catches="code that assumes 1-D input")
    yield Case((torch.tensor(1.5),), label="a 0-d tensor", catches="indexing or reshaping")
    yield Case((torch.linspace(-5, 5, 101, dtype=torch.float64),), label="float64",
               catches="a float32 constant tensor that changes the dtype")
    yield Case((_randn(rng, 4, 3072),), label="GPT-2's MLP width (3072)",
               catches="a Python loop over the elements")


_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


def _gelu(c=_SQRT_2_OVER_PI, half=0.5, power=3, via_exp=False):
    def gelu(x):
        z = c * (x + 0.044715 * x ** power)
        t = (torch.exp(2 * z) - 1) / (torch.exp(2 * z) + 1) if via_exp else torch.tanh(z)
        return half * x * (1 + t)
    return gelu


def _gelu_sigmoid(x):
    return x * torch.sigmoid(1.702 * x)


register(Exercise(
    id="03.4", title="GELU, GPT-2's tanh form", reference=gpt_parts.gelu_tanh,
    cases=_gelu_cases, properties=[_nan_property("GELU")],
    hint="0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))",
    mistakes=[
        (F.gelu, "That is the exact GELU, x * Phi(x) with erf; GPT-2 uses the tanh "
                 "approximation, which differs by up to 5e-4 and changes the logits: "
                 "0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."),
        (_gelu(c=math.sqrt(2 * math.pi)), "The constant is sqrt(2 / pi), about 0.798, not "
                                          "sqrt(2 * pi)."),
        (_gelu(half=1.0), "You left out the factor 0.5: 0.5 * x * (1 + tanh(...))."),
        (_gelu(power=2), "The cubic term is 0.044715 * x ** 3 (x cubed, so the curve stays "
                         "odd-symmetric around its tanh)."),
        (_gelu_sigmoid, "x * sigmoid(1.702 x) is a different approximation (the 'quick' "
                        "GELU); GPT-2 uses the tanh form."),
        (F.relu, "ReLU is not GELU: GELU is smooth and slightly negative for negative x."),
        (_gelu(via_exp=True), "tanh written with exp() overflows for large inputs (inf / "
                              "inf = NaN): use torch.tanh."),
    ],
))

# --------------------------------------------------------------------------- 03.5 MLP


def _mlp_cases(rng: torch.Generator):
    def weights(d, d_ff, scale=0.3, dtype=torch.float32):
        return (scale * _randn(rng, d_ff, d, dtype=dtype), 0.5 * _randn(rng, d_ff, dtype=dtype),
                scale * _randn(rng, d, d_ff, dtype=dtype), 0.5 * _randn(rng, d, dtype=dtype))

    for shape, d_ff, label, catches in (
        ((2, 5, 8), 32, "d_model 8, d_ff 32 (4x, as GPT-2)",
         "the exact GELU or ReLU; no activation; biases dropped"),
        ((3, 4, 12), 20, "d_model 12, d_ff 20 (not 4x)", "d_ff assumed to be 4 * d_model"),
        ((2, 3, 16), 16, "d_ff = d_model (square weights)",
         "weights not transposed (x @ W instead of x @ W.T): only square ones run"),
        ((1, 1, 10), 40, "one token", "code that assumes several positions"),
        ((6, 24), 96, "2-D input (seq, d_model)", "code that assumes a batch axis"),
    ):
        yield Case((_randn(rng, *shape), *weights(shape[-1], d_ff)), label=label,
                   catches=catches)
    yield Case((4 * _randn(rng, 2, 3, 8), *weights(8, 32, scale=1.0)),
               label="large pre-activations", catches="an activation that is wrong far from 0")
    yield Case((_randn(rng, 2, 3, 8, dtype=torch.float64), *weights(8, 32, dtype=torch.float64)),
               label="float64", catches="casting to float32")


def _mlp(act=gpt_parts.gelu_tanh, fc_bias=True, act_after_proj=False, act_first=False,
         residual=False):
    def mlp(x, fc_weight, fc_b, proj_weight, proj_b):
        h = act(x) if act_first else x
        h = h @ fc_weight.T + (fc_b if fc_bias else 0)
        out = (h if act_first else act(h)) @ proj_weight.T + proj_b
        out = act(out) if act_after_proj else out
        return x + out if residual else out
    return mlp


register(Exercise(
    id="03.5", title="the block's MLP", reference=gpt_parts.mlp_forward, cases=_mlp_cases,
    hint="h = gelu_tanh(x @ fc_weight.T + fc_bias); return h @ proj_weight.T + proj_bias "
         "(nn.Linear stores weights as (out_features, in_features)).",
    mistakes=[
        (_mlp(act=F.gelu), "Use GPT-2's tanh GELU (your 03.4), not the exact erf GELU: the "
                           "outputs differ."),
        (_mlp(act=F.relu), "GPT-2's MLP uses GELU (tanh form), not ReLU."),
        (_mlp(act=lambda h: h), "Without an activation the two linear layers collapse into "
                                "one: apply GELU between them."),
        (_mlp(fc_bias=False), "Add fc_bias after the first linear layer."),
        (_mlp(act_after_proj=True), "The activation goes between the two linear layers only, "
                                    "not after the output projection."),
        (_mlp(act_first=True), "First the linear layer d_model -> d_ff, then GELU: "
                               "gelu(x @ fc_weight.T + fc_bias)."),
        (_mlp(residual=True), "The MLP returns only its own output; the block adds the "
                              "residual (x + mlp(ln_2(x))), so don't add x here."),
    ],
))

# --------------------------------------------------------------------------- 03.6 block


class _SameParameters:
    """A module that equals its copy when their parameters are equal, so the grader can tell
    whether the learner's function changed the module it was given."""

    __hash__ = torch.nn.Module.__hash__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, torch.nn.Module):
            return NotImplemented
        mine, theirs = self.state_dict(), other.state_dict()
        return mine.keys() == theirs.keys() and all(
            mine[k].shape == theirs[k].shape and torch.equal(mine[k], theirs[k]) for k in mine)


class _GradedGPT(_SameParameters, gpt.GPT):
    """A :class:`course_utils.gpt.GPT` the grader can compare with its copy."""


def _block_cases(rng: torch.Generator):
    for (d, h, eps), shape, label, catches in (
        ((8, 2, 1e-5), (2, 5), "d_model 8, 2 heads, 5 tokens",
         "post-norm; a missing residual; the norm after the residual"),
        ((27, 3, 1e-5), (3, 7), "odd width 27, 3 heads", "any of the above"),
        ((16, 1, 1e-5), (1, 6), "one head", "any of the above"),
        ((64, 16, 1e-5), (2, 4), "many heads (16 of width 4)", "any of the above"),
        ((12, 4, 0.1), (2, 5), "layer_norm_eps = 0.1",
         "eps hard-coded to 1e-5 instead of self.ln_1.eps / self.ln_2.eps"),
        ((8, 2, 1e-5), (1, 1), "a single token", "code that assumes several positions"),
        ((20, 5, 1e-6), (2, 9), "20 wide, 5 heads, eps 1e-6",
         "ln_1 used for both sub-layers (no gradient reaches ln_2); the MLP reading x "
         "instead of the updated stream"),
    ):
        config = gpt.GPTConfig(vocab_size=8, max_seq_len=64, d_model=d, num_heads=h,
                               num_layers=1, layer_norm_eps=eps)
        x = 2 * _randn(rng, *shape, d) + 1
        yield ModuleCase((config, 0), inputs=(x,), label=label, catches=catches)


def _block_ln(block_ln, x, eps=None):
    return F.layer_norm(x, block_ln.normalized_shape, block_ln.weight, block_ln.bias,
                        block_ln.eps if eps is None else eps)


def _wrong_block(kind: str):
    class WrongBlock(gpt_parts.PreNormBlock):
        def forward(self, x):
            attn, mlp = self.attn, self.mlp
            eps = 1e-5 if kind == "eps" else None
            ln_1 = lambda t: _block_ln(self.ln_1, t, eps)  # noqa: E731
            ln_2 = lambda t: _block_ln(self.ln_1 if kind == "ln_1 twice" else self.ln_2,  # noqa: E731
                                       t, eps)
            if kind == "post-norm":
                x = ln_1(x + attn(x))
                return ln_2(x + mlp(x))
            if kind == "no attention residual":
                x = attn(ln_1(x))
                return x + mlp(ln_2(x))
            if kind == "no MLP residual":
                x = x + attn(ln_1(x))
                return mlp(ln_2(x))
            if kind == "norm after residual":
                x = ln_1(x + attn(ln_1(x)))
                return ln_2(x + mlp(ln_2(x)))
            if kind == "residual from the normed":
                h = ln_1(x)
                x = h + attn(h)
                h = ln_2(x)
                return h + mlp(h)
            if kind == "parallel":
                return x + attn(ln_1(x)) + mlp(ln_2(x))
            x = x + attn(ln_1(x))  # "eps", "ln_1 twice"
            return x + mlp(ln_2(x))
    WrongBlock.__name__ = WrongBlock.__qualname__ = f"Block_{kind.replace(' ', '_')}"
    return WrongBlock


register(ModuleExercise(
    id="03.6", title="the pre-norm block with both residuals (a class)",
    reference=gpt_parts.PreNormBlock, cases=_block_cases,
    hint="x = x + self.attn(layer_norm(x, self.ln_1.weight, self.ln_1.bias, self.ln_1.eps)); "
         "h = layer_norm(x, ...self.ln_2...); return x + mlp_forward(h, self.mlp.fc.weight, "
         "self.mlp.fc.bias, self.mlp.proj.weight, self.mlp.proj.bias).",
    mistakes=[
        (_wrong_block("post-norm"), "That is post-norm (BERT, the original Transformer): "
                                    "GPT-2 normalises each sub-layer's *input*, x + attn(ln_1(x)), "
                                    "and never the residual stream itself."),
        (_wrong_block("no attention residual"), "Add the attention's output to the stream: "
                                                "x = x + attn(ln_1(x)), not x = attn(...)."),
        (_wrong_block("no MLP residual"), "Add the MLP's output to the stream too: "
                                          "return x + mlp(ln_2(x))."),
        (_wrong_block("norm after residual"), "The norm is applied to each sub-layer's input "
                                              "only; the sum x + attn(...) is not normalised."),
        (_wrong_block("residual from the normed"), "The residual adds to the *un-normalised* "
                                                   "stream: x + attn(ln_1(x)), not "
                                                   "ln_1(x) + attn(ln_1(x))."),
        (_wrong_block("parallel"), "The MLP reads the stream *after* the attention was added "
                                   "(x = x + attn(...) first, then ln_2 of that x), not the "
                                   "block's input."),
        (_wrong_block("ln_1 twice"), "The MLP's input is normalised with ln_2 (its own weight, "
                                     "bias and eps), not ln_1."),
        (_wrong_block("eps"), "Use each norm's own eps (self.ln_1.eps, self.ln_2.eps): a "
                              "model's layer_norm_eps is part of its weights' meaning."),
    ],
))

# --------------------------------------------------------------------------- 03.9 GPT forward


def _random_gpt(rng, vocab, max_seq_len, d_model, num_heads, num_layers, dtype=torch.float32):
    config = gpt.GPTConfig(vocab_size=vocab, max_seq_len=max_seq_len, d_model=d_model,
                           num_heads=num_heads, num_layers=num_layers)
    model = _GradedGPT(config).to(dtype).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = _randn(rng, *p.shape, dtype=dtype)
            if "ln" in name and name.endswith("weight"):
                p.copy_(1 + 0.3 * noise)
            elif "ln" in name:
                p.copy_(0.3 * noise)
            elif "embedding" in name:
                p.copy_(noise)
            else:
                p.copy_(noise / math.sqrt(p.shape[-1]))
    return model.requires_grad_(False)


def _gpt_cases(rng: torch.Generator):
    for sizes, (batch, seq), past, label, catches in (
        ((50, 16, 8, 2, 2), (2, 5), 0, "2 layers, width 8, vocabulary 50",
         "no position embedding; no final norm; an untied or transposed head; one block only"),
        ((50, 16, 8, 2, 2), (2, 5), 3, "the same GPT, positions starting at past_length=3",
         "positions that restart at 0 or ignore past_length"),
        ((37, 24, 27, 3, 3), (3, 7), 0, "odd width 27, 3 heads, 3 layers, vocabulary 37",
         "blocks in the wrong order; a norm between blocks"),
        ((20, 8, 16, 1, 1), (1, 8), 0, "one head, one layer, the full context of 8",
         "off-by-one at the end of the position table"),
        ((64, 32, 64, 16, 2), (2, 1), 30, "16 heads; one token after 30 cached",
         "positions counted from 1; a precomputed range"),
        ((30, 16, 12, 4, 2), (2, 6), 0, "width 12, 4 heads",
         "embeddings scaled by sqrt(d_model) (the original Transformer's, not GPT-2's)"),
    ):
        model = _random_gpt(rng, *sizes)
        ids = torch.randint(0, sizes[0], (batch, seq), generator=rng)
        ids[0, 0] = 0  # token id 0 is an ordinary token
        yield Case((model, ids), {"past_length": past}, label=label, catches=catches)
    model = _random_gpt(rng, 40, 16, 8, 2, 2)
    yield Case((model, torch.randint(0, 40, (2, 4), generator=rng)),
               label="past_length left at its default", catches="no default past_length=0")
    model = _random_gpt(rng, 40, 16, 12, 3, 2, dtype=torch.float64)
    yield Case((model, torch.randint(0, 40, (2, 5), generator=rng)), {"past_length": 2},
               label="a float64 GPT", catches="casting to float32")


def _wrong_gpt(kind: str):
    def gpt_forward(model, input_ids, past_length=0):
        if kind == "positions restart":
            past_length = 0
        positions = gpt.make_position_ids(input_ids, past_length + (kind == "from one"))
        positions = positions.clamp(max=model.config.max_seq_len - 1)  # runs on every case
        tok = model.token_embedding(input_ids)
        if kind == "scaled":
            tok = tok * math.sqrt(model.config.d_model)
        x = tok if kind == "no positions" else tok + model.position_embedding(positions)
        blocks = list(model.blocks)
        blocks = blocks[:1] if kind == "first block" else blocks[::-1] if kind == "reversed" \
            else blocks
        for block in blocks:
            x = gpt_parts.block_forward(block, x)
        if kind != "no final norm":
            x = model.ln_f(x)
        logits = x @ model.token_embedding.weight.T
        return logits.softmax(-1) if kind == "probabilities" else logits
    gpt_forward.__name__ = f"gpt_{kind.replace(' ', '_')}"
    return gpt_forward


def _positions_shifted(got, case: Case):
    """Recognise positions off by one on the failing case itself (a learner's one-based
    positions run out of the table on a full context, so they can't match on every case)."""
    model, ids = case.args
    past = case.kwargs.get("past_length", 0)
    if not isinstance(got, torch.Tensor) or past + ids.shape[1] + 1 > model.config.max_seq_len:
        return None
    with torch.no_grad():
        for shift, message in ((1, "Off by one: the first position is past_length, counted "
                                   "from 0."),
                               (-past, "The positions start at past_length "
                                       "(make_position_ids(input_ids, past_length)), not at 0.")):
            if shift and got.shape == (ids.shape[0], ids.shape[1], model.config.vocab_size) \
                    and torch.allclose(got, gpt_parts.gpt_forward(model, ids, past + shift),
                                       atol=1e-4, rtol=1e-4):
                return message
    return None


register(Exercise(
    id="03.9", title="the GPT forward pass", reference=gpt_parts.gpt_forward, cases=_gpt_cases,
    atol=1e-4, rtol=1e-4, properties=[_positions_shifted],
    hint="positions = make_position_ids(input_ids, past_length); x = model.token_embedding("
         "input_ids) + model.position_embedding(positions); for block in model.blocks: x = "
         "block_forward(block, x); x = layer_norm(x, model.ln_f.weight, model.ln_f.bias, "
         "model.ln_f.eps); return x @ model.token_embedding.weight.T.",
    mistakes=[
        (_wrong_gpt("no positions"), "Add the position embedding: attention by itself does "
                                     "not know the order of the tokens."),
        (_wrong_gpt("positions restart"), "The positions start at past_length "
                                          "(make_position_ids(input_ids, past_length)), not "
                                          "at 0."),
        (_wrong_gpt("from one"), "Off by one: the first position is past_length, counted "
                                 "from 0."),
        (_wrong_gpt("scaled"), "GPT-2 adds the embeddings as they are; scaling the token "
                               "embedding by sqrt(d_model) is the original Transformer's."),
        (_wrong_gpt("first block"), "Run every block, in order: for block in model.blocks."),
        (_wrong_gpt("reversed"), "The blocks run in order, model.blocks[0] first."),
        (_wrong_gpt("no final norm"), "Apply the final layer norm (model.ln_f) before the "
                                      "output head."),
        (_wrong_gpt("probabilities"), "Return the logits, not probabilities: the softmax "
                                      "comes in the loss or in decoding."),
    ],
))
