"""What the command-line tools share, on any OS with the standard library only (tasks.py
imports it before .venv exists): console output that survives any encoding, one line for a
failed file operation, and locks between processes."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


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


def running_pid(lock: Path) -> int | None:
    """The process id a lock file names while that process runs, else None. The file holds the
    id as plain text or as JSON with a ``pid`` key (as build/.build.lock does)."""
    try:
        value = json.loads(lock.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
    pid = value.get("pid") if isinstance(value, dict) else value
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None
    return pid if process_alive(pid) else None


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
