"""The report build with real processes, on a copy of the checkout (its own build/, lock and
cache): the execution cache against real runs, stop signals of every kind mid-run (the kernel
and the workers it started end with the build), a killed build, and two builds at once.
Every run is a reduced (--quick) one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_project import code_cell, copy_project, run_processes

pytestmark = pytest.mark.slow


def environment(tmp: Path) -> dict:
    """The build's environment: a private TMPDIR, where its trace file goes, so that its
    processes can be found by the environment they inherit."""
    tmp.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSIGNMENT1_")}
    return {**env, "TMPDIR": str(tmp), "ASSIGNMENT1_GROUP": "42",
            "ASSIGNMENT1_AUTHORS": "Ada Lovelace"}


def build(copy: Path, *args: str, tmp: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tools.report", "--quick", *args], cwd=copy,
                            env=environment(tmp), text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True, **kw)


def finished(child: subprocess.Popen, timeout: float = 600) -> tuple[int, str, str]:
    out, err = child.communicate(timeout=timeout)
    return child.returncode, out, err


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    """A copy of the checkout with one complete quick build in its build/."""
    root = copy_project(tmp_path_factory.mktemp("checkout") / "assignment1")
    code, out, err = finished(build(root, tmp=root.parent / "tmp-first"))
    assert code == 0, err
    assert "executing the notebook (no earlier run is cached)" in out
    return root


def record(folder: Path) -> dict:
    return json.loads((folder / "assignment1.json").read_text(encoding="utf-8"))


def pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(str(path)).pages)


def build_edited(copy: Path, nb: dict, tmp_path: Path) -> tuple[Path, tuple[int, str, str]]:
    """Build the copy's report from the edited notebook ``nb`` into tmp_path/out: (that
    folder, (exit code, stdout, stderr))."""
    edited = tmp_path / "edited.ipynb"
    edited.write_text(json.dumps(nb), encoding="utf-8")
    out_dir = tmp_path / "out"
    return out_dir, finished(build(copy, "--notebook", str(edited), "--out", str(out_dir),
                                   tmp=tmp_path / "tmp"))


def test_an_unchanged_notebook_is_rebuilt_from_the_cache_with_the_same_pdf(copy, tmp_path):
    before = (copy / "build" / "assignment1.pdf").read_bytes()
    code, out, err = finished(build(copy, tmp=tmp_path / "tmp"))
    assert code == 0, err
    assert "notebook unchanged since the last run: reused its outputs" in out
    assert (copy / "build" / "assignment1.pdf").read_bytes() == before  # byte for byte
    assert record(copy / "build")["cached"] is True


def test_a_markdown_edit_is_a_hit_whose_pdf_shows_the_new_text(copy, tmp_path):
    nb = json.loads((copy / "assignment1.ipynb").read_text(encoding="utf-8"))
    markdown = next(c for c in nb["cells"] if c["cell_type"] == "markdown"
                    and "remove-cell" not in c["metadata"].get("tags", []))
    markdown["source"] = "".join(markdown["source"]) + "\n\nA sentence added in the edit 7301."
    out_dir, (code, out, err) = build_edited(copy, nb, tmp_path)
    assert code == 0, err
    assert "notebook unchanged since the last run: reused its outputs" in out
    assert "A sentence added in the edit 7301." in pdf_text(out_dir / "assignment1.pdf")
    assert record(out_dir)["sources"]["assignment1.ipynb"] != \
        record(copy / "build")["sources"]["assignment1.ipynb"]  # the sources it was built from


def test_a_code_cell_edit_runs_the_notebook_again(copy, tmp_path):
    nb = json.loads((copy / "assignment1.ipynb").read_text(encoding="utf-8"))
    nb["cells"].append(code_cell("from IPython.display import Markdown, display\n"
                                 "display(Markdown('A result only the new code shows 5417.'))"))
    out_dir, (code, out, err) = build_edited(copy, nb, tmp_path)
    assert code == 0, err
    assert "executing the notebook (the code cells changed since the cached run)" in out
    assert "A result only the new code shows 5417." in pdf_text(out_dir / "assignment1.pdf")
    assert record(out_dir)["cached"] is False


def wait_until_running(child: subprocess.Popen, tmp: Path, timeout: float = 300) -> None:
    """Until the build's kernel runs the notebook."""
    deadline = time.monotonic() + timeout
    while not any("ipykernel" in p for p in run_processes(tmp)):
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "no kernel started in time"
        time.sleep(0.1)
    time.sleep(1.5)  # into the first cells


def assert_nothing_left(tmp: Path, out_dir: Path) -> None:
    """No kernel or worker runs, no .next folder or trace file is left."""
    deadline = time.monotonic() + 15
    while run_processes(tmp) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run_processes(tmp) == []
    assert not (out_dir / ".next").exists()
    assert not list(tmp.glob("assignment1-trace-*"))


@pytest.mark.parametrize("signals", [("SIGINT",), ("SIGINT", "SIGINT"), ("SIGTERM",),
                                     ("SIGHUP",)], ids="+".join)
