"""The report build keeps its promises about the output folder: only its own products touched,
one run's complete set after any failure, one build at a time, one line for every refusal.

Most builds here run on a tiny project whose outputs are in the execution cache (no kernel)
and, where the test is not about the PDF, with the rendering replaced by a stand-in."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT
from fake_project import make_project, seed_cache, tiny_png

from tools import output, render, report
from tools.output import listing
from tools.report import BUILDER, RECORD

FAKE_PDF = b"%PDF-1.7 a stand-in for the rendered report"


@pytest.fixture
def project(tmp_path, monkeypatch):
    for variable in ("ASSIGNMENT1_GROUP", "ASSIGNMENT1_AUTHORS"):
        monkeypatch.delenv(variable, raising=False)
    project = make_project(tmp_path / "checkout")
    seed_cache(project)
    return project


@pytest.fixture
def no_render(monkeypatch):
    """Skip pandoc and Typst: these tests are about files, not the PDF's content."""
    monkeypatch.setattr(render, "render",
                        lambda nb, title, work, web=True: ("<html>page</html>", FAKE_PDF))


def run(project, out, *args):
    return report.main(["--out", str(out), *args], project)


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "\x1b[" not in err
    return lines[0]


def snapshot(folder: Path) -> dict:
    return {p.name: listing(p) for p in folder.iterdir()}


def test_a_build_writes_its_set_and_a_record_that_lists_every_product(project, tmp_path,
                                                                       no_render, capsys):
    out = tmp_path / "out"
    assert run(project, out) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["assignment1.html", "assignment1.ipynb", "assignment1.json",
                     "assignment1.pdf", "figures", "metrics.json"]
    record = json.loads((out / RECORD).read_text(encoding="utf-8"))
    assert set(record["products"]) == set(names) - {RECORD}
    assert record["products"]["figures"] == {"rectangle.png": listing(out / "figures" /
                                                                      "rectangle.png")}
    assert record["cached"] is True
    assert output.check_ours(out, RECORD, BUILDER, names) == record  # it proves every file
    # what the hand-in compares: every file of the checkout the run read, and the hand-in's
    assert set(record["sources"]) == {"helper.py", *report.ALWAYS_SOURCES, "assignment1.ipynb",
                                      "report.toml"}


def test_out_into_a_folder_with_the_users_own_figures_and_metrics_touches_nothing(
        project, tmp_path, no_render, capsys):
    desktop = tmp_path / "Desktop"
    (desktop / "figures").mkdir(parents=True)
    (desktop / "figures" / "holiday.png").write_bytes(b"the user's photo")
    (desktop / "metrics.json").write_text('{"mine": true}')
    (desktop / "notes.txt").write_text("unrelated")
    before = snapshot(desktop)
    assert run(project, desktop) == 1
    line = one_line(capsys.readouterr().err)
    assert f"{desktop / 'figures'} was not written by this build" in line
    assert "--out ANOTHER_FOLDER" in line
    assert snapshot(desktop) == before  # nothing added, nothing removed, nothing changed


def previous_build(project, out, monkeypatch) -> dict:
    monkeypatch.setattr(render, "render",
                        lambda nb, title, work, web=True: ("<html>old</html>", b"%PDF old"))
    assert report.main(["--out", str(out)], project) == 0
    monkeypatch.setattr(render, "render",
                        lambda nb, title, work, web=True: ("<html>page</html>", FAKE_PDF))
    return snapshot(out)


@pytest.mark.parametrize("tamper", ["symlink", "edited", "edited figure", "extra figure",
                                    "unlisted"])
