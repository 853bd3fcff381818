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

import sys
from collections.abc import Iterator
from numbers import Integral, Real

import matplotlib.pyplot as plt
import numpy as np

import mnist

__all__ = [
    "DEFAULT_SEED",
    "ArrayPool",
    "all_finite",
    "batch_loader",
    "binary_prune_dataset",
    "check_class_label",
    "check_count",
    "check_flag",
    "confusion_matrix",
    "label_steps_plot",
    "load_binary_dataset",
    "load_full_mnist",
    "plot_loss",
    "smallest_printed_font",
    "stack_transposed",
    "zip_equal",
]

TRAIN_SIZE = 20_000
VAL_SIZE = 10_000
DEFAULT_SEED = 0

# Used when batch_loader(shuffle=True) gets no rng: seeded once per process, so each
# call (epoch) draws a fresh permutation and a rerun of the process gives the same ones.
_default_rng = np.random.default_rng(DEFAULT_SEED)


def _integer(value, name: str, who: str, expected: str) -> int:
    """``value`` as an int; TypeError naming ``name`` and ``expected`` for anything else
    (bools, floats, None and strings are refused, also 2.0)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
        raise TypeError(f"{who}: {name} must be {expected}, got {value!r} "
                        f"({type(value).__name__})")
    return int(value)


def check_count(value, name: str, who: str, minimum: int) -> int:
    """``value`` as an int >= ``minimum``; TypeError/ValueError naming ``name`` otherwise."""
    value = _integer(value, name, who, f"an integer >= {minimum}")
    if value < minimum:
        raise ValueError(f"{who}: {name} must be an integer >= {minimum}, got {value}")
    return value


def check_flag(value, name: str, who: str) -> bool:
    """``value`` as a bool; TypeError naming ``name`` for anything else (the string 'False'
    is true in Python, so strings and numbers are refused)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{who}: {name} must be True or False, got {value!r} "
                        f"({type(value).__name__})")
    return bool(value)


def check_class_label(value, name: str, who: str) -> int:
    """A class label: an integer (not a bool, float or string); TypeError otherwise."""
    return _integer(value, name, who, "an integer class label such as 2")


def zip_equal(*sequences):
    """``zip`` of sequences that must all have one length (``zip(..., strict=True)``, which
    needs Python 3.10; the hand-in runs on 3.8). Raises ValueError naming the lengths."""
    lengths = [len(s) for s in sequences]
    if len(set(lengths)) > 1:
        raise ValueError(f"zip_equal: the sequences must have one length, got lengths {lengths}")
    return zip(*sequences)


def _check_pair(X: np.ndarray, Y: np.ndarray, who: str) -> None:
    if not isinstance(X, np.ndarray) or not isinstance(Y, np.ndarray):
        raise TypeError(f"{who}: X and Y must be NumPy arrays, got {type(X).__name__} and "
                        f"{type(Y).__name__}")
    if X.ndim != 2:
        raise ValueError(f"{who}: X must be 2-D (N, features), got shape {X.shape}")
    if Y.ndim == 0:
        raise ValueError(f"{who}: Y must hold one target per row of X, shape (N,) or (N, ...), "
                         f"got a 0-d array")
    if len(X) != len(Y):
        raise ValueError(f"{who}: X and Y must have the same number of rows, got {len(X)} "
                         f"images and {len(Y)} targets")


