"""Tasks 3-4: softmax regression for all ten digits, with L2 (the course's task3.py): the
course's ``calculate_accuracy`` and ``SoftmaxTrainer``; ``train``, one run of its script for
one lambda; the figures. ``python task3.py [--out FOLDER] [--epochs 50]`` trains a new model for
lambda = 0 and each lambda of task 4, prints the report's numbers and saves the figures of
tasks 3b, 3c, 4b, 4c and 4e (default folder: build/task3 beside this file).
"""

from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import utils
from task2a import pre_process_images
from task3a import SoftmaxModel, cross_entropy_loss, one_hot_encode
from trainer import BaseTrainer

# hyperparameters DO NOT CHANGE IF NOT SPECIFIED IN ASSIGNMENT TEXT
NUM_EPOCHS = 50
LEARNING_RATE = 0.01
BATCH_SIZE = 128
SHUFFLE_DATASET = True
L2_REG_LAMBDAS = (2.0, 0.2, 0.02, 0.002)  # task 4c


def calculate_accuracy(X: np.ndarray, targets: np.ndarray, model: SoftmaxModel) -> float:
    """The fraction of images X (N, 785) whose most probable class (the argmax of
    ``model.forward``'s outputs) is their one-hot target's (N, 10)."""
    outputs = model.forward(X)
    if np.shape(targets) != outputs.shape:
        raise ValueError(f"targets must be one-hot {outputs.shape} like the outputs, got "
                         f"{np.shape(targets)}; encode labels with one_hot_encode(Y, 10)")
    return float(np.mean(outputs.argmax(axis=1) == targets.argmax(axis=1)))


class SoftmaxTrainer(BaseTrainer):

    def train_step(self, X_batch: np.ndarray, Y_batch: np.ndarray) -> float:
        """One step of mini-batch gradient descent (tasks 3b, 4) on images X_batch (B, 785) with
        one-hot targets Y_batch (B, 10): forward, backward, update; returns the batch's loss
        (without the L2 term) before it."""
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
    """A training: lambda, model, histories, early stop epoch, best step, final numbers."""

    l2_reg_lambda: float
    model: SoftmaxModel
    train_history: dict
    val_history: dict
    early_stop_epoch: int | None
    best_step: int
    final: dict


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tasks 3-4's split, preprocessed: X (N, 785) in [-1, 1], Y (N, 10) one-hot."""
    X_train, Y_train, X_val, Y_val = utils.load_full_mnist()
    return (pre_process_images(X_train), one_hot_encode(Y_train, 10),
            pre_process_images(X_val), one_hot_encode(Y_val, 10))


def train(l2_reg_lambda: float, num_epochs: int = NUM_EPOCHS) -> Run:
    """One run of the course's script: a new SoftmaxModel and trainer (seed 0, early stopping)."""
    X_train, Y_train, X_val, Y_val = load_data()
    model = SoftmaxModel(l2_reg_lambda)
    trainer = SoftmaxTrainer(model, LEARNING_RATE, BATCH_SIZE, SHUFFLE_DATASET,
                             X_train, Y_train, X_val, Y_val)
    train_history, val_history = trainer.train(num_epochs)
    final = {"train_loss": cross_entropy_loss(Y_train, model.forward(X_train)),
             "val_loss": cross_entropy_loss(Y_val, model.forward(X_val)),
             "train_accuracy": calculate_accuracy(X_train, Y_train, model),
             "val_accuracy": calculate_accuracy(X_val, Y_val, model),
             "norm": float(np.linalg.norm(model.w)), "norm_squared": float(np.sum(model.w ** 2))}
    return Run(l2_reg_lambda, model, train_history, val_history, trainer.early_stop_epoch,
               trainer.best_step, final)


