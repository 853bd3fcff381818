"""The training loop: mini-batch gradient descent with validation and early stopping.

``BaseTrainer.train`` is the loop the course describes. Each epoch walks the training set in
mini-batches from ``utils.batch_loader`` (a fresh seeded permutation per epoch when
``shuffle_dataset``); each step calls ``train_step(X_batch, Y_batch)``, which updates the
weights and returns the batch loss. Every ``num_batches_per_epoch // 5`` steps (20% of an
epoch, and at step 0) it calls ``validation_step()`` for ``(val_loss, train_accuracy,
val_accuracy)`` on the whole sets.

Early stopping (task 2d): training stops once the validation loss has not improved for
``patience`` (10) consecutive checks, and the weights of the lowest validation loss are put
back. Divergence is never silent: once a loss or the weights stop being finite, ``train``
raises ``TrainingDiverged`` naming the step and the learning rate, with the best weights so
far (or the starting ones) back in the model.

The course's trainers, ``task2.LogisticTrainer`` and ``task3.SoftmaxTrainer``, write the two
steps; a grader's own subclass that writes them trains the same way. Two keyword switches make
the report's runs fast without touching the maths: ``dtype`` trains on float32 copies of the
data, and ``fast_validation`` replaces ``validation_step`` by ``FastEvaluation``, the one
piece here with arithmetic of its own (it equals ``validation_step``; tests hold it to that).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from numbers import Real
from typing import Any, Dict

import numpy as np

import utils

__all__ = ["BaseTrainer", "FastEvaluation", "History", "TrainingDiverged"]

# typing.Dict, not dict[...]: a runtime alias, and the hand-in runs on Python 3.8
History = Dict[str, Dict[int, Any]]


class TrainingDiverged(FloatingPointError):
    """The loss or the weights stopped being finite during training."""


class FastEvaluation:
    """``validation_step``'s numbers for linear models, from one pass over the data per check.

    For M models side by side, W (D, M K) (columns m K ... m K + K - 1 are model m), it returns
    three (M,) arrays that equal, up to float rounding, what the course's ``validation_step``
    computes for each model:

        val_loss        cross_entropy_loss(Y_val, forward(X_val))
        train_accuracy  calculate_accuracy(X_train, Y_train, model)
        val_accuracy    calculate_accuracy(X_val, Y_val, model)

    where forward is sigmoid(X W) when K = 1 (task 2) and softmax(X W) otherwise (tasks 3-4).
    How: both image sets are copied once, feature-major, into S (D', N_train + N_val), the
    examples along the long axis. A feature that departs from its value in the first image (the
    bias, the background) in at most ``RARE`` of the images stays out of S: its share rides on a
    row of ones, plus a small product over its departures in the images that have any (placed
    side by side, at the end of the training and the start of the validation set). The logits
    Z = W^T S give each number without probabilities: the loss as softplus(z) - y z, or
    log-sum-exp(z) - z_y, in the logits' dtype, averaged in float64; a prediction as z >= 0
    (y_hat >= 0.5), or the first largest logit (softmax is monotone: it is the true logit, unless
    logits tie for the top, as at w = 0, where argmax decides). Only for linear models; others
    are validated by their own ``validation_step`` (fast_validation=False).
    """

    RARE = 0.01  # fraction of the images

    def __init__(self, X_train: np.ndarray, Y_train: np.ndarray, X_val: np.ndarray,
                 Y_val: np.ndarray, dtype: Any) -> None:
        self.n_train, self.classes = len(X_train), Y_train.shape[1]
        first = X_train[0]
        differ = [X != first for X in (X_train, X_val)]  # (N, D) each
        counts = sum(d.sum(axis=0, dtype=np.int32) for d in differ)
        dense = counts > self.RARE * (len(X_train) + len(X_val))
        self.dense, self.rare = np.flatnonzero(dense), np.flatnonzero(~dense)
        self.rare_values = first[self.rare].astype(np.float64)
        self.departing = np.flatnonzero(~dense & (counts > 0))  # rare, but not constant
        moved = [d.take(self.departing, axis=1).any(axis=1) for d in differ]
        orders = (np.argsort(moved[0], kind="stable"), np.argsort(~moved[1], kind="stable"))
        self.moved = slice(self.n_train - moved[0].sum(), self.n_train + moved[1].sum())
        self.S = np.empty((len(self.dense) + 1, len(X_train) + len(X_val)), dtype=dtype)
        for start, X, order in ((0, X_train, orders[0]), (self.n_train, X_val, orders[1])):
            for i in range(0, len(X), 1024):  # in blocks of images: each transpose stays in cache
                block = X[order[i:i + 1024]][:, self.dense].T
                self.S[:-1, start + i:start + i + block.shape[1]] = block
        self.S[-1] = 1
        X_moved = np.concatenate([X_train[orders[0][self.moved.start:]],
                                  X_val[orders[1][:self.moved.stop - self.n_train]]])
        self.departures = (X_moved[:, self.departing] - first[self.departing]).T.astype(dtype)
        Y = np.concatenate([Y_train[orders[0]], Y_val[orders[1]]])
        self.labels = Y[:, 0] if self.classes == 1 else Y.argmax(axis=1)
        self.true = self.labels * len(Y) + np.arange(len(Y)) if self.classes > 1 else None

    def __call__(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        WT = np.empty((W.shape[1], self.S.shape[0]), dtype=self.S.dtype)
        WT[:, :-1] = W[self.dense].T
        WT[:, -1] = self.rare_values @ W[self.rare]
        with np.errstate(under="ignore"):
            Z = WT @ self.S
            Z[:, self.moved] += W[self.departing].T @ self.departures
            Z = Z.reshape(-1, self.classes, self.S.shape[1])  # (M, K, N) logits
            n = self.n_train  # the loss only on the validation set, the accuracies on both
            if self.classes == 1:
                z, zv, y = Z[:, 0], Z[:, 0, n:], self.labels
                losses = np.maximum(zv, 0) + np.log1p(np.exp(-np.abs(zv))) - y[n:] * zv
                correct = (z >= 0) == (y == 1)
            else:
                top = Z.max(axis=1)
                true = Z.reshape(len(Z), -1).take(self.true, axis=1)  # z_y
                Zv, topv = Z[:, :, n:], top[:, n:]
                losses = np.log(np.exp(Zv - topv[:, None]).sum(axis=1)) - (true[:, n:] - topv)
                correct = true == top  # the first largest logit is the label's, unless tied:
                tops = (Z == top[:, None]).sum(axis=1, dtype=np.uint16)  # (count_nonzero: slower)
                tied = np.flatnonzero((tops > 1).any(axis=0))
                correct[:, tied] = Z[:, :, tied].argmax(axis=1) == self.labels[tied]
        return (losses.mean(axis=1, dtype=np.float64),
                correct[:, :n].mean(axis=1), correct[:, n:].mean(axis=1))


class BaseTrainer:
    """Mini-batch gradient descent for a model with ``w``, ``forward`` and ``backward``.

    Args (the course's, in its order):
        model: the model to train, changed in place.
        learning_rate: step size of w <- w - learning_rate * grad (finite, > 0).
        batch_size: examples per step (1 to N_train); the short last batch is dropped.
        shuffle_dataset: a fresh permutation of the training set every epoch (task 2e).
        X_train, Y_train, X_val, Y_val: (N, 785) preprocessed images and their targets.
    Keyword-only extensions:
        seed: seeds the shuffling: the same seed gives the same run, bit for bit.
        early_stopping: stop after ``patience`` checks without improvement and restore the
            best weights (default on, as task 2d asks).
        patience: validation checks without improvement before stopping.
        dtype: train in this float dtype (e.g. np.float32, twice as fast): the data are copied
            into it once, the weights cast to it while training and back afterwards. None (the
            course's setting) trains in the data's and weights' own dtypes.
        fast_validation: compute the validation checks with ``FastEvaluation`` instead of
            ``validation_step`` (for the course's linear models; the same numbers).
        progress: show a progress bar over epochs on stderr.

    Arguments are checked here, once. After ``train``: ``early_stop_epoch`` (0-based epoch in
    which training stopped, None if the budget ran out), ``best_step`` and ``best_val_loss``,
    ``epochs_run`` and ``global_step`` (steps taken).
    """

    def __init__(self, model: Any, learning_rate: float, batch_size: int,
                 shuffle_dataset: bool, X_train: np.ndarray, Y_train: np.ndarray,
                 X_val: np.ndarray, Y_val: np.ndarray, *, seed: int = 0,
                 early_stopping: bool = True, patience: int = 10, dtype: Any = None,
                 fast_validation: bool = False, progress: bool = False) -> None:
        self.learning_rate = _check_learning_rate(learning_rate)
        self.batch_size = utils.check_count(batch_size, "batch_size", 1)
        self.shuffle_dataset = utils.check_flag(shuffle_dataset, "shuffle_dataset")
        self.early_stopping = utils.check_flag(early_stopping, "early_stopping")
        self.patience = utils.check_count(patience, "patience", 1)
        self.seed = utils.check_count(seed, "seed", 0)
        self.progress = utils.check_flag(progress, "progress")
        _check_data(X_train, Y_train, X_val, Y_val, self.batch_size)
        _check_model(model, X_train.shape[1])
        if dtype is not None and np.dtype(dtype).kind != "f":
            raise TypeError(f"dtype must be a float dtype such as np.float32, got "
                            f"{np.dtype(dtype)}")
        self.dtype = None if dtype is None else np.dtype(dtype)
        self.model = model
        self.X_train, self.Y_train, self.X_val, self.Y_val = (
            a if dtype is None else a.astype(dtype) for a in (X_train, Y_train, X_val, Y_val))
        self.fast_validation = utils.check_flag(fast_validation, "fast_validation")
        if self.fast_validation:
            if not isinstance(getattr(model, "w", None), np.ndarray):
                raise TypeError("fast_validation needs a linear model with weights w (D, K); "
                                "this model has none: pass fast_validation=False")
            self._fast = FastEvaluation(self.X_train, self.Y_train, self.X_val, self.Y_val,
                                        self.dtype or np.float64)
        self.early_stop_epoch: int | None = None
        self.best_step: int | None = None
        self.best_val_loss = float("inf")
        self.epochs_run = self.global_step = 0

    def train_step(self, X_batch: np.ndarray, Y_batch: np.ndarray) -> float:
        """One gradient step on a batch; returns the batch loss (subclasses)."""
        raise NotImplementedError("subclasses implement train_step(X_batch, Y_batch) -> loss")

    def validation_step(self) -> tuple[float, float, float]:
        """(validation loss, training accuracy, validation accuracy) on the whole sets."""
        raise NotImplementedError("subclasses implement validation_step() -> "
                                  "(val_loss, train_accuracy, val_accuracy)")

    def train(self, num_epochs: int) -> tuple[History, History]:
        """Train for at most ``num_epochs`` epochs.

        Returns:
            train_history: {"loss": {step: batch loss}, "accuracy": {step: train accuracy}},
            val_history: {"loss": {step: val loss}, "accuracy": {step: val accuracy}}.
        Raises:
            TrainingDiverged: a loss or the weights became NaN or infinite; the model holds the
                weights of the best validation check so far (the starting weights if none).
        """
        num_epochs = utils.check_count(num_epochs, "num_epochs", 0)
        _check_model(self.model, self.X_train.shape[1])
        w = getattr(self.model, "w", None)
        original_dtype = None if w is None else w.dtype
        self._best_w = None if w is None else np.array(w, copy=True)  # the starting weights
        if self.dtype is not None and w is not None:
            self.model.w = self.model.w.astype(self.dtype)
        self.early_stop_epoch, self.best_step, self.best_val_loss = None, None, float("inf")
        self.epochs_run = self.global_step = 0
        histories = ({"loss": {}, "accuracy": {}}, {"loss": {}, "accuracy": {}})
        try:
            # a diverging run overflows: the finiteness checks below say so once, clearly
            with np.errstate(over="ignore", invalid="ignore"):
                self._run_epochs(num_epochs, *histories)
        except TrainingDiverged:
            if self._best_w is not None:
                self.model.w = self._best_w.copy()
            raise
        finally:
            if w is not None and self.model.w.dtype != original_dtype:
                self.model.w = self.model.w.astype(original_dtype)
        if self.early_stopping and self.best_step is not None and self._best_w is not None:
            self.model.w = self._best_w.astype(original_dtype)
        return histories

    def _run_epochs(self, num_epochs: int, train_history: History,
                    val_history: History) -> None:
        num_batches_per_epoch = self.X_train.shape[0] // self.batch_size
        num_steps_per_val = max(1, num_batches_per_epoch // 5)
        checks_without_improvement = 0
        rng = np.random.default_rng(self.seed)
        for epoch in _progress(range(num_epochs), type(self).__name__, self.progress):
            self.epochs_run = epoch + 1
            for X_batch, Y_batch in utils.batch_loader(self.X_train, self.Y_train,
                                                       self.batch_size, self.shuffle_dataset,
                                                       rng=rng):
                loss = self._finite("the batch loss", self.train_step, X_batch, Y_batch)
                train_history["loss"][self.global_step] = loss
                if self.global_step % num_steps_per_val == 0:
                    val_loss, accuracy_train, accuracy_val = self._finite(
                        "the validation loss", self._validate)
                    if self._best_w is not None and not np.isfinite(self.model.w).all():
                        raise self._diverged("a weight")
                    train_history["accuracy"][self.global_step] = accuracy_train
                    val_history["loss"][self.global_step] = val_loss
                    val_history["accuracy"][self.global_step] = accuracy_val
                    if np.ndim(val_loss) == 0 and val_loss < self.best_val_loss:
                        self.best_val_loss, self.best_step = float(val_loss), self.global_step
                        if self._best_w is not None:  # a grader's model may have no w
                            self._best_w = np.array(self.model.w, copy=True)
                        checks_without_improvement = 0
                    else:
                        checks_without_improvement += 1
                    if self.early_stopping and checks_without_improvement >= self.patience:
                        self.early_stop_epoch = epoch
                        return
                self.global_step += 1

    def _validate(self) -> tuple[Any, Any, Any]:
        """``validation_step()``, or its numbers from ``FastEvaluation`` (one entry per model
        for a trainer of several models side by side)."""
        if not self.fast_validation:
            return self.validation_step()
        results = self._fast(self.model.w)
        return tuple(float(r[0]) for r in results) if len(results[0]) == 1 else results

    def _finite(self, what: str, step: Any, *batch: np.ndarray) -> Any:
        """``step(*batch)``, whose results must be finite. A step that fails or returns NaN or
        inf while the weights are not finite has diverged: ``TrainingDiverged``."""
        w = getattr(self.model, "w", None)
        try:
            result = step(*batch)
        except (ValueError, FloatingPointError) as exc:
            if isinstance(w, np.ndarray) and not np.isfinite(self.model.w).all():
                raise self._diverged("a weight") from exc
            raise
        if not np.isfinite(np.asarray(result, dtype=float)).all():
            shown = ", ".join(f"{v:g}" for v in np.ravel(np.asarray(result, dtype=float)))
            raise self._diverged(f"{what} ({shown})")
        return result

    def _diverged(self, what: str) -> TrainingDiverged:
        restored = (f"the weights of the best validation check (step {self.best_step})"
                    if self.best_step is not None else "the starting weights")
        return TrainingDiverged(
            f"{type(self).__name__}: training diverged at step {self.global_step}: {what} is "
            f"not finite with learning_rate={self.learning_rate:g}. Try a smaller learning "
            f"rate (e.g. {self.learning_rate / 10:g}) and check the inputs for NaN. The model "
            f"holds {restored}.")


def _progress(epochs: range, name: str, show: bool) -> Iterator[int]:
    """The epochs, with a progress bar on stderr when ``show``: tqdm's, else one line."""
    if not show:
        return iter(epochs)
    try:
        from tqdm.auto import tqdm
    except ImportError:  # the course's environment need not have tqdm
        return _plain_progress(epochs, name)
    return iter(tqdm(epochs, desc=name, unit="epoch", leave=False))


def _plain_progress(epochs: range, name: str) -> Iterator[int]:
    for epoch in epochs:
        sys.stderr.write(f"\r{name}: epoch {epoch + 1}/{len(epochs)}")
        sys.stderr.flush()
        yield epoch
    sys.stderr.write("\r" + " " * (len(name) + 30) + "\r")


def _check_learning_rate(value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(f"learning_rate must be a positive number, got {value!r} "
                        f"({type(value).__name__})")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"learning_rate must be a finite number > 0, got {value!r}")
    return float(value)


def _check_data(X_train: Any, Y_train: Any, X_val: Any, Y_val: Any, batch_size: int) -> None:
    for name, X, Y in (("train", X_train, Y_train), ("val", X_val, Y_val)):
        if not isinstance(X, np.ndarray) or not isinstance(Y, np.ndarray):
            raise TypeError(f"X_{name} and Y_{name} must be NumPy arrays, got "
                            f"{type(X).__name__} and {type(Y).__name__}")
        if X.ndim != 2 or Y.ndim != 2 or len(X) != len(Y) or len(X) == 0:
            raise ValueError(f"X_{name} must be (N, D) images and Y_{name} (N, K) targets, "
                             f"N >= 1, got X_{name} {X.shape} and Y_{name} {Y.shape}")
        if X.dtype.kind not in "iuf" or (X.dtype.kind == "f" and not np.isfinite(X).all()):
            raise ValueError(f"X_{name} must hold finite numbers, got dtype {X.dtype}"
                             f"{' with NaN or inf' if X.dtype.kind == 'f' else ''}")
    if X_val.shape[1] != X_train.shape[1] or Y_val.shape[1] != Y_train.shape[1]:
        raise ValueError(f"the validation arrays must be as wide as the training arrays: "
                         f"X_train {X_train.shape}, Y_train {Y_train.shape}, X_val "
                         f"{X_val.shape}, Y_val {Y_val.shape}")
    if len(X_train) < batch_size:
        raise ValueError(f"batch_size {batch_size} is larger than the training set "
                         f"({len(X_train)} examples)")


def _check_model(model: Any, n_features: int) -> None:
    """A model instance whose float weights ``w``, if it keeps them there, are (D, K)."""
    if model is None or isinstance(model, type):
        what = "None" if model is None else f"the class {model.__name__}"
        raise TypeError(f"model must be a model instance such as task3a.SoftmaxModel(), got "
                        f"{what}")
    w = getattr(model, "w", None)
    if w is None:
        return  # a grader's model may keep its weights elsewhere; its steps handle them
    if not isinstance(w, np.ndarray) or w.dtype.kind != "f":
        kind = w.dtype if isinstance(w, np.ndarray) else type(w).__name__
        raise TypeError(f"model.w must be a float NumPy array, got {kind}; integer weights "
                        f"would be truncated by every step (use np.zeros(shape))")
    if w.ndim != 2 or w.shape[0] != n_features:
        raise ValueError(f"model.w has shape {w.shape} but the images have {n_features} "
                         f"columns; expected ({n_features}, K)")
