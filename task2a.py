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

import weakref
from dataclasses import dataclass
from numbers import Real

import numpy as np

__all__ = [
    "BinaryModel",
    "GradientCheck",
    "accuracy_from_logits",
    "as_float_array",
    "check_images",
    "check_weights",
    "cross_entropy_gradient",
    "cross_entropy_loss",
    "cross_entropy_loss_from_logits",
    "gradient_approximation_test",
    "pre_process_images",
    "sigmoid",
    "underflow_is_fine",
]

NUM_PIXELS = 784

#: The library's one floating-point policy. Underflow (a tiny probability becoming a
#: subnormal or 0, exp(-800) -> 0) is correct arithmetic, not an error, and whether a BLAS
#: kernel reports it for a matrix product depends on the kernel (OpenBLAS's Haswell and Zen
#: kernels do, its SkylakeX kernels do not). Every function whose maths can underflow runs
#: under this policy; overflow, invalid and divide-by-zero keep the caller's settings.
def underflow_is_fine() -> np.errstate:
    """A fresh ``np.errstate`` that ignores underflow: ``with underflow_is_fine():`` or, as
    a decorator, ``@underflow_is_fine()``."""
    return np.errstate(under="ignore")


def as_float_array(a, name: str, who: str) -> np.ndarray:
    """``a`` as a NumPy array of a real float dtype (integers and bools become float64).

    Raises TypeError naming ``name`` for anything that is not numbers (strings, objects).
    """
    array = np.asarray(a)
    if array.dtype == np.bool_ or np.issubdtype(array.dtype, np.integer):
        return array.astype(np.float64)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"{who}: {name} must be an array of real numbers, got dtype "
                        f"{array.dtype}")
    return array


def check_images(X: np.ndarray, who: str, features: int | None = None) -> None:
    """Raise unless X is a 2-D NumPy array (with ``features`` columns if given)."""
    if not isinstance(X, np.ndarray):
        raise TypeError(f"{who}: X must be a NumPy array, got {type(X).__name__}")
    if X.ndim != 2 or (features is not None and X.shape[1] != features):
        want = f"(N, {features})" if features is not None else "(N, D)"
        raise ValueError(f"{who}: X must have shape {want}, got {X.shape}")


#: Target batches a trainer cut from targets it checked once, in its constructor: ``backward``
#: skips their domain check, which would otherwise cost every step of the hot loop. Keyed by
#: ``id``, holding the arrays weakly: an entry goes when its batch does.
_prechecked_targets: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def mark_checked_targets(targets: np.ndarray) -> np.ndarray:
    """Record that ``targets`` (a batch of checked targets) need no domain check; returns it."""
    _prechecked_targets[id(targets)] = targets
    return targets


def targets_need_check(targets: np.ndarray) -> bool:
    return _prechecked_targets.get(id(targets)) is not targets


def check_weights(w, shape: tuple, who: str) -> None:
    """Raise unless ``w`` is a 2-D float array of ``shape`` (None in ``shape``: any size)."""
    if type(w) is np.ndarray and w.ndim == 2 and w.shape[0] == shape[0] and (
            shape[1] is None or w.shape[1] == shape[1]):
        return  # the usual case, checked without a loop (forward runs at every step)
    if not isinstance(w, np.ndarray) or w.ndim != len(shape) or any(
            want is not None and got != want for got, want in zip(w.shape, shape)):
        want = "(" + ", ".join("K" if n is None else str(n) for n in shape) + ")"
        got = w.shape if isinstance(w, np.ndarray) else type(w).__name__
        raise ValueError(f"{who}: w must have shape {want}, got {got}; reset it with "
                         f"np.zeros({want.replace('K', '10')})")


def check_targets(targets: np.ndarray, outputs: np.ndarray, who: str,
                  outputs_name: str = "outputs") -> None:
    if targets.shape != outputs.shape:
        raise ValueError(f"{who}: targets and {outputs_name} must have the same shape, got "
                         f"targets {targets.shape} and {outputs_name} {outputs.shape}")


