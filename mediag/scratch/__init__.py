"""From-scratch implementations exported from the notebooks (see mediag/export.py)."""


__all__ = [
]
