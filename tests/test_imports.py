"""The package has no import cycle: module-level imports and imports inside functions alike.

The graph is read from the source with `ast` (nothing is imported): an edge A -> B for every
`import mediag.B`, `from mediag.B import x` or relative import in A, wherever it stands. A cycle is a
strongly connected component of two or more modules. Python tolerates many cycles at run time, but a
cycle means neither module can be understood, tested or moved without the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mediag"

#: cycles known and scheduled: frozenset of modules -> reason (each is an xfail(strict=True) test, so that
#: the fix turns it into a failure that asks for the entry to be removed)
SCHEDULED = {
}


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (a package is its __init__.py)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules that `name` imports anywhere in its source (top level, functions, classes)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x, from .mod import x
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from mediag import dicom`: the module mediag.dicom; `from mediag.verify import check`: mediag.verify
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                       for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported_modules(name, path, set(known)) for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with two or more modules (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def describe(component: frozenset[str], graph: dict[str, set[str]]) -> str:
    """The modules of a cycle and each import edge inside it."""
    edges = [f"{a} -> {b}" for a in sorted(component) for b in sorted(graph[a] & component)]
    return f"import cycle among {', '.join(sorted(component))} ({'; '.join(edges)})"


def test_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    assert "mediag.checks" in graph["mediag.cli"]  # imported inside cmd_verify
    assert "mediag.scratch.start_here" in graph["mediag.scratch"]  # from .start_here import ...
    assert "mediag.verify" in graph["mediag.scratch.start_here"]


def test_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [frozenset({"a", "b", "c"})]


def test_verify_imports_nothing_of_the_course():
    graph = import_graph()
    assert not {m for m in graph["mediag.verify"] if m.startswith("mediag.scratch")}, (
        "mediag.verify must not import mediag.scratch: mediag.checks loads the registered checks")


def test_no_import_cycle():
    graph = import_graph()
    unexpected = [c for c in cycles(graph) if c not in SCHEDULED]
    assert not unexpected, "\n".join(describe(c, graph) for c in unexpected)


@pytest.mark.parametrize("component", [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=r), id=" <-> ".join(
    sorted(c))) for c, r in SCHEDULED.items()])
def test_scheduled_cycle_is_gone(component):
    graph = import_graph()
    assert component not in cycles(graph), describe(component, graph)


def test_importing_the_package_changes_nothing():
    """No environment variable, matplotlib setting or DeprecationWarning filter at import: setup() does it."""
    import os
    import subprocess
    import sys

    code = """
import os, warnings
import matplotlib as mpl
env, rc = dict(os.environ), dict(mpl.rcParams)
deprecation = lambda: [f for f in warnings.filters if issubclass(DeprecationWarning, f[2]) and f[0] == "ignore"]
filters = deprecation()
import mediag, mediag.repro, mediag.plotting, mediag.verify, mediag.checks, mediag.dicom, mediag.deid
assert dict(os.environ) == env, sorted(set(os.environ) ^ set(env))
assert dict(mpl.rcParams) == rc, [k for k in rc if rc[k] != mpl.rcParams[k]]
assert deprecation() == filters, deprecation()
"""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1]


def test_setup_onednn_sets_tensorflows_kernels_before_its_import():
    """setup(onednn=True) sets oneDNN on and pinned to AVX2 before TensorFlow is imported (the variables only
    count then); setup(onednn="native") sets it on without a pin of its own; setup() alone leaves TensorFlow's
    default (TF_ENABLE_ONEDNN_OPTS=0) and no pin; any other value is a ValueError."""
    import os
    import subprocess
    import sys

    code = """
