"""utils: batches, pruning, the assignment's splits, the loss plot."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

import utils


def _toy(n=10, d=3):
    X = np.arange(n * d, dtype=float).reshape(n, d)
    Y = np.arange(n).reshape(n, 1)
    return X, Y


def test_batches_in_order_without_shuffle():
    X, Y = _toy(10)
    batches = list(utils.batch_loader(X, Y, 4))
    assert [b[1][:, 0].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    np.testing.assert_array_equal(batches[1][0], X[4:8])


def test_drop_last_false_yields_the_short_batch():
    X, Y = _toy(10)
    batches = list(utils.batch_loader(X, Y, 4, drop_last=False))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    assert batches[-1][1][:, 0].tolist() == [8, 9]


def test_shuffle_visits_every_sample_once_per_epoch_and_rows_stay_paired():
    X, Y = _toy(12)
    rng = np.random.default_rng(0)
    epochs = [list(utils.batch_loader(X, Y, 3, shuffle=rng)) for _ in range(3)]
    orders = []
    for batches in epochs:
        order = np.concatenate([y[:, 0] for _, y in batches])
        assert sorted(order.tolist()) == list(range(12))
        for x, y in batches:  # image i still goes with target i
            np.testing.assert_array_equal(x, X[y[:, 0]])
        orders.append(order.tolist())
    assert orders[0] != list(range(12))
    assert orders[0] != orders[1] or orders[1] != orders[2]  # a fresh permutation per epoch


def test_shuffle_is_reproducible_from_the_seed():
    X, Y = _toy(50)

    def run(seed):
        rng = np.random.default_rng(seed)
        return [y[:, 0].tolist() for _ in range(2)
                for _, y in utils.batch_loader(X, Y, 7, shuffle=rng)]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_default_rng_draws_fresh_permutations():
    X, Y = _toy(40)
    a = [y[:, 0].tolist() for _, y in utils.batch_loader(X, Y, 40, shuffle=True)]
    b = [y[:, 0].tolist() for _, y in utils.batch_loader(X, Y, 40, shuffle=True)]
    assert a != b


@pytest.mark.parametrize(("bad", "error"), [
    (0, ValueError), (-1, ValueError), (2.5, TypeError), (True, TypeError), (None, TypeError),
    (float("nan"), TypeError), (float("inf"), TypeError), ("8", TypeError)])
def test_bad_batch_size(bad, error):
    X, Y = _toy()
    with pytest.raises(error, match=r"batch_size must be an integer >= 1, got"):
        list(utils.batch_loader(X, Y, bad))


def test_mismatched_lengths_are_rejected():
    X, Y = _toy(10)
    with pytest.raises(ValueError, match="got X \\(10, 3\\) and Y \\(9, 1\\)"):
        list(utils.batch_loader(X, Y[:9], 2))


def test_wrong_rank_is_rejected():
    with pytest.raises(ValueError, match=r"X must be \(N, D\) images.* got X \(10,\)"):
        list(utils.batch_loader(np.zeros(10), np.zeros(10), 2))


def test_binary_prune_dataset():
    X = np.arange(8).reshape(8, 1)
    Y = np.array([2, 3, 5, 2, 7, 3, 3, 1])
    Xb, Yb = utils.binary_prune_dataset(2, 3, X, Y)
    assert Xb[:, 0].tolist() == [0, 1, 3, 5, 6]
    assert Yb.tolist() == [1, 0, 1, 0, 0]


def test_load_binary_dataset_split(mnist_arrays):
    X_all, Y_all, X_test, Y_test = mnist_arrays
    X_train, Y_train, X_val, Y_val = utils.load_binary_dataset(2, 3)
    pool = np.isin(Y_all[:20000], [2, 3])
    val_pool = np.isin(Y_test[:10000], [2, 3])
    assert X_train.shape == (pool.sum(), 784) and Y_train.shape == (pool.sum(), 1)
    assert X_val.shape == (val_pool.sum(), 784) and Y_val.shape == (val_pool.sum(), 1)
    np.testing.assert_array_equal(X_train, X_all[:20000][pool])
    np.testing.assert_array_equal(Y_train[:, 0], (Y_all[:20000][pool] == 2).astype(int))
    np.testing.assert_array_equal(X_val, X_test[:10000][val_pool])
    assert set(np.unique(Y_train).tolist()) == {0, 1}


def test_load_full_mnist_split(mnist_arrays):
    X_all, _Y_all, _X_test, Y_test = mnist_arrays
    X_train, Y_train, X_val, Y_val = utils.load_full_mnist()
    assert X_train.shape == (20000, 784) and Y_train.shape == (20000, 1)
    assert X_val.shape == (10000, 784) and Y_val.shape == (10000, 1)
    np.testing.assert_array_equal(X_train, X_all[:20000])
    np.testing.assert_array_equal(Y_val[:, 0], Y_test[-10000:])
    assert Y_train[:10, 0].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_plot_loss_plain_and_averaged():
    """The course's plot_loss, on the current axes: the plain curve, or the mean over windows
    of 10 points with a +-1 std band."""
    history = {step: float(step % 5) for step in range(40)}
    fig, ax = plt.subplots()
    utils.plot_loss(history, label="train")
    (line,) = ax.get_lines()
    assert line.get_label() == "train" and len(line.get_xdata()) == 40
    ax.clear()
    utils.plot_loss(history, label="train", npoints_to_average=10)
    (line,) = ax.get_lines()
    assert line.get_xdata().tolist() == [5, 15, 25, 35]  # middle of each window of 10
    np.testing.assert_allclose(line.get_ydata(), 2.0)  # mean of 0,1,2,3,4,0,1,2,3,4
    assert len(ax.collections) == 1  # the band
    assert line.get_label() == "train mean over 10 steps"
    plt.close(fig)


def test_figures_show_renders_once_per_format_and_writes_the_png(tmp_path, monkeypatch):
    import base64

    from tools import figures

    shown = []
    monkeypatch.setattr(figures, "display", lambda data, **kwargs: shown.append((data, kwargs)))
    with plt.rc_context({"figure.dpi": 110, "savefig.dpi": 200, "savefig.bbox": "tight"}):
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.plot([0, 1], [1, 0])
        smallest = figures.show(fig, tmp_path / "f.png", "A caption", width=0.5)
    assert not plt.fignum_exists(fig.number)  # closed
    ((data, kwargs),) = shown
    png = base64.b64decode(data["image/png"])
    assert png.startswith(b"\x89PNG") and (tmp_path / "f.png").read_bytes() == png
    assert base64.b64decode(data["application/pdf"]).startswith(b"%PDF")
    width = int.from_bytes(png[16:20], "big")
    assert width > 600  # 200 dpi, not the screen's 110
    assert kwargs == {"metadata": {"image/png": {"width": round(width * 110 / 200)},
                                   "caption": "A caption", "width": 0.5}, "raw": True}
    # a 4-inch figure printed half the line (3.1 inches) wide: its 10-pt tick labels shrink;
    # at the full line it prints at its own size
    assert 6 < smallest < 9.5
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [1, 0])
    assert figures.show(fig, tmp_path / "g.png", "Another", width=1.0) == 10
