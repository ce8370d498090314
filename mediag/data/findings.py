"""The findings vocabulary of the synthetic chest films and how a random findings record is drawn.

Both the renderer (`mediag.data.chest`) and the report writer and labeler (`mediag.data.reports`)
use it, so it has a module of its own: neither of the two imports the other for it.
"""

from __future__ import annotations

import numpy as np

FINDINGS = ("nodule", "effusion", "cardiomegaly", "pneumothorax")
SIDES = ("left", "right")
ZONES = ("upper", "middle", "lower")
EFFUSION_SIZES = ("small", "moderate", "large")
#: prevalence of each finding in `sample_findings`
PREVALENCE = {"nodule": 0.3, "effusion": 0.25, "cardiomegaly": 0.3, "pneumothorax": 0.2}


def sample_findings(rng: np.random.Generator) -> dict:
    """A random findings record (each finding independently present with `PREVALENCE`).

    The nodule diameter is a whole number of millimetres, 15-29 (a nodule is under 30 mm; above that
    a radiologist calls it a mass). The cardiothoracic ratio has two decimals and is continuous across
    the 0.5 cut-off (normal hearts 0.38-0.50, enlarged 0.51-0.65, no excluded band), so borderline
    hearts a pixel or less from the cut-off occur as on real films; cardiomegaly iff ctr > 0.5, so a
    report can state the ratio exactly and the label still follows from it.
    """
    nodule = None
    if rng.random() < PREVALENCE["nodule"]:
        nodule = {"side": SIDES[rng.integers(2)], "zone": ZONES[rng.integers(3)],
                  "diameter_mm": float(rng.integers(15, 30))}
    effusion = None
    if rng.random() < PREVALENCE["effusion"]:
        effusion = {"side": SIDES[rng.integers(2)], "size": EFFUSION_SIZES[rng.integers(3)]}
    cardiomegaly = bool(rng.random() < PREVALENCE["cardiomegaly"])
    ctr = rng.integers(51, 66) if cardiomegaly else rng.integers(38, 51)     # hundredths, no gap at 0.50
    pneumothorax = None
    if rng.random() < PREVALENCE["pneumothorax"]:
        pneumothorax = {"side": SIDES[rng.integers(2)]}
    return {"nodule": nodule, "effusion": effusion, "cardiomegaly": cardiomegaly,
            "ctr": round(int(ctr) / 100, 2), "pneumothorax": pneumothorax}


def labels_of(findings: dict) -> np.ndarray:
    """The multi-hot label vector (int8, FINDINGS order) of a findings record."""
    return np.array([findings["nodule"] is not None, findings["effusion"] is not None,
                     bool(findings["cardiomegaly"]), findings["pneumothorax"] is not None], dtype=np.int8)
