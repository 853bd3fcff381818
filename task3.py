"""Tasks 3-4: softmax regression for all ten digits, with L2 (the course's ``task3.py``).

The maths is in ``task3a`` and the loop in ``trainer``. This file holds what the course puts
here: ``calculate_accuracy`` (task 3c) and ``SoftmaxTrainer`` with its ``train_step`` (3b) and
``validation_step``; then ``SoftmaxSweepTrainer``, which trains the five models of tasks 3 and 4
side by side on the same batches through the same functions, and the tasks' experiments and
figures, which the report notebook calls.

Run it (from any folder) to train Tasks 3-4 as the course's script does::

    python task3.py [--out FOLDER] [--epochs 50]

It prints the final losses, accuracies and weight norms, and saves the figures of tasks 3b,
3c, 4b, 4c and 4e (default folder: ``build/task3`` next to this file).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import utils
from task2 import FAST, evaluate
from task2a import check_images
from task3a import SoftmaxModel, cross_entropy_loss, one_hot_encode, pre_process_images, softmax
from trainer import BaseTrainer, History

# hyperparameters DO NOT CHANGE IF NOT SPECIFIED IN ASSIGNMENT TEXT (tasks 3b and 4)
LEARNING_RATE = 0.01
BATCH_SIZE = 128
NUM_EPOCHS = 50
SHUFFLE_DATASET = True
LAMBDAS = (2.0, 0.2, 0.02, 0.002)
NUM_CLASSES = 10


def calculate_accuracy(X: np.ndarray, targets: np.ndarray, model: SoftmaxModel) -> float:
    """Fraction of images whose most probable class (argmax of the outputs) is the target.

    Args:
        X: (N, 785) preprocessed images; targets: (N, 10) one-hot.
        model: anything with ``forward(X) -> (N, 10)`` probabilities.
    """
    outputs = model.forward(X)
    if np.shape(targets) != outputs.shape:
        raise ValueError(f"targets must be one-hot {outputs.shape} like the outputs, got "
                         f"{np.shape(targets)}; encode labels with one_hot_encode(Y, 10)")
    return float(np.mean(outputs.argmax(axis=1) == targets.argmax(axis=1)))


class SoftmaxTrainer(BaseTrainer):
    """Tasks 3-4: a ``task3a.SoftmaxModel`` with (N, 10) one-hot targets."""

    def train_step(self, X_batch: np.ndarray, Y_batch: np.ndarray) -> float:
        """One step of mini-batch gradient descent (tasks 3b and 4).

        Args:
            X_batch: (batch_size, 785) images; Y_batch: (batch_size, 10) one-hot targets.
        Returns:
            the batch's mean cross entropy (without the L2 term), before the step.
        """
        outputs = self.model.forward(X_batch)  # Y_hat = softmax(X w)
        self.model.backward(X_batch, outputs, Y_batch)  # grad = -X^T (Y - Y_hat) / N + lambda w
        self.model.w -= self.learning_rate * self.model.grad
        return cross_entropy_loss(Y_batch, outputs)

    def validation_step(self) -> tuple[float, float, float]:
        """
        Perform forward pass through all validation samples, compute validation loss and accuracy.
        Returns:
            loss value (float) on the validation set,
            accuracy_train (float): Accuracy on train dataset
            accuracy_val (float): Accuracy on the validation dataset
        """
        # NO NEED TO CHANGE THIS FUNCTION
        logits = self.model.forward(self.X_val)
        loss = cross_entropy_loss(self.Y_val, logits)

        accuracy_train = calculate_accuracy(
            self.X_train, self.Y_train, self.model)
        accuracy_val = calculate_accuracy(
            self.X_val, self.Y_val, self.model)
        return loss, accuracy_train, accuracy_val


class StackedSoftmaxModel(SoftmaxModel):
    """M ``SoftmaxModel``s side by side, so that one product serves them all.

    ``w`` (785, 10 M) holds model m's weights in columns 10 m ... 10 m + 9, and
    ``l2_reg_lambda`` (10 M,) its lambda in the same columns. ``forward`` is ``task3a.softmax``
    of each model's logits, and ``SoftmaxModel.backward``'s -X^T (Y - Y_hat) / N + lambda w,
    with the targets repeated for each model, is every model's own gradient at once.
    """

    def __init__(self, models: list[SoftmaxModel]) -> None:
        super().__init__()
        self.num_models = len(models)
        self.w = np.concatenate([m.w for m in models], axis=1)
        self.l2_reg_lambda = np.repeat([m.l2_reg_lambda for m in models], self.num_outputs)

    def forward(self, X: np.ndarray) -> np.ndarray:
        """X: (N, 785) -> (N, 10 M): softmax(X w_m) for every model m."""
        check_images(X, self.w)
        with np.errstate(under="ignore"):
            z = X @ self.w
        return softmax(z.reshape(len(X), self.num_models, self.num_outputs)).reshape(z.shape)

    def backward(self, X: np.ndarray, outputs: np.ndarray, targets: np.ndarray) -> None:
        """``SoftmaxModel.backward`` with the (N, 10) targets given to every model."""
        super().backward(X, outputs, np.tile(targets, self.num_models))

    def split(self, a: np.ndarray) -> list[np.ndarray]:
        """(N, 10 M) -> M arrays (N, 10), one per model, each contiguous (a copy)."""
        return list(a.reshape(len(a), self.num_models, -1).swapaxes(0, 1).copy())

    def unstacked(self) -> list[SoftmaxModel]:
        """Each model on its own, as a ``SoftmaxModel`` holding a copy of its weights."""
        models = []
        for w, lam in zip(self.split(self.w), self.l2_reg_lambda[::self.num_outputs]):
            model = SoftmaxModel(float(lam))
            model.w = w.copy()
            models.append(model)
        return models


class SoftmaxSweepTrainer(SoftmaxTrainer):
    """Several ``SoftmaxModel``s (one per L2 strength) trained side by side on the same batches.

    Args: ``SoftmaxTrainer``'s, with a list of models in place of one, and its keyword
    extensions but early stopping (the models train the same number of epochs).

    The models train as one ``StackedSoftmaxModel`` with ``SoftmaxTrainer.train_step``'s four
    lines, which give one batch loss per model: each model takes exactly the steps it would take
    alone with the same seed. ``train`` returns one ``(train_history, val_history)`` per model,
    in order, and writes each model's final weights into its ``w``; lambda is cast to ``dtype`` too.
    """

    def __init__(self, models: list[SoftmaxModel], *args: Any, **kwargs: Any) -> None:
        if not isinstance(models, (list, tuple)) or not models or any(
                type(m) is not SoftmaxModel for m in models):
            raise TypeError("models must be a non-empty list of task3a.SoftmaxModel (a model "
                            "with maths of its own trains with SoftmaxTrainer)")
        if len({id(m) for m in models}) != len(models):
            raise ValueError("the same model appears twice in models")
        if kwargs.pop("early_stopping", False):
            raise ValueError("the sweep trains every model for num_epochs; for early stopping "
                             "train each model with SoftmaxTrainer")
        self.models = list(models)
        self._check_weights()
        super().__init__(StackedSoftmaxModel(self.models), *args, early_stopping=False, **kwargs)

    def _check_weights(self) -> None:
        for index, m in enumerate(self.models):  # checked again by train: w may be replaced
            if np.shape(m.w) != (785, NUM_CLASSES):
                raise ValueError(f"model {index}'s w has shape {np.shape(m.w)}, expected "
                                 f"(785, {NUM_CLASSES}); reset it with np.zeros((785, 10))")

    def train_step(self, X_batch: np.ndarray, Y_batch: np.ndarray) -> np.ndarray:
        """``SoftmaxTrainer.train_step`` for every model at once: (M,) batch losses."""
        outputs = self.model.forward(X_batch)
        self.model.backward(X_batch, outputs, Y_batch)
        self.model.w -= self.learning_rate * self.model.grad
        return np.array([cross_entropy_loss(Y_batch, o) for o in self.model.split(outputs)])

    def validation_step(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``SoftmaxTrainer.validation_step`` for each model: three (M,) arrays."""
        results = [(cross_entropy_loss(self.Y_val, m.forward(self.X_val)),
                    calculate_accuracy(self.X_train, self.Y_train, m),
                    calculate_accuracy(self.X_val, self.Y_val, m))
                   for m in self.model.unstacked()]
        return tuple(np.array(r) for r in zip(*results))

    def train(self, num_epochs: int) -> list[tuple[History, History]]:  # type: ignore[override]
        self._check_weights()
        self.model.w = np.concatenate([m.w for m in self.models], axis=1)
        self.model.l2_reg_lambda = self.model.l2_reg_lambda.astype(self.dtype or np.float64)
        train_history, val_history = super().train(num_epochs)
        for model, w in zip(self.models, self.model.split(self.model.w)):
            model.w[...] = w
        return [tuple({key: {step: float(np.atleast_1d(v)[m]) for step, v in h[key].items()}
                       for key in h}
                      for h in (train_history, val_history))
                for m in range(len(self.models))]


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tasks 3-4's split, preprocessed: X (N, 785) float64 in [-1, 1], Y (N, 10) one-hot."""
    X_train, Y_train, X_val, Y_val = utils.load_full_mnist()
    return (pre_process_images(X_train), one_hot_encode(Y_train, NUM_CLASSES),
            pre_process_images(X_val), one_hot_encode(Y_val, NUM_CLASSES))


