"""Known-wrong answers to lesson 08's exercises: the grader must reject each, saying why.

08.2 is the server-sent event frame and 08.3 left padding, in the notebook's order (08.1, the
/generate endpoint, is in test_grading_lesson08_endpoint.py).

These implementations are written here, independently of the grader's own list of mistakes,
so a grader that stops recognising one of them fails this test.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch

from course_utils.grading import get_exercise, run_exercise
from course_utils.serving.generation import left_pad
from course_utils.serving.streaming import sse_event


def _verdict(ex_id, fn):
    return run_exercise(get_exercise(ex_id), fn)


# ---- 08.3 left padding
def lp_learner(sequences, pad_token_id):
    """A correct solution written the way a learner would."""
    width = max(map(len, sequences))
    rows, masks, positions = [], [], []
    for seq in sequences:
        gap = width - len(seq)
        rows.append([pad_token_id] * gap + list(seq))
        masks.append([0] * gap + [1] * len(seq))
        positions.append([0] * gap + list(range(len(seq))))
    return torch.tensor(rows), torch.tensor(masks), torch.tensor(positions)


def lp_right_padded(sequences, pad_token_id):
    width = max(map(len, sequences))
    rows = [list(s) + [pad_token_id] * (width - len(s)) for s in sequences]
    masks = [[1] * len(s) + [0] * (width - len(s)) for s in sequences]
    positions = [list(range(len(s))) + [0] * (width - len(s)) for s in sequences]
    return torch.tensor(rows), torch.tensor(masks), torch.tensor(positions)


def lp_arange_positions(sequences, pad_token_id):
    ids, mask, _ = lp_learner(sequences, pad_token_id)
    return ids, mask, torch.arange(ids.shape[1]).repeat(ids.shape[0], 1)


def lp_minus_one(sequences, pad_token_id):
    ids, mask, pos = lp_learner(sequences, pad_token_id)
    return ids, mask, torch.where(mask == 1, pos, torch.full_like(pos, -1))


def lp_bool_inverted(sequences, pad_token_id):
    ids, mask, pos = lp_learner(sequences, pad_token_id)
    return ids, (mask == 0).long(), pos


def lp_zeros(sequences, pad_token_id):
    return lp_learner(sequences, 0)


def lp_compare_pad(sequences, pad_token_id):
    ids, _, _ = lp_learner(sequences, pad_token_id)
    mask = torch.where(ids == pad_token_id, 0, 1)
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    return ids, mask, pos


def lp_int32(sequences, pad_token_id):
    return tuple(t.int() for t in lp_learner(sequences, pad_token_id))


def lp_two_outputs(sequences, pad_token_id):
    return lp_learner(sequences, pad_token_id)[:2]


# ---- 08.2 SSE frame
def sse_learner(data, event=None):
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    out = "" if event is None else "event:" + event + "\n"
    for line in payload.split("\n"):
        out += "data:" + line + "\n"
    return out + "\n"


def sse_one_line_ending(data, event=None):
    return sse_learner(data, event).removesuffix("\n")


def sse_python_repr(data, event=None):
    return sse_learner(str(data) if not isinstance(data, str) else data, event)


def sse_multiline_in_one(data, event=None):
    payload = data if isinstance(data, str) else json.dumps(data)
    head = "" if event is None else f"event: {event}\n"
    return f"{head}data: {payload}\n\n"


def sse_no_event(data, event=None):
    return sse_learner(data)


def sse_twice(data, event=None):
    return sse_learner(data, event) * 2


def sse_bytes(data, event=None):
    return sse_learner(data, event).encode()


def lp_inserts_into_the_prompts(sequences, pad_token_id):
    width = max(len(s) for s in sequences)
    masks = []
    for seq in sequences:
        gap = width - len(seq)
        masks.append([0] * gap + [1] * len(seq))
        seq[:0] = [pad_token_id] * gap  # pads the caller's own lists
    ids, mask = torch.tensor(sequences), torch.tensor(masks)
    return ids, mask, (mask.cumsum(1) - 1).clamp(min=0)


def lp_positions_from_one(sequences, pad_token_id):
    ids, mask, _ = lp_learner(sequences, pad_token_id)
    return ids, mask, mask.cumsum(1)


def lp_default_pad(sequences, pad_token_id):
    return lp_learner(sequences, pad_token_id or 50256)


def lp_float_mask(sequences, pad_token_id):
    ids, mask, pos = lp_learner(sequences, pad_token_id)
    return ids, mask.float(), pos


def lp_flip_and_pad(sequences, pad_token_id):
    """Correct: right-pad the reversed prompts with torch, then flip back."""
    rows = [torch.tensor(list(s)[::-1]) for s in sequences]
    ids = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True,
                                          padding_value=pad_token_id).flip(1)
    mask = torch.nn.utils.rnn.pad_sequence([torch.ones(len(s), dtype=torch.long)
                                            for s in sequences], batch_first=True).flip(1)
    return ids, mask, (mask.cumsum(1) - 1).clamp(min=0)


def sse_json_everything(data, event=None):
    lines = json.dumps(data).split("\n")
    head = "" if event is None else f"event: {event}\n"
    return head + "".join(f"data: {line}\n" for line in lines) + "\n"


def sse_truthy(data, event=None):
    if not data:
        payload = ""
    else:
        payload = data if isinstance(data, str) else json.dumps(data)
    return sse_learner(payload, event)


def sse_always_event_line(data, event=None):
    payload = data if isinstance(data, str) else json.dumps(data)
    body = "".join(f"data: {line}\n" for line in payload.split("\n"))
    return f"event: {event}\n" + body + "\n"


def sse_fstring(data, event=None):
    head = "" if event is None else f"event: {event}\n"
    return f"{head}data: {data}\n\n"


def sse_capitalised(data, event=None):
    return sse_learner(data, event).replace("data:", "Data:")


def sse_with_an_id(data, event=None):
    return "id: 1\n" + sse_learner(data, event)


def sse_crlf(data, event=None):
    """Correct: CRLF line endings, no space after the colon, JSON with its own spacing."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False,
                                                            separators=(",", ":"))
    lines = ([] if event is None else [f"event:{event}"]) + [
        f"data:{line}" for line in payload.replace("\r\n", "\n").split("\n")]
    return "\r\n".join(lines) + "\r\n\r\n"


