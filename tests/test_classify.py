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
def binary_npz(tmp_path_factory):
    return _medmnist_like(tmp_path_factory.mktemp("npz") / "bright28.npz", (180, 60, 60), 28, 1, TASKS["binary"][0])


def test_classify_binary_json(binary_npz):
    """The CLI end to end: JSON on stdout, progress on stderr, a classifier well above chance."""
    result = subprocess.run([sys.executable, "-m", "mediag.cli", "classify", "--npz", str(binary_npz), "--epochs", "4",
                             "--members", "1", "--json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    for key in ("test_auc", "test_acc", "test_sensitivity", "test_specificity", "threshold", "val_auc"):
        assert key in metrics
    assert metrics["task"] == "binary" and metrics["n_test"] == 60
    assert metrics["test_auc"] > 0.75, metrics                  # 180 training images, 4 epochs: well above chance
    assert "epoch 1/4" in result.stderr and metrics["members"] == 1
    assert str(binary_npz.parent) not in result.stdout      # no machine path in the output


def test_classify_multiclass_and_multilabel(tmp_path, films):
    from mediag.classify import fit_and_score

    images, labels = films
    n_findings = np.minimum(labels.sum(1), 2)[:, None]         # 0, 1 or ≥ 2 findings: three classes
    res = fit_and_score(_write(tmp_path / "count.npz", images, n_findings), epochs=1, members=1, seed=0)
    assert res["task"] == "multi-class" and res["n_outputs"] == 3 and res["threshold"] is None
    assert res["p_test"].shape == (60, 3) and 0 <= res["test_acc"] <= 1
    res = fit_and_score(_write(tmp_path / "multi.npz", images, labels[:, 1:3]), epochs=1, members=1, seed=0)
    assert res["task"] == "multi-label" and len(res["threshold"]) == 2
    assert 0 <= res["test_auc"] <= 1 and 0 <= res["test_sensitivity"] <= 1


def _medmnist_like(path, n, side, channels, labels_of, seed=0):
    """A small MedMNIST-format file whose labels are learnable from the images: the mean brightness of
    image regions decides each label (`labels_of` maps the (n, 4) quadrant means to labels)."""
    rng = np.random.default_rng(seed)
    total = sum(n)
    shape = (total, side, side) + ((channels,) if channels > 1 else ())
    images = rng.integers(0, 120, shape, dtype=np.uint8)
    quad = rng.random((total, 4))
    h = side // 2
    for q, (r, c) in enumerate(((0, 0), (0, h), (h, 0), (h, h))):
        images[:, r:r + h, c:c + h] += (quad[:, q] * 120).astype(np.uint8).reshape(-1, 1, 1, *(1,) * (channels > 1))
    labels = labels_of(quad)
    cut = np.cumsum(n)[:2]
    parts = dict(zip(("train", "val", "test"), np.split(np.arange(total), cut), strict=True))
    np.savez(path, **{f"{s}_images": images[i] for s, i in parts.items()},
             **{f"{s}_labels": labels[i].astype(np.int64) for s, i in parts.items()})
    return path


TASKS = {   # MedMNIST 2D task types: (labels from quadrant brightness, task, outputs)
    "binary": (lambda q: (q[:, :1] > 0.5), "binary", 1),                                # PneumoniaMNIST
    "multi-class": (lambda q: q.argmax(1)[:, None], "multi-class", 4),                  # OrganAMNIST, ...
    "ordinal": (lambda q: np.minimum((q[:, :1] * 5).astype(int), 4), "multi-class", 5),  # RetinaMNIST grades
    "multi-label": (lambda q: np.c_[q > 0.5, q[:, :2] > 0.3, np.tile(q[:, :1] > 0.7, (1, 8))], "multi-label", 14),
}


@pytest.mark.parametrize("kind, side, channels", [
    ("binary", 28, 1), ("binary", 224, 1), ("multi-class", 64, 3), ("multi-class", 128, 1),
    ("ordinal", 28, 3), ("multi-label", 28, 1), ("multi-label", 64, 3),
])
def test_every_medmnist_2d_task_type(tmp_path, kind, side, channels):
    """Every task type, grey and RGB, 28-224 px: the right task, output count, input size and metrics. The first
    case runs the default snapshots and test-time augmentation; the others, which test the task types, skip them."""
    from mediag.classify import ARRAY_KEYS, fit_and_score, format_result

    labels_of, task, n_out = TASKS[kind]
    path = _medmnist_like(tmp_path / f"{kind}{side}.npz", (160, 48, 48), side, channels, labels_of)
    recipe = {} if (kind, side, channels) == ("binary", 28, 1) else {"snapshots": 1, "tta": False}
    res = fit_and_score(path, epochs=2, members=1, seed=0, **recipe)
    assert res["task"] == task and res["n_outputs"] == n_out and res["p_test"].shape == (48, n_out)
    assert res["image_shape"] == [side, side, channels] and res["input_shape"] == [min(side, 64)] * 2 + [channels]
    assert 0 <= res["test_acc"] <= 1 and 0 <= res["test_auc"] <= 1
    if task == "binary":
        assert "per_class" not in res and isinstance(res["threshold"], float)
    else:
        assert len(res["per_class"]) == n_out and {"auc", "sensitivity", "specificity", "ppv", "f1"} <= set(
            res["per_class"][0])
        table = format_result({k: v for k, v in res.items() if k not in ARRAY_KEYS})
        assert table.count("\n") >= n_out + 2                               # one row per class
    if kind in ("binary", "multi-class") and side <= 64:
        assert res["test_auc"] > 0.75, res["test_auc"]                      # learnable from the pixels


def test_json_is_one_object_with_per_class_metrics(tmp_path):
    path = _medmnist_like(tmp_path / "organ.npz", (120, 30, 30), 28, 1, TASKS["multi-class"][0])
    result = subprocess.run([sys.executable, "-m", "mediag.cli", "classify", "--npz", str(path), "--epochs", "1",
                             "--members", "1", "--workers", "0", "--json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)                                      # one JSON object
    assert isinstance(metrics, dict) and {"test_auc", "test_acc", "per_class"} <= set(metrics)
    assert [row["class"] for row in metrics["per_class"]] == [0, 1, 2, 3]


def test_augmentation_and_tta_keep_shapes():
    from mediag.classify import augment, resize_images

    x = np.random.default_rng(0).standard_normal((5, 28, 28, 3)).astype(np.float32)
    a = augment(x, np.random.default_rng(1), shift=2, jitter=0.1)
    assert a.shape == x.shape and a.dtype == np.float32 and not np.array_equal(a, x)
    np.testing.assert_array_equal(augment(x, np.random.default_rng(1), shift=0, jitter=0), x)
    im = np.random.default_rng(0).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    assert resize_images(im, 64).shape == (3, 64, 64, 3) and resize_images(im[..., 0], 64).shape == (3, 64, 64)
    assert resize_images(im, 256) is im


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
    assert code == 2 and "epochs must be an integer >= 1" in line
    code, line = _error_line(capsys, "--npz", str(binary_npz), "--members", "0")
    assert code == 2 and "members must be an integer >= 1" in line


def test_train_cnn_parts_and_augmentation_function():
    """The shared recipe: one snapshot per kept epoch, plain and TTA views, an augmentation function called once
    per epoch, class weights refused for overlapping (multi-label) columns."""
    from mediag.classify import train_cnn

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 20, 20, 1)).astype(np.float32)
    y = (x[:, :10].mean((1, 2, 3)) > 0).astype(np.float32)[:, None]
    calls = []

    def copies(x_, r):
        calls.append(len(x_))
        return x_ + r.normal(0, 0.01, x_.shape).astype(np.float32)

    out = train_cnn(x, y, task="binary", epochs=3, seed=0, batch_size=16, augmentation=copies, class_weight=True,
                    filters=(4, 4, 4), dense=8, predict_on={"val": x[:7]}, snapshots=2, tta=True)
    assert calls == [40, 40, 40] and len(out["losses"]) == 3
    assert set(out["parts"]) == {"plain", "tta"} and len(out["parts"]["tta"]["val"]) == 2
    assert out["p"]["val"].shape == (7, 1)
    np.testing.assert_allclose(out["p"]["val"], np.mean(out["parts"]["tta"]["val"], 0))
    np.testing.assert_allclose(out["parts"]["plain"]["val"][-1], out["model"].predict(x[:7], verbose=0), atol=1e-5)
    with pytest.raises(ValueError, match="multi-label"):
        train_cnn(x, np.c_[y, y], task="multi-label", epochs=1, class_weight=True, filters=(4, 4, 4), dense=8)
    with pytest.raises(ValueError, match="schedule"):
        train_cnn(x, y, task="binary", epochs=1, schedule="step")


def test_decision_thresholds():
    from mediag.classify import decision_thresholds
    from mediag.scratch import youden_threshold

    y_train = np.r_[np.zeros(10), np.ones(90)][:, None]
    rng = np.random.default_rng(1)
    y_val = rng.integers(0, 2, (50, 2))
    p_val = np.clip(0.3 * y_val + rng.random((50, 2)) * 0.7, 0, 1)
    assert decision_thresholds(y_train, y_val[:, :1], p_val[:, :1]) == [0.5]                 # class-weighted
    assert decision_thresholds(y_train, y_val[:, :1], p_val[:, :1], class_weighted=False) == [0.9]   # prevalence
    got = decision_thresholds(np.c_[y_train, y_train], y_val, p_val, "youden")
    assert got == [youden_threshold(y_val[:, k], p_val[:, k]) for k in range(2)]
    with pytest.raises(ValueError, match="balanced"):
        decision_thresholds(y_train, y_val, p_val, "f1")


def test_train_cnns_in_worker_processes():
    """Two trainings in a spawned worker process (one, to keep the test short; the pool is the same with two):
    results in order, models rebuilt here from their weights."""
    from mediag.classify import train_cnns

    rng = np.random.default_rng(2)
    x = rng.standard_normal((32, 20, 20, 1)).astype(np.float32)
    y = (x.mean((1, 2, 3)) > 0).astype(np.float32)[:, None]
    calls = [dict(x=x, targets=y, task="binary", epochs=1, seed=s, batch_size=16, filters=(4, 4, 4), dense=8,
                  predict_on={"val": x[:5]}) for s in (0, 1)]
    out = train_cnns(calls, workers=1)
    assert [len(r["losses"]) for r in out] == [1, 1] and not np.allclose(out[0]["p"]["val"], out[1]["p"]["val"])
    for r in out:
        np.testing.assert_allclose(r["model"].predict(x[:5], verbose=0), r["p"]["val"], atol=1e-4)
    assert all(np.array_equal(w, v) for w, v in zip(out[0]["weights"], out[0]["model"].get_weights(), strict=True))
