"""Notebook 07's GPT-2 backward pass and Keras GPT-2, on a tiny configuration the notebook never used.

Each backward function is checked two ways: against central finite differences of its own forward
function (every input entry), and against PyTorch autograd of an independent torch implementation (or
of `transformers`' GPT2LMHeadModel for the whole network). The Keras model is checked against the
NumPy forward pass, and the whole backward against tf.GradientTape through it. Everything is float64 and small,
so the file runs in seconds.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
import torch.nn.functional as F  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402

from mediag.scratch.gpt_language_model import (  # noqa: E402
    conv1d_backward,
    gelu_tanh,
    gelu_tanh_backward,
    gpt2_attention,
    gpt2_attention_backward,
    gpt2_backward,
    gpt2_block,
    gpt2_block_backward,
    gpt2_forward,
    gpt2_named,
    gpt2_params_from_transformers,
    hf_conv1d,
    lm_loss,
)

transformers.logging.set_verbosity_error()

D, H, F_INNER, EPS = 6, 3, 8, 1e-4  # width 6, 3 heads of 2, MLP width 8, an unusual layer-norm epsilon


def _fd(f, arrays, h=1e-6):
    """Central differences of the scalar f() with respect to every entry of every array (changed in place)."""
    grads = []
    for a in arrays:
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            old = a[i]
            a[i] = old + h
            up = f()
            a[i] = old - h
            down = f()
            a[i] = old
            g[i] = (up - down) / (2 * h)
        grads.append(g)
    return grads


def _close(ours, reference, rtol=1e-6, atol=1e-9, what=""):
    np.testing.assert_allclose(ours, np.asarray(reference), rtol=rtol, atol=atol, err_msg=what)


def _block_params(rng, d=D, f=F_INNER):
    p = {"ln1_g": 1 + 0.3 * rng.normal(size=d), "ln1_b": 0.3 * rng.normal(size=d),
         "attn_w": 0.5 * rng.normal(size=(d, 3 * d)), "attn_b": 0.3 * rng.normal(size=3 * d),
         "proj_w": 0.5 * rng.normal(size=(d, d)), "proj_b": 0.3 * rng.normal(size=d),
         "ln2_g": 1 + 0.3 * rng.normal(size=d), "ln2_b": 0.3 * rng.normal(size=d),
         "fc_w": 0.5 * rng.normal(size=(d, f)), "fc_b": 0.3 * rng.normal(size=f),
         "mlp_proj_w": 0.5 * rng.normal(size=(f, d)), "mlp_proj_b": 0.3 * rng.normal(size=d)}
    return p


def _t(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def _torch_attention(x, p, n_head):
    """GPT-2 causal attention written with torch's own scaled_dot_product_attention."""
    N, T, d = x.shape
    q, k, v = (x @ p["attn_w"] + p["attn_b"]).split(d, dim=-1)

    def heads(a):
        return a.reshape(N, T, n_head, d // n_head).transpose(1, 2)

    out = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), is_causal=True)
    return out.transpose(1, 2).reshape(N, T, d) @ p["proj_w"] + p["proj_b"]


def _torch_block(x, p, n_head, eps):
    d = x.shape[-1]
    x = x + _torch_attention(F.layer_norm(x, (d,), p["ln1_g"], p["ln1_b"], eps), p, n_head)
    h = F.gelu(F.layer_norm(x, (d,), p["ln2_g"], p["ln2_b"], eps) @ p["fc_w"] + p["fc_b"], approximate="tanh")
    return x + h @ p["mlp_proj_w"] + p["mlp_proj_b"]


def test_conv1d_backward_finite_differences_and_torch():
    rng = np.random.default_rng(10)
    x, w, b, dy = rng.normal(size=(2, 3, 5)), rng.normal(size=(5, 4)), rng.normal(size=4), rng.normal(size=(2, 3, 4))
    dx, dw, db = conv1d_backward(dy, x, w)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    for ours, numeric, name in zip((dx, dw, db), _fd(lambda: float((dy * hf_conv1d(x, w, b)).sum()), [x, w, b]),
                                   ("dx", "dw", "db")):
        _close(ours, numeric, what=f"conv1d {name} vs finite differences")
    xt, wt, bt = _t(x), _t(w), _t(b)
    ((xt @ wt + bt) * torch.from_numpy(dy)).sum().backward()
    for ours, ref, name in zip((dx, dw, db), (xt.grad, wt.grad, bt.grad), ("dx", "dw", "db")):
        _close(ours, ref, rtol=1e-12, atol=1e-12, what=f"conv1d {name} vs torch")


def test_gelu_tanh_backward_finite_differences_and_torch():
    x = np.linspace(-8, 8, 41).reshape(1, 41)  # both tails, where 1 + tanh(.) cancels
    dy = np.random.default_rng(11).normal(size=x.shape)
    dx = gelu_tanh_backward(dy, x)
    _close(dx, _fd(lambda: float((dy * gelu_tanh(x)).sum()), [x])[0], what="gelu_tanh vs finite differences")
    xt = _t(x)
    (F.gelu(xt, approximate="tanh") * torch.from_numpy(dy)).sum().backward()
    _close(dx, xt.grad, rtol=1e-12, atol=1e-14, what="gelu_tanh vs torch")