@dataclass
class Run:
    """One model of a sweep: its L2 strength, weights, histories and final metrics."""

    l2_reg_lambda: float
    model: SoftmaxModel
    train_history: History
    val_history: History
    metrics: dict[str, float] = field(default_factory=dict)


def train_sweep(data: tuple[np.ndarray, ...], lambdas: tuple[float, ...],
                num_epochs: int = NUM_EPOCHS, *, fast: bool = True,
                progress: bool = False) -> list[Run]:
    """One zero-initialised SoftmaxModel per lambda, trained side by side (tasks 3b and 4),
    seed 0, no early stopping (the tasks ask for 50 epochs). ``fast`` trains with
    ``task2.FAST``; False, the course's computation. Runs in the order of ``lambdas``."""
    models = [SoftmaxModel(l2_reg_lambda=lam) for lam in lambdas]
    sweep = SoftmaxSweepTrainer(models, LEARNING_RATE, BATCH_SIZE, SHUFFLE_DATASET, *data,
                                progress=progress, **(FAST if fast else {}))
    return [Run(lam, m, th, vh, evaluate(m, data, cross_entropy_loss, calculate_accuracy))
            for lam, m, (th, vh) in zip(lambdas, models, sweep.train(num_epochs))]


def plot_loss(run: Run, ax: Any) -> None:
    """Task 3b: training loss (mean over windows of 10 steps) and validation loss."""
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
    """Task 4b: the 785 -> 10 weights (bias row dropped) as ten 28x28 images per model,
    lambda = 0 on the top row and lambda = 2 on the bottom row, each row on its own symmetric
    colour scale (red positive, blue negative) with a colour bar."""
    axes = fig.subplots(2, 10, gridspec_kw={"wspace": 0.06, "hspace": 0.08})
    for row, run in enumerate((unregularised, regularised)):
        weights = run.model.w[:784]
        limit = float(np.abs(weights).max())
        for digit, ax in enumerate(axes[row]):
            image = ax.imshow(weights[:, digit].reshape(28, 28), cmap="RdBu_r",
                              vmin=-limit, vmax=limit)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if row == 0:
                ax.set_title(str(digit), fontsize=11)
        axes[row, 0].set_ylabel(f"$\\lambda = {run.l2_reg_lambda:g}$", fontsize=11)
        bar = fig.colorbar(image, ax=list(axes[row]), fraction=0.02, pad=0.01)
        bar.ax.tick_params(labelsize=9)


