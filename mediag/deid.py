"""De-identify DICOM: the Basic Application Level Confidentiality Profile (DICOM PS3.15 Annex E).

    from mediag import deid
    result = deid.deidentify(ds, salt="a secret of the project")   # ds itself is never changed
    result.dataset        # the de-identified copy (pixel data bit-identical)
    result.actions        # what was removed or replaced: (where, tag, keyword, action); never a value
    result.burned_in      # reasons the pixels may still show text (burned-in annotation, US, SC)

What it does: the Basic Application Level Confidentiality Profile of DICOM PS3.15 Annex E, with the options
of E.3 named as the standard names them and recorded in the file (DeidentificationMethodCodeSequence) and in
the audit log.
- The table is the whole of Table E.1-1 of the 2026c edition: every row of its "Basic Prof." column (655 rows:
  652 fixed tags and the repeating groups Overlay Data (60xx,3000), Overlay Comments (60xx,4000) and Curve Data
  (50xx,xxxx)), read from the pinned PyPI package dicom-anonymizer (Kitware, BSD-3-Clause), which transcribes
  each edition's table by script (`TABLE_MODULE`). Each row's action is applied at every depth, inside
  sequences too: X removes, Z empties, D replaces with a dummy, U maps UIDs; the combined codes as `EFFECTIVE`
  says. Rules beyond the table: every private tag is removed (the profile's rule for private attributes; no
  Retain Safe Private Option), whole overlay and curve groups are removed, and every UID that is not a standard
  DICOM UID is mapped, whatever its attribute.
- UIDs become `2.25.<integer>` from HMAC-SHA-256 of the UID with a secret salt: the same input UID always
  gives the same output UID, so studies and series stay linked across files; nobody without the salt can map
  back.
- Dates (`dates="shift"`, the default): the Retain Longitudinal Temporal Information With Modified Dates Option
  (E.3.6, quoted in `MODIFIED_DATES_TEXT`): "any dates and times present in the Attributes shall be modified",
  keeping their relationships. One offset per patient (from the salt and the patient ID: 1 to 10 years back
  plus a time of day) is added to every moment: a date with its time (StudyDate and StudyTime, ...) and every
  date-time move together, so intervals survive to the second; a date alone moves by the whole days; a time
  alone by the time of day, modulo 24 h. `dates="remove"` empties every date and time (no temporal option).
  The birth date is always emptied.
- Descriptions and comments are removed (the table's X). `clean_descriptors=True` applies the Clean Descriptors
  Option instead: each is kept only after `clean_descriptor` has dropped every word that is not on a fixed
  vocabulary of anatomy, modality and technique words (names, dates, numbers and IDs never survive).
- The patient name is emptied and the patient ID becomes one pseudonym per patient (from the salt), so a
  patient's files stay together. PatientIdentityRemoved = YES, DeidentificationMethod and its code sequence,
  LongitudinalTemporalInformationModified are set.
- Pixels: images that may carry burned-in text are flagged (BurnedInAnnotation = YES, ultrasound, secondary
  capture). The pixel data stays bit-identical unless `blank=` rectangles are given (the Clean Pixel Data
  Option, by region, as RSNA CTP's pixel anonymizer does; `--blank-pixels` per file or per manufacturer/model).
- Not covered by the profile, and not done here: faces that a head CT or MR volume shows once rendered (the
  Clean Recognizable Visual Features Option), text in pixels outside the given rectangles, and names in file
  paths (handled below by naming the copies from de-identified identifiers only).

Folders: `deidentify_tree(IN, OUT, salt)` (the `mediag deid` command) writes each copy under a name made
of de-identified identifiers only (`output_name`), since folder and file names can identify too, and an
audit log `deid-audit.json` that holds output names, attribute keywords and actions, never a value.
The file meta (group 0002) keeps its technical attributes only (`META_KEEP`), with the mapped instance UID,
and the 128-byte preamble before 'DICM' is zeroed.
"""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import hmac
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

#: Where the table comes from. The rows of PS3.15 Table E.1-1 (its "Basic Prof." column) are read from the
#: pinned package dicom-anonymizer (Kitware, BSD-3-Clause licence), which transcribes the table of each DICOM
#: edition into its own module by a script; `TABLE_MODULE` names the edition used. To follow a newer edition,
#: bump the pin in requirements-lock.txt and `TABLE_MODULE`; tests/test_deid_profile.py then shows what changed.
TABLE_PACKAGE = "dicom-anonymizer"
TABLE_MODULE = "dicomfields_2026c"
TABLE_EDITION = "DICOM PS3.15 2026c, Table E.1-1"

#: the package's list names -> the standard's action codes
_CODES = {"D_TAGS": "D", "Z_TAGS": "Z", "X_TAGS": "X", "U_TAGS": "U", "Z_D_TAGS": "Z/D", "X_Z_TAGS": "X/Z",
          "X_D_TAGS": "X/D", "X_Z_D_TAGS": "X/Z/D", "X_Z_U_STAR_TAGS": "X/Z/U*"}

#: how each of the standard's codes is carried out here. Combined codes take the choice that keeps the file
#: valid and the information out: X/Z and X/Z/D empty the attribute, Z/D and X/D replace it by a dummy,
#: U maps UIDs, X/Z/U* keeps the sequence and applies the table inside it (its UIDs are mapped).
EFFECTIVE = {"D": "D", "Z": "Z", "X": "X", "U": "U", "Z/D": "D", "X/Z": "Z", "X/D": "D", "X/Z/D": "Z",
             "X/Z/U*": "K"}

#: (tag int -> (keyword, standard code)) for the table's fixed tags; filled by `_build_profile`
PROFILE: dict[int, tuple[str, str]] = {}
#: repeating-group rows, e.g. Overlay Data (60xx,3000): (group, element, group mask, element mask, name, code)
REPEATING: list[tuple[int, int, int, int, str, str]] = []

