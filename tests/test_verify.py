"""The verification harness must fail when a claim is false, not only pass when it is true."""

import html

import numpy as np
import pytest

from mediag import verify


def test_rel_error_matches_definition():
    x, y = np.array([1.0, 2.0]), np.array([1.0, 2.2])
    assert verify.rel_error(x, y) == pytest.approx(0.2 / 4.2)


def test_check_passes_and_records_row():
    before = len(verify.report().rows)
    verify.check("identical", np.ones(3), np.ones(3))
    row = verify.report().rows[-1]
    assert row.passed and row.status == "PASS" and row.name == "identical"
    assert len(verify.report().rows) == before + 1


def test_check_fails_and_records_fail_row():
    with pytest.raises(AssertionError):
        verify.check("wrong", np.array([1.0, 2.0]), np.array([1.0, 2.1]))
    assert verify.report().rows[-1].status == "FAIL"


def test_check_rejects_shape_mismatch():
    with pytest.raises(AssertionError, match="shapes differ"):
        verify.check("shapes", np.ones(3), np.ones(4))


def test_float32_default_tolerance_is_looser():
    a = np.float32([1.0, 2.0])
    verify.check("float32", a, a * (1 + 1e-6))
    with pytest.raises(AssertionError):
        verify.check("float64 strict", a.astype(np.float64), a.astype(np.float64) * (1 + 1e-6))


def test_check_true_raises_on_false_claim():
    verify.check_true("true claim", 1 < 2)
    with pytest.raises(AssertionError):
        verify.check_true("false claim", 2 < 1, "2 < 1")


def test_numerical_gradient_of_known_function_and_input_untouched():
    x = np.array([[0.5, -1.0], [2.0, 3.0]])
    x_before = x.copy()
    g = verify.numerical_gradient(lambda a: np.sum(a**3), x)
    np.testing.assert_allclose(g, 3 * x**2, rtol=1e-8)
    np.testing.assert_array_equal(x, x_before)


def test_numerical_gradients_with_upstream():
    a, b = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    up = np.array([0.5, 2.0])
    ga, gb = verify.numerical_gradients(lambda a, b: a * b, [a, b], upstream=up)
    np.testing.assert_allclose(ga, b * up, rtol=1e-8)
    np.testing.assert_allclose(gb, a * up, rtol=1e-8)


def test_gradcheck_catches_a_wrong_gradient():
    x = np.array([0.3, -0.7])
    verify.gradcheck("right", lambda a: np.sum(np.sin(a)), [np.cos(x)], [x])
    with pytest.raises(AssertionError):
        verify.gradcheck("wrong", lambda a: np.sum(np.sin(a)), [np.sin(x)], [x])


def test_report_renders_text_and_html():
    rep = verify.Report()
    rep.add(verify.Row("a", "2×2", 1e-17, 1e-16, "1e-10", True))
    rep.add(verify.Row("b", "2×2", 1.0, 0.5, "1e-10", False))
    text = str(rep)
    assert "PASS" in text and "FAIL" in text and "1 passed, 1 failed" in text
    assert "<table>" in rep._repr_html_()


def test_to_numpy_reads_framework_tensors():
    import torch

    t = torch.ones(2, requires_grad=True)
    np.testing.assert_array_equal(verify.to_numpy(t * 2), [2.0, 2.0])


# -- the registry: metadata in every row, --only, the coverage matrix ---------------------------------


def test_register_check_rejects_unknown_reference_and_direction():
    with pytest.raises(ValueError, match="reference"):
        verify.register_check("bad ref", formula="f", direction="forward", reference=("numpyish",))
    with pytest.raises(ValueError, match="direction"):
        verify.register_check("bad dir", formula="f", direction="sideways", reference=("torch",))


