# %% [markdown]
# # 01 · Attention
#
# Every large language model you will meet in this course is a stack of one idea:
# **attention**. A token looks at the other tokens, decides how much each one matters to it,
# and takes a weighted average of what they carry. This lesson builds that idea from a dot
# product up, by hand, and checks it against PyTorch's own implementation.
#
# **You will:** compute similarity with dot products, write a numerically stable softmax,
# see why attention divides by $\sqrt{d_k}$, write scaled dot-product attention, and build the
# masks that stop a token from seeing the future or the padding, as the additive bias of a
# padded batch.
#
# We start from **the cheat-sheet version**: the few lines of attention that circulate in LLM
# cheat-sheets and tutorials, usually exactly these:
#
# ```python
# def attention(Q, K, V, mask=None):
#     scores = torch.matmul(Q, K.transpose(-2, -1)) / math.sqrt(Q.size(-1))
#     if mask is not None:
#         scores = scores.masked_fill(mask == 0, -1e9)
#     weights = F.softmax(scores, dim=-1)
#     return torch.matmul(weights, V), weights
# ```
#
# Every line of it gets a section below: what it computes, why it is there, and where it goes
# wrong (the softmax you write yourself, the $\sqrt{d_k}$, the mask's convention and its -1e9).
#
# Each exercise is followed by a **check cell**: run it and it tells you what is right or
# wrong. Stuck? `hint("01.2")` gives a hint and `solution("01.2")` shows the reference.

# %%
from course_utils import check, hint, progress, solution, start_lesson

start_lesson(seed=0)

import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

torch.set_printoptions(precision=3, sci_mode=False)

# %% [markdown]
# ## 1. Why attention?
#
# A recurrent network reads a sentence one token at a time: to know about token 50 it must
# first have processed tokens 1 to 49, one step after another, and everything it remembers
# about token 1 has been squeezed through 49 updates of one hidden vector.
#
# Attention lets **every token look at every other token directly, all at once**. For a
# sequence of $n$ tokens it computes an $n \times n$ table of "how relevant is token $j$ to
# token $i$", which is one matrix multiplication: parallel over the whole sequence, and the
# distance between two tokens no longer matters. The price is that table: it grows with $n^2$.
#
# ## 2. Similarity as a dot product
#
# Each token is a vector. Two vectors that point the same way have a large dot product;
# unrelated ones are close to 0. Below, words from the same "meaning group" (animals,
# places, ...) share a direction, so their dot products are large.

# %%
from course_utils.widgets.attention_explorer import toy_embeddings

tokens = "the cat sat on the mat because it was tired".split()
x = toy_embeddings(tokens, d_model=16)
similarity = x @ x.T  # (10, 16) @ (16, 10) -> (10, 10): every token with every token
print("embeddings:", tuple(x.shape), "similarity table:", tuple(similarity.shape))

fig, ax = plt.subplots(figsize=(5.5, 4.5))
im = ax.imshow(similarity, cmap="coolwarm")
ax.set_xticks(range(len(tokens)), tokens, rotation=60, ha="right")
ax.set_yticks(range(len(tokens)), tokens)
ax.set_title("dot products x @ x.T")
fig.colorbar(im)
plt.show()

# %% [markdown]
# "it" and "cat" score high together: they share the *animal* direction. In a trained model
# the vectors are learned, and instead of comparing $x$ with itself the model compares two
# learned projections of it, the **queries** $Q = xW_Q$ ("what am I looking for?") and the
# **keys** $K = xW_K$ ("what do I contain?"), and averages a third one, the **values**
# $V = xW_V$ ("what do I pass on?"). Lesson 02 adds those projections.
#
# ## 3. From scores to weights: softmax
#
# Scores can be any real numbers. To average the values we need **weights**: non-negative,
# summing to 1. The softmax does that: $\mathrm{softmax}(s)_j = e^{s_j} / \sum_k e^{s_k}$.
#
# Written naively, it breaks on large scores:

# %%
scores = torch.tensor([1000.0, 999.0, 998.0])
naive = scores.exp() / scores.exp().sum()
print("exp(scores) =", scores.exp(), "-> naive softmax =", naive)

