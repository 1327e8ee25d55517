# %% [markdown]
# # 09 · Smaller and faster: quantization, distillation, speculative decoding
#
# Lesson 08 served `course-gpt` behind an HTTP API. Serving costs memory (every replica holds
# the weights) and time (every token is a forward pass). The usual ways to make a served model
# cheaper are three: store the weights in fewer bits (**quantization**), train a smaller model
# to imitate the big one (**distillation**), and let a small model guess tokens that the big one
# only has to check (**speculative decoding**). Specialised inference servers bundle these with
# better scheduling.
#
# **You will:** quantize weights to int8 (one scale per output channel) and to int4 (one scale
# per group, two values per byte) by hand, see why one scale per tensor fails on outliers, and
# measure size, perplexity, accuracy and speed against fp32 and torch's own int8; write the
# distillation loss, run a short distillation, and compare the bundled distilled student
# `course-gpt-mini` with the same student trained without a teacher; write the verification
# step of speculative decoding, measure when it pays, and serve with a draft; and read what
# vLLM and TensorRT-LLM add on top.
#
# Four exercises: int8 quantization (09.1), int4 with packing (09.2), the distillation loss
# (09.3) and the verification of a draft (09.4). Each is followed by a check cell;
# `hint("09.1")` and `solution("09.1")` help when stuck.

# %%
from course_utils import check, hint, progress, solution, start_lesson

# Tiny models: one thread gives steadier timings on a shared CPU.
start_lesson(seed=0, threads=1)

from course_utils.serving import ServerProcess

# Section 6 serves course-gpt with a draft model: the server loads now, in the background, on
# the other core (as in lesson 08), so that it is ready by then.
server = ServerProcess("--model", "course-gpt", "--draft-model", "course-gpt-mini",
                       "--threads", "1")
server.start(wait=False)

import copy
import time
import warnings

import matplotlib.pyplot as plt
import torch
from torch import nn

# %% [markdown]
# ## 1. The one-call version
#
# The cheat-sheet way to shrink a model for a CPU is one call: `quantize_dynamic` stores the
# weights of every `nn.Linear` as int8 and quantizes the activations on the fly. GPT-2 keeps
# its projections in `transformers`' `Conv1D` (weight stored `(in, out)`), which
# `quantize_dynamic` does not know, so lesson 08's `conv1d_to_linear` turns them into
# `nn.Linear` first; otherwise only the output head would be quantized.
# %%
from course_utils.model_report import held_out_perplexity, held_out_texts
from course_utils.pretrained import load_pretrained
from course_utils.quantization import size_on_disk
from course_utils.serving.quantize import conv1d_to_linear

model, tokenizer = load_pretrained("course-gpt")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice (see lesson 08)
    torch_int8 = torch.ao.quantization.quantize_dynamic(
        conv1d_to_linear(copy.deepcopy(model)), {nn.Linear}, dtype=torch.qint8)

texts = held_out_texts(40)
for name, m in (("fp32", model), ("torch dynamic int8", torch_int8)):
    print(f"{name:>20}: {size_on_disk(m) / 1e6:.2f} MB on disk, held-out perplexity "
          f"{held_out_perplexity(m, tokenizer, texts):.3f}")

# %% [markdown]
# It works, and it hides everything: what is stored, what the error is, and why it is (or is
# not) faster. The rest of this part builds it by hand.
#
# ## 2. Quantization by hand
#
# **Symmetric** quantization stores a weight `w` as a small integer `q` and a float `scale`
# shared by many weights: `w ≈ q · scale`. With `b` bits and a symmetric grid `-L .. L`
# (`L = 127` for int8, `7` for int4), the scale is chosen so that the largest `|w|` maps to `L`:
#
# `scale = max|w| / L`, `q = clamp(round(w / scale), -L, L)`.
#
# Rounding moves a weight by at most half a step, so the error of each weight is at most
# `scale / 2`. The question is **which** weights share a scale. One scale for the whole matrix
# is cheapest, but a single large weight (an outlier, common in trained transformers) makes the
# step so coarse that rows of small weights round to zero. A linear layer's weight is
# `(out, in)`, and output channel `i` is row `i`: one scale **per output channel** costs one
# float per row and keeps each row's step fitted to that row.
#
# ### Exercise 09.1: int8, per output channel
#
# Write `quantize_int8(weight)` for a float `(out, in)` weight: return `(q, scale)` with
# `scale` float32 of shape `(out, 1)` (each row's absolute maximum over 127; use 1.0 for a row
# that is all zeros, so nothing divides by zero) and `q` int8 of shape `(out, in)`
# (`round`, then `clamp` to `[-127, 127]`). The weight may be an `nn.Parameter`: work on
# `weight.detach().float()`.