#: the profile and the options of PS3.15 E.3 this module can apply: (code and code meaning of PS3.16 CID 7050,
#: written into DeidentificationMethodCodeSequence; the name as PS3.15 E.3 writes it, in the audit log)
OPTIONS = {
    "basic": ("113100", "Basic Application Confidentiality Profile",
              "Basic Application Level Confidentiality Profile"),
    "modified-dates": ("113107", "Retain Longitudinal Temporal Information Modified Dates Option",
                       "Retain Longitudinal Temporal Information With Modified Dates Option"),
    "clean-descriptors": ("113105", "Clean Descriptors Option", "Clean Descriptors Option"),
    "clean-pixels": ("113101", "Clean Pixel Data Option", "Clean Pixel Data Option"),
}

#: E.3.6, quoted: what the modified-dates option requires (`--dates shift` follows it)
MODIFIED_DATES_TEXT = (
    "any dates and times present in the Attributes shall be modified. The modification of the dates and "
    "times shall be performed in a manner that: aggregates or transforms dates so as to reduce the possibility "
    "of matching for re-identification; preserves the gross longitudinal temporal relationships between images "
    "obtained on different dates to the extent necessary for the application; preserves the fine temporal "
    "relationships between images and real-world events to the extent necessary for analysis of the images "
    "for the application.")

#: the file meta (group 0002) attributes kept: the technical ones. Every other meta attribute (AE titles,
#: network addresses, real-time video identifiers, private information) can name a sender and is removed;
#: MediaStorageSOPInstanceUID becomes the mapped SOPInstanceUID, and the implementation UID and version
#: name become pydicom's, the software that writes the copy.
META_KEEP = ("FileMetaInformationGroupLength", "FileMetaInformationVersion", "MediaStorageSOPClassUID",
             "MediaStorageSOPInstanceUID", "TransferSyntaxUID", "ImplementationClassUID", "ImplementationVersionName")

BINARY_VRS = ("OB", "OW", "UN", "OF", "OD", "OL", "OV")
NUMBER_VRS = ("DS", "IS", "US", "SS", "UL", "SL", "FL", "FD", "UV", "SV")  # a weight of 0 is not a name
SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"
METHOD = "PS3.15 E.1 Basic Profile (mediag.deid)"

def _table() -> dict[str, list]:
    import importlib

    try:
        module = importlib.import_module(f"dicomanonymizer.dicom_anonymization_databases.{TABLE_MODULE}")
    except ImportError:
        raise RuntimeError(f"mediag.deid: the table of {TABLE_EDITION} comes from the package {TABLE_PACKAGE}; "
                           "install it: pip install -r requirements-lock.txt") from None
    return {code: list(getattr(module, name)) for name, code in _CODES.items()}


def _build_profile() -> None:
    from pydicom.datadict import keyword_for_tag

    for code, rows in _table().items():
        for row in rows:
            if len(row) == 4:  # (group, element, group mask, element mask): a repeating group
                group, element, gmask, emask = row
                name = {0x3000: "OverlayData", 0x4000: "OverlayComments"}.get(element, "CurveData")
                REPEATING.append((group, element, gmask, emask, name, code))
                continue
            tag = (row[0] << 16) | row[1]
            if tag in PROFILE:
                raise RuntimeError(f"mediag.deid: ({row[0]:04X},{row[1]:04X}) has two actions in {TABLE_MODULE}")
            PROFILE[tag] = (keyword_for_tag(tag) or f"({row[0]:04X},{row[1]:04X})", code)


_build_profile()


def profile_row(tag: int) -> tuple[str | None, str | None]:
    """(keyword, code) of the table row that covers `tag` (fixed or repeating group), or (None, None)."""
    if tag in PROFILE:
        return PROFILE[tag]
    group, element = tag >> 16, tag & 0xFFFF
    for g, e, gmask, emask, name, code in REPEATING:
        if group & gmask == g and element & emask == e:
            return name, code
    return None, None


@dataclass(frozen=True)
class Action:
    """One change: where (path inside the dataset), the tag, its keyword, what was done and why. No values.

    rule: the table's code for the attribute ("X", "Z", "X/Z/D", ...), or the rule that applied: "private",
    "overlay/curve group", "UID rule", "date rule" (an attribute outside the table with a date, time or UID),
    an option's name ("Clean Descriptors Option", "Clean Pixel Data Option") or "file meta".
    """

    where: str
    tag: str
    keyword: str
    action: str  # removed | emptied | replaced | uid-mapped | date-shifted | date-removed | private-removed
    #              | cleaned | pixels-blanked
    rule: str = ""


@dataclass
class DeidResult:
    dataset: object
    actions: list[Action] = field(default_factory=list)
    burned_in: list[str] = field(default_factory=list)  # reasons the pixels may show text
    pseudonym: str = ""  # the new PatientID
    options: list[str] = field(default_factory=list)  # the standard's names of the profile and options applied

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(a.action for a in self.actions).items()))


# -- derived, salted replacements -------------------------------------------------------------------


def _digest(salt, *parts: str) -> bytes:
    if salt is None or (isinstance(salt, (str, bytes)) and len(salt) == 0):
        raise ValueError("deid: the salt is empty; pass a secret string (keep it private, reuse it to keep links)")
    key = salt.encode("utf-8") if isinstance(salt, str) else bytes(salt)
    return hmac.new(key, "\x1f".join(parts).encode("utf-8"), hashlib.sha256).digest()


def map_uid(uid: str, salt) -> str:
    """A new UID `2.25.<128-bit integer>` from HMAC-SHA-256(salt, uid): same input, same output."""
    return "2.25." + str(int.from_bytes(_digest(salt, "uid", str(uid))[:16], "big"))


def pseudonym(patient_id: str, salt) -> str:
    """A stable pseudonym for a patient (the new PatientID)."""
    return "MDG-" + _digest(salt, "patient", str(patient_id)).hex()[:12].upper()


def date_offset_days(patient_id: str, salt) -> int:
    """The whole-day part of a patient's offset, between -3650 and -366 days (one to ten years back)."""
    return -366 - int.from_bytes(_digest(salt, "date", str(patient_id))[:4], "big") % 3285


def time_offset_seconds(patient_id: str, salt) -> int:
    """The time-of-day part of a patient's offset, 1 to 86399 s (never a whole day: every time changes)."""
    return 1 + int.from_bytes(_digest(salt, "time", str(patient_id))[:4], "big") % 86399


