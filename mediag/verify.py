"""Verification: every claim of the course is an assertion that adds a row to a report.

    from mediag.verify import check, gradcheck, report
    check("softmax: NumPy vs PyTorch", ours, theirs)      # asserts, records a PASS row
    report()                  # a notebook's last cell: the summary (one row per group, failing rows in full)
    report(full=True)         # every row (also `mediag verify` and the course site)

PASS rule (one rule, stated in every summary). A row of `check` passes when its "max rel err" column is at
most `rtol` (CS231n's relative error, `rel_error`); only a check given an `atol` (values near zero, where a
relative error means nothing) passes instead when `|ours - reference| <= atol + rtol * |reference|`
everywhere. Each row also records `tol_ratio`, its error divided by the tolerance that decides it, so a
row passes exactly when `tol_ratio <= 1`.

`check` raises AssertionError when the two arrays disagree beyond the tolerance, after recording a
FAIL row, so a wrong formula stops the notebook and shows up in `make run`'s summary.

Checks that `mediag verify` should run on fresh random inputs are registered with
`@register_check("title")`; each is a function of one argument, a `numpy.random.Generator`.
This module imports nothing of the course: the exported modules in `mediag.scratch` import it to
register their checks, and `mediag.checks` imports them to run every check (`select`,
`run_registered` and `coverage_matrix` here work on whatever has been registered so far).
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

#: default tolerances by dtype, from the course guide (float64: 1e-10, float32: 1e-5 relative)
RTOL = {np.dtype("float64"): 1e-10, np.dtype("float32"): 1e-5}


def rel_error(x, y) -> float:
    """CS231n's relative error: max |x - y| / max(1e-8, |x| + |y|), elementwise, then the max."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y)), initial=0.0))


@dataclass
class Row:
    name: str
    shape: str
    max_abs_err: float
    max_rel_err: float
    tolerance: str
    passed: bool
    #: set by `run_registered` from the check's `register_check` metadata (None in a notebook's own rows)
    formula: str | None = None
    direction: str | None = None
    reference: tuple[str, ...] | None = None
    #: the error divided by the tolerance that decides PASS (max rel err / rtol, or with an atol
    #: max |ours - reference| / (atol + rtol * |reference|)); <= 1 exactly when the row passes.
    #: None for `check_true` and `claim` rows, which compare no arrays.
    tol_ratio: float | None = None

    @property
    def status(self) -> str:
        return "PASS" if self.passed else "FAIL"

    @property
    def rule(self) -> str:
        """What decides PASS: "rel" (max rel err <= rtol), "abs" (an atol was given) or "claim" (no arrays)."""
        if self.shape == "-":
            return "claim"
        return "abs" if " + " in self.tolerance else "rel"

    @property
    def has_metadata(self) -> bool:
        return self.reference is not None


