"""From-scratch implementations exported from the notebooks (see mediag/export.py)."""

from .start_here import softmax, log_softmax, softmax_cross_entropy, softmax_cross_entropy_grad
from .medical_images_dicom import window_loops

__all__ = [
    "softmax",
    "log_softmax",
    "softmax_cross_entropy",
    "softmax_cross_entropy_grad",
    "window_loops",
]
