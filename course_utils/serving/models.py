"""What ``--model`` can name: the bundled checkpoint, a local directory, or a test stand-in.

- ``"course-gpt"`` (the default): the course's own small GPT-2, baked into the package;
- a path to a directory saved with ``save_pretrained`` (model and tokenizer together);
- ``"random-tiny"``: a randomly initialised GPT-2 of course-gpt's shape with a byte-level
  tokenizer, built in a moment with no files at all, for tests and benchmarks.

Loading is the LM layer's (:func:`course_utils.lm.load_model`); a name that does not load
raises an error (a ``RuntimeError``) saying what would.
"""

from course_utils.lm.loading import DEFAULT_MODEL, load_model, random_tiny

__all__ = ["DEFAULT_MODEL", "load_model", "random_tiny"]