def test_a_stop_signal_mid_run_stops_the_kernel_and_keeps_the_report(copy, tmp_path, signals):
    """Ctrl-C (to the terminal's process group, once or twice), an IDE's stop button
    (SIGTERM to the build) or a closed terminal (SIGHUP to the group)."""
    out_dir = copy / "build"
    before = record(out_dir)
    tmp = tmp_path / "tmp"
    child = build(copy, "--fresh", tmp=tmp)
    wait_until_running(child, tmp)
    for name in signals:
        if name == "SIGTERM":
            os.kill(child.pid, signal.SIGTERM)
        else:
            os.killpg(child.pid, getattr(signal, name))
        time.sleep(0.3)
    code, _, err = finished(child, timeout=120)
    signum = getattr(signal, signals[0])
    assert code == (130 if signum == signal.SIGINT else -signum)  # a shell shows 128 + signum
    assert err.strip() == f"report: interrupted; {out_dir} keeps the previous report, unchanged"
    assert record(out_dir) == before
    assert_nothing_left(tmp, out_dir)


def test_a_stop_ends_the_workers_the_kernel_started_too(copy, tmp_path):
    nb = json.loads((copy / "assignment1.ipynb").read_text(encoding="utf-8"))
    first_code = next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code")
    nb["cells"].insert(first_code + 1, code_cell(
        "import subprocess, sys\nfrom tools.parallel import side_by_side\n"
        "side_by_side([(subprocess.run, {'args': [sys.executable, '-c', "
        "'import time; time.sleep(120)']})] * 2, 2)"))
    edited = tmp_path / "edited.ipynb"
    edited.write_text(json.dumps(nb), encoding="utf-8")
    tmp = tmp_path / "tmp"
    child = build(copy, "--notebook", str(edited), "--out", str(tmp_path / "out"), tmp=tmp)
    deadline = time.monotonic() + 300
    while sum("time.sleep(120)" in p for p in run_processes(tmp)) < 2:
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()
        time.sleep(0.2)
    os.kill(child.pid, signal.SIGTERM)
    code, _, err = finished(child, timeout=120)
    assert code == -signal.SIGTERM and "report: interrupted" in err
    assert_nothing_left(tmp, tmp_path / "out")


def test_a_killed_build_stops_its_kernel_and_the_next_build_cleans_up(copy, tmp_path):
    out_dir = copy / "build"
    before = record(out_dir)
    tmp = tmp_path / "tmp"
    child = build(copy, "--fresh", tmp=tmp)
    wait_until_running(child, tmp)
    os.kill(child.pid, signal.SIGKILL)
    child.communicate(timeout=60)
    deadline = time.monotonic() + 15  # the kernel sees its parent gone and ends
    while run_processes(tmp) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run_processes(tmp) == []
    assert (out_dir / ".next").exists(), "SIGKILL leaves the set being built"
    assert record(out_dir) == before
    code, _, err = finished(build(copy, tmp=tmp_path / "tmp-next"))  # a cache hit
    assert code == 0, err
    assert not (out_dir / ".next").exists()


def test_two_builds_at_once_the_second_refuses_in_one_line(copy, tmp_path):
    out_dir = copy / "build"
    first = build(copy, "--fresh", tmp=tmp_path / "tmp-1")
    try:
        wait_until_running(first, tmp_path / "tmp-1")
        code, _, err = finished(build(copy, tmp=tmp_path / "tmp-2"), timeout=120)
        assert code == 1
        assert err.strip() == (f"another build is running here (pid {first.pid}): wait for it "
                               f"to finish or stop it, then build again")
    finally:
        os.kill(first.pid, signal.SIGTERM)
        first.communicate(timeout=120)
    assert_nothing_left(tmp_path / "tmp-1", out_dir)


def test_a_timeout_names_the_cell_by_its_task_and_says_to_raise_it(copy, tmp_path):
    out_dir = tmp_path / "out"
    code, _, err = finished(build(copy, "--fresh", "--timeout", "1", "--out", str(out_dir),
                                  tmp=tmp_path / "tmp"))
    assert code == 1
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line and "\x1b[" not in line
    assert "ran longer than --timeout 1 s: raise it" in line
    assert '(under "Task' in line or '(before "Task' in line  # the set-up cell has no heading
    assert line.endswith(f"{out_dir} holds no report")
    assert_nothing_left(tmp_path / "tmp", out_dir)


def test_a_killed_kernel_is_one_line_naming_the_cell(copy, tmp_path):
    nb = json.loads((copy / "assignment1.ipynb").read_text(encoding="utf-8"))
    first_code = next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code")
    nb["cells"].insert(first_code + 1, code_cell("import os, signal\n"
                                                 "os.kill(os.getpid(), signal.SIGKILL)"))
    edited = tmp_path / "edited.ipynb"
    edited.write_text(json.dumps(nb), encoding="utf-8")
    code, _, err = finished(build(copy, "--notebook", str(edited), "--out",
                                  str(tmp_path / "out"), tmp=tmp_path / "tmp"))
    assert code == 1
    line = err.strip()
    assert "\n" not in line and line.startswith("the notebook's kernel died while running code "
                                                "cell 2"), line
