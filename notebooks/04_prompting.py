# %% [markdown]
# # 04 · Prompting, measured
#
# Prompting is usually taught as a list of recipes: "give examples", "ask it to think step by
# step", "tell it who it is". This lesson turns every recipe into an **experiment you run and
# measure** on a model you have, offline: `course-gpt`, the course's own GPT-2-style model,
# small enough to train on a laptop CPU from the course's generated world.
#
# **You will:** see that a prompt is the beginning of a document, run the classic prompting
# examples and look at what comes back, measure zero-shot against few-shot and direct answers
# against chain of thought and self-consistency (with confidence intervals on held-out data,
# and paired tests, because the strategies answer the same items), probe how fragile a prompt
# is to the order of its examples and to its label words, steer sampling with temperature,
# top-k and top-p, and measure role, template, conditional and iterative prompts on the base
# model and on its instruction-tuned twin, `course-gpt-chat`.
#
# Three exercises: draw a balanced, shuffled, seeded few-shot prompt from a pool without the
# test item; choose a label by likelihood when labels have several tokens; extract an answer
# robustly. Each is followed by a check cell; `hint("04.1")` and `solution("04.1")` help when
# stuck.

# %%
from course_utils import check, data, hint, progress, solution, start_lesson  # noqa: F401

start_lesson(seed=0, threads=1)  # small matrices: one thread wastes nothing on a shared CPU

import random
import re
import time
from dataclasses import replace

import matplotlib.pyplot as plt
import torch

from course_utils import prompting as P
from course_utils.data.corpus import TRAIN_LABEL_SETS

started = time.perf_counter()

model, tok = P.load_model("course-gpt")
n_params = sum(p.numel() for p in model.parameters())
print(f"course-gpt: {n_params / 1e6:.2f}M parameters, {model.config.n_layer} layers, "
      f"context {model.config.n_positions} tokens, vocabulary {len(tok)} tokens")

# %% [markdown]
# ## 1. A prompt is the beginning of a document
#
# A causal language model does one thing: given some text, it gives a probability to every
# possible next token. Generating is asking that question again and again. So a **prompt is
# not an instruction, it is the start of a document**, and the model continues it the way
# documents like it continued in its training data.
#
# `course-gpt` was pretrained on stories, labelled lists of reviews, arithmetic drills, worked
# word problems, summaries, translations and short chats (see `course_utils.data.corpus`).
# Formats it has seen, it continues well; anything else, it continues with whatever it
# associates with the words. `P.generate_batch` runs many prompts at once (section 4 says how).

# %%
def show(prompts: list[str], max_new_tokens: int = 24, **kwargs) -> list[str]:
    """Print each prompt with the model's greedy continuation in [brackets]."""
    outs = P.generate_batch(model, tok, prompts, max_new_tokens, **kwargs)
    for p, o in zip(prompts, outs, strict=True):
        print(f"{p}[{o}]\n" + "-" * 60)
    return outs


_ = show(["Once upon a time,", "Mia went to the market", "7 * 8 =", "English: The cat eats "
          "the cake.\nLingo: Lo gato mangas lo kuko.\n\nEnglish: The dog sees the cake.\nLingo:"],
         stop=("\n",))

# %% [markdown]
# A chat is a document too. Each model family marks up turns its own way, and its tokenizer
# carries that markup as a **chat template**. `course-gpt`'s is plain `System:/User:/Assistant:`
# lines; `tokenizer.apply_chat_template` (wrapped by `P.chat_prompt`) renders messages into the
# text the model was trained on, so the same messages work with any chat model.

# %%
chat = P.chat_prompt(tok, P.chat_messages("Tell me a short story.",
                                          system="You are a storyteller."))
print(repr(chat))
_ = show([chat], 40, stop=("\nUser:", "\n\n"))

# %% [markdown]
# ## 2. The classic examples, on a model we can see through
#
# Four examples appear in every prompting tutorial and cheat-sheet: **the cheat-sheet version**
# of prompting. Here they are on `course-gpt`, with what actually comes back. The sentiment prompts
# use the review format the model was trained on: an instruction line, then `Review: ...` /
# `Sentiment: ...` pairs. In pretraining the label words were always others (bad/okay/good,
# no/maybe/yes, cold/warm/hot, ...), **never** negative/neutral/positive, so the model has to read
# the label space off the prompt.
#
# **Zero-shot movie review**: only the instruction and the review.

# %%
LABELS = list(data.SENTIMENT_LABELS)  # ["negative", "neutral", "positive"]
movie = "The movie was a waste of two hours. The plot made no sense."
zero = P.zero_shot_prompt(movie)
print(zero)


def label_probs(prompt: str, words=LABELS) -> str:
    """The model's next-token probability of each label word, as text."""
    probs = P.label_scores(model, tok, [prompt], words)[0].exp()
    return ", ".join(f"{w} {p:.3f}" for w, p in zip(words, probs.tolist(), strict=True))


