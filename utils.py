"""Dataset splits, mini-batches and loss plots for the assignment.

The splits are the assignment's own:

* binary (task 2): the first 20,000 MNIST training images are the training
  pool and the first 10,000 test images the validation pool, each pruned to two
  digits (``class1`` -> target 1, ``class2`` -> target 0);
* full (task 3/4): the first 20,000 training images for training and the
  *last* 10,000 test images for validation, all ten digits.

Images stay uint8 (N, 784) here; scaling lives in ``task2a.pre_process_images``.
Targets are integer column vectors of shape (N, 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from numbers import Integral, Real
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

import mnist

__all__ = ["batch_loader", "binary_prune_dataset", "check_count", "check_flag", "figure_renders",
           "label_steps_plot", "load_binary_dataset", "load_full_mnist", "plot_loss",
           "smallest_printed_font"]

TRAIN_SIZE = 20_000
VAL_SIZE = 10_000


def check_count(value: Any, name: str, minimum: int) -> int:
    """``value`` as an int >= ``minimum``; bools, floats (also 2.0), None and strings are
    refused with a message naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r} "
                        f"({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_flag(value: Any, name: str) -> bool:
    """``value`` as a bool; anything else is refused (the string 'False' is true in Python)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def _check_pair(X: Any, Y: Any) -> None:
    if not isinstance(X, np.ndarray) or not isinstance(Y, np.ndarray):
        raise TypeError(f"X and Y must be NumPy arrays, got {type(X).__name__} and "
                        f"{type(Y).__name__}")
    if X.ndim != 2 or Y.ndim == 0 or len(X) != len(Y):
        raise ValueError(f"X must be (N, D) images and Y one target per image, (N,) or "
                         f"(N, ...), got X {X.shape} and Y {Y.shape}")


def batch_loader(X: np.ndarray, Y: np.ndarray, batch_size: int, shuffle: bool = False,
                 drop_last: bool = True, rng: np.random.Generator | None = None,
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield one epoch of mini-batches ``(X[idx], Y[idx])``; called once per epoch.

    Args:
        X: (N, D) images; Y: (N, ...) targets.
        batch_size: examples per batch (>= 1).
        shuffle: a fresh permutation for this epoch (task 2e), drawn from ``rng``, or from
            NumPy's global generator (as the course's ``np.random``) when ``rng`` is None.
        drop_last: skip a last batch shorter than ``batch_size`` (the course's default).
    Yields:
        x (batch_size, D), y (batch_size, ...).
    """
    _check_pair(X, Y)
    batch_size = check_count(batch_size, "batch_size", 1)
    shuffle, drop_last = check_flag(shuffle, "shuffle"), check_flag(drop_last, "drop_last")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(0)), "
                        f"got {type(rng).__name__}")
    n = len(X)
    num_batches = n // batch_size if drop_last else -(-n // batch_size)
    if not shuffle:
        for i in range(num_batches):
            yield X[i * batch_size:(i + 1) * batch_size], Y[i * batch_size:(i + 1) * batch_size]
        return
    order = rng.permutation(n) if rng is not None else np.random.permutation(n)
    for i in range(num_batches):
        batch = order[i * batch_size:(i + 1) * batch_size]
        yield X.take(batch, axis=0), Y.take(batch, axis=0)


def binary_prune_dataset(class1: int, class2: int, X: np.ndarray, Y: np.ndarray):
    """Keep only digits ``class1`` and ``class2``; relabel class1 -> 1, class2 -> 0.

    Args:
        X: (N, D) images; Y: (N,) or (N, 1) integer labels.
    Returns:
        X (M, D) and Y with Y's trailing shape, where M counts the two classes.
    """
    _check_pair(X, Y)
    if not (Y.ndim == 1 or (Y.ndim == 2 and Y.shape[1] == 1)):
        raise ValueError(f"Y must hold integer labels, shape (N,) or (N, 1), got {Y.shape}; "
                         f"pass labels, not one-hot targets")
    class1, class2 = check_count(class1, "class1", 0), check_count(class2, "class2", 0)
    if class1 == class2:
        raise ValueError(f"the two classes must differ, got {class1} twice")
    for name, label in (("class1", class1), ("class2", class2)):
        if not (Y == label).any():
            present = np.unique(Y)
            raise ValueError(f"{name} = {label} does not occur in Y (its labels are "
                             f"{', '.join(map(str, present[:12].tolist()))}"
                             f"{'...' if len(present) > 12 else ''})")
    mask1 = Y == class1
    mask2 = Y == class2
    keep = (mask1 | mask2).reshape(len(Y))
    Y_binary = np.where(mask1, 1, 0).astype(Y.dtype)
    return X[keep], Y_binary[keep]


def load_binary_dataset(class1: int, class2: int):
    """Task 2 split: two digits, targets 1 for ``class1`` and 0 for ``class2``.

    Returns:
        X_train (N_train, 784) uint8, Y_train (N_train, 1),
        X_val (N_val, 784) uint8, Y_val (N_val, 1).
    """
    X_train, Y_train, X_val, Y_val = mnist.load()
    X_train, Y_train = X_train[:TRAIN_SIZE], Y_train[:TRAIN_SIZE]
    X_val, Y_val = X_val[:VAL_SIZE], Y_val[:VAL_SIZE]
    X_train, Y_train = binary_prune_dataset(class1, class2, X_train, Y_train)
    X_val, Y_val = binary_prune_dataset(class1, class2, X_val, Y_val)
    return X_train, Y_train.reshape(-1, 1), X_val, Y_val.reshape(-1, 1)


