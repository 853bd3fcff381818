"""Tasks 3a and 4b: softmax regression with L2. With x in R^785 and w (785, 10), column k w_k:

    z_k   = w_k^T x,      y_hat_k = exp(z_k) / sum_k' exp(z_k')
    J(w)  = -(1/N) sum_n sum_k y_k^n ln y_hat_k^n  +  lambda 1/2 sum_ij w_ij^2
    dJ/dw = -(1/N) X^T (Y - Y_hat) + lambda w                            (tasks 1b and 4a)

The course's functions in its order; beside its ``gradient_approximation_test``,
``gradient_check`` reports the same test's numbers, with the L2 term. Each public function
checks its arguments on entry (``_check...`` at the end); a logit that is not finite raises
FloatingPointError.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np

import utils
from task2a import pre_process_images


def cross_entropy_loss(targets: np.ndarray, outputs: np.ndarray) -> float:
    """The mean cross entropy C = -(1/N) sum_n sum_k y_k^n ln y_hat_k^n (a float) of one-hot
    targets (N, K) and probabilities outputs (N, K)."""
    y_hat = _check_targets(targets, outputs)
    return float(-np.sum(targets * np.log(y_hat)) / targets.shape[0])


class SoftmaxModel:

    def __init__(self, l2_reg_lambda: float):
        # Define number of input nodes
        self.I = 785
        # Define number of output nodes
        self.num_outputs = 10
        self.w = np.zeros((self.I, self.num_outputs))
        self.grad = None
        if isinstance(l2_reg_lambda, bool) or not isinstance(l2_reg_lambda, Real) or \
                not 0 <= l2_reg_lambda < np.inf:
            raise ValueError(f"l2_reg_lambda must be a finite number >= 0, got {l2_reg_lambda!r}")
        self.l2_reg_lambda = float(l2_reg_lambda)

    def forward(self, X: np.ndarray) -> np.ndarray:
        """X: (N, 785) images -> (N, 10) class probabilities softmax(X w); each row sums to 1."""
        _check_batch(X, self.w)
        with np.errstate(over="ignore", under="ignore"):  # softmax refuses a logit that overflowed
            z = (self.w.T @ X.T).T  # z = X w, as (w^T X^T)^T: BLAS runs this orientation faster
        return softmax(z)

    def backward(self, X: np.ndarray, outputs: np.ndarray, targets: np.ndarray) -> None:
        """Store in ``self.grad`` (785, 10) the batch mean of task 1b's gradient plus task 4a's
        L2 term, -X^T (Y - Y_hat) / N + lambda w, for images X (N, 785), their outputs (N, 10)
        from ``forward`` and one-hot targets (N, 10)."""
        _check_batch(X, self.w, outputs)
        _check_targets(targets, outputs)
        with np.errstate(under="ignore"):  # -X^T (Y - Y_hat) / N, in the faster orientation
            self.grad = -((targets - outputs).T @ X).T / X.shape[0] + self.l2_reg_lambda * self.w
        assert self.grad.shape == self.w.shape,\
            f"Grad shape: {self.grad.shape}, w: {self.w.shape}"

    def zero_grad(self) -> None:
        self.grad = None


def one_hot_encode(Y: np.ndarray, num_classes: int) -> np.ndarray:
    """(N, 1) or (N,) integer labels -> (N, num_classes) one-hot rows, float64:
    label 3 -> [0, 0, 0, 1, 0, 0, 0, 0, 0, 0], row 3 of the identity matrix."""
    return np.eye(num_classes)[_check_labels(Y, num_classes)]


def gradient_approximation_test(model: SoftmaxModel, X: np.ndarray, Y: np.ndarray):
    """
        Numerical approximation for gradients. Should not be edited. 
        Details about this test is given in the appendix in the assignment.
    """
    w_orig = np.random.normal(loc=0, scale=1/model.w.shape[0]**2, size=model.w.shape)

    epsilon = 1e-3
    for i in range(model.w.shape[0]):
        for j in range(model.w.shape[1]):
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


def gradient_check(model: SoftmaxModel, X: np.ndarray, Y: np.ndarray,
                   epsilon: float = 1e-3) -> tuple[float, float]:
    """The course's test at the model's current weights (kept), of J = C + lambda/2 ||w||^2:
    (J(w_ij + eps) - J(w_ij - eps)) / (2 eps) against ``backward``'s gradient, within eps^2
    (else AssertionError); returns the largest |difference| and the relative error."""
    w, lam = model.w, model.l2_reg_lambda
    model.backward(X, model.forward(X), Y)
    analytic, numeric = model.grad, np.empty(w.shape)
    for index in np.ndindex(*w.shape):
        cost = []
        for step in (epsilon, -epsilon):
            model.w = w.copy()
            model.w[index] += step
            cost.append(cross_entropy_loss(Y, model.forward(X)) + lam / 2 * np.sum(model.w ** 2))
        numeric[index] = (cost[0] - cost[1]) / (2 * epsilon)
    model.w = w
    difference = np.abs(numeric - analytic)
    worst = np.unravel_index(difference.argmax(), w.shape)
    assert difference[worst] <= epsilon ** 2, \
        f"Calculated gradient is incorrect for weight {worst}: approximation {numeric[worst]}, " \
        f"backward {analytic[worst]}, difference {difference[worst]:.1e} > {epsilon ** 2:.0e}"
    scale = np.linalg.norm(numeric) + np.linalg.norm(analytic)
    return float(difference.max()), float(np.linalg.norm(numeric - analytic) / scale)


def softmax(z: np.ndarray) -> np.ndarray:
    """Each row of finite logits z (..., K) -> exp(z_k - m) / sum_k' exp(z_k' - m), m the row's
    largest logit: softmax itself (exp(-m) cancels), and no exp can overflow."""
    if not np.isfinite(z).all():
        raise FloatingPointError("a logit w_k^T x is not finite: the weights have diverged "
                                 "(or X holds inf)")
    with np.errstate(under="ignore"):  # exp(very negative) and its share round to 0: correctly
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)


def _check_batch(X: Any, w: Any, outputs: Any = None) -> None:
    """X (N, 785) numbers for the float weights w (785, K); outputs, if given, (N, K)."""
    if not (isinstance(w, np.ndarray) and w.ndim == 2 and w.dtype.kind == "f"):
        raise ValueError(f"model.w must be a 2-D float array (785, 10), got "
                         f"{getattr(w, 'dtype', type(w).__name__)} {np.shape(w)}")
    if not (isinstance(X, np.ndarray) and X.dtype.kind in "uif" and X.shape[1:] == w.shape[:1]
            and X.ndim == 2):
        raise ValueError(f"X must be a NumPy array (N, {len(w)}) of preprocessed images (see "
                         f"pre_process_images), got {type(X).__name__} {np.shape(X)}")
    if outputs is not None and np.shape(outputs) != (len(X), w.shape[1]):
        raise ValueError(f"outputs must be ({len(X)}, {w.shape[1]}) from forward(X), got "
                         f"{np.shape(outputs)}")


def _check_targets(targets: Any, outputs: Any) -> np.ndarray:
    """Check that targets are one-hot rows and outputs probabilities of one (N, K) shape;
    return the outputs as floats, at least the dtype's tiny (so that ln y_hat is finite)."""
    if not all(isinstance(a, np.ndarray) and a.dtype.kind in "uif" for a in (targets, outputs)) \
            or targets.ndim != 2 or targets.shape != outputs.shape or not len(targets):
        raise ValueError(f"targets and outputs must be NumPy arrays of numbers of one shape "
                         f"(N, K), N >= 1; got {np.shape(targets)} and {np.shape(outputs)}")
    one_hot = ((targets == 0) | (targets == 1)).all(axis=1) & (targets.sum(axis=1) == 1)
    if not one_hot.all():
        row = int(np.argmin(one_hot))
        raise ValueError(f"targets must be one-hot rows (a single 1, the rest 0), row {row} is "
                         f"{targets[row].tolist()}; encode labels with one_hot_encode(Y, 10)")
    if not (outputs.min() >= 0 and outputs.max() <= 1):  # NaN fails both
        raise ValueError(f"outputs must be probabilities in [0, 1] from forward, got values "
                         f"in [{outputs.min()}, {outputs.max()}]")
    dtype = outputs.dtype if outputs.dtype.kind == "f" else np.dtype(np.float64)
    return np.maximum(outputs, np.finfo(dtype).tiny, dtype=dtype)


