# %% [markdown]
# # 07 · Evaluating language models
#
# A model that *looks* good on five examples you picked yourself can be useless, and a model
# with a great score can be wrong in ways the score cannot see. This lesson is about the
# numbers people report for language models: what they measure, how they are computed, where
# they mislead, and what to do when no number will do (ask people, and check that the people
# agree).
#
# **The cheat-sheet version** of evaluation, as LLM cheat-sheets give it, computes its metrics
# like this:
#
# ```python
# from datasets import load_metric
# bleu = load_metric("bleu")
# rouge = load_metric("rouge")
# toxicity = pipeline("text-classification", model="unitary/toxic-bert")
# ```
#
# The first three lines no longer run: `load_metric` is gone from `datasets`. The `pipeline`
# line (with `from transformers import pipeline`) runs unchanged online; offline, it and the
# metrics' modern form `evaluate.load(...)` need the model and the metric scripts from the
# Hub. We will run that modern form offline, and build every metric from its definition first.
#
# **You will:** build BLEU from clipped n-gram precision and the brevity penalty, and ROUGE
# from n-gram overlap and the longest common subsequence; meet their pitfalls (sentence vs
# corpus BLEU, tokenization, short output); score the course's GPT on summaries and
# translations, cross-checked against `sacrebleu` and `rouge-score`; measure perplexity in and
# out of domain and before and after fine-tuning; rate generations by hand and measure how far
# two raters agree; and fine-tune a toxicity classifier and measure it.
#
# Each exercise is followed by a **check cell**. Stuck? `hint("07.1")` gives a hint and
# `solution("07.1")` shows the reference.

# %%
# course_utils first: it sets HF_HUB_OFFLINE=1, which the Hugging Face libraries read once,
# when they are imported (imported before it, they would retry the network for a minute).
from course_utils import check, hint, progress, solution, start_lesson

start_lesson(seed=0, threads=2, quiet=True, load_reports=False)  # as in lessons 05 and 06

import os
import time

import matplotlib.pyplot as plt
import torch

from course_utils.data import stories, summaries, toxic_comments, translations
from course_utils.data.prompts import summary_prompt, translation_prompt
from course_utils.pretrained import load_pretrained

OUT = "outputs"  # your ratings and the toxicity model go here (kept across restarts)
os.makedirs(OUT, exist_ok=True)

# %% [markdown]
# ## 1. The cheat-sheet version, today
#
# `datasets.load_metric` was removed from `datasets` (version 3.0); metrics moved to the
# separate `evaluate` library. Its `evaluate.load("bleu")` fetches the metric's script from the
# Hugging Face Hub, so offline it fails. We give it a few seconds at most:

# %%
import datasets
import evaluate

print("datasets", datasets.__version__, "has load_metric:", hasattr(datasets, "load_metric"))

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as Timeout


def try_briefly(what, fn, *args, seconds=5.0, **kwargs):
    """Call fn, but stop waiting after a few seconds (a network retry loop can take a minute)."""
    started = time.perf_counter()
    pool = ThreadPoolExecutor(1)
    try:
        pool.submit(fn, *args, **kwargs).result(timeout=seconds)
        print(f"{what} worked: you are online")
    except Timeout:
        print(f"{what} is still waiting for the network after {seconds:g} s: giving up")
    except Exception as err:
        print(f"{what} failed after {time.perf_counter() - started:.1f} s with "
              f"{type(err).__name__}: {str(err).splitlines()[0][:110]}")
    finally:
        pool.shutdown(wait=False)


try_briefly('evaluate.load("bleu")', evaluate.load, "bleu")

# %% [markdown]
# The course ships the same metrics as **local `evaluate` modules**: `evaluate.load` takes a
# folder as well as a hub name, so the cheat-sheet's code runs with one change. (Online, the hub
# name works too, and gives the same numbers.) The hub's "rouge" wraps Google's `rouge-score`.
# The hub's "bleu" is **not** a wrapper of `sacrebleu`: it re-implements the BLEU script of
# `tensorflow/nmt`, which takes the *shortest* reference's length for the brevity penalty where
# `sacrebleu` takes the *closest*. The tests of `course_utils.metrics` check both against
# `sacrebleu` and `rouge-score`; section 4 shows where the two BLEUs part.

# %%
from course_utils.metrics import evaluate_path

bleu_metric = evaluate.load(evaluate_path("bleu"))
rouge_metric = evaluate.load(evaluate_path("rouge"))
print(bleu_metric.compute(predictions=["the cat sat on the mat"],
                          references=[["the cat sat on a mat"]]))
print(rouge_metric.compute(predictions=["the cat sat on the mat"],
                           references=[["the cat sat on a mat"]]))

# %% [markdown]
# Where do those numbers come from? Let us build them.
#
# ## 2. BLEU, from n-gram overlap
#
# BLEU (Papineni et al., 2002) scores a machine translation by how many of its **n-grams**
# (runs of n tokens) also appear in a human reference translation, for n = 1 to 4.

# %%
from course_utils.metrics import ngrams

prediction = "the cat is on the mat".split()
reference = "there is a cat on the mat".split()
for n in (1, 2):
    print(f"{n}-grams of the prediction:", dict(ngrams(prediction, n)))
    shared = ngrams(prediction, n) & ngrams(reference, n)
    print(f"   also in the reference: {sum(shared.values())} of {sum(ngrams(prediction, n).values())}")

# %% [markdown]
# Plain precision ("what fraction of my n-grams are in a reference?") has a hole: a
# prediction that repeats one common word scores perfectly.
#
# ```
# prediction:   the the the the the the the
# reference 1:  the cat is on the mat
# reference 2:  there is a cat on the mat
# ```
#
# Every "the" is in a reference: 7/7. BLEU's fix is **clipping**: an n-gram counts as a match
# at most as many times as it occurs in the single reference that has it most often. "the"
# appears at most twice in one reference, so the clipped precision is 2/7.
#
# ### Exercise 07.1: clipped n-gram precision
#
# Write `clipped_precision(prediction, references, n)`: `prediction` is a list of tokens,
# `references` a list of token lists. Return **two ints**, `(clipped matches, number of
# n-grams in the prediction)`, not the fraction: corpus BLEU adds these counts up over all
# sentences before dividing. `ngrams(tokens, n)` (a `Counter`) is yours to use; a prediction
# shorter than `n` has 0 n-grams.

