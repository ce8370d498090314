"""`make run`: execute every notebook headless, in order, into build/ and write the course map.

For each notebook: a fresh kernel runs it top to bottom; the executed copy goes to
`build/NN_topic.ipynb` and `build/NN_topic.html`; every `mediag.verify.check` it calls is counted
(through the file named by MEDIAG_VERIFY_LOG). The notebooks in notebooks/ are only read, unless
`--in-place` is given (how a maintainer stores fresh outputs: `make notebooks`).
Exit status 1 if any notebook raised or any check failed.

`--param NAME=VALUE` (papermill's convention) runs a notebook with other parameters: a cell tagged
`injected-parameters` that assigns them goes right after the cell tagged `parameters`; only names that
cell assigns are accepted, and the stored notebooks are never run this way in place.

Into build/ also goes the offline site (`mediag.site`): one page per notebook, the landing page in English
and Chinese, and `times.json` with the measured run times. Independent notebooks run in parallel, one
kernel per CPU core (`--jobs`); the longest (by the previous run's times.json) start first; the summary
is in course order. Kernels are warm ones (`mediag.warmkernel`): forked from a server that has imported the
libraries once. On a terminal a status line shows, for each notebook in progress, cell k of N and the
time elapsed; piped or under tests only a line per notebook is printed.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import sys
import threading
import time
from pathlib import Path

from mediag.export import NOTEBOOKS, ROOT
from mediag.repro import QUIET_TF_ENV, SHARED_CORES_ENV
from mediag.site import source_sections, title_of
from mediag.warmkernel import WarmKernels, kernel_manager, notebook_environ, notebook_flavour, server_environment


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


#: set for every kernel `mediag run` starts (as the Makefile does): progress bars never become outputs
QUIET_PROGRESS_ENV = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "MEDIAG_QUIET_PROGRESS": "1"}


def kernel_defaults() -> None:
    """The environment every kernel of a run starts with, where the caller has not set it: quiet TensorFlow,
    kernels that share the cores, and huggingface_hub's progress bars off (it reads that when imported)."""
    for key, value in {**QUIET_TF_ENV, **SHARED_CORES_ENV,
                       "HF_HUB_DISABLE_PROGRESS_BARS": QUIET_PROGRESS_ENV["HF_HUB_DISABLE_PROGRESS_BARS"]}.items():
        os.environ.setdefault(key, value)


