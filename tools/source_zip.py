"""The full source archive: build/assignment1-source.zip (not the course's hand-in; that is
`python tasks.py handin`).

Contains every file the project is made of (the Python modules, the tests, tools and
benchmarks, the output-free notebook, the set-up files, .gitignore, CI's script and the four
MNIST files, 11 MB), so that the unzipped archive sets itself up, passes its tests and works
offline. The PDF is left out: the course wants it beside the code. The archive is written under
a temporary name and renamed once complete; it replaces only an archive this tool wrote (it
says so in the zip's comment), never a link or another file.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tools import cli
from tools.cli import UserError
from tools.config import PROJECT

ROOT = PROJECT.root
PATTERNS = ["*.py", "tests/*.py", "tools/*", "benchmarks/*.py", "assignment1.ipynb",
            "requirements.txt", "requirements.lock", "pyproject.toml", "Makefile", "README.md",
            "report.toml", "docs/*", "tasks.py", ".ci/run", ".gitignore", "data/mnist/*.gz"]
#: The zip comment that marks an archive as this tool's.
MARK = b"assignment1 source archive, written by `python tasks.py zip`"


def tracked_files() -> set[Path] | None:
    """Files git tracks (so stray local files stay out), or None outside a checkout."""
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return {ROOT / line for line in out.splitlines()}


def source_files() -> list[Path]:
    tracked = tracked_files()
    return sorted({p for pattern in PATTERNS for p in ROOT.glob(pattern)
                   if p.is_file() and (tracked is None or p in tracked)})


def is_ours(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.comment == MARK
    except (OSError, zipfile.BadZipFile):
        return False


def make_zip(out: Path) -> tuple[Path, int]:
    """Write the archive into ``out``; (its path, how many files it holds)."""
    target = out / "assignment1-source.zip"
    if target.is_symlink():
        raise UserError(f"{target} is a link (to {os.readlink(target)}): the archive never "
                       f"replaces one; remove the link, then `python tasks.py zip` again.")
    if target.exists() and not (target.is_file() and is_ours(target)):
        raise UserError(f"{target} is not an archive `python tasks.py zip` wrote: move it "
                       f"somewhere else, then `python tasks.py zip` again.")
    files = source_files()
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(tmp, "x", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.comment = MARK
            for path in files:
                archive.write(path, path.relative_to(ROOT).as_posix())
        os.replace(tmp, target)
    except OSError as exc:
        raise UserError(f"could not write the archive: {cli.describe(exc)}; "
                       f"{'the previous archive is kept' if target.exists() else 'none written'}"
                       f".") from exc
    finally:
        tmp.unlink(missing_ok=True)  # an interrupted zip leaves no partial file
    return target, len(files)


def main() -> int:
    cli.tolerant_console()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build")
    args = parser.parse_args()
    try:
        target, count = make_zip(args.out)
    except UserError as exc:
        print(f"tasks.py zip: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tasks.py zip: interrupted; no partial archive is left", file=sys.stderr)
        return 130
    except OSError as exc:  # a source file that cannot be read
        print(f"tasks.py zip: {cli.describe(exc)}", file=sys.stderr)
        return 1
    print(f"wrote {target}: {count} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
