"""`make run`'s runner: counts checks, writes the course map, fails on a raising notebook, never edits notebooks."""

import nbformat
import pytest
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


def test_kernels_idle_threads_sleep_so_parallel_kernels_share_the_cores(tmp_path, monkeypatch):
    # mediag run sets OMP_WAIT_POLICY=PASSIVE for its kernels (the Makefile too), also when the caller did not
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    nb_path = tmp_path / "96_env.ipynb"
    write_notebook(nb_path, "import os\nfrom mediag.verify import check_true\n"
                            "check_true('OpenMP waits passively', os.environ.get('OMP_WAIT_POLICY') == 'PASSIVE')")
    assert run_course([str(nb_path)], out=str(tmp_path / "build")) == 0


def test_run_fails_when_a_notebook_raises(tmp_path, capsys):
    nb_path = tmp_path / "98_bad.ipynb"
    write_notebook(nb_path, "from mediag.verify import check\ncheck('wrong', 1.0, 2.0)")
    assert run_course([str(nb_path)], out=str(tmp_path / "build")) == 1
    out = capsys.readouterr().out
    assert "0 checks passed, 1 failed" in out or "ERROR" in out


def test_run_rejects_missing_notebook(tmp_path, capsys):
    assert run_course([str(tmp_path / "nope.ipynb")], out=str(tmp_path / "build")) == 2
    assert "does not exist" in capsys.readouterr().err


def write_parametrised(path):
    cell = new_code_cell("SIZE, NAME = 3, 'default'")
    cell.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[new_markdown_cell("# 97 · 参数 Parameters (§9.9)"), cell,
                             new_code_cell("from mediag.verify import check_true\n"
                                           "check_true('parameters arrive', (SIZE, NAME) == (5, 'data/x.npz'))")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path.read_bytes()


def test_param_overrides_the_parameters_cell(tmp_path, capsys):
    nb_path = tmp_path / "97_params.ipynb"
    before = write_parametrised(nb_path)
    out = tmp_path / "build"
    assert run_course([str(nb_path)], out=str(out)) == 1, "the defaults must fail the check"
    assert run_course([str(nb_path)], out=str(out), params=["SIZE=5", "NAME=data/x.npz"]) == 0
    assert nb_path.read_bytes() == before
    executed = nbformat.read(out / "97_params.ipynb", as_version=4)
    assert executed.cells[2].metadata["tags"] == ["injected-parameters"]
    assert "1 checks passed, 0 failed" in capsys.readouterr().out


@pytest.mark.parametrize("params, in_place, message", [
    (["COLOUR=red"], False, "97_params.ipynb has no parameter COLOUR; its parameters are NAME, SIZE"),
    (["SIZE"], False, "--param 'SIZE' is not NAME=VALUE"),
    (["SIZE=5"], True, "--param cannot be combined with --in-place"),
])
def test_param_errors_are_one_line(tmp_path, capsys, params, in_place, message):
    nb_path = tmp_path / "97_params.ipynb"
    before = write_parametrised(nb_path)
    assert run_course([str(nb_path)], out=str(tmp_path / "build"), in_place=in_place, params=params) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert nb_path.read_bytes() == before


def test_param_needs_a_parameters_cell(tmp_path, capsys):
    nb_path = tmp_path / "99_ok.ipynb"
    write_notebook(nb_path, "x = 1")
    assert run_course([str(nb_path)], out=str(tmp_path / "build"), params=["x=2"]) == 2
    assert "99_ok.ipynb has no cell tagged 'parameters'" in capsys.readouterr().err


def test_parallel_run_keeps_course_order_and_writes_the_site(tmp_path, capsys):
    """Two notebooks in two kernels at once: the summary and the course map stay in course order, each page
    links its neighbours, and times.json holds the measured seconds (what the READMEs point to)."""
    import json

    paths = []
    for name, code in (("95_first.ipynb", "from mediag.verify import check\ncheck('a', 1.0, 1.0)"),
                       ("96_second.ipynb", "import time\ntime.sleep(1)\nfrom mediag.verify import check\n"
                                           "check('b', 2.0, 2.0)\ncheck('c', 3.0, 3.0)")):
        write_notebook(tmp_path / name, code)
        paths.append(str(tmp_path / name))
    out = tmp_path / "build"
    assert run_course(paths, out=str(out), jobs=2) == 0
    text = capsys.readouterr().out
    summary = text[text.index("notebook "):]
    assert summary.index("95_first.ipynb") < summary.index("96_second.ipynb")
    assert "3 checks passed, 0 failed" in text and "(2 in parallel)" in text
    assert "\x1b[K" not in text, "no status line when stdout is not a terminal"
    record = json.loads((out / "times.json").read_text())
    assert [n["notebook"] for n in record["notebooks"]] == ["95_first.ipynb", "96_second.ipynb"]
    assert record["notebooks"][1]["seconds"] >= 1 and record["jobs"] == 2 and record["wall_seconds"] > 0
    assert "96_second.html" in (out / "95_first.html").read_text()
    index = (out / "index.html").read_text()
    assert index.index("95_first.ipynb") < index.index("96_second.ipynb")


def test_status_line_shows_cell_k_of_n_on_a_terminal():
    import io

    from mediag.runner import Progress

    stream = io.StringIO()
    show = Progress(2, live=True, stream=stream)
    show.started(1, "08_diagnosis_pipeline.ipynb")
    assert "kernel starting" in show._status()
    show.cell("08_diagnosis_pipeline.ipynb", 34, 90)
    show.finished(2, "09_x.ipynb", {"seconds": 3.0, "error": "", "passed": 1, "failed": 0})
    show.close()
    assert "08_diagnosis_pipeline.ipynb: cell 34/90, 0 s | total 0 s" in stream.getvalue()
    assert "09_x.ipynb: 3 s, 1 checks passed, 0 failed" in stream.getvalue()


def test_make_test_hands_out_the_longest_files_first():
    """conftest.py's order (the Makefile keeps it: xdist's reordering by test count is off): a notebook that took
    a minute or more, then the slow unit-test files, then the quicker notebooks, then the other unit tests."""
    import subprocess
    import sys

    from mediag.export import ROOT

    files = ["tests/test_glossary.py", "notebooks/00_start_here.ipynb", "tests/test_classify.py",
             "notebooks/08_diagnosis_pipeline.ipynb"]
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", "--nbval",
                           *files], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:]
    order = list(dict.fromkeys(line.split("::")[0] for line in done.stdout.splitlines() if "::" in line))
    assert order == ["notebooks/08_diagnosis_pipeline.ipynb", "tests/test_classify.py",
                     "notebooks/00_start_here.ipynb", "tests/test_glossary.py"], order
    assert "--no-loadscope-reorder" in (ROOT / "Makefile").read_text(encoding="utf-8")
