"""Synthetic chest radiographs (PA view) with exact ground truth for every finding.

    from mediag.data.chest import generate
    ds = generate(2000, size=64, seed=0)      # cached under data/cache/
    ds.images      # (n, 64, 64) float32 in [0, 1], bright = dense (bone, heart, fluid)
    ds.labels      # (n, 4) int8 multi-hot in FINDINGS order
    ds.records[0]  # {"nodule": {...} or None, "effusion": ..., "cardiomegaly": bool, "ctr": float, ...}
    ds.reports[0]  # "FINDINGS: ... IMPRESSION: ..."

Conventions (as on a real PA film): the patient's right is on the image's LEFT, so a "right"
finding lies in columns < size / 2. Anatomy: body outline, two lungs with vascular markings, heart
and mediastinum, spine, diaphragm domes, posterior ribs, clavicles; exposure, contrast, blur and
noise vary per image. Findings: lung nodule (side, zone, diameter 15-29 mm: above 30 mm a lesion is
a mass), pleural effusion (side, size), cardiomegaly (the drawn cardiothoracic ratio, cardiomegaly iff
ctr > 0.5, ratios continuous across 0.5 so borderline hearts exist) and pneumothorax (side); several
may co-occur, "normal" when none.

Images of one patient (same `patient_ids` entry) share the anatomy and differ in findings and
exposure: split by patient, never by image, or the same chest leaks into the test set.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mediag.data import CACHE
from mediag.data.findings import (  # noqa: F401 - the vocabulary is part of this module's interface
    EFFUSION_SIZES,
    FINDINGS,
    PREVALENCE,
    SIDES,
    ZONES,
    labels_of,
    sample_findings,
)

#: field of view of the synthetic film in millimetres (width = height); pixel spacing = FOV_MM / size
FOV_MM = 350.0
#: bump this when the renderer changes, so stale caches are not reused
VERSION = 4
MASK_NAMES = ("lungs", "heart", "nodule", "effusion", "pneumothorax")


def sample_anatomy(rng: np.random.Generator) -> dict:
    """Patient-specific geometry in normalised image coordinates (0-1)."""
    return {
        "cx": 0.5 + rng.normal(0, 0.012),           # midline
        "w": rng.uniform(0.33, 0.38),               # half the inner thoracic width
        "apex": rng.uniform(0.10, 0.14),            # lung apices
        "dome": rng.uniform(0.74, 0.80),            # level of the left hemidiaphragm
        "rib0": rng.uniform(0.12, 0.16),            # first posterior rib
        "rib_gap": rng.uniform(0.058, 0.068),
        "heart_h": rng.uniform(0.14, 0.17),         # half-height of the cardiac silhouette
        "body": rng.uniform(0.44, 0.48),            # half-width of the body outline
        "texture_seed": int(rng.integers(2**31)),
    }


def _smooth_noise(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """Gaussian-filtered white noise (size, size), unit standard deviation; `scale` (sigma) in image widths."""
    out = _gaussian_fft(rng.standard_normal((size, size)), np.pi * scale * size)
    return out / (out.std() + 1e-12)


def _soft(d: np.ndarray, px: float) -> np.ndarray:
    """A soft inside-indicator of a signed distance `d` (negative inside), edge width about a pixel."""
    return 1.0 / (1.0 + np.exp(np.clip(d / px, -50, 50)))


def _gaussian_fft(img: np.ndarray, pi_sigma: float) -> np.ndarray:
    """The one Gaussian filter of the renderer: img (S, S) times exp(-2 (pi sigma)^2 |f|^2) in Fourier space
    (periodic edges). The caller passes pi_sigma = pi * sigma (pixels), rounded in its own order: that
    keeps every film bit-identical to the renderer's earlier versions (pi * scale * size != pi * (scale *
    size) in the last bit at some sizes, e.g. 28 and 48)."""
    f = np.fft.fftfreq(img.shape[0])
    g = np.exp(-2 * pi_sigma ** 2 * (f[:, None] ** 2 + f[None, :] ** 2))
    return np.real(np.fft.ifft2(np.fft.fft2(img) * g))


def _blur(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """img (S, S) blurred by a Gaussian of standard deviation `sigma_px` pixels (img itself if sigma_px <= 0)."""
    if sigma_px <= 0:
        return img
    return _gaussian_fft(img, np.pi * sigma_px)


def _lung_q(x, y, a: dict, sgn: int, shrink: float = 1.0):
    """Implicit lung shape: < 1 inside. sgn=-1 is the image-left (patient's right) lung."""
    lx = a["cx"] + sgn * 0.52 * a["w"]
    ly = (a["apex"] + a["dome"] + 0.06) / 2
    ry = (a["dome"] + 0.06 - a["apex"]) / 2
    rx = 0.48 * a["w"]
    hx, hy = a["cx"] + sgn * 0.2 * a["w"], ly + 0.05    # hilum: centre of a collapse
    x = hx + (x - hx) / shrink
    y = hy + (y - hy) / shrink
    taper = 0.55 + 0.45 * np.clip((y - (ly - ry)) / (0.9 * ry), 0, 1)   # narrower at the apex
    return ((x - lx) / (rx * taper)) ** 2 + ((y - ly) / ry) ** 2


def _dome_y(x, a: dict, sgn: int):
    """The diaphragm under each lung: a dome, the right one (image left, sgn=-1) slightly higher."""
    top = a["dome"] - (0.02 if sgn < 0 else 0.0)
    dx = (x - (a["cx"] + sgn * 0.5 * a["w"])) / (0.55 * a["w"])
    return top - 0.06 * (1 - np.clip(dx ** 2, 0, 1.5))


def render(findings: dict, rng: np.random.Generator, size: int = 64, anatomy: dict | None = None,
           noise: bool = True):
    """Draw one radiograph of `findings`. Returns (image float32 (size, size) in [0, 1], masks).

    `masks` maps "lungs", "heart", "nodule", "effusion", "pneumothorax" to bool (size, size) arrays
    (all False when the finding is absent). `anatomy` (from `sample_anatomy`) fixes the patient's
    geometry; by default it is drawn from `rng`. `noise=False` leaves out the quantum noise (a clean
    reference for denoising; the random draws, hence everything else, stay the same).
    """
    if not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"render: size must be an integer >= 16, got {size!r}")
    a = sample_anatomy(rng) if anatomy is None else anatomy
    px = 1.0 / size
    c = (np.arange(size) + 0.5) / size
    y, x = np.meshgrid(c, c, indexing="ij")
    tex_rng = np.random.default_rng(a["texture_seed"])

    body = _soft(np.abs(x - a["cx"]) - a["body"] * (1 - 0.25 * np.clip(0.25 - y, 0, 1) / 0.25), px)
    lung = {}
    for sgn in (-1, 1):
        inside = _soft(_lung_q(x, y, a, sgn) - 1, 4 * px / a["w"])
        lung[sgn] = inside * _soft(y - _dome_y(x, a, sgn), px)
    lungs = lung[-1] + lung[1]

    ctr = findings["ctr"]
    hw = ctr * a["w"]                                # half-width of the heart: CTR = heart / thorax width
    hcx, hcy = a["cx"] + 0.22 * hw, a["dome"] - 0.7 * a["heart_h"]
    heart = _soft(np.sqrt(((x - hcx) / hw) ** 2 + ((y - hcy) / a["heart_h"]) ** 2) - 1, 1.2 * px / hw)
    heart *= _soft(y - (a["dome"] + 0.02), px)
    medi = _soft(np.abs(x - a["cx"]) - 0.075 - 0.03 * np.clip((y - 0.3) / 0.3, 0, 1), px) * (y > 0.05)
    spine = _soft(np.abs(x - a["cx"]) - 0.035, px)
    abdomen = np.maximum(_soft(y - _dome_y(x, a, -1), -px) * (x < a["cx"]),
                         _soft(y - _dome_y(x, a, 1), -px) * (x >= a["cx"]))

    ribs = np.zeros_like(x)
    d = np.abs(x - a["cx"]) / a["w"]
    for i in range(10):
        yr = a["rib0"] + i * a["rib_gap"] - 0.03 * d + 0.13 * d ** 2
        ribs += np.exp(-(((y - yr) / 0.013) ** 2)) * (d < 1.08) * (d > 0.08)
    clav = np.zeros_like(x)
    for sgn in (-1, 1):
        t = np.clip((x - a["cx"]) * sgn / (0.8 * a["w"]), 0, 1)
        yc = a["apex"] + 0.06 - 0.08 * t + 0.02 * t ** 2
        lateral = (x - a["cx"]) * sgn
        clav += np.exp(-(((y - yc) / 0.012) ** 2)) * (lateral > 0.04) * (lateral < 0.85 * a["w"])

    marks = _smooth_noise(tex_rng, size, 0.012) * 0.03 + _smooth_noise(tex_rng, size, 0.004) * 0.015
    hilar = np.exp(-((np.abs(x - a["cx"]) - 0.12) ** 2 + (y - 0.45) ** 2) / 0.01)
    marks = marks + 0.08 * hilar

    masks = {name: np.zeros((size, size), bool) for name in MASK_NAMES}
    air = lungs.copy()
    fluid = np.zeros_like(x)
    pntx_line = np.zeros_like(x)
    if findings["pneumothorax"] is not None:
        sgn = -1 if findings["pneumothorax"]["side"] == "right" else 1
        shrink = rng.uniform(0.62, 0.75)
        collapsed = _soft(_lung_q(x, y, a, sgn, shrink) - 1, 4 * px / a["w"])
        gap = lung[sgn] * (1 - collapsed)
        marks = marks * (1 - gap)                           # no lung markings beyond the pleura
        air = air + 0.6 * gap
        pntx_line = np.exp(-(((_lung_q(x, y, a, sgn, shrink) - 1) / 0.08) ** 2)) * lung[sgn]
        masks["pneumothorax"] = gap > 0.5
    if findings["effusion"] is not None:
        sgn = -1 if findings["effusion"]["side"] == "right" else 1
        frac = {"small": 0.2, "moderate": 0.36, "large": 0.55}[findings["effusion"]["size"]]
        frac *= rng.uniform(0.9, 1.1)
        top = _dome_y(x, a, sgn)
        lat = np.clip((x - a["cx"]) * sgn / a["w"], 0, 1.2)
        level = a["dome"] - frac * (a["dome"] - a["apex"]) - 0.12 * lat ** 2   # meniscus: higher laterally
        fl = _soft(level - y, 1.5 * px) * (np.abs(x - a["cx"] - sgn * 0.55 * a["w"]) < 0.7 * a["w"])
        fl *= _soft(y - (top + 0.08), px)
        fluid = fl * np.maximum(lung[sgn], _soft(y - top, -px) * (np.abs(x - a["cx"]) > 0.1))
        masks["effusion"] = (fluid * lung[sgn]) > 0.5
    nod = np.zeros_like(x)
    if findings["nodule"] is not None:
        nd = findings["nodule"]
        sgn = -1 if nd["side"] == "right" else 1
        r = nd["diameter_mm"] / FOV_MM / 2
        zi = ZONES.index(nd["zone"])
        y_lo = a["apex"] + (a["dome"] - a["apex"]) * (zi / 3)
        y_hi = a["apex"] + (a["dome"] - a["apex"]) * ((zi + 1) / 3)
        ok = (lung[sgn] > 0.5) & (heart < 0.2) & (y > y_lo + 0.3 * r) & (y < y_hi - 0.3 * r)
        ok &= _lung_q(x, y, a, sgn) < 0.65
        cand = np.argwhere(ok)
        if len(cand):
            iy, ix = cand[rng.integers(len(cand))]
            ny, nx = c[iy] + rng.uniform(-0.5, 0.5) * px, c[ix] + rng.uniform(-0.5, 0.5) * px
        else:
            ny, nx = (y_lo + y_hi) / 2, a["cx"] + sgn * 0.6 * a["w"]
        dist = np.sqrt((x - nx) ** 2 + (y - ny) ** 2)
        nod = _soft(dist - r, 0.35 * px)
        masks["nodule"] = dist <= max(r, 0.5 * px)

    img = 0.03 + 0.52 * body
    img -= 0.36 * np.clip(air, 0, 1.6) * (1 - fluid) * (1 - 0.7 * heart)
    img += 0.05 * fluid * lungs
    img += marks * np.clip(lungs - fluid, 0, 1) * (1 - 0.8 * heart)
    img += 0.22 * medi * (1 - heart) + 0.22 * heart + 0.08 * spine
    img += 0.05 * abdomen
    img += body * (0.07 * ribs + 0.14 * clav)
    img += 0.12 * pntx_line
    img += 0.45 * nod

    gamma = rng.uniform(0.8, 1.25)
    img = np.clip(img, 0, 1) ** gamma
    img = img * rng.uniform(0.85, 1.1) + rng.uniform(-0.04, 0.04)
    img = _blur(img, rng.uniform(0.0, 0.5) * size / 64)
    grain = rng.normal(0, rng.uniform(0.008, 0.025), img.shape)
    img = img + grain if noise else img
    masks["lungs"] = lungs > 0.5
    masks["heart"] = heart > 0.5
    return np.clip(img, 0, 1).astype(np.float32), masks


