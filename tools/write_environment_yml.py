"""Write environment.yml from requirements-lock.txt so conda users get the same pinned packages."""

from pathlib import Path

root = Path(__file__).resolve().parents[1]
pins = [
    line.strip()
    for line in (root / "requirements-lock.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]
lines = [
    "# Generated from requirements-lock.txt by `make lock`; tests/test_environment.py keeps them equal.",
    "name: mediag",
    "channels:",
    "  - conda-forge",
    "dependencies:",
    "  - python=3.11",
    "  - pip",
    "  - pip:",
    *[f"      - {pin}" for pin in pins],
    "      - -e .",
    "",
]
(root / "environment.yml").write_text("\n".join(lines))
print(f"environment.yml: {len(pins)} pinned packages")
