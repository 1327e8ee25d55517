# %% [markdown]
# # 02 · Multi-head attention
#
# In lesson 01 every token computed **one** weighted average of the others. But a token often
# needs several things at once: the word just before it, the subject of the sentence, the
# noun a pronoun refers to. One softmax has to compromise between them. **Multi-head
# attention** runs several attentions side by side, each in its own small slice of the
# features, and lets the model mix their answers.
#
# **You will:** project tokens into queries, keys and values; split the features into heads
# and merge them back (keeping track of every shape); write the multi-head forward pass; count
# its parameters; prove it equals `torch.nn.MultiheadAttention`; and look at the heads of a
# trained model attending to different things in the same sentence.
#
# **The cheat-sheet version** of multi-head attention, the class that circulates in LLM
# cheat-sheets, is this (`attention` is lesson 01's scaled dot-product attention):
#
# ```python
# class MultiHeadAttention(nn.Module):
#     def __init__(self, d_model, num_heads):
#         super().__init__()
#         self.num_heads, self.d_k = num_heads, d_model // num_heads
#         self.W_q = nn.Linear(d_model, d_model)
#         self.W_k = nn.Linear(d_model, d_model)
#         self.W_v = nn.Linear(d_model, d_model)
#         self.W_o = nn.Linear(d_model, d_model)
#
#     def forward(self, Q, K, V, mask=None):
#         b = Q.size(0)
#         Q = self.W_q(Q).view(b, -1, self.num_heads, self.d_k).transpose(1, 2)
#         K = self.W_k(K).view(b, -1, self.num_heads, self.d_k).transpose(1, 2)
#         V = self.W_v(V).view(b, -1, self.num_heads, self.d_k).transpose(1, 2)
#         out, weights = attention(Q, K, V, mask)
#         out = out.transpose(1, 2).contiguous().view(b, -1, self.num_heads * self.d_k)
#         return self.W_o(out), weights
# ```
#
# It is right, and dense: each `view`/`transpose` is a step of the algorithm. This lesson takes
# it apart into those steps, with the shape after each one.
#
# Each exercise is followed by a **check cell**. Stuck? `hint("02.1")` gives a hint and
# `solution("02.1")` shows the reference.

# %%
from course_utils import check, hint, progress, solution, start_lesson

start_lesson(seed=0)

import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from course_utils.attention import scaled_dot_product_attention

torch.set_printoptions(precision=3, sci_mode=False)

# %% [markdown]
# ## 1. One softmax, one compromise
#
# Suppose the token "it" should take *both* the gender of "Mia" and the object "ball". A
# single attention head puts weights on both, and its output is their **average**: half of
# one vector plus half of the other, a blur that is neither. Two heads can each give one of
# them full weight and hand both on, side by side.

# %%
values = torch.tensor([[1.0, 0.0, 0.0, 0.0],   # "Mia" carries feature A
                       [0.0, 0.0, 1.0, 0.0]])  # "ball" carries feature C
one_head = torch.tensor([0.5, 0.5]) @ values  # must share one set of weights
head_1 = torch.tensor([1.0, 0.0]) @ values[:, :2]  # head 1 looks only at "Mia", features A-B
head_2 = torch.tensor([0.0, 1.0]) @ values[:, 2:]  # head 2 looks only at "ball", features C-D
print("one head  :", one_head, "(each feature at half strength)")
print("two heads :", torch.cat([head_1, head_2]), "(each at full strength, in its own slice)")

