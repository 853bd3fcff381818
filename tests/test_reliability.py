"""Every promise of the README's Reliability section, one test per class of input or fault:
divergence anywhere is TrainingDiverged with finite weights back;
out-of-domain and malformed inputs get a clear error naming the argument (never a silent wrong
answer or a raw crash); and the mutants that once slipped past the suite are caught."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import numpy as np
import pytest
from conftest import ROOT
from test_robustness import separable

import mnist
import task2
import task2a
import task3
import task3a
import trainer
import utils

# --- divergence, wherever it is found ----------------------------------------------------


def softmax_data(n=600):
    X, Y = separable(np.random.default_rng(0), n=n, k=10)
    return X[:500], Y[:500], X[500:], Y[500:]


def float_data(dtype, n=600):
    return tuple(a.astype(dtype) for a in softmax_data(n))


@pytest.mark.parametrize("early_stopping", [True, False])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_weights_blowing_up_are_training_diverged_with_the_best_weights_back(dtype,
                                                                           early_stopping):
    """lambda = 3e3 with learning rate 0.1 multiplies the weights by -299 each step: a logit,
    a loss or a weight stops being finite, in every float dtype, with early stopping on or
    off; the model then holds the weights of the best validation check, and the message says
    which step that was."""
    model = task3a.SoftmaxModel(3e3)
    model.w = model.w.astype(dtype)
    # patience longer than the run: early stopping would end a float64 run before it diverges
    t = task3.SoftmaxTrainer(model, 0.1, 32, True, *float_data(dtype),
                             early_stopping=early_stopping, patience=10 ** 6)
    with pytest.raises(trainer.TrainingDiverged, match=r"diverged at step \d+ \(epoch \d+\)"
                       r".*learning_rate=0\.1 is too large.*validation check at step (\d+)") \
            as info:
        t.train(400)
    best = int(info.value.args[0].rsplit("step ", 1)[1].rstrip("."))
    assert best == t.best_step
    assert np.isfinite(model.w).all() and model.w.dtype == dtype
    if dtype != np.float64:
        assert f"{np.dtype(dtype)} is too narrow" in str(info.value)


class Counting(task3.SoftmaxTrainer):
    """Poisons the weights after a given step (0-based): what a diverging step leaves."""

    def __init__(self, poison_after, value, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.poison_after, self.value, self.steps = poison_after, value, 0

    def train_step(self, X_batch, Y_batch):
        loss = super().train_step(X_batch, Y_batch)
        if self.steps == self.poison_after:
            self.model.w[0, 0] = self.value
        self.steps += 1
        return loss


@pytest.mark.parametrize("early_stopping", [True, False])
def test_nan_weights_are_training_diverged_with_the_last_best_check_back(early_stopping):
    """500 / 32 // 5 = 3 steps a check: the weights turn NaN at step 6, a check step."""
    model = task3a.SoftmaxModel(0.0)
    t = Counting(6, np.nan, model, 0.1, 32, True, *softmax_data(),
                 early_stopping=early_stopping)
    with pytest.raises(trainer.TrainingDiverged,
                       match=r"step 6 \(epoch 0\): a weight is not finite.*check at step 3\."):
        t.train(3)
    assert np.isfinite(model.w).all() and np.any(model.w != 0)  # the check at step 3


def test_divergence_before_any_check_restores_the_starting_weights():
    model = task3a.SoftmaxModel(0.0)
    start = np.random.default_rng(0).normal(0, 0.01, model.w.shape)
    model.w = start.copy()
    t = Counting(0, np.inf, model, 0.1, 32, True, *softmax_data(), early_stopping=False)
    with pytest.raises(trainer.TrainingDiverged, match="holds its starting weights"):
        t.train(3)
    np.testing.assert_array_equal(model.w, start)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logits_that_overflow_at_a_check_are_training_diverged(dtype):
    """Finite weights whose logits overflow on the validation images only (huge pixels there):
    the check's forward raises FloatingPointError, and that is divergence, not a ValueError."""
    X_train, Y_train, X_val, Y_val = float_data(dtype)
    X_val = X_val.copy()
    X_val[0, :16] = np.finfo(dtype).max / 2  # the 16 pixels that carry the classes
    model = task3a.SoftmaxModel(0.0)
    model.w = model.w.astype(dtype)
    t = task3.SoftmaxTrainer(model, 10.0, 32, True, X_train, Y_train, X_val, Y_val)
    with pytest.raises(trainer.TrainingDiverged, match=r"step 0 .*a logit w_k\^T x is not"):
        t.train(1)
    assert isinstance(t.model.w, np.ndarray) and not t.model.w.any()  # the starting zeros


