"""tasks.py as a student's laptop uses it: signals reach the command it runs (real processes),
one set-up of .venv at a time and a broken .venv rebuilt with one line, `clean` that says what
it did, commands and paths typed from any folder, and output any console can show."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import ROOT

import tasks

posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX signals")


# --- signals: the command tasks.py runs gets them and ends before tasks.py does ---------

CHILD = """
import os, signal, sys, time
log, got = sys.argv[1], []
def note(text):
    with open(log, "a", encoding="utf-8") as f:
        f.write(text + "\\n")
def on_signal(signum, frame):
    note(signal.Signals(signum).name)
    got.append(signum)
for name in ("SIGINT", "SIGTERM", "SIGHUP"):
    signal.signal(getattr(signal, name), on_signal)
note(f"started {os.getpid()}")
deadline = time.monotonic() + 60
while not got and time.monotonic() < deadline:
    time.sleep(0.05)
time.sleep(1.0)  # its clean-up (tasks.py must wait for it); a further signal is noted too
note("cleaned" if got else "not stopped")
sys.exit(128 + got[0] if got else 1)
"""

#: tasks.py's own main, with one more command: the child above.
DRIVER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import tasks
tasks.ensure_venv = lambda: Path(sys.executable)
tasks.TASKS["child"] = lambda py, args: tasks.run(sys.executable, *args)
sys.exit(tasks.main(["child", sys.argv[2], sys.argv[3]]))
"""


def start_driver(tmp_path: Path, **popen) -> tuple[subprocess.Popen, Path]:
    (tmp_path / "child.py").write_text(CHILD, encoding="utf-8")
    log = tmp_path / "log.txt"
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(ROOT), str(tmp_path / "child.py"),
                               str(log)], stderr=subprocess.PIPE, text=True,
                              start_new_session=True, **popen)
    deadline = time.monotonic() + 60
    while not (log.exists() and "started" in log.read_text(encoding="utf-8")):
        assert time.monotonic() < deadline and driver.poll() is None, "the child did not start"
        time.sleep(0.05)
    return driver, log


def child_lines(log: Path) -> tuple[int, list[str]]:
    first, *rest = log.read_text(encoding="utf-8").splitlines()
    return int(first.split()[1]), rest


@pytest.mark.slow
@posix_only
@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_signal_to_tasks_py_alone_stops_the_command_and_waits_for_its_clean_up(tmp_path,
                                                                                 name):
    driver, log = start_driver(tmp_path)
    os.kill(driver.pid, getattr(signal, name))  # tasks.py only, as an IDE's stop button does
    _, stderr = driver.communicate(timeout=60)
    pid, lines = child_lines(log)
    assert lines == [name, "cleaned"]  # passed on once, and its clean-up finished first
    assert not psutil.pid_exists(pid)
    assert driver.returncode == 128 + getattr(signal, name)
    if name != "SIGINT":
        assert stderr.strip() == f"tasks.py child: stopped by {name}"


@pytest.mark.slow
@posix_only
@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_at_a_terminal_reaches_the_command_once_per_press(tmp_path, presses):
    """A real terminal (a pty whose foreground is tasks.py's group): the terminal sends SIGINT
    to the command itself, so tasks.py must not send it again."""
    import fcntl
    import pty
    import termios

    master, slave = pty.openpty()

    def take_terminal():  # the new session's controlling terminal: Ctrl-C goes to its group
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    try:
        driver, log = start_driver(tmp_path, stdin=slave, preexec_fn=take_terminal)
        for _ in range(presses):
            os.write(master, b"\x03")
            time.sleep(0.1)
        driver.communicate(timeout=60)
    finally:
        os.close(slave)
        os.close(master)
    pid, lines = child_lines(log)
    assert lines == ["SIGINT"] * presses + ["cleaned"]
    assert not psutil.pid_exists(pid)
    assert driver.returncode == 130


def test_what_tasks_py_passes_on(monkeypatch):
    monkeypatch.setattr(tasks.os, "name", "posix")
    monkeypatch.setattr(tasks, "in_terminal_foreground", lambda: True)
    assert tasks.passes_on(signal.SIGTERM) and not tasks.passes_on(signal.SIGINT)
    monkeypatch.setattr(tasks, "in_terminal_foreground", lambda: False)
    assert tasks.passes_on(signal.SIGINT)
    monkeypatch.setattr(tasks.os, "name", "nt")  # the console gives every process Ctrl-C
    assert not tasks.passes_on(signal.SIGINT) and not tasks.passes_on(signal.SIGTERM)


