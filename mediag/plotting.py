"""One plotting style for the course: image grids, heat-map overlays, loss curves, DICOM display.

Medical images are shown in grey with the window named in the title; every function returns the
figure so a notebook ends its cell with `plt.show()` (no figure repr in the stored output).
`show_dicom` (notebook 10) draws a DICOM image as a radiologist expects it: modality units, window,
MONOCHROME1 inverted, axes in millimetres with a scale bar, the viewing orientation.

Importing this module changes no matplotlib setting: each function draws its own figure in the
course style (`STYLE`), and `use_style()` (or `mediag.repro.setup(plot_style=True)`) applies the
style to every later figure, a notebook's own `plt.subplots` included.
"""

from __future__ import annotations

import functools

import matplotlib.pyplot as plt
import numpy as np

from mediag import dicom

STYLE = {
    "figure.dpi": 80,
    "savefig.dpi": 80,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.cmap": "gray",
    "image.interpolation": "nearest",
}


def use_style() -> None:
    """Apply the course style (small figures, grey images, no top/right spines) to every later figure."""
    plt.rcParams.update(STYLE)


def _styled(fn):
    """Draw `fn`'s figure in the course style whatever the global settings (they are left unchanged)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with plt.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper


def _grid(n: int, cols: int | None, size: float):
    cols = cols or min(n, 6)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, axes.flat[:n]


@_styled
def image_grid(images, titles=None, cols=None, size=2.2, vmin=None, vmax=None, aspects=None, suptitle=None):
    """Show 2-D images (or H×W×3 colour) in a grid. `aspects`: per-image aspect ratio (row/column spacing)."""
    images = list(images)
    fig, axes = _grid(len(images), cols, size)
    for i, (ax, img) in enumerate(zip(axes, images)):
        ax.imshow(img, vmin=vmin, vmax=vmax, aspect=(aspects[i] if aspects is not None else "equal"))
        if titles is not None:
            ax.set_title(titles[i])
        ax.set_xticks([])
        ax.set_yticks([])
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


@_styled
def overlay(image, heat, ax=None, alpha=0.45, title=None, cmap="jet"):
    """A grey image with a heat map (e.g. Grad-CAM, attention) on top, heat scaled to [0, 1]."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(3, 3))
    heat = np.asarray(heat, dtype=float)
    span = heat.max() - heat.min()
    heat = (heat - heat.min()) / span if span > 0 else np.zeros_like(heat)
    h, w = np.asarray(image).shape[:2]
    ax.imshow(image, cmap="gray")
    ax.imshow(heat, cmap=cmap, alpha=alpha, extent=(-0.5, w - 0.5, h - 0.5, -0.5))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax.figure


