"""Pack the code hand-in the course asks for: build/assignment1.zip.

Contains the Python modules, the tests, the (output-free) notebook, the set-up files and,
when it has been built, the report PDF. The MNIST files are left out (they are large and
`mnist.load()` fetches and verifies them when missing).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATTERNS = ["*.py", "tests/*.py", "tools/*.py", "benchmarks/*.py", "assignment1.ipynb",
            "requirements.txt", "pyproject.toml", "Makefile", "README.md"]


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
    pdf = args.out / "assignment1.pdf"
    target = args.out / "assignment1.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(ROOT).as_posix())
        if pdf.is_file():
            archive.write(pdf, "assignment1.pdf")
    note = "with the PDF" if pdf.is_file() else "without a PDF (run `make report` first)"
    print(f"wrote {target}: {len(files)} files {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
