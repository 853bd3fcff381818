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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weights_blowing_up_are_training_diverged_with_finite_weights_back(dtype):
    """lambda = 3e3 with learning rate 0.1 multiplies the weights by -299 each step: they
    overflow on a step that may also be a check step, in both dtypes (early stopping off: it
    would stop the float64 run before the overflow)."""
    for factory in (lambda: [task3a.SoftmaxModel(3e3)],
                    lambda: [task3a.SoftmaxModel(0.0), task3a.SoftmaxModel(3e3)]):
        models = factory()
        if len(models) == 1:
            t = task3.SoftmaxTrainer(models[0], 0.1, 32, True, *softmax_data(), dtype=dtype,
                                     early_stopping=False)
        else:
            t = task3.SoftmaxSweepTrainer(models, 0.1, 32, True, *softmax_data(), dtype=dtype,
                                          early_stopping=False)
        with pytest.raises(trainer.TrainingDiverged, match=r"diverged at step \d+"):
            t.train(400)
        for m in models:
            assert np.isfinite(m.w).all() and m.w.dtype == np.float64


def test_nan_logits_at_a_check_are_training_diverged_not_a_value_error():
    """A step that also is a check step leaves NaN weights: the check's accuracies must not
    escape as ValueError."""
    class Poisoning(task3.SoftmaxTrainer):
        def train_step(self, X_batch, Y_batch):
            loss = super().train_step(X_batch, Y_batch)
            if self.global_step == 6:  # 500 / 32 // 5 = 3 steps a check: 6 is a check step
                self.model.w[:] = np.nan
            return loss

    model = task3a.SoftmaxModel(0.0)
    with pytest.raises(trainer.TrainingDiverged, match="step 6: a weight is not finite"):
        Poisoning(model, 0.1, 32, True, *softmax_data()).train(3)
    assert np.isfinite(model.w).all() and np.any(model.w != 0)  # the check at step 3


def test_a_graders_validation_step_that_refuses_nan_is_training_diverged():
    class Graders(task3.SoftmaxTrainer):
        def train_step(self, X_batch, Y_batch):
            loss = super().train_step(X_batch, Y_batch)
            if self.global_step == 3:  # a check step: the check sees NaN logits first
                self.model.w[0, 0] = np.nan
            return loss

        def validation_step(self):  # the course's way: accuracy via argmax of forward
            return (0.5, task3.calculate_accuracy(self.X_train, self.Y_train, self.model),
                    task3.calculate_accuracy(self.X_val, self.Y_val, self.model))

    model = task3a.SoftmaxModel(0.0)
    with pytest.raises(trainer.TrainingDiverged) as info:
        Graders(model, 0.1, 32, True, *softmax_data()).train(3)
    assert isinstance(info.value.__cause__, ValueError)  # what the step raised, kept
    assert np.isfinite(model.w).all()


def test_an_infinite_batch_loss_between_checks_names_the_loss_and_its_step():
    class Infinite(task2.LogisticTrainer):
        def train_step(self, X_batch, Y_batch):
            loss = super().train_step(X_batch, Y_batch)
            return np.inf if self.global_step == 5 else loss  # checks at steps 0, 3, 6

    X, Y = separable(np.random.default_rng(0))
    with pytest.raises(trainer.TrainingDiverged, match=r"step 5: the batch loss \(inf\)"):
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
    model = task3a.SoftmaxModel()
    X = np.ones((2, 785))
    Y = np.array([[1] + [0] * 9, row], dtype=float)
    with pytest.raises(ValueError, match=r"targets must be one-hot"):
        model.backward(X, model.forward(X), Y)


@pytest.mark.parametrize(("model", "w"), [(task2a.BinaryModel(), np.zeros(785)),
                                          (task2a.BinaryModel(), np.zeros((785, 2))),
                                          (task3a.SoftmaxModel(), np.zeros(785)),
                                          (task3a.SoftmaxModel(), np.zeros((784, 10)))])
def test_weights_of_the_wrong_shape_are_named(model, w):
    model.w = w
    with pytest.raises(ValueError, match=r"model.w must be a 2-D float array \(785, (1|K)\), got"):
        model.forward(np.ones((2, 785)))


