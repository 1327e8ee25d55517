"""Lesson 08 exercises, in notebook order.

The ``/generate`` endpoint (08.1) in :mod:`lesson08_endpoint`; here: a server-sent event frame
(08.2) and left padding for a batch (08.3). Every mistake below is the reference with one wrong
idea in it and runs on every case.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import torch

from course_utils.grading import (  # noqa: F401  (registered at import)
    lesson08_endpoint,  # 08.1: the /generate endpoint
    lesson08_scheduler,  # 08.4: the continuous-batching scheduler step
)
from course_utils.grading.core import Case, Exercise, register
from course_utils.serving.generation import left_pad
from course_utils.serving.streaming import sse_event

# ---------------------------------------------------------------- 08.2 an SSE frame


def _sse_cases(rng: torch.Generator):
    yield Case(({"text": " Once"},), label="a dict payload", catches="str(dict) instead of JSON")
    yield Case(("[DONE]",), label="the end-of-stream marker",
               catches="a string JSON-encoded (the client would read '\"[DONE]\"')")
    yield Case(({"text": "a\nb"},), label="a newline inside the JSON text",
               catches="JSON split into lines (json.dumps already escapes the newline)")
    yield Case(("first line\nsecond line",), label="a string of two lines",
               catches="one data line for two lines of text")
    yield Case(({"token": 5},), {"event": "token"}, label="with an event name",
               catches="the event name left out")
    yield Case(({"text": "it's"},), label="an apostrophe in the text",
               catches="str(dict) (Python's repr switches to double quotes, still not JSON)")
    yield Case(({"done": True, "finish_reason": None},), label="booleans and None",
               catches="str(dict) (True and None are not JSON)")
    yield Case(("",), label="an empty string", catches="no data line at all for empty text")
    yield Case((None,), label="None is sent as JSON null",
               catches="falsy data dropped (data or ''); str(None)")
    yield Case((0,), label="the number 0", catches="falsy data dropped (if not data)")
    yield Case(({"text": "café ⛄"},), label="non-ASCII text",
               catches="json.dumps(..., ensure_ascii=False) must also pass")
    yield Case(("para one\n\npara two",), label="a blank line inside the text",
               catches="unsplit text: the blank line would end the event early")
    yield Case(("Windows\r\nline endings",), label="CRLF inside the text",
               catches="one data line for two lines of text")
    yield Case(({"choices": [{"text": 'He said "hi"', "index": 0, "logprobs": None}],
                 "usage": {"total_tokens": 12}},),
               label="an OpenAI-style chunk with quotes and null",
               catches="str(dict); quotes not escaped")
    yield Case(("[DONE]",), {"event": "done"}, label="a string with an event name",
               catches="the event name left out; 'event: None' written for no event")
    yield Case(([False, 0, ""],), label="a list of falsy values",
               catches="str(list) (False is not JSON)")
    yield Case(("ends with a newline\n",), label="text ending in a line break",
               catches="str.splitlines() drops the final line break")
    yield Case(("odd\u2028break and\x0bvertical tab",), label="U+2028 and a vertical tab",
               catches="str.splitlines() splits where SSE does not")
    words = ["the", "fox", "don't", "🙂", "\"quoted\"", "sat"]
    for _ in range(4):
        k = int(torch.randint(1, 5, (1,), generator=rng))
        picked = [words[int(i)] for i in torch.randint(0, len(words), (k,), generator=rng)]
        yield Case(({"text": " ".join(picked), "index": k, "final": k % 2 == 0},),
                   label="random payload", catches="any of the above")


@dataclass(frozen=True)
class _Event:
    """One event as a browser's EventSource dispatches it."""

    type: str
    data: str
    last_event_id: str


def _lines(stream: str) -> tuple[list[str], str]:
    """Split at CRLF, LF or CR (the SSE line endings); return the lines and the unended rest."""
    lines, start, i = [], 0, 0
    while i < len(stream):
        if stream[i] in "\r\n":
            lines.append(stream[start:i])
            if stream[i] == "\r" and stream[i + 1:i + 2] == "\n":
                i += 1
            start = i + 1
        i += 1
    return lines, stream[start:]


def parse_sse(stream: str) -> tuple[list[_Event], bool]:
    """Events dispatched from ``stream`` by the WHATWG rules, and whether it ends cleanly.

    A line ``field: value`` (one space after the colon is dropped; a line without a colon is
    a field with an empty value; a line starting with ``:`` is a comment) sets ``data``
    (appended, one line each), ``event`` or ``id``; an empty line dispatches the event if any
    data arrived. An event without its closing empty line is never dispatched.
    """
    lines, rest = _lines(stream)
    events, data, kind, last_id = [], "", "", ""
    for line in lines:
        if line == "":
            if data:
                events.append(_Event(kind or "message", data.removesuffix("\n"), last_id))
            data, kind = "", ""
            continue
        if line.startswith(":"):
            continue
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "data":
            data += value + "\n"
        elif field == "event":
            kind = value
        elif field == "id" and "\0" not in value:
            last_id = value
    return events, not (data or kind or rest)


