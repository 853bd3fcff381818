"""Task 2a: logistic regression for two digits, from scratch.

With the bias trick an image is x in R^785 (784 pixels in [-1, 1], then a 1) and

    y_hat = f(x) = sigmoid(w^T x),                                     w in R^(785 x 1)
    C(w)  = -(1/N) sum_n [ y^n ln y_hat^n + (1 - y^n) ln(1 - y_hat^n) ]
    dC/dw = -(1/N) X^T (y - y_hat)                                     (task 1a)

The course's functions come first, in the course's order: ``pre_process_images``,
``cross_entropy_loss``, ``BinaryModel`` (``forward``, ``backward``) and its
``gradient_approximation_test`` (as the course wrote it). After them: the numerically careful
``sigmoid``, ``gradient_check`` (the same test at chosen weights, with relative errors), and
the input checks, each called once at a public entry point.

Everything works in the dtype of its inputs (float64 as the course has it, float32 too) and
stays finite for any weights: the sigmoid never overflows, and probabilities are kept away from
0 and 1 by a margin representable in their dtype before a log is taken.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

import utils

NUM_PIXELS = 784


def pre_process_images(X: np.ndarray) -> np.ndarray:
    """Scale pixels from [0, 255] to [-1, 1] and append the bias column.

    Args:
        X: (N, 784) raw images, any integer or float dtype, values in [0, 255].
    Returns:
        (N, 785) float64: 2 X / 255 - 1, then a column of ones.
    """
    _check_raw_images(X)
    X_out = np.empty((X.shape[0], NUM_PIXELS + 1))
    np.multiply(X, 2 / 255, out=X_out[:, :-1], dtype=np.float64)  # 2 X / 255 - 1, in place
    X_out[:, :-1] -= 1
    X_out[:, -1] = 1  # the bias trick
    return X_out


def cross_entropy_loss(targets: np.ndarray, outputs: np.ndarray) -> float:
    """Mean binary cross entropy of a batch.

    Args:
        targets: (N, 1) labels in {0, 1}; outputs: (N, 1) probabilities y_hat.
    Returns:
        C = -(1/N) sum_n [y ln y_hat + (1 - y) ln(1 - y_hat)], a float.
    """
    check_binary_targets(targets, outputs)
    y, y_hat = targets, clip_probabilities(outputs)
    with np.errstate(under="ignore"):
        losses = -(y * np.log(y_hat) + (1 - y) * np.log1p(-y_hat))  # log1p(-p) = ln(1 - p)
    return float(np.mean(losses, dtype=np.float64))


class BinaryModel:
    """Logistic regression: y_hat = sigmoid(X w), w of shape (785, 1)."""

    def __init__(self) -> None:
        self.I = NUM_PIXELS + 1
        self.w = np.zeros((self.I, 1))
        self.grad: np.ndarray | None = None

    def forward(self, X: np.ndarray) -> np.ndarray:
        """X: (N, 785) images -> (N, 1) probabilities y_hat = sigmoid(X w) of class 1."""
        check_images(X, self.w, columns=1)
        with np.errstate(under="ignore"):
            return sigmoid(X @ self.w)

    def backward(self, X: np.ndarray, outputs: np.ndarray, targets: np.ndarray) -> None:
        """Store in ``self.grad`` (785, 1) the batch mean of task 1a's gradient.

        Args:
            X: (N, 785) images; outputs: (N, 1) from ``forward``; targets: (N, 1) in {0, 1}.
        """
        check_images(X, self.w, outputs, columns=1)
        check_binary_targets(targets, outputs)
        with np.errstate(under="ignore"):  # the sign and 1/N applied to the small (N, 1) factor
            self.grad = X.T @ ((outputs - targets) / X.shape[0])
        assert self.grad.shape == self.w.shape, \
            f"Grad shape: {self.grad.shape}, w: {self.w.shape}"

    def zero_grad(self) -> None:
        self.grad = None


def gradient_approximation_test(model: BinaryModel, X: np.ndarray, Y: np.ndarray) -> float:
    """
        Numerical approximation for gradients. Should not be edited.
        Details about this test is given in the appendix in the assignment.

        (The course's test, as it wrote it; it also returns the largest |difference|.)
    """
    w_orig = np.random.normal(loc=0, scale=1/model.w.shape[0]**2, size=model.w.shape)
    epsilon = 1e-3
    largest = 0.0
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
            f"Approximation: {gradient_approximation}, actual gradient: {model.grad[i, 0]}\n" \
            f"If this test fails there could be errors in your cross entropy loss function, " \
            f"forward function or backward function"
        largest = max(largest, abs(difference))
    return largest


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) for any z without overflow, in z's float dtype (float64 for ints)."""
    z = np.asarray(z)
    if z.dtype.kind not in "biuf":
        raise TypeError(f"z must be an array of real numbers, got dtype {z.dtype}")
    z = z if z.dtype.kind == "f" else z.astype(np.float64)
    with np.errstate(under="ignore"):
        e = np.exp(-np.abs(z))  # in (0, 1]: exp never overflows
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)