def test_float16_logits_that_overflow_are_training_diverged():
    """float16 holds at most 65504: a pixel of 300 and weights of a few hundred overflow a
    logit without any weight being infinite; the forward reports it, the trainer stops."""
    X_train, Y_train, X_val, Y_val = float_data(np.float16)
    X_train, X_val = X_train * 300, X_val * 300
    model = task3a.SoftmaxModel(0.0)
    model.w = model.w.astype(np.float16)
    with pytest.raises(trainer.TrainingDiverged, match=r"float16 is too narrow"):
        task3.SoftmaxTrainer(model, 5.0, 32, True, X_train, Y_train, X_val, Y_val).train(50)
    assert np.isfinite(model.w).all()


def test_an_infinite_batch_loss_between_checks_names_the_loss_and_its_step():
    class Infinite(task2.LogisticTrainer):
        steps = 0

        def train_step(self, X_batch, Y_batch):
            loss = super().train_step(X_batch, Y_batch)
            self.steps += 1
            return np.inf if self.steps == 6 else loss  # step 5; checks at steps 0, 3, 6

    X, Y = separable(np.random.default_rng(0))
    with pytest.raises(trainer.TrainingDiverged,
                       match=r"step 5 \(epoch 0\): the batch loss is inf"):
        Infinite(task2a.BinaryModel(), 0.1, 32, True, X[:500], Y[:500], X[500:],
                 Y[500:]).train(2)


def test_a_read_only_data_folder_is_named_with_the_usual_advice(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".x.part"))

    monkeypatch.setattr(mnist.tempfile, "mkstemp", refuse)
    with pytest.raises(mnist.MNISTDownloadError) as info:
        mnist.load(tmp_path, mirrors=["http://127.0.0.1:9/"])
    message = str(info.value)
    assert f"missing from {tmp_path} and cannot be downloaded there" in message
    assert "not writable" in message and "MNIST_DIR" in message and ".part" not in message


# --- targets and weights outside the model's domain --------------------------------------

@pytest.mark.parametrize("bad", [0.5, 7.0, -1.0])
def test_binary_backward_refuses_targets_outside_0_1(bad):
    model = task2a.BinaryModel()
    X = np.ones((3, 785))
    Y = np.array([[1.0], [0.0], [bad]])
    with pytest.raises(ValueError, match=r"targets must be 0 or 1"):
        model.backward(X, model.forward(X), Y)


@pytest.mark.parametrize("row", [[0.5, 0.5] + [0] * 8, [1, 1] + [0] * 8, [0] * 10,
                                 [2, -1] + [0] * 8])
def test_softmax_backward_refuses_targets_that_are_not_one_hot(row):
    model = task3a.SoftmaxModel(0.0)
    X = np.ones((2, 785))
    Y = np.array([[1] + [0] * 9, row], dtype=float)
    with pytest.raises(ValueError, match=r"targets must be one-hot"):
        model.backward(X, model.forward(X), Y)


@pytest.mark.parametrize(("model", "w", "match"), [
    (task2a.BinaryModel(), np.zeros(785), r"model.w must be a 2-D float array \(785, K\), got"),
    (task2a.BinaryModel(), np.zeros((784, 1)), r"X must be \(N, 784\)"),
    (task3a.SoftmaxModel(0.0), np.zeros(785), r"model.w must be a 2-D float array \(785, 10\)"),
    (task3a.SoftmaxModel(0.0), np.zeros((784, 10)), r"X must be a NumPy array \(N, 784\)")])
def test_weights_of_the_wrong_shape_are_named(model, w, match):
    model.w = w
    with pytest.raises(ValueError, match=match):
        model.forward(np.ones((2, 785)))


# --- logits that are not finite, and empty batches ---------------------------------------

