"""Benchmark: `make run` wall time (target ≤ 180 s on 2 cores) and `make test` from a fresh clone (≤ 6 min).

    .venv/bin/python benchmarks/bench_make_run.py                      # make run; rewrites its BENCHMARKS.md section
    .venv/bin/python benchmarks/bench_make_run.py --fresh-clone-test   # also: git clone, then make test (install incl.)
    .venv/bin/python benchmarks/bench_make_run.py --jobs 1             # make run one notebook at a time, to compare
    .venv/bin/python benchmarks/bench_make_run.py --no-write NB="notebooks/00_start_here.ipynb notebooks/04_rnn.ipynb"

`make run` runs as a user runs it (a subprocess, from the repository); its per-notebook times come from the
build/times.json it writes, its executed notebooks are compared with the stored ones after nbval's sanitiser
(tests/nbval_sanitize.cfg; cells marked NBVAL_IGNORE_OUTPUT, by comment or tag, skipped), which shows that the
parallel run gives the stored outputs. A full run also copies times.json to benchmarks/make_run_times.json:
`mediag run` and `make test` start the slowest notebooks first by it on a fresh clone. Timings need a quiet
machine: the load average is recorded before and after.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, load_average, machine_info, markers, parser, publish

START, END = markers("make_run")
RUN_TARGET, TEST_TARGET = 180.0, 360.0
HINT = ROOT / "benchmarks" / "make_run_times.json"


def timed(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    return time.perf_counter() - t0, done


def sanitisers() -> list[tuple[re.Pattern, str]]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "tests" / "nbval_sanitize.cfg")
    return [(re.compile(cfg[s]["regex"]), cfg[s]["replace"]) for s in cfg.sections()]


def comparable_outputs(path: Path, subs) -> list[str]:
    """Each compared code cell's outputs as text, sanitised as nbval sanitises them (images left out)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code" or re.search(r"#\s*NBVAL_(IGNORE_OUTPUT|SKIP)", cell.source):
            continue
        if {"nbval-ignore-output", "nbval-skip"} & set(cell.metadata.get("tags", [])):  # nbval honours tags too
            continue
        parts = []
        for out in cell.outputs:
            if out.output_type == "stream":
                parts.append(out.text)
            elif out.output_type == "error":
                parts.append(out.ename)
            else:
                data = out.get("data", {})
                parts += [data[m] for m in ("text/plain", "text/markdown", "text/html", "text/latex") if m in data]
        text = "".join(parts)
        for pattern, replace in subs:
            text = pattern.sub(replace, text)
        cells.append(text)
    return cells


def same_as_stored(build: Path, names: list[str]) -> dict[str, list[int]]:
    """{notebook: indices of compared cells whose outputs differ from the stored notebook's}."""
    subs = sanitisers()
    differ = {}
    for name in names:
        ran, stored = comparable_outputs(build / name, subs), comparable_outputs(ROOT / "notebooks" / name, subs)
        differ[name] = [i for i, (a, b) in enumerate(zip(ran, stored)) if a != b] + (
            [-1] if len(ran) != len(stored) else [])
    return differ


def schedule_bound(seconds: list[float], workers: int) -> float:
    """The shortest wall time any schedule of these jobs on `workers` cores can reach: each job runs on one core,
    so no schedule ends before the longest job, nor before the total shared out evenly."""
    return max(max(seconds, default=0.0), sum(seconds) / workers)


def seconds_per_file(junit_xml: Path) -> dict[str, float]:
    """{test file: the seconds its tests took} from pytest's JUnit XML report (`--junitxml`). A notebook's cells
    (nbval) are one file; pytest-xdist runs a file in one worker (`--dist loadfile`), so a file is one job."""
    import xml.etree.ElementTree as ET

    files: dict[str, float] = {}
    for case in ET.parse(junit_xml).getroot().iter("testcase"):
        name = case.get("classname", "")  # "tests.test_x" (a test class would add ".TestY"), "notebooks.08_x.ipynb"
        name = (name[:-6].replace(".", "/") + ".ipynb" if name.endswith(".ipynb")
                else "/".join(name.split(".")[:2]) + ".py")
        files[name] = files.get(name, 0.0) + float(case.get("time", 0.0))
    return files


def fresh_clone_test() -> tuple[float, float, str, dict[str, float]]:
    """(install seconds, test seconds, pytest's last line, {test file: seconds}) of `make install` then `make test`
    in a fresh clone of HEAD (no .venv, no data cache, no build/)."""
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "mediag"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        install, done = timed(["make", "install"], clone)
        if done.returncode != 0:
            sys.exit(f"bench_make_run: make install failed in a fresh clone:\n{done.stderr[-2000:]}")
        report = Path(tmp) / "junit.xml"
        env = {**os.environ, "PYTEST_ADDOPTS": f"{os.environ.get('PYTEST_ADDOPTS', '')} --junitxml={report}"}
        test, done = timed(["make", "test"], clone, env=env)
        lines = [ln for ln in done.stdout.splitlines() if re.search(r"\d+ (passed|failed)", ln)]
        files = seconds_per_file(report) if report.exists() else {}
        return install, test, (lines[-1].strip("= ") if lines else f"exit status {done.returncode}"), files


