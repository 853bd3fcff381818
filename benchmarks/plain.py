"""The yardstick: softmax regression trained the plain way (issue 5's "plain schedule").

Written the way the assignment is usually first written, on purpose: float64 throughout;
each batch gathered by indexing with a Python list of indices; at every validation three
separate full forward passes (validation loss, training accuracy, validation accuracy);
softmax with max-subtraction; the loss with a plain log. Used only as the benchmark's
baseline, never by the project.
"""

from __future__ import annotations

import numpy as np


def preprocess(X: np.ndarray) -> np.ndarray:
    X = X.astype(np.float64) / 127.5 - 1.0
    return np.hstack([X, np.ones((X.shape[0], 1))])


def one_hot(Y: np.ndarray, num_classes: int = 10) -> np.ndarray:
    out = np.zeros((Y.shape[0], num_classes))
    out[np.arange(Y.shape[0]), Y.ravel()] = 1.0
    return out


def forward(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    z = X @ w
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def loss(Y: np.ndarray, Y_hat: np.ndarray) -> float:
    return float(-np.mean(np.sum(Y * np.log(Y_hat), axis=1)))


def accuracy(X: np.ndarray, Y: np.ndarray, w: np.ndarray) -> float:
    return float(np.mean(forward(X, w).argmax(axis=1) == Y.argmax(axis=1)))


def train(X_train_u8, Y_train_lab, X_val_u8, Y_val_lab, num_epochs=20, learning_rate=0.01,
          batch_size=128, seed=0):
    """Returns (weights, val_history {step: accuracy}, val_loss_history {step: loss})."""
    X_train, X_val = preprocess(X_train_u8), preprocess(X_val_u8)
    Y_train, Y_val = one_hot(Y_train_lab), one_hot(Y_val_lab)
    w = np.zeros((785, 10))
    rng = np.random.default_rng(seed)
    num_batches = X_train.shape[0] // batch_size
    steps_per_val = num_batches // 5
    val_accuracy, val_loss = {}, {}
    step = 0
    for _ in range(num_epochs):
        indices = list(rng.permutation(X_train.shape[0]))
        for i in range(num_batches):
            batch = indices[i * batch_size:(i + 1) * batch_size]
            X, Y = X_train[batch], Y_train[batch]
            Y_hat = forward(X, w)
            grad = -X.T @ (Y - Y_hat) / X.shape[0]
            w = w - learning_rate * grad
            loss(Y, Y_hat)  # the training loss is recorded every step
            if step % steps_per_val == 0:
                val_loss[step] = loss(Y_val, forward(X_val, w))
                accuracy(X_train, Y_train, w)
                val_accuracy[step] = accuracy(X_val, Y_val, w)
            step += 1
    return w, val_accuracy, val_loss
