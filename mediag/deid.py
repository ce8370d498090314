"""De-identify DICOM: the Basic Application Level Confidentiality Profile (DICOM PS3.15 Annex E).

    from mediag import deid
    result = deid.deidentify(ds, salt="a secret of the project")   # ds itself is never changed
    result.dataset        # the de-identified copy (pixel data bit-identical)
    result.actions        # what was removed or replaced: (where, tag, keyword, action); never a value
    result.burned_in      # reasons the pixels may still show text (burned-in annotation, US, SC)

What it does, following the profile's table E.1-1:
- removes (X), empties (Z) or replaces with a dummy (D) each identifying attribute the profile lists,
  at every depth (inside sequences too), plus every private tag and every overlay / curve group;
- replaces every UID that is not a standard DICOM UID (study, series, instance, frame of reference,
  references to other images) by `2.25.<integer>` derived from the UID and a secret salt with
  HMAC-SHA-256: the same input UID always gives the same output UID, so studies and series stay
  linked across files, and nobody without the salt can map back;
- dates: by default shifts every date (DA, DT) by one offset per patient, derived from the salt and the
  patient ID, so intervals between a patient's studies survive ("Retain Longitudinal Temporal
  Information with Modified Dates" option); `dates="remove"` empties every date and time instead.
  The birth date is always emptied;
- the patient name is emptied and the patient ID becomes one pseudonym per patient (from the salt),
  so a patient's files stay together;
- sets PatientIdentityRemoved = YES, DeidentificationMethod and its code sequence (113100, and
  113107 when dates are shifted), LongitudinalTemporalInformationModified;
- flags images that may carry burned-in text: BurnedInAnnotation = YES, ultrasound, secondary capture.
  The pixels are left bit-identical: cleaning text out of pixels is a separate, manual step.

`PROFILE_TEXT` lists, by pydicom keyword and grouped by the standard's action code, the rows of
table E.1-1 that image objects carry (about 300 of its several hundred rows; rows specific to
radiotherapy plans, GPS data, specimens and clinical-trial workflows are only partly listed). Private
tags, overlays, curves, non-standard UIDs and dates are handled by rule, whatever their attribute.
Combined codes take the option that keeps the file valid and the information out: X/Z and X/Z/D
empty the attribute, X/D and Z/D replace it by a dummy, X/Z/U* keeps the sequence and maps the UIDs
inside it.

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
from dataclasses import dataclass, field
from pathlib import Path

#: The profile's attributes (PS3.15 Table E.1-1, Basic Profile column), by action code.
PROFILE_TEXT = {
    "D": """
        ContentSequence DateTime Date Time PersonName PersonIdentificationCodeSequence
        VerifyingObserverName VerifyingObserverSequence VerifyingOrganization VerificationDateTime
        ClinicalTrialSponsorName ClinicalTrialProtocolID ClinicalTrialSubjectID ClinicalTrialSubjectReadingID
        ClinicalTrialProtocolEthicsCommitteeName ContainerIdentifier SpecimenIdentifier DeviceLabel
        GraphicAnnotationSequence StructureSetLabel RTPlanLabel XRayDetectorID XRaySourceID
        FrameAcquisitionDateTime FrameReferenceDateTime DecayCorrectionDateTime DestinationAE
        ReferencedDateTime SourceStartDateTime SourceEndDateTime
    """,
    "Z": """
        AccessionNumber StudyDate StudyTime StudyID PatientName PatientBirthDate PatientSex
        ReferringPhysicianName ConsultingPhysicianName PlacerOrderNumberImagingServiceRequest
        FillerOrderNumberImagingServiceRequest ClinicalTrialSiteID ClinicalTrialSiteName
        ClinicalTrialTimePointID ClinicalTrialProtocolName ClinicalTrialCoordinatingCenterName
        ROIName ROIInterpreter ReviewDate ReviewTime StructureSetDate StructureSetTime
        CalibrationDateTime SpecimenPreparationSequence VerifyingObserverIdentificationCodeSequence
    """,
    "X": """
        AcquisitionComments AcquisitionProtocolDescription ActualHumanPerformersSequence
        AdditionalPatientHistory AdmissionID AdmittingDate AdmittingDiagnosesCodeSequence
        AdmittingDiagnosesDescription AdmittingTime Allergies AuthorObserverSequence BranchOfService
        CassetteID ClinicalTrialSeriesDescription ClinicalTrialSeriesID ClinicalTrialTimePointDescription
        CommentsOnRadiationDose CommentsOnThePerformedProcedureStep
        ConfidentialityConstraintOnPatientDataDescription ConsultingPhysicianIdentificationSequence
        ContentCreatorIdentificationCodeSequence ContrastBolusStartTime ContrastBolusStopTime
        CountryOfResidence CurrentPatientLocation CurveDate CurveTime CustodialOrganizationSequence
        DataSetTrailingPadding DateOfLastCalibration DateOfSecondaryCapture DerivationDescription
        DeviceDescription DigitalSignaturesSequence DischargeDate DischargeDiagnosisDescription DischargeTime
        DistributionAddress DistributionName EthnicGroup FrameComments GantryID GeneratorID
        HumanPerformerName HumanPerformerOrganization IconImageSequence IdentifyingComments ImageComments
        ImagePresentationComments ImagingServiceRequestComments Impressions InstitutionAddress
        InstitutionalDepartmentName InsurancePlanIdentification IntendedRecipientsOfResultsIdentificationSequence
        InterpretationApproverSequence InterpretationAuthor InterpretationDiagnosisDescription InterpretationIDIssuer
        InterpretationRecorder InterpretationText InterpretationTranscriber IssuerOfAdmissionID
        IssuerOfAdmissionIDSequence IssuerOfPatientID IssuerOfServiceEpisodeID LastMenstrualDate
        MedicalAlerts MedicalRecordLocator MilitaryRank ModifiedAttributesSequence ModifiedImageDate
        ModifiedImageDescription ModifiedImageTime ModifyingDeviceID NameOfPhysiciansReadingStudy
        NamesOfIntendedRecipientsOfResults NetworkID Occupation OrderCallbackPhoneNumber OrderEnteredBy
        OrderEntererLocation OriginalAttributesSequence Originator OtherPatientIDs OtherPatientIDsSequence
        OtherPatientNames OverlayDate OverlayTime ParticipantSequence PatientComments PatientState
        PatientTransportArrangements PatientAddress PatientAge PatientBirthName PatientBirthTime
        PatientInstitutionResidence PatientInsurancePlanCodeSequence PatientMotherBirthName
        PatientReligiousPreference PatientSize PatientTelecomInformation PatientTelephoneNumbers PatientWeight
        PerformedLocation PerformedProcedureStepDescription PerformedProcedureStepEndDate
        PerformedProcedureStepEndTime PerformedProcedureStepID PerformedProcedureStepStartDate
        PerformedProcedureStepStartTime PerformedStationAETitle PerformedStationGeographicLocationCodeSequence
        PerformedStationName PerformedStationNameCodeSequence PerformingPhysicianIdentificationSequence
        PerformingPhysicianName PersonAddress PersonTelephoneNumbers PhysicianApprovingInterpretation
        PhysiciansReadingStudyIdentificationSequence PhysiciansOfRecord PhysiciansOfRecordIdentificationSequence
        PlateID PreMedication PregnancyStatus ReasonForTheImagingServiceRequest ReasonForStudy
        ReasonForTheRequestedProcedure ReasonForVisit ReasonForVisitCodeSequence
        ReferencedPatientAliasSequence ReferencedPatientPhotoSequence ReferencedPatientSequence
        ReferringPhysicianIdentificationSequence ReferringPhysicianAddress ReferringPhysicianTelephoneNumbers
        RegionOfResidence RequestAttributesSequence RequestedContrastAgent RequestedProcedureComments
        RequestedProcedureID RequestedProcedureLocation RequestingPhysician RequestingService
        ResponsibleOrganization ResponsiblePerson ResultsComments ResultsDistributionListSequence ResultsIDIssuer
        RetrieveAETitle ScheduledHumanPerformersSequence ScheduledPatientInstitutionResidence
        ScheduledPerformingPhysicianIdentificationSequence ScheduledPerformingPhysicianName
        ScheduledProcedureStepDescription ScheduledProcedureStepEndDate ScheduledProcedureStepEndTime
        ScheduledProcedureStepID ScheduledProcedureStepLocation ScheduledProcedureStepStartDate
        ScheduledProcedureStepStartTime ScheduledStationAETitle ScheduledStationGeographicLocationCodeSequence
        ScheduledStationName ScheduledStationNameCodeSequence ScheduledStudyLocation
        ScheduledStudyLocationAETitle SeriesDescription ServiceEpisodeDescription ServiceEpisodeID
        SmokingStatus SpecialNeeds SpecimenAccessionNumber StationAETitle StudyArrivalDate StudyArrivalTime
        StudyComments StudyCompletionDate StudyCompletionTime StudyDescription StudyIDIssuer StudyReadDate
        StudyReadTime StudyVerifiedDate StudyVerifiedTime TextComments TextString TimeOfLastCalibration
        TimeOfSecondaryCapture TimezoneOffsetFromUTC TopicAuthor TopicKeywords TopicSubject TopicTitle
        TransducerIdentificationSequence UniqueDeviceIdentifier UDISequence VisitComments
        InterventionDrugStartTime InterventionDrugStopTime RadiopharmaceuticalStartTime
        RadiopharmaceuticalStopTime RadiopharmaceuticalStartDateTime RadiopharmaceuticalStopDateTime
        InstanceCoercionDateTime IssueDateOfImagingServiceRequest IssueTimeOfImagingServiceRequest
        ReasonForRequestedProcedureCodeSequence AffectedSOPInstanceUID RequestedSOPInstanceUID
    """,
    "Z/D": "PatientID ContentDate ContentTime ContrastBolusAgent ContentCreatorName",
    "X/Z": """
        AcquisitionDate AcquisitionTime ReferencedStudySequence RequestedProcedureDescription
        AcquisitionContextSequence PatientSexNeutered ReviewerName LabelText BarcodeValue
    """,
    "X/D": """
        AcquisitionDeviceProcessingDescription DetectorID InstanceCreationDate OperatorIdentificationSequence
        ProtocolName SeriesDate SeriesTime ObservationDateTime DateOfLastDetectorCalibration
        TimeOfLastDetectorCalibration StartAcquisitionDateTime EndAcquisitionDateTime
    """,
    "X/Z/D": """
        AcquisitionDateTime DeviceSerialNumber InstanceCreationTime InstitutionCodeSequence InstitutionName
        OperatorsName ReferencedPerformedProcedureStepSequence StationName
    """,
    "X/Z/U*": "ReferencedImageSequence SourceImageSequence",
}

#: how each of the standard's codes is carried out here
EFFECTIVE = {"D": "D", "Z": "Z", "X": "X", "Z/D": "D", "X/Z": "Z", "X/D": "D", "X/Z/D": "Z", "X/Z/U*": "K"}

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

#: (tag int -> (keyword, standard code)), built from PROFILE_TEXT
PROFILE: dict[int, tuple[str, str]] = {}


def _build_profile() -> None:
    from pydicom.datadict import tag_for_keyword

    for code, text in PROFILE_TEXT.items():
        for keyword in text.split():
            tag = tag_for_keyword(keyword)
            if tag is None:
                raise RuntimeError(f"mediag.deid: {keyword} is not a DICOM keyword known to pydicom")
            PROFILE[int(tag)] = (keyword, code)


_build_profile()


@dataclass(frozen=True)
class Action:
    """One change: where (path inside the dataset), the tag, its keyword and what was done. No values."""

    where: str
    tag: str
    keyword: str
    action: str  # removed | emptied | replaced | uid-mapped | date-shifted | date-removed | private-removed | added


@dataclass
class DeidResult:
    dataset: object
    actions: list[Action] = field(default_factory=list)
    burned_in: list[str] = field(default_factory=list)  # reasons the pixels may show text
    pseudonym: str = ""  # the new PatientID

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for a in self.actions:
            out[a.action] = out.get(a.action, 0) + 1
        return dict(sorted(out.items()))


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
    """One offset per patient, between -3650 and -366 days (dates move back one to ten years)."""
    return -366 - int.from_bytes(_digest(salt, "date", str(patient_id))[:4], "big") % 3285


def shift_date(value: str, days: int) -> str | None:
    """Shift a DA value 'YYYYMMDD' by `days`; None if the value is not a full date."""
    value = value.strip()
    try:
        day = _dt.datetime.strptime(value[:8], "%Y%m%d").date()
    except ValueError:
        return None
    if len(value) != 8:
        return None
    return (day + _dt.timedelta(days=days)).strftime("%Y%m%d")


def shift_datetime(value: str, days: int) -> str | None:
    """Shift the date part of a DT value; the time and the UTC offset are kept. None if no full date."""
    value = value.strip()
    head = shift_date(value[:8], days) if len(value) >= 8 else None
    return None if head is None else head + value[8:]


def is_standard_uid(uid: str) -> bool:
    """True for UIDs the DICOM standard defines (SOP classes, transfer syntaxes, ...): kept as they are."""
    from pydicom.uid import UID_dictionary

    return str(uid) in UID_dictionary


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


class _Walker:
    def __init__(self, salt, dates: str, pid_pseudonym: str, offset: int):
        self.salt, self.dates, self.pseudonym, self.offset = salt, dates, pid_pseudonym, offset
        self.actions: list[Action] = []

    def record(self, where, elem, action):
        keyword = elem.keyword or ("private" if elem.tag.is_private else "")
        self.actions.append(Action(where, f"({elem.tag.group:04X},{elem.tag.element:04X})", keyword, action))

    def walk(self, ds, prefix: str = "") -> None:
        for tag in list(ds.keys()):
            elem = ds[tag]
            where = f"{prefix}{elem.keyword or str(elem.tag)}"
            group = elem.tag.group
            if elem.tag.is_private:
                del ds[tag]
                self.record(where, elem, "private-removed")
                continue
            if 0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF:  # curves and overlays (may hold text)
                del ds[tag]
                self.record(where, elem, "removed")
                continue
            if int(tag) == 0x7FE00010:  # pixel data: never touched
                continue
            self.visit(ds, tag, elem, where)

    def visit(self, ds, tag, elem, where) -> None:
        keyword, code = PROFILE.get(int(tag), (None, None))
        action = EFFECTIVE[code] if code else "K"
        if keyword == "PatientBirthDate":
            action = "Z"
        elif elem.VR in ("DA", "DT", "TM") and action != "X":
            if self.date_rule(elem, where):
                return
        if action == "X":
            del ds[tag]
            self.record(where, elem, "removed")
        elif action == "Z":
            elem.value = [] if elem.VR == "SQ" else None
            self.record(where, elem, "emptied")
        elif action == "D":
            if elem.VR == "UI":
                self.map_uids(elem, where)
            else:
                elem.value = _dummy(elem, self.pseudonym)
                self.record(where, elem, "replaced")
        elif elem.VR == "SQ":
            for i, item in enumerate(elem.value):
                self.walk(item, f"{where}[{i}].")
        elif elem.VR == "UI":
            self.map_uids(elem, where)

    def date_rule(self, elem, where) -> bool:
        """Shift or remove a date/time; True when handled."""
        if elem.value in (None, ""):
            return True
        if self.dates == "remove":
            elem.value = None
            self.record(where, elem, "date-removed")
            return True
        if elem.VR == "TM":  # times of day are kept when dates are shifted (the interval is what matters)
            return True
        values = _values(elem)
        shift = shift_date if elem.VR == "DA" else shift_datetime
        shifted = [shift(str(v), self.offset) for v in values]
        if any(s is None for s in shifted):  # a partial or malformed date cannot be shifted: remove it
            elem.value = None
            self.record(where, elem, "date-removed")
        else:
            elem.value = shifted if len(shifted) > 1 else shifted[0]
            self.record(where, elem, "date-shifted")
        return True

    def map_uids(self, elem, where) -> None:
        if elem.value in (None, ""):
            return
        values = _values(elem)
        if all(is_standard_uid(v) for v in values):
            return
        mapped = [v if is_standard_uid(v) else map_uid(v, self.salt) for v in values]
        elem.value = mapped if len(mapped) > 1 else mapped[0]
        self.record(where, elem, "uid-mapped")


def _clean_meta(out, walker) -> None:
    """File meta (group 0002): keep the technical attributes only, map the instance UID, name the writer."""
    from pydicom import __version__
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

    meta = out.file_meta
    for tag in list(meta.keys()):
        elem = meta[tag]
        if elem.keyword not in META_KEEP:
            del meta[tag]
            walker.record("file_meta." + (elem.keyword or str(elem.tag)), elem, "removed")
    if "MediaStorageSOPInstanceUID" in meta or "SOPInstanceUID" in out:
        old = str(meta.get("MediaStorageSOPInstanceUID", "") or "")
        if "SOPInstanceUID" in out:  # already mapped by the walk: the meta must name the same instance
            new = str(out.SOPInstanceUID)
        else:
            new = old if is_standard_uid(old) or not old else map_uid(old, walker.salt)
        if new != old:
            meta.MediaStorageSOPInstanceUID = new
            walker.record("file_meta.MediaStorageSOPInstanceUID", meta["MediaStorageSOPInstanceUID"], "uid-mapped")
    writer = {"ImplementationClassUID": PYDICOM_IMPLEMENTATION_UID,
              "ImplementationVersionName": f"PYDICOM {__version__}"}
    for keyword, value in writer.items():
        if str(meta.get(keyword, "") or "") != value:
            setattr(meta, keyword, value)
            walker.record("file_meta." + keyword, meta[keyword], "replaced")


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


def deidentify(ds, salt, dates: str = "shift") -> DeidResult:
    """De-identify a copy of the pydicom Dataset `ds` (see the module docstring). `ds` is not changed.

    dates: "shift" (one offset per patient, the default) or "remove".
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
    walker = _Walker(salt, dates, pseudonym(patient_id, salt), date_offset_days(patient_id, salt))
    walker.walk(out)
    out.PatientID = walker.pseudonym  # type 2 attributes: present; the name stays empty (Z), the ID links
    if "PatientName" not in out:
        out.PatientName = None
    if getattr(out, "file_meta", None) is not None:
        _clean_meta(out, walker)
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = METHOD + (", dates shifted" if dates == "shift" else ", dates removed")
    codes = [("113100", "Basic Application Confidentiality Profile")]
    if dates == "shift":
        codes.append(("113107", "Retain Longitudinal Temporal Information Modified Dates Option"))
    items = []
    for value, meaning in codes:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
        items.append(item)
    out.DeidentificationMethodCodeSequence = Sequence(items)
    out.LongitudinalTemporalInformationModified = "MODIFIED" if dates == "shift" else "REMOVED"
    return DeidResult(out, walker.actions, burned_in_reasons(out), walker.pseudonym)


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

    def visit(d, prefix=""):
        for elem in d:
            where = prefix + (elem.keyword or str(elem.tag))
            if elem.tag.is_private:
                problems.append(f"{where}: private tag")
                continue
            keyword, code = PROFILE.get(int(elem.tag), (None, None))
            effective = EFFECTIVE[code] if code else "K"
            if effective == "X":
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