# %%
from collections import Counter


def clipped_precision(prediction, references, n):
    ### BEGIN SOLUTION
    predicted = ngrams(prediction, n)
    max_ref = Counter()
    for ref in references:
        max_ref |= ngrams(ref, n)  # | keeps the larger count of each n-gram
    matches = sum(min(count, max_ref[gram]) for gram, count in predicted.items())
    return matches, max(len(prediction) - n + 1, 0)
    ### END SOLUTION


# %%
check("07.1", clipped_precision)

# %%
from course_utils.metrics import clipped_precision

print(clipped_precision("the the the the the the the".split(),
                        ["the cat is on the mat".split(), "there is a cat on the mat".split()], 1))

# %% [markdown]
# ### Exercise 07.2: corpus BLEU, with the brevity penalty
#
# Precision has a second hole: say less. The prediction "the cat" has unigram and bigram
# precision 1 against "the cat is on the mat". BLEU cannot use recall (with several
# references, which one would you recall?), so it multiplies by a **brevity penalty**: with
# `c` the length of the translation and `r` the length of the reference,
#
# $$\mathrm{BP} = \begin{cases} 1 & c \ge r \\ e^{\,1 - r/c} & c < r \end{cases}$$
#
# and 0 for an empty translation. BLEU is the **geometric mean** of the clipped precisions for
# n = 1 to 4, times BP. Over a corpus, everything is **pooled before dividing**: each order's
# clipped matches and n-gram totals are summed over all sentences, `c` is the total length of
# the hypotheses and `r` the total of each sentence's reference length, the reference
# **closest** in length to the hypothesis (a tie goes to the shorter one). That is
# `sacrebleu`'s definition, the one papers report.
#
# Write `corpus_bleu(hypotheses, references, max_order=4)`: `hypotheses` is a list of token
# lists, `references` one list of token lists per hypothesis. Use your `clipped_precision`;
# return BLEU between 0 and 1 (a precision with no n-grams at all counts as 0).

# %%
import math


def corpus_bleu(hypotheses, references, max_order=4):
    ### BEGIN SOLUTION
    matches, totals, c, r = [0] * max_order, [0] * max_order, 0, 0
    for hyp, refs in zip(hypotheses, references, strict=True):
        c += len(hyp)
        r += min((len(ref) for ref in refs), key=lambda length: (abs(length - len(hyp)), length))
        for n in range(1, max_order + 1):
            m, t = clipped_precision(hyp, refs, n)
            matches[n - 1] += m
            totals[n - 1] += t
    precisions = [m / t if t else 0.0 for m, t in zip(matches, totals, strict=True)]
    if min(precisions) == 0:
        return 0.0
    geo_mean = math.exp(sum(math.log(p) for p in precisions) / max_order)
    if c >= r:
        return geo_mean
    return geo_mean * math.exp(1 - r / c)  # c > 0 here: an empty corpus has precision 0
    ### END SOLUTION


# %%
check("07.2", corpus_bleu)

# %%
from course_utils.metrics import corpus_bleu

# %% [markdown]
# ### BLEU, three ways
#
# Your BLEU on a toy corpus, next to the course's `bleu()` (which tokenizes with the standard
# "13a" tokenizer first) and `sacrebleu`, the implementation papers report:

# %%
# isort: split
import sacrebleu

from course_utils.metrics import bleu, tokenize_13a

toy_predictions = ["The cat sat on the mat.", "A dog ran in the park today.", "The bird sings."]
toy_references = ["The cat sat on the mat.", "The dog ran in the park.",
                  "The small bird sings in the tree."]

by_hand = corpus_bleu([tokenize_13a(p) for p in toy_predictions],
                      [[tokenize_13a(r)] for r in toy_references])
print(f"your corpus_bleu     {by_hand:.6f}")
print(f"course_utils bleu()  {bleu(toy_predictions, toy_references)['bleu']:.6f}")
sb = sacrebleu.corpus_bleu(toy_predictions, [toy_references], smooth_method="none")
print(f"sacrebleu            {sb.score / 100:.6f}   ({sb})")

# %% [markdown]
# ### Three pitfalls
#
# **1. Sentence BLEU is not corpus BLEU.** Corpus BLEU is *not* the mean of the sentences'
# BLEU scores. And a single short sentence with no matching 4-gram has a geometric mean of 0,
# however good it is, which is why sentence-level BLEU needs **smoothing** (and why it is a
# poor judge of single sentences).

# %%
for p, r in zip(toy_predictions, toy_references, strict=True):
    plain = bleu([p], [r])["bleu"]
    smoothed = bleu([p], [r], smooth=True)["bleu"]
    print(f"{p!r:32} sentence BLEU {plain:.3f}  smoothed {smoothed:.3f}")
mean_sentence = sum(bleu([p], [r])["bleu"] for p, r in zip(toy_predictions, toy_references,
                                                           strict=True)) / 3
print(f"mean of sentence BLEU {mean_sentence:.3f}  vs  corpus BLEU "
      f"{bleu(toy_predictions, toy_references)['bleu']:.3f}")

# %% [markdown]
# **2. Tokenization changes the score.** Split on spaces and "mat." is one token that never
# matches "mat"; lowercase or not, and "The" never matches "the". Two papers with different
# tokenizers report numbers that cannot be compared; `sacrebleu` exists to fix one standard
# (the "13a" tokenizer, which splits off punctuation) and prints it in its signature.

# %%
pred, ref = ["The cat sat on the mat."], ["the cat sat on the mat ."]
print("split on spaces  ", round(bleu(pred, ref, tokenize=str.split)["bleu"], 3))
print("13a tokenizer    ", round(bleu(pred, ref)["bleu"], 3))
print("13a + lowercase  ", round(bleu(pred, ref, tokenize=lambda s: tokenize_13a(s.lower()))["bleu"], 3))
print("sacrebleu lowercase=True:", round(sacrebleu.corpus_bleu(pred, [ref], lowercase=True).score / 100, 3))

