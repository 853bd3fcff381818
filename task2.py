"""Task 2: logistic regression, digit 2 against digit 3 (the course's task2.py): the course's
``calculate_accuracy`` and ``LogisticTrainer``; ``train``, one run of its script; the figures.
``python task2.py [--out FOLDER]`` trains the report's runs, prints the report's numbers and
saves the figures of tasks 2b, 2c and 2e (default folder: build/task2 beside this file)."""

from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import utils
from task2a import BinaryModel, cross_entropy_loss, pre_process_images
from trainer import BaseTrainer

# hyperparameters DO NOT CHANGE IF NOT SPECIFIED IN ASSIGNMENT TEXT
LEARNING_RATE = 0.05
BATCH_SIZE = 128
NUM_EPOCHS = 50  # task 2b
EPOCH_BUDGET = 500  # task 2d, with early stopping
CATEGORY1, CATEGORY2 = 2, 3  # target 1 for a "2", 0 for a "3"
#: The report's four trainings, by task, as ``train``'s keyword arguments.
REPORT_RUNS = {"2b": dict(shuffle=False, num_epochs=NUM_EPOCHS, early_stopping=False),
               "2d": dict(shuffle=False, num_epochs=EPOCH_BUDGET, early_stopping=True),
               "2e": dict(shuffle=True, num_epochs=NUM_EPOCHS, early_stopping=False),
               "2e_early_stopping": dict(shuffle=True, num_epochs=EPOCH_BUDGET,
                                         early_stopping=True)}


def calculate_accuracy(X: np.ndarray, targets: np.ndarray, model: BinaryModel) -> float:
    """The fraction of images X (N, 785) whose prediction, class 1 when ``model.forward``'s
    probability is >= 0.5, is their target (N, 1) in {0, 1}."""
    outputs = model.forward(X)
    if np.shape(targets) != outputs.shape or not np.isin(targets, (0, 1)).all():
        raise ValueError(f"targets must be {outputs.shape} labels 0 or 1, like the outputs; got "
                         f"{np.shape(targets)}")
    return float(np.mean((outputs >= 0.5) == (targets == 1)))


class LogisticTrainer(BaseTrainer):

    def train_step(self, X_batch: np.ndarray, Y_batch: np.ndarray) -> float:
        """One step of mini-batch gradient descent (task 2b) on images X_batch (B, 785) with
        targets Y_batch (B, 1): forward, backward, update; returns the batch's loss before it."""
        outputs = self.model.forward(X_batch)
        self.model.backward(X_batch, outputs, Y_batch)
        self.model.w -= self.learning_rate * self.model.grad
        return cross_entropy_loss(Y_batch, outputs)

    def validation_step(self):
        """
        Perform a validation step to evaluate the model at the current step for the validation set.
        Also calculates the current accuracy of the model on the train set.
        Returns:
            loss (float): cross entropy loss over the whole dataset
            accuracy_ (float): accuracy over the whole dataset
        Returns:
            loss value (float) on batch
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


@dataclass
class Run:
    """A training: model, histories, early stop epoch, final numbers."""

    model: BinaryModel
    train_history: dict
    val_history: dict
    early_stop_epoch: int | None
    final: dict


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Task 2's split, preprocessed: X (N, 785) in [-1, 1], Y (N, 1) in {0, 1}."""
    X_train, Y_train, X_val, Y_val = utils.load_binary_dataset(CATEGORY1, CATEGORY2)
    return pre_process_images(X_train), Y_train, pre_process_images(X_val), Y_val


def train(shuffle: bool, num_epochs: int, early_stopping: bool) -> Run:
    """One run of the course's script: a new BinaryModel and LogisticTrainer (seed 0)."""
    X_train, Y_train, X_val, Y_val = load_data()
    model = BinaryModel()
    trainer = LogisticTrainer(model, LEARNING_RATE, BATCH_SIZE, shuffle,
                              X_train, Y_train, X_val, Y_val, early_stopping=early_stopping)
    train_history, val_history = trainer.train(num_epochs)
    final = {"train_loss": cross_entropy_loss(Y_train, model.forward(X_train)),
             "val_loss": cross_entropy_loss(Y_val, model.forward(X_val)),
             "train_accuracy": calculate_accuracy(X_train, Y_train, model),
             "val_accuracy": calculate_accuracy(X_val, Y_val, model)}
    return Run(model, train_history, val_history, trainer.early_stop_epoch, final)


