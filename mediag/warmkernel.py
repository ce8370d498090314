"""Warm kernels: notebook kernels forked from a process that has already imported the course's libraries.

Every notebook starts by importing TensorFlow, PyTorch, scikit-learn and SciPy (and transformers' GPT-2 in
07 and 08): about ten CPU-seconds per kernel, a quarter of the whole course's work under `make run` and
`make test`. A warm-kernel server imports them once; each kernel is then a fork of it, whose import cells
find the modules already loaded. Nothing else changes: every notebook still seeds and sets up its own
kernel with `setup()`, runs top to bottom in its own process, and the stored outputs are compared by nbval
exactly as before (`make test` runs on warm kernels, `make notebooks` on cold ones, so the two agree).

How it fits together:
- `WarmKernels` (a context manager, used by `mediag run` and by `make test`'s conftest) starts the server
  as a subprocess: `python -m mediag.warmkernel --serve DIR FLAVOUR...`. It imports everything but
  TensorFlow, then forks one server per *flavour*: the TensorFlow set-up a notebook's `setup(onednn=...)`
  asks for, which TensorFlow reads when it is imported and never again (`repro.onednn_env`). Each
  flavour's server imports TensorFlow and Keras under that set-up and listens on `DIR/<flavour>.sock`.
- Jupyter starts a kernel with `python -m mediag.warmkernel -f CONNECTION_FILE` (`kernel_spec()`). This small
  launcher sends its environment, working directory and standard streams to the server of its flavour,
  which forks the kernel; the launcher then stands in for it: it passes on interrupts and signals and
  exits with the kernel's status. If its death leaves the kernel behind, the server kills the kernel.
- Whatever the server cannot serve exactly as a cold kernel would start, it refuses, and the launcher
  becomes a cold kernel (`python -m ipykernel_launcher`): no server, a flavour it was not started with, or
  an environment that differs from the server's in a variable that the libraries read when imported.
  `MEDIAG_WARM_KERNELS=0` turns warm kernels off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import sys
import time

#: the environment variable that names the server's directory (set for the kernels' launchers); "0" turns
#: warm kernels off
DIR_ENV = "MEDIAG_WARM_KERNELS"
#: variables that differ between kernels and are read only while the notebook runs, not when a library is
#: imported; a difference in any other variable makes the server refuse (the kernel then starts cold)
RUNTIME_ONLY_PREFIXES = ("PYTEST_", "JPY_", DIR_ENV, "MEDIAG_VERIFY_LOG", "MEDIAG_QUIET_PROGRESS", "TQDM_DISABLE",
                         "_", "OLDPWD", "PWD", "SHLVL", "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "COLUMNS", "LINES")
#: the variables TensorFlow reads once, when it is imported: they make a flavour
FLAVOUR_VARS = ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA")
#: imported by the server before it forks a flavour (TensorFlow and Keras are imported by each flavour)
PRELOAD = ("numpy", "scipy.linalg", "scipy.ndimage", "scipy.optimize", "scipy.signal", "scipy.special",
           "scipy.stats", "sklearn.linear_model", "sklearn.metrics", "sklearn.model_selection", "torch",
           "torch.nn", "transformers", "transformers.models.gpt2.modeling_gpt2", "cv2", "pydicom",
           "matplotlib", "matplotlib.figure", "matplotlib.colors", "PIL.Image", "ipykernel.kernelapp",
           "ipywidgets", "mediag.verify", "mediag.repro", "mediag.dicom", "mediag.plotting")
#: the server's first sys.path entry (its working directory, as `python -m` puts it there)
SERVER_PATH0 = sys.path[0] if sys.path else ""
#: how long a launcher waits for its flavour's server to finish importing (then it starts cold, well within
#: the 60 s that nbclient and nbval give a kernel to start)
READY_TIMEOUT = 40.0


def flavour(environ) -> str:
    """The name of the TensorFlow set-up an environment asks for, e.g. `onednn-0` or `onednn-1-avx2`."""
    parts = [environ.get(var, "") for var in FLAVOUR_VARS]
    name = "onednn-" + "-".join(p.lower() for p in parts if p)
    return name if parts[0] else "onednn-default"


def _import_env(environ) -> dict:
    return {k: v for k, v in environ.items() if not k.startswith(RUNTIME_ONLY_PREFIXES)}


def env_difference(server_env, kernel_env, set_by_imports=None) -> str:
    """'' when a kernel with `kernel_env` may be forked from a server started with `server_env`; else the
    first variable that differs. A variable that the server's imports set (`set_by_imports`) may already hold
    that value in the kernel's environment: a process that started the kernel after importing the same
    libraries passes it on (a pytest worker that ran a TensorFlow test before a notebook)."""
    a, b, imported = _import_env(server_env), _import_env(kernel_env), set_by_imports or {}
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key) and not (key in imported and b.get(key) == imported[key]):
            return key
    return ""


# ----------------------------------------------------------------------------------------------- server side
def _preload(modules) -> None:
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional library: the kernel imports it, if it can, itself
            pass


def _serve_flavour(directory: str, name: str, environ: dict, set_by_imports: dict) -> None:
    """Import TensorFlow under this flavour, then fork a kernel for every launcher that connects. `environ` is
    the environment before any import: a kernel's must equal it; `set_by_imports` what the imports added to it
    (a cold kernel's imports would add the same)."""
    os.environ.clear()
    os.environ.update({**environ, **set_by_imports})
    from mediag.repro import import_tensorflow

    import_tensorflow()
    _preload(("keras",))
    set_by_imports = {k: v for k, v in os.environ.items() if environ.get(k) != v}
    path = _socket_path(directory, name)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server.bind(path + ".new")
    server.listen(16)
    os.rename(path + ".new", path)  # a launcher sees the socket only once it accepts connections
    parent = os.getppid()
    kernels: dict[int, socket.socket] = {}  # pid -> its launcher's connection
    import select

    while True:
        if os.getppid() != parent:  # the root server died: so do we, and our kernels
            for pid in kernels:
                _kill(pid)
            return
        readable, _, _ = select.select([server, *kernels.values()], [], [], 0.2)
        for conn in readable:
            if conn is server:
                launcher, _ = server.accept()
                pid = _fork_kernel(launcher, environ, set_by_imports, server, kernels)
                if pid:
                    kernels[pid] = launcher
            else:  # a launcher closed its end: it died, so its kernel goes too
                pid = next(p for p, c in kernels.items() if c is conn)
                if not conn.recv(64):
                    _kill(pid)
        while kernels:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = kernels.pop(pid, None)
            if conn is not None:
                try:
                    conn.send(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode())
                except OSError:
                    pass
                conn.close()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _fork_kernel(launcher: socket.socket, server_env: dict, set_by_imports: dict, server: socket.socket,
                 kernels: dict) -> int:
    message, fds, _, _ = socket.recv_fds(launcher, 1 << 20, 3)
    try:
        request = json.loads(message)
        refusal = env_difference(server_env, request["env"], set_by_imports)
        if len(fds) != 3:
            refusal = "no standard streams"
        _log(server, "cold" if refusal else "warm", refusal)
        if refusal:
            launcher.send(json.dumps({"refused": refusal}).encode())
            launcher.close()
            return 0
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the kernel
            server.close()
            for conn in kernels.values():
                conn.close()
            launcher.close()
            _become_kernel({**request, "env": {**request["env"], **set_by_imports}}, fds)
        launcher.send(json.dumps({"pid": pid}).encode())
        return pid
    finally:
        for fd in fds:
            os.close(fd)


def _log(server: socket.socket, kind: str, detail: str) -> None:
    """One line per kernel asked for, beside the socket: `WarmKernels` sums them up when it stops."""
    with open(os.path.join(os.path.dirname(server.getsockname()), "kernels.log"), "a") as f:
        f.write(f"{kind}\t{detail}\n")


def _become_kernel(request: dict, fds: list[int]) -> None:
    code = 1
    try:
        os.setsid()  # its own session, as Jupyter starts a kernel
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        import importlib.util

        from ipykernel import kernelapp

        # as `python -m ipykernel_launcher` started in the kernel's directory would have them
        sys.argv = [importlib.util.find_spec("ipykernel_launcher").origin, *request["argv"]]
        if sys.path and sys.path[0] == SERVER_PATH0:
            sys.path[0] = request["cwd"]

        argv = list(request["argv"])
        if os.environ.get("JPY_PARENT_PID"):  # read by ipykernel when imported: here, by the server
            argv.append(f"--IPKernelApp.parent_handle={int(os.environ['JPY_PARENT_PID'])}")
        kernelapp.launch_new_instance(argv=argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - the kernel's own error goes to its stderr, as a cold kernel's would
        import traceback

        traceback.print_exc()
    finally:
        import atexit

        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(directory: str, flavours: list[str]) -> int:
    """The root server: import everything but TensorFlow, then fork one server per flavour."""
    base = dict(os.environ)
    _preload(PRELOAD)
    set_by_imports = {k: v for k, v in os.environ.items() if base.get(k) != v}
    children = []
    for name in flavours:
        environ = {k: v for k, v in base.items() if k not in FLAVOUR_VARS}
        environ.update(_flavour_env(name))
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                _serve_flavour(directory, name, environ, set_by_imports)
            except BaseException:  # noqa: BLE001 - its launchers fall back to cold kernels
                import traceback

                traceback.print_exc()
                open(_socket_path(directory, name) + ".failed", "w").close()
                code = 1
            finally:
                os._exit(code)
        children.append(pid)
    parent = os.getppid()
    while children:
        if os.getppid() != parent:
            for pid in children:
                os.kill(pid, signal.SIGTERM)
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid:
            children.remove(pid)
        time.sleep(0.2)
    return 0


def _socket_path(directory: str, name: str) -> str:
    """Short: a Unix socket's path has at most 107 bytes."""
    return os.path.join(directory, hashlib.sha256(name.encode()).hexdigest()[:16] + ".sock")


def _flavour_env(name: str) -> dict:
    """The variables a `flavour_name` was made from."""
    return json.loads(bytes.fromhex(name.rpartition(".")[2]).decode()) if "." in name else {}


def flavour_name(environ) -> str:
    """The socket name of a flavour: readable, with its exact variables appended (hex JSON)."""
    values = {var: environ[var] for var in FLAVOUR_VARS if var in environ}
    return flavour(environ) + "." + json.dumps(values, sort_keys=True).encode().hex()


# --------------------------------------------------------------------------------------------- launcher side
def _cold(argv: list[str]) -> None:
    os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *argv])


