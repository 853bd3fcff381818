"""Task 2a: logistic regression for two digits. With the bias trick x in R^785, and

    y_hat = f(x) = sigmoid(w^T x),                                      w in R^(785 x 1)
    C(w)  = -(1/N) sum_n [ y^n ln y_hat^n + (1 - y^n) ln(1 - y_hat^n) ]
    dC/dw = -(1/N) X^T (y - y_hat)                                      (task 1a)

The course's functions in its order; beside its ``gradient_approximation_test``,
``gradient_check`` reports the same test's numbers. Each public function checks its arguments
on entry (``_check...`` at the end); a logit that is not finite raises FloatingPointError.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import utils


def pre_process_images(X: np.ndarray) -> np.ndarray:
    """(N, 784) pixels in [0, 255] -> (N, 785) float64: 2 X / 255 - 1 in [-1, 1], then a
    column of ones (the bias trick)."""
    _check_raw_images(X)
    return np.hstack([X / 127.5 - 1, np.ones((len(X), 1))])


def cross_entropy_loss(targets: np.ndarray, outputs: np.ndarray) -> float:
    """The mean binary cross entropy C = -(1/N) sum_n [y ln y_hat + (1 - y) ln(1 - y_hat)]
    (a float) of targets (N, 1) in {0, 1} and probabilities outputs (N, 1)."""
    y, y_hat = targets, _probabilities(targets, outputs)
    return float(-np.mean(y * np.log(y_hat) + (1 - y) * np.log1p(-y_hat)))


class BinaryModel:

    def __init__(self):
        # Define number of input nodes
        self.I = 785
        self.w = np.zeros((self.I, 1))
        self.grad = None

    def forward(self, X: np.ndarray) -> np.ndarray:
        """X: (N, 785) images -> (N, 1) probabilities y_hat = sigmoid(X w) of class 1."""
        _check_images(X, self.w)
        with np.errstate(over="ignore", under="ignore"):  # sigmoid refuses a logit that overflowed
            z = X @ self.w
        return sigmoid(z)

    def backward(self, X: np.ndarray, outputs: np.ndarray, targets: np.ndarray) -> None:
        """Store in ``self.grad`` (785, 1) the batch mean of task 1a's gradient, -X^T (y - y_hat)
        / N, for images X (N, 785), their outputs (N, 1) from ``forward`` and targets in {0, 1}."""
        _check_images(X, self.w, outputs)
        _probabilities(targets, outputs)
        with np.errstate(under="ignore"):
            self.grad = -(X.T @ (targets - outputs)) / X.shape[0]
        assert self.grad.shape == self.w.shape,\
            f"Grad shape: {self.grad.shape}, w: {self.w.shape}"

    def zero_grad(self) -> None:
        self.grad = None


def gradient_approximation_test(model: BinaryModel, X: np.ndarray, Y: np.ndarray):
    """
        Numerical approximation for gradients. Should not be edited. 
        Details about this test is given in the appendix in the assignment.
    """
    w_orig = np.random.normal(loc=0, scale=1/model.w.shape[0]**2, size=model.w.shape)
    epsilon = 1e-3
    for i in range(w_orig.shape[0]):
        model.w = w_orig.copy()
        orig = w_orig[i].copy()
        model.w[i] = orig + epsilon
        logits = model.forward(X)
        cost1 = cross_entropy_loss(Y, logits)
        model.w[i] = orig - epsilon
        logits = model.forward(X)
        cost2 = cross_entropy_loss(Y, logits)
        gradient_approximation = (cost1 - cost2) / (2 * epsilon)
        model.w[i] = orig
        # Actual gradient
        logits = model.forward(X)
        model.backward(X, logits, Y)
        difference = gradient_approximation - model.grad[i, 0]
        assert abs(difference) <= epsilon**2,\
            f"Calculated gradient is incorrect. " \
            f"Approximation: {gradient_approximation}, actual gradient: {model.grad[i,0]}\n" \
            f"If this test fails there could be errors in your cross entropy loss function, " \
            f"forward function or backward function"


def gradient_check(model: BinaryModel, X: np.ndarray, Y: np.ndarray,
                   epsilon: float = 1e-3) -> tuple[float, float]:
    """The course's test at the model's current weights (kept): (C(w_i + eps) - C(w_i - eps)) /
    (2 eps) against ``backward``'s gradient, within eps^2 (else AssertionError); returns the
    largest |difference| and ||numeric - analytic|| / (||numeric|| + ||analytic||)."""
    w = model.w
    model.backward(X, model.forward(X), Y)
    analytic, numeric = model.grad, np.empty(w.shape)
    for i in np.ndindex(*w.shape):
        cost = []
        for step in (epsilon, -epsilon):
            model.w = w.copy()
            model.w[i] += step
            cost.append(cross_entropy_loss(Y, model.forward(X)))
        numeric[i] = (cost[0] - cost[1]) / (2 * epsilon)
    model.w = w
    difference = np.abs(numeric - analytic)
    worst = np.unravel_index(difference.argmax(), w.shape)
    assert difference[worst] <= epsilon ** 2, \
        f"Calculated gradient is incorrect for weight {worst}: approximation {numeric[worst]}, " \
        f"backward {analytic[worst]}, difference {difference[worst]:.1e} > {epsilon ** 2:.0e}"
    scale = np.linalg.norm(numeric) + np.linalg.norm(analytic)
    return float(difference.max()), float(np.linalg.norm(numeric - analytic) / scale)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) of finite logits z, computed as exp(min(z, 0)) / (1 + exp(-|z|)):
    the same function, whose exp never overflows."""
    if not np.isfinite(z).all():
        raise FloatingPointError("a logit w^T x is not finite: the weights have diverged "
                                 "(or X holds inf)")
    with np.errstate(under="ignore"):
        return np.exp(np.minimum(z, 0)) / (1 + np.exp(-np.abs(z)))


