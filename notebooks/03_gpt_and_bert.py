# %% [markdown]
# # 03 · GPT and BERT from scratch
#
# Lesson 02 built one multi-head attention layer. Stack a few of them with small MLPs in
# between, put embeddings in front and a prediction head on top, and you have the two model
# families behind most of today's language technology:
#
# - **GPT** (decoder-only): every token sees only the tokens before it, and the model learns
#   to predict the **next** token. It *generates* text.
# - **BERT** (encoder-only): every token sees the whole sentence, and the model learns to fill
#   in **masked** tokens. It *understands* text: classification, search, tagging.
#
# **You will:** write a byte-pair-encoding tokenizer's training step and encoder and match
# the real tokenizer's ids; write every piece of GPT (layer norm, GELU, the MLP, the pre-norm
# block, the causal + padding mask and the position ids of a left-padded batch with a cache,
# the forward pass) and load the course's trained weights into *your own* class; write the
# training step and train a small GPT from scratch on the course's stories; turn logits into
# text with greedy decoding, temperature, top-k and top-p (yours); make generation fast with a
# KV cache; load the course's BERT into our classes; and contrast the two families.
#
# Stuck on an exercise? `hint("03.1")` gives a hint and `solution("03.1")` shows the reference.

# %%
from course_utils import check, hint, progress, seed_everything, solution, start_lesson

# One thread: this lesson's models are small, so a second thread gains little, and on a busy
# machine (Binder, a shared laptop) threads that wait for each other can make it far slower.
start_lesson(seed=0, threads=1)

import time

import matplotlib.pyplot as plt
import torch
from tqdm.auto import tqdm

torch.set_printoptions(precision=3, sci_mode=False)

# %% [markdown]
# ## 1. Tokens: byte-pair encoding
#
# A GPT reads numbers, not text. Its **tokenizer** cuts text into pieces from a fixed
# vocabulary and gives each piece an id. The course's GPT, like GPT-2, uses **byte-level
# byte-pair encoding (BPE)**:
#
# 1. Split the text into words. A space belongs to the word *after* it, so `" park"` is a
#    different word from `"park"`.
# 2. Write each word's UTF-8 bytes as characters: printable bytes stand for themselves, the
#    others get stand-ins, so the space byte is shown as `Ġ` and a newline as `Ċ`. Every text
#    is a sequence of these 256 symbols: no word is ever unknown.
# 3. Apply the tokenizer's list of **merges**: pairs of symbols that are joined into one.
#
# The merge list is learned from a corpus by repeating one **training step**: count every pair
# of adjacent symbols over the table of words and their frequencies, and merge the most
# frequent pair everywhere. Frequent words end up as one token; rare ones stay in pieces.

# %%
from course_utils import bpe

print(bpe.pretokenize("Mia went to the park.\nIt's  late!"))

# %% [markdown]
# ### Exercise 03.1: one BPE training step
#
# `word_freqs` maps each word, a tuple of symbols, to its count, e.g.
# `{("l", "o", "w"): 5, ("l", "o", "w", "e", "r"): 2}`. Return `(pair, new_word_freqs)`:
#
# - `pair`: the most frequent pair of adjacent symbols, where a word that occurs $n$ times
#   adds $n$ for each of its pairs (a pair can occur twice in one word). **Tie rule:** among
#   equally frequent pairs take the *smallest* (Python's `min` on the tuples), so the result
#   does not depend on the order of the table. With no pair at all, `pair` is `None`.
# - `new_word_freqs`: the table with `pair` merged in every word, left to right without
#   overlaps (`a a a` becomes `aa a`); words that become equal add their counts.

# %%
def bpe_train_step(word_freqs: dict) -> tuple:
    ### BEGIN SOLUTION
    counts = {}
    for word, n in word_freqs.items():
        for pair in zip(word, word[1:], strict=False):
            counts[pair] = counts.get(pair, 0) + n
    if not counts:
        return None, dict(word_freqs)
    best = max(counts.values())
    pair = min(p for p, c in counts.items() if c == best)
    merged = {}
    for word, n in word_freqs.items():
        new, i = [], 0
        while i < len(word):
            if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
                new.append(word[i] + word[i + 1])
                i += 2
            else:
                new.append(word[i])
                i += 1
        merged[tuple(new)] = merged.get(tuple(new), 0) + n
    return pair, merged
    ### END SOLUTION


# %%
check("03.1", bpe_train_step)

# %% [markdown]
# Twenty steps on the words of a few sentences: the first merges join a space to a
# frequent letter and build the most common words.

# %%
from collections import Counter

from course_utils.bpe import bpe_train_step

sentences = ["Mia went to the park with her dog.", "The dog ran to the tree and back.",
             "Then Mia and the dog went home, and they were happy."]
table = dict(Counter(tuple(w) for s in sentences for w in bpe.pretokenize(s)))
learned = []
for _ in range(20):
    pair, table = bpe_train_step(table)
    learned.append("".join(pair))
print("merged, in order:", learned)
print("the words now:", [" ".join(w) for w in list(table)[:8]])

# %% [markdown]
# ### Exercise 03.2: the encoder
#
# To tokenize a new word, replay the merges **by rank**: start from single symbols and, while
# some adjacent pair of the word is in the merge list, merge the pair that was learned
# *earliest* (lowest index in `merges`) everywhere in the word. Return the list of token
# strings. `merges` is a list of pairs in learning order (or a dict `{pair: rank}`); `word`
# is one pre-tokenized word such as `"Ġpark"`.

# %%
def bpe_encode_word(word: str, merges) -> list[str]:
    ### BEGIN SOLUTION
    ranks = merges if isinstance(merges, dict) else {tuple(p): r for r, p in enumerate(merges)}
    symbols = list(word)
    while True:
        pairs = [p for p in zip(symbols, symbols[1:], strict=False) if p in ranks]
        if not pairs:
            return symbols
        best = min(pairs, key=lambda p: ranks[p])
        new, i = [], 0
        while i < len(symbols):
            if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                new.append(symbols[i] + symbols[i + 1])
                i += 2
            else:
                new.append(symbols[i])
                i += 1
        symbols = new
    ### END SOLUTION


# %%
check("03.2", bpe_encode_word)

# %% [markdown]
# The same encoder, given the course tokenizer's own 766 merges, gives exactly the ids of the
# Hugging Face `tokenizers` library that the course loads with the model:

# %%
from course_utils.bpe import bpe_encode_word, course_bpe
from course_utils.pretrained import load_pretrained

_, tokenizer = load_pretrained("course-gpt")
course_tokenizer = course_bpe()
text = 'Omar found 5 coins in an old box. "Wow," he said, and it\'s antidisestablishmentarian!'
pieces = [t for w in bpe.pretokenize(text) for t in bpe_encode_word(w, course_tokenizer.merges)]
ids = [course_tokenizer.vocab[t] for t in pieces]
print(pieces)
print(f"{len(course_tokenizer.merges)} merges; same ids as the tokenizers library:",
      ids == tokenizer(text, verbose=False)["input_ids"])

