"""Known-wrong answers to exercise 05.4 (a batch of chats for SFT): each rejected, saying why.

Written here independently of the grader's own mistakes (course_utils/grading/lesson05_sft.py),
and checked against an independent reference: the chat template's own
``return_assistant_tokens_mask`` in ``transformers``, padded with ``pad_sequence``.
"""

import copy

import pytest
import torch
from _grading_helpers import advice_on_every_case, cases_of
from torch.nn.utils.rnn import pad_sequence

from course_utils.grading import get_exercise, run_exercise
from course_utils.grading.lesson05_sft import chat_batch


def _assert_rejected_saying(fn, says):
    verdict = run_exercise(get_exercise("05.4"), fn)
    assert verdict.status == "failed", verdict.message
    assert says in verdict.message, verdict.message
    ex = get_exercise("05.4")
    if any(says in advice for advice in [ex.hint, *(a for _, a in ex.mistakes)]):
        assert says in advice_on_every_case("05.4", fn)


def _rendered(tokenizer, chat):
    out = tokenizer.apply_chat_template(chat, return_dict=True,
                                        return_assistant_tokens_mask=True)
    return torch.tensor(out["input_ids"]), torch.tensor(out["assistant_masks"]).bool()


def _right_pad(rows, pad_id):
    ids = pad_sequence([r[0] for r in rows], batch_first=True, padding_value=pad_id)
    labels = pad_sequence([r[1] for r in rows], batch_first=True, padding_value=-100)
    mask = pad_sequence([torch.ones_like(r[0]) for r in rows], batch_first=True)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _independent(chats, tokenizer):
    rows = []
    for chat in chats:
        ids, mask = _rendered(tokenizer, chat)
        rows.append((ids, torch.where(mask, ids, -100)))
    return _right_pad(rows, tokenizer.pad_token_id)


# ---- wrong answers
def sft_labels_are_the_inputs(chats, tokenizer):
    rows = [(ids, ids.clone()) for ids, _ in (_rendered(tokenizer, c) for c in chats)]
    return _right_pad(rows, tokenizer.pad_token_id)


def sft_mask_inverted(chats, tokenizer):
    rows = [(ids, torch.where(mask, -100, ids))
            for ids, mask in (_rendered(tokenizer, c) for c in chats)]
    return _right_pad(rows, tokenizer.pad_token_id)


def sft_eos_ignored(chats, tokenizer):
    rows = []
    for chat in chats:
        ids, mask = _rendered(tokenizer, chat)
        rows.append((ids, torch.where(mask & (ids != tokenizer.eos_token_id), ids, -100)))
    return _right_pad(rows, tokenizer.pad_token_id)


def sft_labels_shifted_left(chats, tokenizer):
    rows = []
    for chat in chats:
        ids, mask = _rendered(tokenizer, chat)
        labels = torch.where(mask, ids, -100)
        rows.append((ids, torch.cat([labels[1:], torch.tensor([-100])])))
    return _right_pad(rows, tokenizer.pad_token_id)


def sft_prompt_length_from_generation_prompt(chats, tokenizer):
    """Label everything after the prompt of the LAST reply, as single-turn recipes do."""
    rows = []
    for chat in chats:
        last = max(i for i, m in enumerate(chat) if m["role"] == "assistant")
        prompt = tokenizer.apply_chat_template(chat[:last], add_generation_prompt=True,
                                               return_dict=True)["input_ids"]
        ids = torch.tensor(tokenizer.apply_chat_template(chat, return_dict=True)["input_ids"])
        labels = ids.clone()
        labels[:len(prompt)] = -100
        rows.append((ids, labels))
    return _right_pad(rows, tokenizer.pad_token_id)


def sft_padding_learned(chats, tokenizer):
    batch = _independent(chats, tokenizer)
    batch["labels"] = torch.where(batch["attention_mask"].bool(), batch["labels"],
                                  tokenizer.pad_token_id)
    return batch


def sft_left_padding(chats, tokenizer):
    rows = []
    for chat in chats:
        ids, mask = _rendered(tokenizer, chat)
        rows.append((ids.flip(0), torch.where(mask, ids, -100).flip(0)))
    batch = _right_pad(rows, tokenizer.pad_token_id)
    return {k: v.flip(1) for k, v in batch.items()}


def sft_system_prompt_learned(chats, tokenizer):
    rows = []
    for chat in chats:
        ids, mask = _rendered(tokenizer, chat)
        if chat[0]["role"] == "system":
            n = len(tokenizer.apply_chat_template(chat[:1], return_dict=True)["input_ids"])
            mask = mask.clone()
            mask[:n] = True
        rows.append((ids, torch.where(mask, ids, -100)))
    return _right_pad(rows, tokenizer.pad_token_id)


