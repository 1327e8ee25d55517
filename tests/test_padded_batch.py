"""course_utils.padded_batch against torch's attention and transformers' GPT-2 on a batch."""

import pytest
import torch
import torch.nn.functional as F

from course_utils.padded_batch import padded_causal_mask, padded_position_ids
from course_utils.pretrained import load_pretrained


def test_mask_gives_each_row_its_unpadded_causal_attention():
    g = torch.Generator().manual_seed(0)
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 1, 1, 1]])
    q_len, key_len = 3, mask.shape[1]
    q = torch.randn(3, 2, q_len, 8, generator=g)
    k, v = torch.randn(3, 2, key_len, 8, generator=g), torch.randn(3, 2, key_len, 8, generator=g)
    allowed = padded_causal_mask(mask, q_len)[:, None]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    for b in range(3):
        real = mask[b] == 1
        kb, vb = k[b][:, real], v[b][:, real]
        past = kb.shape[1] - q_len
        alone = F.scaled_dot_product_attention(
            q[b], kb, vb, attn_mask=torch.ones(q_len, kb.shape[1], dtype=torch.bool).tril(past))
        torch.testing.assert_close(out[b], alone)


def test_padding_queries_see_nothing_and_right_padding_works():
    m = padded_causal_mask(torch.tensor([[0, 1, 1], [1, 1, 0]]), 3)
    assert not m[0, 0].any()
    assert m[1].tolist() == [[True, False, False], [True, True, False], [True, True, False]]


@pytest.fixture(scope="module")
def course_gpt():
    return load_pretrained("course-gpt")


def test_left_padded_batch_with_cache_matches_each_prompt_alone(course_gpt):
    """transformers' GPT-2 with our position ids: a left-padded batch, prompt then one cached
    step, gives every prompt's logits as if it were alone."""
    model, tok = course_gpt
    prompts = ["Mia went to the park with her dog.", "Omar found 5 coins."]
    ids = [tok(p, verbose=False)["input_ids"] for p in prompts]
    width = max(map(len, ids))
    batch = torch.tensor([[tok.pad_token_id] * (width - len(i)) + i for i in ids])
    mask = (torch.arange(width)[None] >= torch.tensor([width - len(i) for i in ids])[:, None])
    mask = mask.long()
    with torch.no_grad():
        out = model(batch, attention_mask=mask, position_ids=padded_position_ids(mask, width),
                    use_cache=True)
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        mask2 = torch.cat([mask, torch.ones(2, 1, dtype=torch.long)], dim=1)
        step = model(nxt, attention_mask=mask2, past_key_values=out.past_key_values,
                     position_ids=padded_position_ids(mask2, 1))
        for b, i in enumerate(ids):
            alone = model(torch.tensor([i + [int(nxt[b])]])).logits
            torch.testing.assert_close(out.logits[b, width - len(i):], alone[0, :-1],
                                       atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(step.logits[b, 0], alone[0, -1], atol=1e-4, rtol=1e-4)


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match="query_len must be"):
        padded_position_ids(torch.ones(2, 3), 4)
    with pytest.raises(ValueError, match="batch, past"):
        padded_causal_mask(torch.ones(3), 1)
