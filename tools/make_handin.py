"""The course's hand-in: build/handin/assignment_code.zip and assignment1.pdf side by side.

The zip holds, at its root, the course's six files (task2.py, task2a.py, task3.py, task3a.py,
trainer.py, utils.py), what they need to run (mnist.py) and the notebook; nothing else (no
tests, tools, data or PDF: the PDF goes beside the zip, as the course asks).

It refuses, with one line saying what to do, anything that would cost points: a PDF that is
missing, empty or not a PDF; a PDF that `python tasks.py report` did not build (its record,
build/assignment1.json, names another file), that was built from other versions of the
sources (the notebook, report.toml or the code), from a reduced run (--quick), or with the
placeholder group or names on its title page; and a folder where the zip goes. After a refusal
build/handin/ holds no older zip or PDF that could be uploaded by mistake.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_report

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


def is_tracked(path: Path) -> bool:
    result = subprocess.run(["git", "ls-files", "--error-unmatch", path.name], cwd=ROOT,
                            capture_output=True)
    return result.returncode == 0


def check_pdf(pdf: Path) -> None:
    """Refuse a PDF that is not the report `python tasks.py report` built from today's sources."""
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


def remove_old_handin(out: Path) -> None:
    """Remove the zip and PDF an earlier hand-in wrote (files only: a folder of that name is
    the user's)."""
    for name in ("assignment_code.zip", "assignment1.pdf", ".assignment_code.zip.part"):
        path = out / name
        if path.is_file() or path.is_symlink():
            path.unlink()


def make_handin(build: Path) -> tuple[Path, Path, list[str], list[str]]:
    out = build / "handin"
    target = out / "assignment_code.zip"
    try:
        if target.exists() and not target.is_file():
            raise HandinError(f"{target} is a folder, not a file: move or delete it, then "
                              f"`python tasks.py handin` again.")
        check_pdf(build / "assignment1.pdf")
        names = [*COURSE_FILES, *SUPPORT_FILES]
        missing = [n for n in names if not (ROOT / n).is_file()]
        if missing:
            raise HandinError(f"cannot pack the hand-in: {', '.join(missing)} missing from "
                              f"{ROOT}")
        needed = imported_root_modules([ROOT / n for n in names if n.endswith(".py")])
    except HandinError:
        if out.is_dir():
            remove_old_handin(out)
        raise
    warnings = [f"the code imports {m}.py, which the hand-in does not contain"
                + ("" if is_tracked(ROOT / f"{m}.py") else " (and git does not track it)")
                for m in sorted(needed - {Path(n).stem for n in names})]
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".assignment_code.zip.part"
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in names:
                archive.write(ROOT / name, name)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)  # an interrupted zip leaves no partial file
    shutil.copy2(build / "assignment1.pdf", out / "assignment1.pdf")
    return target, out / "assignment1.pdf", names, warnings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=ROOT / "build")
    args = parser.parse_args()
    try:
        target, pdf, names, warnings = make_handin(args.build)
    except HandinError as exc:
        print(f"make handin: {exc}", file=sys.stderr)
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
