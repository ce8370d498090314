"""`mediag pipeline`: notebook 08's five steps end to end, with progress and an HTML report.

The steps themselves live in notebook 08 (exported to `mediag.scratch.diagnosis_pipeline`); this
module only runs them and writes the page:

    result = run(n=2000, seed=0, progress=print)     # the metrics and a few samples
    write_html(result, "pipeline-report")           # pipeline-report/index.html
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

#: metrics shown first on the page and on the terminal, in this order
HEADLINE = ("classifier_macro_auc", "report_macro_f1", "template_macro_f1", "report_side_accuracy",
            "report_zone_accuracy", "report_size_accuracy")


def check_out_dir(out) -> Path:
    """The output folder as a Path; ValueError (one line) if it is a file or holds a non-report index."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: is a file, not a folder; choose a folder name")
    index = out / "index.html"
    if index.exists() and "mediag pipeline" not in index.read_text(encoding="utf-8", errors="replace")[:2000]:
        raise ValueError(f"--out {out}: already holds an index.html not written by mediag pipeline; "
                         "choose another folder (nothing is overwritten)")
    return out


def check_n(n) -> None:
    """ValueError (one line) unless n is a number of films the pipeline can split and train on."""
    if not isinstance(n, int) or n < 60:
        raise ValueError(f"--n {n}: need at least 60 films so every split holds each finding; try --n 2000")


def run(n: int = 2000, seed: int = 0, progress=None, **kwargs) -> dict:
    """Seed everything, then run `run_pipeline` (see notebook 08). Returns its result dict."""
    check_n(n)
    from mediag.repro import setup

    setup(seed=seed)
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()                  # transformers' padding hints would bury the progress lines
    warnings.filterwarnings("ignore", message=".*attention_mask.*")
    from mediag.scratch.diagnosis_pipeline import run_pipeline

    return run_pipeline(n=n, seed=seed, progress=progress, **kwargs)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figures(result: dict) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from mediag.data.chest import FINDINGS

    figs = []
    fig, ax = plt.subplots(figsize=(6, 3.2))
    width = 0.38
    for k, (name, s) in enumerate(result["scores"].items()):
        ax.bar([i + (k - 0.5) * width for i in range(len(FINDINGS))], [s[f]["f1"] for f in FINDINGS], width, label=name)
    ax.set_xticks(range(len(FINDINGS)), FINDINGS)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("F1 (labeler vs truth)")
    ax.set_title("Generated reports: F1 per finding (test films)")
    ax.legend(loc="lower right")
    figs.append(("F1 per finding", _png(fig)))
    plt.close(fig)
    samples = result["samples"]
    if samples:
        fig, axes = plt.subplots(1, len(samples), figsize=(2.6 * len(samples), 2.9), squeeze=False)
        for j, (ax, s) in enumerate(zip(axes[0], samples)):
            ax.imshow(s["image"], cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"test film {j} (window 0-1)", fontsize=8)
            ax.set_xticks([]), ax.set_yticks([])
        figs.append(("Sample test films", _png(fig)))
        plt.close(fig)
    return figs


def write_html(result: dict, out) -> Path:
    """Write `out/index.html` (figures inlined) and `out/metrics.json`. Returns the index path."""
    out = check_out_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    m = result["metrics"]
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.3f}</td></tr>" if isinstance(v, float)
                   else f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in m.items())
    figs = "".join(f"<h2>{html.escape(t)}</h2><img alt='{html.escape(t)}' src='data:image/png;base64,{b}'>"
                   for t, b in _figures(result))
    samples = "".join(
        f"<h3>test film {j}</h3><table><tr><th>true</th><td><pre>{html.escape(s['true'])}</pre></td></tr>"
        f"<tr><th>prefix GPT-2</th><td><pre>{html.escape(s['generated'])}</pre></td></tr>"
        f"<tr><th>template</th><td><pre>{html.escape(s['template'])}</pre></td></tr></table>"
        for j, s in enumerate(result["samples"]))
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>mediag pipeline report</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{border:1px solid #ccc;"
        "padding:2px 8px;text-align:left;vertical-align:top}table{border-collapse:collapse}pre{margin:0;"
        "white-space:pre-wrap}</style></head><body>"
        "<h1>mediag pipeline: image → findings → report</h1>"
        "<p>Notebook 08's five steps on synthetic chest films (split by patient): preprocessing, the fixed "
        "§4.2 CNN, a GPT-2 trained on the training reports, a prefix-conditioned GPT-2 generating the reports, "
        "and the labeler's read-back compared with the ground truth.</p>"
        f"<h2>Metrics (test films)</h2><table>{rows}</table>{figs}<h2>Sample reports</h2>{samples}</body></html>")
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    (out / "metrics.json").write_text(json.dumps(m, indent=2) + "\n", encoding="utf-8")
    return index


def format_metrics(metrics: dict) -> str:
    """The headline metrics as aligned text lines."""
    keys = [k for k in HEADLINE if k in metrics] + [k for k in metrics if k not in HEADLINE]
    width = max(map(len, keys))
    return "\n".join(f"{k.ljust(width)}  {metrics[k]:.3f}" if isinstance(metrics[k], float)
                     else f"{k.ljust(width)}  {metrics[k]}" for k in keys)
