"""The hand-in: the course's zip and the PDF side by side; whatever would cost points refused;
the scripts run from the unzipped hand-in."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import build_report
import make_handin

EXPECTED = {"task2.py", "task2a.py", "task3.py", "task3a.py", "trainer.py", "utils.py",
            "mnist.py", "assignment1.ipynb"}


def fresh_pdf(build, content=b"%PDF-1.7 test", **record):
    """A PDF and the record the report's build writes beside it, from today's sources."""
    build.mkdir(parents=True, exist_ok=True)
    pdf = build / "assignment1.pdf"
    pdf.write_bytes(content)
    record = {"title": "Group 42", "authors": ["Ada Lovelace"], "placeholder": False,
              "quick": False, "pdf_sha256": hashlib.sha256(content).hexdigest(),
              "sources": build_report.sources_digest(), **record}
    (build / "assignment1.json").write_text(json.dumps(record))
    return pdf


def test_the_course_zip_list_resolves_in_the_root():
    for name in make_handin.COURSE_FILES:
        assert (ROOT / name).is_file(), f"Did not find path: {name}"


def test_handin_holds_exactly_the_course_files_and_the_pdf_beside_it(tmp_path):
    fresh_pdf(tmp_path / "build")
    zip_path, pdf, _names, warnings = make_handin.make_handin(tmp_path / "build")
    assert zip_path.parent == pdf.parent == tmp_path / "build" / "handin"
    with zipfile.ZipFile(zip_path) as archive:
        assert set(archive.namelist()) == EXPECTED  # at the root, nothing else, no PDF
    assert pdf.read_bytes() == b"%PDF-1.7 test" and warnings == []


def sources_but(name):
    return {**build_report.sources_digest(), name: "0" * 64}


@pytest.mark.parametrize(("make", "expected"), [
    (lambda build: None, "missing: run `python tasks.py report`"),
    (lambda build: fresh_pdf(build, b""), "is empty"),
    (lambda build: fresh_pdf(build, b"<!DOCTYPE html><html>report</html>"), "not a PDF"),
    (lambda build: (fresh_pdf(build), (build / "assignment1.json").unlink()), "no build record"),
    (lambda build: fresh_pdf(build, pdf_sha256="0" * 64),
     "not the PDF `python tasks.py report` built"),
    (lambda build: fresh_pdf(build, quick=True), "reduced run"),
    (lambda build: fresh_pdf(build, placeholder=True), "placeholder group or names"),
    (lambda build: fresh_pdf(build, sources=sources_but("assignment1.ipynb")),
     "other versions of assignment1.ipynb"),
    (lambda build: fresh_pdf(build, sources=sources_but("report.toml")),
     "other versions of report.toml"),
    (lambda build: fresh_pdf(build, sources=sources_but("trainer.py")),
     "other versions of trainer.py"),
])
def test_what_would_cost_points_is_refused_and_no_old_handin_is_left(tmp_path, make, expected):
    build = tmp_path / "build"
    fresh_pdf(build)
    make_handin.make_handin(build)  # an earlier, good hand-in
    for name in ("assignment1.pdf", "assignment1.json"):
        (build / name).unlink()
    make(build)
    with pytest.raises(make_handin.HandinError, match=expected) as info:
        make_handin.make_handin(build)
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in (build / "handin").iterdir()) == []  # nothing to upload


def test_a_folder_where_the_zip_goes_is_refused_and_left_alone(tmp_path):
    build = tmp_path / "build"
    fresh_pdf(build)
    folder = build / "handin" / "assignment_code.zip"
    (folder / "mine").mkdir(parents=True)
    with pytest.raises(make_handin.HandinError, match="is a folder"):
        make_handin.make_handin(build)
    assert (folder / "mine").is_dir()


def test_a_syntax_error_names_the_file_and_line(tmp_path):
    broken = tmp_path / "task2.py"
    broken.write_text("def train_step(self:\n    pass\n")
    with pytest.raises(make_handin.HandinError, match=r"task2\.py has a syntax error at line 1"):
        make_handin.imported_root_modules([broken])


@pytest.mark.slow
def test_task2_runs_from_the_unzipped_handin(tmp_path):
    fresh_pdf(tmp_path / "build")
    zip_path, *_ = make_handin.make_handin(tmp_path / "build")
    unpacked = tmp_path / "unzipped"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(unpacked)
    env = {**os.environ, "MNIST_DIR": str(ROOT / "data" / "mnist"),
           "MNIST_CACHE_DIR": str(tmp_path / "cache"), "MPLBACKEND": "Agg"}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run([sys.executable, str(unpacked / "task2.py"), "--seeds", "2"],
                            cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Final Validation Cross Entropy Loss" in result.stdout
    assert "stopped in epoch 33" in result.stdout
    figures = sorted(p.name for p in (unpacked / "build" / "task2").glob("*.png"))
    assert figures == ["task2b_binary_loss.png", "task2c_binary_accuracy.png",
                       "task2e_shuffle_accuracy.png"]


@pytest.mark.slow
def test_task3_script_trains_and_saves_its_figures(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "task3.py"), "--epochs", "1", "--out",
                             str(tmp_path)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "MPLBACKEND": "Agg"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("val accuracy") == 5
    assert len(list(tmp_path.glob("task[34]*.png"))) == 5


def test_handin_check_compares_results_to_their_last_digit_and_ignores_timings():
    import handin_check

    same = ("Tasks 3-4: 5 softmax models trained in one sweep, 5 epochs, 1.3 s\n"
            "  lambda = 0    : train loss 0.2801, val accuracy 0.9166, ||w|| 4.894\n")
    other_time = same.replace("1.3 s", "10.6 s")
    assert handin_check.differences(same, other_time, "task3.py") == []
    last_digit = same.replace("0.9166", "0.9167")  # rounding of float32 sums may differ
    assert handin_check.differences(same, last_digit, "task3.py") == []
    for changed in (same.replace("0.9166", "0.9168"), same.replace("4.894", "4.994"),
                    same.replace("val accuracy", "val loss"), same + "one more line\n"):
        assert handin_check.differences(same, changed, "task3.py"), changed
    stopped = "2d, early stopping: stopped in epoch 33 (0-based)"
    assert handin_check.differences(stopped, stopped.replace("33", "34"), "task2.py")
    check = "gradient check on 785 weights: max |analytic - numeric| = 1.00e-09"
    assert handin_check.differences(check, check.replace("1.00e-09", "1.04e-09"),
                                    "task2a.py") == []


def test_handin_check_says_how_to_get_a_missing_python(monkeypatch):
    import handin_check

    monkeypatch.setattr(handin_check.shutil, "which", lambda name: None)
    monkeypatch.delenv("HANDIN_PYTHON_OLDEST", raising=False)
    with pytest.raises(handin_check.CheckError, match=r"no Python 3\.8 found .*pyenv install 3\.8"):
        handin_check.find_python(handin_check.ENDS[0])