def _check_labels(Y: Any, num_classes: Any) -> np.ndarray:
    """Y as (N,) integer labels in [0, num_classes)."""
    labels = np.asarray(Y)
    labels = labels[:, 0] if labels.shape[1:] == (1,) else labels
    if isinstance(num_classes, bool) or not isinstance(num_classes, Integral) or num_classes < 1:
        raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    if labels.ndim != 1 or labels.dtype.kind not in "ui" or (
            labels.size and not 0 <= labels.min() <= labels.max() < num_classes):
        raise ValueError(f"Y must be (N, 1) or (N,) integer labels in [0, {num_classes}), got "
                         f"{labels.dtype} {np.shape(Y)} {np.unique(labels)[:5]}")
    return labels


if __name__ == "__main__":
    np.random.seed(1)  # the course's seed, for the random weights of its test
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
        gradient_approximation_test(model, X_train, Y_train)
        model.w = np.random.randn(*model.w.shape)
    print("Task 3a: the course's gradient_approximation_test passed, twice")
    rng = np.random.default_rng(1)  # the same test, at draws like its own, with its numbers
    for lam in (0.0, 0.0, 2.0):  # two checks of task 3a, one of task 4b's L2 term
        model = SoftmaxModel(lam)
        model.w = rng.normal(0, 1 / 785 ** 2, model.w.shape)
        largest, relative = gradient_check(model, X_train, Y_train)
        print(f"Task {'4b' if lam else '3a'}: gradient check with lambda = {lam:g} passed: "
              f"largest |difference| {largest:.1e} (tolerance 1e-06), relative error "
              f"{relative:.1e}")
