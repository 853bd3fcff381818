"""trainer: cadence, early stopping, determinism, shuffling, and learning for real."""

from __future__ import annotations

import numpy as np
import pytest

import task2
import task2a
import task3
import task3a
import trainer
import utils


class Counter:
    """A model whose single weight counts the steps taken: w tells when it was saved."""

    def __init__(self):
        self.w = np.zeros((1, 1))


class ScriptedTrainer(trainer.BaseTrainer):
    """A grader-style subclass: overrides only the two course steps."""

    def __init__(self, losses, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.losses = list(losses)
        self.calls = 0
        self.batches = []

    def train_step(self, X_batch, Y_batch):
        self.model.w += 1
        self.batches.append(Y_batch[:, 0].copy())
        return 0.0

    def validation_step(self):
        loss = self.losses[self.calls] if self.calls < len(self.losses) else 100.0 + self.calls
        self.calls += 1
        return loss, 0.5, 0.5


def toy_data(n=640):
    X = np.arange(n, dtype=float).reshape(n, 1)
    Y = np.arange(n).reshape(n, 1)
    return X, Y, X[:10], Y[:10]


def scripted(losses, shuffle=False, **kwargs):
    # 640 examples / batch 32 = 20 batches per epoch: a validation check every 4 steps
    return ScriptedTrainer(losses, Counter(), 0.1, 32, shuffle, *toy_data(), **kwargs)


def test_validation_cadence_and_history_keys():
    t = scripted([10.0 - i * 0.1 for i in range(100)], early_stopping=False)
    train_history, val_history = t.train(2)
    assert set(train_history) == {"loss", "accuracy"} and set(val_history) == {"loss", "accuracy"}
    assert list(train_history["loss"]) == list(range(40))
    assert list(val_history["loss"]) == list(range(0, 40, 4))
    assert list(train_history["accuracy"]) == list(val_history["accuracy"]) == list(range(0, 40, 4))
    assert t.early_stop_epoch is None


def test_fewer_than_five_batches_per_epoch_checks_every_step():
    """3 batches an epoch: 3 // 5 = 0 steps between checks would divide by zero."""
    t = ScriptedTrainer([1.0] * 100, Counter(), 0.1, 32, False, *toy_data(96),
                        early_stopping=False)
    train_history, val_history = t.train(2)
    assert list(train_history["loss"]) == list(val_history["loss"]) == list(range(6))


def test_a_loss_given_as_a_one_element_array_is_recorded_as_a_float():
    """Some groups' models return the loss as an array of one element; the course's trainer
    records it, and so does ours, as a float."""

    class ArrayLosses(ScriptedTrainer):
        def train_step(self, X_batch, Y_batch):
            super().train_step(X_batch, Y_batch)
            return np.array([0.25])

        def validation_step(self):
            loss, train_accuracy, val_accuracy = super().validation_step()
            return np.array([[loss]]), np.float32(train_accuracy), val_accuracy

    t = ArrayLosses([1.0] * 100, Counter(), 0.1, 32, False, *toy_data(), early_stopping=False)
    train_history, val_history = t.train(1)
    assert set(train_history["loss"].values()) == {0.25}
    assert all(type(v) is float for h in (train_history, val_history) for v in h["loss"].values())
    assert all(type(v) is float for v in train_history["accuracy"].values())


@pytest.mark.parametrize("bad", [None, "0.5", np.array([0.1, 0.2]), [0.1, 0.2]])
def test_a_step_that_returns_no_single_number_is_named(bad):
    class Bad(ScriptedTrainer):
        def train_step(self, X_batch, Y_batch):
            return bad

    with pytest.raises(TypeError, match="the batch loss must be a number, got"):
        Bad([1.0], Counter(), 0.1, 32, False, *toy_data()).train(1)


def test_early_stopping_after_exactly_ten_checks_without_improvement():
    # improves for 5 checks, then 10 checks that are not lower (a tie counts as no improvement)
    losses = [5, 4, 3, 2, 1] + [1.0, 1.5, 2, 3, 1.0, 4, 5, 6, 7, 8] + [0.1] * 10
    t = scripted(losses)
    train_history, val_history = t.train(50)
    assert t.calls == 15, "stops at the 10th check without improvement, not before, not after"
    assert list(val_history["loss"].values()) == losses[:15]
    assert t.best_step == 16 and val_history["loss"][t.best_step] == 1
    # the weights saved at step 16 (after 17 updates) are restored
    assert t.model.w[0, 0] == 17
    # checks 0-4 fall in epoch 0, 5-9 in epoch 1, 10-14 in epoch 2
    assert t.early_stop_epoch == 2
    assert max(train_history["loss"]) == 56  # it stopped right after the check at step 56


def test_patience_is_configurable():
    t = scripted([1.0] + [2.0] * 30, patience=3)
    t.train(50)
    assert t.calls == 4 and t.early_stop_epoch == 0


def test_without_early_stopping_all_epochs_run_and_weights_are_kept():
    t = scripted([1.0] + [2.0] * 100, early_stopping=False)
    train_history, _ = t.train(3)
    assert t.early_stop_epoch is None and len(train_history["loss"]) == 60
    assert t.model.w[0, 0] == 60  # last weights, not the best ones
    assert t.best_step == 0


def test_budget_runs_out_before_patience_best_weights_restored():
    t = scripted([3.0, 2.0, 1.0] + [2.0] * 100)
    train_history, _ = t.train(1)
    assert t.early_stop_epoch is None and len(train_history["loss"]) == 20
    assert t.best_step == 8 and t.model.w[0, 0] == 9


def test_shuffling_changes_order_not_the_set():
    plain = scripted([1.0] * 100, shuffle=False, early_stopping=False)
    plain.train(2)
    shuffled = scripted([1.0] * 100, shuffle=True, early_stopping=False)
    shuffled.train(2)
    epoch = lambda t, e: np.concatenate(t.batches[20 * e:20 * (e + 1)])  # noqa: E731
    assert epoch(plain, 0).tolist() == list(range(640)) == epoch(plain, 1).tolist()
    for e in (0, 1):
        assert sorted(epoch(shuffled, e).tolist()) == list(range(640))
        assert epoch(shuffled, e).tolist() != list(range(640))
    assert epoch(shuffled, 0).tolist() != epoch(shuffled, 1).tolist()


def separable(rng, n=1024, k=None):
    X = np.hstack([rng.uniform(-1, 1, (n, 784)), np.ones((n, 1))])
    X[:, 16:784] = 0.0  # uninformative pixels carry nothing
    direction = np.zeros((785, k or 1))
    direction[:8] = rng.normal(size=(8, k or 1))  # few informative pixels: it generalises
    scores = X @ direction
    if k is None:
        return X, (scores > 0).astype(float)
    return X, task3a.one_hot_encode(scores.argmax(axis=1), k)


def run_logistic(seed, shuffle=True, epochs=5):
    rng = np.random.default_rng(42)
    X, Y = separable(rng)
    model = task2a.BinaryModel()
    t = task2.LogisticTrainer(model, 0.5, 32, shuffle, X[:768], Y[:768], X[768:], Y[768:],
                              seed=seed)
    return t, model, t.train(epochs)


def test_same_seed_bit_identical_different_seed_different():
    _, model_a, (ta, va) = run_logistic(seed=3)
    _, model_b, (tb, vb) = run_logistic(seed=3)
    _, _model_c, (tc, _) = run_logistic(seed=4)
    assert ta == tb and va == vb
    np.testing.assert_array_equal(model_a.w, model_b.w)
    assert ta["loss"] != tc["loss"]


def test_logistic_learns_a_separable_problem():
    rng = np.random.default_rng(7)
    X, Y = separable(rng, n=2048)
    model = task2a.BinaryModel()
    t = task2.LogisticTrainer(model, 0.5, 32, True, X[:1536], Y[:1536], X[1536:], Y[1536:],
                              early_stopping=False)
    _, val_history = t.train(30)
    assert task2.calculate_accuracy(X[:1536], Y[:1536], model) >= 0.99
    assert list(val_history["accuracy"].values())[-1] >= 0.95


def test_softmax_learns_a_separable_problem():
    rng = np.random.default_rng(8)
    X, Y = separable(rng, n=3072, k=4)
    Y10 = np.zeros((len(Y), 10))
    Y10[:, :4] = Y
    model = task3a.SoftmaxModel(0.0)
    t = task3.SoftmaxTrainer(model, 2.0, 64, True, X[:2560], Y10[:2560], X[2560:], Y10[2560:],
                             early_stopping=False)
    train_history, _ = t.train(60)
    assert task3.calculate_accuracy(X[:2560], Y10[:2560], model) >= 0.97
    assert list(train_history["accuracy"].values())[-1] >= 0.97


def test_bad_arguments_are_reported():
    X, Y, Xv, Yv = toy_data()
    with pytest.raises(ValueError, match="batch_size 1000 is larger"):
        ScriptedTrainer([], Counter(), 0.1, 1000, False, X, Y, Xv, Yv)
    with pytest.raises(ValueError, match=r"X_train must be \(N, D\) finite numbers and Y_train"):
        ScriptedTrainer([], Counter(), 0.1, 32, False, X, Y[:5], Xv, Yv)


# --- the real data, the assignment's hyper-parameters -------------------------------------------

@pytest.fixture(scope="module")
def binary_data():
    X_train, Y_train, X_val, Y_val = utils.load_binary_dataset(2, 3)
    return (task2a.pre_process_images(X_train), Y_train,
            task2a.pre_process_images(X_val), Y_val)


@pytest.mark.slow
def test_task2_early_stopping_on_real_data(binary_data):
    _X_train, _Y_train, X_val, Y_val = binary_data
    results = {}
    for shuffle in (False, True):
        model = task2a.BinaryModel()
        t = task2.LogisticTrainer(model, 0.05, 128, shuffle, *binary_data)
        t.train(500)
        results[shuffle] = (t.early_stop_epoch, task2.calculate_accuracy(X_val, Y_val, model))
    print("task 2 (early_stop_epoch, val accuracy):", results)
    for epoch, accuracy in results.values():
        assert epoch is not None and 5 <= epoch < 100, "stops early, well inside 500 epochs"
        assert 0.96 <= accuracy <= 0.99
    # the assignment's run (no shuffling, seed-independent) stops in epoch 33, 0-based
    assert results[False][0] == 33


@pytest.mark.slow
def test_task3_softmax_short_run_on_real_data():
    X_train, Y_train, X_val, Y_val = utils.load_full_mnist()
    X_train, X_val = task2a.pre_process_images(X_train), task2a.pre_process_images(X_val)
    Y_train, Y_val = task3a.one_hot_encode(Y_train, 10), task3a.one_hot_encode(Y_val, 10)
    model = task3a.SoftmaxModel(0.0)
    t = task3.SoftmaxTrainer(model, 0.01, 128, True, X_train, Y_train, X_val, Y_val)
    _train_history, val_history = t.train(5)
    accuracy = task3.calculate_accuracy(X_val, Y_val, model)
    print(f"softmax after 5 epochs: val accuracy {accuracy:.4f}")
    assert 0.88 <= accuracy <= 0.93
    assert list(val_history["loss"].values())[-1] < next(iter(val_history["loss"].values()))


def test_a_graders_course_style_subclass_trains_and_stops_early():
    """Written the way the course's starter code writes LogisticTrainer, on our BaseTrainer."""

    class CourseLogisticTrainer(trainer.BaseTrainer):
        def train_step(self, X_batch, Y_batch):
            logits = self.model.forward(X_batch)
            self.model.backward(X_batch, logits, Y_batch)
            self.model.w -= self.learning_rate * self.model.grad
            return task2a.cross_entropy_loss(Y_batch, logits)

        def validation_step(self):
            logits = self.model.forward(self.X_val)
            loss = task2a.cross_entropy_loss(self.Y_val, logits)
            accuracy_train = task2.calculate_accuracy(self.X_train, self.Y_train, self.model)
            accuracy_val = task2.calculate_accuracy(self.X_val, self.Y_val, self.model)
            return loss, accuracy_train, accuracy_val

    rng = np.random.default_rng(5)
    X, Y = separable(rng, n=1200)
    noisy = rng.random(len(Y)) < 0.1
    Y[noisy] = 1 - Y[noisy]  # label noise, so that the validation loss plateaus
    model = task2a.BinaryModel()
    t = CourseLogisticTrainer(model, 0.5, 40, True, X[:1000], Y[:1000], X[1000:], Y[1000:])
    _, val_history = t.train(500)
    assert t.early_stop_epoch is not None and t.early_stop_epoch < 499
    assert model.w.dtype == np.float64
    best_loss = min(val_history["loss"].values())
    assert val_history["loss"][t.best_step] == best_loss
    # the restored weights are the best ones: their validation loss is the best recorded
    assert task2a.cross_entropy_loss(Y[1000:], model.forward(X[1000:])) == pytest.approx(best_loss)
    assert task2.calculate_accuracy(X[1000:], Y[1000:], model) > 0.8


