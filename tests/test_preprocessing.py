"""Notebook 02's exported preprocessing functions, on shapes the notebook never used, against OpenCV/TF."""

import cv2
import numpy as np
import pytest

from mediag.scratch.preprocessing import (
    augment,
    clahe,
    equalize_hist,
    invert_affine,
    minmax_normalize,
    nl_means,
    preprocess,
    psnr,
    rotation_matrix,
    ssim,
    validate_image,
    warp_affine,
    zscore,
)

RNG = np.random.default_rng(123)


@pytest.mark.parametrize("shape, h, t, s", [((13, 29), 7.0, 5, 11), ((31, 17), 25.0, 7, 21), ((10, 10), 3.0, 3, 5)])
def test_nl_means_equals_opencv(shape, h, t, s):
    u8 = RNG.integers(0, 256, shape, dtype=np.uint8)
    ref = cv2.fastNlMeansDenoising(u8, None, h, t, s)
    np.testing.assert_array_equal(nl_means(u8, h, template=t, search=s, opencv=True).astype(np.uint8), ref)
    assert np.abs(np.rint(nl_means(u8, h, template=t, search=s)) - ref).max() <= 3


def test_psnr_ssim():
    a = RNG.random((27, 35))
    b = np.clip(a + RNG.normal(0, 0.05, a.shape), 0, 1)
    u, v = (a * 255).astype(np.uint8), (b * 255).astype(np.uint8)
    assert psnr(u, v, 255) == pytest.approx(cv2.PSNR(u, v), rel=1e-12)
    assert psnr(a, a) == float("inf")
    tf = pytest.importorskip("tensorflow")
    ref = float(tf.image.ssim(a[..., None], b[..., None], max_val=1.0))
    assert ssim(a, b) == pytest.approx(ref, rel=1e-5)
    assert ssim(a, a) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="2-D images of one shape"):
        ssim(a, b[:10])


def test_minmax_zscore():
    x = RNG.normal(3, 7, (5, 9, 2))
    np.testing.assert_allclose(minmax_normalize(x, -1, 2), cv2.normalize(x, None, -1, 2, cv2.NORM_MINMAX, cv2.CV_64F),
                               rtol=1e-10, atol=1e-14)
    assert np.all(minmax_normalize(np.full((3, 4), 5.0)) == 0)
    z = zscore(x)
    assert abs(z.mean()) < 1e-12 and abs(z.std() - 1) < 1e-12


@pytest.mark.parametrize("center, angle, scale", [((0.0, 0.0), 33.0, 0.7), ((12.5, 3.25), -170.0, 1.3)])
def test_rotation_and_warp(center, angle, scale):
    M = rotation_matrix(center, angle, scale)
    np.testing.assert_allclose(M, cv2.getRotationMatrix2D(center, angle, scale), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(invert_affine(M)[:, :2] @ M[:, :2], np.eye(2), atol=1e-12)
    img = RNG.random((19, 26))
    for dsize in [(26, 19), (31, 14)]:                       # output size different from input too
        ref = cv2.warpAffine(img, M, dsize, flags=cv2.INTER_LINEAR)
        np.testing.assert_allclose(warp_affine(img, M, dsize, opencv=True), ref, rtol=1e-10, atol=1e-12)
        assert np.abs(warp_affine(img, M, dsize) - ref).max() < 1 / 32


def test_equalize_hist():
    for shape in [(7, 300), (1, 1)]:
        u = (RNG.random(shape) ** 3 * 200 + 20).astype(np.uint8)
        np.testing.assert_array_equal(equalize_hist(u), cv2.equalizeHist(u))
    with pytest.raises(ValueError, match="uint8"):
        equalize_hist(np.zeros((4, 4), np.uint16))


def test_augment_keeps_range_shape_and_side():
    img = RNG.random((37, 41)).astype(np.float32)
    mask = np.zeros((37, 41), bool)
    mask[10:20, 28:36] = True                               # image right = patient's left
    for seed in range(5):
        out, m = augment(img, np.random.default_rng(seed), masks={"m": mask})
        assert out.shape == img.shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
        assert np.nonzero(m["m"])[1].mean() > 41 / 2
    a = augment(img, np.random.default_rng(0))
    np.testing.assert_array_equal(a, augment(img, np.random.default_rng(0)))


def test_preprocess_paths_and_errors():
    hu = RNG.normal(0, 500, (40, 50))
    p = preprocess(hu, window=(40, 400), size=(20, 25))
    assert p.shape == (20, 25) and p.dtype == np.float32 and 0 <= p.min() and p.max() <= 1
    np.testing.assert_allclose(preprocess(hu[..., None], window=(40, 400)),
                               np.clip((hu - (40 - 0.5)) / (400 - 1) + 0.5, 0, 1), rtol=1e-6, atol=1e-7)
    u8 = RNG.integers(0, 256, (11, 13), dtype=np.uint8)
    np.testing.assert_allclose(preprocess(u8, size=7).shape, (7, 7))
    d = preprocess(RNG.random((16, 18)), denoise_h=0.1)
    assert d.shape == (16, 18)
    bad = [
        (np.zeros((10, 10), np.uint16), "pass window"),
        (np.zeros((2, 10, 10)), "one grey image"),
        (np.zeros((10, 10, 3)), "one grey image"),
        (np.zeros((5, 5)), "H, W >= 8"),
        (np.full((10, 10), np.inf), "NaN or infinity"),
        (np.zeros((10, 10), bool), "not numeric"),
        (np.array([["a"] * 10] * 10), "not numeric"),
        (RNG.random((10, 10)) * 2, "not \\[0, 1\\]"),
    ]
    for x, msg in bad:
        with pytest.raises(ValueError, match=msg) as e:
            preprocess(x)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="width must be > 0"):
        preprocess(hu, window=(40, 0))


def test_validate_image():
    assert validate_image(np.zeros((9, 12, 1))).shape == (9, 12)
    with pytest.raises(ValueError, match="one grey image"):
        validate_image(np.zeros(20))


@pytest.mark.parametrize("shape, grid, clip_limit", [
    ((64, 64), (8, 8), 2.0),        # tiles fit exactly
    ((61, 90), (8, 8), 2.0),        # extended by reflection on both axes
    ((64, 50), (8, 5), 0.0),        # rows fit, columns do not; no clipping
    ((17, 23), (3, 7), 40.0),
    ((200, 31), (1, 1), 1.0),       # one tile: no blending
])
def test_clahe_equals_opencv(shape, grid, clip_limit):
    rng = np.random.default_rng(sum(shape))
    image = np.clip(rng.normal(120, 40, shape), 0, 255).astype(np.uint8)
    ref = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=grid).apply(image)
    np.testing.assert_array_equal(clahe(image, clip_limit, grid), ref)


def test_clahe_rejects_bad_input():
    with pytest.raises(ValueError, match="needs a 2-D uint8 image"):
        clahe(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="tile_grid must hold two positive integers"):
        clahe(np.zeros((8, 8), np.uint8), tile_grid=(0, 2))


def test_registered_checks_name_formula_direction_and_reference():
    import mediag.scratch.preprocessing as module
    from mediag.verify import METADATA, REGISTRY

    mine = [title for title, fn in REGISTRY.items() if fn.__module__ == module.__name__]
    assert len(mine) == 3
    for title in mine:
        meta = METADATA[title]
        assert meta["formula"] and meta["direction"] in ("forward", "backward") and meta["reference"], (title, meta)