def load_full_mnist():
    """Task 3/4 split: first 20,000 training images, last 10,000 test images.

    Returns:
        X_train (20000, 784) uint8, Y_train (20000, 1),
        X_val (10000, 784) uint8, Y_val (10000, 1).
    """
    X_train, Y_train, X_val, Y_val = mnist.load()
    X_train, Y_train = X_train[:TRAIN_SIZE], Y_train[:TRAIN_SIZE]
    X_val, Y_val = X_val[-VAL_SIZE:], Y_val[-VAL_SIZE:]
    return X_train, Y_train.reshape(-1, 1), X_val, Y_val.reshape(-1, 1)


def plot_loss(
    loss_dict: dict,
    label: str | None = None,
    npoints_to_average: int = 1,
    plot_variance: bool = True,
    ax=None,
    band: str = "std",
) -> None:
    """Plot a ``{step: value}`` history on ``ax`` (default: the current axes).

    With ``npoints_to_average > 1`` and ``plot_variance``, the curve is the mean
    over consecutive windows of that many points, drawn at each window's middle
    step, with a band: ``band="std"`` (the course's) spans +-1 standard deviation;
    ``band="quantile"`` spans the middle 68% of the window's values (16th to 84th
    percentile, +-1 std for normally distributed values), which never leaves the
    range of the values themselves (a loss band never dips below 0).
    """
    if band not in ("std", "quantile"):
        raise ValueError(f"band must be 'std' or 'quantile', got {band!r}")
    if not isinstance(loss_dict, dict):
        raise TypeError(f"plot_loss expects a {{step: value}} dict, got "
                        f"{type(loss_dict).__name__}")
    n = check_count(npoints_to_average, "npoints_to_average", 1)
    for step, value in loss_dict.items():
        for what, item in (("step", step), ("value", value)):
            if isinstance(item, (bool, np.bool_)) or not isinstance(item, Real):
                raise TypeError(f"every {what} of the history must be a number, got "
                                f"{item!r} ({type(item).__name__}) at step {step!r}; pass one "
                                f"history such as train_history['loss']")
    ax = ax if ax is not None else plt.gca()
    steps = np.fromiter(loss_dict.keys(), dtype=float, count=len(loss_dict))
    values = np.fromiter(loss_dict.values(), dtype=float, count=len(loss_dict))
    if n == 1 or not plot_variance or len(values) < n:
        ax.plot(steps, values, label=label)
        return
    num_windows = len(values) // n
    windows = values[:num_windows * n].reshape(num_windows, n)
    mean = windows.mean(axis=1)
    if band == "std":
        std = windows.std(axis=1)
        low, high, what = mean - std, mean + std, "±1 std"
    else:
        low, high = np.percentile(windows, [16, 84], axis=1)
        what = "middle 68%"
    mid_steps = steps[np.arange(num_windows) * n + n // 2]
    prefix = f"{label} " if label else ""
    ax.plot(mid_steps, mean, label=f"{prefix}(mean over {n} steps)")
    ax.fill_between(mid_steps, low, high, alpha=0.2, label=f"{prefix}({what} over {n} steps)")


def label_steps_plot(ax, title: str, ylabel: str, ylim: tuple[float, float] | None = None,
                     **legend) -> None:
    """Title, axis labels (x: gradient steps), y-limits and legend of a training-curve plot;
    ``legend`` goes to ``ax.legend``."""
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel("Gradient steps")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(**legend)


#: Printed width of a report figure, inches: at most 0.9 of an A4 page's 6.27-inch line.
PRINT_WIDTH_IN = 0.9 * (8.27 - 2.0)


def smallest_printed_font(fig, print_width_in: float = PRINT_WIDTH_IN) -> float:
    """The smallest text of ``fig`` in points once printed ``print_width_in`` wide (or at its
    own size if narrower): the font size that matters to a reader of the PDF."""
    from matplotlib.text import Text

    renderer = fig.canvas.get_renderer()
    width = fig.get_tightbbox(renderer).width  # inches, as savefig(bbox_inches="tight")
    scale = min(1.0, print_width_in / width)
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text()]
    return min(sizes) * scale if sizes else float("inf")


def figure_renders(fig, png_path=None) -> tuple[dict[str, str], dict[str, dict]]:
    """The (data, metadata) of a Jupyter display of ``fig``, rendered once per format: base64
    PNG at ``savefig.dpi`` shown at inline size, and the vector PDF the report uses; the PNG
    is also written to ``png_path`` when given."""
    import base64
    import io
    from pathlib import Path

    renders = {}
    for fmt in ("png", "pdf"):
        buffer = io.BytesIO()
        # no creation date in the PDF: two builds of the report give the same bytes
        fig.savefig(buffer, format=fmt, metadata={"CreationDate": None} if fmt == "pdf" else None)
        renders[fmt] = buffer.getvalue()
    if png_path is not None:
        Path(png_path).write_bytes(renders["png"])
    width_px = int.from_bytes(renders["png"][16:20], "big")  # the PNG header's width
    shown = round(width_px * plt.rcParams["figure.dpi"] / plt.rcParams["savefig.dpi"])
    data = {"image/png": base64.b64encode(renders["png"]).decode("ascii"),
            "application/pdf": base64.b64encode(renders["pdf"]).decode("ascii")}
    return data, {"image/png": {"width": shown}}
