"""The one fast path and the marked code (issue 22): trainer.FastEvaluation gives the course's
validation_step numbers; the report's settings (task2.FAST) and the course's computation give
the same results; the sweep trains each model as SoftmaxTrainer would alone; the starter's
__main__ checks run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import task2
import task2a
import task3
import task3a

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data_2():
    return task2.load_data()


@pytest.fixture(scope="module")
def data_3():
    return task3.load_data()


def draws(shape, rng):
    """Zeros, small and larger normal weights: the regimes training passes through."""
    return [np.zeros(shape), rng.normal(0, 0.01, shape), rng.normal(0, 0.3, shape)]


def assert_fast_equals_course(t, weights, rel=1e-9):
    """For each w: FastEvaluation's loss within ``rel`` of validation_step's, accuracies equal."""
    for w in weights:
        t.model.w = w
        course, fast = t.validation_step(), t._validate()
        assert fast[0] == pytest.approx(course[0], rel=rel)
        assert fast[1:] == course[1:]


@pytest.mark.slow
def test_fast_evaluation_equals_the_course_validation_step_binary(data_2):
    t = task2.LogisticTrainer(task2a.BinaryModel(), 0.05, 128, False, *data_2,
                              fast_validation=True)
    assert_fast_equals_course(t, draws((785, 1), np.random.default_rng(0)))


@pytest.mark.slow
def test_fast_evaluation_equals_the_course_validation_step_softmax_and_sweep(data_3):
    t = task3.SoftmaxTrainer(task3a.SoftmaxModel(), 0.01, 128, True, *data_3,
                             fast_validation=True)
    assert_fast_equals_course(t, draws((785, 10), np.random.default_rng(1)))
    models = [task3a.SoftmaxModel(lam) for lam in (0.0, 2.0, 0.02)]
    sweep = task3.SoftmaxSweepTrainer(models, 0.01, 128, True, *data_3, fast_validation=True)
    sweep.model.w = np.random.default_rng(2).normal(0, 0.05, (785, 30))
    course, fast = sweep.validation_step(), sweep._validate()
    np.testing.assert_allclose(fast[0], course[0], rtol=1e-9)
    np.testing.assert_array_equal(fast[1], course[1])
    np.testing.assert_array_equal(fast[2], course[2])
    for index, model in enumerate(sweep.model.unstacked()):  # each model's own numbers
        alone = task3.SoftmaxTrainer(model, 0.01, 128, True, *data_3)
        assert alone.validation_step()[0] == pytest.approx(course[0][index], rel=1e-12)


@pytest.mark.slow
def test_the_report_settings_print_the_course_numbers_task2(data_2):
    """task2.FAST on and off: the same early-stop epoch and, to the digits the report prints,
    the same losses and accuracies."""
    for kwargs in ({"num_epochs": task2.NUM_EPOCHS, "early_stopping": False},
                   {"num_epochs": task2.EPOCH_BUDGET, "early_stopping": True}):
        fast = task2.train(data_2, shuffle=False, fast=True, **kwargs)
        course = task2.train(data_2, shuffle=False, fast=False, **kwargs)
        assert fast.trainer.early_stop_epoch == course.trainer.early_stop_epoch
        for key in ("train_loss", "val_loss"):
            assert f"{fast.metrics[key]:.4f}" == f"{course.metrics[key]:.4f}"
        for key in ("train_accuracy", "val_accuracy"):
            assert f"{100 * fast.metrics[key]:.2f}" == f"{100 * course.metrics[key]:.2f}"


@pytest.mark.slow
def test_the_report_settings_print_the_course_numbers_task3(data_3):
    fast = task3.train_sweep(data_3, (0.0, 2.0), 2, fast=True)
    course = task3.train_sweep(data_3, (0.0, 2.0), 2, fast=False)
    for a, b in zip(fast, course, strict=True):
        for key in ("train_loss", "val_loss"):
            assert f"{a.metrics[key]:.4f}" == f"{b.metrics[key]:.4f}"
        for key in ("train_accuracy", "val_accuracy"):
            assert f"{100 * a.metrics[key]:.2f}" == f"{100 * b.metrics[key]:.2f}"


@pytest.mark.slow
@pytest.mark.parametrize("fast_validation", [False, True])
def test_the_sweep_trains_each_model_as_it_would_train_alone(data_3, fast_validation):
    lambdas = (0.0, 2.0, 0.02)
    small = tuple(a[:2560] for a in data_3[:2]) + tuple(a[:1000] for a in data_3[2:])
    models = [task3a.SoftmaxModel(lam) for lam in lambdas]
    histories = task3.SoftmaxSweepTrainer(models, 0.01, 128, True, *small,
                                          fast_validation=fast_validation).train(2)
    for lam, model, (train_h, val_h) in zip(lambdas, models, histories, strict=True):
        alone = task3a.SoftmaxModel(lam)
        alone_train, alone_val = task3.SoftmaxTrainer(
            alone, 0.01, 128, True, *small, early_stopping=False,
            fast_validation=fast_validation).train(2)
        np.testing.assert_allclose(model.w, alone.w, rtol=1e-9, atol=1e-12)
        for got, want in ((train_h, alone_train), (val_h, alone_val)):
            for key in ("loss", "accuracy"):
                assert list(got[key]) == list(want[key])
                np.testing.assert_allclose(list(got[key].values()), list(want[key].values()),
                                           rtol=1e-9)


def test_a_sweep_of_one_model_works(data_3):
    small = tuple(a[:640] for a in data_3[:2]) + tuple(a[:200] for a in data_3[2:])
    (run,) = task3.train_sweep(small, (0.5,), 1)
    assert run.l2_reg_lambda == 0.5 and len(run.val_history["loss"]) == 5


@pytest.mark.slow
@pytest.mark.parametrize("script", ["task2a.py", "task3a.py"])
def test_the_starters_main_checks_run(script):
    result = subprocess.run([sys.executable, str(ROOT / script)], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("passed") == 2, result.stdout


@pytest.mark.parametrize("classes", [1, 10])
def test_fast_evaluation_with_constant_rare_and_dense_features(classes):
    """Constant, rare (departing in a few images, the first image among them) and dense
    features, as S, the row of ones and the small product split them: the course's numbers."""
    rng = np.random.default_rng(5)
    X = np.full((300, 785), -1.0)
    X[:, -1] = 1
    X[:, :200] = rng.uniform(-1, 1, (300, 200))  # dense
    X[rng.integers(0, 300, 40), rng.integers(200, 700, 40)] = 0.5  # rare, in a few images
    X[0, 700:720] = 0.25  # departs only in the first image, the reference
    labels = rng.integers(0, classes if classes > 1 else 2, 300)
    Y = (np.eye(10)[labels] if classes > 1 else labels[:, None].astype(float))
    model = task3a.SoftmaxModel() if classes > 1 else task2a.BinaryModel()
    trainer_class = task3.SoftmaxTrainer if classes > 1 else task2.LogisticTrainer
    t = trainer_class(model, 0.01, 100, False, X[:200], Y[:200], X[200:], Y[200:],
                      fast_validation=True)
    assert 0 < len(t._fast.dense) < 784 and t._fast.moved.start < 200 < t._fast.moved.stop
    assert_fast_equals_course(t, draws(model.w.shape, rng), rel=1e-12)
