"""Read real DICOM images into numbers with meaning: modality units, windows, spacing.

    from mediag import dicom
    img = dicom.read(dicom.testdata("CT_small.dcm"))     # DicomImage; img.pixels in Hounsfield units
    shown = dicom.to_display(img, "lung")                 # float64 in [0, 1], ready for imshow(cmap="gray")

What `read` does, step by step (PS3.3 C.7.6.3, C.11.1, C.11.2):
1. decode the stored values with pydicom (any transfer syntax one of its plugins can decode),
   frames first for multi-frame data: (frames, H, W), colour last: (H, W, 3);
2. apply the modality rescale `value = stored * RescaleSlope + RescaleIntercept` in float64
   (Hounsfield units for CT), from the top-level attributes or, for enhanced multi-frame objects,
   from the shared or per-frame functional groups;
3. read the window (center, width) and the pixel spacing (mm) from the same places.

`window` is the DICOM linear VOI function written out from scratch; the notebook checks it against
`pydicom.pixels.apply_windowing`. Every problem with a file is one `DicomError` line naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: window presets (center, width) in Hounsfield units, as radiologists use them
WINDOWS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
    "subdural": (75.0, 215.0),
    "stroke": (40.0, 40.0),
}


class DicomError(ValueError):
    """A file that cannot be used as a DICOM image: the message names the file, the problem and the fix.

    `reason` is the problem alone, without the file's name or the fix (what `mediag deid` records for a
    skipped file, where names are not written).
    """

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


def _problem(path: Path, reason: str, fix: str = "") -> DicomError:
    return DicomError(f"{path.name}: {reason}" + (f"; {fix}" if fix else ""), reason)


@dataclass
class DicomImage:
    """One DICOM image: pixels in modality units plus the metadata needed to show them correctly.

    pixels:      float64, (H, W), (frames, H, W), or (..., 3) for colour; modality units (HU for CT)
    dataset:     the pydicom Dataset (all tags)
    modality:    e.g. "CT", "CR", "MR", "US", "NM" ("" if absent)
    photometric: e.g. "MONOCHROME1" (high values dark), "MONOCHROME2", "RGB"
    spacing_mm:  (row spacing, column spacing) in mm, or None when the file does not say
    window:      (center, width) stored in the file, or None
    path:        the file it came from
    """

    pixels: np.ndarray
    dataset: Any = field(repr=False)
    modality: str
    photometric: str
    spacing_mm: tuple[float, float] | None
    window: tuple[float, float] | None
    path: Path | None

    @property
    def n_frames(self) -> int:
        """Number of frames (1 for a single image)."""
        return int(self.dataset.get("NumberOfFrames", 1) or 1)

    @property
    def is_color(self) -> bool:
        return self.pixels.ndim >= 3 and self.pixels.shape[-1] == 3 and int(self.dataset.get("SamplesPerPixel", 1)) == 3


def testdata(name: str) -> Path:
    """The path of a test file shipped by pydicom or pydicom-data (never downloads)."""
    from pydicom.data import get_testdata_file

    try:
        found = get_testdata_file(name, download=False)
    except Exception as exc:  # noqa: BLE001 - pydicom raises different errors for odd names
        raise DicomError(f"{name}: not a pydicom test file ({exc}); see pydicom.data.get_testdata_files()") from None
    if found is None:
        raise DicomError(
            f"{name}: not found among pydicom's test files; install pydicom-data (pip install pydicom-data) "
            "or check the name with pydicom.data.get_testdata_files()"
        )
    return Path(found)


def _first(value) -> float:
    """A multi-valued DS (e.g. two windows) gives its first value."""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return float(value[0])
    return float(value)


def _functional(ds, sequence: str, keyword: str, frame: int | None = None):
    """An attribute from an enhanced object's functional groups (per-frame first, then shared)."""
    groups = []
    if frame is not None and "PerFrameFunctionalGroupsSequence" in ds:
        per_frame = ds.PerFrameFunctionalGroupsSequence
        if frame < len(per_frame):
            groups.append(per_frame[frame])
    if "SharedFunctionalGroupsSequence" in ds and len(ds.SharedFunctionalGroupsSequence):
        groups.append(ds.SharedFunctionalGroupsSequence[0])
    for group in groups:
        if sequence in group and len(group[sequence].value) and keyword in group[sequence].value[0]:
            value = group[sequence].value[0][keyword].value
            if value not in (None, ""):
                return value
    return None