def test_rows_of_a_registered_check_carry_its_metadata():
    title = "test-only check: identity against itself"

    @verify.register_check(title, formula="test formula", direction="backward", reference=("torch", "tf/keras"))
    def _fn(rng):
        verify.check("identity", np.ones(2), np.ones(2))

    try:
        rep, errors = verify.run_registered(seed=0, only="^test-only check")
        assert not errors and [r.name for r in rep.rows] == ["identity"]
        row = rep.rows[0]
        assert (row.formula, row.direction, row.reference) == ("test formula", "backward", ("torch", "tf/keras"))
        assert "test formula" in str(rep) and "torch, tf/keras" in str(rep)
        rep_f, _ = verify.run_registered(seed=0, only="TEST FORMULA")  # by formula, any case
        assert [r.name for r in rep_f.rows] == ["identity"]
    finally:
        verify.REGISTRY.pop(title), verify.METADATA.pop(title)


def test_a_check_without_metadata_shows_unspecified():
    title = "test-only check without metadata"
    verify.register_check(title)(lambda rng: verify.check("same", 1.0, 1.0))
    try:
        rep, _ = verify.run_registered(seed=0, only="^test-only check without")
        assert rep.rows[0].formula is None and verify.UNSPECIFIED in str(rep)
        assert f"| {title} | unspecified | unspecified | unspecified |" in verify.coverage_matrix()
    finally:
        verify.REGISTRY.pop(title), verify.METADATA.pop(title)


