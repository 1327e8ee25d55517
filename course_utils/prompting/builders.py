"""Prompt builders: every technique of lesson 04 as a function that returns the prompt text.

The sentiment and word-problem formats are the ones ``course-gpt`` was pretrained on
(:mod:`course_utils.data.prompts`); the builders here choose *what* goes into them: how many
demonstrations, which ones, in what order, with or without worked steps. The advanced techniques
(role, template, conditional, iterative refinement) are prompt construction too, and work with
any tokenizer that has a chat template, ``course-gpt``'s or a hub instruct model's.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Mapping, Sequence

from course_utils.data import prompts
from course_utils.data.prompts import SENTIMENT_INSTRUCTION

ORDERS = ("given", "shuffled", "reversed", "grouped")
ROLES = ("system", "user", "assistant")


# ------------------------------------------------------------------ zero-shot and few-shot
def _check_pairs(examples: Sequence, what: str = "examples") -> list[tuple[str, str]]:
    if isinstance(examples, str | bytes) or not isinstance(examples, Sequence):
        raise TypeError(f"{what} must be a list of (input, output) pairs, "
                        f"got {type(examples).__name__}")
    out = []
    for i, ex in enumerate(examples):
        if isinstance(ex, str) or not isinstance(ex, Sequence) or len(ex) != 2 \
                or not all(isinstance(x, str) for x in ex):
            raise TypeError(f"{what}[{i}] must be a pair of strings (input, output), got {ex!r}")
        out.append((ex[0], ex[1]))
    return out


def zero_shot_prompt(text: str, instruction: str | None = SENTIMENT_INSTRUCTION) -> str:
    """The instruction and the review alone: the model must guess the label words."""
    return few_shot_prompt(text, [], 0, instruction)


def few_shot_prompt(text: str, examples: Sequence[tuple[str, str]], k: int | None = None,
                    instruction: str | None = SENTIMENT_INSTRUCTION) -> str:
    """The instruction, the first ``k`` (review, label word) demonstrations, then the query.

    ``k=None`` uses every example; ``k=0`` is zero-shot. The layout is exactly
    :func:`course_utils.data.prompts.sentiment_prompt`'s, the one course-gpt was trained on::

        <instruction>\\n\\nReview: <text>\\nSentiment: <label>\\n\\n ... Review: <text>\\nSentiment:
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    pairs = _check_pairs(examples)
    if k is None:
        k = len(pairs)
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= len(pairs):
        raise ValueError(f"k must be an int between 0 and len(examples)={len(pairs)}, got {k!r}")
    return prompts.sentiment_prompt(text, pairs[:k], instruction)


