"""Notebook 09's metrics, calibration, Grad-CAM and occlusion, on shapes the notebook never used."""

import numpy as np
import pytest
import sklearn.metrics as skm

from mediag.scratch import binary_metrics, confusion_counts
from mediag.scratch.evaluation_explainability import (
    auc_rank,
    auc_trapezoid,
    average_precision,
    bootstrap_ci,
    cam_to_input,
    cnn_logit_gradients,
    conv_cell_centres,
    expected_calibration_error,
    fit_temperature,
    grad_cam,
    grad_cam_tf,
    occlusion_drops,
    occlusion_heat,
    pointing_game,
    pr_curve,
    random_scanners,
    reliability_bins,
    roc_curve,
    simulate_scanner,
    temperature_nll,
    threshold_for_sensitivity,
    youden_threshold,
)
from mediag.scratch.lstm import sigmoid  # notebook 05's, used by 09


@pytest.fixture
def scores():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 37)
    y[:2] = (0, 1)
    return y, np.round(rng.random(37) + 0.4 * y, 1)       # rounded: many ties


def test_confusion_and_rates_match_sklearn(scores):
    y, s = scores
    pred = s >= 0.6
    tn, fp, fn, tp = confusion_counts(y, pred)
    assert [[tn, fp], [fn, tp]] == skm.confusion_matrix(y, pred).tolist()
    m = binary_metrics(y, pred)
    assert m["sensitivity"] == pytest.approx(skm.recall_score(y, pred))
    assert m["specificity"] == pytest.approx(skm.recall_score(y, pred, pos_label=0))
    assert m["ppv"] == pytest.approx(skm.precision_score(y, pred))
    assert m["npv"] == pytest.approx(skm.precision_score(y, pred, pos_label=0))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))


def test_undefined_rates_are_nan():
    m = binary_metrics([0, 0, 1], [0, 0, 0])             # nothing predicted positive: PPV undefined
    assert np.isnan(m["ppv"]) and m["sensitivity"] == 0.0


def test_roc_pr_auc_ap_match_sklearn_with_ties(scores):
    y, s = scores
    fpr, tpr, thr = roc_curve(y, s)
    F, T, TH = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(np.stack([fpr, tpr]), np.stack([F, T]), rtol=1e-12)
    np.testing.assert_allclose(thr[1:], TH[1:])
    ref = skm.roc_auc_score(y, s)
    assert auc_rank(y, s) == pytest.approx(ref, rel=1e-12)
    assert auc_trapezoid(fpr, tpr) == pytest.approx(ref, rel=1e-12)
    p, r, t = pr_curve(y, s)
    P, R, TT = skm.precision_recall_curve(y, s)
    np.testing.assert_allclose(np.stack([p, r]), np.stack([P, R]), rtol=1e-12)
    np.testing.assert_allclose(t, TT)
    assert average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), rel=1e-12)


def test_auc_of_constant_scores_is_one_half():
    assert auc_rank([0, 1, 1, 0, 1], np.zeros(5)) == 0.5


def test_thresholds(scores):
    y, s = scores
    F, T, TH = skm.roc_curve(y, s, drop_intermediate=False)
    assert youden_threshold(y, s) == TH[np.argmax(T - F)]
    t = threshold_for_sensitivity(y, s, 0.9)
    assert binary_metrics(y, s >= t)["sensitivity"] >= 0.9
    assert t == TH[T >= 0.9][0]


def test_bootstrap_is_seeded_and_brackets_the_estimate(scores):
    y, s = scores
    a = bootstrap_ci(y, s, auc_rank, n_boot=200, seed=3)
    b = bootstrap_ci(y, s, auc_rank, n_boot=200, seed=3)
    assert a[:2] == b[:2] and len(a[2]) == 200
    assert a[0] <= auc_rank(y, s) <= a[1]
    groups = np.arange(len(y)) // 3                       # patients with 3 films each
    lo, hi, stats = bootstrap_ci(y, s, auc_rank, n_boot=100, seed=0, groups=groups)
    assert lo <= hi and len(stats) == 100


def test_calibration_bins_and_ece():
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(2)
    p = rng.random(53)
    y = (rng.random(53) < p).astype(int)
    conf, frac, count = reliability_bins(y, p, 7)
    fs, cs = calibration_curve(y, p, n_bins=7)
    np.testing.assert_allclose(frac[count > 0], fs)
    np.testing.assert_allclose(conf[count > 0], cs)
    ece = sum(c / 53 * abs(f - m) for c, f, m in zip(count, frac, conf) if c)
    assert expected_calibration_error(y, p, 7) == pytest.approx(ece)


def test_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(4)
    z = rng.normal(0, 4, 5001)
    y = (rng.random(5001) < sigmoid(z / 2.0)).astype(int)   # true temperature 2
    T = fit_temperature(z, y)
    assert T == pytest.approx(2.0, rel=0.1)
    assert temperature_nll(T, z, y) <= temperature_nll(T * 1.01, z, y)
    assert temperature_nll(T, z, y) <= temperature_nll(T / 1.01, z, y)