def test_gpt2_attention_backward_finite_differences_and_torch():
    rng = np.random.default_rng(12)
    x, p = rng.normal(size=(2, 4, D)), _block_params(rng)
    dy = rng.normal(size=x.shape)
    dx, g = gpt2_attention_backward(dy, x, p, H)
    names = ["attn_w", "attn_b", "proj_w", "proj_b"]
    assert set(g) == set(names) and all(g[k].shape == p[k].shape for k in names)
    numeric = _fd(lambda: float((dy * gpt2_attention(x, p, H)).sum()), [x] + [p[k] for k in names])
    for ours, num, name in zip([dx] + [g[k] for k in names], numeric, ["x"] + names):
        _close(ours, num, what=f"attention d{name} vs finite differences")
    xt, pt = _t(x), {k: _t(p[k]) for k in names}
    (_torch_attention(xt, pt, H) * torch.from_numpy(dy)).sum().backward()
    _close(dx, xt.grad, rtol=1e-10, atol=1e-12, what="attention dx vs torch")
    for k in names:
        _close(g[k], pt[k].grad, rtol=1e-10, atol=1e-12, what=f"attention d{k} vs torch")


def test_gpt2_block_backward_finite_differences_and_torch():
    rng = np.random.default_rng(13)
    x, p = rng.normal(size=(2, 5, D)), _block_params(rng)
    dy = rng.normal(size=x.shape)
    dx, g = gpt2_block_backward(dy, x, p, H, EPS)
    assert set(g) == set(p) and all(g[k].shape == p[k].shape for k in p)
    names = list(p)
    numeric = _fd(lambda: float((dy * gpt2_block(x, p, H, EPS)).sum()), [x] + [p[k] for k in names])
    for ours, num, name in zip([dx] + [g[k] for k in names], numeric, ["x"] + names):
        _close(ours, num, atol=1e-8, what=f"block d{name} vs finite differences")  # sum of 60 outputs: rounding / h
    xt, pt = _t(x), {k: _t(v) for k, v in p.items()}
    (_torch_block(xt, pt, H, EPS) * torch.from_numpy(dy)).sum().backward()
    _close(dx, xt.grad, rtol=1e-10, atol=1e-12, what="block dx vs torch")
    for k in names:
        _close(g[k], pt[k].grad, rtol=1e-10, atol=1e-12, what=f"block d{k} vs torch")


def _tiny_gpt2(seed, tied, n_layer=2):
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=7, n_positions=6, n_embd=D, n_layer=n_layer, n_head=H, n_inner=F_INNER,
                     layer_norm_epsilon=EPS, tie_word_embeddings=tied, bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(cfg).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("tied", [True, False])
def test_gpt2_backward_equals_transformers_autograd(tied, reduction):
    model = _tiny_gpt2(14, tied)
    x = np.random.default_rng(14).integers(0, 7, size=(3, 5))  # V = 7: tokens repeat, their rows add up
    loss, grads = gpt2_backward(x, gpt2_params_from_transformers(model), reduction)
    z = model(torch.from_numpy(x)).logits
    ref = F.cross_entropy(z[:, :-1].reshape(-1, 7), torch.from_numpy(x[:, 1:].reshape(-1)), reduction=reduction)
    ref.backward()
    _close(loss, ref.item(), rtol=1e-12, atol=0, what="loss")
    ours = gpt2_named(grads)
    for name, p in model.named_parameters():  # a tied W_te is listed once and holds both uses
        # atol: the key bias's true gradient is 0 (softmax ignores a shift): rounding noise on both sides
        _close(ours[name], p.grad, rtol=1e-9, atol=1e-13 * float(p.grad.abs().max()), what=name)
    assert (grads["lm_head"] is grads["wte"]) == tied
    assert np.all(grads["wpe"][5:] == 0), "positions beyond T get no gradient"


def test_gpt2_backward_finite_differences_every_parameter():
    model = _tiny_gpt2(15, tied=True, n_layer=1)
    params = gpt2_params_from_transformers(model)
    x = np.random.default_rng(15).integers(0, 7, size=(2, 6))
    _, grads = gpt2_backward(x, params)
    named, named_g = gpt2_named(params), gpt2_named(grads)
    del named["lm_head.weight"]  # tied: the same array as W_te, perturbed through it
    numeric = _fd(lambda: lm_loss(gpt2_forward(x, params), x, "mean"), list(named.values()))
    for (name, _), num in zip(named.items(), numeric):
        _close(named_g[name], num, rtol=1e-6, atol=1e-9, what=f"{name} vs finite differences")


@pytest.mark.parametrize("tied", [True, False])
def test_gpt2_keras_equals_numpy_forward(tied):
    pytest.importorskip("keras")
    import keras

    from mediag.scratch.gpt_language_model import gpt2_keras

    params = gpt2_params_from_transformers(_tiny_gpt2(16, tied))
    x = np.random.default_rng(16).integers(0, 7, size=(2, 6))
    logits = keras.ops.convert_to_numpy(gpt2_keras(params)(x))
    assert logits.dtype == np.float64 and logits.shape == (2, 6, 7)
    # atol 1e-8: Keras rounds GELU's 0.044715 and attention's 1/sqrt(d_k) to float32 (notebook 07, section 6)
    _close(logits, gpt2_forward(x, params), rtol=0, atol=1e-8, what="Keras GPT-2 vs NumPy forward")
    short = keras.ops.convert_to_numpy(gpt2_keras(params)(x[:, :3]))  # fewer positions than n_positions
    _close(short, gpt2_forward(x[:, :3], params), rtol=0, atol=1e-8, what="Keras GPT-2 on 3 positions")



@pytest.mark.parametrize("seed", [5, 0])
def test_gpt2_backward_equals_keras_gradient_tape(seed):
    """The registered check (gradients of gpt2_keras by tf.GradientTape) on one tied and one untied GPT-2."""
    pytest.importorskip("tensorflow")
    from mediag.scratch.gpt_language_model import _random_gpt2, check_gpt2_backward_keras

    model, _ = _random_gpt2(np.random.default_rng(seed))
    assert gpt2_params_from_transformers(model)["tied"] == (seed == 5), "seed 5 must draw a tied model, 0 untied"
    check_gpt2_backward_keras(np.random.default_rng(seed))
