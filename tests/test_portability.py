"""Any OS: tasks.py runs every command without make, knows Windows' venv layout, and the
project's code uses no POSIX-only call unguarded and states UTF-8 wherever it reads or writes
text (Windows' default encoding is not UTF-8)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from tools.cli import venv_python
from tools.config import HANDIN_FILES

#: The project's own code (tests are run on CI's Linux; their helpers are not shipped).
PRODUCT = sorted([*ROOT.glob("*.py"), *(ROOT / "tools").glob("*.py"),
                  *(ROOT / "benchmarks").glob("*.py")])

#: Calls that do something else, or nothing, on Windows, with the places that guard them.
POSIX_ONLY = {"os.fork", "os.setsid", "os.killpg", "os.getuid", "os.getpgid", "os.getpgrp",
              "os.tcgetpgrp", "os.kill", "signal.SIGKILL", "signal.SIGHUP", "signal.SIGALRM",
              "resource", "fcntl", "termios", "pwd", "grp"}
GUARDED = {
    ("cli.py", "fcntl"),  # held: the Windows branch uses msvcrt
    ("tasks.py", "os.tcgetpgrp"),  # in_terminal_foreground: only where passes_on is not nt
    ("tasks.py", "os.getpgrp"),
    ("bench_training.py", "resource"),  # imported in a try: ImportError on Windows
    ("mnist.py", "os.kill"),  # _running: on Windows it asks the kernel through ctypes instead
}


def dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def test_no_posix_only_call_and_no_shell_unguarded():
    found = []
    for path in PRODUCT:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Attribute):
                names.append(dotted(node))
            elif isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.append(node.module)
            elif isinstance(node, ast.Call):
                names += [f"shell={ast.unparse(k.value)}" for k in node.keywords
                          if k.arg == "shell"]
            for name in names:
                if (name in POSIX_ONLY or name.startswith("shell=")) and \
                        (path.name, name) not in GUARDED:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert not found, "POSIX-only or shell calls: " + "; ".join(found)


def test_the_hand_in_and_the_data_loader_need_only_numpy_and_matplotlib():
    """The course's environment runs the six files and mnist.py: they import the standard
    library, NumPy, Matplotlib and each other, nothing else (psutil, say, is not there)."""
    own = {Path(name).stem for name in HANDIN_FILES} | {"mnist"}
    allowed = {*sys.stdlib_module_names, "numpy", "matplotlib", *own}
    found = []
    for name in (*HANDIN_FILES, "mnist.py"):
        for node in ast.walk(ast.parse((ROOT / name).read_text(encoding="utf-8"))):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            found += [f"{name}:{node.lineno}: {m}" for m in modules
                      if m.partition(".")[0] not in allowed]
    assert not found, "imports the course's environment lacks: " + "; ".join(found)


def test_text_files_are_read_and_written_as_utf8():
    found = []
    for path in PRODUCT:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            keywords = {k.arg for k in node.keywords}
            name = dotted(node.func)
            text_open = name == "open" and not any(
                isinstance(a, ast.Constant) and "b" in str(a.value) for a in node.args[1:2])
            if (name.endswith((".read_text", ".write_text")) or text_open) and \
                    "encoding" not in keywords:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)[:60]}")
    assert not found, "text I/O without encoding=: " + "; ".join(found)


def test_the_venv_interpreter_on_windows_and_elsewhere(tmp_path):
    assert venv_python(tmp_path / ".venv", nt=True) == tmp_path / ".venv" / "Scripts" / \
        "python.exe"
    assert venv_python(tmp_path / ".venv", nt=False) == tmp_path / ".venv" / "bin" / "python"
    assert venv_python(tmp_path / ".venv") == venv_python(tmp_path / ".venv", nt=os.name == "nt")


def test_tasks_py_needs_no_make(tmp_path):
    """With make hidden from PATH, tasks.py lists its commands and runs one through .venv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("git",):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    env = {**os.environ, "PATH": str(bin_dir)}
    assert shutil.which("make", path=env["PATH"]) is None
    listing = subprocess.run([sys.executable, str(ROOT / "tasks.py")], env=env,
                             capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0 and "python tasks.py report" in listing.stdout
    result = subprocess.run([sys.executable, str(ROOT / "tasks.py"), "lint"], env=env,
                            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "need nothing newer than Python 3.8" in result.stdout


@pytest.mark.parametrize("version", [(3, 8, 18), (3, 9, 0)])
def test_tasks_py_says_which_python_it_needs(monkeypatch, tmp_path, version, capsys):
    import tasks

    monkeypatch.setattr(tasks, "VENV", tmp_path / ".venv")
    monkeypatch.setattr(tasks.sys, "version_info", version)
    assert tasks.main(["venv"]) == 1
    err = capsys.readouterr().err
    assert "need Python 3.10 to 3.13" in err and "\n" not in err.strip()
    assert f"this is Python {'.'.join(map(str, version))}" in err
    assert not (tmp_path / ".venv").exists()
