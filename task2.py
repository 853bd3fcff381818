"""Task 2: logistic regression, digit 2 versus digit 3 (the course's ``task2.py``).

The maths is in ``task2a`` and the loop in ``trainer``. This file holds what the course puts
here: ``calculate_accuracy`` (task 2c) and ``LogisticTrainer`` with its ``train_step`` (2b) and
``validation_step``, then the task's experiments and figures, which the report notebook calls.

Run it (from any folder) to train Task 2 as the course's script does::

    python task2.py [--out FOLDER]

It prints the final losses and accuracies and the early-stop epoch, and saves the figures of
tasks 2b, 2c and 2e (default folder: ``build/task2`` next to this file).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import utils
from task2a import BinaryModel, check_binary_targets, cross_entropy_loss, pre_process_images
from trainer import BaseTrainer, History

# hyperparameters DO NOT CHANGE IF NOT SPECIFIED IN ASSIGNMENT TEXT (tasks 2b and 2d)
LEARNING_RATE = 0.05
BATCH_SIZE = 128
NUM_EPOCHS = 50
EPOCH_BUDGET = 500
DIGITS = (2, 3)  # target 1 for a "2", 0 for a "3"

#: How the report's runs train: float32 copies of the data (twice as fast as float64, and
#: float32's 7 digits are far more than the 4 the report prints) and the validation checks
#: from ``trainer.FastEvaluation`` (the same numbers as ``validation_step``). Both off, the
#: run is the course's float64 computation; the tests hold the two to the same results.
FAST = {"dtype": np.float32, "fast_validation": True}


def calculate_accuracy(X: np.ndarray, targets: np.ndarray, model: BinaryModel) -> float:
    """Fraction of images whose prediction, class 1 when y_hat >= 0.5, equals the target.

    Args:
        X: (N, 785) preprocessed images; targets: (N, 1) labels in {0, 1}.
        model: anything with ``forward(X) -> (N, 1)`` probabilities.
    """
    outputs = model.forward(X)
    check_binary_targets(targets, outputs)
    return float(np.mean((outputs >= 0.5) == (targets == 1)))


class LogisticTrainer(BaseTrainer):
    """Task 2: a ``task2a.BinaryModel`` with (N, 1) targets in {0, 1}."""

    def train_step(self, X_batch: np.ndarray, Y_batch: np.ndarray) -> float:
        """One step of mini-batch gradient descent (task 2b).

        Args:
            X_batch: (batch_size, 785) images; Y_batch: (batch_size, 1) targets in {0, 1}.
        Returns:
            the batch's mean cross entropy, before the step.
        """
        outputs = self.model.forward(X_batch)  # y_hat = sigmoid(X w)
        self.model.backward(X_batch, outputs, Y_batch)  # grad = -X^T (y - y_hat) / N
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


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Task 2's split, preprocessed: X (N, 785) float64 in [-1, 1], Y (N, 1) in {0, 1}."""
    X_train, Y_train, X_val, Y_val = utils.load_binary_dataset(*DIGITS)
    return pre_process_images(X_train), Y_train, pre_process_images(X_val), Y_val


@dataclass
class Run:
    """One training run: the model, its trainer, both histories and the final metrics."""

    model: BinaryModel
    trainer: LogisticTrainer
    train_history: History
    val_history: History
    metrics: dict[str, float] = field(default_factory=dict)


def evaluate(model: Any, data: tuple[np.ndarray, ...], loss: Any, accuracy: Any
             ) -> dict[str, float]:
    """The task's own loss and accuracy of ``model`` as it is, on the whole sets."""
    X_train, Y_train, X_val, Y_val = data
    return {"train_loss": loss(Y_train, model.forward(X_train)),
            "val_loss": loss(Y_val, model.forward(X_val)),
            "train_accuracy": accuracy(X_train, Y_train, model),
            "val_accuracy": accuracy(X_val, Y_val, model)}


def train(data: tuple[np.ndarray, ...], *, shuffle: bool, num_epochs: int,
          early_stopping: bool, fast: bool = True, progress: bool = False) -> Run:
    """Train a zero-initialised BinaryModel with the assignment's settings (seed 0).

    ``fast`` trains with ``FAST``; False, the course's computation. The Run's ``metrics`` are
    the losses and accuracies of the returned weights (for early stopping, the best ones).
    """
    model = BinaryModel()
    trainer = LogisticTrainer(model, LEARNING_RATE, BATCH_SIZE, shuffle, *data,
                              early_stopping=early_stopping, progress=progress,
                              **(FAST if fast else {}))
    train_history, val_history = trainer.train(num_epochs)
    return Run(model, trainer, train_history, val_history,
               evaluate(model, data, cross_entropy_loss, calculate_accuracy))


