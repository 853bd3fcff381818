"""The course's hand-in: build/handin/assignment_code.zip and assignment1.pdf side by side.

The zip holds, at its root, the course's six files (task2.py, task2a.py, task3.py, task3a.py,
trainer.py, utils.py), what they need to run (mnist.py) and the notebook; nothing else (no
tests, tools, data or PDF: the PDF goes beside the zip, as the course asks).

It refuses, with one line saying what to do, anything that would cost points: a PDF that is
missing, empty or not a PDF; a PDF that `python tasks.py report` did not build (its record,
build/assignment1.json, names another file), that was built from other versions of the
sources (the notebook, report.toml or the code), from a reduced run (--quick), or with the
placeholder group or names on its title page. After a refusal build/handin/ holds no older
zip or PDF that could be uploaded by mistake.

It replaces or removes only files it wrote itself (their hashes are in
build/handin/.handin-record.json): a link, a folder or another file where the zip or the PDF
goes is refused and left as it is. Both are written under temporary names and renamed only
once complete, so after any failure or interrupt (a full disk, Ctrl-C, SIGTERM) build/handin/
holds the previous complete set or none, and the message says which.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_report
import cli

ROOT = Path(__file__).resolve().parents[1]
COURSE_FILES = ["task2.py", "task2a.py", "task3.py", "task3a.py", "trainer.py", "utils.py"]
SUPPORT_FILES = ["mnist.py", "assignment1.ipynb"]


class HandinError(Exception):
    pass


def imported_root_modules(files: list[Path]) -> set[str]:
    """Top-level modules the given files import that live as .py files in the root."""
    local = {p.stem for p in ROOT.glob("*.py")}
    found = set()
    for path in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except SyntaxError as exc:
            raise HandinError(f"cannot pack the hand-in: {path.name} has a syntax error at line "
                              f"{exc.lineno}: {exc.msg}; fix it, then `python tasks.py report` and "
                              f"`python tasks.py handin` again") from exc
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found & local


def is_tracked(path: Path) -> bool | None:
    """Whether git tracks ``path``; None where git cannot tell (no git, no checkout)."""
    try:
        result = subprocess.run(["git", "ls-files", "--error-unmatch", path.name], cwd=ROOT,
                                capture_output=True)
    except OSError:
        return None
    return result.returncode == 0


def check_pdf(pdf: Path) -> bytes:
    """The PDF's bytes; HandinError for a PDF that is not the report `python tasks.py report`
    built from today's sources."""
    again = "run `python tasks.py report` again, then `python tasks.py handin`"
    if not pdf.is_file():
        raise HandinError(f"{pdf} is missing: run `python tasks.py report` first, then "
                          f"`python tasks.py handin`.")
    content = pdf.read_bytes()
    if not content.startswith(b"%PDF-"):
        what = "empty" if not content else f"not a PDF (it starts with {content[:12]!r})"
        raise HandinError(f"{pdf} is {what}: {again}.")
    record_path = pdf.with_name("assignment1.json")
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HandinError(f"{pdf} has no build record ({record_path.name}): {again}.") from exc
    if not isinstance(record, dict):
        raise HandinError(f"{pdf} has no build record ({record_path.name} is not one): {again}.")
    if record.get("pdf_sha256") != hashlib.sha256(content).hexdigest():
        raise HandinError(f"{pdf} is not the PDF `python tasks.py report` built last: {again}.")
    if record.get("quick"):
        raise HandinError(f"{pdf} comes from a reduced run (--quick, fewer epochs than the "
                          f"assignment's): run `python tasks.py report` without --quick.")
    if record.get("placeholder"):
        raise HandinError(f"{pdf} shows the placeholder group or names on its title page: put "
                          f"your group and names in report.toml, then {again}.")
    built, now = record.get("sources", {}), build_report.sources_digest()
    changed = [name for name in build_report.SOURCES if built.get(name) != now.get(name)]
    if changed:
        raise HandinError(f"{pdf} was built from other versions of {', '.join(changed)}: "
                          f"{again}.")
    return content


# --- Writing build/handin/: only what this tool made is replaced or removed ---------------

PRODUCTS = ("assignment_code.zip", "assignment1.pdf")
#: In build/handin/: the hash pair of every complete set this tool wrote there, so that it
#: replaces and removes only its own files and can tell a complete set from a partial one.
RECORD = ".handin-record.json"


