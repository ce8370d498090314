"""Synthetic chest radiographs: shapes, determinism, ground truth, masks, DICOM export, errors."""

import numpy as np
import pytest

from mediag.data.chest import (
    FINDINGS,
    MASK_NAMES,
    generate,
    labels_of,
    patient_split,
    render,
    sample_findings,
    write_dicom,
)


def test_generate_shapes_and_ranges():
    ds = generate(23, size=48, seed=5, cache=False)
    assert ds.images.shape == (23, 48, 48) and ds.images.dtype == np.float32
    assert 0.0 <= ds.images.min() and ds.images.max() <= 1.0
    assert ds.labels.shape == (23, len(FINDINGS)) and ds.labels.dtype == np.int8
    assert len(ds.records) == len(ds.reports) == len(ds.patient_ids) == 23
    assert set(ds.masks) == set(MASK_NAMES)
    for name, m in ds.masks.items():
        assert m.shape == (23, 48, 48) and m.dtype == bool, name
    np.testing.assert_array_equal(ds.labels, np.stack([labels_of(r) for r in ds.records]))


def test_seeded_and_prefix_stable():
    a = generate(7, size=40, seed=2, cache=False)
    b = generate(11, size=40, seed=2, cache=False)
    np.testing.assert_array_equal(a.images, b.images[:7])
    assert a.records == b.records[:7] and a.reports == b.reports[:7]
    c = generate(7, size=40, seed=3, cache=False)
    assert not np.array_equal(a.images, c.images)


def test_cache_round_trip(tmp_path, monkeypatch):
    import mediag.data.chest as chest

    monkeypatch.setattr(chest, "CACHE", tmp_path)
    a = generate(9, size=32, seed=1)
    assert list(tmp_path.glob("*.npz"))
    b = generate(9, size=32, seed=1)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.records == b.records and a.reports == b.reports
    np.testing.assert_array_equal(a.masks["nodule"], b.masks["nodule"])


def test_cardiomegaly_iff_ctr_above_half():
    rng = np.random.default_rng(0)
    for _ in range(500):
        f = sample_findings(rng)
        assert f["cardiomegaly"] == (f["ctr"] > 0.5)


def test_plausible_nodules_and_no_band_around_the_ctr_cutoff():
    rng = np.random.default_rng(5)
    draws = [sample_findings(rng) for _ in range(3000)]
    mm = [f["nodule"]["diameter_mm"] for f in draws if f["nodule"]]
    assert min(mm) >= 15 and max(mm) < 30                 # a lesion of 30 mm or more is a mass
    ctrs = {f["ctr"] for f in draws}
    assert {0.49, 0.5, 0.51, 0.52} <= ctrs                 # borderline hearts on both sides of 0.5
    gaps = np.diff(sorted(ctrs))
    assert gaps.max() < 0.011                              # every hundredth from 0.38 to 0.65 occurs


def test_finding_masks_follow_side_and_presence():
    rng = np.random.default_rng(1)
    for i in range(60):
        f = sample_findings(rng)
        img, masks = render(f, rng, size=72)
        half = 72 // 2
        for name in ("nodule", "effusion", "pneumothorax"):
            if f[name] is None:
                assert not masks[name].any(), name
            else:
                cols = np.nonzero(masks[name])[1]
                assert cols.size, (name, f[name])
                # patient's right is on the image's left
                if f[name]["side"] == "right":
                    assert cols.mean() < half, (name, i)
                else:
                    assert cols.mean() > half, (name, i)


def test_heart_width_matches_ctr():
    rng = np.random.default_rng(2)
    f = sample_findings(rng)
    widths = {}
    for ctr in (0.4, 0.6):
        f = dict(f, ctr=ctr, cardiomegaly=ctr > 0.5)
        _, masks = render(f, np.random.default_rng(3), size=128)
        widths[ctr] = masks["heart"].any(axis=0).sum()
    assert widths[0.6] > 1.3 * widths[0.4]


