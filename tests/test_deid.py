"""mediag.deid and `mediag deid`: the PS3.15 Annex E basic profile on pydicom's real test files."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from mediag import deid, dicom

NAMES = ["CT_small.dcm", "MR_small.dcm", "RG1_UNCI.dcm", "US1_UNCI.dcm", "JPEG2000.dcm", "emri_small.dcm",
         "MR-SIEMENS-DICOM-WithOverlays.dcm", "liver.dcm", "SC_rgb.dcm"]
SALT = "test-salt"


def load(name):
    return pydicom.dcmread(dicom.testdata(name))


def tree_digest(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "mediag.cli", "deid", *map(str, args)],
                          capture_output=True, text=True, env=env)


def test_profile_table_resolves_to_tags():
    assert len(deid.PROFILE) > 600  # the whole table: see tests/test_deid_profile.py for its exact size
    keyword, code = deid.PROFILE[0x00100010]
    assert (keyword, code) == ("PatientName", "Z")
    assert deid.PROFILE[0x00080018] == ("SOPInstanceUID", "U")  # and every other non-standard UID by rule
    assert set(code for _, code in deid.PROFILE.values()) <= set(deid.EFFECTIVE)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dates", ["shift", "remove"])
def test_nothing_identifying_left_and_pixels_identical(name, dates):
    original = load(name)
    untouched = load(name)
    result = deid.deidentify(original, SALT, dates=dates)
    out = result.dataset
    assert original == untouched  # the input is never changed
    assert deid.profile_violations(out) == []
    assert deid.leaks(original, out) == []
    assert not any(elem.tag.is_private for elem in out.iterall())
    assert out.PixelData == original.PixelData
    assert out.PatientIdentityRemoved == "YES"
    assert out.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert out.PatientID == result.pseudonym and out.PatientName in (None, "")
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    for action in result.actions:  # the audit trail names attributes, never values
        assert action.action in {"removed", "emptied", "replaced", "uid-mapped", "date-shifted", "date-removed",
                                 "private-removed"}
        assert action.rule  # the table's code or the rule that applied


def test_uids_are_consistent_and_salted():
    a, b = load("CT_small.dcm"), load("MR_small.dcm")
    b.StudyInstanceUID = a.StudyInstanceUID  # pretend both belong to one study
    ra, rb = deid.deidentify(a, SALT), deid.deidentify(b, SALT)
    assert ra.dataset.StudyInstanceUID == rb.dataset.StudyInstanceUID != a.StudyInstanceUID
    assert ra.dataset.SOPInstanceUID != rb.dataset.SOPInstanceUID
    assert deid.deidentify(a, "other salt").dataset.StudyInstanceUID != ra.dataset.StudyInstanceUID
    assert ra.dataset.SOPClassUID == a.SOPClassUID  # standard UIDs are kept
    uid = deid.map_uid("1.2.3.4", SALT)
    assert uid.startswith("2.25.") and len(uid) <= 64 and uid == deid.map_uid("1.2.3.4", SALT)
    assert pydicom.uid.UID(uid).is_valid


def test_dates_shift_by_one_offset_per_patient():
    ds = load("CT_small.dcm")
    ds.SeriesDate = "20040120"  # one day after the study
    out = deid.deidentify(ds, SALT).dataset
    offset = deid.date_offset_days(ds.PatientID, SALT)
    assert -3650 <= offset <= -366
    assert out.StudyDate == deid.shift_date(ds.StudyDate, offset) != ds.StudyDate
    import datetime as dt

    day = lambda s: dt.datetime.strptime(s, "%Y%m%d")  # noqa: E731
    assert day(out.SeriesDate) - day(out.StudyDate) == dt.timedelta(days=1)  # intervals survive
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"
    removed = deid.deidentify(ds, SALT, dates="remove").dataset
    assert removed.get("StudyDate") in (None, "") and removed.LongitudinalTemporalInformationModified == "REMOVED"


def test_shift_helpers_on_odd_values():
    assert deid.shift_date("20000301", -1) == "20000229"  # a leap year
    assert deid.shift_date("2000", 5) is None and deid.shift_date("notadate", 1) is None
    assert deid.shift_datetime("20000301123000.5+0100", -1) == "20000229123000.5+0100"


def test_nested_sequences_and_private_tags_are_cleaned():
    ds = load("MR_small.dcm")
    from pydicom.dataset import Dataset

    item = Dataset()
    item.ReferencedSOPClassUID = ds.SOPClassUID
    item.ReferencedSOPInstanceUID = "1.2.3.999"
    item.PatientName = "Hidden^Name"
    ds.ReferencedImageSequence = [item]
    block = ds.private_block(0x0011, "ACME", create=True)
    block.add_new(0x01, "LO", "Jane Doe secret")
    out = deid.deidentify(ds, SALT).dataset
    ref = out.ReferencedImageSequence[0]
    assert ref.ReferencedSOPInstanceUID == deid.map_uid("1.2.3.999", SALT)
    assert ref.ReferencedSOPClassUID == ds.SOPClassUID and ref.PatientName in (None, "")
    assert "Jane Doe secret" not in deid.all_text(out)


def test_burned_in_flags():
    assert deid.deidentify(load("US1_UNCI.dcm"), SALT).burned_in  # ultrasound
    assert deid.deidentify(load("SC_rgb.dcm"), SALT).burned_in  # secondary capture
    ds = load("CT_small.dcm")
    assert deid.deidentify(ds, SALT).burned_in == []
    ds.BurnedInAnnotation = "YES"
    assert deid.deidentify(ds, SALT).burned_in == ["BurnedInAnnotation is YES"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="salt is empty"):
        deid.deidentify(load("CT_small.dcm"), "")
    with pytest.raises(ValueError, match="dates must be"):
        deid.deidentify(load("CT_small.dcm"), SALT, dates="keep")
    with pytest.raises(TypeError, match="pydicom Dataset"):
        deid.deidentify({"PatientName": "x"}, SALT)


@pytest.fixture
def input_tree(tmp_path):
    folder = tmp_path / "in"
    (folder / "series2").mkdir(parents=True)
    for name in ["CT_small.dcm", "MR_small.dcm", "US1_UNCI.dcm"]:
        (folder / name).write_bytes(dicom.testdata(name).read_bytes())
    (folder / "series2" / "ct_copy.dcm").write_bytes(dicom.testdata("CT_small.dcm").read_bytes())
    (folder / "README.txt").write_text("not dicom")
    return folder


def expected_name(original, salt=SALT):
    return deid.output_name(deid.deidentify(original, salt).dataset).as_posix()


def test_cli_folder_end_to_end(input_tree, tmp_path):
    before = tree_digest(input_tree)
    out = tmp_path / "out"
    result = run_cli(input_tree, out, "--salt", SALT)
    assert result.returncode == 1, result.stderr  # one file (README.txt) skipped
    assert "skipped README.txt" in result.stderr and "(from US1_UNCI.dcm) may show" in result.stderr
    assert tree_digest(input_tree) == before  # the input is untouched
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.dcm"))
    ct = expected_name(load("CT_small.dcm"))
    sources = {"CT_small.dcm": ct, "series2/ct_copy.dcm": ct[:-4] + "_2.dcm",  # same instance twice: a suffix
               "MR_small.dcm": expected_name(load("MR_small.dcm")), "US1_UNCI.dcm": expected_name(load("US1_UNCI.dcm"))}
    assert written == sorted(sources.values())
    assert all(part.startswith(("MDG-", "2.25.")) for name in written for part in name.split("/"))
    a, b = pydicom.dcmread(out / ct), pydicom.dcmread(out / sources["series2/ct_copy.dcm"])
    assert a.SeriesInstanceUID == b.SeriesInstanceUID and a.PatientID == b.PatientID  # links kept
    for rel, name in sources.items():
        original = pydicom.dcmread(input_tree / rel)
        clean = pydicom.dcmread(out / name)
        assert deid.leaks(original, clean) == [] and deid.profile_violations(clean) == []
        assert clean.PixelData == original.PixelData
        assert clean.file_meta.MediaStorageSOPInstanceUID == clean.SOPInstanceUID == Path(name).stem.split("_")[0]
    log = (out / deid.AUDIT_LOG).read_text()
    audit = json.loads(log)
    assert audit["files_written"] == 4 and audit["names"] == "de-identified"
    assert audit["skipped"] == {"count": 1, "reasons": {"not a DICOM file (no 'DICM' marker)": 1}}
    assert sorted(e["file"] for e in audit["files"]) == written
    assert "README" not in log and "series2" not in log and "CT_small" not in log  # no input name
    original = pydicom.dcmread(input_tree / "CT_small.dcm")
    for value in deid.identifying_values(original):
        assert value not in log  # the log holds no identifying value


def test_identifying_folder_and_file_names_do_not_reach_out(tmp_path):
    """Archives name folders and files by patient: none of it may appear under OUT, audit log included."""
    ds = load("CT_small.dcm")
    name, mrn, accession = "Doe^Jane", "MRN-778899", "ACC-4242"
    ds.PatientName, ds.PatientID, ds.AccessionNumber = name, mrn, accession
    folder = tmp_path / "archive" / "Doe_Jane" / mrn
    folder.mkdir(parents=True)
    ds.save_as(folder / f"{accession}.dcm", enforce_file_format=True)
    (folder / "Doe_Jane_notes.txt").write_text("not dicom")
    (folder / f"Doe_Jane_{accession}_cut.dcm").write_bytes((folder / f"{accession}.dcm").read_bytes()[:3000])
    out = tmp_path / "clean"
    result = run_cli(tmp_path / "archive", out, "--salt", SALT)
    assert result.returncode == 1, result.stderr  # the notes and the truncated file are skipped, named on stderr only
    assert "Doe_Jane_notes.txt" in result.stderr and "_cut.dcm" in result.stderr
    assert json.loads((out / deid.AUDIT_LOG).read_text())["skipped"]["count"] == 2
    needles = ["Doe", "Jane", mrn, accession, "notes"]
    for path in out.rglob("*"):
        rel = path.relative_to(out).as_posix()
        assert not any(n.lower() in rel.lower() for n in needles), rel
        if path.is_file():
            data = path.read_bytes()
            assert not any(n.encode() in data for n in needles), rel
    (dcm,) = out.rglob("*.dcm")
    assert dcm.relative_to(out).as_posix() == expected_name(ds)


def test_keep_names_keeps_relative_paths(input_tree, tmp_path):
    out = tmp_path / "out"
    result = run_cli(input_tree, out, "--salt", SALT, "--keep-names")
    assert result.returncode == 1, result.stderr
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.dcm"))
    assert written == ["CT_small.dcm", "MR_small.dcm", "US1_UNCI.dcm", "series2/ct_copy.dcm"]
    audit = json.loads((out / deid.AUDIT_LOG).read_text())
    assert audit["names"] == "kept from the input" and audit["skipped"]["files"][0][0] == "README.txt"
    api = deid.deidentify_tree(input_tree, tmp_path / "api", SALT, keep_names=True)
    assert sorted(r.as_posix() for r, _ in api.written) == written


def test_file_meta_holds_nothing_identifying():
    ds = load("CT_small.dcm")
    ds.file_meta.SendingApplicationEntityTitle = "ST_MARYS_PACS"
    ds.file_meta.SourcePresentationAddress = "dicom://pacs.st-marys.example:104"
    ds.file_meta.ImplementationVersionName = "SITE_TOOL_7"
    out = deid.deidentify(ds, SALT).dataset
    meta = out.file_meta
    assert set(e.keyword for e in meta) <= set(deid.META_KEEP)
    assert meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID == deid.map_uid(ds.SOPInstanceUID, SALT)
    assert meta.ImplementationClassUID == pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    assert deid.leaks(ds, out) == [] and deid.profile_violations(out) == []
    assert {"ST_MARYS_PACS", "dicom://pacs.st-marys.example:104"} <= deid.identifying_values(ds)
    assert set(deid.deidentify(load("CT_small.dcm"), SALT).dataset.preamble) == {0}  # CT_small's held a TIFF header
    del out.SOPInstanceUID  # an instance UID only in the meta is mapped too
    del ds.SOPInstanceUID
    assert deid.deidentify(ds, SALT).dataset.file_meta.MediaStorageSOPInstanceUID == deid.map_uid(
        ds.file_meta.MediaStorageSOPInstanceUID, SALT)


def test_output_name_is_sanitised_and_unique(tmp_path):
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.PatientID, ds.StudyInstanceUID = "../a b", "1.2.3"
    assert deid.output_name(ds).as_posix() == "_a_b/1.2.3/no-instance.dcm"  # no "..", no "/", no space
    ds.PatientID = ".."
    assert deid.output_name(ds).parts[0] == "no-patient"
    taken = set()
    names = [deid._unique(Path("x/y.dcm"), taken) for _ in range(3)]
    assert [n.as_posix() for n in names] == ["x/y.dcm", "x/y_2.dcm", "x/y_3.dcm"]


def test_cli_single_file_and_same_salt_is_reproducible(tmp_path):
    src = dicom.testdata("MR_small.dcm")
    r1 = run_cli(src, tmp_path / "o1", "--salt", SALT)
    r2 = run_cli(src, tmp_path / "o2", "--salt", SALT)
    assert r1.returncode == r2.returncode == 0, r1.stderr
    name = expected_name(load("MR_small.dcm"))
    assert (tmp_path / "o1" / name).read_bytes() == (tmp_path / "o2" / name).read_bytes()


@pytest.mark.parametrize("case", ["text file", "truncated", "empty folder", "out inside in", "out exists",
                                  "missing"])
def test_cli_bad_inputs_give_one_line_and_exit_2(case, input_tree, tmp_path):
    if case == "text file":
        args = [input_tree / "README.txt", tmp_path / "o"]
    elif case == "truncated":
        cut = tmp_path / "cut.dcm"
        cut.write_bytes(dicom.testdata("CT_small.dcm").read_bytes()[:3000])
        args = [cut, tmp_path / "o"]
    elif case == "empty folder":
        (tmp_path / "empty").mkdir()
        args = [tmp_path / "empty", tmp_path / "o"]
    elif case == "out inside in":
        args = [input_tree, input_tree / "clean"]
    elif case == "out exists":
        (tmp_path / "o").mkdir()
        (tmp_path / "o" / "keep.txt").write_text("mine")
        args = [input_tree, tmp_path / "o"]
    else:
        args = [tmp_path / "missing", tmp_path / "o"]
    before = tree_digest(input_tree)
    result = run_cli(*args, "--salt", SALT)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mediag deid: error: ")
    assert "Traceback" not in result.stderr
    assert tree_digest(input_tree) == before
    if case != "out exists":
        assert not (tmp_path / "o").exists() and not (input_tree / "clean").exists()


def test_cli_without_salt_warns(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if k != "MEDIAG_DEID_SALT"}
    result = run_cli(dicom.testdata("CT_small.dcm"), tmp_path / "o", env=env)
    assert result.returncode == 0 and "no --salt" in result.stderr


def test_tree_validates_with_dicom_and_reads_each_file_once(input_tree, tmp_path, monkeypatch):
    """deid has no error ladder of its own: `dicom.validate_file` reads and checks each file, once."""
    import inspect

    reads = []
    real = pydicom.dcmread
    monkeypatch.setattr(pydicom, "dcmread", lambda path, *a, **k: reads.append(Path(path).name) or real(path, *a, **k))
    cut = input_tree / "cut.dcm"
    cut.write_bytes(dicom.testdata("CT_small.dcm").read_bytes()[:3000])
    result = deid.deidentify_tree(input_tree, tmp_path / "out", SALT)
    files = sorted(p.name for p in input_tree.rglob("*") if p.is_file())
    assert sorted(reads) == files  # every file read exactly once, the damaged and non-DICOM ones included
    skipped = dict((rel.name, why) for rel, why in result.skipped)
    for name in ("cut.dcm", "README.txt"):  # the reason is dicom's own, word for word
        with pytest.raises(dicom.DicomError) as exc:
            dicom.validate_file(input_tree / name, require_pixels=False)
        assert skipped[name] == exc.value.reason
    assert "dcmread(" not in inspect.getsource(deid)  # files are read by dicom.validate_file only
    assert not [n for n, _ in inspect.getmembers(deid, inspect.isfunction) if n.startswith("check_")], (
        "argument and file validation is named validate_* (check_* is the verification registry's)")
