"""`mediag pipeline`: notebook 08's five steps end to end, as an application of the package.

Notebook 08 teaches each step in its own cells, with the from-scratch pieces it exports to
`mediag.scratch.diagnosis_pipeline` (`make_inputs`, `build_prefix_lm`, `report_scores`, ...). This
module chains those pieces into one run, with one set of settings, `PipelineConfig`: notebook 08's
parameters cell, `mediag pipeline` and `benchmarks/bench_pipeline.py` all read their defaults from it.

    from mediag.pipeline import PipelineConfig, run, write_html
    result = run(PipelineConfig(n=500), progress=print)   # seeds, then run_pipeline: metrics and samples
    write_html(result, "pipeline-report")                # pipeline-report/index.html and metrics.json

`run_pipeline(config)` does the work without touching the process's seeds and threads: `load_data` (steps 0-1),
`train_models` (steps 2-4's training, skipped when `models=` holds already trained ones), then predictions,
generation and scoring. Notebook 08 calls `run_pipeline(CONFIG, models=TrainedModels(...))` with the models its
cells trained, to check that the package's data, preprocessing, generation and scoring give the numbers its cells
gave; tests/test_pipeline.py checks on a small configuration that `train_models` trains what the cells train.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: metrics shown first on the page and on the terminal, in this order
HEADLINE = ("classifier_macro_auc", "report_macro_f1", "template_macro_f1", "report_side_accuracy",
            "report_zone_accuracy", "report_size_accuracy")
#: the smallest number of films the pipeline accepts (each split must hold every finding)
MIN_FILMS = 60


@dataclass(frozen=True)
class PipelineConfig:
    """Every setting of the five steps, written once (notebook 08, the CLI and the benchmark read it).

    Data: `n` synthetic films of `size` x `size` pixels, split 70 / 15 / 15 % of patients with `seed`.
    Step 1: local-contrast channel = film minus its Gaussian blur of `sigma` pixels. Step 2: the §4.2 CNN
    with `cnn_filters` and `cnn_dense` units, `cnn_epochs` epochs of Adam(`cnn_lr`), batches of `cnn_batch`.
    Step 3: a byte-level BPE of `vocab_size` tokens and a GPT-2 of `lm_layers` layers, width `lm_width`,
    `lm_heads` heads, trained `lm_steps` steps on blocks of `lm_block` tokens. Step 4: `n_prefix` prefix
    embeddings from an MLP of `prefix_hidden` units, trained with the GPT-2 for `prefix_steps` steps, with the
    GPT-2's attention dropout set to `prefix_attention_dropout` for that stage (0: at this width, dropping
    attention probabilities is the costliest part of a step, see BENCHMARKS.md; residual dropout stays), each
    batch run in `prefix_chunks` length-sorted pieces (`prefix_batch_loss`: the same loss, less padding).
    """

    n: int = 2000
    size: int = 64
    seed: int = 0
    sigma: float = 2.0
    cnn_filters: tuple[int, int, int] = (16, 32, 32)
    cnn_dense: int = 64
    cnn_epochs: int = 4
    cnn_lr: float = 2e-3
    cnn_batch: int = 32
    vocab_size: int = 512
    lm_width: int = 64
    lm_layers: int = 2
    lm_heads: int = 4
    lm_block: int = 128
    lm_steps: int = 500
    lm_lr: float = 5e-3
    lm_batch: int = 16
    n_prefix: int = 4
    prefix_hidden: int = 128
    prefix_steps: int = 600
    prefix_lr: float = 3e-3
    prefix_batch: int = 32
    prefix_attention_dropout: float = 0.0
    prefix_chunks: int = 4

    def __post_init__(self):
        validate_n(self.n)

    def replace(self, **changes) -> PipelineConfig:
        """A copy with some settings changed (`dataclasses.replace`)."""
        return dataclasses.replace(self, **changes)


def validate_n(n) -> None:
    """ValueError (one line) unless n is a number of films the pipeline can split and train on."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < MIN_FILMS:
        raise ValueError(f"--n {n}: need at least {MIN_FILMS} films so every split holds each finding; "
                         f"try --n {PipelineConfig.n}")


