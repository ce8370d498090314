"""mediag.progress: a bar in Jupyter, silent (and transparent) under make test / mediag run."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from mediag.progress import progress, quiet, trange


@pytest.mark.parametrize("env, expected", [
    ({}, False), ({"MEDIAG_QUIET_PROGRESS": "1"}, True), ({"TQDM_DISABLE": "1"}, True),
    ({"TQDM_DISABLE": "0"}, False), ({"MEDIAG_QUIET_PROGRESS": ""}, False),
])
def test_quiet_follows_the_environment(monkeypatch, env, expected):
    for var in ("MEDIAG_QUIET_PROGRESS", "TQDM_DISABLE"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert quiet() is expected


def test_quiet_loop_is_unchanged_and_prints_nothing(monkeypatch, capsys):
    monkeypatch.setenv("MEDIAG_QUIET_PROGRESS", "1")
    bar = progress([3, 1, 2], desc="epochs")
    assert list(bar) == [3, 1, 2]
    bar.set_postfix(loss=0.5)
    bar.update(1)
    assert sum(trange(4)) == 6
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_loud_loop_draws_a_bar(monkeypatch, capsys):
    for var in ("MEDIAG_QUIET_PROGRESS", "TQDM_DISABLE"):
        monkeypatch.delenv(var, raising=False)
    assert list(progress(range(3), desc="epochs", leave=True)) == [0, 1, 2]
    assert "epochs" in capsys.readouterr().err


def test_no_widget_output_in_a_kernel_run_by_mediag_run(tmp_path):
    """In a kernel started by `mediag run` (as under make test), a loop with progress() adds no output at all."""
    from mediag.runner import run_course

    nb = new_notebook(cells=[new_code_cell("from mediag.progress import progress\n"
                                           "total = sum(progress(range(5), desc='epochs'))")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "96_progress.ipynb"
    nbformat.write(nb, path)
    assert run_course([str(path)], out=str(tmp_path / "build")) == 0
    executed = nbformat.read(tmp_path / "build" / path.name, as_version=4)
    assert executed.cells[0].outputs == []


def test_notebooks_use_mediag_progress_not_tqdm():
    """tqdm.notebook ignores TQDM_DISABLE: a notebook importing tqdm itself would store a widget output."""
    import re

    from mediag.export import NOTEBOOKS

    found = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type == "code" and re.search(r"^\s*(from\s+tqdm\b|import\s+tqdm\b)", cell.source, re.M):
                found.append(f"{path.name} cell {i}")
    assert not found, f"use `from mediag.progress import progress` instead of tqdm in {found}"
