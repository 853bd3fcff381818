"""The full source archive: build/assignment1-source.zip (not the course's hand-in; that is
`python tasks.py handin`).

Contains the Python modules, the tests, tools and benchmarks, the (output-free) notebook, the
set-up files and the four MNIST files (11 MB), so that the unzipped archive works offline. The
PDF is left out: the course wants it beside the code.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATTERNS = ["*.py", "tests/*.py", "tools/*.py", "benchmarks/*.py", "assignment1.ipynb",
            "requirements.txt", "requirements.lock", "pyproject.toml", "Makefile", "README.md",
            "report.toml", "docs/*", "tasks.py", ".ci/run", "tools/report.typ",
            "data/mnist/*.gz"]


def tracked_files() -> set[Path] | None:
    """Files git tracks (so stray local files stay out), or None outside a checkout."""
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return {ROOT / line for line in out.splitlines()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tracked = tracked_files()
    files = sorted({p for pattern in PATTERNS for p in ROOT.glob(pattern)
                    if tracked is None or p in tracked})
    target = args.out / "assignment1-source.zip"
    tmp = args.out / ".assignment1-source.zip.part"
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, path.relative_to(ROOT).as_posix())
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)  # an interrupted zip leaves no partial file
    print(f"wrote {target}: {len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