def clip_probabilities(p: np.ndarray) -> np.ndarray:
    """p clipped to [tiny, 1 - epsneg] of its own dtype, so that ln p and ln(1 - p) are finite.

    Only values that rounded to exactly 0 or 1 move; a fixed 1 - 1e-15 would be 1.0 in float32.
    """
    info = np.finfo(p.dtype)
    return np.clip(p, info.tiny, 1 - info.epsneg)


class GradientCheck(NamedTuple):
    """max |analytic - numeric| and ||analytic - numeric|| / (||analytic|| + ||numeric||)."""

    max_abs_error: float
    rel_error: float
    num_weights: int


def gradient_check(model: Any, X: np.ndarray, Y: np.ndarray,
                   loss: Callable[[np.ndarray, np.ndarray], float] = cross_entropy_loss,
                   epsilon: float = 1e-3) -> GradientCheck:
    """The course's test at the model's *current* weights, with its L2 term.

    For every weight w_ij, (J(w + eps e_ij) - J(w - eps e_ij)) / (2 eps) must agree with
    ``model.backward``'s gradient within eps^2, where J = loss(Y, model.forward(X)) +
    lambda / 2 ||w||^2 (lambda is ``model.l2_reg_lambda``, 0 if absent). Raises AssertionError
    naming the first weight that fails; the weights are left as they were.
    """
    lam = getattr(model, "l2_reg_lambda", 0.0)

    def cost() -> float:
        return loss(Y, model.forward(X)) + lam / 2 * float(np.sum(model.w ** 2))

    w_orig = model.w.copy()
    model.backward(X, model.forward(X), Y)
    analytic, numeric = np.array(model.grad, dtype=np.float64), np.empty(model.w.shape)
    try:
        for index in np.ndindex(*model.w.shape):
            model.w[index] = w_orig[index] + epsilon
            cost_plus = cost()
            model.w[index] = w_orig[index] - epsilon
            numeric[index] = (cost_plus - cost()) / (2 * epsilon)
            model.w[index] = w_orig[index]
            difference = numeric[index] - analytic[index]
            assert abs(difference) <= epsilon ** 2, (
                f"Calculated gradient is incorrect for weight {index}: approximation "
                f"{numeric[index]}, backward {analytic[index]} (difference {difference:.2e}, "
                f"tolerance {epsilon ** 2:.0e}); check cross_entropy_loss, forward and backward")
    finally:
        model.w = w_orig
    scale = np.linalg.norm(numeric) + np.linalg.norm(analytic)
    relative = float(np.linalg.norm(numeric - analytic) / scale) if scale else 0.0
    return GradientCheck(float(np.abs(numeric - analytic).max()), relative, analytic.size)


# --- input checks: each public function calls them once, before its formula ---------------

def _as_array(a: Any, name: str) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(a).__name__}")
    if a.dtype == np.bool_ or a.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    return a