class Report:
    """The rows recorded so far; shows as a summary in a notebook (`full=True`: every row) and as text in a terminal."""

    columns = ("check", "shape", "max abs err", "max rel err", "rtol + atol", "result")
    #: the columns of the summary: one row per group (see `group_of`)
    summary_columns = ("group", "checks", "worst max rel err", "worst error ÷ tolerance", "result")

    def __init__(self, rows: list[Row] | None = None, full: bool = False) -> None:
        self.rows: list[Row] = [] if rows is None else rows
        #: show every row in a notebook instead of the summary (`report(full=True)`)
        self.full = full

    def add(self, row: Row) -> None:
        self.rows.append(row)
        log = os.environ.get("MEDIAG_VERIFY_LOG")
        if log:  # `make run` collects every notebook's rows through this file
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(asdict(row)) + "\n")

    def clear(self) -> None:
        self.rows.clear()

    @property
    def n_passed(self) -> int:
        return sum(r.passed for r in self.rows)

    @property
    def n_failed(self) -> int:
        return sum(not r.passed for r in self.rows)

    #: extra columns when the rows come from registered checks (`mediag verify`)
    meta_columns = ("formula", "direction", "reference")

    def _with_metadata(self) -> bool:
        return any(r.has_metadata for r in self.rows)

    def _header(self):
        return (*self.columns[:-1], *self.meta_columns, self.columns[-1]) if self._with_metadata() else self.columns

    def _cells(self, rows=None):
        meta = self._with_metadata()
        for r in self.rows if rows is None else rows:
            cells = (r.name, r.shape, f"{r.max_abs_err:.1e}", f"{r.max_rel_err:.1e}", r.tolerance)
            if meta:
                cells += (r.formula or UNSPECIFIED, r.direction or UNSPECIFIED,
                          ", ".join(r.reference or ()) or UNSPECIFIED)
            yield (*cells, r.status)

    # -- the summary ---------------------------------------------------------------------------------

    def groups(self) -> list[dict]:
        """One dict per group (`group_of`), in order of first appearance.

        Keys: group, checks, failed, worst_rel (the largest max rel err over the group's rows whose PASS
        that column decides, None if there are none), worst_ratio (the largest error / tolerance over its
        array rows, None if there are none), result ("PASS" or "FAIL").
        """
        from collections import Counter

        keys = [group_of(r) for r in self.rows]
        checks, failed = Counter(keys), Counter(k for k, r in zip(keys, self.rows) if not r.passed)
        out = {k: {"group": k, "checks": checks[k], "failed": failed[k], "worst_rel": None, "worst_ratio": None}
               for k in checks}  # a Counter keeps the order of first appearance
        for key, r in zip(keys, self.rows):
            g = out[key]
            if r.rule == "rel":
                g["worst_rel"] = max(g["worst_rel"] or 0.0, r.max_rel_err)
            if r.tol_ratio is not None:
                g["worst_ratio"] = max(g["worst_ratio"] or 0.0, r.tol_ratio)
        for g in out.values():
            g["result"] = "FAIL" if g["failed"] else "PASS"
        return list(out.values())

    def worst_rel_err(self) -> float | None:
        """The largest max rel err over the rows whose PASS it decides (no atol, not a claim)."""
        errs = [r.max_rel_err for r in self.rows if r.rule == "rel"]
        return max(errs) if errs else None

    def _summary_cells(self):
        for g in self.groups():
            yield (g["group"], str(g["checks"]) + (f" ({g['failed']} failed)" if g["failed"] else ""),
                   _num(g["worst_rel"]), _num(g["worst_ratio"]), g["result"])

    def _counts(self) -> dict:
        n_abs = sum(r.rule == "abs" for r in self.rows)
        n_claim = sum(r.rule == "claim" for r in self.rows)
        return {"checks": len(self.rows), "passed": self.n_passed, "failed": self.n_failed,
                "n_rel": len(self.rows) - n_abs - n_claim, "n_abs": n_abs, "n_claim": n_claim,
                "worst_rel": _num(self.worst_rel_err())}

    def summary(self) -> str:
        """The summary as plain text: counts, the PASS rule, one line per group, every failing row in full."""
        c = self._counts()
        header = self.summary_columns
        rows = [header, *self._summary_cells()]
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
        lines = [" | ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "-+-".join("-" * w for w in widths))
        text = [f"{c['checks']} checks: {c['passed']} passed, {c['failed']} failed; worst max rel err "
                f"{c['worst_rel']} over the {c['n_rel']} rows it decides.", PASS_RULE, "", *lines]
        failing = [r for r in self.rows if not r.passed]
        if failing:
            text += ["", "Failing rows:", *(" | ".join(map(str, cells)) for cells in self._cells(failing))]
        return "\n".join(text)

    def __str__(self) -> str:
        header = self._header()
        rows = [header, *self._cells()]
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
        lines = [" | ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "-+-".join("-" * w for w in widths))
        lines.append(f"{self.n_passed} passed, {self.n_failed} failed")
        return "\n".join(lines)

    def __repr__(self) -> str:
        # Jupyter shows the HTML table; the plain-text form stays one line so outputs stay short.
        return f"verification report: {self.n_passed} passed, {self.n_failed} failed"

    def _repr_html_(self) -> str:
        if self.full:
            return _html_template("report.html.j2").render(header=self._header(), rows=list(self._cells()),
                                                           passed=self.n_passed, failed=self.n_failed)
        failing = [r for r in self.rows if not r.passed]
        return _html_template("summary.html.j2").render(
            header=self.summary_columns, groups=list(self._summary_cells()), rule=PASS_RULE, **self._counts(),
            fail_header=self._header(), failing=list(self._cells(failing)))


def _num(value: float | None) -> str:
    """An error for a table cell: 1.2e-07, or "-" where there is none (nbval's sanitizer masks the digits)."""
    return "-" if value is None else f"{value:.1e}"


#: the rule every summary states (see `check`)
PASS_RULE = ("PASS rule: a check passes when its max rel err (|x - y| / max(1e-8, |x| + |y|), the max over "
             "elements) is at most its rtol; a check given an atol (values near zero) passes when "
             "|ours - reference| <= atol + rtol * |reference| everywhere. Error ÷ tolerance <= 1 means PASS.")

#: (group, regular expression) tried in order on what a check's name compares with (the text after its
#: last " vs "); the first match names the group of a notebook's row
REFERENCE_GROUPS = (
    ("vs finite differences", r"finite diff|numerical"),
    ("vs transformers", r"transformers|gpt2lmheadmodel|hugging ?face|warpers|model\.generate"),
    ("vs TensorFlow / Keras", r"\btf\b|tensorflow|keras|gradienttape"),
    ("vs PyTorch", r"torch|autograd|\bf\.\w"),
    ("vs scikit-learn", r"sklearn|scikit-learn"),
    ("vs SciPy", r"scipy"),
    ("vs OpenCV", r"cv2|opencv"),
    ("vs scikit-image", r"skimage|scikit-image"),
    ("vs pydicom", r"pydicom"),
    ("vs loops", r"\bloops?\b"),
)


def group_of(row: Row) -> str:
    """The summary group of a row: its formula (registered checks), else an exercise, a claim, the reference
    it is compared with (`REFERENCE_GROUPS`), or "stated facts (check_true)" / "identities and properties"."""
    import re

    if row.formula:
        return row.formula
    name = row.name.strip()
    m = re.match(r"(?:ex\.?|exercise)\s*(\d+\.\d+)", name, re.IGNORECASE)
    if m:
        return f"exercise {m.group(1)}"
    if name.startswith("claim:"):
        return "claims in the prose (claim)"
    compared = re.split(r"\s+vs\.?\s+", name, flags=re.IGNORECASE)
    if len(compared) > 1:
        for group, pattern in REFERENCE_GROUPS:
            if re.search(pattern, compared[-1], re.IGNORECASE):
                return group
    if row.shape == "-":
        return "stated facts (check_true)"
    return "identities and properties"


def _html_template(name: str):
    """A template of templates/verify/, loaded once (jinja2 is imported only when a table is shown)."""
    if name not in _TEMPLATES:
        from pathlib import Path

        import jinja2

        folder = Path(__file__).resolve().parent / "templates" / "verify"
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)), autoescape=False,
                                 undefined=jinja2.StrictUndefined)
        env.filters["esc"] = lambda value: html.escape(str(value))
        _TEMPLATES[name] = env.get_template(name)
    return _TEMPLATES[name]


