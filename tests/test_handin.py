"""The hand-in: exactly the course's six files zipped with the PDF beside them; whatever would
cost points refused (a PDF stale for any file its run read); only the tool's own files
replaced; the unzipped six files run beside a course-style mnist.py."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

from tools import cache, cli, handin, handin_check, output, report
from tools.cli import StopSignals, UserError
from tools.config import HANDIN_FILES, Project


@pytest.fixture
def project(tmp_path):
    """A checkout with the real hand-in files, notebook and title page."""
    root = tmp_path / "checkout"
    root.mkdir()
    for name in (*HANDIN_FILES, "mnist.py", "assignment1.ipynb", "report.toml"):
        shutil.copy2(ROOT / name, root / name)
    (root / "data").mkdir()
    (root / "data" / "table.csv").write_text("a,b\n", encoding="utf-8")
    return Project(root)


def fresh_pdf(project, content=b"%PDF-1.7 test", **record):
    """A PDF and the record the report's build writes beside it, from today's sources (its
    run read data/table.csv besides the hand-in's files)."""
    project.build.mkdir(parents=True, exist_ok=True)
    (project.build / "assignment1.pdf").write_bytes(content)
    sources = {name: cache.input_digest(project.root / name)
               for name in (*report.ALWAYS_SOURCES, "data/table.csv", "assignment1.ipynb",
                            "report.toml")}
    record = {"builder": report.BUILDER, "title": "Group 42", "authors": ["Ada Lovelace"],
              "placeholder": False, "quick": False, "pdf_sha256": cli.sha256(content),
              "sources": sources, **record}
    (project.build / "assignment1.json").write_text(json.dumps(record))


def make(project):
    with StopSignals() as signals:
        return handin.make_handin(project, signals, {})


def test_the_handin_is_exactly_the_course_six_files_and_the_pdf_beside_them(project):
    fresh_pdf(project)
    out = make(project)
    with zipfile.ZipFile(out / "assignment_code.zip") as archive:
        assert sorted(archive.namelist()) == sorted(HANDIN_FILES)  # at the root, nothing else
    assert (out / "assignment1.pdf").read_bytes() == b"%PDF-1.7 test"
    assert sorted(p.name for p in out.iterdir()) == [".handin-record.json", "assignment1.pdf",
                                                     "assignment_code.zip"]


def test_every_tool_uses_the_one_list_of_the_handin_files():
    sources = " ".join(p.read_text(encoding="utf-8") for p in
                       [*(ROOT / "tools").glob("*.py"), ROOT / "tasks.py"])
    assert sources.count('"trainer.py"') == 1  # config.HANDIN_FILES


def edit(project, name):
    with open(project.root / name, "a", encoding="utf-8") as file:
        file.write("\n# edited\n")


@pytest.mark.parametrize(("make_pdf", "expected"), [
    (lambda project: None, "missing: run `python tasks.py report`"),
    (lambda project: fresh_pdf(project, b""), "is empty"),
    (lambda project: fresh_pdf(project, b"<!DOCTYPE html><html>report</html>"), "not a PDF"),
    (lambda project: (fresh_pdf(project), (project.build / "assignment1.json").unlink()),
     "no build record"),
    (lambda project: fresh_pdf(project, pdf_sha256="0" * 64),
     "not the PDF `python tasks.py report` built"),
    (lambda project: fresh_pdf(project, quick=True), "reduced run"),
    (lambda project: fresh_pdf(project, placeholder=True), "placeholder group or names"),
    *[(lambda project, name=name: (fresh_pdf(project), edit(project, name)),
       f"other versions of {name}")
      for name in (*HANDIN_FILES, "mnist.py", "assignment1.ipynb", "report.toml",
                   "data/table.csv")],
])
def test_what_would_cost_points_is_refused_and_no_old_handin_is_left(project, make_pdf,
                                                                     expected):
    fresh_pdf(project)
    make(project)  # an earlier, good hand-in
    for name in ("assignment1.pdf", "assignment1.json"):
        (project.build / name).unlink()
    make_pdf(project)
    with pytest.raises(UserError, match=expected) as info:
        make(project)
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in (project.build / "handin").iterdir()) == []


def test_a_record_that_misses_a_handin_file_is_stale(project):
    fresh_pdf(project)
    record = json.loads((project.build / "assignment1.json").read_text())
    del record["sources"]["utils.py"]
    (project.build / "assignment1.json").write_text(json.dumps(record))
    with pytest.raises(UserError, match=r"other versions of utils\.py"):
        make(project)


