"""GPT's block, written out piece by piece as the learner writes it in lesson 03.

:mod:`course_utils.gpt` builds the same maths from ``torch.nn`` layers; these functions spell
each piece out, so the lesson's exercises have a reference and ``tests/test_gpt_parts.py`` can
prove each one equal to ``torch`` (``nn.LayerNorm``, ``F.gelu(approximate="tanh")``) and to
:class:`course_utils.gpt.MLP` / :class:`course_utils.gpt.Block`.
"""

from __future__ import annotations

import math

import torch

from course_utils import gpt


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
               eps: float = 1e-5) -> torch.Tensor:
    """Normalise the last axis to mean 0, variance 1; then scale by ``weight``, add ``bias``.

    The variance is the biased one (divide by ``d``, as ``nn.LayerNorm``), computed around the
    mean (``((x - mean) ** 2).mean()``, which stays exact for inputs far from 0), and ``eps`` is
    added *inside* the square root.
    """
    mean = x.mean(dim=-1, keepdim=True)
    centred = x - mean
    var = (centred * centred).mean(dim=-1, keepdim=True)
    return centred / torch.sqrt(var + eps) * weight + bias


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's GELU: ``0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))``."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def mlp_forward(x: torch.Tensor, fc_weight: torch.Tensor, fc_bias: torch.Tensor,
                proj_weight: torch.Tensor, proj_bias: torch.Tensor) -> torch.Tensor:
    """The block's MLP: ``d_model -> d_ff`` linear, GELU (tanh), ``d_ff -> d_model`` linear.

    Weights in ``nn.Linear``'s layout ``(out_features, in_features)``, so ``x @ W.T + b``.
    """
    return gelu_tanh(x @ fc_weight.T + fc_bias) @ proj_weight.T + proj_bias


def block_forward(block: gpt.Block, x: torch.Tensor) -> torch.Tensor:
    """One pre-norm block with both residuals, from ``block``'s parameters.

    ``x = x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``: each sub-layer reads a normalised copy
    of the residual stream and adds its output back to the stream, which is never normalised.
    """
    ln_1, ln_2, mlp = block.ln_1, block.ln_2, block.mlp
    x = x + block.attn(layer_norm(x, ln_1.weight, ln_1.bias, ln_1.eps))
    h = layer_norm(x, ln_2.weight, ln_2.bias, ln_2.eps)
    return x + mlp_forward(h, mlp.fc.weight, mlp.fc.bias, mlp.proj.weight, mlp.proj.bias)


def gpt_forward(model: gpt.GPT, input_ids: torch.Tensor, past_length: int = 0) -> torch.Tensor:
    """Logits ``(batch, seq, vocab)`` of a :class:`course_utils.gpt.GPT`, computed piece by piece.

    Token embedding + learned position embedding (positions start at ``past_length``), every
    block in order (:func:`block_forward`), the final layer norm, and the output head tied to
    the token embedding (``x @ token_embedding.weight.T``).
    """
    limit = model.position_embedding.num_embeddings
    if past_length + input_ids.shape[-1] > limit:
        raise ValueError(f"{past_length} + {input_ids.shape[-1]} positions exceed the "
                         f"{limit} the model has position embeddings for (its training "
                         "context); shorten the input")
    positions = gpt.make_position_ids(input_ids, past_length)
    x = model.token_embedding(input_ids) + model.position_embedding(positions)
    for block in model.blocks:
        x = block_forward(block, x)
    ln_f = model.ln_f
    return layer_norm(x, ln_f.weight, ln_f.bias, ln_f.eps) @ model.token_embedding.weight.T


class PreNormBlock(gpt.Block):
    """:class:`course_utils.gpt.Block`'s parameters (``ln_1``, ``attn``, ``ln_2``, ``mlp.fc``,
    ``mlp.proj``) with the forward pass written out: the reference of lesson 03's block class.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        x = x + self.attn(layer_norm(x, self.ln_1.weight, self.ln_1.bias, self.ln_1.eps))
        h = layer_norm(x, self.ln_2.weight, self.ln_2.bias, self.ln_2.eps)
        fc, proj = self.mlp.fc, self.mlp.proj
        return x + mlp_forward(h, fc.weight, fc.bias, proj.weight, proj.bias)