_ = show([zero], 6, stop=("\n",))
print("next-token probability of the label words:", label_probs(zero))

# %% [markdown]
# **The few-shot sentiment list**: the same question, with three labelled reviews first.

# %%
demos = [("I loved this film. The actors were wonderful!", "positive"),
         ("What a waste of money. I hated it.", "negative"),
         ("The film was okay. Nothing special.", "neutral")]
few = P.few_shot_prompt(movie, demos)
print(few)
_ = show([few], 6, stop=("\n",))
print("next-token probability of the label words:", label_probs(few))

# %% [markdown]
# **Roger's tennis balls and the cafeteria's apples** (the chain-of-thought paper's own
# example). The demonstration answers Roger's question; the model must answer the cafeteria's.
# First with a direct answer, then with the worked steps, in the model's `Q:/A:` format.

# %%
roger = ("Roger has 5 tennis balls. He buys 2 more cans of tennis balls. Each can has 3 "
         "tennis balls. How many tennis balls does he have now?")
roger_steps = ("Roger starts with 5 balls. 2 cans of 3 balls is 2 * 3 = 6 balls. 5 + 6 = 11. "
               "The answer is 11.")
apples = ("The cafeteria had 23 apples. If they used 20 to make lunch and bought 6 more, how "
          "many apples do they have?")
direct_prompt = P.word_problem_prompt(apples, [(roger, roger_steps)], chain_of_thought=False)
cot_prompt = P.word_problem_prompt(apples, [(roger, roger_steps)], chain_of_thought=True)
out_direct, out_cot = show([direct_prompt, cot_prompt], 48, stop=("\n\n", "\nQ:"))
print("direct answer:", P.extract_answer("The answer is" + out_direct),
      "| chain of thought:", P.extract_answer(out_cot), "| correct: 23 - 20 + 6 = 9")

# %% [markdown]
# Look closely at what came back. "Roger", "tennis" and "cafeteria" are not in the course's
# world: the tokenizer splits them into pieces the model rarely saw, and a model this small
# leans on familiar words. The measurements below therefore use **held-out generated data** in
# the course's world: new reviews, and word problems whose names and objects never appeared
# in training. One example proves nothing either way; sixty or ninety start to.
#
# ## 3. Exercise 04.1: draw a few-shot prompt from a pool
#
# Which demonstrations go into a prompt is a choice, and it changes the measurement. Four
# rules make it a fair one:
#
# - **balanced**: every label as often as `k` allows (`k // L` each of the `L` labels, and one
#   more for `k % L` labels chosen at random), so the prompt does not suggest that one answer
#   is more common than another;
# - **shuffled**: drawn label by label, the demonstrations would come in blocks, and a small
#   model leans on the label it read last (section 8 measures how much);
# - **seeded**: every random choice comes from `random.Random(seed)`, so the same seed gives
#   the same prompt (a run can be repeated) and different seeds give different ones, and the
#   global random state the rest of the program uses is left alone;
# - **never the test item**: a demonstration with the test review's text hands the model its
#   own answer. Leave out every row whose text is the test's, even a copy under another id.
#
# Write `few_shot_from_pool(test, pool, k, label_words, seed, instruction=...)`. Rows are dicts
# `{"text", "label"}` whose `label` is an index into `label_words`. Draw without replacement;
# when a label has fewer rows than a balanced set needs (once the test is left out), raise a
# `ValueError` that names the label. Lay the prompt out with `P.few_shot_prompt(text, pairs, k,
# instruction)`: the pretraining format of the prompts above.

# %%
def few_shot_from_pool(test: dict, pool: list[dict], k: int, label_words: list[str], seed: int,
                       instruction: str | None = "Is each review positive, negative or neutral?"
                       ) -> str:
    ### BEGIN SOLUTION
    rng = random.Random(seed)
    rows = [r for r in pool if r["text"] != test["text"]]
    n_labels = len(label_words)
    extra = set(rng.sample(range(n_labels), k % n_labels))
    picks = []
    for lab, word in enumerate(label_words):
        have = [r for r in rows if r["label"] == lab]
        need = k // n_labels + (lab in extra)
        if len(have) < need:
            raise ValueError(f"k={k} needs {need} {word!r} rows; the pool has {len(have)}")
        picks += rng.sample(have, need)
    rng.shuffle(picks)
    pairs = [(r["text"], label_words[r["label"]]) for r in picks]
    return P.few_shot_prompt(test["text"], pairs, k, instruction)
    ### END SOLUTION


# %%
check("04.1", few_shot_from_pool)

# %%
# The rest of the lesson uses the reference, so it runs whether or not the exercise passed.
from course_utils.prompting import few_shot_from_pool  # noqa: E402