def date_offset(patient_id: str, salt) -> _dt.timedelta:
    """The patient's offset for `--dates shift`: whole days plus a time of day, added to every moment."""
    return _dt.timedelta(days=date_offset_days(patient_id, salt), seconds=time_offset_seconds(patient_id, salt))


def _parse_date(value: str) -> _dt.datetime | None:
    value = value.strip().replace(".", "") if len(value.strip()) == 10 else value.strip()  # ACR-NEMA YYYY.MM.DD
    if len(value) != 8 or not value.isdigit():
        return None
    try:
        return _dt.datetime.strptime(value, "%Y%m%d")
    except ValueError:
        return None


def _parse_time(value: str) -> tuple[_dt.timedelta, str] | None:
    """A TM value ('HH', 'HHMM', 'HHMMSS', 'HHMMSS.FFFFFF', or ACR-NEMA 'HH:MM:SS') -> (time of day, fraction)."""
    import re

    match = re.fullmatch(r"(\d\d)(\d\d)?(\d\d)?(\.\d{1,6})?", value.strip().replace(":", ""))
    if not match:
        return None
    hours, minutes, seconds = (int(g or 0) for g in match.groups()[:3])
    if hours > 23 or minutes > 59 or seconds > 60:
        return None
    return _dt.timedelta(hours=hours, minutes=minutes, seconds=min(seconds, 59)), match.group(4) or ""


def _format_time(moment: _dt.datetime, fraction: str) -> str:
    return moment.strftime("%H%M%S") + fraction


def shift_date(value: str, days: int) -> str | None:
    """Shift a DA value 'YYYYMMDD' by `days`; None if the value is not a full date."""
    day = _parse_date(value)
    return None if day is None else (day + _dt.timedelta(days=days)).strftime("%Y%m%d")


def shift_moment(date: str, time: str, offset: _dt.timedelta) -> tuple[str, str] | None:
    """Shift a date and its time of day together by `offset` (the date may change at midnight); None if either
    cannot be read. The time comes back as HHMMSS (its fraction of a second kept)."""
    day, parsed = _parse_date(date), _parse_time(time)
    if day is None or parsed is None:
        return None
    moment = day + parsed[0] + offset
    return moment.strftime("%Y%m%d"), _format_time(moment, parsed[1])


def shift_time(value: str, offset: _dt.timedelta) -> str | None:
    """Shift a TM value that has no date beside it by the offset's time of day, modulo 24 h; None if unreadable."""
    parsed = _parse_time(value)
    if parsed is None:
        return None
    return _format_time(_dt.datetime(2000, 1, 1) + (parsed[0] + offset) % _dt.timedelta(days=1), parsed[1])


def shift_datetime(value: str, offset) -> str | None:
    """Shift a DT value by `offset` (a timedelta, or whole days as an int). A DT with a time moves as one moment;
    a DT with a date only moves by the whole days. The UTC offset suffix is kept. None without a full date."""
    import re

    offset = _dt.timedelta(days=offset) if isinstance(offset, int) else offset
    match = re.fullmatch(r"(\d{8})(\d{2,6}(?:\.\d{1,6})?)?([+-]\d{4})?", value.strip())
    if not match:
        return None
    date, time, zone = match.group(1), match.group(2), match.group(3) or ""
    if time is None:
        return shift_date(date, offset.days) and shift_date(date, offset.days) + zone
    shifted = shift_moment(date, time, offset)
    return None if shifted is None else shifted[0] + shifted[1] + zone


def is_standard_uid(uid: str) -> bool:
    """True for UIDs the DICOM standard defines (SOP classes, transfer syntaxes, ...): kept as they are."""
    from pydicom.uid import UID_dictionary

    return str(uid) in UID_dictionary


# -- Clean Descriptors Option -------------------------------------------------------------------------------

#: the words a cleaned descriptor may keep: anatomy (CID 4031 Common Anatomic Regions, as pydicom ships it),
#: modalities (CID 29) and a short list of technique words. Every other token (names, dates, numbers, IDs,
#: initials) is dropped, so a descriptor is never copied verbatim unless every word of it is on this list.
_TECHNIQUE_WORDS = """with without w w/ w/o wo and or of the left right bilateral lt rt contrast non noncontrast
    enhanced plain axial coronal sagittal oblique ap pa lateral lat frontal view views portable supine erect upright
    prone decubitus scout localizer survey routine protocol study series exam examination screening follow up
    followup diagnostic angiography angio perfusion diffusion dwi adc flair t1 t2 pd stir gre swi tof mip mpr 3d 2d
    cine dynamic delayed arterial venous portal phase bone soft tissue lung window thin thick slice slices helical
    spiral low dose high resolution hrct biopsy guided guidance doppler color echo echocardiogram mammogram
    mammography tomosynthesis whole body brain"""


def _descriptor_vocabulary() -> frozenset[str]:
    import re

    from pydicom.sr import codes

    words = set(_TECHNIQUE_WORDS.split())
    for cid in (codes.cid4031, codes.cid29):
        for name in cid.dir():
            words.update(w.lower() for w in re.findall(r"[A-Z][a-z]+|[A-Z]+(?![a-z])|\d+", name))
            words.add(str(getattr(cid, name).value).lower())
    return frozenset(w for w in words if w and not w.isdigit())


def is_descriptor(keyword: str | None, vr: str) -> bool:
    """Free-text descriptors the Clean Descriptors Option may keep after cleaning (descriptions, comments,
    protocol names, labels) - all removed by default."""
    return bool(keyword) and vr in ("LO", "SH", "ST", "LT", "UT", "UC") and (
        keyword.endswith(("Description", "Comments", "Comment")) or keyword == "ProtocolName")


def clean_descriptor(text: str) -> str:
    """Keep only the words of `text` that are on the descriptor vocabulary, in order, separated by spaces.
    Names, dates, numbers and identifiers are dropped (an empty string if nothing is left)."""
    import re

    global _VOCABULARY
    if _VOCABULARY is None:
        _VOCABULARY = _descriptor_vocabulary()
    kept = [tok for tok in re.split(r"[\s^_,;:()\[\]{}<>\"'|\\=*#]+", str(text))
            if tok and tok.lower().strip(".-+") in _VOCABULARY]
    return " ".join(kept)


_VOCABULARY: frozenset[str] | None = None