def test_only_matching_nothing_is_a_one_line_error(capsys):
    from mediag.cli import main

    assert main(["verify", "--only", "no such check anywhere"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "matches no registered check" in err
    assert main(["verify", "--only", "("]) == 2


def test_notebook_tables_keep_their_columns():
    rep = verify.Report()
    rep.add(verify.Row("a", "2×2", 0.0, 0.0, "1e-10", True))
    assert "formula" not in str(rep) and "formula" not in rep._repr_html_()


def test_coverage_matrix_marks_gaps():
    title = "test-only forward check against torch alone"
    verify.register_check(title, formula="zz test formula", direction="forward", reference="torch")(lambda rng: None)
    try:
        row = [ln for ln in verify.coverage_matrix().splitlines() if ln.startswith("| zz test formula | forward |")]
        assert len(row) == 1 and "✓" in row[0] and "**gap**" in row[0]  # torch yes, tf/keras missing
    finally:
        verify.REGISTRY.pop(title), verify.METADATA.pop(title)


def test_committed_coverage_matrix_is_the_generated_one():
    from pathlib import Path

    committed = Path(__file__).resolve().parents[1] / "docs" / "VERIFICATION.md"
    from mediag import checks

    assert committed.read_text(encoding="utf-8") == checks.coverage_matrix(), (
        "docs/VERIFICATION.md is stale: regenerate it with `mediag verify --matrix` (after `make export`)")


def test_relative_error_column_decides_pass_when_atol_is_zero():
    ref = np.array([1.0, 2.0, 1e-3])
    ours = ref * (1 + np.array([0.0, 0.0, 1.5e-10]))  # rel err about 7.5e-11: within 1e-10, as the column says
    verify.check("rel err within rtol", ours, ref)
    row = verify.report().rows[-1]
    assert row.passed and row.max_rel_err <= 1e-10
    with pytest.raises(AssertionError, match="max rel err .* > rtol 1e-10"):
        verify.check("rel err beyond rtol", ref * (1 + 3e-10), ref)
    row = verify.report().rows[-1]
    assert not row.passed and row.max_rel_err > 1e-10


def test_atol_keeps_allclose_semantics_and_equal_infinities_pass():
    verify.check("near zero with atol", np.array([1e-12, 1.0]), np.array([0.0, 1.0]), atol=1e-10)
    with pytest.raises(AssertionError, match=r"\|ours - reference\|"):
        verify.check("beyond atol", np.array([1e-9, 1.0]), np.array([0.0, 1.0]), atol=1e-10)
    verify.check("masked logits", np.array([-np.inf, 0.5]), np.array([-np.inf, 0.5]))
    with pytest.raises(AssertionError):
        verify.check("nan never passes", np.array([np.nan]), np.array([np.nan]))


def test_full_html_table_is_byte_for_byte_what_report_full_shows():
    rep = verify.Report(full=True)
    rep.add(verify.Row("claim: ResNet-18's \"0.944\" <b>", "-", 0.0, 0.0, "auc ≥ 0.944", True))
    assert rep._repr_html_() == (
        "<table><tr><th>check</th><th>shape</th><th>max abs err</th><th>max rel err</th><th>rtol + atol</th>"
        "<th>result</th></tr><tr><td>claim: ResNet-18&#x27;s &quot;0.944&quot; &lt;b&gt;</td><td>-</td>"
        "<td>0.0e+00</td><td>0.0e+00</td><td>auc ≥ 0.944</td><td><b>PASS</b></td></tr></table>"
        "<p>1 passed, 0 failed</p>")


# -- the summary a notebook's last cell shows (issue 18: outputs under 6000 characters) ---------------


def _many_rows(n=150, fail=()):
    """n rows like a long notebook's: references, exercises, claims, facts, atol rows; `fail` indexes fail."""
    names = ["softmax: NumPy vs torch.softmax", "BPTT dL/dW_hh vs tf.GradientTape (keras SimpleRNN)",
             "gpt2_forward vs GPT2LMHeadModel logits", "lm_loss_grad vs finite differences",
             "cross-entropy: vectorised vs loops", "d loss / d h.0.attn.c_attn.weight",
             "ex 07.{k} hidden: a long description of a hidden test with its sizes and seeds",
             "claim: With a held-out perplexity of {{ppl:.2f}}, the model finds the true side more likely"]
    rep = verify.Report()
    for i in range(n):
        name = names[i % len(names)].format(k=i % 5 + 1) + f" #{i}"
        ok = i not in fail
        if name.startswith("claim"):
            rep.add(verify.Row(name, "-", 0.0, 0.0, "ppl ≤ 5", ok))
        elif i % 3 == 0:
            rep.add(verify.Row(name, "4×5", 1e-9, 0.3, "1e-06 + 1e-08", ok, tol_ratio=0.5 if ok else 3.0))
        else:
            rep.add(verify.Row(name, "4×5", 1e-16, 1e-16 * (i + 1), "1e-10", ok, tol_ratio=1e-6 if ok else 2.0))
    return rep


def test_summary_of_150_checks_stays_well_under_6000_characters():
    rep = _many_rows(150)
    html_out, text_out = rep._repr_html_(), repr(rep)
    assert len(html_out) + len(text_out) < 3000, len(html_out)
    assert "150 checks: 150 passed, 0 failed." in html_out and html.escape(verify.PASS_RULE) in html_out
    groups = {g["group"] for g in rep.groups()}
    assert {"vs PyTorch", "vs TensorFlow / Keras", "vs transformers", "vs finite differences", "vs loops",
            "identities and properties", "claims in the prose (claim)"} <= groups
    assert {f"exercise 07.{k}" for k in range(1, 6)} <= groups
    assert sum(g["checks"] for g in rep.groups()) == 150
    # the worst max rel err is over the rows it decides (no atol): 1e-16 * 150, not the atol rows' 0.3
    assert rep.worst_rel_err() == pytest.approx(1.5e-14)
    assert "<td>1.5e-14</td>" in html_out and "#1 " not in html_out  # no passing row is listed


def test_summary_lists_every_failing_row_in_full():
    rep = _many_rows(150, fail=(4, 9, 12))
    html_out = rep._repr_html_()
    assert "150 checks: 147 passed, 3 failed." in html_out and "Failing rows" in html_out
    for i in (4, 9, 12):
        row = rep.rows[i]
        assert f"<td>{row.name}</td><td>{row.shape}</td>" in html_out
    assert html_out.count("<b>FAIL</b>") == 3 + len({verify.group_of(rep.rows[i]) for i in (4, 9, 12)})
    assert len(html_out) < 6000
    assert "Failing rows:" in rep.summary() and rep.rows[9].name in rep.summary()


def test_report_full_shows_every_row_and_shares_the_rows():
    before = len(verify.report().rows)
    verify.check("shared row", np.ones(2), np.ones(2))
    full = verify.report(full=True)
    assert full.rows is verify.report().rows and len(full.rows) == before + 1
    assert "<td>shared row</td>" in full._repr_html_()
    assert "<td>shared row</td>" not in verify.report()._repr_html_()  # the summary groups it


def test_group_of_reads_formula_exercise_claim_and_reference():
    def g(name, shape="2", formula=None):
        return verify.group_of(verify.Row(name, shape, 0.0, 0.0, "1e-10", True, formula=formula))

    assert g("anything vs torch", formula="§3.1.2 RNN") == "§3.1.2 RNN"  # registered: its formula
    assert g("exercise 00.4 (hidden): its gradient") == "exercise 00.4"
    assert g("ex. 10.2 hidden: prevalence 0.625") == "exercise 10.2"
    assert g("claim: AUC {auc:.3f}", shape="-") == "claims in the prose (claim)"
    assert g("RNN forward: NumPy vs keras SimpleRNN (all h_t)") == "vs TensorFlow / Keras"
    assert g("Keras 3 GPT-2 logits vs transformers") == "vs transformers"  # what it is compared WITH
    assert g("d loss / d h.0.ln_1.weight vs torch autograd") == "vs PyTorch"
    assert g("encoder backward (pre-norm) vs finite diff.") == "vs finite differences"
    assert g("tanh never exceeds linear", shape="-") == "stated facts (check_true)"
    assert g("perplexity = exp(mean loss)") == "identities and properties"


def test_tol_ratio_is_at_most_one_exactly_when_the_row_passes():
    ref = np.array([1.0, -2.0, 1e-3])
    verify.check("rel rule, inside", ref * (1 + 5e-11), ref)
    row = verify.report().rows[-1]
    assert row.rule == "rel" and row.passed and row.tol_ratio <= 1
    assert row.tol_ratio == pytest.approx(row.max_rel_err / 1e-10, rel=1e-6)  # the column that decides
    with pytest.raises(AssertionError):
        verify.check("rel rule, outside", ref * (1 + 3e-10), ref)
    row = verify.report().rows[-1]
    assert not row.passed and row.tol_ratio > 1 and row.max_rel_err > 1e-10
    verify.check("abs rule, inside", np.array([5e-11, 1.0]), np.array([0.0, 1.0]), atol=1e-10)
    row = verify.report().rows[-1]
    # its max rel err (5e-11 / 1e-8) is beyond rtol: with an atol that column does not decide, the ratio does
    assert row.rule == "abs" and row.passed and row.max_rel_err > 1e-10 and row.tol_ratio <= 1
    with pytest.raises(AssertionError):
        verify.check("abs rule, outside", np.array([5e-10, 1.0]), np.array([0.0, 1.0]), atol=1e-10)
    row = verify.report().rows[-1]
    assert not row.passed and row.tol_ratio > 1
    verify.check_true("a fact", True)
    assert verify.report().rows[-1].rule == "claim" and verify.report().rows[-1].tol_ratio is None
    with pytest.raises(AssertionError):
        verify.check("nan", np.array([np.nan]), np.array([np.nan]))
    assert verify.report().rows[-1].tol_ratio == np.inf


def test_registered_rows_are_summarised_by_the_formulas_of_the_coverage_matrix():
    title = "test-only check for the summary"

    @verify.register_check(title, formula="zz summary formula", direction="forward", reference="torch")
    def _fn(rng):
        verify.check("one", np.ones(2), np.ones(2))
        verify.check("two", np.ones(3), np.ones(3))

    try:
        rep, _ = verify.run_registered(seed=0, only="^test-only check for the summary")
        assert [(g["group"], g["checks"], g["result"]) for g in rep.groups()] == [("zz summary formula", 2, "PASS")]
        assert "| zz summary formula | forward |" in verify.coverage_matrix()
        assert "zz summary formula" in rep.summary()
    finally:
        verify.REGISTRY.pop(title), verify.METADATA.pop(title)
