"""Exercise 04.2: choosing a label by likelihood, for labels of several tokens.

``label_logprobs(model, tokenizer, prompt, labels, normalise=False)`` returns, per label, the
sum of the log-probabilities of the tokens of ``" " + label`` after the prompt (each token
given the prompt and the label's tokens before it), or their mean per token with
``normalise=True``. Graded on ``course-gpt-mini`` (the course's smallest trained GPT, so the
cases are quick and its probabilities are far from uniform) against the LM layer's
:func:`course_utils.lm.label_logprobs` (which takes one prompt or a list).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import torch

from course_utils import lm
from course_utils.grading.core import Case, Exercise, compare, register
from course_utils.prompting import builders

_DEMOS = [("The soup was cold and the waiter was rude.", "negative"),
          ("It arrived on Tuesday. It was fine.", "neutral"),
          ("Lovely hotel. The staff were so kind!", "positive"),
          ("This book made me smile. I loved it!", "positive")]


@lru_cache(maxsize=1)
def _model_and_tokenizer() -> tuple[Any, Any]:
    from course_utils.pretrained import load_pretrained

    model, tok = load_pretrained("course-gpt-mini")
    return model.eval(), tok


def _cases(rng: torch.Generator):
    model, tok = _model_and_tokenizer()
    review = builders.few_shot_prompt("The cake was dry and the tea was cold.", _DEMOS)
    yield Case((model, tok, review, ["negative", "neutral", "positive"]),
               label="one-token labels after a 4-shot prompt",
               catches="raw logits instead of log_softmax; probabilities instead of logs; the "
                       "wrong position scoring the label (off by one); the prompt's own tokens "
                       "summed too")
    yield Case((model, tok, review, ["very negative", "okay", "quite good"]),
               label="labels of 4, 1 and 5 tokens, summed",
               catches="the first label token only; the last one only; the mean where the sum "
                       "is asked for")
    yield Case((model, tok, review, ["very negative", "okay", "quite good"]), {"normalise": True},
               label="the same labels, normalised",
               catches="normalising by characters, by the prompt's length or by the whole "
                       "sequence's instead of by the label's number of tokens; normalise "
                       "ignored")
    yield Case((model, tok, review, ["good", "good enough"]),
               label="one label is the start of the other",
               catches="the first label token only (both labels would score the same)")
    yield Case((model, tok, review, ["don't know", "naïve", "café au lait"]), {"normalise": True},
               label="apostrophes and accents (several byte tokens each)",
               catches="normalising by characters (len(label)) instead of tokens")
    yield Case((model, tok, "Once", ["upon a time", "there was", "meh"]),
               label="a prompt of one token",
               catches="an off-by-one that needs a token before the label's first; the "
                       "prompt's length used as a divisor")
    story = ("Once upon a time, Mia went to the park. She saw a big dog and a small cat. The dog "
             "ran to the river and the cat sat on a mat. Then Leo came with a red ball. They "
             "played all day and went home happy. ") * 2
    yield Case((model, tok, story + "The end. It was", ("terrible", "fantastic", "a good day")),
               {"normalise": True}, label="a long prompt (about 100 tokens), labels as a tuple",
               catches="code that only works for short prompts or for a list of labels")
    yield Case((model, tok, "Q: Mia has 3 cups. Leo gives her 4 more. How many cups does she "
                "have?\nA: The answer is", ["7", "12", "100", "seven"]),
               label="numbers as labels", catches="the label tokenised without its leading space")
    words = ["bad", "awful", "terrible", "mixed", "so-so", "okay", "good", "great", "excellent",
             "not good at all", "thumbs down", "fantastic"]
    for _ in range(2):
        n = int(torch.randint(2, 6, (1,), generator=rng))
        picks = [words[int(i)] for i in torch.randperm(len(words), generator=rng)[:n]]
        norm = bool(torch.rand(1, generator=rng) < 0.5)
        yield Case((model, tok, review, picks), {"normalise": norm},
                   label=f"random: {n} labels, normalise={norm}",
                   catches="any scoring error, on random label sets")


def _compare_scores(got, expected, case: Case):
    if isinstance(got, list | tuple | np.ndarray) and not isinstance(got, str):
        try:
            got = torch.as_tensor(np.asarray(got, dtype=np.float64), dtype=torch.float32)
        except (TypeError, ValueError):
            return f"the result should be one score per label, got {got!r:.80}."
    if not isinstance(expected, torch.Tensor):  # a mistake's answer (the chosen label)
        return compare(got, expected)
    if not isinstance(got, torch.Tensor):
        return (f"the result should be a tensor with one score per label, but it is a "
                f"{type(got).__name__} ({got!r:.60}).")
    return compare(got.detach().float().cpu(), expected.detach().float().cpu(), atol=1e-4,
                   rtol=1e-4)


# ---------------------------------------------------------------------- known mistakes
def _run(model, tok, prompt, label, space=" "):
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    lab = tok(space + label, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([p + lab])).logits[0]
    return p, lab, logits


def _score(fn):
    """A mistake from a per-label rule ``fn(p, lab, logits, label, normalise) -> float``."""
    def mistake(model, tokenizer, prompt, labels, normalise=False):
        return torch.tensor([fn(*_run(model, tokenizer, prompt, w), w, normalise)
                             for w in labels])
    return mistake


def _label_positions(p, lab):
    return [len(p) - 1 + j for j in range(len(lab))]


def _logp(logits):
    return logits.log_softmax(-1)


def _sum_rule(values, lab, normalise):
    total = sum(values)
    return total / len(lab) if normalise else total


@_score
def _ll_logits(p, lab, logits, label, normalise):
    return _sum_rule([logits[i, t].item() for i, t in zip(_label_positions(p, lab), lab,
                                                         strict=True)], lab, normalise)


@_score
def _ll_probabilities(p, lab, logits, label, normalise):
    probs = logits.softmax(-1)
    return _sum_rule([probs[i, t].item() for i, t in zip(_label_positions(p, lab), lab,
                                                        strict=True)], lab, normalise)


@_score
def _ll_product(p, lab, logits, label, normalise):
    lp = _logp(logits)
    s = _sum_rule([lp[i, t].item() for i, t in zip(_label_positions(p, lab), lab, strict=True)],
                  lab, normalise)
    return float(np.exp(s))


@_score
def _ll_with_prompt(p, lab, logits, label, normalise):
    lp, ids = _logp(logits), p + lab
    return _sum_rule([lp[i, ids[i + 1]].item() for i in range(len(ids) - 1)], lab, normalise)


@_score
def _ll_shifted(p, lab, logits, label, normalise):
    lp = _logp(logits)
    return _sum_rule([lp[len(p) + j, t].item() for j, t in enumerate(lab)], lab, normalise)


@_score
def _ll_first_token(p, lab, logits, label, normalise):
    return _logp(logits)[len(p) - 1, lab[0]].item()


@_score
def _ll_last_token(p, lab, logits, label, normalise):
    return _logp(logits)[len(p) + len(lab) - 2, lab[-1]].item()


def _correct_sum(p, lab, logits):
    lp = _logp(logits)
    return sum(lp[i, t].item() for i, t in zip(_label_positions(p, lab), lab, strict=True))


@_score
def _ll_by_characters(p, lab, logits, label, normalise):
    s = _correct_sum(p, lab, logits)
    return s / len(label) if normalise else s


@_score
def _ll_by_prompt_length(p, lab, logits, label, normalise):
    s = _correct_sum(p, lab, logits)
    return s / len(p) if normalise else s


@_score
def _ll_by_sequence_length(p, lab, logits, label, normalise):
    s = _correct_sum(p, lab, logits)
    return s / (len(p) + len(lab)) if normalise else s


@_score
def _ll_always_sum(p, lab, logits, label, normalise):
    return _correct_sum(p, lab, logits)


@_score
def _ll_always_mean(p, lab, logits, label, normalise):
    return _correct_sum(p, lab, logits) / len(lab)


def _ll_no_space(model, tokenizer, prompt, labels, normalise=False):
    out = []
    for w in labels:
        p, lab, logits = _run(model, tokenizer, prompt, w, space="")
        s = _correct_sum(p, lab, logits)
        out.append(s / len(lab) if normalise else s)
    return torch.tensor(out)


def _ll_argmax(model, tokenizer, prompt, labels, normalise=False):
    return int(lm.label_logprobs(model, tokenizer, prompt, labels, normalise).argmax())


register(Exercise(
    id="04.2", title="choose a label by likelihood", reference=lm.label_logprobs, cases=_cases,
    compare=_compare_scores, time_limit=30.0,
    hint="ids = prompt's ids + the ids of ' ' + label; log_softmax the model's logits; the "
         "label's token j sits at position len(prompt_ids) + j and is predicted by position "
         "len(prompt_ids) + j - 1; sum those log-probabilities, and with normalise divide by "
         "the label's number of tokens.",
    mistakes=[
        (_ll_argmax, "Return the scores (one per label, a tensor), not the chosen label: the "
                     "lesson compares them and takes the argmax itself."),
        (_ll_logits, "Raw logits are not log-probabilities: apply log_softmax over the "
                     "vocabulary first (a logit's size depends on every other token's)."),
        (_ll_probabilities, "Add log-probabilities, not probabilities: the probability of the "
                            "whole label is the product of its tokens', so its log is the sum "
                            "of their logs (log_softmax, not softmax)."),
        (_ll_product, "Return the log-probability (the sum of the tokens' log-probabilities), "
                      "not its exp: a product of small probabilities underflows."),
        (_ll_with_prompt, "Sum over the label's tokens only: you added the prompt's own tokens' "
                          "log-probabilities too."),
        (_ll_shifted, "Off by one: the logits at position t predict token t + 1, so the label's "
                      "first token is scored by the prompt's LAST position, len(prompt_ids) - "
                      "1."),
        (_ll_first_token, "A label of several tokens: add the log-probability of every one of "
                          "its tokens, not only the first."),
        (_ll_last_token, "A label of several tokens: add the log-probability of every one of "
                         "its tokens, not only the last."),
        (_ll_by_characters, "Normalise by the label's number of TOKENS (len(label_ids)), not by "
                            "its number of characters."),
        (_ll_by_prompt_length, "Normalise by the label's number of tokens, not the prompt's."),
        (_ll_by_sequence_length, "Normalise by the label's number of tokens only, not by the "
                                 "whole sequence's."),
        (_ll_always_sum, "With normalise=True return the mean per token: divide each sum by "
                         "the label's number of tokens."),
        (_ll_always_mean, "With normalise=False return the plain sum; divide by the number of "
                          "tokens only when normalise=True."),
        (_ll_no_space, "The label follows the prompt after a space: tokenise ' ' + label (in "
                       "this tokenizer ' positive' and 'positive' are different tokens)."),
    ],
))
