"""Large weights and logits: finite results and no floating-point warnings, float64 and float32."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import task2a
import task3a

DTYPES = [np.float64, np.float32]


@pytest.fixture
def strict():
    """Turn every floating-point event (overflow, underflow, divide, invalid) into an error."""
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def images(rng, n, dtype):
    X = np.hstack([rng.uniform(-1, 1, (n, 784)), np.ones((n, 1))])
    return X.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_model_with_huge_weights(rng, dtype, strict):
    X = images(rng, 64, dtype)
    Y = rng.integers(0, 2, (64, 1)).astype(dtype)
    model = task2a.BinaryModel()
    model.w = rng.normal(0, 50, (785, 1)).astype(dtype)
    logits = X @ model.w
    assert np.abs(logits).max() > 500  # the regime we mean to test
    out = model.forward(X)
    assert out.dtype == dtype and np.all((out >= 0) & (out <= 1))
    loss = task2a.cross_entropy_loss(Y, out)
    model.backward(X, out, Y)
    assert np.isfinite(loss) and loss > 1
    assert np.all(np.isfinite(model.grad)) and model.grad.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_model_with_huge_weights(rng, dtype, strict):
    X = images(rng, 64, dtype)
    Y = task3a.one_hot_encode(rng.integers(0, 10, 64), 10).astype(dtype)
    model = task3a.SoftmaxModel(l2_reg_lambda=2.0)
    model.w = rng.normal(0, 50, (785, 10)).astype(dtype)
    out = model.forward(X)
    assert out.dtype == dtype
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)
    loss = task3a.cross_entropy_loss(Y, out)
    model.backward(X, out, Y)
    assert np.isfinite(loss) and loss > 1
    assert np.all(np.isfinite(model.grad))


@pytest.mark.parametrize("dtype", DTYPES)
def test_logits_of_plus_minus_1000(dtype, strict):
    z = np.array([[-1000.0], [1000.0], [0.0]], dtype=dtype)
    s = task2a.sigmoid(z)
    assert s.dtype == dtype
    assert s[:, 0].tolist() == [0.0, 1.0, 0.5]
    y = np.array([[1.0], [0.0], [1.0]], dtype=dtype)
    # confidently wrong in both directions: large but finite losses
    assert 10 < task2a.cross_entropy_loss(y, s) < 1e4
    zs = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0]], dtype=dtype)
    p = task3a.softmax(zs)
    assert p.dtype == dtype and np.all(np.isfinite(p))
    np.testing.assert_array_equal(p.argmax(axis=1), [0, 2])
    t = np.array([[0, 1, 0], [1, 0, 0]], dtype=dtype)
    assert np.isfinite(task3a.cross_entropy_loss(t, p))


@pytest.mark.parametrize("dtype", DTYPES)
def test_clipping_respects_the_dtype(dtype, strict):
    """1 - 1e-15 is exactly 1.0 in float32; the clip must still keep ln(1 - p) finite."""
    p = np.array([[1.0], [0.0]], dtype=dtype)
    clipped = task2a.clip_probabilities(p)
    assert clipped.dtype == dtype
    assert clipped[0, 0] < 1 and clipped[1, 0] > 0
    loss = task2a.cross_entropy_loss(np.array([[0.0], [1.0]], dtype=dtype), p)
    assert np.isfinite(loss)


@pytest.mark.parametrize("dtype", DTYPES)
def test_probabilities_not_at_the_edges_are_not_moved(dtype):
    p = np.array([[1e-30], [0.3], [1 - 1e-6]], dtype=dtype)
    np.testing.assert_array_equal(task2a.clip_probabilities(p), p)