# -- the walk --------------------------------------------------------------------------------------------


def _dummy(elem, pid_pseudonym: str):
    vr = elem.VR
    if elem.keyword == "PatientID":
        return pid_pseudonym
    if vr == "SQ":
        return []
    if vr in ("PN",):
        return "ANONYMIZED"
    if vr in ("LO", "SH", "LT", "ST", "UT", "UC", "CS", "AE"):
        return "ANONYMIZED"
    if vr in NUMBER_VRS:
        return 0
    if vr == "DA":
        return "19000101"
    if vr == "DT":
        return "19000101000000"
    if vr == "TM":
        return "000000"
    return None


def _values(elem) -> list:
    """The values of an element as a list (one item when VM is 1)."""
    return list(elem.value) if elem.VM > 1 else [elem.value]


def _leaves(ds):
    """Every element with a value that is not a sequence, at every depth (file meta not included)."""
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _leaves(item)
        elif elem.value not in (None, ""):
            yield elem


def _time_partner(keyword: str) -> str | None:
    """The keyword of the TM attribute that goes with a DA attribute (StudyDate -> StudyTime), if any."""
    from pydicom.datadict import tag_for_keyword

    if not keyword or "Date" not in keyword:
        return None
    partner = keyword.replace("Date", "Time")
    return partner if tag_for_keyword(partner) is not None else None


class _Walker:
    def __init__(self, salt, dates: str, pid_pseudonym: str, offset: _dt.timedelta, clean_descriptors: bool):
        self.salt, self.dates, self.pseudonym, self.offset = salt, dates, pid_pseudonym, offset
        self.clean_descriptors = clean_descriptors
        self.actions: list[Action] = []

    def record(self, where, elem, action, rule=""):
        keyword = elem.keyword or ("private" if elem.tag.is_private else "")
        self.actions.append(Action(where, f"({elem.tag.group:04X},{elem.tag.element:04X})", keyword, action, rule))

    def walk(self, ds, prefix: str = "") -> None:
        done: set[int] = set()  # times already shifted with their date
        for tag in list(ds.keys()):
            if tag not in ds or int(tag) in done:
                continue
            elem = ds[tag]
            where = f"{prefix}{elem.keyword or str(elem.tag)}"
            group = elem.tag.group
            if elem.tag.is_private:
                del ds[tag]
                self.record(where, elem, "private-removed", "private")
                continue
            if 0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF:  # curves and overlays (may hold text)
                _, code = profile_row(int(tag))
                del ds[tag]
                self.record(where, elem, "removed", code or "overlay/curve group")
                continue
            if int(tag) == 0x7FE00010:  # pixel data: never touched here (see `blank_regions`)
                continue
            self.visit(ds, tag, elem, where, done)

    def visit(self, ds, tag, elem, where, done) -> None:
        keyword, code = profile_row(int(tag))
        action = EFFECTIVE[code] if code else "K"
        rule = code or ""
        if elem.keyword == "PatientBirthDate":
            action = "Z"
        elif elem.VR in ("DA", "DT", "TM") and action != "X":
            if self.date_rule(ds, elem, where, rule or "date rule", done):
                return
        elif action == "X" and self.clean_descriptors and is_descriptor(elem.keyword, elem.VR):
            cleaned = [clean_descriptor(v) for v in _values(elem)]
            if any(cleaned):
                elem.value = cleaned if len(cleaned) > 1 else cleaned[0]
                self.record(where, elem, "cleaned", OPTIONS["clean-descriptors"][2])
                return
        if action == "X":
            del ds[tag]
            self.record(where, elem, "removed", rule)
        elif action == "Z":
            if elem.value not in (None, "", []):
                elem.value = [] if elem.VR == "SQ" else None
                self.record(where, elem, "emptied", rule)
        elif action in ("D", "U") and elem.VR == "UI":
            self.map_uids(elem, where, rule)
        elif action == "D":
            if elem.value not in (None, "", []) or elem.keyword == "PatientID":
                elem.value = _dummy(elem, self.pseudonym)
                self.record(where, elem, "replaced", rule)
        elif elem.VR == "SQ":
            for i, item in enumerate(elem.value):
                self.walk(item, f"{where}[{i}].")
        elif elem.VR == "UI":
            self.map_uids(elem, where, rule or "UID rule")

    def date_rule(self, ds, elem, where, rule, done) -> bool:
        """Shift or remove a date, time or date-time (the dates option); True when handled."""
        if elem.value in (None, ""):
            return True
        if self.dates == "remove":
            elem.value = None
            self.record(where, elem, "date-removed", rule)
            return True
        option = OPTIONS["modified-dates"][2]
        values = [str(v) for v in _values(elem)]
        if elem.VR == "DA":
            partner = _time_partner(elem.keyword)
            time = ds.data_element(partner) if partner and partner in ds else None
            times = [str(v) for v in _values(time)] if time is not None and time.value not in (None, "") else []
            time_code = profile_row(int(time.tag))[1] if time is not None else None
            if times and len(times) == len(values) and EFFECTIVE.get(time_code, "K") != "X":
                moments = [shift_moment(d, t, self.offset) for d, t in zip(values, times)]
                if all(moments):  # date and time move together as one moment
                    self._set(elem, [m[0] for m in moments])
                    self._set(time, [m[1] for m in moments])
                    self.record(where, elem, "date-shifted", f"{rule}; {option}")
                    self.record(where.rsplit(elem.keyword, 1)[0] + time.keyword, time, "date-shifted",
                                f"{time_code or 'date rule'}; {option}")
                    done.add(int(time.tag))
                    return True
            shifted = [shift_date(v, self.offset.days) for v in values]
        elif elem.VR == "DT":
            shifted = [shift_datetime(v, self.offset) for v in values]
        else:  # a time with no date beside it (or whose date was handled alone): the time-of-day offset
            shifted = [shift_time(v, self.offset) for v in values]
        if any(s is None for s in shifted):  # a partial or malformed value cannot be shifted: remove it
            elem.value = None
            self.record(where, elem, "date-removed", rule)
        else:
            self._set(elem, shifted)
            self.record(where, elem, "date-shifted", f"{rule}; {option}")
        return True

    @staticmethod
    def _set(elem, values: list) -> None:
        elem.value = values if len(values) > 1 else values[0]

    def map_uids(self, elem, where, rule) -> None:
        if elem.value in (None, ""):
            return
        values = _values(elem)
        if all(is_standard_uid(v) for v in values):
            return
        mapped = [v if is_standard_uid(v) else map_uid(v, self.salt) for v in values]
        elem.value = mapped if len(mapped) > 1 else mapped[0]
        self.record(where, elem, "uid-mapped", rule)