# %% [markdown]
# ## 4. Measuring zero-shot against few-shot
#
# The harness (`course_utils.prompting.harness`) runs a **strategy**, a way of building the
# prompt plus a way of reading the answer, over a data set, and reports accuracy with a
# **95% Wilson interval**. On 90 examples an accuracy of 60% could be anything from about 50%
# to 70%.
#
# Two strategies that answer **the same** 90 reviews are compared **paired**. The reviews both
# get right, or both get wrong, say nothing about which is better; only the reviews one gets
# right and the other wrong do. If the two were equally good, each of those would be a fair
# coin, so **McNemar's exact test** is a two-sided binomial test on them, and a **paired
# bootstrap** (resampling the reviews, both strategies' answers together) gives the interval
# of the difference (`course_utils.metrics.paired`; `P.gain` prints both, and calls a gain
# clear when p < 0.05). Treating the two accuracies as independent samples would throw the
# pairing away and need a larger difference to see anything.
#
# Reading the answer: for sentiment we compare the model's probability of each label word
# after the prompt and take the largest: **choosing by likelihood** (one forward pass, and the
# answer is always one of the labels). After the table we read answers out of generated text.
#
# **Batching.** Prompts of different lengths share a batch by *left padding*: pad tokens go
# before the prompt, the attention mask hides them and positions count from the first real
# token, so each row computes what it would alone (`tests/test_prompting.py` checks this) while
# the CPU does 16 rows in one matrix multiply.
#
# The test set is 90 reviews from the held-out test split, 30 per label. Demonstrations come
# from the validation split (short ones, so 8 of them fit in the 256-token context), drawn for
# each review as exercise 04.1 draws them, with the review's position as the seed.

# %%
reviews = data.reviews(0)
test_reviews = [r for lab in range(3)
                for r in [x for x in reviews["test"] if x["label"] == lab][:30]]
test_reviews = [{**r, "i": i} for i, r in enumerate(test_reviews)]  # i seeds its demos
pool = [r for r in reviews["validation"] if len(tok(r["text"])["input_ids"]) <= 18]
pool_texts = {r["text"] for r in pool}
print(f"{len(test_reviews)} test reviews, {len(pool)} short validation reviews to draw from; "
      f"{sum(r['text'] in pool_texts for r in test_reviews)} of the test reviews are also in "
      "the pool word for word (the draw leaves each one out of its own prompt)")


def demos_for(r: dict, k: int, words=LABELS, order: str = "given",
              order_words=None) -> list[tuple[str, str]]:
    """k demonstrations for test review r, drawn as few_shot_from_pool draws them (seeded by
    r's position), then put in `order` ("given" keeps the draw's shuffled order)."""
    drawn = P.choose_examples(pool, k, words, seed=r["i"], exclude=r["text"])
    return P.order_examples(drawn, order, label_words=order_words or words, seed=r["i"])


def sentiment_strategy(k: int, words=LABELS, order: str = "given", name: str = "",
                       order_words=None, normalise: bool = False):
    """Evaluate k-shot prompts on the test reviews, choosing the label by likelihood."""
    instruction = f"Is each review {words[2]}, {words[0]} or {words[1]}?"
    return P.evaluate(
        name or f"{k}-shot", test_reviews,
        lambda r: P.few_shot_prompt(r["text"], demos_for(r, k, words, order, order_words), k,
                                    instruction),
        P.by_label_scores(model, tok, words, normalise=normalise))


shots = [sentiment_strategy(k) for k in (0, 1, 2, 4, 8)]
print(P.format_table(shots))
print("the 4-shot prompt of every review is few_shot_from_pool's:",
      shots[3].prompts == [few_shot_from_pool(r, pool, 4, LABELS, r["i"]) for r in test_reviews])

# %%
fig, ax = plt.subplots(figsize=(7, 3.4))
P.plot_evaluations(shots, ax, "sentiment accuracy vs number of demonstrations", chance=1 / 3)
plt.tight_layout()
plt.show()

zs, fs4 = shots[0], shots[3]
pred_counts = {w: sum(p == i for p in zs.predictions) for i, w in enumerate(LABELS)}
best = max(shots, key=lambda e: e.accuracy)
print(P.gain(fs4, zs))
print(P.gain(shots[4], fs4))
print(f"Best: {best.name} at {best.accuracy:.0%}. Zero-shot predictions per label "
      f"(30 of each are true): {pred_counts}")

