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

Each sets up .venv from requirements.lock first. Extra arguments go to the command (after
``test`` to pytest), paths taken from the folder you are in.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import shutil
import signal
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

from tools import cli
from tools.cli import Stopped, UserError, venv_python
from tools.config import HANDIN_FILES

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
#: The Pythons the README names; requirements.lock is compiled for all of them.
MIN_PYTHON, NEWEST_PYTHON = (3, 10), (3, 13)
CLEANED = ("build", ".pytest_cache", ".ruff_cache", ".hypothesis")
#: The comment that marks a source archive as written by `python tasks.py zip`.
ZIP_MARK = b"assignment1 source archive, written by `python tasks.py zip`"
#: Options whose value is a path (made absolute from the folder tasks.py was started in).
PATH_OPTIONS = ("--out", "--config", "--notebook", "--zip", "--envs")
#: Exit codes of a command stopped by Ctrl-C (POSIX shells, Python, Windows' STATUS_CONTROL_C_EXIT).
INTERRUPTED = (130, -signal.SIGINT, 0xC000013A)


def python_label(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def in_terminal_foreground() -> bool:
    """Whether a Ctrl-C typed in this process's terminal reaches the command too (POSIX)."""
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            return os.tcgetpgrp(stream.fileno()) == os.getpgrp()
    return False


def passes_on(signum: int) -> bool:
    """Whether tasks.py sends ``signum`` on to its command: never on Windows (the console gives
    Ctrl-C to every process), SIGINT only when the terminal did not send it to the command."""
    return os.name != "nt" and (signum != signal.SIGINT or not in_terminal_foreground())


def child_environment() -> dict[str, str]:
    """The commands' environment: a console that cannot show a character gets an escape."""
    encoding = os.environ.get("PYTHONIOENCODING", "")
    return {**os.environ, "PYTHONIOENCODING": encoding if ":" in encoding
            else f"{encoding}:backslashreplace"}


def run(*command: str | Path) -> None:
    """Run a command in the project's root, passing stop signals on and waiting for its clean-up:
    KeyboardInterrupt after Ctrl-C, Stopped after SIGTERM or SIGHUP, CalledProcessError."""
    received: list[int] = []
    child: subprocess.Popen | None = None

    def on_signal(signum: int, frame: object) -> None:
        received.append(signum)
        if child is not None and passes_on(signum):
            child.send_signal(signum)

    previous = {signum: signal.signal(signum, on_signal) for signum in cli.STOP_SIGNALS}
    try:
        child = subprocess.Popen([str(c) for c in command], cwd=ROOT, env=child_environment())
        for signum in filter(passes_on, received):  # arrived while the command was starting
            child.send_signal(signum)
        code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    stops = [signum for signum in received if signum != signal.SIGINT]
    if stops:
        raise Stopped(stops[0])
    if received or code in INTERRUPTED:
        raise KeyboardInterrupt
    if code != 0:
        raise subprocess.CalledProcessError(code if code > 0 else 128 - code, command)


def setup_fingerprint() -> str:
    """What .venv is built from: the lock, pyproject.toml and this Python's version."""
    data = b"".join((ROOT / name).read_bytes() for name in ("requirements.lock", "pyproject.toml"))
    return f"{cli.sha256(data)}\n{sys.implementation.name} {python_label(sys.version_info[:2])}\n"


def rebuild_reason(python: Path) -> str | None:
    """Why ``.venv`` cannot be completed in place (None: it can, or there is none);
    UserError for a ``.venv`` that tasks.py did not make."""
    if VENV.is_symlink() and not VENV.exists():
        return f"it is a link to {os.readlink(VENV)}, which does not exist"
    if not VENV.exists():
        return None
    if not VENV.is_dir():
        raise UserError(f"{VENV} is a file, not a folder: tasks.py keeps the project's "
                        f"environment there. Move or rename that file, then run again.")
    if not (VENV / "pyvenv.cfg").is_file():
        if any(files for _, _, files in os.walk(VENV)):
            raise UserError(f"{VENV} holds files but is not a virtual environment (it has no "
                            f"pyvenv.cfg): move or rename that folder, then run again.")
        return "an earlier set-up stopped before it was complete"
    if not python.is_file():
        if python.is_symlink():
            return f"its interpreter {os.readlink(python)} no longer exists"
        other = venv_python(VENV, nt=os.name != "nt")
        if other.is_file() or other.is_symlink():
            return f"it was made on {'Windows' if os.name != 'nt' else 'Linux or macOS'}"
        return "it has no interpreter (an earlier set-up stopped before it was complete)"
    code = ("import sys, importlib.util; print('%d.%d' % sys.version_info[:2], "
            "importlib.util.find_spec('pip') is not None)")
    try:
        found = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                               timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"its interpreter does not start ({getattr(exc, 'strerror', None) or exc})"
    if found.returncode != 0 or len(found.stdout.split()) != 2:
        return f"its interpreter does not start (exit {found.returncode})"
    version, has_pip = found.stdout.split()
    if version != python_label(sys.version_info[:2]):
        return (f"it was made with Python {version}, and this is Python "
                f"{python_label(sys.version_info[:3])} ({sys.executable})")
    return None if has_pip == "True" else \
        "it has no pip (an earlier set-up stopped before it was complete)"


def remove_venv() -> None:
    """Remove ``.venv`` (a link: the link only, never what it points to)."""
    try:
        if VENV.is_symlink():
            VENV.unlink()
        elif VENV.exists():
            shutil.rmtree(VENV)
    except OSError as exc:
        raise UserError(f"could not remove {VENV} to rebuild it ({cli.describe(exc)}); close "
                        f"the programs that run from it (Jupyter, a terminal in an editor) or "
                        f"delete it yourself, then run again.") from exc


def pip_install(python: Path, *arguments: str | Path) -> None:
    try:
        run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *arguments)
    except subprocess.CalledProcessError as exc:
        raise UserError(f"setting up {VENV} failed: pip install {arguments[-1]} exited with "
                        f"{exc.returncode} (its message is above); fix that (the network, disk "
                        f"space) and run again", exc.returncode) from exc


