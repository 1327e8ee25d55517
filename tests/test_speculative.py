"""Speculative decoding equals the target's own greedy decoding (transformers' generate) token for
token, whatever the draft, on many prompts, lengths and left-padded batches, EOS included."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from _tiny_lm import tiny_gpt2

from course_utils.pretrained import load_pretrained
from course_utils.speculative import (
    greedy_generate,
    speculative_generate,
    verify_greedy,
    verify_sampling,
)

PROMPTS = [
    "Once upon a time",
    "Review: The soup was cold and the waiter was rude.\nSentiment:",
    "Mia has 5 apples. She gives 2 to Theo. How many apples does Mia have left?\nAnswer:",
    "User: Hi! Who are you?\nAssistant:",
    "The",
    "Translate to French: the red house\nFrench:",
    "A little fox lived in a green house by the river. One day",
    "Q: What is 3 + 4?\nA:",
    "System: Be brief.\nUser: Name a colour.\nAssistant:",
    "Tom's dog can't find its ball — \"where is it?\" he asked.",
]


@pytest.fixture(scope="module")
def models():
    torch.set_num_threads(1)
    target, tok = load_pretrained("course-gpt")
    mini, _ = load_pretrained("course-gpt-mini")
    untrained = tiny_gpt2(target.config.vocab_size, n_positions=256, n_layer=1).eval()
    tok.padding_side = "left"
    return target, tok, {"bundled student": mini, "untrained": untrained, "target itself": target}


def reference(target, enc, max_new):
    """transformers' greedy decoding, padded to the full width as speculative_generate returns."""
    out = target.generate(**enc, do_sample=False, max_new_tokens=max_new)
    width = enc["input_ids"].shape[1] + max_new
    return F.pad(out, (0, width - out.shape[1]), value=target.generation_config.pad_token_id)


@pytest.mark.parametrize("draft_name", ["bundled student", "untrained", "target itself"])
@pytest.mark.parametrize("k", [1, 4, 7])
def test_single_prompts_match_generate(models, draft_name, k):
    target, tok, drafts = models
    for i, prompt in enumerate(PROMPTS):
        enc = tok([prompt], return_tensors="pt")
        max_new = (5, 24, 40)[i % 3]
        got = speculative_generate(target, drafts[draft_name], enc["input_ids"], max_new, k)
        torch.testing.assert_close(got, reference(target, enc, max_new), rtol=0, atol=0,
                                   msg=f"{draft_name}, k={k}, prompt {prompt!r}")


@pytest.mark.parametrize("draft_name", ["bundled student", "untrained", "target itself"])
def test_left_padded_batches_match_generate(models, draft_name):
    target, tok, drafts = models
    for start, size, max_new in [(0, 4, 30), (4, 3, 12), (2, 6, 1), (0, 10, 20)]:
        enc = tok(PROMPTS[start: start + size], return_tensors="pt", padding=True)
        got = speculative_generate(target, drafts[draft_name], enc["input_ids"], max_new, 3,
                                   attention_mask=enc["attention_mask"])
        torch.testing.assert_close(got, reference(target, enc, max_new), rtol=0, atol=0)


def test_rows_stop_at_eos_and_are_padded_like_generate(models):
    target, tok, drafts = models
    eos, pad = target.generation_config.eos_token_id, target.generation_config.pad_token_id
    enc = tok(PROMPTS, return_tensors="pt", padding=True)
    got = speculative_generate(target, drafts["bundled student"], enc["input_ids"], 60, 4,
                               attention_mask=enc["attention_mask"])
    new = got[:, enc["input_ids"].shape[1]:]
    stopped = [row.tolist().index(eos) for row in new if eos in row.tolist()]
    assert stopped, "no prompt reached end-of-text: the test would prove nothing"
    for row in new.tolist():
        if eos in row:
            assert set(row[row.index(eos) + 1:]) <= {pad}
    torch.testing.assert_close(got, reference(target, enc, 60), rtol=0, atol=0)


@pytest.mark.parametrize("draft_name", ["bundled student", "untrained"])
def test_rows_ending_at_many_different_points_match_generate(models, draft_name):
    """With "." as the end-of-text token, rows of a batch stop at many different steps."""
    target, tok, drafts = models
    target = copy.deepcopy(target)
    stop = tok(".")["input_ids"][0]
    target.generation_config.eos_token_id = stop
    enc = tok(PROMPTS, return_tensors="pt", padding=True)
    width = enc["input_ids"].shape[1]
    for k in (1, 3, 6):
        got = speculative_generate(target, drafts[draft_name], enc["input_ids"], 40, k,
                                   attention_mask=enc["attention_mask"])
        torch.testing.assert_close(got, reference(target, enc, 40), rtol=0, atol=0)
    ends = {row.index(stop) for row in got[:, width:].tolist() if stop in row}
    assert len(ends) >= 3, ends


