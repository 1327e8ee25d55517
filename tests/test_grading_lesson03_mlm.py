"""MLM masking (03.14): the reference against transformers' DataCollatorForLanguageModeling
(statistically), and learner-style wrong answers rejected with their messages."""

import pytest
import torch
from transformers import DataCollatorForLanguageModeling

from course_utils.grading import get_exercise, run_exercise
from course_utils.mlm import mlm_mask
from course_utils.pretrained import load_pretrained


def _verdict(fn):
    return run_exercise(get_exercise("03.14"), fn)


def _shares(inputs, labels, original, mask_id):
    chosen = labels != -100
    n = int(chosen.sum())
    return (n, float((inputs[chosen] == mask_id).float().mean()),
            float((inputs[chosen] == original[chosen]).float().mean()))


def test_reference_follows_the_same_rule_as_transformers_collator():
    _, tok = load_pretrained("course-bert")
    texts = ["Mia went to the park with her dog and they played all afternoon."] * 400
    enc = tok(texts, return_special_tokens_mask=True, return_tensors="pt")
    ids, special = enc["input_ids"], enc["special_tokens_mask"]
    collator = DataCollatorForLanguageModeling(tok, mlm=True, mlm_probability=0.15,
                                               return_tensors="pt")
    torch.manual_seed(0)
    rows = [{"input_ids": i, "special_tokens_mask": s}
            for i, s in zip(ids, special, strict=True)]
    theirs = collator(rows)
    ours = mlm_mask(ids, special, tok.mask_token_id, len(tok), torch.Generator().manual_seed(0))
    ordinary = int((special == 0).sum())
    n_t, mask_t, same_t = _shares(theirs["input_ids"], theirs["labels"], ids, tok.mask_token_id)
    n_o, mask_o, same_o = _shares(*ours, ids, tok.mask_token_id)
    assert abs(n_t / ordinary - 0.15) < 0.015 and abs(n_o / ordinary - 0.15) < 0.015
    assert abs(mask_t - mask_o) < 0.04 and abs(same_t - same_o) < 0.04
    assert not bool(((ours[1] != -100) & (special == 1)).any())


def test_the_same_generator_gives_the_same_masking():
    ids = torch.randint(5, 100, (4, 30))
    special = torch.zeros_like(ids)
    a = mlm_mask(ids, special, 4, 100, torch.Generator().manual_seed(7))
    b = mlm_mask(ids, special, 4, 100, torch.Generator().manual_seed(7))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def _base(input_ids, special_tokens_mask, mask_token_id, vocab_size, generator, p):
    chosen = (torch.rand(input_ids.shape, generator=generator) < p) & (special_tokens_mask == 0)
    return chosen, torch.rand(input_ids.shape, generator=generator)


def mlm_every_chosen_is_mask(input_ids, special_tokens_mask, mask_token_id, vocab_size,
                             generator, mlm_probability=0.15):
    chosen, _ = _base(input_ids, special_tokens_mask, mask_token_id, vocab_size, generator,
                      mlm_probability)
    return (input_ids.masked_fill(chosen, mask_token_id),
            input_ids.masked_fill(~chosen, -100))


def mlm_labels_are_mask_ids(input_ids, special_tokens_mask, mask_token_id, vocab_size,
                            generator, mlm_probability=0.15):
    chosen, draw = _base(input_ids, special_tokens_mask, mask_token_id, vocab_size, generator,
                         mlm_probability)
    inputs = input_ids.masked_fill(chosen & (draw < 0.8), mask_token_id)
    return inputs, inputs.masked_fill(~chosen, -100)


def mlm_chooses_specials(input_ids, special_tokens_mask, mask_token_id, vocab_size, generator,
                         mlm_probability=0.15):
    chosen = torch.rand(input_ids.shape, generator=generator) < mlm_probability
    draw = torch.rand(input_ids.shape, generator=generator)
    inputs = input_ids.masked_fill(chosen & (draw < 0.8), mask_token_id)
    return inputs, input_ids.masked_fill(~chosen, -100)