# %% [markdown]
# ## 2. Heads are subspaces
#
# Multi-head attention (Vaswani et al., 2017) takes the input $X$ of shape
# `(batch, seq, d_model)` and:
#
# 1. **projects** it: $Q = XW_Q^\top + b_Q$, $K = XW_K^\top + b_K$, $V = XW_V^\top + b_V$, each
#    still `d_model` wide (one `nn.Linear(d_model, d_model)` each, for all heads at once);
# 2. **splits** the `d_model` features into `num_heads` slices of $d_k$ = `d_model // num_heads`
#    features: head $h$ owns features $h d_k, \dots, (h+1) d_k - 1$ of $Q$, $K$ and $V$;
# 3. runs lesson 01's **scaled dot-product attention in every head**, independently, scaling
#    by $\sqrt{d_k}$ (the head's size, not `d_model`);
# 4. **merges** the heads back by concatenating their outputs to `d_model` features;
# 5. **mixes** them with an output projection $W_O$, so what one head found can reach every
#    feature.
#
# Each head sees only its slice of the projected features: a $d_k$-dimensional
# **representation subspace**. Where it looks is decided by its own queries and keys, so
# different heads can learn to look for different things.
#
# Here is every step on a concrete input, with the shape after each one. Read the table top to
# bottom: it is the whole algorithm.

# %%
batch, seq_len, d_model, num_heads = 2, 5, 12, 3
d_k = d_model // num_heads
X = torch.randn(batch, seq_len, d_model)
W_q, W_k, W_v, W_o = (torch.nn.Linear(d_model, d_model) for _ in range(4))

steps = [("X (input)", X)]
q, k, v = W_q(X), W_k(X), W_v(X)
steps.append(("q = W_q(X)  (also k, v)", q))
q4 = q.view(batch, seq_len, num_heads, d_k)
steps.append(("q.view(batch, seq, heads, d_k)", q4))
qh, kh, vh = (t.view(batch, seq_len, num_heads, d_k).transpose(1, 2) for t in (q, k, v))
steps.append(("  .transpose(1, 2)  -> heads first", qh))
scores = qh @ kh.transpose(-2, -1) / math.sqrt(d_k)
steps.append(("scores = q @ k^T / sqrt(d_k)", scores))
weights = scores.softmax(dim=-1)
steps.append(("weights = softmax(scores)", weights))
heads = weights @ vh
steps.append(("heads = weights @ v", heads))
merged = heads.transpose(1, 2).reshape(batch, seq_len, d_model)
steps.append(("heads.transpose(1, 2).reshape", merged))
out = W_o(merged)
steps.append(("out = W_o(merged)", out))

names = {batch: "batch", seq_len: "seq", d_model: "d_model", num_heads: "heads", d_k: "d_k"}
print(f"batch={batch}, seq={seq_len}, d_model={d_model}, heads={num_heads}, d_k={d_k}\n")
print(f"{'step':<36} {'shape':<18} meaning")
for name, t in steps:
    meaning = ", ".join(names.get(s, str(s)) for s in t.shape)
    if name.startswith("scores") or name.startswith("weights"):
        meaning = "batch, heads, seq (queries), seq (keys)"
    print(f"{name:<36} {str(tuple(t.shape)):<18} ({meaning})")

# %% [markdown]
# Two lines deserve a second look. `view(batch, seq, heads, d_k)` only *relabels* the last axis:
# features 0-3 become head 0, 4-7 head 1, 8-11 head 2. The `transpose(1, 2)` then moves the head
# axis in front of the sequence, so that the last two axes of every head are `(seq, d_k)` and
# one batched matrix product computes all heads' scores at once.
#
# **A head really is attention in its own subspace.** Head 1 computed alone, with only its rows
# of the projection weights, gives exactly the same weights as head 1 inside the batched
# computation:

# %%
rows = slice(1 * d_k, 2 * d_k)  # head 1's features
q1 = X @ W_q.weight[rows].T + W_q.bias[rows]  # (batch, seq, d_k): a small projection
k1 = X @ W_k.weight[rows].T + W_k.bias[rows]
v1 = X @ W_v.weight[rows].T + W_v.bias[rows]
_, w1 = scaled_dot_product_attention(q1, k1, v1)
print("head 1 alone == head 1 of the batched computation:",
      torch.allclose(w1, weights[:, 1], atol=1e-6))

# %% [markdown]
# ### Exercise 02.1: split into heads
#
# Write `split_heads(x, num_heads)`: `(batch, seq, d_model) -> (batch, num_heads, seq, d_k)`,
# where head $h$ gets features $h d_k$ to $(h+1) d_k - 1$ of every token. Careful: a single
# `view(batch, num_heads, seq, d_k)` has the right shape and the wrong content.

