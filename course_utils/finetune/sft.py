"""Supervised fine-tuning on chats (instruction tuning): labels on the assistant's turns only.

A chat is rendered with the tokenizer's own chat template (course-gpt's ``System:/User:/
Assistant:`` lines, each assistant turn ended by the eos token). The model should learn to
*write answers*, not to predict the user's questions or the role headers, so every token gets
label ``-100`` (ignored by the cross-entropy) except the tokens of each assistant turn's content
and its end-of-turn token: learning that token is what makes a tuned model stop.

>>> feats = chat_features(tok, [{"role": "user", "content": "Hi"},
...                             {"role": "assistant", "content": "Hello!"}])  # doctest: +SKIP
>>> batch = pad_chat_batch([feats, ...], tok.pad_token_id)                    # doctest: +SKIP
>>> model(**batch).loss                          # the loss on assistant tokens  # doctest: +SKIP

Labels are *not* shifted: ``transformers`` causal LMs shift them inside the loss.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import torch

IGNORE_INDEX = -100
ROLES = ("system", "user", "assistant")


def _check_messages(messages: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    if isinstance(messages, (str, Mapping)) or not isinstance(messages, Sequence) \
            or not messages:
        raise TypeError("messages must be a non-empty list of {'role': ..., 'content': ...} "
                        f"dicts, got {messages!r}")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or m.get("role") not in ROLES \
                or not isinstance(m.get("content"), str):
            raise ValueError(f"messages[{i}] must be {{'role': one of {ROLES}, 'content': str}}, "
                             f"got {m!r}")
        out.append({"role": m["role"], "content": m["content"]})
    if not any(m["role"] == "assistant" for m in out):
        raise ValueError("the chat has no assistant turn, so there is nothing to learn: add the "
                         "reference reply as {'role': 'assistant', 'content': ...}")
    return out


def _render(tokenizer, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    if not messages and not add_generation_prompt:
        return ""
    return tokenizer.apply_chat_template(messages, tokenize=False,
                                         add_generation_prompt=add_generation_prompt)


def chat_segments(tokenizer, messages: Sequence[Mapping[str, str]]) -> list[tuple[str, bool]]:
    """The rendered chat cut into ``(text, learned)`` pieces, in order.

    Each assistant turn is cut out of the template's own rendering: what the generation prompt
    adds (``"Assistant:"``) is a header, not learned; the reply up to and including its eos token
    is learned; whatever follows it (the newline before the next turn) is not.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("this tokenizer has no chat template: use course-gpt's tokenizer (or "
                         "set tokenizer.chat_template)")
    eos = tokenizer.eos_token
    if not eos:
        raise ValueError("the tokenizer has no eos token, so an assistant turn has no end: set "
                         "tokenizer.eos_token")
    msgs = _check_messages(messages)
    pieces: list[tuple[str, bool]] = []
    before = ""
    for i, m in enumerate(msgs):
        after = _render(tokenizer, msgs[: i + 1], False)
        if not after.startswith(before):
            raise ValueError("the chat template does not render a chat as its turns one after "
                             "another, so the turns cannot be cut apart")
        turn = after[len(before):]
        if m["role"] == "assistant":
            head = _render(tokenizer, msgs[:i], True)[len(before):]
            end = turn.rfind(eos)
            if not turn.startswith(head) or end < len(head):
                raise ValueError(f"assistant turn {i} does not render as the generation prompt "
                                 "followed by the reply and the eos token: the template must end "
                                 "each assistant turn with eos_token")
            end += len(eos)
            pieces += [(head, False), (turn[len(head): end], True), (turn[end:], False)]
        else:
            pieces.append((turn, False))
        before = after
    return [(text, learned) for text, learned in pieces if text]


