"""The command line: usage errors exit 2, verify runs every registered check."""

import json
import subprocess
import sys

import pytest

from mediag.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "mediag.cli", *args], capture_output=True, text=True)


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert "mediag" in capsys.readouterr().out


def test_unknown_command_prints_usage_and_exits_2():
    result = run("nonsense")
    assert result.returncode == 2
    assert "usage: mediag" in result.stderr


def test_bad_option_exits_2():
    result = run("verify", "--no-such-option")
    assert result.returncode == 2


def test_no_command_exits_2():
    assert run().returncode == 2


def test_env_lists_frameworks():
    result = run("env", "--json")
    assert result.returncode == 0
    info = json.loads(result.stdout)
    for key in ("python", "numpy", "torch", "tensorflow", "transformers", "pydicom"):
        assert key in info


def test_verify_runs_registered_checks():
    result = run("verify", "--json", "--seed", "123")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["failed"] == 0 and out["passed"] >= 1
    names = " ".join(r["check"] for r in out["rows"])
    assert "softmax" in names


def test_run_param_errors_are_one_line(capsys):
    # No kernel starts: the parameters are validated against the notebook before anything runs.
    from mediag.export import NOTEBOOKS

    code = main(["run", str(NOTEBOOKS / "08_diagnosis_pipeline.ipynb"), "-p", "DATASETS=pneumoniamnist"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("mediag run: error: 08_diagnosis_pipeline.ipynb has no parameter DATASETS;")
    assert "DATASET" in err[0]
