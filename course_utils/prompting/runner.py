"""Running prompts through a causal LM in batches: generation and label-word scoring.

Prompts of different lengths share a batch by **left padding**: the pad tokens go before the
prompt, so every row's last real token sits in the last column and generation continues from
there. The attention mask hides the pads and the positions are counted from each row's first
real token, so a padded row computes exactly what it would alone (the tests check this).
Sorting prompts by length before batching keeps the padding, and so the wasted work, small.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch


def load_model(name: str = "course-gpt") -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a causal LM: the bundled ``course-gpt`` or a hub name.

    The same code takes a hub instruct model (e.g. ``"HuggingFaceTB/SmolLM2-135M-Instruct"``)
    when online; offline (``HF_HUB_OFFLINE=1``) a hub name fails at once with an ``OSError``
    that names the bundled model, instead of waiting on network retries.
    """
    from transformers import AutoModelForCausalLM

    from course_utils.pretrained import BUNDLED, load_pretrained

    cls = None if name in BUNDLED else AutoModelForCausalLM
    return load_pretrained(name, model_class=cls)


def context_length(model, tokenizer) -> int:
    """How many positions the model can attend to (prompt + generated tokens)."""
    cfg = model.config
    for key in ("n_positions", "max_position_embeddings", "n_ctx"):
        if isinstance(getattr(cfg, key, None), int):
            return getattr(cfg, key)
    return int(min(tokenizer.model_max_length, 4096))


def _check_prompts(prompts: Sequence[str]) -> list[str]:
    if isinstance(prompts, str) or not isinstance(prompts, Sequence):
        raise TypeError("prompts must be a list of strings (wrap a single prompt in a list)")
    if not all(isinstance(p, str) and p for p in prompts):
        raise TypeError("every prompt must be a non-empty str")
    return list(prompts)


def _encode(tokenizer, prompts: list[str], max_len: int) -> list[list[int]]:
    """Token ids of each prompt; a prompt longer than ``max_len`` keeps its end."""
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    cut = sum(len(i) > max_len for i in ids)
    if cut:
        warnings.warn(f"{cut} prompt(s) longer than {max_len} tokens lost their beginning "
                      "(the model's context is full): use fewer or shorter examples",
                      stacklevel=3)
    return [i[-max_len:] for i in ids]


def left_pad(ids: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack token-id lists into ``(input_ids, attention_mask)``, padding on the left."""
    width = max(len(i) for i in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, seq in enumerate(ids):
        if seq:
            input_ids[row, width - len(seq):] = torch.tensor(seq)
            mask[row, width - len(seq):] = 1
    return input_ids, mask


def _batches(ids: list[list[int]], batch_size: int):
    """Indices grouped into batches of similar length (longest first)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def _pad_id(tokenizer) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None \
        else tokenizer.eos_token_id
    if pad is None:
        raise ValueError("the tokenizer has neither a pad nor an eos token: set "
                         "tokenizer.pad_token before batching")
    return pad


def cut_at_stop(text: str, stop: Sequence[str] = ()) -> str:
    """The text up to the first occurrence of any stop string."""
    for s in stop:
        if s and s in text:
            text = text[:text.index(s)]
    return text


@torch.inference_mode()
def shared_prompt_cache(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                        repeats: int):
    """Read each (left-padded) prompt once, all but its last token, and copy the KV cache
    ``repeats`` times, so several samples of one prompt branch off a single reading of it.

    ``generate`` then only has to process each copy's last prompt token: for self-consistency
    with 5 chains this skips 4 of every 5 prompt readings, most of the work.
    """
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=input_ids[:, :-1], attention_mask=attention_mask[:, :-1],
                position_ids=position_ids[:, :-1], use_cache=True, logits_to_keep=1)
    cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
    cache.batch_repeat_interleave(repeats)
    return cache


