"""Attention and the Transformer block (notebook 06) on shapes the notebook never uses, against
PyTorch and Keras, plus the error messages for bad input."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from mediag.scratch import (  # noqa: E402
    attention,
    attention_backward,
    causal_mask,
    encoder_params_from_torch,
    layer_norm,
    mha_weights_from_torch,
    mha_weights_to_keras,
    multi_head_attention,
    patchify,
    sinusoidal_positions,
    transformer_encoder_layer,
)
from mediag.scratch.attention_transformer import check_attention, check_multi_head  # noqa: E402
from mediag.verify import REGISTRY  # noqa: E402

RNG = np.random.default_rng(2026)


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def random_qkv(batch, L_q, L_k, d_k, d_v, dtype=np.float64):
    return (RNG.normal(size=(*batch, L_q, d_k)).astype(dtype), RNG.normal(size=(*batch, L_k, d_k)).astype(dtype),
            RNG.normal(size=(*batch, L_k, d_v)).astype(dtype))


def test_attention_matches_torch_with_broadcast_mask():
    Q, K, V = random_qkv((3, 2), 7, 11, 5, 9)
    mask = RNG.random((7, 11)) < 0.6  # one mask for every batch and head
    mask[:, 3] = True
    out, w = attention(Q, K, V, mask)
    np.testing.assert_allclose(out, F.scaled_dot_product_attention(t(Q), t(K), t(V), attn_mask=t(mask)), rtol=1e-10)
    assert w.shape == (3, 2, 7, 11)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-12)
    assert np.all(w[..., ~mask] == 0)


def test_attention_float32_stays_float32():
    Q, K, V = random_qkv((2,), 3, 13, 6, 1, dtype=np.float32)
    out, w = attention(Q, K, V)
    assert out.dtype == np.float32 and w.dtype == np.float32
    np.testing.assert_allclose(out, F.scaled_dot_product_attention(t(Q), t(K), t(V)), rtol=1e-5, atol=1e-6)


def test_causal_mask_rectangular_matches_torch():
    Q, K, V = random_qkv((1,), 5, 8, 3, 2)
    assert causal_mask(5, 8).shape == (5, 8)
    out, _ = attention(Q, K, V, causal_mask(5, 8))
    np.testing.assert_allclose(out, F.scaled_dot_product_attention(t(Q), t(K), t(V), is_causal=True), rtol=1e-10)


def test_fully_masked_row_is_zero_like_torch():
    Q, K, V = random_qkv((2,), 3, 4, 2, 3)
    mask = np.ones((2, 3, 4), dtype=bool)
    mask[1, 0] = False
    out, w = attention(Q, K, V, mask)
    assert np.all(out[1, 0] == 0) and np.all(w[1, 0] == 0)
    np.testing.assert_allclose(out, F.scaled_dot_product_attention(t(Q), t(K), t(V), attn_mask=t(mask)), rtol=1e-10)


def test_attention_backward_matches_autograd_with_broadcast_keys():
    Q = RNG.normal(size=(3, 4, 6))
    K, V = RNG.normal(size=(9, 6)), RNG.normal(size=(9, 2))  # shared by the batch of 3
    mask = RNG.random((3, 4, 9)) < 0.5
    mask[..., 0] = True
    dout = RNG.normal(size=(3, 4, 2))
    dQ, dK, dV = attention_backward(dout, Q, K, V, mask)
    assert dK.shape == K.shape and dV.shape == V.shape
    tq, tk, tv = (t(a).requires_grad_(True) for a in (Q, K, V))
    ref = F.scaled_dot_product_attention(tq, tk.expand(3, 9, 6), tv.expand(3, 9, 2), attn_mask=t(mask))
    (ref * t(dout)).sum().backward()
    for ours, ref in zip((dQ, dK, dV), (tq.grad, tk.grad, tv.grad)):
        np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)


def test_multi_head_matches_torch_with_per_sample_mask():
    N, L, h, d_k = 2, 6, 5, 3  # d_model = 15
    X = RNG.normal(size=(N, L, h * d_k))
    mha = torch.nn.MultiheadAttention(h * d_k, h, bias=False, batch_first=True, dtype=torch.float64)
    mask = RNG.random((N, L, L)) < 0.6
    mask[..., 2] = True
    out, w = multi_head_attention(X, X, X, *mha_weights_from_torch(mha), h, mask=mask)
    with torch.no_grad():  # torch: a 3-D mask is (N * heads, L, S) and True means "may not attend"
        ref, ref_w = mha(t(X), t(X), t(X), attn_mask=t(~mask).repeat_interleave(h, 0), average_attn_weights=False)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(w, ref_w, rtol=1e-10, atol=1e-13)


def test_multi_head_cross_attention_matches_keras_with_value_dim():
    keras = pytest.importorskip("keras")
    N, L_q, L_k, d_model, h, d_k, d_v = 2, 3, 7, 10, 2, 16, 5
    Qx, KVx = RNG.normal(size=(N, L_q, d_model)), RNG.normal(size=(N, L_k, d_model))
    W_Q, W_K = RNG.normal(size=(d_model, h * d_k)), RNG.normal(size=(d_model, h * d_k))
    W_V, W_O = RNG.normal(size=(d_model, h * d_v)), RNG.normal(size=(h * d_v, d_model))
    out, w = multi_head_attention(Qx, KVx, KVx, W_Q, W_K, W_V, W_O, h)
    layer = keras.layers.MultiHeadAttention(num_heads=h, key_dim=d_k, value_dim=d_v, use_bias=False, dtype="float64")
    layer(Qx, KVx)
    layer.set_weights(mha_weights_to_keras(W_Q, W_K, W_V, W_O, h))
    ref, ref_w = layer(Qx, KVx, return_attention_scores=True)
    np.testing.assert_allclose(out, np.asarray(ref), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w, np.asarray(ref_w), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_matches_torch(norm_first):
    d_model, h, d_ff, L = 10, 5, 7, 9
    layer = torch.nn.TransformerEncoderLayer(d_model, h, d_ff, dropout=0.0, batch_first=True, norm_first=norm_first,
                                             dtype=torch.float64).eval()
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(t(RNG.normal(scale=0.5, size=tuple(p.shape))))
    x = RNG.normal(size=(3, L, d_model)) + sinusoidal_positions(L, d_model)
    with torch.no_grad():
        ref = layer(t(x), src_mask=t(~causal_mask(L)))
    ours = transformer_encoder_layer(x, encoder_params_from_torch(layer), h, norm_first=norm_first, mask=causal_mask(L))
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)


def test_layer_norm_float32_and_positions():
    x, g, b = (RNG.normal(size=s).astype(np.float32) for s in ((4, 3, 7), (7,), (7,)))
    np.testing.assert_allclose(layer_norm(x, g, b), F.layer_norm(t(x), (7,), t(g), t(b)), rtol=1e-5, atol=1e-5)
    pe = sinusoidal_positions(5, 6)
    assert pe.shape == (5, 6)
    np.testing.assert_allclose(pe[0], [0, 1, 0, 1, 0, 1])
    np.testing.assert_allclose(pe[:, 0::2] ** 2 + pe[:, 1::2] ** 2, 1.0)


def test_patchify_matches_unfold_on_rectangles():
    images = RNG.normal(size=(2, 12, 20))
    ours = patchify(images, 4)
    assert ours.shape == (2, 15, 16)
    np.testing.assert_array_equal(ours, F.unfold(t(images)[:, None], 4, stride=4).transpose(1, 2).numpy())


def test_registered_checks_run_on_several_seeds():
    from mediag.scratch.attention_transformer import (
        check_attention_backward,
        check_encoder_backward,
        check_encoder_forward,
        check_multi_head_backward,
    )
    from mediag.verify import METADATA

    checks = (check_attention, check_attention_backward, check_multi_head, check_multi_head_backward,
              check_encoder_forward, check_encoder_backward)
    titles = [t for t, fn in REGISTRY.items() if fn in checks]
    assert len(titles) == len(checks)
    for title in titles:  # each names its formula, one direction, and both frameworks
        meta = METADATA[title]
        assert meta["formula"] and meta["direction"] in ("forward", "backward")
        assert {"torch", "tf/keras"} <= set(meta["reference"])
    pytest.importorskip("keras")
    for seed in range(3):
        for fn in checks:
            fn(np.random.default_rng(seed))


# -- errors for users -----------------------------------------------------------------------------


@pytest.mark.parametrize("shapes, message", [
    (((3, 4), (5, 6), (5, 2)), "same last size d_k"),
    (((3, 4), (5, 4), (6, 2)), "same length L_k"),
    (((4,), (5, 4), (5, 2)), r"need shape \(..., L, d\)"),
])
def test_attention_shape_errors(shapes, message):
    with pytest.raises(ValueError, match=message):
        attention(*(np.zeros(s) for s in shapes))


def test_attention_mask_errors():
    Q, K, V = np.zeros((3, 4)), np.zeros((5, 4)), np.zeros((5, 2))
    with pytest.raises(ValueError, match="mask must be boolean"):
        attention(Q, K, V, np.ones((3, 5)))
    with pytest.raises(ValueError, match="does not broadcast"):
        attention(Q, K, V, np.ones((5, 3), dtype=bool))
    with pytest.raises(ValueError, match="dout must have the output's shape"):
        attention_backward(np.zeros((3, 3)), Q, K, V)


def test_multi_head_errors():
    X = np.zeros((2, 3, 6))
    W = np.zeros((6, 6))
    with pytest.raises(ValueError, match=r"Q must be \(N, L, d_model\)"):
        multi_head_attention(X[0], X[0], X[0], W, W, W, W, 2)
    with pytest.raises(ValueError, match="dividing its columns"):
        multi_head_attention(X, X, X, W, W, W, W, 4)
    with pytest.raises(ValueError, match="W_O"):
        multi_head_attention(X, X, X, W, W, W, np.zeros((4, 6)), 2)
    with pytest.raises(ValueError, match="positive integer"):
        multi_head_attention(X, X, X, W, W, W, W, 0)


def test_block_and_conversion_errors():
    with pytest.raises(ValueError, match="params lacks"):
        transformer_encoder_layer(np.zeros((1, 2, 4)), {"W_Q": np.eye(4)}, 2)
    with pytest.raises(ValueError, match="has biases"):
        mha_weights_from_torch(torch.nn.MultiheadAttention(4, 2, batch_first=True))
    with pytest.raises(ValueError, match="only activation='relu'"):
        encoder_params_from_torch(torch.nn.TransformerEncoderLayer(4, 2, 8, activation="gelu"))
    with pytest.raises(ValueError, match="must be even"):
        sinusoidal_positions(4, 5)
    with pytest.raises(ValueError, match="dividing H=10"):
        patchify(np.zeros((1, 10, 12)), 4)
    with pytest.raises(ValueError, match=r"must be \(N, H, W\)"):
        patchify(np.zeros((10, 12)), 2)
