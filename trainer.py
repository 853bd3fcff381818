"""The course's training loop: ``train`` calls the subclass's ``train_step`` on each batch from
``utils.batch_loader`` and its ``validation_step`` every 20% of an epoch. Early stopping (task
2d) ends training after ``patience`` (10) checks in a row without a lower validation loss and
puts back the weights of the lowest. A loss or a weight that is not finite, or a step that
raises FloatingPointError (the course's models do for a logit that is not finite), ends training
with ``TrainingDiverged`` naming the step and the likely cause, the best check's weights back.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np

import utils


class TrainingDiverged(FloatingPointError):
    """A loss, a logit or a weight stopped being finite during training."""


class BaseTrainer:

    def __init__(self, model, learning_rate: float, batch_size: int, shuffle_dataset: bool,
                 X_train: np.ndarray, Y_train: np.ndarray, X_val: np.ndarray, Y_val: np.ndarray,
                 *, seed: int = 0, early_stopping: bool = True, patience: int = 10) -> None:
        """The course's arguments, then ``seed`` of the shuffling (the same seed, the same run),
        ``early_stopping`` (task 2d) and its ``patience``; every argument is checked here."""
        _check_arguments(model, learning_rate, batch_size, shuffle_dataset,
                         X_train, Y_train, X_val, Y_val, seed, early_stopping, patience)
        self.X_train, self.Y_train, self.X_val, self.Y_val = X_train, Y_train, X_val, Y_val
        self.learning_rate, self.batch_size = learning_rate, batch_size
        self.model, self.shuffle_dataset = model, shuffle_dataset
        self.seed, self.early_stopping, self.patience = seed, early_stopping, patience
        # after train: the (0-based) epoch early stopping ended it; the best validation's step
        self.early_stop_epoch = self.best_step = None  # ints, or None

    def validation_step(self) -> tuple[float, float, float]:
        raise NotImplementedError("a trainer returns (val_loss, train_accuracy, val_accuracy)")

    def train_step(self, X_batch: np.ndarray, Y_batch: np.ndarray) -> float:
        raise NotImplementedError("a trainer takes one gradient step and returns the batch loss")

    # a diverging run overflows: the finiteness checks in the loop say so, once, clearly
    @np.errstate(over="ignore", invalid="ignore")
    def train(self, num_epochs: int) -> tuple[dict, dict]:
        """Train for at most ``num_epochs`` epochs; returns train_history {"loss": {step: batch
        loss}, "accuracy": {step: train accuracy}} and val_history {"loss": {step: val loss},
        "accuracy": {step: val accuracy}}. Raises TrainingDiverged (see the module's docstring).
        """
        _check_count(num_epochs, "num_epochs", 0)
        # Utility variables
        num_batches_per_epoch = self.X_train.shape[0] // self.batch_size
        num_steps_per_val = max(1, num_batches_per_epoch // 5)  # every step if < 5 batches
        train_history = dict(loss={}, accuracy={})
        val_history = dict(loss={}, accuracy={})
        rng = np.random.default_rng(self.seed)
        best_w, best_val_loss, checks_without_improvement = self.model.w.copy(), np.inf, 0
        self.early_stop_epoch = self.best_step = None
        global_step = epoch = 0
        try:
            for epoch in range(num_epochs):
                train_loader = utils.batch_loader(  # a seeded order when shuffling
                    self.X_train, self.Y_train, self.batch_size,
                    shuffle=rng if self.shuffle_dataset else False)
                for X_batch, Y_batch in iter(train_loader):
                    loss = _number(self.train_step(X_batch, Y_batch), "the batch loss")
                    if not np.isfinite(self.model.w).all():
                        raise FloatingPointError("a weight is not finite")
                    # Track training loss continuously
                    train_history["loss"][global_step] = loss

                    # Track validation loss / accuracy every 20% of an epoch
                    if global_step % num_steps_per_val == 0:
                        val_loss, accuracy_train, accuracy_val = (
                            _number(value, what) for value, what in zip(
                                self.validation_step(), ("the validation loss",
                                                         "the training accuracy",
                                                         "the validation accuracy")))
                        train_history["accuracy"][global_step] = accuracy_train
                        val_history["loss"][global_step] = val_loss
                        val_history["accuracy"][global_step] = accuracy_val

                        # Early stopping (task 2d): keep the weights of the lowest validation
                        # loss; stop after `patience` checks in a row without a lower one
                        if val_loss < best_val_loss:
                            best_w, best_val_loss = self.model.w.copy(), val_loss
                            self.best_step, checks_without_improvement = global_step, 0
                        else:
                            checks_without_improvement += 1
                        if self.early_stopping and checks_without_improvement >= self.patience:
                            self.early_stop_epoch, self.model.w = epoch, best_w
                            return train_history, val_history
                    global_step += 1
        except FloatingPointError as error:
            self.model.w = best_w
            raise self._diverged(error, global_step, epoch) from error
        if self.early_stopping:
            self.model.w = best_w
        return train_history, val_history

    def _diverged(self, error: FloatingPointError, step: int, epoch: int) -> TrainingDiverged:
        dtype = self.model.w.dtype
        narrow = f", or {dtype} is too narrow (largest {np.finfo(dtype).max:g}): use float64"
        return TrainingDiverged(
            f"{type(self).__name__}: training diverged at step {step} (epoch {epoch}): {error}. "
            f"Likely cause: learning_rate={self.learning_rate:g} is too large (try "
            f"{self.learning_rate / 10:g}){narrow if dtype.itemsize < 8 else ''}. The model holds "
            + ("its starting weights." if self.best_step is None else
               f"the weights of the validation check at step {self.best_step}."))


def _number(value: Any, what: str) -> float:
    """A step's result (a number, or a one-element array) as a float, which must be finite."""
    array = np.asarray(value)
    if array.size != 1 or array.dtype.kind not in "uif":
        raise TypeError(f"{what} must be a number, got {value!r:.80}")
    number = float(array.reshape(()))
    if not np.isfinite(number):
        raise FloatingPointError(f"{what} is {number}")
    return number


def _check_count(value: Any, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")


def _check_arguments(model: Any, learning_rate: Any, batch_size: Any, shuffle_dataset: Any,
                     X_train: Any, Y_train: Any, X_val: Any, Y_val: Any, seed: Any,
                     early_stopping: Any, patience: Any) -> None:
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, Real):
        raise TypeError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
    if not 0 < learning_rate < np.inf:
        raise ValueError(f"learning_rate must be a finite number > 0, got {learning_rate}")
    _check_count(batch_size, "batch_size", 1)
    _check_count(seed, "seed", 0)
    _check_count(patience, "patience", 1)
    for name, flag in (("shuffle_dataset", shuffle_dataset), ("early_stopping", early_stopping)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    for name, X, Y in (("train", X_train, Y_train), ("val", X_val, Y_val)):
        if not (isinstance(X, np.ndarray) and isinstance(Y, np.ndarray) and X.ndim == Y.ndim == 2
                and len(X) == len(Y) > 0 and X.dtype.kind in "uif" and np.isfinite(X).all()):
            raise ValueError(f"X_{name} must be (N, D) finite numbers and Y_{name} (N, K) "
                             f"targets, N >= 1, as NumPy arrays; got X_{name} {np.shape(X)} "
                             f"and Y_{name} {np.shape(Y)}")
        if (X.shape[1], Y.shape[1]) != (X_train.shape[1], Y_train.shape[1]):
            raise ValueError(f"the validation arrays must be as wide as the training arrays: "
                             f"{X.shape} and {Y.shape} against {X_train.shape} and {Y_train.shape}")
    if len(X_train) < batch_size:
        raise ValueError(f"batch_size {batch_size} is larger than the training set "
                         f"({len(X_train)} examples)")
    w = getattr(model, "w", None)
    if isinstance(model, type) or not (isinstance(w, np.ndarray) and w.dtype.kind == "f"
                                       and w.ndim == 2 and len(w) == X_train.shape[1]):
        got = (f"the class {model.__name__}" if isinstance(model, type) else
               f"{model!r:.60}" if w is None else f"weights w of {w.dtype} {np.shape(w)}")
        raise TypeError(f"model must be a model instance whose weights w are a float array "
                        f"({X_train.shape[1]}, K), such as task3a.SoftmaxModel(0.0); got {got}")
