"""Known-wrong answers to lesson 04's exercises: the grader must reject each, saying why.

These implementations are written here, independently of the grader's own list of mistakes,
so a grader that stops recognising one of them fails this test.
"""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
import torch
from _grading_helpers import advice_on_every_case, cases_of, run_case

from course_utils.grading import compare, get_exercise, run_exercise
from course_utils.prompting import extract_answer, few_shot_from_pool, few_shot_prompt

INSTR = "Is each review positive, negative or neutral?"


def _verdict(ex_id, fn):
    return run_exercise(get_exercise(ex_id), fn)


def _assert_rejected_saying(ex_id, fn, says):
    verdict = _verdict(ex_id, fn)
    assert not verdict.passed
    assert says in verdict.message, verdict.message
    ex = get_exercise(ex_id)
    if any(says in advice for advice in [ex.hint, *(a for _, a in ex.mistakes)]):
        # the phrase is advice: it must also be the advice when every case is compared
        assert says in advice_on_every_case(ex_id, fn)


# ---- 04.1 a balanced few-shot prompt from a pool
def pool_learner(test, pool, k, label_words, seed, instruction=INSTR):
    """A correct solution written the way a learner would: numpy's seeded generator."""
    rng = np.random.default_rng(seed)
    rows = [r for r in pool if r["text"] != test["text"]]
    n = len(label_words)
    extra = rng.permutation(n)[:k % n]
    chosen = []
    for lab in range(n):
        mine = [r for r in rows if r["label"] == lab]
        need = k // n + (1 if lab in extra else 0)
        if len(mine) < need:
            raise ValueError(f"only {len(mine)} examples of {label_words[lab]!r}, need {need}")
        chosen += [mine[i] for i in rng.choice(len(mine), size=need, replace=False)]
    order = rng.permutation(len(chosen))
    demos = [(chosen[i]["text"], label_words[chosen[i]["label"]]) for i in order]
    return few_shot_prompt(test["text"], demos, len(demos), instruction)