def validate_out_dir(out) -> Path:
    """The output folder as a Path; ValueError (one line) if it is a file or holds a non-report index."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: is a file, not a folder; choose a folder name")
    index = out / "index.html"
    if index.exists() and "mediag pipeline" not in index.read_text(encoding="utf-8", errors="replace")[:2000]:
        raise ValueError(f"--out {out}: already holds an index.html not written by mediag pipeline; "
                         "choose another folder (nothing is overwritten)")
    return out


def train_classifier(config: PipelineConfig, x_train, y_train):
    """Step 2: the course's one CNN recipe (`mediag.classify.train_cnn`: notebook 03's fixed §4.2 CNN, Adam,
    binary cross-entropy, seeded with config.seed) with config's widths, epochs, rate and batch size.

    x_train: (N, H, W, C) float32 inputs; y_train: (N, K) 0/1 targets (multi-label). Returns train_cnn's dict
    ("model": the trained Keras model, "losses" per epoch, "seconds").
    """
    from mediag.classify import train_cnn

    return train_cnn(x_train, y_train, task="multi-label", epochs=config.cnn_epochs, seed=config.seed,
                     lr=config.cnn_lr, batch_size=config.cnn_batch, schedule="constant", filters=config.cnn_filters,
                     dense=config.cnn_dense)


def test_auc(y_true, probs) -> dict:
    """AUC per finding (scikit-learn's roc_auc_score): y_true (N, >= 4), probs (N, >= 4) in FINDINGS order.

    nan for a finding that the test films show always or never (AUC is undefined there).
    """
    from sklearn.metrics import roc_auc_score

    from mediag.data.chest import FINDINGS

    y_true = np.asarray(y_true)
    return {f: float(roc_auc_score(y_true[:, k], probs[:, k])) if 0 < y_true[:, k].sum() < len(y_true) else float("nan")
            for k, f in enumerate(FINDINGS)}


def build_report_lm(config: PipelineConfig, tokenizer):
    """Step 3's GPT-2 (random weights, torch seeded with config.seed): width, layers, heads from config."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    eos = tokenizer.eos_token_id
    torch.manual_seed(config.seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=1024, n_embd=config.lm_width,
                                      n_layer=config.lm_layers, n_head=config.lm_heads, bos_token_id=eos,
                                      eos_token_id=eos, pad_token_id=eos, loss_type="ForCausalLM"))


def set_attention_dropout(lm, p: float) -> None:
    """Set the dropout on the attention probabilities of every layer of `lm` (a transformers GPT-2) to p."""
    for module in lm.modules():
        if hasattr(module, "attn_dropout"):
            module.attn_dropout.p = p


def build_prefix(config: PipelineConfig, lm, feature_dim: int):
    """Step 4's prefix model around `lm` (notebook 08's `build_prefix_lm`), torch seeded with config.seed; sets
    the attention dropout of `lm` to config.prefix_attention_dropout (`set_attention_dropout`)."""
    import torch

    from mediag.scratch.diagnosis_pipeline import build_prefix_lm

    set_attention_dropout(lm, config.prefix_attention_dropout)
    torch.manual_seed(config.seed)
    return build_prefix_lm(lm, feature_dim, n_prefix=config.n_prefix, hidden=config.prefix_hidden)


def pipeline_metrics(sizes, auc, s_prefix, s_template) -> dict:
    """The flat metrics dict of run_pipeline (what `mediag pipeline --json` prints).

    sizes: (n_train, n_val, n_test); auc: {finding: test AUC}; s_prefix, s_template: report_scores of the
    prefix GPT-2's and the template's reports.
    """
    from mediag.data.chest import FINDINGS

    return {"n_train": sizes[0], "n_val": sizes[1], "n_test": sizes[2],
            "classifier_macro_auc": float(np.nanmean(list(auc.values()))),
            **{f"classifier_auc_{f}": a for f, a in auc.items()},
            "report_macro_f1": s_prefix["macro_f1"], **{f"report_f1_{f}": s_prefix[f]["f1"] for f in FINDINGS},
            "report_side_accuracy": s_prefix["side_accuracy"], "report_zone_accuracy": s_prefix["zone_accuracy"],
            "report_size_accuracy": s_prefix["size_accuracy"], "template_macro_f1": s_template["macro_f1"],
            **{f"template_{a}_accuracy": s_template[f"{a}_accuracy"] for a in ("side", "zone", "size")}}


@dataclass(eq=False)
class PipelineData:
    """Steps 0 and 1 of run_pipeline: the synthetic films, their split by patient and the network inputs.

    chest: `mediag.data.chest.generate`'s data set (images (N, H, W), records, reports, patient_ids); train, val,
    test: row indices (70 / 15 / 15 % of patients); X: (N, H, W, 2) float32 inputs (`make_inputs`, training
    statistics); Y: (N, 16) float32 targets in TARGETS order (`finding_targets`).
    """

    chest: object
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    X: np.ndarray
    Y: np.ndarray