@torch.inference_mode()
def generate_batch(model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 32, *,
                   batch_size: int = 16, do_sample: bool = False, temperature: float = 1.0,
                   top_k: int | None = None, top_p: float | None = None,
                   num_return_sequences: int = 1, stop: Sequence[str] = ("\n\n",),
                   seed: int = 0) -> list[str] | list[list[str]]:
    """Continue every prompt; returns the new text only, cut at the first ``stop`` string.

    Greedy unless ``do_sample``. With ``num_return_sequences > 1`` (sampling) each prompt gets
    a list of that many continuations, branching off one reading of the prompt
    (:func:`shared_prompt_cache`). Sampling is seeded (``seed``) without touching the
    global random state, so a run is repeatable.
    """
    prompts = _check_prompts(prompts)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) \
            or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")
    if num_return_sequences > 1 and not do_sample:
        raise ValueError("num_return_sequences > 1 needs do_sample=True (greedy decoding "
                         "returns the same text every time)")
    pad = _pad_id(tokenizer)
    ids = _encode(tokenizer, prompts, context_length(model, tokenizer) - max_new_tokens)
    outputs: list = [None] * len(prompts)
    sampling = dict(do_sample=True, temperature=temperature, top_k=top_k or 0,
                    top_p=1.0 if top_p is None else top_p) if do_sample else \
        dict(do_sample=False)
    stop = [s for s in stop if s]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for batch in _batches(ids, batch_size):
            input_ids, mask = left_pad([ids[i] for i in batch], pad)
            extra: dict[str, Any] = {"num_return_sequences": num_return_sequences}
            if num_return_sequences > 1 and input_ids.shape[1] > 1:
                extra = {"cache": shared_prompt_cache(model, input_ids, mask,
                                                      num_return_sequences)}
                input_ids = input_ids.repeat_interleave(num_return_sequences, dim=0)
                mask = mask.repeat_interleave(num_return_sequences, dim=0)
            out = model.generate(
                input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                pad_token_id=pad, eos_token_id=tokenizer.eos_token_id,
                stop_strings=stop or None, tokenizer=tokenizer if stop else None,
                **sampling, **extra)
            texts = tokenizer.batch_decode(out[:, input_ids.shape[1]:], skip_special_tokens=True)
            texts = [cut_at_stop(t, stop) for t in texts]
            for j, i in enumerate(batch):
                chunk = texts[j * num_return_sequences:(j + 1) * num_return_sequences]
                outputs[i] = chunk if num_return_sequences > 1 else chunk[0]
    return outputs


def label_token_ids(tokenizer, label_words: Sequence[str]) -> list[int]:
    """The token id of ``" " + word`` for each label word; each must be one token."""
    if isinstance(label_words, str) or len(label_words) < 2:
        raise ValueError("label_words must be a list of at least two words")
    out = []
    for w in label_words:
        pieces = tokenizer(" " + w, add_special_tokens=False)["input_ids"]
        if len(pieces) != 1:
            names = tokenizer.convert_ids_to_tokens(pieces)
            raise ValueError(f"label word {w!r} is {len(pieces)} tokens {names}, not one: "
                             "scoring compares single next tokens, so choose words the "
                             "tokenizer keeps whole")
        out.append(pieces[0])
    if len(set(out)) != len(out):
        raise ValueError(f"label words {list(label_words)} share a token")
    return out


@torch.inference_mode()
def label_scores(model, tokenizer, prompts: Sequence[str], label_words: Sequence[str],
                 batch_size: int = 16) -> torch.Tensor:
    """Log-probability of each label word as the next token: ``(len(prompts), len(labels))``.

    Reading the label off these scores (the argmax) is *constrained decoding*: the model can
    only answer with one of the labels, so an answer that wanders off format still counts as
    its best guess. One forward pass per prompt, no generation.
    """
    prompts = _check_prompts(prompts)
    targets = label_token_ids(tokenizer, label_words)
    ids = _encode(tokenizer, prompts, context_length(model, tokenizer))
    scores = torch.empty(len(prompts), len(targets))
    for batch in _batches(ids, batch_size):
        input_ids, mask = left_pad([ids[i] for i in batch], _pad_id(tokenizer))
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids,
                       logits_to_keep=1).logits[:, -1, :]  # only the last position's
        scores[batch] = logits.float().log_softmax(-1)[:, targets]
    return scores
