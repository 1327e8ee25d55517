"""course_utils.prompting: prompt builders against hand-written prompts, batched generation and
scoring against one-prompt-at-a-time transformers runs, answer reading, votes and intervals."""

from __future__ import annotations

import math
import time

import pytest
import torch
from _tiny_lm import tiny_gpt2

from course_utils import prompting as P
from course_utils.lm import left_pad, shared_prompt_cache
from course_utils.pretrained.tokenizer_build import train_gpt_tokenizer

TEXTS = ["Review: the food was great.\nSentiment: good\n\n",
         "Review: the film was bad.\nSentiment: bad\n\n",
         "Q: Mia has 3 cats. Leo gives Mia 4 more cats.\nA: 3 + 4 = 7. The answer is 7.\n\n",
         "Once upon a time there was a cat who sat on a mat in the park."] * 10
PROMPTS = ["Review: the food", "Q: Mia has 3 cats. Leo gives", "Once", "Review: the film was"]


@pytest.fixture(scope="module")
def tok():
    return train_gpt_tokenizer(TEXTS, vocab_size=400, model_max_length=48)


@pytest.fixture(scope="module")
def model(tok):
    m = tiny_gpt2(len(tok), n_positions=48, tokenizer=tok, tie_word_embeddings=False).eval()
    with torch.no_grad():
        m.lm_head.weight.mul_(40)  # varied, confident next tokens
    return m


# ------------------------------------------------------------------------------ builders
DEMOS = [("Great soup.", "positive"), ("Cold food.", "negative"), ("It was fine.", "neutral")]


def test_few_shot_prompt_is_the_pretraining_format():
    expected = ("Is each review positive, negative or neutral?\n\n"
                "Review: Great soup.\nSentiment: positive\n\n"
                "Review: Cold food.\nSentiment: negative\n\n"
                "Review: Nice hat.\nSentiment:")
    assert P.few_shot_prompt("Nice hat.", DEMOS, k=2) == expected
    assert P.few_shot_prompt("Nice hat.", DEMOS).count("Review:") == 4
    assert P.zero_shot_prompt("Nice hat.") == ("Is each review positive, negative or neutral?"
                                               "\n\nReview: Nice hat.\nSentiment:")
    assert P.few_shot_prompt("X", DEMOS, 1, instruction=None) == \
        "Review: Great soup.\nSentiment: positive\n\nReview: X\nSentiment:"


@pytest.mark.parametrize("k", [-1, 4, 1.5, True])
def test_few_shot_prompt_rejects_a_bad_k(k):
    with pytest.raises(ValueError, match="k must be an int between 0 and"):
        P.few_shot_prompt("x", DEMOS, k)


def test_few_shot_prompt_rejects_examples_that_are_not_pairs():
    with pytest.raises(TypeError, match=r"examples\[1\] must be a pair"):
        P.few_shot_prompt("x", [("a", "b"), ("c",)])
    with pytest.raises(TypeError, match="list of"):
        P.few_shot_prompt("x", "ab")


def test_choose_examples_is_balanced_and_seeded():
    pool = [{"text": f"r{i}", "label": i % 3} for i in range(30)]
    words = ("negative", "neutral", "positive")
    picks = P.choose_examples(pool, 7, words, seed=1)
    counts = [sum(lab == w for _, lab in picks) for w in words]
    assert sorted(counts) == [2, 2, 3] and len({t for t, _ in picks}) == 7
    assert all(words[int(t[1:]) % 3] == lab for t, lab in picks)
    assert picks == P.choose_examples(pool, 7, words, seed=1)
    assert picks != P.choose_examples(pool, 7, words, seed=2)
    assert len(P.choose_examples(pool, 5, words, balanced=False)) == 5
    with pytest.raises(ValueError, match="a balanced set of k=31 needs 11 "):
        P.choose_examples(pool, 31, words)
    with pytest.raises(ValueError, match="more than the 30 rows"):
        P.choose_examples(pool, 31, words, balanced=False)