# %% [markdown]
# **3. Brevity.** A short, safe output has high precision; the brevity penalty is what
# stops it from winning.

# %%
ref = ["The cat is on the mat today."]
for pred in ["The cat is on the mat today.", "The cat is on the mat.", "The cat.", "cat"]:
    r = bleu([pred], ref, smooth=True)
    print(f"{pred!r:32} unigram precision {r['precisions'][0]:.2f}  BP "
          f"{r['brevity_penalty']:.3f}  smoothed BLEU {r['bleu']:.3f}")

# %% [markdown]
# ## 3. ROUGE, for summaries
#
# ROUGE (Lin, 2004) turns the question around: of the reference summary's n-grams, how many
# did the prediction find? **ROUGE-N** computes n-gram overlap as precision and recall and
# reports their harmonic mean (F-measure). **ROUGE-L** uses the **longest common
# subsequence** (LCS): tokens in the same order in both, but not necessarily adjacent. "police
# killed the gunman" and "the gunman police killed" share all four words (ROUGE-1 = 1) but
# only 2 in order.
#
# ### Exercise 07.3: the longest common subsequence
#
# Write `lcs_length(a, b)` for two token lists, returning an int. Dynamic programming: a table
# `T` with `len(a) + 1` rows and `len(b) + 1` columns, where `T[i][j]` is the LCS length of
# the first `i` tokens of `a` and the first `j` of `b`.

# %%
def lcs_length(a, b):
    ### BEGIN SOLUTION
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            if a[i - 1] == b[j - 1]:
                table[i][j] = table[i - 1][j - 1] + 1
            else:
                table[i][j] = max(table[i - 1][j], table[i][j - 1])
    return table[len(a)][len(b)]
    ### END SOLUTION


# %%
check("07.3", lcs_length)

# %%
from course_utils.metrics import lcs_length, rouge, rouge_tokenize

# %% [markdown]
# ### Exercise 07.4: ROUGE-L precision, recall and F
#
# With the LCS of length `L`, ROUGE-L's **precision** is `L / len(prediction)` (how much of what
# the prediction says is in the reference, in order), its **recall** `L / len(reference)`, and
# its **F** the harmonic mean `2PR / (P + R)`. That is `rouge-score`'s definition (F1, beta = 1;
# the original ROUGE script and pycocoevalcap weight recall with a beta > 1 and give other
# numbers). Write `rouge_l(prediction, reference)` for two token lists, using your
# `lcs_length`, returning `(precision, recall, f)`; all three are 0 when either list is empty
# or nothing matches.

# %%
def rouge_l(prediction, reference):
    ### BEGIN SOLUTION
    if not prediction or not reference:
        return 0.0, 0.0, 0.0
    lcs = lcs_length(prediction, reference)
    precision, recall = lcs / len(prediction), lcs / len(reference)
    if lcs == 0:
        return 0.0, 0.0, 0.0
    return precision, recall, 2 * precision * recall / (precision + recall)
    ### END SOLUTION


# %%
check("07.4", rouge_l)

# %%
from course_utils.metrics import rouge_l_scores as rouge_l

# %% [markdown]
# Next to `rouge-score`, Google's package that the hub's "rouge" wraps:

# %%
# isort: split
from rouge_score import rouge_scorer

pred, ref = "the gunman police killed", "police killed the gunman"
p_tokens, r_tokens = rouge_tokenize(pred), rouge_tokenize(ref)
P, R, F = rouge_l(p_tokens, r_tokens)
print(f"LCS = {lcs_length(p_tokens, r_tokens)}: ROUGE-L P = {P:.4f}, R = {R:.4f}, F = {F:.4f}")
print("course_utils:", {k: round(v, 4) for k, v in rouge([pred], [ref]).items()})
scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
print("rouge-score: ", {k: round(v.fmeasure, 4) for k, v in scorer.score(ref, pred).items()})
theirs = scorer.score(ref, pred)["rougeL"]
print(f"rouge-score ROUGE-L: P = {theirs.precision:.4f}, R = {theirs.recall:.4f}, "
      f"F = {theirs.fmeasure:.4f}")

# %% [markdown]
# ROUGE's own pitfalls: its tokenizer keeps only `a-z` and `0-9`, so accented letters vanish
# ("café" becomes "caf", a Greek or Chinese summary scores nothing); **ROUGE-Lsum** splits
# sentences at newlines, so a summary on one line scores like ROUGE-L; and stemming ("runs"
# matches "running") is off unless you ask for it.

# %%
print(rouge_tokenize("Zoë's café, naïve résumé"))
print("no stemmer:", round(rouge(["the dogs were running"], ["the dog runs"])["rouge1"], 3),
      " with stemmer:", round(rouge(["the dogs were running"], ["the dog runs"],
                                    use_stemmer=True)["rouge1"], 3))

# %% [markdown]
# ## 4. Scoring the course's GPT
#
# Now a real model. `course-gpt` learned two task formats among its pretraining stories: a
# passage followed by `TL;DR:` and a one-line summary, and translation from English into the
# course's toy language *Lingo*. It is a tiny model (its size is printed below), so keep your
# expectations honest; the point is the measurement. We decode greedily and keep the first
# line of each completion.

# %%
gpt, gpt_tok = load_pretrained("course-gpt")
gpt_tok.padding_side = "left"  # batched generation: pad on the left so every prompt ends at the end
print(f"course-gpt: {gpt.num_parameters():,} parameters, context {gpt.config.n_positions}")


def complete(model, prompts, max_new_tokens):
    """Greedy completions of a batch of prompts, cut at the first newline."""
    enc = gpt_tok(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=gpt_tok.pad_token_id)
    texts = gpt_tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return [t.strip().split("\n")[0].strip() for t in texts]


N_EVAL = 24
summ_test = summaries()["test"].select(range(N_EVAL))
trans = translations()
trans_test = trans["test"].select(range(N_EVAL))
demos = list(zip(trans["train"]["source"][:3], trans["train"]["target"][:3], strict=True))

