"""Task 2a: logistic regression for two digits, from scratch.

With the bias trick an image is x in R^785 (784 pixels in [-1, 1], then a 1),
the model is

    y_hat = f(x) = sigmoid(w^T x),   w in R^(785 x 1),

and the cost of a batch is the mean binary cross entropy

    C(w) = -(1/N) sum_n [ y^n ln y_hat^n + (1 - y^n) ln(1 - y_hat^n) ],

whose gradient (task 1a) is dC/dw_i = -(1/N) sum_n (y^n - y_hat^n) x_i^n.

Everything works in the dtype of its inputs (float64 by the course's contract;
float32 too) and stays finite for any weights: the sigmoid is evaluated without
exp overflow, and probabilities are clipped away from 0 and 1 by a margin that
is representable in their dtype before a log is taken.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "BinaryModel",
    "GradientCheck",
    "accuracy_from_logits",
    "calculate_accuracy",
    "check_images",
    "cross_entropy_gradient",
    "cross_entropy_loss",
    "cross_entropy_loss_from_logits",
    "gradient_approximation_test",
    "pre_process_images",
    "sigmoid",
]

NUM_PIXELS = 784


def check_images(X: np.ndarray, who: str, features: int | None = None) -> None:
    """Raise ValueError unless X is a 2-D array (with ``features`` columns if given)."""
    if not isinstance(X, np.ndarray):
        raise TypeError(f"{who}: X must be a NumPy array, got {type(X).__name__}")
    if X.ndim != 2 or (features is not None and X.shape[1] != features):
        want = f"(N, {features})" if features is not None else "(N, D)"
        raise ValueError(f"{who}: X must have shape {want}, got {X.shape}")


def check_targets(targets: np.ndarray, outputs: np.ndarray, who: str) -> None:
    if targets.shape != outputs.shape:
        raise ValueError(f"{who}: targets and outputs must have the same shape, got targets "
                         f"{targets.shape} and outputs {outputs.shape}")


def pre_process_images(X: np.ndarray) -> np.ndarray:
    """Scale pixels to [-1, 1] and append the bias column.

    Args:
        X: (N, 784) images with values in [0, 255] (any integer or float dtype).
    Returns:
        (N, 785) float64: 2 * X / 255 - 1, then a column of ones (last).
    """
    check_images(X, "pre_process_images", NUM_PIXELS)
    if X.dtype != np.uint8 and X.size and (X.min() < 0 or X.max() > 255):
        raise ValueError(f"pre_process_images: pixels must lie in [0, 255], got values in "
                         f"[{X.min()}, {X.max()}]; pass the raw images from utils/mnist, "
                         f"not already preprocessed ones")
    out = np.empty((X.shape[0], NUM_PIXELS + 1), dtype=np.float64)
    np.multiply(X, 2.0 / 255.0, out=out[:, :NUM_PIXELS])
    out[:, :NUM_PIXELS] -= 1.0
    out[:, NUM_PIXELS] = 1.0
    return out


def _float_dtype(a: np.ndarray) -> np.dtype:
    return a.dtype if np.issubdtype(a.dtype, np.floating) else np.dtype(np.float64)


def clip_probabilities(p: np.ndarray) -> np.ndarray:
    """Clip to [tiny, 1 - epsneg] of p's dtype, so that ln p and ln(1 - p) are finite.

    Only values that rounded to exactly 0 or 1 move. The bounds come from the dtype:
    a fixed ``1 - 1e-15`` is exactly 1.0 in float32 and would let ln(1 - p) reach ln 0.
    """
    p = np.asarray(p)
    dtype = _float_dtype(p)
    info = np.finfo(dtype)
    return np.clip(p.astype(dtype, copy=False), info.tiny, 1 - info.epsneg)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) evaluated without overflow for any z, in z's dtype."""
    with np.errstate(under="ignore"):  # exp(-|z|) -> 0 for |z| > ~745 is the right answer
        e = np.exp(-np.abs(z))  # in [0, 1]: never overflows
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


def cross_entropy_loss(targets: np.ndarray, outputs: np.ndarray) -> float:
    """Mean binary cross entropy over the batch.

    Args:
        targets: (N, 1) labels in {0, 1}.
        outputs: (N, 1) predicted probabilities y_hat.
    Returns:
        C = -(1/N) sum_n [y ln y_hat + (1 - y) ln(1 - y_hat)], a Python float.
    """
    check_targets(targets, outputs, "cross_entropy_loss")
    p = clip_probabilities(outputs)
    y = targets.astype(p.dtype, copy=False)
    loss = -(y * np.log(p) + (1 - y) * np.log1p(-p))
    return float(loss.mean())


