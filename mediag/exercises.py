"""Graded exercises: how a notebook marks them, and the helper a student's notebook calls.

An exercise is three kinds of cells, each carrying `metadata["exercise"]["id"]` (e.g. "03.2"):

- the **solution** (tag `solution`; also `"points"` in its metadata): only `def` statements (and
  imports), so that the student edition can replace each function's body by a stub;
- the **public test** (tag `public-test`): checks the student can run; kept in the student edition;
- the **hidden tests** (tag `hidden-test`): other shapes, edge cases, a second seed; left out of the
  student edition and run by `mediag grade` against the submission's namespace.

In the student edition each public test runs inside `with exercise("03.2"):`, so that while the stub
still raises `NotImplementedError` the check is skipped with a message and the rest of the notebook
runs on; a wrong answer still fails with the check's own message.
"""

from __future__ import annotations

import ast

TAGS = ("solution", "public-test", "hidden-test")


class exercise:  # noqa: N801 - used as a statement, `with exercise("03.2"):`, like a keyword
    """Context manager around an exercise's public test in the student edition.

    A `NotImplementedError` (the stub's own) becomes a one-line message; every other exception,
    an AssertionError from a failed check among them, propagates.
    """

    def __init__(self, exercise_id: str) -> None:
        self.exercise_id = exercise_id

    def __enter__(self) -> "exercise":
        return self

    def __exit__(self, kind, value, traceback) -> bool:
        if kind is not None and issubclass(kind, NotImplementedError):
            print(f"exercise {self.exercise_id}: not done yet ({value}); its check is skipped")
            return True
        return False


def exercise_of(cell) -> dict | None:
    """The `exercise` metadata of a notebook cell, or None."""
    meta = cell.get("metadata", {}).get("exercise")
    return dict(meta) if isinstance(meta, dict) and meta.get("id") else None


def role_of(cell) -> str | None:
    """"solution", "public-test" or "hidden-test" for an exercise's cell, else None."""
    if exercise_of(cell) is None:
        return None
    tags = cell.get("metadata", {}).get("tags", [])
    roles = [t for t in TAGS if t in tags]
    return roles[0] if roles else None


def exercises_in(nb) -> dict[str, dict]:
    """{id: {"points", "solution", "public", "hidden"}} for the graded exercises of a notebook, in order."""
    found: dict[str, dict] = {}
    for index, cell in enumerate(nb["cells"]):
        meta, role = exercise_of(cell), role_of(cell)
        if role is None:
            continue
        entry = found.setdefault(meta["id"], {"points": 0, "solution": None, "public": [], "hidden": []})
        if role == "solution":
            entry["points"] = int(meta.get("points", 1))
            entry["solution"] = index
        else:
            entry["public" if role == "public-test" else "hidden"].append("".join(cell["source"]))
    return found


def stub_source(solution: str, exercise_id: str) -> str:
    """The student's stub for a solution cell: each function keeps its signature and docstring only.

    Raises ValueError when the cell holds anything but imports and function definitions, because
    such a statement would run the answer (or fail) in the student's notebook.
    """
    tree = ast.parse(solution)
    lines = solution.splitlines()
    parts = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            parts.append("\n".join(lines[node.lineno - 1 : node.end_lineno]))
        elif isinstance(node, ast.FunctionDef):
            head = "\n".join(lines[node.lineno - 1 : node.body[0].lineno - 1])
            if not head.rstrip().endswith(":"):  # a one-line body `def f(x): return x`
                head = lines[node.lineno - 1].split(":", 1)[0] + ":"
            indent = " " * (node.body[0].col_offset or 4)
            body = []
            doc = ast.get_docstring(node, clean=False)
            if doc is not None:
                first = node.body[0]
                body.append("\n".join(lines[first.lineno - 1 : first.end_lineno]))
            body.append(f'{indent}raise NotImplementedError("exercise {exercise_id}: write {node.name}")')
            parts.append(head + "\n" + "\n".join(body))
        else:
            raise ValueError(f"exercise {exercise_id}: the solution cell may hold only imports and functions, "
                             f"found a {type(node).__name__} on line {node.lineno}")
    return ("# Exercise " + exercise_id + ": replace each `raise NotImplementedError` by your code.\n"
            + "\n\n\n".join(parts) + "\n")


def guarded_source(public_test: str, exercise_id: str) -> str:
    """A public test wrapped in `with exercise(id):`, for the student edition."""
    body = "\n".join(("    " + line) if line.strip() else line for line in public_test.splitlines())
    return f"from mediag.exercises import exercise\n\nwith exercise({exercise_id!r}):\n{body}\n"
