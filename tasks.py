"""The project's commands on any OS, with nothing but Python (standard library only).

    python tasks.py report        build the report: build/assignment1.pdf (+ .html, figures)
    python tasks.py test          the whole test suite
    python tasks.py test-quick    every test not marked slow
    python tasks.py handin        build/handin/: assignment_code.zip and assignment1.pdf
    python tasks.py handin-check  run the hand-in on Python 3.8 + NumPy 1.20 and on the newest
    python tasks.py zip           the full source archive: build/assignment1-source.zip
    python tasks.py bench         speed and memory benchmark (ratios measured side by side)
    python tasks.py lint          ruff, and vermin on the hand-in files (Python 3.8)
    python tasks.py lock          regenerate requirements.lock from requirements.txt
    python tasks.py hooks         strip notebook outputs on commit (nbstripout as a git filter)
    python tasks.py clean         remove build/ and tool caches

Every command first sets up ``.venv`` from ``requirements.lock`` (again whenever the lock or
pyproject.toml changes): ``.venv/bin/python`` on Linux and macOS, ``.venv\\Scripts\\python.exe``
on Windows. The Makefile's targets are aliases of these commands. Extra arguments after
``test`` or ``test-quick`` go to pytest (``python tasks.py test tests/test_models.py``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tools"))
from venvs import venv_python  # noqa: E402

VENV = ROOT / ".venv"
MIN_PYTHON = (3, 10)


class TaskError(Exception):
    """A failure with a message for the user (printed without a traceback)."""


def run(*command: str | Path) -> None:
    """Run a command from the project's root; TaskError when it fails.

    Ctrl-C reaches the command too (it is in the same process group); this waits for it to
    finish its own clean-up instead of killing it, then stops quietly. A second Ctrl-C
    stops the command."""
    child = subprocess.Popen([str(c) for c in command], cwd=ROOT)
    interrupts = 0
    while True:
        try:
            returncode = child.wait()
            break
        except KeyboardInterrupt:  # the child got the same Ctrl-C and is finishing
            interrupts += 1
            if interrupts > 1:
                child.terminate()
    if returncode in (130, -2):  # the child was interrupted and has said so
        raise KeyboardInterrupt
    if returncode != 0:
        raise TaskError(f"`{' '.join(str(c) for c in command)}` failed (exit {returncode})",
                        returncode)


def setup_fingerprint() -> str:
    """What the environment is built from: the lock and pyproject.toml."""
    digest = hashlib.sha256()
    for name in ("requirements.lock", "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def ensure_venv() -> Path:
    """The environment's interpreter, after creating or updating ``.venv`` as needed."""
    python = venv_python(VENV)
    stamp = VENV / ".installed"
    wanted = setup_fingerprint()
    if python.is_file() and stamp.is_file() and stamp.read_text(encoding="utf-8") == wanted:
        return python
    if sys.version_info < MIN_PYTHON:
        raise TaskError(f"the project's tools need Python >= {'.'.join(map(str, MIN_PYTHON))} "
                        f"to set up .venv; this is Python {sys.version.split()[0]} "
                        f"({sys.executable}). Run this command with a newer Python (python.org, "
                        f"or conda create -n a1 python=3.12). The hand-in itself runs on 3.8.")
    if not python.is_file():
        print(f"setting up {VENV} with {sys.executable}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "-r", ROOT / "requirements.lock")
    # the project itself, so that Jupyter lists the report_pdf export format
    run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
        "--no-build-isolation", "-e", ROOT)
    stamp.write_text(wanted, encoding="utf-8")
    return python


def task_report(py: Path, args: list[str]) -> None:
    run(py, ROOT / "tools" / "build_report.py", "--out", ROOT / "build", *args)


def task_test(py: Path, args: list[str]) -> None:
    run(py, "-m", "pytest", "-q", *args)


def task_test_quick(py: Path, args: list[str]) -> None:
    run(py, "-m", "pytest", "-q", "-m", "not slow", *args)


def task_handin(py: Path, args: list[str]) -> None:
    run(py, ROOT / "tools" / "make_handin.py", "--build", ROOT / "build", *args)


def task_handin_check(py: Path, args: list[str]) -> None:
    run(py, ROOT / "tools" / "handin_check.py", *args)


def task_zip(py: Path, args: list[str]) -> None:
    run(py, ROOT / "tools" / "make_zip.py", "--out", ROOT / "build", *args)


def task_bench(py: Path, args: list[str]) -> None:
    run(py, ROOT / "benchmarks" / "bench_training.py", *args)


#: The files the hand-in zips: they run on Python 3.8 (checked by vermin here, by running them
#: there in handin-check).
HANDIN_FILES = ["task2.py", "task2a.py", "task3.py", "task3a.py", "trainer.py", "utils.py",
                "mnist.py"]


def task_lint(py: Path, args: list[str]) -> None:
    run(py, "-m", "ruff", "check", ".", *args)
    run(py, "-c", "import sys, vermin; sys.exit(vermin.main())", "--no-tips", "--violations",
        "--target=3.8-", *HANDIN_FILES)
    print(f"vermin: {', '.join(HANDIN_FILES)} need nothing newer than Python 3.8")


def task_lock(py: Path, args: list[str]) -> None:
    run(py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "pip-tools")
    run(py, "-m", "piptools", "compile", "--quiet", "--strip-extras", "--no-header",
        "--no-emit-index-url", "--no-emit-find-links", "--allow-unsafe",
        "--output-file", "requirements.lock", "requirements.txt")


def task_hooks(py: Path, args: list[str]) -> None:
    run(py, "-m", "nbstripout", "--install", "--attributes", ".gitattributes")
    print("notebook outputs are now stripped from what you commit (the file on disk keeps them)")


def task_clean(py: Path | None, args: list[str]) -> None:
    for name in ("build", ".pytest_cache", ".ruff_cache", ".hypothesis"):
        shutil.rmtree(ROOT / name, ignore_errors=True)


TASKS = {
    "report": task_report, "test": task_test, "test-quick": task_test_quick,
    "handin": task_handin, "handin-check": task_handin_check, "zip": task_zip,
    "bench": task_bench, "lint": task_lint, "lock": task_lock, "hooks": task_hooks,
    "clean": task_clean, "venv": lambda py, args: None,
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help") or argv[0] not in TASKS:
        print(__doc__.strip())
        return 0 if not argv or argv[0] in ("-h", "--help", "help") else 2
    name, args = argv[0], argv[1:]
    try:
        python = None if name == "clean" else ensure_venv()
        TASKS[name](python, args)
    except TaskError as exc:
        print(f"tasks.py {name}: {exc.args[0]}", file=sys.stderr)
        return exc.args[1] if len(exc.args) > 1 else 1
    except KeyboardInterrupt:  # the interrupted command has said what it kept
        return 130
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main(sys.argv[1:]))