def plot_val_accuracy_per_lambda(runs: list[Run], ax: Any) -> None:
    """Task 4c: validation accuracy during training, one curve per lambda in its own colour and
    line style; the legend below the axes, off every curve."""
    for run, style in zip(runs, ("-", "--", "-.", ":")):
        utils.plot_loss(run.val_history["accuracy"], f"$\\lambda = {run.l2_reg_lambda:g}$",
                        ax=ax)
        ax.lines[-1].set_linestyle(style)
    values = np.concatenate([list(r.val_history["accuracy"].values())[5:] for r in runs])
    low = np.floor(values.min() * 50) / 50 - 0.01 if values.size else 0.0
    utils.label_steps_plot(ax, "Task 4c: validation accuracy for each $\\lambda$",
                           "Validation accuracy", (max(0.0, low), 0.94), loc="upper center",
                           bbox_to_anchor=(0.5, -0.2), ncol=len(runs))


def weight_norms(runs: list[Run]) -> dict[float, tuple[float, float]]:
    """lambda -> (||w||_2, ||w||_2^2 = sum of w^2) over all 785 x 10 weights."""
    return {r.l2_reg_lambda: (float(np.linalg.norm(r.model.w)), float(np.sum(r.model.w ** 2)))
            for r in runs}


def plot_norms(runs: list[Run], axes: Any) -> None:
    """Task 4e: ||w|| (left) and ||w||^2 (right) of the final weights against lambda."""
    norms = weight_norms(runs)
    lambdas = sorted(norms)
    for column, (ax, label) in enumerate(zip(
            axes, ("$\\|w\\|_2$", "$\\|w\\|_2^2 = \\sum_{i,j} w_{i,j}^2$"))):
        ax.plot(lambdas, [norms[lam][column] for lam in lambdas], "o-")
        ax.set_xscale("log")
        ax.set_xticks(lambdas)
        ax.set_xticklabels([f"{lam:g}" for lam in lambdas])
        ax.minorticks_off()
        ax.set_xlabel("$\\lambda$ (log scale)")
        ax.set_ylabel(label)
        ax.set_ylim(0, 1.1 * max(norms[lam][column] for lam in lambdas))
    axes[0].set_title("Task 4e: L2 norm")
    axes[1].set_title("Task 4e: squared L2 norm")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train Tasks 3-4 (softmax regression, L2).")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "build"
                        / "task3", help="folder for the figures (default: build/task3)")
    parser.add_argument("--epochs", type=_positive, default=NUM_EPOCHS)
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args.out.mkdir(parents=True, exist_ok=True)
    data = load_data()
    # a progress bar in a terminal (the sweep takes a while), nothing in a log
    runs = train_sweep(data, (0.0, *LAMBDAS), args.epochs, progress=sys.stderr.isatty())
    print(f"Tasks 3-4: {len(runs)} softmax models trained side by side, {args.epochs} epochs")
    for run in runs:
        m = run.metrics
        print(f"  lambda = {run.l2_reg_lambda:<5g}: train loss {m['train_loss']:.4f}, "
              f"val loss {m['val_loss']:.4f}, train accuracy {m['train_accuracy']:.4f}, "
              f"val accuracy {m['val_accuracy']:.4f}, ||w|| {np.linalg.norm(run.model.w):.3f}")
    figures = {"task3b_softmax_loss": lambda fig: plot_loss(runs[0], fig.subplots()),
               "task3c_softmax_accuracy": lambda fig: plot_accuracy(runs[0], fig.subplots()),
               "task4b_weights": lambda fig: plot_weights(runs[0], runs[1], fig),
               "task4c_l2_val_accuracy": lambda fig: plot_val_accuracy_per_lambda(
                   runs[1:], fig.subplots()),
               "task4e_l2_norm": lambda fig: plot_norms(runs[1:], fig.subplots(1, 2))}
    sizes = {"task4b_weights": (6.6, 1.9), "task4e_l2_norm": (6.4, 3.0)}
    for name, draw in figures.items():
        fig = plt.figure(figsize=sizes.get(name, (6.4, 3.6)))
        draw(fig)
        fig.savefig(args.out / f"{name}.png", dpi=150, bbox_inches="tight")
        plt.close(fig)
        print(f"  saved {args.out / name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
