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
# trained model attending to different things in the same sentence. Then the same module with
# queries from one sequence and keys/values from another becomes **cross-attention**, and three
# attention-based sub-layers make the original **encoder-decoder Transformer**: you write its
# decoder layer and its decoding loop, train a translator and watch where it looks.
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
# ## 6. Cross-attention: queries from here, keys and values from there
#
# Everything so far was **self-attention**: `Q`, `K` and `V` were all projections of the same
# sequence. Nothing in `multi_head_attention` requires that. A translator reads an English
# sentence with an **encoder** and writes the Lingo sentence with a **decoder**; while writing,
# each Lingo position asks "which English words matter for me now?". Its **queries** come from
# the decoder's states, the **keys and values** from the encoder's output (the `memory`):
#
# | tensor | comes from | shape |
# |---|---|---|
# | `Q = x W_q^T` | the decoder, T target positions | `(batch, T, d_model)` |
# | `K = memory W_k^T`, `V = memory W_v^T` | the encoder, S source positions | `(batch, S, d_model)` |
# | scores, weights | one row per target position, one column per source word | `(batch, heads, T, S)` |
# | output | one vector per target position | `(batch, T, d_model)` |
#
# The weights are not square any more: `T` rows, `S` columns. Two masks differ from
# self-attention. The source sentences of a batch have different lengths, so the padded source
# positions must be blocked **as keys**, for every query: a key mask of shape `(batch, 1, S)`,
# made from the tokenizer's `(batch, S)` attention mask. And there is **no causal mask**: the
# whole English sentence is known before the first Lingo word is written.

# %%
x_dec = torch.randn(2, 3, 16)     # the decoder's states: 2 sentences, T = 3 target positions
memory = torch.randn(2, 5, 16)    # the encoder's output: S = 5 source positions
src_attention_mask = torch.tensor([[1, 1, 1, 1, 1],
                                   [1, 1, 1, 0, 0]])  # the 2nd source has 3 words + 2 pads
params = MultiHeadAttention(16, 4).params()  # the W_q ... b_o dict of exercise 02.3
with torch.no_grad():
    out, w = multi_head_attention(x_dec, memory, memory, params, 4,
                                  mask=masks.padding_mask(src_attention_mask))
print("key mask from the attention mask:", tuple(masks.padding_mask(src_attention_mask).shape))
print("output", tuple(out.shape), "= (batch, T, d_model);  weights", tuple(w.shape),
      "= (batch, heads, T, S)")
print("sentence 2, head 0: weights of its 3 target positions over the 5 source positions\n",
      w[1, 0])

# %% [markdown]
# ### Exercise 02.4: cross-attention with a source padding mask
#
# Write `cross_attention(x, memory, params, num_heads, src_attention_mask=None)`: queries from
# `x (batch, T, d_model)`, keys and values from `memory (batch, S, d_model)`, and the padded
# source positions (0 in `src_attention_mask (batch, S)`) blocked for every query. Return
# `(output, weights)` like `multi_head_attention`. Use the reference `multi_head_attention`
# and `masks.padding_mask`. The grader tries sources of different lengths, a target as long
# as the source (where shapes can't tell keys from the decoder apart), booleans, floats and no
# mask at all.

# %%
def cross_attention(x, memory, params, num_heads, src_attention_mask=None):
    ### BEGIN SOLUTION
    mask = None if src_attention_mask is None else masks.padding_mask(src_attention_mask)
    return multi_head_attention(x, memory, memory, params, num_heads, mask)
    ### END SOLUTION


# %%
check("02.4", cross_attention)

# %%
from course_utils.transformer import cross_attention

with torch.no_grad():
    _, w = cross_attention(x_dec, memory, params, 4, src_attention_mask)
print("weight on the 2 padded source words of sentence 2:", w[1, ..., 3:].abs().max().item())

