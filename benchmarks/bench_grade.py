"""Time `mediag grade`: one submission, and a class-sized batch graded in parallel.

    python benchmarks/bench_grade.py                 # notebook 04, one submission and a batch of 20
    python benchmarks/bench_grade.py --notebook 00 --batch 20 --jobs 2

The submissions are copies of the reference notebook (full marks expected) and of its student
edition (zero expected), half and half, so the batch exercises both the passing and the failing
paths; each run asserts the scores before it reports a time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, machine_info, markers, parser, write_section

sys.path.insert(0, str(ROOT))
from mediag.student import course_notebooks, student_notebook  # noqa: E402

MEDIAG = [sys.executable, "-m", "mediag.cli"]


def run_grade(paths: list[Path], jobs: int) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    done = subprocess.run([*MEDIAG, "grade", *map(str, paths), "--json", "--jobs", str(jobs)],
                          capture_output=True, text=True, check=True)
    return time.perf_counter() - start, json.loads(done.stdout)


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--notebook", default="04", help="course notebook to grade (default 04)")
    p.add_argument("--batch", type=int, default=20, help="submissions in the batch (default 20)")
    p.add_argument("--jobs", type=int, default=2, help="submissions graded at once (default 2)")
    args = p.parse_args()
    reference = course_notebooks([args.notebook])[0]
    work = Path(tempfile.mkdtemp(prefix="bench-grade-"))
    try:
        student = json.dumps(student_notebook(json.loads(reference.read_text(encoding="utf-8")), reference.stem))
        batch = []
        for k in range(args.batch):
            target = work / f"{reference.stem}_{k:03d}.ipynb"
            if k % 2:
                target.write_text(student, encoding="utf-8")
            else:
                shutil.copy(reference, target)
            batch.append(target)
        one_s, one = run_grade(batch[:1], 1)
        assert one[0]["score"] == one[0]["max_score"] > 0, one
        many_s, many = run_grade(batch, args.jobs)
        scores = [r["score"] for r in many]
        assert scores == [many[0]["max_score"] if k % 2 == 0 else 0 for k in range(args.batch)], scores
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info = machine_info(jobs=args.jobs)
    start, end = markers("grade")
    text = "\n".join([
        start,
        "## `mediag grade` (issue 16, `benchmarks/bench_grade.py`)",
        "",
        f"Notebook `{reference.stem}`; submissions are the reference (full marks) and the student edition (0), "
        f"alternating; scores asserted before timing is reported. {info['cpus']} CPUs, load {info['load']}, "
        f"Python {info['python']}.",
        "",
        "| run | submissions | jobs | wall time | per submission |",
        "|---|---|---|---|---|",
        f"| one submission | 1 | 1 | {one_s:.1f} s | {one_s:.1f} s |",
        f"| a class batch | {args.batch} | {args.jobs} | {many_s:.1f} s | {many_s / args.batch:.1f} s |",
        "",
        f"A class of 100 at this rate: about {100 * many_s / args.batch / 60:.0f} min with {args.jobs} jobs.",
        end,
    ])
    print(text)
    if not args.no_write:
        write_section("grade", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
