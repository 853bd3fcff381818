"""Tasks 3a and 4b: softmax regression for ten digits, with L2 regularisation.

With the bias trick an image is x in R^785; the weights w are (785, 10), column k holding w_k:

    z_k     = w_k^T x,      y_hat_k = exp(z_k) / sum_k' exp(z_k')
    J(w)    = -(1/N) sum_n sum_k y_k^n ln y_hat_k^n  +  lambda * 1/2 sum_ij w_ij^2
    dJ/dw   = -(1/N) X^T (Y - Y_hat) + lambda w                       (tasks 1b and 4a)

The course's functions come first, in its order: ``one_hot_encode``, ``cross_entropy_loss``,
``SoftmaxModel`` (``forward``, ``backward``) and its ``gradient_approximation_test`` (as the
course wrote it). After them: ``softmax``, which subtracts each row's largest logit before
exponentiating (so exp never overflows), and the input checks.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np

import utils
from task2a import check_images, check_outputs, pre_process_images

__all__ = ["SoftmaxModel", "cross_entropy_loss", "gradient_approximation_test",
           "one_hot_encode", "pre_process_images", "softmax"]


def one_hot_encode(Y: np.ndarray, num_classes: int) -> np.ndarray:
    """Integer labels -> one-hot rows: label 3 -> [0, 0, 0, 1, 0, 0, 0, 0, 0, 0].

    Args:
        Y: (N, 1) or (N,) integer labels in [0, num_classes).
    Returns:
        (N, num_classes) float64 with a single 1 per row.
    """
    labels = _check_labels(Y, num_classes)
    encoded = np.zeros((labels.shape[0], num_classes))
    encoded[np.arange(labels.shape[0]), labels] = 1
    return encoded


def cross_entropy_loss(targets: np.ndarray, outputs: np.ndarray) -> float:
    """Mean multi-class cross entropy of a batch.

    Args:
        targets: (N, K) one-hot labels; outputs: (N, K) softmax probabilities.
    Returns:
        C = -(1/N) sum_n sum_k y_k^n ln y_hat_k^n, a float.
    """
    check_one_hot_targets(targets, outputs)
    y_hat = np.maximum(outputs, np.finfo(outputs.dtype).tiny)  # ln 0 = -inf; ln 1 = 0 is fine
    with np.errstate(under="ignore"):
        return float(-np.sum(targets * np.log(y_hat), dtype=np.float64) / targets.shape[0])


class SoftmaxModel:
    """Softmax regression: Y_hat = softmax(X w), w of shape (785, 10), with an L2 term."""

    def __init__(self, l2_reg_lambda: float = 0.0) -> None:
        self.I = 785
        self.num_outputs = 10
        self.l2_reg_lambda = check_l2_reg_lambda(l2_reg_lambda)
        self.w = np.zeros((self.I, self.num_outputs))
        self.grad: np.ndarray | None = None

    def forward(self, X: np.ndarray) -> np.ndarray:
        """X: (N, 785) images -> (N, 10) class probabilities softmax(X w); rows sum to 1."""
        check_images(X, self.w)
        with np.errstate(under="ignore"):
            return softmax(X @ self.w)

    def backward(self, X: np.ndarray, outputs: np.ndarray, targets: np.ndarray) -> None:
        """Store in ``self.grad`` (785, 10): -X^T (Y - Y_hat) / N + lambda w.

        Args:
            X: (N, 785) images; outputs: (N, 10) from ``forward``; targets: (N, 10) one-hot.
        """
        check_images(X, self.w, outputs)
        check_one_hot_targets(targets, outputs, self.num_outputs)
        with np.errstate(under="ignore"):  # the sign and 1/N applied to the small (N, K) factor
            self.grad = X.T @ ((outputs - targets) / X.shape[0]) + self.l2_reg_lambda * self.w
        assert self.grad.shape == self.w.shape, \
            f"Grad shape: {self.grad.shape}, w: {self.w.shape}"

    def zero_grad(self) -> None:
        self.grad = None


def gradient_approximation_test(model: SoftmaxModel, X: np.ndarray, Y: np.ndarray) -> float:
    """
        Numerical approximation for gradients. Should not be edited.
        Details about this test is given in the appendix in the assignment.

        (The course's test, as it wrote it; it also returns the largest |difference|.)
    """
    w_orig = np.random.normal(loc=0, scale=1/model.w.shape[0]**2, size=model.w.shape)
    epsilon = 1e-3
    largest = 0.0
    for i in range(w_orig.shape[0]):
        for j in range(w_orig.shape[1]):
            model.w = w_orig.copy()
            orig = model.w[i, j].copy()
            model.w[i, j] = orig + epsilon
            logits = model.forward(X)
            cost1 = cross_entropy_loss(Y, logits)
            model.w[i, j] = orig - epsilon
            logits = model.forward(X)
            cost2 = cross_entropy_loss(Y, logits)
            gradient_approximation = (cost1 - cost2) / (2 * epsilon)
            model.w[i, j] = orig
            # Actual gradient
            logits = model.forward(X)
            model.backward(X, logits, Y)
            difference = gradient_approximation - model.grad[i, j]
            assert abs(difference) <= epsilon**2,\
                f"Calculated gradient is incorrect. " \
                f"Approximation: {gradient_approximation}, actual gradient: {model.grad[i, j]}\n" \
                f"If this test fails there could be errors in your cross entropy loss function, " \
                f"forward function or backward function"
            largest = max(largest, abs(difference))
    return largest


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax along the last axis of logits z (..., K), finite for any z without NaN.

    Each row's largest logit is subtracted first, so exp never overflows. A row with +inf
    logits gets their limit (they share its probability, the rest get 0). Float dtypes are
    kept; integers give float64.
    """
    z = np.asarray(z)
    if z.dtype.kind not in "biuf":
        raise TypeError(f"z must be an array of real numbers, got dtype {z.dtype}")
    z = z if z.dtype.kind == "f" else z.astype(np.float64)
    if z.ndim == 0 or z.shape[-1] == 0:
        raise ValueError(f"softmax: z must be (..., K) logits with K >= 1, got shape {z.shape}")
    # each row's largest logit (NaN propagates into it), taken over a copy with the classes
    # first: NumPy reduces along a short last axis several times more slowly
    top = np.ascontiguousarray(z.T).max(axis=0).T[..., None]
    if not np.isfinite(top).all():
        if np.isnan(top).any() or np.isneginf(top).any():
            raise ValueError("softmax: a row of logits holds NaN or only -inf, so it has no "
                             "probabilities (the weights have diverged or the inputs hold NaN)")
        with np.errstate(invalid="ignore"):  # inf - inf in the rows replaced here
            z = np.where(np.isposinf(top), np.where(np.isposinf(z), 0.0, -np.inf),
                         z - top).astype(z.dtype)
        top = np.zeros_like(top)
    with np.errstate(under="ignore"):
        e = np.exp(z - top)  # z - top <= 0; exp(very negative) -> 0 is the right answer
    return e / e.sum(axis=-1, keepdims=True)  # the largest contributes 1: the sum is >= 1


# --- input checks: each public function calls them once, before its formula ---------------

def check_one_hot_targets(targets: Any, outputs: Any, num_classes: int | None = None) -> None:
    """Raise unless targets and outputs are (N, K) arrays of probabilities whose targets hold,
    in every block of ``num_classes`` columns (default all K), one 1 and otherwise 0."""
    check_outputs(targets, outputs, None)
    k = num_classes if num_classes and targets.shape[1] % num_classes == 0 else targets.shape[1]
    blocks = targets.reshape(-1, k)
    # one nonzero entry per block, and each block sums to 1: that entry is 1, the others are 0
    # (summed by a product with ones, faster than .sum(axis=-1) for short blocks; a block
    # with one nonzero entry sums to it exactly in any order)
    if not (np.count_nonzero(blocks) == len(blocks) and
            (blocks @ np.ones(k, blocks.dtype) == 1).all()):
        blocks = blocks.reshape(targets.shape[0], -1, k)
        one_hot = (((blocks != 0).sum(-1) == 1) & (blocks.sum(-1) == 1)).all(-1)
        row = int(np.flatnonzero(~one_hot)[0])
        raise ValueError(f"targets must be one-hot rows (a single 1, the rest 0), row {row} is "
                         f"{targets[row].tolist()}; encode labels with one_hot_encode(Y, 10)")


def check_l2_reg_lambda(value: Any) -> float:
    """The L2 strength as a float: a finite number >= 0."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(f"l2_reg_lambda must be a number >= 0, got {value!r} "
                        f"({type(value).__name__})")
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"l2_reg_lambda must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_labels(Y: Any, num_classes: Any) -> np.ndarray:
    """Y as (N,) intp labels in [0, num_classes)."""
    utils.check_count(num_classes, "num_classes", 1)
    Y = np.asarray(Y)
    if Y.ndim == 2 and Y.shape[1] == 1:
        Y = Y[:, 0]
    if Y.ndim != 1:
        raise ValueError(f"Y must be (N, 1) or (N,) integer labels, got shape {Y.shape}")
    if Y.size and (Y.dtype.kind not in "iuf" or not np.array_equal(Y, np.round(Y))):
        raise ValueError(f"labels must be integers, got dtype {Y.dtype}"
                         + (" with fractions" if Y.dtype.kind == "f" else ""))
    outside = (Y < 0) | (Y >= num_classes)
    if outside.any():
        raise ValueError(f"labels must lie in [0, {num_classes}), found {int(outside.sum())} "
                         f"outside it (e.g. {Y[outside][0]})")
    return Y.astype(np.intp)


if __name__ == "__main__":
    np.random.seed(1)  # the course's seed, for the test's random weights
    # Simple test on one-hot encoding
    Y = np.zeros((1, 1), dtype=int)
    Y[0, 0] = 3
    Y = one_hot_encode(Y, 10)
    assert Y[0, 3] == 1 and Y.sum() == 1, \
        f"Expected the vector to be [0,0,0,1,0,0,0,0,0,0], but got {Y}"

    X_train, Y_train, *_ = utils.load_full_mnist()
    X_train = pre_process_images(X_train)
    Y_train = one_hot_encode(Y_train, 10)
    assert X_train.shape[1] == 785, \
        f"Expected X_train to have 785 elements per image. Shape was: {X_train.shape}"

    # Simple test for forward pass. Note that this does not cover all errors!
    model = SoftmaxModel(0.0)
    logits = model.forward(X_train)
    np.testing.assert_almost_equal(
        logits.mean(), 1/10,
        err_msg="Since the weights are all 0's, the softmax activation should be 1/10")

    # Gradient approximation check for 100 images
    X_train = X_train[:100]
    Y_train = Y_train[:100]
    for i in range(2):
        largest = gradient_approximation_test(model, X_train, Y_train)
        print(f"gradient check {i + 1} passed: largest |difference| {largest:.1e} <= 1e-6")
        model.w = np.random.randn(*model.w.shape)