def test_order_examples():
    demos = [("a", "positive"), ("b", "negative"), ("c", "neutral"), ("d", "negative")]
    words = ("negative", "neutral", "positive")
    assert [t for t, _ in P.order_examples(demos, "grouped", words)] == ["b", "d", "c", "a"]
    assert P.order_examples(demos, "reversed") == demos[::-1]
    shuffled = P.order_examples(demos, "shuffled", seed=3)
    assert sorted(shuffled) == sorted(demos)
    assert P.order_examples(demos) == demos and demos[0] == ("a", "positive")  # not in place
    with pytest.raises(ValueError, match="order must be one of"):
        P.order_examples(demos, "alphabetical")


def test_word_problem_prompts_direct_and_chain_of_thought():
    demo = [("Ann has 2 cups. Bo gives Ann 3 more cups. How many cups does Ann have now?",
             "Ann has 2 + 3 = 5. The answer is 5.")]
    q = "Tim has 4 pens. How many pens?"
    assert P.word_problem_prompt(q, demo) == (
        "Q: Ann has 2 cups. Bo gives Ann 3 more cups. How many cups does Ann have now?\n"
        "A: Ann has 2 + 3 = 5. The answer is 5.\n\nQ: Tim has 4 pens. How many pens?\nA:")
    assert P.word_problem_prompt(q, demo, chain_of_thought=False) == (
        "Q: Ann has 2 cups. Bo gives Ann 3 more cups. How many cups does Ann have now?\n"
        "A: The answer is 5.\n\nQ: Tim has 4 pens. How many pens?\nA: The answer is")


def test_chat_and_role_prompts_use_the_chat_template(tok):
    msgs = P.chat_messages("Tell me a story.", system="You are a storyteller.",
                           history=[("Hi", "Hello!")])
    # an earlier assistant turn ends with the eos token, its end-of-turn token
    assert P.chat_prompt(tok, msgs) == ("System: You are a storyteller.\nUser: Hi\n"
                                        "Assistant: Hello!<|endoftext|>\n"
                                        "User: Tell me a story.\nAssistant:")
    assert P.role_prompt(tok, "a pirate", "Say hi.") == \
        "System: You are a pirate.\nUser: Say hi.\nAssistant:"
    with pytest.raises(ValueError, match="role"):
        P.chat_prompt(tok, [{"role": "robot", "content": "x"}])
    bare = train_gpt_tokenizer(TEXTS[:4], vocab_size=300)
    bare.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        P.chat_prompt(bare, msgs)


def test_templates_fill_every_slot_or_say_which_is_wrong():
    t = "Write a {tone} poem about {topic}. Make the {topic} the hero."
    assert P.template_slots(t) == ["tone", "topic"]
    assert P.fill_template(t, tone="sad", topic="cat") == \
        "Write a sad poem about cat. Make the cat the hero."
    with pytest.raises(ValueError, match=r"missing \['topic'\]"):
        P.fill_template(t, tone="sad")
    with pytest.raises(ValueError, match=r"unknown \['mood'\]"):
        P.fill_template(t, tone="sad", topic="cat", mood="x")
    with pytest.raises(ValueError, match=r"empty \['tone'\]"):
        P.fill_template(t, tone="  ", topic="cat")
    with pytest.raises(ValueError, match="slots must be names"):
        P.template_slots("a {0} b")


def test_conditional_prompt_branches_on_the_user():
    branches = {"beginner": "Explain {topic} to {name} in one simple sentence.",
                "expert": "Explain {topic} in depth."}
    ann = {"name": "Ann", "level": "beginner", "topic": "attention"}
    assert P.conditional_prompt(ann, "level", branches) == \
        "Explain attention to Ann in one simple sentence."
    assert P.conditional_prompt({**ann, "level": "expert"}, "level", branches) == \
        "Explain attention in depth."
    with pytest.raises(ValueError, match="no branch for level='child'"):
        P.conditional_prompt({**ann, "level": "child"}, "level", branches)
    assert P.conditional_prompt({**ann, "level": "child"}, "level", branches,
                                default="Tell {name} about {topic}.") == \
        "Tell Ann about attention."
    with pytest.raises(ValueError, match="has no 'age'"):
        P.conditional_prompt(ann, "age", branches)