def plot_loss(run: Run, ax: Any) -> None:
    """Task 2b: training loss (mean over windows of 10 steps) and validation loss."""
    utils.plot_loss(run.train_history["loss"], "Training loss", npoints_to_average=10,
                    band="quantile", ax=ax)
    utils.plot_loss(run.val_history["loss"], "Validation loss", ax=ax)
    utils.label_steps_plot(ax, "Task 2b: logistic regression (2 vs 3), loss",
                           "Cross entropy loss", (0, 0.2))


def plot_accuracy(run: Run, ax: Any) -> None:
    """Task 2c: training and validation accuracy at every validation check."""
    utils.plot_loss(run.train_history["accuracy"], "Training accuracy", ax=ax)
    utils.plot_loss(run.val_history["accuracy"], "Validation accuracy", ax=ax)
    utils.label_steps_plot(ax, "Task 2c: logistic regression (2 vs 3), accuracy", "Accuracy",
                           (0.93, 0.99))


def plot_shuffle_comparison(plain: Run, shuffled: Run, ax: Any) -> None:
    """Task 2e: validation accuracy without and with shuffling, over the same horizon."""
    utils.plot_loss(plain.val_history["accuracy"], "Validation accuracy, no shuffling", ax=ax)
    utils.plot_loss(shuffled.val_history["accuracy"], "Validation accuracy, shuffling", ax=ax)
    utils.label_steps_plot(ax, "Task 2e: validation accuracy with and without shuffling",
                           "Accuracy", (0.93, 0.99))


def accuracy_drops(history: dict[int, float], after_step: int, drop: float = 0.005
                   ) -> np.ndarray:
    """Steps of the checks (from ``after_step`` on) whose accuracy fell more than ``drop``
    below the check before: the spikes of task 2e."""
    steps, accuracy = np.array(list(history)), np.array(list(history.values()))
    return steps[1:][(np.diff(accuracy) < -drop) & (steps[1:] >= after_step)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train Task 2 (logistic regression, 2 vs 3).")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "build"
                        / "task2", help="folder for the figures (default: build/task2)")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args.out.mkdir(parents=True, exist_ok=True)
    data = load_data()
    print(f"Task 2: {len(data[0])} training and {len(data[2])} validation images (2 vs 3)")
    progress = sys.stderr.isatty()  # a progress bar in a terminal, nothing in a log
    run_2b = train(data, shuffle=False, num_epochs=NUM_EPOCHS, early_stopping=False,
                   progress=progress)
    m = run_2b.metrics
    print(f"2b/2c, {NUM_EPOCHS} epochs, no shuffling:")
    print(f"  Final Train Cross Entropy Loss: {m['train_loss']:.4f}")
    print(f"  Final Validation Cross Entropy Loss: {m['val_loss']:.4f}")
    print(f"  Train accuracy: {m['train_accuracy']:.4f}")
    print(f"  Validation accuracy: {m['val_accuracy']:.4f}")
    run_2d = train(data, shuffle=False, num_epochs=EPOCH_BUDGET, early_stopping=True,
                   progress=progress)
    print(f"2d, early stopping (budget {EPOCH_BUDGET} epochs): stopped in epoch "
          f"{run_2d.trainer.early_stop_epoch} (0-based), validation accuracy "
          f"{run_2d.metrics['val_accuracy']:.4f}")
    run_2e = train(data, shuffle=True, num_epochs=NUM_EPOCHS, early_stopping=False,
                   progress=progress)
    steps_per_epoch = len(data[0]) // BATCH_SIZE
    print(f"2e, drops of more than 0.5 points after epoch 1: "
          f"{len(accuracy_drops(run_2b.val_history['accuracy'], steps_per_epoch))} without "
          f"shuffling, {len(accuracy_drops(run_2e.val_history['accuracy'], steps_per_epoch))}"
          f" with it")
    for name, plot, runs in (("task2b_binary_loss", plot_loss, (run_2b,)),
                             ("task2c_binary_accuracy", plot_accuracy, (run_2b,)),
                             ("task2e_shuffle_accuracy", plot_shuffle_comparison,
                              (run_2b, run_2e))):
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        plot(*runs, ax=ax)
        fig.savefig(args.out / f"{name}.png", dpi=150, bbox_inches="tight")
        plt.close(fig)
        print(f"  saved {args.out / name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
