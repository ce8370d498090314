"""Progress bars for long loops: a bar in JupyterLab, nothing at all under `make test`, `make run` or CI.

    from mediag.progress import progress
    for epoch in progress(range(EPOCHS), desc="epochs"):
        ...

In JupyterLab (ipywidgets installed) this is tqdm.auto's widget bar; in a terminal, tqdm's text bar. It is
silent, and the loop runs exactly as without it, when any of these is set (the Makefile and `mediag run`
set them, so stored outputs and nbval never contain a bar): MEDIAG_QUIET_PROGRESS, TQDM_DISABLE.

Use this rather than tqdm.auto directly: in a kernel with ipywidgets, tqdm.auto is tqdm.notebook, which
ignores TQDM_DISABLE and would store a widget output that nbval cannot reproduce (tests/test_progress.py
keeps tqdm imports out of the notebooks). transformers' and huggingface_hub's own bars follow
HF_HUB_DISABLE_PROGRESS_BARS, which the Makefile and `mediag run` also set.
"""

from __future__ import annotations

import os
from typing import Iterable, TypeVar

T = TypeVar("T")

QUIET_VARS = ("MEDIAG_QUIET_PROGRESS", "TQDM_DISABLE")


def quiet() -> bool:
    """True when progress bars must stay out of the outputs (tests, `mediag run`, CI)."""
    return any(os.environ.get(var, "").strip().lower() not in ("", "0", "false", "no") for var in QUIET_VARS)


def progress(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str | None = None,
             leave: bool = False, **kwargs):
    """tqdm.auto.tqdm(iterable, ...), disabled when `quiet()`. Iterating it yields the items unchanged;
    `.set_postfix(loss=...)` and `.update(n)` work either way (no-ops when quiet)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=leave, disable=quiet(), **kwargs)


def trange(n: int, **kwargs):
    """progress(range(n), ...)."""
    return progress(range(n), total=n, **kwargs)
