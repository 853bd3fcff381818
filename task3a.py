"""Task 3a/4b: softmax regression for ten digits, with L2 regularisation.

With the bias trick an image is x in R^785; the model has weights w of shape
(785, 10) and computes, for each example, the logits z = w^T x and

    y_hat_k = exp(z_k) / sum_k' exp(z_k').

The cost is the mean multi-class cross entropy plus an L2 penalty,

    J(w) = -(1/N) sum_n sum_k y_k^n ln y_hat_k^n  +  lambda * 1/2 sum_ij w_ij^2,

with gradient (tasks 1b, 4a) dJ/dw_kj = -(1/N) sum_n x_j^n (y_k^n - y_hat_k^n) + lambda w_kj.

Softmax subtracts each row's maximum logit before exponentiating (so exp never
overflows), and the loss can be computed from logits with log-sum-exp, which is
exact where clipped probabilities are not.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from task2a import (
    GradientCheck,
    as_float_array,
    check_images,
    check_l2_reg_lambda,
    check_probabilities,
    check_targets,
    check_weights,
    checked_pair,
    cross_entropy_gradient,
    numerical_gradient_check,
    pre_process_images,
    targets_need_check,
    underflow_is_fine,
)

__all__ = [
    "SoftmaxModel",
    "accuracy_from_logits",
    "cross_entropy_loss",
    "cross_entropy_loss_from_logits",
    "gradient_approximation_test",
    "one_hot_encode",
    "pre_process_images",
    "predicted_classes",
    "softmax",
]


def one_hot_encode(Y: np.ndarray, num_classes: int) -> np.ndarray:
    """Integer labels -> one-hot rows.

    Args:
        Y: (N, 1) or (N,) integer labels in [0, num_classes).
        num_classes: K, a positive integer.
    Returns:
        (N, K) float64 with a single 1 per row (label 3 -> e_3).
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, Integral):
        raise TypeError(f"one_hot_encode: num_classes must be an integer, got "
                        f"{num_classes!r} ({type(num_classes).__name__})")
    if num_classes < 1:
        raise ValueError(f"one_hot_encode: num_classes must be >= 1, got {num_classes}")
    Y = np.asarray(Y)
    if Y.ndim == 2 and Y.shape[1] == 1:
        Y = Y[:, 0]
    if Y.ndim != 1:
        raise ValueError(f"one_hot_encode: Y must have shape (N, 1) or (N,), got {Y.shape}")
    if Y.size and not (np.issubdtype(Y.dtype, np.integer) or (
            np.issubdtype(Y.dtype, np.floating) and np.array_equal(Y, np.round(Y)))):
        raise ValueError(f"one_hot_encode: labels must be integers, got dtype {Y.dtype}"
                         + (" with non-integer values" if Y.dtype.kind == "f" else ""))
    if Y.size and not (Y.min() >= 0 and Y.max() < num_classes):
        bad = Y[~((Y >= 0) & (Y < num_classes))]
        raise ValueError(f"one_hot_encode: labels must lie in [0, {num_classes}), found "
                         f"{bad.size} outside it (e.g. {bad[0]})")
    encoded = np.zeros((Y.shape[0], num_classes))
    encoded[np.arange(Y.shape[0]), Y.astype(np.intp)] = 1.0
    return encoded


