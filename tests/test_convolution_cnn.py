"""mediag.scratch's convolution code (notebook 03) on shapes the notebook never used, against PyTorch and TensorFlow."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mediag.repro import import_tensorflow
from mediag.scratch import (
    conv2d,
    conv2d_backward,
    conv2d_loop,
    conv2d_seed,
    conv2d_torch,
    conv_padding,
    max_pool2d,
    max_pool2d_backward,
    same_padding,
)

tf = import_tensorflow()
RNG = np.random.default_rng(2024)


def nchw(a):
    return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))


def oihw(w):
    return torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))


def tf_conv(x, w, b, stride, padding):
    pad = padding.upper() if isinstance(padding, str) else [[0, 0], [padding] * 2, [padding] * 2, [0, 0]]
    return (tf.nn.conv2d(x, w, strides=stride, padding=pad) + b).numpy()


@pytest.mark.parametrize(
    "shape, k, stride, padding",
    [
        ((3, 13, 11, 5), (3, 3), 2, "valid"),
        ((1, 13, 11, 5), (4, 4), 2, "same"),  # SAME with an even kernel at stride 2: asymmetric padding
        ((2, 9, 15, 1), (2, 5), (3, 2), "same"),
        ((2, 7, 7, 3), (5, 3), 3, 2),
        ((1, 17, 5, 2), (1, 1), 1, "valid"),
    ],
)
def test_conv2d_matches_tensorflow_and_torch(shape, k, stride, padding):
    x = RNG.standard_normal(shape)
    w = RNG.standard_normal((*k, shape[3], 7))
    b = RNG.standard_normal(7)
    ours = conv2d(x, w, b, stride, padding)
    np.testing.assert_allclose(ours, tf_conv(x, w, b, stride, padding), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours, conv2d_torch(x, w, b, stride, padding), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours, conv2d_loop(x, w, b, stride, padding), rtol=1e-10, atol=1e-12)


def test_conv2d_torch_symmetric_padding_direct():
    x, w, b = RNG.standard_normal((2, 11, 9, 3)), RNG.standard_normal((3, 3, 3, 4)), RNG.standard_normal(4)
    theirs = F.conv2d(nchw(x), oihw(w), torch.from_numpy(b), stride=2, padding=1).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(conv2d(x, w, b, 2, 1), theirs, rtol=1e-10, atol=1e-12)


def test_conv2d_float32_stays_float32():
    x, w = RNG.standard_normal((2, 9, 9, 3)).astype(np.float32), RNG.standard_normal((3, 3, 3, 2)).astype(np.float32)
    y = conv2d(x, w)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, tf_conv(x, w, np.zeros(2, np.float32), 1, "valid"), rtol=1e-4, atol=1e-5)


def test_conv2d_seed_is_depthwise():
    x, w = RNG.standard_normal((11, 6, 5)), RNG.standard_normal((4, 3, 5))
    theirs = tf.nn.depthwise_conv2d(x[None], w[..., None], strides=[1, 1, 1, 1], padding="VALID")[0].numpy()
    np.testing.assert_allclose(conv2d_seed(x, w), theirs, rtol=1e-10, atol=1e-12)
    xt = torch.from_numpy(x.transpose(2, 0, 1)[None].copy())
    t = F.conv2d(xt, torch.from_numpy(w.transpose(2, 0, 1)[:, None].copy()), groups=5)
    np.testing.assert_allclose(conv2d_seed(x, w), t[0].permute(1, 2, 0).numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("stride, padding, k", [(2, "same", (4, 2)), (3, 1, (3, 3)), ((2, 1), "valid", (3, 5))])
def test_conv2d_backward_matches_torch_autograd(stride, padding, k):
    x, w, b = RNG.standard_normal((2, 10, 9, 3)), RNG.standard_normal((*k, 3, 4)), RNG.standard_normal(4)
    dy = RNG.standard_normal(conv2d(x, w, b, stride, padding).shape)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    strides = (stride, stride) if np.isscalar(stride) else stride
    (pt, pb), (pl, pr) = conv_padding(padding, x.shape[1:3], k, strides)
    y = F.conv2d(F.pad(xt.permute(0, 3, 1, 2), (pl, pr, pt, pb)), wt.permute(3, 2, 0, 1), bt, stride=stride)
    (y.permute(0, 2, 3, 1) * torch.from_numpy(dy)).sum().backward()
    for ours, theirs in zip(conv2d_backward(dy, x, w, stride, padding), (xt.grad, wt.grad, bt.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("size, stride", [(3, None), (2, 1), ((3, 2), (2, 3))])
def test_max_pool2d_forward_backward_match_tensorflow(size, stride):
    x = RNG.standard_normal((2, 11, 13, 3))
    xv = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = tf.nn.max_pool2d(xv, size, stride or size, "VALID")
    dy = RNG.standard_normal(y.shape)
    grad = tape.gradient(y, xv, output_gradients=tf.constant(dy))
    np.testing.assert_array_equal(max_pool2d(x, size, stride), y.numpy())
    np.testing.assert_allclose(max_pool2d_backward(dy, x, size, stride), grad.numpy(), rtol=1e-12, atol=1e-14)


def test_same_padding_is_tensorflows_rule():
    assert same_padding(7, 4, 1) == (1, 2)
    assert same_padding(8, 4, 2) == (1, 1)
    assert same_padding(9, 2, 3) == (0, 0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: conv2d(np.zeros((5, 5, 1)), np.zeros((3, 3, 1, 1))), "NHWC"),
        (lambda: conv2d(np.zeros((1, 5, 5, 2)), np.zeros((3, 3, 1, 4))), "HWIO"),
        (lambda: conv2d(np.zeros((1, 5, 5, 1)), np.zeros((3, 3, 1, 4)), b=np.zeros(3)), "b must have shape"),
        (lambda: conv2d(np.zeros((1, 5, 5, 1)), np.zeros((3, 3, 1, 1)), stride=0), "stride"),
        (lambda: conv2d(np.zeros((1, 5, 5, 1)), np.zeros((3, 3, 1, 1)), padding="full"), "padding"),
        (lambda: conv2d(np.zeros((1, 2, 2, 1)), np.zeros((3, 3, 1, 1))), "larger than the padded image"),
        (lambda: conv2d_seed(np.zeros((5, 5, 2)), np.zeros((3, 3, 3))), "same K"),
        (lambda: conv2d_seed(np.zeros((2, 5, 1)), np.zeros((3, 3, 1))), "larger than the image"),
        (lambda: max_pool2d(np.zeros((4, 4, 1))), "NHWC"),
        (lambda: max_pool2d(np.zeros((1, 2, 2, 1)), 3), "larger than the image"),
        (lambda: conv2d_backward(np.zeros((1, 2, 2, 1)), np.zeros((1, 5, 5, 1)), np.zeros((3, 3, 1, 1))),
         "dy must have"),
        (lambda: max_pool2d_backward(np.zeros((1, 1, 1, 1)), np.zeros((1, 4, 4, 1))), "dy must have"),
    ],
)
def test_bad_input_gives_one_clear_message(call, message):
    with pytest.raises(ValueError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_registered_checks_pass_on_fresh_inputs():
    from mediag.scratch import convolution_cnn as mod

    for fn in (mod.check_conv2d_seed, mod.check_conv2d, mod.check_conv2d_backward, mod.check_max_pool2d,
               mod.check_max_pool2d_backward, mod.check_cnn):
        fn(np.random.default_rng(7))


def test_cnn_three_ways_on_odd_input_size():
    from mediag.scratch import build_cnn_keras, cnn_forward, cnn_params_from_keras, cnn_torch_from_params

    model = build_cnn_keras((27, 31, 1), n_outputs=3, filters=(3, 4, 5), dense=6, dtype="float64")
    params = cnn_params_from_keras(model)
    x = RNG.random((2, 27, 31, 1))
    ours = cnn_forward(params, x)
    np.testing.assert_allclose(ours, model(x).numpy(), rtol=1e-10)
    with torch.no_grad():
        theirs = cnn_torch_from_params(params, (27, 31))(nchw(x)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)


def test_cnn_forward_cache_holds_what_grad_cam_needs():
    """return_cache: conv inputs and ReLU maps equal Keras' layers; probs = sigmoid(logits); hidden feeds the head."""
    from mediag.scratch import build_cnn_keras, cnn_forward, cnn_params_from_keras, sigmoid

    model = build_cnn_keras((22, 25, 1), n_outputs=2, filters=(3, 4, 5), dense=6, dtype="float64")
    params = cnn_params_from_keras(model)
    x = RNG.random((3, 22, 25, 1))
    probs, cache = cnn_forward(params, x, return_cache=True)
    np.testing.assert_array_equal(probs, cnn_forward(params, x))
    np.testing.assert_allclose(probs, sigmoid(cache["logits"]), rtol=0)
    np.testing.assert_allclose(cache["logits"], cache["hidden"] @ params["dense"][1][0] + params["dense"][1][1])
    h, seen = x, []
    for layer in model.layers[:6]:           # conv, pool, conv, pool, conv (+ flatten)
        h = layer(h).numpy()
        seen.append(h)
    for got, want in zip(cache["maps"], seen[0:5:2]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(cache["inputs"][0], x)
    for got, want in zip(cache["inputs"][1:], seen[1:4:2]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)
    assert cache["hidden"].shape == (3, 6) and cache["logits"].shape == (3, 2)


def test_build_cnn_keras_needs_a_channel_axis():
    from mediag.scratch import build_cnn_keras

    with pytest.raises(ValueError, match="channels"):
        build_cnn_keras((64, 64))