# %% [markdown]
# `exp(1000)` overflows to `inf`, and `inf / inf` is `NaN`. The fix uses an identity:
# subtracting the same constant $c$ from every score changes nothing,
# $e^{s_j - c} / \sum_k e^{s_k - c} = e^{s_j} / \sum_k e^{s_k}$. Choose $c = \max_k s_k$ and
# every exponent is $\le 0$, so nothing overflows and the largest term is exactly 1.
#
# ### Exercise 01.1: a numerically stable softmax
#
# Write `softmax(x, dim=-1)` that normalises along `dim` for a tensor of any shape, without
# overflow, and without changing `x` in place. Use `x.amax(dim=dim, keepdim=True)`.

# %%
def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    ### BEGIN SOLUTION
    shifted = x - x.amax(dim=dim, keepdim=True)
    exp = shifted.exp()
    return exp / exp.sum(dim=dim, keepdim=True)
    ### END SOLUTION


# %%
check("01.1", softmax)

# %% [markdown]
# From here on the lesson uses the reference implementation from `course_utils`, so every
# cell below runs whether or not your exercise passed yet.

# %%
from course_utils.attention import softmax

print(softmax(scores), "matches torch.softmax:",
      torch.allclose(softmax(scores), torch.softmax(scores, dim=-1)))

# %% [markdown]
# ## 4. Why divide by $\sqrt{d_k}$?
#
# If the entries of $q$ and $k$ are independent with mean 0 and variance 1, their dot product
# $q \cdot k = \sum_{i=1}^{d_k} q_i k_i$ is a sum of $d_k$ terms of variance 1: its
# **variance is $d_k$**. Wider heads give larger scores, and a softmax of large scores puts
# almost all the weight on one key (it *saturates*), where its gradient is almost 0 and
# learning stalls. Dividing by $\sqrt{d_k}$ brings the variance back to 1. Let us measure it.

# %%
dims = [4, 16, 64, 256, 1024]
n_keys = 16
raw_var, scaled_var, raw_peak, scaled_peak = [], [], [], []
for d_k in dims:
    q = torch.randn(2000, 1, d_k)
    k = torch.randn(2000, n_keys, d_k)
    s = (q @ k.transpose(-2, -1)).squeeze(1)  # (2000, n_keys) scores
    raw_var.append(s.var().item())
    scaled_var.append((s / math.sqrt(d_k)).var().item())
    raw_peak.append(softmax(s).amax(-1).mean().item())
    scaled_peak.append(softmax(s / math.sqrt(d_k)).amax(-1).mean().item())

print(f"{'d_k':>6} {'var(q.k)':>10} {'var(q.k/sqrt(d_k))':>19} {'max weight raw':>15} "
      f"{'max weight scaled':>18}")
for row in zip(dims, raw_var, scaled_var, raw_peak, scaled_peak, strict=True):
    print(f"{row[0]:>6} {row[1]:>10.1f} {row[2]:>19.2f} {row[3]:>15.2f} {row[4]:>18.2f}")

fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8))
a1.loglog(dims, raw_var, "o-", label="q·k")
a1.loglog(dims, scaled_var, "o-", label="q·k / sqrt(d_k)")
a1.set_xlabel("d_k")
a1.set_ylabel("variance of the scores")
a1.legend()
a2.semilogx(dims, raw_peak, "o-", label="unscaled")
a2.semilogx(dims, scaled_peak, "o-", label="scaled")
a2.axhline(1 / n_keys, ls=":", c="gray", label=f"uniform (1/{n_keys})")
a2.set_xlabel("d_k")
a2.set_ylabel("mean of the largest weight")
a2.set_title(f"softmax over {n_keys} keys")
a2.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# The variance of the raw scores grows in step with $d_k$ (the points sit on a line of slope 1
# in log-log), while the scaled scores stay near 1. Without the scale, at $d_k = 1024$ the
# softmax gives nearly all its weight to a single key: the table above shows the mean of the
# largest weight. With the scale the weights stay spread out and trainable.
#
# ## 5. Scaled dot-product attention
#
# Put together, for queries $Q$ (shape `(..., L, d_k)`), keys $K$ (`(..., S, d_k)`) and values
# $V$ (`(..., S, d_v)`):
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}}\right) V$$
#
# The softmax runs over the **keys** (the last axis), so each query's weights sum to 1. A
# `mask` (the cheat-sheet version's convention: **0 where a query may not look**) is applied to the
# scores *before* the softmax by filling the blocked ones with a large negative number, -1e9,
# whose `exp` is 0.
#
# ### Exercise 01.2: scaled dot-product attention
#
# Return **both** the output and the attention weights, `(output, weights)`. It must work for
# any number of leading batch/head dimensions and for `L != S`. A query whose keys are *all*
# blocked (a padding token's row, for instance) then gets equal weights over all keys, not NaN:
# that is what the -1e9 fill gives, and what the check expects (a `-inf` fill would give NaN).