def _check_raw_images(X: Any) -> None:
    if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] == 784
            and X.dtype.kind in "uif"):
        raise ValueError(f"X must be a NumPy array (N, 784) of raw pixels, got "
                         f"{type(X).__name__} {np.shape(X)}")
    if X.size and not (X.min() >= 0 and X.max() <= 255):  # NaN fails both
        raise ValueError(f"pixels must lie in [0, 255], got values in [{X.min()}, {X.max()}]; "
                         f"pass the raw images from utils, not preprocessed ones")
    if X.size and X.dtype.kind == "f" and X.max() <= 1 and (X != np.round(X)).any():
        raise ValueError(f"pixels look already scaled to [0, 1] (largest {X.max()}); pass the "
                         f"raw images, values in [0, 255]")


def _check_images(X: Any, w: Any, outputs: Any = None) -> None:
    if not (isinstance(w, np.ndarray) and w.ndim == 2 and w.dtype.kind == "f"):
        raise ValueError(f"model.w must be a 2-D float array (785, K), got "
                         f"{getattr(w, 'dtype', type(w).__name__)} {np.shape(w)}")
    if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] == len(w)
            and X.dtype.kind in "uif"):
        raise ValueError(f"X must be (N, {len(w)}) preprocessed images (see pre_process_images), "
                         f"a NumPy array of numbers; got {type(X).__name__} {np.shape(X)}")
    if outputs is not None and np.shape(outputs) != (len(X), w.shape[1]):
        raise ValueError(f"outputs must be ({len(X)}, {w.shape[1]}) from forward(X), got "
                         f"{np.shape(outputs)}")


def _probabilities(targets: Any, outputs: Any) -> np.ndarray:
    """Both arrays checked; the outputs as floats clipped to [tiny, 1 - epsneg] of their dtype,
    so that both logs are finite."""
    if not (all(isinstance(a, np.ndarray) and a.dtype.kind in "uif" for a in (targets, outputs))
            and targets.shape == outputs.shape and outputs.shape[1:] == (1,) and len(outputs)):
        raise ValueError(f"targets and outputs must be NumPy arrays of numbers of one shape "
                         f"(N, 1), N >= 1; got {np.shape(targets)} and {np.shape(outputs)}")
    if not ((targets == 0) | (targets == 1)).all():
        raise ValueError(f"targets must be 0 or 1, got {np.unique(targets)[:5]}; prune the "
                         f"labels with utils.binary_prune_dataset")
    if not (outputs.min() >= 0 and outputs.max() <= 1):  # NaN fails both
        raise ValueError(f"outputs must be probabilities in [0, 1] from forward, got values "
                         f"in [{outputs.min()}, {outputs.max()}]")
    info = np.finfo(outputs.dtype if outputs.dtype.kind == "f" else np.float64)
    return np.clip(outputs, info.tiny, 1 - info.epsneg, dtype=info.dtype)


if __name__ == "__main__":
    np.random.seed(1)  # the course's seed, for the random weights of its test
    category1, category2 = 2, 3
    X_train, Y_train, *_ = utils.load_binary_dataset(category1, category2)
    X_train = pre_process_images(X_train)
    assert X_train.max() <= 1.0, \
        "The images (X_train) should be normalized to the range [-1, 1]"
    assert X_train.min() < 0 and X_train.min() >= -1, \
        "The images (X_train) should be normalized to the range [-1, 1]"
    assert X_train.shape[1] == 785, \
        f"Expected X_train to have 785 elements per image. Shape was: {X_train.shape}"

    # Simple test for forward pass. Note that this does not cover all errors!
    model = BinaryModel()
    logits = model.forward(X_train)
    np.testing.assert_almost_equal(
        logits.mean(), .5,
        err_msg="Since the weights are all 0's, the sigmoid activation should be 0.5")

    # Gradient approximation check for 100 images
    X_train = X_train[:100]
    Y_train = Y_train[:100]
    for i in range(2):
        gradient_approximation_test(model, X_train, Y_train)
        model.w = np.random.randn(*model.w.shape)
    print("Task 2a: the course's gradient_approximation_test passed, twice")
    rng = np.random.default_rng(1)  # the same test, at two draws like its own, with its numbers
    for draw in (1, 2):
        model.w = rng.normal(0, 1 / 785 ** 2, model.w.shape)
        largest, relative = gradient_check(model, X_train, Y_train)
        print(f"Task 2a: gradient check {draw} passed: largest |difference| {largest:.1e} "
              f"(tolerance 1e-06), relative error {relative:.1e}")
