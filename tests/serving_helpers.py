"""A tiny GPT-2 and byte-level BPE tokenizer built here, so the serving tests need no files.

The tokenizer is trained in a moment on a few sentences (real merges, so tokens span several
bytes and a multi-byte character can be split across tokens). The model is random but with a
large initialisation, so greedy decoding wanders over the vocabulary instead of repeating one
token, which makes "batched equals single" a real test.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import torch
from _tiny_lm import tiny_gpt2
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

from course_utils.serving.batching import Job

EOS = "<|endoftext|>"
CORPUS = [
    "Once upon a time a little fox lived in the forest.",
    "The robot counted seven apples and gave three to the cat.",
    "Tea or coffee? The café on the corner serves both, with crème brûlée.",
    "Snow fell on the quiet village; children built a snowman ⛄ and laughed 😀.",
    "Two plus two is four, and four plus three is seven.",
] * 4


def tiny_tokenizer(vocab_size: int = 400) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS)


def tiny_model(tokenizer: PreTrainedTokenizerFast, seed: int = 0,
               n_positions: int = 128) -> GPT2LMHeadModel:
    eos = tokenizer.eos_token_id
    return tiny_gpt2(len(tokenizer), n_positions=n_positions, n_embd=64, n_layer=2, n_head=4,
                     seed=seed, initializer_range=0.3, bos_token_id=eos, eos_token_id=eos,
                     pad_token_id=eos).eval()


def hf_greedy(model: GPT2LMHeadModel, ids: list[int], new_tokens: int) -> list[int]:
    """transformers' own greedy generation of one unpadded prompt: the reference."""
    out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids),
                                                                        dtype=torch.long),
                         do_sample=False, max_new_tokens=new_tokens,
                         pad_token_id=model.config.pad_token_id)
    return out[0, len(ids):].tolist()


def run_in_fresh_loop(coro):
    """Run ``coro`` with ``asyncio.run`` on another thread (pytest's own loop may be running)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


class Recorder:
    """on_token / on_done of several jobs, and an event when all are done."""

    def __init__(self, n: int):
        self.tokens = {i: [] for i in range(n)}
        self.done: dict[int, tuple] = {}
        self.all_done = threading.Event()
        self.n = n

    def job(self, i: int, ids: list[int], new: int, **kw) -> Job:
        def finish(reason, error):
            self.done[i] = (reason, error)
            if len(self.done) == self.n:
                self.all_done.set()
        return Job(ids, new, on_token=self.tokens[i].append, on_done=finish, **kw)
