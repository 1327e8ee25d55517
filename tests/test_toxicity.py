"""The toxicity classifier of lesson 07: trained offline, loaded by pipeline, read by label."""

from __future__ import annotations

import pytest
import torch

from course_utils.metrics.toxicity import ToxicityRecipe, toxic_scores, train_toxicity_classifier

TEXTS = ["You are such a clown, Ben.", "Thanks for the tip, Ben. Have a nice day."]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    return train_toxicity_classifier(tmp_path_factory.mktemp("tox"),
                                     ToxicityRecipe(max_steps=2, n_train=32, batch_size=8))


def test_pipeline_loads_the_saved_folder_with_named_labels(trained):
    from transformers import pipeline

    clf = pipeline("text-classification", model=str(trained))
    out = clf(TEXTS, top_k=None)
    assert [sorted(d["label"] for d in row) for row in out] == [["non-toxic", "toxic"]] * 2


def test_scores_match_the_models_own_softmax(trained):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    clf = pipeline("text-classification", model=str(trained))
    got = toxic_scores(clf, TEXTS)
    model = AutoModelForSequenceClassification.from_pretrained(trained).eval()
    tok = AutoTokenizer.from_pretrained(trained)
    toxic = model.config.label2id["toxic"]
    with torch.no_grad():
        for text, score in zip(TEXTS, got, strict=True):
            logits = model(**tok(text, return_tensors="pt")).logits[0]
            assert score == pytest.approx(torch.softmax(logits, -1)[toxic].item(), abs=1e-5)


def test_reads_the_toxic_label_of_a_multilabel_classifier():
    # unitary/toxic-bert's output shape: every label with a sigmoid score, in score order
    def fake(texts, **kwargs):
        assert kwargs["top_k"] is None
        return [[{"label": "insult", "score": 0.9}, {"label": "toxic", "score": 0.7 + i / 10},
                 {"label": "threat", "score": 0.01}] for i, _ in enumerate(texts)]

    assert toxic_scores(fake, ["a", "b"]) == pytest.approx([0.7, 0.8])


def test_bad_inputs_say_what_to_do():
    def no_toxic(texts, **kwargs):
        return [[{"label": "LABEL_0", "score": 0.5}, {"label": "LABEL_1", "score": 0.5}]]

    with pytest.raises(ValueError, match="no label 'toxic'"):
        toxic_scores(no_toxic, ["a"])
    with pytest.raises(TypeError, match="list of strings"):
        toxic_scores(no_toxic, "a")
    with pytest.raises(TypeError, match="pipeline"):
        toxic_scores("not a classifier", ["a"])
    assert toxic_scores(no_toxic, []) == []
    with pytest.raises(ValueError, match="max_steps"):
        train_toxicity_classifier("unused", ToxicityRecipe(max_steps=0))
    with pytest.raises(TypeError, match="extra_non_toxic"):
        train_toxicity_classifier("unused", extra_non_toxic="a harmless sentence")
    with pytest.raises(TypeError, match="ToxicityRecipe"):
        train_toxicity_classifier("unused", {"max_steps": 2})
