"""Notebook 08's exported pipeline pieces (mediag.scratch.diagnosis_pipeline) and `mediag pipeline`.

Shapes and sizes here differ from the notebook's (odd image sizes, other sigmas, tiny models).
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from mediag.data.chest import FINDINGS
from mediag.data.reports import label_report
from mediag.scratch.diagnosis_pipeline import (
    TARGETS,
    build_prefix_lm,
    check_pipeline_pieces,
    check_prefix_loss,
    choose_thresholds,
    encode_reports,
    finding_targets,
    generate_with_prefix,
    input_stats,
    make_inputs,
    prefix_inputs,
    report_scores,
    source_prompt,
    template_report,
    train_prefix_lm,
)
from mediag.scratch.preprocessing import gaussian_blur, gaussian_kernel, gaussian_window  # notebook 02's

cv2 = pytest.importorskip("cv2")


@pytest.mark.parametrize("shape,sigma", [((23, 31), 2.0), ((40, 19), 0.8), ((33, 33), 1.7)])
def test_gaussian_blur_matches_opencv(shape, sigma):
    img = np.random.default_rng(3).random(shape)
    np.testing.assert_allclose(gaussian_blur(img, sigma), cv2.GaussianBlur(img, (0, 0), sigma), rtol=1e-10, atol=1e-13)


def test_gaussian_kernel_matches_opencv():
    for sigma in (0.7, 1.3, 2.0, 3.1):
        k = gaussian_kernel(sigma)
        np.testing.assert_allclose(k, cv2.getGaussianKernel(len(k), sigma)[:, 0], rtol=1e-12)
        assert len(k) % 2 == 1
    np.testing.assert_allclose(gaussian_kernel(1.5, 11), cv2.getGaussianKernel(11, 1.5)[:, 0], rtol=1e-12)


def test_ssim_window_is_the_kernel_in_2d():
    c = np.arange(11) - 5
    direct = np.exp(-(c[:, None] ** 2 + c[None, :] ** 2) / (2 * 1.5**2))
    np.testing.assert_allclose(gaussian_window(11, 1.5), direct / direct.sum(), rtol=1e-14, atol=1e-17)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
def test_gaussian_kernel_rejects_bad_sigma(bad):
    with pytest.raises(ValueError, match="sigma must be > 0"):
        gaussian_kernel(bad)


def test_gaussian_blur_errors():
    with pytest.raises(ValueError, match="one 2-D image"):
        gaussian_blur(np.zeros((2, 20, 20)), 1.0)
    with pytest.raises(ValueError, match="larger than"):
        gaussian_blur(np.zeros((5, 5)), 2.0)


def test_make_inputs_shapes_and_statistics():
    imgs = np.random.default_rng(0).random((7, 37, 29)).astype(np.float32)
    stats = input_stats(imgs[:5], sigma=1.5)
    x = make_inputs(imgs, stats)
    assert x.shape == (7, 37, 29, 2) and x.dtype == np.float32
    assert abs(x[:5, ..., 0].mean()) < 1e-5 and abs(x[:5, ..., 0].std() - 1) < 1e-4
    assert abs(x[:5, ..., 1].std() - 1) < 1e-4
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        make_inputs(imgs[0], stats)


def test_finding_targets_are_consistent():
    from mediag.data.chest import labels_of, sample_findings

    rng = np.random.default_rng(9)
    records = [sample_findings(rng) for _ in range(57)]
    y = finding_targets(records)
    assert y.shape == (57, len(TARGETS)) == (57, 16) and y.dtype == np.float32
    np.testing.assert_array_equal(y[:, :4], np.stack([labels_of(r) for r in records]))
    for k, name in enumerate(("nodule", "effusion", "pneumothorax")):
        present = y[:, 4 + 2 * k] + y[:, 5 + 2 * k]                 # right + left: exactly when present
        np.testing.assert_array_equal(present, y[:, FINDINGS.index(name)])
        right = [r[name] is not None and r[name]["side"] == "right" for r in records]
        np.testing.assert_array_equal(y[:, 4 + 2 * k], right)
    np.testing.assert_array_equal(y[:, 10:13].sum(1), y[:, 0])           # one zone exactly when a nodule
    np.testing.assert_array_equal(y[:, 13:16].sum(1), y[:, 1])           # one size exactly when an effusion
    for i, r in enumerate(records):
        if r["nodule"] is not None:
            assert TARGETS[10 + int(np.argmax(y[i, 10:13]))] == f"nodule_{r['nodule']['zone']}"
        if r["effusion"] is not None:
            assert TARGETS[13 + int(np.argmax(y[i, 13:16]))] == f"effusion_{r['effusion']['size']}"


def test_prefix_inputs_concatenates():
    f, p = np.ones((3, 5)), np.zeros((3, 2))
    x = prefix_inputs(f, p)
    assert x.shape == (3, 7) and x.dtype == np.float32 and x[:, :5].all() and not x[:, 5:].any()
    rng = np.random.default_rng(4)
    z = prefix_inputs(rng.normal(3, 5, (9, 4)), rng.random((9, 3)), train_rows=np.arange(6))
    np.testing.assert_allclose(z[:6].mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(z[:6].std(0), 1, atol=1e-4)


def _record(on, side="left"):
    return {"nodule": {"side": side, "zone": "upper", "diameter_mm": 12.0} if on[0] else None,
            "effusion": {"side": side, "size": "small"} if on[1] else None,
            "cardiomegaly": bool(on[2]), "pneumothorax": {"side": side} if on[3] else None}


def test_report_scores_matches_sklearn():
    from sklearn.metrics import precision_recall_fscore_support

    rng = np.random.default_rng(5)
    t, p = rng.random((53, 4)) < 0.3, rng.random((53, 4)) < 0.3
    s = report_scores([_record(r) for r in p], [_record(r) for r in t])
    ps, rs, fs, _ = precision_recall_fscore_support(t, p, zero_division=0)
    for k, f in enumerate(FINDINGS):
        assert s[f]["precision"] == pytest.approx(ps[k]) and s[f]["recall"] == pytest.approx(rs[k])
        assert s[f]["f1"] == pytest.approx(fs[k])
    assert s["macro_f1"] == pytest.approx(fs.mean())


def test_report_scores_attributes():
    truth = [_record([1, 1, 0, 1], "left"), _record([1, 0, 0, 0], "right")]
    pred = [_record([1, 1, 0, 1], "left"), _record([1, 0, 0, 0], "left")]
    s = report_scores(pred, truth)
    assert s["side_accuracy"] == pytest.approx(3 / 4)      # 3 of 4 true-positive findings with a side
    assert s["size_accuracy"] == 1.0 and s["zone_accuracy"] == 1.0
    assert np.isnan(report_scores([_record([0, 0, 1, 0])], [_record([0, 0, 1, 0])])["side_accuracy"])
    with pytest.raises(ValueError, match="one per image"):
        report_scores(pred, truth[:1])


def test_choose_thresholds_maximises_f1():
    rng = np.random.default_rng(2)
    y = rng.random((41, 3)) < 0.4
    probs = np.clip(y * 0.3 + rng.random((41, 3)) * 0.7, 0, 1)
    th = choose_thresholds(y, probs)
    for k in range(3):
        def f1(c, k=k):
            pred = probs[:, k] >= c
            return 2 * np.sum(pred & y[:, k]) / (pred.sum() + y[:, k].sum())
        assert f1(th[k]) == pytest.approx(max(f1(c) for c in probs[:, k]))
    with pytest.raises(ValueError, match=r"\(N, findings\)"):
        choose_thresholds(y, probs[:, :2])


def test_template_round_trips_through_the_labeler():
    for c in range(16):
        present = [(c >> k) & 1 for k in range(4)]
        read = label_report(template_report(present))
        assert [bool(read[f]) for f in FINDINGS] == [bool(v) for v in present]
    with pytest.raises(ValueError, match="one yes/no per finding"):
        template_report([1, 0])


def test_template_names_side_zone_and_size_from_the_probabilities():
    from mediag.data.chest import sample_findings

    rng = np.random.default_rng(21)
    for _ in range(40):
        record = sample_findings(rng)
        probs = finding_targets([record])[0] * 0.8 + 0.1             # confident and right about everything
        read = label_report(template_report(probs[:4] > 0.5, probs))
        for name in ("nodule", "effusion", "pneumothorax"):
            if record[name] is None:
                assert read[name] is None
                continue
            for attribute, value in record[name].items():
                if attribute != "diameter_mm":                      # the classifier does not measure it
                    assert read[name][attribute] == value, (name, attribute)
    with pytest.raises(ValueError, match="one value per target"):
        template_report([1, 0, 0, 0], np.zeros(4))


def test_source_prompt_is_literal():
    assert source_prompt(np.array([[0.5, 1.0]])) == "The feature of the image is: [[0.5 1. ]]"


def test_registered_checks_pass():
    for seed in (11, 12):
        check_pipeline_pieces(np.random.default_rng(seed))
        check_prefix_loss(np.random.default_rng(seed))


def test_registered_checks_name_formula_direction_and_reference():
    from mediag.verify import METADATA, REGISTRY

    mine = [title for title, fn in REGISTRY.items() if fn in (check_pipeline_pieces, check_prefix_loss)]
    assert len(mine) == 2
    for title in mine:
        meta = METADATA[title]
        assert meta["formula"] and meta["direction"] in ("forward", "backward") and meta["reference"], (title, meta)


@pytest.fixture(scope="module")
def tiny_tokenizer():
    from mediag.data.reports import report_corpus
    from mediag.scratch import train_report_tokenizer

    return train_report_tokenizer(report_corpus(40, seed=3), vocab_size=300)


def test_encode_reports_and_generate(tiny_tokenizer):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    texts = ["FINDINGS: No pneumothorax.\nIMPRESSION: Normal chest radiograph.", "FINDINGS: Cardiomegaly is present."]
    ids, mask = encode_reports(tiny_tokenizer, texts, max_len=83)
    assert ids.shape == mask.shape == (2, 83)
    n0 = len(tiny_tokenizer(texts[0])["input_ids"])
    assert mask[0].sum() == n0 + 1 and ids[0, n0] == tiny_tokenizer.eos_token_id
    assert tiny_tokenizer.decode(ids[0, :n0]) == texts[0]
    short, short_mask = encode_reports(tiny_tokenizer, texts, max_len=9)      # truncated, still ends with EOS
    assert short_mask.all() and (short[:, -1] == tiny_tokenizer.eos_token_id).all()
    torch.manual_seed(0)
    eos = tiny_tokenizer.eos_token_id
    lm = GPT2LMHeadModel(GPT2Config(vocab_size=len(tiny_tokenizer), n_positions=48, n_embd=16, n_layer=1, n_head=2,
                                    bos_token_id=eos, eos_token_id=eos, pad_token_id=eos))
    model = build_prefix_lm(lm, feature_dim=5, n_prefix=3, hidden=7).eval()
    out = generate_with_prefix(model, np.random.default_rng(0).random((3, 5)), tiny_tokenizer, max_new_tokens=6)
    assert len(out) == 3 and all(isinstance(t, str) for t in out)


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mediag.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_pipeline_rejects_tiny_n(tmp_path):
    result = _cli("pipeline", "--n", "10", "--out", str(tmp_path / "r"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "--n 10" in result.stderr
    assert not (tmp_path / "r").exists()


def test_cli_pipeline_rejects_a_file_as_out(tmp_path):
    f = tmp_path / "a_file"
    f.write_text("keep me")
    result = _cli("pipeline", "--out", str(f))
    assert result.returncode == 2 and "is a file" in result.stderr
    assert f.read_text() == "keep me"


def test_cli_pipeline_refuses_foreign_index(tmp_path):
    (tmp_path / "index.html").write_text("<html>my own page</html>")
    result = _cli("pipeline", "--out", str(tmp_path))
    assert result.returncode == 2 and "index.html" in result.stderr
    assert (tmp_path / "index.html").read_text() == "<html>my own page</html>"


def test_pipeline_end_to_end_small(tmp_path):
    """The whole pipeline on 120 films with token training budgets: it runs and writes the page."""
    from mediag import pipeline

    messages = []
    config = pipeline.PipelineConfig(n=120, seed=1, cnn_epochs=1, lm_steps=3, prefix_steps=3)
    result = pipeline.run(config, progress=messages.append, n_samples=2)
    m = result["metrics"]
    for key in ("classifier_macro_auc", "report_macro_f1", "template_macro_f1", "report_side_accuracy"):
        assert key in m
    assert 0 <= m["report_macro_f1"] <= 1 and m["n_train"] + m["n_val"] + m["n_test"] == 120
    assert any(msg.startswith("step 5") for msg in messages)
    index = pipeline.write_html(result, tmp_path / "out")
    assert "mediag pipeline" in index.read_text() and json.loads((tmp_path / "out" / "metrics.json").read_text())


def test_pipeline_config_holds_the_defaults_once():
    from mediag.cli import build_parser
    from mediag.pipeline import PipelineConfig, validate_n

    config = PipelineConfig()
    args = build_parser().parse_args(["pipeline"])
    assert (args.n, args.seed) == (config.n, config.seed)
    assert config.replace(n=500).n == 500 and config.n == PipelineConfig.n       # frozen: replace makes a copy
    with pytest.raises(ValueError, match="--n 10: need at least 60 films"):
        PipelineConfig(n=10)
    for bad in (True, 59, 60.0, "100"):
        with pytest.raises(ValueError):
            validate_n(bad)
    validate_n(np.int64(60))


def test_no_pipeline_code_in_scratch():
    import mediag.scratch.diagnosis_pipeline as scratch_module

    for name in ("run_pipeline", "pipeline_classifier", "pipeline_language_model", "pipeline_metrics"):
        assert not hasattr(scratch_module, name), name


def test_report_page_is_escaped_and_from_the_template(tmp_path):
    from mediag import pipeline

    result = {"metrics": {"report_macro_f1": 0.5, "n_test": 3}, "scores": {},
              "samples": [{"image": np.zeros((4, 4)), "true": "<b>true</b>", "generated": "a & b", "template": "t"}]}
    index = pipeline.write_html(result, tmp_path / "page")
    text = index.read_text()
    assert "&lt;b&gt;true&lt;/b&gt;" in text and "a &amp; b" in text and "<td>0.500</td>" in text
    assert "mediag pipeline" in text[:2000]                   # validate_out_dir recognises its own page
    pipeline.write_html(result, tmp_path / "page")


def test_train_prefix_lm_uses_train_lm_and_returns_every_loss():
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    lm = GPT2LMHeadModel(GPT2Config(vocab_size=11, n_positions=16, n_embd=8, n_layer=1, n_head=2))
    model = build_prefix_lm(lm, feature_dim=3, n_prefix=2, hidden=5)
    rng = np.random.default_rng(0)
    ids, mask = rng.integers(0, 11, (6, 7)), np.ones((6, 7), dtype=np.int64)
    losses = train_prefix_lm(model, rng.random((6, 3)), ids, mask, steps=4, batch_size=3, lr=1e-3, seed=0)
    assert len(losses) == 4 and all(np.isfinite(losses))
    with pytest.raises(ValueError, match="pair them one to one"):
        train_prefix_lm(model, rng.random((5, 3)), ids, mask, steps=1)


@pytest.mark.parametrize("chunks", [2, 3, 7, 50])
def test_prefix_batch_loss_in_pieces_is_the_whole_batch_loss(chunks):
    """Reports of different lengths, right-padded: any number of pieces gives the whole batch's mean loss over
    its report tokens (eval mode, so no dropout), and a piece never runs past its own longest report."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from mediag.scratch.diagnosis_pipeline import prefix_batch_loss

    torch.manual_seed(1)
    lm = GPT2LMHeadModel(GPT2Config(vocab_size=13, n_positions=32, n_embd=8, n_layer=1, n_head=2))
    model = build_prefix_lm(lm, feature_dim=3, n_prefix=2, hidden=5).eval()
    rng = np.random.default_rng(4)
    lengths = rng.integers(1, 20, size=7)
    mask = (np.arange(20)[None] < lengths[:, None]).astype(np.int64)
    ids = rng.integers(0, 13, (7, 20)) * mask
    batch = [torch.as_tensor(a) for a in (rng.random((7, 3)).astype(np.float32), ids, mask)]
    seen = []
    model.register_forward_pre_hook(lambda m, args: seen.append(tuple(args[1].shape)))
    with torch.no_grad():
        whole = model(batch[0], batch[1][:, :lengths.max()], batch[2][:, :lengths.max()]).item()
        seen.clear()
        pieces = prefix_batch_loss(model, *batch, chunks=chunks).item()
    np.testing.assert_allclose(pieces, whole, rtol=1e-5)
    assert len(seen) == min(chunks, 7) and sum(rows for rows, _ in seen) == 7
    assert sum(rows * width for rows, width in seen) < 7 * lengths.max()       # less padding than one piece
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="chunks must be an int >= 1"):
            prefix_batch_loss(model, *batch, chunks=bad)