def choose_examples(pool: Sequence[Mapping], k: int, label_words: Sequence[str],
                    seed: int = 0, balanced: bool = True, exclude: str | None = None
                    ) -> list[tuple[str, str]]:
    """Draw ``k`` demonstrations from rows ``{"text", "label"}`` as (text, label word) pairs.

    Rows whose text is ``exclude`` (the test item's, so a copy of it in the pool cannot leak
    its answer) are never drawn. ``balanced`` gives each label ``k // L`` rows of the ``L``
    labels, and ``k % L`` labels chosen at random one more, drawn without replacement and
    returned shuffled, so the labels never come in blocks; a label with too few rows is a
    ``ValueError``. Otherwise the rows are a plain random sample. Everything random comes from
    ``random.Random(seed)``: the same seed gives the same draw, and the global state is left
    alone.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"k must be an int >= 0, got {k!r}")
    if isinstance(label_words, str) or len(label_words) < 1:
        raise ValueError(f"label_words must be a list of label words, got {label_words!r}")
    rows = [r for r in pool if exclude is None or r["text"] != exclude]
    for r in rows:
        if isinstance(r["label"], bool) or r["label"] not in range(len(label_words)):
            raise ValueError(f"row {r['text']!r:.40} has label {r['label']!r}; labels must be "
                             f"indices of label_words {list(label_words)}")
    rng = random.Random(seed)
    if not balanced:
        if k > len(rows):
            raise ValueError(f"k={k} is more than the {len(rows)} rows in the pool"
                             + (" once the test item is left out" if len(rows) < len(pool)
                                else ""))
        picks = rng.sample(rows, k)
    else:
        n_labels = len(label_words)
        extra = set(rng.sample(range(n_labels), k % n_labels))
        picks = []
        for lab, word in enumerate(label_words):
            have = [r for r in rows if r["label"] == lab]
            need = k // n_labels + (lab in extra)
            if len(have) < need:
                raise ValueError(f"a balanced set of k={k} needs {need} {word!r} rows, but the "
                                 f"pool has {len(have)}" + (" besides the test item"
                                                            if exclude is not None else "")
                                 + ": use a larger pool or a smaller k")
            picks += rng.sample(have, need)
        rng.shuffle(picks)
    return [(r["text"], label_words[r["label"]]) for r in picks]


def few_shot_from_pool(test: Mapping, pool: Sequence[Mapping], k: int,
                       label_words: Sequence[str], seed: int,
                       instruction: str | None = SENTIMENT_INSTRUCTION) -> str:
    """A k-shot prompt for ``test`` (a row ``{"text", ...}``), its demonstrations drawn from
    ``pool`` by :func:`choose_examples`: balanced, shuffled, seeded, never the test's text."""
    demos = choose_examples(pool, k, label_words, seed=seed, exclude=test["text"])
    return few_shot_prompt(test["text"], demos, k, instruction)


def order_examples(examples: Sequence[tuple[str, str]], order: str = "given",
                   label_words: Sequence[str] | None = None, seed: int = 0
                   ) -> list[tuple[str, str]]:
    """Reorder demonstrations: ``given``, ``shuffled``, ``reversed`` or ``grouped`` by label.

    ``grouped`` puts all demonstrations of one label together, in ``label_words`` order, so the
    last label is the one the model read most recently: a test of recency bias.
    """
    pairs = _check_pairs(examples)
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    if order == "shuffled":
        random.Random(seed).shuffle(pairs)
    elif order == "reversed":
        pairs.reverse()
    elif order == "grouped":
        rank = {w: i for i, w in enumerate(label_words or sorted({lab for _, lab in pairs}))}
        pairs.sort(key=lambda p: rank.get(p[1], len(rank)))
    return pairs


# ------------------------------------------------------------------------ chain of thought
def word_problem_prompt(question: str, examples: Sequence[tuple[str, str]] = (),
                        chain_of_thought: bool = True) -> str:
    """(question, worked solution) demonstrations, then the question, ending at ``"A:"``.

    With ``chain_of_thought=False`` the demonstrations keep only "The answer is N." and the
    prompt ends with ``"A: The answer is"``: the model has to give the number at once.
    """
    return prompts.word_problem_prompt(question, _check_pairs(examples), chain_of_thought)


# -------------------------------------------------------------------------- chat and roles
def chat_messages(user: str, system: str | None = None,
                  history: Sequence[tuple[str, str]] = ()) -> list[dict[str, str]]:
    """A message list: optional system message, earlier (user, assistant) turns, the user turn."""
    messages = [{"role": "system", "content": system}] if system else []
    for u, a in _check_pairs(history, "history"):
        messages += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
    return messages + [{"role": "user", "content": user}]


def chat_prompt(tokenizer, messages: Sequence[Mapping[str, str]],
                add_generation_prompt: bool = True) -> str:
    """Render messages with the tokenizer's own chat template (``apply_chat_template``).

    Each model family has its own template (course-gpt's is ``System:/User:/Assistant:``
    lines); the template, not the prompt author, decides the markup the model was trained on.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("this tokenizer has no chat template: use a chat model (course-gpt "
                         "ships one) or set tokenizer.chat_template to a Jinja template")
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or m.get("role") not in ROLES \
                or not isinstance(m.get("content"), str):
            raise ValueError(f"messages[{i}] must be {{'role': one of {ROLES}, 'content': str}},"
                             f" got {m!r}")
    return tokenizer.apply_chat_template([dict(m) for m in messages], tokenize=False,
                                         add_generation_prompt=add_generation_prompt)


def role_prompt(tokenizer, role: str, request: str) -> str:
    """Role-playing: a system message "You are <role>." before the user's request."""
    if not role.strip():
        raise ValueError("role is empty: describe who the assistant should be, e.g. "
                         "'a friendly teacher'")
    system = role if role.lower().startswith("you are") else f"You are {role.strip()}."
    return chat_prompt(tokenizer, chat_messages(request, system=system))