def test_a_product_that_is_not_what_the_build_wrote_is_refused_never_followed(
        project, tmp_path, monkeypatch, capsys, tamper):
    out = tmp_path / "out"
    previous_build(project, out, monkeypatch)
    thesis = tmp_path / "thesis.pdf"
    thesis.write_bytes(b"%PDF my thesis")
    expected = {"symlink": "assignment1.pdf is not what this build wrote (is a symbolic link)",
                "edited": "metrics.json changed since this build wrote it",
                "edited figure": "figures changed since this build wrote it",
                "extra figure": "figures holds mine.png, which this build did not write",
                "unlisted": "assignment1.html was not written by this build"}[tamper]
    if tamper == "symlink":
        (out / "assignment1.pdf").unlink()
        (out / "assignment1.pdf").symlink_to(thesis)
    elif tamper == "edited":
        (out / "metrics.json").write_text('{"edited": true}')
    elif tamper == "edited figure":  # the same name, other content: compared by content
        (out / "figures" / "rectangle.png").write_bytes(b"the user's own drawing")
    elif tamper == "extra figure":
        (out / "figures" / "mine.png").write_bytes(tiny_png())
    else:  # the record no longer lists the page
        record = json.loads((out / RECORD).read_text())
        del record["products"]["assignment1.html"]
        (out / RECORD).write_text(json.dumps(record))
    before = snapshot(out) if tamper != "symlink" else None
    capsys.readouterr()
    assert run(project, out) == 1
    assert expected in one_line(capsys.readouterr().err)
    assert thesis.read_bytes() == b"%PDF my thesis"
    if before is not None:
        assert snapshot(out) == before
    assert not (out / ".next").exists()


@pytest.mark.parametrize(("record", "expected"), [
    ('{"title": "Group 1", "pdf_sha256": "ab", "sources": {}}', "is not a record of this build"),
    ("not json", "is not a record of this build"),
    ('{"other": "tool"}', "is not a record of this build"),
])
def test_a_record_the_build_did_not_write_is_refused(project, tmp_path, no_render, capsys,
                                                     record, expected):
    out = tmp_path / "out"
    out.mkdir()
    (out / RECORD).write_text(record)
    (out / "assignment1.pdf").write_bytes(b"%PDF somebody's")
    assert run(project, out) == 1
    assert expected in one_line(capsys.readouterr().err)
    assert (out / "assignment1.pdf").read_bytes() == b"%PDF somebody's"


