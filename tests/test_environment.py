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