def _connect(directory: str, name: str) -> socket.socket | None:
    path = _socket_path(directory, name)
    try:
        expected = json.loads(open(os.path.join(directory, "flavours.json")).read())
    except (OSError, ValueError):
        return None
    if name not in expected["flavours"]:
        return None
    deadline = time.monotonic() + READY_TIMEOUT
    while not os.path.exists(path):  # the server is still importing
        try:
            os.kill(expected["pid"], 0)
        except ProcessLookupError:
            return None
        if os.path.exists(path + ".failed"):
            return None
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        return None
    return conn


def launch(argv: list[str]) -> None:
    """The kernel command: a warm kernel from the server of this environment's flavour, else a cold one."""
    directory = os.environ.get(DIR_ENV, "")
    conn = None if directory in ("", "0") else _connect(directory, flavour_name(os.environ))
    if conn is None:
        _cold(argv)
    request = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}
    socket.send_fds(conn, [json.dumps(request).encode()], [0, 1, 2])
    reply = json.loads(conn.recv(1 << 16) or b"{}")
    if "pid" not in reply:
        conn.close()
        _cold(argv)
    pid = reply["pid"]

    def forward(signum, frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, forward)
    answer = conn.recv(1 << 16)
    code = json.loads(answer).get("exit", 1) if answer else 1
    sys.exit(code if code >= 0 else 128 - code)


