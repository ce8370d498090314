"""mediag.deid against the whole of PS3.15 Table E.1-1, on DICOM files the course never uses.

Every attribute of the table that pydicom can build is planted with a unique value, at the top level and
inside a kept sequence, together with descriptions, overlays, curves and private tags with a creator; the
values must all be gone from the output, in both date modes. Inputs are never changed; pixel data is identical
unless --blank-pixels is given.
"""

import datetime as dt
import json
import subprocess
import sys
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset

from mediag import deid, dicom

#: files of pydicom and pydicom-data that the notebooks and tests/test_deid.py never use: CT (CQ500, a CT
#: perfusion map, VR UN), NM, MR (JPEG 2000), CR (Fuji), ultrasound (Philips, Aloka, echo), SEG, OT, RT, ECG
EXTERNAL = ["693_UNCI.dcm", "eCT_Supplemental.dcm", "explicit_VR-UN.dcm", "JPEG-LL.dcm", "MR2_J2KI.dcm",
            "RG3_J2KI.dcm", "OBXXXX1A.dcm", "gdcm-US-ALOKA-16.dcm", "color-pl.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm",
            "liver_expb.dcm", "mlut_18.dcm", "rtplan.dcm", "rtdose.dcm", "waveform_ecg.dcm"]
SALT = "another project's secret"
TEXT_VRS = {"PN", "LO", "SH", "ST", "LT", "UT", "UC", "CS", "AE", "UR"}


def test_table_is_the_whole_of_e1_1():
    """Size and spot checks against the text of PS3.15 Table E.1-1 (Basic Prof. column)."""
    assert deid.TABLE_EDITION == "DICOM PS3.15 2026c, Table E.1-1"
    assert len(deid.PROFILE) == 652 and len(deid.REPEATING) == 3  # 655 rows
    codes = {}
    for _, code in deid.PROFILE.values():
        codes[code] = codes.get(code, 0) + 1
    assert codes == {"D": 93, "Z": 42, "X": 412, "U": 55, "Z/D": 6, "X/Z": 11, "X/D": 23, "X/Z/D": 8, "X/Z/U*": 2}
    expected = {  # (group, element): action, as the standard's table writes them
        (0x0010, 0x0010): "Z",  # Patient's Name
        (0x0010, 0x0030): "Z",  # Patient's Birth Date
        (0x0008, 0x0020): "Z",  # Study Date
        (0x0008, 0x0030): "Z",  # Study Time
        (0x0008, 0x0050): "Z",  # Accession Number
        (0x0008, 0x1030): "X",  # Study Description
        (0x0008, 0x103E): "X",  # Series Description
        (0x0032, 0x1060): "X/Z",  # Requested Procedure Description
        (0x0040, 0x0254): "X",  # Performed Procedure Step Description
        (0x0040, 0x0007): "X",  # Scheduled Procedure Step Description
        (0x0020, 0x4000): "X",  # Image Comments
        (0x0008, 0x0080): "X/Z/D",  # Institution Name
        (0x0018, 0x1030): "X/D",  # Protocol Name
        (0x0008, 0x0022): "X/Z",  # Acquisition Date
        (0x0008, 0x0033): "Z/D",  # Content Time
        (0x0008, 0x0018): "U",  # SOP Instance UID
        (0x0020, 0x000D): "U",  # Study Instance UID
        (0x0008, 0x1140): "X/Z/U*",  # Referenced Image Sequence
        (0x0008, 0x2112): "X/Z/U*",  # Source Image Sequence
        (0x0010, 0x1010): "X",  # Patient's Age
        (0x0040, 0xA730): "D",  # Content Sequence
    }
    for (group, element), code in expected.items():
        assert deid.profile_row((group << 16) | element)[1] == code, (hex(group), hex(element))
    assert deid.profile_row(0x60003000) == ("OverlayData", "X")  # (60xx,3000) Overlay Data
    assert deid.profile_row(0x601E4000) == ("OverlayComments", "X")  # (60xx,4000) Overlay Comments
    assert deid.profile_row(0x50023000)[1] == "X"  # (50xx,xxxx) Curve Data
    assert deid.profile_row(0x00080070) == (None, None)  # Manufacturer is not in the table: kept


