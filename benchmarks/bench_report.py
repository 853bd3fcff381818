"""The report's rebuilds against a cold build, side by side in one run (`python tasks.py bench`).

Three builds of the report into a temporary folder, each timed as a student runs it
(`python tasks.py report`, wall clock, Python's start-up included): cold (``--fresh``: the
notebook executes in a fresh kernel), again with no change (the execution cache's hit), and
after a Markdown edit (a sentence added to the Task 1a cell, in a copy of the notebook given
with ``--notebook``). Targets: each rebuild <= 1.5 s; the no-change rebuild's PDF is the cold
build's, byte for byte; the edit's PDF differs from it and shows the sentence.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REBUILD_TARGET = 1.5  # seconds
EDIT = "A sentence the benchmark added to the derivation."


def timed_build(*args: str | Path) -> float:
    """Seconds of wall clock of one `python tasks.py report`, which must succeed."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(ROOT / "tasks.py"), "report",
                             *map(str, args)], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"bench: the report build failed: {result.stderr.strip()}")
    return seconds


def edited_notebook(folder: Path) -> Path:
    """A copy of the notebook with ``EDIT`` appended to its Task 1a cell (else the first
    Markdown cell of the report)."""
    nb = json.loads((ROOT / "assignment1.ipynb").read_text(encoding="utf-8"))
    markdown = [c for c in nb["cells"] if c["cell_type"] == "markdown"
                and "remove-cell" not in c.get("metadata", {}).get("tags", [])]
    cell = next((c for c in markdown if "Task 1a" in "".join(c["source"])), markdown[0])
    cell["source"] = "".join(cell["source"]) + f"\n\n{EDIT}\n"
    path = folder / "assignment1.ipynb"
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return path


def pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(str(path)).pages)


def bench(quick: bool = False) -> tuple[list[str], list[str]]:
    """(lines to print, targets missed)."""
    mode = ["--quick"] if quick else []
    with tempfile.TemporaryDirectory(prefix="assignment1-bench-") as tmp:
        folder = Path(tmp)
        cold_out, same_out, edit_out = folder / "cold", folder / "same", folder / "edit"
        cold = timed_build("--fresh", "--out", cold_out, *mode)
        same = timed_build("--out", same_out, *mode)
        edit = timed_build("--out", edit_out, "--notebook", edited_notebook(folder), *mode)
        cold_pdf = (cold_out / "assignment1.pdf").read_bytes()
        identical = (same_out / "assignment1.pdf").read_bytes() == cold_pdf
        shows_edit = (edit_out / "assignment1.pdf").read_bytes() != cold_pdf and \
            EDIT in pdf_text(edit_out / "assignment1.pdf")
    name = "quick" if quick else "full"
    lines = [f"report build ({name} mode), `python tasks.py report` wall time:",
             f"  cold (--fresh: the notebook runs)      {cold:7.2f} s",
             f"  no change (the cache's outputs)        {same:7.2f} s   ({same / cold:.3f} of "
             f"cold; target <= {REBUILD_TARGET} s)",
             f"  Markdown edit in Task 1a               {edit:7.2f} s   ({edit / cold:.3f} of "
             f"cold; target <= {REBUILD_TARGET} s)",
             f"  no-change PDF equals the cold build's: {'yes' if identical else 'NO'}; the "
             f"edit's PDF shows the edit: {'yes' if shows_edit else 'NO'}"]
    missed = [what for what, met in (
        (f"no-change rebuild {same:.2f} s > {REBUILD_TARGET} s", same <= REBUILD_TARGET),
        (f"Markdown-edit rebuild {edit:.2f} s > {REBUILD_TARGET} s", edit <= REBUILD_TARGET),
        ("the no-change rebuild's PDF differs from the cold build's", identical),
        ("the Markdown edit's PDF does not show the edit", shows_edit),
    ) if not met]
    return lines, missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced builds (--quick)")
    args = parser.parse_args()
    lines, missed = bench(args.quick)
    print("\n".join(lines))
    print("targets missed: " + "; ".join(missed) if missed else "every target met")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