def _check_raw_images(X: Any) -> None:
    _as_array(X, "X")
    if X.ndim != 2 or X.shape[1] != NUM_PIXELS:
        raise ValueError(f"X must be (N, {NUM_PIXELS}) raw images, got shape {X.shape}")
    if X.dtype != np.uint8 and X.size:
        low, high = X.min(), X.max()
        if not (low >= 0 and high <= 255):  # NaN fails both
            raise ValueError(f"pixels must lie in [0, 255], got values in [{low}, {high}]; "
                             f"pass the raw images from utils, not preprocessed ones")
        if X.dtype.kind == "f" and high <= 1 and not np.array_equal(X, np.round(X)):
            raise ValueError(f"pixels look already scaled to [0, 1] (largest {high}); pass "
                             f"the raw images with values in [0, 255]")


def check_images(X: Any, w: Any, outputs: Any = None, columns: int | None = None) -> None:
    """Raise unless w is (785, K) floats (K = ``columns`` if given), X (N, 785) numbers and
    outputs (if given) (N, K)."""
    _as_array(X, "X")
    if not isinstance(w, np.ndarray) or w.ndim != 2 or w.dtype.kind != "f" or \
            w.shape[0] != NUM_PIXELS + 1 or w.shape[1] != (columns or w.shape[1]):
        got = f"{w.dtype} {w.shape}" if isinstance(w, np.ndarray) else type(w).__name__
        raise ValueError(f"model.w must be a 2-D float array (785, {columns or 'K'}), got "
                         f"{got}; reset it with np.zeros((785, {columns or 10}))")
    if X.ndim != 2 or X.shape[1] != w.shape[0]:
        raise ValueError(f"X must be (N, {w.shape[0]}) preprocessed images (bias column "
                         f"included, see pre_process_images), got shape {X.shape}")
    if outputs is not None and np.shape(outputs) != (X.shape[0], w.shape[1]):
        raise ValueError(f"outputs must be ({X.shape[0]}, {w.shape[1]}) from forward(X), got "
                         f"shape {np.shape(outputs)}")


def check_outputs(targets: Any, outputs: Any, columns: int | None) -> None:
    """Raise unless targets and outputs are non-empty arrays of one (N, columns) shape whose
    outputs are probabilities in [0, 1] (``columns`` None: any K)."""
    _as_array(targets, "targets")
    _as_array(outputs, "outputs")
    want = "(N, K)" if columns is None else f"(N, {columns})"
    if targets.shape != outputs.shape or outputs.ndim != 2 or (
            columns is not None and outputs.shape[1] != columns):
        raise ValueError(f"targets and outputs must both be {want}, got targets "
                         f"{targets.shape} and outputs {outputs.shape}")
    if outputs.shape[0] == 0:
        raise ValueError("targets and outputs hold no examples; a mean over an empty batch "
                         "is undefined")
    if not (outputs.min() >= 0 and outputs.max() <= 1):  # NaN is not a probability
        raise ValueError(f"outputs must be probabilities in [0, 1] from the model's forward, "
                         f"got values in [{np.min(outputs)}, {np.max(outputs)}] (NaN means "
                         f"the weights have diverged)")


def check_binary_targets(targets: Any, outputs: Any) -> None:
    """Raise unless targets (N, 1) are all 0 or 1 and outputs are (N, 1) probabilities."""
    check_outputs(targets, outputs, 1)
    bad = (targets != 0) & (targets != 1)
    if bad.any():
        raise ValueError(f"targets must be 0 or 1 (1 for the first digit, 0 for the second), "
                         f"got {targets[bad][0]!r}; prune the labels with "
                         f"utils.binary_prune_dataset")


if __name__ == "__main__":
    np.random.seed(1)  # the course's seed, for the test's random weights
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
        largest = gradient_approximation_test(model, X_train, Y_train)
        print(f"gradient check {i + 1} passed: largest |difference| {largest:.1e} <= 1e-6")
        model.w = np.random.randn(*model.w.shape)