# --- infinite and empty logits -----------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_of_infinite_logits_is_its_limit(dtype):
    z = np.array([[np.inf, 0, 1], [np.inf, np.inf, 0], [-np.inf, 0, 0], [1, 2, 3]], dtype=dtype)
    with np.errstate(all="raise"):
        p = task3a.softmax(z)
    assert p.dtype == dtype
    np.testing.assert_allclose(p[:3], [[1, 0, 0], [0.5, 0.5, 0], [0, 0.5, 0.5]])
    np.testing.assert_allclose(p[3], task3a.softmax(z[3:].astype(np.float64))[0], rtol=1e-6)


@pytest.mark.parametrize(("z", "match"), [
    (np.array([[-np.inf, -np.inf]]), "only -inf"),
    (np.array([[np.nan, 0.0]]), "NaN"),
    (np.zeros((3, 0)), r"K >= 1, got shape \(3, 0\)"),
])
def test_softmax_without_an_answer_is_a_clear_error(z, match):
    with pytest.raises(ValueError, match=f"{match}"):
        task3a.softmax(z)


def test_losses_refuse_empty_batches():
    for fn, width in ((task2a.cross_entropy_loss, 1), (task3a.cross_entropy_loss, 10)):
        with np.errstate(all="raise"):
            with pytest.raises(ValueError, match="hold no examples"):
                fn(np.zeros((0, width)), np.zeros((0, width)))


# --- utils' arguments ---------------------------------------------------------------------

@pytest.mark.parametrize(("args", "error", "match"), [
    ((2, 11), ValueError, "class2 = 11 does not occur in Y"),
    ((2, 9), ValueError, "class2 = 9 does not occur in Y"),  # absent from these labels
    ((2, 3.0), TypeError, "class2 must be an integer"),
    (("2", 3), TypeError, "class1 must be an integer"),
    ((True, 3), TypeError, "class1 must be an integer"),
])
def test_binary_prune_dataset_refuses_classes_it_cannot_keep(args, error, match):
    X, Y = np.zeros((6, 2)), np.array([2, 3, 5, 2, 3, 1])
    with pytest.raises(error, match=f"{match}"):
        utils.binary_prune_dataset(*args, X, Y)


def test_binary_prune_dataset_refuses_one_hot_and_0d_targets():
    with pytest.raises(ValueError, match=r"Y must hold integer labels.*\(6, 2\)"):
        utils.binary_prune_dataset(2, 3, np.zeros((6, 2)), np.zeros((6, 2)))
    with pytest.raises(ValueError, match="one target per image"):
        utils.binary_prune_dataset(2, 3, np.zeros((6, 2)), np.array(3))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"rng": 7}, "rng must be a numpy.random.Generator"),
    ({"shuffle": "yes"}, "shuffle must be True or False"),
    ({"drop_last": 0}, "drop_last must be True or False"),
])
def test_batch_loader_names_a_bad_argument(kwargs, match):
    with pytest.raises(TypeError, match=f"{match}"):
        list(utils.batch_loader(np.zeros((8, 2)), np.zeros(8), 4, **kwargs))


@pytest.mark.parametrize("history", [{0: 1.0, 1: None}, {0: "0.5"}, {0: {"loss": 1.0}},
                                     {"a": 1.0}])
def test_plot_loss_refuses_what_it_would_draw_wrong(history):
    with pytest.raises(TypeError, match=r"every (step|value) of the history must be"):
        utils.plot_loss(history)


# --- trainers' arguments ------------------------------------------------------------------

@pytest.mark.parametrize(("change", "error", "match"), [
    ({"early_stopping": "False"}, TypeError, "early_stopping must be True or False"),
    ({"progress": 1}, TypeError, "progress must be True or False"),
    ({"model": None}, TypeError, "model must be a model instance .* got None"),
    ({"model": task3a.SoftmaxModel}, TypeError, "model must be .* got the class SoftmaxModel"),
    ({"X_val": np.zeros((0, 785)), "Y_val": np.zeros((0, 10))}, ValueError,
     r"X_val must be .* N >= 1, got X_val \(0, 785\)"),
])
def test_trainer_arguments_are_named(change, error, match):
    X_train, Y_train, X_val, Y_val = softmax_data()
    args = {"model": task3a.SoftmaxModel(), "X_val": X_val, "Y_val": Y_val, **change}
    kwargs = {k: v for k, v in change.items() if k in ("early_stopping", "progress")}
    with pytest.raises(error, match=f"{match}"):
        task3.SoftmaxTrainer(args["model"], 0.1, 32, True, X_train, Y_train, args["X_val"],
                             args["Y_val"], **kwargs)


