"""The offline course website that `make run` writes into build/ (no page loads anything from another host).

    build/index.html, index.zh-CN.html   landing page in English and Chinese: course map, measured run times,
                                         verification table
    build/NN_topic.html                  one page per notebook: contents, previous/next links, anchors
    build/glossary.html                  docs/GLOSSARY.md, when it exists
    build/times.json                     the measured run times, for the READMEs and benchmarks
    build/_static/                       MathJax 3 (from the pinned django-static-mathjax) and site.css

The runner calls `notebook_page` in the process that executed the notebook and `write_site` once at the
end. `python -m mediag.site [NOTEBOOK ...] [--out DIR]` builds the site from the stored outputs without
executing anything (no times, no check counts), e.g. for the browser test.
"""

from __future__ import annotations

import copy
import html
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from urllib.parse import unquote

from mediag.export import NOTEBOOKS, ROOT

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = "_static"
GLOSSARY = ROOT / "docs" / "GLOSSARY.md"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
#: MathJax 3 with SVG output and every TeX extension in one file: it draws glyphs as SVG paths, so no font
#: has to load (MathJax 2's web fonts cannot load from file:// pages in Chromium)
MATHJAX_FILE = "tex-svg-full.js"
MATHJAX_URL = f"{STATIC}/mathjax/{MATHJAX_FILE}"


def mathjax_source() -> Path:
    """The pinned MathJax (PyPI django-static-mathjax, MathJax 3.2.2): its es5 folder."""
    import mathjax

    return Path(mathjax.__path__[0]) / "static" / "mathjax"


def copy_static(out_dir: Path) -> Path:
    """Copy MathJax (one script and its licence) and site.css into out_dir/_static."""
    static = out_dir / STATIC
    (static / "mathjax").mkdir(parents=True, exist_ok=True)
    shutil.copy2(TEMPLATES / "site" / "site.css", static / "site.css")
    source = mathjax_source()
    for name, target in ((f"es5/{MATHJAX_FILE}", MATHJAX_FILE), ("LICENSE", "LICENSE")):
        dest = static / "mathjax" / target
        if not dest.exists() or dest.stat().st_size != (source / name).stat().st_size:
            tmp = dest.with_name(f".{target}.{os.getpid()}.tmp")  # parallel builds never see half a file
            shutil.copy2(source / name, tmp)
            tmp.replace(dest)
    return static


def source_sections(nb) -> str:
    """The source sections (§...) named in the notebook's title cell."""
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if first is None:
        return ""
    title = first.source.strip().splitlines()[0]
    found = re.findall(r"§[\d.]+(?:\s*(?:step \d|-\s*[\d.]+))?", title)
    return ", ".join(found)


def title_of(nb) -> str:
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    return first.source.strip().splitlines()[0].lstrip("# ").strip() if first else ""


def short_title(nb, stem: str) -> str:
    """'03 · 卷积 Convolution and CNNs (§3.1)' -> '03 · 卷积 Convolution and CNNs' (for prev/next links)."""
    title = title_of(nb) or stem
    return re.sub(r"\s*\(§.*\)\s*$", "", title)


