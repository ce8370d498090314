"""environment.yml (conda) and requirements-lock.txt (pip) must pin the same packages."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lock_pins():
    lines = (ROOT / "requirements-lock.txt").read_text().splitlines()
    return {ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")}


def conda_pins():
    pins = set()
    for ln in (ROOT / "environment.yml").read_text().splitlines():
        item = ln.strip()
        if item.startswith("- ") and "==" in item:
            pins.add(item[2:].strip())
    return pins


def test_environment_yml_matches_lock():
    assert conda_pins() == lock_pins()


def test_torch_is_the_pinned_cpu_build():
    torch_pins = [p for p in lock_pins() if p.startswith("torch==")]
    assert torch_pins == ["torch==2.13.0+cpu"]
    assert not [p for p in lock_pins() if p.startswith("nvidia-")]


def test_python_is_311():
    assert "python=3.11" in (ROOT / "environment.yml").read_text()


#: developer tools: in the `dev` extra (installed by `make install`), never runtime dependencies
DEV_TOOLS = ("pytest", "pytest-xdist", "nbval", "ruff", "jupyterlab", "playwright")


def _name(requirement: str) -> str:
    import re

    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def test_developer_tools_are_only_in_the_dev_extra_that_make_install_installs():
    import ast
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = {_name(r) for r in project["dependencies"]}
    dev = {_name(r) for r in project["optional-dependencies"]["dev"]}
    assert not runtime & set(DEV_TOOLS), f"developer tools among the runtime dependencies: {runtime & set(DEV_TOOLS)}"
    assert set(DEV_TOOLS) <= dev
    assert "'.[dev]'" in (ROOT / "Makefile").read_text(encoding="utf-8")
    imported = set()  # and the package itself never imports them
    for path in (ROOT / "mediag").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {(path.name, a.name.split(".")[0]) for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add((path.name, node.module.split(".")[0]))
    assert not [(f, m) for f, m in imported if m in {"pytest", "nbval", "ruff", "jupyterlab", "playwright"}]


def test_the_installed_frameworks_are_compiled_to_bytecode():
    """`make install` writes the libraries' .pyc files (uv's --compile-bytecode; pip does it by default). Without
    them, where PYTHONDONTWRITEBYTECODE is set, every kernel, test worker and subprocess compiles the frameworks
    from source again when it imports them."""
    import importlib.util

    for name in ("tensorflow", "keras", "torch", "transformers", "sklearn", "matplotlib"):
        source = importlib.util.find_spec(name).origin
        compiled = Path(importlib.util.cache_from_source(source))
        assert compiled.exists(), f"{name}: no bytecode beside {Path(source).name}; reinstall with make install"