def ensure_venv() -> Path:
    """The interpreter of ``.venv``, created, completed or rebuilt as needed (one set-up at a
    time: ``.venv.lock``)."""
    python, stamp, wanted = venv_python(VENV), VENV / ".installed", setup_fingerprint()

    def ready() -> bool:
        with contextlib.suppress(OSError):
            return python.is_file() and stamp.read_text(encoding="utf-8") == wanted
        return False

    if ready():
        return python
    if sys.version_info < MIN_PYTHON:
        raise UserError(f"the project's tools need Python {python_label(MIN_PYTHON)} to "
                        f"{python_label(NEWEST_PYTHON)} to set up .venv; this is Python "
                        f"{python_label(sys.version_info[:3])} ({sys.executable}). Run this "
                        f"command with a newer Python (python.org, or conda create -n a1 "
                        f"python=3.12). The hand-in itself runs on 3.8.")
    with cli.held(VENV.with_name(".venv.lock"), lambda pid: print(
            f"waiting for another set-up of {VENV}{f' (pid {pid})' if pid else ''} to finish",
            flush=True)):
        if ready():  # the set-up we waited for made it
            return python
        reason = rebuild_reason(python)
        if reason:
            print(f"rebuilding {VENV}: {reason}", flush=True)
            remove_venv()
        if not python.is_file():
            print(f"setting up {VENV} with Python {python_label(sys.version_info[:3])} "
                  f"({sys.executable})", flush=True)
            try:
                venv.EnvBuilder(with_pip=True).create(VENV)
            except subprocess.CalledProcessError as exc:
                raise UserError(f"{sys.executable} could not install pip into {VENV} (ensurepip "
                                f"failed); on Debian or Ubuntu install python3-venv (apt install "
                                f"python3-venv), then run again.") from exc
        else:
            print(f"updating {VENV} to requirements.lock", flush=True)
        pip_install(python, "-r", ROOT / "requirements.lock")
        # the project itself, so that Jupyter lists the Report_PDF export format
        pip_install(python, "--no-deps", "--no-build-isolation", "-e", ROOT)
        stamp.with_name(".installed.part").write_text(wanted, encoding="utf-8")
        os.replace(stamp.with_name(".installed.part"), stamp)
    return python