def execute(path: Path, out_dir: Path | None, in_place: bool, timeout: int, params: dict | None = None,
            progress=None, neighbours: tuple | None = None) -> dict:
    """Run one notebook in a fresh kernel. `progress(k, n)` is called as code cell k of n starts;
    `neighbours` = (previous, next) links for its page of the site."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    inject_params(nb, params or {}, path.name)
    log = (out_dir or ROOT / "build") / f".{path.stem}.checks.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    os.environ["MEDIAG_VERIFY_LOG"] = str(log)
    kernel_defaults()
    added = [key for key in QUIET_PROGRESS_ENV if key not in os.environ]  # for the kernel; removed afterwards
    os.environ.update({key: QUIET_PROGRESS_ENV[key] for key in added})
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
    position = {index: k for k, index in enumerate(code, 1)}

    def on_cell_execute(cell, cell_index):
        if progress is not None:
            progress(position.get(cell_index, 0), len(code))

    client = NotebookClient(
        nb, timeout=timeout, km=kernel_manager(), resources={"metadata": {"path": str(path.parent)}},
        record_timing=False, on_cell_execute=on_cell_execute,
        extra_arguments=["--IPKernelApp.log_level=ERROR"],  # no kernel start-up chatter in the terminal
    )
    start = time.perf_counter()
    error = ""
    try:
        with server_environment(), notebook_flavour(nb):  # a warm kernel of the set-up the notebook asks for
            client.execute()
    except CellExecutionError as exc:
        lines = [ln for ln in str(exc).splitlines() if ln.strip()]
        error = lines[-1] if lines else "cell raised"
    except Exception as exc:  # noqa: BLE001 - a dead kernel or a timeout is reported, not raised
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
    seconds = time.perf_counter() - start
    os.environ.pop("MEDIAG_VERIFY_LOG", None)
    for key in added:
        os.environ.pop(key, None)
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    log.unlink(missing_ok=True)
    result = {
        "notebook": path.name, "title": title_of(nb), "sections": source_sections(nb),
        "seconds": seconds, "passed": sum(r["passed"] for r in rows),
        "failed": sum(not r["passed"] for r in rows), "error": _strip_ansi(error), "checks": rows,
    }
    if in_place:
        if not error:  # never store a half-run notebook
            nbformat.write(nb, path)
    else:
        from mediag.site import notebook_page

        nbformat.write(nb, out_dir / path.name)
        prev, nxt = neighbours or (None, None)
        notebook_page(nb, path.stem, out_dir, prev, nxt)
    return result


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def write_index(results: list[dict], out_dir: Path, wall: float | None = None, jobs: int | None = None) -> Path:
    """The course map and the rest of the site (landing pages, times.json, glossary, MathJax)."""
    from mediag.site import write_site

    return write_site(results, out_dir, wall=wall, jobs=jobs)


class Progress:
    """What `mediag run` shows while notebooks run. On a terminal: a status line redrawn every second with
    each running notebook's cell k of N and its time so far. Otherwise (piped, CI, tests): plain lines."""

    def __init__(self, total: int, live: bool | None = None, stream=None):
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.total, self.t0 = total, time.perf_counter()
        self.running: dict[str, list] = {}  # name -> [k, n, start]
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker = None
        if self.live:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()

    def _status(self) -> str:
        now = time.perf_counter()
        parts = [f"{name}: {f'cell {k}/{n}' if n else 'kernel starting'}, {now - start:.0f} s"
                 for name, (k, n, start) in self.running.items()]
        line = " | ".join(parts + [f"total {now - self.t0:.0f} s"])
        width = shutil.get_terminal_size((100, 20)).columns - 1
        return line if len(line) <= width else line[: width - 1] + "…"

    def _draw(self) -> None:
        self.stream.write("\r\x1b[K" + self._status())
        self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self.lock:
                self._draw()

    def say(self, line: str) -> None:
        with self.lock:
            if self.live:
                self.stream.write("\r\x1b[K")
            print(line, file=self.stream, flush=True)
            if self.live:
                self._draw()

    def started(self, i: int, name: str) -> None:
        self.running[name] = [0, 0, time.perf_counter()]
        self.say(f"[{i}/{self.total}] {name} ... (elapsed {time.perf_counter() - self.t0:.0f} s)")

    def cell(self, name: str, k: int, n: int) -> None:
        if name in self.running:
            self.running[name][:2] = [k, n]

    def finished(self, i: int, name: str, r: dict) -> None:
        self.running.pop(name, None)
        state = f"ERROR {r['error']}" if r["error"] else f"{r['passed']} checks passed, {r['failed']} failed"
        prefix = f"      {name}: " if self.total > 1 else "      "
        self.say(f"{prefix}{r['seconds']:.0f} s, {state}")

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self.stream.write("\r\x1b[K")
            self.stream.flush()


# Parallel runs: each notebook executes in a worker process (one kernel each); cell progress comes back
# through a queue that the main process's Progress reads.
_QUEUE = None


def _init_worker(queue) -> None:
    global _QUEUE
    _QUEUE = queue


def _execute_in_worker(path: Path, out_dir: Path, in_place: bool, timeout: int, params: dict,
                       neighbours: tuple) -> dict:
    def progress(k, n):
        if _QUEUE is not None:
            _QUEUE.put((path.name, k, n))

    return execute(path, out_dir, in_place, timeout, params, progress=progress, neighbours=neighbours)


def previous_times(out_dir: Path) -> dict[str, float]:
    """Seconds per notebook from the last run's times.json (build/, else the benchmark's copy): the
    longest notebooks start first, so the parallel run ends as early as possible."""
    for source in (out_dir / "times.json", ROOT / "benchmarks" / "make_run_times.json"):
        try:
            record = json.loads(source.read_text())
            return {n["notebook"]: float(n["seconds"]) for n in record["notebooks"] if n.get("seconds")}
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return {}


