"""MedMNIST loader on small .npz files made here (never the network)."""

import numpy as np
import pytest

from mediag.data import medmnist
from mediag.data.medmnist import load, load_npz, md5


def _fake(path, n=(7, 3, 5), size=28, channels=None, labels=1, **overrides):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, k in zip(("train", "val", "test"), n, strict=True):
        shape = (k, size, size) + ((channels,) if channels else ())
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 2, (k, labels))
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


def test_load_a_path(tmp_path):
    d = load(_fake(tmp_path / "tiny.npz", n=(9, 2, 4), size=17, labels=3))
    assert d.train_images.shape == (9, 17, 17) and d.train_labels.shape == (9, 3)
    assert d.val_images.shape == (2, 17, 17) and d.test_labels.shape == (4, 3)
    imgs, labels = d.split("test")
    assert imgs is d.test_images and labels is d.test_labels
    with pytest.raises(ValueError, match="'train', 'val' or 'test'"):
        d.split("training")


def test_colour_and_1d_labels(tmp_path):
    p = _fake(tmp_path / "c.npz", channels=3, train_labels=np.arange(7))
    d = load_npz(p)
    assert d.train_images.shape == (7, 28, 28, 3) and d.train_labels.shape == (7, 1)


def test_named_file_with_checksum(tmp_path, monkeypatch):
    p = _fake(tmp_path / "breastmnist.npz")
    monkeypatch.setitem(medmnist.INFO, "breastmnist", dict(medmnist.INFO["breastmnist"], md5=md5(p)))
    d = load("breastmnist", root=tmp_path)
    assert d.name == "breastmnist" and d.label_names[0] == "malignant"


def test_wrong_checksum(tmp_path):
    _fake(tmp_path / "breastmnist.npz")
    with pytest.raises(ValueError, match="MD5 does not match"):
        load("breastmnist", root=tmp_path)
    assert load("breastmnist", root=tmp_path, check_md5=False).train_images.shape[0] == 7


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load("breastmnist", root=tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and "breastmnist.npz" in msg and "zenodo" in msg and "put it there" in msg


SHIPPED = medmnist.ROOT / "pneumoniamnist.npz"


def test_shipped_file_loads_offline_by_default():
    assert SHIPPED.is_file(), "data/medmnist/pneumoniamnist.npz ships with the repository"
    assert medmnist.sha256(SHIPPED) == medmnist.INFO["pneumoniamnist"]["sha256"]
    d = load("pneumoniamnist", root=medmnist.ROOT)
    sizes = tuple(len(d.split(s)[1]) for s in ("train", "val", "test"))
    assert sizes == medmnist.INFO["pneumoniamnist"]["shipped_n_samples"] == (3882, 524, 624)
    assert d.train_images.shape[1:] == (28, 28) and d.label_names == {0: "normal", 1: "pneumonia"}
    normal = [int((d.split(s)[1] == 0).sum()) for s in ("train", "val", "test")]
    assert normal == [388, 135, 234]                                     # the trimmed train split


def test_shipped_copy_missing_is_one_line_with_checksum(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load("pneumoniamnist", root=tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and "pneumoniamnist.npz" in msg and medmnist.INFO["pneumoniamnist"]["sha256"] in msg


def test_shipped_copy_altered_is_refused_before_reading(tmp_path):
    import shutil

    copy = tmp_path / "pneumoniamnist.npz"
    shutil.copyfile(SHIPPED, copy)
    assert load("pneumoniamnist", root=tmp_path).test_images.shape == (624, 28, 28)     # an intact copy loads
    raw = bytearray(copy.read_bytes())
    raw[len(raw) // 2] ^= 0xFF                                                           # one byte flipped
    copy.write_bytes(bytes(raw))
    with pytest.raises(ValueError) as e:
        load("pneumoniamnist", root=tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and "pneumoniamnist.npz" in msg and medmnist.INFO["pneumoniamnist"]["sha256"] in msg
    _fake(copy)                                                                          # a different, valid npz
    with pytest.raises(ValueError, match="sha256"):
        load("pneumoniamnist", root=tmp_path)


def test_cli_prints_the_checksum_error_on_one_line(tmp_path, monkeypatch, capsys):
    from mediag.cli import main

    monkeypatch.setenv("MEDMNIST_ROOT", str(tmp_path))
    assert main(["classify", "--npz", "pneumoniamnist"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and "pneumoniamnist.npz" in err[0] and medmnist.INFO["pneumoniamnist"]["sha256"] in err[0]


def test_bad_files(tmp_path):
    with pytest.raises(ValueError, match="missing keys"):
        load_npz(_fake(tmp_path / "a.npz", val_labels=None))
    with pytest.raises(ValueError, match="uint8"):
        load_npz(_fake(tmp_path / "b.npz", train_images=np.zeros((7, 28, 28), np.float32)))
    with pytest.raises(ValueError, match="train_labels"):
        load_npz(_fake(tmp_path / "c.npz", train_labels=np.zeros((6, 1), int)))
    (tmp_path / "d.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable"):
        load_npz(tmp_path / "d.npz")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_npz(tmp_path / "none.npz")
    with pytest.raises(ValueError, match="unknown MedMNIST"):
        load("mnist")


def test_download_offline_is_one_clear_line(tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    def refuse(*a, **k):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    with pytest.raises(FileNotFoundError, match="download from .* failed") as e:
        load("breastmnist", root=tmp_path, download_if_missing=True)
    assert "\n" not in str(e.value) and not list(tmp_path.glob("*.part"))


def test_write_synthetic_is_a_medmnist_file(tmp_path):
    from mediag.data.medmnist import synthetic_films, write_synthetic

    path = write_synthetic(tmp_path / "abnormal28.npz", sizes=(12, 4, 5), seed=3)
    d = load(path)
    assert d.train_images.shape == (12, 28, 28) and d.train_images.dtype == np.uint8
    assert d.test_labels.shape == (5, 1) and set(np.unique(d.train_labels)) <= {0, 1}
    images, findings = synthetic_films(5, seed=3, stream=2)            # the test split, regenerated alone
    np.testing.assert_array_equal(d.test_images, images)
    np.testing.assert_array_equal(d.test_labels[:, 0], findings.any(1))
    assert 0 < images.mean() < 255


def test_data_cache_can_be_moved(tmp_path):
    # make test-other-cpu regenerates the synthetic data in a temporary folder; MedMNIST stays in data/.
    import os
    import subprocess
    import sys

    code = "from mediag.data import CACHE; from mediag.data.medmnist import ROOT; print(CACHE); print(ROOT.name)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "MEDIAG_DATA_CACHE": str(tmp_path)}).stdout.split()
    assert out == [str(tmp_path), "medmnist"]