# %%
def quantize_int8(weight):
    ### BEGIN SOLUTION
    w = weight.detach().float()
    absmax = w.abs().amax(dim=1, keepdim=True)
    scale = torch.where(absmax > 0, absmax / 127, torch.ones_like(absmax))
    q = torch.clamp(torch.round(w / scale), -127, 127).to(torch.int8)
    return q, scale
    ### END SOLUTION


# %%
check("09.1", quantize_int8)

# %% [markdown]
# From here on the lesson uses the references from `course_utils.quantization`, so every cell
# runs whether or not your exercises passed yet.
#
# **An outlier.** Take a real layer of `course-gpt` (the first attention projection, as an
# `(out, in)` matrix), put one large value in it, as trained models often have, and compare
# the error of one scale per tensor with one scale per row.

# %%
from course_utils.quantization import (
    dequantize_int8,
    layer_errors,
    per_tensor_int8,
    quantize_int8,
    relative_error,
)

w = model.transformer.h[0].attn.c_attn.weight.detach().T.clone()  # Conv1D stores (in, out)
w_outlier = w.clone()
w_outlier[0, 0] = 40 * w.abs().max()
for label, weight in (("as trained", w), ("with one outlier", w_outlier)):
    tensor_err = relative_error(weight, per_tensor_int8(weight))
    channel_err = relative_error(weight, dequantize_int8(*quantize_int8(weight)))
    zeros = (per_tensor_int8(weight) == 0).float().mean().item()
    print(f"{label:>17}: relative error per tensor {tensor_err:.4f}, per channel "
          f"{channel_err:.4f}; weights rounded to 0 by the per-tensor grid: {zeros:.0%}")

# %% [markdown]
# With the outlier, one scale for the whole matrix rounds most weights to zero, while the rows
# that do not hold the outlier keep their own fine grid when each row has its scale.
#
# **4 bits.** int4 has only 15 levels (`-7 .. 7`): one scale per row is too coarse. Group-wise
# quantization gives every **group** of `group_size` consecutive inputs of a row its own scale
# (32 or 64 are common), which costs one float per group. Two 4-bit values fit in a byte: store
# each as `q + 8` (now `1 .. 15`, never negative), the even column in the low 4 bits and the odd
# column in the high 4 bits: `byte = u[2j] | (u[2j+1] << 4)`.
#
# ### Exercise 09.2: int4, group-wise, packed
#
# Write `quantize_int4(weight, group_size=32)`: return `(packed, scales)` with `scales` float32
# `(out, in // group_size)` (each group's absolute maximum over 7, 1.0 for an all-zero group)
# and `packed` uint8 `(out, in // 2)`. `in` is a multiple of `group_size`.