def test_iterative_refinement_feeds_each_output_forward():
    calls = []

    def fake(prompt: str) -> str:
        calls.append(prompt)
        return f"<{len(calls)}>"

    trace = P.iterative_refinement(fake, ["Draft about {task}.", "Improve: {previous}",
                                          "Shorten {previous} for {task}."], task="owls")
    assert calls == ["Draft about owls.", "Improve: <1>", "Shorten <2> for owls."]
    assert [o for _, o in trace] == ["<1>", "<2>", "<3>"]
    with pytest.raises(ValueError, match="step 1 must use"):
        P.iterative_refinement(fake, ["a", "b"])
    with pytest.raises(ValueError, match="step 0 must not"):
        P.iterative_refinement(fake, ["{previous}"])


# ---------------------------------------------------------------------------------- runner
def test_left_pad():
    ids, mask, _ = left_pad([[5, 6, 7], [8]], 0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_batched_generation_matches_one_prompt_at_a_time(model, tok):
    batched = P.generate_batch(model, tok, PROMPTS, 8, batch_size=4, stop=())
    for prompt, got in zip(PROMPTS, batched, strict=True):
        ids = tok(prompt, return_tensors="pt")["input_ids"]
        ref = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=8,
                             do_sample=False, pad_token_id=tok.pad_token_id)
        assert got == tok.decode(ref[0, ids.shape[1]:], skip_special_tokens=True)
    assert len(set(batched)) > 1  # the model does say different things