def test_a_new_build_replaces_the_whole_previous_set(project, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    previous_build(project, out, monkeypatch)
    assert (out / "assignment1.pdf").read_bytes() == b"%PDF old"
    assert run(project, out) == 0
    assert (out / "assignment1.pdf").read_bytes() == FAKE_PDF
    record = json.loads((out / RECORD).read_text())
    assert record["pdf_sha256"] == hashlib.sha256(FAKE_PDF).hexdigest()
    assert not (out / ".next").exists()


def os_error(number: int, path: str = "the file") -> OSError:
    return OSError(number, os.strerror(number), path)


@pytest.mark.parametrize(("number", "expected"), [
    (errno.ENOSPC, "the disk is full"),
    (errno.EROFS, "read-only"),
    (errno.EACCES, "permission denied"),
])
def test_a_failed_write_keeps_the_previous_set_whole_with_one_line(
        project, tmp_path, monkeypatch, capsys, number, expected):
    out = tmp_path / "out"
    before = previous_build(project, out, monkeypatch)
    real = Path.write_bytes

    def failing(path, data):
        if path.name == "assignment1.pdf":
            raise os_error(number, str(path))
        return real(path, data)

    monkeypatch.setattr(Path, "write_bytes", failing)
    capsys.readouterr()
    assert run(project, out) == 1
    line = one_line(capsys.readouterr().err)
    assert expected in line and f"{out} keeps the previous report, unchanged" in line
    assert snapshot(out) == before
    assert not (out / ".next").exists()


@pytest.mark.parametrize("failing_rename", range(12))
def test_a_rename_failing_anywhere_in_the_swap_leaves_the_previous_set(
        project, tmp_path, monkeypatch, capsys, failing_rename):
    """The swap renames the previous set out and the new one in; whichever rename fails
    (Windows: a PDF open in a viewer), the previous set is back, whole."""
    out = tmp_path / "out"
    before = previous_build(project, out, monkeypatch)
    real, calls = os.replace, []

    def replace(source, target):
        if Path(target).parent == out or Path(source).parent == out:  # the swap's renames
            calls.append(target)
            if len(calls) == failing_rename + 1:
                raise PermissionError(errno.EACCES, "Permission denied", str(target))
        return real(source, target)

    monkeypatch.setattr(output.os, "replace", replace)
    capsys.readouterr()
    assert run(project, out) == 1  # 12 renames: the record and 5 products out, then in
    line = one_line(capsys.readouterr().err)
    assert "permission denied" in line
    assert f"{out} keeps the previous report, unchanged" in line
    assert snapshot(out) == before
    assert not (out / ".next").exists() and not (out / ".previous").exists()


PUBLISH_AND_DIE = """
import os, signal
from pathlib import Path
from tools import output
from tools.cli import StopSignals
out = Path({out!r})
real, count = os.replace, [0]
def replace(source, target):
    if Path(target).parent == out or Path(source).parent == out:
        count[0] += 1
        if count[0] > {renames}:
            os.kill(os.getpid(), signal.SIGKILL)
    return real(source, target)
with StopSignals() as signals, output.staged(out, "assignment1.json", {{"builder": "test", "pdf":
        "new"}}, ["assignment1.pdf", "figures"], signals, {{}}) as new:
    (new / "assignment1.pdf").write_bytes(b"%PDF new")
    (new / "figures").mkdir()
    (new / "figures" / "b.png").write_bytes(b"new figure")
    output.os.replace = replace
"""


def old_set(out: Path) -> None:
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "a.png").write_bytes(b"old figure")
    (out / "assignment1.pdf").write_bytes(b"%PDF old")
    (out / "metrics.json").write_text("{}")  # in the old set only
    products = {n: listing(out / n) for n in ("assignment1.pdf", "figures", "metrics.json")}
    (out / RECORD).write_text(json.dumps({"builder": "test", "pdf": "old",
                                          "products": products}))


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("renames", range(8))
def test_a_swap_killed_midway_is_finished_by_the_next_build(tmp_path, renames):
    """A process killed (SIGKILL) after any number of the swap's renames: the next build
    leaves exactly the new set, nothing of the old one, no leftovers."""
    out = tmp_path / "out"
    old_set(out)
    script = PUBLISH_AND_DIE.format(out=str(out), renames=renames)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60,
                            cwd=ROOT)
    # 7 renames: the record and the 3 old products out, the 2 new ones in, the record last
    assert result.returncode == (-signal.SIGKILL if renames < 7 else 0), result.stderr
    (output.aside(out, RECORD)).rmdir()  # the next build finishes the swap, leaves nothing
    record = json.loads((out / RECORD).read_text())
    assert sorted(p.name for p in out.iterdir()) == ["assignment1.json", "assignment1.pdf",
                                                     "figures"]
    assert record["pdf"] == "new" and (out / "assignment1.pdf").read_bytes() == b"%PDF new"
    assert [p.name for p in (out / "figures").iterdir()] == ["b.png"]


# --- One build at a time ------------------------------------------------------------------

