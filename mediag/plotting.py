"""One plotting style for the course: image grids, heat-map overlays, loss curves.

Medical images are shown in grey with the window named in the title; every function returns the
figure so a notebook ends its cell with `plt.show()` (no figure repr in the stored output).

Importing this module changes no matplotlib setting: each function draws its own figure in the
course style (`STYLE`), and `use_style()` (or `mediag.repro.setup(plot_style=True)`) applies the
style to every later figure, a notebook's own `plt.subplots` included.
"""

from __future__ import annotations

import functools

import matplotlib.pyplot as plt
import numpy as np

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
