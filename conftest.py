"""`make test` runs on every core (pytest-xdist, `--dist loadfile`: each file, so each notebook's cells, stays in
one worker and one kernel, in order). Files are handed out in collection order, so the slowest go first: the
notebooks by the last `make run`'s measured times (build/times.json, else benchmarks/make_run_times.json),
then the other notebooks, then the unit tests. Within a file the order never changes."""

from __future__ import annotations

from pathlib import Path


def pytest_collection_modifyitems(session, config, items):
    try:
        from mediag.runner import previous_times

        known = previous_times(Path(__file__).resolve().parent / "build")
    except Exception:  # noqa: BLE001 - the order is an optimisation only
        known = {}

    def rank(item):
        path = Path(item.path)
        if path.suffix == ".ipynb":
            return (0, -known.get(path.name, float("inf")))  # unknown notebooks: as if slowest
        return (1, 0.0)

    items[:] = sorted(items, key=rank)  # stable: files stay contiguous, cells in order