@underflow_is_fine()
def softmax(z: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Row-wise softmax of logits z (N, K), finite for any finite z.

    With ``axis``, z may have any number of dimensions and the classes lie along ``axis``:
    e.g. class-major (M, K, N) logits of M models with ``axis=1``, whose short reductions
    then run along the long, contiguous N axis (several times faster than over rows of 10).
    Float dtypes are kept; integers give float64.
    """
    z = as_float_array(z, "z", "softmax")
    if axis is None:
        if z.ndim != 2 or z.shape[1] == 0:
            raise ValueError(f"softmax: z must have shape (N, K) with K >= 1, got {z.shape}")
        # computed class-major and copied back: the two small copies cost less than NumPy's
        # reductions over rows of 10 (2x faster for a batch of 128, 5x for 10,000 rows)
        return np.ascontiguousarray(softmax(np.array(z.T, order="C"), axis=0).T)
    if z.shape[axis] == 0:
        raise ValueError(f"softmax: z has no classes along axis {axis} (shape {z.shape})")
    top = z.max(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore"):  # inf - inf; handled below
        e = z - top  # <= 0: exp cannot overflow
    np.exp(e, out=e)  # exp(very negative) -> 0 is the right answer
    total = e.sum(axis=axis, keepdims=True)  # the max contributes exp(0) = 1: sum >= 1
    if not np.isfinite(total).all():  # a NaN, a +inf logit, or a row of only -inf
        return _softmax_limits(z, axis)
    e /= total
    return e


def _softmax_limits(z: np.ndarray, axis: int) -> np.ndarray:
    """softmax where logits are infinite, as the limit: the +inf logits of a row share its
    probability equally; -inf logits get 0. NaN, or a row whose every logit is -inf (no
    limit exists), is a ValueError."""
    if np.isnan(z).any():
        raise ValueError("softmax: z contains NaN, which has no probability (the weights have "
                         "diverged or the inputs hold NaN)")
    top = z.max(axis=axis, keepdims=True)
    if np.isneginf(top).any():
        raise ValueError("softmax: a row of z has every logit -inf, so its probabilities are "
                         "undefined")
    infinite = np.isposinf(top)
    with np.errstate(invalid="ignore"):
        e = np.exp(np.where(infinite, 0.0, z - np.where(infinite, 0.0, top))).astype(z.dtype)
    e = np.where(infinite, np.isposinf(z), e).astype(z.dtype)
    e /= e.sum(axis=axis, keepdims=True)
    return e


def check_one_hot(targets: np.ndarray, who: str) -> None:
    """Raise ValueError unless every row of ``targets`` is one-hot (one 1, the rest 0)."""
    one_hot = ((targets == 0) | (targets == 1)).all(axis=1) & (targets.sum(axis=1) == 1)
    if not one_hot.all():
        rows = np.flatnonzero(~one_hot)
        raise ValueError(f"{who}: targets must be one-hot rows (a single 1, the rest 0), "
                         f"row {rows[0]} is {targets[rows[0]].tolist()}; encode labels with "
                         f"one_hot_encode")


def _one_hot_shapes(targets, outputs, who: str, outputs_name: str = "outputs"):
    return checked_pair(targets, outputs, who, outputs_name, None, check_one_hot)


def softmax_cross_entropy_unchecked(targets: np.ndarray, outputs: np.ndarray) -> float:
    """The loss without input checks (the trainer's per-step path; inputs checked once)."""
    # only a probability that rounded to 0 needs moving (ln 0 = -inf); ln 1 = 0 is fine
    p = np.maximum(outputs, np.finfo(outputs.dtype).tiny)
    with underflow_is_fine():
        return float(-np.sum(targets * np.log(p), dtype=np.float64) / outputs.shape[0])


def cross_entropy_loss(targets: np.ndarray, outputs: np.ndarray) -> float:
    """Mean over examples of -sum_k y_k ln y_hat_k.

    Args:
        targets: (N, K) one-hot labels; outputs: (N, K) softmax probabilities.
    Raises:
        ValueError: shapes differ, a target row is not one-hot, or an output is not a
            probability in [0, 1].
    """
    targets, outputs = _one_hot_shapes(targets, outputs, "cross_entropy_loss")
    check_probabilities(outputs, "cross_entropy_loss")
    return softmax_cross_entropy_unchecked(targets, outputs)


def cross_entropy_loss_from_logits(targets: np.ndarray, logits: np.ndarray) -> float:
    """The same cost from logits z: mean of logsumexp(z) - sum_k y_k z_k (no clipping).

    Reduced in float64 whatever the logits' dtype.
    Args:
        targets: (N, K) one-hot labels; logits: (N, K).
    """
    targets, logits = _one_hot_shapes(targets, logits, "cross_entropy_loss_from_logits",
                                      "logits")
    return loss_from_logits_unchecked(targets, logits)


@underflow_is_fine()
def loss_from_logits_unchecked(targets: np.ndarray, logits: np.ndarray) -> float:
    """``cross_entropy_loss_from_logits`` without input checks (the trainer's path)."""
    logits = logits.astype(np.float64, copy=False)
    zmax = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - zmax).sum(axis=1, keepdims=True)) + zmax
    return float((lse - (targets * logits).sum(axis=1, keepdims=True)).mean())