# %% [markdown]
# Those sentences are this run's measurements, not quoted figures. "Right only with the first
# on b, only with the second on c" are the discordant reviews McNemar's test weighs; the
# interval is the paired bootstrap's. How to read them:
#
# - Without demonstrations the model has never been told that *these three words* are the
#   answers. If its zero-shot predictions pile onto one label (the counts above), it is
#   guessing from word associations, not classifying.
# - With demonstrations it can pick the label space up from the prompt: that is what
#   *in-context learning* means, and a clear few-shot gain is the evidence for it. With one
#   or two shots some label is never shown at all.
# - Every shot costs context (8 short reviews already fill most of the 256 tokens) and
#   compute; whether 8 beats 4 is exactly what the second sentence measures.
# - If every row sits at chance (33%), this checkpoint has not learned to read labels off
#   examples. That happens to small models trained too briefly, and the table shows it
#   instead of hiding it.
#
# **Reading the label out of generated text** is what a user of a chat model does. It is harder
# than scoring: the model may answer with another word, or with nothing.

# %%
def generated_strategy(k: int):
    return P.evaluate(f"{k}-shot, generated", test_reviews,
                      lambda r: P.few_shot_prompt(r["text"], demos_for(r, k), k),
                      P.by_generated_label(model, tok, LABELS, max_new_tokens=3))


generated = [generated_strategy(4)]
print(P.format_table([fs4, *generated]))
print(f"Generated: no label word in {sum(p is None for p in generated[0].predictions)} of 90 "
      f"answers; the first few answers: {generated[0].outputs[:5]}")
print(P.gain(fs4, generated[0]))

# %% [markdown]
# If the generated row is far below the scored one, look at the answers printed above. In
# pretraining, labelled lists used hundreds of different words as labels, so after
# "Sentiment:" this model is ready to write almost any word: the demonstrations shift the
# probabilities of the three label words (which is what choosing by likelihood reads), but
# not always above every other word. Scoring only the allowed labels is how classification
# with a language model is usually run (it is not *constrained decoding*, which generates
# text while masking the tokens a grammar forbids); chat models' "reply with one word"
# instructions do the same job more loosely.
#
# ## 5. Exercise 04.2: choose a label by likelihood
#
# The three label words so far are one token each, so "the label's probability" is one entry
# of the next-token distribution. Most labels are not (the cell after the check prints how
# many tokens "terrible", "okay" and "great" take here). The probability of a label of several tokens is the product of its
# tokens' probabilities, each given the prompt and the label's tokens before it, so its **log-
# probability is the sum** of theirs:
#
# $$\log p(\ell \mid \text{prompt}) = \sum_{j} \log p(\ell_j \mid \text{prompt}, \ell_{<j}).$$
#
# One forward pass over `prompt_ids + label_ids` gives every term: the logits at position
# `t` predict token `t + 1`, so the label's token `j` (at position `len(prompt_ids) + j`) is
# scored by position `len(prompt_ids) + j - 1`. A sum favours short labels (every extra token
# can only lower it); **length normalisation** compares the mean per token instead.
#
# Write `label_logprobs(model, tokenizer, prompt, labels, normalise=False)`: a tensor with one
# score per label, the sum of the log-probabilities (`log_softmax` over the vocabulary) of the
# tokens of `" " + label` (the label follows the prompt after a space, as in the format),
# divided by the label's number of tokens when `normalise=True`. `tokenizer(text)["input_ids"]`
# adds no special tokens in this course.

# %%
def label_logprobs(model, tokenizer, prompt: str, labels: list[str],
                   normalise: bool = False) -> torch.Tensor:
    ### BEGIN SOLUTION
    prompt_ids = tokenizer(prompt)["input_ids"]
    scores = []
    for label in labels:
        label_ids = tokenizer(" " + label)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([prompt_ids + label_ids])).logits[0]
        logp = torch.log_softmax(logits.float(), dim=-1)
        positions = torch.arange(len(label_ids)) + len(prompt_ids) - 1
        total = logp[positions, torch.tensor(label_ids)].sum()
        scores.append(total / len(label_ids) if normalise else total)
    return torch.stack(scores)
    ### END SOLUTION


# %%
check("04.2", label_logprobs)

# %%
from course_utils.lm import label_logprobs  # noqa: E402  (batched: a list of prompts too)

phrases = ["terrible", "okay", "great"]  # negative / neutral / positive in 4, 1 and 3 tokens
print({w: len(tok(" " + w)["input_ids"]) for w in phrases})
by_sum = sentiment_strategy(4, phrases, name="4-shot, terrible/okay/great, sum")
by_mean = sentiment_strategy(4, phrases, name="4-shot, terrible/okay/great, mean",
                             normalise=True)
print(P.format_table([fs4, by_sum, by_mean]))
for ev in (by_sum, by_mean):
    print(f"{ev.name}: predicts 'okay' (1 token) for "
          f"{sum(p == 1 for p in ev.predictions)} of 90 reviews (30 are neutral)")
print(P.gain(by_mean, by_sum))

