"""Serving with a draft model: greedy requests are decoded speculatively, the rest as before.

``python -m course_utils.serving --draft-model course-gpt-mini`` gives the engine a second,
smaller model that shares the target's tokenizer. :class:`SpeculativeBatcher` is the lesson 08
batcher with one change to a batch: its greedy rows (temperature 0) are decoded one after the
other by :func:`course_utils.speculative.speculative_rounds`, whose tokens are exactly the
target's own greedy choices, so a request gets the same text with the draft as without it.
Rows that sample go through the ordinary batched path: speculative *sampling* needs the
draft's and the target's distributions at every drafted position, which this step does not
compute. Each round's accepted tokens are handed to the request one by one, so streaming,
stop strings, ``max_tokens``, end-of-text and cancellation behave as they do without a draft.

It is a latency option for a lightly loaded server: greedy rows no longer share forward passes
(each accepts a different number of tokens per round), so under concurrent load the batched
path gives far more tokens per second (``benchmarks/load_test.py --draft-model`` measures).
"""

from __future__ import annotations

import time
from typing import Any

from transformers import PreTrainedModel

from course_utils.serving.batching import DynamicBatcher, Job, ServerShuttingDown
from course_utils.speculative import speculative_rounds

SAMPLING_NOTE = "greedy requests (temperature 0) only; sampling requests use the ordinary path"


def check_draft(model: PreTrainedModel, tokenizer: Any, draft: PreTrainedModel,
                draft_tokenizer: Any, *, draft_name: str = "the draft") -> None:
    """Refuse a draft that cannot stand in for the target's tokens: another vocabulary."""
    problems = []
    if model.config.vocab_size != draft.config.vocab_size:
        problems.append(f"its model has {draft.config.vocab_size} output ids, the target's "
                        f"{model.config.vocab_size}")
    if draft_tokenizer.get_vocab() != tokenizer.get_vocab():
        problems.append(f"its tokenizer's vocabulary ({len(draft_tokenizer)} tokens) is not the "
                        f"target's ({len(tokenizer)} tokens)")
    elif draft_tokenizer.eos_token_id != tokenizer.eos_token_id:
        problems.append(f"its end-of-text id is {draft_tokenizer.eos_token_id}, the target's "
                        f"{tokenizer.eos_token_id}")
    if problems:
        raise ValueError(f"the draft model {draft_name!r} does not share the target's tokenizer: "
                         f"{'; '.join(problems)}. A draft proposes token ids for the target to "
                         "check, so both must use the same vocabulary: pick a draft built on "
                         "the target's tokenizer (e.g. course-gpt-mini for course-gpt)")


class SpeculativeBatcher(DynamicBatcher):
    """A :class:`DynamicBatcher` whose greedy jobs are decoded with ``draft``'s help."""

    def __init__(self, model: PreTrainedModel, draft: PreTrainedModel, *,
                 num_draft_tokens: int = 4, **kwargs: Any):
        if isinstance(num_draft_tokens, bool) or not isinstance(num_draft_tokens, int) \
                or num_draft_tokens < 1:
            raise ValueError(f"num_draft_tokens must be an integer >= 1, got "
                             f"{num_draft_tokens!r}")
        super().__init__(model, **kwargs)
        self.draft = draft.eval()
        self.num_draft_tokens = num_draft_tokens
        self.counts = {"drafted": 0, "accepted": 0, "rounds": 0, "target_passes": 0,
                       "draft_passes": 0, "requests": 0}

    def stats(self) -> dict:
        """The batcher's figures plus the speculative ones (for /health)."""
        c = self.counts
        rate = round(c["accepted"] / c["drafted"], 3) if c["drafted"] else None
        return {**super().stats(), "speculative": {**c, "acceptance_rate": rate,
                                                   "num_draft_tokens": self.num_draft_tokens,
                                                   "applies_to": SAMPLING_NOTE}}

    def _run_batch(self, batch: list[Job]) -> None:
        sampled = [job for job in batch if job.temperature != 0]
        if sampled:
            super()._run_batch(sampled)
        for job in batch:
            if job.temperature == 0:
                self._run_speculative(job)

    def _run_speculative(self, job: Job) -> None:
        """One greedy job: hand over each round's tokens; stop when it is cancelled."""
        if self._stopping.is_set():
            job.finish("error", ServerShuttingDown())
            return
        if job.cancelled.is_set():
            job.finish("stop")
            return
        self.batches += 1
        self.requests += 1
        self.counts["requests"] += 1
        started = time.perf_counter()
        reason = "length"
        rounds = speculative_rounds(self.model, self.draft, job.prompt_ids, job.max_new_tokens,
                                    self.num_draft_tokens, {self.eos_token_id} - {None},
                                    self.counts)
        try:
            for new in rounds:
                for token in new:
                    if self._stopping.is_set():
                        job.finish("error", ServerShuttingDown())
                    if job.cancelled.is_set() or job.done:
                        break
                    job.on_token(token)
                    if token == self.eos_token_id:
                        reason = "stop"
                if job.cancelled.is_set() or job.done:
                    reason = "stop"
                    break
        except Exception as exc:  # a bug must fail this request, not kill the worker
            job.finish("error", exc)
            return
        finally:
            rounds.close()  # counts the forward passes of a row stopped early
            self.busy_seconds += time.perf_counter() - started
        job.finish(reason)  # "length" unless end-of-text or cancelled, as without a draft