def cross_entropy_loss_from_logits(targets: np.ndarray, logits: np.ndarray) -> float:
    """The same cost from logits z = w^T x, exactly: mean of softplus(z) - y z.

    softplus(z) = ln(1 + e^z) = max(z, 0) + ln(1 + e^-|z|) never overflows and
    needs no clipping. Reduced in float64 whatever the logits' dtype.
    Args:
        targets: (N, 1) labels in {0, 1}; logits: (N, 1).
    """
    check_targets(targets, logits, "cross_entropy_loss_from_logits")
    z = logits.astype(np.float64, copy=False)
    with np.errstate(under="ignore"):
        softplus = np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))
    return float((softplus - targets * z).mean())


def accuracy_from_logits(targets: np.ndarray, logits: np.ndarray) -> float:
    """Binary accuracy from logits: y_hat >= 0.5 exactly when z >= 0.

    Args:
        targets: (N, 1) labels in {0, 1}; logits: (N, 1).
    """
    check_targets(targets, logits, "accuracy_from_logits")
    return float(np.mean((logits >= 0) == (targets == 1)))


def cross_entropy_gradient(X: np.ndarray, outputs: np.ndarray, targets: np.ndarray,
                           w: np.ndarray, l2_reg_lambda: float = 0.0) -> np.ndarray:
    """-(1/N) X^T (Y - Y_hat) + lambda w: the batch-mean gradient of both models.

    The same expression serves logistic (task 1a) and softmax regression (task 1b) with
    the L2 term (task 4a), because both pair their output function with its cross entropy.
    Args:
        X: (N, 785) images; outputs, targets: (N, K); w: (785, K).
    Returns:
        (785, K) in the dtype of X and outputs.
    """
    error = outputs - targets.astype(outputs.dtype, copy=False)
    grad = X.T @ error / X.shape[0]
    if l2_reg_lambda:
        grad += l2_reg_lambda * w
    assert grad.shape == w.shape, f"Grad shape: {grad.shape}, w: {w.shape}"
    return grad


class BinaryModel:
    """Logistic regression: y_hat = sigmoid(X w), w of shape (785, 1)."""

    def __init__(self, l2_reg_lambda: float = 0.0):
        self.I = NUM_PIXELS + 1
        self.l2_reg_lambda = l2_reg_lambda
        self.w = np.zeros((self.I, 1))
        self.grad: np.ndarray | None = None

    def logits(self, X: np.ndarray) -> np.ndarray:
        """X: (N, 785) -> z = X w, (N, 1)."""
        check_images(X, "BinaryModel.forward", self.I)
        return X @ self.w

    def logits_from_transposed(self, XT: np.ndarray) -> np.ndarray:
        """The same logits from feature-major inputs: XT (785, N) -> (1, N) = (X w)^T.

        For large N this layout makes the product and the reductions over classes faster.
        """
        check_images(XT.T, "BinaryModel.logits_from_transposed", self.I)
        return self.w.T @ XT

    def forward(self, X: np.ndarray) -> np.ndarray:
        """X: (N, 785) -> (N, 1) probabilities of class 1."""
        return sigmoid(self.logits(X))

    def backward(self, X: np.ndarray, outputs: np.ndarray, targets: np.ndarray) -> None:
        """Store in ``self.grad`` (785, 1) the batch-mean gradient -x (y - y_hat) (+ lambda w).

        Args:
            X: (N, 785) images; outputs: (N, 1) from ``forward``; targets: (N, 1).
        """
        check_images(X, "BinaryModel.backward", self.I)
        check_targets(targets, outputs, "BinaryModel.backward")
        if outputs.shape != (X.shape[0], 1):
            raise ValueError(f"BinaryModel.backward: outputs must have shape ({X.shape[0]}, 1), "
                             f"got {outputs.shape}")
        self.grad = cross_entropy_gradient(X, outputs, targets, self.w, self.l2_reg_lambda)

    def zero_grad(self) -> None:
        self.grad = None


def calculate_accuracy(X: np.ndarray, targets: np.ndarray, model: BinaryModel) -> float:
    """Fraction of examples whose prediction (1 when y_hat >= 0.5) equals the target.

    Args:
        X: (N, 785) images; targets: (N, 1) labels in {0, 1}.
    """
    predictions = model.forward(X) >= 0.5
    if targets.shape != predictions.shape:
        raise ValueError(f"calculate_accuracy: targets must have shape {predictions.shape}, "
                         f"got {targets.shape}")
    return float(np.mean(predictions == (targets == 1)))