def _clean_meta(out, walker) -> None:
    """File meta (group 0002): keep the technical attributes only, map the instance UID, name the writer."""
    from pydicom import __version__
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

    meta = out.file_meta
    for tag in list(meta.keys()):
        elem = meta[tag]
        if elem.keyword not in META_KEEP:
            del meta[tag]
            walker.record("file_meta." + (elem.keyword or str(elem.tag)), elem, "removed", "file meta")
    if "MediaStorageSOPInstanceUID" in meta or "SOPInstanceUID" in out:
        old = str(meta.get("MediaStorageSOPInstanceUID", "") or "")
        if "SOPInstanceUID" in out:  # already mapped by the walk: the meta must name the same instance
            new = str(out.SOPInstanceUID)
        else:
            new = old if is_standard_uid(old) or not old else map_uid(old, walker.salt)
        if new != old:
            meta.MediaStorageSOPInstanceUID = new
            walker.record("file_meta.MediaStorageSOPInstanceUID", meta["MediaStorageSOPInstanceUID"], "uid-mapped",
                          "U")
    writer = {"ImplementationClassUID": PYDICOM_IMPLEMENTATION_UID,
              "ImplementationVersionName": f"PYDICOM {__version__}"}
    for keyword, value in writer.items():
        if str(meta.get(keyword, "") or "") != value:
            setattr(meta, keyword, value)
            walker.record("file_meta." + keyword, meta[keyword], "replaced", "file meta")


def burned_in_reasons(ds) -> list[str]:
    """Why an image may show identifying text in its pixels (empty list: no known reason)."""
    reasons = []
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        reasons.append("BurnedInAnnotation is YES")
    if str(ds.get("Modality", "")) == "US":
        reasons.append("ultrasound (US) images usually carry burned-in text")
    if str(ds.get("SOPClassUID", "")).startswith(SECONDARY_CAPTURE_PREFIX):
        reasons.append("secondary capture (a screenshot-like image)")
    return reasons


def deidentify(ds, salt, dates: str = "shift", clean_descriptors: bool = False, blank=None) -> DeidResult:
    """De-identify a copy of the pydicom Dataset `ds` (see the module docstring). `ds` is not changed.

    dates: "shift" applies the Retain Longitudinal Temporal Information With Modified Dates Option (one offset
        per patient, whole days plus a time of day, added to every date, time and date-time); "remove" empties
        every date and time (no temporal option).
    clean_descriptors: the Clean Descriptors Option: descriptions, comments and protocol names are kept after
        `clean_descriptor` (words of a fixed vocabulary only) instead of being removed.
    blank: rectangles (x, y, width, height) in pixels to blank in every frame (Clean Pixel Data Option, by
        region); None (the default) never touches the pixel data.
    """
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    if not isinstance(ds, Dataset):
        kind = type(ds).__name__
        raise TypeError(f"deidentify expects a pydicom Dataset, got {kind}; read the file with pydicom.dcmread")
    if dates not in ("shift", "remove"):
        raise ValueError(f"deid: dates must be 'shift' or 'remove', got {dates!r}")
    out = copy.deepcopy(ds)
    if getattr(out, "preamble", None) is not None:  # 128 free bytes before 'DICM': a vendor may put anything there
        out.preamble = b"\x00" * 128
    patient_id = str(ds.get("PatientID", "") or "") or str(ds.get("PatientName", "") or "")
    walker = _Walker(salt, dates, pseudonym(patient_id, salt), date_offset(patient_id, salt), clean_descriptors)
    walker.walk(out)
    out.PatientID = walker.pseudonym  # type 2 attributes: present; the name stays empty (Z), the ID links
    if "PatientName" not in out:
        out.PatientName = None
    if getattr(out, "file_meta", None) is not None:
        _clean_meta(out, walker)
    chosen = ["basic"] + (["modified-dates"] if dates == "shift" else []) + (
        ["clean-descriptors"] if clean_descriptors else [])
    if blank:
        blank_regions(out, blank, walker)
        chosen.append("clean-pixels")
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = METHOD + (", dates shifted" if dates == "shift" else ", dates removed")
    items = []
    for key in chosen:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = OPTIONS[key][0], "DCM", OPTIONS[key][1]
        items.append(item)
    out.DeidentificationMethodCodeSequence = Sequence(items)
    out.LongitudinalTemporalInformationModified = "MODIFIED" if dates == "shift" else "REMOVED"
    return DeidResult(out, walker.actions, burned_in_reasons(out), walker.pseudonym, [OPTIONS[k][2] for k in chosen])


# -- Clean Pixel Data Option, by region -------------------------------------------------------------------


def parse_rects(text: str) -> list[tuple[int, int, int, int]]:
    """'x,y,w,h;x,y,w,h' -> [(x, y, w, h), ...]; raises ValueError with one line on anything else."""
    rects = []
    for part in str(text).split(";"):
        if not part.strip():
            continue
        fields = [f.strip() for f in part.split(",")]
        if len(fields) != 4 or not all(f.isdigit() for f in fields):
            raise ValueError(f"--blank-pixels: {part.strip()!r} is not a rectangle x,y,width,height in whole pixels")
        x, y, w, h = map(int, fields)
        if w == 0 or h == 0:
            raise ValueError(f"--blank-pixels: {part.strip()!r} has a zero width or height")
        rects.append((x, y, w, h))
    if not rects:
        raise ValueError("--blank-pixels: no rectangle given; write x,y,width,height (several: separate by ';')")
    return rects


