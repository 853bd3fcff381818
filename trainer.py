"""The training loop: mini-batch gradient descent with validation and early stopping.

``BaseTrainer.train`` drives the loop the course describes. Each epoch it walks
the training set in mini-batches from ``utils.batch_loader`` (a fresh seeded
permutation per epoch when ``shuffle_dataset``); each step calls
``train_step(X_batch, Y_batch)``, which updates the weights (w <- w - lr * grad)
and returns the batch loss. Every ``num_batches_per_epoch // 5`` steps (20% of an
epoch, and at step 0) it calls ``validation_step()``, which returns
``(val_loss, train_accuracy, val_accuracy)`` on the whole sets.

Early stopping (task 2d): training stops once the validation loss has not
improved for ``patience`` (10) consecutive checks, and the weights of the
lowest validation loss are put back into the model.

``LogisticTrainer`` (task 2) and ``SoftmaxTrainer`` (tasks 3-4) implement the
two steps with the maths of ``task2a`` / ``task3a``. A grader's own subclass of
``BaseTrainer`` that overrides the two steps trains the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import task2a
import task3a
import utils

__all__ = ["BaseTrainer", "History", "LogisticTrainer", "SoftmaxTrainer"]

History = dict[str, dict[int, float]]

# Working copies (float32 training set, stacked feature-major images) are reused across
# trainers: see utils.ArrayPool.
_POOL = utils.ArrayPool()


class BaseTrainer:
    """Mini-batch gradient descent for a model with ``w``, ``forward`` and ``backward``.

    Args (the course's, in its order):
        model: the model to train, changed in place.
        learning_rate: step size of w <- w - learning_rate * grad.
        batch_size: examples per step; the short last batch is dropped.
        shuffle_dataset: a fresh permutation of the training set every epoch.
        X_train, Y_train, X_val, Y_val: (N, 785) preprocessed images, targets.
    Keyword-only extensions:
        seed: seeds the shuffling; the same seed gives the same run, bit for bit.
        early_stopping: stop after ``patience`` checks without improvement and
            restore the best weights (default on, as task 2d asks).
        patience: validation checks without improvement before stopping.
        dtype: the float dtype of the weights while training (e.g. np.float32,
            much faster); ``train`` casts ``model.w`` to it and back to its own
            dtype at the end. None leaves the weights alone. The data arrays are
            never copied here.
        progress: show a progress bar over epochs (tqdm).

    After ``train``: ``early_stop_epoch`` (0-based epoch in which training
    stopped early, None if the epoch budget ran out), ``best_step`` and
    ``best_val_loss`` (the restored weights' step and loss), ``epochs_run``
    and ``global_step`` (steps taken).
    """

    def __init__(
        self,
        model: Any,
        learning_rate: float,
        batch_size: int,
        shuffle_dataset: bool,
        X_train: np.ndarray,
        Y_train: np.ndarray,
        X_val: np.ndarray,
        Y_val: np.ndarray,
        *,
        seed: int = utils.DEFAULT_SEED,
        early_stopping: bool = True,
        patience: int = 10,
        dtype: Any = None,
        progress: bool = False,
    ) -> None:
        for name, X, Y in (("train", X_train, Y_train), ("val", X_val, Y_val)):
            if X.ndim != 2 or len(X) != len(Y):
                raise ValueError(f"{type(self).__name__}: X_{name} must be (N, D) with one target "
                                 f"row per image, got X_{name} {X.shape} and Y_{name} {Y.shape}")
        if len(X_train) < batch_size:
            raise ValueError(f"{type(self).__name__}: batch_size {batch_size} is larger than the "
                             f"training set ({len(X_train)} examples)")
        if patience < 1:
            raise ValueError(f"{type(self).__name__}: patience must be >= 1, got {patience}")
        self.dtype = np.dtype(dtype) if dtype is not None else None
        self.model = model
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.shuffle_dataset = shuffle_dataset
        self.X_train, self.Y_train = X_train, Y_train
        self.X_val, self.Y_val = X_val, Y_val
        self.seed = seed
        self.early_stopping = early_stopping
        self.patience = patience
        self.progress = progress
        self.early_stop_epoch: int | None = None
        self.best_step: int | None = None
        self.best_val_loss = float("inf")
        self.epochs_run = 0
        self.global_step = 0

    def train_step(self, X_batch: np.ndarray, Y_batch: np.ndarray) -> float:
        """One gradient step on a batch; returns the batch loss."""
        raise NotImplementedError("subclasses implement train_step(X_batch, Y_batch) -> loss")

    def validation_step(self) -> tuple[float, float, float]:
        """Returns (validation loss, training accuracy, validation accuracy) on the whole sets."""
        raise NotImplementedError("subclasses implement validation_step() -> "
                                  "(val_loss, train_accuracy, val_accuracy)")

    def _batches(self, rng: np.random.Generator):
        """One epoch of ``(X_batch, Y_batch)`` for ``train_step``."""
        return utils.batch_loader(self.X_train, self.Y_train, self.batch_size,
                                  shuffle=self.shuffle_dataset, rng=rng)

    def train(self, num_epochs: int) -> tuple[History, History]:
        """Train for at most ``num_epochs`` epochs.

        Returns:
            train_history: {"loss": {step: batch loss}, "accuracy": {step: train accuracy}},
            val_history: {"loss": {step: val loss}, "accuracy": {step: val accuracy}}.
        """
        train_history: History = {"loss": {}, "accuracy": {}}
        val_history: History = {"loss": {}, "accuracy": {}}
        self.early_stop_epoch, self.best_step, self.best_val_loss = None, None, float("inf")
        self.global_step = self.epochs_run = 0
        self._best_w, self._checks_without_improvement = None, 0
        original_dtype = getattr(getattr(self.model, "w", None), "dtype", None)
        recast = self.dtype is not None and original_dtype is not None
        if recast:
            self.model.w = self.model.w.astype(self.dtype)
        try:
            self._run_epochs(num_epochs, train_history, val_history)
            if self._best_w is not None:
                self.model.w = self._best_w
        finally:  # even when interrupted, the weights go back to their own dtype
            self._best_w = None
            if recast:
                self.model.w = self.model.w.astype(original_dtype)
        return train_history, val_history

    def _run_epochs(self, num_epochs: int, train_history: History, val_history: History) -> None:
        num_steps_per_val = max(1, (self.X_train.shape[0] // self.batch_size) // 5)
        rng = np.random.default_rng(self.seed)
        epochs = range(num_epochs)
        if self.progress:
            from tqdm.auto import tqdm
            epochs = tqdm(epochs, desc=type(self).__name__, unit="epoch", leave=False)
        for epoch in epochs:
            self.epochs_run = epoch + 1
            for X_batch, Y_batch in self._batches(rng):
                train_history["loss"][self.global_step] = float(self.train_step(X_batch, Y_batch))
                if self.global_step % num_steps_per_val == 0:
                    self._record_check(epoch, self.validation_step(), train_history, val_history)
                self.global_step += 1
                if self.early_stop_epoch is not None:
                    return

    def _record_check(self, epoch: int, results: tuple[float, float, float],
                      train_history: History, val_history: History) -> None:
        """Store one validation check; keep the best weights; decide on early stopping."""
        val_loss, accuracy_train, accuracy_val = results
        step = self.global_step
        train_history["accuracy"][step] = float(accuracy_train)
        val_history["loss"][step] = float(val_loss)
        val_history["accuracy"][step] = float(accuracy_val)
        if val_loss < self.best_val_loss:
            self.best_val_loss, self.best_step = float(val_loss), step
            self._checks_without_improvement = 0
            if self.early_stopping and hasattr(self.model, "w"):
                self._best_w = np.array(self.model.w, copy=True)
        else:
            self._checks_without_improvement += 1
        if self.early_stopping and self._checks_without_improvement >= self.patience:
            self.early_stop_epoch = epoch


class _ModelTrainer(BaseTrainer):
    """The steps shared by both models; ``maths`` is the module holding the model's maths.

    Organised for speed without changing the maths (see README, Performance):
    the training images are copied once into the training dtype (float32 by default),
    so batches are gathered from half the bytes and never converted one by one; the
    validation checks, five passes over 30,000 images per epoch and most of the work,
    use one feature-major copy of the training and validation images (785, N_train +
    N_val): each check is a single product ``w^T X^T`` for both sets, and the loss and
    both accuracies come from those logits (no softmax is needed for an argmax).
    The copies are built on first use and handed back to a pool when ``train`` returns,
    so the next trainer of the same shapes reuses their memory (see ``utils.ArrayPool``).
    """

    maths: Any = None

    def __init__(self, *args: Any, dtype: Any = np.float32, **kwargs: Any) -> None:
        super().__init__(*args, dtype=dtype, **kwargs)
        self._float = self.dtype if self.dtype is not None else np.dtype(np.float64)
        self._labels_train = self._accuracy_targets(self.Y_train)
        self._labels_val = self._accuracy_targets(self.Y_val)
        self._release()

    def _release(self) -> None:
        """Hand the working copies back to the pool (the next trainer reuses the memory)."""
        held = getattr(self, "_train_copy", None) or ()
        _POOL.give(*held, getattr(self, "_stacked", None))
        self._train_copy: tuple[np.ndarray, np.ndarray] | None = None
        self._stacked: np.ndarray | None = None

    @staticmethod
    def _accuracy_targets(Y: np.ndarray) -> np.ndarray:
        return Y

    def _batches(self, rng: np.random.Generator):
        if self._train_copy is None:
            self._train_copy = (self._pooled_copy(self.X_train), self._pooled_copy(self.Y_train))
        X, Y = self._train_copy
        return utils.batch_loader(X, Y, self.batch_size, shuffle=self.shuffle_dataset, rng=rng)

    def _pooled_copy(self, array: np.ndarray) -> np.ndarray:
        copy = _POOL.take(array.shape, self._float)
        np.copyto(copy, array, casting="same_kind")
        return copy

    def train(self, num_epochs: int) -> tuple[History, History]:
        try:
            return super().train(num_epochs)
        finally:
            self._release()

    def train_step(self, X_batch: np.ndarray, Y_batch: np.ndarray) -> float:
        outputs = self.model.forward(X_batch)
        self.model.backward(X_batch, outputs, Y_batch)
        self.model.w -= self.learning_rate * self.model.grad
        return self.maths.cross_entropy_loss(Y_batch, outputs)

    def validation_step(self) -> tuple[float, float, float]:
        if self._stacked is None:
            # from the float32 training copy when there is one: half the bytes to read
            X_train = self._train_copy[0] if self._train_copy is not None else self.X_train
            shape = (X_train.shape[1], len(X_train) + len(self.X_val))
            self._stacked = utils.stack_transposed([X_train, self.X_val], dtype=self._float,
                                                   out=_POOL.take(shape, self._float))
        logits = self.model.logits_from_transposed(self._stacked).T  # (N_train + N_val, K) view
        n_train = self.X_train.shape[0]
        logits_train, logits_val = logits[:n_train], logits[n_train:]
        val_loss = self.maths.cross_entropy_loss_from_logits(self.Y_val, logits_val)
        accuracy_val = self.maths.accuracy_from_logits(self._labels_val, logits_val)
        accuracy_train = self.maths.accuracy_from_logits(self._labels_train, logits_train)
        return val_loss, accuracy_train, accuracy_val


class LogisticTrainer(_ModelTrainer):
    """Task 2: a ``task2a.BinaryModel`` with (N, 1) targets in {0, 1}.

    Trains in float32 by default (``dtype=np.float64`` for the course's exact setting).
    """

    maths = task2a


class SoftmaxTrainer(_ModelTrainer):
    """Tasks 3-4: a ``task3a.SoftmaxModel`` with (N, 10) one-hot targets.

    Trains in float32 by default (``dtype=np.float64`` for the course's exact setting).
    """

    maths = task3a

    @staticmethod
    def _accuracy_targets(Y: np.ndarray) -> np.ndarray:
        return Y.argmax(axis=1).reshape(-1, 1)  # class labels, computed once instead of per check