# %% [markdown]
# ## 7. Three sub-layers make a decoder layer; stacks of layers make the Transformer
#
# The original Transformer (Vaswani et al., 2017) is an **encoder** and a **decoder**:
#
# - an **encoder layer** has two sub-layers: self-attention over the source (padding blocked),
#   then a position-wise MLP (`linear2(relu(linear1(x)))`, `d_model -> dim_feedforward -> d_model`);
# - a **decoder layer** has three: **causal** self-attention over the target written so far,
#   **cross-attention** over the encoder's output, then the MLP.
#
# Every sub-layer sits in a **residual connection** followed by a LayerNorm, "post-norm" as in
# the paper and `nn.Transformer`'s default: `x = norm(x + sublayer(x))`. (GPT-2 and most later
# models use "pre-norm", `x = x + sublayer(norm(x))`, which trains more stably in deep stacks;
# `nn.Transformer(norm_first=True)` and the course's layers do both.) Each stack ends with one
# more LayerNorm.
#
# ### Exercise 02.5: the decoder layer's forward pass
#
# Write `decoder_layer(x, memory, params, num_heads, src_attention_mask=None)`, post-norm,
# with the weights in a dict: `params["self_attn"]` and `params["cross_attn"]` (dicts like 02.3's),
# `params["ff"]` for the MLP and `params["norm1"]`, `["norm2"]`, `["norm3"]` for the norms.
# `layer_norm(x, params["norm1"])` and `feed_forward(x, params["ff"])` are given; the order of
# the sub-layers, the masks and where the residual goes are yours.

# %%
from course_utils.transformer import DecoderLayer, feed_forward, layer_norm

layer = DecoderLayer(d_model=16, num_heads=4, dim_feedforward=32)
print({name: sorted(p) for name, p in layer.params().items()})


def decoder_layer(x, memory, params, num_heads, src_attention_mask=None):
    ### BEGIN SOLUTION
    T = x.shape[1]
    sa, _ = multi_head_attention(x, x, x, params["self_attn"], num_heads, masks.causal_mask(T))
    x = layer_norm(x + sa, params["norm1"])
    ca, _ = cross_attention(x, memory, params["cross_attn"], num_heads, src_attention_mask)
    x = layer_norm(x + ca, params["norm2"])
    return layer_norm(x + feed_forward(x, params["ff"]), params["norm3"])
    ### END SOLUTION


# %%
check("02.5", decoder_layer)

# %%
from course_utils.transformer import decoder_layer

print("from here on the lesson uses", f"{decoder_layer.__module__}.{decoder_layer.__name__}")

# %% [markdown]
# ### The cheat-sheet `Transformer`, run as written
#
# LLM cheat-sheets open with this class. It is real PyTorch and it runs:

# %%
import torch.nn as nn


class Transformer(nn.Module):
    def __init__(self, d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6):
        super().__init__()
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d_model, nhead), num_encoder_layers)
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(d_model, nhead), num_decoder_layers)

    def forward(self, src, tgt):
        memory = self.encoder(src)
        output = self.decoder(tgt, memory)
        return output


import warnings

warnings.filterwarnings("ignore", message=".*enable_nested_tensor.*")
torch.manual_seed(0)
sheet = Transformer(d_model=32, nhead=4, num_encoder_layers=2, num_decoder_layers=2).eval()
src_lb, tgt_lb = torch.randn(7, 2, 32), torch.randn(5, 2, 32)  # (len, batch, d_model)
with torch.no_grad():
    print("source (7, 2, 32), target (5, 2, 32) -> output", tuple(sheet(src_lb, tgt_lb).shape))

# %% [markdown]
# It runs, and it is not yet a translator. What it lacks:
#
# 1. **`batch_first=False`** is `nn.TransformerEncoderLayer`'s default: it reads
#    `(len, batch, d_model)`, not the `(batch, len, d_model)` the rest of the course (and
#    `transformers`) uses. Given batch-first tensors it takes the batch for the sequence: with
#    a source and target of different lengths it fails with a puzzling shape error, and with
#    equal lengths it runs silently while the sentences attend to each other.
# 2. **No masks**: the decoder is not causal (a position sees the words after it) and padded
#    words are attended like real ones.
# 3. **No embeddings, no positions, no output head**: it maps vectors to vectors. Token ids
#    must be embedded, positions added (attention alone does not know word order) and the
#    output projected to the vocabulary.
#
# Each one, measured:

# %%
src, tgt = torch.randn(2, 7, 32), torch.randn(2, 5, 32)  # (batch, len, d_model)
with torch.no_grad():
    try:
        sheet(src, tgt)
    except RuntimeError as exc:
        print("1a. batch-first tensors of lengths 7 and 5:", type(exc).__name__, "-",
              str(exc)[:60])
    same_len = torch.randn(2, 5, 32)
    other = same_len.clone()
    other[1] = torch.randn(5, 32)  # change sentence 2 only
    drift = (sheet(other, tgt)[0] - sheet(same_len, tgt)[0]).abs().max().item()
    print(f"1b. equal lengths: sentence 1's output moves by {drift:.3f} when sentence 2 changes")
    later = tgt_lb.clone()
    later[3:] = torch.randn(2, 2, 32)  # change target positions 3 and 4 only
    moved = (sheet(src_lb, later) - sheet(src_lb, tgt_lb))[:3].abs().max().item()
    print(f"2. target positions 0-2 move by {moved:.3f} when positions 3-4 change (no causal mask)")
    order = torch.randperm(7)
    shuffled = sheet.encoder(src_lb[order])
    print("3. shuffling the source words only shuffles the encoder's output (no positions):",
          torch.allclose(shuffled, sheet.encoder(src_lb)[order], atol=1e-5))

# %% [markdown]
# **The course's `EncoderDecoder`** (`course_utils.transformer`) is built from lesson 02's
# `MultiHeadAttention` and the functions of the exercises. It takes `(batch, len, d_model)`,
# always makes the target causal, and blocks the padding given by attention masks (1 = token).
# `EncoderDecoder.from_torch` copies the weights of an `nn.Transformer(batch_first=True)`; with
# the same masks, it returns the same numbers, in post-norm and pre-norm:

# %%
from course_utils.transformer import EncoderDecoder

warnings.filterwarnings("ignore", message=".*nested tensors.*")
warnings.filterwarnings("ignore", message=".*mismatched key_padding_mask.*")
src_mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
tgt_mask = torch.tensor([[1] * 5, [1] * 3 + [0] * 2])
for norm_first in (False, True):
    torch.manual_seed(1)
    reference = nn.Transformer(32, 4, 2, 2, 64, dropout=0.0, batch_first=True,
                               norm_first=norm_first).eval()
    ours = EncoderDecoder.from_torch(reference).eval()
    with torch.no_grad():
        expected = reference(src, tgt, tgt_mask=nn.Transformer.generate_square_subsequent_mask(5),
                             src_key_padding_mask=src_mask == 0,
                             memory_key_padding_mask=src_mask == 0,
                             tgt_key_padding_mask=tgt_mask == 0, tgt_is_causal=True)
        got = ours(src, tgt, src_attention_mask=src_mask, tgt_attention_mask=tgt_mask)
    print(f"norm_first={norm_first}: max |ours - nn.Transformer| = "
          f"{(got - expected).abs().max().item():.1e}")

post_norm = EncoderDecoder(32, 4, 1, 1, 64).eval()
with torch.no_grad():
    enc_out = post_norm.encode(src, src_mask)
    by_module = post_norm.decoder_layers[0](tgt, enc_out, src_mask)
    by_function = decoder_layer(tgt, enc_out, post_norm.decoder_layers[0].params(), 4,
                                     src_mask)
print("the function decoder_layer == the DecoderLayer module:",
      torch.allclose(by_function, by_module, atol=1e-5))

# %% [markdown]
# ## 8. A translator, trained on the course's English -> Lingo pairs
#
# `course_utils.data.translations()` holds English sentences and their Lingo translations.
# Lingo is one word for one word, but **adjectives come after their noun**, as in many real
# languages: "the red ball" is "lo pilko ruga". A `Translator` adds what the cheat-sheet class
# lacks: word embeddings for each side, the paper's sinusoidal positions, the
# `EncoderDecoder`, and an output head over the vocabulary.
#
# It learns by **teacher forcing**: the decoder reads `<s>` and the true target, and at every
# position predicts the next word (cross-entropy), all positions at once thanks to the causal
# mask. Here is a translator trained from scratch for a few seconds:

# %%
from course_utils import data
from course_utils.metrics import bleu
from course_utils.pretrained.train_translator import (
    held_out_bleu,
    train_translator,
    translation_vocab,
)
from course_utils.transformer import Translator, TranslatorConfig, load_translator

pairs = data.translations(seed=0)
train_pairs = list(zip(pairs["train"]["source"], pairs["train"]["target"], strict=True))
test_src, test_ref = list(pairs["test"]["source"][:60]), list(pairs["test"]["target"][:60])
print(len(train_pairs), "training pairs, e.g.", train_pairs[0])

