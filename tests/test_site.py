"""mediag.site: the offline site loads nothing from another host and has contents, anchors and prev/next.

(tests/test_site_browser.py opens the pages in Chromium; these tests read the HTML.)
"""

import json
import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from mediag import site
from mediag.export import NOTEBOOKS


def notebook(title, *cells):
    nb = new_notebook(cells=[new_markdown_cell(title), *cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.fixture
def small_site(tmp_path):
    widget = new_code_cell("slider", outputs=[new_output("display_data", data={
        "text/plain": "IntSlider(value=3)", site.WIDGET_MIME: {"model_id": "abc", "version_major": 2}})])
    first = notebook("# 98 · 第一 First (§1.1)\n\n[术语表 Glossary](../docs/GLOSSARY.md), next: "
                     "[the second](99_second.ipynb#2-·-方程-The-equation)",
                     new_markdown_cell("## 1 · 方程 The equation\n\n$$ y_{i,j} = \\sum_{m,n} x_{i+m,j+n} $$"),
                     new_markdown_cell("### 1.1 · 细节 A detail with $\\alpha$ &amp; more"), widget)
    first.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    second = notebook("# 99 · 第二 Second (§2)", new_markdown_cell("## 2 · 方程 The equation\n\n\\(a+b\\)"))
    paths = []
    for name, nb in (("98_first.ipynb", first), ("99_second.ipynb", second)):
        nbformat.write(nb, tmp_path / name)
        paths.append(tmp_path / name)
    out = tmp_path / "build"
    site.build_from_stored(paths, out)
    return out


def loaded_urls(page: str) -> list[str]:
    """Everything a browser would fetch: script/img/iframe src, stylesheet/icon href, CSS url()."""
    urls = re.findall(r'<(?:script|img|iframe|source|video|audio|embed)\b[^>]*\bsrc="([^"]*)"', page)
    urls += re.findall(r'<link\b[^>]*\bhref="([^"]*)"', page)
    urls += re.findall(r"@import\s+url\(['\"]?([^'\")]+)", page)
    return urls


def test_nothing_is_loaded_from_another_host(small_site):
    for page in small_site.glob("*.html"):
        remote = [u for u in loaded_urls(page.read_text()) if re.match(r"^(https?:)?//", u)]
        assert not remote, f"{page.name} loads {remote}"
    assert (small_site / "_static" / "mathjax" / site.MATHJAX_FILE).stat().st_size > 1_000_000
    page = (small_site / "98_first.html").read_text()
    assert f'src="{site.MATHJAX_URL}"' in page
    assert "require.js" not in page and "cdnjs" not in page and "unpkg" not in page


def test_contents_anchors_and_neighbours(small_site):
    page = (small_site / "98_first.html").read_text()
    headings = re.findall(r"<h([1-6])([^>]*)>", page)
    assert len(headings) >= 3 and all('id="' in attrs for _, attrs in headings)
    toc = page[page.index('class="mediag-toc"'):page.index("</nav>", page.index('class="mediag-toc"'))]
    for ident in re.findall(r'<h[1-3][^>]*id="([^"]*)"', page):
        assert f'href="#{ident}"' in toc, ident
        assert f'class="anchor-link" href="#{ident}"' in page
    assert "1 · 方程 The equation" in toc
    assert re.search(r'<a class="mediag-next" href="99_second.html"', page) and "mediag-prev" not in page
    second = (small_site / "99_second.html").read_text()
    assert re.search(r'<a class="mediag-prev" href="98_first.html"', second) and "mediag-next" not in second
    assert 'href="99_second.html#2-·-方程-The-equation"' in page, "links between notebooks go to their pages"
    assert 'id="2-·-方程-The-equation"' in second


def test_widgets_leave_only_their_static_form(small_site):
    page = (small_site / "98_first.html").read_text()
    assert "IntSlider" not in page and "widget-state" not in page


def test_landing_page_in_both_languages(small_site):
    en = (small_site / "index.html").read_text()
    zh = (small_site / "index.zh-CN.html").read_text()
    assert 'lang="en"' in en and 'lang="zh-CN"' in zh
    assert 'href="index.zh-CN.html"' in en and 'href="index.html"' in zh
    assert "Course map" in en and "课程地图" in zh and "验证表" in zh and "实测运行时间" in zh
    for page in (en, zh):
        assert 'href="98_first.html"' in page and "§1.1" in page
    record = json.loads((small_site / "times.json").read_text())
    assert [n["notebook"] for n in record["notebooks"]] == ["98_first.ipynb", "99_second.ipynb"]
    assert record["wall_seconds"] is None, "a site built from stored outputs measured nothing"


def test_measured_times_go_into_the_page_and_times_json(tmp_path):
    results = [{"notebook": "98_first.ipynb", "title": "98 · 第一 First (§1.1)", "sections": "§1.1",
                "seconds": 12.34, "passed": 2, "failed": 0, "error": "",
                "checks": [{"name": "softmax vs torch", "shape": "4×5", "max_rel_err": 1.2e-16,
                            "tolerance": "1e-10", "passed": True}]}]
    site.write_site(results, tmp_path, wall=20.0, jobs=2)
    en = (tmp_path / "index.html").read_text()
    assert "12 s" in en and "20 s wall time for the 1 notebooks" in en and "softmax vs torch" in en and "1.2e-16" in en
    assert "20 秒" in (tmp_path / "index.zh-CN.html").read_text()
    record = json.loads((tmp_path / "times.json").read_text())
    assert record["wall_seconds"] == 20.0 and record["jobs"] == 2
    assert record["notebooks"][0]["seconds"] == 12.3 and record["notebooks"][0]["status"] == "PASS"


def test_glossary_page_when_it_exists(tmp_path, monkeypatch):
    source = tmp_path / "GLOSSARY.md"
    source.write_text("# 术语表 Glossary\n\n| English | 中文 | definition | notebook |\n|---|---|---|---|\n"
                      "| softmax | 软最大 | $\\sigma(z)_i = e^{z_i}/\\sum_j e^{z_j}$ |"
                      " [00](../notebooks/00_start_here.ipynb) |\n")
    out = tmp_path / "build"
    out.mkdir()
    assert site.write_glossary(out, source) is not None
    page = (out / "glossary.html").read_text()
    assert 'href="00_start_here.html"' in page and "<table" in page and site.MATHJAX_URL in page
    assert re.search(r'<h1 id="[^"]+">', page)
    assert site.write_glossary(out, tmp_path / "missing.md") is None


def test_a_stored_notebook_renders_offline(tmp_path):
    site.build_from_stored([NOTEBOOKS / "00_start_here.ipynb"], tmp_path)
    page = (tmp_path / "00_start_here.html").read_text()
    assert not [u for u in loaded_urls(page) if re.match(r"^(https?:)?//", u)]
    assert page.count('class="anchor-link"') >= 5 and "$$" in page
