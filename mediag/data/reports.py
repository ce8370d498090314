"""Free-text radiology reports for the synthetic chest films, and a rule-based labeler that reads them back.

    from mediag.data.reports import write_report, label_report
    text = write_report(findings, rng)   # "FINDINGS: ... IMPRESSION: ..."
    label_report(text)                   # the findings again (without "ctr")

The labeler works like the CheXpert labeler, in three steps: find *mentions* of each finding in each
sentence (regular expressions), decide whether each mention is *negated* (a cue such as "no",
"without", "negative for", "not" earlier in the same clause, or "is absent" / "is not seen" after it),
and *aggregate*: a finding is present if any mention is positive, absent otherwise (also when never
mentioned). Attributes (side, zone, diameter, size) are read from the positive mentions. It recovers
every generated report exactly (tests/test_reports.py); on real reports it is only a baseline.
"""

from __future__ import annotations

import re

import numpy as np

from mediag.data.findings import sample_findings

# ----------------------------------------------------------------------------- writing


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _cap(s: str) -> str:
    return s[0].upper() + s[1:]


def _nodule_sentence(nd: dict, rng) -> str:
    d, side, zone = f"{nd['diameter_mm']:g}", nd["side"], nd["zone"]
    return _pick(rng, (
        f"There is a {d} mm nodule in the {side} {zone} zone.",
        f"A {d} mm nodular opacity is seen in the {side} {zone} zone.",
        f"{_cap(side)} {zone} zone nodule measuring {d} mm.",
        f"A well-defined {d} mm nodule projects over the {side} {zone} zone.",
        f"A rounded {side} {zone} zone opacity consistent with a nodule, {d} mm in diameter.",
    ))


def _effusion_sentence(ef: dict, rng) -> str:
    side, size = ef["side"], ef["size"]
    return _pick(rng, (
        f"There is a {size} {side} pleural effusion.",
        f"{_cap(size)} {side}-sided pleural effusion.",
        f"A {size} pleural effusion is present on the {side}.",
        f"Blunting of the {side} costophrenic angle due to a {size} pleural effusion.",
    ))


def _heart_sentence(f: dict, rng) -> str:
    ctr = f"{f['ctr']:.2f}"
    if f["cardiomegaly"]:
        return _pick(rng, (
            "The heart is enlarged.",
            "Cardiomegaly is present.",
            f"The cardiac silhouette is enlarged (cardiothoracic ratio {ctr}).",
            f"Cardiomegaly, with a cardiothoracic ratio of {ctr}.",
        ))
    return _pick(rng, (
        "Heart size is normal.",
        "The cardiac silhouette is within normal limits.",
        f"No cardiomegaly (cardiothoracic ratio {ctr}).",
        "The heart is not enlarged.",
    ))


def _pneumothorax_sentence(pt: dict, rng) -> str:
    side = pt["side"]
    return _pick(rng, (
        f"There is a {side} pneumothorax.",
        f"{_cap(side)}-sided pneumothorax is seen.",
        f"A {side} apical pneumothorax is present.",
        f"A visceral pleural line is visible on the {side}, consistent with pneumothorax.",
    ))


_NO_NODULE = ("No focal nodule.", "No pulmonary nodule or mass is seen.", "There is no suspicious pulmonary nodule.")
_NO_EFFUSION = ("No pleural effusion.", "There is no pleural effusion.",
                "The costophrenic angles are sharp, without pleural effusion.")
_NO_PTX = ("No pneumothorax.", "There is no pneumothorax.", "No evidence of pneumothorax.")
_FILLER = ("The mediastinum is unremarkable.", "Bony structures are intact.", "The trachea is midline.",
           "The lungs are otherwise clear.", "")


def _impression(f: dict, rng) -> str:
    items = []
    if f["nodule"]:
        nd = f["nodule"]
        items.append(_pick(rng, (f"{_cap(nd['side'])} {nd['zone']} zone nodule ({nd['diameter_mm']:g} mm); "
                                 "CT follow-up recommended",
                                 f"{nd['diameter_mm']:g} mm {nd['side']} {nd['zone']} zone pulmonary nodule")))
    if f["effusion"]:
        items.append(f"{_cap(f['effusion']['size'])} {f['effusion']['side']} pleural effusion")
    if f["cardiomegaly"]:
        items.append("Cardiomegaly")
    if f["pneumothorax"]:
        items.append(f"{_cap(f['pneumothorax']['side'])} pneumothorax")
    if not items:
        return _pick(rng, ("No acute cardiopulmonary abnormality.", "Normal chest radiograph."))
    if len(items) == 1:
        return items[0] + "."
    return " ".join(f"{k}. {s}." for k, s in enumerate(items, 1))