def test_findings_change_the_image():
    f = {"nodule": None, "effusion": None, "cardiomegaly": False, "ctr": 0.42, "pneumothorax": None}
    base, _ = render(f, np.random.default_rng(4), size=64)
    g = dict(f, nodule={"side": "left", "zone": "middle", "diameter_mm": 20.0})
    img, masks = render(g, np.random.default_rng(4), size=64)
    assert img[masks["nodule"]].mean() > base[masks["nodule"]].mean() + 0.1


def test_patient_split_keeps_patients_apart():
    ds = generate(40, size=32, seed=0, cache=False)
    tr, va, te = patient_split(ds.patient_ids, seed=1)
    assert len(tr) + len(va) + len(te) == 40
    sets = [set(ds.patient_ids[i]) for i in (tr, va, te)]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    with pytest.raises(ValueError, match="fractions"):
        patient_split(ds.patient_ids, fractions=(0.5, 0.2))


def test_write_dicom(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    ds = generate(5, size=40, seed=0, cache=False)
    paths = write_dicom(ds, tmp_path, seed=0)
    assert len(paths) == 5
    d = pydicom.dcmread(paths[0])
    assert d.Modality == "CR" and d.PhotometricInterpretation == "MONOCHROME2"
    assert str(d.PatientName) and d.PatientID and d.PatientBirthDate
    assert any(el.tag.is_private for el in d)
    np.testing.assert_allclose(d.pixel_array / 4095, ds.images[0], atol=1 / 4095)
    assert float(d.PixelSpacing[0]) == pytest.approx(ds.spacing_mm, rel=1e-4)
    same = [pydicom.dcmread(p) for p in paths if pydicom.dcmread(p).PatientID == d.PatientID]
    assert {str(x.PatientName) for x in same} == {str(d.PatientName)}
    again = write_dicom(ds, tmp_path / "again", seed=0)
    assert pydicom.dcmread(again[0]).SOPInstanceUID == d.SOPInstanceUID     # deterministic UIDs
    with pytest.raises(FileExistsError, match="never overwrites"):
        write_dicom(ds, tmp_path, seed=0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="positive integer"):
        generate(0)
    with pytest.raises(ValueError, match="size"):
        render(sample_findings(np.random.default_rng(0)), np.random.default_rng(0), size=8)


def test_smooth_noise_and_blur_share_one_filter_bit_for_bit():
    """_smooth_noise and _blur both call _gaussian_fft; the films stay bit-identical to the earlier inline formulas."""
    from mediag.data.chest import _blur, _smooth_noise

    def smooth_before(rng, size, scale):  # the formula before the refactoring, kept here as the reference
        white = rng.standard_normal((size, size))
        f = np.fft.fftfreq(size)
        g = np.exp(-2 * (np.pi * scale * size) ** 2 * (f[:, None] ** 2 + f[None, :] ** 2))
        out = np.real(np.fft.ifft2(np.fft.fft2(white) * g))
        return out / (out.std() + 1e-12)

    def blur_before(img, sigma_px):
        f = np.fft.fftfreq(img.shape[0])
        g = np.exp(-2 * (np.pi * sigma_px) ** 2 * (f[:, None] ** 2 + f[None, :] ** 2))
        return np.real(np.fft.ifft2(np.fft.fft2(img) * g))

    for size in (28, 48, 64, 96):  # 28 and 48: pi * scale * size rounds differently from pi * (scale * size)
        for scale in (0.012, 0.004):
            for seed in (0, 1, 2):
                got = _smooth_noise(np.random.default_rng(seed), size, scale)
                assert np.array_equal(got, smooth_before(np.random.default_rng(seed), size, scale)), (size, scale)
        img = np.random.default_rng(size).random((size, size))
        assert np.array_equal(_blur(img, 0.37 * size / 64), blur_before(img, 0.37 * size / 64))
        assert _blur(img, 0.0) is img