def deidentify_file(src, dst, salt, dates: str = "shift") -> DeidResult:
    """Read `src`, write its de-identified copy to `dst` (which must not exist). Returns the result.

    The name `dst` is yours: to name the copy from de-identified identifiers only, use `output_name`.
    """
    import pydicom

    src, dst = Path(src), Path(dst)
    if dst.exists():
        raise FileExistsError(f"{dst}: already exists; deid never overwrites, choose a new output folder")
    result = deidentify(pydicom.dcmread(src), salt, dates=dates)
    _write(result, dst)
    return result


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


def _is_image(ds) -> bool:
    sop = str(getattr(ds.get("SOPClassUID"), "name", "") or "")
    return "Rows" in ds or "PixelData" in ds or "Image Storage" in sop


def check_dicom(path) -> str | None:
    """Why `path` cannot be de-identified (not DICOM, truncated, ...), or None if it can."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError:
        return "not a DICOM file (no 'DICM' marker)"
    except Exception as exc:  # noqa: BLE001 - corrupt headers raise many error types
        return f"cannot parse the DICOM header ({type(exc).__name__}); the file may be truncated"
    if _is_image(ds):
        if "PixelData" not in ds:
            return "truncated: the header describes an image but the file ends before its pixel data"
        try:
            ds.pixel_array  # noqa: B018 - decoding proves the pixel data is complete
        except Exception as exc:  # noqa: BLE001
            text = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
            return f"pixel data cannot be decoded ({text}); the file may be truncated"
    return None


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


def deidentify_tree(src, dst, salt, dates: str = "shift", warn=None, keep_names: bool = False) -> TreeResult:
    """De-identify a file or every DICOM file of a folder tree into the new folder `dst`.

    Output names: by default each file is named from de-identified identifiers only (`output_name`:
    `<pseudonym>/<new study UID>/<new instance UID>.dcm`, with `_2`, `_3`, ... if two inputs map to the
    same name), because folder and file names of archives often hold patient names, IDs or accession
    numbers. `keep_names=True` keeps the input's relative paths instead: only for names known to be safe.

    Skips non-DICOM and damaged files (calling `warn(message)`, which names the input file: it is meant
    for the operator's terminal), never writes inside `src` or over a file, and writes
    `dst/deid-audit.json`: per output file (by its output name), each attribute removed or replaced (tag,
    keyword, action: never a value) and the reasons to check its pixels for burned-in text; for skipped
    files their count and reasons (their input names only with `keep_names=True`). The returned
    `TreeResult` also maps output to input paths, in memory.
    Raises ValueError for a bad IN/OUT, a single bad file, or a folder without any DICOM file.
    """
    import json

    import pydicom

    src, dst = Path(src), Path(dst)
    if dates not in ("shift", "remove"):
        raise ValueError(f"dates must be 'shift' or 'remove', got {dates!r}")
    _digest(salt, "")  # an empty salt fails before anything is read
    files = plan_tree(src, dst)
    skipped, good = [], []
    for path in files:
        rel = Path(path.name) if src.is_file() else path.relative_to(src)
        problem = check_dicom(path)
        if problem and src.is_file():
            raise ValueError(f"{path.name}: {problem}; pass a DICOM file")
        if problem:
            skipped.append((rel, problem))
            if warn:
                warn(f"skipped {rel}: {problem}")
        else:
            good.append((path, rel))
    if not good:
        raise ValueError(f"{src}: no DICOM file found among {len(files)} file(s); point IN at DICOM files")
    dst.mkdir(parents=True, exist_ok=True)
    written, entries, sources, taken = [], [], {}, set()
    for path, rel in good:
        result = deidentify(pydicom.dcmread(path), salt, dates=dates)
        out_rel = _unique(rel if keep_names else output_name(result.dataset), taken)
        _write(result, dst / out_rel)
        written.append((out_rel, result))
        sources[out_rel] = rel
        entries.append({"file": out_rel.as_posix(), "burned_in_text_risk": result.burned_in,
                        "counts": result.counts(),
                        "actions": [[a.where, a.tag, a.keyword, a.action] for a in result.actions]})
    reasons: dict[str, int] = {}
    for rel, why in skipped:
        key = why if keep_names else _scrub(why, src / rel, (src / rel).resolve(), rel)
        reasons[key] = reasons.get(key, 0) + 1
    skip_log = {"count": len(skipped), "reasons": dict(sorted(reasons.items()))}
    if keep_names:
        skip_log["files"] = [[r.as_posix(), why] for r, why in skipped]
    header = {"profile": METHOD, "dates": dates, "names": "kept from the input" if keep_names else "de-identified",
              "files_written": len(written), "skipped": skip_log,
              "action_columns": ["where", "tag", "keyword", "action"]}
    log = dst / AUDIT_LOG
    entries.sort(key=lambda e: e["file"])  # output order, not input order (input names sort by patient)
    log.write_text(json.dumps({**header, "files": entries}, indent=1) + "\n", encoding="utf-8")
    return TreeResult(written, skipped, log, sources)
