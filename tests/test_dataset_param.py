"""Notebook 09 with `DATASET` set to a MedMNIST-format file (`mediag run -p DATASET=...`), and notebook 08's parameters.

Notebook 09 is stored with `DATASET = "pneumoniamnist"` (the real file shipped in data/medmnist/); the
test runs it on another MedMNIST-format file, one of synthetic films written by
`mediag.data.medmnist.write_synthetic`, so the `DATASET` path works for any file. Notebook 08 takes no
`DATASET` (its report steps need paired reports); its parameters are `mediag.pipeline.PipelineConfig`'s.
"""


import nbformat
import pytest

from mediag.data.medmnist import write_synthetic
from mediag.export import NOTEBOOKS
from mediag.runner import run_course


@pytest.fixture(scope="module")
def medmnist_file(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("medmnist") / "abnormal28.npz", sizes=(300, 100, 150), seed=5)


def _outputs(path):
    nb = nbformat.read(path, as_version=4)
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_notebook_08_takes_pipeline_parameters_not_a_dataset():
    # Notebook 08 stays synthetic (its report steps need paired reports) and does not run notebook 09's code
    # (mediag.classify's fit_and_score uses 09's metrics; its step 2 only shares classify's train_cnn recipe,
    # through mediag.pipeline): real films are 09's and `mediag classify`'s. Its parameters
    # are PipelineConfig's, and `mediag run -p` injects them after the parameters cell (no kernel started).
    from mediag.runner import inject_params

    nb = nbformat.read(NOTEBOOKS / "08_diagnosis_pipeline.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "from mediag.classify" not in code and "import mediag.classify" not in code and "DATASET" not in code
    inject_params(nb, {"N_IMAGES": 300, "PREFIX_STEPS": 50}, "08_diagnosis_pipeline.ipynb")
    index = next(i for i, c in enumerate(nb.cells) if "injected-parameters" in c.metadata.get("tags", []))
    assert "parameters" in nb.cells[index - 1].metadata["tags"]
    assert "N_IMAGES = 300" in nb.cells[index].source
    assert "CONFIG.replace(n=N_IMAGES" in nb.cells[index + 1].source       # the overrides reach CONFIG
    with pytest.raises(ValueError, match="has no parameter DATASET"):
        inject_params(nbformat.read(NOTEBOOKS / "08_diagnosis_pipeline.ipynb", as_version=4), {"DATASET": "x"})


def test_notebook_09_on_a_medmnist_file(tmp_path, medmnist_file, capsys):
    out = tmp_path / "build"
    code = run_course([str(NOTEBOOKS / "09_evaluation_explainability.ipynb")], out=str(out),
                      params=[f"DATASET={medmnist_file}"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "0 failed" in printed
    text = _outputs(out / "09_evaluation_explainability.ipynb")
    assert "evaluating: abnormal28 | validation 100" in text and "images" in text