@dataclass(eq=False)
class TrainedModels:
    """What steps 2-4 train, as notebook 08's cells hold it: pass it to `run_pipeline(config, models=...)`.

    cnn: the step-2 Keras classifier, inputs (N, H, W, 2) -> (N, 16) probabilities (`train_classifier`'s
    "model"); tokenizer: step 3's byte-level BPE (`train_report_tokenizer` on the training reports);
    prefix_lm: step 4's `build_prefix_lm` model, trained with `train_prefix_lm`; its `.lm` is step 3's report
    GPT-2 (trained on the reports, then further with the prefix), also reachable as `.lm`.
    """

    cnn: object
    tokenizer: object
    prefix_lm: object

    @property
    def lm(self):
        """The report GPT-2 inside prefix_lm (transformers GPT2LMHeadModel)."""
        return self.prefix_lm.lm


def load_data(config: PipelineConfig, progress=None) -> PipelineData:
    """Steps 0-1: generate config.n films (config.seed), split them by patient, preprocess, build X and Y."""
    from mediag.data.chest import generate, patient_split
    from mediag.scratch.diagnosis_pipeline import finding_targets, input_stats, make_inputs
    from mediag.scratch.preprocessing import preprocess

    say = progress or (lambda message: None)
    say(f"step 0: generating {config.n} synthetic films (seed {config.seed})")
    chest = generate(config.n, size=config.size, seed=config.seed)
    train, val, test = patient_split(chest.patient_ids, (0.7, 0.15, 0.15), seed=config.seed)
    say("step 1: preprocessing")
    pre = np.stack([preprocess(im) for im in chest.images])
    X, Y = make_inputs(pre, input_stats(pre[train], config.sigma)), finding_targets(chest.records)
    return PipelineData(chest, train, val, test, X, Y)


def classifier_outputs(cnn, data: PipelineData):
    """The CNN's probabilities (N, 16) on every film, and the prefix MLP's inputs (N, 64 + 16): the penultimate
    layer's feature and the probabilities, standardised with the training films (`prefix_inputs`)."""
    from mediag.scratch.diagnosis_pipeline import feature_model, prefix_inputs

    probs = cnn.predict(data.X, verbose=0)
    return probs, prefix_inputs(feature_model(cnn).predict(data.X, verbose=0), probs, data.train)


def train_models(config: PipelineConfig, data: PipelineData | None = None, progress=None) -> TrainedModels:
    """Steps 2-4's training, seeded from config.seed, with the step functions notebook 08's cells call:
    `train_classifier`, `train_report_tokenizer` + `build_report_lm` + `train_lm`, `build_prefix` +
    `train_prefix_lm`. data: `load_data(config)` (made here when None). Threads are the caller's.
    """
    from mediag.scratch.diagnosis_pipeline import encode_reports, train_prefix_lm
    from mediag.scratch.gpt_language_model import pack_blocks, train_lm, train_report_tokenizer

    say = progress or (lambda message: None)
    data = load_data(config, progress) if data is None else data
    train, reports = data.train, data.chest.reports
    say(f"step 2: training the CNN ({config.cnn_epochs} epochs on {len(train)} films)")
    cnn = train_classifier(config, data.X[train], data.Y[train])["model"]
    _, features = classifier_outputs(cnn, data)
    say(f"step 3: training the report GPT-2 ({config.lm_steps} steps)")
    texts = [reports[i] for i in train]
    tokenizer = train_report_tokenizer(texts, vocab_size=config.vocab_size)
    lm = build_report_lm(config, tokenizer)
    train_lm(lm, pack_blocks(tokenizer, texts, config.lm_block), steps=config.lm_steps, batch_size=config.lm_batch,
             lr=config.lm_lr, seed=config.seed)
    say(f"step 4: training the image prefix ({config.prefix_steps} steps)")
    model = build_prefix(config, lm, features.shape[1])
    ids, mask = encode_reports(tokenizer, reports)
    train_prefix_lm(model, features[train], ids[train], mask[train], steps=config.prefix_steps,
                    batch_size=config.prefix_batch, lr=config.prefix_lr, seed=config.seed,
                    chunks=config.prefix_chunks)
    return TrainedModels(cnn=cnn, tokenizer=tokenizer, prefix_lm=model)


