"""`make run`: execute every notebook headless, in order, into build/ and write the course map.

For each notebook: a fresh kernel runs it top to bottom; the executed copy goes to
`build/NN_topic.ipynb` and `build/NN_topic.html`; every `mediag.verify.check` it calls is counted
(through the file named by MEDIAG_VERIFY_LOG). The notebooks in notebooks/ are only read, unless
`--in-place` is given (how a maintainer stores fresh outputs: `make notebooks`).
Exit status 1 if any notebook raised or any check failed.

`--param NAME=VALUE` (papermill's convention) runs a notebook with other parameters: a cell tagged
`injected-parameters` that assigns them goes right after the cell tagged `parameters`; only names that
cell assigns are accepted, and the stored notebooks are never run this way in place.
"""

from __future__ import annotations

import ast
import html
import json
import os
import re
import sys
import time
from pathlib import Path

from mediag.export import NOTEBOOKS, ROOT
from mediag.repro import QUIET_TF_ENV


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


def parse_params(items: list[str]) -> dict:
    """["DATASET=pneumoniamnist", "EPOCHS=3"] -> {"DATASET": "pneumoniamnist", "EPOCHS": 3}.

    A value that is a Python literal (number, quoted string, tuple, True, None) is taken as that
    literal; anything else as a string, so paths need no quotes. ValueError on a malformed item.
    """
    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise ValueError(f"--param {item!r} is not NAME=VALUE (e.g. --param DATASET=pneumoniamnist)")
        try:
            params[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[name] = value
    return params


def inject_params(nb, params: dict, name: str = "notebook") -> None:
    """Insert a cell assigning `params` after the cell tagged `parameters`; ValueError if they do not fit."""
    import nbformat

    if not params:
        return
    index = next((i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if index is None:
        raise ValueError(f"{name} has no cell tagged 'parameters'; it takes no --param")
    assigned = set()
    for node in ast.walk(ast.parse(nb.cells[index].source)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            assigned.add(node.id)
    unknown = sorted(set(params) - assigned)
    if unknown:
        raise ValueError(f"{name} has no parameter {', '.join(unknown)}; its parameters are "
                         f"{', '.join(sorted(assigned))}")
    code = "# Injected by `mediag run --param`\n" + "\n".join(f"{k} = {v!r}" for k, v in params.items())
    cell = nbformat.v4.new_code_cell(code)
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(index + 1, cell)


def execute(path: Path, out_dir: Path | None, in_place: bool, timeout: int, params: dict | None = None) -> dict:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    inject_params(nb, params or {}, path.name)
    log = (out_dir or ROOT / "build") / f".{path.stem}.checks.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    os.environ["MEDIAG_VERIFY_LOG"] = str(log)
    for key, value in QUIET_TF_ENV.items():
        os.environ.setdefault(key, value)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
        extra_arguments=["--IPKernelApp.log_level=ERROR"],  # no kernel start-up chatter in the terminal
    )
    start = time.perf_counter()
    error = ""
    try:
        client.execute()
    except CellExecutionError as exc:
        lines = [ln for ln in str(exc).splitlines() if ln.strip()]
        error = lines[-1] if lines else "cell raised"
    except Exception as exc:  # noqa: BLE001 - a dead kernel or a timeout is reported, not raised
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
    seconds = time.perf_counter() - start
    os.environ.pop("MEDIAG_VERIFY_LOG", None)
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    log.unlink(missing_ok=True)
    result = {
        "notebook": path.name, "title": title_of(nb), "sections": source_sections(nb),
        "seconds": seconds, "passed": sum(r["passed"] for r in rows),
        "failed": sum(not r["passed"] for r in rows), "error": _strip_ansi(error),
    }
    if in_place:
        if not error:  # never store a half-run notebook
            nbformat.write(nb, path)
    else:
        nbformat.write(nb, out_dir / path.name)
        from nbconvert import HTMLExporter

        body, _ = HTMLExporter().from_notebook_node(nb)
        (out_dir / f"{path.stem}.html").write_text(body, encoding="utf-8")
    return result


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def write_index(results: list[dict], out_dir: Path) -> Path:
    rows = []
    for r in results:
        status = "error" if r["error"] else ("FAIL" if r["failed"] else "PASS")
        colour = {"PASS": "#1a7f37"}.get(status, "#cf222e")
        rows.append(
            f"<tr><td><a href='{html.escape(Path(r['notebook']).stem)}.html'>{html.escape(r['notebook'])}</a></td>"
            f"<td>{html.escape(r['title'])}</td><td>{html.escape(r['sections'])}</td>"
            f"<td>{r['seconds']:.0f} s</td><td>{r['passed']}</td><td>{r['failed']}</td>"
            f"<td style='color:{colour};font-weight:bold'>{status}</td></tr>"
        )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>mediag course map</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;border-bottom:1px solid #ddd}"
        "th{text-align:left}</style></head><body><h1>mediag · 课程地图 course map</h1>"
        "<p>Every notebook executed top to bottom by <code>make run</code>; checks are the "
        "<code>mediag.verify</code> assertions it made.</p><table><thead><tr><th>notebook</th><th>title</th>"
        "<th>source</th><th>run time</th><th>checks passed</th><th>checks failed</th><th>status</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table></body></html>"
    )
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def run_course(notebooks: list[str], out: str = "build", in_place: bool = False, timeout: int = 600,
               params: list[str] | None = None) -> int:
    paths = [Path(p) for p in notebooks] if notebooks else sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    missing = [p for p in paths if not p.is_file()]
    if missing:
        print(f"mediag run: error: {missing[0]} does not exist (give notebook files, or nothing for all)",
              file=sys.stderr)
        return 2
    try:
        values = parse_params(params or [])
        if values and in_place:
            raise ValueError("--param cannot be combined with --in-place: stored notebooks keep their defaults")
        if values:  # every notebook is checked before the first kernel starts; execute() then injects
            import nbformat

            for path in paths:
                inject_params(nbformat.read(path, as_version=4), values, path.name)
    except ValueError as exc:
        print(f"mediag run: error: {exc}", file=sys.stderr)
        return 2
    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    t0 = time.perf_counter()
    for i, path in enumerate(paths, 1):
        print(f"[{i}/{len(paths)}] {path.name} ... (elapsed {time.perf_counter() - t0:.0f} s)", flush=True)
        r = execute(path.resolve(), out_dir, in_place, timeout, values)
        state = f"ERROR {r['error']}" if r["error"] else f"{r['passed']} checks passed, {r['failed']} failed"
        print(f"      {r['seconds']:.0f} s, {state}", flush=True)
        results.append(r)
    if not in_place:
        index = write_index(results, out_dir)
        try:
            shown = index.relative_to(Path.cwd())
        except ValueError:
            shown = index
        print(f"\ncourse map: {shown}")
    print()
    width = max(len(r["notebook"]) for r in results) if results else 8
    print(f"{'notebook'.ljust(width)}  {'time':>6}  {'passed':>6}  {'failed':>6}  status")
    for r in results:
        status = "error" if r["error"] else ("FAIL" if r["failed"] else "PASS")
        print(f"{r['notebook'].ljust(width)}  {r['seconds']:>5.0f}s  {r['passed']:>6}  {r['failed']:>6}  {status}")
    bad = [r for r in results if r["error"] or r["failed"]]
    total_passed = sum(r["passed"] for r in results)
    total_failed = sum(r["failed"] for r in results)
    print(f"\n{len(results)} notebooks, {total_passed} checks passed, {total_failed} failed, "
          f"{len(bad)} notebooks with errors or failures, {time.perf_counter() - t0:.0f} s")
    return 1 if bad else 0