_TEMPLATES: dict = {}


#: what a row or the coverage matrix shows for a check registered without formula, direction or reference
UNSPECIFIED = "unspecified"

REPORT = Report()


def report(full: bool = False) -> Report:
    """The verification report of this process (a notebook's kernel, or `mediag verify`).

    In a notebook it shows as a summary (counts, the PASS rule, one row per group with its worst errors,
    every failing row in full); `full=True` shows every row. Both share the same rows.
    """
    return Report(REPORT.rows, full=True) if full else REPORT


def _shape_text(a: np.ndarray) -> str:
    return "scalar" if a.ndim == 0 else "×".join(str(n) for n in a.shape)


def _default_rtol(*arrays: np.ndarray) -> float:
    dtypes = [a.dtype for a in arrays if np.issubdtype(a.dtype, np.floating)]
    if not dtypes:
        return 0.0
    return max(RTOL.get(d, 1e-5) for d in dtypes)


def to_numpy(x) -> np.ndarray:
    """A NumPy array from a NumPy, PyTorch or TensorFlow value (detached, on the CPU)."""
    if hasattr(x, "detach"):  # torch.Tensor
        x = x.detach().cpu().numpy()
    elif hasattr(x, "numpy"):  # tf.Tensor, tf.Variable
        x = x.numpy()
    return np.asarray(x)


