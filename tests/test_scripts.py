"""The course's scripts as graders and students run them: beside another group's task2a.py and
task3a.py written to the course's API, from a terminal with bad settings, and side by side in
worker processes with the same results as one after another."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

import task2
import task3
from tools.parallel import side_by_side

#: A group's own task2a.py and task3a.py, written to the course's API and nothing more: the
#: names, signatures and shapes of the starter code (no input checks, no extras).
COURSE_API = {
    "task2a.py": '''
        import numpy as np
        import utils


        def pre_process_images(X):
            X = X / 127.5 - 1
            return np.concatenate([X, np.ones((X.shape[0], 1))], axis=1)


        def cross_entropy_loss(targets, outputs):
            outputs = np.clip(outputs, 1e-12, 1 - 1e-12)
            return -np.mean(targets * np.log(outputs) + (1 - targets) * np.log(1 - outputs))


        class BinaryModel:
            def __init__(self):
                self.I = 785
                self.w = np.zeros((self.I, 1))
                self.grad = None

            def forward(self, X):
                return 1 / (1 + np.exp(-X.dot(self.w)))

            def backward(self, X, outputs, targets):
                self.grad = -X.T.dot(targets - outputs) / X.shape[0]

            def zero_grad(self):
                self.grad = None
        ''',
    "task3a.py": '''
        import numpy as np
        import utils
        from task2a import pre_process_images


        def cross_entropy_loss(targets, outputs):
            return -np.sum(targets * np.log(np.clip(outputs, 1e-300, 1))) / targets.shape[0]


        class SoftmaxModel:
            def __init__(self, l2_reg_lambda):
                self.I = 785
                self.num_outputs = 10
                self.w = np.zeros((self.I, self.num_outputs))
                self.grad = None
                self.l2_reg_lambda = l2_reg_lambda

            def forward(self, X):
                z = X.dot(self.w)
                e = np.exp(z - z.max(axis=1, keepdims=True))
                return e / e.sum(axis=1, keepdims=True)

            def backward(self, X, outputs, targets):
                self.grad = -X.T.dot(targets - outputs) / X.shape[0] + self.l2_reg_lambda * self.w

            def zero_grad(self):
                self.grad = None


        def one_hot_encode(Y, num_classes):
            encoded = np.zeros((Y.shape[0], num_classes))
            encoded[np.arange(Y.shape[0]), Y.reshape(-1)] = 1
            return encoded
        ''',
}


def script_env(**extra):
    env = {**os.environ, "MPLBACKEND": "Agg", "MNIST_DIR": str(ROOT / "data" / "mnist"), **extra}
    env.pop("PYTHONPATH", None)
    return env


@pytest.mark.slow
def test_our_scripts_run_with_another_groups_course_api_models(tmp_path):
    """A TA mixing files: our task2.py, task3.py, trainer.py and utils.py beside a group's own
    task2a.py and task3a.py that offer only the course's names. Ours use nothing else."""
    for name in ("task2.py", "task3.py", "trainer.py", "utils.py", "mnist.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    for name, source in COURSE_API.items():
        (tmp_path / name).write_text(textwrap.dedent(source), encoding="utf-8")
    for command, printed in ((["task2.py", "--out", "figures2"], "Task 2d: final"),
                             (["task3.py", "--epochs", "1", "--out", "figures3"], "Task 3d")):
        result = subprocess.run([sys.executable, *command], cwd=tmp_path, env=script_env(),
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        assert printed in result.stdout
    assert len(list((tmp_path / "figures2").glob("*.png"))) == 3
    assert len(list((tmp_path / "figures3").glob("*.png"))) == 5


@pytest.mark.slow
@pytest.mark.parametrize("script", ["task2.py", "task3.py"])
def test_a_bad_mnist_dir_or_out_folder_is_one_line(script, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    for extra, args, what in ((tmp_path / "mistyped", [], "MNIST_DIR="),
                              (None, ["--out", str(a_file)], "cannot make the folder")):
        env = script_env(**({"MNIST_DIR": str(extra)} if extra else {}))
        result = subprocess.run([sys.executable, str(ROOT / script), *args], env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"{script}: {what}")
    assert a_file.read_text() == "mine"


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="| head and SIGPIPE are POSIX")
def test_piped_into_head_the_script_ends_quietly():
    result = subprocess.run(f'"{sys.executable}" "{ROOT / "task2.py"}" --out /dev/null/x | head -1',
                            shell=True, env=script_env(), capture_output=True, text=True,
                            timeout=120)
    assert result.stderr.startswith("task2.py: cannot make the folder /dev/null/x")
    result = subprocess.run(f'"{sys.executable}" "{ROOT / "task2.py"}" | head -1', shell=True,
                            env=script_env(), capture_output=True, text=True, timeout=600)
    assert result.stdout.startswith("Train shape") and result.stdout.count("\n") == 1
    assert result.stderr == ""


@pytest.mark.slow
def test_runs_side_by_side_equal_runs_one_after_another():
    """The report's runs in worker processes give exactly what they give in one process, one
    after another with one BLAS thread; a plain call, with the machine's BLAS threads, agrees
    to rounding (BLAS splits a product between threads, which may round a last bit apart)."""
    jobs = [(task3.train, {"l2_reg_lambda": 0.2, "num_epochs": 1}),
            (task2.train, {"shuffle": True, "num_epochs": 2, "early_stopping": False})]
    parallel, sequential = side_by_side(jobs, processes=2), side_by_side(jobs, processes=1)
    plain = [function(**kwargs) for function, kwargs in jobs]
    for a, b, c in zip(parallel, sequential, plain, strict=True):
        assert a.train_history == b.train_history and a.val_history == b.val_history
        assert a.final == b.final and a.early_stop_epoch == b.early_stop_epoch
        np.testing.assert_array_equal(a.model.w, b.model.w)
        np.testing.assert_allclose(a.model.w, c.model.w, rtol=1e-10, atol=1e-14)
        assert a.val_history["accuracy"] == c.val_history["accuracy"]
        np.testing.assert_allclose(list(a.train_history["loss"].values()),
                                   list(c.train_history["loss"].values()), rtol=1e-12)


#: Numbers the report takes from the assignment, not from a run (splits, budgets, thresholds).
ASSIGNMENT_NUMBERS = {"0", "1", "10", "20", "50", "100", "500", "0.5", "785", "7850", "10000",
                      "20000"}
NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?(?![A-Za-z\d])")


def numbers(text: str) -> set[str]:
    """The numbers a text shows, without thousands separators; LaTeX maths (settings such as
    lambda = 2, or 10^{-6}) left out."""
    text = re.sub(r"\$[^$]*\$", " ", text)
    return {match.replace(",", "") for match in NUMBER.findall(text)}


@pytest.mark.slow
def test_every_number_the_report_gives_is_one_the_handin_scripts_print(executed_notebook,
                                                                        tmp_path):
    """The report's Tasks 2a to 4e, from the session's (quick) build, against what the six
    hand-in files print when run as a grader runs them (task3.py with the quick build's
    epochs): each result in the report's text is printed by the scripts, digit for digit."""
    nb, products = executed_notebook
    cells = nb.cells[next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
                          and "# Task 2:" in "".join(c.source)):]
    report = set().union(*(numbers(str(output.get("data", {}).get("text/markdown", "")))
                           for cell in cells for output in cell.get("outputs", [])))
    epochs = json.loads((products / "metrics.json").read_text())["epochs_softmax"]
    for name in ("task2.py", "task2a.py", "task3.py", "task3a.py", "trainer.py", "utils.py",
                 "mnist.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    printed = set()
    for command in (["task2a.py"], ["task3a.py"], ["task2.py"], ["task3.py", "--epochs",
                                                                  str(epochs)]):
        result = subprocess.run([sys.executable, *command, *(["--out", "figures"] if
                                                            "a.py" not in command[0] else [])],
                                cwd=tmp_path, env=script_env(), capture_output=True,
                                text=True, timeout=900)
        assert result.returncode == 0, result.stderr[-2000:]
        printed |= numbers(result.stdout)
    assert len(report - ASSIGNMENT_NUMBERS) >= 30  # the report's results, not a few constants
    unprinted = report - ASSIGNMENT_NUMBERS - {str(epochs)} - printed
    assert unprinted == set(), f"numbers in the report the hand-in's scripts do not print: " \
        f"{sorted(unprinted)}"


PARALLEL_SLEEPERS = """
import sys
sys.path[:0] = [{root!r}, {tests!r}]
from helpers import sleep
from tools.parallel import side_by_side
if __name__ == "__main__":
    try:
        side_by_side([(sleep, {{"seconds": 60, "started": {started!r}}})] * 3, processes=2)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
"""


def running_jobs(started: Path, count: int) -> list:
    """The worker processes that have started a job, once ``count`` of them have."""
    import psutil

    for _ in range(400):
        pids = [int(path.name) for path in started.iterdir()]
        if len(pids) >= count:
            return [psutil.Process(pid) for pid in pids]
        time.sleep(0.05)
    raise AssertionError(f"{count} jobs did not start")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="signals to one process are POSIX")
@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGKILL"])
def test_ctrl_c_or_a_killed_parent_ends_every_worker(signal_name, tmp_path):
    """Ctrl-C (SIGINT to the parent alone, as a Jupyter interrupt sends it on Windows) raises
    KeyboardInterrupt at once and ends the workers; a parent killed outright leaves workers
    that end themselves."""
    import psutil

    code = PARALLEL_SLEEPERS.format(root=str(ROOT), tests=str(ROOT / "tests"),
                                    started=str(tmp_path))
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    workers = running_jobs(tmp_path, 2)  # two workers in the middle of a 60-second job
    started = time.monotonic()
    process.send_signal(getattr(signal, signal_name))
    out, _ = process.communicate(timeout=30)
    if signal_name == "SIGINT":
        assert out.strip() == "interrupted" and process.returncode == 0
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == [] and time.monotonic() - started < 10