# %%
def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    ### BEGIN SOLUTION
    batch, seq_len, d_model = x.shape
    return x.view(batch, seq_len, num_heads, d_model // num_heads).transpose(1, 2)
    ### END SOLUTION


# %%
check("02.1", split_heads)

# %% [markdown]
# From here on the lesson uses the reference implementations from `course_utils`, so every
# cell runs whether or not your exercise passed yet. Why is the single `view` wrong? It cuts
# the numbers of the whole sentence, in memory order, into `num_heads` blocks: "head 0" would
# get all features of the first tokens, not the first features of every token.

# %%
from course_utils.attention import split_heads

x = torch.arange(2 * 8, dtype=torch.float32).reshape(1, 2, 8)  # 2 tokens, d_model=8
print("x (token 0 holds 0-7, token 1 holds 8-15):\n", x[0])
print("split_heads(x, 2)[0, head 0] (features 0-3 of each token):\n", split_heads(x, 2)[0, 0])
print("x.view(1, 2, 2, 4)[0, 'head 0'] (all of token 0!):\n", x.view(1, 2, 2, 4)[0, 0])

# %% [markdown]
# ### Exercise 02.2: merge the heads
#
# Write `merge_heads(x)`: `(batch, num_heads, seq, d_k) -> (batch, seq, num_heads * d_k)`, the
# inverse of `split_heads`: each token's head 0 features first, then head 1's, and so on.
# (After a `transpose` the tensor is no longer contiguous in memory: `view` refuses it,
# `reshape` copies when it must.)

# %%
def merge_heads(x: torch.Tensor) -> torch.Tensor:
    ### BEGIN SOLUTION
    batch, num_heads, seq_len, d_k = x.shape
    return x.transpose(1, 2).reshape(batch, seq_len, num_heads * d_k)
    ### END SOLUTION


# %%
check("02.2", merge_heads)

# %%
from course_utils.attention import merge_heads

print("merge_heads(split_heads(x)) == x:", torch.equal(merge_heads(split_heads(x, 2)), x))

# %% [markdown]
# ### Exercise 02.3: the multi-head forward pass
#
# Put it together as a function of the inputs and a dict of weights, `params`, with the keys
# `W_q, b_q, W_k, b_k, W_v, b_v, W_o, b_o` in `nn.Linear`'s layout (`F.linear(x, W, b)` computes
# `x @ W.T + b`). Return `(output, attention_weights)` with shapes `(batch, L, d_model)` and
# `(batch, num_heads, L, S)`: one attention map **per head**.
#
# `Q`, `K`, `V` are the *inputs* to the projections (for self-attention all three are `X`).
# `mask` follows lesson 01 (1 = may attend): `(L, S)` broadcasts over batch and heads as it is,
# but a `(batch, L or 1, S)` mask needs a head axis: `mask.unsqueeze(1)`. Use
# `scaled_dot_product_attention` from lesson 01 and your `split_heads` / `merge_heads`.

# %%
def multi_head_attention(Q, K, V, params, num_heads, mask=None):
    ### BEGIN SOLUTION
    q = split_heads(F.linear(Q, params["W_q"], params["b_q"]), num_heads)
    k = split_heads(F.linear(K, params["W_k"], params["b_k"]), num_heads)
    v = split_heads(F.linear(V, params["W_v"], params["b_v"]), num_heads)
    if mask is not None and mask.dim() == 3:
        mask = mask.unsqueeze(1)
    heads, weights = scaled_dot_product_attention(q, k, v, mask)
    return F.linear(merge_heads(heads), params["W_o"], params["b_o"]), weights
    ### END SOLUTION


# %%
check("02.3", multi_head_attention)

# %% [markdown]
# ## 3. The module, and what it costs
#
# `course_utils.attention.MultiHeadAttention` wraps that function in an `nn.Module` with the
# cheat-sheet version's four layers `W_q`, `W_k`, `W_v`, `W_o`. Its `forward(Q, K, V, mask=None)`
# returns `(output, attention_weights)`.

# %%
from course_utils.attention import MultiHeadAttention, multi_head_attention

mha = MultiHeadAttention(d_model=64, num_heads=8)
print(mha)
x = torch.randn(2, 10, 64)
out, attn = mha(x, x, x)
print("output", tuple(out.shape), "attention weights", tuple(attn.shape))

# %% [markdown]
# **Parameters.** Four `d_model x d_model` matrices and four biases: $4 d_{model}^2 + 4 d_{model}$.
# The number of heads does not appear: more heads means *narrower* heads over the same
# features, not more weights. What changes is the size of the attention maps,
# `heads x seq x seq` per sentence.

# %%
print(f"{'d_model':>7} {'heads':>5} {'d_k':>4} {'parameters':>11} {'4*d^2 + 4*d':>12} "
      f"{'weights per sentence of 128':>28}")
for d, h in [(64, 1), (64, 8), (64, 16), (512, 8), (768, 12)]:
    m = MultiHeadAttention(d, h)
    n = sum(p.numel() for p in m.parameters())
    print(f"{d:>7} {h:>5} {d // h:>4} {n:>11,} {4 * d * d + 4 * d:>12,} {h * 128 * 128:>28,}")

# %% [markdown]
# ## 4. The same as `torch.nn.MultiheadAttention`
#
# PyTorch's layer stores `W_q`, `W_k`, `W_v` stacked in one `in_proj_weight` of shape
# `(3 d_model, d_model)` and `W_o` as `out_proj`. Copy our weights in and the outputs match.
#
# Mind the **mask conventions**: ours says 1/`True` = *may attend*; `nn.MultiheadAttention`'s
# boolean `attn_mask` and `key_padding_mask` say `True` = *may NOT attend*. So we pass the
# inverted masks. (Forgetting the `~` is a silent bug: the shapes are all fine.)

# %%
from course_utils import masks

torch_mha = torch.nn.MultiheadAttention(64, 8, batch_first=True)
with torch.no_grad():
    torch_mha.in_proj_weight.copy_(torch.cat([mha.W_q.weight, mha.W_k.weight, mha.W_v.weight]))
    torch_mha.in_proj_bias.copy_(torch.cat([mha.W_q.bias, mha.W_k.bias, mha.W_v.bias]))
    torch_mha.out_proj.weight.copy_(mha.W_o.weight)
    torch_mha.out_proj.bias.copy_(mha.W_o.bias)

attention_mask = torch.ones(2, 10, dtype=torch.long)
attention_mask[1, 7:] = 0  # the second sentence ends with 3 padding tokens
ours_mask = masks.combine_masks(masks.causal_mask(10), masks.padding_mask(attention_mask))
with torch.no_grad():
    ours_out, ours_w = mha(x, x, x, mask=ours_mask)
    torch_out, torch_w = torch_mha(x, x, x, attn_mask=~masks.causal_mask(10),
                                   key_padding_mask=attention_mask == 0,
                                   average_attn_weights=False)
print("max |output difference|  :", (ours_out - torch_out).abs().max().item())
print("max |weights difference| :", (ours_w - torch_w).abs().max().item())

# %% [markdown]
# ## 5. Heads attend differently: a trained model
#
# Random weights make random heads. In a **trained** model the heads specialise. The course
# ships a small GPT-2-style model trained on the course's stories, `course-gpt`. We load it with
# `attn_implementation="eager"`, the implementation that returns its attention weights, and draw
# all heads of one layer on the same sentence.

# %%
from course_utils.pretrained import load_pretrained
from course_utils.widgets.head_explorer import attention_maps, draw_head, head_scores

gpt2, tokenizer = load_pretrained("course-gpt", attn_implementation="eager")
sentence = "Mia found a red ball in the park, and she gave it to her brother."
tokens, maps = attention_maps(gpt2, tokenizer, sentence)  # (layers, heads, seq, seq)
print(f"course-gpt: {gpt2.config.n_layer} layers of {gpt2.config.n_head} heads, "
      f"d_model {gpt2.config.n_embd}")
print(len(tokens), "tokens:", tokens)
print("attention maps:", tuple(maps.shape), "= (layers, heads, queries, keys)")

# %%
patterns = head_scores(maps)
print("share of each head's attention that goes to ...")
print(f"{'layer':>5} {'head':>4} {'previous token':>15} {'itself':>7} {'first token':>12}")
for layer in range(maps.shape[0]):
    for head in range(maps.shape[1]):
        print(f"{layer:>5} {head:>4} {patterns['previous token'][layer, head]:>15.2f} "
              f"{patterns['same token'][layer, head]:>7.2f} "
              f"{patterns['first token'][layer, head]:>12.2f}")

# %%
# the layer whose heads differ most on these three patterns
spread = sum(p.amax(dim=1) - p.amin(dim=1) for p in patterns.values())
layer = int(spread.argmax())
fig, axes = plt.subplots(1, maps.shape[1], figsize=(4.2 * maps.shape[1], 4.6))
for head, ax in enumerate(axes):
    draw_head(tokens, maps[layer, head], ax=ax, title=f"layer {layer}, head {head}")
fig.suptitle(f"the same sentence, the {maps.shape[1]} heads of layer {layer}")
plt.tight_layout()
plt.show()

# %% [markdown]
# Same sentence, same layer, different heads (each map's colours are scaled to its own weights,
# so that weak patterns show). Compare the maps with the table: a head with a
# high "first token" share parks much of its attention on the start of the text (a common
# default when there is nothing useful to look at); a head with a high "previous token" share
# shows a bright line just under the diagonal (it helps continue a word split into pieces);
# others spread their weight over the recent words or pick out particular ones. Nobody
# designed these roles: each head's $W_Q$ and $W_K$ were learned, and having several heads
# lets the model learn several ways of looking at once.
#
# **Our module is that layer.** GPT-2 keeps `W_q, W_k, W_v` side by side in one `c_attn` layer,
# stored transposed. Copy them into our `MultiHeadAttention`, feed it what layer 0's attention
# sees (the token plus position embeddings, layer-normalised), add the causal mask, and it
# reproduces the model's maps:

# %%
block = gpt2.transformer.h[0]
ids = tokenizer(sentence, return_tensors="pt")["input_ids"]
d = gpt2.config.n_embd
ours = MultiHeadAttention(d, gpt2.config.n_head)
with torch.no_grad():
    for name, part in zip(("W_q", "W_k", "W_v"), range(3), strict=True):
        getattr(ours, name).weight.copy_(block.attn.c_attn.weight[:, part * d:(part + 1) * d].T)
        getattr(ours, name).bias.copy_(block.attn.c_attn.bias[part * d:(part + 1) * d])
    ours.W_o.weight.copy_(block.attn.c_proj.weight.T)
    ours.W_o.bias.copy_(block.attn.c_proj.bias)
    positions = torch.arange(ids.shape[1])
    h = block.ln_1(gpt2.transformer.wte(ids) + gpt2.transformer.wpe(positions))
    _, our_maps = ours(h, h, h, mask=masks.causal_mask(ids.shape[1]))
print("our layer-0 maps == the model's:",
      torch.allclose(our_maps[0], maps[0], atol=1e-5))

# %% [markdown]
# ## Summary
#
# - Multi-head attention projects the input to queries, keys and values, **splits** the
#   features into `num_heads` subspaces of $d_k$ = `d_model / num_heads`, attends in each head
#   independently (scaled by $\sqrt{d_k}$), **merges** the heads by concatenation and mixes
#   them with $W_O$.
# - Split = `view(batch, seq, heads, d_k)` then `transpose(1, 2)`; merge = the reverse,
#   `transpose(1, 2)` then `reshape`. A `view` straight to the final shape gives the right
#   shape and the wrong numbers.
# - Parameters: $4 d_{model}^2 + 4 d_{model}$, whatever the number of heads.
# - It is exactly `torch.nn.MultiheadAttention`, once you invert the mask convention.
# - In a trained model, heads specialise: previous token, whole sentence, first token.
#
# Next, lesson 03 stacks these layers into **GPT** and **BERT**.

# %%
progress()