def sse_sorted_keys_lone_cr(data, event=None):
    """Correct: bare CR line endings (valid SSE), keys sorted, one space after the colon."""
    payload = data if isinstance(data, str) else json.dumps(data, sort_keys=True)
    lines = ([] if event is None else ["event: " + event]) + [
        "data: " + line for line in payload.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\r".join(lines) + "\r\r"


def sse_splitlines(data, event=None):
    """Wrong: str.splitlines() drops a final line break and splits at U+2028."""
    payload = data if isinstance(data, str) else json.dumps(data)
    lines = ([] if event is None else [f"event: {event}"]) + [
        f"data: {line}" for line in payload.splitlines() or [""]]
    return "\n".join(lines) + "\n\n"


def test_splitlines_is_rejected():
    result = run_exercise(get_exercise("08.2"), sse_splitlines)
    assert not result.passed
    assert "line break" in result.message or "U+2028" in result.message


@pytest.mark.parametrize("ex_id, fn", [("08.3", left_pad), ("08.3", lp_learner),
                                       ("08.2", sse_event), ("08.2", sse_learner),
                                       ("08.3", lp_flip_and_pad), ("08.2", sse_crlf),
                                       ("08.2", sse_sorted_keys_lone_cr)])
def test_the_reference_and_a_learners_solution_pass(ex_id, fn):
    verdict = _verdict(ex_id, fn)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize("ex_id, fn, says", [
    ("08.3", lp_right_padded, "That is right padding"),
    ("08.3", lp_arange_positions, "count the padding too"),
    ("08.3", lp_minus_one, "clamp the position ids at 0"),
    ("08.3", lp_bool_inverted, "attention mask is inverted"),
    ("08.3", lp_zeros, "not 0"),
    ("08.3", lp_compare_pad, "not by comparing with pad_token_id"),
    ("08.3", lp_int32, "dtype"),
    ("08.3", lp_two_outputs, "items"),
    ("08.2", sse_one_line_ending, "BLANK line"),
    ("08.2", sse_python_repr, "is not JSON"),
    ("08.2", sse_multiline_in_one, "its own 'data: ' line"),
    ("08.2", sse_no_event, "event name"),
    ("08.2", sse_twice, "send exactly 1"),
    ("08.2", sse_bytes, "should be a str"),
    ("08.3", lp_inserts_into_the_prompts, "changed its input `sequences` in place"),
    ("08.3", lp_positions_from_one, "Positions start at 0"),
    ("08.3", lp_default_pad, "result[0] differs"),
    ("08.3", lp_float_mask, "dtype"),
    ("08.2", sse_json_everything, "A string is sent as it is"),
    ("08.2", sse_truthy, "None, 0, False and [] are data too"),
    ("08.2", sse_always_event_line, "'event: None'"),
    ("08.2", sse_fstring, "a client reads the data"),
    ("08.2", sse_capitalised, "reads no event"),
    ("08.2", sse_with_an_id, "should not set an id"),
])
def test_known_wrong_answers_are_rejected_with_their_reason(ex_id, fn, says):
    verdict = _verdict(ex_id, fn)
    assert not verdict.passed
    assert says in verdict.message, verdict.message


def test_an_unsolved_exercise_is_not_attempted():
    def stub(*args, **kwargs):
        raise NotImplementedError("Your turn")

    for ex_id in ("08.2", "08.3"):
        assert _verdict(ex_id, stub).status == "not attempted"


@pytest.mark.parametrize("ex_id", ["08.2", "08.3"])
def test_every_case_says_what_it_catches(ex_id):
    ex = get_exercise(ex_id)
    for case in ex.cases(torch.Generator().manual_seed(ex.seed)):
        assert case.label and case.catches, case


@pytest.mark.parametrize("ex_id", ["08.2", "08.3"])
def test_every_known_mistake_runs_on_every_case(ex_id):
    """A mistake's hint is shown only when the learner matches it on every case."""
    ex = get_exercise(ex_id)
    for case in ex.cases(torch.Generator().manual_seed(ex.seed)):
        for wrong, _ in ex.mistakes:
            wrong(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))