def rescale_parameters(ds, frame: int | None = None) -> tuple[float, float]:
    """(slope, intercept) of the modality rescale; (1, 0) when the file stores modality units directly."""
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if slope is None or intercept is None:
        slope = _functional(ds, "PixelValueTransformationSequence", "RescaleSlope", frame)
        intercept = _functional(ds, "PixelValueTransformationSequence", "RescaleIntercept", frame)
    if slope is None or intercept is None:
        return 1.0, 0.0
    return float(slope), float(intercept)


def pixel_spacing(ds) -> tuple[float, float] | None:
    """(row, column) spacing in mm from PixelSpacing, ImagerPixelSpacing or the functional groups."""
    for value in (ds.get("PixelSpacing"), ds.get("ImagerPixelSpacing"),
                  _functional(ds, "PixelMeasuresSequence", "PixelSpacing", 0)):
        if value is not None and len(value) == 2:
            row, col = float(value[0]), float(value[1])
            if row > 0 and col > 0:  # some files store 0\0, which means "unknown"
                return row, col
    return None


def stored_window(ds) -> tuple[float, float] | None:
    """The first (center, width) window stored in the file, or None."""
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is None or width is None:
        center = _functional(ds, "FrameVOILUTSequence", "WindowCenter", 0)
        width = _functional(ds, "FrameVOILUTSequence", "WindowWidth", 0)
    if center is None or width is None:
        return None
    try:
        return _first(center), _first(width)
    except (TypeError, ValueError, IndexError):
        return None


def to_modality_units(stored: np.ndarray, ds) -> np.ndarray:
    """Stored values -> modality units (float64): `stored * slope + intercept`, frame by frame if needed."""
    stored = np.asarray(stored)
    if ds.get("ModalityLUTSequence"):  # a lookup table instead of a rescale (rare): let pydicom apply it
        from pydicom.pixels import apply_modality_lut

        return np.asarray(apply_modality_lut(stored, ds), dtype=np.float64)
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    colour = int(ds.get("SamplesPerPixel", 1)) > 1
    out = stored.astype(np.float64)
    if colour:
        return out
    if n_frames > 1 and "PerFrameFunctionalGroupsSequence" in ds and out.ndim == 3:
        for f in range(out.shape[0]):
            slope, intercept = rescale_parameters(ds, f)
            out[f] = out[f] * slope + intercept
        return out
    slope, intercept = rescale_parameters(ds)
    return out * slope + intercept


