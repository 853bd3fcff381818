"""make handin: the course's zip and the PDF side by side; stale PDFs refused; scripts run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import make_handin

EXPECTED = {"task2.py", "task2a.py", "task3.py", "task3a.py", "trainer.py", "utils.py",
            "mnist.py", "assignment1.ipynb"}


def fresh_pdf(build):
    build.mkdir(parents=True, exist_ok=True)
    pdf = build / "assignment1.pdf"
    pdf.write_bytes(b"%PDF-1.5 test")
    future = time.time() + 60  # newer than every source file
    os.utime(pdf, (future, future))
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
    assert pdf.read_bytes() == b"%PDF-1.5 test" and warnings == []


def test_a_missing_or_stale_pdf_is_refused(tmp_path):
    with pytest.raises(make_handin.HandinError, match="make report"):
        make_handin.make_handin(tmp_path / "build")
    pdf = fresh_pdf(tmp_path / "build")
    os.utime(pdf, (0, 0))  # older than the notebook and the modules
    with pytest.raises(make_handin.HandinError, match=r"older than .*make report"):
        make_handin.make_handin(tmp_path / "build")
    assert not (tmp_path / "build" / "handin" / "assignment_code.zip").exists()


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
