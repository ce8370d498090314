"""mediag.dicom: modality units, windowing against pydicom, spacing, display, and clear errors."""

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut, apply_voi_lut, apply_windowing

from mediag import dicom


def pydicom_window_01(values, ds):
    """pydicom's windowing output rescaled to [0, 1] using its own output range."""
    low = apply_windowing(np.array([-1e12]), ds)[0]
    high = apply_windowing(np.array([1e12]), ds)[0]
    return (apply_windowing(np.asarray(values, dtype=np.float64), ds) - low) / (high - low)


def test_testdata_finds_files_and_names_missing_ones():
    assert dicom.testdata("CT_small.dcm").is_file()
    with pytest.raises(dicom.DicomError, match="no-such-file.dcm"):
        dicom.testdata("no-such-file.dcm")


@pytest.mark.parametrize("name", ["CT_small.dcm", "693_UNCI.dcm", "MR_small.dcm", "MR2_UNCI.dcm", "RG1_UNCI.dcm"])
def test_modality_units_equal_pydicom(name):
    img = dicom.read(dicom.testdata(name))
    ds = img.dataset
    ref = np.asarray(apply_modality_lut(ds.pixel_array, ds), dtype=np.float64)
    assert img.pixels.dtype == np.float64
    np.testing.assert_allclose(img.pixels, ref, rtol=1e-12, atol=0)


def test_ct_is_in_hounsfield_units():
    img = dicom.read(dicom.testdata("CT_small.dcm"))
    assert img.modality == "CT"
    assert img.dataset.RescaleIntercept == -1024
    # stored values are unsigned-like counts; HU go below zero (air ~ -1000, fat ~ -100)
    assert img.pixels.min() < -500 and img.pixels.max() > 500


def test_enhanced_ct_uses_functional_group_rescale():
    img = dicom.read(dicom.testdata("eCT_Supplemental.dcm"))
    assert img.pixels.shape == (2, 512, 512) and img.n_frames == 2
    stored = img.dataset.pixel_array.astype(np.float64)
    np.testing.assert_array_equal(img.pixels, stored - 1024.0)  # the intercept sits in the shared groups
    assert img.spacing_mm == pytest.approx((0.388672, 0.388672))
    assert img.window == (49.0, 102.0)


def test_multiframe_and_colour_shapes():
    assert dicom.read(dicom.testdata("emri_small.dcm")).pixels.shape == (10, 64, 64)
    us = dicom.read(dicom.testdata("US1_UNCI.dcm"))
    assert us.pixels.shape == (480, 640, 3) and us.is_color and us.photometric == "RGB"
    shown = dicom.to_display(us)
    assert shown.shape == (480, 640, 3) and 0 <= shown.min() and shown.max() <= 1


def test_compressed_jpeg2000_decodes():
    img = dicom.read(dicom.testdata("JPEG2000.dcm"))
    assert img.modality == "NM" and img.pixels.shape == (1024, 256)


def test_spacing_zero_means_unknown():
    assert dicom.read(dicom.testdata("RG1_UNCI.dcm")).spacing_mm is None  # stored as 0\0
    assert dicom.read(dicom.testdata("CT_small.dcm")).spacing_mm == pytest.approx((0.661468, 0.661468))


@pytest.mark.parametrize("center,width", [(40.0, 80.0), (-600.0, 1500.0), (0.5, 1.0), (13.25, 7.0), (1000.0, 2.0)])
def test_window_equals_pydicom_linear(center, width):
    rng = np.random.default_rng(7)
    ds = pydicom.dcmread(dicom.testdata("CT_small.dcm"))
    ds.WindowCenter, ds.WindowWidth = center, width
    values = np.concatenate([rng.uniform(-2000, 2000, size=(37,)), [center - width / 2, center + width / 2, center]])
    values = values.reshape(5, 8)
    ours = dicom.window(values, center, width)
    assert ours.shape == (5, 8) and ours.min() >= 0 and ours.max() <= 1
    np.testing.assert_allclose(ours, pydicom_window_01(values, ds), rtol=1e-10, atol=1e-12)


def test_window_on_file_matches_apply_voi_lut():
    ds = pydicom.dcmread(dicom.testdata("MR_small.dcm"))
    img = dicom.read(dicom.testdata("MR_small.dcm"))
    ref = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)
    low = apply_windowing(np.array([-1e12]), ds)[0]
    high = apply_windowing(np.array([1e12]), ds)[0]
    ours = dicom.window(img.pixels, *img.window)
    np.testing.assert_allclose(ours, (ref - low) / (high - low), rtol=1e-10, atol=1e-12)