def blank_regions(out, rects, walker=None) -> list[tuple[int, int, int, int]]:
    """Set the rectangles `rects` [(x, y, w, h)] of every frame of `out` to black (0; the maximum for
    MONOCHROME1), clipped to the image. The pixel data is stored uncompressed afterwards. Returns the clipped
    rectangles. Raises ValueError if the dataset has no pixel data or a rectangle lies outside the image."""
    import numpy as np

    if "PixelData" not in out:
        raise ValueError("--blank-pixels: the file has no pixel data to blank")
    rows, cols = int(out.Rows), int(out.Columns)
    clipped = []
    for x, y, w, h in rects:
        if x >= cols or y >= rows:
            raise ValueError(f"--blank-pixels: rectangle {x},{y},{w},{h} lies outside the {cols}x{rows} image")
        clipped.append((x, y, min(w, cols - x), min(h, rows - y)))
    arr = np.array(out.pixel_array)  # decoded (and converted to RGB for YCbCr JPEG), a writable copy
    photometric = str(out.PhotometricInterpretation)
    if arr.ndim == 3 and int(out.get("SamplesPerPixel", 1)) > 1:
        photometric = "RGB" if photometric.startswith("YBR") else photometric
    black = (2 ** int(out.BitsStored) - 1) if photometric == "MONOCHROME1" else 0
    frames = arr if int(out.get("NumberOfFrames", 1) or 1) > 1 else arr[None]
    for x, y, w, h in clipped:
        frames[:, y:y + h, x:x + w, ...] = black
    out.set_pixel_data(frames if frames.shape[0] > 1 else frames[0], photometric, int(out.BitsStored))
    if walker is not None:
        walker.record("PixelData", out["PixelData"], "pixels-blanked", OPTIONS["clean-pixels"][2])
    return clipped


def identifying_values(ds) -> set[str]:
    """The text of every identifying value in `ds`: profile attributes, non-standard UIDs, dates, private text,
    and in the file meta the instance UID and every non-technical attribute (AE titles, addresses).

    Used to prove a de-identified copy leaks none of them (see `leaks`).
    """
    found: set[str] = set()
    for elem in _leaves(ds):
        if elem.tag.is_private or elem.VR in BINARY_VRS + NUMBER_VRS:
            continue  # private tags are checked by `profile_violations` (none may remain)
        identifying = (elem.VR in ("DA", "DT", "PN") or (int(elem.tag) in PROFILE and elem.VR != "TM")
                       or (elem.VR == "UI" and not is_standard_uid(str(elem.value))))
        if identifying:
            found.update(t for t in (str(v).strip() for v in _values(elem))
                         if len(t) >= 4)  # short codes ("M", "F", "CT") are not identifying on their own
    meta = getattr(ds, "file_meta", None)
    for elem in _leaves(meta) if meta is not None else ():  # sender names, addresses, the instance UID
        sender = elem.keyword not in META_KEEP or elem.keyword == "MediaStorageSOPInstanceUID"
        if sender and elem.VR not in BINARY_VRS:
            found.update(t for t in (str(v).strip() for v in _values(elem)) if len(t) >= 4)
    return found


def all_text(ds) -> set[str]:
    """Every text value of a dataset (all depths, file meta included), as strings."""
    meta = getattr(ds, "file_meta", None)
    elems = [*_leaves(ds), *(_leaves(meta) if meta is not None else ())]
    return {str(v).strip() for elem in elems if elem.VR not in BINARY_VRS for v in _values(elem)}


def leaks(original, deidentified) -> list[str]:
    """Identifying values of `original` still present in `deidentified` (an empty list means none).

    Values that the profile keeps on purpose and that also appear as technical values (e.g. a
    standard UID) are not identifying and are not reported.
    """
    return sorted(identifying_values(original) & all_text(deidentified))


def profile_violations(ds) -> list[str]:
    """Where the de-identified `ds` breaks the profile: private tags, X attributes present, Z attributes
    not empty (dates excepted: they may be shifted). Values that survived elsewhere: see `leaks`."""
    problems = []
    option = OPTIONS["clean-descriptors"][1]
    codes = {str(i.get("CodeMeaning", "")) for i in ds.get("DeidentificationMethodCodeSequence", [])}

    def cleaned(d, elem):  # a descriptor kept by the Clean Descriptors Option, and clean
        return option in codes and is_descriptor(elem.keyword, elem.VR) and all(
            clean_descriptor(v) == str(v) for v in _values(elem))

    def visit(d, prefix=""):
        for elem in d:
            where = prefix + (elem.keyword or str(elem.tag))
            if elem.tag.is_private:
                problems.append(f"{where}: private tag")
                continue
            keyword, code = profile_row(int(elem.tag))
            effective = EFFECTIVE[code] if code else "K"
            if effective == "X" and not (elem.VR in ("LO", "SH", "ST", "LT", "UT", "UC") and cleaned(d, elem)):
                problems.append(f"{where}: should be removed")
            elif effective == "Z" and elem.value not in (None, "", []) and elem.VR not in ("DA", "DT", "TM"):
                problems.append(f"{where}: should be empty")  # dates may be shifted instead (the option)
            if elem.VR == "SQ":
                for i, item in enumerate(elem.value):
                    visit(item, f"{where}[{i}].")

    visit(ds)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        problems += [f"file_meta.{e.keyword or e.tag}: should be removed" for e in meta if e.keyword not in META_KEEP]
        if "SOPInstanceUID" in ds and meta.get("MediaStorageSOPInstanceUID", ds.SOPInstanceUID) != ds.SOPInstanceUID:
            problems.append("file_meta.MediaStorageSOPInstanceUID: differs from SOPInstanceUID")
    return problems


# -- files and folders -----------------------------------------------------------------------------------


