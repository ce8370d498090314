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


# Warm kernels (mediag.warmkernel): nbval's kernels are forked from a server that has imported the course's
# libraries once. The controller starts the server (its workers inherit the environment variable that names
# it); every process that starts kernels asks for warm ones, each of its notebook's TensorFlow flavour.
_WARM = None


def pytest_configure(config):
    global _WARM
    if not getattr(config.option, "nbval", False):
        return
    _use_warm_kernels_in_nbval()
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: the controller runs the server
        return
    import nbformat

    from mediag.export import NOTEBOOKS
    from mediag.runner import kernel_defaults
    from mediag.warmkernel import WarmKernels, notebook_environ

    kernel_defaults()
    environs = [notebook_environ(nbformat.read(p, as_version=4)) for p in sorted(NOTEBOOKS.glob("*.ipynb"))]
    _WARM = WarmKernels([env for env in environs if env is not None])
    _WARM.__enter__()


def pytest_unconfigure(config):
    if _WARM is not None:
        _WARM.__exit__(None, None, None)


def _use_warm_kernels_in_nbval():
    from nbval import kernel, plugin

    from mediag.warmkernel import kernel_spec, notebook_flavour, server_environment

    if getattr(plugin.IPyNbFile.setup, "warm", False):
        return
    cold_spec, cold_setup = kernel.NbvalKernelspecManager.get_kernel_spec, plugin.IPyNbFile.setup

    def get_kernel_spec(self, kernel_name):
        return kernel_spec() if kernel_name == kernel.CURRENT_ENV_KERNEL_NAME else cold_spec(self, kernel_name)

    def setup(self):  # the kernel starts in the server's environment, with its notebook's TensorFlow set-up
        with server_environment(), notebook_flavour(self.nb):
            cold_setup(self)

    setup.warm = True
    kernel.NbvalKernelspecManager.get_kernel_spec = get_kernel_spec
    plugin.IPyNbFile.setup = setup
