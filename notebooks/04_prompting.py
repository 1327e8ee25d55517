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
# against chain of thought and self-consistency (with confidence intervals, on held-out data),
# probe how fragile a prompt is to the order of its examples and to its label words, steer
# sampling with temperature, top-k and top-p, and build role, template, conditional and
# iterative prompts, honest about what a model this small can follow.
#
# Three exercises: build a few-shot prompt, extract an answer robustly, take a majority vote.
# Each is followed by a check cell; `hint("04.1")` and `solution("04.1")` help when stuck.

# %%
from course_utils import check, data, hint, progress, solution, start_lesson  # noqa: F401

start_lesson(seed=0, threads=1)  # small matrices: one thread wastes nothing on a shared CPU

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
# ## 3. Exercise 04.1: build a few-shot prompt
#
# Write `few_shot_prompt(text, examples, k, instruction=...)`: the instruction and a blank line
# (left out entirely when `instruction` is None), then the **first `k`** `(review, label)`
# pairs (`k=0` is zero-shot: none at all), each as `Review: <review>\nSentiment: <label>\n\n`,
# then the query `Review: <text>\nSentiment:`, with **no space after the last colon**: the
# model's next token is `" positive"` with its space, exactly as in training. Reviews go in
# exactly as they are, quotes and all.

# %%
def few_shot_prompt(text: str, examples: list[tuple[str, str]], k: int,
                    instruction: str | None = "Is each review positive, negative or neutral?"
                    ) -> str:
    ### BEGIN SOLUTION
    head = f"{instruction}\n\n" if instruction is not None else ""
    shots = "".join(f"Review: {review}\nSentiment: {label}\n\n" for review, label in examples[:k])
    return f"{head}{shots}Review: {text}\nSentiment:"
    ### END SOLUTION


# %%
check("04.1", few_shot_prompt)

# %%
# The rest of the lesson uses the reference, so it runs whether or not the exercise passed.
from course_utils.prompting import few_shot_prompt  # noqa: E402

# %% [markdown]
# ## 4. Measuring zero-shot against few-shot
#
# The harness (`course_utils.prompting.harness`) runs a **strategy**, a way of building the
# prompt plus a way of reading the answer, over a data set, and reports accuracy with a
# **95% Wilson interval**. On 90 examples an accuracy of 60% could be anything from about 50%
# to 70%: two strategies differ only where their intervals say so.
#
# Reading the answer: for sentiment we compare the model's next-token probability of the
# three label words and take the largest (*constrained decoding*: one forward pass, and the
# answer is always a label). After the table we read answers out of generated text instead.
#
# **Batching.** Prompts of different lengths share a batch by *left padding*: pad tokens go
# before the prompt, the attention mask hides them and positions count from the first real
# token, so each row computes what it would alone (`tests/test_prompting.py` checks this) while
# the CPU does 16 rows in one matrix multiply.
#
# The test set is 90 reviews from the held-out test split, 30 per label. Demonstrations come
# from the validation split (short ones, so 8 of them fit in the 256-token context), chosen per
# review with a seed: balanced across labels, in random order.

# %%
reviews = data.reviews(0)
test_reviews = [r for lab in range(3)
                for r in [x for x in reviews["test"] if x["label"] == lab][:30]]
test_reviews = [{**r, "i": i} for i, r in enumerate(test_reviews)]  # i seeds its demos
pool = [r for r in reviews["validation"] if len(tok(r["text"])["input_ids"]) <= 18]
print(f"{len(test_reviews)} test reviews, {len(pool)} short validation reviews to draw from")


def demos_for(i: int, k: int, words=LABELS, order: str = "shuffled",
              order_words=None) -> list[tuple[str, str]]:
    """k balanced demonstrations for test review i, in the given order (seeded by i)."""
    chosen = P.choose_examples(pool, k, words, seed=i)
    return P.order_examples(chosen, order, label_words=order_words or words, seed=i)


def sentiment_strategy(k: int, words=LABELS, order: str = "shuffled", name: str = "",
                       order_words=None):
    """Evaluate k-shot prompts on the test reviews, reading the answer by label scores."""
    instruction = f"Is each review {words[2]}, {words[0]} or {words[1]}?"
    return P.evaluate(
        name or f"{k}-shot", test_reviews,
        lambda r: few_shot_prompt(r["text"], demos_for(r["i"], k, words, order, order_words),
                                  k, instruction),
        P.by_label_scores(model, tok, words))


shots = [sentiment_strategy(k) for k in (0, 1, 2, 4, 8)]
print(P.format_table(shots))

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
# Those sentences are this run's measurements, not quoted figures; the interval on a
# *difference* (Newcombe's, from the two Wilson intervals) says whether a gain is more than
# the luck of which 90 reviews were drawn. How to read them:
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
                      lambda r: few_shot_prompt(r["text"], demos_for(r["i"], k), k),
                      P.by_generated_label(model, tok, LABELS, max_new_tokens=3))