torch.manual_seed(0)
vocab = translation_vocab()
scratch = Translator(TranslatorConfig(len(vocab), d_model=64, nhead=4), vocab)
print(f"{sum(p.numel() for p in scratch.parameters()):,} parameters, {len(vocab)} words")
log = train_translator(scratch, train_pairs, steps=30, batch_size=64, lr=3e-3, warmup=10)
scratch_bleu = held_out_bleu(scratch, test_src, test_ref)
print(f"30 steps in {log['seconds']} s: loss {log['loss'][0]:.2f} -> {log['loss'][-1]:.2f}")
print(f"held-out BLEU after 30 steps: {scratch_bleu:.3f}")
print(scratch.translate(test_src[:2]), "instead of", test_ref[:2])

# %% [markdown]
# The loss falls fast, but a useful translator takes longer than this notebook may spend. The
# course ships the same model trained the same way for longer (`course-translator`, built by
# `python -m course_utils.pretrained build --only course-translator`); its training log shows
# the BLEU on validation sentences along the way:

# %%
import json

from course_utils.pretrained import asset_path

translator = load_translator()
train_log = json.loads((asset_path("course-translator") / "training_log.json").read_text())
print(f"course-translator: {train_log['recipe']['steps']} steps "
      f"({train_log['seconds']} s when it was built)")
print("validation BLEU at steps", [s + 1 for s in train_log["val_step"]], ":",
      train_log["val_bleu"])
print(f"(our 30 steps reached {scratch_bleu:.3f}.) A few more steps from the checkpoint:")
log = train_translator(translator, train_pairs, steps=10, batch_size=64, lr=1e-4)
print(f"  loss {log['loss'][0]:.1e} -> {log['loss'][-1]:.1e}: it has little left to learn")

# %%
test_bleu = held_out_bleu(translator, test_src, test_ref)
print(f"held-out BLEU of course-translator on {len(test_src)} test sentences: {test_bleu:.3f}\n")
for source, reference, hypothesis in zip(test_src[:5], test_ref[:5],
                                         translator.translate(test_src[:5]), strict=True):
    print(f"{source}\n  -> {hypothesis}   {'(= reference)' if hypothesis == reference else reference}")

# %% [markdown]
# ### Exercise 02.6: the greedy decoding loop
#
# Translating is generating: start every row from the start token `<s>`, feed the prefix to the
# model, append each row's most likely next word, and repeat. A batch of sentences finishes at
# different steps: once a row has produced the end token it is **finished**, and from then on
# gets the padding id. Stop when every row is finished, or after `max_new_tokens` steps.
#
# Write `greedy_decode(model, src, bos_id, eos_id, pad_id, max_new_tokens)`, where
# `model(src, tgt)` returns logits `(batch, len(tgt), vocab)`. Return the generated tokens
# `(batch, steps)` as a `torch.long` tensor **without** the start token. The grader uses a
# scripted stand-in model whose answers depend on the whole prefix, with ids that may be 0.

# %%
def greedy_decode(model, src, bos_id, eos_id, pad_id, max_new_tokens):
    ### BEGIN SOLUTION
    tgt = torch.full((src.shape[0], 1), bos_id, dtype=torch.long)
    finished = torch.zeros(src.shape[0], dtype=torch.bool)
    for _ in range(max_new_tokens):
        next_token = model(src, tgt)[:, -1].argmax(dim=-1)
        next_token = torch.where(finished, torch.full_like(next_token, pad_id), next_token)
        tgt = torch.cat([tgt, next_token[:, None]], dim=1)
        finished = finished | (next_token == eos_id)
        if finished.all():
            break
    return tgt[:, 1:]
    ### END SOLUTION


# %%
check("02.6", greedy_decode)

# %% [markdown]
# `Translator.generate` runs this loop. Without a cache every step reruns the decoder over the
# whole prefix. But the encoder's output, and each decoder layer's cross-attention keys and
# values, depend only on the source: they are computed **once per sentence**. And the causal
# self-attention keys/values of earlier target positions never change, so they are **cached**
# and each step feeds only the newest word. Same tokens, less work:

# %%
import time

from course_utils.transformer import greedy_decode