HOLD_LOCK = """
import sys, time
from pathlib import Path
from tools import report
from tools.config import Project
with report.locked(Project(Path({root!r}))):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_build_refuses_naming_the_first_ones_pid(project, tmp_path, no_render, capsys):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK.format(root=str(project.root))],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert run(project, tmp_path / "out") == 1
        assert one_line(capsys.readouterr().err) == (
            f"another build is running here (pid {holder.pid}): wait for it to finish or stop "
            f"it, then build again")
    finally:
        holder.kill()
        holder.wait()
    assert run(project, tmp_path / "out") == 0  # the OS dropped the killed holder's lock


# --- One line for every bad input ---------------------------------------------------------

def test_merge_conflict_markers_in_the_notebook_get_one_line(project, tmp_path, no_render,
                                                             capsys):
    path = project.root / "assignment1.ipynb"
    text = path.read_text()
    path.write_text("<<<<<<< HEAD\n" + text + "=======\n" + text + ">>>>>>> theirs\n")
    assert run(project, tmp_path / "out") == 1
    line = one_line(capsys.readouterr().err)
    assert "merge-conflict markers (line 1: <<<<<<<)" in line and "git checkout" in line


@pytest.mark.parametrize(("content", "expected"), [
    ("{ not json", "is not valid notebook JSON"),
    ('{"nbformat": 4}', "not a Jupyter notebook"),
])
def test_a_notebook_that_is_not_one_gets_one_line(project, tmp_path, no_render, capsys,
                                                  content, expected):
    (project.root / "assignment1.ipynb").write_text(content)
    assert run(project, tmp_path / "out") == 1
    assert expected in one_line(capsys.readouterr().err)


def test_config_naming_a_missing_file_is_an_error_not_placeholders(project, tmp_path,
                                                                   no_render, capsys):
    assert run(project, tmp_path / "out", "--config", str(tmp_path / "missing.toml")) == 1
    line = one_line(capsys.readouterr().err)
    assert "missing.toml: no such file" in line
    assert not (tmp_path / "out").exists()


def test_a_folder_named_report_toml_gets_one_line(project, tmp_path, no_render, capsys):
    (project.root / "report.toml").unlink()
    (project.root / "report.toml").mkdir()
    assert run(project, tmp_path / "out") == 1
    assert "report.toml is a folder, not a file" in one_line(capsys.readouterr().err)


def test_an_out_that_is_a_file_is_refused_and_kept(project, tmp_path, no_render, capsys):
    out = tmp_path / "build"
    out.write_text("not a folder")
    assert run(project, out) == 1
    assert "is not a folder" in one_line(capsys.readouterr().err)
    assert out.read_text() == "not a folder"


def test_a_bug_in_the_build_is_still_one_line_and_keeps_the_previous_set(
        project, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    before = previous_build(project, out, monkeypatch)

    def broken(nb, title, work, web=True):
        return 1 / 0

    monkeypatch.setattr(render, "render", broken)
    capsys.readouterr()
    assert run(project, out) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith("the build failed: ZeroDivisionError") and "keeps the previous" in line
    assert snapshot(out) == before


@pytest.mark.slow
def test_any_console_encoding_with_cjk_paths_and_names(tmp_path):
    """A Windows console with output redirected (cp1252) and a checkout, an output folder
    and names it cannot encode: the build succeeds and says so with escapes."""
    project = make_project(tmp_path / "学生 の 課題")
    (project.root / "report.toml").write_text('group = "第 7 組"\nauthors = ["李 小龍", "Åse"]\n',
                                              encoding="utf-8")
    seed_cache(project)
    out = tmp_path / "出力"
    script = (f"import sys; from pathlib import Path; from tools import report; "
              f"from tools.config import Project; sys.exit(report.main(['--out', {str(out)!r}], "
              f"Project(Path({str(project.root)!r}))))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSIGNMENT1_")}
    env["PYTHONIOENCODING"] = "cp1252"
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr.decode("cp1252", errors="replace")
    stdout = result.stdout.decode("cp1252")
    assert "wrote" in stdout and "\\u51fa\\u529b" in stdout  # 出力, escaped
    assert "Åse" in stdout  # what cp1252 has stays as it is
    assert (out / "assignment1.pdf").read_bytes().startswith(b"%PDF-")
    assert "Traceback" not in result.stderr.decode("cp1252", errors="replace")


def test_interrupted_before_the_swap_keeps_the_previous_set(project, tmp_path, monkeypatch,
                                                            capsys):
    """Ctrl-C anywhere before the swap (here: while rendering) ends with one line saying the
    folder keeps its previous report, and leaves no .next folder; then the interrupt goes on
    to whatever runs the build (here pytest: a KeyboardInterrupt), so that an in-process
    build never swallows a stop."""
    out = tmp_path / "out"
    before = previous_build(project, out, monkeypatch)

    def interrupted(nb, title, work, web=True):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the handler raises before this ends
        raise AssertionError("SIGINT did not stop the build")

    monkeypatch.setattr(render, "render", interrupted)
    capsys.readouterr()
    with pytest.raises(KeyboardInterrupt):
        run(project, out)
    line = one_line(capsys.readouterr().err)
    assert line == f"report: interrupted; {out} keeps the previous report, unchanged"
    assert snapshot(out) == before
    assert not (out / ".next").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_a_read_only_checkout_gets_one_line_naming_build(project, tmp_path, monkeypatch,
                                                         no_render, capsys):
    """--out elsewhere does not help: the lock and the cache live in the checkout's build/."""
    real = os.open

    def read_only(path, *args, **kwargs):
        if Path(path) == project.build / ".build.lock":
            raise os_error(errno.EROFS, str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    assert run(project, tmp_path / "out") == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"{project.build} cannot be written (") and "read-only" in line
    assert "make the checkout writable" in line