generated = [generated_strategy(4)]
print(P.format_table([fs4, *generated]))
print(f"Generated: no label word in {sum(p is None for p in generated[0].predictions)} of 90 "
      f"answers; the first few answers: {generated[0].outputs[:5]}")

# %% [markdown]
# If the generated row is far below the scored one, look at the answers printed above. In
# pretraining, labelled lists used hundreds of different words as labels, so after
# "Sentiment:" this model is ready to write almost any word: the demonstrations shift the
# probabilities of the three label words (which is what scoring reads), but not always above
# every other word. Restricting the answer to the allowed labels, as the scored rows do, is
# called *constrained decoding*; it is how classification with a language model is usually
# run, and chat models' "reply with one word" instructions do the same job more loosely.
#
# ## 5. Exercise 04.2: extract the answer robustly
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
check("04.2", extract_answer)

# %%
from course_utils.prompting import extract_answer  # noqa: E402

# %% [markdown]
# ## 6. Direct answer, chain of thought, self-consistency
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
# chains agree.
#
# ## 7. Exercise 04.3: majority vote
#
# Write `majority_vote(answers)`: the most common answer, **ignoring `None`** (chains whose
# answer could not be read), with a tie going to the answer that appeared **first**; `None`
# when nothing is left. Answers may be numbers, label words or booleans, and they vote as
# they are, compared with `==`: only `None` means "no answer" (`0` and `False` are answers),
# and `7` and `"7"` are two different answers.

# %%
def majority_vote(answers: list) -> object | None:
    ### BEGIN SOLUTION
    counts: dict = {}
    for a in answers:
        if a is not None:
            counts[a] = counts.get(a, 0) + 1
    best = None
    for a, n in counts.items():  # dicts keep first-seen order, so ties go to the earliest
        if best is None or n > counts[best]:
            best = a
    return best
    ### END SOLUTION


# %%
check("04.3", majority_vote)

# %%
from course_utils.prompting import majority_vote  # noqa: E402

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
print(f"  vote: {majority_vote([extract_answer(c) for c in sc.outputs[i]])}")

# %%
fig, ax = plt.subplots(figsize=(6, 3.4))
P.plot_evaluations(reasoning, ax, "two-step word problems (60 held-out)")
plt.tight_layout()
plt.show()
print(P.gain(cot, direct))
print(P.gain(sc, cot))

# %% [markdown]
# Why *can* writing the steps help a model this small? Each step ("3 * 4 = 12.") is an
# arithmetic fact of the kind it drilled in pretraining, predicted one at a time; the direct
# answer needs the whole computation in a single next-token guess. Chain of thought turns one
# hard prediction into several easy ones, if the model gets each easy one right: read the
# chains printed above to see where it goes wrong. Self-consistency costs `N_SAMPLES` times
# the generation: whether its gain (the second sentence) is worth that is exactly the kind of
# question the intervals answer.
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
    """The first candidate label set whose words are single tokens (scoring needs that)."""
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
# ## 10. Beyond the format: role, template, conditional and iterative prompts
#
# These techniques are **prompt construction**: code that decides what text the model sees.
# The code is the same for any model; what the model does with the text depends on how it was
# trained. `course-gpt` saw chats with a few system lines, but the system line never
# changed the reply, so it has no reason to follow a role. Instruction-tuned models were
# trained on exactly that. Watch what the small model does, and what it ignores.
#
# **Role-playing**: a system message sets who the assistant is.

# %%
for role in ("a storyteller", "a maths teacher who answers briefly"):
    prompt = P.role_prompt(tok, role, "Tell me about your day.")
    _ = show([prompt], 30, stop=("\nUser:", "\n\n"))

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
# **The same code on a real instruct model.** `P.load_model` takes a hub name too. Offline
# (the course default, `HF_HUB_OFFLINE=1`) it fails at once with a clear message instead of
# hanging; online (set `HF_HUB_OFFLINE=0` before importing `course_utils`), the role,
# template, conditional and refinement cells above run unchanged with `model, tok` replaced,
# because every prompt goes through the model's own chat template.

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
# the sizes or the model, and that is the point).

# %%
everything = shots + generated + reasoning + orders[1:] + words_evals[1:]  # no repeated rows
print(P.format_table(everything))
print()
for a, b in [(fs4, zs), (cot, direct), (sc, cot)]:
    print(P.gain(a, b))
print(f"Whole notebook so far: {time.perf_counter() - started:.0f} s.")
progress()
