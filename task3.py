"""Tasks 3-4: softmax regression for all ten digits, with L2 (the course's ``task3.py``).

The maths is in ``task3a`` and the loop in ``trainer``; this file holds what the course
puts here: ``calculate_accuracy`` (task 3c) and ``SoftmaxTrainer``, plus
``SoftmaxSweepTrainer``, which trains several softmax models side by side on the same
batches (task 3b's model and task 4's four in one pass), and the tasks' experiments and
figures. The report notebook calls the same functions.

Run it (from any folder) to train Tasks 3-4 as the course's script does::

    python task3.py [--out FOLDER] [--epochs 50]

It prints the final losses and accuracies and the weight norms, and saves the figures of
tasks 3b, 3c, 4b, 4c and 4e (default folder: ``build/task3`` next to this file).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import task3a
import utils
from task3a import SoftmaxModel, check_one_hot, one_hot_encode, pre_process_images
from trainer import History, ModelTrainer, evaluate

__all__ = [
    "BATCH_SIZE",
    "LAMBDAS",
    "LEARNING_RATE",
    "NUM_EPOCHS",
    "Run",
    "SoftmaxSweepTrainer",
    "SoftmaxTrainer",
    "calculate_accuracy",
    "confidence",
    "high_frequency_share",
    "load_data",
    "main",
    "plot_accuracy",
    "plot_loss",
    "plot_norms",
    "plot_val_accuracy_per_lambda",
    "plot_weights",
    "train_sweep",
    "weight_norms",
]

# The assignment's hyper-parameters (tasks 3b and 4).
LEARNING_RATE = 0.01
BATCH_SIZE = 128
NUM_EPOCHS = 50
SHUFFLE = True
SEED = 0
LAMBDAS = (2.0, 0.2, 0.02, 0.002)
NUM_CLASSES = 10


def calculate_accuracy(X: np.ndarray, targets: np.ndarray, model: SoftmaxModel) -> float:
    """Multi-class accuracy: the fraction of rows whose argmax output is the target class.

    Args:
        X: (N, 785) preprocessed images; targets: (N, 10) one-hot.
        model: anything with ``forward(X) -> (N, 10)``.
    Returns:
        accuracy in [0, 1].
    """
    return task3a.accuracy_from_logits(targets, model.forward(X))


class SoftmaxTrainer(ModelTrainer):
    """Tasks 3-4: a ``task3a.SoftmaxModel`` with (N, 10) one-hot targets.

    Trains in float32 by default (``dtype=np.float64`` for the course's exact setting);
    weights come back in their own dtype.
    """

    maths = task3a
    calculate_accuracy = staticmethod(calculate_accuracy)

    def train_step(self, X_batch: np.ndarray, Y_batch: np.ndarray) -> float:
        """One step of mini-batch gradient descent (tasks 3b and 4).

        Args:
            X_batch: (batch_size, 785) images; Y_batch: (batch_size, 10) one-hot targets.
        Returns:
            the batch's mean cross entropy (without the L2 term), before the step.
        """
        outputs = self.model.forward(X_batch)  # Y_hat = softmax(X w), (batch_size, 10)
        # grad = -X^T (Y - Y_hat) / batch_size + lambda w
        self.model.backward(X_batch, outputs, Y_batch)
        self.model.w -= self.learning_rate * self.model.grad
        # cross_entropy_loss without its input checks: the targets were checked once, in
        # the constructor, and the outputs come from the model's own softmax
        return task3a.softmax_cross_entropy_unchecked(Y_batch, outputs)

    def check_targets(self, Y: np.ndarray, name: str) -> None:
        who = type(self).__name__
        if Y.ndim != 2 or Y.shape[1] < 2:
            raise ValueError(f"{who}: {name} must be one-hot rows of shape (N, K), got "
                             f"{Y.shape}; encode the labels with one_hot_encode(Y, 10)")
        for m in self._models(self.model):
            w = getattr(m, "w", None)
            if w is not None and w.ndim == 2 and w.shape[1] != Y.shape[1]:
                raise ValueError(f"{who}: {name} has {Y.shape[1]} classes but model.w has "
                                 f"{w.shape[1]} columns")
        check_one_hot(Y, f"{who} ({name})")

    @staticmethod
    def _accuracy_targets(Y: np.ndarray) -> np.ndarray:
        return Y.argmax(axis=1)  # (N,) class labels, computed once instead of per check

    def validation_step(self) -> tuple[float, float, float]:
        """The validation loss and both accuracies from one class-major product.

        Softmax depends only on differences of logits, so the product computes the K - 1
        differences to class 0, d = ((w_k - w_0)^T x)_k: one row fewer than the logits.
        """
        if not hasattr(self.model, "logits_from_transposed"):
            return self._validation_from_forward()
        w = self.model.w
        d = self._class_major(w[:, 1:] - w[:, :1])  # (K - 1, N_train + N_val)
        n_train = self.X_train.shape[0]
        return (float(task3a.relative_class_major_losses(d[:, n_train:], self._labels_val)),
                float(task3a.relative_class_major_accuracies(d[:, :n_train],
                                                             self._labels_train)),
                float(task3a.relative_class_major_accuracies(d[:, n_train:], self._labels_val)))

    def batch_loss(self, Y_batch: np.ndarray, outputs: np.ndarray) -> float:
        return task3a.softmax_cross_entropy_unchecked(Y_batch, outputs)


class SoftmaxSweepTrainer(SoftmaxTrainer):
    """Several ``SoftmaxModel``s (e.g. one per L2 strength) trained side by side.

    Args: the course trainer's, in its order, with a list of models in place of one:
        models, learning_rate, batch_size, shuffle_dataset, X_train, Y_train, X_val, Y_val,
        and the same keyword-only extensions (seed, early_stopping, patience, dtype, progress).

    Each model trains exactly as ``SoftmaxTrainer`` would train it alone with the same seed:
    the same batches in the same order, its own weights and its own ``l2_reg_lambda``. The
    work is shared: one gather per batch, one product for all models' logits and one for all
    their gradients; a validation check is one product for all models over the stacked
    training and validation images. Early stopping works per model: a model that stops is
    frozen and gets its best weights back, the others go on; training ends when all stop.

    ``train(num_epochs)`` returns one ``(train_history, val_history)`` per model, in order,
    and updates each model's ``w`` in place. ``early_stop_epoch``, ``best_step`` and
    ``best_val_loss`` are lists with one entry per model.
    """

    def __init__(self, models: list[SoftmaxModel], *args: Any, **kwargs: Any) -> None:
        if isinstance(models, SoftmaxModel) or not isinstance(models, (list, tuple)) \
                or not models:
            raise TypeError(f"SoftmaxSweepTrainer: models must be a non-empty list of "
                            f"SoftmaxModel, got {type(models).__name__}")
        for m in models:
            if not isinstance(m, SoftmaxModel):
                raise TypeError(f"SoftmaxSweepTrainer: every model must be a SoftmaxModel, "
                                f"got {type(m).__name__}")
            # the sweep computes the plain model's maths for all models at once: a subclass
            # with its own maths would silently be trained as a plain SoftmaxModel
            own = [name for name in ("forward", "backward", "logits", "logits_from_transposed")
                   if getattr(type(m), name) is not getattr(SoftmaxModel, name)]
            if own:
                raise TypeError(f"SoftmaxSweepTrainer: {type(m).__name__} overrides "
                                f"{', '.join(own)}, which the sweep would not call; train it "
                                f"with SoftmaxTrainer")
        if len({id(m) for m in models}) != len(models):
            raise ValueError("SoftmaxSweepTrainer: the same model appears twice in models")
        super().__init__(list(models), *args, **kwargs)

    @staticmethod
    def _models(model: Any) -> list[Any]:
        return list(model)

    def _begin(self) -> None:
        super()._begin()
        models = self._models(self.model)  # checked by train(), l2_reg_lambda included
        expected = (self.X_train.shape[1], self.Y_train.shape[1])
        for index, m in enumerate(models):  # a model's w may have been replaced since
            if m.w.shape != expected:
                raise ValueError(f"SoftmaxSweepTrainer: model {index}'s w has shape "
                                 f"{m.w.shape}, expected {expected} like the targets")
        self._k = models[0].w.shape[1]
        self._W = np.concatenate([m.w for m in models], axis=1).astype(self._float)
        self._lambda_cols = np.repeat([float(m.l2_reg_lambda) for m in models],
                                      self._k).astype(self._float)
        self._lr_cols = np.full(self._W.shape[1], self.learning_rate, dtype=self._float)
        self._step_factors()

    def _step_factors(self) -> None:
        """Per column, the weight decay 1 - lr lambda (1 for a model that has stopped: its
        learning rate is 0, which freezes it); None when no model still training decays."""
        shrink = self._lr_cols * self._lambda_cols
        self._decay = 1 - shrink if shrink.any() else None

    def _current_weights(self) -> list[np.ndarray | None]:
        if getattr(self, "_W", None) is None:
            return super()._current_weights()
        return [self._W[:, self._block(index)] for index in range(len(self._stoppers))]

    def _block(self, index: int) -> slice:
        return slice(index * self._k, (index + 1) * self._k)

    def _sync(self) -> None:
        """Copy the shared weight matrix back into each model's own ``w``."""
        for index, m in enumerate(self._models(self.model)):
            m.w[...] = self._W[:, self._block(index)]

    def train_step(self, X_batch: np.ndarray, Y_batch: np.ndarray) -> np.ndarray:
        """One step for every model still training; returns their batch losses, (M,).

        The maths is the models' own, applied to all models' columns at once: the softmax
        is ``task3a.softmax``, and the step w <- w - lr (-(1/n) X^T (Y - Y_hat) + lambda w)
        with ``task2a.cross_entropy_gradient``'s gradient is taken in its weight-decay form,
        w <- (1 - lr lambda) w - (lr / n) X^T (Y_hat - Y): equal up to float rounding, and
        without the three passes over the (785, M K) gradient that the first form needs.
        """
        n, k = X_batch.shape[0], self._k
        m = self._W.shape[1] // k
        with task3a.underflow_is_fine():
            logits = X_batch @ self._W
        # class-major (M, K, n): the softmax's reductions over 10 classes then run along n
        p = task3a.softmax(np.ascontiguousarray(logits.T).reshape(m, k, n), axis=1)
        true = p[:, Y_batch.argmax(axis=1), np.arange(n)]  # (M, n)
        with task3a.underflow_is_fine():  # the mean cross entropy, clipped only at 0
            losses = -np.log(np.maximum(true, np.finfo(p.dtype).tiny)).sum(
                axis=1, dtype=np.float64) / n
        p -= Y_batch.T  # the error Y_hat - Y, for every model
        p *= (self._lr_cols / n).reshape(m, k, 1)
        with task3a.underflow_is_fine():
            update = X_batch.T @ p.reshape(m * k, n).T
            if self._decay is not None:
                self._W *= self._decay
        self._W -= update
        return losses

    def validation_step(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(val_loss, train_accuracy, val_accuracy) of every model, each (M,)."""
        self._sync()
        m, k = len(self._stoppers), self._k
        W = self._W.reshape(self._W.shape[0], m, k)
        relative = (W[:, :, 1:] - W[:, :, :1]).reshape(self._W.shape[0], -1)  # (D, M (K - 1))
        d = self._class_major(relative).reshape(m, k - 1, -1)  # (M, K - 1, N)
        n_train = self.X_train.shape[0]
        val_loss = task3a.relative_class_major_losses(d[:, :, n_train:], self._labels_val)
        accuracy_train = task3a.relative_class_major_accuracies(d[:, :, :n_train],
                                                                self._labels_train)
        accuracy_val = task3a.relative_class_major_accuracies(d[:, :, n_train:],
                                                              self._labels_val)
        return val_loss, accuracy_train, accuracy_val

    def _record_check(self, epoch: int, results: tuple[Any, Any, Any]) -> None:
        super()._record_check(epoch, results)
        for index, stopper in enumerate(self._stoppers):  # a stopped model is frozen
            if stopper.stop_epoch is not None:
                self._lr_cols[self._block(index)] = 0
        self._step_factors()

    def _run_epochs(self, num_epochs: int) -> None:
        try:
            super()._run_epochs(num_epochs)
        finally:
            self._sync()

    def _end(self) -> None:
        self._W = None
        super()._end()

    def _publish(self) -> None:
        self.early_stop_epoch = [s.stop_epoch for s in self._stoppers]
        self.best_step = [s.best_step for s in self._stoppers]
        self.best_val_loss = [s.best_val_loss for s in self._stoppers]

    def _results(self) -> list[tuple[History, History]]:
        return list(self._histories)

    def evaluate(self) -> list[dict[str, float]]:
        """``SoftmaxTrainer.evaluate`` for each model, in order."""
        return [evaluate(m, self.X_train, self.Y_train, self.X_val, self.Y_val,
                         self.batch_loss, self.calculate_accuracy)
                for m in self._models(self.model)]


def load_data() -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Tasks 3-4's split, preprocessed and one-hot encoded.

    Returns:
        (X_train (20000, 785), Y_train (20000, 10), X_val (10000, 785), Y_val (10000, 10)),
        and the validation labels (10000,) as integers.
    """
    X_train, Y_train, X_val, Y_val = utils.load_full_mnist()
    data = (pre_process_images(X_train), one_hot_encode(Y_train, NUM_CLASSES),
            pre_process_images(X_val), one_hot_encode(Y_val, NUM_CLASSES))
    return data, Y_val[:, 0].astype(np.intp)


@dataclass
class Run:
    """One model of a sweep: its L2 strength, weights, histories and final metrics."""

    l2_reg_lambda: float
    model: SoftmaxModel
    train_history: History
    val_history: History
    metrics: dict[str, float] = field(default_factory=dict)
    early_stop_epoch: int | None = None


def train_sweep(data: tuple[np.ndarray, ...], lambdas: tuple[float, ...] | list[float],
                num_epochs: int = NUM_EPOCHS, *, early_stopping: bool = False,
                seed: int = SEED, progress: bool = False) -> tuple[list[Run], float]:
    """Train one zero-initialised SoftmaxModel per lambda in one sweep (tasks 3b and 4).

    Early stopping is off by default: the tasks ask for 50 epochs, and the runs then
    compare like with like. Returns the runs in the order of ``lambdas`` and the seconds
    the training took.
    """
    models = [SoftmaxModel(l2_reg_lambda=lam) for lam in lambdas]
    sweep = SoftmaxSweepTrainer(models, LEARNING_RATE, BATCH_SIZE, SHUFFLE, *data, seed=seed,
                                early_stopping=early_stopping, progress=progress)
    start = time.perf_counter()
    histories = sweep.train(num_epochs)
    seconds = time.perf_counter() - start
    runs = [Run(lam, m, th, vh, metrics, stop) for lam, m, (th, vh), metrics, stop in
            utils.zip_equal(lambdas, models, histories, sweep.evaluate(), sweep.early_stop_epoch)]
    return runs, seconds


def plot_loss(run: Run, ax: Any) -> None:
    """Task 3b: training loss (windowed band) and validation loss."""
    utils.plot_loss(run.train_history["loss"], "Training loss", npoints_to_average=10,
                    band="quantile", ax=ax)
    utils.plot_loss(run.val_history["loss"], "Validation loss", ax=ax)
    utils.label_steps_plot(ax, "Task 3b: softmax regression, loss", "Cross entropy loss",
                           (0.2, 0.6))


def plot_accuracy(run: Run, ax: Any) -> None:
    """Task 3c: training and validation accuracy at every validation check."""
    utils.plot_loss(run.train_history["accuracy"], "Training accuracy", ax=ax)
    utils.plot_loss(run.val_history["accuracy"], "Validation accuracy", ax=ax)
    utils.label_steps_plot(ax, "Task 3c: softmax regression, accuracy", "Accuracy", (0.85, 0.95))


def plot_weights(unregularised: Run, regularised: Run, fig: Any) -> None:
    """Task 4b: each model's 10 weight columns (bias row dropped) as 28x28 images, in two
    rows of five per model (large enough to read in print): lambda = 0 on top, lambda = 2
    below. Red is positive, blue negative; each model has its own symmetric colour scale."""
    axes = fig.subplots(4, 5, gridspec_kw={"wspace": 0.05, "hspace": 0.32})
    for block, run in enumerate((unregularised, regularised)):
        weights = run.model.w[:784]
        limit = np.abs(weights).max()
        for digit in range(10):
            ax = axes[2 * block + digit // 5, digit % 5]
            ax.imshow(weights[:, digit].reshape(28, 28), cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            ax.set_title(f"digit {digit}", fontsize=11)
        axes[2 * block, 0].set_ylabel(f"$\\lambda = {run.l2_reg_lambda:g}$", fontsize=12)
        axes[2 * block + 1, 0].set_ylabel(f"$\\lambda = {run.l2_reg_lambda:g}$", fontsize=12)
    fig.suptitle("Task 4b: weights per class as 28x28 images (top two rows: $\\lambda = 0$, "
                 "bottom two: $\\lambda = 2$)", fontsize=12)


def plot_val_accuracy_per_lambda(runs: list[Run], ax: Any) -> None:
    """Task 4c: validation accuracy during training, one curve per lambda (the four the task
    asks for, each in its own colour and line style so that none hides another)."""
    styles = ("-", "--", "-.", ":")
    for index, run in enumerate(runs):
        utils.plot_loss(run.val_history["accuracy"], f"$\\lambda = {run.l2_reg_lambda:g}$",
                        ax=ax)
        ax.lines[-1].set_linestyle(styles[index % len(styles)])
    values = np.concatenate([list(r.val_history["accuracy"].values())[5:] for r in runs])
    low = max(0.0, np.floor(values.min() * 50) / 50 - 0.01) if values.size else 0.0
    utils.label_steps_plot(ax, "Task 4c: validation accuracy during training for each $\\lambda$",
                           "Validation accuracy", (low, 0.94), loc="lower right", ncol=2)


def high_frequency_share(w: np.ndarray, cutoff: float = 0.25) -> float:
    """Share of the weight images' energy at spatial frequencies above ``cutoff``.

    Each class's 784 pixel weights (bias row dropped) form a 28x28 image; after removing
    its mean, the share of sum |FFT|^2 at frequencies above ``cutoff`` cycles per pixel
    (patterns finer than 1 / cutoff pixels): pixel-to-pixel noise lives there, the smooth
    strokes of a digit template do not.
    Args:
        w: (785, K) weights.
    """
    images = w[:784].T.reshape(-1, 28, 28)
    images = images - images.mean(axis=(1, 2), keepdims=True)
    energy = np.abs(np.fft.fft2(images)) ** 2
    f = np.fft.fftfreq(28)
    radius = np.hypot(f[:, None], f[None, :])
    return float(energy[:, radius > cutoff].sum() / energy.sum())


def confidence(model: SoftmaxModel, X: np.ndarray) -> float:
    """Mean probability the model gives its predicted class on X (N, 785): how peaked
    (large logits) or flat (small logits) its outputs are."""
    return float(model.forward(X).max(axis=1).mean())


def weight_norms(runs: list[Run]) -> dict[float, tuple[float, float]]:
    """lambda -> (||w||_2, ||w||_2^2 = sum of w^2) over all 785 x 10 weights."""
    return {r.l2_reg_lambda: (float(np.linalg.norm(r.model.w)), float(np.sum(r.model.w ** 2)))
            for r in runs}


def plot_norms(runs: list[Run], reference: Run | None, axes: Any) -> None:
    """Task 4e: ||w|| (left) and ||w||^2 (right) of the final weights against lambda, with
    ticks at the lambdas trained and, dashed, the unregularised model's value."""
    norms = weight_norms(runs)
    lambdas = sorted(r.l2_reg_lambda for r in runs)
    ref = weight_norms([reference])[reference.l2_reg_lambda] if reference else None
    for column, (ax, label) in enumerate(utils.zip_equal(
            axes, ("$\\|w\\|_2$", "$\\|w\\|_2^2 = \\sum_{i,j} w_{i,j}^2$"))):
        ax.plot(lambdas, [norms[lam][column] for lam in lambdas], "o-", label="final weights")
        if ref is not None:
            ax.axhline(ref[column], color="gray", linestyle="--",
                       label=f"$\\lambda = 0$: {ref[column]:.1f}")
        ax.set_xscale("log")
        ax.set_xticks(lambdas)
        ax.set_xticklabels([f"{lam:g}" for lam in lambdas])
        ax.minorticks_off()
        ax.set_xlabel("$\\lambda$ (log scale)")
        ax.set_ylabel(label)
        top = max([norms[lam][column] for lam in lambdas] + ([ref[column]] if ref else []))
        ax.set_ylim(0, 1.45 * top)  # room for the legend above every curve
        ax.legend(loc="upper right")
    axes[0].set_title("Task 4e: L2 norm")
    axes[1].set_title("Task 4e: squared L2 norm")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train Tasks 3-4 (softmax regression, L2).")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "build"
                        / "task3", help="folder for the figures (default: build/task3)")
    parser.add_argument("--epochs", type=int, default=NUM_EPOCHS)
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args.out.mkdir(parents=True, exist_ok=True)
    data, _ = load_data()
    # a progress bar in a terminal (the sweep takes a while), nothing in a log
    runs, seconds = train_sweep(data, (0.0, *LAMBDAS), args.epochs,
                                progress=sys.stderr.isatty())
    print(f"Tasks 3-4: {len(runs)} softmax models trained in one sweep, {args.epochs} epochs, "
          f"{seconds:.1f} s")
    for run in runs:
        m = run.metrics
        print(f"  lambda = {run.l2_reg_lambda:<5g}: train loss {m['train_loss']:.4f}, "
              f"val loss {m['val_loss']:.4f}, train accuracy {m['train_accuracy']:.4f}, "
              f"val accuracy {m['val_accuracy']:.4f}, ||w|| {np.linalg.norm(run.model.w):.3f}")
    reference, by_lambda = runs[0], {r.l2_reg_lambda: r for r in runs}
    figures = {"task3b_softmax_loss": lambda fig: plot_loss(reference, fig.subplots()),
               "task3c_softmax_accuracy": lambda fig: plot_accuracy(reference, fig.subplots()),
               "task4b_weights": lambda fig: plot_weights(reference, by_lambda[2.0], fig),
               "task4c_l2_val_accuracy": lambda fig: plot_val_accuracy_per_lambda(
                   runs[1:], fig.subplots()),
               "task4e_l2_norm": lambda fig: plot_norms(runs[1:], reference, fig.subplots(1, 2))}
    sizes = {"task4b_weights": (6.4, 6.6), "task4e_l2_norm": (6.4, 3.2)}
    for name, draw in figures.items():
        fig = plt.figure(figsize=sizes.get(name, (6.4, 3.6)))
        draw(fig)
        fig.savefig(args.out / f"{name}.png", dpi=150, bbox_inches="tight")
        plt.close(fig)
        print(f"  saved {args.out / name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