def run_pipeline(config: PipelineConfig | None = None, progress=None, n_samples: int = 4,
                 models: TrainedModels | None = None) -> dict:
    """The five steps end to end on synthetic films, as notebook 08's cells run them.

    models: already trained models (`TrainedModels`, e.g. notebook 08's cells'); then steps 2-4's training is
    skipped and everything else runs as without it: data, preprocessing, the CNN's predictions and features,
    generation, templates, scoring. Without it, `train_models` trains them (seeded from config.seed).
    Returns {"metrics": flat dict (classifier_macro_auc, report_macro_f1, ..., seconds), "samples": the first
    n_samples test films with image (H, W), true, generated and template report, "scores": report_scores of
    the prefix GPT-2 and of the template}. Threads are the caller's.
    """
    from mediag.data.reports import label_report
    from mediag.scratch.diagnosis_pipeline import (
        choose_thresholds,
        generate_with_prefix,
        report_scores,
        template_reports,
    )

    config = config or PipelineConfig()
    say = progress or (lambda message: None)
    t_start = time.perf_counter()
    data = load_data(config, say)
    if models is None:
        models = train_models(config, data, say)
    else:
        say("steps 2-4: the given trained models (no training)")
    chest, val, test, Y = data.chest, data.val, data.test, data.Y
    probs, features = classifier_outputs(models.cnn, data)
    auc = test_auc(Y[test], probs[test])
    say(f"step 4: generating {len(test)} reports")
    generated = generate_with_prefix(models.prefix_lm, features[test], models.tokenizer)
    template = template_reports(probs[test], choose_thresholds(Y[val, :4], probs[val, :4]))
    say("step 5: evaluating the reports")
    truth = [chest.records[i] for i in test]
    s_prefix = report_scores([label_report(t) for t in generated], truth)
    s_template = report_scores([label_report(t) for t in template], truth)
    metrics = pipeline_metrics((len(data.train), len(val), len(test)), auc, s_prefix, s_template)
    metrics["seconds"] = time.perf_counter() - t_start
    samples = [{"image": chest.images[i], "true": chest.reports[i], "generated": generated[j], "template": template[j]}
               for j, i in enumerate(test[:n_samples])]
    return {"metrics": metrics, "samples": samples, "scores": {"prefix GPT-2": s_prefix, "template": s_template}}


def run(config: PipelineConfig | None = None, progress=None, threads: int = 2, n_samples: int = 4, **changes) -> dict:
    """Seed everything (`mediag.repro.setup`, `threads` threads), then `run_pipeline`.

    changes: PipelineConfig fields to override (e.g. n=500).
    """
    config = (config or PipelineConfig()).replace(**changes)
    from mediag.repro import setup

    setup(seed=config.seed, threads=threads, onednn=True)     # as notebook 08
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()                  # transformers' padding hints would bury the progress lines
    warnings.filterwarnings("ignore", message=".*attention_mask.*")
    return run_pipeline(config, progress=progress, n_samples=n_samples)


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
    ax.set_xlabel("finding")
    ax.set_ylabel("F1 (labeler vs truth)")
    ax.set_title("Generated reports: F1 per finding (test films)")
    if result["scores"]:
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
        fig.suptitle("Sample test films")
        figs.append(("Sample test films", _png(fig)))
        plt.close(fig)
    return figs


def write_html(result: dict, out) -> Path:
    """Write `out/index.html` (templates/pipeline/index.html.j2, figures inlined) and `out/metrics.json`.

    Returns the index path.
    """
    import jinja2

    out = validate_out_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
                             autoescape=True, keep_trailing_newline=True)
    metrics = [(k, f"{v:.3f}" if isinstance(v, float) else str(v)) for k, v in result["metrics"].items()]
    page = env.get_template("pipeline/index.html.j2").render(metrics=metrics, figures=_figures(result),
                                                             samples=result["samples"])
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    (out / "metrics.json").write_text(json.dumps(result["metrics"], indent=2) + "\n", encoding="utf-8")
    return index


def format_metrics(metrics: dict) -> str:
    """The headline metrics as aligned text lines."""
    keys = [k for k in HEADLINE if k in metrics] + [k for k in metrics if k not in HEADLINE]
    width = max(map(len, keys))
    return "\n".join(f"{k.ljust(width)}  {metrics[k]:.3f}" if isinstance(metrics[k], float)
                     else f"{k.ljust(width)}  {metrics[k]}" for k in keys)
