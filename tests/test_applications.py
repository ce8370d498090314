"""Notebook 10: the DICOM display helpers (mediag.plotting) and mediag.scratch.applications_responsible_ai
(measurements, the logistic-regression trainer and the AUC), on shapes the notebook never used, against
torch and scikit-learn, plus the error messages for bad input."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mediag import dicom, plotting  # noqa: E402
from mediag.scratch import applications_responsible_ai as app  # noqa: E402


def test_aspect_and_scale_bar():
    assert plotting.aspect_from_spacing(None) == 1.0
    assert plotting.aspect_from_spacing((0.3, 0.6)) == pytest.approx(0.5)
    assert plotting.scale_bar_mm(7.0) == 1.0
    assert plotting.scale_bar_mm(99.0) == 10.0
    assert plotting.scale_bar_mm(2314.0) == 200.0
    for bad in [(0, 1), (-1, 1), (np.nan, 1)]:
        with pytest.raises(ValueError, match="spacing_mm must be two positive numbers"):
            plotting.aspect_from_spacing(bad)
    with pytest.raises(ValueError, match="field_mm"):
        plotting.scale_bar_mm(0)


def test_display_flips_follow_patient_orientation():
    assert plotting.display_flips(["L", "F"]) == (False, False)
    assert plotting.display_flips(["R", "F"]) == (False, True)
    assert plotting.display_flips(["R", "H"]) == (True, True)
    assert plotting.display_flips(None) == (False, False)
    assert plotting.display_flips("") == (False, False)


def test_show_dicom_draws_in_mm_and_inverts_monochrome1():
    img = dicom.read(dicom.testdata("CT_small.dcm"))            # 128 x 128, 0.66 mm
    fig, ax = plt.subplots()
    shown = plotting.show_dicom(ax, img, "bone")
    np.testing.assert_allclose(shown, dicom.window(img.pixels, *dicom.WINDOWS["bone"]))
    left, right, bottom, top = ax.images[0].get_extent()
    assert right == pytest.approx(128 * img.spacing_mm[1]) and bottom == pytest.approx(128 * img.spacing_mm[0])
    assert "bone window" in ax.get_title()
    plt.close(fig)
    tibia = dicom.read(dicom.testdata("RG3_UNCI.dcm"))           # MONOCHROME1, PatientOrientation R\F
    fig, ax = plt.subplots()
    shown = plotting.show_dicom(ax, tibia)
    np.testing.assert_array_equal(shown, (1 - dicom.window(tibia.pixels, *tibia.window))[:, ::-1])
    assert "spacing unknown" in ax.get_title() and "flipped left-right" in ax.get_title()
    plt.close(fig)


def test_draw_scale_bar():
    fig, ax = plt.subplots()
    assert plotting.draw_scale_bar(ax, 245.0, 100.0, estimated=True) == 20.0
    assert len(ax.lines) == 1 and ax.texts[0].get_text() == "≈20 mm"
    x = ax.lines[0].get_xdata()
    assert x[1] - x[0] == pytest.approx(20.0)
    plt.close(fig)


def test_show_dicom_needs_a_frame_for_multiframe():
    img = dicom.read(dicom.testdata("emri_small.dcm"))
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="pass frame="):
        plotting.show_dicom(ax, img)
    assert plotting.show_dicom(ax, img, frame=3).shape == (64, 64)
    plt.close(fig)


def test_roi_distance_diameter_ctr():
    values = np.arange(35, dtype=float).reshape(5, 7)
    mean, sd, n = app.roi_stats(values, (2, 3), 1)
    assert n == 5 and mean == pytest.approx(values[2, 3])    # a plus-shaped disc is symmetric
    with pytest.raises(ValueError, match="holds no pixel"):
        app.roi_stats(values, (50, 50), 1)
    with pytest.raises(ValueError, match="one 2-D image"):
        app.roi_stats(np.zeros((2, 5, 7)), (2, 3), 1)
    assert app.distance_mm((1, 1), (4, 5), (2.0, 0.5)) == pytest.approx(np.hypot(6.0, 2.0))
    with pytest.raises(ValueError, match="unknown"):
        app.distance_mm((0, 0), (1, 1), None)
    with pytest.raises(ValueError, match="two positive numbers"):
        app.distance_mm((0, 0), (1, 1), (0.0, 0.5))
    disc = np.hypot(*np.mgrid[-40:41, -40:41]) <= 30.5
    assert app.equivalent_diameter_mm(disc, (0.5, 0.5)) == pytest.approx(30.5, rel=0.01)
    heart, lungs = np.zeros((9, 11), bool), np.zeros((9, 11), bool)
    lungs[2:7, 1:10] = True
    heart[4:6, 3:7] = True
    assert app.cardiothoracic_ratio(heart, lungs) == pytest.approx(4 / 9)
    with pytest.raises(ValueError, match="lung mask is empty"):
        app.cardiothoracic_ratio(heart, np.zeros_like(lungs))
    with pytest.raises(ValueError, match="one shape"):
        app.cardiothoracic_ratio(heart, lungs[:5])


def test_pool_features_odd_sizes_and_errors():
    x = np.random.default_rng(0).random((3, 6, 9))
    f = app.pool_features(x, 3)
    assert f.shape == (3, 6)
    assert f[1, 4] == pytest.approx(x[1, 3:6, 3:6].mean())
    with pytest.raises(ValueError, match="divisible by 4"):
        app.pool_features(x, 4)


def test_logistic_gradient_matches_torch_on_odd_shapes():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    Z, y = rng.normal(size=(7, 3)), np.array([0, 1, 1, 0, 1, 0, 0], float)
    w, b = rng.normal(size=3), -0.4
    loss, gw, gb = app.logistic_loss_grad(w, b, Z, y, 0.05)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    lt = torch.nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(Z) @ wt + bt, torch.from_numpy(y))
    (lt + 0.025 * wt @ wt).backward()
    assert loss == pytest.approx((lt + 0.025 * wt @ wt).item(), rel=1e-12)
    np.testing.assert_allclose(gw, wt.grad.numpy(), rtol=1e-10)
    assert gb == pytest.approx(bt.grad.item(), rel=1e-10)


def test_fit_logistic_matches_sklearn_multi_output():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(4)
    X = rng.normal(size=(91, 5)) * [1, 10, 0.1, 3, 1] + 2
    Y = np.stack([(X[:, 0] + rng.normal(size=91) > 2), (X[:, 3] - X[:, 1] / 10 > 5.5)], axis=1).astype(int)
    model = app.fit_logistic(X, Y, l2=0.05)
    Z = (X - model["mean"]) / model["scale"]
    for k in range(2):
        ref = LogisticRegression(C=1 / (0.05 * len(X)), tol=1e-12, max_iter=10_000).fit(Z, Y[:, k])
        np.testing.assert_allclose(model["W"][:, k], ref.coef_[0], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(app.predict_logistic(model, X)[:, k], ref.predict_proba(Z)[:, 1], atol=1e-7)
    with pytest.raises(ValueError, match="0/1 labels"):
        app.fit_logistic(X, Y * 2)
    with pytest.raises(ValueError, match="0/1 labels"):
        app.fit_logistic(X[:10], Y)


def test_flip_labels():
    # AUC and bootstrap intervals are notebook 09's auc_rank / bootstrap_ci: tested in test_evaluation.py
    labels = np.zeros((1000, 3), np.int8)
    flipped = app.flip_labels(labels, 0.25, seed=2)
    assert flipped.dtype == np.int8 and labels.sum() == 0
    assert 0.2 < flipped.mean() < 0.3
    assert app.flip_labels(labels, 0.0).sum() == 0
    with pytest.raises(ValueError, match="rate is a probability"):
        app.flip_labels(labels, 1.5)


def test_registered_checks_run_on_fresh_inputs():
    from mediag.verify import REGISTRY, report

    assert any("Newton logistic regression" in title for title in REGISTRY)
    before = len(report().rows)
    app.check_logistic_fit_auc(np.random.default_rng(11))
    rows = report().rows[before:]
    assert len(rows) == 2 and all(r.passed for r in rows)
