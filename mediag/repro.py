"""Reproducibility: one call seeds every library, caps threads and turns on determinism.

    from mediag.repro import setup
    setup(seed=0)            # NumPy, Python, and PyTorch/TensorFlow if they are installed

Why each step matters for the stored notebook outputs:
- seeds: the same random inputs and initial weights on every run;
- thread caps: BLAS and OpenCV may start more threads than the machine has cores, which is slower
  and changes the summation order of float reductions (and therefore the last printed digits);
- determinism flags: PyTorch and TensorFlow otherwise may pick non-deterministic kernels;
- quiet TensorFlow: its start-up log lines would land in a cell's stderr and break nbval;
- known deprecation warnings of the frameworks' own code are filtered by module (`THIRD_PARTY`), never
  every DeprecationWarning: a notebook that calls a deprecated API itself still sees the warning;
- `plot_style=True`: the course's matplotlib style (`mediag.plotting.STYLE`) for every later figure.

Importing `mediag` or any of its modules changes nothing (no environment variable, no matplotlib
setting, no warning filter): `setup()` does it, explicitly. TensorFlow reads its environment
variables only at its first import, so `setup()` (which imports it through `import_tensorflow`)
must come before any `import tensorflow`; the Makefile also exports them for every command.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import warnings

import numpy as np

#: environment that must be in place before TensorFlow is first imported
QUIET_TF_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0"}
#: TensorFlow's oneDNN kernels instead of its default Eigen ones (less CPU time for the course's CNNs), pinned to
#: their AVX2 versions: the AVX-512 ones sum in another order, so results would differ between CPUs
ONEDNN_AVX2_ENV = {"TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_MAX_CPU_ISA": "AVX2"}
#: the oneDNN kernels of the CPU at hand (AVX-512 where there is one: faster, but a trained network's digits
#: then differ from an AVX2 machine's; only for cells whose trained numbers nbval ignores)
ONEDNN_NATIVE_ENV = {"TF_ENABLE_ONEDNN_OPTS": "1"}
#: environment for kernels that share the cores (`mediag run` runs one per core): an idle OpenMP thread sleeps
#: instead of spinning on a core that another kernel needs; the results do not change
SHARED_CORES_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


#: the frameworks whose own DeprecationWarnings `setup()` filters (a regular expression over the module a
#: warning is attributed to): they warn about their internals, which the course cannot change
THIRD_PARTY = (r"(tensorflow|tf_keras|keras|absl|google\.protobuf|h5py|ml_dtypes|torch|transformers|huggingface_hub|"
               r"tokenizers|jupyter_client|ipykernel|traitlets|matplotlib|pydicom|sklearn|nbformat|nbclient)(\.|$)")


def quiet_known_warnings() -> None:
    """Ignore DeprecationWarnings raised by the frameworks' own code (`THIRD_PARTY`), and only those."""
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=THIRD_PARTY)


def quiet_tensorflow() -> None:
    """Set the variables that silence TensorFlow's C++ start-up logs (only works before its import)."""
    for key, value in QUIET_TF_ENV.items():
        os.environ.setdefault(key, value)


