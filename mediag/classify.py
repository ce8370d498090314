"""`mediag classify`: the course CNN on a MedMNIST-format file, trained as a real tool, scored once on test.

    from mediag.classify import fit_and_score
    res = fit_and_score("pneumoniamnist", seed=0)        # the shipped real file (or any MedMNIST .npz path)
    res["test_auc"], res["test_acc"], res["threshold"]

The network is notebook 03's fixed §4.2 CNN (`build_cnn_keras`, through `mediag.scratch`), trained by
`train_cnn`: the course's one CNN recipe, also used by notebook 09 and `mediag.pipeline`. AUCs come from
scikit-learn's `roc_auc_score` (as in the pipeline); the confusion-matrix rates from notebook 08's
`binary_metrics`. What turns it into a usable classifier (each step can be switched off; notebook 09
measures each one's effect):

- **per-image standardisation** (`per_image`): each film gets its own mean and standard deviation, so
  exposure differences between films and scanners do not reach the network;
- **augmentation**: every epoch sees each film rotated by up to ± `rotate` degrees, scaled by 1 ± `zoom`,
  shifted by up to `shift` pixels, and with its gain and offset jittered by up to `jitter` (in standard
  deviations of the pixels);
- **class weights**: the loss weighs each class by the inverse of its training frequency (binary and
  multi-class), so a trimmed class (PneumoniaMNIST's train split keeps 10 % normal films) is not
  ignored;
- **snapshots**: a cosine learning-rate schedule, and the predictions of the last `snapshots` epochs
  are averaged;
- **test-time augmentation**: each film is also scored shifted by one pixel in 8 directions (`tta`);
- **ensemble**: `members` networks from seeds `seed`, `seed` + 1, ..., their probabilities averaged; with
  `workers` >= 1 they train in that many worker processes, at the same time (`train_cnns`).

Tasks follow the labels (MedMNIST 2D): one column with values 0/1 is binary; one column with more
values is multi-class (ordinal labels such as RetinaMNIST's grades are treated as classes; one sigmoid
per class, the answer is the largest); several 0/1 columns are multi-label (ChestMNIST's 14). Images
are grey (N, H, W) or RGB (N, H, W, 3) uint8 of any size from 18 px; sides above `max_side` (64 by
default: the §4.2 CNN is small) are area-resized down to it. The decision threshold of a binary output
(and of each multi-label column) is the balanced point of the network (`decision_thresholds`: p = 0.5
after class weighting, else the training prevalence) or, with `threshold="youden"`, the maximum of
Youden's J on validation. Nothing is chosen on the test split: it is predicted once, at the end.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

#: keys of the result that are arrays (left out of the CLI's JSON)
ARRAY_KEYS = ("y_val", "p_val", "y_test", "p_test", "parts", "models", "standardise")
#: the default recipe of `fit_and_score` (also what `mediag classify` runs)
DEFAULTS = {"epochs": 12, "members": 1, "shift": 2, "jitter": 0.1, "rotate": 10.0, "zoom": 0.1,
            "class_weight": True, "snapshots": 4, "tta": True, "lr": 2e-3, "batch_size": 128, "max_side": 64,
            "per_image": True, "threshold": "balanced"}


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


def resize_images(images, max_side: int) -> np.ndarray:
    """uint8 (N, H, W[, C]) -> the same with both sides at most `max_side` (area interpolation, aspect kept)."""
    images = np.asarray(images)
    h, w = images.shape[1:3]
    scale = max_side / max(h, w)
    if scale >= 1:
        return images
    import cv2

    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    out = [cv2.resize(im, size, interpolation=cv2.INTER_AREA) for im in images]
    return np.stack(out).reshape(len(images), size[1], size[0], *images.shape[3:])


def _inputs(images, mean, sd, per_image: bool = False) -> np.ndarray:
    """uint8 images (N, H, W) or (N, H, W, C) -> float32 (N, H, W, C), scaled to [0, 1], standardised
    per channel with the training statistics `mean`, `sd` (C,); with `per_image`, each image first gets
    its own mean and standard deviation (removes exposure differences between films and scanners)."""
    x = np.asarray(images, dtype=np.float32) / 255.0
    if x.ndim == 3:
        x = x[..., None]
    if per_image:
        x = (x - x.mean((1, 2, 3), keepdims=True)) / (x.std((1, 2, 3), keepdims=True) + 1e-6)
        return x
    return (x - mean) / sd


def augment(x, rng, shift: int = 2, jitter: float = 0.1, rotate: float = 0.0, zoom: float = 0.0) -> np.ndarray:
    """Random training copies of standardised films x (N, H, W, C): each rotated by up to ± `rotate`
    degrees and scaled by 1 ± `zoom` about its centre (when given), shifted by up to `shift` pixels
    (edge pixels repeated), and its values scaled by 1 ± `jitter` and offset by ± `jitter`."""
    n, h, w, _ = x.shape
    out = x
    if rotate or zoom:
        import cv2

        angles, scales = rng.uniform(-rotate, rotate, n), rng.uniform(1 - zoom, 1 + zoom, n)
        out = np.stack([cv2.warpAffine(im, cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), a, z), (w, h),
                                       flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(im.shape)
                        for im, a, z in zip(out, angles, scales)])
    if shift:
        padded = np.pad(out, ((0, 0), (shift, shift), (shift, shift), (0, 0)), mode="edge")
        dy, dx = rng.integers(0, 2 * shift + 1, n), rng.integers(0, 2 * shift + 1, n)
        rows = (dy[:, None] + np.arange(h))[:, :, None]
        cols = (dx[:, None] + np.arange(w))[:, None, :]
        out = padded[np.arange(n)[:, None, None], rows, cols]
    if jitter:
        out = out * rng.uniform(1 - jitter, 1 + jitter, (n, 1, 1, 1)) + rng.uniform(-jitter, jitter, (n, 1, 1, 1))
    return out.astype(np.float32)


def predict_tta(model, x, tta: bool = True, both: bool = False):
    """Probabilities (N, outputs) of x (N, H, W, C); with `tta`, the mean over the film and its 8 one-pixel
    shifts (edge pixels repeated). With `both`, returns (plain, tta): the unshifted view is one of the nine,
    so both cost one pass."""
    if not tta:
        return model.predict(x, verbose=0, batch_size=1024)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = x.shape[1:3]
    views = [padded[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    p = model.predict(np.concatenate(views), verbose=0, batch_size=1024).reshape(len(views), len(x), -1)
    return (p[4], p.mean(0)) if both else p.mean(0)


def _targets(labels, task: str, n_out: int) -> np.ndarray:
    labels = np.asarray(labels)
    if task == "multi-class":
        return np.eye(n_out, dtype=np.float32)[labels[:, 0]]
    return labels.astype(np.float32)


def _one_vs_rest(y, task: str, n_out: int) -> np.ndarray:
    """Labels as a bool (N, outputs) matrix: one column per class (multi-class) or the label columns."""
    if task == "multi-class":
        return y[:, 0][:, None] == np.arange(n_out)
    return np.asarray(y).astype(bool)


def _macro_auc(y, p, task: str) -> float:
    from sklearn.metrics import roc_auc_score

    if task == "binary":
        return float(roc_auc_score(y[:, 0], p[:, 0]))
    cols = _one_vs_rest(y, task, p.shape[1])
    aucs = [roc_auc_score(cols[:, k], p[:, k]) for k in range(p.shape[1]) if 0 < cols[:, k].sum() < len(cols)]
    return float(np.mean(aucs)) if aucs else float("nan")


def _per_class(y, p, task: str, thresholds, names) -> list[dict]:
    """One row per class (multi-class: one against the rest, decided by the largest output) or per label
    column (multi-label: at its threshold): n positives, AUC, sensitivity, specificity, PPV, F1."""
    from sklearn.metrics import roc_auc_score

    from mediag.scratch import binary_metrics

    cols = _one_vs_rest(y, task, p.shape[1])
    pred = (p.argmax(1)[:, None] == np.arange(p.shape[1])) if task == "multi-class" else p >= np.asarray(thresholds)
    rows = []
    for k in range(p.shape[1]):
        m = binary_metrics(cols[:, k], pred[:, k])
        both = 0 < cols[:, k].sum() < len(cols)
        rows.append({"class": k, "name": (names or {}).get(k, str(k)), "n": int(cols[:, k].sum()),
                     "auc": float(roc_auc_score(cols[:, k], p[:, k])) if both else float("nan"),
                     **{key: m[key] for key in ("sensitivity", "specificity", "ppv", "f1")}})
    return rows


def _metrics(y, p, task: str, thresholds, names=None) -> dict:
    """Test metrics: binary at its threshold; multi-class by the largest output; multi-label per column."""
    from mediag.scratch import binary_metrics

    out = {"test_auc": _macro_auc(y, p, task)}
    if task == "binary":
        m = binary_metrics(y[:, 0], p[:, 0] >= thresholds[0])
        out.update({f"test_{k}" if k != "accuracy" else "test_acc": v for k, v in m.items()})
        return out
    per = _per_class(y, p, task, thresholds, names)
    if task == "multi-class":
        out["test_acc"] = float(np.mean(p.argmax(1) == y[:, 0]))
    else:
        out["test_acc"] = float(np.mean((p >= np.asarray(thresholds)) == y.astype(bool)))
    out["test_sensitivity"] = float(np.nanmean([r["sensitivity"] for r in per]))
    out["test_specificity"] = float(np.nanmean([r["specificity"] for r in per]))
    out["per_class"] = per
    return out


def _validate_options(epochs, members, snapshots, shift, jitter, max_side):
    for name, v, low in (("epochs", epochs, 1), ("members", members, 1), ("snapshots", snapshots, 0),
                         ("shift", shift, 0), ("max_side", max_side, 18)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
    if not 0 <= jitter < 1:
        raise ValueError(f"jitter must be in [0, 1), got {jitter!r}")


def class_weights(targets, task: str) -> np.ndarray:
    """Per-film loss weights (N,) from targets (N, outputs): the inverse of each film's class frequency,
    mean 1 (binary: one 0/1 column; multi-class: one-hot rows). Multi-label columns overlap: ValueError."""
    t = np.asarray(targets)
    if task == "binary":
        y = t[:, 0].astype(int)
    elif task == "multi-class":
        y = t.argmax(1)
    else:
        raise ValueError(f"class weights need a binary or multi-class task, got {task!r} (multi-label columns overlap)")
    counts = np.bincount(y)
    w = len(y) / (np.count_nonzero(counts) * counts[y])
    return (w / w.mean()).astype(np.float32)


def train_cnn(x, targets, *, task: str = "multi-label", epochs: int = 12, seed: int = 0, lr: float = 2e-3,
              batch_size: int = 128, schedule: str = "cosine", augmentation=None,
              class_weight: bool = False, filters=(32, 64, 64), dense: int = 64, predict_on: dict | None = None,
              snapshots: int = 0, tta: bool = False, progress=None, tag: str = "") -> dict:
    """Train notebook 03's fixed §4.2 CNN (`build_cnn_keras`) on arrays: the one CNN recipe of the course
    (`mediag classify`, notebook 09 and `mediag.pipeline` call it).

    x: (N, H, W, C) float32 standardised films; targets: (N, outputs) 0/1 floats (multi-class: one-hot);
    task: "binary", "multi-class" or "multi-label" (decides the class weights only). Adam at rate `lr`,
    binary cross-entropy on the sigmoid outputs, minibatches of `batch_size` shuffled with `seed`.
    schedule: "cosine" (the rate falls to 0 over `epochs`) or "constant". augmentation: None (off), keyword
    arguments of `augment` (shift, jitter, rotate, zoom), or a function (x, rng) -> x' (same shape) that
    makes the epoch's copy; either way a fresh random copy of every film each epoch.
    class_weight: weigh each film's loss by the inverse of its class frequency (`class_weights`).
    predict_on: {name: x_name (M, H, W, C)} scored after each of the last `snapshots` epochs (0: after the
    last epoch only), without and, with `tta`, also with test-time augmentation (`predict_tta`).

    Returns {"model": the trained keras model, "losses": [mean training loss per epoch],
    "parts": {"plain": {name: [(M, outputs) per snapshot]}, "tta": {...} (only with `tta`)},
    "p": {name: (M, outputs) mean over the snapshots, with TTA when `tta`}, "seconds": training time}.
    """
    import keras

    from mediag.scratch import build_cnn_keras

    if schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    say = progress or (lambda message: None)
    t0 = time.perf_counter()
    x, targets = np.asarray(x, dtype=np.float32), np.asarray(targets, dtype=np.float32)
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_cnn_keras(tuple(int(v) for v in x.shape[1:]), n_outputs=targets.shape[1], filters=tuple(filters),
                            dense=dense)
    opt = keras.optimizers.Adam(lr)
    model.compile(optimizer=opt, loss="binary_crossentropy")
    weights = class_weights(targets, task) if class_weight else None
    predict_on = predict_on or {}
    keep = max(1, min(snapshots, epochs))
    parts = {kind: {k: [] for k in predict_on} for kind in (("plain", "tta") if tta else ("plain",))}
    losses = []
    for epoch in range(1, epochs + 1):
        if schedule == "cosine":
            opt.learning_rate.assign(lr * 0.5 * (1 + np.cos(np.pi * (epoch - 1) / epochs)))
        xt = (augmentation(x, rng) if callable(augmentation) else augment(x, rng, **augmentation)) if augmentation \
            else x
        hist = model.fit(xt, targets, sample_weight=weights, epochs=1, batch_size=batch_size, verbose=0,
                         shuffle=True)
        losses.append(float(hist.history["loss"][-1]))
        say(f"{tag}epoch {epoch}/{epochs}: loss {losses[-1]:.4f}")
        if epoch > epochs - keep:
            for name, xs in predict_on.items():
                views = predict_tta(model, xs, tta, both=True) if tta else (predict_tta(model, xs, False),)
                for kind, p_kind in zip(parts, views):
                    parts[kind][name].append(p_kind)
    kind = "tta" if tta else "plain"
    p = {name: np.mean(parts[kind][name], 0) for name in predict_on}
    return {"model": model, "losses": losses, "parts": parts, "p": p, "seconds": time.perf_counter() - t0}


def _train_in_worker(kwargs: dict, threads: int, prefix: str | None) -> dict:
    """One `train_cnn` call in a worker process: TensorFlow with this CPU's oneDNN kernels (imported here first),
    `threads` threads; returns the weights instead of the model (a Keras model does not cross processes)."""
    import sys

    from mediag.repro import setup

    setup(seed=kwargs.get("seed", 0), threads=threads, torch=False, onednn="native")
    if prefix is not None:
        kwargs = {**kwargs, "progress": lambda m: print(f"{prefix}{m}", file=sys.stderr, flush=True)}
    out = train_cnn(**kwargs)
    model = out.pop("model")
    out["weights"] = model.get_weights()
    out["config"] = {"input_shape": tuple(int(v) for v in model.input_shape[1:]),
                     "n_outputs": int(model.output_shape[-1]), "filters": tuple(kwargs.get("filters", (32, 64, 64))),
                     "dense": int(kwargs.get("dense", 64))}
    return out


def train_cnns(calls: list[dict], workers: int = 0, keep_models: bool = True, progress_prefix: str | None = None,
               progress=None) -> list[dict]:
    """Several `train_cnn` runs (each a dict of its keyword arguments, x and targets included), in order.

    workers = 0: one after the other in this process. workers >= 1: up to that many worker processes (spawned,
    one thread each, TensorFlow's oneDNN kernels on: about half the CPU time of the default kernels for this
    network), so two networks train at once on two cores; each worker
    prints its progress lines to stderr after `progress_prefix` (None: silent). With `keep_models`, each
    result's "model" is rebuilt here from the worker's weights (this imports Keras here); otherwise the
    result holds "weights" only. Returns the `train_cnn` results, in the order of `calls`.
    """
    if workers <= 0:
        return [train_cnn(**call, progress=progress) for call in calls]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=min(workers, len(calls)),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_train_in_worker, call, 1, progress_prefix) for call in calls]
        results = [f.result() for f in futures]
    if keep_models:
        from mediag.scratch import build_cnn_keras

        for r in results:
            c = r["config"]
            r["model"] = build_cnn_keras(c["input_shape"], n_outputs=c["n_outputs"], filters=c["filters"],
                                         dense=c["dense"])
            r["model"].set_weights(r["weights"])
    return results


def decision_thresholds(y_train, y_val, p_val, rule: str = "balanced", class_weighted: bool = True) -> list[float]:
    """Decision threshold of each binary output (binary: one; multi-label: one per column) from training and
    validation data only. y_train (N, L), y_val (M, L) 0/1 labels, p_val (M, L) probabilities.

    rule "balanced": the point where the network weighs both classes equally: p = 0.5 for a class-weighted
    network (its loss saw balanced classes), else the column's training prevalence (Bayes' rule with equal
    priors). Nothing is fitted, so the threshold does not move with the validation split's own mix of easy
    and hard films. rule "youden": maximise Youden's J on validation (notebook 09's `youden_threshold`;
    0.5 for a column with a single class in validation).
    """
    from mediag.scratch import youden_threshold

    if rule not in ("balanced", "youden"):
        raise ValueError(f"threshold rule must be 'balanced' or 'youden', got {rule!r}")
    y_train, y_val, p_val = np.asarray(y_train), np.asarray(y_val), np.asarray(p_val)
    out = []
    for k in range(p_val.shape[1]):
        if rule == "balanced":
            out.append(0.5 if class_weighted else float(y_train[:, k].mean()))
        else:
            both = 0 < y_val[:, k].sum() < len(y_val)
            out.append(float(youden_threshold(y_val[:, k], p_val[:, k])) if both else 0.5)
    return out


def fit_and_score(npz="pneumoniamnist", epochs: int = DEFAULTS["epochs"], seed: int = 0,
                  members: int = DEFAULTS["members"], shift: int = DEFAULTS["shift"],
                  jitter: float = DEFAULTS["jitter"], class_weight: bool = DEFAULTS["class_weight"],
                  snapshots: int = DEFAULTS["snapshots"], tta: bool = DEFAULTS["tta"], lr: float = DEFAULTS["lr"],
                  batch_size: int = DEFAULTS["batch_size"], max_side: int = DEFAULTS["max_side"],
                  rotate: float = DEFAULTS["rotate"], zoom: float = DEFAULTS["zoom"],
                  per_image: bool = DEFAULTS["per_image"], threshold: str = DEFAULTS["threshold"], workers: int = 0,
                  keep_models: bool = True,
                  progress=None, progress_prefix: str | None = None) -> dict:
    """Train the §4.2 CNN recipe on a MedMNIST-format `.npz` (a path or a MedMNIST name) and score its test split.

    Returns the metrics (test_auc, test_acc, test_sensitivity, test_specificity, ..., threshold, val_auc,
    task, n_train, n_val, n_test, seconds; per_class for multi-class and multi-label) and the arrays
    y_val, p_val (N_val, outputs), y_test, p_test (N_test, outputs), and `parts` (one per member: its
    snapshots' predictions without and with TTA, see `train_cnn`), `models` (the Keras networks) and
    `standardise` (for `predict` on new images). Member k uses seed `seed` + k. `threshold`: the rule of
    `decision_thresholds`; `workers` >= 1 trains the members in that many processes (`train_cnns`), and
    `keep_models=False` then skips rebuilding their Keras models here (`models` holds None; no `predict`).
    `progress(message)` gets the progress lines (workers print theirs to stderr after `progress_prefix`).
    Raises FileNotFoundError / ValueError with a one-line message for bad input.
    """
    from mediag.data.medmnist import load
    from mediag.scratch import cnn_feature_hw

    say = progress or (lambda message: None)
    _validate_options(epochs, members, snapshots, shift, jitter, max_side)
    if threshold not in ("balanced", "youden"):
        raise ValueError(f"threshold rule must be 'balanced' or 'youden', got {threshold!r}")
    snapshots = min(snapshots, epochs)                  # "the last k epochs" of a shorter run: all of them
    t_start = time.perf_counter()
    data = load(npz)
    task, n_out = describe_task(data)
    raw = {s: np.asarray(getattr(data, f"{s}_images")) for s in ("train", "val", "test")}
    shape = raw["train"].shape[1:] if raw["train"].ndim == 4 else (*raw["train"].shape[1:], 1)
    if min(cnn_feature_hw(shape[:2])) < 1:
        raise ValueError(f"{data.name}: images of {shape[0]}×{shape[1]} pixels are too small for the §4.2 CNN "
                         "(three 3×3 convolutions and two 2×2 poolings need at least 18×18)")
    for s in ("val", "test"):
        other = raw[s].shape[1:]
        if other[:2] != shape[:2] or (len(other) == 3 and other[2] != shape[2]) or (len(other) == 2 and shape[2] != 1):
            raise ValueError(f"{data.name}: {s}_images are {other}, train_images {raw['train'].shape[1:]}; "
                             "all splits need the same image size")
    raw = {s: resize_images(v, max_side) for s, v in raw.items()}
    train01 = raw["train"].astype(np.float32).reshape(len(raw["train"]), -1, shape[2]) / 255.0
    mean, sd = train01.mean((0, 1)), train01.std((0, 1))                 # training statistics only
    sd[sd == 0] = 1.0
    x = {s: _inputs(v, mean, sd, per_image) for s, v in raw.items()}
    y = {s: np.asarray(getattr(data, f"{s}_labels")) for s in ("train", "val", "test")}
    hw = x["train"].shape[1:]
    say(f"{data.name}: {task}, {n_out} output(s); {len(y['train'])} / {len(y['val'])} / {len(y['test'])} images "
        f"of {shape[0]}×{shape[1]}×{shape[2]}" + (f", resized to {hw[0]}×{hw[1]}" if hw[:2] != shape[:2] else ""))

    aug = {"shift": shift, "jitter": jitter, "rotate": rotate, "zoom": zoom}
    weighted = class_weight and task != "multi-label"           # multi-label columns overlap: no class weights
    calls = [dict(x=x["train"], targets=_targets(y["train"], task, n_out), task=task, epochs=epochs, seed=seed + k,
                  lr=lr, batch_size=batch_size, schedule="cosine", augmentation=aug if any(aug.values()) else None,
                  class_weight=weighted, predict_on={"val": x["val"], "test": x["test"]}, snapshots=snapshots,
                  tta=tta, tag=f"network {k + 1}/{members}, " if members > 1 else "") for k in range(members)]
    if workers >= 1:
        say(f"training {members} network{'s' if members > 1 else ''} in {min(workers, members)} worker "
            f"process{'es' if min(workers, members) > 1 else ''}")
    runs = train_cnns(calls, workers, keep_models, progress_prefix=progress_prefix, progress=say)
    p_val = np.mean([r["p"]["val"] for r in runs], 0)
    p_test = np.mean([r["p"]["test"] for r in runs], 0)
    thresholds = None
    if task != "multi-class":
        thresholds = decision_thresholds(y["train"], y["val"], p_val, threshold, weighted)
    result = {"file": Path(str(npz)).name, "name": data.name, "task": task, "n_outputs": n_out,
              "n_train": len(y["train"]), "n_val": len(y["val"]), "n_test": len(y["test"]),
              "image_shape": [int(v) for v in shape], "input_shape": [int(v) for v in hw],
              "epochs": epochs, "members": members, "seed": seed, "shift": shift, "jitter": jitter,
              "rotate": rotate, "zoom": zoom, "per_image": bool(per_image), "class_weight": bool(class_weight),
              "snapshots": snapshots, "tta": bool(tta), "threshold_rule": threshold,
              "val_auc": _macro_auc(y["val"], p_val, task),
              "threshold": thresholds[0] if task == "binary" else thresholds,
              **_metrics(y["test"], p_test, task, thresholds, data.label_names),
              "seconds": time.perf_counter() - t_start,
              "y_val": y["val"], "p_val": p_val, "y_test": y["test"], "p_test": p_test,
              "parts": [r["parts"] for r in runs], "models": [r.get("model") for r in runs],
              "standardise": (mean, sd, int(max_side), bool(per_image)), "batch_size": batch_size, "lr": lr}
    say(f"done in {result['seconds']:.0f} s")
    return result


def model_inputs(result: dict, images) -> np.ndarray:
    """The network inputs (N, H', W', C) float32 of new uint8 images (N, H, W[, C]) for a `fit_and_score`
    result: resized and standardised as its training films were."""
    mean, sd, max_side, per_image = result["standardise"]
    return _inputs(resize_images(images, max_side), mean, sd, per_image)


def predict(result: dict, images, tta: bool | None = None) -> np.ndarray:
    """Probabilities (N, outputs) of new uint8 images (N, H, W[, C]) from a `fit_and_score` result: the same
    resizing, training-set standardisation, TTA (by default as trained) and ensemble mean."""
    x = model_inputs(result, images)
    tta = result["tta"] if tta is None else tta
    return np.mean([predict_tta(model, x, tta) for model in result["models"]], 0)


def format_result(metrics: dict) -> str:
    """The CLI's table: one `key  value` line per scalar, then a per-class table when there is one."""
    scalars = {k: v for k, v in metrics.items() if k != "per_class"}
    width = max(map(len, scalars))
    lines = []
    for key, value in scalars.items():
        shown = f"{value:.4f}" if isinstance(value, float) else (
            "[" + ", ".join(f"{v:.3f}" for v in value) + "]" if isinstance(value, list) and value
            and isinstance(value[0], float) else str(value))
        lines.append(f"{key.ljust(width)}  {shown}")
    if metrics.get("per_class"):
        rows = metrics["per_class"]
        name_w = max(5, *(len(r["name"]) for r in rows))
        lines += ["", f"{'class'.ljust(name_w)}  {'n':>5}  {'AUC':>6}  {'sens':>6}  {'spec':>6}  {'PPV':>6}  {'F1':>6}"]
        lines += [f"{r['name'].ljust(name_w)}  {r['n']:>5}  " + "  ".join(f"{r[k]:6.3f}" for k in
                  ("auc", "sensitivity", "specificity", "ppv", "f1")) for r in rows]
    return "\n".join(lines)