def _canonical(data: str) -> str:
    """JSON in one spelling (key order, spaces, escapes don't matter); other text as it is."""
    try:
        return "json:" + json.dumps(json.loads(data), sort_keys=True)
    except ValueError:
        return "text:" + data


def _sse_compare(got, expected, case: Case):
    if not isinstance(got, str):
        return f"the result should be a str (the frame), but it is a {type(got).__name__}."
    (mine, ended), (want, want_ended) = parse_sse(got), parse_sse(expected)
    if ended == want_ended and [(e.type, _canonical(e.data), e.last_event_id) for e in mine] == [
            (e.type, _canonical(e.data), e.last_event_id) for e in want]:
        return None  # (a mistake's unended frame can be the expected one when diagnosing)
    if not ended:
        return (f"your frame {got!r} does not end an event: a client would still be waiting "
                f"for its closing blank line (expected {expected!r}).")
    if not mine:
        return (f"a client reads no event from your frame {got!r}: an event needs at least one "
                f"'data:' line and a blank line after it (expected {expected!r}).")
    if len(mine) != len(want):
        return f"your frame {got!r} holds {len(mine)} events; send exactly {len(want)}."
    for m, w in zip(mine, want, strict=True):
        if m.type != w.type:
            name = "no event line (type 'message')" if w.type == "message" else repr(w.type)
            return (f"a client reads the event name {m.type!r} from {got!r}; {name} is "
                    f"expected.")
        if m.last_event_id != w.last_event_id:
            return (f"a client reads the event id {m.last_event_id!r} from {got!r}; the frame "
                    f"should not set an id.")
        if _canonical(m.data) != _canonical(w.data):
            return (f"a client reads the data {m.data!r} from your frame {got!r}, but the data "
                    f"{w.data!r} is expected ({expected!r}).")
    return f"your frame is {got!r}, but {expected!r} is expected."


def _sse_text(data):
    return data if isinstance(data, str) else json.dumps(data)


def _sse_frame(text, event=None, split=True):
    lines = [f"event: {event}"] if event is not None else []
    parts = re.split(r"\r\n|\r|\n", text) if split else [text]  # SSE's line breaks only
    return "\n".join(lines + [f"data: {line}" for line in parts]) + "\n\n"


def _sse_one_newline(data, event=None):
    return sse_event(data, event)[:-1]


def _sse_str_of_dict(data, event=None):
    return _sse_frame(data if isinstance(data, str) else str(data), event)


def _sse_one_data_line(data, event=None):
    return _sse_frame(_sse_text(data), event, split=False)


def _sse_json_everything(data, event=None):
    return _sse_frame(json.dumps(data), event)


def _sse_falsy_dropped(data, event=None):
    return _sse_frame(_sse_text(data) if data else "", event)


def _sse_no_event_line(data, event=None):
    return _sse_frame(_sse_text(data))


def _sse_event_none_written(data, event=None):
    return f"event: {event}\n" + _sse_frame(_sse_text(data))


register(Exercise(
    id="08.2", title="format a server-sent event", reference=sse_event, cases=_sse_cases,
    compare=_sse_compare,
    hint="Turn non-strings into JSON with json.dumps(data) (None, 0 and False too). Then write "
         "'event: <name>' first if an event name is given, one 'data: <line>' per line of the "
         "text, join the lines with '\\n' and end with a blank line: the frame ends in '\\n\\n'. "
         "The grader reads your frame as a browser would, so equivalent spellings pass.",
    mistakes=[
        (_sse_one_newline, "An event ends with a BLANK line: finish the frame with '\\n\\n', "
                           "or the client keeps waiting for the rest of the event."),
        (_sse_str_of_dict, "str(dict) is not JSON (single quotes, True, None): use "
                           "json.dumps(data)."),
        (_sse_one_data_line, "A line break inside data would end the field: send each line of "
                             "the text as its own 'data: ' line."),
        (_sse_json_everything, "A string is sent as it is: only data that is not a str goes "
                               "through json.dumps (else the client reads '\"[DONE]\"')."),
        (_sse_falsy_dropped, "None, 0, False and [] are data too: test isinstance(data, str), "
                             "not whether data is truthy, and send json.dumps(data)."),
        (_sse_no_event_line, "The event name is missing: start with 'event: <name>' when an "
                             "event name is given."),
        (_sse_event_none_written, "Write the 'event:' line only when an event name is given "
                                  "(event is not None): 'event: None' names an event 'None'."),
    ],
))

# ------------------------------------------------------------------- 08.3 left padding


