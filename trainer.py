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
lowest validation loss are put back into the model (``EarlyStopping``).

Divergence is never silent: once a batch loss, a validation loss or the weights
stop being finite, ``train`` raises ``TrainingDiverged`` naming the step and the
learning rate, after putting back the weights of the best validation check so
far (or the starting weights when no check was finite).

This module holds what the course's trainers share. ``task2.LogisticTrainer``
(task 2) and ``task3.SoftmaxTrainer`` (tasks 3-4) are ``ModelTrainer``s with the
maths of ``task2a`` / ``task3a``; a grader's own subclass of ``BaseTrainer`` that
overrides the two steps trains the same way.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from numbers import Real
from typing import Any, Dict

import numpy as np

import utils
from task2a import check_l2_reg_lambda, mark_checked_targets, underflow_is_fine

__all__ = ["BaseTrainer", "EarlyStopping", "History", "ModelTrainer", "TrainingDiverged",
           "check_count", "check_model", "evaluate"]

# typing.Dict, not dict[...]: a runtime alias, and the hand-in runs on Python 3.8
History = Dict[str, Dict[int, float]]

# Working copies (float32 training set, stacked feature-major images) are reused across
# trainers when no user code can still see them: see utils.ArrayPool.
POOL = utils.ArrayPool()


class TrainingDiverged(FloatingPointError):
    """The loss or the weights stopped being finite during training."""


check_count = utils.check_count  # its old home


def _check_learning_rate(value: Any, who: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{who}: learning_rate must be a positive number, got {value!r} "
                        f"({type(value).__name__})")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{who}: learning_rate must be a finite number > 0, got {value!r}")
    return float(value)


def _check_data(X_train, Y_train, X_val, Y_val, who: str) -> None:
    for name, X, Y in (("train", X_train, Y_train), ("val", X_val, Y_val)):
        if not isinstance(X, np.ndarray) or not isinstance(Y, np.ndarray):
            raise TypeError(f"{who}: X_{name} and Y_{name} must be NumPy arrays, got "
                            f"{type(X).__name__} and {type(Y).__name__}")
        if X.ndim != 2 or Y.ndim == 0 or len(X) != len(Y):
            raise ValueError(f"{who}: X_{name} must be (N, D) with one target row per image, "
                             f"got X_{name} {X.shape} and Y_{name} {Y.shape}")
        if len(X) == 0:
            raise ValueError(f"{who}: X_{name} holds no images (shape {X.shape}); every "
                             f"validation check and step needs at least one")
        if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
            raise TypeError(f"{who}: X_{name} must hold numbers, got dtype {X.dtype}")
        if np.issubdtype(X.dtype, np.floating) and not utils.all_finite(X):
            raise ValueError(f"{who}: X_{name} contains NaN or infinite values; check the "
                             f"images before training")
    if X_val.shape[1] != X_train.shape[1] or Y_val.shape[1:] != Y_train.shape[1:]:
        raise ValueError(f"{who}: validation arrays must match the training arrays' widths: "
                         f"X_train {X_train.shape}, Y_train {Y_train.shape}, X_val "
                         f"{X_val.shape}, Y_val {Y_val.shape}")


def check_model(model: Any, n_features: int, who: str) -> None:
    """A trainable model: an instance (not None, not a class) whose float weights ``w``, if
    it keeps them there, have the shape (D, K) that fits the images; a finite L2 strength.
    What else a model needs is up to the trainer's steps (a grader's may differ)."""
    if model is None or isinstance(model, type):
        what = "None" if model is None else f"the class {model.__name__}"
        raise TypeError(f"{who}: model must be a model instance such as task3a.SoftmaxModel(), "
                        f"got {what}")
    w = getattr(model, "w", None)
    if w is None:
        return  # a grader's model may keep its weights elsewhere; its steps handle them
    if not isinstance(w, np.ndarray) or not np.issubdtype(w.dtype, np.floating):
        kind = w.dtype if isinstance(w, np.ndarray) else type(w).__name__
        raise TypeError(f"{who}: model.w must be a float NumPy array, got {kind}; integer "
                        f"weights would be truncated by every step (use np.zeros(shape))")
    if w.ndim != 2 or w.shape[0] != n_features:
        raise ValueError(f"{who}: model.w has shape {w.shape} but the images have "
                         f"{n_features} columns; expected ({n_features}, K)")
    check_l2_reg_lambda(getattr(model, "l2_reg_lambda", 0.0), f"{who}: model")