@dataclass
class ChestSet:
    """A generated set: images, findings records, reports, multi-hot labels, patient ids, masks."""

    images: np.ndarray
    records: list
    reports: list
    labels: np.ndarray
    patient_ids: np.ndarray
    masks: dict = field(default_factory=dict)
    seed: int = 0

    def __len__(self) -> int:
        return len(self.images)

    @property
    def spacing_mm(self) -> float:
        return FOV_MM / self.images.shape[-1]


def _patient_ids(n: int, seed: int) -> np.ndarray:
    """Patients with 1-3 images each, in order; the first k ids do not depend on n."""
    rng = np.random.default_rng([seed, 0])
    ids: list[int] = []
    pid = 0
    while len(ids) < n:
        ids += [pid] * int(rng.choice([1, 1, 1, 2, 2, 3]))
        pid += 1
    return np.array(ids[:n], dtype=np.int64)


def generate(n: int, size: int = 64, seed: int = 0, cache: bool = True) -> ChestSet:
    """`n` synthetic radiographs (seeded; image i is the same whatever n), cached under data/cache/."""
    from mediag.data.reports import write_report

    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"generate: n must be a positive integer, got {n!r}")
    path = CACHE / f"chest_v{VERSION}_n{n}_s{size}_seed{seed}.npz"
    if cache and path.exists():
        try:
            return _load(path, seed)
        except (OSError, ValueError, KeyError):
            pass  # a broken cache file is regenerated
    pids = _patient_ids(n, seed)
    images = np.empty((n, size, size), np.float32)
    masks = {k: np.empty((n, size, size), bool) for k in MASK_NAMES}
    records, reports = [], []
    anatomy = {}
    for i in range(n):
        pid = int(pids[i])
        if pid not in anatomy:
            anatomy[pid] = sample_anatomy(np.random.default_rng([seed, 1, pid]))
        rng = np.random.default_rng([seed, 2, i])
        f = sample_findings(rng)
        images[i], m = render(f, rng, size, anatomy=anatomy[pid])
        for k in MASK_NAMES:
            masks[k][i] = m[k]
        records.append(f)
        reports.append(write_report(f, np.random.default_rng([seed, 3, i])))
    labels = np.stack([labels_of(f) for f in records])
    ds = ChestSet(images, records, reports, labels, pids, masks, seed)
    if cache:
        CACHE.mkdir(parents=True, exist_ok=True)
        # a per-process temporary name: two processes filling the same cache must not share it
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, images=images, labels=labels, patient_ids=pids,
                            records=np.array(json.dumps(records)), reports=np.array(json.dumps(reports)),
                            **{f"mask_{k}": v for k, v in masks.items()})
        tmp.replace(path)
    return ds


