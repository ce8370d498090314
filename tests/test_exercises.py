"""The course's graded exercises: every notebook has them, the student edition hides them, the grader scores them.

nbval already runs each reference notebook with its public and hidden tests (they are cells of the
notebook), so every reference solution passes its tests whenever `make test` passes. Here: the
structure of every notebook's exercises, and one notebook graded end to end, reference and student
edition.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mediag.exercises import exercises_in, role_of, stub_source
from mediag.grade import grade_one
from mediag.student import NOTEBOOK_DIR, student_notebook

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def _nb(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_has_three_graded_exercises(path):
    nb = _nb(path)
    found = exercises_in(nb)
    assert len(found) >= 3, f"{path.name}: {len(found)} graded exercises, need at least 3"
    for eid, spec in found.items():
        assert eid.startswith(path.stem[:2] + "."), f"{path.name}: exercise id {eid} names another notebook"
        assert spec["solution"] is not None and spec["points"] > 0, f"{eid}: no solution cell with points"
        assert spec["public"] and spec["hidden"], f"{eid}: needs a public test and a hidden test"
        stub = stub_source("".join(nb["cells"][spec["solution"]]["source"]), eid)
        assert f"exercise {eid}" in stub
    untagged = [i for i, c in enumerate(nb["cells"]) if "solution" in c.get("metadata", {}).get("tags", [])
                and role_of(c) != "solution"]
    assert not untagged, f"{path.name}: solution cells {untagged} have no exercise id and points"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_edition_hides_answers(path):
    nb = _nb(path)
    edition = student_notebook(nb, path.stem)
    assert not [c for c in edition["cells"] if role_of(c) == "hidden-test"]
    for eid, spec in exercises_in(nb).items():
        solution = "".join(nb["cells"][spec["solution"]]["source"])
        body_lines = [line.strip() for line in solution.splitlines()
                      if line.strip() and not line.lstrip().startswith(("def ", "import ", "from ", "#", '"""'))]
        stubs = "".join("".join(c["source"]) for c in edition["cells"] if role_of(c) == "solution")
        for line in body_lines:
            if len(line) > 12 and line.startswith("return "):
                assert line not in stubs, f"{eid}: the student edition still shows {line!r}"
        assert all(not c["outputs"] for c in edition["cells"] if role_of(c) in ("solution", "public-test"))


def test_notebook_01_reference_scores_full_marks_and_student_edition_zero(tmp_path):
    # Notebook 01: graded exercises like every notebook, and the quickest to run twice (no PyTorch, no TensorFlow)
    path = NOTEBOOK_DIR / "01_medical_images_dicom.ipynb"
    reference = grade_one(path, timeout=300)
    assert reference["max_score"] > 0 and reference["score"] == reference["max_score"], reference
    student = tmp_path / path.name
    student.write_text(json.dumps(student_notebook(_nb(path), path.stem)), encoding="utf-8")
    graded = grade_one(student, timeout=300)
    assert graded["score"] == 0 and graded["max_score"] == reference["max_score"]
    assert {e["status"] for e in graded["exercises"]} == {"failed"}


def test_instructor_guides_list_the_notebooks_exercises():
    import subprocess
    import sys

    from mediag.student import ROOT

    done = subprocess.run([sys.executable, str(ROOT / "tools" / "write_instructor_tables.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
