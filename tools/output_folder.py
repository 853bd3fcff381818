"""The report's output folder: one build at a time, only our own files touched, one run's set.

* ``BuildLock``: ``build/.build.lock`` holds the building process's id (first line, plain
  text) and an OS lock (``flock``; ``msvcrt.locking`` on Windows) for as long as it runs; a
  second build refuses in one line. The OS drops the lock of a killed process, so a stale file
  never blocks a build.
* ``read_record`` / ``check_ours``: the build record (``assignment1.json``) lists every product
  with its SHA-256. A product is replaced or removed only when it is the regular file (or real
  folder of regular files) the record lists, unchanged; anything else in its place (a user's
  ``figures/``, a symbolic link, a file changed since) is refused, never followed or deleted.
* ``Staging`` and ``publish``: a build writes its whole set into ``.staging-<pid>-*`` inside
  the output folder, then swaps it in by renames (the record last); a failure rolls the
  renames back. A journal written before the first rename lets the next build finish a swap
  that a killed process left half done; staging folders of dead processes are removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from cli import pid_in, process_alive, try_lock, unlock

RECORD = "assignment1.json"
BUILDER = "assignment1 tools/build_report.py"
RECORD_FORMAT = 2
JOURNAL = "PUBLISHING"
STAGING_PREFIX = ".staging-"


class FolderError(Exception):
    """A refusal with a message for the user (one line)."""


# --- One build at a time ------------------------------------------------------------------

class BuildLock:
    """``path`` locked by this process while a build runs; its first line is our pid."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or FolderError naming the process that holds it."""
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        while True:
            try:
                fd = os.open(self.path, flags, 0o644)
            except OSError as exc:
                if self.path.is_symlink():
                    raise FolderError(f"{self.path} is a symbolic link, not the build's lock "
                                      f"file: remove it, then build again") from exc
                raise
            if not try_lock(fd):
                holder = pid_in(fd)
                os.close(fd)
                who = f" (pid {holder})" if holder else ""
                raise FolderError(f"another build is running here{who}: wait for it to finish "
                                  f"or stop it, then build again")
            try:  # the file we locked is still the one at the path (not removed meanwhile)
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            unlock(fd)
            os.close(fd)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)  # Windows: the lock moved the position past the pid
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        if os.name == "nt":  # Windows cannot remove an open file
            unlock(fd)
            os.close(fd)
            with contextlib.suppress(OSError):
                self.path.unlink()
        else:
            with contextlib.suppress(OSError):
                self.path.unlink()
            os.close(fd)

    def __enter__(self) -> BuildLock:
        if self._fd is None:
            self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# --- What the last build wrote ------------------------------------------------------------

def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def listing(path: Path) -> str | dict:
    """A product as the record lists it: a file's SHA-256, or a folder's {name: listing}.
    FolderError for a symbolic link or anything that is neither (never followed)."""
    if path.is_symlink():
        raise FolderError(f"{path} is a symbolic link")
    if path.is_file():
        return sha256_file(path)
    if path.is_dir():
        return {child.name: listing(child) for child in sorted(path.iterdir())}
    raise FolderError(f"{path} is neither a file nor a folder")


def read_record(out_dir: Path) -> dict[str, Any] | None:
    """The last build's record in ``out_dir`` (None when there is none); FolderError when the
    file there is not a record this build wrote."""
    path = out_dir / RECORD
    if not os.path.lexists(path):
        return None
    fix = "move it elsewhere or delete it, or build with --out ANOTHER_FOLDER"
    if path.is_symlink() or not path.is_file():
        raise FolderError(f"{path} is {'a symbolic link' if path.is_symlink() else 'a folder'}, "
                          f"not this build's record: {fix}")
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        record = None
    if not isinstance(record, dict) or ("pdf_sha256" not in record and "builder" not in record):
        raise FolderError(f"{path} is not a record of this build (not its JSON): {fix}")
    if record.get("builder") != BUILDER or not isinstance(record.get("products"), dict):
        raise FolderError(f"{out_dir} holds a report an earlier version of the build wrote, "
                          f"without the list of its files this version needs: delete its "
                          f"assignment1.* files, figures/ and metrics.json (or run python "
                          f"tasks.py clean), then build again")
    return record


def check_ours(out_dir: Path, names: list[str] | set[str]) -> dict[str, Any] | None:
    """The last build's record, after checking that each of ``names`` in ``out_dir`` and each
    product it lists is exactly what it wrote; FolderError naming the first that is not."""
    record = read_record(out_dir)
    products = record["products"] if record else {}
    for name in sorted((set(names) | set(products)) - {RECORD}):  # the record: read_record
        path = out_dir / name
        if not os.path.lexists(path):
            continue
        why = _not_ours(path, products.get(name))
        if why:
            raise FolderError(f"{path} {why}: the build replaces only what it wrote itself; "
                              f"move it elsewhere or delete it, or build with --out "
                              f"ANOTHER_FOLDER")
    return record