def check_binary_targets(targets: np.ndarray, who: str) -> None:
    """Raise ValueError unless every target is 0 or 1 (task 2's labels)."""
    bad = (targets != 0) & (targets != 1)
    if bad.any():
        raise ValueError(f"{who}: targets must be 0 or 1 (1 for the first digit, 0 for the "
                         f"second), got {targets[bad].ravel()[0]!r}; prune the labels with "
                         f"utils.binary_prune_dataset first")


def check_probabilities(outputs: np.ndarray, who: str) -> None:
    """Raise ValueError unless every output is a probability in [0, 1] (NaN is not)."""
    valid = (outputs >= 0) & (outputs <= 1)
    if not valid.all():
        bad = outputs[~valid].ravel()[0]
        raise ValueError(f"{who}: outputs must be probabilities in [0, 1] (the model's "
                         f"forward()), got {bad!r}")


def checked_pair(targets, outputs, who: str, outputs_name: str, columns: int | None,
                 check_target_values) -> tuple[np.ndarray, np.ndarray]:
    """``targets`` and ``outputs`` (or logits) as float arrays of one (N, columns) shape.

    ``columns`` None allows any K; ``check_target_values(targets, who)`` checks the targets'
    domain. NaN logits are refused. Errors name the argument and what came instead.
    """
    targets = as_float_array(targets, "targets", who)
    outputs = as_float_array(outputs, outputs_name, who)
    check_targets(targets, outputs, who, outputs_name)
    if outputs.ndim != 2 or (columns is not None and outputs.shape[1] != columns):
        want = "(N, K)" if columns is None else f"(N, {columns})"
        raise ValueError(f"{who}: targets and {outputs_name} must have shape {want}, got "
                         f"{outputs.shape}")
    if outputs.shape[0] == 0:
        raise ValueError(f"{who}: targets and {outputs_name} hold no examples (shape "
                         f"{outputs.shape}); a mean over an empty batch is undefined")
    check_target_values(targets, who)
    if outputs_name == "logits" and not np.isfinite(outputs).all():
        what = "NaN" if np.isnan(outputs).any() else "an infinite value"
        raise ValueError(f"{who}: logits contain {what}; logits must be finite (the weights "
                         f"have diverged or the inputs hold NaN or inf)")
    return targets, outputs


def _binary_shapes(targets, outputs, who: str, outputs_name: str = "outputs"):
    return checked_pair(targets, outputs, who, outputs_name, 1, check_binary_targets)


def pre_process_images(X: np.ndarray) -> np.ndarray:
    """Scale pixels to [-1, 1] and append the bias column.

    Args:
        X: (N, 784) raw images with values in [0, 255] (any integer or float dtype).
    Returns:
        (N, 785) float64: 2 * X / 255 - 1, then a column of ones (last).
    Raises:
        ValueError: pixels outside [0, 255], NaN, or images that look already scaled
            (floats in [0, 1] that are not whole numbers).
    """
    check_images(X, "pre_process_images", NUM_PIXELS)
    if X.dtype == np.bool_ or not (np.issubdtype(X.dtype, np.integer)
                                   or np.issubdtype(X.dtype, np.floating)):
        raise TypeError(f"pre_process_images: X must hold numbers in [0, 255], got dtype "
                        f"{X.dtype}")
    if X.dtype != np.uint8 and X.size:
        low, high = X.min(), X.max()  # NaN propagates into both
        if not (low >= 0 and high <= 255):
            what = "NaN" if np.isnan(low) else f"values in [{low}, {high}]"
            raise ValueError(f"pre_process_images: pixels must lie in [0, 255], got {what}; "
                             f"pass the raw images from utils/mnist, not already "
                             f"preprocessed ones")
        if np.issubdtype(X.dtype, np.floating) and high <= 1 and not (X == np.round(X)).all():
            raise ValueError("pre_process_images: pixels look already scaled to [0, 1] "
                             f"(largest {high}); pass the raw images with values in [0, 255]")
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