# %% [markdown]
# Read the counts: with the plain sum, does the one-token label win more often than it should?
# Normalising removes that penalty on long labels, but it has a bias of its own: when the
# later tokens of a long label are nearly certain once its first is written, the mean lets
# those easy tokens lift its score. Which one works better is an empirical question, answered above for this
# model and these words; evaluation libraries report both (lm-evaluation-harness calls them
# `acc` and `acc_norm`, normalised by characters there).
#
# ## 6. Exercise 04.3: extract the answer robustly
#
# For word problems the answer is the number after "The answer is". What a small model
# writes is messy: after its answer it often invents a new `Q:` with its own answer, it may
# write "the answer is" in lower case or with a colon, and answers can be negative or written
# "1,200". Write `extract_answer(completion)` returning the `int` after the **first**
# "The answer is" (any capitalisation, optional colon) in the completion's own answer (cut at
# the first blank line or `\nQ:`; the answer itself may be on a later line), or `None` when
# there is none: a number somewhere in the working is not the answer. `0` is an answer like
# any other; only "no answer" gives `None`.

# %%
def extract_answer(completion: str) -> int | None:
    ### BEGIN SOLUTION
    own = re.split(r"\n\s*\n|\nQ:", completion, maxsplit=1)[0]
    m = re.search(r"the answer is\s*:?\s*(-?\d{1,3}(?:,\d{3})+|-?\d+)", own, re.IGNORECASE)
    return int(m.group(1).replace(",", "")) if m else None
    ### END SOLUTION


# %%
check("04.3", extract_answer)

# %%
from course_utils.prompting import extract_answer  # noqa: E402

# %% [markdown]
# ## 7. Direct answer, chain of thought, self-consistency
#
# 60 two-step problems from the test split (names and objects never seen in training), each
# with 2 worked demonstrations from the validation split. **Direct**: the demonstrations show
# only "The answer is N." and the prompt ends with "A: The answer is", so the model must
# produce the number at once. **Chain of thought**: the demonstrations show the steps and
# the model writes its own before the answer. Both greedy.

# %%
problems = data.word_problems(0)
test_problems = [r for r in problems["test"] if r["num_steps"] == 2][:60]
# Demonstrations of at most 75 tokens: two of them, the question and 48 new tokens fit in 256.
worked = [r for r in problems["validation"] if r["num_steps"] == 2
          and len(tok(f"Q: {r['question']}\nA: {r['solution']}\n\n")["input_ids"]) <= 75]


def problem_demos(r) -> list[tuple[str, str]]:
    """Two worked validation problems, drawn with the problem's position as the seed."""
    rng = torch.Generator().manual_seed(test_problems.index(r))
    return [(worked[int(i)]["question"], worked[int(i)]["solution"])
            for i in torch.randperm(len(worked), generator=rng)[:2]]


direct = P.evaluate("direct", test_problems,
                    lambda r: P.word_problem_prompt(r["question"], problem_demos(r), False),
                    P.by_answer(model, tok, direct=True, max_new_tokens=6), target="answer")
cot = P.evaluate("chain of thought", test_problems,
                 lambda r: P.word_problem_prompt(r["question"], problem_demos(r), True),
                 P.by_answer(model, tok, max_new_tokens=48), target="answer")
print(P.format_table([direct, cot]))
print(f"\n{test_problems[0]['question']}\n  direct: 'The answer is{direct.outputs[0]}'"
      f"\n  chain of thought:{cot.outputs[0]}\n  true answer: {test_problems[0]['answer']}")

# %% [markdown]
# **Self-consistency** samples several chains of thought (temperature above 0) and lets them
# vote: a wrong step in one chain rarely leads others to the same wrong number, while correct
# chains agree. The vote, `P.majority_vote`, counts the answers that could be read (`None`,
# no answer, does not vote) and breaks a tie in favour of the answer that came first.

# %%
N_SAMPLES, TEMPERATURE = 5, 0.7
sc = P.evaluate(f"self-consistency ({N_SAMPLES} chains)", test_problems,
                lambda r: P.word_problem_prompt(r["question"], problem_demos(r), True),
                P.by_self_consistency(model, tok, N_SAMPLES, TEMPERATURE, max_new_tokens=48),
                target="answer")
reasoning = [direct, cot, sc]
print(P.format_table(reasoning))
i = next((j for j, c in enumerate(sc.outputs)
          if len({extract_answer(x) for x in c}) > 1), 0)
print(f"\nProblem {i}: {test_problems[i]['question']} (answer {test_problems[i]['answer']})")
for chain in sc.outputs[i]:
    print(f"  {extract_answer(chain)!s:>5} <- {chain.strip()}")
print(f"  vote: {P.majority_vote([extract_answer(c) for c in sc.outputs[i]])}")

# %%
fig, ax = plt.subplots(figsize=(6, 3.4))
P.plot_evaluations(reasoning, ax, "two-step word problems (60 held-out)")
plt.tight_layout()
plt.show()
print(P.gain(cot, direct))
print(P.gain(sc, cot))

