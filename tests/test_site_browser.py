"""The offline site in a real browser: every page opened from disk in headless Chromium with the network off.

A page fails on a formula left as raw LaTeX (no MathJax output, or `$$`, `\\(`, `\\[` still in the text),
a request that failed or went to another host, or a console error. Screenshots of two pages go to
build/screenshots/.

By default the site is built from a few notebooks' stored outputs (nothing executed). To check the site
`make run` wrote instead: `make test-site` (MEDIAG_SITE_DIR=build).
Needs Chromium from the system (Debian: `apt-get install chromium`); Playwright drives it, no browser download.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mediag.export import NOTEBOOKS, ROOT

#: small notebooks with formulas, tables and figures (the default site under test)
SAMPLE = ["00_start_here.ipynb", "04_rnn.ipynb", "05_lstm.ipynb"]
SCREENSHOTS = ROOT / "build" / "screenshots"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]
HOW_TO_GET = ("no Chromium: install it (Debian/Ubuntu: `sudo apt-get install chromium`) to check the site "
              "in a browser; everything else runs without it")


def chromium_path() -> str | None:
    """The browser: MEDIAG_CHROMIUM if set (a path that does not exist means none), else Debian's chromium."""
    if "MEDIAG_CHROMIUM" in os.environ:
        given = os.environ["MEDIAG_CHROMIUM"]
        return given if Path(given).is_file() else None
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"),
                      shutil.which("google-chrome")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


# Runs in the page once MathJax has finished: what a reader would see.
INSPECT = """() => {
  const typeset = document.querySelectorAll('mjx-container').length;
  const errors = document.querySelectorAll('mjx-merror, [data-mjx-error]').length;
  const prose = [];
  for (const el of document.querySelectorAll('main')) {
    const copy = el.cloneNode(true);
    copy.querySelectorAll('pre, code, script, style, mjx-container, .jp-InputArea').forEach(n => n.remove());
    prose.push(copy.textContent);
  }
  return {typeset, errors, prose: prose.join('\\n')};
}"""

RAW_TEX = ("$$", "\\(", "\\)", "\\[", "\\]", "\\begin{", "\\frac", "\\sum")


def check_page(page, url: str) -> list[str]:
    """Open one page; return what is wrong with it (empty list when fine)."""
    problems: list[str] = []
    page.on("console", lambda msg: msg.type == "error" and problems.append(f"console error: {msg.text}"))
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    page.on("requestfailed", lambda req: problems.append(f"failed request: {req.url} ({req.failure})"))
    page.goto(url, wait_until="load")
    if page.evaluate("() => !!window.MathJax"):  # configured: wait until it has loaded and typeset the page
        page.wait_for_function("() => window.MathJax.startup && window.MathJax.startup.promise", timeout=30_000)
        page.evaluate("() => window.MathJax.startup.promise")
    seen = page.evaluate(INSPECT)
    raw = [t for t in RAW_TEX if t in seen["prose"]]
    if raw:
        problems.append(f"untypeset formula: {', '.join(raw)} visible in the text")
    if seen["errors"]:
        problems.append(f"{seen['errors']} formulas with TeX errors")
    problems.append(seen["typeset"])  # popped by the caller: how many formulas were typeset
    return problems


def check_site(site: Path, screenshot_pages: tuple[str, ...] = (), screenshot_dir: Path = SCREENSHOTS,
               expect_math: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Every .html page of `site` in Chromium with the network off: {page: problems}."""
    from playwright.sync_api import sync_playwright

    pages = sorted(site.glob("*.html"))
    assert pages, f"no pages in {site}"
    report: dict[str, list[str]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=FLAGS)
        context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
        remote: list[str] = []

        def only_local(route):  # anything that is not a file on disk is a failure, and never leaves the machine
            remote.append(route.request.url)
            route.abort()

        context.route(lambda url: not url.startswith(("file:", "data:", "blob:", "about:")), only_local)
        for path in pages:
            page = context.new_page()
            problems = check_page(page, path.as_uri())
            if not problems.pop() and path.name in expect_math:
                problems.append("no typeset formula (MathJax did not run) on a page that has formulas")
            problems += [f"request to another host: {u}" for u in remote]
            remote.clear()
            if path.name in screenshot_pages:
                screenshot_dir.mkdir(parents=True, exist_ok=True)
                if path.name != "index.html":  # scroll to the first displayed equation
                    page.evaluate("() => { const m = document.querySelector('mjx-container[display]');"
                                  " if (m) m.scrollIntoView({block: 'center'}); }")
                page.screenshot(path=str(screenshot_dir / f"{path.stem}.png"))
            report[path.name] = problems
            page.close()
        context.close()
        browser.close()
    return report


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if chromium_path() is None:
        pytest.skip(HOW_TO_GET)
    pytest.importorskip("playwright", reason="playwright is in requirements-lock.txt: `make install`")
    given = os.environ.get("MEDIAG_SITE_DIR")
    if given:
        return Path(given).resolve()
    from mediag.site import build_from_stored

    out = tmp_path_factory.mktemp("site")
    build_from_stored([NOTEBOOKS / name for name in SAMPLE], out)
    return out


def test_every_page_is_typeset_offline_without_errors(site):
    notebook_pages = sorted(p.name for p in site.glob("[0-9][0-9]_*.html"))
    shots = ("index.html", notebook_pages[min(1, len(notebook_pages) - 1)])
    report = check_site(site, screenshot_pages=shots, expect_math=tuple(notebook_pages))
    bad = {name: problems for name, problems in report.items() if problems}
    assert not bad, "\n".join(f"{name}: {p}" for name, problems in bad.items() for p in problems[:5])
    for name in shots:
        assert (SCREENSHOTS / f"{Path(name).stem}.png").stat().st_size > 10_000


def test_the_checker_catches_raw_tex_and_remote_requests(tmp_path):
    """The browser check itself must fail on the two faults it exists for."""
    if chromium_path() is None:
        pytest.skip(HOW_TO_GET)
    pytest.importorskip("playwright")
    (tmp_path / "raw.html").write_text("<html><body><main><p>$$ y = \\sum_i x_i $$</p></main></body></html>")
    (tmp_path / "remote.html").write_text(
        "<html><head><script src='https://cdn.example.org/mathjax.js'></script></head><body>ok</body></html>")
    report = check_site(tmp_path)
    assert any("untypeset formula" in p for p in report["raw.html"])
    assert any("another host" in p or "failed request" in p for p in report["remote.html"])
