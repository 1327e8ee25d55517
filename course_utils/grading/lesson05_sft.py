"""Lesson 05, instruction tuning: 05.4, a batch of chats as ``input_ids``/``attention_mask``/
``labels`` with only the assistant's replies (and their end-of-turn token) learned.

The reference is :func:`course_utils.finetune.sft.chat_features` for each chat, then
:func:`~course_utils.finetune.sft.pad_chat_batch` (right padding, -100 on padding). The
mistakes below work from the chat template's own ``return_assistant_tokens_mask``, as a learner
would, and each runs on every case.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from course_utils.finetune import sft
from course_utils.grading.compare import compare
from course_utils.grading.core import Case, Exercise, register
from course_utils.grading.lesson05_tokenizers import grading_tokenizer

# --------------------------------------------------------------------------- chats


def _chat(*turns: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": role, "content": content} for role, content in turns]


_CHATS = (
    _chat(("user", "Translate to Lingo: good morning"), ("assistant", "bo mora")),
    _chat(("system", "You are a brief answerer: give only the result."),
          ("user", "What is 7 + 5?"), ("assistant", "12")),
    _chat(("system", "You are a teacher: show the worked steps."),
          ("user", "Mia has 3 apples and buys 4 more. How many now?"),
          ("assistant", "Mia starts with 3. She buys 4. 3 + 4 = 7. Answer: 7")),
    _chat(("user", "Sentiment of: The staff were friendly."), ("assistant", "positive"),
          ("user", "And: The room was cold."), ("assistant", "negative")),
    _chat(("user", "TL;DR: The shop opened late, the bread was fresh and the queue was long."),
          ("assistant", "Fresh bread, late opening, long queue.")),
)
_ODD_CHATS = (
    _chat(("user", 'She said "never again", didn\'t she?'),
          ("assistant", "Yes: \"never again\" — Zoë’s words ✨")),
    _chat(("user", "Reply with a number."), ("assistant", "0")),
    _chat(("user", "Is it true?"), ("assistant", "False")),
    _chat(("user", "Write a card.\nTitle, story, moral."),
          ("assistant", "Title: The Fox\nStory: A fox found a key.\nMoral: Look down.")),
    _chat(("user", "What do the role headers look like?"),
          ("assistant", "User: asks. Assistant: answers.")),
)


def _cases(rng: torch.Generator):
    gpt = "course-gpt"
    yield Case((list(_CHATS[:1]), grading_tokenizer(gpt)),
               label="one chat: a user turn, then the reply",
               catches="nothing masked; the answer masked instead of the prompt; the eos token "
                       "not learned; off by one at the turn boundary; labels shifted by hand")
    yield Case((list(_CHATS[1:2]), grading_tokenizer(gpt)),
               label="a system turn, a user turn, a reply",
               catches="the system turn counted (only the user turns masked)")
    yield Case((list(_CHATS[3:4]), grading_tokenizer(gpt)),
               label="two user/assistant exchanges in one chat",
               catches="only the last assistant turn learned; everything after the first "
                       "'Assistant:' learned")
    yield Case((list(_CHATS), grading_tokenizer(gpt)),
               label="a batch of 5 chats of different lengths",
               catches="padding counted (labels = pad id, not -100); padding on the left; "
                       "padded with the eos id instead of the pad id; attention_mask all ones")
    yield Case((list(_ODD_CHATS), grading_tokenizer(gpt)),
               label="quotes, unicode, replies '0' and 'False', newlines, 'Assistant:' in a reply",
               catches="the rendered text split on 'Assistant:' by hand; falsy replies dropped")
    yield Case((list(_CHATS[2:3]), grading_tokenizer("course-gpt-mini")),
               label="course-gpt-mini's tokenizer (the same template), a batch of one",
               catches="token ids or the pad id hard-coded")
    yield Case(([_chat(("system", "Answer as a storyteller."), ("user", "What is 2 + 2?"),
                       ("assistant", "Once, two pairs of birds met: four birds in all."),
                       ("user", "Thanks!"))], grading_tokenizer(gpt)),
               label="a chat that ends with a user turn after the reply",
               catches="everything after the first 'Assistant:' learned")
    pool = list(_CHATS + _ODD_CHATS)
    for n in (2, 3, 7):
        idx = torch.randperm(len(pool), generator=rng)[:n].tolist()
        yield Case(([pool[i] for i in idx], grading_tokenizer(gpt)),
                   label=f"a random batch of {n} chats",
                   catches="any difference in ids, mask or labels, on random batches")


# --------------------------------------------------------------------------- compare

_KEYS = ("input_ids", "attention_mask", "labels")


def _compare(got: Any, expected: Any, case: Case) -> str | None:
    if not isinstance(got, Mapping):
        return (f"the result should be a dict with {list(_KEYS)}, but it is a "
                f"{type(got).__name__}.")
    missing = [k for k in _KEYS if k not in got]
    if missing:
        return f"the result has no {missing} key; it has {sorted(got)}."
    for key in _KEYS:
        if not isinstance(got[key], torch.Tensor):
            return (f"result[{key!r}] is a {type(got[key]).__name__}: return a LongTensor "
                    f"(torch.tensor(rows, dtype=torch.long)) of shape (batch, longest chat).")
        msg = compare(got[key], expected[key], path=f"result[{key!r}]")
        if msg:
            return msg
    return None


# --------------------------------------------------------------------------- the reference


def chat_batch(chats: list, tokenizer: Any) -> dict[str, torch.Tensor]:
    """The reference: :func:`sft.chat_features` per chat, then :func:`sft.pad_chat_batch`."""
    return sft.pad_chat_batch([sft.chat_features(tokenizer, chat) for chat in chats],
                              tokenizer.pad_token_id)


# --------------------------------------------------------------------------- mistakes


def _template(tokenizer, chat) -> tuple[list[int], list[int]]:
    out = tokenizer.apply_chat_template(chat, return_dict=True,
                                        return_assistant_tokens_mask=True)
    return list(out["input_ids"]), list(out["assistant_masks"])


def _spans(tokenizer, chat, role: str) -> list[tuple[int, int]]:
    """Token spans of the turns of ``role`` (the template renders turns one after another)."""
    spans, start = [], 0
    for i, message in enumerate(chat):
        end = len(tokenizer.apply_chat_template(chat[: i + 1], tokenize=True,
                                                return_dict=True)["input_ids"])
        if message["role"] == role:
            spans.append((start, end))
        start = end
    return spans


def _pad(rows: list[tuple[list[int], list[int]]], pad_id: int, *, left: bool = False,
         label_pad: int | None = -100, attention_ones: bool = False) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in rows)
    out: dict[str, list] = {k: [] for k in _KEYS}

    def fill(row: list[int], value: int) -> list[int]:
        gap = [value] * (width - len(row))
        return gap + row if left else row + gap

    for ids, labels in rows:
        out["input_ids"].append(fill(ids, pad_id))
        out["attention_mask"].append([1] * width if attention_ones else fill([1] * len(ids), 0))
        out["labels"].append(fill(labels, pad_id if label_pad is None else label_pad))
    return {k: torch.tensor(v, dtype=torch.long) for k, v in out.items()}


def _from_masks(chats, tokenizer, learned, **pad):
    """Rows of ``(ids, labels)`` with ``learned(tokenizer, chat, ids, mask) -> mask``."""
    rows = []
    for chat in chats:
        ids, mask = _template(tokenizer, chat)
        keep = learned(tokenizer, chat, ids, mask)
        rows.append((ids, [t if k else -100 for t, k in zip(ids, keep, strict=True)]))
    return _pad(rows, pad.pop("pad_id", tokenizer.pad_token_id), **pad)


def _right(tok, chat, ids, mask):
    return mask


def _sft_nothing_masked(chats, tokenizer):
    return _from_masks(chats, tokenizer, lambda t, c, ids, m: [1] * len(ids))


def _sft_answer_masked(chats, tokenizer):
    return _from_masks(chats, tokenizer, lambda t, c, ids, m: [1 - k for k in m])


def _sft_one_early(chats, tokenizer):
    return _from_masks(chats, tokenizer, lambda t, c, ids, m: m[1:] + [0])


def _sft_one_late(chats, tokenizer):
    return _from_masks(chats, tokenizer, lambda t, c, ids, m: [0] + m[:-1])


def _sft_no_eos(chats, tokenizer):
    eos = tokenizer.eos_token_id
    return _from_masks(chats, tokenizer,
                       lambda t, c, ids, m: [k and i != eos for i, k in zip(ids, m, strict=True)])


def _sft_user_only_masked(chats, tokenizer):
    def learned(tok, chat, ids, mask):
        user = [range(a, b) for a, b in _spans(tok, chat, "user")]
        return [not any(i in r for r in user) for i in range(len(ids))]
    return _from_masks(chats, tokenizer, learned)


def _sft_last_turn_only(chats, tokenizer):
    def learned(tok, chat, ids, mask):
        a, b = _spans(tok, chat, "assistant")[-1]
        return [k and a <= i < b for i, k in enumerate(mask)]
    return _from_masks(chats, tokenizer, learned)


def _sft_shifted_by_hand(chats, tokenizer):
    rows = []
    for chat in chats:
        ids, mask = _template(tokenizer, chat)
        labels = [t if k else -100 for t, k in zip(ids, mask, strict=True)]
        rows.append((ids, labels[1:] + [-100]))
    return _pad(rows, tokenizer.pad_token_id)


def _sft_padding_counted(chats, tokenizer):
    return _from_masks(chats, tokenizer, _right, label_pad=None)


def _sft_left_padded(chats, tokenizer):
    return _from_masks(chats, tokenizer, _right, left=True)


def _sft_pad_with_eos(chats, tokenizer):
    return _from_masks(chats, tokenizer, _right, pad_id=tokenizer.eos_token_id)


def _sft_attention_all_ones(chats, tokenizer):
    return _from_masks(chats, tokenizer, _right, attention_ones=True)


register(Exercise(
    id="05.4", title="a batch of chats for SFT: labels on the assistant's replies",
    reference=chat_batch, cases=_cases, compare=_compare,
    hint="For each chat: out = tokenizer.apply_chat_template(chat, return_dict=True, "
         "return_assistant_tokens_mask=True); labels = the id where out['assistant_masks'] is "
         "1, else -100 (the mask covers each reply and its eos token). Then pad every row on "
         "the RIGHT to the longest: input_ids with tokenizer.pad_token_id, attention_mask with "
         "0, labels with -100. Don't shift the labels: the model does.",
    mistakes=[
        (_sft_nothing_masked, "Every token is learned: the prompt (system and user turns, the "
                              "'Assistant:' header) must get label -100, so the loss is on the "
                              "assistant's replies only."),
        (_sft_answer_masked, "The mask is inverted: the assistant's reply is what the model "
                             "learns (its ids as labels); the prompt gets -100."),
        (_sft_one_early, "Off by one at the turn boundary: your labels start one token early "
                         "(on the header's ':') and stop before the eos token. Label exactly the "
                         "tokens the assistant mask marks."),
        (_sft_one_late, "Off by one at the turn boundary: your labels miss the reply's first "
                        "token and include the newline after eos. Label exactly the tokens the "
                        "assistant mask marks."),
        (_sft_no_eos, "The end-of-turn (eos) token must be learned too: it is how the tuned "
                      "model learns to stop after its reply."),
        (_sft_user_only_masked, "Only the user turns are masked: the system turn and the "
                                "'Assistant:' headers are prompt too, label -100."),
        (_sft_last_turn_only, "Every assistant turn of the chat is learned, not only the last "
                              "one."),
        (_sft_shifted_by_hand, "Don't shift the labels: labels[t] is the token at t, and the "
                               "model shifts them inside its loss (exercise 05.2)."),
        (_sft_padding_counted, "Padding positions must get label -100, not the pad id: "
                               "otherwise the loss trains the model to predict padding."),
        (_sft_left_padded, "Pad on the right (after each chat), as for training: left padding "
                           "shifts every chat's positions."),
        (_sft_pad_with_eos, "Pad input_ids with tokenizer.pad_token_id: course-gpt has its own "
                            "pad token, and eos is a real token of every reply."),
        (_sft_attention_all_ones, "attention_mask must be 0 on padding, so the model does not "
                                  "attend to it."),
    ],
))