@_styled
def loss_curve(history: dict, title="training", xlabel="epoch", ylabel="loss", ax=None):
    """Curves from a dict of name -> list of values (e.g. {'train': [...], 'validation': [...]})."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.5, 3))
    for name, values in history.items():
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", ms=3, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    return ax.figure


# DICOM display (notebook 10, section 2): the window, the pixel spacing and the orientation a film needs.


def aspect_from_spacing(spacing_mm) -> float:
    """Display aspect of one pixel: row spacing / column spacing (1.0 when the spacing is unknown).

    spacing_mm: (row mm, column mm), two positive finite numbers, or None. Raises ValueError otherwise.
    """
    if spacing_mm is None:
        return 1.0
    row, col = (float(v) for v in spacing_mm)
    if not (np.isfinite(row) and np.isfinite(col) and row > 0 and col > 0):
        raise ValueError(f"spacing_mm must be two positive numbers (row mm, column mm), got {spacing_mm!r}")
    return row / col


def scale_bar_mm(field_mm: float) -> float:
    """A round scale-bar length (1, 2 or 5 x 10^k mm), at most a fifth of the field width `field_mm` (> 0)."""
    if not (np.isfinite(field_mm) and field_mm > 0):
        raise ValueError(f"field_mm must be a positive number of millimetres, got {field_mm!r}")
    target = field_mm / 5
    power = 10.0 ** np.floor(np.log10(target))
    return float(next(m * power for m in (5, 2, 1) if m * power <= target))


def window_label(image, window=None) -> str:
    """How `image` (a mediag.dicom.DicomImage) is windowed, for a title.

    window: a preset name of `mediag.dicom.WINDOWS`, (center, width) or None (the file's own window).
    Returns e.g. 'brain window (C 40, W 80)', 'window (C 50, W 350)', 'file window (...)', 'full range'.
    """
    if image.is_color:
        return "colour, no window"
    if isinstance(window, str):
        c, w = dicom.WINDOWS[window]
        return f"{window} window (C {c:g}, W {w:g})"
    if window is not None:
        return f"window (C {float(window[0]):g}, W {float(window[1]):g})"
    if image.window is not None:
        return f"file window (C {image.window[0]:g}, W {image.window[1]:g})"
    return "full range"


def display_flips(patient_orientation) -> tuple[bool, bool]:
    """(flip up-down, flip left-right) that bring a projection radiograph into the viewing convention.

    patient_orientation: PatientOrientation (0020,0020), two codes such as ("R", "F"), or None.
    It gives the patient direction of the rows (along a row, increasing column) and of the columns
    (increasing row). Frontal films are viewed with rows running to the patient's left (the patient's
    right on the viewer's left) and columns running to the feet. Anything else gives (False, False).
    """
    if patient_orientation is None or len(patient_orientation) != 2:
        return False, False
    along_row, along_column = (str(v).upper() for v in patient_orientation)
    return along_column.startswith("H"), along_row.startswith("R")


def draw_scale_bar(ax, width_mm, height_mm, estimated=False) -> float:
    """A yellow scale bar in the lower right of `ax`, whose data units are mm; returns its length in mm.

    width_mm, height_mm: the field drawn on `ax`; the bar is `scale_bar_mm(width_mm)` long. With
    `estimated`, its label starts with '≈' (the spacing was estimated, not read from the file).
    """
    bar = scale_bar_mm(width_mm)
    x0, y0 = 0.95 * width_mm - bar, 0.94 * height_mm
    ax.plot([x0, x0 + bar], [y0, y0], color="yellow", lw=3)
    ax.text(x0 + bar / 2, y0 - 0.02 * height_mm, f"{'≈' if estimated else ''}{bar:g} mm",
            color="yellow", ha="center", va="bottom", fontsize=8)
    return bar


def show_dicom(ax, image, window=None, frame=None, title=None, spacing_mm=None, estimated=False, orient=True):
    """Show a DicomImage correctly on `ax`: modality units, window, MONOCHROME1 inverted, axes in mm, scale bar.

    `window`: preset name, (center, width) or None (the file's own). `frame` picks one frame of a
    multi-frame image. `spacing_mm` (row mm, column mm) overrides the file's spacing (e.g. estimated from
    the cassette size; set `estimated=True` so the bar says '≈'). Without any spacing, pixels are drawn
    square and the title says so. With `orient`, a film stored against the viewing convention (see
    `display_flips`) is flipped and the title says so. Returns the array that was drawn, (H, W) or
    (H, W, 3), in [0, 1]. Raises ValueError if it is not one image (a multi-frame image without `frame`).
    """
    shown = dicom.to_display(image, window)
    if frame is not None:
        shown = shown[frame]
    if shown.ndim != 2 and not (shown.ndim == 3 and shown.shape[-1] == 3):
        raise ValueError(f"{image.path.name if image.path else 'image'}: {shown.shape} is not one image; pass frame=")
    flip_ud, flip_lr = display_flips(image.dataset.get("PatientOrientation")) if orient else (False, False)
    shown = shown[::-1] if flip_ud else shown
    shown = shown[:, ::-1] if flip_lr else shown
    spacing = spacing_mm if spacing_mm is not None else image.spacing_mm
    rows, cols = shown.shape[:2]
    label = title or (image.path.name if image.path else image.modality)
    flips = " and ".join(name for name, f in (("up-down", flip_ud), ("left-right", flip_lr)) if f)
    how = window_label(image, window) + (f"; flipped {flips}" if flips else "")
    if spacing is None:
        ax.imshow(shown, cmap="gray", vmin=0, vmax=1, aspect=1.0)
        ax.set_title(f"{label}\n{how}; spacing unknown")
    else:
        row_mm, col_mm = (float(v) for v in spacing)
        aspect_from_spacing(spacing)  # validates
        ax.imshow(shown, cmap="gray", vmin=0, vmax=1, extent=(0, cols * col_mm, rows * row_mm, 0))
        draw_scale_bar(ax, cols * col_mm, rows * row_mm, estimated)
        ax.set_title(f"{label}\n{how}")
    ax.set_xticks([])
    ax.set_yticks([])
    return shown
