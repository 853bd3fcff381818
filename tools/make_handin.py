"""The course's hand-in: build/handin/assignment_code.zip and assignment1.pdf side by side.

The zip holds, at its root, the course's six files (task2.py, task2a.py, task3.py, task3a.py,
trainer.py, utils.py), what they need to run (mnist.py) and the notebook; nothing else (no
tests, tools, data or PDF: the PDF goes beside the zip, as the course asks). It refuses a PDF
that is missing or older than any file it was built from, saying to run `make report`.
"""

from __future__ import annotations

import argparse
import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COURSE_FILES = ["task2.py", "task2a.py", "task3.py", "task3a.py", "trainer.py", "utils.py"]
SUPPORT_FILES = ["mnist.py", "assignment1.ipynb"]
REPORT_SOURCES = [*COURSE_FILES, *SUPPORT_FILES, "report.toml"]


class HandinError(Exception):
    pass


def imported_root_modules(files: list[Path]) -> set[str]:
    """Top-level modules the given files import that live as .py files in the root."""
    local = {p.stem for p in ROOT.glob("*.py")}
    found = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
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
    if not pdf.is_file():
        raise HandinError(f"{pdf} is missing: run `make report` first, then `make handin`.")
    newer = [name for name in REPORT_SOURCES if (ROOT / name).is_file()
             and (ROOT / name).stat().st_mtime > pdf.stat().st_mtime]
    if newer:
        raise HandinError(f"{pdf} is older than {', '.join(newer)}, which it is built from: "
                          f"run `make report` again, then `make handin`.")


def make_handin(build: Path) -> tuple[Path, Path, list[str], list[str]]:
    pdf = build / "assignment1.pdf"
    check_pdf(pdf)
    out = build / "handin"
    out.mkdir(parents=True, exist_ok=True)
    names = [*COURSE_FILES, *SUPPORT_FILES]
    missing = [n for n in names if not (ROOT / n).is_file()]
    if missing:
        raise HandinError(f"cannot pack the hand-in: {', '.join(missing)} missing from {ROOT}")
    needed = imported_root_modules([ROOT / n for n in names if n.endswith(".py")])
    warnings = [f"the code imports {m}.py, which the hand-in does not contain"
                + ("" if is_tracked(ROOT / f"{m}.py") else " (and git does not track it)")
                for m in sorted(needed - {Path(n).stem for n in names})]
    target = out / "assignment_code.zip"
    tmp = out / ".assignment_code.zip.part"
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in names:
                archive.write(ROOT / name, name)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)  # an interrupted zip leaves no partial file
    shutil.copy2(pdf, out / "assignment1.pdf")
    return target, out / "assignment1.pdf", names, warnings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=ROOT / "build")
    args = parser.parse_args()
    try:
        target, pdf, names, warnings = make_handin(args.build)
    except HandinError as exc:
        print(exc, file=sys.stderr)
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
