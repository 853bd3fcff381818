"""The hand-in: the course's zip and the PDF side by side; whatever would cost points refused;
the scripts run from the unzipped hand-in."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

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


# --- build/handin/: only the tool's own files replaced, a complete set or none ------------

def handin_files(build):
    return {p.name: p.read_bytes() for p in (build / "handin").iterdir()
            if not p.name.startswith(".")}


def test_a_second_handin_replaces_the_first(tmp_path):
    build = tmp_path / "build"
    fresh_pdf(build, b"%PDF-1.7 first")
    make_handin.make_handin(build)
    fresh_pdf(build, b"%PDF-1.7 second")
    make_handin.make_handin(build)
    assert handin_files(build)["assignment1.pdf"] == b"%PDF-1.7 second"
    assert sorted(p.name for p in (build / "handin").iterdir()) == [
        ".handin-record.json", "assignment1.pdf", "assignment_code.zip"]


@pytest.mark.skipif(os.name == "nt", reason="symbolic links need privileges on Windows")
@pytest.mark.parametrize("name", ["assignment1.pdf", "assignment_code.zip"])
def test_a_link_where_a_product_goes_is_refused_and_never_followed(tmp_path, name):
    build = tmp_path / "build"
    fresh_pdf(build)
    make_handin.make_handin(build)  # an earlier hand-in: removed, as after any refusal
    thesis = tmp_path / "thesis.pdf"
    thesis.write_bytes(b"my thesis")
    (build / "handin" / name).unlink()
    (build / "handin" / name).symlink_to(thesis)
    with pytest.raises(make_handin.HandinError, match=r"is a link .*never writes through one"):
        make_handin.make_handin(build)
    assert thesis.read_bytes() == b"my thesis" and (build / "handin" / name).is_symlink()
    assert [p.name for p in (build / "handin").iterdir()] == [name]  # no half of a set


def test_a_file_the_handin_did_not_write_is_refused_and_left_alone(tmp_path):
    build = tmp_path / "build"
    fresh_pdf(build)
    (build / "handin").mkdir()
    (build / "handin" / "assignment1.pdf").write_bytes(b"%PDF- my own edit")
    with pytest.raises(make_handin.HandinError, match=r"not a file `python tasks\.py handin`"):
        make_handin.make_handin(build)
    assert (build / "handin" / "assignment1.pdf").read_bytes() == b"%PDF- my own edit"


class FullDisk(io.FileIO):
    """A file on a disk that fills up after ``room`` bytes (what is written up to there stays)."""

    room = 8 * 1024

    def write(self, data):
        data = bytes(data)
        if self.tell() + len(data) > self.room:
            super().write(data[:max(self.room - self.tell(), 0)])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


def fill_up_on(monkeypatch, *stems, calls=None):
    """Writes to make_handin's new files whose names contain one of ``stems`` hit a full disk
    (only the ``calls``-th such file, if given)."""
    seen = []

    def fake_open(path, mode="r", *args, **kwargs):
        if mode == "xb" and any(stem in Path(path).name for stem in stems):
            seen.append(path)
            if calls is None or len(seen) == calls:
                return FullDisk(path, "x")
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(make_handin, "open", fake_open, raising=False)


@pytest.mark.parametrize("stem", ["assignment1.pdf", "assignment_code.zip"])
@pytest.mark.parametrize("earlier", [True, False])
def test_a_full_disk_leaves_the_previous_set_or_none_and_says_which(tmp_path, monkeypatch,
                                                                    stem, earlier):
    build = tmp_path / "build"
    fresh_pdf(build, b"%PDF-1.7 " + b"x" * 200_000)
    if earlier:
        make_handin.make_handin(build)
    before = handin_files(build) if earlier else {}
    fresh_pdf(build, b"%PDF-1.7 " + b"y" * 200_000)
    fill_up_on(monkeypatch, stem)
    with pytest.raises(make_handin.HandinError, match="the disk is full") as info:
        make_handin.make_handin(build)
    message = str(info.value)
    assert "\n" not in message
    if earlier:
        assert message.endswith("still holds the previous hand-in, unchanged.")
        assert handin_files(build) == before
    else:
        assert message.endswith("holds no hand-in.")
        assert handin_files(build) == {}
    assert not list((build / "handin").glob(".*.part"))  # nothing truncated stays


def test_an_interrupt_between_the_two_renames_leaves_no_half_set(tmp_path, monkeypatch):
    build = tmp_path / "build"
    fresh_pdf(build, b"%PDF-1.7 first")
    real_pack = make_handin.pack

    def first_pack(file, names):  # an earlier zip, of other sources
        real_pack(file, names[:-1])

    monkeypatch.setattr(make_handin, "pack", first_pack)
    make_handin.make_handin(build)
    monkeypatch.undo()
    fresh_pdf(build, b"%PDF-1.7 second")
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst).name == "assignment_code.zip":  # the new PDF is in place, the old zip
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(make_handin.os, "replace", replace)
    with pytest.raises(make_handin.Interrupted, match="holds no hand-in"):
        make_handin.make_handin(build)
    assert handin_files(build) == {}
    assert sorted(p.name for p in (build / "handin").iterdir()) == []


def test_a_full_disk_when_only_the_record_is_tidied_keeps_the_new_set(tmp_path, monkeypatch):
    build = tmp_path / "build"
    fresh_pdf(build, b"%PDF-1.7 first")
    make_handin.make_handin(build)
    fresh_pdf(build, b"%PDF-1.7 second")
    fill_up_on(monkeypatch, ".handin-record.json", calls=2)
    monkeypatch.setattr(FullDisk, "room", 0)
    make_handin.make_handin(build)
    assert handin_files(build)["assignment1.pdf"] == b"%PDF-1.7 second"
    monkeypatch.undo()
    fresh_pdf(build, b"%PDF-1.7 third")  # the record still knows the second set as its own
    make_handin.make_handin(build)
    assert handin_files(build)["assignment1.pdf"] == b"%PDF-1.7 third"


def test_a_read_only_handin_folder_is_one_line(tmp_path, monkeypatch):
    build = tmp_path / "build"
    fresh_pdf(build)

    def read_only(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(make_handin, "open", read_only, raising=False)
    with pytest.raises(make_handin.HandinError, match=r"permission denied.*holds no hand-in"):
        make_handin.make_handin(build)


def test_a_partial_file_of_a_killed_handin_is_removed(tmp_path):
    build = tmp_path / "build"
    fresh_pdf(build)
    ended = subprocess.Popen([sys.executable, "-c", ""])
    ended.wait()
    (build / "handin").mkdir()
    stale = build / "handin" / f".assignment1.pdf.{ended.pid}.part"
    stale.write_bytes(b"%PDF-1.7 trunc")
    make_handin.make_handin(build)
    assert not stale.exists()


def test_handin_messages_survive_a_cp1252_console(tmp_path):
    build = tmp_path / "Åse 漢字" / "build"
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "make_handin.py"), "--build",
                             str(build)], capture_output=True, timeout=120,
                            env={**os.environ, "PYTHONIOENCODING": "cp1252"})
    err = result.stderr.decode("cp1252")
    assert result.returncode == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "Åse \\u6f22\\u5b57" in err and "is missing: run `python tasks.py report`" in err


@pytest.mark.slow
def test_task2_runs_from_the_unzipped_handin(tmp_path):
    fresh_pdf(tmp_path / "build")
    zip_path, *_ = make_handin.make_handin(tmp_path / "build")
    unpacked = tmp_path / "unzipped"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(unpacked)
    env = {**os.environ, "MNIST_DIR": str(ROOT / "data" / "mnist"), "MPLBACKEND": "Agg"}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run([sys.executable, str(unpacked / "task2.py")],
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


def test_handin_check_refuses_a_variable_that_names_no_program(monkeypatch):
    import handin_check

    monkeypatch.setenv("HANDIN_PYTHON_NEWEST", "/nowhere/python3.12")
    with pytest.raises(handin_check.CheckError, match="HANDIN_PYTHON_NEWEST=/nowhere"):
        handin_check.find_python(handin_check.ENDS[1])


def test_handin_check_reports_the_python_that_ran():
    import handin_check

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
    import handin_check

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