# --------------------------------------------------------------------------------------------- the runners' side
def notebook_environ(nb) -> dict | None:
    """The variables the notebook's `setup(onednn=...)` call will set that TensorFlow reads on import (a kernel
    started with them already is of the right flavour); None when the call's argument is not a literal."""
    import ast

    from mediag.repro import onednn_env

    found = []
    for cell in nb.cells:
        if cell.cell_type != "code" or "setup(" not in cell.source:
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return None
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "setup":
                value = next((k.value for k in node.keywords if k.arg == "onednn"), ast.Constant(False))
                try:
                    found.append(onednn_env(ast.literal_eval(value)))
                except ValueError:
                    return None
    if any(env != found[0] for env in found):
        return None
    return found[0] if found else {}


@contextlib.contextmanager
def notebook_flavour(nb):
    """Within: the environment holds the TensorFlow set-up `nb`'s setup() call asks for (`notebook_environ`), so
    a kernel started here is a warm one of that flavour, and a cold one starts as its setup() would leave it."""
    flavour = notebook_environ(nb) or {}
    saved = {key: os.environ.get(key) for key in flavour}
    os.environ.update(flavour)
    try:
        yield flavour
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def server_environment():
    """Within: the environment is the one the running server was started in, but for this process's runtime-only
    variables (`RUNTIME_ONLY_PREFIXES`). A kernel started here is warm whatever this process's own imports and
    `setup()` calls left in its environment (a pytest worker that ran unit tests before a notebook), and does
    not inherit them either. Without a server: the environment as it is."""
    try:
        with open(os.path.join(os.environ.get(DIR_ENV, "0"), "flavours.json")) as f:
            started_in = json.load(f)["environ"]
    except (OSError, ValueError, KeyError):
        yield
        return
    saved = dict(os.environ)
    runtime = {k: v for k, v in saved.items() if k.startswith(RUNTIME_ONLY_PREFIXES)}
    os.environ.clear()
    os.environ.update({**_import_env(started_in), **runtime})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def kernel_spec():
    """The Jupyter kernel spec of a warm kernel (argv starts the launcher; the rest as ipykernel's own)."""
    import ipykernel.kernelspec
    from jupyter_client.kernelspec import KernelSpec

    spec = ipykernel.kernelspec.get_kernel_dict()
    spec["argv"] = [sys.executable, "-m", "mediag.warmkernel", "-f", "{connection_file}"]
    return KernelSpec(resource_dir=ipykernel.kernelspec.RESOURCES, **spec)