@pytest.mark.parametrize("stream, events", [
    # the examples of the WHATWG HTML standard, section "Interpreting an event stream"
    ("data: YHOO\ndata: +2\ndata: 10\n\n", [("message", "YHOO\n+2\n10")]),
    (": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\n"
     "data:  third event\n\n",
     [("message", "first event"), ("message", "second event"), ("message", " third event")]),
    ("data\n\ndata\ndata\n\ndata:", [("message", ""), ("message", "\n")]),
    ("data:test\n\ndata: test\n\n", [("message", "test"), ("message", "test")]),
    ("event: add\r\ndata: 73857293\r\n\r\n", [("add", "73857293")]),
    ("event: remove\rdata: 2153\r\r", [("remove", "2153")]),
])
def test_the_frame_parser_follows_the_sse_standard(stream, events):
    from course_utils.grading.lesson08 import parse_sse

    parsed, _ = parse_sse(stream)
    assert [(e.type, e.data) for e in parsed] == events


def test_an_unended_event_is_not_dispatched():
    from course_utils.grading.lesson08 import parse_sse

    assert parse_sse("data: x\n") == ([], False)
    assert parse_sse("data: x\n\ndata: y")[1] is False


def test_left_pad_matches_a_tokenizer_padding_on_the_left():
    """An independent reference: transformers' tokenizer.pad with padding_side='left'."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(
        {"[PAD]": 0, "a": 1}, unk_token="[PAD]")), pad_token="[PAD]", padding_side="left")
    prompts = [[5, 6, 7], [8], [0, 9]]
    padded = tok.pad({"input_ids": prompts}, return_tensors="pt")
    ids, mask, _ = left_pad(prompts, 0)
    assert torch.equal(ids, padded["input_ids"]) and torch.equal(mask, padded["attention_mask"])


@pytest.mark.parametrize("ex_id", ["08.2", "08.3"])
def test_known_mistakes_are_rejected_with_their_own_hint(ex_id):
    ex = get_exercise(ex_id)
    for wrong, hint in ex.mistakes:
        result = run_exercise(ex, wrong)
        assert result.status == "failed" and hint in result.message, (wrong.__name__,
                                                                     result.message)