def overfitting_signs(run: Run, checks: int = 5) -> dict:
    """Task 3d's numbers, each the mean over ``checks`` checks (one epoch's), halfway through
    training and at its end: last step -> (training minus validation accuracy, val loss)."""
    steps, signs = list(run.val_history["loss"]), {}
    for end in (len(steps) // 2, len(steps)):
        window = steps[max(end - checks, 0):end]
        gap = [run.train_history["accuracy"][s] - run.val_history["accuracy"][s] for s in window]
        signs[window[-1]] = (np.mean(gap), np.mean([run.val_history["loss"][s] for s in window]))
    return signs


def cosine(a: Run, b: Run) -> float:
    """The cosine between two models' weights: 1 when only their lengths differ (task 4d)."""
    return float(np.sum(a.model.w * b.model.w) / np.linalg.norm(a.model.w) /
                 np.linalg.norm(b.model.w))


def plot_loss(run: Run) -> None:
    """Task 3b on the current axes: training loss (mean over 10 steps) and validation loss."""
    utils.plot_loss(run.train_history["loss"], "Training loss", npoints_to_average=10)
    plt.gca().collections[-1].set_label("Training loss ±1 std over 10 steps")  # not "variance"
    utils.plot_loss(run.val_history["loss"], "Validation loss")
    _label("Task 3b: softmax regression, loss", "Cross entropy loss", (0.2, 0.6))


def plot_accuracy(run: Run) -> None:
    """Task 3c on the current axes: training and validation accuracy at every check."""
    utils.plot_loss(run.train_history["accuracy"], "Training accuracy")
    utils.plot_loss(run.val_history["accuracy"], "Validation accuracy")
    _label("Task 3c: softmax regression, accuracy", "Accuracy", (0.85, 0.95))


def plot_weights(runs: list[Run], fig: plt.Figure) -> None:
    """Task 4b: a row of ten 28 x 28 images of each model's weights, red +, blue -."""
    axes = fig.subplots(len(runs), 10, squeeze=False, gridspec_kw={"wspace": 0.04,
                                                                   "hspace": 0.04})
    for row, run in enumerate(runs):
        limit = np.abs(run.model.w[:-1]).max()
        for digit, ax in enumerate(axes[row]):
            ax.imshow(run.model.w[:-1, digit].reshape(28, 28), cmap="RdBu_r", vmin=-limit,
                      vmax=limit)
            ax.set(xticks=[], yticks=[], title="" if row else str(digit))
        axes[row, 0].set_ylabel(f"$\\lambda = {run.l2_reg_lambda:g}$")


def plot_val_accuracy(runs: list[Run]) -> None:
    """Task 4c: validation accuracy per lambda, a dot at the check whose weights it keeps."""
    for run, style in zip(runs, ("-", "--", "-.", ":")):
        steps, accuracy = zip(*run.val_history["accuracy"].items())
        line, = plt.plot(steps, accuracy, style, label=f"$\\lambda = {run.l2_reg_lambda:g}$")
        plt.plot(run.best_step, run.val_history["accuracy"][run.best_step], "o",
                 color=line.get_color())
    _label("Task 4c: validation accuracy for each $\\lambda$", "Validation accuracy", (0.7, 0.94))


def plot_norms(runs: list[Run], fig: plt.Figure) -> None:
    """Task 4e: ||w|| (left) and ||w||^2 (right) of each final model against lambda."""
    lambdas = [run.l2_reg_lambda for run in runs]
    for ax, key, label in zip(fig.subplots(1, 2, gridspec_kw={"wspace": 0.38}),
                              ("norm", "norm_squared"),
                              ("$\\|w\\|_2$", "$\\|w\\|_2^2 = \\sum_{i,j} w_{i,j}^2$")):
        ax.plot(lambdas, [run.final[key] for run in runs], "o-")
        ax.set(xscale="log", ylim=(0, None), xlabel="$\\lambda$ (log scale)", ylabel=label,
               title=f"Task 4e: {'squared ' if key == 'norm_squared' else ''}L2 norm")
        ax.set_xticks(lambdas)
        ax.set_xticklabels([f"{lam:g}" for lam in lambdas])
        ax.minorticks_off()


def _label(title: str, ylabel: str, ylim: tuple[float, float]) -> None:
    plt.gca().set(title=title, xlabel="Gradient steps", ylabel=ylabel, ylim=ylim)
    plt.legend()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train Tasks 3-4 (softmax regression, L2).")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "build"
                        / "task3", help="folder for the figures (default: build/task3)")
    parser.add_argument("--epochs", type=int, default=NUM_EPOCHS, help="epoch budget per model")
    args = parser.parse_args(argv)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(f"cannot make the folder {args.out} for the figures ({error.strerror}); "
                      f"pass --out with a folder you can write to") from error
    runs = []
    for lam in (0.0, *L2_REG_LAMBDAS):
        runs.append(train(lam, args.epochs))
        final = runs[-1].final
        print(f"lambda = {lam:g}: early stop epoch {runs[-1].early_stop_epoch}, weights of step "
              f"{runs[-1].best_step}: train loss {final['train_loss']:.4f}, validation loss "
              f"{final['val_loss']:.4f}, train accuracy {100 * final['train_accuracy']:.2f}%, "
              f"validation accuracy {100 * final['val_accuracy']:.2f}%, ||w|| "
              f"{final['norm']:.2f}, ||w||^2 {final['norm_squared']:.1f}, cosine to lambda = 0 "
              f"{cosine(runs[-1], runs[0]):.2f}", flush=True)
    for step, (gap, val_loss) in overfitting_signs(runs[0]).items():
        print(f"Task 3d: over the five checks up to step {step}, training minus validation "
              f"accuracy {100 * gap:.2f} points, validation loss {val_loss:.4f}")
    figures = {"task3b_softmax_loss": lambda fig: plot_loss(runs[0]),
               "task3c_softmax_accuracy": lambda fig: plot_accuracy(runs[0]),
               "task4b_weights": lambda fig: plot_weights([runs[0], runs[1]], fig),
               "task4c_l2_val_accuracy": lambda fig: plot_val_accuracy(runs[1:]),
               "task4e_l2_norm": lambda fig: plot_norms(runs[1:], fig)}
    sizes = {"task4b_weights": (6.6, 1.65), "task4e_l2_norm": (6.6, 2.3)}
    for name, draw in figures.items():
        fig = plt.figure(figsize=sizes.get(name, (6.4, 3.2)))
        draw(fig)
        fig.savefig(args.out / f"{name}.png", dpi=150, bbox_inches="tight")
        plt.close(fig)
        print(f"saved {args.out / name}.png")


if __name__ == "__main__":
    if hasattr(signal, "SIGPIPE"):  # | head: end quietly once the reader has gone, as Unix does
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        main()
    except OSError as error:  # the MNIST files or the folder --out: one line
        sys.exit(f"task3.py: {error}")