def _passes(ours: np.ndarray, reference: np.ndarray, rtol: float, atol: float) -> bool:
    """The PASS rule of `check` (see there). Elements that are exactly equal (infinities included) pass."""
    if atol:
        return bool(np.allclose(ours, reference, rtol=rtol, atol=atol, equal_nan=False))
    x, y = ours.astype(np.float64), reference.astype(np.float64)
    unequal = x != y  # NaN != NaN: a NaN never passes
    return rel_error(x[unequal], y[unequal]) <= rtol


def _tol_ratio(ours: np.ndarray, reference: np.ndarray, rtol: float, atol: float) -> float:
    """The error divided by the tolerance that decides `_passes` (<= 1 when it passes; inf for a NaN).

    Without an atol: max rel err / rtol over the unequal elements. With one: the largest
    |ours - reference| / (atol + rtol * |reference|) over the unequal elements.
    """
    x, y = ours.astype(np.float64), reference.astype(np.float64)
    unequal = x != y
    if not unequal.any():
        return 0.0
    x, y = x[unequal], y[unequal]
    if np.isnan(x).any() or np.isnan(y).any():
        return float("inf")
    with np.errstate(divide="ignore", invalid="ignore"):
        if atol:
            ratio = np.abs(x - y) / (atol + rtol * np.abs(y))
            return float(np.nan_to_num(ratio, nan=np.inf).max())
        return rel_error(x, y) / rtol if rtol else float("inf")


def check(name: str, ours, reference, rtol: float | None = None, atol: float = 0.0) -> None:
    """Assert `ours` equals `reference` within the tolerance and record a row.

    PASS rule. With `atol == 0` (the default) the row's "max rel err" column decides: PASS when
    `max rel err <= rtol`, the relative error being CS231n's `|x - y| / max(1e-8, |x| + |y|)` (`rel_error`).
    With `atol > 0` (for values that are near zero, where a relative error means nothing) an element
    passes when `|ours - reference| <= atol + rtol * |reference|` (NumPy's `allclose`), and the row passes
    when every element does; the tolerance column then reads "rtol + atol".
    `rtol` defaults to 1e-10 for float64 and 1e-5 for float32 (the looser of the two inputs).
    Integer and boolean arrays must match exactly. The row is in `report().rows`; nothing is
    returned, so a check as the last line of a cell prints nothing.
    """
    ours_a, ref_a = to_numpy(ours), to_numpy(reference)
    if ours_a.shape != ref_a.shape:
        row = Row(name, f"{_shape_text(ours_a)} vs {_shape_text(ref_a)}", np.inf, np.inf, "shape", False,
                  tol_ratio=np.inf)
        REPORT.add(row)
        raise AssertionError(f"{name}: shapes differ, {ours_a.shape} vs {ref_a.shape}")
    if rtol is None:
        rtol = _default_rtol(ours_a, ref_a)
    diff = np.abs(ours_a.astype(np.float64) - ref_a.astype(np.float64))
    max_abs = float(diff.max(initial=0.0))
    max_rel = rel_error(ours_a, ref_a)
    ok = _passes(ours_a, ref_a, rtol, atol)
    tol = f"{rtol:.0e}" + (f" + {atol:.0e}" if atol else "")
    row = Row(name, _shape_text(ours_a), max_abs, max_rel, tol, ok, tol_ratio=_tol_ratio(ours_a, ref_a, rtol, atol))
    REPORT.add(row)
    if not ok:
        rule = (f"|ours - reference| > {atol:.0e} + {rtol:.0e} * |reference| somewhere (max abs err {max_abs:.2e})"
                if atol else f"max rel err {max_rel:.2e} > rtol {rtol:.0e}")
        raise AssertionError(f"{name}: {rule} (shape {_shape_text(ours_a)})")