def _load(path: Path, seed: int) -> ChestSet:
    with np.load(path) as z:
        return ChestSet(z["images"], json.loads(str(z["records"])), json.loads(str(z["reports"])),
                        z["labels"], z["patient_ids"], {k: z[f"mask_{k}"] for k in MASK_NAMES}, seed)


def patient_split(patient_ids, fractions=(0.7, 0.15, 0.15), seed: int = 0):
    """Index arrays (train, val, test) that never put one patient in two splits."""
    pids = np.asarray(patient_ids)
    if not np.isclose(sum(fractions), 1.0) or len(fractions) != 3:
        raise ValueError(f"patient_split: fractions must be three numbers summing to 1, got {fractions!r}")
    uniq = np.random.default_rng(seed).permutation(np.unique(pids))
    cut = np.cumsum(np.round(np.array(fractions[:2]) * len(uniq)).astype(int))
    groups = np.split(uniq, cut)
    return tuple(np.flatnonzero(np.isin(pids, g)) for g in groups)


_GIVEN = ("Alex", "Sam", "Robin", "Kim", "Jordan", "Taylor", "Morgan", "Casey", "Jamie", "Riley")
_FAMILY = ("Doe", "Roe", "Smith", "Lee", "Garcia", "Novak", "Tanaka", "Okafor", "Muller", "Silva")