def test_stats_count_acceptance(models):
    target, tok, drafts = models
    enc = tok([PROMPTS[0]], return_tensors="pt")
    same, other = {}, {}
    speculative_generate(target, target, enc["input_ids"], 40, 4, stats=same)
    speculative_generate(target, drafts["untrained"], enc["input_ids"], 40, 4, stats=other)
    assert same["accepted"] == same["drafted"] > 0
    assert same["target_passes"] == same["rounds"] <= 40 // 5 + 1
    assert other["accepted"] < other["drafted"]


def test_greedy_generate_and_edge_lengths(models):
    target, tok, drafts = models
    enc = tok([PROMPTS[1]], return_tensors="pt")
    torch.testing.assert_close(greedy_generate(target, enc["input_ids"], 25),
                               reference(target, enc, 25), rtol=0, atol=0)
    assert torch.equal(speculative_generate(target, drafts["untrained"], enc["input_ids"], 0),
                       enc["input_ids"])
    torch.testing.assert_close(speculative_generate(target, drafts["untrained"],
                                                    enc["input_ids"], 9, 0),
                               reference(target, enc, 9), rtol=0, atol=0)


def test_verify_greedy():
    logits = torch.full((4, 6), -1.0)
    for row, tok in enumerate([0, 3, 5, 2]):
        logits[row, tok] = 1.0
    assert verify_greedy([0, 3, 5], logits)[0] == 3
    assert verify_greedy([0, 3, 5], logits)[1].tolist() == [0, 3, 5, 2]  # all + bonus
    n, new = verify_greedy(torch.tensor([0, 4, 5]), logits)
    assert (n, new.tolist()) == (1, [0, 3])  # stops at the first mismatch, even if 5 matches
    n, new = verify_greedy([1, 3, 5], logits)
    assert (n, new.tolist()) == (0, [0])
    n, new = verify_greedy([], logits[:1])
    assert (n, new.tolist(), new.dtype) == (0, [0], torch.long)


def test_bad_input_is_a_clear_error(models):
    target, tok, drafts = models
    ids = torch.tensor([[5, 6, 7]])
    with pytest.raises(ValueError, match="LEFT-padded"):
        speculative_generate(target, target, ids, 3, attention_mask=torch.tensor([[1, 1, 0]]))
    with pytest.raises(ValueError, match="context"):
        speculative_generate(target, target, ids, 300)
    with pytest.raises(ValueError, match="share a tokenizer"):
        small = tiny_gpt2(10, n_embd=8, n_layer=1)
        speculative_generate(target, small, ids, 3)
    with pytest.raises(ValueError, match=r"\(batch, prompt_len\)"):
        speculative_generate(target, target, ids[0], 3)
    with pytest.raises(ValueError, match="k \\+ 1"):
        verify_greedy([1, 2], torch.zeros(2, 5))


def test_speculative_sampling_follows_the_targets_distribution():
    """Draft from q, verify against p (context-free here): the first two output tokens are
    distributed as p x p, whatever q, up to sampling noise (50,000 rounds)."""
    g = torch.Generator().manual_seed(0)
    p = torch.tensor([0.5, 0.2, 0.15, 0.1, 0.05])
    q = torch.tensor([0.1, 0.1, 0.3, 0.3, 0.2])  # a poor draft
    counts = torch.zeros(5, 5)
    n, k = 50_000, 2
    accepted = 0
    for _ in range(n):
        draft = torch.multinomial(q, k, replacement=True, generator=g)
        got, new = verify_sampling(draft, q.expand(k, 5), p.expand(k + 1, 5), generator=g)
        accepted += got
        assert len(new) == got + 1
        if len(new) < 2:  # a rejection at position 0: continue the way a new round would
            new = torch.cat([new, torch.multinomial(p, 1, generator=g)])
        counts[new[0], new[1]] += 1
    joint = counts / n
    assert (joint - p[:, None] * p[None, :]).abs().max() < 0.01
    assert (joint.sum(1) - p).abs().max() < 0.01
    a = torch.minimum(p, q).sum().item()  # P(a drafted token is kept) = sum min(p, q)
    assert abs(accepted / n - (a + a * a)) < 0.02  # kept per round of k = 2: a + a^2


def test_speculative_sampling_with_the_target_as_draft_accepts_everything():
    g = torch.Generator().manual_seed(1)
    p = torch.softmax(torch.randn(4, 7, generator=g), -1)
    draft = torch.tensor([int(torch.multinomial(p[i], 1, generator=g)) for i in range(3)])
    n, new = verify_sampling(draft, p[:3], p, generator=g)
    assert n == 3 and new[:3].tolist() == draft.tolist()
