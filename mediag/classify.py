"""`mediag classify`: the course CNN on a MedMNIST-format file, threshold chosen on validation, test metrics.

    from mediag.classify import fit_and_score
    res = fit_and_score("data/medmnist/pneumoniamnist.npz", epochs=10, seed=0)
    res["test_auc"], res["test_acc"], res["threshold"]

Glue only: the network is notebook 03's fixed §4.2 CNN (`build_cnn_keras`) and every metric comes
from notebook 09 (`auc_rank`, `youden_threshold`, `binary_metrics`), both through `mediag.scratch`.
The task follows the labels: one column with values 0/1 is binary, one column with more classes is
multi-class (one sigmoid per class, the answer is the largest), several 0/1 columns are multi-label.
Training keeps the weights of the epoch with the best validation AUC; the decision threshold of a
binary (or each multi-label) output maximises Youden's J on validation; the test set is used once.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

#: keys of the result that are arrays (left out of the CLI's JSON)
ARRAY_KEYS = ("y_val", "p_val", "y_test", "p_test")


def describe_task(data) -> tuple[str, int]:
    """(task, number of network outputs) of a loaded MedMNIST file; ValueError if the labels do not fit."""
    name = data.name
    labels = {s: np.asarray(getattr(data, f"{s}_labels")) for s in ("train", "val", "test")}
    widths = {s: lb.shape[1] for s, lb in labels.items()}
    if len(set(widths.values())) != 1:
        raise ValueError(f"{name}: the splits have different numbers of label columns {widths}; "
                         "every split needs the same labels")
    for s, lb in labels.items():
        if len(lb) == 0:
            raise ValueError(f"{name}: the {s} split is empty; every split needs images")
        if lb.min() < 0:
            raise ValueError(f"{name}: {s}_labels has negative values ({lb.min()}); labels must be 0, 1, 2, ...")
    n_cols = widths["train"]
    if n_cols > 1:
        for s, lb in labels.items():
            if lb.max() > 1:
                raise ValueError(f"{name}: {s}_labels has {n_cols} columns (multi-label) but values up to {lb.max()}; "
                                 "multi-label columns must be 0 or 1")
        if not (labels["train"].min(0) < labels["train"].max(0)).any():
            raise ValueError(f"{name}: no label column has both 0 and 1 in train_labels; nothing to learn")
        return "multi-label", n_cols
    n_classes = int(max(lb.max() for lb in labels.values())) + 1
    seen = np.unique(labels["train"])
    if n_classes < 2 or len(seen) < 2:
        raise ValueError(f"{name}: train_labels hold a single class ({seen.tolist()}); a classifier needs at least two")
    missing = sorted(set(range(n_classes)) - set(seen.tolist()))
    if missing:
        raise ValueError(f"{name}: classes {missing} occur in val/test labels but never in train_labels; "
                         "relabel the classes 0..K-1 or add training images of them")
    if n_classes == 2:
        for s in ("val", "test"):
            if len(np.unique(labels[s])) < 2:
                raise ValueError(f"{name}: {s}_labels hold a single class; choosing a threshold and measuring AUC "
                                 "need both classes in val and test")
        return "binary", 1
    return "multi-class", n_classes


def _inputs(images, mean: float, sd: float) -> np.ndarray:
    """uint8 images (N, H, W) or (N, H, W, C) -> float32 (N, H, W, C), scaled to [0, 1], standardised."""
    x = np.asarray(images, dtype=np.float32) / 255.0
    if x.ndim == 3:
        x = x[..., None]
    return (x - mean) / sd


def _targets(labels, task: str, n_out: int) -> np.ndarray:
    labels = np.asarray(labels)
    if task == "multi-class":
        return np.eye(n_out, dtype=np.float32)[labels[:, 0]]
    return labels.astype(np.float32)


def _macro_auc(y, p, task: str) -> float:
    from mediag.scratch import auc_rank

    if task == "binary":
        return auc_rank(y[:, 0], p[:, 0])
    cols = (y[:, 0][:, None] == np.arange(p.shape[1])) if task == "multi-class" else y.astype(bool)
    aucs = [auc_rank(cols[:, k], p[:, k]) for k in range(p.shape[1]) if 0 < cols[:, k].sum() < len(cols)]
    return float(np.mean(aucs)) if aucs else float("nan")


def _metrics(y, p, task: str, thresholds) -> dict:
    """Test metrics: binary at its threshold; multi-class by the largest output; multi-label per column."""
    from mediag.scratch import binary_metrics

    out = {"test_auc": _macro_auc(y, p, task)}
    if task == "binary":
        m = binary_metrics(y[:, 0], p[:, 0] >= thresholds[0])
        out.update({f"test_{k}" if k != "accuracy" else "test_acc": v for k, v in m.items()})
        return out
    if task == "multi-class":
        pred = p.argmax(1)
        truth = y[:, 0]
        per = [binary_metrics(truth == k, pred == k) for k in range(p.shape[1]) if (truth == k).any()]
        out["test_acc"] = float(np.mean(pred == truth))
    else:
        per = [binary_metrics(y[:, k], p[:, k] >= thresholds[k]) for k in range(p.shape[1])]
        out["test_acc"] = float(np.mean([m["accuracy"] for m in per]))
    out["test_sensitivity"] = float(np.nanmean([m["sensitivity"] for m in per]))
    out["test_specificity"] = float(np.nanmean([m["specificity"] for m in per]))
    return out


def fit_and_score(npz, epochs: int = 10, seed: int = 0, batch_size: int = 64, progress=None) -> dict:
    """Train the §4.2 CNN on a MedMNIST-format `.npz` (a path or a MedMNIST name) and score the test split.

    Returns the metrics (test_auc, test_acc, test_sensitivity, test_specificity, ..., threshold, val_auc,
    best_epoch, task, n_train, n_val, n_test, seconds) and the arrays y_val, p_val, y_test, p_test.
    Raises FileNotFoundError / ValueError with a one-line message for bad input.
    """
    from mediag.data.medmnist import load
    from mediag.scratch import build_cnn_keras, cnn_feature_hw, youden_threshold

    say = progress or (lambda message: None)
    if not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    t_start = time.perf_counter()
    data = load(npz)
    task, n_out = describe_task(data)
    shape = data.train_images.shape[1:] if data.train_images.ndim == 4 else (*data.train_images.shape[1:], 1)
    if min(cnn_feature_hw(shape[:2])) < 1:
        raise ValueError(f"{data.name}: images of {shape[0]}×{shape[1]} pixels are too small for the §4.2 CNN "
                         "(three 3×3 convolutions and two 2×2 poolings need at least 18×18)")
    for s in ("val", "test"):
        other = getattr(data, f"{s}_images").shape[1:]
        if other[:2] != shape[:2] or (len(other) == 3 and other[2] != shape[2]):
            raise ValueError(f"{data.name}: {s}_images are {other}, train_images {data.train_images.shape[1:]}; "
                             "all splits need the same image size")
    train_x = np.asarray(data.train_images, dtype=np.float32) / 255.0
    mean, sd = float(train_x.mean()), float(train_x.std()) or 1.0     # training statistics only
    x = {s: _inputs(getattr(data, f"{s}_images"), mean, sd) for s in ("train", "val", "test")}
    y = {s: np.asarray(getattr(data, f"{s}_labels")) for s in ("train", "val", "test")}
    say(f"{data.name}: {task}, {n_out} output(s); {len(y['train'])} / {len(y['val'])} / {len(y['test'])} images "
        f"of {shape[0]}×{shape[1]}×{shape[2]}")

    import keras

    keras.utils.set_random_seed(seed)
    model = build_cnn_keras(tuple(int(v) for v in shape), n_outputs=n_out)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    target = _targets(y["train"], task, n_out)
    best = (-np.inf, 0, None)
    for epoch in range(1, epochs + 1):
        hist = model.fit(x["train"], target, epochs=1, batch_size=batch_size, verbose=0)
        val_auc = _macro_auc(y["val"], model.predict(x["val"], verbose=0, batch_size=512), task)
        say(f"epoch {epoch}/{epochs}: loss {hist.history['loss'][-1]:.4f}, validation AUC {val_auc:.4f}")
        if val_auc > best[0]:
            best = (val_auc, epoch, model.get_weights())
    model.set_weights(best[2])
    p_val = model.predict(x["val"], verbose=0, batch_size=512)
    p_test = model.predict(x["test"], verbose=0, batch_size=512)
    thresholds = None
    if task == "binary":
        thresholds = [youden_threshold(y["val"][:, 0], p_val[:, 0])]
    elif task == "multi-label":
        thresholds = [youden_threshold(y["val"][:, k], p_val[:, k]) if 0 < y["val"][:, k].sum() < len(y["val"])
                      else 0.5 for k in range(n_out)]
    result = {"file": Path(str(npz)).name, "name": data.name, "task": task, "n_outputs": n_out,
              "n_train": len(y["train"]), "n_val": len(y["val"]), "n_test": len(y["test"]),
              "epochs": epochs, "seed": seed, "best_epoch": best[1], "val_auc": float(best[0]),
              "threshold": thresholds[0] if task == "binary" else thresholds,
              **_metrics(y["test"], p_test, task, thresholds),
              "seconds": time.perf_counter() - t_start,
              "y_val": y["val"], "p_val": p_val, "y_test": y["test"], "p_test": p_test}
    say(f"done in {result['seconds']:.0f} s (best validation AUC at epoch {best[1]})")
    return result