def make_test_breakdown(files: dict[str, float], workers: int, install: float) -> str:
    """Where `make test`'s time goes, and the least it could take on this machine with these files' times."""
    notebooks = sum(t for f, t in files.items() if f.endswith(".ipynb"))
    unit = sum(t for f, t in files.items() if not f.endswith(".ipynb"))
    slowest = sorted(files.items(), key=lambda kv: -kv[1])[:3]
    bound = schedule_bound(list(files.values()), workers)
    return (f"Inside `make test` (pytest's JUnit report; one file runs in one worker): the notebooks' cells took "
            f"{notebooks:.0f} s in all, the unit tests {unit:.0f} s; the longest files: "
            + ", ".join(f"{Path(f).name} {t:.0f} s" for f, t in slowest)
            + f". No schedule of these files on {workers} workers ends before {bound:.0f} s, so a fresh-clone "
            f"`make test` with this install takes at least {install + bound:.0f} s here, whatever the order.")


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--jobs", type=int, default=None, help="JOBS= for make run (default: one per core)")
    p.add_argument("--fresh-clone-test", action="store_true",
                   help="also time make install + make test in a fresh git clone (about 5-10 minutes)")
    p.add_argument("assignments", nargs="*", metavar="NB=...",
                   help='NB="notebooks/a.ipynb ..." to time a few notebooks only (the section says so)')
    args = p.parse_args()
    nb = next((a.split("=", 1)[1] for a in args.assignments if a.startswith("NB=")), "")
    before = load_average()
    cmd = ["make", "run"] + ([f"JOBS={args.jobs}"] if args.jobs else []) + ([f"NB={nb}"] if nb else [])
    wall, done = timed(cmd, ROOT)
    after = load_average()
    times_file = ROOT / "build" / "times.json"
    if not times_file.exists():
        sys.exit(f"bench_make_run: make run wrote no build/times.json:\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
    record = json.loads(times_file.read_text())
    names = [n["notebook"] for n in record["notebooks"]]
    differ = same_as_stored(ROOT / "build", names)
    complete = not nb and done.returncode == 0
    if complete:
        shutil.copy2(times_file, HINT)

    info = machine_info(jobs=record["jobs"])
    rows = ["| notebook | run time (s) | checks passed | status | outputs as stored |", "|---|---:|---:|---|---|"]
    for n in record["notebooks"]:
        bad = differ[n["notebook"]]
        same = "yes" if not bad else f"no: {len(bad)} cells differ"
        rows.append(f"| {n['notebook']} | {n['seconds']:.1f} | {n['checks_passed']} | {n['status']} | {same} |")
    seconds = [n["seconds"] or 0.0 for n in record["notebooks"]]
    total, bound = sum(seconds), schedule_bound(seconds, record["jobs"])
    scope = "the whole course" if not nb else f"only {len(names)} notebooks (NB=...), not the whole course"
    lines = [
        START,
        "## `make run` and `make test` (issue 17, `benchmarks/bench_make_run.py`)",
        "",
        f"`{' '.join(cmd)}` on {scope}: {record['jobs']} notebooks at a time, one kernel each "
        "(warm kernels, forked from a server that imported the libraries once: `mediag.warmkernel`); "
        f"{info['cpus']} CPUs ({info['machine']}), load average {before} before and {after} after; "
        f"Python {info['python']}; exit status {done.returncode}.",
        "",
        *rows,
        "",
        f"`make run` wall time: **{wall:.0f} s**, site included (the notebooks' own times add up to {total:.0f} s, "
        f"{record['jobs']} at a time). Target ≤ {RUN_TARGET:.0f} s on 2 cores: "
        + (f"{'met' if wall <= RUN_TARGET else 'not met'}." if not nb else "not applicable to a subset."),
        "",
        f"With these per-notebook times no schedule on {record['jobs']} cores ends before **{bound:.0f} s** "
        f"(the longer of the longest notebook, {max(seconds, default=0):.0f} s, and the total shared out, "
        f"{total / record['jobs']:.0f} s): the rest of the wall time is the server's and the site's start-up and "
        "the end of the schedule, where one core waits for the other."
        + (f" Reaching {RUN_TARGET:.0f} s on this machine needs less computation in the notebooks, not a better "
           "schedule." if bound > RUN_TARGET and not nb else ""),
    ]
    if args.fresh_clone_test:
        install, test, last, files = fresh_clone_test()
        lines += ["",
                  f"`make test` from a fresh clone (`git clone`, then `make install`, then `make test`; no .venv, "
                  f"no data cache; the package downloads come from the machine's pip/uv cache when earlier "
                  f"installs left them there): install {install:.0f} s + tests {test:.0f} s = "
                  f"**{install + test:.0f} s** ({last}). Target ≤ {TEST_TARGET / 60:.0f} min: "
                  f"{'met' if install + test <= TEST_TARGET else 'not met'}."]
        if files:
            lines += ["", make_test_breakdown(files, info["cpus"], install)]
    lines += ["", "The per-notebook times are also in build/times.json (the READMEs point to it) and on "
              "build/index.html; " + ("benchmarks/make_run_times.json keeps this run's copy, which orders the "
                                      "next runs (slowest first)." if complete else "this partial run did not "
                                      "replace benchmarks/make_run_times.json."),
              END]
    publish("make_run", "\n".join(lines), args.no_write)
    if done.returncode != 0:
        print(f"make run exited {done.returncode}:\n{done.stdout[-1500:]}", file=sys.stderr)
    if any(differ.values()):
        print(f"outputs differ from the stored notebooks: { {k: v for k, v in differ.items() if v} }",
              file=sys.stderr)
    sys.exit(0 if done.returncode == 0 else 1)


if __name__ == "__main__":
    main()