def _unique_value(vr: str, n: int):
    if vr in ("LO", "SH", "ST", "LT", "UT", "UC", "PN", "UR"):
        return f"Q{n:05d}ID"
    if vr in ("CS", "AE"):
        return f"Q{n:05d}ID"
    if vr == "DA":
        return (dt.date(1950, 1, 1) + dt.timedelta(days=n)).strftime("%Y%m%d")
    if vr == "TM":
        return (dt.datetime(2000, 1, 1, 1) + dt.timedelta(seconds=7 * n)).strftime("%H%M%S")
    if vr == "DT":
        return (dt.datetime(1950, 1, 1, 1) + dt.timedelta(days=n, seconds=7 * n)).strftime("%Y%m%d%H%M%S")
    if vr == "UI":
        return f"1.2.826.0.1.3680043.10.999.{n}"
    if vr in ("IS",):
        return str(700000 + n)
    if vr == "DS":
        return f"{n}.25"
    if vr == "AS":
        return f"{n % 900 + 1:03d}Y"
    if vr in ("US", "UL", "SS", "SL"):
        return 30000 + n
    if vr in ("FL", "FD"):
        return 0.5 + n
    return None


def plant(ds: Dataset) -> dict:
    """Put a unique value into every attribute of the table that pydicom can build, at the top level and in a
    kept sequence (Source Image Sequence), plus descriptions, overlays, curves, private tags with a creator.
    Returns {(path, tag): value}: what must not survive."""
    planted = {}
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    n = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for tag in sorted(deid.PROFILE):
            vr = dictionary_VR(tag) if keyword_for_tag(tag) else None
            if tag >> 16 < 0x0008 or vr is None or " or " in vr:
                continue
            for where, target in (("", ds), ("SourceImageSequence[0].", item)):
                if vr == "SQ":
                    if tag in (0x00082112,):
                        continue
                    inner = Dataset()
                    n += 1
                    inner.PersonName = f"Q{n:05d}ID"  # a name inside the sequence the table acts on
                    target.add_new(tag, "SQ", [inner])
                    planted[(where + keyword_for_tag(tag) + "[0].PersonName", 0x0040A123)] = inner.PersonName
                    continue
                n += 1
                value = _unique_value(vr, n)
                if value is None:
                    continue
                target.add_new(tag, vr, value)
                planted[(where + keyword_for_tag(tag), tag)] = value
        ds.SourceImageSequence = [item]
        ds.StudyDescription = "CT head J. Smith 3/4"  # free text where names and dates hide
        ds.SeriesDescription = "AX T2 FLAIR Dr Q07777ID 20240304"
        ds.add_new(0x60000010, "US", 8)  # an overlay: rows, columns, data and a comment
        ds.add_new(0x60000011, "US", 8)
        ds.add_new(0x60003000, "OW", b"\xff" * 8)
        ds.add_new(0x60004000, "LT", "Q09991ID overlay by the reading doctor")
        ds.add_new(0x50003000, "OW", b"\x01\x02" * 4)  # a curve
        ds.add_new(0x50002500, "LO", "Q09992ID curve label")
        block = ds.private_block(0x0009, "ACME 1.1", create=True)
        block.add_new(0x01, "LO", "Q09993ID private name")
        inner_block = item.private_block(0x0011, "ACME 1.1", create=True)
        inner_block.add_new(0x02, "LO", "Q09994ID nested private")
    planted[("StudyDescription", 0x00081030)] = ds.StudyDescription
    planted[("SeriesDescription", 0x0008103E)] = ds.SeriesDescription
    for text in ("Q09991ID overlay by the reading doctor", "Q09992ID curve label", "Q09993ID private name",
                 "Q09994ID nested private"):
        planted[("elsewhere", 0)] = text
        planted[(text, 0)] = text
    return planted