# %%
def quantize_int4(weight, group_size=32):
    ### BEGIN SOLUTION
    w = weight.detach().float()
    out, n_in = w.shape
    groups = w.reshape(out, n_in // group_size, group_size)
    absmax = groups.abs().amax(dim=2)
    scales = torch.where(absmax > 0, absmax / 7, torch.ones_like(absmax))
    q = torch.clamp(torch.round(groups / scales[..., None]), -7, 7).reshape(out, n_in)
    u = (q + 8).to(torch.uint8)
    packed = u[:, 0::2] | (u[:, 1::2] << 4)
    return packed, scales
    ### END SOLUTION


# %%
check("09.2", quantize_int4)

# %% [markdown]
# The error of every layer of `course-gpt` under each scheme (relative to the weight's norm):

# %%
from course_utils.quantization import QuantizedLinear, quantize_model, weight_bytes

errors = layer_errors(model, group_size=32)
print(f"{'layer':<28}{'shape':>12}{'int8/tensor':>13}{'int8/channel':>14}{'int4 g32':>10}")
for r in errors:
    print(f"{r['layer']:<28}{str(r['shape']):>12}{r['int8 per-tensor']:>13.4f}"
          f"{r['int8 per-channel']:>14.4f}{r['int4 g32']:>10.4f}")

# %% [markdown]
# `QuantizedLinear` stores the integers and the scales and, in `forward`, dequantizes the
# weight and multiplies in float. `QuantizedLinear.from_float` takes an `nn.Linear` or a GPT-2
# `Conv1D` (transposing its `(in, out)` weight), and `quantize_model` swaps every projection of
# a copy of the model. The output head stays float: GPT-2 ties it to the token embedding, which
# is not a linear layer.

# %%
ours_int8 = quantize_model(model, bits=8)
ours_int4 = quantize_model(model, bits=4, group_size=32)
print(ours_int8.transformer.h[0].attn.c_attn)
linear_fp32 = weight_bytes(model) - model.lm_head.weight.numel() * 4  # the head is shared
for name, m in (("int8", ours_int8), ("int4", ours_int4)):
    q_bytes = weight_bytes(m) - m.lm_head.weight.numel() * 4
    print(f"{name}: the projections' weights take {q_bytes / linear_fp32:.1%} of their fp32 "
          "bytes (scales included)")

# %% [markdown]
# Now the four variants side by side: size on disk, held-out perplexity, few-shot sentiment
# accuracy (a few demonstrations, label scoring) and greedy tokens per second with a KV cache.
# On a shared machine the speed changes from minute to minute, so the variants are timed in
# turns (A B C D A B C D ...) and each gets the median of its runs.

# %%
from course_utils.model_report import markdown_table, report, tokens_per_second

variants = {"fp32": model, "torch dynamic int8": torch_int8, "our int8 (weight-only)": ours_int8,
            "our int4 g32 (weight-only)": ours_int4}
story_ids = tokenizer("Once upon a time", return_tensors="pt")["input_ids"]
speed = tokens_per_second(variants, story_ids, new_tokens=48, repeats=5)  # in turns
rows = [report(name, m, tokenizer, texts=texts, tokens_per_s=speed[name])
        for name, m in variants.items()]
print(markdown_table(rows))
base = rows[0]
for r in rows[1:]:
    print(f"{r['model']}: {r['size_mb'] / base['size_mb']:.0%} of the size, perplexity "
          f"{(r['perplexity'] / base['perplexity'] - 1):+.1%}, "
          f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x the speed of fp32")

# %% [markdown]
# Read the speed column honestly. Our layers are **weight-only** quantization: each call
# rebuilds a float weight from the integers (a multiply per weight, plus unpacking for int4),
# then runs the same float matrix product as before. That is extra work, and on a CPU with a
# model this small it buys nothing back: the whole fp32 model fits in the CPU's caches, so
# reading 4x fewer bytes does not make the product faster. Weight-only quantization pays
# when the weights do **not** fit (large models, where generating one token is limited by how
# fast the weights stream from memory) and with kernels that compute directly on the packed
# integers (as GPU int4 kernels do). torch's dynamic int8 is different: it quantizes the
# activations too and multiplies **in int8** with a dedicated kernel, so it can be faster even
# at this size. Size and perplexity are the lasting gains here.
#
# ## 3. Distillation
#
# A big model's next-token distribution says more than the one right token: that " cat" was
# nearly as likely as " dog" and " the" impossible. **Distillation** (Hinton et al., 2015)
# trains a small student on both signals:
#
# `loss = alpha · T² · KL(p_teacher^T ‖ p_student^T) + (1 − alpha) · CE(student, labels)`
#
# where `p^T = softmax(logits / T)`. A temperature `T > 1` flattens both distributions so the
# small probabilities carry weight; dividing the logits by `T` also shrinks the gradients by
# `T²`, which the `T²` factor gives back, so `T` can change without retuning `alpha`. The KL
# goes teacher first (the teacher is the target), and `F.kl_div(input, target)` wants the
# student's **log**-probabilities as `input`. The teacher is fixed: no gradient flows into it.
# Padding positions (label `-100`) count for nothing, in both terms.
#
# ### Exercise 09.3: the distillation loss
#
# Write `distillation_loss(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5,
# ignore_index=-100)`. The logits are `(..., vocab)`; `labels` has the same shape without the
# vocabulary axis and is already aligned (position `i` is to predict `labels[i]`). Average both
# terms over the positions whose label is not `ignore_index` (select them first: padding may
# hold NaN logits) and return a 0-d tensor; if no position has a label, return 0.

# %%
import torch.nn.functional as F


def distillation_loss(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5,
                      ignore_index=-100):
    ### BEGIN SOLUTION
    keep = labels != ignore_index
    s = student_logits[keep]
    t = teacher_logits[keep].detach()
    if s.shape[0] == 0:  # nothing to learn from: a zero that still has a graph
        return s.sum() * 0.0
    log_p_student = F.log_softmax(s / temperature, dim=-1)
    p_teacher = F.softmax(t / temperature, dim=-1)
    soft = F.kl_div(log_p_student, p_teacher, reduction="none").sum(-1).mean() * temperature**2
    hard = F.cross_entropy(s, labels[keep])
    return alpha * soft + (1 - alpha) * hard
    ### END SOLUTION


# %%
check("09.3", distillation_loss)

# %% [markdown]
# **A short distillation.** Two copies of the same 2-layer student (same initial weights), the
# same batches of the course corpus, the same optimiser; one learns from `course-gpt` through
# the distillation loss, the other from the next token alone. A few dozen steps is far too few
# to reach a good model; it shows the mechanics and the cost: every distillation step also runs
# the teacher.

# %%
from course_utils.data.corpus import pretraining_corpus
from course_utils.distillation import distill_step, distillation_loss
from course_utils.pretrained.train_gpt import mean_loss, pack
from course_utils.pretrained.train_mini import MiniRecipe, new_student

blocks = pack(tokenizer, pretraining_corpus(0, scale=0.01), 128)
val_blocks = pack(tokenizer, texts, 128)[:16]
recipe = MiniRecipe()
students = {"distilled": new_student(tokenizer, recipe), "from scratch": None}
students["from scratch"] = copy.deepcopy(students["distilled"])
curves, seconds = {}, {}
for name, student in students.items():
    student.train()
    opt = torch.optim.AdamW(student.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)  # the same batches for both
    start, curves[name] = time.perf_counter(), []
    for step in range(30):
        batch = blocks[torch.randint(0, len(blocks), (4,), generator=g)]
        teacher = model if name == "distilled" else None  # None: the next-token loss only
        distill_step(student, teacher, batch, opt, temperature=1.0, alpha=0.5)
        if step % 10 == 9:
            curves[name].append(mean_loss(student, val_blocks, batch_size=16))
    seconds[name] = time.perf_counter() - start
    student.eval()
for name in students:
    print(f"{name:>12}: held-out loss after 10/20/30 steps "
          f"{', '.join(f'{v:.3f}' for v in curves[name])} ({seconds[name]:.1f} s)")

# %% [markdown]
# The bundled `course-gpt-mini` is this student trained for longer by
# `python -m course_utils.pretrained build --only course-gpt-mini`, which also trains its twin
# from scratch on exactly the same batches for the same number of steps (saved in
# `course-gpt-mini/from-scratch/`). Its training log records what each saw:

# %%
import json

from course_utils.pretrained import asset_path

mini, _ = load_pretrained("course-gpt-mini")
scratch, _ = load_pretrained(str(asset_path("course-gpt-mini") / "from-scratch"))
log = json.loads((asset_path("course-gpt-mini") / "training_log.json").read_text())
r = log["recipe"]
print(f"student: {r['n_layer']} layers, width {r['n_embd']}; {len(log['step'])} steps of "
      f"{r['batch_size']} x {r['n_positions']} tokens ({log['tokens_seen']:,} tokens), "
      f"T = {r['temperature']}, alpha = {r['alpha']}")
print(f"twin from scratch: {log['from_scratch']['tokens_seen']:,} tokens, same batches; "
      f"validation perplexity {log['val_perplexity']} distilled vs "
      f"{log['from_scratch']['val_perplexity']} from scratch")

# %%
from course_utils.model_report import parameter_count

three = {"teacher course-gpt": model, "distilled course-gpt-mini": mini,
         "same student, from scratch": scratch}
speed = tokens_per_second(three, story_ids, new_tokens=48, repeats=5)
trio = []
for name, m in three.items():
    row = {"model": name, "parameters": f"{parameter_count(m):,}"}
    row.update({k: v for k, v in report(name, m, tokenizer, texts=texts, chain_of_thought=True,
                                        tokens_per_s=speed[name]).items() if k != "model"})
    trio.append(row)
print(markdown_table(trio))

# %% [markdown]
# The table compares a student distilled for a few hundred steps with its twin trained on the
# same tokens without the teacher, and both with the teacher. The two students differ only in
# the loss. With this little training neither student reaches the teacher. Whether
# distillation helps at a given budget, and at which temperature, is an empirical question:
# measure it, as the table does (`benchmarks/smaller_faster.py` measures the pair too).
#
# ## 4. Speculative decoding
#
# Greedy decoding costs one forward pass of the big model per token. A forward pass over `k + 1`
# positions costs little more than over one (the same weights are read once; the work is
# batched). **Speculative decoding** (Leviathan et al. 2023; Chen et al. 2023) uses that:
#
# 1. a cheap **draft** model proposes `k` tokens one by one;
# 2. the **target** runs once on all of them; its logits at the `k + 1` positions say what the
#    target itself would pick after each prefix of the draft;
# 3. keep the longest prefix of the draft that matches the target's own picks, then add the
#    target's pick at the first disagreement (or after the whole draft): the **bonus** token;
# 4. cut both models' KV caches back to the accepted length and repeat.
#
# Every round gains between 1 and `k + 1` tokens, and they are exactly the tokens greedy
# decoding with the target alone produces: the draft only decides how many of them one target
# pass yields.
#
# ### Exercise 09.4: verify a draft
#
# Write `verify_greedy(draft_tokens, target_logits)`: `draft_tokens` holds the `k` drafted ids
# (a tensor or a list), `target_logits` is `(k + 1, vocab)` where row `i` is the target's
# prediction after the prefix plus the first `i` drafted tokens. Return `(n_accepted,
# new_tokens)`: an int, and an int64 tensor of the accepted draft followed by the target's own
# token at position `n_accepted` (length `n_accepted + 1`).

# %%
def verify_greedy(draft_tokens, target_logits):
    ### BEGIN SOLUTION
    draft = torch.as_tensor(draft_tokens, dtype=torch.long).reshape(-1)
    choice = target_logits.argmax(dim=-1)
    n = 0
    while n < len(draft) and draft[n] == choice[n]:
        n += 1
    return n, torch.cat([draft[:n], choice[n:n + 1]])
    ### END SOLUTION


# %%
check("09.4", verify_greedy)

# %% [markdown]
# `course_utils.speculative.speculative_generate(target, draft, input_ids, max_new_tokens,
# num_draft_tokens=4, attention_mask=None)` runs the whole loop with the reference
# `verify_greedy`, for any two causal LMs that share a tokenizer. First the promise: the output
# is the target's own greedy decoding, token for token, for a left-padded batch and for any
# draft, even one that knows nothing.

# %%
from transformers import GPT2Config, GPT2LMHeadModel

from course_utils.speculative import greedy_generate, speculative_generate

tokenizer.padding_side = "left"
demo = ["Once upon a time", "Review: The soup was cold.\nSentiment:",
        "Q: Mia has 3 apples and buys 4 more. How many apples does she have?\nA:"]
enc = tokenizer(demo, return_tensors="pt", padding=True)
plain = model.generate(**enc, do_sample=False, max_new_tokens=32)
torch.manual_seed(0)
untrained = GPT2LMHeadModel(GPT2Config(
    vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2,
    bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)).eval()
for name, draft in (("course-gpt-mini", mini), ("an untrained model", untrained)):
    fast = speculative_generate(model, draft, enc["input_ids"], 32, 4,
                                attention_mask=enc["attention_mask"])
    print(f"draft {name}: identical to model.generate: "
          f"{torch.equal(fast[:, :plain.shape[1]], plain)}")
print(tokenizer.decode(fast[2, enc["input_ids"].shape[1]:], skip_special_tokens=True))

# %% [markdown]
# Now the price. For several `k`, the **acceptance rate** (accepted / drafted) and the tokens
# per second, against plain greedy decoding with a KV cache (one target pass per token).

# %%
from course_utils.model_report import median_seconds, without_eos

prompt_ids = tokenizer(["Once upon a time, a little fox"], return_tensors="pt")["input_ids"]
N, ks = 48, [1, 2, 3, 4, 6]
runs = {0: lambda: greedy_generate(model, prompt_ids, N)}  # k = 0: plain cached greedy
runs.update({k: (lambda k=k: speculative_generate(model, mini, prompt_ids, N, k)) for k in ks})
stats = {k: {} for k in ks}
with without_eos(model):  # every run generates all N tokens
    secs = median_seconds(runs, repeats=7)  # plain and each k take turns
    for k in ks:
        speculative_generate(model, mini, prompt_ids, N, k, stats=stats[k])
speedups = [secs[0] / secs[k] for k in ks]
acceptance = [stats[k]["accepted"] / stats[k]["drafted"] for k in ks]
per_round = [N / stats[k]["rounds"] for k in ks]
print(f"plain cached greedy: {N / secs[0]:.0f} tokens/s")
for k, s_up, acc, m in zip(ks, speedups, acceptance, per_round, strict=True):
    print(f"k = {k}: acceptance {acc:.0%}, {m:.2f} tokens per target pass, "
          f"{N / secs[k]:.0f} tokens/s, {s_up:.2f}x plain greedy")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
ax1.plot(ks, speedups, "o-")
ax1.axhline(1.0, color="grey", lw=0.8, ls="--")
ax1.set(xlabel="drafted tokens per round (k)", ylabel="speed-up vs greedy",
        title="tokens per second")
ax2.plot(ks, acceptance, "o-", color="C1")
ax2.set(xlabel="k", ylabel="accepted / drafted", ylim=(0, 1), title="acceptance rate")
fig.tight_layout()
plt.show()

# %% [markdown]
# What bounds the speed-up? A round yields `m` tokens (between 1 and `k + 1`; if each drafted
# token is accepted with probability `α`, on average `m = (1 − α^(k+1)) / (1 − α)`) and costs
# `k` draft passes plus one target pass. If a draft pass costs `c` target passes, and the
# target's pass over `k + 1` tokens costs about as much as over one, the speed-up is about
# `m / (k·c + 1)`: more than 1 only if `m > k·c + 1`. Measure `c` on this machine (the two
# models in turns):

# %%
from transformers import DynamicCache


def one_pass(m):
    """One cached forward pass for one new token, after the prompt is in the cache."""
    cache = DynamicCache()
    m(input_ids=prompt_ids, cache=cache, use_cache=True)
    return lambda: m(input_ids=prompt_ids[:, -1:], cache=cache, use_cache=True,
                     logits_to_keep=1)


with torch.inference_mode():
    passes = median_seconds({"target": one_pass(model), "draft": one_pass(mini)}, repeats=40)
c = passes["draft"] / passes["target"]
print(f"a draft pass costs c = {c:.2f} target passes")
for k, m, s_up in zip(ks, per_round, speedups, strict=True):
    print(f"k = {k}: {m:.2f} tokens per round, so about {m / (k * c + 1):.2f}x expected; "
          f"measured {s_up:.2f}x")

# %% [markdown]
# At this size a forward pass costs mostly fixed overhead (Python, many small kernel
# launches), so the small draft costs a large fraction of a target pass (the `c` printed
# above), where a draft model a small fraction of the target's size costs a few percent of it
# on a GPU. That is what caps the gain here; with big models on a GPU, where a target pass is
# limited by reading the weights from memory and `c` is small, the speed-up is large.
#
# **Sampling.** Speculative decoding also works with sampling, and still gives exactly the
# target's distribution: accept a drafted token `x` with probability `min(1, p(x) / q(x))`
# (`p` the target's, `q` the draft's probability); at the first rejection, sample the
# replacement from `max(0, p − q)`, renormalised. A token the draft over-proposes is sometimes
# rejected, one it under-proposes is topped up by the replacement rule, and the two effects
# cancel exactly. `course_utils.speculative.verify_sampling` implements this rule; the cell
# below checks it on two made-up distributions (a context-free "model", so the first output
# token must simply follow `p`). `speculative_generate` itself decodes greedily.

# %%
from course_utils.speculative import verify_sampling

p = torch.tensor([0.5, 0.2, 0.15, 0.1, 0.05])  # the target's distribution
q = torch.tensor([0.1, 0.1, 0.3, 0.3, 0.2])  # a poor draft's
g = torch.Generator().manual_seed(0)
first = torch.zeros(5)
for _ in range(5000):
    drafted = torch.multinomial(q, 2, replacement=True, generator=g)
    _, new = verify_sampling(drafted, q.expand(2, 5), p.expand(3, 5), generator=g)
    first[new[0]] += 1
print("target p:          ", [round(v, 3) for v in p.tolist()])
print("first output token:", [round(v, 3) for v in (first / first.sum()).tolist()])
print("drafted from q:    ", [round(v, 3) for v in q.tolist()])

# %% [markdown]
# ## 5. Specialised inference servers
#
# Production LLM serving mostly runs on servers built for it. Two widely used ones:
#
# - **vLLM** (open source). Its **PagedAttention** stores the KV cache in fixed-size blocks,
#   like virtual-memory pages, so sequences of unknown length do not reserve (and waste)
#   contiguous memory, and requests with the same prompt prefix can share blocks.
#   **Continuous batching** adds and removes requests at every decoding step instead of
#   waiting for a whole batch to finish (lesson 08's batcher forms a batch and runs it to the
#   end). It ships **fused kernels** (FlashAttention-style attention, quantized int8/int4/FP8
#   matrix products such as AWQ and GPTQ), **tensor parallelism** (each weight matrix split
#   across GPUs, with a collective operation per layer to combine the parts) and speculative
#   decoding. `vllm serve <model>` starts an OpenAI-compatible HTTP server.
# - **TensorRT-LLM** (NVIDIA). It compiles the model into optimised engines for NVIDIA GPUs,
#   with the same ideas: in-flight (continuous) batching, a paged KV cache, fused and quantized
#   kernels (FP8, INT8, INT4), tensor and pipeline parallelism, speculative decoding. It is
#   served through the Triton Inference Server or its own OpenAI-compatible `trtllm-serve`.
#
# Because both speak the OpenAI API, the client code of lesson 08 does not change; only the
# address does:
#
# ```python
# from openai import OpenAI
#
# client = OpenAI(base_url="http://localhost:8000/v1", api_key="unused-locally")
# reply = client.completions.create(model="<the served model's name>",
#                                   prompt="Once upon a time", max_tokens=32, temperature=0)
# print(reply.choices[0].text)
# ```
#
# Nothing in this course needs them: they target GPUs and models far larger than
# `course-gpt`, where the memory they save and the batching they do decide the cost.
#
# ## 6. Serving with a draft
#
# Lesson 08's server takes the draft as an option: `python -m course_utils.serving --model
# course-gpt --draft-model course-gpt-mini --num-draft-tokens 4`. Greedy requests
# (`temperature` 0) are then decoded speculatively, and each round's accepted tokens are
# streamed one by one through the same stop-string handling; requests that sample take the
# ordinary batched path. The server refuses, at start-up, a draft whose tokenizer is not the
# target's. The server started in the first cell has the draft; its answer to a greedy request
# is compared with course-gpt's own greedy decoding, `model.generate(do_sample=False)`, which
# is what the server returns without a draft (lesson 08 checks that).

# %%
import httpx

server.wait_ready()
request = {"model": "course-gpt", "prompt": "Once upon a time, a little fox", "max_tokens": 48,
           "temperature": 0}
served = httpx.post(f"{server.url}/v1/completions", json=request,
                    timeout=120).json()["choices"][0]["text"]
ids = tokenizer(request["prompt"], return_tensors="pt")["input_ids"]
own = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                     max_new_tokens=request["max_tokens"], pad_token_id=tokenizer.eos_token_id)
direct = tokenizer.decode(own[0, ids.shape[1]:], skip_special_tokens=True,
                          clean_up_tokenization_spaces=False)
print(f"served with the draft: {served!r}")
print(f"greedy, no draft:      {direct!r}")
print("identical:", served == direct)
draft_stats = httpx.get(f"{server.url}/health").json()["speculative"]
print(f"the server accepted {draft_stats['accepted']} of {draft_stats['drafted']} drafted "
      f"tokens ({draft_stats['acceptance_rate']:.0%})")
server.stop()

# %% [markdown]
# ## Summary
#
# - Quantization stores weights in fewer bits with a scale per row (int8) or per group (int4);
#   per-channel scales survive outliers that ruin a per-tensor scale. Weight-only quantization
#   saves memory and disk; it saves time only with integer kernels or memory-bound sizes.
# - Distillation trains a small model on the teacher's softened distribution plus the next
#   token; `T²` keeps the soft term's scale, the teacher is fixed, padding is masked.
# - Speculative decoding gets the target's exact greedy output from fewer target passes; it
#   pays when the draft is much cheaper than the target and agrees with it often. The server's
#   `--draft-model` option serves greedy requests that way, with the same text.

# %%
progress()