def kernel_manager(**kwargs):
    """A Jupyter KernelManager whose `python3` kernel is a warm one (cold where no server is running)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    class WarmSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return kernel_spec()

    return KernelManager(kernel_name="python3", kernel_spec_manager=WarmSpecs(), **kwargs)


class WarmKernels:
    """`with WarmKernels(environs):` runs a warm-kernel server for kernels started in this process's
    environment updated by each of `environs` (one flavour each), and points DIR_ENV at it. Does nothing
    when DIR_ENV is "0" or a server is already running (an empty DIR_ENV counts as unset)."""

    def __init__(self, environs: list[dict]):
        self.environs = environs
        self.process = None
        self.directory = None

    def __enter__(self):
        import subprocess
        import tempfile

        if os.environ.get(DIR_ENV):  # "0": warm kernels off; a directory: a server already runs
            return self
        self.directory = tempfile.mkdtemp(prefix="mediag-warm-")
        names = sorted({flavour_name({**os.environ, **env}) for env in self.environs})
        self.process = subprocess.Popen([sys.executable, "-m", "mediag.warmkernel", "--serve", self.directory,
                                         *names], stdin=subprocess.DEVNULL)
        os.environ[DIR_ENV] = self.directory
        with open(os.path.join(self.directory, "flavours.json"), "w") as f:
            json.dump({"pid": self.process.pid, "flavours": names, "environ": dict(os.environ)}, f)
        return self

    def kernels(self) -> list[tuple[str, str]]:
        """(warm or cold, why cold) for every kernel its server was asked for so far."""
        try:
            with open(os.path.join(self.directory, "kernels.log")) as f:
                return [tuple(line.rstrip("\n").split("\t", 1)) for line in f if line.strip()]
        except OSError:
            return []

    def summary(self) -> str:
        rows = self.kernels()
        cold = [why for kind, why in rows if kind == "cold"]
        text = f"warm kernels: {len(rows) - len(cold)} of {len(rows)} forked from the server"
        if cold:
            text += f"; started cold: {len(cold)} (their environment differs in {', '.join(sorted(set(cold)))})"
        return text

    def __exit__(self, *exc):
        import shutil

        if self.process is None:
            return
        print(self.summary(), file=sys.stderr)
        os.environ.pop(DIR_ENV, None)
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except Exception:  # noqa: BLE001 - it is only a cache of imports
            self.process.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        sys.exit(serve(sys.argv[2], sys.argv[3:]))
    launch(sys.argv[1:])