def without_widgets(nb):
    """A copy without widget views and widget state: a static page cannot run them (and the manager would
    load from a CDN). Widget cells keep their static form, which notebooks store as ordinary outputs."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", []) if WIDGET_MIME not in o.get("data", {})]
    return nb


_HEADING = re.compile(r"<h([1-6])([^>]*)>(.*?)</h\1>", re.S)


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).replace("¶", "").strip()


def _slug(text: str) -> str:
    return re.sub(r"\s+", "-", text.strip()) or "section"


def add_anchors(body: str) -> tuple[str, list[tuple[int, str, str]]]:
    """Give every heading an id and a ¶ link (nbconvert skips headings it cannot parse); return the
    headings as (level, id, text) in page order."""
    found, seen = [], set()

    def fix(m):
        level, attrs, inner = int(m.group(1)), m.group(2), m.group(3)
        hid = re.search(r'\bid="([^"]*)"', attrs)
        if hid:  # nbconvert percent-encodes non-ASCII ids: keep them readable (links are rewritten to match)
            raw = html.unescape(hid.group(1))
            ident = unquote(raw)
            if ident != raw:
                attrs = attrs.replace(hid.group(0), f'id="{html.escape(ident)}"')
                inner = inner.replace(f'href="#{hid.group(1)}"', f'href="#{html.escape(ident)}"')
        else:
            ident = _slug(_text(inner))
            while ident in seen:
                ident += "-1"
            attrs += f' id="{html.escape(ident)}"'
        if "anchor-link" not in inner:
            inner += f'<a class="anchor-link" href="#{html.escape(ident)}">¶</a>'
        seen.add(ident)
        found.append((level, ident, _text(inner)))
        return f"<h{level}{attrs}>{inner}</h{level}>"

    return _HEADING.sub(fix, body), found


def toc_html(headings: list[tuple[int, str, str]], max_level: int = 3) -> str:
    """Nested <ul> of the headings up to `max_level` (the notebook title, h1, is the root)."""
    items = [(lvl, ident, text) for lvl, ident, text in headings if lvl <= max_level]
    if not items:
        return ""
    out, depth = [], 0
    base = min(lvl for lvl, _, _ in items)
    for lvl, ident, text in items:
        level = lvl - base + 1
        while depth < level:
            out.append("<ul>")
            depth += 1
        while depth > level:
            out.append("</ul>")
            depth -= 1
        out.append(f'<li><a href="#{html.escape(ident)}">{html.escape(text)}</a></li>')
    out.extend("</ul>" for _ in range(depth))
    return "\n".join(out)


def rewrite_links(body: str, glossary: bool) -> str:
    """Links between notebooks point to their pages; the glossary link to glossary.html."""
    def fix(m):
        href = m.group(2)
        if re.match(r"^[a-z]+:", href) or href.startswith("#"):
            return m.group(0)
        path, _, frag = href.partition("#")
        frag = html.escape(unquote(html.unescape(frag)))  # the ids of the pages are unquoted too
        name = path.rsplit("/", 1)[-1]
        if name.endswith(".ipynb") and re.match(r"\d\d_", name):
            href = name[: -len(".ipynb")] + ".html" + (f"#{frag}" if frag else "")
        elif glossary and name == "GLOSSARY.md":
            href = "glossary.html" + (f"#{frag}" if frag else "")
        return f"{m.group(1)}{href}{m.group(3)}"

    return re.sub(r'(href=")([^"]*)(")', fix, body)


def notebook_page(nb, stem: str, out_dir: Path, prev: dict | None = None, next: dict | None = None,
                  glossary: bool | None = None) -> Path:
    """Write out_dir/<stem>.html for an (executed) notebook; prev/next are {"href", "label"} or None."""
    from nbconvert import HTMLExporter

    glossary = GLOSSARY.exists() if glossary is None else glossary
    exporter = HTMLExporter(template_name="mediag", extra_template_basedirs=[str(TEMPLATES / "nbconvert")],
                            extra_template_paths=[str(TEMPLATES)])
    exporter.mathjax_url = MATHJAX_URL
    resources = {"metadata": {"name": title_of(nb) or stem},
                 "mediag": {"prev": prev, "next": next, "glossary": glossary, "static": STATIC}}
    body, _ = exporter.from_notebook_node(without_widgets(nb), resources=resources)
    body, headings = add_anchors(body)
    body = body.replace("<!--mediag-toc-->", toc_html(headings), 1)
    body = rewrite_links(body, glossary)
    path = out_dir / f"{stem}.html"
    path.write_text(body, encoding="utf-8")
    return path


def neighbours(stems_titles: list[tuple[str, str]], i: int) -> tuple[dict | None, dict | None]:
    """Previous/next links of page i in a list of (stem, short title)."""
    def link(j):
        if 0 <= j < len(stems_titles):
            return {"href": f"{stems_titles[j][0]}.html", "label": stems_titles[j][1]}
        return None

    return link(i - 1), link(i + 1)


def _env():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                              keep_trailing_newline=True)


STRINGS = {
    "en": {
        "lang": "en", "file": "index.html", "other_href": "index.zh-CN.html", "other_lang": "zh-CN",
        "other_name": "中文",
        "page_title": "mediag course map",
        "heading": "mediag · Deep learning for medical image diagnosis, verified formula by formula",
        "intro": "Every notebook below was executed top to bottom in a fresh kernel by make run; the checks are "
                 "the mediag.verify assertions each one made. Open a notebook's page to read it with its outputs.",
        "map": "Course map", "notebook": "notebook", "title": "title", "source": "source", "time": "run time",
        "passed": "checks passed", "failed": "failed", "status": "status",
        "times": "Measured run times",
        "times_text": "Measured by make run on {date}: {wall} s wall time for the {count} notebooks above, {jobs} "
                      "at a time on {cpus} CPU cores; the notebooks' own times add up to {total} s.",
        "not_measured": "This site was built from the stored notebooks without running them, so it has no run "
                        "times or check counts; make run measures them.",
        "times_file": "The same numbers, machine-readable:",
        "verification": "Verification table",
        "verification_text": "Each row is one assertion: our implementation against a reference (another "
                             "library, finite differences, or a stated bound).",
        "check": "check", "shape": "shape", "rel_err": "max rel err", "tolerance": "rtol + atol",
        "result": "result", "glossary": "Glossary", "glossary_link": "术语表 Glossary: every term, in English and "
                                                                     "Chinese",
    },
    "zh": {
        "lang": "zh-CN", "file": "index.zh-CN.html", "other_href": "index.html", "other_lang": "en",
        "other_name": "English",
        "page_title": "mediag 课程地图",
        "heading": "mediag · 医学影像诊断的深度学习，逐个公式验证",
        "intro": "下表每个笔记本都由 make run 在全新内核中从头到尾执行；检查数是它所做的 mediag.verify 断言。"
                 "点开笔记本页面即可连同输出一起阅读。",
        "map": "课程地图", "notebook": "笔记本", "title": "标题", "source": "原文章节", "time": "运行时间",
        "passed": "通过的检查", "failed": "失败", "status": "状态",
        "times": "实测运行时间",
        "times_text": "由 make run 于 {date} 实测：上表 {count} 个笔记本的墙钟时间共 {wall} 秒，在 {cpus} 个 CPU 核上"
                      "同时运行 {jobs} 个；各笔记本自身用时合计 {total} 秒。",
        "not_measured": "本网站由存储的笔记本直接生成、未重新运行，因此没有运行时间和检查数；make run 会测量它们。",
        "times_file": "同样的数字（机器可读）：",
        "verification": "验证表",
        "verification_text": "每一行是一个断言：我们的实现与参照（另一个库、有限差分或文中给出的界）的比较。",
        "check": "检查", "shape": "形状", "rel_err": "最大相对误差", "tolerance": "rtol + atol",
        "result": "结果", "glossary": "术语表", "glossary_link": "术语表 Glossary：课程中每个术语的中英文对照",
    },
}


def _status(r: dict) -> str:
    if r.get("seconds") is None:
        return "–"
    return "error" if r["error"] else ("FAIL" if r["failed"] else "PASS")


def _rows(results: list[dict]) -> list[dict]:
    rows = []
    for r in results:
        stem = Path(r["notebook"]).stem
        measured = r.get("seconds") is not None
        checks = [{"name": c["name"], "shape": c.get("shape", ""), "tolerance": c.get("tolerance", ""),
                   "rel": f"{c['max_rel_err']:.1e}" if isinstance(c.get("max_rel_err"), (int, float)) else "",
                   "status": "PASS" if c["passed"] else "FAIL"} for c in r.get("checks", [])]
        rows.append({
            "stem": stem, "notebook": r["notebook"], "href": f"{stem}.html", "title": r["title"],
            "sections": r["sections"], "time": f"{r['seconds']:.0f} s" if measured else "–",
            "passed": r["passed"] if measured else "–", "failed": r["failed"] if measured else "–",
            "status": _status(r), "checks": checks,
        })
    return rows


def times_record(results: list[dict], wall: float | None, jobs: int | None) -> dict:
    """What build/times.json holds: measured seconds per notebook (course order) and the whole run's wall time."""
    return {
        "measured": time.strftime("%Y-%m-%d %H:%M %Z"),
        "wall_seconds": None if wall is None else round(wall, 1),
        "jobs": jobs, "cpu_count": os.cpu_count(),
        "notebooks": [{"notebook": r["notebook"], "title": r["title"],
                       "seconds": None if r.get("seconds") is None else round(r["seconds"], 1),
                       "checks_passed": r.get("passed"), "checks_failed": r.get("failed"), "status": _status(r)}
                      for r in results],
    }


