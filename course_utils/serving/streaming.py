"""Streaming text out of a token stream: server-sent event frames and incremental decoding.

Server-sent events (SSE) are plain text over an open HTTP response: each event is one or more
``field: value`` lines ended by a blank line. ``data: {...}\\n\\n`` is all a token stream needs;
the OpenAI API ends its streams with ``data: [DONE]``.

Turning tokens back into text one at a time has two traps. A byte-level BPE token can hold half
of a UTF-8 character (an emoji is 4 bytes, often 2 tokens): decoding it alone gives the
replacement character U+FFFD, so :class:`IncrementalDecoder` waits for the rest. And a stop string
may arrive split over several tokens, so text that could be the start of one is held back until
it is clear either way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from transformers import PreTrainedTokenizerBase


def sse_event(data: Any, event: str | None = None) -> str:
    """Format one server-sent event: ``event: <event>`` (optional), ``data:`` lines, blank line.

    ``data`` that is not a string is sent as JSON (``json.dumps`` with its defaults). A string
    with line breaks becomes one ``data:`` line per line, as the SSE format requires: it breaks
    lines at CRLF, LF and CR only (not at the other breaks ``str.splitlines`` knows, such as
    U+2028), and a final line break becomes a last, empty ``data:`` line, so the client reads it
    back.
    """
    if event is not None and ("\n" in event or "\r" in event):
        raise ValueError("an SSE event name must be a single line")
    text = data if isinstance(data, str) else json.dumps(data)
    lines = [f"event: {event}"] if event is not None else []
    lines += [f"data: {line}" for line in re.split(r"\r\n|\r|\n", text)]
    return "\n".join(lines) + "\n\n"


def _held_back(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of ``text`` that is a proper prefix of some stop string."""
    longest = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:k]):
                longest = k
                break
    return longest


class IncrementalDecoder:
    """Feed token ids one by one; get back the text that is safe to send so far.

    ``push(token)`` returns new text (possibly ``""``); after a stop string appears, ``stopped``
    is True and the text ends just before it. ``flush()`` returns whatever was held back once
    generation has ended. ``text`` is everything sent, ``tokens`` the number of tokens pushed.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, stop: Sequence[str] = ()):
        if any(not s for s in stop):
            raise ValueError("stop strings must not be empty")
        self.tokenizer = tokenizer
        self.stop = list(stop)
        self.ids: list[int] = []
        self.text = ""
        self.stopped = False

    @property
    def tokens(self) -> int:
        return len(self.ids)

    def _decode(self) -> str:
        return self.tokenizer.decode(self.ids, skip_special_tokens=True,
                                     clean_up_tokenization_spaces=False)

    def _emit(self, full: str, final: bool) -> str:
        start = max(0, len(self.text) - max((len(s) for s in self.stop), default=0))
        cut = min((i for s in self.stop if (i := full.find(s, start)) >= 0), default=-1)
        if cut >= 0:
            full, self.stopped = full[:cut], True
        elif not final:
            full = full[:len(full) - _held_back(full, self.stop)]
        new = full[len(self.text):]
        self.text += new
        return new

    def push(self, token_id: int) -> str:
        """Add one token; return the newly decoded text that can be sent now."""
        if self.stopped:
            return ""
        self.ids.append(int(token_id))
        full = self._decode()
        if full.endswith("\ufffd"):  # an unfinished UTF-8 character: wait for its other bytes
            return ""
        return self._emit(full, final=False)

    def flush(self) -> str:
        """Generation ended: return the text still held back (an unfinished stop or byte)."""
        if self.stopped:
            return ""
        return self._emit(self._decode(), final=True)