# %%
def scaled_dot_product_attention(Q, K, V, mask=None):
    ### BEGIN SOLUTION
    d_k = Q.size(-1)
    scores = Q @ K.transpose(-2, -1) / math.sqrt(d_k)
    if mask is not None:
        scores = scores.masked_fill(mask == 0, -1e9)
    weights = torch.softmax(scores, dim=-1)
    return weights @ V, weights
    ### END SOLUTION


# %%
check("01.2", scaled_dot_product_attention)

# %%
from course_utils.attention import scaled_dot_product_attention

# Cross-check against PyTorch's fused kernel on a batch of 2 sequences, 4 heads.
Q, K, V = torch.randn(2, 4, 6, 32), torch.randn(2, 4, 6, 32), torch.randn(2, 4, 6, 32)
ours, weights = scaled_dot_product_attention(Q, K, V)
theirs = F.scaled_dot_product_attention(Q, K, V)
print("max |ours - torch| =", (ours - theirs).abs().max().item())
print("weights:", tuple(weights.shape), "each row sums to 1:",
      torch.allclose(weights.sum(-1), torch.ones(2, 4, 6)))

# %% [markdown]
# ## 6. Masks
#
# ### The causal mask
#
# A language model predicts token $i+1$ from tokens $1..i$. While training, it sees the whole
# sentence at once, so attention must be stopped from looking **ahead**: query $i$ may attend to
# key $j$ only if $j \le i$. That is a lower-triangular matrix of ones, diagonal included
# (a token may look at itself).
#
# `torch.ones(seq_len, seq_len).tril()` builds it (as booleans: `True` = may attend):

# %%
from course_utils.masks import (
    bool_to_additive,
    causal_mask,
    combine_masks,
    generate_square_subsequent_mask,
    padding_mask,
)

print(causal_mask(5).int())

# %% [markdown]
# ### Padding masks
#
# Sentences in a batch have different lengths, so the short ones are padded. A tokenizer
# returns an `attention_mask` with 1 for real tokens and 0 for padding; no query should attend
# to a padding key. `padding_mask` turns it into a key mask of shape `(batch, 1, seq)` that
# broadcasts over the queries, and `combine_masks` ANDs it with the causal mask.

# %%
attention_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])  # second sentence: 2 pads
combined = combine_masks(causal_mask(5), padding_mask(attention_mask))
print("combined mask for the padded sentence:\n", combined[1].int())

# %% [markdown]
# ### Boolean vs additive masks
#
# PyTorch has two conventions, and mixing them up is a classic bug:
#
# | convention | blocked | allowed | used by |
# |---|---|---|---|
# | boolean / 0-1 (this lesson, the cheat-sheet version) | `False` / 0 | `True` / 1 | `F.scaled_dot_product_attention(attn_mask=bool)` |
# | boolean "key padding" | `True` | `False` | `nn.MultiheadAttention(key_padding_mask=...)` |
# | additive float | large negative / `-inf` | 0 | `nn.Transformer`, float `attn_mask`s |
#
# The additive mask is *added* to the scores. `generate_square_subsequent_mask` builds the
# additive causal mask; `nn.Transformer`'s version uses `-inf`, ours uses -1e9 by default:

# %%
print(generate_square_subsequent_mask(4))
torch_version = torch.nn.Transformer.generate_square_subsequent_mask(4)
print("same pattern as torch.nn.Transformer's:",
      torch.equal(generate_square_subsequent_mask(4) < 0, torch.isinf(torch_version)))