ids, mask = translator.batch(test_src)
with torch.no_grad():
    timings, outputs = {True: [], False: []}, {}
    for use_cache in (True, False, True, False):  # alternate, so load hits both alike
        start = time.perf_counter()
        outputs[use_cache] = translator.generate(ids, mask, use_cache=use_cache)
        timings[use_cache].append(time.perf_counter() - start)
    by_the_loop = greedy_decode(lambda s, t: translator(s, t, mask), ids, vocab.bos_id,
                                vocab.eos_id, vocab.pad_id, 31)
print("cached == uncached tokens:", torch.equal(outputs[True], outputs[False]),
      "| == the loop of 02.6 on the full model:", torch.equal(outputs[True], by_the_loop))
print(f"{len(test_src)} sentences: cached {min(timings[True]):.3f} s, "
      f"uncached {min(timings[False]):.3f} s")

# %% [markdown]
# **And course-gpt?** The course's small GPT read English/Lingo pairs during pretraining, so it
# can translate when prompted with a few examples (lesson 04's prompts,
# `course_utils.data.prompts.translation_prompt`). The same held-out sentences, the same
# metric (lesson 07 builds BLEU from its pieces):

# %%
from course_utils.data.prompts import translation_prompt
from course_utils.prompting.runner import generate_batch

demos = train_pairs[:3]
print(translation_prompt(test_src[0], demos), "...\n")
gpt_out = generate_batch(gpt2, tokenizer, [translation_prompt(s, demos) for s in test_src],
                         max_new_tokens=30, stop=("\n",), batch_size=30)
gpt_out = [o.strip() for o in gpt_out]
gpt_bleu = bleu(gpt_out, test_ref)["bleu"]
print(f"held-out BLEU on {len(test_src)} sentences: course-translator {test_bleu:.3f}, "
      f"course-gpt with {len(demos)} examples {gpt_bleu:.3f}")
n_params = sum(p.numel() for p in translator.parameters())
print(f"parameters: course-translator {n_params:,}, "
      f"course-gpt {sum(p.numel() for p in gpt2.parameters()):,}")
wrong = [(s, g, r) for s, g, r in zip(test_src, gpt_out, test_ref, strict=True) if g != r][:2]
for s, g, r in wrong:
    print(f"\n{s}\n  course-gpt: {g}\n  reference : {r}")

# %% [markdown]
# ## 9. Where the decoder looks
#
# Every Lingo word the translator writes comes from a cross-attention over the English words.
# Pick a sentence (or type one from the course's words), a decoder layer and a head: the lines
# join each written Lingo word (below) to the English words it attends to (above), thicker for
# more attention. Where Lingo puts the adjective after the noun, a head that aligns words draws
# **crossing lines**. The widget opens on the head that aligns best on the first sentence.

# %%
from course_utils.widgets.cross_attention_explorer import (
    alignment,
    alignment_accuracy,
    best_head,
    cross_attention_maps,
    crossings,
)

source, written, cross_maps = cross_attention_maps(translator, "The cat sees the red ball.")
print("cross-attention maps:", tuple(cross_maps.shape), "= (layers, heads, written, source)")
layer_id, head_id = best_head(source, written, cross_maps)
links = alignment(cross_maps[layer_id, head_id])
print(f"layer {layer_id}, head {head_id}:",
      ", ".join(f"{w} <- {source[s]}" for w, s in zip(written, links, strict=True)))
print(f"{crossings(links, written)} crossing; words at their English word: "
      f"{alignment_accuracy(source, written, cross_maps[layer_id, head_id]):.0%}")

# %%
# NBVAL_IGNORE_OUTPUT
from course_utils.widgets.cross_attention_explorer import cross_attention_explorer

cross_attention_explorer(translator, test_src[:8] + ["The cat sees the red ball."])

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
# - **Cross-attention** is the same module with queries from the decoder and keys/values from
#   the encoder's output: weights `(batch, heads, T, S)`, padded source words blocked as keys,
#   no causal mask.
# - A decoder layer is causal self-attention, cross-attention and an MLP, each as
#   `norm(x + sublayer(x))` (post-norm); the course's `EncoderDecoder` equals `nn.Transformer`.
#   The cheat-sheet class needs `batch_first=True`, masks, embeddings, positions and a head.
# - Greedy decoding starts at `<s>`, pads finished rows and stops when all are done; a cache
#   keeps the encoder output, cross-attention keys/values and past self-attention keys/values.
#
# Next, lesson 03 stacks these layers into **GPT** and **BERT**.

# %%
progress()
