"""Reports and the rule-based labeler: it must recover every generated report's findings exactly."""

import numpy as np
import pytest

from mediag.data.chest import generate, sample_findings
from mediag.data.reports import label_report, mentions, report_corpus, write_report


def strip_ctr(findings: dict) -> dict:
    """A findings record without "ctr": what `label_report` should return for its report."""
    return {k: v for k, v in findings.items() if k != "ctr"}


def test_labeler_recovers_2500_generated_reports():
    wrong = []
    for i in range(2500):
        rng = np.random.default_rng([11, i])
        f = sample_findings(rng)
        text = write_report(f, rng)
        if label_report(text) != strip_ctr(f):
            wrong.append(text)
    assert not wrong, wrong[:3]


def test_labeler_on_a_generated_set():
    ds = generate(60, size=32, seed=9, cache=False)
    for rec, text in zip(ds.records, ds.reports, strict=True):
        assert label_report(text) == strip_ctr(rec)


def test_report_format_and_negation():
    normal = {"nodule": None, "effusion": None, "cardiomegaly": False, "ctr": 0.41, "pneumothorax": None}
    texts = {write_report(normal, np.random.default_rng(s)) for s in range(40)}
    assert len(texts) > 5                                   # phrasing varies
    for t in texts:
        assert t.startswith("FINDINGS: ") and "\nIMPRESSION: " in t
        assert label_report(t) == strip_ctr(normal)
    assert any("No pleural effusion" in t for t in texts)


@pytest.mark.parametrize("text, expected", [
    ("No pneumothorax. There is a small right pleural effusion.",
     {"effusion": {"side": "right", "size": "small"}, "pneumothorax": None}),
    ("Left pneumothorax without effusion.", {"pneumothorax": {"side": "left"}, "effusion": None}),
    ("The heart is not enlarged.", {"cardiomegaly": False}),
    ("Enlarged cardiac silhouette.", {"cardiomegaly": True}),
    ("A 1.5 cm nodule in the right mid zone.", {"nodule": {"side": "right", "zone": "middle", "diameter_mm": 15.0}}),
    ("Pleural effusion is absent.", {"effusion": None}),
    ("Negative for pneumothorax.", {"pneumothorax": None}),
])
def test_labeler_on_handwritten_sentences(text, expected):
    out = label_report(text)
    for k, v in expected.items():
        assert out[k] == v, (text, out)


def test_mentions_mark_negation():
    ms = mentions("No pleural effusion or pneumothorax. Cardiomegaly.")
    assert [(m["finding"], m["negated"]) for m in ms] == [
        ("effusion", True), ("pneumothorax", True), ("cardiomegaly", False)]


def test_report_corpus_is_seeded():
    a, b = report_corpus(30, seed=4), report_corpus(30, seed=4)
    assert a == b and len(set(a)) > 20
    assert report_corpus(30, seed=5) != a


def test_errors():
    with pytest.raises(TypeError, match="str"):
        label_report(None)
    with pytest.raises(ValueError, match="lacks"):
        write_report({"nodule": None}, np.random.default_rng(0))
