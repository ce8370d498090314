"""MedMNIST v2 loader: the shipped file offline by default; a checksummed download only on request.

    from mediag.data.medmnist import load
    d = load("pneumoniamnist")          # the shipped data/medmnist/pneumoniamnist.npz, sha256 checked first
    d.train_images.shape                # (3882, 28, 28) uint8 (train trimmed: 388 of 1,214 normal films)
    d.train_labels.shape                # (3882, 1)
    load("path/to/file.npz")            # any file with the MedMNIST keys

A MedMNIST file holds `train_images`, `train_labels`, `val_images`, `val_labels`, `test_images`,
`test_labels`; images are N×H×W (grey) or N×H×W×3 (colour) uint8, labels N×L integers.
The repository ships one real file, PneumoniaMNIST (see data/README.md for its provenance, licence and
how its train split differs from the official one); `load("pneumoniamnist")` verifies its sha256
before reading it. A missing or altered file raises one line naming the file and the expected
checksum, never a silent fallback. Other names are read from data/medmnist/ (or MEDMNIST_ROOT) and
checked against MedMNIST's published MD5; `download_if_missing=True` fetches them from Zenodo where a
network exists. Mind the label coding: in BreastMNIST 0 = malignant and 1 = normal or benign.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mediag.data import DATA_DIR

#: default folder for MedMNIST files (override with the MEDMNIST_ROOT environment variable)
ROOT = DATA_DIR / "medmnist"
KEYS = tuple(f"{split}_{kind}" for split in ("train", "val", "test") for kind in ("images", "labels"))
_ZENODO = "https://zenodo.org/record/6496656/files/{name}.npz?download=1"

#: the MedMNIST v2 facts the course uses (from MedMNIST's own info.py, v2.1.0)
INFO = {
    "pneumoniamnist": {"md5": "28209eda62fecd6e6a2d98b1501bb15f", "task": "binary-class",
                       "label": {0: "normal", 1: "pneumonia"}, "n_samples": (4708, 524, 624),
                       # the copy shipped in data/medmnist/ (train trimmed to 388 of 1,214 normal films)
                       "sha256": "a554d2332488d3ddc075125e66a1af77ec379fd2bafc09108ab95a37e2bd9c26",
                       "shipped_n_samples": (3882, 524, 624)},
    "breastmnist": {"md5": "750601b1f35ba3300ea97c75c52ff8f6", "task": "binary-class",
                    "label": {0: "malignant", 1: "normal, benign"}, "n_samples": (546, 78, 156)},
    "chestmnist": {"md5": "02c8a6516a18b556561a56cbdd36c4a8", "task": "multi-label, binary-class",
                   "label": dict(enumerate((
                       "atelectasis", "cardiomegaly", "effusion", "infiltration", "mass", "nodule",
                       "pneumonia", "pneumothorax", "consolidation", "edema", "emphysema", "fibrosis",
                       "pleural", "hernia"))),
                   "n_samples": (78468, 11219, 22433)},
    "organamnist": {"md5": "866b832ed4eeba67bfb9edee1d5544e6", "task": "multi-class",
                    "label": dict(enumerate((
                        "bladder", "femur-left", "femur-right", "heart", "kidney-left", "kidney-right",
                        "liver", "lung-left", "lung-right", "pancreas", "spleen"))),
                    "n_samples": (34581, 6491, 17778)},
}


@dataclass
class MedMNIST:
    """The three splits of one MedMNIST file (images uint8, labels int)."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    label_names: dict | None = None
    task: str | None = None

    def split(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of "train", "val" or "test"."""
        if which not in ("train", "val", "test"):
            raise ValueError(f"MedMNIST.split: which must be 'train', 'val' or 'test', got {which!r}")
        return getattr(self, f"{which}_images"), getattr(self, f"{which}_labels")


def _shown(path: Path) -> str:
    """A path relative to the repository when inside it (no machine paths in messages or outputs)."""
    try:
        return str(Path(path).resolve().relative_to(DATA_DIR.parent)) or "."
    except ValueError:
        return str(path)


def default_root() -> Path:
    return Path(os.environ.get("MEDMNIST_ROOT", ROOT))


def digest(path, algorithm: str) -> str:
    """The hex digest of a file ("md5", "sha256", ...), read in chunks by hashlib."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, algorithm).hexdigest()


def md5(path) -> str:
    """The file's MD5, as MedMNIST publishes it."""
    return digest(path, "md5")


def sha256(path) -> str:
    """The file's SHA-256, as data/README.md gives it for the shipped copy."""
    return digest(path, "sha256")


def verify(path, name: str) -> None:
    """Check a named file before it is read: the shipped copy's sha256 (or, if the file is the official
    download, MedMNIST's published MD5). One-line FileNotFoundError / ValueError naming the file and the
    expected checksum otherwise."""
    info = INFO[name]
    path = Path(path)
    expected = f"sha256 {info['sha256']}" if "sha256" in info else f"MD5 {info['md5']}"
    if not path.is_file():
        hint = ("it ships with the repository: restore it with `git checkout -- data/medmnist/" + path.name + "`"
                if "sha256" in info else
                f"download {_ZENODO.format(name=name)} and put it there, "
                f"or call load({name!r}, download_if_missing=True)")
        raise FileNotFoundError(f"{_shown(path)}: file missing (expected {expected}); {hint}")
    if "sha256" in info:
        got = sha256(path)
        if got == info["sha256"] or md5(path) == info["md5"]:
            return
        raise ValueError(f"{_shown(path)}: sha256 {got} is not the expected {info['sha256']}; the file was altered "
                         f"or replaced: restore the shipped copy with `git checkout -- data/medmnist/{path.name}`")
    if md5(path) != info["md5"]:
        raise ValueError(f"{_shown(path)}: MD5 does not match the published {info['md5']}; "
                         "replace the file with the original from Zenodo (or pass check_md5=False)")


def load_npz(path, name: str | None = None) -> MedMNIST:
    """Read and validate a MedMNIST-style `.npz` (keys, dtypes, shapes, matching lengths)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{_shown(path)}: no such file; give the path of a MedMNIST .npz")
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"{_shown(path)}: not a readable .npz file ({e}); re-download it") from None
    with z:
        missing = [k for k in KEYS if k not in z.files]
        if missing:
            raise ValueError(f"{_shown(path)}: missing keys {missing}; a MedMNIST file has {list(KEYS)}")
        arrays = {k: z[k] for k in KEYS}
    for split in ("train", "val", "test"):
        im, lb = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if im.dtype != np.uint8 or im.ndim not in (3, 4) or (im.ndim == 4 and im.shape[-1] not in (1, 3)):
            raise ValueError(f"{_shown(path)}: {split}_images must be uint8 N×H×W or N×H×W×3, "
                             f"got {im.dtype} {im.shape}")
        if lb.ndim == 1:
            lb = lb[:, None]
        if lb.ndim != 2 or not np.issubdtype(lb.dtype, np.integer) or len(lb) != len(im):
            raise ValueError(f"{_shown(path)}: {split}_labels must be integers of shape ({len(im)}, L), "
                             f"got {lb.dtype} {lb.shape}")
        arrays[f"{split}_labels"] = lb
    name = name or path.stem
    info = INFO.get(name, {})
    return MedMNIST(name, **arrays, label_names=info.get("label"), task=info.get("task"))


def download(name: str, root=None, timeout: float = 60.0) -> Path:
    """Download `name`.npz into `root` and verify its MD5; a clear error when offline or corrupted."""
    import urllib.error
    import urllib.request

    if name not in INFO:
        raise ValueError(f"unknown MedMNIST data set {name!r}; known: {sorted(INFO)}")
    root = Path(root) if root is not None else default_root()
    dest = root / f"{name}.npz"
    url = _ZENODO.format(name=name)
    root.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as fh:
            while chunk := r.read(1 << 20):
                fh.write(chunk)
    except (urllib.error.URLError, OSError) as e:
        tmp.unlink(missing_ok=True)
        raise FileNotFoundError(f"{name}.npz: download from {url} failed ({getattr(e, 'reason', e)}); "
                                f"download it elsewhere and put it in {_shown(root)}/") from None
    got = md5(tmp)
    if got != INFO[name]["md5"]:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"{name}.npz: MD5 {got} does not match {INFO[name]['md5']}; the download is corrupt, retry")
    tmp.replace(dest)
    return dest


def load(name_or_path, root=None, download_if_missing: bool = False, check_md5: bool = True) -> MedMNIST:
    """Load a MedMNIST data set by name (from `root`, default data/medmnist/) or from a path.

    Offline by default. A named file is verified before it is read (`check_md5`): the shipped
    PneumoniaMNIST against its sha256 (the official download's MD5 is accepted too), others against
    MedMNIST's published MD5. A missing file raises FileNotFoundError (one line: the file, the expected
    checksum, what to do); `download_if_missing=True` fetches a missing file from Zenodo instead.
    """
    s = str(name_or_path)
    if s.endswith(".npz") or os.sep in s or "/" in s:
        return load_npz(s)
    name = s.lower()
    if name not in INFO:
        raise ValueError(f"unknown MedMNIST data set {s!r}; known: {sorted(INFO)}, or pass a path to a .npz")
    root = Path(root) if root is not None else default_root()
    path = root / f"{name}.npz"
    if not path.is_file() and download_if_missing:
        download(name, root)
    if check_md5 or not path.is_file():
        verify(path, name)
    return load_npz(path, name)


def synthetic_films(n: int, size: int = 28, render_size: int = 56, seed: int = 0, stream: int = 0):
    """n synthetic chest films stored as MedMNIST stores images, and their findings.

    Each film is rendered by `mediag.data.chest.render` at `render_size` px and area-resized to
    size×size uint8 (as MedMNIST shrank its sources); labels are (n, 4) 0/1 in `FINDINGS` order.
    Film i depends only on (seed, stream, i), so a split can be regenerated on its own.
    """
    import cv2

    from mediag.data.chest import labels_of, render, sample_findings

    images, labels = np.empty((n, size, size), np.uint8), np.empty((n, 4), np.int64)
    for i in range(n):
        rng = np.random.default_rng([seed, stream, i])
        findings = sample_findings(rng)
        film, _ = render(findings, rng, size=render_size)
        images[i] = np.round(cv2.resize(film, (size, size), interpolation=cv2.INTER_AREA) * 255)
        labels[i] = labels_of(findings)
    return images, labels


def write_synthetic(path, sizes=INFO["pneumoniamnist"]["n_samples"], size: int = 28, seed: int = 0) -> Path:
    """A MedMNIST-format `.npz` of synthetic films, label 1 = abnormal (any finding), 0 = normal.

    PneumoniaMNIST's split sizes by default: a stand-in with its shape and coding (not its difficulty)
    for running `mediag classify` or a notebook's `DATASET` offline. Returns the path.
    """
    arrays = {}
    for stream, (split, n) in enumerate(zip(("train", "val", "test"), sizes, strict=True)):
        images, labels = synthetic_films(n, size=size, seed=seed, stream=stream)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels.any(1, keepdims=True).astype(np.int64)
    np.savez(path, **arrays)
    return Path(path)
