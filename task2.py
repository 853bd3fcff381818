"""Task 2: logistic regression, digit 2 versus digit 3 (the course's ``task2.py``).

The maths is in ``task2a`` and the loop in ``trainer``; this file holds what the course
puts here: ``calculate_accuracy`` (task 2c) and ``LogisticTrainer`` with its
``train_step`` (2b) and ``validation_step``, and the task's experiments and figures.
The report notebook calls the same functions, so every experiment has one home.

Run it (from any folder) to train Task 2 as the course's script does::

    python task2.py [--out FOLDER] [--seeds 10]

It prints the final losses and accuracies and the early-stop epochs, and saves the
figures of tasks 2b, 2c and 2e (default folder: ``build/task2`` next to this file).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import task2a
import utils
from task2a import BinaryModel, check_binary_targets, pre_process_images
from trainer import History, ModelTrainer

__all__ = ["BATCH_SIZE", "EPOCH_BUDGET", "LEARNING_RATE", "NUM_EPOCHS", "GradientNormTrainer",
           "LogisticTrainer", "Run", "calculate_accuracy", "load_data", "main",
           "plot_accuracy", "plot_loss", "plot_shuffle_comparison", "seed_study", "train"]

# The assignment's hyper-parameters (task 2b) and epoch budget (task 2d).
LEARNING_RATE = 0.05
BATCH_SIZE = 128
NUM_EPOCHS = 50
EPOCH_BUDGET = 500
SEED = 0
DIGITS = (2, 3)  # target 1 for a "2", 0 for a "3"


def calculate_accuracy(X: np.ndarray, targets: np.ndarray, model: BinaryModel) -> float:
    """Fraction of examples whose prediction (1 when y_hat >= 0.5) equals the target.

    Args:
        X: (N, 785) preprocessed images; targets: (N, 1) labels in {0, 1}.
        model: anything with ``forward(X) -> (N, 1)`` probabilities.
    Returns:
        accuracy in [0, 1].
    """
    predictions = model.forward(X) >= 0.5
    targets = np.asarray(targets)
    if targets.shape != predictions.shape:
        raise ValueError(f"calculate_accuracy: targets must have shape {predictions.shape}, "
                         f"got {targets.shape}")
    check_binary_targets(targets, "calculate_accuracy")
    return float(np.mean(predictions == (targets == 1)))


class LogisticTrainer(ModelTrainer):
    """Task 2: a ``task2a.BinaryModel`` with (N, 1) targets in {0, 1}.

    ``train_step`` (task 2b) is below. ``validation_step`` (from ``ModelTrainer``) returns
    the validation loss and the training and validation accuracy on the whole sets, the
    numbers the course's ``validation_step`` computes, from one fast product. Trains in
    float32 by default (``dtype=np.float64`` for the course's exact setting); weights come
    back in their own dtype.
    """

    maths = task2a
    calculate_accuracy = staticmethod(calculate_accuracy)

    def train_step(self, X_batch: np.ndarray, Y_batch: np.ndarray) -> float:
        """One step of mini-batch gradient descent (task 2b).

        Args:
            X_batch: (batch_size, 785) images; Y_batch: (batch_size, 1) targets in {0, 1}.
        Returns:
            the batch's mean cross entropy, before the step.
        """
        outputs = self.model.forward(X_batch)  # y_hat = sigmoid(X w), (batch_size, 1)
        self.model.backward(X_batch, outputs, Y_batch)  # grad = -X^T (y - y_hat) / batch_size
        self.model.w -= self.learning_rate * self.model.grad
        # cross_entropy_loss without its input checks: the targets were checked once, in
        # the constructor, and the outputs come from the model's own sigmoid
        return task2a.binary_cross_entropy_unchecked(Y_batch, outputs)

    def check_targets(self, Y: np.ndarray, name: str) -> None:
        if Y.ndim != 2 or Y.shape[1] != 1:
            raise ValueError(f"{type(self).__name__}: {name} must have shape (N, 1), got "
                             f"{Y.shape}")
        check_binary_targets(Y, f"{type(self).__name__} ({name})")

    def batch_loss(self, Y_batch: np.ndarray, outputs: np.ndarray) -> float:
        return task2a.binary_cross_entropy_unchecked(Y_batch, outputs)


class GradientNormTrainer(LogisticTrainer):
    """A ``LogisticTrainer`` that also records ||grad|| of every step (task 2e's measurement)."""

    def _begin(self) -> None:
        super()._begin()
        self.gradient_norms: dict[int, float] = {}

    def train_step(self, X_batch: np.ndarray, Y_batch: np.ndarray) -> float:
        loss = super().train_step(X_batch, Y_batch)
        self.gradient_norms[self.global_step] = float(np.linalg.norm(self.model.grad))
        return loss


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


def train(data: tuple[np.ndarray, ...], *, shuffle: bool, num_epochs: int,
          early_stopping: bool, seed: int = SEED, progress: bool = False,
          trainer_class: type[LogisticTrainer] = LogisticTrainer) -> Run:
    """Train a zero-initialised BinaryModel with the assignment's settings.

    Returns a Run whose ``metrics`` are the losses and accuracies of the returned weights
    (for early stopping, the restored best ones) on the whole sets.
    """
    model = BinaryModel()
    t = trainer_class(model, LEARNING_RATE, BATCH_SIZE, shuffle, *data, seed=seed,
                      early_stopping=early_stopping, progress=progress)
    train_history, val_history = t.train(num_epochs)
    return Run(model, t, train_history, val_history, t.evaluate())


def seed_study(data: tuple[np.ndarray, ...], seeds: range | list[int],
               shuffle: bool = True, progress: bool = False) -> dict[str, Any]:
    """Early stopping (500-epoch budget) once per shuffling seed.

    Returns:
        {"seed", "early_stop_epoch", "val_accuracy"}: arrays with one entry per seed, and
        "metrics": each run's final metrics (a list of dicts).
    """
    epochs, accuracy, metrics = [], [], []
    for seed in seeds:
        run = train(data, shuffle=shuffle, num_epochs=EPOCH_BUDGET, early_stopping=True,
                    seed=seed, progress=progress)
        stop = run.trainer.early_stop_epoch
        epochs.append(EPOCH_BUDGET if stop is None else stop)
        accuracy.append(run.metrics["val_accuracy"])
        metrics.append(run.metrics)
    return {"seed": np.array(list(seeds)), "early_stop_epoch": np.array(epochs),
            "val_accuracy": np.array(accuracy), "metrics": metrics}


def plot_loss(run: Run, ax: Any) -> None:
    """Task 2b: training loss (a band over one epoch's batches) and validation loss."""
    steps_per_epoch = len(run.trainer.X_train) // run.trainer.batch_size
    utils.plot_loss(run.train_history["loss"], "Training loss",
                    npoints_to_average=steps_per_epoch, band="quantile", ax=ax)
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


def _save(plot, name: str, out_dir: Path, *runs: Run) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    plot(*runs, ax=ax)
    path = out_dir / f"{name}.png"
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train Task 2 (logistic regression, 2 vs 3).")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "build"
                        / "task2", help="folder for the figures (default: build/task2)")
    parser.add_argument("--seeds", type=int, default=10,
                        help="shuffling seeds for the early-stopping study of task 2e")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
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
    if args.seeds > 0:
        study = seed_study(data, range(args.seeds), progress=progress)
        print(f"2e, shuffling + early stopping, seeds 0-{args.seeds - 1}: early-stop epochs "
              f"{study['early_stop_epoch'].tolist()} (median "
              f"{np.median(study['early_stop_epoch']):g}), validation accuracy "
              f"{study['val_accuracy'].mean():.4f} +- {study['val_accuracy'].std():.4f}")
    saved = [_save(plot_loss, "task2b_binary_loss", args.out, run_2b),
             _save(plot_accuracy, "task2c_binary_accuracy", args.out, run_2b),
             _save(plot_shuffle_comparison, "task2e_shuffle_accuracy", args.out, run_2b, run_2e)]
    print("figures:", *(str(p) for p in saved), sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
