"""What the command-line tools share, on any OS with the standard library only (tasks.py
imports it before .venv exists): console output that survives any encoding, one line for a
failed file operation, file digests, where a venv keeps its interpreter, and the set-up lock."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class UserError(Exception):
    """A failure or refusal whose message is one line for the user (printed without a
    traceback): what is wrong and how to fix it."""


def tolerant_console() -> None:
    """Write what the console cannot show as escapes (``\\u00c5``) instead of failing: a
    Windows console with output redirected is cp1252, and paths may hold any letter."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


_ADVICE = {
    errno.ENOSPC: "the disk is full: free some space and run again",
    errno.EDQUOT: "the disk quota is used up: free some space and run again",
    errno.EROFS: "that file system is read-only: work in a copy of the project on a writable "
                 "disk",
    errno.EACCES: "permission denied: make that folder writable (or work in a copy of the "
                  "project you own), then run again",
    errno.EPERM: "not permitted: make that folder writable (or work in a copy of the project "
                 "you own), then run again",
}


def describe(exc: OSError) -> str:
    """One line for a failed file operation: the path, what failed, and the usual fix."""
    where = f"{exc.filename}: " if exc.filename else ""
    advice = _ADVICE.get(exc.errno, exc.strerror or str(exc))
    if exc.errno == errno.EACCES and os.name == "nt":  # Windows also says so for open files
        advice += " (on Windows: close the program that has it open)"
    return f"{where}{advice}"


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs (True when that cannot be told)."""
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # query-limited
        if not handle:
            return ctypes.GetLastError() != 87  # ERROR_INVALID_PARAMETER: no such process
        ctypes.windll.kernel32.CloseHandle(handle)
        return True
    try:
        os.kill(pid, 0)  # signal 0: a check, nothing is sent
    except ProcessLookupError:
        return False
    except OSError:
        return True  # alive, but not ours to signal
    return True


def running_pid(pid_file: Path) -> int | None:
    """The process id in ``pid_file`` while that process runs, else None."""
    try:
        pid = int(pid_file.read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None
    return pid if pid > 0 and process_alive(pid) else None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digest(path: str | Path) -> str:
    """A file's SHA-256."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def venv_python(folder: Path, nt: bool | None = None) -> Path:
    """The interpreter of the virtual environment in ``folder``: ``Scripts\\python.exe`` on
    Windows, ``bin/python`` elsewhere (``nt`` overrides the OS, for tests)."""
    nt = os.name == "nt" if nt is None else nt
    return Path(folder) / ("Scripts/python.exe" if nt else "bin/python")


#: Where the Windows lock sits in the lock file: past the pid, so that others can read it.
_WINDOWS_LOCK_OFFSET = 1 << 20


def try_lock(fd: int) -> bool:
    """Take an exclusive lock on the open file ``fd`` without waiting; False if another
    process holds it."""
    if os.name == "nt":
        import msvcrt

        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def unlock(fd: int) -> None:
    """Release ``try_lock``'s lock (closing the file releases it too, on Windows only
    "eventually")."""
    if os.name == "nt":
        import msvcrt

        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        with contextlib.suppress(OSError):
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)


def pid_in(fd: int) -> int | None:
    """The process id on the first line of the lock file ``fd``, if one is written there."""
    os.lseek(fd, 0, os.SEEK_SET)
    first = os.read(fd, 64).split(b"\n", 1)[0].strip()
    return int(first) if first.isdigit() else None


@contextmanager
def held(lock: Path, waiting: Callable[[int | None], None]) -> Iterator[None]:
    """Hold an exclusive lock on the file ``lock`` while the block runs; when another process
    holds it, call ``waiting`` once with that process's id (None if not yet written), then wait.
    The operating system ends the lock with the process, however it ends, so a killed holder
    leaves no stale lock. The file stays: removing a lock file that another process waits on
    would let two hold it."""
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        announced = False
        while not try_lock(fd):
            if not announced:
                waiting(pid_in(fd))
                announced = True
            time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, str(os.getpid()).encode("ascii"))
        try:
            yield
        finally:
            unlock(fd)
    finally:
        os.close(fd)


class Stopped(BaseException):
    """A stop signal (Ctrl-C, SIGTERM, SIGHUP) reached the build."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class StopSignals:
    """While entered (main thread), the first stop signal raises ``Stopped`` and later ones
    are ignored while the build stops; ``deferred`` holds them back over the swap."""

    NAMES = ("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK")

    def __enter__(self) -> StopSignals:
        self.held: list[int] | None = None
        self.stopping = False
        self.previous = {sig: signal.signal(sig, self._handle)
                         for sig in (getattr(signal, n) for n in self.NAMES if hasattr(signal, n))}
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
        if held and not self.stopping:
            self.stopping = True
            raise Stopped(held[0])