def _train_as_notebook_08(config, data, control_prefix_seed=None):
    """Steps 2-4 trained as notebook 08's cells call the step functions (held-out perplexity included).

    With control_prefix_seed, also a control: the same CNN and report GPT-2 (a copy taken before step 4),
    with step 4's prefix drawn and trained from that seed. Returns the models, or (models, control).
    """
    import copy

    from mediag.pipeline import TrainedModels, build_prefix, build_report_lm, classifier_outputs, train_classifier
    from mediag.scratch import pack_blocks, train_lm, train_report_tokenizer

    train, val, reports = data.train, data.val, data.chest.reports
    cnn = train_classifier(config, data.X[train], data.Y[train])["model"]
    _, prefix_in = classifier_outputs(cnn, data)
    train_texts = [reports[i] for i in train]
    tokenizer = train_report_tokenizer(train_texts, vocab_size=config.vocab_size)
    lm = build_report_lm(config, tokenizer)
    train_lm(lm, pack_blocks(tokenizer, train_texts, config.lm_block), steps=config.lm_steps,
             batch_size=config.lm_batch, lr=config.lm_lr, seed=config.seed, eval_every=config.lm_steps,
             eval_blocks=pack_blocks(tokenizer, [reports[i] for i in val], config.lm_block))
    ids, mask = encode_reports(tokenizer, reports, max_len=160)
    lm_before_prefix = copy.deepcopy(lm)

    def step_4(prefix_config, report_lm):
        prefix_lm = build_prefix(prefix_config, report_lm, prefix_in.shape[1]).eval()
        train_prefix_lm(prefix_lm, prefix_in[train], ids[train], mask[train], steps=config.prefix_steps,
                        batch_size=config.prefix_batch, lr=config.prefix_lr, seed=config.seed,
                        chunks=config.prefix_chunks)
        return TrainedModels(cnn=cnn, tokenizer=tokenizer, prefix_lm=prefix_lm)

    models = step_4(config, lm)
    if control_prefix_seed is None:
        return models
    return models, step_4(config.replace(seed=control_prefix_seed), lm_before_prefix)


