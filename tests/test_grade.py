"""The classroom edition: `mediag student` and `mediag grade` on a small course built here.

The course notebooks themselves are graded in tests/test_exercises.py; these tests pin down the
tools' behaviour on a two-exercise notebook that runs in a second.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from mediag.exercises import exercises_in, stub_source
from mediag.grade import grade, grade_one, write_gradebook
from mediag.student import EditionError, student_notebook, write_edition


def _cell(source, role=None, eid=None, points=None):
    cell = new_code_cell(source)
    if role:
        cell.metadata["tags"] = [role]
        cell.metadata["exercise"] = {"id": eid, **({"points": points} if points else {})}
    return cell


SOLUTION_1 = 'def double(x):\n    """Twice x."""\n    return 2 * x\n'
SOLUTION_2 = "def initials(name):\n    return ''.join(part[0].upper() for part in name.split())\n"


def reference_notebook():
    return new_notebook(cells=[
        new_markdown_cell("# 50 · 演示 Demo"),
        _cell("base = 3"),
        new_markdown_cell("**Exercise 1.** Write `double(x)`."),
        _cell(SOLUTION_1, "solution", "50.1", 2),
        _cell('assert double(base) == 6, "double(3) should be 6"', "public-test", "50.1"),
        _cell('assert double(-1.5) == -3.0, "double(-1.5) should be -3.0"', "hidden-test", "50.1"),
        new_markdown_cell("**Exercise 2.** Write `initials(name)`."),
        _cell(SOLUTION_2, "solution", "50.2", 1),
        _cell('assert initials("ada lovelace") == "AL", "initials of ada lovelace"', "public-test", "50.2"),
        _cell('assert initials("x") == "X", "one-word name"', "hidden-test", "50.2"),
        _cell("print('the end')"),
    ])


@pytest.fixture()
def course(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbformat.write(reference_notebook(), folder / "50_demo.ipynb")
    return folder


def _submit(tmp_path, nb, name="50_demo.ipynb"):
    path = tmp_path / "subs" / name
    path.parent.mkdir(exist_ok=True)
    nbformat.write(nb, path)
    return path


def _student(course):
    edition = student_notebook(json.loads((course / "50_demo.ipynb").read_text()), "50_demo")
    return nbformat.reads(json.dumps(edition), as_version=4)


def test_stub_keeps_signature_and_docstring_and_refuses_other_statements():
    stub = stub_source(SOLUTION_1, "50.1")
    assert 'def double(x):\n    """Twice x."""\n    raise NotImplementedError("exercise 50.1: write double")' in stub
    assert "return 2 * x" not in stub
    with pytest.raises(ValueError, match="only imports and functions"):
        stub_source("x = 1\n", "50.9")


def test_reference_scores_full_marks(course, tmp_path):
    result = grade_one(course / "50_demo.ipynb", course, timeout=60)
    assert (result["score"], result["max_score"]) == (3, 3), result
    assert [e["status"] for e in result["exercises"]] == ["passed", "passed"]


def test_student_edition_runs_to_the_end_and_scores_zero(course, tmp_path):
    student = _student(course)
    assert not any("hidden-test" in c.metadata.get("tags", []) for c in student.cells)
    assert "return 2 * x" not in json.dumps(student)
    NotebookClient(student, timeout=60).execute()  # raises on any error: the stubs only skip their checks
    assert "not done yet" in "".join(o.get("text", "") for c in student.cells for o in c.get("outputs", []))
    assert student.cells[-1].outputs[0]["text"] == "the end\n"
    result = grade_one(_submit(tmp_path, student), course, timeout=60)
    assert result["score"] == 0 and result["max_score"] == 3
    assert all(e["status"] == "failed" and "not implemented" in e["message"] for e in result["exercises"])


def test_wrong_answer_fails_with_its_checks_message(course, tmp_path):
    nb = reference_notebook()
    nb.cells[3].source = "def double(x):\n    return 2 * abs(x)\n"  # passes the public test only
    result = grade_one(_submit(tmp_path, nb), course, timeout=60)
    first = result["exercises"][0]
    assert first["status"] == "failed" and "double(-1.5) should be -3.0" in first["message"]
    assert first["message"].startswith("hidden test")
    assert result["score"] == 1


def test_deleted_exercise_is_missing_and_a_crash_is_an_error(course, tmp_path):
    nb = reference_notebook()
    del nb.cells[7]  # the solution of 50.2
    nb.cells[3].source = "def double(x):\n    return {}[x]\n"
    result = grade_one(_submit(tmp_path, nb), course, timeout=60)
    statuses = {e["id"]: (e["status"], e["message"]) for e in result["exercises"]}
    assert statuses["50.2"][0] == "missing"
    assert statuses["50.1"][0] == "error" and "KeyError" in statuses["50.1"][1]


def test_hang_is_a_timeout_while_the_others_are_graded(course, tmp_path):
    good = _submit(tmp_path, reference_notebook(), "50_demo_good.ipynb")
    hang = reference_notebook()
    hang.cells[1].source = "import time\ntime.sleep(60)\nbase = 3"
    hanging = _submit(tmp_path, hang, "50_demo_hang.ipynb")
    broken = tmp_path / "subs" / "50_demo_broken.ipynb"
    broken.write_text("this is not a notebook {", encoding="utf-8")
    results = grade([str(good), str(hanging), str(broken)], course, timeout=3, jobs=2)
    assert [r["score"] for r in results] == [3, 0, 0]
    assert {e["status"] for e in results[1]["exercises"]} == {"timeout"}
    assert "not a readable notebook" in results[2]["message"]
    assert {e["status"] for e in results[2]["exercises"]} == {"error"}
    book = write_gradebook(results, tmp_path / "grades.csv")
    rows = list(csv.DictReader(book.open(encoding="utf-8")))
    assert [r["total"] for r in rows] == ["3", "0", "0"] and rows[0]["50.1"] == "2"


def test_edition_refuses_a_used_folder_or_one_inside_notebooks(course, tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("x")
    with pytest.raises(EditionError, match="not an empty folder"):
        write_edition(used, folder=course)
    with pytest.raises(EditionError, match="inside the course's notebooks"):
        write_edition(course / "student", folder=course)
    written = write_edition(tmp_path / "fresh", folder=course)
    assert [p.name for p in written] == ["50_demo.ipynb"]
    assert exercises_in(json.loads(written[0].read_text()))["50.1"]["hidden"] == []


def test_cli_errors_are_one_line(tmp_path):
    run = [sys.executable, "-m", "mediag.cli"]
    missing = subprocess.run([*run, "grade", str(tmp_path / "nothing")], capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "no such file" in missing.stderr
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "a").write_text("a")
    used = subprocess.run([*run, "student", str(tmp_path / "full")], capture_output=True, text=True)
    assert used.returncode == 2 and used.stderr.count("\n") == 1 and "not an empty folder" in used.stderr