class SoftmaxModel:
    """Softmax regression: y_hat = softmax(X w), w of shape (785, 10)."""

    def __init__(self, l2_reg_lambda: float = 0.0):
        self.I = 785
        self.num_outputs = 10
        self.l2_reg_lambda = check_l2_reg_lambda(l2_reg_lambda, "SoftmaxModel")
        self.w = np.zeros((self.I, self.num_outputs))
        self.grad: np.ndarray | None = None

    def logits(self, X: np.ndarray) -> np.ndarray:
        """X: (N, 785) -> z = X w, (N, 10)."""
        check_images(X, "SoftmaxModel.forward", self.I)
        check_weights(self.w, (self.I, None), "SoftmaxModel")
        with underflow_is_fine():
            return X @ self.w

    def logits_from_transposed(self, XT: np.ndarray) -> np.ndarray:
        """The same logits from feature-major inputs: XT (785, N) -> (10, N) = (X w)^T.

        For large N this layout is faster: the 10-row product w^T X^T suits BLAS better than
        the 10-column X w, and reductions over classes run along contiguous rows. The rows
        of w^T are padded with zeros to 16, a whole number of BLAS register blocks
        (measured with OpenBLAS, float32, N = 30,000: 8.1 ms instead of 9.4 ms).
        """
        check_images(XT.T, "SoftmaxModel.logits_from_transposed", self.I)
        padded = np.zeros((16, self.I), dtype=np.result_type(self.w, XT))
        padded[:self.num_outputs] = self.w.T
        with underflow_is_fine():
            return (padded @ XT)[:self.num_outputs]

    def forward(self, X: np.ndarray) -> np.ndarray:
        """X: (N, 785) -> (N, 10) class probabilities (rows sum to 1)."""
        return softmax(self.logits(X))

    def backward(self, X: np.ndarray, outputs: np.ndarray, targets: np.ndarray) -> None:
        """Store in ``self.grad`` (785, 10): -X^T (Y - Y_hat) / N + lambda w.

        Args:
            X: (N, 785) images; outputs: (N, 10) from ``forward``; targets: (N, 10) one-hot.
        """
        check_images(X, "SoftmaxModel.backward", self.I)
        check_weights(self.w, (self.I, self.num_outputs), "SoftmaxModel")
        check_targets(targets, outputs, "SoftmaxModel.backward")
        if outputs.shape != (X.shape[0], self.num_outputs):
            raise ValueError(f"SoftmaxModel.backward: outputs must have shape "
                             f"({X.shape[0]}, {self.num_outputs}), got {outputs.shape}")
        if targets_need_check(targets):
            check_one_hot(targets, "SoftmaxModel.backward")
        self.grad = cross_entropy_gradient(X, outputs, targets, self.w, self.l2_reg_lambda)

    def zero_grad(self) -> None:
        self.grad = None


def predicted_classes(logits: np.ndarray) -> np.ndarray:
    """argmax over the classes of (N, K) logits, the first maximum on ties, as (N,) ints.

    When the classes are the slow axis in memory (logits that are the transpose of a
    (K, N) array, as the trainer's feature-major product gives), reductions over them
    run along contiguous rows and this is about twice as fast as ``argmax``.
    Raises:
        ValueError: a row holds NaN (it has no largest logit), on either path.
    """
    logits = as_float_array(logits, "logits", "predicted_classes")
    if logits.ndim != 2 or logits.shape[1] == 0:
        raise ValueError(f"predicted_classes: logits must have shape (N, K), K >= 1, got "
                         f"{logits.shape}")
    classes_major = logits.T
    fast = classes_major.flags.c_contiguous and logits.shape[1] <= 64
    best = classes_major.max(axis=0) if fast else logits.max(axis=1)  # NaN propagates
    if np.isnan(best).any():
        row = int(np.flatnonzero(np.isnan(best))[0])
        raise ValueError(f"predicted_classes: logits of row {row} contain NaN, so no class "
                         f"is largest; the weights have diverged (try a smaller learning rate)")
    if not fast:
        return logits.argmax(axis=1)
    index = np.arange(logits.shape[1], dtype=np.int16)[:, None]
    return np.where(classes_major == best, index, np.int16(logits.shape[1])).min(axis=0)


