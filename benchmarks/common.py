"""What every benchmark script shares: timing, machine facts, the command line, and BENCHMARKS.md.

Each `benchmarks/bench_<name>.py` owns one section of BENCHMARKS.md, between the markers
`<!-- bench_<name>:start -->` and `<!-- bench_<name>:end -->`, and rewrites only that section. The
scripts run as `python benchmarks/bench_<name>.py`, which puts this folder on `sys.path`, so they
import this module as `common`.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
HEADER = (
    "# Benchmarks\n\nMeasured by the scripts in `benchmarks/` (`make bench`); each script rewrites only its own\n"
    "section. Speed targets are recorded here, never asserted in timed tests. Numbers depend on the machine\n"
    "and on its load: each section names the CPU count, threads and load average it was measured under.\n"
)


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of benchmark `name`'s section in BENCHMARKS.md."""
    return f"<!-- bench_{name}:start -->", f"<!-- bench_{name}:end -->"


def median_ms(fn, repeat: int) -> float:
    """Median wall time of `fn()` in milliseconds over `repeat` runs, after one untimed warm-up run."""
    fn()  # warm-up (allocations, framework kernels)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, e.g. '3.2 / 2.9 / 2.5'."""
    return " / ".join(f"{v:.1f}" for v in os.getloadavg())


def cpu_model() -> str:
    """The CPU's model name as Linux reports it ('' elsewhere): timings and trained digits depend on it."""
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    except OSError:
        return ""
    return names[0] if names else ""


def machine_info(**extra) -> dict:
    """CPU count, architecture and model, load average and Python version, plus any `extra` entries."""
    machine = ", ".join(part for part in (platform.machine(), cpu_model()) if part)
    return {"cpus": os.cpu_count(), "machine": machine, "load": load_average(),
            "python": platform.python_version(), **extra}


def parser(doc: str, threads: int | None = None, repeat: int | None = None) -> argparse.ArgumentParser:
    """An argument parser described by the first line of `doc`, with --no-write, and --threads /
    --repeat when a default is given for them."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    if threads is not None:
        p.add_argument("--threads", type=int, default=threads,
                       help=f"threads for NumPy/BLAS and every framework (default {threads})")
    if repeat is not None:
        p.add_argument("--repeat", type=int, default=repeat, help=f"timed runs per implementation (default {repeat})")
    p.add_argument("--no-write", action="store_true", help="print only, do not touch BENCHMARKS.md")
    return p


def write_section(name: str, text: str, path: Path = BENCHMARKS_MD) -> Path:
    """Replace benchmark `name`'s section of `path` by `text` (which starts and ends with its markers),
    or append it when the file has none yet; the rest of the file is left as it was."""
    start, end = markers(name)
    text = text.rstrip("\n") + "\n"
    if not (text.startswith(start) and text.rstrip("\n").endswith(end)):
        raise ValueError(f"write_section: the text for {name!r} must start with {start} and end with {end}")
    old = path.read_text(encoding="utf-8") if path.exists() else HEADER
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end) + "\n?", re.S)
    new = pattern.sub(lambda _: text, old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    path.write_text(new, encoding="utf-8")
    return path


def publish(name: str, text: str, no_write: bool) -> None:
    """Print the section and, unless `no_write`, rewrite it in BENCHMARKS.md."""
    print(text)
    if not no_write:
        print(f"wrote {write_section(name, text).relative_to(ROOT)}")