def test_label_scores_match_an_unpadded_forward(model, tok):
    words = ["food", "cat", "film"]
    scores = P.label_scores(model, tok, PROMPTS, words, batch_size=3)
    ids = [tok(" " + w)["input_ids"][0] for w in words]
    for row, prompt in zip(scores, PROMPTS, strict=True):
        x = tok(prompt, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            ref = torch.log_softmax(model(x).logits[0, -1], -1)[ids]
        torch.testing.assert_close(row, ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="not one"):
        P.label_scores(model, tok, PROMPTS, ["food", "zebracorn"])


def _direct_label_logprob(model, tok, prompt, word, keep=None):
    """log p(" " + word | prompt) from one unpadded transformers forward, token by token."""
    p = tok(prompt)["input_ids"]
    w = tok(" " + word)["input_ids"]
    p = p[-keep:] if keep else p
    with torch.no_grad():
        logits = model(torch.tensor([p + w])).logits[0]
    total = 0.0
    for j, t in enumerate(w):
        total += torch.log_softmax(logits[len(p) - 1 + j].double(), -1)[t].item()
    return total, len(w)


@pytest.mark.parametrize("normalise", [False, True])
def test_label_logprobs_match_a_direct_forward_on_multi_token_words(model, tok, normalise):
    words = ["zebracorn", "food", "the film was", "cat sat"]
    assert max(len(tok(" " + w)["input_ids"]) for w in words) > 1
    got = P.label_logprobs(model, tok, PROMPTS, words, normalise=normalise, batch_size=3)
    assert got.shape == (len(PROMPTS), len(words))
    for row, prompt in zip(got, PROMPTS, strict=True):
        for score, word in zip(row.tolist(), words, strict=True):
            total, n = _direct_label_logprob(model, tok, prompt, word)
            assert score == pytest.approx(total / n if normalise else total, abs=1e-4)
    one = P.label_logprobs(model, tok, PROMPTS[1], words, normalise=normalise)
    torch.testing.assert_close(one, got[1], atol=1e-5, rtol=1e-5)


def test_label_logprobs_of_one_token_words_are_the_next_token_scores(model, tok):
    words = ["food", "cat", "film"]
    scores = P.label_scores(model, tok, PROMPTS, words)
    torch.testing.assert_close(P.label_logprobs(model, tok, PROMPTS, words), scores)
    torch.testing.assert_close(P.label_logprobs(model, tok, PROMPTS, words, normalise=True),
                               scores)


def test_label_logprobs_keep_the_end_of_a_prompt_too_long_for_the_context(model, tok):
    long = "Review: the food was great. " * 12  # more than the 48 positions
    words = ["zebracorn", "food"]
    longest = max(len(tok(" " + w)["input_ids"]) for w in words)
    with pytest.warns(UserWarning, match="lost their beginning"):
        got = P.label_logprobs(model, tok, long, words)
    for score, word in zip(got.tolist(), words, strict=True):
        total, _ = _direct_label_logprob(model, tok, long, word, keep=48 - longest)
        assert score == pytest.approx(total, abs=1e-4)


def test_label_logprobs_say_what_is_wrong_with_the_labels(model, tok):
    with pytest.raises(ValueError, match="non-empty list of words"):
        P.label_logprobs(model, tok, PROMPTS, [])
    with pytest.raises(ValueError, match="non-empty list of words"):
        P.label_logprobs(model, tok, PROMPTS, "food")
    with pytest.raises(ValueError, match="no room for a prompt"):
        P.label_logprobs(model, tok, PROMPTS, ["food " * 60])


def test_by_label_scores_chooses_multi_token_labels_by_likelihood(model, tok):
    words = ["zebracorn", "the film was"]
    for normalise in (False, True):
        preds, _ = P.by_label_scores(model, tok, words, normalise=normalise)(PROMPTS)
        want = [max(range(2), key=lambda j, p=p: (lambda t, n: t / n if normalise else t)(
            *_direct_label_logprob(model, tok, p, words[j]))) for p in PROMPTS]
        assert preds == want


def test_sampling_is_seeded_and_leaves_the_global_rng_alone(model, tok):
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = P.generate_batch(model, tok, PROMPTS, 6, do_sample=True, num_return_sequences=3,
                         seed=5, stop=())
    assert torch.rand(1) == before
    b = P.generate_batch(model, tok, PROMPTS, 6, do_sample=True, num_return_sequences=3,
                         seed=5, stop=())
    assert a == b and len(a) == len(PROMPTS) and all(len(x) == 3 for x in a)
    with pytest.raises(ValueError, match="needs do_sample"):
        P.generate_batch(model, tok, PROMPTS, 4, num_return_sequences=2)


def test_stop_strings_cut_and_long_prompts_warn(model, tok):
    full = P.generate_batch(model, tok, PROMPTS[:1], 10, stop=())[0]
    assert len(full) > 2
    stop = full[2:4]
    assert P.generate_batch(model, tok, PROMPTS[:1], 10, stop=(stop,))[0] == \
        full[:full.index(stop)]
    with pytest.warns(UserWarning, match="lost their beginning"):
        P.generate_batch(model, tok, ["Once upon a time " * 20], 4)
    with pytest.raises(TypeError, match="list of strings"):
        P.generate_batch(model, tok, "Once", 4)


def test_a_hub_model_fails_fast_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(OSError, match="course-gpt"):
        P.load_model("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert time.perf_counter() - start < 5


# --------------------------------------------------------------------------------- harness
@pytest.mark.parametrize("text, expected", [
    (" 3 + 4 = 7. The answer is 7.", 7),
    (" the answer is: -12.", -12),
    (" So THE ANSWER IS 1,200 apples.", 1200),
    (" 5 * 3 = 15. The answer is 15, I think.", 15),
    (" 3 + 4 = 7.\n\nQ: Ann has 9 cups.\nA: The answer is 9.", None),
    (" 3 + 4 = 7. The answer is 7.\nQ: next\nA: The answer is 9.", 7),
    (" I have 12 apples and 3 pears.", None),
    ("", None),
])
def test_extract_answer(text, expected):
    assert P.extract_answer(text) == expected


def test_extract_label():
    words = ("negative", "neutral", "positive")
    assert P.extract_label(" Positive, clearly", words) == "positive"
    assert P.extract_label(" neutral or negative", words) == "neutral"
    assert P.extract_label(" nonpositive\npositive", words) is None
    assert P.extract_label("", words) is None


@pytest.mark.parametrize("answers, expected", [
    ([3, 5, 3], 3), ([None, None, 4], 4), ([], None), ([None, None], None),
    ([5, 7, 7, 5], 5), ([7, 5, 5, 7], 7), (["yes", "no", "no"], "no"),
])
def test_majority_vote(answers, expected):
    assert P.majority_vote(answers) == expected


def _wilson_by_root_finding(k: int, n: int, z: float) -> tuple[float, float]:
    """The Wilson bounds are the p where |k/n - p| = z * sqrt(p (1 - p) / n): bisect for them."""
    f = lambda p: (k / n - p) ** 2 - z * z * p * (1 - p) / n  # noqa: E731

    def root(lo, hi):
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if (f(lo) > 0) == (f(mid) > 0) else (lo, mid)
        return (lo + hi) / 2
    phat = k / n
    return (0.0 if k == 0 else root(0.0, phat)), (1.0 if k == n else root(phat, 1.0))


@pytest.mark.parametrize("k, n", [(0, 10), (10, 10), (7, 20), (45, 90), (1, 60), (59, 60)])
def test_wilson_interval_solves_its_defining_equation(k, n):
    low, high = P.wilson_interval(k, n)
    ref_low, ref_high = _wilson_by_root_finding(k, n, 1.959963984540054)
    assert math.isclose(low, ref_low, abs_tol=1e-9) and math.isclose(high, ref_high, abs_tol=1e-9)
    assert 0 <= low <= k / n <= high <= 1


def test_wilson_interval_textbook_value_and_errors():
    # Newcombe (1998), Statistics in Medicine 17:857, Table I: 81/263 -> 0.2553 to 0.3662
    low, high = P.wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    with pytest.raises(ValueError, match="correct must be"):
        P.wilson_interval(11, 10)
    with pytest.raises(ValueError, match="n must be"):
        P.wilson_interval(0, 0)


def test_evaluate_counts_correct_answers_and_reports_an_interval():
    rows = [{"q": str(i), "answer": i} for i in range(10)]

    def predict(prompts):
        return [int(p) if int(p) < 7 else None for p in prompts], list(prompts)

    ev = P.evaluate("half", rows, lambda r: r["q"], predict, target="answer")
    assert (ev.correct, ev.n, ev.accuracy) == (7, 10, 0.7)
    assert (ev.low, ev.high) == P.wilson_interval(7, 10)
    assert ev.row()["strategy"] == "half" and ev.prompts[3] == "3"
    with pytest.raises(ValueError, match="returned 1 predictions"):
        P.evaluate("bad", rows, lambda r: r["q"], lambda ps: ([1], [1]), target="answer")


def test_predictors_run_on_a_model(model, tok):
    rows = [{"text": "the food", "label": 0}, {"text": "the film", "label": 1}]
    build = lambda r: f"Review: {r['text']}"  # noqa: E731
    words = ["food", "film"]
    ev = P.evaluate("scores", rows, build, P.by_label_scores(model, tok, words))
    ref = P.label_scores(model, tok, [build(r) for r in rows], words).argmax(-1).tolist()
    assert ev.predictions == ref
    ev = P.evaluate("gen", rows, build, P.by_generated_label(model, tok, words))
    assert all(p in (0, 1, None) for p in ev.predictions)
    probs = [{"q": "Q: Mia has 3 cats. Leo gives", "answer": 7}]
    sc = P.by_self_consistency(model, tok, n_samples=3, max_new_tokens=6)
    preds, chains = sc([probs[0]["q"]])
    assert len(chains[0]) == 3 and preds[0] == P.majority_vote(
        [P.extract_answer(c) for c in chains[0]])
    direct = P.by_answer(model, tok, direct=True, max_new_tokens=4)
    preds, texts = direct([probs[0]["q"]])
    assert preds[0] == P.extract_answer("The answer is" + texts[0])


def _ev(name, outcomes):
    rows = list(range(len(outcomes)))
    preds = [r if ok else -1 for r, ok in zip(rows, outcomes, strict=True)]
    return P.evaluate(name, [{"label": r} for r in rows], str, lambda ps: (preds, ps))


def test_gain_on_the_same_rows_is_paired():
    # 30 rows: both right on 15, only a on 9, only b on 1, both wrong on 5
    a = _ev("a", [True] * 15 + [True] * 9 + [False] * 1 + [False] * 5)
    b = _ev("b", [True] * 15 + [False] * 9 + [True] * 1 + [False] * 5)
    assert P.same_items(a, b) and a.outcomes()[:25] == [True] * 24 + [False]
    (d, low, high), test = P.paired(a, b)
    assert (test.a_only, test.b_only) == (9, 1)
    assert test.p_value == pytest.approx(2 * (1 + 10) / 2 ** 10)  # two-sided binomial, 1 of 10
    assert d == pytest.approx(8 / 30) and low <= d <= high
    sentence = P.gain(a, b)
    assert "McNemar exact p = 0.021" in sentence and "a clear gain" in sentence
    assert "a clear loss" in P.gain(b, a) and "not distinguishable" in P.gain(a, a)
    c = _ev("c", [True] * 20)
    with pytest.raises(ValueError, match="did not answer the same rows"):
        P.paired(a, c)
    assert "independent samples" in P.gain(a, c)


def test_subset_keeps_the_chosen_rows_and_recomputes_the_interval():
    ev = _ev("all", [True, False, True, True, False, False])
    part = P.subset(ev, [0, 1, 3], "part")
    assert (part.correct, part.n, part.accuracy) == (2, 3, 2 / 3)
    assert (part.low, part.high) == P.wilson_interval(2, 3)
    assert part.prompts == [ev.prompts[i] for i in (0, 1, 3)] and part.outcomes() == [
        True, False, True]
    with pytest.raises(ValueError, match="indices below 6"):
        P.subset(ev, [6], "bad")
    with pytest.raises(ValueError, match="non-empty"):
        P.subset(ev, [], "bad")


def test_reports_table_and_chart():
    import matplotlib

    matplotlib.use("Agg")
    rows = [{"q": str(i), "answer": i} for i in range(4)]
    evs = [P.evaluate(name, rows, lambda r: r["q"], lambda ps, c=c: ([int(p) if int(p) < c
                      else None for p in ps], ps), target="answer")
           for name, c in (("half", 2), ("all", 4))]
    table = P.format_table(evs)
    assert "half" in table and "50.0%" in table and "4/4" in table
    ax = P.plot_evaluations(evs, chance=0.25)
    assert [round(b.get_height(), 2) for b in ax.patches] == [0.5, 1.0]


def test_samples_branch_off_one_reading_of_the_prompt(model, tok):
    # top_k=1 sampling is greedy, so every copy must equal the plain one-prompt greedy output
    copies = P.generate_batch(model, tok, PROMPTS, 8, do_sample=True, top_k=1,
                              num_return_sequences=3, stop=())
    for prompt, got in zip(PROMPTS, copies, strict=True):
        ids = tok(prompt, return_tensors="pt")["input_ids"]
        ref = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=8,
                             do_sample=False, pad_token_id=tok.pad_token_id)
        assert got == [tok.decode(ref[0, ids.shape[1]:], skip_special_tokens=True)] * 3
    ids, mask, _ = left_pad([tok(p)["input_ids"] for p in PROMPTS], tok.pad_token_id)
    cache = shared_prompt_cache(model, ids, mask, 2)
    assert cache.get_seq_length() == ids.shape[1] - 1


def test_difference_matches_newcombes_worked_example():
    # Newcombe (1998), Statistics in Medicine 17:873, method 10: 56/70 - 48/80 -> 0.0524 to 0.3339
    a = P.Evaluation("a", 56 / 70, *P.wilson_interval(56, 70), 56, 70, 0.0)
    b = P.Evaluation("b", 48 / 80, *P.wilson_interval(48, 80), 48, 80, 0.0)
    d, low, high = P.difference(a, b)
    assert (round(d, 4), round(low, 4), round(high, 4)) == (0.2, 0.0524, 0.3339)
    assert "a clear gain" in P.gain(a, b) and "a clear loss" in P.gain(b, a)
    assert "not distinguishable" in P.gain(a, a)