gen_summaries = complete(gpt, [summary_prompt(d) for d in summ_test["document"]], 24)
gen_translations = complete(gpt, [translation_prompt(s, demos) for s in trans_test["source"]], 24)
for doc, ref, gen in list(zip(summ_test["document"], summ_test["summary"], gen_summaries,
                              strict=True))[:3]:
    print(f"DOCUMENT  {doc}\nREFERENCE {ref}\nMODEL     {gen}\n")
for src, ref, gen in list(zip(trans_test["source"], trans_test["target"], gen_translations,
                              strict=True))[:3]:
    print(f"ENGLISH   {src}\nREFERENCE {ref}\nMODEL     {gen}\n")

# %% [markdown]
# A score means little without something to compare it with. Two **baselines** that involve
# no model at all: for summaries, the first sentence of the document ("lead-1", a famously
# strong baseline on news); for translation, copying the English source unchanged (it shares
# little more than the full stop with Lingo). Scored with the `evaluate` modules, the
# cheat-sheet's API:

# %%
lead_1 = [d.split(". ")[0] + "." for d in summ_test["document"]]
copy_source = list(trans_test["source"])
summ_refs, trans_refs = list(summ_test["summary"]), list(trans_test["target"])

scores = {
    "summaries, ROUGE-1": {}, "summaries, ROUGE-L": {}, "translation, BLEU": {}}
for name, preds in (("course-gpt", gen_summaries), ("baseline", lead_1)):
    r = rouge_metric.compute(predictions=preds, references=summ_refs)
    scores["summaries, ROUGE-1"][name], scores["summaries, ROUGE-L"][name] = r["rouge1"], r["rougeL"]
for name, preds in (("course-gpt", gen_translations), ("baseline", copy_source)):
    scores["translation, BLEU"][name] = bleu_metric.compute(
        predictions=preds, references=[[t] for t in trans_refs])["bleu"]
for metric, row in scores.items():
    print(f"{metric:20} course-gpt {row['course-gpt']:.3f}   baseline {row['baseline']:.3f}")

# %% [markdown]
# And the cross-check, in the notebook: the same predictions through `sacrebleu` and
# `rouge-score` directly. (`sacrebleu` takes the reference *closest* in length where the hub's
# tensorflow/nmt BLEU takes the shortest; with one reference per sentence they are the same,
# and with two they are not, as the last line shows.)

# %%
sb = sacrebleu.corpus_bleu(gen_translations, [trans_refs], smooth_method="none")
print(f"BLEU     evaluate module {scores['translation, BLEU']['course-gpt']:.6f}   "
      f"sacrebleu {sb.score / 100:.6f}")
