"""`mediag grade`: run each submission in a fresh kernel, then its exercises' public and hidden tests.

    mediag grade submissions/ --json --jobs 2 --gradebook grades.csv

Each submission (a notebook file, or every `.ipynb` in a folder) is copied into a temporary folder
and executed there top to bottom by nbclient, with a per-cell timeout; a cell that fails does not
stop it. Then, in the same kernel, each exercise's public test and hidden tests (taken from the
course's reference notebook, never from the submission) run against the submission's namespace.

Statuses: passed, failed (a check failed, or the stub is still there), error (anything else
raised, or the kernel died), timeout, missing (the submission has no solution cell of that id).
A submission that cannot be read is graded 0 with the reason; the batch always goes on.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from mediag.exercises import exercise_of, exercises_in, role_of
from mediag.student import NOTEBOOK_DIR

STATUSES = ("passed", "failed", "error", "timeout", "missing")
_MAX_MESSAGE = 300


class GradeError(ValueError):
    """A problem with the arguments: one line for the user, exit status 2."""


def submissions_in(paths: list[str]) -> list[Path]:
    """Every submission named: files as given, folders searched for `.ipynb` files (sorted)."""
    found = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        elif path.is_file():
            found.append(path)
        else:
            raise GradeError(f"{name}: no such file or folder; give notebooks or folders of them")
    if not found:
        raise GradeError(f"no notebooks in {', '.join(paths)}")
    return found


def reference_for(nb: dict | None, path: Path, reference_dir: Path) -> Path | None:
    """The course notebook a submission answers: its `mediag` metadata, else its file name's number."""
    stem = ((nb or {}).get("metadata", {}).get("mediag") or {}).get("notebook") or path.stem
    for candidate in sorted(reference_dir.glob("[0-9][0-9]_*.ipynb")):
        if candidate.stem == stem or candidate.stem[:3] == stem[:3]:
            return candidate
    return None


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def _error_of(cell) -> tuple[str, str] | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return output.get("ename", "Error"), output.get("evalue", "")
    return None


def _status_of_error(ename: str, evalue: str) -> tuple[str, str]:
    if ename == "AssertionError":
        return "failed", _short(evalue) or "a check failed"
    if ename == "NotImplementedError":
        return "failed", _short(f"not implemented: {evalue}")
    return "error", _short(f"{ename}: {evalue}")


def _result(submission: Path, notebook: str | None, exercises: list[dict], message: str = "") -> dict:
    return {"submission": str(submission), "notebook": notebook,
            "score": sum(e["points"] for e in exercises), "max_score": sum(e["max_points"] for e in exercises),
            "exercises": exercises, "message": message}


def grade_one(submission: str | Path, reference_dir: str | Path = NOTEBOOK_DIR, timeout: int = 600) -> dict:
    """Grade one submission; never raises for a bad submission (the reason is in the result)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    submission, reference_dir = Path(submission), Path(reference_dir)
    try:
        nb = nbformat.reads(submission.read_text(encoding="utf-8"), as_version=4)
        nb_error = ""
    except Exception as exc:  # noqa: BLE001 - any unreadable file is graded 0 with its reason
        nb, nb_error = None, f"not a readable notebook ({type(exc).__name__}: {_short(exc)})"
    reference = reference_for(nb, submission, reference_dir)
    if reference is None:
        return _result(submission, None, [], nb_error or "matches no course notebook (name it like 03_....ipynb)")
    expected = exercises_in(json.loads(reference.read_text(encoding="utf-8")))
    rows = {eid: {"id": eid, "points": 0, "max_points": spec["points"], "status": "missing", "message": ""}
            for eid, spec in expected.items()}
    if nb is None:
        for row in rows.values():
            row["status"], row["message"] = "error", nb_error
        return _result(submission, reference.stem, list(rows.values()), nb_error)
    present = {exercise_of(c)["id"] for c in nb.cells if role_of(c) == "solution"}
    for eid in rows:
        if eid not in present:
            rows[eid]["message"] = "no solution cell with this exercise id (deleted or renamed?)"

    workdir = Path(tempfile.mkdtemp(prefix="mediag-grade-"))
    env = {**os.environ, "HOME": str(workdir), "TMPDIR": str(workdir), "MPLCONFIGDIR": str(workdir / ".mpl")}
    env.pop("MEDIAG_VERIFY_LOG", None)
    nb.cells = [c for c in nb.cells if role_of(c) != "hidden-test"]  # a submission cannot bring its own
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(workdir)}})
    message = ""
    try:
        with client.setup_kernel(env=env, cwd=str(workdir)):
            stopped = None
            for index, cell in enumerate(nb.cells):
                try:
                    client.execute_cell(cell, index)
                except CellTimeoutError:
                    stopped = ("timeout", f"cell {index} ran longer than {timeout} s")
                    break
            for eid, spec in expected.items():
                row = rows[eid]
                if eid not in present:
                    continue
                if stopped:
                    row["status"], row["message"] = stopped
                    continue
                row.update(_run_tests(client, nb, eid, spec))
                if row["status"] == "timeout":
                    stopped = ("timeout", row["message"])
    except DeadKernelError as exc:
        message = f"the kernel died ({_short(exc)})"
        for row in rows.values():
            if row["status"] in ("missing", "passed") and row["message"] == "" and row["id"] in present:
                row["status"], row["message"], row["points"] = "error", message, 0
    except Exception as exc:  # noqa: BLE001 - a broken submission must not stop the batch
        message = f"could not run ({type(exc).__name__}: {_short(exc)})"
        for row in rows.values():
            if row["id"] in present and row["status"] != "passed":
                row["status"], row["message"] = "error", message
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for row in rows.values():
        row["points"] = row["max_points"] if row["status"] == "passed" else 0
    return _result(submission, reference.stem, list(rows.values()), message)


def _run_tests(client, nb, eid: str, spec: dict) -> dict:
    """Run one exercise's public then hidden tests as extra cells in the submission's kernel."""
    from nbclient.exceptions import CellTimeoutError
    from nbformat.v4 import new_code_cell

    for kind, sources in (("public", spec["public"]), ("hidden", spec["hidden"])):
        for source in sources:
            cell = new_code_cell(source)
            nb.cells.append(cell)  # nbclient stores each cell's outputs by its index in the notebook
            try:
                client.execute_cell(cell, len(nb.cells) - 1, store_history=False)
            except CellTimeoutError:
                return {"status": "timeout", "message": f"the {kind} test of {eid} ran too long"}
            error = _error_of(cell)
            if error:
                status, message = _status_of_error(*error)
                return {"status": status, "message": f"{kind} test: {message}"}
    if not spec["public"] and not spec["hidden"]:
        return {"status": "error", "message": "the reference notebook has no test for this exercise"}
    return {"status": "passed", "message": ""}


def grade(paths: list[str], reference_dir: str | Path = NOTEBOOK_DIR, timeout: int = 600,
          jobs: int | None = None) -> list[dict]:
    """Grade every submission in `paths`, `jobs` at a time (default: the CPU count), in input order."""
    submissions = submissions_in(paths)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(submissions)))
    if jobs == 1:
        return [grade_one(s, reference_dir, timeout) for s in submissions]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(grade_one, s, reference_dir, timeout) for s in submissions]
        return [f.result() for f in futures]


def write_gradebook(results: list[dict], path: str | Path) -> Path:
    """A CSV with one row per submission, one column per exercise (points) and a total."""
    ids = []
    for result in results:
        ids += [e["id"] for e in result["exercises"] if e["id"] not in ids]
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["submission", "notebook", *ids, "total", "max_total"])
        for result in results:
            points = {e["id"]: e["points"] for e in result["exercises"]}
            writer.writerow([result["submission"], result["notebook"] or "",
                             *[points.get(i, "") for i in ids], result["score"], result["max_score"]])
    return path
