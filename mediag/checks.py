"""The course's registered checks: import the exported notebook code, which registers them, then run them.

`mediag.verify` holds the registry and the runner but imports nothing of the course, so that the
exported modules in `mediag.scratch` (which import `verify` to register their checks) and `verify`
never import each other. This module closes the loop for the two places that need every check: the
`mediag verify` command and the tests.

    from mediag import checks
    report, errors = checks.run(seed=3, only="LSTM")
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Callable

import numpy as np

from mediag import verify


def load() -> dict[str, Callable[[np.random.Generator], None]]:
    """Import every `mediag.scratch` module, which registers its checks, and return the registry."""
    import mediag.scratch as scratch

    for info in pkgutil.iter_modules(scratch.__path__):
        importlib.import_module(f"mediag.scratch.{info.name}")
    return verify.REGISTRY


def select(pattern: str | None) -> list[str]:
    """`verify.select` over every check of the course (raises ValueError for a bad or empty pattern)."""
    load()
    return verify.select(pattern)


def run(seed: int | None = None, only: str | None = None) -> tuple[verify.Report, list[tuple[str, str]]]:
    """Run every check of the course (or those matching `only`) on fresh inputs: `verify.run_registered`."""
    load()
    return verify.run_registered(seed, only=only)


def coverage_matrix() -> str:
    """`verify.coverage_matrix` of every check of the course (the text of docs/VERIFICATION.md)."""
    load()
    return verify.coverage_matrix()


def write_coverage_matrix(path: str | Path) -> str:
    """Write `coverage_matrix()` to `path` and return the text."""
    load()
    return verify.write_coverage_matrix(path)
