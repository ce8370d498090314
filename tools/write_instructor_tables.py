"""Write the generated table of docs/INSTRUCTOR.md and docs/INSTRUCTOR.zh-CN.md.

One row per notebook: its graded exercises with their points (read from the notebooks) and its run
time measured by the last `make run` (build/times.json, else benchmarks/make_run_times.json, which
benchmarks/bench_make_run.py writes). Nothing in the table is typed by hand:

    .venv/bin/python tools/write_instructor_tables.py          # rewrite both guides
    .venv/bin/python tools/write_instructor_tables.py --check  # exit 1 if a guide's exercises are stale
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUIDES = {ROOT / "docs" / "INSTRUCTOR.md": "en", ROOT / "docs" / "INSTRUCTOR.zh-CN.md": "zh"}
BLOCK = re.compile(r"(<!-- generated:start[^>]*-->\n).*?(<!-- generated:end -->)", re.S)
HEAD = {
    "en": ("| notebook | graded exercises (points) | points | run time (last `make run`) |",
           "not measured yet: run `make run`"),
    "zh": ("| notebook | 计分练习（分值） | 总分 | 运行时间（最近一次 `make run`） |",
           "尚未测量：请运行 `make run`"),
}


def rows(lang: str) -> list[str]:
    sys.path.insert(0, str(ROOT))
    from mediag.exercises import exercises_in
    from mediag.runner import previous_times

    times = previous_times(ROOT / "build")
    head, unmeasured = HEAD[lang]
    lines = [head, "|---|---|---|---|"]
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        found = exercises_in(json.loads(path.read_text(encoding="utf-8")))
        listed = ", ".join(f"{eid} ({spec['points']})" for eid, spec in found.items()) or "—"
        seconds = times.get(path.stem) or times.get(path.name)
        shown = f"{seconds:.0f} s" if seconds else unmeasured
        lines.append(f"| {path.stem} | {listed} | {sum(s['points'] for s in found.values())} | {shown} |")
    return lines


def exercises_column(text: str) -> list[str]:
    block = BLOCK.search(text)
    return [line.split("|")[1:4] for line in block.group(0).splitlines() if line.startswith(("| 0", "| 1"))]


def main(argv: list[str]) -> int:
    stale = []
    for guide, lang in GUIDES.items():
        text = guide.read_text(encoding="utf-8")
        table = "\n".join(rows(lang)) + "\n"
        new = BLOCK.sub(lambda m, table=table: m.group(1) + table + m.group(2), text)
        if "--check" in argv:
            if exercises_column(new) != exercises_column(text):
                stale.append(guide.name)
        else:
            guide.write_text(new, encoding="utf-8")
    if stale:
        print(f"write_instructor_tables: {', '.join(stale)} list other exercises than the notebooks; "
              "run python tools/write_instructor_tables.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
