"""Train the two tokenizers on the course corpus and wrap them for ``transformers``.

- ``course-gpt``: byte-level BPE (as GPT-2), any string round-trips exactly; ``<|endoftext|>``
  separates documents and ``<|pad|>`` pads batches, so padding never hides a real end of text.
- ``course-bert``: lower-cased WordPiece (as BERT) with ``[CLS] [SEP] [MASK] [PAD] [UNK]``.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from tokenizers.implementations import BertWordPieceTokenizer
from transformers import BertTokenizerFast, PreTrainedTokenizerFast

EOS, PAD = "<|endoftext|>", "<|pad|>"

# The one chat template of course-gpt, course-gpt-mini and course-gpt-chat: the
# "System:/User:/Assistant:" lines of the pretraining chats, each assistant turn ended by the
# eos token (its end-of-turn token: a tuned model learns to stop there). The assistant's content
# and its eos sit in a {% generation %} block, so apply_chat_template(...,
# return_assistant_tokens_mask=True) marks exactly the tokens supervised fine-tuning learns
# (course_utils.finetune.sft). The generation prompt ends "Assistant:" (no space): the reply's
# first token carries its leading space, as in pretraining. (The newline after a turn is an
# expression: transformers renders with trim_blocks, which drops a newline after a block tag.)
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}System: {{ message['content'] }}\n"
    "{% elif message['role'] == 'user' %}User: {{ message['content'] }}\n"
    "{% else %}Assistant:{% generation %} {{ message['content'] }}{{ eos_token }}"
    "{% endgeneration %}{{ '\\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def train_gpt_tokenizer(texts: Iterable[str], vocab_size: int = 1024,
                        model_max_length: int = 256) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with ``vocab_size`` entries, ready for ``save_pretrained``."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=EOS, eos_token=EOS, unk_token=EOS, pad_token=PAD,
        model_max_length=model_max_length, clean_up_tokenization_spaces=False)
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def train_bert_tokenizer(texts: Iterable[str], vocab_size: int = 1536,
                         model_max_length: int = 128) -> BertTokenizerFast:
    """A lower-cased WordPiece tokenizer with BERT's special tokens."""
    wp = BertWordPieceTokenizer(lowercase=True)
    wp.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, show_progress=False,
                           special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    vocab = wp.get_vocab()
    return BertTokenizerFast(vocab=vocab, do_lower_case=True, model_max_length=model_max_length)