def write_glossary(out_dir: Path, source: Path = GLOSSARY) -> Path | None:
    if not source.exists():
        return None
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    body, _ = add_anchors(markdown2html_mistune(source.read_text(encoding="utf-8")))
    page = {"lang": "zh-CN", "title": "术语表 Glossary · mediag", "static": STATIC, "math": MATHJAX_URL,
            "glossary": True, "prev": None, "next": None}
    path = out_dir / "glossary.html"
    path.write_text(_env().get_template("site/page.html.j2").render(page=page, body=rewrite_links(body, True)),
                    encoding="utf-8")
    return path


def write_site(results: list[dict], out_dir: Path, wall: float | None = None, jobs: int | None = None) -> Path:
    """Landing pages (both languages), times.json, glossary and static files; notebook pages already exist."""
    out_dir = Path(out_dir)
    copy_static(out_dir)
    glossary = write_glossary(out_dir) is not None
    record = times_record(results, wall, jobs)
    (out_dir / "times.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    measured = wall is not None
    run = {"measured": measured, "wall": f"{wall:.0f}" if measured else "", "jobs": jobs, "cpus": os.cpu_count(),
           "count": len(results),
           "date": record["measured"],
           "total": f"{sum(r['seconds'] for r in results if r.get('seconds') is not None):.0f}"}
    rows = _rows(results)
    template = _env().get_template("site/index.html.j2")
    for t in STRINGS.values():
        page = {"lang": t["lang"], "title": t["page_title"], "static": STATIC, "math": False,
                "glossary": glossary, "prev": None, "next": None}
        (out_dir / t["file"]).write_text(template.render(page=page, t=t, rows=rows, run=run), encoding="utf-8")
    return out_dir / "index.html"


def build_from_stored(paths: list[Path], out_dir: Path) -> Path:
    """The site from the notebooks' stored outputs, nothing executed (no times, no check counts)."""
    import nbformat

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    nbs = [nbformat.read(p, as_version=4) for p in paths]
    names = [(p.stem, short_title(nb, p.stem)) for p, nb in zip(paths, nbs)]
    glossary = GLOSSARY.exists()
    results = []
    for i, (path, nb) in enumerate(zip(paths, nbs)):
        prev, nxt = neighbours(names, i)
        notebook_page(nb, path.stem, out_dir, prev, nxt, glossary)
        results.append({"notebook": path.name, "title": title_of(nb), "sections": source_sections(nb),
                        "seconds": None, "passed": None, "failed": None, "error": "", "checks": []})
    return write_site(results, out_dir)


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m mediag.site",
                                description="Build the offline site from the notebooks' stored outputs "
                                            "(nothing is executed; `make run` executes and measures).")
    p.add_argument("notebooks", nargs="*", help="notebooks (default: all of notebooks/)")
    p.add_argument("--out", default="build", help="output folder (default: build)")
    args = p.parse_args(argv)
    paths = [Path(n) for n in args.notebooks] or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    index = build_from_stored(paths, Path(args.out))
    print(f"site: {index}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