def _not_ours(path: Path, listed: str | dict | None) -> str | None:
    """Why ``path`` is not the product the record lists as ``listed`` (None: it is)."""
    if listed is None:
        return "was not written by this build (the build record does not list it)"
    try:
        found = listing(path)
    except FolderError as exc:
        return f"is not what this build wrote ({exc.args[0].removeprefix(str(path) + ' ')})"
    if found == listed:
        return None
    if isinstance(listed, dict) and isinstance(found, dict):
        extra = sorted(set(found) - set(listed))
        if extra:
            return f"holds {extra[0]}, which this build did not write"
    return "changed since this build wrote it"


# --- Staging and the swap -----------------------------------------------------------------

class Staging:
    """A private folder in the output folder for one build's products (``new/``) and the
    previous set while it is swapped out (``old/``); removed by ``close`` unless a swap that
    could not be undone needs it (``keep``: the next build finishes it from the journal)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.path = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-",
                                          dir=out_dir))
        self.new = self.path / "new"
        self.new.mkdir()
        self.keep = False

    def close(self) -> None:
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)


def publish(staging: Staging, record: dict[str, Any], retire: dict[str, Any] | None) -> None:
    """Swap the products in ``staging.new`` (and ``record``, written last) into the output
    folder, replacing those the previous record ``retire`` lists (already checked by
    ``check_ours``). On any failure the renames done so far are undone; a process killed
    midway leaves a journal from which the next build finishes the swap."""
    out, new, old = staging.out_dir, staging.new, staging.path / "old"
    (new / RECORD).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n",
                              encoding="utf-8")
    names = [*sorted(p.name for p in new.iterdir() if p.name != RECORD), RECORD]
    previous = [RECORD, *sorted(set(retire["products"]) if retire else set())]
    journal = staging.path / JOURNAL
    tmp = journal.with_suffix(".part")
    tmp.write_text(json.dumps({"install": names, "retire": previous}), encoding="utf-8")
    os.replace(tmp, journal)
    old.mkdir()
    done: list[tuple[Path, Path]] = []
    try:
        for name in previous:  # the record first: no record ever describes a mixed set
            if os.path.lexists(out / name):
                os.replace(out / name, old / name)
                done.append((out / name, old / name))
        for name in names:  # the record last
            if os.path.lexists(out / name):  # appeared since check_ours: not ours to replace
                raise FolderError(f"{out / name} appeared during the build: move it elsewhere "
                                  f"or delete it, then build again")
            os.replace(new / name, out / name)
            done.append((new / name, out / name))
    except BaseException as exc:
        try:
            for source, target in reversed(done):
                os.replace(target, source)
        except OSError as undo:
            staging.keep = True
            raise FolderError(f"{out} is half updated ({exc}; undoing it failed: {undo}): the "
                              f"next build puts the new report in place whole") from exc
        journal.unlink()
        raise
    journal.unlink()


def recover(out_dir: Path) -> list[str]:
    """Finish or remove what builds killed midway left in ``out_dir``: a swap they had begun
    is completed from its journal; their staging folders are removed. Returns one line per
    swap completed."""
    done = []
    for folder in sorted(out_dir.glob(f"{STAGING_PREFIX}*")):
        match = re.match(rf"{re.escape(STAGING_PREFIX)}(\d+)-", folder.name)
        if folder.is_symlink() or not folder.is_dir() or not match:
            continue
        pid = int(match.group(1))
        if pid != os.getpid() and process_alive(pid):
            continue  # a build of another checkout writing here right now
        journal = folder / JOURNAL
        if journal.is_file():
            plan = json.loads(journal.read_text(encoding="utf-8"))
            old = folder / "old"
            old.mkdir(exist_ok=True)
            for name in plan["retire"]:
                installed = name in plan["install"] and not os.path.lexists(folder / "new" / name)
                if os.path.lexists(out_dir / name) and not os.path.lexists(old / name) \
                        and not installed:
                    os.replace(out_dir / name, old / name)
            for name in plan["install"]:
                if os.path.lexists(folder / "new" / name):
                    os.replace(folder / "new" / name, out_dir / name)
            done.append(f"finished putting in place the report of an interrupted build "
                        f"(pid {pid}) in {out_dir}")
        shutil.rmtree(folder, ignore_errors=True)
    return done