def mlm_labels_zero_elsewhere(input_ids, special_tokens_mask, mask_token_id, vocab_size,
                              generator, mlm_probability=0.15):
    chosen, draw = _base(input_ids, special_tokens_mask, mask_token_id, vocab_size, generator,
                         mlm_probability)
    inputs = input_ids.masked_fill(chosen & (draw < 0.8), mask_token_id)
    return inputs, input_ids.masked_fill(~chosen, 0)


def mlm_split_of_all_tokens(input_ids, special_tokens_mask, mask_token_id, vocab_size,
                            generator, mlm_probability=0.15):
    """The 80/10/10 draw made for every token, and tokens chosen by it."""
    draw = torch.rand(input_ids.shape, generator=generator)
    chosen = (draw < mlm_probability) & (special_tokens_mask == 0)
    inputs = input_ids.masked_fill(chosen & (draw < 0.8 * mlm_probability), mask_token_id)
    return inputs, input_ids.masked_fill(~chosen, -100)


def mlm_fixed_015(input_ids, special_tokens_mask, mask_token_id, vocab_size, generator,
                  mlm_probability=0.15):
    return get_exercise("03.14").reference(input_ids, special_tokens_mask, mask_token_id,
                                           vocab_size, generator, 0.15)


def mlm_random_is_always_one_token(input_ids, special_tokens_mask, mask_token_id, vocab_size,
                                   generator, mlm_probability=0.15):
    chosen, draw = _base(input_ids, special_tokens_mask, mask_token_id, vocab_size, generator,
                         mlm_probability)
    inputs = input_ids.masked_fill(chosen & (draw < 0.8), mask_token_id)
    inputs = inputs.masked_fill(chosen & (draw >= 0.8) & (draw < 0.9), 7)
    return inputs, input_ids.masked_fill(~chosen, -100)


def mlm_ok_bernoulli(input_ids, special_tokens_mask, mask_token_id, vocab_size, generator,
                     mlm_probability=0.15):
    """transformers' own recipe: Bernoulli draws, 80% of chosen -> mask, half the rest random."""
    probs = torch.full(input_ids.shape, mlm_probability)
    probs.masked_fill_(special_tokens_mask.bool(), 0.0)
    chosen = torch.bernoulli(probs, generator=generator).bool()
    labels = input_ids.clone()
    labels[~chosen] = -100
    inputs = input_ids.clone()
    masked = torch.bernoulli(torch.full(input_ids.shape, 0.8), generator=generator).bool()
    masked &= chosen
    inputs[masked] = mask_token_id
    rand = torch.bernoulli(torch.full(input_ids.shape, 0.5), generator=generator).bool()
    rand &= chosen & ~masked
    inputs[rand] = torch.randint(vocab_size, input_ids.shape, generator=generator)[rand]
    return inputs, labels


@pytest.mark.parametrize("wrong, why", [
    (mlm_every_chosen_is_mask, "80% become [MASK]"),
    (mlm_labels_are_mask_ids, "your labels hold the [MASK] id"),
    (mlm_chooses_specials, "a special token ([CLS], [SEP], padding) was chosen"),
    (mlm_labels_zero_elsewhere, "its label must be the original token id"),
    (mlm_split_of_all_tokens, "80% become [MASK]"),
    (mlm_fixed_015, "(mlm_probability = 0.5)"),
    (mlm_random_is_always_one_token, "nearly all the same token"),
])
def test_known_wrong_answer_is_rejected_with_a_specific_message(wrong, why):
    result = _verdict(wrong)
    assert result.status == "failed", wrong.__name__
    assert why in result.message, result.message


def test_reference_and_transformers_recipe_are_accepted():
    assert _verdict(get_exercise("03.14").reference).passed
    result = _verdict(mlm_ok_bernoulli)
    assert result.passed, result.message


def test_cases_and_mistakes_meet_the_standard():
    ex = get_exercise("03.14")
    cases = list(ex.cases(torch.Generator().manual_seed(ex.seed)))
    assert all(c.label and c.catches for c in cases)
    for wrong, hint in ex.mistakes:
        for case in list(ex.cases(torch.Generator().manual_seed(ex.seed))):
            wrong(*case.args, **case.kwargs)
        result = run_exercise(ex, wrong)
        assert result.status == "failed" and hint in result.message, result.message