def _pad_cases(rng: torch.Generator):
    yield Case(([[5, 6, 7], [8]], 0), label="two prompts, one short",
               catches="right padding; positions that count the padding")
    yield Case(([[11, 12]], 0), label="a single prompt: nothing to pad",
               catches="a crash or a pad column when nothing needs padding")
    yield Case(([[1, 2], [3, 4]], 0), label="equal lengths", catches="a pad column added anyway")
    yield Case(([[9], [4, 4, 4, 4], [7, 7]], 256), label="pad id 256",
               catches="padding filled with 0 instead of pad_token_id")
    yield Case(([[7, 7, 3], [7]], 7), label="the pad id is also a real token (as in GPT-2)",
               catches="the mask built by comparing with pad_token_id")
    yield Case(([[0, 5, 0], [0], [3, 0]], 0), label="pad id 0, and 0 is also a real token",
               catches="the mask built from ids != 0; the falsy pad id 0 replaced")
    yield Case(([[50256, 464, 3290], [50256]], 50256),
               label="GPT-2: the pad id is end-of-text, which can open a prompt",
               catches="the mask built by comparing with pad_token_id")
    yield Case(([[4], [1, 2, 3, 4, 5, 6]], 1), label="one token against six",
               catches="position ids starting at 1; padding at position -1")
    for _ in range(4):
        n = int(torch.randint(2, 6, (1,), generator=rng))
        seqs = [torch.randint(0, 1000, (int(torch.randint(1, 9, (1,), generator=rng)),),
                              generator=rng).tolist() for _ in range(n)]
        yield Case((seqs, int(torch.randint(0, 1000, (1,), generator=rng))),
                   label=f"random: {n} prompts", catches="any of the above")
    lengths = torch.randint(1, 70, (16,), generator=rng).tolist()
    seqs = [torch.randint(0, 50257, (k,), generator=rng).tolist() for k in lengths]
    yield Case((seqs, 50256), label="16 prompts of up to 69 tokens",
               catches="sizes assumed small; a fixed width")


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


def _lp_positions_from_one(sequences, pad_token_id):
    ids, mask, _ = left_pad(sequences, pad_token_id)
    return ids, mask, mask.cumsum(-1)


def _lp_mask_inverted(sequences, pad_token_id):
    ids, mask, pos = left_pad(sequences, pad_token_id)
    return ids, 1 - mask, pos


def _lp_pad_with_zero(sequences, pad_token_id):
    return left_pad(sequences, 0)


def _lp_mask_from_pad_id(sequences, pad_token_id):
    ids, _, _ = left_pad(sequences, pad_token_id)
    mask = (ids != pad_token_id).long()
    return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


def _lp_bool_mask(sequences, pad_token_id):
    ids, mask, pos = left_pad(sequences, pad_token_id)
    return ids, mask.bool(), pos


_RIGHT_PADDING = ("That is right padding: the prompts must END at the last column, so the "
                  "next token is predicted from the same position in every row.")


def _not_right_padded(got, case: Case):
    """Right padding, whatever the learner did with the mask and positions."""
    if not (isinstance(got, tuple | list) and got and isinstance(got[0], torch.Tensor)):
        return None
    right = _lp_right(*case.args)[0]
    if got[0].shape == right.shape and torch.equal(got[0].long(), right) and not torch.equal(
            right, left_pad(*case.args)[0]):
        return _RIGHT_PADDING
    return None


register(Exercise(
    id="08.3", title="left-pad a batch of prompts", reference=left_pad, cases=_pad_cases,
    properties=[_not_right_padded],
    hint="Make (batch, longest) int64 tensors. Put each prompt at the RIGHT end of its row "
         "(row[longest - len(seq):]) and fill the rest with pad_token_id; the attention_mask "
         "is 1 on real tokens, 0 on padding; position_ids = attention_mask.cumsum(-1) - 1, "
         "clamped at 0 so that padding gets position 0.",
    mistakes=[
        (_lp_right, _RIGHT_PADDING),
        (_lp_positions_count_pads, "Your position ids count the padding too: a padded prompt "
                                   "would start at position 3 instead of 0. Count real tokens "
                                   "only: attention_mask.cumsum(-1) - 1."),
        (_lp_negative_pad_positions, "Padding gets position -1, which is not a valid index of "
                                     "the position embedding: clamp the position ids at 0."),
        (_lp_positions_from_one, "Positions start at 0: the first real token is position 0, "
                                 "so subtract 1 from attention_mask.cumsum(-1) (and clamp at "
                                 "0)."),
        (_lp_mask_inverted, "The attention mask is inverted: 1 marks the real tokens to attend "
                            "to, 0 the padding."),
        (_lp_pad_with_zero, "Fill the padding with pad_token_id, not 0."),
        (_lp_mask_from_pad_id, "Build the mask from the lengths, not by comparing with "
                               "pad_token_id: the pad id can also be a real token of a prompt "
                               "(GPT-2 pads with its end-of-text token)."),
        (_lp_bool_mask, "The attention_mask is an int64 tensor of 0s and 1s, as a tokenizer "
                        "returns it, not a bool tensor."),
    ],
))