# %% [markdown]
# **Why the course's label words are single tokens.** Lesson 04 asks the model to answer
# with a label word ("good", "bad", "happy", ...), and score the answer by comparing the
# next-token logits of the candidate labels. That works only if each label is **one** token:
# the model makes one choice per step, so a word split into pieces is not one choice it can
# copy from its examples, and two words that start with the same piece cannot be told apart
# by their first step at all. The course picked its label words among those the tokenizer
# keeps whole (in their usual form, with the space in front):

# %%
for word in ["good", "bad", "happy", "negative", "positive", "wonderful", "disappointing",
             "Zyxquorb"]:
    pieces = tokenizer.tokenize(" " + word)
    print(f"{word!r:>16}: {len(pieces)} token{'s' if len(pieces) > 1 else ' '} {pieces}")

# %% [markdown]
# **What byte-level BPE does with spaces.** The space is part of the token after it, so the
# same word is a different token at the start of a text, after a space, or capitalised;
# two spaces become a space token plus a word with one; and any byte sequence, even an emoji,
# can be written with the 256 byte symbols:

# %%
for piece in ["the", " the", " The", "  the", " 😀"]:
    enc = tokenizer(piece, verbose=False)["input_ids"]
    print(f"{piece!r:>8} -> ids {enc}, tokens {tokenizer.convert_ids_to_tokens(enc)}")

# %% [markdown]
# ## 2. The cheat-sheet GPT and BERT, read correctly
#
# Cheat-sheets give a GPT and a BERT in a dozen lines each, built from PyTorch's
# `nn.TransformerDecoderLayer` and `nn.TransformerEncoderLayer`. Here they are, **the
# cheat-sheet version**, as they are usually written (positions and mask follow the input's
# length, `seq_len` and `sz`):

# %%
from torch import nn


class CheatSheetGPT(nn.Module):
    def __init__(self, vocab_size=100, d_model=32, nhead=4, num_layers=2, max_len=64):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Parameter(torch.zeros(1, max_len, d_model))
        self.layers = nn.ModuleList(nn.TransformerDecoderLayer(d_model, nhead)
                                    for _ in range(num_layers))
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, x):
        seq_len = x.size(1)
        sz = seq_len
        mask = torch.triu(torch.full((sz, sz), float("-inf")), diagonal=1)  # additive
        h = self.embed(x) + self.pos[:, :seq_len]
        for layer in self.layers:
            h = layer(h, mask)
        return self.head(h)


class CheatSheetBERT(nn.Module):
    def __init__(self, vocab_size=100, d_model=32, nhead=4, num_layers=2, max_len=64):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Parameter(torch.zeros(1, max_len, d_model))
        layer = nn.TransformerEncoderLayer(d_model, nhead)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.mlm_head = nn.Linear(d_model, vocab_size)

    def forward(self, x, attention_mask):
        h = self.embed(x) + self.pos[:, :x.size(1)]
        return self.mlm_head(self.encoder(h, mask=attention_mask))


tokens = torch.randint(0, 100, (2, 6))  # (batch, seq)
padding = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
for name, run in {"CheatSheetGPT": lambda: CheatSheetGPT()(tokens),
                  "CheatSheetBERT": lambda: CheatSheetBERT()(tokens, padding)}.items():
    try:
        run()
    except (RuntimeError, AssertionError, TypeError) as exc:
        print(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:150]}")

# %% [markdown]
# What really goes wrong, precisely:
#
# 1. **The decoder layer needs a `memory`.** `nn.TransformerDecoderLayer` belongs to the
#    *encoder-decoder* Transformer (translation): after self-attention it runs
#    **cross-attention** over the encoder's output, `forward(tgt, memory, tgt_mask=...)`. The
#    call `layer(h, mask)` passes the causal mask **where the memory goes**: the layer
#    cross-attends to the rows of a `(sz, sz)` mask as if they were encoder vectors, and
#    self-attention runs with no mask at all. It raises here because the mask is 2-D and a
#    batched memory must be 3-D; a 3-D "mask" of the right width would run, silently wrong.
# 2. **`batch_first=False` is the default.** Both layers read a 3-D input as
#    `(seq, batch, d_model)`, so `(batch, seq)` tokens are silently read with the batch as the
#    sequence: attention mixes *different sentences* at the same position, and a causal mask
#    would run over the batch. Nothing raises when the shapes happen to fit.
# 3. **BERT's padding mask goes in as `src_mask`.** `mask=` is the `(seq, seq)` attention
#    pattern shared by the whole batch; a tokenizer's `(batch, seq)` `attention_mask` belongs
#    in `src_key_padding_mask=` (with `True` = padding, the opposite of the tokenizer's 1 =
#    token). Here it raises because the tokenizer's mask holds integers; as booleans the
#    shapes clash ((2, 6) is not (seq, seq) = (2, 2), the batch read as the sequence); and a
#    square batch, `batch == seq`, runs without a word and masks the wrong thing.
# 4. **Additive and boolean masks are not interchangeable.** The cheat-sheet's causal mask is
#    *additive* (0 = allowed, `-inf` = blocked). Hand it to attention code written for 0/1
#    masks, `scores.masked_fill(mask == 0, -1e9)`, and it blocks exactly the allowed keys:

# %%
def attention_01_mask(q, k, v, mask):
    """Attention written for a 0/1 mask (1 = may attend)."""
    scores = (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).masked_fill(mask == 0, -1e9)
    return scores.softmax(-1) @ v, scores.softmax(-1)


additive = torch.triu(torch.full((4, 4), float("-inf")), diagonal=1)
x4 = torch.randn(4, 8)
_, weights = attention_01_mask(x4, x4, x4, additive)
print("weights with the additive causal mask (rows: queries):")
print(weights)

# %% [markdown]
# Token 0 gives all its weight to tokens 1-3, its *future*, and none to itself; the last
# token, which may see every key, has every key blocked and gets equal weights.
#
# `course_utils.gpt.GPT` fixes all of it: a GPT block is **self-attention + MLP only** (no
# cross-attention, so no memory), tensors are `(batch, seq, d_model)` throughout, the causal
# mask is boolean and built for the actual number of queries and keys (including keys from a
# cache, section 7), and padding is a separate per-sequence key mask (section 3).
#
# ## 3. GPT, part by part
#
# ```
# input_ids (batch, seq)
#   -> token embedding + position embedding        (batch, seq, d_model)
#   -> N x block:  x = x + attention(layer_norm(x))   causal multi-head self-attention
#                  x = x + mlp(layer_norm(x))         d_model -> 4 d_model -> d_model, GELU
#   -> final layer_norm
#   -> logits = x @ token_embedding.T              (batch, seq, vocab): the tied output head
# ```
#
# - **Pre-norm** (GPT-2): each sub-layer normalises its *input* and adds its output to the
#   residual stream `x`, which itself is never normalised along the way. That keeps deep
#   stacks stable to train. (BERT and the original Transformer normalise *after* adding:
#   post-norm.)
# - **Tied output head**: the matrix that turns token ids into vectors also turns the final
#   vectors back into one score per token of the vocabulary. It saves `vocab x d_model`
#   parameters and works well.
# - The attention is lesson 02's, with `W_q, W_k, W_v` fused in one `W_qkv` layer (as GPT-2's
#   `c_attn`) and PyTorch's fused attention kernel for speed.

# %% [markdown]
# You will now write the block's pieces yourself, each checked against PyTorch.
#
# ### Layer normalisation
#
# For each vector $x$ of `d_model` features (the last axis), layer norm subtracts the mean,
# divides by the standard deviation, and applies a learned scale and shift:
# $$\mathrm{LN}(x) = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} \cdot w + b, \qquad
# \mu = \tfrac{1}{d}\textstyle\sum_i x_i, \quad \sigma^2 = \tfrac{1}{d}\sum_i (x_i - \mu)^2.$$
# Every position is normalised on its own: unlike batch norm, nothing is shared across the
# batch or the sequence, so it works the same for one token or a thousand.
#
# ### Exercise 03.3: layer norm
#
# Return `LN(x)` over the last axis of `x`, with `weight` $w$ and `bias` $b$ of shape
# `(d_model,)` and `eps` $\epsilon$ (default `1e-5`, PyTorch's and GPT-2's). Three details make
# it `torch.nn.LayerNorm`'s: the variance divides by $d$, not $d - 1$ (`torch.var`'s default);
# $\epsilon$ goes inside the square root; and the variance is computed around the mean (the
# shortcut $E[x^2] - E[x]^2$ loses every digit when the values are far from 0).

# %%
def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
               eps: float = 1e-5) -> torch.Tensor:
    ### BEGIN SOLUTION
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias
    ### END SOLUTION


# %%
check("03.3", layer_norm)

# %%
from course_utils.gpt_parts import layer_norm

ln = torch.nn.LayerNorm(6, eps=1e-5)
with torch.no_grad():
    ln.weight.uniform_(0.5, 1.5)
    ln.bias.uniform_(-1, 1)
x = torch.randn(2, 3, 6) * 4 + 10
print("max |layer_norm - nn.LayerNorm| =",
      f"{(layer_norm(x, ln.weight, ln.bias, ln.eps) - ln(x)).abs().max().item():.1e}")

# %% [markdown]
# ### GELU, in GPT-2's tanh form
#
# The MLP's non-linearity is the **GELU**, $x \cdot \Phi(x)$ with $\Phi$ the standard normal
# CDF: like ReLU for large $|x|$, but smooth, and slightly negative just below 0. GPT-2 was
# trained with a tanh approximation of it, and its weights expect exactly that form:
# $$\mathrm{GELU}(x) \approx 0.5\,x\left(1 + \tanh\!\left(\sqrt{2/\pi}\,(x +
# 0.044715\,x^3)\right)\right).$$
#
# ### Exercise 03.4: GELU (tanh form)
#
# Return the tanh form elementwise, for a tensor of any shape and dtype (`torch.tanh` stays
# finite for large inputs).

# %%
import math


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    ### BEGIN SOLUTION
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    ### END SOLUTION


# %%
check("03.4", gelu_tanh)

# %%
import torch.nn.functional as F

from course_utils.gpt_parts import gelu_tanh

grid = torch.linspace(-4, 4, 801)
print("max |tanh form - F.gelu(approximate='tanh')| =",
      f"{(gelu_tanh(grid) - F.gelu(grid, approximate='tanh')).abs().max().item():.1e}")
print("max |tanh form - exact erf GELU|            =",
      f"{(gelu_tanh(grid) - F.gelu(grid)).abs().max().item():.1e}  (small, but not zero)")

# %% [markdown]
# ### Exercise 03.5: the MLP
#
# The block's MLP works on each position on its own: a linear layer `d_model -> d_ff`
# (`d_ff = 4 d_model` in GPT-2), GELU, and a linear layer back to `d_model`. The weights come
# in `nn.Linear`'s layout, `(out_features, in_features)`, so a layer is `x @ W.T + b`. Return
# the MLP's output (the block adds the residual, not the MLP).

# %%
def mlp_forward(x: torch.Tensor, fc_weight: torch.Tensor, fc_bias: torch.Tensor,
                proj_weight: torch.Tensor, proj_bias: torch.Tensor) -> torch.Tensor:
    ### BEGIN SOLUTION
    return gelu_tanh(x @ fc_weight.T + fc_bias) @ proj_weight.T + proj_bias
    ### END SOLUTION


# %%
check("03.5", mlp_forward)

# %% [markdown]
# ### Exercise 03.6: the pre-norm block, as a class
#
# Now the whole block, as an `nn.Module` of your own. Its parameters are given (the grader
# loads reference weights into them **by these names**, so keep them): `ln_1`, `attn` (the
# course's causal self-attention, lesson 02's with `W_qkv` and `W_o`), `ln_2` and `mlp` (with
# `mlp.fc` and `mlp.proj`). Write `forward`: with your `layer_norm` and `mlp_forward`,
# `x + attn(ln_1(x))`, then `+ mlp(ln_2(...))` of *that* sum: both residuals, and each norm
# applied only to its sub-layer's input (pre-norm). Use each norm's own `eps`. The grader
# builds your class for blocks of odd widths, one head and sixteen heads, and an `eps` other
# than `1e-5`, and compares the output and every parameter's gradient.

# %%
from course_utils.gpt import MLP, CausalSelfAttention, GPTConfig
from course_utils.gpt_parts import mlp_forward


class MyBlock(torch.nn.Module):
    def __init__(self, config: GPTConfig, layer_idx: int = 0) -> None:
        super().__init__()
        self.ln_1 = torch.nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.attn = CausalSelfAttention(config, layer_idx)
        self.ln_2 = torch.nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.mlp = MLP(config)  # self.mlp.fc: d_model -> d_ff, self.mlp.proj: d_ff -> d_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        x = x + self.attn(layer_norm(x, self.ln_1.weight, self.ln_1.bias, self.ln_1.eps))
        h = layer_norm(x, self.ln_2.weight, self.ln_2.bias, self.ln_2.eps)
        fc, proj = self.mlp.fc, self.mlp.proj
        return x + mlp_forward(h, fc.weight, fc.bias, proj.weight, proj.bias)
        ### END SOLUTION