@underflow_is_fine()
def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) evaluated without overflow for any z; float dtypes are kept,
    integers and bools give float64."""
    z = as_float_array(z, "z", "sigmoid")
    e = np.exp(-np.abs(z))  # in [0, 1]: never overflows; exp(-|z|) -> 0 is the right answer
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


def binary_cross_entropy_unchecked(targets: np.ndarray, outputs: np.ndarray) -> float:
    """The loss without input checks (the trainer's per-step path; inputs checked once)."""
    p = clip_probabilities(outputs)
    y = targets.astype(p.dtype, copy=False)
    with underflow_is_fine():
        loss = -(y * np.log(p) + (1 - y) * np.log1p(-p))
        return float(loss.mean(dtype=np.float64))


def cross_entropy_loss(targets: np.ndarray, outputs: np.ndarray) -> float:
    """Mean binary cross entropy over the batch.

    Args:
        targets: (N, 1) labels in {0, 1}.
        outputs: (N, 1) predicted probabilities y_hat in [0, 1].
    Returns:
        C = -(1/N) sum_n [y ln y_hat + (1 - y) ln(1 - y_hat)], a Python float.
    Raises:
        ValueError: shapes differ or are not (N, 1), a target is not 0 or 1, or an
            output is not a probability.
    """
    targets, outputs = _binary_shapes(targets, outputs, "cross_entropy_loss")
    check_probabilities(outputs, "cross_entropy_loss")
    return binary_cross_entropy_unchecked(targets, outputs)


def cross_entropy_loss_from_logits(targets: np.ndarray, logits: np.ndarray) -> float:
    """The same cost from logits z = w^T x, exactly: mean of softplus(z) - y z.

    softplus(z) = ln(1 + e^z) = max(z, 0) + ln(1 + e^-|z|) never overflows and
    needs no clipping. Reduced in float64 whatever the logits' dtype.
    Args:
        targets: (N, 1) labels in {0, 1}; logits: (N, 1).
    """
    targets, logits = _binary_shapes(targets, logits, "cross_entropy_loss_from_logits",
                                     "logits")
    return loss_from_logits_unchecked(targets, logits)


@underflow_is_fine()
def loss_from_logits_unchecked(targets: np.ndarray, logits: np.ndarray) -> float:
    """``cross_entropy_loss_from_logits`` without input checks (the trainer's path)."""
    z = logits.astype(np.float64, copy=False)
    softplus = np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))
    return float((softplus - targets * z).mean())


def accuracy_from_logits(targets: np.ndarray, logits: np.ndarray) -> float:
    """Binary accuracy from logits: y_hat >= 0.5 exactly when z >= 0.

    Args:
        targets: (N, 1) labels in {0, 1}; logits: (N, 1).
    """
    targets, logits = _binary_shapes(targets, logits, "accuracy_from_logits", "logits")
    return accuracy_unchecked(targets, logits)


def accuracy_unchecked(targets: np.ndarray, logits: np.ndarray) -> float:
    """``accuracy_from_logits`` without input checks (the trainer's path)."""
    return float(np.mean((logits >= 0) == (targets == 1)))


@underflow_is_fine()
def cross_entropy_gradient(X: np.ndarray, outputs: np.ndarray, targets: np.ndarray,
                           w: np.ndarray, l2_reg_lambda: float = 0.0) -> np.ndarray:
    """-(1/N) X^T (Y - Y_hat) + lambda w: the batch-mean gradient of both models.

    The same expression serves logistic (task 1a) and softmax regression (task 1b) with
    the L2 term (task 4a), because both pair their output function with its cross entropy.
    Args:
        X: (N, 785) images; outputs, targets: (N, K); w: (785, K).
        l2_reg_lambda: the L2 strength, a number >= 0.
    Returns:
        (785, K) in the dtype of X and outputs.
    """
    error = outputs - targets.astype(outputs.dtype, copy=False)
    grad = X.T @ error
    grad /= X.shape[0]
    if l2_reg_lambda:
        grad += l2_reg_lambda * w
    assert grad.shape == w.shape, f"Grad shape: {grad.shape}, w: {w.shape}"
    return grad