def _at(ds, path: str):
    """The element at a path like 'SourceImageSequence[0].PatientName', or None."""
    node = ds
    parts = path.split(".")
    for part in parts[:-1]:
        name, index = part[:-3], int(part[-2])
        if name not in node or len(node[name].value) <= index:
            return None
        node = node[name].value[index]
    return node.data_element(parts[-1]) if parts[-1] in node else None


@pytest.mark.parametrize("dates", ["shift", "remove"])
@pytest.mark.parametrize("name", EXTERNAL)
def test_no_planted_value_survives(name, dates, tmp_path):
    original = pydicom.dcmread(dicom.testdata(name))
    planted = plant(original)
    before = original.to_json()  # planting happened in memory: the file itself is never touched
    result = deid.deidentify(original, SALT, dates=dates)
    assert original.to_json() == before  # the input dataset is not changed
    out = result.dataset
    path = tmp_path / "out.dcm"
    out.save_as(path, enforce_file_format=True)
    raw = path.read_bytes()
    text = deid.all_text(out)
    survivors = []
    for (where, tag), value in planted.items():
        if where != "elsewhere" and tag:
            elem = _at(out, where)
            if elem is not None and elem.value not in (None, "", []) and str(elem.value) == str(value):
                survivors.append(where)
        if isinstance(value, str) and len(value) >= 6:
            if value in text or value.encode() in raw or any(value in t for t in text):
                survivors.append(f"{where}: {value}")
    assert survivors == []
    assert deid.profile_violations(out) == []
    assert not any(e.tag.is_private or e.tag.group >> 8 in (0x50, 0x60) for e in out.iterall())
    if "PixelData" in original:
        assert out.PixelData == original.PixelData  # bit for bit
    assert [i.CodeValue for i in out.DeidentificationMethodCodeSequence] == (
        ["113100", "113107"] if dates == "shift" else ["113100"])


def test_pydicom_files_on_disk_are_unchanged(tmp_path):
    import hashlib

    paths = [dicom.testdata(n) for n in EXTERNAL[:4]]
    before = [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    for p in paths:
        clean = deid.deidentify(pydicom.dcmread(p), SALT).dataset
        clean.save_as(tmp_path / (p.name + ".out"), enforce_file_format=True)
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths] == before


def test_modified_dates_option_moves_dates_and_times_as_moments():
    ds = pydicom.dcmread(dicom.testdata("693_UNCI.dcm"))
    ds.StudyDate, ds.StudyTime = "20200131", "233000"
    ds.SeriesDate, ds.SeriesTime = "20200201", "001500.25"  # 45 minutes later, across midnight
    ds.AcquisitionDateTime = "20200201003000+0100"
    ds.InstanceCreationTime = "101010"  # a time without its date
    ds.InstanceCreationDate = None
    out = deid.deidentify(ds, SALT).dataset
    for keyword in ("StudyTime", "SeriesTime", "InstanceCreationTime"):
        assert out.data_element(keyword).value != ds.data_element(keyword).value  # times are modified too

    def moment(d, t):
        return dt.datetime.strptime(d + t.split(".")[0], "%Y%m%d%H%M%S")

    gap = moment(out.SeriesDate, out.SeriesTime) - moment(out.StudyDate, out.StudyTime)
    assert gap == dt.timedelta(minutes=45) and out.SeriesTime.endswith(".25")  # to the second, fraction kept
    acq = dt.datetime.strptime(out.AcquisitionDateTime[:14], "%Y%m%d%H%M%S")
    assert acq - moment(out.StudyDate, out.StudyTime) == dt.timedelta(hours=1)
    assert out.AcquisitionDateTime[14:] == "+0100"
    offset = deid.date_offset(ds.PatientID, SALT)
    assert moment(out.StudyDate, out.StudyTime) - moment(ds.StudyDate, ds.StudyTime) == offset
    assert -3650 <= offset.days <= -366 and 0 < offset.seconds < 86400
    removed = deid.deidentify(ds, SALT, dates="remove").dataset
    assert all(removed.get(k) in (None, "") for k in ("StudyDate", "StudyTime", "SeriesTime", "AcquisitionDateTime"))


