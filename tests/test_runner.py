"""`make run`'s runner: counts checks, writes the course map, fails on a raising notebook, never edits notebooks."""

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from mediag.runner import run_course


def write_notebook(path, code):
    nb = new_notebook(cells=[new_markdown_cell("# 99 · 测试 Test notebook (§9.9)"), new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path.read_bytes()


def test_run_counts_checks_and_writes_index(tmp_path, capsys):
    nb_path = tmp_path / "99_ok.ipynb"
    before = write_notebook(nb_path, "from mediag.verify import check\ncheck('one', 1.0, 1.0)\ncheck('two', 2.0, 2.0)")
    out = tmp_path / "build"
    assert run_course([str(nb_path)], out=str(out)) == 0
    assert nb_path.read_bytes() == before, "make run must not modify the notebooks"
    index = (out / "index.html").read_text()
    assert "99_ok.ipynb" in index and "§9.9" in index and "PASS" in index
    assert (out / "99_ok.html").exists() and (out / "99_ok.ipynb").exists()
    assert "2 checks passed, 0 failed" in capsys.readouterr().out


def test_run_fails_when_a_notebook_raises(tmp_path, capsys):
    nb_path = tmp_path / "98_bad.ipynb"
    write_notebook(nb_path, "from mediag.verify import check\ncheck('wrong', 1.0, 2.0)")
    assert run_course([str(nb_path)], out=str(tmp_path / "build")) == 1
    out = capsys.readouterr().out
    assert "0 checks passed, 1 failed" in out or "ERROR" in out


def test_run_rejects_missing_notebook(tmp_path, capsys):
    assert run_course([str(tmp_path / "nope.ipynb")], out=str(tmp_path / "build")) == 2
    assert "does not exist" in capsys.readouterr().err