def _write(result: DeidResult, dst: Path) -> None:
    """Save the de-identified dataset to the new file `dst`; never replaces an existing file."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(dst, "xb") as f:  # "x": fails if the file exists, even if it appeared a moment ago
            result.dataset.save_as(f, enforce_file_format=True)
    except FileExistsError:
        raise FileExistsError(f"{dst}: already exists; deid never overwrites, choose a new output folder") from None


def _safe_part(text: str, missing: str) -> str:
    """One path component: letters, digits, '.', '-', '_' only, at most 64 characters, never hidden."""
    import re

    part = re.sub(r"[^A-Za-z0-9._-]", "_", str(text or "").strip())[:64].lstrip(".")
    return part or missing


def output_name(ds) -> Path:
    """The relative path of a de-identified dataset's file, from de-identified identifiers only:
    `<PatientID>/<StudyInstanceUID>/<SOPInstanceUID>.dcm` (sanitised; `no-study` / `no-instance` when
    missing). Pass the *de-identified* dataset (`deidentify(ds, salt).dataset`), never the original."""
    return Path(_safe_part(ds.get("PatientID"), "no-patient"), _safe_part(ds.get("StudyInstanceUID"), "no-study"),
                _safe_part(ds.get("SOPInstanceUID"), "no-instance") + ".dcm")


def _unique(rel: Path, taken: set[str]) -> Path:
    """`rel`, or `rel` with `_2`, `_3`, ... before the suffix if an earlier file already took the name."""
    candidate, n = rel, 1
    while candidate.as_posix().lower() in taken:  # lower: case-insensitive file systems
        n += 1
        candidate = rel.with_name(f"{rel.stem}_{n}{rel.suffix}")
    taken.add(candidate.as_posix().lower())
    return candidate


@dataclass
class TreeResult:
    written: list[tuple[Path, DeidResult]]  # (output path relative to OUT, result)
    skipped: list[tuple[Path, str]]  # (input path relative to IN, reason): in memory only, for the operator
    log: Path
    sources: dict[Path, Path] = field(default_factory=dict)  # output path -> input path (in memory only)


def plan_tree(src, dst) -> list[Path]:
    """Validate IN and OUT for `deidentify_tree` and list the candidate files; raises ValueError."""
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise ValueError(f"{src}: no such file or folder; check the input path")
    src_r, dst_r = src.resolve(), dst.resolve()
    if dst_r == src_r or src_r in dst_r.parents:
        raise ValueError(f"{dst}: is inside the input {src}; choose an output folder outside IN")
    if src.is_file() and dst_r == src_r.parent:
        raise ValueError(f"{dst}: is the input's own folder; choose a new output folder")
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise ValueError(f"{dst}: already exists and is not empty; choose a new output folder (deid never overwrites)")
    if src.is_file():
        return [src]
    files = sorted(p for p in src.rglob("*") if p.is_file())
    if not files:
        raise ValueError(f"{src}: empty folder, no files to de-identify; point IN at a folder of DICOM files")
    return files


AUDIT_LOG = "deid-audit.json"


def _scrub(reason: str, *paths: Path) -> str:
    """A skip reason without the input's path or file name (an error message may quote them)."""
    for text in sorted({t for p in paths for t in (str(p), p.as_posix(), p.name)}, key=len, reverse=True):
        reason = reason.replace(text, "<input>") if text else reason
    return reason


def load_blank_rules(spec) -> list[dict]:
    """The `--blank-pixels` argument -> rules [{"rects": [(x, y, w, h)], "file"?, "manufacturer"?, "model"?}].

    spec: rectangles for every file ("x,y,w,h;x,y,w,h"), or the path of a JSON file holding a list of rules,
    each {"rects": "x,y,w,h;..." or [[x, y, w, h], ...]} with optional keys "file" (an input path relative to
    IN, or a file name), "manufacturer" and "model" (Manufacturer and ManufacturerModelName, compared without
    case). A file gets the rectangles of every rule it matches. Raises ValueError with one line.
    """
    import json

    text = str(spec)
    if not Path(text).is_file():
        if text.lower().endswith(".json"):
            raise ValueError(f"--blank-pixels: {text}: no such file; give rectangles x,y,w,h or a JSON file of rules")
        return [{"rects": parse_rects(text)}]
    try:
        rules = json.loads(Path(text).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"--blank-pixels: {Path(text).name}: not valid JSON ({str(exc).splitlines()[0]})") from None
    if isinstance(rules, dict):
        rules = [rules]
    if not isinstance(rules, list) or not rules:
        raise ValueError(f"--blank-pixels: {Path(text).name}: expected a list of rules like "
                         '[{"manufacturer": "ACME", "model": "X1", "rects": "0,0,640,40"}]')
    out = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict) or "rects" not in rule:
            raise ValueError(f"--blank-pixels: rule {i + 1} has no \"rects\"")
        unknown = set(rule) - {"rects", "file", "manufacturer", "model"}
        if unknown:
            raise ValueError(f"--blank-pixels: rule {i + 1}: unknown key(s) {sorted(unknown)}; "
                             "use rects, file, manufacturer, model")
        rects = rule["rects"]
        rects = parse_rects(rects if isinstance(rects, str) else ";".join(",".join(map(str, r)) for r in rects))
        out.append({**{k: str(v) for k, v in rule.items() if k != "rects"}, "rects": rects})
    return out


def rects_for(rules, ds, rel: Path) -> list[tuple[int, int, int, int]]:
    """The rectangles of every rule that matches the file `rel` (relative to IN) with dataset `ds`."""
    def same(a, b):
        return str(a or "").strip().lower() == str(b or "").strip().lower()

    found = []
    for rule in rules or []:
        if "file" in rule and rule["file"] not in (rel.as_posix(), rel.name):
            continue
        if "manufacturer" in rule and not same(rule["manufacturer"], ds.get("Manufacturer")):
            continue
        if "model" in rule and not same(rule["model"], ds.get("ManufacturerModelName")):
            continue
        found += [r for r in rule["rects"] if r not in found]
    return found


