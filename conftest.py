"""`make test` runs on every core (pytest-xdist, `--dist loadfile`: each file, so each notebook's cells, stays in
one worker and one kernel, in order). Files are handed out in collection order (the Makefile turns off xdist's
own reordering by test count, `--no-loadscope-reorder`), so the longest go first and no long file is left for
the end while the other worker idles: the notebooks that took a minute or more in the last `make run`
(build/times.json, else benchmarks/make_run_times.json), then the unit-test files that train networks or run
whole notebooks (`SLOW_TEST_FILES`), then the other notebooks, slowest first, then the other unit tests.
Within a file the order never changes."""

from __future__ import annotations

from pathlib import Path

#: unit-test files that train networks or execute whole notebooks, longest first
SLOW_TEST_FILES = ("test_classify.py", "test_dataset_param.py", "test_pipeline.py", "test_exercises.py",
                   "test_cli.py", "test_runner.py", "test_grade.py")
#: a notebook whose last run took at least this many seconds starts before the slow unit-test files
LONG_NOTEBOOK_SECONDS = 60.0


def pytest_collection_modifyitems(session, config, items):
    try:
        from mediag.runner import previous_times

        known = previous_times(Path(__file__).resolve().parent / "build")
    except Exception:  # noqa: BLE001 - the order is an optimisation only
        known = {}

    def rank(item):
        path = Path(item.path)
        if path.suffix == ".ipynb":
            seconds = known.get(path.name, float("inf"))  # unknown notebooks: as if slowest
            return (0 if seconds >= LONG_NOTEBOOK_SECONDS else 2, -seconds)
        if path.name in SLOW_TEST_FILES:
            return (1, SLOW_TEST_FILES.index(path.name))
        return (3, 0.0)

    items[:] = sorted(items, key=rank)  # stable: files stay contiguous, cells in order