def digest(path: Path) -> str | None:
    """The SHA-256 of a regular file at ``path``; None for a link, a folder or nothing."""
    if path.is_symlink() or not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_sets(out: Path) -> list[dict[str, str]]:
    """The sets the record names (none for a missing, damaged or linked record)."""
    record = out / RECORD
    if record.is_symlink() or not record.is_file():
        return []
    try:
        sets = json.loads(record.read_text(encoding="utf-8")).get("sets", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [s for s in sets if isinstance(s, dict) and all(isinstance(s.get(n), str)
                                                            for n in PRODUCTS)]


def write_new(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Create ``path`` (never an existing file or link) and fill it with ``write(file)``, on
    disk before this returns."""
    with open(path, "xb") as file:
        write(file)
        file.flush()
        os.fsync(file.fileno())


def part_name(path: Path) -> Path:
    """The temporary name of ``path`` while this process writes it."""
    return path.with_name(f".{path.name}.{os.getpid()}.part")


def write_sets(out: Path, sets: list[dict[str, str]]) -> None:
    content = json.dumps({"sets": sets}, indent=1).encode("utf-8")
    tmp = part_name(out / RECORD)
    try:
        write_new(tmp, lambda file: file.write(content))
        os.replace(tmp, out / RECORD)
    finally:
        tmp.unlink(missing_ok=True)


def is_ours(path: Path, sets: list[dict[str, str]]) -> bool:
    found = digest(path)
    return found is not None and any(s[path.name] == found for s in sets)


def refuse_foreign(out: Path, sets: list[dict[str, str]]) -> None:
    """HandinError for anything where a product goes that this tool did not write."""
    again = "then `python tasks.py handin` again"
    for name in PRODUCTS:
        path = out / name
        if path.is_symlink():
            raise HandinError(f"{path} is a link (to {os.readlink(path)}): the hand-in never "
                              f"writes through one; remove the link (what it points to stays), "
                              f"{again}.")
        if path.is_dir():
            raise HandinError(f"{path} is a folder, not a file: move or delete it, {again}.")
        if path.exists() and not is_ours(path, sets):
            raise HandinError(f"{path} is not a file `python tasks.py handin` wrote (nor one it "
                              f"would overwrite): move it somewhere else, {again}.")


def remove_parts(out: Path) -> None:
    """Remove the temporary files of this process and of writers that no longer run."""
    for part in out.glob(".*.part"):
        match = re.fullmatch(r"\..+\.(\d+)\.part", part.name)
        if match and (int(match.group(1)) == os.getpid()
                      or not cli.process_alive(int(match.group(1)))):
            part.unlink(missing_ok=True)


def remove_ours(out: Path, sets: list[dict[str, str]]) -> None:
    """Remove the products in ``out`` that this tool wrote, and its record; links, folders and
    other files stay as they are."""
    for name in PRODUCTS:
        if is_ours(out / name, sets):
            (out / name).unlink()
    (out / RECORD).unlink(missing_ok=True)  # none of its files is left


def settle(out: Path, sets: list[dict[str, str]], new: dict[str, str] | None) -> str:
    """After a failure: leave in ``out`` a complete set or none (a partial set is removed),
    and say which."""
    if not out.is_dir():
        return f"{out} holds no hand-in"
    remove_parts(out)
    present = {name: digest(out / name) for name in PRODUCTS}
    if present == new:
        return f"{out} holds the new hand-in"
    if present in sets:
        return f"{out} still holds the previous hand-in, unchanged"
    remove_ours(out, [*sets, *([new] if new else [])])
    return f"{out} holds no hand-in"


def pack(file: BinaryIO, names: list[str]) -> None:
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            archive.write(ROOT / name, name)


def make_handin(build: Path) -> tuple[Path, Path, list[str], list[str]]:
    """Write the zip and the PDF into ``build``/handin; HandinError (one line) for anything
    that would cost points or that stands in their way, saying what the folder holds then."""
    out = build / "handin"
    target, pdf_target = (out / name for name in PRODUCTS)
    sets = read_sets(out)
    new: dict[str, str] | None = None
    try:
        refuse_foreign(out, sets)
        pdf_content = check_pdf(build / "assignment1.pdf")
        names = [*COURSE_FILES, *SUPPORT_FILES]
        missing = [n for n in names if not (ROOT / n).is_file()]
        if missing:
            raise HandinError(f"cannot pack the hand-in: {', '.join(missing)} missing from "
                              f"{ROOT}")
        needed = imported_root_modules([ROOT / n for n in names if n.endswith(".py")])
    except HandinError:
        if out.is_dir():
            remove_ours(out, sets)  # no older set stays to be uploaded by mistake
        raise
    warnings = [f"the code imports {m}.py, which the hand-in does not contain"
                + ("" if is_tracked(ROOT / f"{m}.py") is not False
                   else " (and git does not track it)")
                for m in sorted(needed - {Path(n).stem for n in names})]
    try:
        out.mkdir(parents=True, exist_ok=True)
        remove_parts(out)
        zip_tmp, pdf_tmp = part_name(target), part_name(pdf_target)
        write_new(zip_tmp, lambda file: pack(file, names))
        write_new(pdf_tmp, lambda file: file.write(pdf_content))
        new = {PRODUCTS[0]: digest(zip_tmp), PRODUCTS[1]: digest(pdf_tmp)}
        write_sets(out, [*sets, new])  # from here on the new files count as this tool's
        os.replace(pdf_tmp, pdf_target)
        os.replace(zip_tmp, target)
        write_sets(out, [new])
    except OSError as exc:
        state = settle(out, sets, new)
        if state.endswith("holds the new hand-in"):  # only the record's tidying failed
            return target, pdf_target, names, warnings
        raise HandinError(f"could not write the hand-in: {cli.describe(exc)}; {state}.") from exc
    except BaseException as exc:  # Ctrl-C, SIGTERM
        raise Interrupted(settle(out, sets, new)) from exc
    return target, pdf_target, names, warnings


class Interrupted(Exception):
    """Stopped by a signal; carries what build/handin holds now."""


def main() -> int:
    cli.tolerant_console()
    for name in ("SIGTERM", "SIGHUP"):  # stop as after Ctrl-C: a complete set or none
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.default_int_handler)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=ROOT / "build")
    args = parser.parse_args()
    try:
        target, pdf, names, warnings = make_handin(args.build)
    except HandinError as exc:
        print(f"tasks.py handin: {exc}", file=sys.stderr)
        return 1
    except Interrupted as exc:
        print(f"tasks.py handin: interrupted; {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # while checking, before anything was written
        print("tasks.py handin: interrupted; nothing was written", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"tasks.py handin: {cli.describe(exc)}", file=sys.stderr)
        return 1
    print(f"wrote {target}:")
    for name in names:
        print(f"  {name}")
    print(f"wrote {pdf} (beside the zip, as the course asks)")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
