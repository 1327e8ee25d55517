"""course_utils.finetune.sft: chat features against the chat template's own assistant mask
(``return_assistant_tokens_mask``), and the padded batch against a loss computed by hand from
that mask on a tiny GPT-2."""

from __future__ import annotations

import pytest
import torch
from _tiny_lm import tiny_gpt2

from course_utils.finetune.sft import IGNORE_INDEX, chat_features, pad_chat_batch
from course_utils.pretrained import load_pretrained
from course_utils.pretrained.tokenizer_build import CHAT_TEMPLATE

CHATS = [
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
    [{"role": "system", "content": "Answer briefly."},
     {"role": "user", "content": "Mia has 3 apples and finds 2 more. How many?"},
     {"role": "assistant", "content": "The answer is 5."}],
    [{"role": "system", "content": "You are a teacher."},
     {"role": "user", "content": "Translate: The cat sees the dog."},
     {"role": "assistant", "content": "Lo gato vidas lo kano."},
     {"role": "user", "content": "And \"now\"? It's 0 \u00e9 \U0001F642"},
     {"role": "assistant", "content": "0"}],
]


@pytest.fixture(scope="module")
def tok():
    return load_pretrained("course-gpt")[1]


def reference(tok, messages):
    out = tok.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
    return list(out["input_ids"]), list(out["assistant_masks"])


def test_the_bundled_tokenizers_share_the_one_chat_template():
    for name in ("course-gpt", "course-gpt-mini"):
        assert load_pretrained(name)[1].chat_template == CHAT_TEMPLATE


@pytest.mark.parametrize("messages", CHATS)
def test_labels_are_the_template_assistant_mask(tok, messages):
    ids, mask = reference(tok, messages)
    feats = chat_features(tok, messages)
    assert feats["input_ids"] == ids
    assert feats["labels"] == [i if m else IGNORE_INDEX for i, m in zip(ids, mask, strict=True)]
    learned = [i for i in feats["labels"] if i != IGNORE_INDEX]
    # every reply ends with the eos token, and the newline after it is not learned
    n_replies = sum(m["role"] == "assistant" for m in messages)
    assert learned.count(tok.eos_token_id) == n_replies and learned[-1] == tok.eos_token_id
    replies = "".join(" " + m["content"] + tok.eos_token for m in messages
                      if m["role"] == "assistant")
    assert tok.decode(learned) == replies


def test_generation_prompt_is_unchanged_and_replies_follow_it(tok):
    msgs = CHATS[1]
    prompt = tok.apply_chat_template(msgs[:-1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("\nAssistant:")
    full = tok.apply_chat_template(msgs, tokenize=False)
    assert full == prompt + " The answer is 5." + tok.eos_token + "\n"
    feats = chat_features(tok, msgs)
    n_prompt = len(tok(prompt)["input_ids"])
    assert all(lab == IGNORE_INDEX for lab in feats["labels"][:n_prompt])
    assert feats["labels"][n_prompt] != IGNORE_INDEX


def test_max_length_cuts_both_lists_and_says_so(tok):
    full = chat_features(tok, CHATS[2])
    with pytest.warns(UserWarning, match="cut to max_length"):
        cut = chat_features(tok, CHATS[2], max_length=len(full["input_ids"]) - 3)
    assert cut["input_ids"] == full["input_ids"][:-3] and cut["labels"] == full["labels"][:-3]
    first = next(i for i, lab in enumerate(full["labels"]) if lab != IGNORE_INDEX)
    with pytest.raises(ValueError, match="nothing left to learn"), pytest.warns(UserWarning):
        chat_features(tok, CHATS[2], max_length=first)
    with pytest.raises(ValueError, match="max_length"):
        chat_features(tok, CHATS[0], max_length=0)


def test_bad_chats_are_clear_errors(tok):
    with pytest.raises(ValueError, match="no assistant turn"):
        chat_features(tok, [{"role": "user", "content": "Hi"}])
    with pytest.raises(ValueError, match="role"):
        chat_features(tok, [{"role": "robot", "content": "Hi"}])
    with pytest.raises(TypeError, match="non-empty list"):
        chat_features(tok, "User: Hi")


def test_padded_batch_gives_the_loss_on_assistant_tokens_only(tok):
    feats = [chat_features(tok, m) for m in CHATS]
    batch = pad_chat_batch(feats, tok.pad_token_id)
    n, width = batch["input_ids"].shape
    assert n == 3 and width == max(len(f["input_ids"]) for f in feats)
    assert all(t.dtype == torch.long for t in batch.values())
    for i, f in enumerate(feats):  # right padding, -100 under the padding
        k = len(f["input_ids"])
        assert batch["attention_mask"][i].tolist() == [1] * k + [0] * (width - k)
        assert batch["input_ids"][i, k:].eq(tok.pad_token_id).all()
        assert batch["labels"][i, k:].eq(IGNORE_INDEX).all()
    model = tiny_gpt2(len(tok), n_positions=128, tokenizer=tok).eval()
    with torch.no_grad():
        loss = model(**batch).loss
        # by hand, from the template's mask: predict token t+1 from the prefix up to t
        total, count = 0.0, 0
        for messages in CHATS:
            ids, mask = reference(tok, messages)
            x = torch.tensor([ids])
            logp = model(x).logits[0, :-1].log_softmax(-1)
            for t in range(len(ids) - 1):
                if mask[t + 1]:
                    total -= logp[t, ids[t + 1]].item()
                    count += 1
    assert loss.item() == pytest.approx(total / count, rel=1e-5)


def test_pad_chat_batch_rejects_bad_input(tok):
    f = chat_features(tok, CHATS[0])
    with pytest.raises(ValueError, match="aligned"):
        pad_chat_batch([{"input_ids": [1, 2], "labels": [1]}], 0)
    with pytest.raises(ValueError, match="pad_token_id"):
        pad_chat_batch([f], None)
    with pytest.raises(ValueError, match="non-empty"):
        pad_chat_batch([], 0)


def test_follow_rates_and_replies_of_a_model():
    from course_utils.data import instruction_data
    from course_utils.finetune.sft import follow_rates, generate_replies

    items = instruction_data(0, "eval", 10)
    rates = follow_rates(items, [it.reply for it in items])
    assert rates == {"role": 1.0, "task": 1.0, "template": 1.0, "conditional": 1.0,
                     "iterative": 1.0, "all": 1.0}
    wrong = follow_rates(items, [""] * 5 + [it.reply for it in items[5:]])
    assert wrong["all"] == 0.5 and set(wrong.values()) == {0.5}
    with pytest.raises(ValueError, match="one reply per item"):
        follow_rates(items, ["x"])
    model, tok = load_pretrained("course-gpt")
    replies = generate_replies(model, tok, items[:3], max_new_tokens=24)
    assert len(replies) == 3 and all(isinstance(r, str) for r in replies)
    assert not any("\nUser:" in r for r in replies)