# %% [markdown]
# All three strategies answered the same 60 problems, so these comparisons are paired too.
# Why *can* writing the steps help a model this small? Each step ("3 * 4 = 12.") is an
# arithmetic fact of the kind it drilled in pretraining, predicted one at a time; the direct
# answer needs the whole computation in a single next-token guess. Chain of thought turns one
# hard prediction into several easy ones, if the model gets each easy one right: read the
# chains printed above to see where it goes wrong. Self-consistency costs `N_SAMPLES` times
# the generation: whether its gain (the second sentence) is worth that is exactly the kind of
# question the paired test answers.
#
# ## 8. How fragile is a prompt? Order and label words
#
# Same 90 reviews, same 4 demonstrations per review, only the **order** changes: random, or
# grouped by label with the positive (or the negative) ones last. A model with *recency bias*
# favours the label it read last.

# %%
orders = [replace(fs4, name="4-shot, random order"),  # the same prompts as the 4-shot row
          sentiment_strategy(4, order="grouped", name="grouped, positive last"),
          sentiment_strategy(4, order="grouped", name="grouped, negative last",
                             order_words=LABELS[::-1])]
print(P.format_table(orders))
for ev in orders:
    last = [LABELS.index(re.findall(r"Sentiment: (\w+)\n\n", p)[-1]) for p in ev.prompts]
    share = sum(p == lab for p, lab in zip(ev.predictions, last, strict=True)) / ev.n
    print(f"{ev.name:<24} predicts the last demonstration's label for {share:.0%} of reviews")


# %% [markdown]
# Now the **label words**. The demonstrations are the same; only the words standing for
# negative/neutral/positive change: words the model saw as labels in pretraining (such as
# bad/okay/good), arbitrary words that never were labels (such as tree/river/hill), and the true
# words **flipped** (a negative review labelled "positive"). Accuracy counts the label the
# demonstrations teach.

# %%
def whole_words(candidates) -> list[str]:
    """The first candidate label set whose words are single tokens, so that the comparison
    is about the words, not about how many tokens they take."""
    for words in candidates:
        if all(len(tok(" " + w)["input_ids"]) == 1 for w in words):
            return list(words)
    raise ValueError(f"no candidate label set is made of single tokens: {candidates}")


seen = whole_words(TRAIN_LABEL_SETS)  # labels in pretraining, e.g. bad/okay/good
arbitrary = whole_words([("tree", "river", "hill"), ("lamp", "chair", "door"),
                         ("park", "garden", "house")])  # never labels in pretraining
word_sets = {"negative/neutral/positive": LABELS, "/".join(seen): seen,
             "/".join(arbitrary): arbitrary,
             "flipped: positive/neutral/negative": LABELS[::-1]}
words_evals = [replace(fs4, name=name) if words == LABELS  # the 4-shot row again
               else sentiment_strategy(4, words, name=name) for name, words in word_sets.items()]
print(P.format_table(words_evals))

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
P.plot_evaluations(orders, axes[0], "order of 4 demonstrations", chance=1 / 3)
P.plot_evaluations(words_evals, axes[1], "label words (4-shot)", chance=1 / 3)
plt.tight_layout()
plt.show()
for ev in orders[1:] + words_evals[1:]:
    print(P.gain(ev, fs4))

# %% [markdown]
# What to look for: whether the same four demonstrations in another order change the answer
# (a prompt should not care, a small model often does); whether familiar label words beat
# the unseen negative/neutral/positive (the model leaning on pretraining habits); whether
# arbitrary words can be learned from four examples at all; and whether flipped labels are
# followed (reading the demonstrations) or resisted (reading the words' meaning). Large
# models show the same effects, smaller. Whenever a prompting claim matters, measure it on
# your own data with an interval, as here.
#
# ## 9. The sampling explorer
#
# Everything above decoded greedily or at one temperature. The next token is drawn from a
# distribution you can reshape (lesson 03 wrote these filters; the widget reuses them):
#
# - **temperature** divides the logits: below 1 sharpens, above 1 flattens, 0 is greedy;
# - **top-k** keeps only the k most likely tokens;
# - **top-p** (nucleus) keeps the fewest most likely tokens whose probabilities add up to p.
#
# Type a prompt and move the sliders: the outlined bars are the raw distribution, the filled
# ones what is left to sample from; below is a continuation sampled with those settings.

# %%
# NBVAL_IGNORE_OUTPUT
from course_utils.widgets.sampling_explorer import (  # noqa: E402
    distribution_table,
    kept_tokens,
    next_token_logits,
    sampling_explorer,
)

sampling_explorer(model, tok, prompt="Once upon a time, Mia")

# %% [markdown]
# The same numbers without the widget, for the prompt above:

# %%
logits = next_token_logits(model, tok, "Once upon a time, Mia")
for t, k, p in [(1.0, None, None), (0.5, None, None), (1.5, None, None), (1.0, 10, None),
                (1.0, None, 0.9)]:
    top = distribution_table(logits, tok, t, k, p, n=3)
    print(f"T={t}, top-k={k}, top-p={p}: {kept_tokens(logits, t, k, p):4d} tokens possible; "
          + ", ".join(f"{r['token']!r} {r['after']:.2f}" for r in top))

# %% [markdown]
# ## 10. Role, template, conditional and iterative prompts, measured
#
# These techniques are **prompt construction**: code that decides what text the model sees.
# The code is the same for any model; what the model does with the text depends on how it was
# trained. `course-gpt` saw chats with a few system lines, but the system line never changed
# the reply, so it has no reason to follow a role. **`course-gpt-chat`** is `course-gpt` after
# *instruction tuning*: supervised fine-tuning on chats whose replies do follow their system
# roles, templates, conditions and steps, with the loss on the assistant's replies only
# (lesson 05 shows how). Both load with the same call, and both have the same chat template.
#
# **Role-playing**: a system message sets who the assistant is. The same two prompts, on both
# models:

# %%
chat_model, chat_tok = P.load_model("course-gpt-chat")
STOP = ("\nUser:", "\nSystem:", "\nAssistant:")  # a new turn: the reply is over
for role in ("a storyteller", "a brief answerer: only the result"):
    request = "Mia has 4 cups. Leo gives her 3 more. How many cups does Mia have?"
    for name, m, t in (("course-gpt", model, tok), ("course-gpt-chat", chat_model, chat_tok)):
        reply = P.generate_batch(m, t, [P.role_prompt(t, role, request)], 40, stop=STOP)[0]
        print(f"[{role}] {name:>15}: {reply.strip()!r}")

# %% [markdown]
# **Templates** with named slots, validated: every slot must be filled, none left over. The
# template here writes a word problem in the model's own format, so it can answer it.

# %%
template = ("Q: {name} has {a} {things}. {friend} gives {name} {b} more {things}. "
            "How many {things} does {name} have now?\nA:")
print(P.template_slots(template))
filled = P.fill_template(template, name="Mia", friend="Leo", a="6", b="7", things="cups")
_ = show([filled], 30, stop=("\n\n", "\nQ:"))
try:
    P.fill_template(template, name="Mia", a="6", b="7", things="cups")
except ValueError as err:
    print("ValueError:", err)

# %% [markdown]
# **Conditional generation**: the prompt branches on something known about the user. Here a
# user who wants Lingo (the course's toy language) gets a translation prompt, one who wants
# a summary gets the `TL;DR:` format, anyone else a story opening.

# %%
branches = {
    "lingo": ("English: The cat eats the cake.\nLingo: Lo gato mangas lo kuko.\n\n"
              "English: {text}\nLingo:"),
    "summary": "{text}\nTL;DR:",
}
story_start = "Once upon a time, {name} went to the park."
users = [{"name": "Ana", "wants": "lingo", "text": "The dog eats the cake."},
         {"name": "Ben", "wants": "summary", "text": "Mia went to the market. She bought "
          "apples and bread. Then she baked a cake for her friend Leo."},
         {"name": "Cleo", "wants": "a story", "text": ""}]
conditional = [P.conditional_prompt(u, "wants", branches, default=story_start) for u in users]
_ = show(conditional, 24, stop=("\n",))

# %% [markdown]
# **Iterative refinement**: a chain where each step's output becomes part of the next prompt.
# Write a story opening, summarise it, translate the summary. Each link works only as well
# as the model's grasp of that format, and errors pass down the chain.

# %%
def complete(prompt: str) -> str:
    return P.generate_batch(model, tok, [prompt], 40, stop=("\n",))[0]


steps = ["Once upon a time, {name} went to the {place}.",
         "{previous}\nTL;DR:",
         "English: The cat eats the cake.\nLingo: Lo gato mangas lo kuko.\n\n"
         "English: {previous}\nLingo:"]
for n, (prompt, output) in enumerate(P.iterative_refinement(complete, steps, name="Mia",
                                                            place="river"), start=1):
    print(f"step {n}: ...{prompt[-60:]!r}\n   -> {output.strip()!r}")

# %% [markdown]
# **Measured.** One example proves nothing, so both models answer the same held-out
# instructions of `course_utils.data.instructions` (the `"eval"` split: phrasings, names and
# contents that never occur in the tuning data), and each reply is scored by the item's own
# code check: the role followed (only the result, or worked steps, or one story sentence),
# every template slot filled with what the request gave and nothing invented, the right branch
# of a condition taken, every step done in order. Greedy replies, at most 80 tokens.

# %%
from course_utils.data.instructions import instruction_data  # noqa: E402

ADVANCED, N_PER_TECHNIQUE = ("role", "template", "conditional", "iterative"), 12
items = instruction_data(seed=0, split="eval", n=N_PER_TECHNIQUE * len(ADVANCED),
                         techniques=ADVANCED)