#: the attributes that hold an image's pixels
PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def validate_file(path, require_pixels: bool = True):
    """Read `path` with pydicom and prove it usable; return its Dataset (pixel data decoded, and cached).

    `require_pixels=True` (`read`): the file must be an image whose pixel data decodes.
    `require_pixels=False` (`mediag.deid`): any DICOM object will do (a structured report, a key object
    selection), but a header that describes an image must have pixel data that decodes, so that a truncated
    copy is never passed on as if it were whole.
    Raises FileNotFoundError for a missing path and DicomError (a ValueError, with `.reason`) for a folder, a
    file that is not DICOM or is truncated, an image without pixel data, or a compression no installed plugin
    decodes. The file is read once.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file; check the path (examples: mediag.dicom.testdata(name))")
    if path.is_dir():
        raise DicomError(f"{path}: is a folder, not a DICOM file; pass one file", "is a folder, not a DICOM file")
    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError:
        raise _problem(path, "not a DICOM file (no 'DICM' marker)",
                       "pass a DICOM file (.dcm: 'DICM' after a 128-byte preamble)") from None
    except Exception as exc:  # noqa: BLE001 - truncated or corrupt headers raise many different errors
        raise _problem(path, f"cannot parse the DICOM header ({type(exc).__name__}); "
                             "the file may be truncated or corrupt") from None
    kind = str(getattr(ds.get("SOPClassUID"), "name", "") or "")
    if not any(k in ds for k in PIXEL_KEYWORDS):
        if "Rows" in ds or "Image Storage" in kind:
            raise _problem(path, "truncated: the header describes an image but the file ends before its pixel data",
                           "copy or export the file again")
        if require_pixels:
            raise _problem(path, f"has no pixel data ({kind or 'no image attributes either, so it may be truncated'})",
                           "pass a DICOM image file")
        return ds
    try:
        ds.pixel_array  # noqa: B018 - decoding proves the pixel data is complete (pydicom caches the array)
    except Exception as exc:  # noqa: BLE001 - missing decoders and truncated pixel data
        message = (str(exc).splitlines()[0] if str(exc) else type(exc).__name__).rstrip(":")
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        low = message.lower()
        if ts is not None and ts.is_compressed and any(k in low for k in ("plugin", "unable to decompress",
                                                                          "unable to decode")):
            fix = f"install a pydicom decoder for {ts.name} (e.g. pip install pylibjpeg pylibjpeg-libjpeg)"
        else:
            fix = "the pixel data may be truncated or corrupt; re-export the file"
        raise _problem(path, f"cannot decode pixel data ({message[:100]})", fix) from None
    return ds


def read(path) -> DicomImage:
    """Read a DICOM file into a DicomImage (pixels in modality units, float64).

    Raises FileNotFoundError for a missing path and DicomError (a ValueError) for a file that is not
    DICOM, is truncated, has no pixel data, or uses a compression no installed plugin decodes
    (`validate_file`).
    """
    path = Path(path)
    ds = validate_file(path, require_pixels=True)
    pixels = to_modality_units(ds.pixel_array, ds)
    return DicomImage(
        pixels=pixels, dataset=ds, modality=str(ds.get("Modality", "")),
        photometric=str(ds.get("PhotometricInterpretation", "")), spacing_mm=pixel_spacing(ds),
        window=stored_window(ds), path=path,
    )


def window(values, center: float, width: float) -> np.ndarray:
    """The DICOM linear VOI function (PS3.3 C.11.2.1.2.1), scaled to [0, 1].

        y = ((x - (c - 0.5)) / (w - 1) + 0.5),  clipped to [0, 1]

    so x <= c - 0.5 - (w-1)/2 gives 0 and x > c - 0.5 + (w-1)/2 gives 1. `width` must be >= 1.
    Returns float64 of the same shape as `values`.
    """
    if not np.isfinite(center) or not np.isfinite(width):
        raise ValueError(f"window: center and width must be finite numbers, got center={center}, width={width}")
    if width < 1:
        raise ValueError(f"window: width must be >= 1 for the DICOM linear function, got {width}; use a wider window")
    x = np.asarray(values, dtype=np.float64)
    y = (x - (center - 0.5)) / (width - 1.0) + 0.5 if width > 1 else (x > center - 0.5).astype(np.float64)
    return np.clip(y, 0.0, 1.0)


_linear_voi = window  # to_display's argument is also called `window`


def _resolve_window(image: DicomImage, window_spec) -> tuple[float, float] | None:
    if window_spec is None:
        return image.window
    if isinstance(window_spec, str):
        if window_spec not in WINDOWS:
            choices = ", ".join(WINDOWS)
            raise ValueError(f"unknown window preset {window_spec!r}; choose one of {choices} or pass (center, width)")
        return WINDOWS[window_spec]
    try:
        center, width = (float(v) for v in window_spec)
    except (TypeError, ValueError):
        raise ValueError(f"window must be a preset name or (center, width), got {window_spec!r}") from None
    return center, width


def to_display(image: DicomImage, window=None) -> np.ndarray:
    """Pixels ready to show: float64 in [0, 1], windowed, MONOCHROME1 inverted so that air is dark.

    `window`: a preset name from WINDOWS, a (center, width) pair, or None for the file's own window
    (the full range of the image when the file has none). Colour images are scaled by their bit depth.
    """
    if not isinstance(image, DicomImage):
        raise TypeError(f"to_display expects a DicomImage from mediag.dicom.read, got {type(image).__name__}")
    if image.is_color:
        top = float(2 ** int(image.dataset.get("BitsStored", 8)) - 1)
        return np.clip(image.pixels / top, 0.0, 1.0)
    chosen = _resolve_window(image, window)
    if chosen is None:
        lo, hi = float(image.pixels.min()), float(image.pixels.max())
        chosen = ((lo + hi + 1) / 2, max(hi - lo + 1, 1.0))  # exactly the full range under the linear function
    shown = _linear_voi(image.pixels, *chosen)
    if image.photometric == "MONOCHROME1":
        shown = 1.0 - shown
    return shown
