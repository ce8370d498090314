"""mediag.warmkernel: kernels forked from a server that imported the libraries once behave as cold kernels do."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

import nbformat
import pytest

from mediag.export import NOTEBOOKS
from mediag.repro import ONEDNN_AVX2_ENV, ONEDNN_NATIVE_ENV
from mediag.warmkernel import (
    DIR_ENV,
    WarmKernels,
    env_difference,
    flavour_name,
    kernel_manager,
    notebook_environ,
    notebook_flavour,
    server_environment,
)


def notebook(*sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


def test_the_flavour_is_the_onednn_setting_and_nothing_else():
    base = {"PATH": "/bin", "TF_ENABLE_ONEDNN_OPTS": "0"}
    names = {flavour_name({**base, **env}) for env in ({}, ONEDNN_AVX2_ENV, ONEDNN_NATIVE_ENV)}
    assert len(names) == 3
    assert flavour_name({**base, "PATH": "/usr/bin"}) == flavour_name(base)


def test_a_kernel_environment_must_equal_the_servers_but_for_runtime_variables():
    server = {"PATH": "/bin", "OMP_WAIT_POLICY": "PASSIVE"}
    assert env_difference(server, {**server, "JPY_PARENT_PID": "7", "MEDIAG_VERIFY_LOG": "/x",
                                   "PYTEST_XDIST_WORKER": "gw0", DIR_ENV: "/d"}) == ""
    assert env_difference(server, {**server, "OMP_WAIT_POLICY": "ACTIVE"}) == "OMP_WAIT_POLICY"
    assert env_difference(server, {"PATH": "/bin"}) == "OMP_WAIT_POLICY"
    imported = {"TF2_BEHAVIOR": "1"}  # what the server's own imports set, passed on by a process that imported too
    assert env_difference(server, {**server, "TF2_BEHAVIOR": "1"}, imported) == ""
    assert env_difference(server, {**server, "TF2_BEHAVIOR": "0"}, imported) == "TF2_BEHAVIOR"


def test_the_flavour_is_read_from_the_notebooks_setup_call():
    assert notebook_environ(notebook("from mediag.repro import setup\nsetup(seed=0)")) == {}
    assert notebook_environ(notebook("%matplotlib inline\nsetup(seed=0, onednn=True)")) == ONEDNN_AVX2_ENV
    assert notebook_environ(notebook("x = 1", "mediag.repro.setup(onednn='native')")) == ONEDNN_NATIVE_ENV
    assert notebook_environ(notebook("x = 1")) == {}
    assert notebook_environ(notebook("setup(onednn=choice)")) is None                  # not a literal
    assert notebook_environ(notebook("setup(onednn=True)", "setup()")) is None            # two set-ups
    course = {p.name[:2]: notebook_environ(nbformat.read(p, as_version=4)) for p in NOTEBOOKS.glob("*.ipynb")}
    assert course["08"] == ONEDNN_AVX2_ENV and course["03"] == ONEDNN_NATIVE_ENV and course["04"] == {}


def test_notebook_flavour_sets_the_variables_for_the_kernel_and_restores_them(monkeypatch):
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    with notebook_flavour(notebook("setup(onednn=True)")) as env:
        assert env == ONEDNN_AVX2_ENV and os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0" and "ONEDNN_MAX_CPU_ISA" not in os.environ


def test_setup_warns_of_a_tensorflow_imported_before_it_with_the_other_onednn_setting():
    code = ("import warnings\nfrom mediag.repro import import_tensorflow, setup\nimport_tensorflow()\n"
            "with warnings.catch_warnings(record=True) as seen:\n    warnings.simplefilter('always')\n"
            "    setup(onednn=True)\nprint([str(w.message) for w in seen if w.category is RuntimeWarning])\n")
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0"}
    env.pop("ONEDNN_MAX_CPU_ISA", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert "TensorFlow was imported before setup() with its oneDNN kernels off" in out.stdout, out.stderr


# ------------------------------------------------------------------------------------ kernels from a server
@pytest.fixture(scope="module")
def server():
    """The server `make test` already runs for nbval, else one started here (default flavour only)."""
    from mediag.runner import kernel_defaults

    kernel_defaults()
    with WarmKernels([{}]):
        yield os.environ[DIR_ENV]


def run(kc, code, timeout=120):
    out = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append(msg["content"]["ename"])

    kc.execute_interactive(code, output_hook=hook, timeout=timeout)
    return "".join(out).strip()


def start(tmp_path, in_server_environment=True):
    km = kernel_manager()
    with server_environment() if in_server_environment else contextlib.nullcontext():
        km.start_kernel(cwd=str(tmp_path), extra_arguments=["--IPKernelApp.log_level=ERROR"])
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    return km, kc


def gone(pid, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_a_warm_kernel_starts_with_the_libraries_imported_in_its_own_directory_and_environment(
        server, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDIAG_VERIFY_LOG", str(tmp_path / "checks.jsonl"))  # a variable only the kernel reads
    km, kc = start(tmp_path)
    try:
        loaded = run(kc, "import sys, os\nprint(all(m in sys.modules for m in ('tensorflow', 'torch', 'sklearn')))")
        assert loaded == "True"
        assert run(kc, "print(os.getcwd())") == str(tmp_path)
        assert run(kc, "print(os.environ['MEDIAG_VERIFY_LOG'])") == str(tmp_path / "checks.jsonl")
        assert run(kc, "print(sys.path[0])") == str(tmp_path)   # as `python -m ipykernel_launcher` there
        pid = int(run(kc, "print(os.getpid())"))
        assert pid != km.provisioner.process.pid                  # the kernel is not its launcher
        kc.execute("import time\ntime.sleep(60)")
        time.sleep(1.0)
        km.interrupt_kernel()                                     # Jupyter signals the launcher's group
        reply = kc.get_shell_msg(timeout=20)
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        assert run(kc, "print(1 + 1)") == "2"                      # and the kernel lives on
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    assert gone(pid)
    assert km.provisioner is None or km.provisioner.process is None or km.provisioner.process.poll() is not None


def test_in_the_server_environment_a_kernel_is_warm_whatever_this_process_set(server, tmp_path, monkeypatch):
    # as a unit test's setup() leaves it in a pytest worker; 7: a value no setup() in this run sets, since the
    # server itself may have started in a worker where an earlier test's setup() left its own value
    monkeypatch.setenv("MKL_NUM_THREADS", "7")
    km, kc = start(tmp_path)
    try:
        assert run(kc, "import sys, os\nprint('tensorflow' in sys.modules, os.environ.get('MKL_NUM_THREADS') == '7')"
                   ) == "True False"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_a_kernel_whose_environment_differs_from_the_servers_starts_cold(server, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDIAG_TEST_IMPORT_TIME_VARIABLE", "1")  # a library might read it when imported
    km, kc = start(tmp_path, in_server_environment=False)
    try:
        assert run(kc, "import sys\nprint('tensorflow' in sys.modules)") == "False"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_a_kernel_dies_with_its_launcher(server, tmp_path):
    km, kc = start(tmp_path)
    try:
        assert run(kc, "import sys, os\nprint('tensorflow' in sys.modules)") == "True"  # a warm one
        pid = int(run(kc, "print(os.getpid())"))
        km.provisioner.process.kill()
        km.provisioner.process.wait(timeout=20)
        assert gone(pid), "the kernel outlived its launcher"
    finally:
        kc.stop_channels()
        km.cleanup_resources()


def test_without_a_server_the_kernel_is_a_cold_one(tmp_path, monkeypatch):
    monkeypatch.setenv(DIR_ENV, "0")
    km, kc = start(tmp_path)
    try:
        # the launcher became the kernel (exec): same process, nothing imported yet
        assert run(kc, "import sys, os\nprint('tensorflow' in sys.modules, os.getpid() == "
                       f"{km.provisioner.process.pid})") == "False True"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