def _progress(epochs: range, name: str) -> Iterator[int]:
    """Epochs with a progress bar on stderr: tqdm's when it is installed, else one line."""
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


class EarlyStopping:
    """One model's validation bookkeeping: the best loss, its weights, and patience.

    ``update`` is called at every validation check; ``stop_epoch`` is set (0-based)
    once ``patience`` checks in a row have not improved on the best loss (a tie is
    no improvement), when ``enabled``. The best weights are kept either way: they
    are what ``TrainingDiverged`` restores.
    """

    def __init__(self, patience: int, enabled: bool) -> None:
        self.patience, self.enabled = patience, enabled
        self.best_val_loss = float("inf")
        self.best_step: int | None = None
        self.best_w: np.ndarray | None = None
        self.stop_epoch: int | None = None
        self.checks_without_improvement = 0

    def update(self, step: int, epoch: int, val_loss: float, w: np.ndarray | None) -> None:
        if val_loss < self.best_val_loss:
            self.best_val_loss, self.best_step = float(val_loss), step
            self.checks_without_improvement = 0
            if w is not None:
                self.best_w = np.array(w, copy=True)
        else:
            self.checks_without_improvement += 1
        if self.enabled and self.checks_without_improvement >= self.patience:
            self.stop_epoch = epoch