@dataclass
class GradientCheck:
    """Outcome of a numerical gradient check.

    ``max_abs_error`` is max |analytic - numeric| over the weights (the course's criterion);
    ``rel_error`` is ||analytic - numeric|| / (||analytic|| + ||numeric||) over all of them.
    """

    max_abs_error: float
    rel_error: float
    num_weights: int
    epsilon: float

    def __str__(self) -> str:
        return (f"gradient check on {self.num_weights} weights: max |analytic - numeric| = "
                f"{self.max_abs_error:.2e} (tolerance {self.epsilon ** 2:.0e}), "
                f"relative error ||a - n|| / (||a|| + ||n||) = {self.rel_error:.2e}")


def numerical_gradient_check(model, X: np.ndarray, Y: np.ndarray, loss_fn, logits_loss_fn,
                             epsilon: float = 1e-3) -> GradientCheck:
    """Compare ``model.backward`` with central differences of loss + lambda/2 ||w||^2.

    For every weight w_ij: (J(w + eps e_ij) - J(w - eps e_ij)) / (2 eps) must be
    within eps^2 of the analytic gradient, where J includes the model's L2 term
    (``l2_reg_lambda``, 0 when absent). J is evaluated from the model's logits with
    ``logits_loss_fn`` when the model has ``logits`` (exact even where a probability
    rounds to 0 or 1, as happens for N(0, 1) weights), else from ``forward`` with
    ``loss_fn``. Raises AssertionError naming the first weight that fails; returns
    the errors otherwise. Weights are left unchanged.
    """
    lam = float(getattr(model, "l2_reg_lambda", 0.0) or 0.0)

    def cost() -> float:
        if hasattr(model, "logits"):
            loss = logits_loss_fn(Y, model.logits(X))
        else:
            loss = loss_fn(Y, model.forward(X))
        return loss + 0.5 * lam * float(np.sum(model.w ** 2))

    w_orig = model.w.copy()
    model.backward(X, model.forward(X), Y)
    analytic = np.array(model.grad, dtype=np.float64, copy=True)
    numeric = np.empty_like(analytic)
    try:
        for index in np.ndindex(*model.w.shape):
            orig = model.w[index]
            model.w[index] = orig + epsilon
            cost_plus = cost()
            model.w[index] = orig - epsilon
            cost_minus = cost()
            model.w[index] = orig
            numeric[index] = (cost_plus - cost_minus) / (2 * epsilon)
            difference = numeric[index] - analytic[index]
            if not abs(difference) <= epsilon ** 2:
                raise AssertionError(
                    f"Calculated gradient is incorrect for weight {index}. "
                    f"Approximation: {numeric[index]}, actual gradient: {analytic[index]} "
                    f"(difference {difference:.3e}, tolerance {epsilon ** 2:.0e}).\n"
                    f"If this test fails there could be errors in your cross entropy loss "
                    f"function, forward function or backward function")
    finally:
        model.w[...] = w_orig
    max_abs_err = float(np.abs(numeric - analytic).max())
    scale = float(np.linalg.norm(numeric) + np.linalg.norm(analytic))
    rel_err = float(np.linalg.norm(numeric - analytic)) / scale if scale > 0 else 0.0
    return GradientCheck(max_abs_err, rel_err, analytic.size, epsilon)


def gradient_approximation_test(model: BinaryModel, X: np.ndarray, Y: np.ndarray) -> GradientCheck:
    """The course's check: central differences (eps = 1e-3) within eps^2 of ``backward``.

    Args:
        model: a BinaryModel (its weights are restored afterwards).
        X: (N, 785) preprocessed images; Y: (N, 1) targets.
    Returns:
        a GradientCheck with the largest absolute and relative errors.
    Raises:
        AssertionError: when any weight's gradient is off by more than eps^2.
    """
    return numerical_gradient_check(model, X, Y, cross_entropy_loss,
                                    cross_entropy_loss_from_logits)


if __name__ == "__main__":
    import utils

    X_train, Y_train, *_ = utils.load_binary_dataset(2, 3)
    X_train = pre_process_images(X_train)
    model = BinaryModel()
    rng = np.random.default_rng(0)
    for _ in range(2):
        model.w = rng.standard_normal(model.w.shape)
        print(gradient_approximation_test(model, X_train[:100], Y_train[:100]))