def test_monochrome1_is_inverted_for_display():
    img = dicom.read(dicom.testdata("RG1_UNCI.dcm"))
    assert img.photometric == "MONOCHROME1"
    shown = dicom.to_display(img)
    np.testing.assert_allclose(shown, 1.0 - dicom.window(img.pixels, *img.window))
    # the brightest stored value (air for MONOCHROME1) is displayed darkest
    assert shown.flat[np.argmax(img.pixels)] == shown.min()


def test_presets_and_explicit_windows():
    assert set(dicom.WINDOWS) == {"lung", "mediastinum", "bone", "brain", "subdural", "stroke"}
    img = dicom.read(dicom.testdata("CT_small.dcm"))
    np.testing.assert_array_equal(dicom.to_display(img, "lung"), dicom.window(img.pixels, -600, 1500))
    np.testing.assert_array_equal(dicom.to_display(img, (40, 80)), dicom.window(img.pixels, 40, 80))
    full = dicom.to_display(img)  # no stored window: the full range maps to exactly [0, 1]
    assert full.min() == 0.0 and full.max() == 1.0


def test_window_rejects_bad_arguments():
    with pytest.raises(ValueError, match="width must be >= 1"):
        dicom.window(np.zeros(3), 0, 0.5)
    with pytest.raises(ValueError, match="finite"):
        dicom.window(np.zeros(3), np.nan, 10)
    img = dicom.read(dicom.testdata("CT_small.dcm"))
    with pytest.raises(ValueError, match="unknown window preset 'liver'"):
        dicom.to_display(img, "liver")
    with pytest.raises(TypeError, match="DicomImage"):
        dicom.to_display(img.pixels)


def test_errors_name_the_file(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(dicom.DicomError, match="notes.txt: not a DICOM file"):
        dicom.read(text)
    data = dicom.testdata("CT_small.dcm").read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(dicom.DicomError, match="cut.dcm: cannot decode pixel data"):
        dicom.read(cut)
    header_only = tmp_path / "header.dcm"
    header_only.write_bytes(data[:1000])
    with pytest.raises(dicom.DicomError, match="header.dcm: truncated"):
        dicom.read(header_only)
    with pytest.raises(dicom.DicomError, match="rtplan.dcm: has no pixel data"):
        dicom.read(dicom.testdata("rtplan.dcm"))
    with pytest.raises(FileNotFoundError, match="missing.dcm"):
        dicom.read(tmp_path / "missing.dcm")
    with pytest.raises(dicom.DicomError, match="is a folder"):
        dicom.read(tmp_path)


def test_errors_are_one_line(tmp_path):
    text = tmp_path / "x.txt"
    text.write_text("x")
    with pytest.raises(dicom.DicomError) as exc:
        dicom.read(text)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_bigendian.dcm",
                                  "MR_small_implicit.dcm"])
def test_other_transfer_syntaxes_give_the_same_pixels(name):
    reference = dicom.read(dicom.testdata("MR_small.dcm")).pixels
    np.testing.assert_array_equal(dicom.read(dicom.testdata(name)).pixels, reference)


def test_missing_decoder_names_the_transfer_syntax():
    try:
        dicom.read(dicom.testdata("JPEG-LL.dcm"))
    except dicom.DicomError as exc:
        assert "JPEG-LL.dcm: cannot decode pixel data" in str(exc) and "install a pydicom decoder" in str(exc)
    else:
        pytest.skip("a JPEG lossless decoder is installed here")


def test_exported_window_loops_on_odd_shapes():
    from mediag.scratch import window_loops

    rng = np.random.default_rng(3)
    values = rng.uniform(-1200, 1200, size=(3, 5, 2))
    for center, width in [(0.0, 1.0), (-37.5, 3.0), (300.0, 999.0)]:
        np.testing.assert_allclose(window_loops(values, center, width), dicom.window(values, center, width),
                                   rtol=1e-12, atol=1e-15)


def test_registered_checks_pass_on_new_seeds():
    from mediag.scratch.medical_images_dicom import check_dicom_window, check_modality_rescale

    for seed in range(5):
        check_dicom_window(np.random.default_rng(seed + 100))
        check_modality_rescale(np.random.default_rng(seed + 200))