def _run_parallel(paths: list[Path], out_dir: Path, in_place: bool, timeout: int, values: dict, jobs: int,
                  links: list, show: Progress) -> list[dict]:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = multiprocessing.get_context("spawn")  # no fork of a process that has threads
    queue = ctx.Queue()
    known = previous_times(out_dir)
    order = sorted(range(len(paths)), key=lambda i: (-known.get(paths[i].name, float("inf")), i))
    results: list[dict | None] = [None] * len(paths)
    stop = threading.Event()

    def listen():
        while not stop.is_set():
            try:
                name, k, n = queue.get(timeout=0.2)
            except Exception:  # noqa: BLE001 - queue.Empty, or the queue closed at shutdown
                continue
            show.cell(name, k, n)

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker,
                                 initargs=(queue,)) as pool:
            pending, waiting = {}, list(order)
            while waiting or pending:
                while waiting and len(pending) < jobs:  # submit one per free worker, so "started" is true
                    i = waiting.pop(0)
                    show.started(i + 1, paths[i].name)
                    future = pool.submit(_execute_in_worker, paths[i], out_dir, in_place, timeout, values, links[i])
                    pending[future] = i
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    i = pending.pop(future)
                    try:
                        r = future.result()
                    except Exception as exc:  # noqa: BLE001 - a crashed worker is one notebook's error
                        r = {"notebook": paths[i].name, "title": "", "sections": "", "seconds": 0.0, "passed": 0,
                             "failed": 0, "error": f"{type(exc).__name__}: {exc}".splitlines()[0], "checks": []}
                    results[i] = r
                    show.finished(i + 1, paths[i].name, r)
    finally:
        stop.set()
        listener.join()
        queue.close()
    return results


def default_jobs(n_notebooks: int, in_place: bool) -> int:
    """One kernel per core (at most one per notebook); in place, one at a time unless --jobs says otherwise."""
    if in_place:
        return 1
    return max(1, min(os.cpu_count() or 1, n_notebooks))


def run_course(notebooks: list[str], out: str = "build", in_place: bool = False, timeout: int = 600,
               params: list[str] | None = None, jobs: int | None = None, live: bool | None = None) -> int:
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
        if jobs is not None and jobs < 1:
            raise ValueError(f"--jobs must be at least 1, not {jobs}")
        import nbformat

        stored = [nbformat.read(path, as_version=4) for path in paths]
        for path, nb in zip(paths, stored):  # every notebook is checked before the first kernel starts
            inject_params(nb, values, path.name)
    except ValueError as exc:
        print(f"mediag run: error: {exc}", file=sys.stderr)
        return 2
    from mediag.site import neighbours, short_title

    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [(p.stem, short_title(nb, p.stem)) for p, nb in zip(paths, stored)]
    links = [neighbours(names, i) for i in range(len(paths))]
    paths = [p.resolve() for p in paths]
    jobs = min(jobs or default_jobs(len(paths), in_place), len(paths)) or 1
    t0 = time.perf_counter()
    show = Progress(len(paths), live=live)
    kernel_defaults()
    # kernels forked from a server that has imported the libraries once (mediag.warmkernel)
    try:
        with WarmKernels([env for env in map(notebook_environ, stored) if env is not None]):
            if jobs == 1:
                results = []
                for i, path in enumerate(paths, 1):
                    show.started(i, path.name)
                    r = execute(path, out_dir, in_place, timeout, values, neighbours=links[i - 1],
                                progress=lambda k, n, name=path.name: show.cell(name, k, n))
                    show.finished(i, path.name, r)
                    results.append(r)
            else:
                results = _run_parallel(paths, out_dir, in_place, timeout, values, jobs, links, show)
    finally:
        show.close()
    wall = time.perf_counter() - t0
    if not in_place:
        index = write_index(results, out_dir, wall=wall, jobs=jobs)
        try:
            shown = index.relative_to(Path.cwd())
        except ValueError:
            shown = index
        print(f"\ncourse map: {shown} (run times also in {shown.parent / 'times.json'})")
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
          f"{len(bad)} notebooks with errors or failures, {wall:.0f} s"
          + (f" ({jobs} in parallel)" if jobs > 1 else ""))
    return 1 if bad else 0
