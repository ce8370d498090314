"""`mediag classify` on small MedMNIST-format files made from the synthetic radiographs, and its errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from mediag.cli import main
from mediag.data.medmnist import synthetic_films


def _write(path, images, labels, cuts=(0.6, 0.8)):
    a, b = (int(c * len(images)) for c in cuts)
    parts = {"train": slice(0, a), "val": slice(a, b), "test": slice(b, None)}
    np.savez(path, **{f"{s}_images": images[sl] for s, sl in parts.items()},
             **{f"{s}_labels": labels[sl] for s, sl in parts.items()})
    return path


@pytest.fixture(scope="module")
def films():
    return synthetic_films(300, render_size=32, seed=11)


@pytest.fixture(scope="module")
def binary_npz(tmp_path_factory, films):
    images, labels = films
    return _write(tmp_path_factory.mktemp("npz") / "cardiomegaly28.npz", images, labels[:, 2:3].astype(np.int64))


def test_classify_binary_json(binary_npz):
    """The CLI end to end: JSON on stdout, progress on stderr, a cardiomegaly classifier better than chance."""
    result = subprocess.run([sys.executable, "-m", "mediag.cli", "classify", "--npz", str(binary_npz), "--epochs", "4",
                             "--json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    for key in ("test_auc", "test_acc", "test_sensitivity", "test_specificity", "threshold", "val_auc"):
        assert key in metrics
    assert metrics["task"] == "binary" and metrics["n_test"] == 60
    assert metrics["test_auc"] > 0.65, metrics                  # 180 training films, 4 epochs: well above chance
    assert "epoch 1/4" in result.stderr
    assert str(binary_npz.parent) not in result.stdout      # no machine path in the output


def test_classify_multiclass_and_multilabel(tmp_path, films):
    from mediag.classify import fit_and_score

    images, labels = films
    n_findings = np.minimum(labels.sum(1), 2)[:, None]         # 0, 1 or ≥ 2 findings: three classes
    res = fit_and_score(_write(tmp_path / "count.npz", images, n_findings), epochs=1, seed=0)
    assert res["task"] == "multi-class" and res["n_outputs"] == 3 and res["threshold"] is None
    assert res["p_test"].shape == (60, 3) and 0 <= res["test_acc"] <= 1
    res = fit_and_score(_write(tmp_path / "multi.npz", images, labels[:, 1:3]), epochs=1, seed=0)
    assert res["task"] == "multi-label" and len(res["threshold"]) == 2
    assert 0 <= res["test_auc"] <= 1 and 0 <= res["test_sensitivity"] <= 1


def _error_line(capsys, *args):
    code = main(["classify", *args])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1]


def test_missing_file(capsys, tmp_path):
    code, line = _error_line(capsys, "--npz", str(tmp_path / "nothing.npz"))
    assert code == 2 and "no such file" in line and line.startswith("mediag classify: error:")


def test_missing_keys(capsys, tmp_path, films):
    np.savez(tmp_path / "bad.npz", train_images=films[0][:10], train_labels=films[1][:10, :1])
    code, line = _error_line(capsys, "--npz", str(tmp_path / "bad.npz"))
    assert code == 2 and "missing keys" in line


@pytest.mark.parametrize("labels_of_split, message", [
    (lambda lb: {**lb, "test": np.full_like(lb["test"], 3)}, "never in train_labels"),
    (lambda lb: {**lb, "train": -lb["train"]}, "negative"),
    (lambda lb: {s: np.zeros_like(v) for s, v in lb.items()}, "single class"),
    (lambda lb: {s: np.c_[v, 2 * v] for s, v in lb.items()}, "must be 0 or 1"),
    (lambda lb: {**lb, "val": np.zeros_like(lb["val"])}, "val_labels hold a single class"),
])
def test_labels_that_do_not_fit(capsys, tmp_path, films, labels_of_split, message):
    images, labels = films
    a, b = 180, 240
    lb = labels_of_split({"train": labels[:a, 2:3], "val": labels[a:b, 2:3], "test": labels[b:, 2:3]})
    np.savez(tmp_path / "labels.npz", train_images=images[:a], val_images=images[a:b], test_images=images[b:],
             **{f"{s}_labels": v.astype(np.int64) for s, v in lb.items()})
    code, line = _error_line(capsys, "--npz", str(tmp_path / "labels.npz"))
    assert code == 2 and message in line, line


def test_too_small_images(capsys, tmp_path):
    rng = np.random.default_rng(0)
    arrays = {f"{s}_images": rng.integers(0, 255, (8, 12, 12), dtype=np.uint8) for s in ("train", "val", "test")}
    arrays.update({f"{s}_labels": np.arange(8)[:, None] % 2 for s in ("train", "val", "test")})
    np.savez(tmp_path / "tiny.npz", **arrays)
    code, line = _error_line(capsys, "--npz", str(tmp_path / "tiny.npz"))
    assert code == 2 and "too small" in line


def test_bad_epochs(capsys, binary_npz):
    code, line = _error_line(capsys, "--npz", str(binary_npz), "--epochs", "0")
    assert code == 2 and "epochs must be a positive integer" in line