def test_clean_descriptors_option_keeps_only_vocabulary_words():
    assert deid.clean_descriptor("CT head J. Smith 3/4") == "CT head"
    assert deid.clean_descriptor("AX T2 FLAIR Dr Q07777ID 20240304") == "T2 FLAIR"
    assert deid.clean_descriptor("Chest PA^LAT 2024-03-04 ACC12345 SMITH") == "Chest PA LAT"
    assert deid.clean_descriptor("Jane Doe 555-1234") == ""
    ds = pydicom.dcmread(dicom.testdata("693_UNCI.dcm"))
    ds.StudyDescription, ds.SeriesDescription, ds.ImageComments = "CT head J. Smith 3/4", "Doe^Jane", "Brain"
    out = deid.deidentify(ds, SALT, clean_descriptors=True)
    assert out.dataset.StudyDescription == "CT head" and "SeriesDescription" not in out.dataset
    assert out.dataset.ImageComments == "Brain"
    assert "Clean Descriptors Option" in out.options
    assert "113105" in [i.CodeValue for i in out.dataset.DeidentificationMethodCodeSequence]
    assert deid.profile_violations(out.dataset) == []
    assert "StudyDescription" not in deid.deidentify(ds, SALT).dataset  # removed by default


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "mediag.cli", "deid", *map(str, args)], capture_output=True,
                          text=True)


def test_blank_pixels_by_manufacturer_is_recorded(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("OBXXXX1A.dcm", "693_UNCI.dcm"):
        (src / name).write_bytes(dicom.testdata(name).read_bytes())
    rules = tmp_path / "regions.json"
    us = pydicom.dcmread(src / "OBXXXX1A.dcm")
    rules.write_text(json.dumps([{"manufacturer": str(us.Manufacturer).lower(), "rects": "0,0,100,30;10,40,5,5"}]))
    result = run_cli(src, tmp_path / "out", "--salt", SALT, "--blank-pixels", rules)
    assert result.returncode == 0, result.stderr
    audit = json.loads((tmp_path / "out" / deid.AUDIT_LOG).read_text())
    assert audit["pixels"].startswith("1 --blank-pixels rule(s); 1 file(s) blanked")
    assert "Retain Longitudinal Temporal Information With Modified Dates Option" in audit["options"]
    assert audit["table"].startswith("DICOM PS3.15 2026c, Table E.1-1 (652 fixed rows, 3 repeating-group rows)")
    by_blank = {bool(e["pixels_blanked"]): e for e in audit["files"]}
    blanked = pydicom.dcmread(tmp_path / "out" / by_blank[True]["file"])
    assert by_blank[True]["pixels_blanked"] == [[0, 0, 100, 30], [10, 40, 5, 5]]
    assert "Clean Pixel Data Option" in by_blank[True]["options"]
    before, after = us.pixel_array, blanked.pixel_array
    assert (after[:30, :100] == 0).all() and (after[40:45, 10:15] == 0).all()
    mask = np.ones(after.shape[:2], bool)
    mask[:30, :100] = mask[40:45, 10:15] = False
    assert (after[mask] == before[mask]).all()  # nothing else changed
    ct = pydicom.dcmread(tmp_path / "out" / by_blank[False]["file"])
    assert ct.PixelData == pydicom.dcmread(src / "693_UNCI.dcm").PixelData  # not matched: bit for bit


@pytest.mark.parametrize("spec, message", [("0,0,10", "is not a rectangle"), ("0,0,0,5", "zero width"),
                                           ("missing.json", "no such file"), ("5000,0,10,10", "lies outside")])
def test_blank_pixels_bad_input_is_one_line(spec, message, tmp_path):
    result = run_cli(dicom.testdata("OBXXXX1A.dcm"), tmp_path / "o", "--salt", SALT, "--blank-pixels", spec)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr
