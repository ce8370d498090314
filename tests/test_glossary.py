"""The bilingual glossary (术语表): a table of the course's terms, linked from every entry point.

docs/GLOSSARY.md holds one row per term: English, Chinese, a one-line definition and the notebook that
introduces it. Every notebook's title cell and both READMEs link to it, so a learner reading either
language finds the other.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = ROOT / "docs" / "GLOSSARY.md"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CJK = re.compile(r"[\u4e00-\u9fff]")


def glossary_rows() -> list[list[str]]:
    """The table's body rows, each split into its cells (header and separator left out)."""
    rows = []
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|") or re.fullmatch(r"\|[-|\s:]+\|", line):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if cells[0].lower() == "english":
            continue
        rows.append(cells)
    return rows


def test_glossary_has_at_least_60_terms_with_four_filled_columns():
    rows = glossary_rows()
    assert len(rows) >= 60, f"docs/GLOSSARY.md has {len(rows)} terms; the course needs at least 60"
    for cells in rows:
        assert len(cells) == 4 and all(cells), f"row needs English | 中文 | definition | notebook: {cells}"
        assert CJK.search(cells[1]), f"{cells[0]!r}: the Chinese column has no Chinese"
    english = [c[0].lower() for c in rows]
    assert len(english) == len(set(english)), "a term is listed twice"


def test_every_glossary_notebook_exists():
    stems = {p.stem for p in NOTEBOOKS}
    for cells in glossary_rows():
        named = re.findall(r"\d\d_[a-z0-9_]+", cells[3])
        assert named, f"{cells[0]!r}: no notebook named in {cells[3]!r}"
        for stem in named:
            assert stem in stems, f"{cells[0]!r} names notebook {stem}, which does not exist"
        for target in re.findall(r"\]\(([^)]+)\)", cells[3]):
            assert (GLOSSARY.parent / target).resolve().exists(), f"{cells[0]!r}: broken link {target}"


@pytest.mark.parametrize("path", [ROOT / "README.md", ROOT / "README.zh-CN.md"], ids=lambda p: p.name)
def test_readme_links_the_glossary(path):
    assert "](docs/GLOSSARY.md)" in path.read_text(encoding="utf-8"), f"{path.name} does not link docs/GLOSSARY.md"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_title_cell_links_the_glossary(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    title = next("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert "](../docs/GLOSSARY.md)" in title, f"{path.stem}: the title cell does not link ../docs/GLOSSARY.md"