def chat_features(tokenizer, messages: Sequence[Mapping[str, str]], *,
                  max_length: int | None = None) -> dict[str, list[int]]:
    """``input_ids`` of the rendered chat and ``labels``: -100 except on the assistant's replies.

    The tokens of each assistant turn's content and of its eos token keep their id as label;
    system and user turns, the ``Assistant:`` headers and the newline after a turn get -100.
    ``max_length`` keeps the first ``max_length`` tokens of both lists (they stay aligned) and
    warns that the chat was cut; it is an error if no learned token is left.
    """
    ids: list[int] = []
    labels: list[int] = []
    for text, learned in chat_segments(tokenizer, messages):
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += piece
        labels += piece if learned else [IGNORE_INDEX] * len(piece)
    if max_length is not None:
        if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
            raise ValueError(f"max_length must be a positive int or None, got {max_length!r}")
        if len(ids) > max_length:
            learned_cut = sum(lab != IGNORE_INDEX for lab in labels[max_length:])
            warnings.warn(f"chat_features: the chat has {len(ids)} tokens, cut to max_length="
                          f"{max_length} ({learned_cut} learned reply tokens dropped)",
                          stacklevel=2)
            ids, labels = ids[:max_length], labels[:max_length]
            if all(lab == IGNORE_INDEX for lab in labels):
                raise ValueError(f"max_length={max_length} cuts every assistant token: nothing "
                                 "left to learn; raise max_length or shorten the chat")
    return {"input_ids": ids, "labels": labels}


def pad_chat_batch(features: Sequence[Mapping[str, Sequence[int]]],
                   pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad :func:`chat_features` outputs into LongTensors ``input_ids``, ``attention_mask``
    and ``labels`` (-100 on padding, so padding never counts in the loss)."""
    if isinstance(pad_token_id, bool) or not isinstance(pad_token_id, int) or pad_token_id < 0:
        raise ValueError(f"pad_token_id must be a non-negative int (tokenizer.pad_token_id), got "
                         f"{pad_token_id!r}")
    if isinstance(features, Mapping) or not features:
        raise ValueError("features must be a non-empty list of chat_features(...) dicts")
    for i, f in enumerate(features):
        if not isinstance(f, Mapping) or "input_ids" not in f or "labels" not in f:
            raise ValueError(f"features[{i}] must have 'input_ids' and 'labels', got {f!r}")
        if len(f["input_ids"]) != len(f["labels"]):
            raise ValueError(f"features[{i}]: {len(f['input_ids'])} input_ids but "
                             f"{len(f['labels'])} labels; they must be aligned")
    width = max(len(f["input_ids"]) for f in features)
    n = len(features)
    input_ids = torch.full((n, width), pad_token_id, dtype=torch.long)
    attention = torch.zeros((n, width), dtype=torch.long)
    labels = torch.full((n, width), IGNORE_INDEX, dtype=torch.long)
    for i, f in enumerate(features):
        k = len(f["input_ids"])
        input_ids[i, :k] = torch.as_tensor(list(f["input_ids"]), dtype=torch.long)
        labels[i, :k] = torch.as_tensor(list(f["labels"]), dtype=torch.long)
        attention[i, :k] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


# ----------------------------------------------------------------- measuring what it learned
STOP = ("\nUser:", "\nSystem:", "\nAssistant:")  # a new turn: the reply is over


def generate_replies(model, tokenizer, items: Sequence, max_new_tokens: int = 80,
                     batch_size: int = 16) -> list[str]:
    """Greedy replies of ``model`` to each item's prompt messages (``items``: objects with a
    ``messages`` attribute, e.g. :class:`course_utils.data.instructions.Instruction`).

    A reply ends at the eos token or where the model starts a new turn (``User:``, ...), so a
    base model that runs on is judged on its answer, not on the turns it invents after it.
    """
    from course_utils.lm import generate_text

    prompts = [tokenizer.apply_chat_template([dict(m) for m in it.messages], tokenize=False,
                                             add_generation_prompt=True) for it in items]
    return generate_text(model, tokenizer, prompts, max_new_tokens, batch_size=batch_size,
                         stop=STOP)


def follow_rates(items: Sequence, replies: Sequence[str]) -> dict[str, float]:
    """The fraction of items whose ``check`` passes, per technique and over all (``"all"``)."""
    if len(items) != len(replies) or not items:
        raise ValueError(f"need one reply per item: {len(items)} items, {len(replies)} replies")
    passed: dict[str, list[bool]] = {}
    for it, reply in zip(items, replies, strict=True):
        passed.setdefault(it.technique, []).append(it.check(reply))
    rates = {t: sum(v) / len(v) for t, v in passed.items()}
    rates["all"] = sum(sum(v) for v in passed.values()) / len(items)
    return rates


__all__ = ["IGNORE_INDEX", "STOP", "chat_features", "chat_segments", "follow_rates",
           "generate_replies", "pad_chat_batch"]