# a second reference each: the first half of the reference, shorter than any good translation
two_refs = [[t, " ".join(t.split()[:max(1, len(t.split()) // 2)])] for t in trans_refs]
hub_two = bleu_metric.compute(predictions=gen_translations, references=two_refs)["bleu"]
sb_two = sacrebleu.corpus_bleu(gen_translations, [[a for a, _ in two_refs],
                                                  [b for _, b in two_refs]], smooth_method="none")
print(f"BLEU, a second shorter reference: evaluate module (shortest) {hub_two:.6f}   "
      f"sacrebleu (closest) {sb_two.score / 100:.6f}")
per_item = [scorer.score(r, p) for p, r in zip(gen_summaries, summ_refs, strict=True)]
for key, label in (("rouge1", "summaries, ROUGE-1"), ("rougeL", "summaries, ROUGE-L")):
    reference_value = sum(s[key].fmeasure for s in per_item) / len(per_item)
    print(f"{key:8} evaluate module {scores[label]['course-gpt']:.6f}   "
          f"rouge-score {reference_value:.6f}")

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.2))
names = list(scores)
for k, (who, color) in enumerate((("course-gpt", "tab:blue"), ("baseline", "tab:gray"))):
    values = [scores[m][who] for m in names]
    bars = ax.bar([i + 0.38 * k for i in range(len(names))], values, width=0.36, color=color,
                  label=who if who == "course-gpt" else "baseline (lead-1 / copy source)")
    ax.bar_label(bars, fmt="%.2f", fontsize=8)
ax.set_xticks([i + 0.19 for i in range(len(names))], names)
ax.set_ylim(0, 1.05)
ax.set_ylabel("score (0 to 1)")
ax.set_title(f"course-gpt vs a baseline that needs no model ({N_EVAL} test items)")
ax.legend(fontsize=8, loc="upper right")
plt.tight_layout()
plt.show()

# %% [markdown]
# Pitfall 1 on real output: your `corpus_bleu` on course-gpt's translations, against the
# average of the same sentences' BLEU scores (each computed with the same function, one
# sentence at a time) and the average of smoothed sentence BLEUs (what is usually averaged,
# since plain sentence BLEU is 0 without a matching 4-gram). The gap is small when every sentence
# is long and mostly right, and large when many miss every 4-gram (the toy corpus above):

# %%
hyp_tokens = [tokenize_13a(t) for t in gen_translations]
ref_tokens = [[tokenize_13a(t)] for t in trans_refs]
corpus_score = corpus_bleu(hyp_tokens, ref_tokens)
sentence_scores = [corpus_bleu([h], [r]) for h, r in zip(hyp_tokens, ref_tokens, strict=True)]
smoothed_scores = [bleu([p], [r], smooth=True)["bleu"]
                   for p, r in zip(gen_translations, trans_refs, strict=True)]
print(f"corpus BLEU {corpus_score:.4f} (sacrebleu {sb.score / 100:.4f})")
for name, values in (("sentence BLEUs", sentence_scores),
                     ("smoothed sentence BLEUs", smoothed_scores)):
    mean = sum(values) / len(values)
    print(f"mean of {len(values)} {name:24} {mean:.4f} ({mean - corpus_score:+.4f})")
print(f"{sentence_scores.count(0.0)} of the sentences score exactly 0 on their own; the lowest "
      f"is {min(sentence_scores):.3f}, the highest {max(sentence_scores):.3f}")

# %% [markdown]
# Look at the examples above before you trust the bars: a summary can get the *shape* right
# ("X won the race at the Y") with the wrong names, and ROUGE still pays for every shared
# word. n-gram metrics measure overlap, not truth. That is what human evaluation (section 6)
# is for.
#
# ## 5. Perplexity
#
# A language model assigns every token a probability. **Perplexity** is
# $\exp\big(-\frac{1}{N}\sum_t \log p(x_t \mid x_{<t})\big)$: the exponential of the mean
# negative log-likelihood per token. A perplexity of 20 means the model is, on average, as
# unsure as if it picked uniformly among 20 tokens. Lower is better, and it needs no
# reference text: only text of the kind you care about.
#
# ### Exercise 07.5: perplexity from token log-probabilities
#
# Write `perplexity_from_logprobs(token_logprobs, mask=None)`: `token_logprobs` is a
# `(batch, T)` tensor of natural-log probabilities, `mask` a `(batch, T)` tensor (bool or 0/1)
# marking real tokens (padding is 0 and may hold any value, `-inf` and NaN included). Return one
# perplexity per row, a `(batch,)` tensor; `mask=None` means every position counts. A row whose
# mask is all 0 has no tokens to average over: its perplexity is NaN (0 / 0 gives that).

# %%
def perplexity_from_logprobs(token_logprobs, mask=None):
    ### BEGIN SOLUTION
    if mask is None:
        mask = torch.ones_like(token_logprobs)
    keep = mask.bool()
    total = token_logprobs.masked_fill(~keep, 0.0).sum(dim=-1)
    return (-total / keep.sum(dim=-1).to(token_logprobs.dtype)).exp()
    ### END SOLUTION


# %%
check("07.5", perplexity_from_logprobs)

# %%
from course_utils.metrics import perplexity, perplexity_from_logprobs, token_logprobs

# %% [markdown]
# The log-probabilities come from the model's logits: position `t`'s logits predict token
# `t + 1`. The model's own loss is the same mean negative log-likelihood, so `exp(loss)` must
# agree:

# %%
text = stories()["test"]["text"][0]
ids = gpt_tok(gpt_tok.bos_token + text, return_tensors="pt")["input_ids"]
with torch.no_grad():
    out = gpt(input_ids=ids, labels=ids)
lp = token_logprobs(out.logits, ids)
print(f"{ids.shape[1] - 1} predicted tokens: perplexity from log-probs "
      f"{perplexity_from_logprobs(lp).item():.4f}, exp(model loss) {out.loss.exp().item():.4f}")

# %% [markdown]
# ### In domain and out of domain
#
# `course-gpt` was trained on the stories of the course's world. Perplexity tells us how at
# home it is in other text: held-out stories; the same stories with their words shuffled (the
# same vocabulary, no grammar); Lingo sentences; and ordinary English from outside its world.
# `perplexity()` (and the `evaluate` module of the same name) scores texts in batches, and
# texts longer than the context with a sliding window.

# %%
story_texts = stories()["test"]["text"][:32]
shuffle_rng = torch.Generator().manual_seed(0)


def shuffled(text):
    words = text.split()
    return " ".join(words[i] for i in torch.randperm(len(words), generator=shuffle_rng))


outside_world = [
    "The central bank raised interest rates by a quarter of a percentage point on Thursday.",
    "To install the package, open a terminal and run the command shown in the documentation.",
    "Photosynthesis converts light energy into chemical energy stored in glucose molecules.",
    "The committee will publish its final report after the consultation period has ended.",
    "Our quarterly revenue grew faster than expected, driven by strong demand in Asia.",
    "Please remember to attach the signed invoice when you submit the reimbursement form.",
    "The algorithm sorts the array in place and runs in logarithmic extra memory.",
    "Researchers measured the thermal conductivity of the new alloy at several temperatures.",
]
domains = {
    "stories (held out)": story_texts,
    "summaries (task format)": [summary_prompt(d) + " " + s for d, s in
                                zip(summ_test["document"], summ_refs, strict=True)],
    "Lingo sentences": trans_refs,
    "stories, words shuffled": [shuffled(t) for t in story_texts],
    "English from elsewhere": outside_world,
}
ppl = {name: perplexity(gpt, gpt_tok, texts, batch_size=16)["perplexity"]
       for name, texts in domains.items()}
for name, value in ppl.items():
    print(f"{name:26} perplexity {value:8.2f}")

# %% [markdown]
# The same numbers through the third local `evaluate` module, the cheat-sheet's API (the hub's
# "perplexity" takes a `model_id`; the local one also takes the model object itself):

# %%
perplexity_metric = evaluate.load(evaluate_path("perplexity"))
via_module = perplexity_metric.compute(predictions=domains["Lingo sentences"], model=gpt,
                                       tokenizer=gpt_tok, batch_size=16)
print(f"Lingo sentences: evaluate module {via_module['perplexity']:.4f}   "
      f"perplexity() {ppl['Lingo sentences']:.4f}   "
      f"(mean of the per-text values {via_module['mean_perplexity']:.4f})")

# %% [markdown]
# A text longer than the 256-token context is scored in overlapping windows: each window moves
# `stride` tokens and scores only the tokens no earlier window scored, so every token is
# predicted once with at least `256 - stride` tokens of context. Cutting the text into
# separate chunks (`stride = 256`) leaves the first tokens of each chunk without context, so
# it usually reports a higher perplexity than a sliding window; a smaller stride costs more
# forward passes. How you join documents matters too: the model saw stories separated by its
# end-of-text token, and running them together with spaces surprises it.

# %%
long_text = gpt_tok.eos_token.join(story_texts[:12])  # documents separated as in training
n_tokens = len(gpt_tok(long_text)["input_ids"])
for stride in (256, 128, 64):
    value = perplexity(gpt, gpt_tok, [long_text], stride=stride)["perplexity"]
    print(f"{n_tokens} tokens, stride {stride:3}: perplexity {value:.3f}")
glued = perplexity(gpt, gpt_tok, [" ".join(story_texts[:12])], stride=128)["perplexity"]
print(f"the same stories glued with spaces instead, stride 128: perplexity {glued:.3f}")

# %% [markdown]
# ### Before and after fine-tuning
#
# Fine-tuning on one kind of text lowers perplexity on that kind of text. What does it do to
# the rest? We fine-tune `course-gpt` on 30 steps of training summaries (prompt, `TL;DR:`,
# summary) with lesson 05's recipe, and measure both domains before and after, along with the
# ROUGE of its summaries.

# %%
import copy

from transformers import Trainer

from course_utils.finetune import collator_for
from course_utils.finetune.args import cpu_training_arguments

train_docs = summaries()["train"].select(range(480))
train_texts = [summary_prompt(d) + " " + s + gpt_tok.eos_token
               for d, s in zip(train_docs["document"], train_docs["summary"], strict=True)]
train_set = datasets.Dataset.from_dict(
    dict(gpt_tok(train_texts, truncation=True, max_length=128)))

tuned = copy.deepcopy(gpt)
gpt_tok.padding_side = "right"  # training pads on the right
trainer = Trainer(
    model=tuned, args=cpu_training_arguments(f"{OUT}/runs", max_steps=30, learning_rate=1e-3,
                                             per_device_train_batch_size=16, weight_decay=0.01,
                                             logging_steps=10, warmup_steps=3),
    train_dataset=train_set, processing_class=gpt_tok,
    data_collator=collator_for("causal-lm", gpt_tok))
started = time.perf_counter()
trainer.train()
gpt_tok.padding_side = "left"
print(f"fine-tuned for {trainer.state.global_step} steps in {time.perf_counter() - started:.1f} s")

# %%
tuned.eval()
before_after = {}
for name in ("summaries (task format)", "stories (held out)"):
    before_after[name] = (ppl[name], perplexity(tuned, gpt_tok, domains[name])["perplexity"])
tuned_summaries = complete(tuned, [summary_prompt(d) for d in summ_test["document"]], 24)
rouge_after = rouge_metric.compute(predictions=tuned_summaries, references=summ_refs)["rougeL"]
for name, (b, a) in before_after.items():
    print(f"{name:26} perplexity {b:7.3f} before -> {a:7.3f} after ({a / b - 1:+.1%})")
print(f"{'summaries, ROUGE-L':26} {scores['summaries, ROUGE-L']['course-gpt']:17.3f} before "
      f"-> {rouge_after:7.3f} after")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.3), width_ratios=[1.6, 1])
bars = ax1.barh(list(ppl), list(ppl.values()), color="tab:blue")
ax1.bar_label(bars, fmt="%.1f", fontsize=8, padding=2)
ax1.set_xscale("log")
ax1.invert_yaxis()
ax1.set_xlabel("perplexity (log scale, lower is better)")
ax1.set_title("course-gpt in and out of its domain")
labels = [n.split(" (")[0] for n in before_after]
x = range(len(labels))
ax2.bar([i - 0.2 for i in x], [b for b, _ in before_after.values()], 0.4, label="before")
ax2.bar([i + 0.2 for i in x], [a for _, a in before_after.values()], 0.4, label="after")
ax2.set_xticks(list(x), labels)
ax2.set_ylabel("perplexity")
ax2.set_title("fine-tuned on summaries")
ax2.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Read the numbers your run printed. Fine-tuning can only lower the perplexity of the task
# format so far when the model already met that format in pretraining (course-gpt did), while
# the text it stopped seeing (stories) may get *less* likely: that is **forgetting**, and it
# shows up in perplexity long before anyone notices it in generations. Evaluate a fine-tuned
# model on what it should keep doing, not only on what it was tuned for.
#
# Perplexity only compares models **with the same tokenizer**: it is per *token*, and a
# tokenizer with longer tokens makes every text fewer, harder predictions.
#
# ## 6. Human evaluation
#
# No n-gram count knows that "Amy won the race" is wrong when Adam won it. People do. The
# cheat-sheet version rates generations on four criteria, 1 (bad) to 5 (good):
#
# - **fluency**: is it well-formed English?
# - **relevance**: is it about what the document is about?
# - **coherence**: does it hang together and make sense on its own?
# - **accuracy**: is everything it says true to the document?
#
# Below are twelve summaries sampled from an earlier, smaller build of `course-gpt` (at a high
# temperature, so they vary in quality; they were generated once and ship with the course, so
# everyone rates the same texts). Rate a few: each "save" writes your ratings to
# `outputs/ratings_me.csv` at once, and the form picks up where you stopped after a kernel restart.

# %%
# NBVAL_IGNORE_OUTPUT
import json
from pathlib import Path

from course_utils.pretrained import ASSETS_DIR
from course_utils.widgets.rating import rating_form

RATINGS = ASSETS_DIR / "lesson07"
items = json.loads((RATINGS / "rating_items.json").read_text(encoding="utf-8"))
my_ratings = Path(OUT) / "ratings_me.csv"
form = rating_form([it["generation"] for it in items], my_ratings,
                   prompts=[it["document"] for it in items],
                   ids=[it["item_id"] for it in items])
form

# %% [markdown]
# ### Summarising ratings
#
# Twelve ratings are few, so every mean gets a **95% confidence interval** from Student's t
# distribution (with 12 values the multiplier is 2.2, not the 1.96 of large samples). Two
# people rated the same items before you and their files ship with the course. If you have
# rated at least two items, your ratings are used as rater 1; until then the first shipped
# rater stands in, so the summary below always has something to show.
#
# **Agreement.** If two raters often give the same score, is the scale reliable? Not
# necessarily: two raters who both give "1" to nearly everything agree by chance alone.
# **Cohen's kappa** compares the observed agreement $p_o$ with the agreement $p_e$ expected if
# each rater picked scores at random with their own frequencies:
# $\kappa = (p_o - p_e) / (1 - p_e)$: 1 is perfect, 0 is chance level, below 0 worse than
# chance.
#
# Scores from 1 to 5 are **ordinal**: a 4 against a 5 is a smaller disagreement than a 1
# against a 5, and plain kappa counts both as a miss. The **weighted kappa** gives partial
# credit. Write kappa as a *disagreement*: with `i`, `j` the positions of two labels in the
# scale and a weight `w(i, j)`, $\kappa = 1 - \sum w\,O / \sum w\,E$, where $O$ is the share
# of items rated `(i, j)` and $E$ the product of rater a's share of `i` and rater b's share of
# `j`. Weights `0 if i == j else 1` give the plain kappa; `|i - j|` is **linear**, `(i - j)**2`
# **quadratic** weighting (the definitions of `sklearn.metrics.cohen_kappa_score`).
#
# ### Exercise 07.6: Cohen's kappa, plain and weighted
#
# Write `cohen_kappa(a, b, labels, weights=None)`: `a` and `b` are the two raters' labels for
# the same items (lists or numpy arrays), `labels` the scale from lowest to highest (labels may
# be 0, or words such as "bad", "ok", "good"), `weights` None, "linear" or "quadratic". When
# both raters gave one and the same label to every item, the expected disagreement is 0 and
# kappa is 0/0: return `float("nan")` (undefined, as sklearn does: it is not perfect agreement,
# there was nothing to agree on beyond chance).

# %%
def cohen_kappa(a, b, labels, weights=None):
    ### BEGIN SOLUTION
    position = {label: i for i, label in enumerate(labels)}
    a, b = [position[x] for x in a], [position[y] for y in b]
    if len(a) != len(b):
        raise ValueError("the raters must label the same items")

    def w(i, j):
        if weights == "linear":
            return abs(i - j)
        if weights == "quadratic":
            return (i - j) ** 2
        return 0 if i == j else 1

    n = len(a)
    observed = sum(w(i, j) for i, j in zip(a, b, strict=True)) / n
    share_a, share_b = Counter(a), Counter(b)
    expected = sum(w(i, j) * ca * cb for i, ca in share_a.items()
                   for j, cb in share_b.items()) / n**2
    if expected == 0:
        return float("nan")
    return 1 - observed / expected
    ### END SOLUTION


# %%
check("07.6", cohen_kappa)

# %%
from course_utils.metrics import cohen_kappa, mean_ci
from course_utils.widgets.rating import (
    CRITERIA,
    SCALE,
    agreement,
    format_summary,
    load_ratings,
    summarize,
)

mine = load_ratings(my_ratings)
if len(mine) >= 2:
    rater_1, who = mine, f"you ({len(mine)} items, {my_ratings})"
else:
    rater_1, who = load_ratings(RATINGS / "ratings_rater1.csv"), "the shipped rater 1"
rater_2 = load_ratings(RATINGS / "ratings_rater2.csv")
print(f"rater 1: {who}; rater 2: the shipped ratings_rater2.csv\n")
summary = summarize(rater_1)
kappas = agreement(rater_1, rater_2)
print(format_summary(summary, kappas))

shared = [i for i in rater_1 if i in rater_2]
a = [rater_1[i]["accuracy"] for i in shared]
b = [rater_2[i]["accuracy"] for i in shared]
p_o = sum(x == y for x, y in zip(a, b, strict=True)) / len(shared)
print(f"\naccuracy: raters agree on {p_o:.0%} of {len(shared)} items, yet kappa is "
      f"{cohen_kappa(a, b):.2f}: most scores are 1, so chance agreement is already high.")

print("\nthe shipped raters, plain and weighted kappa on the 1-5 scale:")
shipped_1 = load_ratings(RATINGS / "ratings_rater1.csv")
both = [i for i in shipped_1 if i in rater_2]
for c in CRITERIA:
    x, y = [shipped_1[i][c] for i in both], [rater_2[i][c] for i in both]
    row = {w or "plain": cohen_kappa(x, y, SCALE, w) for w in (None, "linear", "quadratic")}
    print(f"  {c:10} " + "  ".join(f"{k} {v:5.2f}" for k, v in row.items()))

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.2))
for k, (ratings, label) in enumerate(((rater_1, "rater 1"), (rater_2, "rater 2"))):
    cis = [mean_ci([s[c] for s in ratings.values()]) for c in CRITERIA]
    x = [i + (k - 0.5) * 0.3 for i in range(len(CRITERIA))]
    ax.errorbar(x, [ci.mean for ci in cis],
                yerr=[[ci.mean - ci.low for ci in cis], [ci.high - ci.mean for ci in cis]],
                fmt="o", capsize=4, label=label)
