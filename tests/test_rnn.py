"""notebooks/04_rnn.ipynb's exported RNN on shapes the notebook never used, against PyTorch and Keras."""

import numpy as np
import pytest

from mediag.scratch import (
    keras_rnn_from_numpy,
    rnn_backward,
    rnn_forward,
    rnn_jacobian_norms,
    rnn_step,
    torch_rnn_from_numpy,
)
from mediag.scratch.rnn import check_rnn_backward
from mediag.verify import numerical_gradient

torch = pytest.importorskip("torch")


def _params(rng, N, T, D, Hd, O):
    return (rng.normal(size=(N, T, D)), rng.normal(size=(N, Hd)), rng.normal(0, 0.5, (Hd, D)),
            rng.normal(0, 0.5, (Hd, Hd)), rng.normal(0, 0.2, Hd), rng.normal(0, 0.5, (O, Hd)), rng.normal(0, 0.2, O))


@pytest.mark.parametrize("N,T,D,Hd", [(1, 1, 1, 1), (5, 11, 3, 9), (2, 17, 7, 4)])
def test_forward_matches_torch_and_keras(N, T, D, Hd):
    x, h0, W_xh, W_hh, b_h, _, _ = _params(np.random.default_rng(N * 100 + T), N, T, D, Hd, 1)
    H, Y = rnn_forward(x, h0, W_xh, W_hh, b_h)
    assert H.shape == (N, T, Hd) and Y is None
    out_t, h_n = torch_rnn_from_numpy(W_xh, W_hh, b_h)(torch.from_numpy(x), torch.from_numpy(h0)[None])
    np.testing.assert_allclose(H, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(H[:, -1], h_n[0].detach().numpy(), rtol=1e-10, atol=1e-12)
    out_k = np.asarray(keras_rnn_from_numpy(W_xh, W_hh, b_h)(x, initial_state=[h0]))
    np.testing.assert_allclose(H, out_k, rtol=1e-10, atol=1e-12)


def test_output_layer_and_step():
    x, h0, W_xh, W_hh, b_h, W_hy, b_y = _params(np.random.default_rng(1), 3, 5, 2, 6, 4)
    H, Y = rnn_forward(x, h0, W_xh, W_hh, b_h, W_hy, b_y)
    assert Y.shape == (3, 5, 4)
    np.testing.assert_allclose(Y, H @ W_hy.T + b_y)
    np.testing.assert_allclose(H[:, 0], rnn_step(x[:, 0], h0, W_xh, W_hh, b_h))


@pytest.mark.parametrize("seed", range(6))
def test_backward_matches_autograd_random_shapes(seed):
    # The registered check draws its own shapes (1-5 on every axis) and raises if any gradient differs.
    check_rnn_backward(np.random.default_rng(seed))


def test_backward_without_output_layer_matches_finite_differences():
    x, h0, W_xh, W_hh, b_h, _, _ = _params(np.random.default_rng(3), 2, 4, 3, 5, 1)
    G = np.random.default_rng(4).normal(size=(2, 4, 5))
    H, _ = rnn_forward(x, h0, W_xh, W_hh, b_h)
    grads = rnn_backward(G, x, h0, W_xh, W_hh, H)
    assert "W_hy" not in grads
    num = numerical_gradient(lambda w: np.sum(rnn_forward(x, h0, W_xh, w, b_h)[0] * G), W_hh)
    np.testing.assert_allclose(grads["W_hh"], num, rtol=1e-6, atol=1e-8)


def test_jacobian_norms_match_autograd_and_linear_power_law():
    rng = np.random.default_rng(5)
    Hd, T = 6, 9
    x, h0, W_xh, W_hh, b_h, _, _ = _params(rng, 1, T, 2, Hd, 1)
    H, _ = rnn_forward(x, h0, W_xh, W_hh, b_h)

    def h_T(h):
        for t in range(T):
            h = torch.tanh(torch.from_numpy(W_hh) @ h + torch.from_numpy(W_xh @ x[0, t] + b_h))
        return h

    J = torch.autograd.functional.jacobian(h_T, torch.from_numpy(h0[0])).numpy()
    assert rnn_jacobian_norms(H[0], W_hh)[-1] == pytest.approx(np.linalg.norm(J, 2), rel=1e-10)
    Q, _ = np.linalg.qr(rng.normal(size=(Hd, Hd)))
    norms = rnn_jacobian_norms(H[0], 1.3 * Q, activation="linear")
    np.testing.assert_allclose(norms, 1.3 ** np.arange(1, T + 1), rtol=1e-10)


def test_bad_shapes_raise_clear_errors():
    x, h0, W_xh, W_hh, b_h, W_hy, b_y = _params(np.random.default_rng(0), 2, 3, 4, 5, 2)
    with pytest.raises(ValueError, match=r"x must be \(N, T, D\)"):
        rnn_forward(x[0], h0, W_xh, W_hh, b_h)
    with pytest.raises(ValueError, match="W_xh must have shape"):
        rnn_forward(x, h0, W_xh.T, W_hh, b_h)
    with pytest.raises(ValueError, match="h0 must have shape"):
        rnn_forward(x, h0[:1], W_xh, W_hh, b_h)
    with pytest.raises(ValueError, match="b_y must have shape"):
        rnn_forward(x, h0, W_xh, W_hh, b_h, W_hy, b_y[:1])
    with pytest.raises(ValueError, match="activation must be"):
        rnn_jacobian_norms(np.zeros((3, 5)), W_hh, activation="relu")
    with pytest.raises(ValueError, match="one sequence"):
        rnn_jacobian_norms(np.zeros((2, 3, 5)), W_hh)


def test_bptt_equals_tf_gradient_tape_and_checks_carry_metadata():
    pytest.importorskip("tensorflow")
    from mediag.scratch.rnn import _random_rnn, rnn_backward, rnn_forward, tf_rnn_gradients
    from mediag.verify import METADATA

    rng = np.random.default_rng(5)
    x, h0, W_xh, W_hh, b_h, W_hy, b_y = _random_rnn(rng, 2, 4, 3, 5, 2)
    G_H, G_Y = rng.normal(size=(2, 4, 5)), rng.normal(size=(2, 4, 2))
    H, _ = rnn_forward(x, h0, W_xh, W_hh, b_h)
    ours = rnn_backward(G_H, x, h0, W_xh, W_hh, H, dY=G_Y, W_hy=W_hy)
    theirs = tf_rnn_gradients(G_H, x, h0, W_xh, W_hh, b_h, dY=G_Y, W_hy=W_hy, b_y=b_y)
    for key in ("x", "h0", "W_xh", "W_hh", "b_h", "W_hy", "b_y"):
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-10, atol=1e-13, err_msg=key)
    meta = [m for t, m in METADATA.items() if m["formula"] == "§3.1.2 RNN"]
    assert {m["direction"] for m in meta} == {"forward", "backward"}
    assert all({"torch", "tf/keras"} <= set(m["reference"]) for m in meta)