def followed(name: str, m, t) -> P.Evaluation:
    """Every item answered by model m, scored by the item's check (target: True, followed)."""
    def predict(prompts: list[str]) -> tuple[list[bool], list[str]]:
        replies = P.generate_batch(m, t, prompts, 80, stop=STOP)  # prompts in items' order
        return [it.check(r) for it, r in zip(items, replies, strict=True)], replies
    return P.evaluate(name, items, lambda it: P.chat_prompt(t, it.messages), predict,
                      target=lambda it: True)


base_all, chat_all = followed("course-gpt", model, tok), followed("course-gpt-chat",
                                                                   chat_model, chat_tok)
for technique in ADVANCED:
    j = next(j for j, it in enumerate(items) if it.technique == technique)
    print(f"--- {items[j].kind}: {items[j].messages[-1]['content']!r}")
    for ev in (base_all, chat_all):
        print(f"  {ev.name:>15} {'followed' if ev.predictions[j] else 'did not':>8}: "
              f"{ev.outputs[j].strip()[:110]!r}")

# %%
rows_of = {t: [j for j, it in enumerate(items) if it.technique == t] for t in ADVANCED}
rows_of["all"] = list(range(len(items)))
pairs = {t: (P.subset(base_all, keep, f"{t}, course-gpt"),
             P.subset(chat_all, keep, f"{t}, course-gpt-chat")) for t, keep in rows_of.items()}
print(f"{'technique':<12} {'n':>3}  {'course-gpt':>10}  {'course-gpt-chat':>15}  "
      f"{'only base':>9}  {'only chat':>9}  {'paired 95% interval':>20}  McNemar p")
for t, (b, c) in pairs.items():
    (d, low, high), test = P.paired(c, b)
    print(f"{t:<12} {b.n:3d}  {b.accuracy:10.0%}  {c.accuracy:15.0%}  {test.b_only:9d}  "
          f"{test.a_only:9d}  {100 * low:+8.0f} to {100 * high:+4.0f} pts  {test.p_value:9.3f}")

fig, ax = plt.subplots(figsize=(8, 3.4))
xs = torch.arange(len(pairs)).float()
for shift, which in ((-0.2, 0), (0.2, 1)):
    evs = [pair[which] for pair in pairs.values()]
    ax.bar(xs + shift, [e.accuracy for e in evs], 0.4, label=evs[0].name.split(", ")[1],
           yerr=[[e.accuracy - e.low for e in evs], [e.high - e.accuracy for e in evs]],
           capsize=3)
ax.set_xticks(xs.tolist(), list(pairs))
ax.set_ylim(0, 1.05)
ax.set_ylabel("instructions followed (95% interval)")
ax.set_title(f"held-out instructions, {N_PER_TECHNIQUE} per technique")
ax.legend()
plt.tight_layout()
plt.show()
for b, c in pairs.values():
    print(P.gain(c, b))

# %% [markdown]
# The table is this run's: per technique, how often each model followed, on how many items
# only one of them did (the discordant pairs, the only ones McNemar's test weighs), the
# paired interval of the difference and the exact p-value. With 12 items a technique needs a
# large difference to be clear; the "all" row pools the 48 paired items. The prompt
# construction did not change between the columns; the training did. Look at the examples
# printed above for what "followed" means and where the tuned model still fails: a reply can
# have the right shape (a card with a Title, a Story and a Moral) and still be scored as not
# followed, because its names and things are not the ones the request gave.
#
# **The same code on a real instruct model.** `P.load_model` takes a hub name too. Offline
# (the course default, `HF_HUB_OFFLINE=1`) it fails at once with a clear message instead of
# hanging; online (set `HF_HUB_OFFLINE=0` before importing `course_utils`), the cells above run
# unchanged with `chat_model, chat_tok` replaced, because every prompt goes through the
# model's own chat template.

# %%
try:
    hub_model, hub_tok = P.load_model("HuggingFaceTB/SmolLM2-135M-Instruct")
    print("loaded", type(hub_model).__name__)
except OSError as err:
    print("Offline, as expected:", str(err)[:160], "...")

# %% [markdown]
# ## 11. What this run measured
#
# The summary below is printed from this run's numbers (they change if you change the seed,
# the sizes or the model, and that is the point). Every comparison is paired: the two sides
# answered the same items.

# %%
everything = (shots + generated + [by_sum, by_mean] + reasoning + orders[1:] + words_evals[1:]
              + [base_all, chat_all])  # no repeated rows
print(P.format_table(everything))
print()
for a, b in [(fs4, zs), (cot, direct), (sc, cot), (chat_all, base_all)]:
    print(P.gain(a, b))
print(f"Whole notebook so far: {time.perf_counter() - started:.0f} s.")
progress()