class BaseTrainer:
    """Mini-batch gradient descent for a model with ``w``, ``forward`` and ``backward``.

    Args (the course's, in its order):
        model: the model to train, changed in place.
        learning_rate: step size of w <- w - learning_rate * grad (finite, > 0).
        batch_size: examples per step (1 to N_train); the short last batch is dropped.
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
            never written to.
        progress: show a progress bar over epochs (tqdm).

    Every argument is checked here, before anything changes; ``train`` checks
    ``num_epochs``. After ``train``: ``early_stop_epoch`` (0-based epoch in which
    training stopped early, None if the epoch budget ran out), ``best_step`` and
    ``best_val_loss`` (the best check's step and loss), ``epochs_run``,
    ``global_step`` (steps taken) and ``epoch_seconds`` (wall time of each epoch, checks
    included; the first also holds the working copies, which are made when first needed).
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
        who = type(self).__name__
        self.learning_rate = _check_learning_rate(learning_rate, who)
        self.batch_size = check_count(batch_size, "batch_size", who, 1)
        shuffle_dataset = utils.check_flag(shuffle_dataset, "shuffle_dataset", who)
        early_stopping = utils.check_flag(early_stopping, "early_stopping", who)
        progress = utils.check_flag(progress, "progress", who)
        _check_data(X_train, Y_train, X_val, Y_val, who)
        if len(X_train) < self.batch_size:
            raise ValueError(f"{who}: batch_size {batch_size} is larger than the "
                             f"training set ({len(X_train)} examples)")
        self.patience = check_count(patience, "patience", who, 1)
        if seed is not None:
            check_count(seed, "seed", who, 0)
        if dtype is not None and not np.issubdtype(np.dtype(dtype), np.floating):
            raise TypeError(f"{who}: dtype must be a float dtype such as np.float32, got "
                            f"{np.dtype(dtype)}")
        self.dtype = np.dtype(dtype) if dtype is not None else None
        for m in self._models(model):
            check_model(m, X_train.shape[1], who)
        self.model = model
        self.shuffle_dataset = bool(shuffle_dataset)
        self.X_train, self.Y_train = X_train, Y_train
        self.X_val, self.Y_val = X_val, Y_val
        self.seed = seed
        self.early_stopping = bool(early_stopping)
        self.progress = progress
        self.early_stop_epoch: int | None = None
        self.best_step: int | None = None
        self.best_val_loss = float("inf")
        self.epochs_run = 0
        self.global_step = 0
        self.epoch_seconds: list[float] = []
        self._training = False

    @staticmethod
    def _models(model: Any) -> list[Any]:
        """The models this trainer trains (one here; a sweep trains several)."""
        return [model]

    def train_step(self, X_batch: np.ndarray, Y_batch: np.ndarray) -> float:
        """One gradient step on a batch; returns the batch loss."""
        raise NotImplementedError("subclasses implement train_step(X_batch, Y_batch) -> loss")

    def validation_step(self) -> tuple[float, float, float]:
        """Returns (validation loss, training accuracy, validation accuracy) on the whole sets."""
        raise NotImplementedError("subclasses implement validation_step() -> "
                                  "(val_loss, train_accuracy, val_accuracy)")

    def _batches(self, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """One epoch of ``(X_batch, Y_batch)`` for ``train_step``."""
        return utils.batch_loader(self.X_train, self.Y_train, self.batch_size,
                                  shuffle=self.shuffle_dataset, rng=rng)

    def train(self, num_epochs: int) -> tuple[History, History]:
        """Train for at most ``num_epochs`` epochs.

        Returns:
            train_history: {"loss": {step: batch loss}, "accuracy": {step: train accuracy}},
            val_history: {"loss": {step: val loss}, "accuracy": {step: val accuracy}}.
        Raises:
            TrainingDiverged: a loss or the weights became NaN or infinite; the model holds
                the weights of the best validation check so far (the starting weights if
                there was none).
            RuntimeError: ``train`` is already running on this trainer.
        """
        num_epochs = check_count(num_epochs, "num_epochs", type(self).__name__, 0)
        if self._training:
            raise RuntimeError(f"{type(self).__name__}.train is already running on this "
                               f"trainer; create a second trainer instead of re-entering")
        models = self._models(self.model)
        for m in models:
            check_model(m, self.X_train.shape[1], type(self).__name__)
        self._training = True
        self.global_step = self.epochs_run = 0
        self.epoch_seconds = []
        self._stoppers = [EarlyStopping(self.patience, self.early_stopping) for _ in models]
        self._histories = [({"loss": {}, "accuracy": {}}, {"loss": {}, "accuracy": {}})
                           for _ in models]
        original = [getattr(getattr(m, "w", None), "dtype", None) for m in models]
        self._start_w = [np.array(m.w, copy=True) if o is not None else None
                         for m, o in utils.zip_equal(models, original)]
        try:
            if self.dtype is not None:
                for m, o in utils.zip_equal(models, original):
                    if o is not None:
                        m.w = m.w.astype(self.dtype)
            self._begin()
            try:
                # a diverging run overflows; the finiteness checks turn that into one clear
                # TrainingDiverged instead of a stream of warnings
                with np.errstate(over="ignore", invalid="ignore"):
                    self._run_epochs(num_epochs)
            except TrainingDiverged:
                self._restore(models, diverged=True)
                raise
            self._restore(models, diverged=False)
        finally:  # even when interrupted, the weights go back to their own dtype
            for m, o in utils.zip_equal(models, original):
                if o is not None and m.w.dtype != o:
                    m.w = m.w.astype(o)
            self._start_w = None
            self._end()
            self._training = False
        self._publish()
        return self._results()

    def _begin(self) -> None:
        """Set-up before the first epoch (working copies)."""

    def _end(self) -> None:
        """Clean-up after the last epoch, also after an error."""

    def _restore(self, models: list[Any], diverged: bool) -> None:
        """Put the best weights back (early stopping), or the last finite ones (divergence)."""
        for m, stopper, start in utils.zip_equal(models, self._stoppers, self._start_w):
            if start is None:
                continue
            if diverged or (stopper.enabled and stopper.best_w is not None):
                best = stopper.best_w if stopper.best_w is not None else start
                m.w = best.astype(m.w.dtype, copy=False)
            stopper.best_w = None

    def _publish(self) -> None:
        """Expose the one model's bookkeeping as the course's attributes."""
        stopper = self._stoppers[0]
        self.early_stop_epoch = stopper.stop_epoch
        self.best_step, self.best_val_loss = stopper.best_step, stopper.best_val_loss

    def _results(self) -> Any:
        return self._histories[0]

    def _active(self) -> list[bool]:
        return [s.stop_epoch is None for s in self._stoppers]

    def _run_epochs(self, num_epochs: int) -> None:
        num_steps_per_val = max(1, (self.X_train.shape[0] // self.batch_size) // 5)
        rng = np.random.default_rng(self.seed)
        epochs = _progress(range(num_epochs), type(self).__name__) if self.progress \
            else range(num_epochs)
        for epoch in epochs:
            self.epochs_run = epoch + 1
            started = time.perf_counter()
            try:
                for X_batch, Y_batch in self._batches(rng):
                    self._record_losses(self._guarded(self.train_step, X_batch, Y_batch))
                    if self.global_step % num_steps_per_val == 0:
                        self._record_check(epoch, self._guarded(self.validation_step))
                    self.global_step += 1
                    if not any(self._active()):
                        return
            finally:
                self.epoch_seconds.append(time.perf_counter() - started)

    def _guarded(self, step: Any, *batch: np.ndarray) -> Any:
        """``step(*batch)`` (``train_step`` or ``validation_step``). The one place where a
        failure caused by a state that is no longer finite becomes ``TrainingDiverged``: a
        step that raises (e.g. softmax of NaN logits, or a grader's accuracy refusing them)
        while a model's weights, or its logits on the step's images, are not finite. Non-finite
        numbers a step returns are caught by ``_record_losses`` and ``_record_check``."""
        try:
            return step(*batch)
        except (ValueError, FloatingPointError, OverflowError) as exc:
            images = batch[0] if batch else self.X_val
            for index, w in enumerate(self._current_weights()):
                if w is None:
                    continue
                if not utils.all_finite(w):
                    raise self._diverged("a weight", index) from exc
                if images.ndim == 2 and w.ndim == 2 and images.shape[1] == w.shape[0]:
                    with np.errstate(all="ignore"):
                        logits = images @ w
                    if not utils.all_finite(logits):
                        raise self._diverged("a logit (they overflow)", index) from exc
            raise

    def _current_weights(self) -> list[np.ndarray | None]:
        """Each model's weights as training has them now (None where a model keeps none)."""
        return [w if isinstance(w, np.ndarray) else None
                for w in (getattr(m, "w", None) for m in self._models(self.model))]

    def _diverged(self, what: str, index: int = 0) -> TrainingDiverged:
        who = f"model {index}: " if len(self._stoppers) > 1 else ""
        restored = ("the weights of the best validation check (step "
                    f"{self._stoppers[index].best_step})" if self._stoppers[index].best_w
                    is not None else "the starting weights")
        return TrainingDiverged(
            f"{type(self).__name__}: training diverged at step {self.global_step}: {who}{what} "
            f"is not finite with learning_rate={self.learning_rate:g}. Try a smaller learning "
            f"rate (e.g. {self.learning_rate / 10:g}) and check the inputs for NaN. The model "
            f"holds {restored}.")

    def _record_losses(self, losses: Any) -> None:
        for index, ((train_history, _), loss, active) in enumerate(
                utils.zip_equal(self._histories, np.atleast_1d(losses), self._active())):
            if not active:
                continue
            if not np.isfinite(loss):
                raise self._diverged(f"the batch loss ({loss})", index)
            train_history["loss"][self.global_step] = float(loss)

    def _record_check(self, epoch: int, results: tuple[Any, Any, Any]) -> None:
        """Store one validation check per model; keep the best weights; decide on stopping."""
        models = self._models(self.model)
        for index, (val_loss, accuracy_train, accuracy_val) in enumerate(utils.zip_equal(
                *(np.atleast_1d(r) for r in results))):
            stopper = self._stoppers[index]
            if stopper.stop_epoch is not None:
                continue
            w = getattr(models[index], "w", None)
            if w is not None and not utils.all_finite(w):
                raise self._diverged("a weight", index)
            if not np.isfinite(val_loss):
                raise self._diverged("the validation loss", index)
            if not (np.isfinite(accuracy_train) and np.isfinite(accuracy_val)):
                raise self._diverged("an accuracy (the logits)", index)
            train_history, val_history = self._histories[index]
            train_history["accuracy"][self.global_step] = float(accuracy_train)
            val_history["loss"][self.global_step] = float(val_loss)
            val_history["accuracy"][self.global_step] = float(accuracy_val)
            stopper.update(self.global_step, epoch, val_loss, w)


class ModelTrainer(BaseTrainer):
    """The steps shared by the course's two trainers; ``maths`` holds the model's maths.

    Subclasses (``task2.LogisticTrainer``, ``task3.SoftmaxTrainer``) write ``train_step``
    (forward, backward, the update, the batch loss) and set ``maths`` and ``check_targets``;
    this class computes their ``validation_step``. Organised for speed without changing the
    maths (see README, Performance): the training images are copied once into the training
    dtype (float32 by default), so batches are gathered from half the bytes and never
    converted one by one; the validation checks, five passes over 30,000 images per epoch
    and most of the work, use one feature-major copy of the training and validation images
    that keeps only the features that are neither constant nor rare (``_stacked_images``):
    each check is one product for both sets plus a small one for the rare features
    (``_class_major``), and the loss and both accuracies come from those logits (no softmax
    is needed for an argmax). The loss is reduced in float64. The fast path is for linear
    models (logits = X w), which declare it with ``logits_from_transposed``; any other model
    (a grader's own) is validated through its ``forward`` instead.
    """

    maths: Any = None

    def __init__(self, *args: Any, dtype: Any = np.float32, **kwargs: Any) -> None:
        super().__init__(*args, dtype=dtype, **kwargs)
        self._float = self.dtype if self.dtype is not None else np.dtype(np.float64)
        for name, Y in (("Y_train", self.Y_train), ("Y_val", self.Y_val)):
            self.check_targets(Y, name)
        self._labels_train = self._accuracy_targets(self.Y_train)
        self._labels_val = self._accuracy_targets(self.Y_val)
        self._train_copy: tuple[np.ndarray, np.ndarray] | None = None
        self._stacked: np.ndarray | None = None

    def check_targets(self, Y: np.ndarray, name: str) -> None:
        """Raise ValueError naming ``name`` unless Y suits the model (subclasses)."""

    @staticmethod
    def _accuracy_targets(Y: np.ndarray) -> np.ndarray:
        return Y

    def _end(self) -> None:
        """Hand the working copies back: the pool keeps those no user code can still see."""
        held = [*(self._train_copy or ()), self._stacked]
        self._train_copy = self._stacked = None
        POOL.give_unshared(held)

    def _batches(self, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if self._train_copy is None:
            self._train_copy = (self._pooled_copy(self.X_train), self._pooled_copy(self.Y_train))
        X, Y = self._train_copy
        # the targets were checked in the constructor: backward need not check each batch
        for X_batch, Y_batch in utils.batch_loader(X, Y, self.batch_size,
                                                    shuffle=self.shuffle_dataset, rng=rng):
            yield X_batch, mark_checked_targets(Y_batch)

    def _pooled_copy(self, array: np.ndarray) -> np.ndarray:
        copy = POOL.take(array.shape, self._float)
        np.copyto(copy, array, casting="unsafe")
        return copy

    #: A feature is rare when fewer than this share of the images differ from its lowest
    #: value (on MNIST: pixels near the border, which most digits leave as background).
    RARE_SHARE = 0.01

    def _stacked_images(self) -> np.ndarray:
        """(D' + 1, N_train + N_val) feature-major copy of both image sets, built once.

        It holds only the D' features that are neither constant nor rare, plus a last row
        of ones. A constant feature (the bias, pixels that are background in every image)
        adds one number per class to every logit, and so does a rare feature's lowest value:
        those shares ride on the row of ones. What a rare feature adds above its lowest
        value comes from a small product over just the images that have any
        (``_rare_offsets``, ``_rare_images``). On MNIST: 492 of 785 features, 208 rare
        features, 4,722 of 30,000 images with a rare one (see ``_class_major``).
        """
        if self._stacked is None:
            # from the float32 training copy when there is one: half the bytes to read
            X_train = self._train_copy[0] if self._train_copy is not None else self.X_train
            sets = (X_train, self.X_val)
            low = np.minimum(X_train.min(axis=0), self.X_val.min(axis=0))
            differing = sum((X != low).sum(axis=0) for X in sets)  # images per feature
            constant = differing == 0
            rare = ~constant & (differing < self.RARE_SHARE * sum(len(X) for X in sets))
            self._dense = np.flatnonzero(~constant & ~rare)
            self._rare = np.flatnonzero(rare)
            self._offset = np.flatnonzero(constant | rare)
            self._offset_values = low[self._offset].astype(np.float64)
            images, offsets = [], []
            for start, X in utils.zip_equal((0, len(X_train)), sets):
                part = X.take(self._rare, axis=1) - low[self._rare]
                touched = np.flatnonzero(part.any(axis=1))
                images.append(start + touched)
                offsets.append(part[touched])
            self._rare_images = np.concatenate(images)
            self._rare_offsets = np.ascontiguousarray(np.concatenate(offsets).T,
                                                      dtype=self._float)
            dense = len(self._dense)
            stacked = POOL.take((dense + 1, len(X_train) + len(self.X_val)), self._float)
            utils.stack_transposed(list(sets), dtype=self._float, out=stacked[:dense],
                                   columns=self._dense)
            stacked[dense] = 1
            self._stacked = stacked
        return self._stacked

    def _class_major(self, W: np.ndarray) -> np.ndarray:
        """(X W)^T for the training and validation images stacked: W (D, C) -> (C, N).

        One product over the dense features, whose last row of ones carries each class's
        share from the constant features and from the rare ones' lowest values (rows are
        padded to a whole number of BLAS register blocks when there are more than 16),
        then the rare features' offsets for the few images that have any.
        """
        S = self._stacked_images()
        columns, dense = W.shape[1], len(self._dense)
        rows = columns if columns <= 16 else -(-columns // 16) * 16
        WT = np.zeros((rows, S.shape[0]), dtype=self._float)
        WT[:columns, :dense] = W[self._dense].T
        WT[:columns, dense] = self._offset_values @ W[self._offset]
        with underflow_is_fine():
            out = (WT @ S)[:columns]
            if len(self._rare_images):
                out[:, self._rare_images] += W[self._rare].T.astype(self._float, copy=False) \
                    @ self._rare_offsets
        return out

    def batch_loss(self, Y_batch: np.ndarray, outputs: np.ndarray) -> float:
        """The mean loss of one batch (targets were checked once, in the constructor)."""
        raise NotImplementedError

    def validation_step(self) -> tuple[float, float, float]:
        """The course's ``validation_step`` numbers: (validation loss, training accuracy,
        validation accuracy) on the whole sets, computed from one product (see the class
        docstring) instead of three forward passes; a model without the fast path is
        validated through its ``forward``."""
        if not hasattr(self.model, "logits_from_transposed"):
            return self._validation_from_forward()
        logits = self._class_major(self.model.w).T  # (N_train + N_val, K) view
        n_train = self.X_train.shape[0]
        logits_train, logits_val = logits[:n_train], logits[n_train:]
        val_loss = self.maths.loss_from_logits_unchecked(self.Y_val, logits_val)
        accuracy_val = self.maths.accuracy_unchecked(self._labels_val, logits_val)
        accuracy_train = self.maths.accuracy_unchecked(self._labels_train, logits_train)
        return val_loss, accuracy_train, accuracy_val

    def _validation_from_forward(self) -> tuple[float, float, float]:
        outputs_val = self.model.forward(self.X_val)
        if not utils.all_finite(np.asarray(outputs_val, dtype=float)):
            return np.nan, np.nan, np.nan  # diverged: _record_check says so
        val_loss = self.batch_loss(self.Y_val, outputs_val)
        accuracy_val = self.calculate_accuracy(self.X_val, self.Y_val, self.model)
        accuracy_train = self.calculate_accuracy(self.X_train, self.Y_train, self.model)
        return val_loss, accuracy_train, accuracy_val

    @staticmethod
    def calculate_accuracy(X: np.ndarray, targets: np.ndarray, model: Any) -> float:
        raise NotImplementedError

    def evaluate(self) -> dict[str, float]:
        """Loss and accuracy of the model's current weights on the whole sets (float64)."""
        return evaluate(self.model, self.X_train, self.Y_train, self.X_val, self.Y_val,
                        self.batch_loss, self.calculate_accuracy)


def evaluate(model: Any, X_train: np.ndarray, Y_train: np.ndarray, X_val: np.ndarray,
             Y_val: np.ndarray, loss: Any, accuracy: Any) -> dict[str, float]:
    """{"train_loss", "val_loss", "train_accuracy", "val_accuracy"} of ``model`` as it is.

    ``loss(targets, outputs)`` and ``accuracy(X, targets, model)`` are the task's own.
    """
    return {"train_loss": loss(Y_train, model.forward(X_train)),
            "val_loss": loss(Y_val, model.forward(X_val)),
            "train_accuracy": accuracy(X_train, Y_train, model),
            "val_accuracy": accuracy(X_val, Y_val, model)}


_MOVED = {"LogisticTrainer": "task2", "SoftmaxTrainer": "task3",
          "SoftmaxSweepTrainer": "task3"}


def __getattr__(name: str) -> Any:
    """The trainers' old home: ``trainer.LogisticTrainer`` still works, imported lazily
    from the course's ``task2`` / ``task3`` (no import cycle: those import this module)."""
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'trainer' has no attribute {name!r}")