def write_dicom(chestset: ChestSet, folder, seed: int = 0) -> list[Path]:
    """Write every image as a CR DICOM file with made-up patient tags (for the de-identification path).

    Files go to `folder/<PatientID>/<study>/img_<i>.dcm`; images of one patient share name, ID and
    birth date; each carries a private tag block and institution/physician names. Pixels are 12-bit
    MONOCHROME2 (0-4095). Refuses to overwrite existing files. Returns the written paths.
    """
    import datetime

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ComputedRadiographyImageStorage as CRImageStorage
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    def uid(*parts) -> str:  # deterministic: the same set and seed give the same UIDs
        return generate_uid(entropy_srcs=["mediag synthetic chest", str(seed), *map(str, parts)])

    folder = Path(folder)
    rng = np.random.default_rng([seed, 4])
    people = {}
    paths = []
    for i in range(len(chestset)):
        pid = int(chestset.patient_ids[i])
        if pid not in people:
            birth = datetime.date(1930, 1, 1) + datetime.timedelta(days=int(rng.integers(0, 25000)))
            people[pid] = {"name": f"{_FAMILY[rng.integers(10)]}^{_GIVEN[rng.integers(10)]}",
                           "id": f"SYN{seed:03d}{pid:05d}", "birth": birth.strftime("%Y%m%d"),
                           "sex": "MF"[rng.integers(2)], "n": 0}
        p = people[pid]
        study_date = (datetime.date(2020, 1, 1) + datetime.timedelta(days=int(rng.integers(0, 1500)) + 30 * p["n"]))
        p["n"] += 1
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CRImageStorage
        meta.MediaStorageSOPInstanceUID = uid("image", i)
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.PatientName, ds.PatientID = p["name"], p["id"]
        ds.PatientBirthDate, ds.PatientSex = p["birth"], p["sex"]
        ds.StudyInstanceUID = uid("study", pid, p["n"])
        ds.SeriesInstanceUID = uid("series", pid, p["n"])
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = study_date.strftime("%Y%m%d")
        ds.StudyTime = f"{8 + i % 10:02d}{i % 60:02d}00"
        ds.AccessionNumber = f"ACC{seed:03d}{i:06d}"
        ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = str(p["n"]), 1, 1
        ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "CR", "CHEST", "PA"
        ds.InstitutionName = "Synthetic General Hospital"
        ds.ReferringPhysicianName = f"{_FAMILY[rng.integers(10)]}^{_GIVEN[rng.integers(10)]}"
        ds.OperatorsName = f"{_FAMILY[rng.integers(10)]}^{_GIVEN[rng.integers(10)]}"
        ds.StationName = "SYNCR01"
        ds.BurnedInAnnotation = "NO"
        ds.ImageComments = "synthetic image generated by mediag; no real patient"
        ds.private_block(0x0011, "MEDIAG SYNTHETIC", create=True).add_new(0x01, "LO", f"case {i}")
        img = chestset.images[i]
        ds.Rows, ds.Columns = img.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        sp = f"{chestset.spacing_mm:.4f}"
        ds.PixelSpacing = [sp, sp]
        ds.WindowCenter, ds.WindowWidth = 2048, 4096
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
        ds.PixelData = np.round(np.clip(img, 0, 1) * 4095).astype("<u2").tobytes()
        out = folder / p["id"] / f"study{p['n']}" / f"img_{i:05d}.dcm"
        if out.exists():
            raise FileExistsError(f"{out}: already exists; write_dicom never overwrites, choose an empty folder")
        out.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(out, enforce_file_format=True)
        paths.append(out)
    return paths