@pytest.mark.parametrize("kind", ["file", "link"])
def test_a_handin_folder_that_is_not_one_is_named_with_the_fix(project, kind):
    fresh_pdf(project)
    target = project.build / "handin"
    if kind == "file":
        target.write_text("mine")
    else:
        (project.build / "elsewhere").mkdir()
        target.symlink_to(project.build / "elsewhere")
    with pytest.raises(UserError) as info:
        make(project)
    assert str(info.value) == (f"{target} is a {kind}, not a folder: the hand-in is written "
                               f"into a folder of that name; move or delete it, then `python "
                               f"tasks.py handin` again.")
    assert target.is_symlink() or target.read_text() == "mine"


@pytest.mark.parametrize("name", ["assignment1.pdf", "assignment_code.zip"])
@pytest.mark.parametrize("kind", ["link", "folder", "file"])
def test_a_users_file_where_a_product_goes_is_refused_and_left_alone(project, tmp_path, name,
                                                                     kind):
    fresh_pdf(project)
    make(project)  # an earlier hand-in: removed, as after any refusal
    thesis = tmp_path / "thesis.pdf"
    thesis.write_bytes(b"my thesis")
    path = project.build / "handin" / name
    path.unlink()
    if kind == "link":
        path.symlink_to(thesis)
    elif kind == "folder":
        (path / "mine").mkdir(parents=True)
    else:
        path.write_bytes(b"%PDF- my own edit")
    with pytest.raises(UserError, match=r"this build|not what"):
        make(project)
    assert thesis.read_bytes() == b"my thesis"
    assert [p.name for p in (project.build / "handin").iterdir()] == [name]  # no half set
    assert path.is_symlink() or path.is_dir() or path.read_bytes() == b"%PDF- my own edit"


def test_a_second_handin_replaces_the_first(project):
    fresh_pdf(project, b"%PDF-1.7 first")
    make(project)
    fresh_pdf(project, b"%PDF-1.7 second")
    out = make(project)
    assert (out / "assignment1.pdf").read_bytes() == b"%PDF-1.7 second"


@pytest.mark.parametrize("earlier", [True, False])
def test_a_full_disk_leaves_the_previous_set_or_none_and_says_which(project, monkeypatch,
                                                                    earlier):
    fresh_pdf(project, b"%PDF-1.7 first")
    if earlier:
        make(project)
    out = project.build / "handin"
    before = {p.name: p.read_bytes() for p in out.iterdir()} if earlier else {}
    fresh_pdf(project, b"%PDF-1.7 second")

    def full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(UserError, match="the disk is full") as info:
        make(project)
    monkeypatch.undo()
    assert str(info.value).endswith("keeps the previous hand-in, unchanged." if earlier
                                    else "holds no hand-in.")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not (out / ".next").exists()