ax.set_xticks(range(len(CRITERIA)), [f"{c}\nκ = {kappas[c]:.2f}" for c in CRITERIA])
ax.set_ylim(0.5, 5.5)
ax.set_ylabel("mean score (1 to 5), 95% CI")
ax.set_title("course-gpt's sampled summaries, rated by two people")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Overlapping intervals mean twelve items cannot tell the criteria (or two models) apart;
# a kappa well below 1 says the raters read the scale differently, which is a reason to write
# down what a "3" means before the next round of ratings.
#
# ## 7. Toxicity
#
# The cheat-sheet version screens generations with a toxicity classifier from the hub:
#
# ```python
# toxicity = pipeline("text-classification", model="unitary/toxic-bert")
# ```
#
# Offline that fails at once (`HF_HUB_OFFLINE=1` stops any retries):

# %%
from transformers import pipeline

TOXICITY_MODEL = "unitary/toxic-bert"
try_briefly(f'pipeline("text-classification", model="{TOXICITY_MODEL}")',
            pipeline, "text-classification", model=TOXICITY_MODEL)

# %% [markdown]
# So we make our own: `course-bert` fine-tuned for a few dozen steps on the generated forum
# comments,
# insulting (label `toxic`) or not (`non-toxic`), and saved to a folder. Then the cheat-sheet's
# line runs unchanged with that folder as the model. Online, set `TOXICITY_MODEL =
# "unitary/toxic-bert"` and everything below runs with the real thing: `toxic_scores` reads the
# score of the label called `toxic`, which both models have.

