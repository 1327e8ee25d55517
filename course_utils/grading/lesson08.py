"""Lesson 08 exercises: left padding for a batch, and a server-sent event frame."""

from __future__ import annotations

import json

import torch

from course_utils.grading.core import Case, Exercise, register
from course_utils.serving.generation import left_pad
from course_utils.serving.streaming import sse_event

# ------------------------------------------------------------------- 08.1 left padding


def _pad_cases(rng: torch.Generator):
    yield Case(([[5, 6, 7], [8]], 0), label="two prompts, one short")
    yield Case(([[11, 12]], 0), label="a single prompt: nothing to pad")
    yield Case(([[1, 2], [3, 4]], 0), label="equal lengths")
    yield Case(([[9], [4, 4, 4, 4], [7, 7]], 256), label="pad id 256")
    yield Case(([[7, 7, 3], [7]], 7), label="the pad id is also a real token (as in GPT-2)")
    for _ in range(5):
        n = int(torch.randint(2, 6, (1,), generator=rng))
        seqs = [torch.randint(0, 1000, (int(torch.randint(1, 9, (1,), generator=rng)),),
                              generator=rng).tolist() for _ in range(n)]
        yield Case((seqs, int(torch.randint(0, 1000, (1,), generator=rng))),
                   label=f"random: {n} prompts")


def _lp_right(sequences, pad_token_id):
    longest = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), longest), pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(sequences):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


def _lp_positions_count_pads(sequences, pad_token_id):
    ids, mask, _ = left_pad(sequences, pad_token_id)
    return ids, mask, torch.arange(ids.shape[1]).expand_as(ids).clone()


def _lp_negative_pad_positions(sequences, pad_token_id):
    ids, mask, _ = left_pad(sequences, pad_token_id)
    return ids, mask, mask.cumsum(-1) - 1


def _lp_mask_inverted(sequences, pad_token_id):
    ids, mask, pos = left_pad(sequences, pad_token_id)
    return ids, 1 - mask, pos


def _lp_pad_with_zero(sequences, pad_token_id):
    return left_pad(sequences, 0)


def _lp_mask_from_pad_id(sequences, pad_token_id):
    ids, _, _ = left_pad(sequences, pad_token_id)
    mask = (ids != pad_token_id).long()
    return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


register(Exercise(
    id="08.1", title="left-pad a batch of prompts", reference=left_pad, cases=_pad_cases,
    hint="Make (batch, longest) int64 tensors. Put each prompt at the RIGHT end of its row "
         "(row[longest - len(seq):]) and fill the rest with pad_token_id; the attention_mask "
         "is 1 on real tokens, 0 on padding; position_ids = attention_mask.cumsum(-1) - 1, "
         "clamped at 0 so that padding gets position 0.",
    mistakes=[
        (_lp_right, "That is right padding: the prompts must END at the last column, so the "
                    "next token is predicted from the same position in every row."),
        (_lp_positions_count_pads, "Your position ids count the padding too: a padded prompt "
                                   "would start at position 3 instead of 0. Count real tokens "
                                   "only: attention_mask.cumsum(-1) - 1."),
        (_lp_negative_pad_positions, "Padding gets position -1, which is not a valid index of "
                                     "the position embedding: clamp the position ids at 0."),
        (_lp_mask_inverted, "The attention mask is inverted: 1 marks the real tokens to attend "
                            "to, 0 the padding."),
        (_lp_pad_with_zero, "Fill the padding with pad_token_id, not 0."),
        (_lp_mask_from_pad_id, "Build the mask from the lengths, not by comparing with "
                               "pad_token_id: the pad id can also be a real token of a prompt "
                               "(GPT-2 pads with its end-of-text token)."),
    ],
))

# ---------------------------------------------------------------- 08.2 an SSE frame


