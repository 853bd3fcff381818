"""A stand-in for the course's mnist.py, as graders put it beside the hand-in: only ``load()``,
reading the four gzip files from ``data/`` under the current folder (the course's layout).
`python tasks.py handin-check` copies it there as mnist.py; it runs on Python 3.8."""

import gzip

import numpy as np

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
         "t10k-labels-idx1-ubyte")


def _read(stem, offset):
    with gzip.open("data/" + stem + ".gz", "rb") as file:
        return np.frombuffer(file.read(), np.uint8, offset=offset)


def load():
    """X_train (60000, 784), Y_train (60000,), X_test (10000, 784), Y_test (10000,), uint8."""
    X_train, Y_train, X_test, Y_test = (_read(stem, 8 if "labels" in stem else 16)
                                        for stem in FILES)
    return X_train.reshape(-1, 784), Y_train, X_test.reshape(-1, 784), Y_test