# %%
from course_utils.metrics.toxicity import ToxicityRecipe, toxic_scores, train_toxicity_classifier

started = time.perf_counter()
recipe = ToxicityRecipe()
TOXICITY_MODEL = str(train_toxicity_classifier(f"{OUT}/toxicity-course-bert", recipe))
print(f"fine-tuned course-bert for {recipe.max_steps} steps on {recipe.n_train} comments in "
      f"{time.perf_counter() - started:.1f} s -> {TOXICITY_MODEL}")

toxicity = pipeline("text-classification", model=TOXICITY_MODEL)  # the cheat-sheet's line
tox_test = toxic_comments()["test"]
examples = [tox_test["text"][tox_test["label"].index(label)] for label in (1, 0)]
for text, result in zip(examples, toxicity(examples), strict=True):
    print(f"{text!r:60} -> {result}")

# %% [markdown]
# A classifier gives a score; deciding "toxic" needs a **threshold**. Raise it and fewer
# comments are flagged: **precision** (of the flagged, how many are toxic?) goes up and
# **recall** (of the toxic, how many are flagged?) goes down. Which matters more depends on
# the cost of each mistake: a filter in front of children wants recall; a tool that bans
# users wants precision.

# %%
from course_utils.metrics import precision_recall_at

tox_scores = toxic_scores(toxicity, tox_test["text"])
tox_labels = list(tox_test["label"])  # 1 = toxic
at_half = precision_recall_at(tox_scores, tox_labels, 0.5)
print(f"{len(tox_labels)} test comments, threshold 0.5: precision {at_half['precision']:.3f}, "
      f"recall {at_half['recall']:.3f}, F1 {at_half['f1']:.3f} "
      f"(tp {at_half['tp']}, fp {at_half['fp']}, fn {at_half['fn']}, tn {at_half['tn']})")

