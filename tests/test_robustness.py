"""Bad inputs get a clear error naming the argument; divergence is never silent; the pool and
the sweep are safe. Each test reproduces a probe that once gave a wrong answer or a bad error."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import task2
import task2a
import task3a
import trainer


def separable(rng, n=600, k=None):
    X = np.hstack([rng.uniform(-1, 1, (n, 784)), np.ones((n, 1))])
    X[:, 16:784] = 0.0
    direction = np.zeros((785, k or 1))
    direction[:8] = rng.normal(size=(8, k or 1))
    scores = X @ direction
    if k is None:
        return X, (scores > 0).astype(float)
    return X, task3a.one_hot_encode(scores.argmax(axis=1), k)


def logistic(model=None, lr=0.1, X=None, Y=None, **kwargs):
    rng = np.random.default_rng(0)
    if X is None:
        X, Y = separable(rng)
    return task2.LogisticTrainer(model or task2a.BinaryModel(), lr, 32, True, X[:500], Y[:500],
                                 X[500:], Y[500:], **kwargs)


# --- 1. divergence -----------------------------------------------------------------------

@pytest.mark.parametrize("lr,dtype", [(float("nan"), None)])
def test_divergence_raises_naming_step_and_learning_rate(lr, dtype):
    model = task2a.BinaryModel()
    if lr != lr:  # NaN is refused up front
        with pytest.raises(ValueError, match="learning_rate must be a finite number"):
            logistic(model, lr=lr)
        return
    t = logistic(model, lr=lr, dtype=dtype)
    with pytest.raises(trainer.TrainingDiverged, match=r"at step \d+.*learning_rate=1e\+308"):
        t.train(3)
    assert np.isfinite(model.w).all(), "the model keeps finite weights"
    assert model.w.dtype == np.float64


def test_divergence_restores_the_best_finite_weights():
    class Exploding(task2.LogisticTrainer):
        steps = 0

        def train_step(self, X_batch, Y_batch):
            self.steps += 1
            if self.steps == 41:  # step 40
                self.model.w[0, 0] = np.inf
            return super().train_step(X_batch, Y_batch)

    rng = np.random.default_rng(0)
    X, Y = separable(rng)
    model = task2a.BinaryModel()
    t = Exploding(model, 0.1, 32, True, X[:500], Y[:500], X[500:], Y[500:])
    with pytest.raises(trainer.TrainingDiverged,
                       match=r"step 4\d.*rate=0\.1.*the validation check at step 3\d"):
        t.train(5)
    assert np.isfinite(model.w).all() and np.any(model.w != 0)


def test_nan_pixels_are_refused_before_training():
    rng = np.random.default_rng(0)
    X, Y = separable(rng)
    X[3, 5] = np.nan
    with pytest.raises(ValueError, match=r"X_train must be \(N, D\) finite numbers"):
        logistic(X=X, Y=Y)


def test_huge_but_finite_inputs_are_not_mistaken_for_nan():
    rng = np.random.default_rng(0)
    X, Y = separable(rng)
    X[:2, 0] = 1e308  # their sum overflows to inf; every value is still finite
    logistic(X=X, Y=Y)  # accepted: the element-wise check runs and finds nothing


# --- 4. integer weights, 7. arguments checked up front -------------------------------------

def test_integer_weights_are_refused_not_truncated():
    model = task2a.BinaryModel()
    model.w = np.zeros((785, 1), dtype=np.int64)
    with pytest.raises(TypeError, match=r"weights w are a float array \(785, K\)"):
        logistic(model)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"batch_size": 0}, ValueError, r"batch_size must be an integer >= 1"),
    ({"batch_size": None}, TypeError, "batch_size"),
    ({"batch_size": "32"}, TypeError, "batch_size"),
    ({"learning_rate": None}, TypeError, "learning_rate"),
    ({"learning_rate": -0.1}, ValueError, "learning_rate"),
    ({"learning_rate": 0}, ValueError, "learning_rate"),
    ({"patience": 0}, ValueError, "patience"),
])
def test_bad_trainer_arguments_are_named(kwargs, error, match):
    rng = np.random.default_rng(0)
    X, Y = separable(rng)
    args = {"learning_rate": 0.1, "batch_size": 32}
    args.update({k: v for k, v in kwargs.items() if k in args})
    extra = {k: v for k, v in kwargs.items() if k not in args}
    with pytest.raises(error, match=match):
        task2.LogisticTrainer(task2a.BinaryModel(), args["learning_rate"], args["batch_size"],
                              True, X[:500], Y[:500], X[500:], Y[500:], **extra)


@pytest.mark.parametrize("epochs,error", [(-3, ValueError), (None, TypeError), ("5", TypeError)])
def test_bad_num_epochs(epochs, error):
    with pytest.raises(error, match="num_epochs"):
        logistic().train(epochs)


def test_nan_lambda_and_wrong_validation_width_fail_before_any_step():
    with pytest.raises(ValueError, match="l2_reg_lambda"):
        task3a.SoftmaxModel(l2_reg_lambda=float("nan"))
    rng = np.random.default_rng(0)
    X, Y = separable(rng)
    model = task2a.BinaryModel()
    with pytest.raises(ValueError, match="validation arrays must be as wide"):
        task2.LogisticTrainer(model, 0.1, 32, True, X[:500], Y[:500], X[500:, :700], Y[500:])
    assert not model.w.any()


# --- 3. the pool never hands out memory a model kept ----------------------------------------

def test_a_batch_the_model_kept_is_never_overwritten_by_the_next_trainer():
    class Keeping(task2a.BinaryModel):
        def forward(self, X):
            self.last_X = X  # a view into the trainer's working copy (shuffle=False)
            return super().forward(X)

    rng = np.random.default_rng(0)
    X, Y = separable(rng)
    model = Keeping()
    task2.LogisticTrainer(model, 0.1, 32, False, X[:500], Y[:500], X[500:], Y[500:]).train(1)
    kept = model.last_X.copy()
    X2 = np.hstack([rng.uniform(-1, 1, (600, 784)), np.ones((600, 1))])
    task2.LogisticTrainer(task2a.BinaryModel(), 0.1, 32, False, X2[:500], Y[:500], X2[500:],
                          Y[500:]).train(1)
    np.testing.assert_array_equal(model.last_X, kept)


# --- 5, 6, 10. domains, dtypes, messages ---------------------------------------------------

def test_binary_targets_outside_0_1_are_refused():
    p = np.array([[0.5], [0.5], [0.5]])
    with pytest.raises(ValueError, match="targets must be 0 or 1"):
        task2a.cross_entropy_loss(np.array([[2], [0], [1]]), p)
    rng = np.random.default_rng(0)
    X, _ = separable(rng)
    Y = rng.choice([2, 3], size=(600, 1))
    with pytest.raises(ValueError, match="binary_prune_dataset"):
        logistic(X=X, Y=Y).train(1)


def test_outputs_must_be_probabilities_and_targets_one_hot():
    with pytest.raises(ValueError, match="probabilities"):
        task2a.cross_entropy_loss(np.array([[1.0]]), np.array([[1.5]]))
    with pytest.raises(ValueError, match="probabilities"):
        task3a.cross_entropy_loss(np.eye(2), np.array([[np.nan, 1.0], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="one-hot"):
        task3a.cross_entropy_loss(np.array([[1.0, 1.0]]), np.array([[0.5, 0.5]]))


def test_pixels_nan_or_already_scaled_are_refused():
    X = np.full((2, 784), 100.0)
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"pixels must lie in \[0, 255\], got values in \[nan"):
        task2a.pre_process_images(X)
    with pytest.raises(ValueError, match="already scaled"):
        task2a.pre_process_images(np.full((2, 784), 0.5))


def test_pre_process_divides_by_255_not_by_the_batch_maximum():
    X = np.full((1, 784), 51, dtype=np.uint8)  # no 255 pixel anywhere
    np.testing.assert_allclose(task2a.pre_process_images(X)[0, :784], 2 * 51 / 255 - 1)
    assert task2a.pre_process_images(X)[0, 784] == 1.0  # the bias is the last column


def test_sigmoid_and_softmax_of_integers_are_floats():
    np.testing.assert_allclose(task2a.sigmoid(np.array([0, 2])), [0.5, 1 / (1 + np.exp(-2))])
    assert task3a.softmax(np.array([[0, 0]])).tolist() == [[0.5, 0.5]]


# --- mutation gaps --------------------------------------------------------------------------

def test_accuracy_counts_a_probability_of_exactly_one_half_as_class_1():
    model = task2a.BinaryModel()  # zero weights: every probability is exactly 0.5
    X = np.hstack([np.zeros((4, 784)), np.ones((4, 1))])
    assert task2.calculate_accuracy(X, np.ones((4, 1)), model) == 1.0


# --- the sweep ------------------------------------------------------------------------------

# --- property tests -------------------------------------------------------------------------

ALLOWED = (ValueError, TypeError)
values = st.floats(-2, 2) | st.just(float("nan"))


@settings(max_examples=150, deadline=None)
@given(targets=hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=4),
                          elements=values | st.sampled_from([0.0, 1.0])),
       outputs=hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=4),
                          elements=values))
def test_losses_either_answer_or_raise_a_named_error(targets, outputs):
    for fn in (task2a.cross_entropy_loss, task3a.cross_entropy_loss):
        try:
            result = fn(targets, outputs)
        except ALLOWED as exc:
            assert any(word in str(exc) for word in ("targets", "outputs", "logits")), exc
        else:
            assert np.isfinite(result), (fn.__name__, targets, outputs)


@settings(max_examples=100, deadline=None)
@given(X=hnp.arrays(st.sampled_from([np.float64, np.float32, np.int64, np.uint8]),
                    hnp.array_shapes(max_dims=3, max_side=4)))
def test_pre_process_either_answers_or_raises_a_named_error(X):
    try:
        out = task2a.pre_process_images(X)
    except ALLOWED as exc:
        assert "X" in str(exc) or "pixels" in str(exc), exc
    else:
        assert out.shape == (X.shape[0], 785) and np.isfinite(out).all()
        assert out.min() >= -1 and out.max() <= 1


@settings(max_examples=100, deadline=None)
@given(z=hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=4),
                    elements=st.floats(-1e4, 1e4)),
       dtype=st.sampled_from([np.float64, np.float32, np.int64]))
def test_softmax_and_sigmoid_either_answer_or_raise(z, dtype):
    z = z.astype(dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = task2a.sigmoid(z)
        assert np.all((s >= 0) & (s <= 1))
        try:
            p = task3a.softmax(z)
        except ALLOWED as exc:
            assert "z" in str(exc)
        else:
            np.testing.assert_allclose(p.sum(axis=-1), 1, rtol=1e-5)
