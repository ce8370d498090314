"""benchmarks/bench_make_run.py's arithmetic: the schedule bound it prints and the per-file times it reads."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_make_run  # noqa: E402  (the scripts import their helpers as `common`, from their own folder)


@pytest.mark.parametrize(("seconds", "workers", "bound"), [
    ([273.0, 185.0, 41.0, 33.0], 2, 273.0),      # the longest job rules
    ([100.0, 100.0, 100.0, 100.0], 2, 200.0),    # the total shared out rules
    ([50.0], 4, 50.0),
    ([], 2, 0.0),
])
def test_no_schedule_beats_the_longest_job_or_the_even_share(seconds, workers, bound):
    assert bench_make_run.schedule_bound(seconds, workers) == bound


def test_seconds_per_file_adds_up_each_files_tests(tmp_path):
    report = tmp_path / "junit.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="notebooks.08_diagnosis_pipeline.ipynb" name="Cell 0" time="12.5" />'
        '<testcase classname="notebooks.08_diagnosis_pipeline.ipynb" name="Cell 1" time="0.5" />'
        '<testcase classname="tests.test_cli" name="test_a" time="1.25" />'
        '<testcase classname="tests.test_cli" name="test_b[x]" time="0.75" />'
        '</testsuite></testsuites>')
    files = bench_make_run.seconds_per_file(report)
    assert files == {"notebooks/08_diagnosis_pipeline.ipynb": 13.0, "tests/test_cli.py": 2.0}
    text = bench_make_run.make_test_breakdown(files, workers=2, install=60.0)
    assert "notebooks' cells took 13 s" in text and "unit tests 2 s" in text and "at least 73 s" in text
