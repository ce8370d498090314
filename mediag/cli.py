"""The `mediag` command line. Every command has --help; bad input gives one line and a non-zero exit."""

from __future__ import annotations

import argparse
import json
import sys

from mediag import __version__


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit status 2 (never a traceback)."""


def cmd_env(args) -> int:
    from mediag.repro import environment

    info = environment()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key.ljust(width)}  {value}")
    return 0


def cmd_verify(args) -> int:
    if args.matrix is not None:
        from mediag.checks import write_coverage_matrix

        write_coverage_matrix(args.matrix)
        print(f"mediag verify: coverage matrix written to {args.matrix}")
        return 0
    from mediag.repro import setup

    seed = args.seed
    if seed is None:
        import secrets

        seed = secrets.randbelow(2**31)
    from mediag import checks

    try:
        checks.select(args.only)  # a bad or empty --only fails before the frameworks are set up
    except ValueError as exc:
        raise UserError(str(exc)) from None
    setup(seed=seed)
    report, errors = checks.run(seed, only=args.only)
    if args.json:
        rows = [
            {"check": r.name, "shape": r.shape, "max_abs_err": r.max_abs_err, "max_rel_err": r.max_rel_err,
             "tolerance": r.tolerance, "formula": r.formula, "direction": r.direction,
             "reference": list(r.reference or ()), "result": r.status}
            for r in report.rows
        ]
        print(json.dumps({"seed": seed, "only": args.only, "passed": report.n_passed, "failed": report.n_failed,
                          "rows": rows}, indent=2))
    else:
        print(f"mediag verify: seed {seed} (repeat with --seed {seed})")
        print(f"{report}\n\n{report.summary()}")  # every row, then one line per formula
        for title, message in errors:
            print(f"FAILED {title}: {message}", file=sys.stderr)
    return 1 if report.n_failed or errors or not report.rows else 0


def cmd_run(args) -> int:
    from mediag.runner import run_course

    return run_course(args.notebooks, out=args.out, in_place=args.in_place, timeout=args.timeout,
                      params=args.param, jobs=args.jobs)


def _deid_text(name: str, key: str | None = None) -> str:
    """A text of mediag.deid for the help (import deferred: the help of other commands stays fast)."""
    from mediag import deid

    value = getattr(deid, name)
    return value[key] if key else value


def cmd_deid(args) -> int:
    import os
    import secrets

    from mediag.deid import deidentify_tree

    salt = args.salt or os.environ.get("MEDIAG_DEID_SALT", "")
    if not salt:
        salt = secrets.token_hex(16)
        print("mediag deid: warning: no --salt (or MEDIAG_DEID_SALT) given; a random one was used and not kept, "
              "so UIDs and pseudonyms will not match another run", file=sys.stderr)

    def warn(message: str) -> None:
        print(f"mediag deid: warning: {message}", file=sys.stderr)

    try:
        result = deidentify_tree(args.input, args.output, salt, dates=args.dates, warn=warn,
                                 keep_names=args.keep_names, clean_descriptors=args.clean_descriptors,
                                 blank_pixels=args.blank_pixels)
    except (ValueError, FileExistsError) as exc:
        raise UserError(str(exc)) from None
    for rel, res in result.written:
        if res.burned_in:
            origin = "" if args.keep_names else f" (from {result.sources[rel]})"  # the operator's own terminal
            warn(f"{rel}{origin} may show identifying text in its pixels ({'; '.join(res.burned_in)}): "
                 "check it by eye")
    print(f"mediag deid: {len(result.written)} file(s) written to {args.output}, {len(result.skipped)} skipped; "
          f"audit log {result.log.name}")
    return 1 if result.skipped else 0


def cmd_pipeline(args) -> int:
    import time

    from mediag import pipeline

    try:
        out = pipeline.validate_out_dir(args.out)
        config = pipeline.PipelineConfig(n=args.n, seed=args.seed)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    t0 = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[{time.perf_counter() - t0:5.0f} s] {message}", file=sys.stderr, flush=True)

    result = pipeline.run(config, progress=progress)
    index = pipeline.write_html(result, out)
    progress(f"report written to {index}")
    if args.json:
        print(json.dumps(result["metrics"], indent=2))
    else:
        print(pipeline.format_metrics(result["metrics"]))
    return 0


def cmd_classify(args) -> int:
    import os

    from mediag.repro import setup

    if args.workers is not None and args.workers < 0:
        raise UserError(f"--workers must be an integer >= 0, got {args.workers}")
    workers = max(1, min(args.members, os.cpu_count() or 1)) if args.workers is None else args.workers
    setup(seed=args.seed, torch=False, tensorflow=workers == 0)       # workers import TensorFlow themselves
    from mediag.classify import ARRAY_KEYS, fit_and_score, format_result

    def progress(message: str) -> None:
        print(f"mediag classify: {message}", file=sys.stderr, flush=True)

    try:
        result = fit_and_score(args.npz, epochs=args.epochs, seed=args.seed, members=args.members, workers=workers,
                               threshold=args.threshold,
                               keep_models=False, progress=progress, progress_prefix="mediag classify: ")
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from None
    metrics = {k: v for k, v in result.items() if k not in ARRAY_KEYS}
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print(format_result(metrics))
    return 0


def _default_matrix_path():
    from pathlib import Path

    return Path(__file__).resolve().parents[1] / "docs" / "VERIFICATION.md"


def cmd_student(args) -> int:
    from mediag.student import EditionError, write_edition

    try:
        written = write_edition(args.out, args.notebooks or None)
    except EditionError as exc:
        raise UserError(str(exc)) from None
    print(f"mediag student: wrote {len(written)} student notebooks into {args.out}")
    return 0


def cmd_grade(args) -> int:
    from mediag.grade import GradeError, grade, write_gradebook

    if args.timeout <= 0 or (args.jobs is not None and args.jobs <= 0):
        raise UserError("--timeout and --jobs must be positive")
    try:
        results = grade(args.submissions, timeout=args.timeout, jobs=args.jobs)
    except GradeError as exc:
        raise UserError(str(exc)) from None
    if args.gradebook:
        write_gradebook(results, args.gradebook)
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
    else:
        for r in results:
            print(f"{r['submission']}: {r['score']}/{r['max_score']}" + (f"  ({r['message']})" if r["message"] else ""))
            for e in r["exercises"]:
                print(f"  {e['id']:>6}  {e['points']}/{e['max_points']}  {e['status']:<8} {e['message']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mediag", description="mediag: deep learning for medical image diagnosis, verified formula by formula."
    )
    parser.add_argument("--version", action="version", version=f"mediag {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("env", help="versions of Python and each framework, CPU and threads")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_env)

    p = sub.add_parser("verify", help="run every registered formula check on fresh random inputs")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--seed", type=int, default=None, help="seed for the random inputs (default: a new one)")
    p.add_argument("--only", default=None, metavar="PATTERN",
                   help="run only the checks whose title or formula matches PATTERN (a regular expression, any case), "
                        "e.g. --only LSTM or --only '§3.2.1'")
    p.add_argument("--matrix", nargs="?", const=str(_default_matrix_path()), default=None, metavar="FILE",
                   help="write the coverage matrix (formula x reference, forward and backward) generated from the "
                        "registry to FILE (default: docs/VERIFICATION.md of the repository) instead of running checks")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("run", help="execute the notebooks into build/ and write build/index.html")
    p.add_argument("notebooks", nargs="*", help="notebooks to run (default: all of notebooks/, in order)")
    p.add_argument("--out", default="build", help="output folder (default: build)")
    p.add_argument("--in-place", action="store_true",
                   help="store the outputs in the notebooks themselves (how maintainers refresh them)")
    p.add_argument("--timeout", type=int, default=600, help="seconds allowed for one cell (default: 600)")
    p.add_argument("-j", "--jobs", type=int, default=None,
                   help="notebooks run in parallel, one kernel each (default: one per CPU core; 1 with --in-place)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="run with another value of a name the notebook's parameters cell assigns, e.g. "
                        "-p DATASET=pneumoniamnist (repeatable; never with --in-place)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "deid", help="de-identify DICOM files (PS3.15 Annex E basic profile) into a new folder",
        description=(
            "De-identify a DICOM file or folder tree into a new folder: identifying attributes and private tags "
            "removed or replaced, UIDs remapped with a salt (consistent across files), dates shifted per patient,"
            " pixel data unchanged unless --blank-pixels. Output files are named from de-identified identifiers "
            "only (OUT/<pseudonym>/<new study UID>/<new instance UID>.dcm), since input folder and file names can"
            " identify a patient. Writes OUT/deid-audit.json (output names, attributes and actions, never a "
            "value). The input is never modified. The attribute table is the whole of PS3.15 Table E.1-1 (2026c, "
            "from the pinned package dicom-anonymizer). Not covered: faces in head CT/MR volumes, text in pixels "
            "outside --blank-pixels rectangles. Exit status: 0 all done, 1 some files skipped, 2 bad input."))
    p.add_argument("input", metavar="IN", help="a DICOM file or a folder (searched recursively)")
    p.add_argument("output", metavar="OUT", help="a new (or empty) folder, not inside IN")
    p.add_argument("--salt", default=None,
                   help="secret for UIDs, pseudonyms and date offsets; reuse it to keep links "
                        "(default: $MEDIAG_DEID_SALT)")
    p.add_argument("--dates", choices=("shift", "remove"), default="shift",
                   help="shift (default): the Retain Longitudinal Temporal Information With Modified Dates Option "
                        "of PS3.15 E.3.6, which says: \"" + _deid_text("MODIFIED_DATES_TEXT") + "\" Here: "
                        + _deid_text("DATES_HELP", "shift") + ". remove: " + _deid_text("DATES_HELP", "remove"))
    p.add_argument("--clean-descriptors", action="store_true",
                   help="Clean Descriptors Option: keep descriptions, comments and protocol names after dropping every "
                        "word that is not an anatomy, modality or technique word (names, dates, numbers, IDs); "
                        "default: removed, as Table E.1-1 says")
    p.add_argument("--blank-pixels", metavar="REGIONS", default=None,
                   help="Clean Pixel Data Option by region: blank rectangles 'x,y,width,height[;x,y,w,h...]' in every "
                        "file, or a JSON file of rules [{\"manufacturer\": ..., \"model\": ..., \"file\": ..., "
                        "\"rects\": \"x,y,w,h\"}] (per file or per manufacturer/model); recorded in the audit log. "
                        "Without it pixel data is never changed")
    p.add_argument("--keep-names", action="store_true",
                   help="keep the input's relative folder and file names in OUT and in the audit log (only if you "
                        "know they hold no names, IDs or accession numbers)")
    p.set_defaults(func=cmd_deid)

    p = sub.add_parser(
        "pipeline", help="notebook 08's pipeline end to end on synthetic films, with an HTML report",
        description="Generate synthetic chest films, train the CNN and the report GPT-2, generate a report per test "
                    "film, read it back with the labeler and score it; write DIR/index.html and DIR/metrics.json "
                    "and print the metrics (progress on stderr). Exit status: 0 done, 2 bad input.")
    p.add_argument("--out", default="pipeline-report", metavar="DIR", help="output folder (default: pipeline-report)")
    from mediag.pipeline import MIN_FILMS, PipelineConfig

    p.add_argument("--n", type=int, default=PipelineConfig.n,
                   help=f"number of synthetic films (default: {PipelineConfig.n}, at least {MIN_FILMS})")
    p.add_argument("--seed", type=int, default=PipelineConfig.seed,
                   help=f"seed for data and training (default: {PipelineConfig.seed})")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON (keys classifier_macro_auc, "
                   "report_macro_f1, ...)")
    p.set_defaults(func=cmd_pipeline)

    from mediag.classify import DEFAULTS as CLASSIFY_DEFAULTS

    p = sub.add_parser(
        "classify", help="train the course CNN on a MedMNIST .npz (default: the shipped PneumoniaMNIST) and print "
                         "its test metrics",
        description="Train the fixed §4.2 CNN on a MedMNIST-format .npz (binary, multi-class, ordinal or multi-label "
                    "labels; grey or RGB; sides above 64 px are area-resized to 64) with augmentation (shifts, "
                    "rotations, zooms, gain), class weights, snapshot averaging, test-time augmentation and an "
                    "ensemble of seeds; set the decision "
                    "threshold at the class-weighted network's balanced point p = 0.5 (or by Youden's J on validation) "
                    "and print test AUC, accuracy, sensitivity and specificity "
                    "(per class for multi-class and multi-label). Progress goes to stderr.")
    p.add_argument("--npz", default="pneumoniamnist", metavar="FILE",
                   help="a MedMNIST .npz (keys train/val/test _images and _labels), or a MedMNIST name read from "
                        "data/medmnist/ (default: pneumoniamnist, the real file shipped with the course)")
    p.add_argument("--epochs", type=int, default=CLASSIFY_DEFAULTS["epochs"],
                   help=f"training epochs per network (default: {CLASSIFY_DEFAULTS['epochs']})")
    p.add_argument("--members", type=int, default=CLASSIFY_DEFAULTS["members"],
                   help=f"networks in the ensemble, seeds SEED, SEED+1, ... (default: {CLASSIFY_DEFAULTS['members']})")
    p.add_argument("--seed", type=int, default=0, help="seed for weights and batches (default: 0)")
    p.add_argument("--threshold", choices=("balanced", "youden"), default=CLASSIFY_DEFAULTS["threshold"],
                   help="decision threshold: 'balanced' = p 0.5 after class weighting (the training prevalence "
                        "without), 'youden' = maximum of Youden's J on validation (default: "
                        f"{CLASSIFY_DEFAULTS['threshold']})")
    p.add_argument("--workers", type=int, default=None, help="worker processes training the networks (one thread and "
                   "TensorFlow's oneDNN kernels each; default: one per network, at most the number of CPUs; 0 trains "
                   "them one after the other in this process)")
    p.add_argument("--json", action="store_true", help="print one JSON object (keys test_auc, test_acc, ...) "
                   "instead of a table")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser(
        "student", help="write the student edition of the notebooks (solutions as stubs, no hidden tests)",
        description="Write the student edition of every course notebook (or of those named) into OUT: each graded "
                    "solution becomes a stub that raises NotImplementedError, its public check skips with a message "
                    "until the stub is written, hidden tests are left out, the solution and check outputs are cleared; "
                    "everything else keeps its outputs. OUT must be new or empty and outside notebooks/.")
    p.add_argument("out", metavar="OUT", help="a new (or empty) folder")
    p.add_argument("notebooks", nargs="*", help="notebooks to include (stem, file name or number; default: all)")
    p.set_defaults(func=cmd_student)

    p = sub.add_parser(
        "grade", help="grade submitted notebooks: run each in a fresh kernel, then public and hidden tests",
        description="Grade each SUBMISSION (a notebook, or a folder of them): it runs in a fresh kernel in a "
                    "temporary folder with a per-cell timeout, then each exercise's public and hidden tests from the "
                    "course's reference notebook run against its namespace. Exit status 0 when every submission was "
                    "graded (whatever the scores), 2 on bad arguments.")
    p.add_argument("submissions", nargs="+", metavar="SUBMISSION", help="notebook files or folders")
    p.add_argument("--json", action="store_true", help="print one JSON list, an object per submission")
    p.add_argument("--timeout", type=int, default=600,
                   help="seconds allowed for one cell (default: 600, as mediag run: 08's and 09's training cells "
                        "take minutes on 2 cores)")
    p.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: the CPU count)")
    p.add_argument("--gradebook", metavar="FILE.csv", help="also write a CSV: a row per submission, a column per "
                   "exercise and the total")
    p.set_defaults(func=cmd_grade)

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_usage(sys.stderr)
        print("mediag: error: a command is required (see mediag --help)", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except UserError as exc:
        print(f"mediag {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mediag: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