# ------------------------------------------------------------------------------- templates
def template_slots(template: str) -> list[str]:
    """The named ``{slot}`` fields of a template, in order of first appearance."""
    slots: list[str] = []
    for _, name, _, _ in string.Formatter().parse(template):
        if name is None:
            continue
        if not name.isidentifier():
            raise ValueError(f"template slots must be names like {{city}}, got {{{name}}}")
        if name not in slots:
            slots.append(name)
    return slots


def fill_template(template: str, **values: str) -> str:
    """Fill every named slot and check the result: no slot missing, empty or unknown.

    After filling, each value must appear in the text and no ``{slot}`` may be left over,
    so a broken template fails here rather than as a puzzling model output.
    """
    slots = template_slots(template)
    missing = [s for s in slots if s not in values]
    unknown = [v for v in values if v not in slots]
    empty = [s for s in slots if s in values and not str(values[s]).strip()]
    if missing or unknown or empty:
        problems = [f"missing {missing}" if missing else "", f"unknown {unknown}" if unknown
                    else "", f"empty {empty}" if empty else ""]
        raise ValueError(f"template slots are {slots}: " + "; ".join(p for p in problems if p))
    text = template.format(**{k: str(v) for k, v in values.items()})
    left = [s for s in slots if f"{{{s}}}" in text and f"{{{s}}}" not in str(values[s])]
    absent = [s for s in slots if str(values[s]) not in text]
    if left or absent:
        raise ValueError(f"the filled template lost slots {left + absent}: {text!r}")
    return text


# ----------------------------------------------------------------------------- conditional
def conditional_prompt(user: Mapping[str, str], attribute: str, branches: Mapping[str, str],
                       default: str | None = None) -> str:
    """Pick a template by ``user[attribute]`` and fill it with the user's fields.

    E.g. a beginner gets "Explain X simply", an expert "Explain X in depth". An attribute value
    with no branch uses ``default``, or is an error naming the branches that exist.
    """
    if attribute not in user:
        raise ValueError(f"the user has no {attribute!r}; they have {sorted(user)}")
    value = user[attribute]
    template = branches.get(value, default)
    if template is None:
        raise ValueError(f"no branch for {attribute}={value!r}: branches are {sorted(branches)};"
                         " add one or pass default=")
    slots = template_slots(template)
    return fill_template(template, **{s: user[s] for s in slots if s in user})


# ---------------------------------------------------------------------- iterative refinement
def iterative_refinement(generate: Callable[[str], str], steps: Sequence[str], **values: str
                         ) -> list[tuple[str, str]]:
    """Run a chain of prompts, each step's output feeding the next as ``{previous}``.

    ``steps`` are templates; the first may not use ``{previous}``, every later one must.
    ``values`` fill the other slots (e.g. ``task``). Returns each step's (prompt, output).
    """
    if not steps:
        raise ValueError("steps is empty: give at least one prompt template")
    trace: list[tuple[str, str]] = []
    previous = None
    for i, step in enumerate(steps):
        uses = "previous" in template_slots(step)
        if (i == 0) == uses:
            raise ValueError(f"step {i} {'must not' if i == 0 else 'must'} use {{previous}}")
        slots = {s: values[s] for s in template_slots(step) if s in values}
        if uses:
            slots["previous"] = previous.strip() or "(nothing)"
        prompt = fill_template(step, **slots)
        previous = generate(prompt)
        if not isinstance(previous, str):
            raise TypeError(f"generate must return a str, got {type(previous).__name__}")
        trace.append((prompt, previous))
    return trace