def sft_attends_to_padding(chats, tokenizer):
    batch = _independent(chats, tokenizer)
    batch["attention_mask"] = torch.ones_like(batch["attention_mask"])
    return batch


def sft_padded_with_eos(chats, tokenizer):
    batch = _independent(chats, tokenizer)
    batch["input_ids"] = torch.where(batch["attention_mask"].bool(), batch["input_ids"],
                                     tokenizer.eos_token_id)
    return batch


def sft_lists_not_tensors(chats, tokenizer):
    return {k: v.tolist() for k, v in _independent(chats, tokenizer).items()}


def sft_float_labels(chats, tokenizer):
    batch = _independent(chats, tokenizer)
    batch["labels"] = batch["labels"].float()
    return batch


# ---- correct alternatives
def sft_with_pad_sequence(chats, tokenizer):
    """Correct: the template's assistant mask, padded with pad_sequence."""
    return _independent(chats, tokenizer)


def sft_by_character_offsets(chats, tokenizer):
    """Correct too: render the text, find each reply (and its eos) by characters, and label
    the tokens whose characters fall inside."""
    rows = []
    for chat in chats:
        text, spans, before = "", [], ""
        for i, message in enumerate(chat):
            text = tokenizer.apply_chat_template(chat[: i + 1], tokenize=False)
            if message["role"] == "assistant":
                start = len(before) + len("Assistant:")
                end = start + len(" " + message["content"] + tokenizer.eos_token)
                spans.append((start, end))
            before = text
        enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
        ids = torch.tensor(enc["input_ids"])
        learned = torch.tensor([any(a <= s and e <= b for a, b in spans)
                                for s, e in enc["offset_mapping"]])
        rows.append((ids, torch.where(learned, ids, -100)))
    width = max(len(r[0]) for r in rows)
    out = {"input_ids": torch.full((len(rows), width), tokenizer.pad_token_id),
           "attention_mask": torch.zeros(len(rows), width, dtype=torch.long),
           "labels": torch.full((len(rows), width), -100)}
    for i, (ids, labels) in enumerate(rows):
        out["input_ids"][i, :len(ids)] = ids
        out["attention_mask"][i, :len(ids)] = 1
        out["labels"][i, :len(ids)] = labels
    return out


@pytest.mark.parametrize("fn, words", [
    (sft_labels_are_the_inputs, "Every token is learned"),
    (sft_mask_inverted, "The mask is inverted"),
    (sft_eos_ignored, "end-of-turn (eos) token must be learned"),
    (sft_labels_shifted_left, "Don't shift the labels"),
    (sft_prompt_length_from_generation_prompt, "result['labels']"),
    (sft_padding_learned, "Padding positions must get label -100"),
    (sft_left_padding, "Pad on the right"),
    (sft_system_prompt_learned, "differs"),
    (sft_attends_to_padding, "attention_mask must be 0 on padding"),
    (sft_padded_with_eos, "tokenizer.pad_token_id"),
    (sft_lists_not_tensors, "return a LongTensor"),
    (sft_float_labels, "dtype"),
])
def test_learner_style_wrong_answers_are_rejected_with_their_reason(fn, words):
    _assert_rejected_saying(fn, words)


@pytest.mark.parametrize("fn", [chat_batch, sft_with_pad_sequence, sft_by_character_offsets])
def test_reference_and_correct_alternatives_pass(fn):
    verdict = run_exercise(get_exercise("05.4"), fn)
    assert verdict.passed, verdict.message


def test_unsolved_reads_not_attempted():
    def stub(chats, tokenizer):
        raise NotImplementedError
    assert run_exercise(get_exercise("05.4"), stub).status == "not attempted"


def test_reference_is_the_templates_assistant_mask_on_every_case():
    for case in cases_of("05.4"):
        got, want = chat_batch(*case.args), _independent(*case.args)
        for key in want:
            assert torch.equal(got[key], want[key]), key


def test_every_case_says_what_it_catches_and_every_mistake_runs_on_it():
    ex = get_exercise("05.4")
    cases = cases_of("05.4")
    for case in cases:
        assert case.label and case.catches, case
    for wrong, _ in ex.mistakes:
        assert any(ex.compare(wrong(*copy.deepcopy(c.args)), ex.reference(*copy.deepcopy(c.args)),
                              c) is not None for c in cases), wrong.__name__


def test_cases_reach_the_boundaries():
    cases = cases_of("05.4")
    chats = [chat for c in cases for chat in c.args[0]]
    assert any(chat[0]["role"] == "system" for chat in chats)
    assert any(sum(m["role"] == "assistant" for m in chat) >= 2 for chat in chats)
    assert any(chat[-1]["role"] == "user" for chat in chats)
    assert any(m["content"] in ("0", "False") for chat in chats for m in chat)
    assert any(len(c.args[0]) == 1 for c in cases) and any(len(c.args[0]) >= 5 for c in cases)