def from_caller(args: list[str], cwd: Path) -> list[str]:
    """``args`` with their paths made absolute from ``cwd``, where tasks.py was started: the
    values of PATH_OPTIONS and any argument naming a file there (``test_x.py::test_y`` too)."""
    out: list[str] = []
    for i, arg in enumerate(args):
        option, eq, value = arg.partition("=")
        path, sep, rest = arg.partition("::")
        if eq and option in PATH_OPTIONS:
            arg = f"{option}={os.path.abspath(cwd / value)}"
        elif i and args[i - 1] in PATH_OPTIONS:
            arg = os.path.abspath(cwd / arg)
        elif not arg.startswith("-") and path and (cwd / path).exists():
            arg = os.path.abspath(cwd / path) + sep + rest
        out.append(arg)
    return out if cwd != ROOT else args


def source_zip(out: Path) -> Path:
    """Write into ``out`` every file git tracks as the working tree has it (``git stash create``
    touches nothing), replacing only an archive it wrote (its comment says so)."""
    target = out / "assignment1-source.zip"
    if os.path.lexists(target):
        try:
            with zipfile.ZipFile(target) as archive:
                ours = not target.is_symlink() and archive.comment == ZIP_MARK
        except (OSError, zipfile.BadZipFile):
            ours = False
        if not ours:
            raise UserError(f"{target} is not an archive `python tasks.py zip` wrote (or a "
                            f"link): move it somewhere else, then `python tasks.py zip` again.")
    state = subprocess.run(["git", "stash", "create"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip() or "HEAD"
    part = out / f".{target.name}.{os.getpid()}.part"
    out.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["git", "archive", "--format=zip", f"--output={part}", state], cwd=ROOT,
                       check=True, capture_output=True)
        with zipfile.ZipFile(part, "a") as archive:
            archive.comment = ZIP_MARK
        os.replace(part, target)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise UserError(f"could not write the archive ({getattr(exc, 'stderr', b'').decode()}"
                        f"{cli.describe(exc) if isinstance(exc, OSError) else ''}): it needs a "
                        f"git checkout and a writable build/") from exc
    finally:
        part.unlink(missing_ok=True)
    with zipfile.ZipFile(target) as archive:
        print(f"wrote {target}: {len(archive.namelist())} files")
    return target


def task_lint(py: Path, args: list[str]) -> None:
    """ruff, and vermin on what runs on Python 3.8 (the hand-in, mnist.py and its stand-in)."""
    on_38 = [*HANDIN_FILES, "mnist.py", "tools/course_mnist.py"]
    run(py, "-m", "ruff", "check", ".", *args)
    run(py, "-c", "import sys, vermin; sys.exit(vermin.main())", "--no-tips", "--violations",
        "--target=3.8-", *on_38)
    print(f"vermin: {', '.join(on_38)} need nothing newer than Python 3.8")


def task_lock(py: Path, args: list[str]) -> None:
    """One lock for every Python from MIN_PYTHON on (uv's universal resolution)."""
    run(py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "uv")
    run(py, "-m", "uv", "pip", "compile", "--quiet", "--universal", "--python-version",
        python_label(MIN_PYTHON), "--no-header", "--output-file", "requirements.lock",
        "requirements.txt", *args)


def task_hooks(py: Path, args: list[str]) -> None:
    run(py, "-m", "nbstripout", "--install", "--attributes", ".gitattributes")
    print("notebook outputs are now stripped from what you commit (the file on disk keeps them)")


def task_clean(py: None, args: list[str]) -> None:
    """Remove CLEANED; refuses arguments and a running build, and names what it could not."""
    folders = ", ".join(f"{name}/" for name in CLEANED)
    if args:
        raise UserError(f"takes no arguments (got {' '.join(args)}): it removes {folders}; to "
                        f"remove less, delete that file or folder yourself", 2)

    holder = None if (ROOT / "build").is_symlink() else cli.build_holder(ROOT / "build")
    if holder is not None:
        raise UserError(f"a build is running here{holder}: let it finish or stop it, then clean")
    left: list[str] = []

    def failed(function: object, path: str, exc: BaseException) -> None:
        left.append(f"{os.path.relpath(path, ROOT)} ({getattr(exc, 'strerror', None) or exc})")

    on_error = {"onexc": failed} if sys.version_info >= (3, 12) else \
        {"onerror": lambda function, path, info: failed(function, path, info[1])}
    for name in CLEANED:
        path = ROOT / name
        if path.is_symlink() or path.is_file():
            left.append(f"{name} (a {'link' if path.is_symlink() else 'file'}, not a folder "
                        f"tasks.py made: remove it yourself)")
        elif path.exists():
            shutil.rmtree(path, **on_error)
    if left:
        more = f" and {len(left) - 3} more" if len(left) > 3 else ""
        raise UserError(f"could not remove {'; '.join(left[:3])}{more}: make them writable or "
                        f"remove them yourself (the rest of {folders} is removed)")


TASKS = {
    "report": lambda py, args: run(py, "-m", "tools.report", "--out", ROOT / "build", *args),
    "test": lambda py, args: run(py, "-m", "pytest", "-q", *args),
    "test-quick": lambda py, args: run(py, "-m", "pytest", "-q", "-m", "not slow", *args),
    "handin": lambda py, args: run(py, "-m", "tools.handin", *args),
    "handin-check": lambda py, args: run(py, "-m", "tools.handin_check", *args),
    "bench": lambda py, args: run(py, ROOT / "benchmarks" / "bench_training.py", *args),
    "zip": lambda py, args: source_zip(Path(args[1]) if args[:1] == ["--out"] else ROOT / "build"),
    "lint": task_lint, "lock": task_lock, "hooks": task_hooks,
    "clean": task_clean, "venv": lambda py, args: None,
}
#: Commands that need no .venv.
STDLIB_ONLY = ("clean", "zip")


def main(argv: list[str], cwd: Path = ROOT) -> int:
    """Run the command ``argv`` names (``cwd``: where tasks.py was started); its exit code."""
    usage = __doc__.strip()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage)
        return 0
    name, args = argv[0], from_caller(argv[1:], cwd)
    if name not in TASKS:
        close = difflib.get_close_matches(name, TASKS, n=1)
        hint = f" (did you mean `python tasks.py {close[0]}`?)" if close else ""
        print(f"tasks.py: unknown command {name!r}{hint}\n\n{usage}", file=sys.stderr)
        return 2
    try:
        TASKS[name](None if name in STDLIB_ONLY else ensure_venv(), args)
    except UserError as exc:
        print(f"tasks.py {name}: {exc.args[0]}", file=sys.stderr)
        return exc.args[1] if len(exc.args) > 1 else 1
    except subprocess.CalledProcessError as exc:  # the command has said why
        return exc.returncode
    except Stopped as exc:
        with contextlib.suppress(OSError):  # SIGHUP: the terminal may be gone
            print(f"tasks.py {name}: stopped by {signal.Signals(exc.args[0]).name}",
                  file=sys.stderr)
        return 128 + exc.args[0]
    except KeyboardInterrupt:  # the interrupted command has said what it kept
        return 130
    except OSError as exc:  # a read-only checkout, a full disk
        print(f"tasks.py {name}: {cli.describe(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    cli.tolerant_console()
    try:
        caller = Path.cwd()
    except OSError:  # the folder it was started in is gone
        caller = ROOT
    os.chdir(ROOT)
    sys.exit(main(sys.argv[1:], caller))