def _outcome(result):
    """Every metric but the time, and every generated and template report (n_samples covers all test films)."""
    m = {k: v for k, v in result["metrics"].items() if k != "seconds"}
    return m, [(s["generated"], s["template"]) for s in result["samples"]]


def test_run_pipeline_with_the_notebooks_models_equals_its_own_training():
    """Notebook 08 passes its cells' models to run_pipeline (no second training); this checks on a small
    configuration that run_pipeline's own training (train_models) gives the same models as the cells' calls:
    identical metrics and identical generated reports. The control (a prefix drawn with another seed) must differ,
    so a training that diverged (another seed, another step order) would fail this test."""
    from mediag import pipeline
    from mediag.repro import setup

    setup(seed=0, threads=1)
    config = pipeline.PipelineConfig(n=120, seed=3, cnn_epochs=1, lm_steps=20, prefix_steps=20)
    own = _outcome(pipeline.run_pipeline(config, n_samples=1000))
    data = pipeline.load_data(config)
    models, control_models = _train_as_notebook_08(config, data, control_prefix_seed=4)
    given = _outcome(pipeline.run_pipeline(config, n_samples=1000, models=models))
    assert len(given[1]) == len(data.test) >= 10
    assert list(given[0]) == list(own[0])
    np.testing.assert_array_equal(np.array(list(given[0].values())), np.array(list(own[0].values())))  # nan = nan
    assert given[1] == own[1]
    control = _outcome(pipeline.run_pipeline(config, n_samples=1000, models=control_models))
    assert control[1] != own[1], "the control trained differently but generated the same reports"