def _sse_cases(rng: torch.Generator):
    yield Case(({"text": " Once"},), label="a dict payload")
    yield Case(("[DONE]",), label="the end-of-stream marker")
    yield Case(({"text": "a\nb"},), label="a newline inside the JSON text")
    yield Case(("first line\nsecond line",), label="a string of two lines")
    yield Case(({"token": 5},), {"event": "token"}, label="with an event name")
    yield Case(("",), label="an empty string")
    yield Case(({"text": "café ⛄"},), label="non-ASCII text")
    words = ["the", "fox", "ran", "🙂", "and", "sat"]
    for _ in range(3):
        k = int(torch.randint(1, 5, (1,), generator=rng))
        picked = [words[int(i)] for i in torch.randint(0, len(words), (k,), generator=rng)]
        yield Case(({"text": " ".join(picked), "index": k},), label="random payload")


def _sse_one_newline(data, event=None):
    return sse_event(data, event)[:-1]


def _sse_str_of_dict(data, event=None):
    return sse_event(data if isinstance(data, str) else str(data), event)


def _sse_one_data_line(data, event=None):
    text = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event is not None else ""
    return f"{head}data: {text}\n\n"


def _parse_sse(frame: str) -> tuple[list[tuple[str | None, str]], str]:
    """Events ``(event, data)`` as a browser's EventSource reads them, and any unended rest."""
    events, event, data, rest = [], None, None, ""
    lines = frame.split("\n")
    for i, line in enumerate(lines):
        if i == len(lines) - 1:  # after the last newline: a line still being written
            rest = line
            break
        if line == "":
            if data is not None:
                events.append((event, "\n".join(data)))
            event, data = None, None
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data = [*(data or []), value]
        elif name == "event":
            event = value
    if data is not None or event is not None:
        rest = rest or "(an event without its closing blank line)"
    return events, rest


def _normalised(frame: str) -> tuple[list[tuple[str | None, str]], bool]:
    """The frame's events with JSON data in one canonical spelling, and whether it ended."""
    events, rest = _parse_sse(frame)
    out = []
    for event, data in events:
        try:
            data = "json:" + json.dumps(json.loads(data), sort_keys=True)
        except ValueError:
            data = "text:" + data
        out.append((event, data))
    return out, not rest


def _sse_compare(got, expected, case: Case):
    if not isinstance(got, str):
        return f"the result should be a str (the frame), but it is a {type(got).__name__}."
    mine, want = _normalised(got), _normalised(expected)
    if mine == want:
        return None
    (got_events, ended), (want_events, _) = mine, want
    if not ended or not got_events:
        return (f"your frame {got!r} does not end an event: a client would still be waiting "
                f"(expected {expected!r}).")
    if len(got_events) != len(want_events):
        return (f"your frame {got!r} holds {len(got_events)} events; send exactly "
                f"{len(want_events)}.")
    raw = _parse_sse(got)[0]
    for (event, data), (w_event, w_data), (_, raw_data) in zip(got_events, want_events, raw,
                                                                strict=True):
        if event != w_event:
            return f"a client reads the event name {event!r} from {got!r}; {w_event!r} is expected."
        if data != w_data:
            return (f"a client reads the data {raw_data!r} from your frame {got!r}, but "
                    f"{expected!r} is expected.")
    return f"your frame is {got!r}, but {expected!r} is expected."


register(Exercise(
    id="08.2", title="format a server-sent event", reference=sse_event, cases=_sse_cases,
    compare=_sse_compare,
    hint="Turn non-strings into JSON with json.dumps(data). Then write 'event: <name>' first "
         "if an event name is given, one 'data: <line>' per line of the text, join the lines "
         "with '\\n' and end with a blank line: the frame ends in '\\n\\n'. The grader reads "
         "your frame as a browser would, so equivalent spellings pass.",
    mistakes=[
        (_sse_one_newline, "An event ends with a BLANK line: finish the frame with '\\n\\n', "
                           "or the client keeps waiting for the rest of the event."),
        (_sse_str_of_dict, "str(dict) is not JSON (single quotes): use json.dumps(data)."),
        (_sse_one_data_line, "A line break inside data would end the field: send each line of "
                             "the text as its own 'data: ' line."),
    ],
))