def accuracy_from_logits(targets: np.ndarray, logits: np.ndarray) -> float:
    """Fraction of rows whose largest logit is the target class.

    softmax is monotone, so argmax of the logits is argmax of the probabilities.
    Args:
        targets: (N, K) one-hot like the logits, or (N, 1) integer labels; logits: (N, K).
    """
    targets = np.asarray(targets)
    logits = as_float_array(logits, "logits", "accuracy_from_logits")
    if targets.ndim != 2 or logits.ndim != 2 or targets.shape[0] != logits.shape[0]:
        raise ValueError(f"accuracy_from_logits: targets must be (N, K) one-hot or (N, 1) "
                         f"labels for logits (N, K), got targets {targets.shape} and logits "
                         f"{logits.shape}")
    if targets.shape[1] == 1 and logits.shape[1] != 1:
        labels = targets[:, 0]
        if targets.size and not (np.array_equal(labels, np.round(labels)) and labels.min() >= 0
                                 and labels.max() < logits.shape[1]):
            raise ValueError(f"accuracy_from_logits: (N, 1) targets must be integer labels in "
                             f"[0, {logits.shape[1]}), got values in "
                             f"[{labels.min()}, {labels.max()}]")
    elif targets.shape[1] == logits.shape[1]:
        check_one_hot(targets, "accuracy_from_logits")
        labels = targets.argmax(axis=1)
    else:
        raise ValueError(f"accuracy_from_logits: one-hot targets must have as many columns "
                         f"as the logits ({logits.shape[1]}), got {targets.shape[1]}")
    return float(np.mean(predicted_classes(logits) == labels))


@underflow_is_fine()
def relative_class_major_losses(d: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean cross entropy from logits relative to class 0, for one or several models.

    Softmax and its cross entropy depend only on differences of logits, so the trainer
    computes d_k = z_k - z_0 for k = 1..K-1 (one product row fewer per model) and this
    evaluates, reduced in float64, mean over N of logsumexp(0, d) - d[label] (d[0] = 0).
    Args:
        d: (..., K-1, N) relative logits, classes on the slow axis.
        labels: (N,) integer classes in [0, K).
    Returns:
        (...,) float64.
    """
    d = d.astype(np.float64)
    zmax = np.maximum(d.max(axis=-2), 0.0)  # the implicit class 0 has logit 0
    index = np.maximum(labels - 1, 0).reshape(1, -1)[(None,) * (d.ndim - 2)]
    picked = np.where(labels == 0, 0.0, np.take_along_axis(d, index, axis=-2)[..., 0, :])
    d -= zmax[..., None, :]
    np.exp(d, out=d)
    lse = np.log(d.sum(axis=-2) + np.exp(-zmax)) + zmax
    return (lse - picked).mean(axis=-1)


def relative_class_major_accuracies(d: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Accuracy from (..., K-1, N) logits relative to class 0 (first maximum on ties).

    The trainer's internal path: a model whose logits hold NaN (it has diverged) gets NaN,
    which the trainer turns into ``TrainingDiverged``; the public ``accuracy_from_logits``
    raises ValueError instead."""
    best = d.max(axis=-2)
    diverged = np.isnan(best).any(axis=-1)
    k = d.shape[-2]
    # the first maximum's class, 1..K-1: weight the rows K-1..1 and take the largest weight
    # among those equal to the maximum (four times faster than np.where with an index)
    weights = np.arange(k, 0, -1, dtype=np.int8 if k < 127 else np.int32)[:, None]
    first = (k + 1) - ((d == best[..., None, :]) * weights).max(axis=-2)
    predicted = np.where(best > 0, first, 0)  # class 0 wins when no difference is positive
    return np.where(diverged, np.nan, (predicted == labels).mean(axis=-1))


def gradient_approximation_test(model: SoftmaxModel, X: np.ndarray, Y: np.ndarray) -> GradientCheck:
    """The course's check on every weight: central differences (eps = 1e-3) of
    cross entropy + lambda/2 ||w||^2 within eps^2 of ``backward``.

    Args:
        model: a SoftmaxModel (weights restored afterwards).
        X: (N, 785) preprocessed images; Y: (N, 10) one-hot targets.
    Raises:
        AssertionError: when any weight's gradient is off by more than eps^2.
    """
    return numerical_gradient_check(model, X, Y, cross_entropy_loss,
                                    cross_entropy_loss_from_logits,
                                    logits_loss_unchecked=loss_from_logits_unchecked)


if __name__ == "__main__":
    import utils

    X_train, Y_train, *_ = utils.load_full_mnist()
    X_train = pre_process_images(X_train)
    Y_train = one_hot_encode(Y_train, 10)
    model = SoftmaxModel(l2_reg_lambda=0.0)
    rng = np.random.default_rng(0)
    for _ in range(2):
        model.w = rng.standard_normal(model.w.shape)
        print(gradient_approximation_test(model, X_train[:100], Y_train[:100]))