# %%
block_passed = check("03.6", MyBlock)

# %%
from course_utils.gpt import GPT, GPTConfig

tiny = GPT(GPTConfig(vocab_size=1024, max_seq_len=64, d_model=64, num_heads=4, num_layers=2))
print(tiny)

# %% [markdown]
# `MyBlock`, given this GPT's first block's weights, computes its output (with the reference's
# forward, `course_utils.gpt_parts.PreNormBlock`, if 03.6 is not solved yet):

# %%
from course_utils.gpt_parts import PreNormBlock

block_class = MyBlock if block_passed else PreNormBlock
mine_block = block_class(tiny.config, 0)
mine_block.load_state_dict(tiny.blocks[0].state_dict())
x = torch.randn(2, 5, 64)
with torch.no_grad():
    gap = (mine_block(x) - tiny.blocks[0](x)).abs().max().item()
print(f"max |{block_class.__name__} - Block| = {gap:.1e}")

# %% [markdown]
# Where the parameters are: with a small vocabulary and a narrow model, the embedding table is
# a large share. (Each block holds $12 d_{model}^2$ weights: $4 d_{model}^2$ for attention,
# $8 d_{model}^2$ for the MLP.)

# %%
parts = {"token embedding (= output head)": tiny.token_embedding,
         "position embedding": tiny.position_embedding,
         "blocks: attention": [b.attn for b in tiny.blocks],
         "blocks: MLP": [b.mlp for b in tiny.blocks],
         "layer norms": [*[b.ln_1 for b in tiny.blocks], *[b.ln_2 for b in tiny.blocks],
                         tiny.ln_f]}
total = tiny.num_parameters()
for name, mods in parts.items():
    mods = mods if isinstance(mods, list) else [mods]
    n = sum(p.numel() for m in mods for p in m.parameters())
    print(f"{name:<33} {n:>9,}  {100 * n / total:5.1f}%")
print(f"{'total':<33} {total:>9,}")

# %% [markdown]
# ### The causal mask inside GPT
#
# In training, GPT reads a whole window of tokens at once and must not let token $i$ see
# tokens after $i$: lesson 01's causal mask. When generating with a cache (section 7), GPT
# feeds only the **new** tokens as queries, while the keys are *all* tokens so far: the
# `past_len` cached ones plus the new ones. Query $i$ is then the token at position
# `past_len + i` and may look at keys $0, \dots,$ `past_len + i`. The mask is a
# `(query_len, past_len + query_len)` rectangle: the bottom rows of the full triangle.
#
# `torch.ones(query_len, past_len + query_len).tril(diagonal=past_len)` builds it
# (`course_utils.gpt.causal_mask_with_past`):

# %%
from course_utils.gpt import causal_mask_with_past

print("3 new tokens after 2 cached ones (rows: new tokens, columns: all keys):")
print(causal_mask_with_past(3, past_len=2).int())

# %% [markdown]
# ### A batch of prompts: padding
#
# To generate for several prompts at once, they must have the same length. The short ones are
# **padded on the left** (so every row's newest token is in the last column, where the next
# token is read), and the tokenizer's `attention_mask` marks real tokens with 1 and padding
# with 0. The mask now has two jobs: a query must not see its future, **and** no query may
# see a padding key. A padding query itself has no real key before it: its row is all
# `False`, and its output is never used.
#
# ### Exercise 03.7: the causal + padding mask, with cached tokens
#
# `attention_mask` is `(batch, key_len)`: all columns so far, the cached ones and the
# `query_len` new ones (the last columns). Return a boolean `(batch, query_len, key_len)`
# mask, `True` where new token `i` (column `key_len - query_len + i`) may attend to key `j`:
# `j` is not after it and `attention_mask[b, j]` is 1. The mask may come as ints, bools or
# floats; padding can be anywhere.

# %%
def padded_causal_mask(attention_mask: torch.Tensor, query_len: int) -> torch.Tensor:
    ### BEGIN SOLUTION
    key_len = attention_mask.shape[1]
    causal = torch.ones(query_len, key_len, dtype=torch.bool).tril(key_len - query_len)
    return causal[None] & (attention_mask[:, None, :] != 0)
    ### END SOLUTION


# %%
check("03.7", padded_causal_mask)

# %%
from course_utils.padded_batch import padded_causal_mask

batch_mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
print("row 0 (two padding columns), the last 2 tokens as queries:")
print(padded_causal_mask(batch_mask, 2)[0].int())

# %% [markdown]
# ### Position ids
#
# Attention by itself ignores order: shuffle the keys and values together and the output does
# not change. GPT adds a learned **position embedding** to every token embedding: row $p$ of a
# `(max_seq_len, d_model)` table for the token at position $p$. The table is indexed by
# **position ids**, one per token. With a cache, the new tokens continue where the cached
# ones stopped: after 5 cached tokens, the next one sits at position 5, not 0
# (`course_utils.gpt.make_position_ids`):

# %%
from course_utils.gpt import make_position_ids

print(make_position_ids(torch.zeros(2, 3, dtype=torch.long), past_length=5))

# %% [markdown]
# In a left-padded batch the column is not the position: a prompt padded by two columns
# starts at column 2, but its first token was trained at position 0. A token's position is
# the number of **real** tokens before it, cached ones included.
#
# ### Exercise 03.8: position ids of a left-padded batch
#
# Return the `(batch, query_len)` position ids (`torch.long`) of the last `query_len` columns
# of `attention_mask`: for a real token, the number of real tokens before it. Padding is never
# attended to, so it may get any valid position (`transformers` uses 1); not a negative one.

# %%
def padded_position_ids(attention_mask: torch.Tensor, query_len: int) -> torch.Tensor:
    ### BEGIN SOLUTION
    real = attention_mask != 0
    positions = real.long().cumsum(dim=-1) - 1
    return positions.masked_fill(~real, 1)[:, -query_len:]
    ### END SOLUTION


# %%
check("03.8", padded_position_ids)

# %%
from course_utils.padded_batch import padded_position_ids

print("prompt of 6 columns:", padded_position_ids(batch_mask, 6).tolist())
print("then one new token :", padded_position_ids(torch.cat(
    [batch_mask, torch.ones(2, 1, dtype=torch.long)], dim=1), 1).tolist())

# %% [markdown]
# ### Exercise 03.9: the forward pass
#
# Assemble the whole GPT. `model` has the parameter names of `course_utils.gpt.GPT`:
# `model.token_embedding` and `model.position_embedding` (`nn.Embedding`s), `model.blocks`
# (a list of blocks: call each, `x = block(x)`) and `model.ln_f` (the final norm). Return the
# logits `(batch, seq, vocab)`: embed the tokens, add the position embedding of positions
# `past_length, past_length + 1, ...`, run every block in order, apply the final norm, and
# score every token of the vocabulary with the **tied** head, `x @ token_embedding.weight.T`.