# %% [markdown]
# ### A fully masked row: -1e9 or -inf?
#
# What if a query may look at *nothing* (say, a padding query whose keys are all padding)?
# With `-inf` every score in the row is `-inf`, `exp` gives 0 everywhere, and $0/0$ is `NaN`,
# which then spreads through every later layer. With the cheat-sheet's -1e9 every score in the row
# is the *same* finite number, so the softmax is uniform: a harmless average. (Real libraries
# special-case it; the output of such a row is ignored anyway.)

# %%
row = torch.tensor([[1.0, 2.0, 3.0]])
blocked = torch.zeros(1, 3, dtype=torch.bool)
print("fill -1e9 :", softmax(row.masked_fill(~blocked, -1e9)))
print("fill -inf :", softmax(row.masked_fill(~blocked, float("-inf"))))

# %% [markdown]
# ### Exercise 01.3: the additive attention bias of a padded batch
#
# Put the three ideas together, in the form libraries that take a float mask expect. For a
# batch of right-padded sequences with true `lengths` (a list, tensor or numpy array) and
# padded length `seq_len`, return the float bias of shape `(batch, seq_len, seq_len)` that is
# *added* to the scores: `0.0` where query `i` of sequence `b` may attend to key `j`, and
# `-1e9` where it may not, because key `j` is padding (`j >= lengths[b]`) or, when
# `causal=True` (the default), because `j > i`. Padding hides *keys* (columns); a fully padded
# sequence must stay finite.

# %%
def attention_bias(lengths, seq_len: int, causal: bool = True) -> torch.Tensor:
    ### BEGIN SOLUTION
    lengths = torch.as_tensor(lengths)
    real_keys = torch.arange(seq_len)[None, :] < lengths[:, None]  # (batch, seq)
    allowed = real_keys[:, None, :]  # the same keys for every query
    if causal:
        allowed = allowed & torch.ones(seq_len, seq_len, dtype=torch.bool).tril()
    allowed = allowed.expand(len(lengths), seq_len, seq_len)
    return torch.zeros(allowed.shape).masked_fill(~allowed, -1e9)
    ### END SOLUTION


# %%
check("01.3", attention_bias)

# %%
from course_utils.attention_bias import attention_bias

bias = attention_bias([3, 0], seq_len=4)
scores = torch.randn(2, 4, 4)
print("sequence 0 (3 real tokens), the bias added to its scores:\n", bias[0])
print("its weights:\n", softmax(scores + bias)[0])
print("a fully padded sequence stays finite:", bool(torch.isfinite(softmax(scores + bias)).all()))

# %% [markdown]
# ## 7. Explore
#
# **Attention explorer.** Move the query slider to see where each word looks (the red row and
# the bars). Lower the temperature: the weights sharpen towards the most similar word, which is
# what happens without the $\sqrt{d_k}$ scale. Raise it: they flatten towards uniform. Switch the
# mask to *causal* and the upper triangle goes dark; *padding* blanks the last two columns.

# %%
# NBVAL_IGNORE_OUTPUT
from course_utils.widgets.attention_explorer import attention_explorer

attention_explorer("the cat sat on the mat because it was tired")

# %% [markdown]
# **Mask explorer.** The same mask three ways: the 0-1 mask, the additive mask that is added to
# the scores, and the softmax that results. Try *padding* with the `-inf` fill and as much
# padding as possible to see which rows survive.

# %%
# NBVAL_IGNORE_OUTPUT
from course_utils.widgets.mask_explorer import mask_explorer

mask_explorer()

# %% [markdown]
# ## Summary
#
# - Attention compares every query with every key in one matrix product: parallel, and
#   quadratic in the sequence length.
# - The softmax turns scores into weights; subtracting the maximum keeps it finite.
# - Dividing by $\sqrt{d_k}$ keeps the scores' variance at 1, so the softmax does not saturate.
# - Masks block positions *before* the softmax: causal for "no peeking ahead", padding for
#   "ignore the filler"; know which convention (boolean or additive) an API expects.
#
# Next, lesson 02 runs several attentions side by side: **multi-head attention**.

# %%
progress()