# --- output any console can show ----------------------------------------------------------

def test_a_cp1252_console_gets_escapes_instead_of_a_crash(tmp_path):
    env = {**os.environ, "PYTHONIOENCODING": "cp1252"}
    result = subprocess.run([sys.executable, str(ROOT / "tasks.py"), "rapport-Åse-漢字"],
                            env=env, capture_output=True, timeout=60)
    err = result.stderr.decode("cp1252")
    assert result.returncode == 2 and "Traceback" not in err
    assert "unknown command 'rapport-Åse-\\u6f22\\u5b57'" in err


def test_commands_run_get_an_encoding_error_handler(monkeypatch):
    for given, expected in (("cp1252", "cp1252:backslashreplace"), (None, ":backslashreplace"),
                            ("utf-8:strict", "utf-8:strict")):
        if given is None:
            monkeypatch.delenv("PYTHONIOENCODING", raising=False)
        else:
            monkeypatch.setenv("PYTHONIOENCODING", given)
        assert tasks.child_environment()["PYTHONIOENCODING"] == expected
    monkeypatch.setenv("PYTHONIOENCODING", "cp1252")
    tasks.run(sys.executable, "-c", "print('Åse 漢字')")  # would fail with strict cp1252


@pytest.mark.parametrize(("code", "expected"), [
    (errno.ENOSPC, "the disk is full"), (errno.EROFS, "read-only"),
    (errno.EACCES, "permission denied"),
])
def test_a_file_error_is_one_line_naming_the_path(monkeypatch, capsys, tmp_path, code,
                                                  expected):
    def fail():
        raise OSError(code, os.strerror(code), str(tmp_path / ".venv"))

    monkeypatch.setattr(tasks, "ensure_venv", fail)
    assert tasks.main(["test"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and str(tmp_path / ".venv") in err


# --- commands and paths from any folder ---------------------------------------------------

def test_an_unknown_command_is_named_with_the_closest_one_before_the_usage():
    result = subprocess.run([sys.executable, str(ROOT / "tasks.py"), "reprot"],
                            capture_output=True, text=True, timeout=60)
    first, _, rest = result.stderr.partition("\n")
    assert result.returncode == 2
    assert first == "tasks.py: unknown command 'reprot' (did you mean `python tasks.py report`?)"
    assert "python tasks.py clean" in rest


def test_paths_are_taken_from_the_folder_tasks_py_was_started_in(tmp_path):
    (tmp_path / "test_x.py").write_text("", encoding="utf-8")
    args = ["test_x.py::test_y", "-k", "x", "--out", "out", "--config=my.toml", "missing.py"]
    assert tasks.from_caller(args, tmp_path) == [
        f"{tmp_path / 'test_x.py'}::test_y", "-k", "x", "--out", str(tmp_path / "out"),
        f"--config={tmp_path / 'my.toml'}", "missing.py"]
    assert tasks.from_caller(args, ROOT) == args


@pytest.mark.slow
def test_a_test_file_named_from_the_tests_folder_runs():
    result = subprocess.run([sys.executable, "../tasks.py", "test", "test_project.py", "-v",
                             "-p", "no:cacheprovider"], cwd=ROOT / "tests", capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tests/test_project.py ." in result.stdout and " passed" in result.stdout


# --- clean ----------------------------------------------------------------------------------

@pytest.fixture
def project(tmp_path, monkeypatch):
    """tasks.py pointed at a project folder of its own, with a build/ to clean."""
    monkeypatch.setattr(tasks, "ROOT", tmp_path)
    (tmp_path / "build" / "handin").mkdir(parents=True)
    (tmp_path / "build" / "handin" / "assignment1.pdf").write_bytes(b"%PDF-")
    (tmp_path / ".pytest_cache").mkdir()
    return tmp_path


def test_clean_refuses_arguments_it_does_not_take(project, capsys):
    assert tasks.main(["clean", "handin"], project) == 2
    err = capsys.readouterr().err
    assert "takes no arguments (got handin)" in err and err.count("\n") == 1
    assert (project / "build" / "handin" / "assignment1.pdf").is_file()


def test_clean_removes_what_it_names(project):
    assert tasks.main(["clean"], project) == 0
    assert not (project / "build").exists() and not (project / ".pytest_cache").exists()


def test_clean_says_what_it_could_not_remove(project, capsys, monkeypatch):
    real_unlink = os.unlink

    def unlink(path, *args, **kwargs):
        if str(path).endswith("assignment1.pdf"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    assert tasks.main(["clean"], project) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "could not remove build" in err and "assignment1.pdf (Permission denied)" in err
    assert not (project / ".pytest_cache").exists()  # the rest is removed


def test_clean_refuses_during_a_running_build(project, capsys):
    holder = subprocess.Popen([sys.executable, "-c", BUILD_HOLDER, str(ROOT), str(project)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "holding\n"
    try:
        assert tasks.main(["clean"], project) == 1
        err = capsys.readouterr().err
        assert f"a build is running here (pid {holder.pid})" in err and err.count("\n") == 1
        assert (project / "build" / "handin" / "assignment1.pdf").is_file()
    finally:
        holder.kill()
        holder.wait()
    assert tasks.main(["clean"], project) == 0  # the lock of a build that ended is free
    assert not (project / "build").exists()


@pytest.mark.skipif(os.name == "nt", reason="symbolic links need privileges on Windows")
def test_clean_never_follows_a_linked_build_folder(project, tmp_path_factory, capsys):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "thesis.pdf").write_bytes(b"mine")
    shutil.rmtree(project / "build")
    (project / "build").symlink_to(elsewhere, target_is_directory=True)
    assert tasks.main(["clean"], project) == 1
    assert "build (a link" in capsys.readouterr().err
    assert (elsewhere / "thesis.pdf").read_bytes() == b"mine"


# --- set-up of .venv --------------------------------------------------------------------------

@pytest.fixture
def venv_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(tasks, "VENV", tmp_path / ".venv")
    return tmp_path / ".venv"


def other_python() -> str | None:
    """An interpreter of another minor version than this one (pyenv's), if there is one."""
    versions = Path.home() / ".pyenv" / "versions"
    for version in ("3.10", "3.12", "3.13", "3.11"):
        if version == tasks.python_label(sys.version_info[:2]):
            continue
        for found in sorted(versions.glob(f"{version}.*")):
            if (found / "bin" / "python").is_file():
                return str(found / "bin" / "python")
    return None


def test_a_venv_tasks_py_did_not_make_is_refused_and_left_alone(venv_dir):
    venv_dir.write_text("/home/me/envs/a1\n", encoding="utf-8")  # pipenv's pointer file
    with pytest.raises(tasks.UserError, match="is a file, not a folder"):
        tasks.rebuild_reason(tasks.venv_python(venv_dir))
    venv_dir.unlink()
    (venv_dir / "notes").mkdir(parents=True)
    (venv_dir / "notes" / "mine.txt").write_text("keep", encoding="utf-8")
    with pytest.raises(tasks.UserError, match="not a virtual environment"):
        tasks.rebuild_reason(tasks.venv_python(venv_dir))
    assert (venv_dir / "notes" / "mine.txt").is_file()


def test_why_a_venv_is_rebuilt(venv_dir, tmp_path):
    python = tasks.venv_python(venv_dir)
    assert tasks.rebuild_reason(python) is None  # none yet: it is simply made
    (venv_dir / "bin").mkdir(parents=True)
    assert "stopped before it was complete" in tasks.rebuild_reason(python)
    shutil.rmtree(venv_dir)
    if os.name != "nt":
        venv_dir.symlink_to(tmp_path / "gone")
        assert "link to" in tasks.rebuild_reason(python)
        venv_dir.unlink()
    other = tasks.venv_python(venv_dir, nt=os.name != "nt")
    other.parent.mkdir(parents=True)
    other.write_bytes(b"MZ")
    (venv_dir / "pyvenv.cfg").write_text("home = C:\\Python312\n", encoding="utf-8")
    assert tasks.rebuild_reason(python) == (
        f"it was made on {'Windows' if os.name != 'nt' else 'Linux or macOS'}")
    shutil.rmtree(venv_dir)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv_dir)], check=True)
    assert "it has no pip" in tasks.rebuild_reason(python)
    python.unlink()
    python.write_bytes(b"\x7fELF-not-really")  # another machine's binary
    python.chmod(0o755)
    assert "does not start" in tasks.rebuild_reason(python)


@pytest.mark.slow
def test_a_venv_of_another_python_is_rebuilt_with_one_line(venv_dir, monkeypatch, capsys):
    older = other_python()
    if older is None:
        pytest.skip("no Python of another version here (pyenv)")
    subprocess.run([older, "-m", "venv", "--without-pip", str(venv_dir)], check=True)
    installed = []
    monkeypatch.setattr(tasks, "pip_install", lambda python, *args: installed.append(args))
    python = tasks.ensure_venv()
    out = capsys.readouterr().out
    made = subprocess.run([older, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True).stdout.strip()
    assert f"rebuilding {venv_dir}: it was made with Python {made}, and this is Python" in out
    version = subprocess.run([str(python), "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True).stdout.strip()
    assert version == str(tuple(sys.version_info[:2]))
    assert [args[0] for args in installed] == ["-r", "--no-deps"]
    assert (venv_dir / ".installed").read_text(encoding="utf-8") == tasks.setup_fingerprint()


@pytest.mark.skipif(os.name == "nt", reason="symbolic links need privileges on Windows")
def test_a_linked_venv_is_unlinked_never_emptied(venv_dir, tmp_path):
    target = tmp_path / "my-env"
    (target / "lib").mkdir(parents=True)
    (target / "lib" / "mine.py").write_text("", encoding="utf-8")
    venv_dir.symlink_to(target, target_is_directory=True)
    tasks.remove_venv()
    assert not venv_dir.is_symlink() and (target / "lib" / "mine.py").is_file()


HOLDER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from tools import cli
from pathlib import Path
with cli.held(Path(sys.argv[2]), lambda pid: print("waiting for", pid, flush=True)):
    print("holding", flush=True)
    time.sleep(float(sys.argv[3]))
"""


#: Holds the build lock as a build does.
BUILD_HOLDER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from tools import report
from tools.config import Project
with report.locked(Project(Path(sys.argv[2]))):
    print("holding", flush=True)
    time.sleep(60)
"""


def hold(lock: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(ROOT), str(lock),
                               str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "holding\n"
    return holder


#: Holds the set-up lock as a first set-up does, and leaves a finished .venv behind.
FIRST_SETUP = """
import sys, time
sys.path.insert(0, sys.argv[1])
from tools import cli
from pathlib import Path
python, stamp = Path(sys.argv[3]), Path(sys.argv[4])
with cli.held(Path(sys.argv[2]), lambda pid: None):
    print("holding", flush=True)
    time.sleep(1.0)
    python.parent.mkdir(parents=True)
    python.write_bytes(b"")
    stamp.write_text(sys.argv[5], encoding="utf-8")
"""


@pytest.mark.slow
def test_a_second_set_up_waits_with_one_line_and_uses_the_first_ones_venv(venv_dir, capsys):
    python = tasks.venv_python(venv_dir)
    first = subprocess.Popen([sys.executable, "-c", FIRST_SETUP, str(ROOT),
                              str(venv_dir.with_name(".venv.lock")), str(python),
                              str(venv_dir / ".installed"), tasks.setup_fingerprint()],
                             stdout=subprocess.PIPE, text=True)
    assert first.stdout.readline() == "holding\n"
    assert tasks.ensure_venv() == python  # no set-up of its own: the first one's .venv
    assert first.wait(timeout=30) == 0
    assert capsys.readouterr().out == (f"waiting for another set-up of {venv_dir} (pid "
                                       f"{first.pid}) to finish\n")


@pytest.mark.slow
@posix_only
def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    lock = tmp_path / ".venv.lock"
    holder = hold(lock, 60)
    holder.kill()
    holder.wait()
    second = hold(lock, 0)  # takes it at once: nothing printed before "holding"
    assert second.wait(timeout=30) == 0


@pytest.mark.slow
def test_two_holders_never_overlap(tmp_path):
    lock = tmp_path / "x.lock"
    first = hold(lock, 1.0)
    second = subprocess.Popen([sys.executable, "-c", HOLDER, str(ROOT), str(lock),
                               "0"], stdout=subprocess.PIPE, text=True)
    assert second.stdout.readline() == f"waiting for {first.pid}\n"
    assert first.poll() is None  # still held while the second waits
    assert second.stdout.readline() == "holding\n"
    assert first.wait(timeout=30) == 0 and second.wait(timeout=30) == 0


def test_the_makefile_names_every_command():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = next(line for line in makefile.splitlines() if line.startswith("TARGETS"))
    assert set(targets.split(":=")[1].split()) == set(tasks.TASKS)


def test_the_docstring_lists_every_command():
    listed = {line.split()[2] for line in tasks.__doc__.splitlines()
              if line.startswith("    python tasks.py")}
    assert listed == set(tasks.TASKS) - {"venv"}