@pytest.mark.parametrize("z", [[[np.inf, 0.0]], [[-np.inf, -np.inf]], [[np.nan, 0.0]]])
def test_logits_that_are_not_finite_are_a_floating_point_error(z):
    with pytest.raises(FloatingPointError, match="a logit w_k\\^T x is not finite"):
        task3a.softmax(np.array(z))
    with pytest.raises(FloatingPointError, match="a logit w\\^T x is not finite"):
        task2a.sigmoid(np.array(z)[:, :1])


def test_losses_refuse_empty_batches():
    for fn, width in ((task2a.cross_entropy_loss, 1), (task3a.cross_entropy_loss, 10)):
        with np.errstate(all="raise"):
            with pytest.raises(ValueError, match="N >= 1"):
                fn(np.zeros((0, width)), np.zeros((0, width)))


def test_losses_take_integer_outputs_of_0_and_1():
    """Integer probabilities (a model that rounds) are probabilities too: a finite loss, not
    NumPy's 'data type ... not inexact'."""
    wrong = -np.log(np.finfo(np.float64).epsneg)  # a confident miss: ln(1 - p) at p = 1 - epsneg
    assert task2a.cross_entropy_loss(np.array([[1], [0]]), np.array([[1], [1]])) == wrong / 2
    assert task3a.cross_entropy_loss(np.eye(2, dtype=int), np.eye(2, dtype=int)) == 0


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"shuffle": 7}, "shuffle must be True, False or a numpy.random.Generator"),
    ({"shuffle": "yes"}, "shuffle must be True, False or a numpy.random.Generator"),
    ({"drop_last": 0}, "drop_last must be True or False"),
])
def test_batch_loader_names_a_bad_argument(kwargs, match):
    with pytest.raises(TypeError, match=f"{match}"):
        list(utils.batch_loader(np.zeros((8, 2)), np.zeros(8), 4, **kwargs))


# --- trainers' arguments ------------------------------------------------------------------

@pytest.mark.parametrize(("change", "error", "match"), [
    ({"early_stopping": "False"}, TypeError, "early_stopping must be True or False"),
    ({"model": None}, TypeError, "model must be a model instance .* got None"),
    ({"model": task3a.SoftmaxModel}, TypeError, "model must be .* got the class SoftmaxModel"),
    ({"X_val": np.zeros((0, 785)), "Y_val": np.zeros((0, 10))}, ValueError,
     r"X_val must be .* N >= 1.* got X_val \(0, 785\)"),
])
def test_trainer_arguments_are_named(change, error, match):
    X_train, Y_train, X_val, Y_val = softmax_data()
    args = {"model": task3a.SoftmaxModel(0.0), "X_val": X_val, "Y_val": Y_val, **change}
    kwargs = {k: v for k, v in change.items() if k == "early_stopping"}
    with pytest.raises(error, match=f"{match}"):
        task3.SoftmaxTrainer(args["model"], 0.1, 32, True, X_train, Y_train, args["X_val"],
                             args["Y_val"], **kwargs)


def test_a_plain_pytest_outside_the_environment_says_how_to_run_the_tests(monkeypatch):
    import conftest

    real = conftest.importlib.util.find_spec
    monkeypatch.setattr(conftest.importlib.util, "find_spec",
                        lambda name: None if name == "pytest_socket" else real(name))
    with pytest.raises(pytest.exit.Exception, match=r"python tasks.py test.*\.venv/bin/pytest"):
        conftest.pytest_configure(None)


# --- the source archive -------------------------------------------------------------------

@pytest.mark.slow
def test_the_source_zip_carries_the_data_and_loads_offline(tmp_path):
    result = subprocess.run([sys.executable, "tasks.py", "zip", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(tmp_path / "assignment1-source.zip") as archive:
        names = set(archive.namelist())
        assert {f"data/mnist/{stem}.gz" for stem in mnist.FILES} <= names
        assert {"tasks.py", "tools/report.typ", ".ci/run"} <= names
        archive.extractall(tmp_path / "unzipped")
    code = ("import mnist; X, Y, Xt, Yt = mnist.load(download_missing=False); "
            "print(X.shape, Yt.shape)")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "unzipped",
                            capture_output=True, text=True, timeout=120,
                            env={"PATH": ""})
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "(60000, 784) (10000,)"
