"""notebooks/05_lstm.ipynb's exported LSTM on shapes the notebook never used, against PyTorch and Keras."""

import numpy as np
import pytest

from mediag.scratch import (
    keras_lstm_from_numpy,
    lstm_backward,
    lstm_forward,
    lstm_framework_weights,
    lstm_jacobian_norms,
    lstm_step,
    sigmoid,
    torch_lstm_from_numpy,
)
from mediag.verify import numerical_gradient

torch = pytest.importorskip("torch")
NAMES = ("W_f", "W_i", "W_C", "W_o", "b_f", "b_i", "b_C", "b_o")


def _lstm(rng, N, T, D, Hd):
    x, h0, c0 = rng.normal(size=(N, T, D)), rng.normal(size=(N, Hd)), rng.normal(size=(N, Hd))
    return x, h0, c0, [rng.normal(0, 0.5, (Hd, Hd + D)) for _ in range(4)] + [rng.normal(0, 0.3, Hd) for _ in range(4)]


def _torch_run(params, x, h0, c0):
    lstm = torch_lstm_from_numpy(*params)
    return lstm, lstm(x, (h0[None], c0[None]))


@pytest.mark.parametrize("N,T,D,Hd", [(1, 1, 1, 1), (4, 13, 3, 9), (2, 5, 11, 2)])
def test_forward_matches_torch_and_keras(N, T, D, Hd):
    x, h0, c0, params = _lstm(np.random.default_rng(N * 100 + T), N, T, D, Hd)
    H, C = lstm_forward(x, h0, c0, *params)
    assert H.shape == C.shape == (N, T, Hd)
    _, (out, (h_n, c_n)) = _torch_run(params, *(torch.from_numpy(a) for a in (x, h0, c0)))
    np.testing.assert_allclose(H, out.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(C[:, -1], c_n[0].detach().numpy(), rtol=1e-10, atol=1e-12)
    out_k, h_k, c_k = keras_lstm_from_numpy(*params)(x, initial_state=[h0, c0])
    np.testing.assert_allclose(H, np.asarray(out_k), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(C[:, -1], np.asarray(c_k), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(H[:, -1], np.asarray(h_k), rtol=1e-10, atol=1e-12)


def test_step_is_first_time_step():
    x, h0, c0, params = _lstm(np.random.default_rng(1), 3, 4, 2, 5)
    H, C = lstm_forward(x, h0, c0, *params)
    h1, c1 = lstm_step(x[:, 0], h0, c0, *params)
    np.testing.assert_allclose(h1, H[:, 0])
    np.testing.assert_allclose(c1, C[:, 0])


def test_concatenation_puts_h_first():
    # an LSTM whose gates only see x (the h columns are zero) must not depend on h0
    rng = np.random.default_rng(2)
    x, h0, c0, params = _lstm(rng, 2, 3, 4, 3)
    for w in params[:4]:
        w[:, :3] = 0.0
    H1, _ = lstm_forward(x, h0, c0, *params)
    H2, _ = lstm_forward(x, h0 + 5.0, c0, *params)
    np.testing.assert_allclose(H1, H2)


def test_backward_matches_torch_autograd_odd_shapes():
    N, T, D, Hd = 3, 8, 5, 7
    rng = np.random.default_rng(7)
    x, h0, c0, params = _lstm(rng, N, T, D, Hd)
    G_H, G_C = rng.normal(size=(N, T, Hd)), rng.normal(size=(N, Hd))
    g = lstm_backward(G_H, x, h0, c0, *params, dC_last=G_C)
    xt, h0t, c0t = (torch.tensor(v, requires_grad=True) for v in (x, h0, c0))
    lstm, (out, (_, c_n)) = _torch_run(params, xt, h0t, c0t)
    (torch.sum(out * torch.from_numpy(G_H)) + torch.sum(c_n[0] * torch.from_numpy(G_C))).backward()
    W_ih, W_hh, b = lstm_framework_weights(*[g[k] for k in NAMES])
    for ours, theirs in ((g["x"], xt.grad), (g["h0"], h0t.grad), (g["c0"], c0t.grad), (W_ih, lstm.weight_ih_l0.grad),
                         (W_hh, lstm.weight_hh_l0.grad), (b, lstm.bias_ih_l0.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-10, atol=1e-12)


def test_backward_without_cell_gradient_matches_finite_differences():
    x, h0, c0, params = _lstm(np.random.default_rng(3), 2, 4, 3, 2)
    G = np.random.default_rng(4).normal(size=(2, 4, 2))
    g = lstm_backward(G, x, h0, c0, *params)

    def loss(W_C):
        return np.sum(lstm_forward(x, h0, c0, params[0], params[1], W_C, *params[3:])[0] * G)

    np.testing.assert_allclose(g["W_C"], numerical_gradient(loss, params[2]), rtol=1e-6, atol=1e-8)


def test_jacobian_norms_constant_gates_and_autograd():
    Hd, D, T = 5, 2, 7
    rng = np.random.default_rng(5)
    x = rng.normal(size=(T, D))
    zeros = [np.zeros((Hd, Hd + D))] * 4
    norms = lstm_jacobian_norms(x, np.zeros(Hd), np.zeros(Hd), *zeros, np.full(Hd, 1.5), *[np.zeros(Hd)] * 3)
    np.testing.assert_allclose(norms, (1 / (1 + np.exp(-1.5))) ** np.arange(1, T + 1), rtol=1e-12)
    _, h0, c0, params = _lstm(rng, 1, T, D, Hd)

    def C_T(c):
        _, (_, (_, c_n)) = _torch_run(params, torch.from_numpy(x[None]), torch.from_numpy(h0), c[None])
        return c_n[0, 0]

    J = torch.autograd.functional.jacobian(C_T, torch.from_numpy(c0[0])).numpy()
    ours = lstm_jacobian_norms(x, h0[0], c0[0], *params)[-1]
    assert ours == pytest.approx(np.linalg.norm(J, 2), rel=1e-10)


def test_bad_shapes_raise_clear_errors():
    x, h0, c0, params = _lstm(np.random.default_rng(0), 2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"x must be \(N, T, D\)"):
        lstm_forward(x[0], h0, c0, *params)
    bad = list(params)
    bad[1] = bad[1][:, :5]  # W_i acting on h only, forgetting x
    with pytest.raises(ValueError, match=r"W_i must have shape \(Hd, Hd \+ D\)"):
        lstm_forward(x, h0, c0, *bad)
    with pytest.raises(ValueError, match="c0 must have shape"):
        lstm_forward(x, h0, c0[:1], *params)
    with pytest.raises(ValueError, match="b_o must have shape"):
        lstm_forward(x, h0, c0, *params[:7], params[7][:2])
    with pytest.raises(ValueError, match="give one sequence"):
        lstm_jacobian_norms(x, h0[0], c0[0], *params)


def test_sigmoid_is_stable_and_accurate_in_both_tails():
    import torch

    with np.errstate(over="raise", under="ignore"):
        np.testing.assert_allclose(sigmoid(np.array([-1000.0, 0.0, 1000.0])), [0.0, 0.5, 1.0])
    a = np.linspace(-700.0, 35.0, 1001)  # tiny values keep their relative precision (no 1 - 1 cancellation)
    np.testing.assert_allclose(sigmoid(a), torch.sigmoid(torch.from_numpy(a)).numpy(), rtol=1e-13, atol=0)
    assert sigmoid(3).shape == () and sigmoid([[1, 2, 3]]).shape == (1, 3)


def test_lstm_backward_equals_tf_gradient_tape_and_layout_inverse():
    pytest.importorskip("tensorflow")
    from mediag.scratch.lstm import (
        _random_lstm,
        lstm_backward,
        lstm_framework_weights,
        lstm_params_from_framework,
        tf_lstm_gradients,
    )

    rng = np.random.default_rng(6)
    x, h0, c0, params = _random_lstm(rng, 2, 3, 2, 4)
    back = lstm_params_from_framework(*lstm_framework_weights(*params))
    for a, b in zip(back, params):
        np.testing.assert_array_equal(a, b)
    G_H, G_C = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 4))
    ours = lstm_backward(G_H, x, h0, c0, *params, dC_last=G_C)
    theirs = tf_lstm_gradients(G_H, x, h0, c0, *params, dC_last=G_C)
    for key in ours:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-10, atol=1e-13, err_msg=key)


@pytest.mark.parametrize("N,T,D,Hd", [(1, 1, 1, 1), (3, 9, 2, 5)])
def test_forward_cache_gives_the_same_forward_and_backward(N, T, D, Hd):
    """lstm_forward(return_cache=True) changes nothing in H, C, and lstm_backward(cache=...) equals a rerun."""
    rng = np.random.default_rng(N + T)
    x, h0, c0, params = _lstm(rng, N, T, D, Hd)
    H, C = lstm_forward(x, h0, c0, *params)
    H2, C2, cache = lstm_forward(x, h0, c0, *params, return_cache=True)
    assert np.array_equal(H, H2) and np.array_equal(C, C2) and len(cache) == T
    G_H, G_C = rng.normal(size=(N, T, Hd)), rng.normal(size=(N, Hd))
    rerun = lstm_backward(G_H, x, h0, c0, *params, dC_last=G_C)
    reused = lstm_backward(G_H, x, h0, c0, *params, dC_last=G_C, cache=cache)
    assert rerun.keys() == reused.keys()
    for key in rerun:
        assert np.array_equal(rerun[key], reused[key]), key