def check_true(name: str, condition: bool, detail: str = "") -> None:
    """Record and assert a claim that is not an array comparison (a bound, an inequality)."""
    ok = bool(condition)
    row = Row(name, "-", 0.0, 0.0, detail or "claim", ok)
    REPORT.add(row)
    if not ok:
        raise AssertionError(f"{name}: {detail or 'claim is false'}")


# -- claims: a measured number in a sentence -------------------------------------------------------


class Claim(str):
    """A sentence with its measured numbers filled in; shows as Markdown in a notebook."""

    def _repr_markdown_(self) -> str:
        return str(self)


def _bound_stated(template: str, bound: float) -> bool:
    forms = {f"{bound:g}", f"{bound:.2f}", f"{bound:.3f}", f"{bound * 100:g} %", f"{bound * 100:g}%",
             f"{bound * 100:g} per cent"}
    return any(form in template for form in forms)


def claim(sentence: str, /, *, at_least: dict | None = None, at_most: dict | None = None, **values) -> Claim:
    """Fill measured `values` into `sentence`, assert the bounds the sentence states, record a row.

        claim("Test AUC {auc:.3f}, above ResNet-18's 0.944.", auc=auc, at_least={"auc": 0.944})

    `sentence` is a `str.format` template over `values`. `at_least` / `at_most` map a value's name
    to the bound the sentence states: the bound must be written in the sentence itself (as `0.944`,
    or `90 %` for 0.9), so that prose and assertion cannot disagree. A value with no bound is still
    printed by code (never typed into markdown), which is what keeps prose from drifting. Returns the
    filled sentence, which a notebook shows as Markdown; the row's name is the template, so the
    verification table stays the same across CPUs while the measured values sit in its detail column.
    """
    at_least, at_most = dict(at_least or {}), dict(at_most or {})
    unknown = [k for k in {*at_least, *at_most} if k not in values]
    if unknown:
        raise ValueError(f"claim: bounds for {sorted(unknown)} but no such value in {sorted(values)}")
    for bound in (*at_least.values(), *at_most.values()):
        if not _bound_stated(sentence, float(bound)):
            raise ValueError(f"claim: the bound {bound:g} is not written in the sentence {sentence!r}")
    text = Claim(sentence.format(**values))
    failed = [f"{k} = {values[k]:.4g} < {b:g}" for k, b in at_least.items() if not values[k] >= b]
    failed += [f"{k} = {values[k]:.4g} > {b:g}" for k, b in at_most.items() if not values[k] <= b]
    bounds = [f"{k} ≥ {b:g}" for k, b in at_least.items()] + [f"{k} ≤ {b:g}" for k, b in at_most.items()]
    detail = ", ".join(bounds) or "printed by code"
    REPORT.add(Row(f"claim: {sentence}", "-", 0.0, 0.0, detail, not failed))
    if failed:
        raise AssertionError(f"claim false: {text} ({'; '.join(failed)})")
    return text


# -- numerical gradients ----------------------------------------------------------------------------


