"""What the commands share, standard library only (tasks.py imports it before .venv exists):
one-line errors, output any console can show, stop signals, digests, and the lock that
allows one set-up of .venv and one build at a time."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

#: The signals that stop a command: Ctrl-C, an IDE's stop button, a closed terminal, Ctrl-Break.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP",
                                                        "SIGBREAK") if hasattr(signal, name))


class UserError(Exception):
    """A failure or refusal told in one line: what is wrong and how to fix it (no traceback)."""


class Stopped(BaseException):
    """A stop signal arrived; ``args[0]`` is its number."""


def tolerant_console() -> None:
    """Print what the console cannot show as escapes (``\\u00c5``) instead of failing."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


_WRITABLE = "make it writable (or work in a copy of the project you own), then run again"
_ADVICE = {errno.ENOSPC: "the disk is full: free some space and run again",
           errno.EDQUOT: "the disk quota is used up: free some space and run again",
           errno.EROFS: "that file system is read-only: work in a copy of the project on a "
                        "writable disk",
           errno.EACCES: f"permission denied: {_WRITABLE}",
           errno.EPERM: f"not permitted: {_WRITABLE}"}


def describe(exc: OSError) -> str:
    """One line for a failed file operation: the path, what failed, and the usual fix."""
    advice = _ADVICE.get(exc.errno, exc.strerror or str(exc))
    if exc.errno == errno.EACCES and os.name == "nt":  # Windows also says so for open files
        advice += " (on Windows: close the program that has it open)"
    return f"{exc.filename}: {advice}" if exc.filename else advice


class StopSignals:
    """While entered (main thread), the first stop signal raises ``Stopped`` and later ones are
    ignored while the command stops; ``deferred`` holds them back over a swap of files."""

    def __enter__(self) -> StopSignals:
        self.held: list[int] | None = None
        self.stopping = False
        self.previous = {signum: signal.signal(signum, self._handle) for signum in STOP_SIGNALS}
        return self

    def _handle(self, signum: int, _frame: object) -> None:
        if self.held is not None:
            self.held.append(signum)
        elif not self.stopping:
            self.stopping = True
            raise Stopped(signum)

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self.held = []
        try:
            yield
        finally:
            held, self.held = self.held, None
        if held:
            self._handle(held[0], None)


def run_main(main: Callable[[], int]) -> None:
    """Run a command's ``main`` as the program: exit with its code, or with 130 after Ctrl-C
    (which ``main`` has reported, then passed on); a further Ctrl-C changes nothing then."""
    def once(signum: int, _frame: object) -> None:
        signal.signal(signum, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, once)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def venv_python(folder: Path, nt: bool | None = None) -> Path:
    """A virtual environment's interpreter: ``Scripts\\python.exe`` on Windows, else
    ``bin/python`` (``nt`` overrides the OS, for tests)."""
    return Path(folder) / ("Scripts/python.exe" if (os.name == "nt" if nt is None else nt)
                           else "bin/python")


def _lock(fd: int, take: bool, at: int = 1 << 20) -> bool:
    """Take (without waiting) or release the OS lock on ``fd`` (on Windows, of byte ``at``:
    by default one past the pid, so that others can read it); whether that worked."""
    if os.name == "nt":
        import msvcrt

        os.lseek(fd, at, os.SEEK_SET)
        with contextlib.suppress(OSError):
            msvcrt.locking(fd, msvcrt.LK_NBLCK if take else msvcrt.LK_UNLCK, 1)
            return True
        return False
    import fcntl

    with contextlib.suppress(BlockingIOError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB if take else fcntl.LOCK_UN)
        return True
    return False


@contextlib.contextmanager
def held(lock: Path, waiting: Callable[[int | None], None]) -> Iterator[None]:
    """Hold an OS lock on the file ``lock`` (the holder's pid in it; the OS drops a killed
    holder's) while the block runs; if taken, call ``waiting`` with the holder's pid and wait."""
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _lock(fd, True):
            os.lseek(fd, 0, os.SEEK_SET)
            first = os.read(fd, 32).strip()
            waiting(int(first) if first.isdigit() else None)
            while not _lock(fd, True):
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, str(os.getpid()).encode("ascii"))
        yield
    finally:
        _lock(fd, False)
        os.close(fd)  # the file stays: removed while another waits, two could hold it


def build_holder(build: Path) -> str | None:
    """" (pid N)" while a build holds build/.build.lock (filelock: flock, or byte 0 on
    Windows), "" when the pid is unknown, None when no build holds it."""
    try:
        fd = os.open(build / ".build.lock", os.O_RDWR)
    except OSError:  # no lock file, or one nobody can open: no build holds it
        return None
    try:
        if _lock(fd, True, at=0):
            _lock(fd, False, at=0)
            return None
    finally:
        os.close(fd)
    with contextlib.suppress(OSError, ValueError):
        return f" (pid {int((build / '.build.pid').read_text(encoding='ascii'))})"
    return ""
