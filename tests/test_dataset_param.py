"""Notebooks 08 and 09 with `DATASET` set to a MedMNIST-format file (`mediag run -p DATASET=...`).

Notebook 09 is stored with `DATASET = "pneumoniamnist"` (the real file shipped in data/medmnist/) and
notebook 08 with "synthetic"; these tests run both on another MedMNIST-format file, one of synthetic
films written by `mediag.data.medmnist.write_synthetic`, so the `DATASET` path works for any file.
"""


import nbformat
import pytest

from mediag.data.medmnist import write_synthetic
from mediag.export import NOTEBOOKS
from mediag.runner import run_course


@pytest.fixture(scope="module")
def medmnist_file(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("medmnist") / "abnormal28.npz", sizes=(700, 150, 200), seed=5)


def _outputs(path):
    nb = nbformat.read(path, as_version=4)
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_notebook_08_dataset_section(tmp_path, medmnist_file, capsys):
    # Only the title, the imports, the parameters and the cells tagged `dataset`: the synthetic
    # pipeline around them is what nbval already reproduces.
    nb = nbformat.read(NOTEBOOKS / "08_diagnosis_pipeline.ipynb", as_version=4)
    tagged = [c for c in nb.cells if {"parameters", "dataset"} & set(c.metadata.get("tags", []))]
    keep = [nb.cells[0], nb.cells[1], *tagged]
    assert sum("dataset" in c.metadata.get("tags", []) for c in keep) == 2
    nb.cells = keep
    path = tmp_path / "08_dataset_only.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "build"
    assert run_course([str(path)], out=str(out), params=[f"DATASET={medmnist_file}"]) == 0, capsys.readouterr().out
    assert "2 checks passed, 0 failed" in capsys.readouterr().out
    text = _outputs(out / path.name)
    assert "abnormal28 (binary): 700 / 150 / 200 images" in text and "test AUC" in text


def test_notebook_09_on_a_medmnist_file(tmp_path, medmnist_file, capsys):
    out = tmp_path / "build"
    code = run_course([str(NOTEBOOKS / "09_evaluation_explainability.ipynb")], out=str(out),
                      params=[f"DATASET={medmnist_file}"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "0 failed" in printed
    text = _outputs(out / "09_evaluation_explainability.ipynb")
    assert "evaluating: abnormal28 | validation 150" in text and "images" in text