def test_a_rename_failing_in_the_swap_keeps_the_previous_pair(project, monkeypatch):
    fresh_pdf(project, b"%PDF-1.7 first")
    out = make(project)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    fresh_pdf(project, b"%PDF-1.7 second")
    real = os.replace

    def replace(source, target):
        if Path(source) == out / ".next" / "assignment_code.zip":  # the new zip into place
            raise PermissionError(errno.EACCES, "Permission denied", str(target))
        return real(source, target)

    monkeypatch.setattr(output.os, "replace", replace)
    with pytest.raises(UserError, match="keeps the previous hand-in, unchanged"):
        make(project)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_handin_messages_survive_a_cp1252_console(tmp_path):
    root = tmp_path / "Åse 漢字"
    shutil.copytree(ROOT / "tools", root / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run([sys.executable, "-m", "tools.handin"], capture_output=True,
                            timeout=120, cwd=root, env={**os.environ, "PYTHONIOENCODING": "cp1252"})
    err = result.stderr.decode("cp1252")
    assert result.returncode == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "Åse \\u6f22\\u5b57" in err and "is missing: run `python tasks.py report`" in err


@pytest.mark.slow
def test_the_unzipped_six_files_run_beside_a_course_style_mnist(project, tmp_path):
    """As a grader runs them: the course's mnist.py (a stand-in offering only load(), reading
    data/ under the current folder) beside them, nothing else of the project."""
    fresh_pdf(project)
    out = make(project)
    graded = tmp_path / "graded"
    with zipfile.ZipFile(out / "assignment_code.zip") as archive:
        archive.extractall(graded)
    shutil.copy(ROOT / "tools" / "course_mnist.py", graded / "mnist.py")
    shutil.copytree(ROOT / "data" / "mnist", graded / "data")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MNIST_DIR")}
    result = subprocess.run([sys.executable, "task2a.py"], cwd=graded, capture_output=True,
                            text=True, timeout=600, env={**env, "MPLBACKEND": "Agg"})
    assert result.returncode == 0, result.stderr


def test_the_stand_in_mnist_reads_the_course_layout(tmp_path, monkeypatch):
    """The course's mnist.load(): four gzip IDX files in data/ under the current folder."""
    import gzip
    import importlib.util

    import numpy as np
    from helpers import idx_bytes

    spec = importlib.util.spec_from_file_location("course_mnist",
                                                  ROOT / "tools" / "course_mnist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "data").mkdir()
    images = np.arange(2 * 784, dtype=np.uint8).reshape(2, 28, 28)
    for stem in module.FILES:
        array = images if "images" in stem else np.array([3, 7], dtype=np.uint8)
        (tmp_path / "data" / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(array)))
    monkeypatch.chdir(tmp_path)
    X_train, Y_train, X_test, Y_test = module.load()
    assert X_train.shape == X_test.shape == (2, 784) and X_train.dtype == np.uint8
    assert (X_train == images.reshape(2, 784)).all()
    assert Y_train.tolist() == Y_test.tolist() == [3, 7]


def test_handin_check_compares_results_to_their_last_digit_and_ignores_timings():
    same = ("Tasks 3-4: 5 softmax models, 5 epochs, 1.3 s\n"
            "  lambda = 0    : train loss 0.2801, val accuracy 0.9166, ||w|| 4.894\n")
    assert handin_check.differences(same, same.replace("1.3 s", "10.6 s"), "task3.py") == []
    assert handin_check.differences(same, same.replace("0.9166", "0.9167"), "task3.py") == []
    for changed in (same.replace("0.9166", "0.9168"), same.replace("4.894", "4.994"),
                    same.replace("val accuracy", "val loss"), same + "one more line\n"):
        assert handin_check.differences(same, changed, "task3.py"), changed
    stopped = "2d, early stopping: stopped in epoch 33 (0-based)"
    assert handin_check.differences(stopped, stopped.replace("33", "34"), "task2.py")
    check = "gradient check on 785 weights: max |analytic - numeric| = 1.00e-09"
    assert handin_check.differences(check, check.replace("1.00e-09", "1.04e-09"),
                                    "task2a.py") == []


def test_handin_check_says_how_to_get_a_missing_python(monkeypatch):
    monkeypatch.setattr(handin_check.shutil, "which", lambda name: None)
    monkeypatch.delenv("HANDIN_PYTHON_OLDEST", raising=False)
    with pytest.raises(UserError, match=r"no Python 3\.8 found .*pyenv install 3\.8"):
        handin_check.find_python(handin_check.ENDS[0])


def test_handin_check_refuses_a_variable_that_names_no_program(monkeypatch):
    monkeypatch.setenv("HANDIN_PYTHON_NEWEST", "/nowhere/python3.12")
    with pytest.raises(UserError, match="HANDIN_PYTHON_NEWEST=/nowhere"):
        handin_check.find_python(handin_check.ENDS[1])


def test_handin_check_reports_the_python_that_ran():
    newest = handin_check.ENDS[1]
    ran = "Python 3.12.1 NumPy 2.5.5 Matplotlib 3.11.2"
    assert handin_check.described(newest, ran) == (
        f"{ran} (from HANDIN_PYTHON_NEWEST; the newest end is normally Python 3.13)")
    assert handin_check.described(newest, "Python 3.13.0 NumPy 2.5.5 Matplotlib 3.11.2") == \
        "Python 3.13.0 NumPy 2.5.5 Matplotlib 3.11.2"


def pyenv_python(version):
    found = sorted((Path.home() / ".pyenv" / "versions").glob(f"{version}.*"))
    return found[-1] / "bin" / "python" if found else None


@pytest.mark.slow
def test_handin_check_rebuilds_an_environment_for_the_interpreter_it_is_given(
        tmp_path, monkeypatch, capsys):
    """HANDIN_PYTHON_NEWEST wins over an environment built before with another interpreter."""
    first, second = pyenv_python("3.12"), pyenv_python("3.13")
    if first is None or second is None:
        pytest.skip("needs pyenv's Python 3.12 and 3.13")
    end = handin_check.End("newest", "3.13", ("pip",))  # pip: installed already, offline
    monkeypatch.setenv("HANDIN_PYTHON_NEWEST", str(first))
    python = handin_check.environment(end, tmp_path)
    assert handin_check.python_version(python).startswith("3.12.")
    assert handin_check.environment(end, tmp_path) == python  # kept while nothing changed
    assert "rebuilding" not in capsys.readouterr().out
    monkeypatch.setenv("HANDIN_PYTHON_NEWEST", str(second))
    python = handin_check.environment(end, tmp_path)
    assert handin_check.python_version(python).startswith("3.13.")
    out = capsys.readouterr().out
    assert f"rebuilding the newest environment: it was built with {first} (Python 3.12" in out