def write_report(findings: dict, rng: np.random.Generator) -> str:
    """A "FINDINGS: ... IMPRESSION: ..." report of a findings record (phrasing drawn from `rng`).

    Absent findings are negated ("No pleural effusion."); present ones give side, zone, size and
    diameter as recorded. The sentence order varies.
    """
    missing = [k for k in ("nodule", "effusion", "cardiomegaly", "ctr", "pneumothorax") if k not in findings]
    if missing:
        raise ValueError(f"write_report: findings record lacks {missing}; make it with sample_findings()")
    lung = []
    lung.append(_nodule_sentence(findings["nodule"], rng) if findings["nodule"] else _pick(rng, _NO_NODULE))
    both_absent = findings["effusion"] is None and findings["pneumothorax"] is None
    if both_absent and rng.random() < 0.4:
        lung.append("No pleural effusion or pneumothorax.")
    else:
        lung.append(_effusion_sentence(findings["effusion"], rng) if findings["effusion"] else _pick(rng, _NO_EFFUSION))
        lung.append(_pneumothorax_sentence(findings["pneumothorax"], rng) if findings["pneumothorax"]
                    else _pick(rng, _NO_PTX))
    lung = [lung[i] for i in rng.permutation(len(lung))]
    sentences = [_heart_sentence(findings, rng), *lung, _pick(rng, _FILLER)]
    body = " ".join(s for s in sentences if s)
    return f"FINDINGS: {body}\nIMPRESSION: {_impression(findings, rng)}"


def report_corpus(n: int, seed: int = 0) -> list[str]:
    """`n` reports of random findings, without rendering images (text for language models)."""
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, 5, i])
        out.append(write_report(sample_findings(rng), rng))
    return out


# ----------------------------------------------------------------------------- labeling

_MENTIONS = {
    "nodule": r"\bnodul(?:e|es|ar)\b|\bmass\b",
    "effusion": r"\beffusions?\b",
    "pneumothorax": r"\bpneumothora(?:x|ces)\b",
    "cardiomegaly": r"\bcardiomegaly\b|\b(?:heart|cardiac silhouette)\b[^.;]*?\benlarged\b"
                    r"|\benlarged (?:heart|cardiac silhouette)\b",
}
#: a heart described as normal is a negated cardiomegaly mention
_HEART_NORMAL = r"\b(?:heart|cardiac silhouette)\b[^.;]*?\b(?:normal|within normal limits|unremarkable)\b"
_PRE_NEG = r"\b(?:no|not|without|negative for|free of|absence of|resolved)\b"
_POST_NEG = r"^[^.;]*?\b(?:is|are) (?:absent|not seen|not present|not identified)\b"
_CLAUSE_BREAK = r"\b(?:but|however|although|with)\b"
_SIDE = r"\b(left|right)\b"
_ZONE = r"\b(upper|middle|mid|lower)\b"
_SIZE = r"\b(small|moderate|large)\b"
_DIAM = r"(\d+(?:\.\d+)?)\s*(mm|cm)\b"


def _sentences(text: str) -> list[str]:
    text = re.sub(r"\b(?:findings|impression)\s*:", ".", text.lower())
    text = re.sub(r"(?:^|\s)\d+\.\s", ". ", text)                 # "1. ..." numbered items
    parts = re.split(r"\.(?!\d)|\n|;", text)                     # "." but not the one in "0.58"
    return [p.strip() for p in parts if p.strip()]


def _negated(sentence: str, start: int, end: int) -> bool:
    clause_start = 0
    for m in re.finditer(_CLAUSE_BREAK, sentence[:start]):
        clause_start = m.end()
    if re.search(_PRE_NEG, sentence[clause_start:end]):
        return True
    return bool(re.search(_POST_NEG, sentence[end:]))


def mentions(text: str) -> list[dict]:
    """Every mention: {"finding", "sentence", "negated", "span"} in reading order (for teaching/debugging)."""
    out = []
    for s in _sentences(text):
        for name, pattern in _MENTIONS.items():
            for m in re.finditer(pattern, s):
                out.append({"finding": name, "sentence": s, "negated": _negated(s, m.start(), m.end()),
                            "span": m.span()})
        for m in re.finditer(_HEART_NORMAL, s):
            out.append({"finding": "cardiomegaly", "sentence": s, "negated": True, "span": m.span()})
    return out


def _attr(pattern: str, sentences: list[str]):
    for s in sentences:
        m = re.search(pattern, s)
        if m:
            return m
    return None


def label_report(text: str) -> dict:
    """The structured findings of a report: the record of `sample_findings` without "ctr".

    {"nodule": None or {"side", "zone", "diameter_mm"}, "effusion": None or {"side", "size"},
     "cardiomegaly": bool, "pneumothorax": None or {"side"}}. An attribute that no positive
    mention states is None.
    """
    if not isinstance(text, str):
        raise TypeError(f"label_report: expected the report as a str, got {type(text).__name__}")
    positive: dict[str, list[str]] = {k: [] for k in _MENTIONS}
    for m in mentions(text):
        if not m["negated"]:
            positive[m["finding"]].append(m["sentence"])
    out: dict = {"nodule": None, "effusion": None, "cardiomegaly": bool(positive["cardiomegaly"]),
                 "pneumothorax": None}
    if positive["nodule"]:
        s = positive["nodule"]
        side, zone, diam = _attr(_SIDE, s), _attr(_ZONE, s), _attr(_DIAM, s)
        mm = None
        if diam:
            mm = float(diam.group(1)) * (10.0 if diam.group(2) == "cm" else 1.0)
        out["nodule"] = {"side": side and side.group(1),
                         "zone": zone and ("middle" if zone.group(1) == "mid" else zone.group(1)),
                         "diameter_mm": mm}
    if positive["effusion"]:
        s = positive["effusion"]
        side, size = _attr(_SIDE, s), _attr(_SIZE, s)
        out["effusion"] = {"side": side and side.group(1), "size": size and size.group(1)}
    if positive["pneumothorax"]:
        side = _attr(_SIDE, positive["pneumothorax"])
        out["pneumothorax"] = {"side": side and side.group(1)}
    return out