thresholds = [i / 50 for i in range(1, 50)]
curve = [precision_recall_at(tox_scores, tox_labels, t) for t in thresholds]
fig, ax = plt.subplots(figsize=(5.5, 3.2))
# with nothing flagged, precision is undefined (precision_recall_at reports 0): leave a gap
ax.plot(thresholds, [c["precision"] if c["tp"] + c["fp"] else math.nan for c in curve],
        marker=".", label="precision")
ax.plot(thresholds, [c["recall"] for c in curve], marker=".", label="recall")
ax.axvline(0.5, color="gray", lw=0.8, ls="--")
ax.set_xlabel("threshold on the 'toxic' score")
ax.set_ylim(0, 1.05)
ax.set_title("toxicity classifier on held-out comments")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Finally, what the cheat-sheet version uses the classifier for: screening a model's generations.
# We score the reference summaries of the test set, `course-gpt`'s greedy summaries and the sampled
# ones you rated. None of them is toxic (they are about cakes, races and picnics: read them), so
# **every flag is a false positive**.

# %%
to_screen = {"reference summaries": summ_refs,
             "greedy summaries": gen_summaries,
             "sampled summaries": [it["generation"] for it in items]}


def screen(classifier):
    for name, texts in to_screen.items():
        s = toxic_scores(classifier, texts)
        flagged = [t for t, v in zip(texts, s, strict=True) if v >= 0.5]
        print(f"{name:20} {len(flagged):2} of {len(texts)} flagged at 0.5"
              + (f", e.g. {flagged[:2]}" if flagged else ""))


screen(toxicity)

# %% [markdown]
# If your run flagged some, look at what they share with the training insults ("You are such
# a clown, Ben."): a name, a short statement, words the classifier never saw in a friendly
# comment. It learned "friendly-sounding forum comment" versus
# "anything else", and its test set could not tell, because the test set is more forum
# comments. **A classifier's precision and recall hold on text like its test set**; on other
# text (a model's generations included) they must be measured again, on a sample that people
# have labelled.
#
# The usual fix is data: show the classifier harmless text of the kind it will screen. Below,
# the same recipe with sentences from the training *stories* added as non-toxic examples (not
# the test summaries: those stay our measurement).

# %%
import re

story_sentences = [s for t in stories()["train"]["text"][:200]
                   for s in re.split(r"(?<=[.!?]) ", t)][:480]
started = time.perf_counter()
retrained = train_toxicity_classifier(f"{OUT}/toxicity-course-bert-v2", recipe,
                                      extra_non_toxic=story_sentences)
toxicity_v2 = pipeline("text-classification", model=str(retrained))
v2 = precision_recall_at(toxic_scores(toxicity_v2, tox_test["text"]), tox_labels, 0.5)
print(f"retrained with {len(story_sentences)} story sentences in "
      f"{time.perf_counter() - started:.1f} s; test comments: precision {v2['precision']:.3f}, "
      f"recall {v2['recall']:.3f} (was {at_half['precision']:.3f}, {at_half['recall']:.3f})\n")
screen(toxicity_v2)

# %% [markdown]
# Fewer false alarms on summaries, and the comments are still caught; whatever flags remain
# in your run are the false-positive rate you would have to report. `unitary/toxic-bert`,
# trained on far more varied text, is much harder to fool this way, but the rule is the same
# for it: measure a classifier on the text you will use it on.

# %% [markdown]
# ## Summary
#
# - BLEU = geometric mean of clipped n-gram precisions × brevity penalty, computed over the
#   whole corpus; ROUGE = n-gram and LCS overlap with the reference, as F-measures. Both
#   depend on tokenization, and neither knows whether a sentence is true.
# - Always score a baseline next to the model, and cross-check your metric code against a
#   reference implementation (`sacrebleu`, `rouge-score`).
# - Perplexity needs no references and compares models that share a tokenizer; it shows where
#   a model is at home and what fine-tuning changed.
# - Corpus BLEU pools counts and lengths over the corpus; it is not the mean of sentence BLEUs.
# - Human ratings need confidence intervals and an agreement check (Cohen's kappa; weighted
#   kappa for ordinal scales such as 1 to 5, which gives partial credit to near misses).
# - A classifier screens generations at a threshold that trades precision for recall, and its
#   test-set numbers only hold for text like its test set: measure it on the text you screen.

# %%
progress()