@contextlib.contextmanager
def _stderr_silenced():
    """Send file descriptor 2 to /dev/null (catches C++ logs that bypass Python's sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow():
    """Import TensorFlow without its start-up log lines.

    The CUDA stub of the standard TensorFlow wheel logs "Could not find cuda drivers" before its
    logging is configured, so TF_CPP_MIN_LOG_LEVEL cannot silence it; the import runs with the
    process's stderr pointed at /dev/null instead. Python errors from the import still raise.
    """
    quiet_tensorflow()
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with _stderr_silenced():
        import tensorflow

    return tensorflow


def use_deterministic_torch(torch) -> None:
    """`torch.use_deterministic_algorithms(True)` without the import of torch._inductor that the public call makes
    (a large share of every kernel's start-up, as `python -X importtime` shows) only to set the flag for compiled
    graphs; the course compiles none. The eager flag is the same one
    (`torch.are_deterministic_algorithms_enabled()`); a torch without the private setter takes the public call."""
    set_flag = getattr(torch._C, "_set_deterministic_algorithms", None)
    if set_flag is None:
        torch.use_deterministic_algorithms(True)
    else:
        set_flag(True, warn_only=False)


def onednn_env(onednn: bool | str) -> dict:
    """The environment `setup(onednn=...)` gives TensorFlow: `ONEDNN_AVX2_ENV` for True, `ONEDNN_NATIVE_ENV` for
    "native" (a pin already in the environment, as `make test-other-cpu` sets, stays), nothing for False."""
    if onednn not in (False, True, "native"):
        raise ValueError(f"setup: onednn must be False, True (pinned to AVX2) or 'native', got {onednn!r}")
    if onednn == "native":
        return dict(ONEDNN_NATIVE_ENV)
    return dict(ONEDNN_AVX2_ENV) if onednn else {}


def _check_onednn(tf) -> None:
    """TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, when imported: if it was imported before `setup()` asked for
    another set-up, warn (in a notebook the warning is an output nbval does not expect) instead of running on
    other kernels than asked for in silence."""
    from tensorflow.python.util import _pywrap_util_port

    wanted = {"0": False, "false": False, "1": True, "true": True}.get(
        os.environ.get("TF_ENABLE_ONEDNN_OPTS", "").lower())  # other values: TensorFlow's own default
    if wanted is not None and _pywrap_util_port.IsMklEnabled() != wanted:
        import warnings

        warnings.warn(f"setup: TensorFlow was imported before setup() with its oneDNN kernels "
                      f"{'on' if not wanted else 'off'}, and keeps them; for the set-up asked for, restart the "
                      f"kernel and call setup() before importing TensorFlow", RuntimeWarning, stacklevel=3)


def setup(seed: int = 0, threads: int = 2, torch: bool = True, tensorflow: bool = True,
          plot_style: bool = False, onednn: bool | str = False) -> dict:
    """Seed Python, NumPy, PyTorch and TensorFlow; cap threads; turn on deterministic kernels.

    `torch` / `tensorflow` set to False skip importing that framework (a notebook that does not
    need TensorFlow starts faster). Also sets TensorFlow's quiet environment (`quiet_tensorflow`) and
    filters the frameworks' known DeprecationWarnings (`quiet_known_warnings`); `plot_style=True`
    applies the course's matplotlib style to every later figure. `onednn=True` gives TensorFlow its oneDNN
    kernels pinned to AVX2 (`ONEDNN_AVX2_ENV`: the same digits on every CPU), `onednn="native"` the CPU's own
    oneDNN kernels (`ONEDNN_NATIVE_ENV`: fastest, digits may differ between CPUs; an `ONEDNN_MAX_CPU_ISA`
    already set stays); like the quiet environment
    they only take effect before TensorFlow's first import in the process. Returns the settings, for printing.
    """
    os.environ.update(onednn_env(onednn))
    quiet_tensorflow()
    quiet_known_warnings()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    random.seed(seed)
    np.random.seed(seed)

    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    try:
        import cv2

        cv2.setNumThreads(threads)
        cv2.setRNGSeed(seed)
    except ImportError:
        pass

    settings = {"seed": seed, "threads": threads}
    if torch:
        import torch as _torch

        _torch.manual_seed(seed)
        _torch.set_num_threads(threads)
        use_deterministic_torch(_torch)
        settings["torch"] = _torch.__version__
    if tensorflow:
        _tf = import_tensorflow()
        _check_onednn(_tf)
        try:  # only possible before TensorFlow has run its first op
            _tf.config.threading.set_intra_op_parallelism_threads(threads)
            _tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            pass
        _tf.keras.utils.set_random_seed(seed)
        _tf.config.experimental.enable_op_determinism()
        _tf.get_logger().setLevel("ERROR")
        settings["tensorflow"] = _tf.__version__
    if plot_style:
        from mediag.plotting import use_style

        use_style()
    return settings


def environment() -> dict[str, str]:
    """Versions of Python and each framework, the CPU and thread counts (for `mediag env`)."""
    import importlib.metadata as md
    import platform

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "machine": platform.machine(),
        "cpu count": str(os.cpu_count()),
    }
    for dist in ("mediag", "numpy", "torch", "tensorflow", "keras", "transformers", "tokenizers",
                 "pydicom", "pydicom-data", "opencv-python-headless", "scikit-learn", "matplotlib"):
        try:
            info[dist] = md.version(dist)
        except md.PackageNotFoundError:
            info[dist] = "not installed"
    try:
        from threadpoolctl import threadpool_info

        info["BLAS threads"] = ", ".join(f"{p['internal_api']}={p['num_threads']}" for p in threadpool_info())
    except ImportError:
        pass
    return info