def largest_drops(history: dict, after_step: int) -> list[tuple[float, int]]:
    """The falls of the accuracy from one check to the next, among the checks from ``after_step``
    on, largest first, each with the step of the check after it: the spikes of task 2e."""
    steps, accuracy = np.array(list(history)), np.array(list(history.values()))
    kept = steps[1:] >= after_step
    falls, after = -np.diff(accuracy)[kept], steps[1:][kept]
    return [(float(falls[i]), int(after[i])) for i in np.argsort(-falls, kind="stable")]


def plot_loss(run: Run) -> None:
    """Task 2b on the current axes: training loss (mean over 10 steps) and validation loss."""
    utils.plot_loss(run.train_history["loss"], "Training loss", npoints_to_average=10)
    plt.gca().collections[-1].set_label("Training loss ±1 std over 10 steps")  # not "variance"
    utils.plot_loss(run.val_history["loss"], "Validation loss")
    _label("Task 2b: logistic regression (2 vs 3), loss", "Cross entropy loss", (0, 0.2))


def plot_accuracy(run: Run) -> None:
    """Task 2c on the current axes: training and validation accuracy at every check."""
    utils.plot_loss(run.train_history["accuracy"], "Training accuracy")
    utils.plot_loss(run.val_history["accuracy"], "Validation accuracy")
    _label("Task 2c: logistic regression (2 vs 3), accuracy", "Accuracy", (0.93, 0.99))


def plot_shuffle_comparison(plain: Run, shuffled: Run) -> None:
    """Task 2e on the current axes: validation accuracy without and with shuffling."""
    utils.plot_loss(plain.val_history["accuracy"], "Validation accuracy, no shuffling")
    utils.plot_loss(shuffled.val_history["accuracy"], "Validation accuracy, shuffling")
    _label("Task 2e: validation accuracy with and without shuffling", "Accuracy", (0.93, 0.99))


def _label(title: str, ylabel: str, ylim: tuple[float, float]) -> None:
    plt.gca().set(title=title, xlabel="Gradient steps", ylabel=ylabel, ylim=ylim)
    plt.legend()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train Task 2 (logistic regression, 2 vs 3).")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "build"
                        / "task2", help="folder for the figures (default: build/task2)")
    args = parser.parse_args(argv)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(f"cannot make the folder {args.out} for the figures ({error.strerror}); "
                      f"pass --out with a folder you can write to") from error
    runs = {task: train(**kwargs) for task, kwargs in REPORT_RUNS.items()}
    steps = len(runs["2b"].train_history["loss"]) // NUM_EPOCHS  # one epoch's
    for task in ("2b", "2d", "2e_early_stopping"):
        final = runs[task].final
        print(f"Task {task}: final train loss {final['train_loss']:.4f}, validation loss "
              f"{final['val_loss']:.4f}, train accuracy {100 * final['train_accuracy']:.2f}%, "
              f"validation accuracy {100 * final['val_accuracy']:.2f}%, early stop epoch "
              f"{runs[task].early_stop_epoch} (step {max(runs[task].val_history['loss'])})")
    drops = {t: largest_drops(runs[t].val_history["accuracy"], steps) for t in ("2b", "2e")}
    print(f"Task 2e ({steps} steps an epoch, a check every {steps // 5}), after the first epoch: "
          f"largest fall of the validation accuracy between checks {100 * drops['2b'][0][0]:.2f} "
          f"points without shuffling (the five largest at steps {[s for _, s in drops['2b'][:5]]})"
          f", {100 * drops['2e'][0][0]:.2f} with it")
    figures = {"task2b_binary_loss": lambda: plot_loss(runs["2b"]),
               "task2c_binary_accuracy": lambda: plot_accuracy(runs["2b"]),
               "task2e_shuffle_accuracy": lambda: plot_shuffle_comparison(runs["2b"], runs["2e"])}
    for name, draw in figures.items():
        plt.figure(figsize=(6.4, 3.6))
        draw()
        plt.savefig(args.out / f"{name}.png", dpi=150, bbox_inches="tight")
        plt.close()
        print(f"saved {args.out / name}.png")


if __name__ == "__main__":
    if hasattr(signal, "SIGPIPE"):  # | head: end quietly once the reader has gone, as Unix does
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        main()
    except OSError as error:  # the MNIST files or the folder --out: one line
        sys.exit(f"task2.py: {error}")
