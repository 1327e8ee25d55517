"""What a causal LM says about text without generating: next-token logits, label-word ids,
the likelihood of each label's continuation (choosing by likelihood), and perplexity (with a
sliding window for texts longer than the context)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from course_utils.lm.batching import check_texts, encode, left_pad, length_batches
from course_utils.lm.loading import context_length, pad_token_id


@torch.inference_mode()
def next_token_logits(model, tokenizer, prompts: str | Sequence[str],
                      batch_size: int = 16) -> torch.Tensor:
    """The model's raw (float32) logits for the token after each prompt.

    One prompt (a ``str``) gives ``(vocab,)``; a list gives ``(len(prompts), vocab)``, run in
    left-padded batches of similar length. A prompt longer than the context keeps its end.
    """
    single = isinstance(prompts, str)
    prompts = check_texts([prompts] if single else prompts)
    ids = encode(tokenizer, prompts, context_length(model, tokenizer))
    out = torch.empty(len(prompts), 0)
    for batch in length_batches(ids, batch_size):
        input_ids, mask, positions = (t.to(model.device) for t in
                                      left_pad([ids[i] for i in batch], pad_token_id(tokenizer)))
        logits = model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                       logits_to_keep=1).logits[:, -1, :].float().cpu()  # the last position's
        if out.shape[1] == 0:
            out = torch.empty(len(prompts), logits.shape[-1])
        out[batch] = logits
    return out[0] if single else out


def label_token_ids(tokenizer, label_words: Sequence[str]) -> list[int]:
    """The token id of ``" " + word`` for each label word.

    Scoring compares single next tokens, so each word must be one token and no two words may
    share it (else two labels would always get the same score).
    """
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


def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """``log p(token_t | tokens_<t)`` for t = 1..T-1: position t-1's logits predict token t.

    Shapes: logits ``(batch, T, vocab)``, input_ids ``(batch, T)`` -> ``(batch, T - 1)``.
    """
    logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    return logprobs.gather(-1, input_ids[:, 1:, None]).squeeze(-1)


def label_logprobs(model, tokenizer, prompts: str | Sequence[str], label_words: Sequence[str],
                   normalise: bool = False, batch_size: int = 16) -> torch.Tensor:
    """``log p(" " + word | prompt)`` for each label word: the sum of the log-probabilities of
    the word's tokens, each given the prompt and the word's tokens before it.

    This is *choosing by likelihood*: the argmax over the labels is the model's answer, and it
    is always one of the labels. ``normalise=True`` divides each sum by the word's number of
    tokens (the mean log-probability per token), so a label of four tokens is not penalised
    for needing four predictions. One prompt (a ``str``) gives ``(len(label_words),)``; a list
    gives ``(len(prompts), len(label_words))``. When every word is one token this is one
    forward pass per prompt (the next-token distribution); otherwise each prompt is read once,
    with a KV cache, and every word's tokens run on a copy of that cache (``batch_size``
    prompts at a time). A prompt that does not fit beside the longest word keeps its end.
    """
    single = isinstance(prompts, str)
    prompts = check_texts([prompts] if single else prompts)
    if isinstance(label_words, str) or not isinstance(label_words, Sequence) \
            or not label_words or not all(isinstance(w, str) and w.strip() for w in label_words):
        raise ValueError(f"label_words must be a non-empty list of words, got {label_words!r}")
    pieces = [tokenizer(" " + w, add_special_tokens=False)["input_ids"] for w in label_words]
    if all(len(p) == 1 for p in pieces):
        logits = next_token_logits(model, tokenizer, prompts, batch_size)
        out = logits.log_softmax(-1)[:, [p[0] for p in pieces]]
        return out[0] if single else out
    n_ctx = context_length(model, tokenizer)
    longest = max(len(p) for p in pieces)
    if longest >= n_ctx:
        raise ValueError(f"a label word is {longest} tokens, no room for a prompt in the "
                         f"model's context of {n_ctx}")
    ids = encode(tokenizer, prompts, n_ctx - longest)
    out = torch.empty(len(prompts), len(pieces))
    n_labels, pad = len(pieces), pad_token_id(tokenizer)
    # Every label continues the same prompt: read each prompt once (left-padded, with a KV
    # cache), then run all its labels' tokens on copies of that cache, right-padded.
    label_ids = torch.full((n_labels, longest), pad, dtype=torch.long)
    label_mask = torch.zeros(n_labels, longest, dtype=torch.long)
    for j, p in enumerate(pieces):
        label_ids[j, :len(p)] = torch.tensor(p)
        label_mask[j, :len(p)] = 1
    with torch.inference_mode():
        for batch in length_batches(ids, batch_size):
            input_ids, mask, positions = (t.to(model.device) for t in
                                          left_pad([ids[i] for i in batch], pad))
            read = model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                         use_cache=True, logits_to_keep=1)
            first = read.logits[:, -1].float().log_softmax(-1).cpu()  # the labels' 1st tokens
            cache = read.cache if getattr(read, "cache", None) is not None \
                else read.past_key_values
            cache.batch_repeat_interleave(n_labels)  # rows: prompt 0's labels, prompt 1's, ...
            rows = len(batch) * n_labels
            lengths = mask.sum(-1).repeat_interleave(n_labels)
            cont = model(input_ids=label_ids.repeat(len(batch), 1).to(model.device),
                         attention_mask=torch.cat([mask.repeat_interleave(n_labels, 0),
                                                   label_mask.repeat(len(batch), 1).to(
                                                       model.device)], dim=1),
                         position_ids=lengths[:, None] + torch.arange(longest,
                                                                      device=model.device),
                         cache=cache, use_cache=True)
            rest = token_logprobs(cont.logits.float(), label_ids.repeat(len(batch), 1).to(
                model.device)).cpu()  # column t scores label token t + 1
            for r in range(rows):
                b, j = divmod(r, n_labels)
                n = len(pieces[j])
                out[batch[b], j] = first[b, pieces[j][0]] + rest[r, :n - 1].sum()
    if normalise:
        out = out / torch.tensor([float(len(p)) for p in pieces])
    return out[0] if single else out


def windows(n_tokens: int, max_length: int, stride: int) -> list[tuple[int, int, int]]:
    """Sliding windows over a text of ``n_tokens`` tokens as ``(begin, end, first_target)``.

    The window covers tokens ``begin:end`` and scores tokens ``first_target:end``. Token 0 is
    never scored (nothing comes before it); with ``stride < max_length`` every other token is
    scored exactly once. With ``stride == max_length`` the windows do not overlap and, as in
    chunked evaluation, the first token of each window goes unscored (it has no context).
    """
    if not 1 <= stride <= max_length:
        raise ValueError(f"stride must be between 1 and max_length ({max_length}), got {stride}: "
                         "a larger stride would skip tokens")
    out, prev_end = [], 0
    for begin in range(0, n_tokens, stride):
        end = min(begin + max_length, n_tokens)
        first = max(prev_end, begin + 1)
        if first < end:
            out.append((begin, end, first))
        prev_end = end
        if end == n_tokens:
            break
    return out


def perplexity(model, tokenizer, texts: Sequence[str], stride: int | None = None,
               batch_size: int = 8, max_length: int | None = None,
               add_start_token: bool = True, progress: bool = False) -> dict:
    """Perplexity of ``model`` on each text, and over all their tokens together.

    Perplexity is ``exp`` of the mean negative log-likelihood per predicted token. Returns
    ``perplexities`` (one per text), ``mean_perplexity`` (their mean, as ``evaluate`` reports)
    and ``perplexity`` (``exp`` of the mean loss over every predicted token of every text: the
    corpus-level number). ``add_start_token`` prepends the tokenizer's BOS token so the first
    word is predicted too (``evaluate``'s default). ``max_length`` defaults to the model's
    context. A longer text is scored in overlapping windows (the Hugging Face "perplexity of
    fixed-length models" method): each moves ``stride`` tokens (default: half the context)
    and scores only the tokens no earlier window scored (:func:`windows`), so every token is
    predicted once, with at least ``max_length - stride`` tokens of context (except near the
    start of the text). Windows run ``batch_size`` at a time.
    """
    texts = check_texts(texts, "texts", allow_empty=False)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if max_length is None:
        max_length = context_length(model)
    if not isinstance(max_length, int) or max_length < 2:
        raise ValueError(f"max_length must be an int >= 2, got {max_length!r}")
    stride = max_length // 2 if stride is None else stride
    if not isinstance(stride, int) or isinstance(stride, bool):
        raise TypeError(f"stride must be an int, got {stride!r}")
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    if add_start_token:
        if tokenizer.bos_token_id is None:
            raise ValueError("the tokenizer has no BOS token to prepend: pass "
                             "add_start_token=False")
        encoded = [[tokenizer.bos_token_id, *ids] for ids in encoded]
    for i, ids in enumerate(encoded):
        if len(ids) < 2:
            raise ValueError(f"texts[{i}] ({texts[i]!r:.40}) gives {len(ids)} token(s); "
                             "perplexity needs at least one token to predict after the first "
                             "(at least 2 tokens)")

    jobs = [(i, b, e, f) for i, ids in enumerate(encoded)
            for b, e, f in windows(len(ids), max_length, stride)]
    nll = [0.0] * len(texts)
    count = [0] * len(texts)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    batches = range(0, len(jobs), batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="perplexity", unit="batch")
    try:
        with torch.inference_mode():
            for start in batches:
                batch = jobs[start:start + batch_size]
                width = max(e - b for _, b, e, _ in batch)
                ids = torch.zeros(len(batch), width, dtype=torch.long)
                attention = torch.zeros(len(batch), width, dtype=torch.long)
                for row, (i, b, e, _) in enumerate(batch):  # right padding keeps positions
                    ids[row, :e - b] = torch.tensor(encoded[i][b:e])
                    attention[row, :e - b] = 1
                logits = model(input_ids=ids.to(device), attention_mask=attention.to(device)).logits
                logprobs = token_logprobs(logits, ids.to(device)).double().cpu()
                for row, (i, b, e, f) in enumerate(batch):
                    # column t of logprobs scores window token t + 1
                    nll[i] -= logprobs[row, f - b - 1:e - b - 1].sum().item()
                    count[i] += e - f
    finally:
        model.train(was_training)

    per_text = [math.exp(n / c) for n, c in zip(nll, count, strict=True)]
    return {
        "perplexities": per_text,
        "mean_perplexity": sum(per_text) / len(per_text),
        "perplexity": math.exp(sum(nll) / sum(count)),
    }