def batch_loader(
    X: np.ndarray,
    Y: np.ndarray,
    batch_size: int,
    shuffle: bool = False,
    drop_last: bool = True,
    rng: np.random.Generator | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield one epoch of mini-batches ``(X[idx], Y[idx])``.

    Args:
        X: (N, D) images; Y: (N, ...) targets.
        batch_size: examples per batch (> 0).
        shuffle: draw a fresh permutation from ``rng`` for this epoch; every
            example appears exactly once.
        drop_last: skip the last batch when it has fewer than ``batch_size``
            examples (the course's default); False yields it too.
        rng: ``numpy.random.Generator``; default a module generator seeded with
            ``DEFAULT_SEED`` once per process.
    Yields:
        x (batch_size, D), y (batch_size, ...); the last batch may be shorter
        when ``drop_last`` is False.
    """
    _check_pair(X, Y, "batch_loader")
    batch_size = check_count(batch_size, "batch_size", "batch_loader", 1)
    shuffle = check_flag(shuffle, "shuffle", "batch_loader")
    drop_last = check_flag(drop_last, "drop_last", "batch_loader")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"batch_loader: rng must be a numpy.random.Generator (e.g. "
                        f"np.random.default_rng(0)), got {rng!r} ({type(rng).__name__})")
    n = len(X)
    num_batches = n // batch_size if drop_last else -(-n // batch_size)
    if shuffle:
        order = (rng if rng is not None else _default_rng).permutation(n)
        for i in range(num_batches):
            idx = order[i * batch_size:(i + 1) * batch_size]
            yield X.take(idx, axis=0), Y.take(idx, axis=0)
    else:
        for i in range(num_batches):
            sl = slice(i * batch_size, (i + 1) * batch_size)
            yield X[sl], Y[sl]


class ArrayPool:
    """Keeps large working arrays after use, to hand them out again instead of new ones.

    Memory that a process gives back and asks for again must be mapped in anew, page by
    page; on a virtual machine that costs milliseconds per megabyte. A trainer takes its
    float32 working copies (about 150 MB for tasks 3-4) from a pool and gives them back when
    it is done, so the next trainer with the same shapes (a report trains several models; a
    student reruns cells) reuses the same memory. Measured on the project's machine (`make
    bench`, six runs each): a 20-epoch softmax training right after other memory-hungry work
    took 1.20-1.28 s with fresh copies and 0.96-1.00 s from the pool; two trainings back to
    back gain only about 1%.

    Safety: an array is kept only when nothing else refers to it. Every NumPy view holds a
    reference to the array that owns its memory, so a batch a model kept (``self.last_X =
    X``), a slice, or a buffer export all make the array ineligible: memory any user code
    can still see is never handed out again.
    """

    def __init__(self, max_bytes: int = 512 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._free: dict[tuple, np.ndarray] = {}

    def take(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        """An uninitialised C-contiguous array: a kept one of this shape and dtype, or a new one."""
        key = (tuple(shape), np.dtype(dtype).str)
        array = self._free.pop(key, None)
        return array if array is not None else np.empty(shape, dtype=dtype)

    def give_unshared(self, arrays: list[np.ndarray | None]) -> int:
        """Keep those of ``arrays`` that nothing else refers to; empties the list.

        The caller must drop its own other references first (the list is the last one).
        Returns how many arrays were kept.
        """
        kept = 0
        while arrays:
            array = arrays.pop()
            if array is None or array.base is not None or not array.flags.c_contiguous \
                    or not array.flags.writeable:
                continue
            # two references: the name `array` and getrefcount's own argument; any more
            # means a view, a buffer or another name still sees this memory
            if sys.getrefcount(array) > 2:
                continue
            self._free[(array.shape, array.dtype.str)] = array
            kept += 1
            del array
        while sum(a.nbytes for a in self._free.values()) > self.max_bytes:
            self._free.pop(next(iter(self._free)))
        return kept

    def clear(self) -> None:
        self._free.clear()


def stack_transposed(arrays: list[np.ndarray], dtype=np.float32, block: int = 128,
                     out: np.ndarray | None = None,
                     columns: np.ndarray | None = None) -> np.ndarray:
    """Stack (N_i, D) arrays row-wise and store the result feature-major.

    Args:
        columns: optional indices of the features to keep (default all D).
    Returns:
        (D', sum N_i) C-contiguous array of ``dtype`` (written into ``out`` when given),
        D' = len(columns) or D: column n is example n. The copy runs in blocks of
        ``block`` rows, which keeps the transpose cache-friendly (about twice as fast as
        one big transposing copy).
    """
    if not isinstance(arrays, (list, tuple)) or not arrays:
        raise ValueError("stack_transposed: arrays must be a non-empty list of (N_i, D) "
                         "arrays")
    for a in arrays:
        if not isinstance(a, np.ndarray) or a.ndim != 2:
            shape = getattr(a, "shape", type(a).__name__)
            raise ValueError(f"stack_transposed: every array must be 2-D (N_i, D), got {shape}")
    width = arrays[0].shape[1]
    for a in arrays:
        if a.shape[1] != width:
            raise ValueError(f"stack_transposed: every array must be (N, {width}), got {a.shape}")
    rows = width if columns is None else len(columns)
    shape = (rows, sum(len(a) for a in arrays))
    if out is None:
        out = np.empty(shape, dtype=dtype)
    elif out.shape != shape or out.dtype != np.dtype(dtype):
        raise ValueError(f"stack_transposed: out must be {shape} {np.dtype(dtype)}, "
                         f"got {out.shape} {out.dtype}")
    start = 0
    for a in arrays:
        for i in range(0, len(a), block):
            chunk = a[i:i + block]
            if columns is not None:
                chunk = chunk.take(columns, axis=1)
            with np.errstate(over="ignore"):  # checked below, once for the whole copy
                out[:, start:start + len(chunk)] = chunk.T
            start += len(chunk)
    if np.issubdtype(out.dtype, np.floating) and not all_finite(out) and \
            all(all_finite(a) for a in arrays):
        raise ValueError(f"stack_transposed: values too large for {out.dtype} (largest "
                         f"{max(float(np.abs(a).max()) for a in arrays if a.size):.3g}); "
                         f"stack into a wider dtype such as float64")
    return out


def all_finite(a: np.ndarray) -> bool:
    """No NaN or inf in ``a``: a finite sum proves it in one pass without a temporary array;
    only a NaN, an inf or a sum that overflows needs the element-wise look."""
    if not np.issubdtype(a.dtype, np.floating):
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduce(a, axis=None)
    return bool(np.isfinite(total)) or bool(np.isfinite(a).all())


def binary_prune_dataset(class1: int, class2: int, X: np.ndarray, Y: np.ndarray):
    """Keep only digits ``class1`` and ``class2``; relabel class1 -> 1, class2 -> 0.

    Args:
        X: (N, D) images; Y: (N,) or (N, 1) integer labels.
    Returns:
        X (M, D) and Y with Y's trailing shape, where M counts the two classes.
    """
    who = "binary_prune_dataset"
    _check_pair(X, Y, who)
    if not (Y.ndim == 1 or (Y.ndim == 2 and Y.shape[1] == 1)):
        raise ValueError(f"{who}: Y must hold integer labels, shape (N,) or (N, 1), got "
                         f"{Y.shape}; pass labels, not one-hot targets")
    class1 = check_class_label(class1, "class1", who)
    class2 = check_class_label(class2, "class2", who)
    if class1 == class2:
        raise ValueError(f"{who}: the two classes must differ, got {class1} twice")
    for name, label in (("class1", class1), ("class2", class2)):
        if not (Y == label).any():
            present = np.unique(Y)
            raise ValueError(f"{who}: {name} = {label} does not occur in Y (its labels are "
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
        raise ValueError(f"plot_loss: band must be 'std' or 'quantile', got {band!r}")
    if not isinstance(loss_dict, dict):
        raise TypeError(f"plot_loss: expected a {{step: value}} dict, "
                        f"got {type(loss_dict).__name__}")
    n = check_count(npoints_to_average, "npoints_to_average", "plot_loss", 1)
    for step, value in loss_dict.items():
        for what, item in (("step", step), ("value", value)):
            if isinstance(item, (bool, np.bool_)) or not isinstance(item, Real):
                raise TypeError(f"plot_loss: every {what} of the history must be a number, got "
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


#: Printed width of a report figure, inches: nbconvert's LaTeX shrinks images to at most
#: 0.9 of the line width, and an A4 page with its 1-inch margins has a 6.27-inch line.
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
    """Render ``fig`` once as PNG (at ``savefig.dpi``) and once as PDF, for display.

    Returns the (data, metadata) of a Jupyter display: base64 ``image/png`` shown at the
    size an inline figure has (``figure.dpi``), and ``application/pdf``, the vector copy
    the PDF report uses. Writes the PNG to ``png_path`` when given. One render per format:
    the inline backend would draw both again.
    """
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


#: The largest confusion matrix: 10,000 x 10,000 counts, 800 MB.
MAX_CLASSES = 10_000


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts C[t, p] of examples with true class t predicted as p.

    Args:
        labels, predictions: (N,) integer classes in [0, num_classes), any integer dtype.
        num_classes: K >= 1.
    Returns:
        (num_classes, num_classes) int64; rows are true classes and sum to their counts.
    """
    num_classes = check_count(num_classes, "num_classes", "confusion_matrix", 1)
    if num_classes > MAX_CLASSES:
        raise ValueError(f"confusion_matrix: num_classes must be at most {MAX_CLASSES:,} (a "
                         f"{num_classes:,} x {num_classes:,} matrix would not fit in memory), "
                         f"got {num_classes:,}")
    labels, predictions = np.asarray(labels).ravel(), np.asarray(predictions).ravel()
    if labels.shape != predictions.shape:
        raise ValueError(f"confusion_matrix: {labels.size} labels but {predictions.size} "
                         f"predictions")
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.size and not np.issubdtype(values.dtype, np.integer):
            raise TypeError(f"confusion_matrix: {name} must be integer classes, got dtype "
                            f"{values.dtype}")
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"confusion_matrix: {name} must lie in [0, {num_classes}), got "
                             f"values in [{values.min()}, {values.max()}]")
    # in intp: uint8 labels * 17 classes would wrap around in the labels' own dtype
    flat = labels.astype(np.intp) * num_classes + predictions.astype(np.intp)
    counts = np.bincount(flat, minlength=num_classes ** 2)
    return counts.reshape(num_classes, num_classes).astype(np.int64, copy=False)
