"""An output folder the tools write into without touching anything of the user's: a set built
aside in ``FOLDER/.next`` and swapped in by renames, its record (every product with its SHA-256)
last; and the command around it, whose failures and stops end with what the folder holds."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

from tools.cli import Stopped, StopSignals, UserError, describe, sha256

NEXT, PREVIOUS = ".next", ".previous"
FIX = "move it elsewhere or delete it, or build with --out ANOTHER_FOLDER"


def listing(path: Path) -> str | dict:
    """A product as a record lists it: a file's SHA-256, or a folder's {name: listing}.
    UserError for a symbolic link or anything that is neither (never followed)."""
    if path.is_symlink():
        raise UserError(f"{path} is a symbolic link")
    if path.is_file():
        return sha256(path.read_bytes())
    if path.is_dir():
        return {child.name: listing(child) for child in sorted(path.iterdir())}
    raise UserError(f"{path} is neither a file nor a folder")


def read_record(path: Path, builder: str) -> dict | None:
    """The record at ``path`` (None when there is none); UserError when the file there is
    not a record ``builder`` wrote."""
    if not os.path.lexists(path):
        return None
    if path.is_symlink() or not path.is_file():
        raise UserError(f"{path} is {'a symbolic link' if path.is_symlink() else 'a folder'}, "
                        f"not this build's record: {FIX}")
    with contextlib.suppress(ValueError):
        record = json.loads(path.read_bytes().decode("utf-8"))
        if isinstance(record, dict) and record.get("builder") == builder and \
                isinstance(record.get("products"), dict):
            return record
    raise UserError(f"{path} is not a record of this build (its JSON with the list of its "
                    f"files): {FIX}")


def check_ours(folder: Path, record_name: str, builder: str, names: list[str]) -> dict | None:
    """The folder's record, after checking that each of ``names`` there and each product it
    lists is exactly what it wrote; UserError naming the first that is not."""
    record = read_record(folder / record_name, builder)
    products = record["products"] if record else {}
    for name in sorted({*names, *products} - {record_name}):
        path, listed = folder / name, products.get(name)
        if not os.path.lexists(path):
            continue
        try:
            found = listing(path)
            why = None if found == listed else "changed since this build wrote it"
        except UserError as exc:
            found, why = None, f"is not what this build wrote ({str(exc).removeprefix(f'{path} ')})"
        if listed is None:
            why = "was not written by this build (its record does not list it)"
        elif isinstance(listed, dict) and isinstance(found, dict) and set(found) - set(listed):
            why = f"holds {sorted(set(found) - set(listed))[0]}, which this build did not write"
        if why:
            raise UserError(f"{path} {why}: the build replaces only what it wrote itself; {FIX}")
    return record


def remove_ours(folder: Path, record_name: str, builder: str) -> None:
    """Remove the products the folder's record lists that are still exactly what it lists,
    and the record; anything else stays."""
    with contextlib.suppress(UserError):
        for name, listed in ((read_record(folder / record_name, builder) or {})
                             .get("products", {}).items()):
            with contextlib.suppress(UserError, OSError):
                if os.path.lexists(folder / name) and listing(folder / name) == listed:
                    shutil.rmtree(folder / name) if isinstance(listed, dict) else \
                        (folder / name).unlink()
        (folder / record_name).unlink(missing_ok=True)


def aside(folder: Path, record_name: str) -> Path:
    """An empty ``.next`` in ``folder`` for a new set; a swap a killed process left is
    finished first, and any other leftovers removed."""
    if (folder / NEXT / record_name).is_file() and not (folder / NEXT).is_symlink():
        swap(folder, record_name)
        print(f"finished putting in place the set an interrupted build left in {folder}")
    for leftover in (NEXT, PREVIOUS):
        if (folder / leftover).is_symlink():
            (folder / leftover).unlink()
        shutil.rmtree(folder / leftover, ignore_errors=True)
    (folder / NEXT).mkdir()
    return folder / NEXT


def swap(folder: Path, record_name: str) -> None:
    """Put the set in ``.next`` (its record there) in place of the previous one, the record last;
    idempotent (``aside`` finishes a killed swap); a failed rename puts the previous set back."""
    new, old = folder / NEXT, folder / PREVIOUS
    old.mkdir(exist_ok=True)
    done: list[tuple[Path, Path]] = []

    def move(source: Path, target: Path) -> None:
        os.replace(source, target)
        done.append((source, target))

    try:
        if os.path.lexists(folder / record_name) and (new / record_name).exists():
            move(folder / record_name, old / record_name)
        retired, names = ({} if not (where / record_name).exists() else json.loads(
            (where / record_name).read_text(encoding="utf-8"))["products"]
            for where in (old, new))
        for name in retired:  # still in place, and not already the new product
            if os.path.lexists(folder / name) and (name not in names or
                                                   os.path.lexists(new / name)):
                move(folder / name, old / name)
        for name in names:
            if os.path.lexists(new / name):
                move(new / name, folder / name)
        move(new / record_name, folder / record_name)
    except OSError as exc:
        try:
            for source, target in reversed(done):
                os.replace(target, source)
        except OSError as undo:
            raise UserError(f"{folder} is half updated ({exc}; undoing it failed: {undo}): "
                            f"the next build puts the new set in place whole") from exc
        (new / record_name).unlink()  # the previous set is back: the new one is dropped
        raise
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(new, ignore_errors=True)


@contextlib.contextmanager
def staged(folder: Path, record_name: str, record: dict, names: list[str],
           signals: StopSignals, state: dict) -> Iterator[Path]:
    """``.next`` for a new set, once ``names`` in ``folder`` are checked; after the block, the set
    listed in ``record`` is swapped in, stop signals held back; ``state`` says what is there."""
    state["previous"] = check_ours(folder, record_name, record["builder"], names) is not None
    new = aside(folder, record_name)
    try:
        yield new
        with signals.deferred():
            record["products"] = {p.name: listing(p) for p in sorted(new.iterdir())}
            (new / f".{record_name}.part").write_text(
                json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            os.replace(new / f".{record_name}.part", new / record_name)
            swap(folder, record_name)
            state["published"] = True
    finally:
        if not (new / record_name).exists():  # unless a failed swap could not undo
            shutil.rmtree(new, ignore_errors=True)
        shutil.rmtree(folder / PREVIOUS, ignore_errors=True)


def holds(state: dict, folder: Path, what: str) -> str:
    """What ``folder`` holds after a tool stopped (``state``: "previous", "published")."""
    if state.get("published"):
        return f"{folder} holds the new {what}"
    if state.get("previous"):
        return f"{folder} keeps the previous {what}, unchanged"
    return f"{folder} holds no {what}"


def command(body: Callable[[StopSignals, dict], None], folder: Path, what: str, name: str,
            prefix: str = "") -> int:
    """Run ``body(signals, state)``: 0, or 1 after one line saying what failed (and, once
    ``state["started"]``, what ``folder`` holds); a stop signal is said, then passed on."""
    state: dict = {}
    try:
        with StopSignals() as signals:
            body(signals, state)
        return 0
    except Stopped as exc:
        print(f"{name}: interrupted; {holds(state, folder, what)}", file=sys.stderr, flush=True)
        signal.raise_signal(exc.args[0])
        return 128 + exc.args[0]
    except UserError as exc:
        message = str(exc)
    except OSError as exc:
        message = describe(exc)
    except Exception as exc:  # a bug of the tool: still one line, and the folder's state
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        message = (f"the build failed: {type(exc).__name__}: {exc} "
                   f"({Path(frame.filename).name} line {frame.lineno})")
    message = " ".join(message.split())
    if state.get("started"):
        message = f"{message}; {holds(state, folder, what)}"
    print(prefix + message, file=sys.stderr)
    return 1
