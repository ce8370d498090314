"""The student edition: every graded solution replaced by a stub, hidden tests left out.

    mediag student OUT                      # every notebook of the course
    mediag student OUT 03_convolution_cnn   # only the notebooks named (stem or file name)

Everything else is kept with its outputs, so the edition reads like the course. Outputs that could
reveal an answer are cleared: the solution cells' and the public tests'.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from mediag.exercises import exercise_of, guarded_source, role_of, stub_source

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"


class EditionError(ValueError):
    """A problem with the arguments or the notebooks: one line for the user."""


def course_notebooks(names: list[str] | None = None, folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """The course notebooks, or those named by stem, file name or two-digit number."""
    every = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return every
    chosen = []
    for name in names:
        stem = Path(name).stem
        match = [p for p in every if p.stem == stem or p.stem[:2] == stem[:2] and len(stem) == 2]
        if not match:
            raise EditionError(f"{name}: no such course notebook; choose from {', '.join(p.stem for p in every)}")
        chosen += match
    return chosen


def student_notebook(nb: dict, stem: str) -> dict:
    """The student edition of one notebook (a new dict; `nb` is not changed)."""
    out = copy.deepcopy(nb)
    cells = []
    for cell in out["cells"]:
        role = role_of(cell)
        if role == "hidden-test":
            continue
        if role == "solution":
            cell["source"] = stub_source("".join(cell["source"]), exercise_of(cell)["id"])
        elif role == "public-test":
            cell["source"] = guarded_source("".join(cell["source"]), exercise_of(cell)["id"])
        if role in ("solution", "public-test"):
            cell["outputs"], cell["execution_count"] = [], None
        cells.append(cell)
    out["cells"] = cells
    out.setdefault("metadata", {})["mediag"] = {"notebook": stem, "edition": "student"}
    return out


def write_edition(out_dir: str | Path, names: list[str] | None = None, folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """Write the student edition of the chosen notebooks into `out_dir`; return the files written.

    Refuses an `out_dir` that exists and is not empty, or that lies inside the course's notebooks.
    """
    out_dir = Path(out_dir)
    if out_dir.resolve().is_relative_to(folder.resolve()):
        raise EditionError(f"{out_dir}: lies inside the course's notebooks/; choose a folder outside it")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise EditionError(f"{out_dir}: exists and is not an empty folder; give a new folder")
    notebooks = course_notebooks(names, folder)
    editions = []
    for path in notebooks:
        try:
            editions.append((path, student_notebook(json.loads(path.read_text(encoding="utf-8")), path.stem)))
        except ValueError as exc:
            raise EditionError(f"{path.name}: {exc}") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path, nb in editions:
        target = out_dir / path.name
        target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
    return written