def numerical_gradient(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, upstream=None, h: float = 1e-6):
    """Central-difference gradient of `sum(f(x) * upstream)` with respect to `x`.

    `upstream` defaults to ones (the gradient of `f(x).sum()`), so f may return a scalar or an
    array. `x` is never modified: each probe perturbs a copy.
    """
    x = np.asarray(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[idx] += h
        minus[idx] -= h
        f_plus, f_minus = np.asarray(f(plus), dtype=np.float64), np.asarray(f(minus), dtype=np.float64)
        weight = 1.0 if upstream is None else np.asarray(upstream, dtype=np.float64)
        grad[idx] = np.sum((f_plus - f_minus) * weight) / (2 * h)
    return grad


def numerical_gradients(f: Callable[..., np.ndarray], arrays, upstream=None, h: float = 1e-6):
    """Central-difference gradients of `sum(f(*arrays) * upstream)` with respect to each array."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    grads = []
    for i in range(len(arrays)):

        def f_i(a_i, i=i):
            return f(*arrays[:i], a_i, *arrays[i + 1 :])

        grads.append(numerical_gradient(f_i, arrays[i], upstream=upstream, h=h))
    return grads


def gradcheck(name: str, f, analytic, arrays, upstream=None, h: float = 1e-6, rtol: float = 1e-6, atol: float = 1e-8):
    """Compare analytic gradients with central differences and record one row per input.

    `f(*arrays)` is the function, `analytic` the list of its gradients (same order as `arrays`),
    and `upstream` the array that multiplies f's output (ones if omitted). Finite differences in
    float64 agree to about 1e-7 relative, hence the looser default tolerance.
    """
    if isinstance(arrays, np.ndarray):
        arrays, analytic = [arrays], [analytic]
    numeric = numerical_gradients(f, arrays, upstream=upstream, h=h)
    for k, (a, n) in enumerate(zip(analytic, numeric)):
        label = name if len(numeric) == 1 else f"{name} [input {k}]"
        check(label, a, n, rtol=rtol, atol=atol)


# -- the registry behind `mediag verify` --------------------------------------------------------------

REGISTRY: dict[str, Callable[[np.random.Generator], None]] = {}


#: what a registered check compares against (issue 15): every check names one or more of these
REFERENCES = ("loops", "finite differences", "torch", "tf/keras", "transformers", "cv2", "pydicom",
              "sklearn", "scipy", "skimage", "formula")
DIRECTIONS = ("forward", "backward")

#: title -> {"formula": ..., "direction": ..., "reference": (...)}; filled by register_check
METADATA: dict[str, dict] = {}


def register_check(title: str, *, formula: str | None = None, direction: str | None = None,
                   reference: tuple[str, ...] | str | None = None):
    """Register a function `fn(rng)` that calls `check` on fresh random inputs, for `mediag verify`.

    `formula` names the equation (e.g. "§3.1.2 RNN"), `direction` is "forward" or "backward", and
    `reference` what the from-scratch code is compared with (names from REFERENCES).
    """
    if direction is not None and direction not in DIRECTIONS:
        raise ValueError(f"register_check({title!r}): direction must be one of {DIRECTIONS}, got {direction!r}")
    refs = (reference,) if isinstance(reference, str) else tuple(reference or ())
    bad = [r for r in refs if r not in REFERENCES]
    if bad:
        raise ValueError(f"register_check({title!r}): unknown reference {bad}; use names from {REFERENCES}")

    def decorate(fn):
        REGISTRY[title] = fn
        METADATA[title] = {"formula": formula, "direction": direction, "reference": refs}
        return fn

    return decorate


def metadata(title: str) -> dict:
    """The formula, direction and reference of a registered check (None / () where not given)."""
    return METADATA.get(title, {"formula": None, "direction": None, "reference": ()})


def select(pattern: str | None) -> list[str]:
    """Titles of the registered checks whose title or formula matches `pattern` (regex, any case).

    Raises ValueError for an invalid pattern or one that matches nothing. Only checks registered so
    far count: `mediag.checks.select` registers the course's first.
    """
    import re

    titles = list(REGISTRY)
    if pattern is None:
        return titles
    try:
        rx = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"--only {pattern!r} is not a valid regular expression ({exc})") from None
    chosen = [t for t in titles if rx.search(t) or rx.search(metadata(t)["formula"] or "")]
    if not chosen:
        raise ValueError(f"--only {pattern!r} matches no registered check (by title or formula); "
                         f"{len(titles)} are registered, see `mediag verify --matrix`")
    return chosen


def run_registered(seed: int | None = None, only: str | None = None) -> tuple[Report, list[tuple[str, str]]]:
    """Run the registered checks (`mediag.checks.run` registers the course's first).

    `only` (a regular expression) keeps the checks whose title or formula matches it. Every row a
    check records carries the check's formula, direction and reference. Returns the report and a
    list of (check title, error message) for checks that raised.
    """
    titles = select(only)
    REPORT.clear()
    errors = []
    seed_seq = np.random.SeedSequence(seed)
    for title, fn in REGISTRY.items():
        rng = np.random.default_rng(seed_seq.spawn(1)[0])  # spawned for every check: --only keeps seeds
        if title not in titles:
            continue
        start = len(REPORT.rows)
        try:
            fn(rng)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a reported row
            errors.append((title, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))
            if len(REPORT.rows) == start or REPORT.rows[-1].passed:
                REPORT.add(Row(title, "raised", np.inf, np.inf, "raised", False, tol_ratio=np.inf))
        meta = metadata(title)
        for row in REPORT.rows[start:]:
            row.formula, row.direction, row.reference = meta["formula"], meta["direction"], tuple(meta["reference"])
    return REPORT, errors


# -- the coverage matrix (docs/VERIFICATION.md) ---------------------------------------------------------

#: the frameworks every formula should be checked against, in both directions where it has a backward
FRAMEWORKS = ("torch", "tf/keras")


def coverage_matrix() -> str:
    """Markdown: formula x reference, forward and backward, from the registry (never typed by hand).

    A cell names how many registered checks compare that formula, in that direction, with that
    reference. A formula that has a row in one direction but lacks PyTorch or TensorFlow/Keras there
    shows **gap** in that column; checks registered without metadata are grouped as "unspecified".
    Covers the checks registered so far (`mediag.checks.coverage_matrix` registers the course's first).
    """
    cover: dict[tuple[str, str], dict[str, list[str]]] = {}
    for title in REGISTRY:
        meta = metadata(title)
        key = (meta["formula"] or UNSPECIFIED, meta["direction"] or UNSPECIFIED)
        refs = meta["reference"] or (UNSPECIFIED,)
        for ref in refs:
            cover.setdefault(key, {}).setdefault(ref, []).append(title)
        cover.setdefault(key, {})
    used = {ref for refs in cover.values() for ref in refs}
    columns = [r for r in REFERENCES if r in used or r in FRAMEWORKS] + ([UNSPECIFIED] if UNSPECIFIED in used else [])

    def order(key):
        formula, direction = key
        return (formula == UNSPECIFIED, formula, DIRECTIONS.index(direction) if direction in DIRECTIONS else 9)

    gaps = 0
    lines = ["| formula | direction | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for key in sorted(cover, key=order):
        cells = []
        for ref in columns:
            n = len(cover[key].get(ref, []))
            if n:
                cells.append("✓" if n == 1 else f"✓ ×{n}")
            elif ref in FRAMEWORKS and key[0] != UNSPECIFIED:
                cells.append("**gap**")
                gaps += 1
            else:
                cells.append("")
        lines.append(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")
    checks = ["| registered check | formula | direction | reference |", "|---|---|---|---|"]
    for title in REGISTRY:
        meta = metadata(title)
        checks.append(f"| {title.replace('|', '/')} | {meta['formula'] or UNSPECIFIED} | "
                      f"{meta['direction'] or UNSPECIFIED} | {', '.join(meta['reference']) or UNSPECIFIED} |")
    n_unspecified = sum(1 for t in REGISTRY if not metadata(t)["reference"])
    return "\n".join([
        "# 验证覆盖 Verification coverage",
        "",
        "Generated by `mediag verify --matrix` from the checks registered with `register_check` in the",
        "notebooks' exported code; do not edit by hand. `mediag verify` runs every check on fresh random",
        "inputs (`--only PATTERN` runs those whose title or formula matches).",
        "",
        f"{len(REGISTRY)} registered checks; {n_unspecified} without metadata (\"unspecified\"); "
        f"{gaps} framework gaps.",
        "",
        "## 公式 × 参照 Formula × reference",
        "",
        "✓: a registered check compares the from-scratch code with this reference in this direction (×n:",
        "n checks). **gap**: the formula has checks in this direction, but none against this framework.",
        "",
        *lines,
        "",
        "## 已注册的检查 Registered checks",
        "",
        *checks,
        "",
    ])


def write_coverage_matrix(path) -> str:
    """Write `coverage_matrix()` to `path` (a str or Path) and return the text."""
    from pathlib import Path

    text = coverage_matrix()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return text
