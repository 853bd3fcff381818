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
def test_probabilities_of_exactly_0_and_1_give_a_finite_loss_in_their_dtype(dtype, strict):
    """1 - 1e-15 is exactly 1.0 in float32: the clip keeps ln(1 - p) finite in the dtype's own
    terms: p = 1 becomes 1 - epsneg and p = 0 becomes tiny, both of that dtype."""
    p = np.array([[1.0], [0.0]], dtype=dtype)
    loss = task2a.cross_entropy_loss(np.array([[0.0], [1.0]], dtype=dtype), p)
    info = np.finfo(dtype)
    want = -(np.log(info.epsneg.astype(np.float64)) + np.log(info.tiny.astype(np.float64))) / 2
    assert np.isfinite(loss) and loss == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_probabilities_not_at_the_edges_are_not_moved(dtype):
    p = np.array([[1e-30], [0.3], [1 - 1e-6]], dtype=dtype)
    y = np.array([[1.0], [0.0], [1.0]], dtype=dtype)
    p64 = p.astype(np.float64)
    want = -np.mean(y * np.log(p64) + (1 - y) * np.log1p(-p64))
    assert task2a.cross_entropy_loss(y, p) == pytest.approx(want, rel=1e-6)