def deidentify_tree(src, dst, salt, dates: str = "shift", warn=None, keep_names: bool = False,
                    clean_descriptors: bool = False, blank_pixels=None) -> TreeResult:
    """De-identify a file or every DICOM file of a folder tree into the new folder `dst`.

    Output names: by default each file is named from de-identified identifiers only (`output_name`:
    `<pseudonym>/<new study UID>/<new instance UID>.dcm`, with `_2`, `_3`, ... if two inputs map to the
    same name), because folder and file names of archives often hold patient names, IDs or accession
    numbers. `keep_names=True` keeps the input's relative paths instead: only for names known to be safe.

    Options (`deidentify`): `dates`, `clean_descriptors`; `blank_pixels` is the `--blank-pixels` argument
    (see `load_blank_rules`): files that match a rule have those rectangles blanked; the others keep their
    pixel data bit for bit.

    Skips non-DICOM and damaged files (calling `warn(message)`, which names the input file: it is meant
    for the operator's terminal), never writes inside `src` or over a file, and writes
    `dst/deid-audit.json`: the table's edition, the profile and options by the standard's names, and per output
    file (by its output name) each attribute removed or replaced (tag, keyword, action, rule: never a value),
    the rectangles blanked and the reasons to check its pixels for burned-in text; for skipped files their
    count and reasons (their input names only with `keep_names=True`). The returned `TreeResult` also maps
    output to input paths, in memory.
    Raises ValueError for a bad IN/OUT, a bad --blank-pixels, a single bad file, or a folder without any DICOM
    file.
    """
    import json

    from mediag.dicom import DicomError, validate_file

    src, dst = Path(src), Path(dst)
    if dates not in ("shift", "remove"):
        raise ValueError(f"dates must be 'shift' or 'remove', got {dates!r}")
    _digest(salt, "")  # an empty salt fails before anything is read
    rules = load_blank_rules(blank_pixels) if blank_pixels is not None else None
    files = plan_tree(src, dst)

    def skip(rel: Path, reason: str) -> None:
        skipped.append((rel, reason))
        if warn:
            warn(f"skipped {rel}: {reason}")

    skipped, written, entries, sources, taken, n_dicom = [], [], [], {}, set(), 0
    for path in files:  # each file is read once: validate_file returns the dataset it checked
        rel = Path(path.name) if src.is_file() else path.relative_to(src)
        try:
            original = validate_file(path, require_pixels=False)
        except DicomError as exc:
            if src.is_file():
                raise ValueError(f"{path.name}: {exc.reason}; pass a DICOM file") from None
            skip(rel, exc.reason)
            continue
        n_dicom += 1
        rects = rects_for(rules, original, rel)
        try:
            result = deidentify(original, salt, dates=dates, clean_descriptors=clean_descriptors, blank=rects or None)
        except ValueError as exc:  # a rectangle outside this image: never write it half-cleaned
            if src.is_file():
                raise ValueError(f"{path.name}: {exc}") from None
            skip(rel, str(exc))
            continue
        out_rel = _unique(rel if keep_names else output_name(result.dataset), taken)
        _write(result, dst / out_rel)
        written.append((out_rel, result))
        sources[out_rel] = rel
        entries.append({"file": out_rel.as_posix(), "options": result.options,
                        "burned_in_text_risk": result.burned_in,
                        "pixels_blanked": [list(r) for r in rects], "counts": result.counts(),
                        "actions": [[a.where, a.tag, a.keyword, a.action, a.rule] for a in result.actions]})
    if not n_dicom:  # nothing was written, so OUT was never created
        raise ValueError(f"{src}: no DICOM file found among {len(files)} file(s); point IN at DICOM files")
    dst.mkdir(parents=True, exist_ok=True)
    reasons = Counter(why if keep_names else _scrub(why, src / rel, (src / rel).resolve(), rel) for rel, why in skipped)
    skip_log = {"count": len(skipped), "reasons": dict(sorted(reasons.items()))}
    if keep_names:
        skip_log["files"] = [[r.as_posix(), why] for r, why in skipped]
    options = [OPTIONS["basic"][2]] + ([OPTIONS["modified-dates"][2]] if dates == "shift" else []) + (
        [OPTIONS["clean-descriptors"][2]] if clean_descriptors else [])
    table = (f"{TABLE_EDITION} ({len(PROFILE)} fixed rows, {len(REPEATING)} repeating-group rows), from the "
             f"package {TABLE_PACKAGE}, module {TABLE_MODULE}")
    header = {"profile": METHOD, "table": table,
              "options": options, "dates": dates, "times": DATES_HELP[dates],
              "descriptors": "kept after cleaning (Clean Descriptors Option)" if clean_descriptors else "removed",
              "pixels": (f"{len(rules)} --blank-pixels rule(s); {sum(bool(e['pixels_blanked']) for e in entries)} "
                         "file(s) blanked (Clean Pixel Data Option)") if rules else "never changed",
              "names": "kept from the input" if keep_names else "de-identified",
              "files_written": len(written), "skipped": skip_log,
              "action_columns": ["where", "tag", "keyword", "action", "rule"]}
    log = dst / AUDIT_LOG
    entries.sort(key=lambda e: e["file"])  # output order, not input order (input names sort by patient)
    log.write_text(json.dumps({**header, "files": entries}, indent=1) + "\n", encoding="utf-8")
    return TreeResult(written, skipped, log, sources)


#: what each `dates` choice does to dates and times (in the audit log and `mediag deid --help`)
DATES_HELP = {
    "shift": ("one offset per patient (1 to "
              "10 years back plus a time of day) is added to every moment; a date with its time (StudyDate with "
              "StudyTime, ...) and every date-time move together, a date alone moves by the whole days, a time "
              "alone by the time of day modulo 24 h; the birth date is emptied"),
    "remove": "no temporal option: every date, time and date-time is emptied or removed",
}


def changed_attributes(original, deidentified, width: int = 28) -> list[tuple[str, str, str]]:
    """The top-level attributes whose value differs between `original` and its de-identified copy, as rows
    (keyword, before, after), values shortened to `width` characters ("-" when absent or empty); sequences
    and binary values are summarised ("<sequence of N items>", "<N bytes>"). For a before/after table."""
    def show(ds, tag):
        if tag not in ds or ds[tag].value in (None, "", []):
            return "-"
        elem = ds[tag]
        if elem.VR == "SQ":
            return f"<sequence of {len(elem.value)} items>"
        if elem.VR in BINARY_VRS:
            return f"<{len(elem.value)} bytes>"
        text = str(elem.value)
        return text if len(text) <= width else text[:width - 1] + "…"

    rows = []
    for tag in sorted(set(original.keys()) | set(deidentified.keys())):
        if int(tag) == 0x7FE00010:
            continue
        before, after = show(original, tag), show(deidentified, tag)
        if before != after:
            elem = original[tag] if tag in original else deidentified[tag]
            name = elem.keyword or ("private " if elem.tag.is_private else "") + str(elem.tag)
            rows.append((name, before, after))
    return rows
