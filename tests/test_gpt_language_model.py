"""Notebook 07's public functions on shapes and configurations the notebook never used."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
import torch.nn.functional as F  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402

from mediag.scratch import (  # noqa: E402
    gpt2_forward,
    gpt2_params_from_transformers,
    lm_generate,
    lm_loss,
    lm_loss_grad,
    lm_loss_loops,
    next_token_probs,
    pack_blocks,
    perplexity,
    sample_next_token,
)
from mediag.scratch.gpt_language_model import load_language_model, train_report_tokenizer  # noqa: E402

transformers.logging.set_verbosity_error()


def _model(seed=0, **overrides):
    """A float64 GPT-2 with an odd configuration, every parameter perturbed (layer norms not 1/0)."""
    kw = dict(vocab_size=41, n_positions=17, n_embd=35, n_layer=3, n_head=5, n_inner=50,
              layer_norm_epsilon=1e-4, tie_word_embeddings=False, bos_token_id=0, eos_token_id=0)
    kw.update(overrides)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(**kw)).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    model.loss_type = "ForCausalLM"
    return model


@pytest.fixture
def odd_logits():
    rng = np.random.default_rng(3)
    return rng.normal(scale=3.0, size=(5, 13, 37)), rng.integers(0, 37, size=(5, 13))


def test_lm_loss_matches_torch_sum_and_mean(odd_logits):
    z, x = odd_logits
    rows, targets = torch.from_numpy(z[:, :-1].reshape(-1, 37)), torch.from_numpy(x[:, 1:].reshape(-1))
    np.testing.assert_allclose(lm_loss(z, x), F.cross_entropy(rows, targets, reduction="sum").item(), rtol=1e-12)
    np.testing.assert_allclose(lm_loss(z, x, "mean"), F.cross_entropy(rows, targets).item(), rtol=1e-12)
    np.testing.assert_allclose(lm_loss(z, x), lm_loss_loops(z, x), rtol=1e-12)


def test_lm_loss_two_tokens_is_one_prediction():
    z = np.array([[[0.0, np.log(3.0)], [5.0, -5.0]]])  # row 0 gives P(token 1) = 3/4
    np.testing.assert_allclose(lm_loss(z, np.array([[0, 1]])), -np.log(0.75), rtol=1e-12)


def test_lm_loss_mean_equals_transformers_loss():
    model = _model(seed=1, tie_word_embeddings=True)
    x = np.random.default_rng(4).integers(0, 41, size=(3, 17))
    out = model(torch.from_numpy(x), labels=torch.from_numpy(x))
    assert out.loss.dtype == torch.float32  # ForCausalLMLoss casts logits with .float(), even in a float64 model
    np.testing.assert_allclose(lm_loss(out.logits.detach().numpy(), x, "mean"), out.loss.item(), rtol=1e-6)


def test_lm_loss_grad_matches_autograd_sum(odd_logits):
    z, x = odd_logits
    z_t = torch.from_numpy(z).requires_grad_(True)
    F.cross_entropy(z_t[:, :-1].reshape(-1, 37), torch.from_numpy(x[:, 1:].reshape(-1)), reduction="sum").backward()
    np.testing.assert_allclose(lm_loss_grad(z, x), z_t.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_perplexity_uniform_is_vocabulary_size():
    x = np.random.default_rng(0).integers(0, 29, size=(2, 5))
    assert perplexity(np.zeros((2, 5, 29)), x) == pytest.approx(29.0, rel=1e-12)


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("T", [1, 9, 17])
def test_gpt2_forward_matches_transformers(tied, T):
    model = _model(seed=T, tie_word_embeddings=tied)
    x = np.random.default_rng(T).integers(0, 41, size=(2, T))
    ours = gpt2_forward(x, gpt2_params_from_transformers(model))
    np.testing.assert_allclose(ours, model(torch.from_numpy(x)).logits.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_gpt2_forward_float32_model():
    model = _model(seed=5, n_layer=1, n_head=1, n_embd=6).float()
    x = np.random.default_rng(5).integers(0, 41, size=(1, 11))
    ours = gpt2_forward(x, gpt2_params_from_transformers(model))
    np.testing.assert_allclose(ours, model(torch.from_numpy(x)).logits.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_next_token_probs_matches_transformers_warpers():
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper

    row = np.random.default_rng(6).normal(size=23)
    scores = TopKLogitsWarper(top_k=3)(None, TemperatureLogitsWarper(1.3)(None, torch.from_numpy(row[None].copy())))
    np.testing.assert_allclose(next_token_probs(row, 1.3, top_k=3), torch.softmax(scores, -1)[0].numpy(), rtol=1e-12)


def test_sampling_is_seeded_and_respects_top_k():
    row = np.random.default_rng(7).normal(size=19)
    draws = [sample_next_token(row, np.random.default_rng(s), temperature=2.0, top_k=2) for s in range(50)]
    assert set(draws) <= set(np.argsort(row)[-2:].tolist())
    again = [sample_next_token(row, np.random.default_rng(1), 0.9) for _ in range(2)]
    assert again[0] == again[1]


def test_greedy_generate_matches_model_generate():
    model = _model(seed=8)
    prompt = [3, 14, 15]
    ours = lm_generate(prompt, gpt2_params_from_transformers(model), max_new_tokens=12)
    theirs = model.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False, eos_token_id=None,
                            pad_token_id=0)[0].numpy()
    np.testing.assert_array_equal(ours, theirs)


def test_tokenizer_and_model_round_trip(tmp_path):
    texts = ["FINDINGS: Small left effusion.\nIMPRESSION: Effusion.", "FINDINGS: Normal heart. No nodule."] * 5
    tok = train_report_tokenizer(texts, vocab_size=280)
    ids = tok(texts[0])["input_ids"]
    assert tok.decode(ids) == texts[0]
    blocks = pack_blocks(tok, texts, 7)
    assert blocks.shape[1] == 7 and blocks.dtype == np.int64
    model = _model(seed=9, vocab_size=len(tok), n_positions=20).float()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    tok2, model2 = load_language_model(tmp_path)
    assert tok2(texts[1])["input_ids"] == tok(texts[1])["input_ids"]
    x = torch.from_numpy(blocks[:2])
    torch.testing.assert_close(model2(x).logits, model(x).logits)


def test_offline_hub_request_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="'gpt2' is not a model folder.*save_pretrained"):
        load_language_model("gpt2", offline=True, cache_dir=tmp_path)


@pytest.mark.parametrize(
    "logits, tokens, kw, match",
    [
        (np.zeros((4, 5)), np.zeros((4, 5), int), {}, r"logits must be \(N, T, V\)"),
        (np.zeros((2, 4, 5)), np.zeros((2, 3), int), {}, "tokens must have shape"),
        (np.zeros((2, 4, 5)), np.zeros((2, 4)), {}, "integer ids"),
        (np.zeros((2, 1, 5)), np.zeros((2, 1), int), {}, "T >= 2"),
        (np.zeros((2, 4, 5)), np.full((2, 4), 5), {}, r"\[0, V = 5\)"),
        (np.zeros((2, 4, 5)), np.zeros((2, 4), int), {"reduction": "none"}, "reduction must be"),
    ],
)
def test_lm_loss_rejects_bad_input(logits, tokens, kw, match):
    with pytest.raises(ValueError, match=match):
        lm_loss(logits, tokens, **kw)
    if "reduction" not in kw:
        with pytest.raises(ValueError, match=match):
            lm_loss_grad(logits, tokens)


def test_gpt2_errors_name_the_problem():
    params = gpt2_params_from_transformers(_model(seed=10, n_layer=1))
    with pytest.raises(ValueError, match=r"tokens\[None\]"):
        gpt2_forward(np.arange(4), params)
    with pytest.raises(ValueError, match="exceed the model's 17 positions"):
        gpt2_forward(np.zeros((1, 18), int), params)
    with pytest.raises(ValueError, match=r"\[0, 41\)"):
        gpt2_forward(np.full((1, 3), 41), params)
    with pytest.raises(ValueError, match="not implemented in NumPy"):
        gpt2_params_from_transformers(_model(seed=11, n_layer=1, activation_function="relu"))
    with pytest.raises(ValueError, match="expected a transformers GPT2LMHeadModel"):
        gpt2_params_from_transformers(torch.nn.Linear(2, 2))


def test_sampling_errors_name_the_problem():
    row = np.zeros(5)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        next_token_probs(row, temperature=0)
    with pytest.raises(ValueError, match="top_k must be in 1..5"):
        next_token_probs(row, top_k=6)
    with pytest.raises(ValueError, match="needs rng"):
        sample_next_token(row, temperature=1.0)
    with pytest.raises(ValueError, match="prompt is empty"):
        lm_generate([], {"wpe": np.zeros((3, 2))}, 2)


def test_train_lm_one_loop_for_token_blocks_and_paired_arrays():
    from mediag.scratch.gpt_language_model import train_lm

    def tiny():
        torch.manual_seed(0)
        return GPT2LMHeadModel(GPT2Config(vocab_size=13, n_positions=12, n_embd=8, n_layer=1, n_head=2))

    blocks = np.random.default_rng(0).integers(0, 13, (9, 6))
    hist = train_lm(tiny(), blocks, steps=5, batch_size=4, eval_blocks=blocks[:2], eval_every=2)
    assert hist["step"] == [2, 4, 5] and len(hist["heldout"]) == 3 and len(hist["losses"]) == 5
    # the same loop on a tuple of row-paired arrays with its own loss: the default loss, spelled out, gives the
    # same training losses (same rows drawn, same updates)
    hist2 = train_lm(tiny(), (blocks, blocks.copy()), steps=5, batch_size=4,
                     loss_fn=lambda m, ids, labels: m(ids, labels=labels).loss)
    np.testing.assert_allclose(hist2["losses"], hist["losses"], rtol=1e-6)
    with pytest.raises(ValueError, match="pair them one to one"):
        train_lm(tiny(), (blocks, blocks[:5]), steps=1)