def test_grad_cam_gradients_match_torch_and_tf_on_odd_sizes():
    import torch

    from mediag.scratch import build_cnn_keras, cnn_params_from_keras, cnn_torch_from_params

    rng = np.random.default_rng(5)
    model = build_cnn_keras((23, 27, 3), n_outputs=2, filters=(2, 3, 4), dense=5, dtype="float64")
    model.set_weights([rng.normal(0, 0.5, w.shape) for w in model.get_weights()])
    params = cnn_params_from_keras(model)
    x = rng.normal(size=(3, 23, 27, 3))
    z, maps, grads = cnn_logit_gradients(params, x, output=1)
    net = cnn_torch_from_params(params, (23, 27))
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    np.testing.assert_allclose(z, net[:-1](xt)[:, 1].detach().numpy(), rtol=1e-10)
    for layer in range(3):
        A, G = grad_cam_tf(model, x, layer, output=1)
        np.testing.assert_allclose(maps[layer], A, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(grads[layer], G, rtol=1e-9, atol=1e-12 * np.abs(G).max())
    cam = grad_cam(maps[1], grads[1])
    assert cam.shape == maps[1].shape[:3] and (cam >= 0).all()


def test_grad_cam_formulas():
    A = np.arange(24, dtype=float).reshape(1, 2, 3, 4)
    G = np.ones_like(A)
    np.testing.assert_allclose(grad_cam(A, G, "gradcam"), A.sum(-1))
    np.testing.assert_allclose(grad_cam(A, -G, "hirescam"), np.zeros((1, 2, 3)))


def test_cell_centres_and_upsampling():
    assert conv_cell_centres(0) == (1.0, 1) and conv_cell_centres(1) == (3.5, 2) and conv_cell_centres(2) == (8.5, 4)
    cam = np.zeros((1, 5, 5))
    cam[0, 2, 3] = 1.0                                     # layer 2: centre at 8.5 + 4 * (2, 3) = (16.5, 20.5)
    up = cam_to_input(cam, 2, 31)
    r, c = np.unravel_index(up[0].argmax(), up[0].shape)
    assert (r, c) in {(16, 20), (17, 20), (16, 21), (17, 21)}
    assert up.shape == (1, 31, 31)


def test_pointing_game():
    heat = np.zeros((2, 4, 5))
    heat[0, 1, 1] = heat[1, 3, 4] = 1
    masks = np.zeros((2, 4, 5), bool)
    masks[:, 1, 1] = True
    assert pointing_game(heat, masks).tolist() == [True, False]


def test_occlusion_of_a_linear_model():
    rng = np.random.default_rng(6)
    x, w = rng.normal(size=(11, 9, 1)), rng.normal(size=(11, 9, 1))
    drops = occlusion_drops(lambda b: (b * w).sum(axis=(1, 2, 3)), x, patch=3, stride=3, fill=0.0)
    assert drops.shape == (3, 3)
    assert drops[1, 2] == pytest.approx((x * w)[3:6, 6:9].sum())
    heat = occlusion_heat(drops, 3, 3, (11, 9))
    assert heat[10, 0] == 0.0 and heat[4, 7] == pytest.approx(drops[1, 2])


def test_scanner_shift():
    films = np.random.default_rng(0).random((3, 20, 20)).astype(np.float32)
    np.testing.assert_allclose(simulate_scanner(films), films)
    out = simulate_scanner(films, 0, gamma=2.0, gain=0.5, noise_sd=0.0, downsample=2)
    assert out.shape == films.shape and out.dtype == np.float32 and out.max() <= 0.5
    aug = random_scanners(films, 1)
    assert aug.shape == films.shape and 0 <= aug.min() and aug.max() <= 1


@pytest.mark.parametrize("call, message", [
    (lambda: roc_curve([0, 1, 2], [0.1, 0.2, 0.3]), "labels must be 0"),
    (lambda: roc_curve([1, 1], [0.1, 0.2]), "both positive and negative"),
    (lambda: auc_rank([0, 1], [0.1, 0.2, 0.3]), "same length"),
    (lambda: auc_trapezoid([0, 1, 0.5], [0, 1, 1]), "non-decreasing"),
    (lambda: threshold_for_sensitivity([0, 1], [0.1, 0.2], 1.5), "target must be in"),
    (lambda: reliability_bins([0, 1], [0.5, 1.5]), "probabilities must lie in"),
    (lambda: grad_cam(np.zeros((1, 2, 2, 3)), np.zeros((1, 2, 2, 4))), "must both be"),
    (lambda: grad_cam(np.zeros((1, 2, 2, 3)), np.zeros((1, 2, 2, 3)), "cam"), "kind must be"),
    (lambda: pointing_game(np.zeros((1, 3, 3)), np.zeros((1, 3, 4))), "must both be"),
    (lambda: occlusion_drops(lambda b: b.sum((1, 2, 3)), np.zeros((4, 4, 1)), patch=5), "patch"),
    (lambda: simulate_scanner(np.zeros((4, 4))), "expected films"),
    (lambda: bootstrap_ci([0, 1], [0.1, 0.2], auc_rank, groups=[0]), "must match"),
])
def test_bad_input_gives_one_clear_line(call, message):
    with pytest.raises(ValueError, match=message) as exc:
        call()
    assert "\n" not in str(exc.value)