# %%
def gpt_forward(model, input_ids: torch.Tensor, past_length: int = 0) -> torch.Tensor:
    ### BEGIN SOLUTION
    positions = make_position_ids(input_ids, past_length)
    x = model.token_embedding(input_ids) + model.position_embedding(positions)
    for block in model.blocks:
        x = block(x)
    x = layer_norm(x, model.ln_f.weight, model.ln_f.bias, model.ln_f.eps)
    return x @ model.token_embedding.weight.T
    ### END SOLUTION


# %%
check("03.9", gpt_forward)

# %% [markdown]
# That is all of GPT. Here it is as a class of your own: the parameters (with the names GPT-2's
# weights are loaded by), your blocks and your forward pass. Section 5 loads the course's
# trained weights into it.

# %%
from course_utils.gpt_parts import gpt_forward


class MyGPT(torch.nn.Module):
    """A GPT made of your pieces: course_utils.gpt.GPT's parameter names, your MyBlock and
    your forward pass."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = torch.nn.Embedding(config.vocab_size, config.d_model)
        self.position_embedding = torch.nn.Embedding(config.max_seq_len, config.d_model)
        self.blocks = torch.nn.ModuleList(block_class(config, i)  # your MyBlock
                                          for i in range(config.num_layers))
        self.ln_f = torch.nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, past_length: int = 0) -> torch.Tensor:
        if past_length + input_ids.shape[1] > self.config.max_seq_len:
            raise ValueError(f"{past_length} + {input_ids.shape[1]} positions exceed the "
                             f"context of {self.config.max_seq_len} tokens the model has "
                             "position embeddings for; shorten the input")
        return gpt_forward(self, input_ids, past_length)

# %% [markdown]
# ## 4. Train a small GPT from scratch
#
# The course's corpus is a set of short generated stories (`course_utils.data.stories`). We
# tokenize some of them with the course tokenizer (byte-level BPE, 1,024 tokens), join them
# into one long stream with an end-of-text token after each, and train on random windows.
#
# The objective is **next-token prediction**: the logits at position $t$ are scored, with
# cross-entropy, against the token at $t+1$. A model that knows nothing scores
# $\ln(\text{vocab}) \approx 6.9$; every bit of structure it learns lowers that.

# %%
from course_utils.data import stories
from course_utils.pretrained import load_pretrained
from course_utils.training import cosine_lr, encode_corpus, get_batch, lm_loss

_, tokenizer = load_pretrained("course-gpt")
corpus = stories()
encode = lambda text: tokenizer(text, verbose=False)["input_ids"]
train_texts = corpus["train"][:4000]["text"]  # a list of 4,000 strings
val_texts = corpus["validation"][:]["text"]
train_tokens = encode_corpus(tokenizer(train_texts, verbose=False)["input_ids"],
                             tokenizer.eos_token_id)
val_tokens = encode_corpus(tokenizer(val_texts, verbose=False)["input_ids"],
                           tokenizer.eos_token_id)
print(f"{len(train_tokens):,} training tokens, {len(val_tokens):,} validation tokens")
print("a window:", repr(tokenizer.decode(train_tokens[:40])))

# %% [markdown]
# A 2-layer GPT, 64 wide, 4 heads, reading 64 tokens at a time. Before training, its samples
# are random tokens from the vocabulary:

# %%
from course_utils.generation import generate

seed_everything(0)
config = GPTConfig(vocab_size=len(tokenizer), max_seq_len=64, d_model=64, num_heads=4,
                   num_layers=2)
model = GPT(config)
prompt = "Once upon a time"
prompt_ids = torch.tensor([encode(prompt)])


def sample(model: GPT, text: str = prompt, n: int = 30, seed: int = 0) -> str:
    ids = torch.tensor([encode(text)])
    out = generate(model, ids, n, do_sample=True, temperature=0.8, top_k=40,
                   generator=torch.Generator().manual_seed(seed))
    return tokenizer.decode(out[0])


@torch.no_grad()
def val_loss(model: GPT, n_batches: int = 8) -> float:
    g = torch.Generator().manual_seed(123)
    model.eval()
    return sum(lm_loss(model(b), b).item()
               for b in (get_batch(val_tokens, 16, 64, g) for _ in range(n_batches))) / n_batches


print(f"{model.num_parameters():,} parameters; validation loss {val_loss(model):.2f}")
print("before training:", repr(sample(model)))

# %% [markdown]
# ### Exercise 03.10: one training step
#
# Write the step the training loop repeats, and return the batch's loss (a Python float,
# before the update):
#
# 1. `optimizer.zero_grad()`: PyTorch *adds* new gradients to the old ones, and the model you
#    are given may still hold the last step's;
# 2. the forward pass, `logits = model(batch)`;
# 3. the **shifted** loss: the logits at position $t$ are scored against the token at
#    $t + 1$, so `logits[:, :-1]` against `batch[:, 1:]` (cross-entropy, averaged);
# 4. `loss.backward()`;
# 5. clip the gradients' total norm to `max_grad_norm`
#    (`torch.nn.utils.clip_grad_norm_`), so one unlucky batch cannot throw the weights far;
# 6. `optimizer.step()`.
#
# The grader runs your step and the reference's on the same model, batch and optimizer and
# compares every parameter afterwards.

# %%
def train_step(model, optimizer, batch: torch.Tensor, max_grad_norm: float = 1.0) -> float:
    ### BEGIN SOLUTION
    optimizer.zero_grad()
    logits = model(batch)
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                           batch[:, 1:].reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    return loss.item()
    ### END SOLUTION


# %%
check("03.10", train_step)

# %% [markdown]
# The training loop: a batch of windows and one step, 250 times, with AdamW. The learning
# rate warms up and then follows a cosine down to a tenth of its peak.

# %%
from course_utils.training import train_step

steps, batch_size, peak_lr = 250, 16, 3e-3
optimizer = torch.optim.AdamW(model.parameters(), lr=peak_lr, weight_decay=0.01)
g = torch.Generator().manual_seed(0)
losses = []
model.train()
started = time.perf_counter()
for step in (bar := tqdm(range(steps), desc="training")):
    for group in optimizer.param_groups:
        group["lr"] = cosine_lr(step, steps, peak_lr, warmup_steps=20)
    batch = get_batch(train_tokens, batch_size, config.max_seq_len, g)
    loss = train_step(model, optimizer, batch, max_grad_norm=1.0)
    losses.append(loss)
    bar.set_postfix(loss=f"{loss:.2f}")
train_seconds = time.perf_counter() - started
print(f"{steps} steps in {train_seconds:.0f} s; validation loss {val_loss(model):.2f}")

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(losses, alpha=0.4, label="training batch")
smooth = torch.tensor(losses).unfold(0, 20, 1).mean(1)
ax.plot(range(19, len(losses)), smooth, label="mean of 20 steps")
ax.axhline(torch.log(torch.tensor(float(len(tokenizer)))).item(), ls=":", c="gray",
           label="ln(vocab): knowing nothing")
ax.set_xlabel("step")
ax.set_ylabel("cross-entropy")
ax.set_title("training a 2-layer GPT on the course stories")
ax.legend()
plt.show()

# %%
for seed in range(3):
    print("after training:", repr(sample(model, seed=seed)))

# %% [markdown]
# From random tokens to story-shaped text: names, "and", full stops, quotation marks, the
# corpus's favourite phrases. It does not make sense yet; that takes a bigger model and more
# of the corpus. The course's bundled `course-gpt` is the same architecture, larger, trained
# for minutes instead of seconds.
#
# ## 5. Real weights in our GPT
#
# `course-gpt` is a Hugging Face `GPT2LMHeadModel`. `GPT.from_hf` copies its weights into our
# class (GPT-2 stores its linear layers transposed, as `Conv1D`), and our code must then
# compute the same numbers:

# %%
hf_gpt, tokenizer = load_pretrained("course-gpt")
gpt = GPT.from_hf(hf_gpt)
ids = torch.tensor([encode("Mia went to the park with her dog. The dog")])
with torch.no_grad():
    ours, theirs = gpt(ids), hf_gpt(ids).logits
c = gpt.config
print(f"course-gpt: {c.num_layers} layers, d_model {c.d_model}, {c.num_heads} heads, context "
      f"{c.max_seq_len}, vocabulary {c.vocab_size}")
print(f"{gpt.num_parameters():,} parameters; max |logits difference| = "
      f"{(ours - theirs).abs().max().item():.2e}")
ours_text = generate(gpt, ids, 20)
theirs_text = hf_gpt.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=20,
                              do_sample=False, pad_token_id=tokenizer.pad_token_id)
print("same greedy continuation as transformers' generate:",
      torch.equal(ours_text[:, :theirs_text.shape[1]], theirs_text))
print(repr(tokenizer.decode(ours_text[0])))

# %% [markdown]
# Now the moment of truth: the same weights in **your** class. `load_state_dict` finds every
# tensor by its name, so your `MyGPT` takes course-gpt's weights as they are:

# %%
mine = MyGPT(gpt.config).eval()
mine.load_state_dict(gpt.state_dict())
with torch.no_grad():
    gap = (mine(ids) - hf_gpt(ids).logits).abs().max().item()
print(f"your GPT vs transformers' GPT2LMHeadModel: max |logits difference| = {gap:.2e}")

greedy = ids
with torch.no_grad():
    for _ in range(20):  # greedy decoding with your model, no cache
        next_id = mine(greedy)[:, -1].argmax(-1, keepdim=True)
        greedy = torch.cat([greedy, next_id], dim=1)
print("same greedy text as transformers' generate:", torch.equal(greedy, theirs_text))
print(repr(tokenizer.decode(greedy[0])))
try:
    mine(torch.zeros(1, gpt.config.max_seq_len + 1, dtype=torch.long))
except ValueError as exc:
    print("ValueError:", exc)

# %% [markdown]
# With a network connection the same two lines take OpenAI's GPT-2 (124M parameters):
# `hf_gpt, tokenizer = load_pretrained("gpt2")`, then `mine = MyGPT(GPT.from_hf(hf_gpt).config)`
# and `mine.load_state_dict(GPT.from_hf(hf_gpt).state_dict())`. (Not run here: the course
# works offline.)

# %% [markdown]
# ## 6. From logits to text: decoding
#
# The model gives a score (logit) for every token of the vocabulary; the next token is picked
# from them, appended, and the loop repeats. How it is picked changes the text a lot:
#
# - **greedy**: always the most likely token. Deterministic, and prone to loops.
# - **temperature** $T$: sample from $\mathrm{softmax}(\text{logits} / T)$. $T < 1$ sharpens
#   the distribution towards greedy, $T > 1$ flattens it towards random.
# - **top-k**: keep only the $k$ most likely tokens, then sample. Cuts the long tail of
#   unlikely tokens, whose total probability adds up to surprising nonsense.
# - **top-p** (nucleus): keep the smallest set of most likely tokens whose probabilities add
#   up to $p$. Adapts to the context: few candidates when the model is sure, many when not.
#
# A filtered token gets the logit $-\infty$, which the softmax turns into probability 0.
#
# ### Exercise 03.11: top-k filtering
#
# Return a copy of `logits` (shape `(..., vocab)`) where every logit smaller than the row's
# $k$-th largest is `float("-inf")`. Keep ties with the $k$-th largest (as `transformers`
# does), and if $k$ is larger than the vocabulary, keep everything.

# %%
def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    ### BEGIN SOLUTION
    k = min(k, logits.shape[-1])
    kth_largest = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth_largest, float("-inf"))
    ### END SOLUTION


# %%
check("03.11", top_k_filter)

# %% [markdown]
# ### Exercise 03.12: top-p (nucleus) filtering
#
# Return a copy of `logits` where only the **nucleus** survives: sort the tokens from most to
# least likely and keep them while the probability of the tokens *before* each one is still
# below `p`. So the token that makes the total reach `p` is kept, and the most likely token
# is always kept (nothing comes before it), even when its probability alone exceeds `p`.
# Every other logit becomes `float("-inf")`. Tied tokens at the boundary may go either way.

# %%
def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    ### BEGIN SOLUTION
    sorted_probs, order = logits.softmax(dim=-1).sort(dim=-1, descending=True)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
    keep_sorted = mass_before < p
    keep = keep_sorted.scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))
    ### END SOLUTION


# %%
check("03.12", top_p_filter)

# %% [markdown]
# Here is the model's next-token distribution after a prompt, and what each setting does to
# it (`next_token_distribution` applies temperature, then top-k, then top-p, as
# `transformers` does):

# %%
from course_utils.generation import next_token_distribution, top_k_filter, top_p_filter

context = "Mia went to the"
with torch.no_grad():
    logits = gpt(torch.tensor([encode(context)]))[0, -1]
settings = {"T = 1": {}, "T = 0.5": {"temperature": 0.5}, "T = 2": {"temperature": 2.0},
            "top-k = 3": {"top_k": 3}, "top-p = 0.8": {"top_p": 0.8}}
top = torch.topk(logits, 10).indices
labels = [repr(tokenizer.decode([i])) for i in top]
fig, axes = plt.subplots(1, len(settings), figsize=(17, 3.3), sharey=True)
for ax, (name, kw) in zip(axes, settings.items(), strict=True):
    probs = next_token_distribution(logits, **kw)
    ax.bar(range(10), probs[top], color="tab:blue")
    ax.set_xticks(range(10), labels, rotation=70, fontsize=8)
    kept = int((probs > 0).sum())
    ax.set_title(f"{name}: {kept} token{'s' if kept > 1 else ''} possible", fontsize=10)
axes[0].set_ylabel("probability")
fig.suptitle(f"next token after {context!r}")
plt.tight_layout()
plt.show()

# %%
start = torch.tensor([encode("Once upon a time,")])
for name, kw in {"greedy": {}, "T = 0.7, top-k 40": dict(do_sample=True, temperature=0.7,
                                                          top_k=40),
                 "T = 1.5 (no filter)": dict(do_sample=True, temperature=1.5),
                 "T = 1.5, top-p 0.9": dict(do_sample=True, temperature=1.5, top_p=0.9)}.items():
    out = generate(gpt, start, 30, generator=torch.Generator().manual_seed(1), **kw)
    print(f"{name:<22}", repr(tokenizer.decode(out[0, start.shape[1]:])))

# %% [markdown]
# ## 7. The KV cache
#
# Generating token $t$ needs the keys and values of all tokens before it, in every layer. A
# naive loop feeds the whole sequence through the model for every new token, recomputing
# those keys and values again and again: the work per token grows with the length.
#
# But in a causal model the keys and values of earlier tokens **never change** (they cannot
# see later tokens). So keep them: a **KV cache** stores every layer's keys and values, and
# each step feeds only the newest token. The projections and the MLP then run for one
# position instead of the whole sequence; the attention itself still reads every cached key
# and value, so it still costs $O(t)$ for token $t$ (the naive loop pays $O(t^2)$ for it).
#
# ### Exercise 03.13: one KV-cache step
#
# Given the new tokens' `q, k_new, v_new` and the cache `past_k, past_v` (all
# `(batch, heads, seq, d_k)`; the cache is `None` on the first step), append the new keys and
# values to the cache along the sequence axis, attend with the new queries over **all** keys
# and values (with `causal_mask_with_past`, since several new tokens must not see each other's
# future), and return `(output, all_keys, all_values)`.

# %%
from course_utils.attention import scaled_dot_product_attention


def attend_with_cache(q, k_new, v_new, past_k=None, past_v=None):
    ### BEGIN SOLUTION
    k = k_new if past_k is None else torch.cat([past_k, k_new], dim=-2)
    v = v_new if past_v is None else torch.cat([past_v, v_new], dim=-2)
    query_len, key_len = q.shape[-2], k.shape[-2]
    mask = causal_mask_with_past(query_len, key_len - query_len)
    output, _ = scaled_dot_product_attention(q, k, v, mask)
    return output, k, v
    ### END SOLUTION


# %%
check("03.13", attend_with_cache)

# %% [markdown]
# `GPT.forward(..., past_key_values=cache, use_cache=True)` does exactly this in every layer,
# with a `KVCache` object that holds each layer's keys and values. Same tokens, with and
# without the cache; the difference is the time:

# %%
n_new = 120
for use_cache in (True, False):
    t0 = time.perf_counter()
    out = generate(gpt, start, n_new, use_cache=use_cache)
    seconds = time.perf_counter() - t0
    print(f"use_cache={use_cache!s:<5}: {n_new / seconds:6.0f} tokens/s")
    if use_cache:
        cached = out
print("identical tokens:", torch.equal(cached, out))

# %% [markdown]
# (`benchmarks/generation.py` measures this properly, against `transformers`' `generate` too.)
#
# ## 8. BERT: the encoder-only sibling
#
# BERT is built from the same parts with three differences:
#
# 1. **No causal mask.** Every token attends to every other token, before and after it (only
#    padding is masked). Its vectors describe each token *in the context of the whole
#    sentence*.
# 2. **Segment embeddings.** BERT reads a *pair* of sentences, `[CLS] A [SEP] B [SEP]`, and adds
#    a third embedding saying which one each token belongs to (A = 0, B = 1).
# 3. **Post-norm** layers: `x = layer_norm(x + attention(x))`, `x = layer_norm(x + mlp(x))`.
#
# And it learns something else. Predicting the next token makes no sense when a token can
# see the whole sentence, so BERT is pre-trained on two tasks:
#
# - **masked language modelling (MLM)**: choose 15% of the (non-special) tokens and predict
#   them from both sides. Of the chosen tokens, 80% are replaced by `[MASK]`, 10% by a random
#   token and 10% are left unchanged; the loss is taken on the chosen ones only. The 10% + 10%
#   exist because `[MASK]` never appears when the model is used: if the prediction target were
#   always a `[MASK]`, the model would only learn good vectors for `[MASK]` positions. Random
#   and unchanged tokens make it keep a faithful vector for *every* token, since any token
#   might be one it has to check;
# - **next-sentence prediction (NSP)**: from the `[CLS]` token's vector, say whether B really
#   followed A.
#
# `course_utils.bert.BERT` has both heads; `BERT.from_hf` loads the course's `course-bert`
# (a `BertForPreTraining`) into it.

# %%
from course_utils.bert import BERT

hf_bert, bert_tokenizer = load_pretrained("course-bert")
bert = BERT.from_hf(hf_bert)
pair = bert_tokenizer("Mia lost her ball.", "She found it under the bed.", return_tensors="pt")
with torch.no_grad():
    ours = bert(pair["input_ids"], pair["token_type_ids"], pair["attention_mask"])
    theirs = hf_bert(**pair, output_hidden_states=True)
print("tokens  :", bert_tokenizer.convert_ids_to_tokens(pair["input_ids"][0]))
print("segments:", pair["token_type_ids"][0].tolist())
print(f"{bert.num_parameters():,} parameters; max |hidden state difference| = "
      f"{(ours.last_hidden_state - theirs.hidden_states[-1]).abs().max().item():.2e}")

# %% [markdown]
# ### Exercise 03.14: MLM masking, the 80/10/10 rule
#
# Prepare a batch for masked language modelling. `special_tokens_mask` is 1 on `[CLS]`,
# `[SEP]` and padding. Return `(masked_input_ids, labels)`:
#
# - choose each non-special token with probability `mlm_probability` (a
#   `torch.rand(..., generator=generator) < mlm_probability` draw);
# - `labels` hold the original id of each chosen token and -100 everywhere else (the loss
#   ignores -100);
# - of the chosen tokens, 80% become `mask_token_id`, 10% a random id from the vocabulary
#   (`torch.randint(vocab_size, ..., generator=generator)`) and 10% stay as they are.
#
# Draw every random number from `generator`, so a run can be repeated. The grader checks the
# rule on every token and the shares over batches of 16,000 tokens.

# %%
def mlm_mask(input_ids, special_tokens_mask, mask_token_id, vocab_size, generator,
             mlm_probability=0.15):
    ### BEGIN SOLUTION
    shape = input_ids.shape
    chosen = (torch.rand(shape, generator=generator) < mlm_probability) & (
        special_tokens_mask == 0)
    labels = input_ids.masked_fill(~chosen, -100)
    draw = torch.rand(shape, generator=generator)
    inputs = input_ids.masked_fill(chosen & (draw < 0.8), mask_token_id)
    random_ids = torch.randint(vocab_size, shape, generator=generator)
    inputs = torch.where(chosen & (draw >= 0.8) & (draw < 0.9), random_ids, inputs)
    return inputs, labels
    ### END SOLUTION


# %%
check("03.14", mlm_mask)

# %%
from course_utils.mlm import mlm_mask

enc = bert_tokenizer(["Mia went to the park with her dog and they played."] * 2000,
                     return_special_tokens_mask=True, return_tensors="pt")
masked, labels = mlm_mask(enc["input_ids"], enc["special_tokens_mask"],
                          bert_tokenizer.mask_token_id, len(bert_tokenizer),
                          torch.Generator().manual_seed(0))
chosen = labels != -100
print(f"chosen: {chosen.sum() / (enc['special_tokens_mask'] == 0).sum():.1%} of the ordinary "
      f"tokens; of those, [MASK] "
      f"{(masked[chosen] == bert_tokenizer.mask_token_id).float().mean():.1%}, unchanged "
      f"{(masked[chosen] == enc['input_ids'][chosen]).float().mean():.1%}")
print("one row:", bert_tokenizer.decode(masked[0]))

# %% [markdown]
# **Masked language modelling** in action: the model fills in the blank from both sides.

# %%
for text in ["Mia went to the [MASK] with her dog.", "Omar found 5 coins in an old [MASK].",
             "Suddenly it started to [MASK], so they ran to the shop."]:
    enc = bert_tokenizer(text, return_tensors="pt")
    where = (enc["input_ids"][0] == bert_tokenizer.mask_token_id).nonzero()[0, 0]
    with torch.no_grad():
        probs = bert(enc["input_ids"], enc["token_type_ids"],
                     enc["attention_mask"]).mlm_logits[0, where].softmax(-1)
    best = torch.topk(probs, 5)
    guesses = ", ".join(f"{bert_tokenizer.decode([int(i)])} ({p:.2f})"
                        for p, i in zip(best.values, best.indices, strict=True))
    print(f"{text:<55} -> {guesses}")

# %% [markdown]
# **Next-sentence prediction**: the classifier on the `[CLS]` vector says whether sentence B
# continues sentence A (class 0) or comes from somewhere else (class 1).

# %%
first = "Lena felt upset because the duck was lost."
for second in ["Lena was positive that the duck would come back.",
               "Kate bought 7 flowers and 7 flowers."]:
    enc = bert_tokenizer(first, second, return_tensors="pt")
    with torch.no_grad():
        p_next = bert(enc["input_ids"], enc["token_type_ids"],
                      enc["attention_mask"]).logits.softmax(-1)[0, 0]
    print(f"P(B follows A) = {p_next:.2f}   A: {first!r}  B: {second!r}")

# %% [markdown]
# **Who sees what.** Change the *last* word of a sentence and look at the *first* token's
# vector. In GPT it cannot change (the first token never sees the last); in BERT it does:

# %%
def first_vector_changes(encode_fn, run, a: str, b: str) -> float:
    with torch.no_grad():
        return (run(encode_fn(a))[0, 0] - run(encode_fn(b))[0, 0]).abs().max().item()


bert_encode = lambda s: bert_tokenizer(s, return_tensors="pt")["input_ids"]
gpt_encode = lambda s: torch.tensor([encode(s)])
a, b = "The dog was happy", "The dog was sad"
print("GPT : first token's logits change by ",
      first_vector_changes(gpt_encode, gpt, a, b))
print("BERT: first token's vector changes by",
      first_vector_changes(bert_encode, lambda ids: bert(ids).last_hidden_state, a, b))

# %% [markdown]
# | | GPT (decoder-only) | BERT (encoder-only) |
# |---|---|---|
# | attention mask | causal: token $i$ sees $0..i$ | full: every token sees every token |
# | pre-training objective | next token, at every position | masked tokens (MLM) + is B the next sentence (NSP) |
# | input | a stream of tokens | `[CLS] A [SEP] B [SEP]` + segment ids |
# | output used | logits of the next token | one vector per token; `[CLS]` for the whole input |
# | good at | generating: stories, answers, code, chat | understanding: classifying, tagging, search |
# | can generate? | yes, token by token (with a KV cache) | not naturally: it needs the whole sentence |
#
# Both are the same blocks underneath. Encoder-decoder models (T5, the original Transformer)
# combine them: an encoder reads the input, and a decoder generates with cross-attention to
# it. That `memory` is exactly what the cheat-sheet's `TransformerDecoderLayer` was waiting for.
#
# ## 9. Explore the heads
#
# Pick a layer and a head of `course-gpt` and type a sentence. The label shows how much of the
# head's attention goes to the previous token, to the token itself, and to the first token.
# Look for a "previous token" head, and for heads that find the name a pronoun refers to.

# %%
# NBVAL_IGNORE_OUTPUT
from course_utils.widgets.head_explorer import head_explorer

eager_gpt, _ = load_pretrained("course-gpt", attn_implementation="eager")
head_explorer(eager_gpt, tokenizer, "Mia found a red ball in the park and she gave it to Omar.")

# %% [markdown]
# ## Summary
#
# - Tokens: byte-level BPE learns merges by counting pairs and encodes a word by replaying
#   them by rank; a space belongs to the next word, and label words must be one token.
# - GPT = embeddings (token + position) -> pre-norm blocks of causal self-attention and MLP ->
#   final norm -> tied output head. The cheat-sheet's `TransformerDecoderLayer` needs an
#   encoder's `memory` (it got the mask), reads `(seq, batch)` by default, and an additive
#   mask fed to 0/1 code blocks exactly the allowed keys.
# - With a cache, the causal mask is a shifted triangle; in a left-padded batch it also hides
#   padding keys, and positions count real tokens, not columns.
# - Your own GPT class, loaded with course-gpt's weights, gives transformers' logits and text.
# - Training is next-token cross-entropy on shifted windows (zero_grad, backward, clip, step);
#   a few hundred steps already turn random tokens into story-shaped text.
# - Decoding: greedy, temperature, top-k, top-p; the KV cache runs the projections and MLP for
#   one position per step (attention still reads all t cached keys), with identical tokens.
# - BERT = the same blocks without the causal mask, with segment embeddings, post-norm, and
#   the MLM (80/10/10) and NSP objectives: built to understand text rather than generate it.
#
# Next, lesson 04 puts the trained GPT to work with **prompting**.

# %%
progress()