def test_the_sweep_refuses_models_it_would_train_wrong():
    class OwnBackward(task3a.SoftmaxModel):
        def backward(self, X, outputs, targets):
            super().backward(X, outputs, targets)
            self.grad *= 2

    data = softmax_data()
    with pytest.raises(TypeError, match=r"list of task3a.SoftmaxModel.*SoftmaxTrainer"):
        task3.SoftmaxSweepTrainer([task3a.SoftmaxModel(), OwnBackward()], 0.1, 32, True, *data)
    bad = task3a.SoftmaxModel()
    bad.w = np.zeros(785)
    with pytest.raises(ValueError, match=r"model 1's w has shape \(785,\)"):
        task3.SoftmaxSweepTrainer([task3a.SoftmaxModel(), bad], 0.1, 32, True, *data)
    swapped = task3a.SoftmaxModel()
    sweep = task3.SoftmaxSweepTrainer([task3a.SoftmaxModel(), swapped], 0.1, 32, True, *data)
    swapped.w = np.zeros((785, 5))  # after construction
    with pytest.raises(ValueError, match=r"model 1's w has shape \(785, 5\)"):
        sweep.train(1)


def test_progress_without_tqdm_is_one_line_on_stderr(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # as if tqdm were not installed
    X, Y = separable(np.random.default_rng(0))
    task2.LogisticTrainer(task2a.BinaryModel(), 0.1, 32, True, X[:500], Y[:500], X[500:],
                          Y[500:], progress=True).train(3)
    err = capsys.readouterr().err
    assert "epoch 3/3" in err and "\n" not in err


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


# --- mutants that once slipped past the suite --------------------------------------------

def test_sweep_without_early_stopping_ends_with_the_weights_and_accuracies_of_separate_runs():
    """Final weights (nothing restored hides a missing copy-back) and both accuracy histories
    (a sweep measuring training accuracy on the wrong images differs)."""
    data = softmax_data(900)
    lambdas = [0.0, 0.5, 0.05]
    models = [task3a.SoftmaxModel(lam) for lam in lambdas]
    histories = task3.SoftmaxSweepTrainer(models, 0.5, 50, True, *data,
                                          early_stopping=False).train(6)
    for lam, model, (train_h, val_h) in zip(lambdas, models, histories, strict=True):
        alone = task3a.SoftmaxModel(lam)
        train_alone, val_alone = task3.SoftmaxTrainer(alone, 0.5, 50, True, *data,
                                                      early_stopping=False).train(6)
        np.testing.assert_allclose(model.w, alone.w, rtol=1e-4, atol=1e-6)
        for got, want in ((train_h, train_alone), (val_h, val_alone)):
            assert list(got["accuracy"]) == list(want["accuracy"])
            np.testing.assert_allclose(list(got["accuracy"].values()),
                                       list(want["accuracy"].values()), atol=1e-12)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_python_task3_shows_progress_in_a_terminal_and_none_in_a_log(tmp_path):
    import fcntl
    import os
    import pty
    import select
    import struct
    import termios

    command = [sys.executable, str(ROOT / "task3.py"), "--epochs", "2", "--out", str(tmp_path)]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    master, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    child = subprocess.Popen(command, stderr=terminal, stdout=subprocess.DEVNULL, env=env)
    os.close(terminal)
    shown = b""
    while child.poll() is None or select.select([master], [], [], 0)[0]:
        if select.select([master], [], [], 0.2)[0]:
            try:
                shown += os.read(master, 4096)
            except OSError:
                break
    os.close(master)
    assert child.wait() == 0 and b"SoftmaxSweepTrainer" in shown and b"epoch" in shown
    logged = subprocess.run(command, capture_output=True, env=env, timeout=300)
    assert logged.returncode == 0 and b"SoftmaxSweepTrainer" not in logged.stderr