def pool_torch(test, pool, k, label_words, seed, instruction=INSTR):
    """Correct too: a torch.Generator of its own, labels dealt out from a shuffled list."""
    g = torch.Generator().manual_seed(seed)
    n = len(label_words)
    labels = [lab for lab in range(n) for _ in range(k // n)]
    labels += [int(i) for i in torch.randperm(n, generator=g)[:k % n]]
    demos = []
    for lab in range(n):
        mine = [r for r in pool if r["label"] == lab and r["text"] != test["text"]]
        need = labels.count(lab)
        if need > len(mine):
            raise ValueError(f"not enough {label_words[lab]} reviews")
        demos += [mine[int(i)] for i in torch.randperm(len(mine), generator=g)[:need]]
    demos = [demos[int(i)] for i in torch.randperm(len(demos), generator=g)]
    return few_shot_prompt(test["text"], [(d["text"], label_words[d["label"]]) for d in demos],
                           k, instruction)


def _per_label(test, pool, k, label_words, rng, keep=lambda r, t: r["text"] != t["text"]):
    n = len(label_words)
    extra = rng.sample(range(n), k % n)
    out = []
    for lab in range(n):
        mine = [r for r in pool if r["label"] == lab and keep(r, test)]
        need = k // n + (lab in extra)
        if len(mine) < need:
            raise ValueError(f"not enough {label_words[lab]!r} reviews")
        out += rng.sample(mine, need)
    return out


def _prompt(test, rows, label_words, instruction):
    return few_shot_prompt(test["text"], [(r["text"], label_words[r["label"]]) for r in rows],
                           len(rows), instruction)


def pool_leaks_test(test, pool, k, label_words, seed, instruction=INSTR):
    rng = random.Random(seed)
    rows = _per_label(test, pool, k, label_words, rng, keep=lambda r, t: True)
    rng.shuffle(rows)
    return _prompt(test, rows, label_words, instruction)


def pool_drops_by_id(test, pool, k, label_words, seed, instruction=INSTR):
    rng = random.Random(seed)
    rows = _per_label(test, pool, k, label_words, rng, keep=lambda r, t: r["id"] != t["id"])
    rng.shuffle(rows)
    return _prompt(test, rows, label_words, instruction)


def pool_sample(test, pool, k, label_words, seed, instruction=INSTR):
    rows = [r for r in pool if r["text"] != test["text"]]
    return _prompt(test, random.Random(seed).sample(rows, k), label_words, instruction)


def pool_choices(test, pool, k, label_words, seed, instruction=INSTR):
    rng = random.Random(seed)
    n = len(label_words)
    rows = []
    for i in range(k):
        lab = i % n if k % n == 0 else rng.randrange(n) if i >= k - k % n else i % n
        mine = [r for r in pool if r["label"] == lab and r["text"] != test["text"]]
        if not mine:
            raise ValueError(f"no {label_words[lab]!r} reviews")
        rows.append(rng.choice(mine))
    rng.shuffle(rows)
    return _prompt(test, rows, label_words, instruction)


def pool_global_random(test, pool, k, label_words, seed, instruction=INSTR):
    rows = _per_label(test, pool, k, label_words, random)  # the module, not a seeded generator
    random.shuffle(rows)
    return _prompt(test, rows, label_words, instruction)


def pool_reseeds(test, pool, k, label_words, seed, instruction=INSTR):
    random.seed(seed)
    rows = _per_label(test, pool, k, label_words, random)
    random.shuffle(rows)
    return _prompt(test, rows, label_words, instruction)


def pool_torch_global(test, pool, k, label_words, seed, instruction=INSTR):
    torch.manual_seed(seed)
    rows = _per_label(test, pool, k, label_words, random.Random(seed))
    rows = [rows[int(i)] for i in torch.randperm(len(rows))]
    return _prompt(test, rows, label_words, instruction)


def pool_seed_unused(test, pool, k, label_words, seed, instruction=INSTR):
    rng = random.Random(42)
    rows = _per_label(test, pool, k, label_words, rng)
    rng.shuffle(rows)
    return _prompt(test, rows, label_words, instruction)


def pool_not_shuffled(test, pool, k, label_words, seed, instruction=INSTR):
    return _prompt(test, _per_label(test, pool, k, label_words, random.Random(seed)),
                   label_words, instruction)


def pool_round_robin(test, pool, k, label_words, seed, instruction=INSTR):
    rng = random.Random(seed)
    groups = [rng.sample(g, len(g)) for g in
              ([r for r in pool if r["label"] == lab and r["text"] != test["text"]]
               for lab in range(len(label_words)))]
    need = -(-k // len(label_words))
    for lab, g in enumerate(groups):
        if len(g) < k // len(label_words):
            raise ValueError(f"too few {label_words[lab]!r}")
    rows = [g[i] for i in range(need) for g in groups if i < len(g)][:k]
    return _prompt(test, rows, label_words, instruction)


def pool_silently_short(test, pool, k, label_words, seed, instruction=INSTR):
    rng = random.Random(seed)
    n = len(label_words)
    extra = rng.sample(range(n), k % n)
    rows = []
    for lab in range(n):
        mine = [r for r in pool if r["label"] == lab and r["text"] != test["text"]]
        rows += rng.sample(mine, min(len(mine), k // n + (lab in extra)))
    rng.shuffle(rows)
    return _prompt(test, rows, label_words, instruction)


def pool_pops(test, pool, k, label_words, seed, instruction=INSTR):
    """No check at all: an empty label list fails inside pop()."""
    rng = random.Random(seed)
    n = len(label_words)
    extra = rng.sample(range(n), k % n)
    rows = []
    for lab in range(n):
        mine = [r for r in pool if r["label"] == lab and r["text"] != test["text"]]
        rng.shuffle(mine)
        rows += [mine.pop() for _ in range(k // n + (lab in extra))]
    rng.shuffle(rows)
    return _prompt(test, rows, label_words, instruction)


def pool_vague_error(test, pool, k, label_words, seed, instruction=INSTR):
    try:
        return pool_pops(test, pool, k, label_words, seed, instruction)
    except IndexError:
        raise ValueError("pool too small") from None


def pool_at_most(test, pool, k, label_words, seed, instruction=INSTR):
    n = len(label_words)
    for lab in range(n):
        if sum(r["label"] == lab and r["text"] != test["text"] for r in pool) <= k // n:
            raise ValueError(f"not enough {label_words[lab]!r} reviews")
    return few_shot_from_pool(test, pool, k, label_words, seed, instruction)


def pool_per_label_k(test, pool, k, label_words, seed, instruction=INSTR):
    rng = random.Random(seed)
    rows = []
    for lab in range(len(label_words)):
        mine = [r for r in pool if r["label"] == lab and r["text"] != test["text"]]
        if len(mine) < k:
            raise ValueError(f"not enough {label_words[lab]!r} reviews")
        rows += rng.sample(mine, k)
    rng.shuffle(rows)
    return _prompt(test, rows, label_words, instruction)


def pool_filters_after(test, pool, k, label_words, seed, instruction=INSTR):
    rng = random.Random(seed)
    rows = [r for r in _per_label(test, pool, k, label_words, rng, keep=lambda r, t: True)
            if r["text"] != test["text"]]
    rng.shuffle(rows)
    return _prompt(test, rows, label_words, instruction)


def pool_fixed_instruction(test, pool, k, label_words, seed, instruction=INSTR):
    return few_shot_from_pool(test, pool, k, label_words, seed)


def pool_shuffles_in_place(test, pool, k, label_words, seed, instruction=INSTR):
    rng = random.Random(seed)
    rng.shuffle(pool)
    return few_shot_from_pool(test, pool, k, label_words, seed, instruction)


def pool_label_index(test, pool, k, label_words, seed, instruction=INSTR):
    rng = random.Random(seed)
    rows = _per_label(test, pool, k, label_words, rng)
    rng.shuffle(rows)
    return few_shot_prompt(test["text"], [(r["text"], str(r["label"])) for r in rows], k,
                           instruction)


# ---- 04.2 choosing a label by likelihood
def ll_learner(model, tokenizer, prompt, labels, normalise=False):
    """A correct solution written the way a learner would: one forward per label."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    scores = []
    for label in labels:
        label_ids = tokenizer(" " + label)["input_ids"]
        ids = torch.tensor([prompt_ids + label_ids])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0], dim=-1)
        total = 0.0
        for j, tok_id in enumerate(label_ids):
            total += logp[len(prompt_ids) - 1 + j, tok_id].item()
        scores.append(total / len(label_ids) if normalise else total)
    return torch.tensor(scores)


def ll_cross_entropy(model, tokenizer, prompt, labels, normalise=False):
    """Correct too: the label tokens' cross-entropy, with the prompt's labels set to -100."""
    p = tokenizer(prompt, return_tensors="pt")["input_ids"][0]
    out = []
    for label in labels:
        lab = tokenizer(" " + label, return_tensors="pt")["input_ids"][0]
        ids = torch.cat([p, lab])[None]
        targets = ids.clone()
        targets[0, :len(p)] = -100
        with torch.no_grad():
            logits = model(ids).logits
        loss = torch.nn.functional.cross_entropy(logits[0, :-1], targets[0, 1:],
                                                 ignore_index=-100, reduction="sum")
        out.append(-loss / len(lab) if normalise else -loss)
    return torch.stack(out)


def _learner_rows(model, tokenizer, prompt, label):
    p = tokenizer(prompt)["input_ids"]
    lab = tokenizer(" " + label)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([p + lab])).logits[0]
    return p, lab, logits


def ll_raw_logits(model, tokenizer, prompt, labels, normalise=False):
    out = []
    for label in labels:
        p, lab, logits = _learner_rows(model, tokenizer, prompt, label)
        s = sum(logits[len(p) - 1 + j, t] for j, t in enumerate(lab))
        out.append(s / len(lab) if normalise else s)
    return torch.stack(out)


def ll_whole_sequence(model, tokenizer, prompt, labels, normalise=False):
    out = []
    for label in labels:
        p, lab, logits = _learner_rows(model, tokenizer, prompt, label)
        ids = torch.tensor(p + lab)
        logp = logits.log_softmax(-1)[:-1].gather(1, ids[1:, None]).sum()
        out.append(logp / len(lab) if normalise else logp)
    return torch.stack(out)


def ll_same_position(model, tokenizer, prompt, labels, normalise=False):
    out = []
    for label in labels:
        p, lab, logits = _learner_rows(model, tokenizer, prompt, label)
        logp = logits.log_softmax(-1)
        s = sum(logp[len(p) + j, t] for j, t in enumerate(lab))  # the token's own position
        out.append(s / len(lab) if normalise else s)
    return torch.stack(out)


def ll_next_token_only(model, tokenizer, prompt, labels, normalise=False):
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logp = model(ids).logits[0, -1].log_softmax(-1)
    return torch.stack([logp[tokenizer(" " + w)["input_ids"][0]] for w in labels])


def ll_per_character(model, tokenizer, prompt, labels, normalise=False):
    plain = ll_learner(model, tokenizer, prompt, labels)
    return plain / torch.tensor([float(len(w)) for w in labels]) if normalise else plain


def ll_per_prompt_token(model, tokenizer, prompt, labels, normalise=False):
    plain = ll_learner(model, tokenizer, prompt, labels)
    return plain / len(tokenizer(prompt)["input_ids"]) if normalise else plain


def ll_ignores_normalise(model, tokenizer, prompt, labels, normalise=False):
    return ll_learner(model, tokenizer, prompt, labels)


def ll_no_space(model, tokenizer, prompt, labels, normalise=False):
    p = tokenizer(prompt)["input_ids"]
    out = []
    for label in labels:
        lab = tokenizer(label)["input_ids"]
        with torch.no_grad():
            logp = model(torch.tensor([p + lab])).logits[0].log_softmax(-1)
        s = sum(logp[len(p) - 1 + j, t].item() for j, t in enumerate(lab))
        out.append(s / len(lab) if normalise else s)
    return torch.tensor(out)


def ll_softmax_probs(model, tokenizer, prompt, labels, normalise=False):
    out = []
    for label in labels:
        p, lab, logits = _learner_rows(model, tokenizer, prompt, label)
        probs = logits.softmax(-1)
        s = sum(probs[len(p) - 1 + j, t] for j, t in enumerate(lab))
        out.append(s / len(lab) if normalise else s)
    return torch.stack(out)


def ll_returns_best(model, tokenizer, prompt, labels, normalise=False):
    return labels[int(ll_learner(model, tokenizer, prompt, labels, normalise).argmax())]


# ---- 04.3 extract the answer
def ea_learner(completion):
    first = re.split(r"\n\n|\nQ:", completion)[0]
    m = re.search(r"answer is\s*:?\s*(-?[\d,]*\d)", first, flags=re.I)
    return int(m.group(1).replace(",", "")) if m else None


def ea_final_number(completion):
    found = re.findall(r"-?\d+", completion)
    return int(found[-1]) if found else None


def ea_first_number(completion):
    found = re.findall(r"\d+", completion)
    return int(found[0]) if found else None


def ea_exact_case(completion):
    m = re.search(r"The answer is:? *(-?[\d,]*\d)", re.split(r"\n\n|\nQ:", completion)[0])
    return int(m.group(1).replace(",", "")) if m else None


def ea_no_sign(completion):
    m = re.search(r"answer is\s*:?\s*([\d,]*\d)", re.split(r"\n\n|\nQ:", completion)[0], re.I)
    return int(m.group(1).replace(",", "")) if m else None


def ea_comma_stops_number(completion):
    m = re.search(r"answer is\s*:?\s*(-?\d+)", re.split(r"\n\n|\nQ:", completion)[0], re.I)
    return int(m.group(1)) if m else None


def ea_reads_everything(completion):
    m = re.search(r"answer is\s*:?\s*(-?[\d,]*\d)", completion, re.I)
    return int(m.group(1).replace(",", "")) if m else None


def ea_zero(completion):
    got = ea_learner(completion)
    return 0 if got is None else got


def ea_text(completion):
    m = re.search(r"answer is\s*:?\s*(-?[\d,]*\d)", re.split(r"\n\n|\nQ:", completion)[0], re.I)
    return m.group(1) if m else None


def ea_last_match(completion):
    found = re.findall(r"answer is\s*:?\s*(-?[\d,]*\d)", re.split(r"\n\n|\nQ:", completion)[0],
                       re.I)
    return int(found[-1].replace(",", "")) if found else None


def ea_by_hand(completion):
    """Correct too: lower-case, str.find, then read the number by hand."""
    own = re.split(r"\n\s*\n|\nQ:", completion)[0].lower()
    at = own.find("the answer is")
    if at < 0:
        return None
    rest = own[at + len("the answer is"):].lstrip()
    rest = rest[1:].lstrip() if rest.startswith(":") else rest
    m = re.match(r"-?\d[\d,]*", rest)
    return int(m.group(0).rstrip(",").replace(",", "")) if m else None


def ea_first_line_only(completion):
    line = completion.split("\n")[0]
    m = re.search(r"the answer is:?\s*(-?[\d,]*\d)", line, re.IGNORECASE)
    return int(m.group(1).replace(",", "")) if m else None


def ea_cut_at_blank_line(completion):
    own = completion.split("\n\n")[0]
    m = re.search(r"the answer is:?\s*(-?[\d,]*\d)", own, re.IGNORECASE)
    return int(m.group(1).replace(",", "")) if m else None


def ea_falsy_zero(completion):
    own = re.split(r"\n\n|\nQ:", completion)[0]
    m = re.search(r"the answer is:?\s*(-?[\d,]*\d)", own, re.IGNORECASE)
    answer = int(m.group(1).replace(",", "")) if m else 0
    return answer if answer else None


def ea_one_comma(completion):
    own = re.split(r"\n\n|\nQ:", completion)[0]
    m = re.search(r"the answer is:?\s*(-?\d+(?:,\d{3})?)", own, re.IGNORECASE)
    return int(m.group(1).replace(",", "")) if m else None


def ea_needs_dot(completion):
    own = re.split(r"\n\n|\nQ:", completion)[0]
    m = re.search(r"the answer is:?\s*(-?[\d,]*\d)\.", own, re.IGNORECASE)
    return int(m.group(1).replace(",", "")) if m else None


def ea_re_match(completion):
    own = re.split(r"\n\n|\nQ:", completion)[0]
    m = re.match(r"the answer is:?\s*(-?[\d,]*\d)", own, re.IGNORECASE)
    return int(m.group(1).replace(",", "")) if m else None


def ea_groups_of_three(completion):
    own = re.split(r"\n\n|\nQ:", completion)[0]
    m = re.search(r"the answer is:?\s*(-?\d{1,3}(?:,\d{3})*)", own, re.IGNORECASE)
    return int(m.group(1).replace(",", "")) if m else None


def ea_float(completion):
    own = re.split(r"\n\n|\nQ:", completion)[0]
    m = re.search(r"the answer is:?\s*(-?[\d,]*\d)", own, re.IGNORECASE)
    return float(m.group(1).replace(",", "")) if m else None




@pytest.mark.parametrize("ex_id, fn", [
    ("04.1", few_shot_from_pool), ("04.1", pool_learner), ("04.1", pool_torch),
    ("04.2", get_exercise("04.2").reference), ("04.2", ll_learner), ("04.2", ll_cross_entropy),
    ("04.3", extract_answer), ("04.3", ea_learner), ("04.3", ea_by_hand)])
def test_the_reference_and_a_learners_solution_pass(ex_id, fn):
    verdict = _verdict(ex_id, fn)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize("ex_id, fn, says", [
    ("04.1", pool_leaks_test, "is among its own demonstrations"),
    ("04.1", pool_leaks_test, "drop every row whose text is the test's text"),
    ("04.1", pool_drops_by_id, "compare texts, not rows"),
    ("04.1", pool_sample, "A plain sample of the pool is not balanced"),
    ("04.1", pool_choices, "a pool row appears twice"),
    ("04.1", pool_global_random, "gave different prompts"),
    ("04.1", pool_global_random, "rng = random.Random(seed)"),
    ("04.1", pool_reseeds, "random.seed(seed) resets the random state"),
    ("04.1", pool_torch_global, "changed the global random state (torch)"),
    ("04.1", pool_seed_unused, "Use the seed you are given"),
    ("04.1", pool_not_shuffled, "they come in blocks"),
    ("04.1", pool_round_robin, "Taking the labels in turn"),
    ("04.1", pool_silently_short, "raise ValueError naming that label"),
    ("04.1", pool_pops, "raised IndexError"),
    ("04.1", pool_vague_error, "name the label that is short ('neutral')"),
    ("04.1", pool_at_most, "raised ValueError: not enough 'negative' reviews"),
    ("04.1", pool_per_label_k, "raised ValueError"),
    ("04.1", pool_filters_after, "Leave the test review out before drawing, not after"),
    ("04.1", pool_fixed_instruction, "is not a few-shot prompt for the test review"),
    ("04.1", pool_shuffles_in_place, "changed its input `pool`"),
    ("04.1", pool_label_index, "is not a pool row with its own label word"),
    ("04.2", ll_raw_logits, "apply log_softmax over the vocabulary"),
    ("04.2", ll_whole_sequence, "the prompt's own tokens' log-probabilities too"),
    ("04.2", ll_same_position, "Off by one"),
    ("04.2", ll_next_token_only, "not only the first"),
    ("04.2", ll_per_character, "not by its number of characters"),
    ("04.2", ll_per_prompt_token, "not the prompt's"),
    ("04.2", ll_ignores_normalise, "With normalise=True return the mean per token"),
    ("04.2", ll_no_space, "tokenise ' ' + label"),
    ("04.2", ll_softmax_probs, "Add log-probabilities, not probabilities"),
    ("04.2", ll_returns_best, "one score per label"),
])
def test_learner_style_wrong_answers_are_rejected_with_their_reason(ex_id, fn, says):
    _assert_rejected_saying(ex_id, fn, says)


@pytest.mark.parametrize("ex_id, fn, says", [
    ("04.3", ea_final_number, "the last number in the text"),
    ("04.3", ea_first_number, "the first number in the text"),
    ("04.3", ea_exact_case, "re.IGNORECASE"),
    ("04.3", ea_no_sign, "Keep the minus sign"),
    ("04.3", ea_comma_stops_number, "thousands commas"),
    ("04.3", ea_reads_everything, "cut it at the first blank line"),
    ("04.3", ea_zero, "not 0"),
    ("04.3", ea_text, "as an int"),
    ("04.3", ea_last_match, "the first one is the answer"),
    ("04.3", ea_first_line_only, "You read only the first line"),
    ("04.3", ea_cut_at_blank_line, "Cut at a new '\\nQ:' too"),
    ("04.3", ea_falsy_zero, "0 is a real answer"),
    ("04.3", ea_one_comma, "several thousands commas"),
    ("04.3", ea_needs_dot, "don't require a '.' after it"),
    ("04.3", ea_re_match, "re.match only matches at the very start"),
    ("04.3", ea_groups_of_three, "must stay 1200"),
    ("04.3", ea_float, "should be an int"),
])
def test_known_wrong_answers_are_rejected_with_their_reason(ex_id, fn, says):
    _assert_rejected_saying(ex_id, fn, says)


@pytest.mark.parametrize("ex_id", ["04.1", "04.2", "04.3"])
def test_every_case_says_what_it_catches(ex_id):
    for case in cases_of(ex_id):
        assert case.label and case.catches, (ex_id, case)


@pytest.mark.parametrize("ex_id", ["04.1", "04.2", "04.3"])
def test_every_mistake_runs_on_every_case_and_is_wrong_somewhere(ex_id):
    ex = get_exercise(ex_id)
    cases = cases_of(ex_id)
    same = ex.compare or (lambda g, e, c: compare(g, e))
    for wrong, _ in ex.mistakes:
        wrong_somewhere = False
        for case in cases:
            ok, got = run_case(wrong, case, ex)
            assert ok, (wrong.__name__, case.label)  # must not raise
            _, want = run_case(ex.reference, case, ex)
            wrong_somewhere |= same(got, want, case) is not None
        assert wrong_somewhere, wrong.__name__


@pytest.mark.parametrize("ex_id", ["04.1", "04.2"])
def test_every_mistake_has_its_own_hint(ex_id):
    ex = get_exercise(ex_id)
    for wrong, advice in ex.mistakes:
        assert advice_on_every_case(ex_id, wrong) == advice, wrong.__name__


def test_an_unsolved_exercise_is_not_attempted():
    def stub(*args, **kwargs):
        raise NotImplementedError("Your turn")

    for ex_id in ("04.1", "04.2", "04.3"):
        assert _verdict(ex_id, stub).status == "not attempted"


def test_the_pool_grader_leaves_the_global_random_state_as_it_was():
    random.seed(5)
    torch.manual_seed(5)
    want = (random.random(), float(torch.rand(1)))
    random.seed(5)
    torch.manual_seed(5)
    _verdict("04.1", pool_reseeds)
    _verdict("04.1", pool_torch_global)
    assert (random.random(), float(torch.rand(1))) == want


def test_the_likelihood_reference_is_a_direct_computation():
    # the grader's reference against the learner-style loop above, on every case
    ex = get_exercise("04.2")
    for case in cases_of("04.2"):
        torch.testing.assert_close(ex.reference(*case.args, **case.kwargs),
                                   ll_learner(*case.args, **case.kwargs), atol=1e-4, rtol=1e-4)