import sys
from mediag.repro import setup
setup(torch=False, tensorflow=False, onednn={"pinned": True, "native": "native", "off": False}[sys.argv[1]])
import os
print(os.environ.get("TF_ENABLE_ONEDNN_OPTS"), os.environ.get("ONEDNN_MAX_CPU_ISA"), "tensorflow" in sys.modules)
"""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA")}
    pinned, default = (subprocess.run([sys.executable, "-c", code, arg], capture_output=True, text=True, env=env)
                       for arg in ("pinned", "off"))
    assert pinned.stdout.split() == ["1", "AVX2", "False"], pinned.stderr
    assert default.stdout.split() == ["0", "None", "False"], default.stderr
    # "native": oneDNN on, no pin of its own; a pin in the caller's environment (an emulated CPU) stays
    native, emulated = (subprocess.run([sys.executable, "-c", code, "native"], capture_output=True, text=True,
                                       env=e) for e in (env, {**env, "ONEDNN_MAX_CPU_ISA": "AVX2"}))
    assert native.stdout.split() == ["1", "None", "False"], native.stderr
    assert emulated.stdout.split() == ["1", "AVX2", "False"], emulated.stderr
    from mediag.repro import setup

    with pytest.raises(ValueError, match="onednn must be False, True"):
        setup(onednn="avx512")


def test_setup_makes_torch_deterministic_without_importing_its_compiler():
    """setup() turns on PyTorch's deterministic algorithms (an op without one raises) and does not import
    torch._inductor, which torch.use_deterministic_algorithms would import for compiled graphs only."""
    import subprocess
    import sys

    code = """
import sys
import torch
from mediag.repro import setup
assert not torch.are_deterministic_algorithms_enabled()
setup(tensorflow=False)
print(torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
      "torch._inductor" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["True", "False", "False"], result.stderr


def test_setup_filters_only_known_deprecations():
    import warnings

    from mediag import repro

    with warnings.catch_warnings():
        warnings.resetwarnings()
        repro.quiet_known_warnings()
        assert all(f[3] is not None for f in warnings.filters if f[2] is DeprecationWarning and f[0] == "ignore")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            repro.quiet_known_warnings()
            warnings.warn_explicit("old", DeprecationWarning, "x.py", 1, module="tensorflow.python.ops")
            warnings.warn_explicit("old", DeprecationWarning, "nb.py", 1, module="__main__")
        assert [str(w.message) for w in caught] == ["old"]  # the notebook's own call still warns


def _package_modules() -> tuple[set[str], set[str]]:
    """(top-level modules and subpackages of mediag, modules of mediag.data), from the files on disk."""
    top = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    top |= {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    data = {p.stem for p in (PACKAGE / "data").glob("*.py") if p.stem != "__init__"}
    return top, data


def test_package_docstring_lists_every_module():
    import re

    import mediag

    doc = mediag.__doc__
    top, data = _package_modules()
    assert not {m for m in top if f"`mediag.{m}`" not in doc}, "add them to mediag/__init__'s docstring"
    named = set(re.findall(r"`mediag\.(\w+)`", doc))
    assert named <= top, f"the docstring names modules that do not exist: {sorted(named - top)}"
    data_line = doc[doc.index("`mediag.data`"):].split("\n- ")[0]
    assert not {m for m in data if f"`{m}`" not in data_line}, "add them to the `mediag.data` line of the docstring"


@pytest.mark.parametrize("readme", ["README.md", "README.zh-CN.md"])
def test_readme_package_table_lists_every_module(readme):
    text = (PACKAGE.parent / readme).read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `mediag/` |"))
    top, data = _package_modules()
    missing = sorted(m for m in top | data if f"`{m}`" not in row)
    assert not missing, f"{readme}: the `mediag/` row of the package table does not name {missing}"


#: argument validation still named check_* (issue 18: it becomes validate_*); the owner renames, then the
#: entry goes
CHECK_NAMES_SCHEDULED: set[str] = set()  # pipeline.check_n / check_out_dir became validate_* (H2)


def test_check_keeps_one_meaning():
    """`check*` is the verification: `verify.check`, `verify.check_true` and the registered `check_*` functions.

    Argument and file validation is named `validate_*` (`dicom.validate_file`, `preprocessing.validate_image`).
    """
    misnamed = set()
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("check"):
                registered = any("register_check" in ast.unparse(d) for d in node.decorator_list)
                if not registered and f"{name}.{node.name}" not in {"mediag.verify.check", "mediag.verify.check_true"}:
                    misnamed.add(f"{name}.{node.name}")
    assert not misnamed - CHECK_NAMES_SCHEDULED, f"validation functions are named validate_*: {sorted(misnamed)}"
    assert not CHECK_NAMES_SCHEDULED - misnamed, (
        f"renamed: remove {sorted(CHECK_NAMES_SCHEDULED - misnamed)} from CHECK_NAMES_SCHEDULED")