def check_l2_reg_lambda(l2_reg_lambda, who: str) -> float:
    """The L2 strength as a float; TypeError/ValueError unless a finite number >= 0."""
    if isinstance(l2_reg_lambda, bool) or not isinstance(l2_reg_lambda, Real):
        raise TypeError(f"{who}: l2_reg_lambda must be a number >= 0, got "
                        f"{type(l2_reg_lambda).__name__}")
    if not (np.isfinite(l2_reg_lambda) and l2_reg_lambda >= 0):
        raise ValueError(f"{who}: l2_reg_lambda must be a finite number >= 0, got "
                         f"{l2_reg_lambda!r}")
    return float(l2_reg_lambda)


class BinaryModel:
    """Logistic regression: y_hat = sigmoid(X w), w of shape (785, 1)."""

    def __init__(self, l2_reg_lambda: float = 0.0):
        self.I = NUM_PIXELS + 1
        self.l2_reg_lambda = check_l2_reg_lambda(l2_reg_lambda, "BinaryModel")
        self.w = np.zeros((self.I, 1))
        self.grad: np.ndarray | None = None

    def logits(self, X: np.ndarray) -> np.ndarray:
        """X: (N, 785) -> z = X w, (N, 1)."""
        check_images(X, "BinaryModel.forward", self.I)
        check_weights(self.w, (self.I, 1), "BinaryModel")
        with underflow_is_fine():
            return X @ self.w

    def logits_from_transposed(self, XT: np.ndarray) -> np.ndarray:
        """The same logits from feature-major inputs: XT (785, N) -> (1, N) = (X w)^T.

        For large N this layout makes the product and the reductions over classes faster.
        """
        check_images(XT.T, "BinaryModel.logits_from_transposed", self.I)
        with underflow_is_fine():
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
        check_weights(self.w, (self.I, 1), "BinaryModel")
        check_targets(targets, outputs, "BinaryModel.backward")
        if outputs.shape != (X.shape[0], 1):
            raise ValueError(f"BinaryModel.backward: outputs must have shape ({X.shape[0]}, 1), "
                             f"got {outputs.shape}")
        if targets_need_check(targets):
            check_binary_targets(targets, "BinaryModel.backward")
        self.grad = cross_entropy_gradient(X, outputs, targets, self.w, self.l2_reg_lambda)

    def zero_grad(self) -> None:
        self.grad = None


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
                             epsilon: float = 1e-3, *,
                             logits_loss_unchecked=None) -> GradientCheck:
    """Compare ``model.backward`` with central differences of loss + lambda/2 ||w||^2.

    For every weight w_ij: (J(w + eps e_ij) - J(w - eps e_ij)) / (2 eps) must be
    within eps^2 of the analytic gradient, where J includes the model's L2 term
    (``l2_reg_lambda``, 0 when absent). J is evaluated from the model's logits with
    ``logits_loss_fn`` when the model has ``logits`` (exact even where a probability
    rounds to 0 or 1, as happens for N(0, 1) weights), else from ``forward`` with
    ``loss_fn``. Raises AssertionError naming the first weight that fails; returns
    the errors otherwise. Weights are left unchanged. ``logits_loss_unchecked``, the
    same loss without input checks, may serve the 2 x (number of weights) evaluations
    once the checked loss has accepted X and Y.
    """
    lam = float(getattr(model, "l2_reg_lambda", 0.0) or 0.0)
    use_logits = hasattr(model, "logits")
    if use_logits:
        logits_loss_fn(Y, model.logits(X))  # the inputs are checked once, here
        if logits_loss_unchecked is not None:
            logits_loss_fn = logits_loss_unchecked

    def cost() -> float:
        if use_logits:
            loss = logits_loss_fn(Y, model.logits(X))
        else:
            loss = loss_fn(Y, model.forward(X))
        return (loss + 0.5 * lam * float(np.sum(model.w ** 2))) if lam else loss

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
                                    cross_entropy_loss_from_logits,
                                    logits_loss_unchecked=loss_from_logits_unchecked)


if __name__ == "__main__":
    import utils

    X_train, Y_train, *_ = utils.load_binary_dataset(2, 3)
    X_train = pre_process_images(X_train)
    model = BinaryModel()
    rng = np.random.default_rng(0)
    for _ in range(2):
        model.w = rng.standard_normal(model.w.shape)
        print(gradient_approximation_test(model, X_train[:100], Y_train[:100]))
