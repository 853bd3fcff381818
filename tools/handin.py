"""`python tasks.py handin`: build/handin/assignment_code.zip (exactly the course's six files,
``config.HANDIN_FILES``, at its root) and the report PDF beside it. Whatever would cost points
is refused in one line (a PDF missing, not the last build's, stale for any file its run read,
reduced, or with placeholders), leaving no older hand-in; the pair is swapped in whole and
only the tool's own files are ever replaced (``tools.output``)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from tools import cli, output
from tools.cache import input_digest
from tools.cli import StopSignals, UserError
from tools.config import HANDIN_FILES, PROJECT, Project
from tools.report import ALWAYS_SOURCES

PRODUCTS = ("assignment_code.zip", "assignment1.pdf")
RECORD = ".handin-record.json"
BUILDER = "assignment1 tools.handin"


def check_pdf(project: Project, pdf: Path) -> bytes:
    """The PDF's bytes; UserError for a PDF that is not the report `python tasks.py report`
    built from today's sources, full and with a real title page."""
    again = "run `python tasks.py report` again, then `python tasks.py handin`"
    if not pdf.is_file():
        raise UserError(f"{pdf} is missing: run `python tasks.py report` first, then "
                        f"`python tasks.py handin`.")
    content = pdf.read_bytes()
    if not content.startswith(b"%PDF-"):
        what = "empty" if not content else f"not a PDF (it starts with {content[:12]!r})"
        raise UserError(f"{pdf} is {what}: {again}.")
    try:
        record = json.loads(pdf.with_name("assignment1.json").read_text(encoding="utf-8"))
        built = dict(record["sources"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{pdf} has no build record (assignment1.json): {again}.") from exc
    if record.get("pdf_sha256") != cli.sha256(content):
        raise UserError(f"{pdf} is not the PDF `python tasks.py report` built last: {again}.")
    if record.get("quick") is not False:
        raise UserError(f"{pdf} comes from a reduced run (--quick, fewer epochs than the "
                        f"assignment's): run `python tasks.py report` without --quick.")
    if record.get("placeholder") is not False:
        raise UserError(f"{pdf} shows the placeholder group or names on its title page: put "
                        f"your group and names in report.toml, then {again}.")
    changed = [name for name in sorted({*built, *ALWAYS_SOURCES, "assignment1.ipynb",
                                        "report.toml"})
               if built.get(name) != input_digest(project.root / name)]
    if changed:
        raise UserError(f"{pdf} was built from other versions of {', '.join(changed)}: "
                        f"{again}.")
    return content


def make_handin(project: Project, signals: StopSignals, state: dict) -> Path:
    """Write the zip and the PDF into build/handin; UserError (one line) for anything that
    would cost points or stands in their way (then none of this tool's files stay there)."""
    out = project.build / "handin"
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise UserError(f"{out} is {'a link' if out.is_symlink() else 'a file'}, not a folder: "
                        f"the hand-in is written into a folder of that name; move or delete "
                        f"it, then `python tasks.py handin` again.")
    out.mkdir(parents=True, exist_ok=True)
    try:
        pdf = check_pdf(project, project.build / "assignment1.pdf")
        missing = [name for name in HANDIN_FILES if not (project.root / name).is_file()]
        if missing:
            raise UserError(f"cannot pack the hand-in: {', '.join(missing)} missing from "
                            f"{project.root}")
        with output.staged(out, RECORD, {"builder": BUILDER}, list(PRODUCTS), signals,
                           state) as new:
            with zipfile.ZipFile(new / PRODUCTS[0], "x", zipfile.ZIP_DEFLATED) as archive:
                for name in HANDIN_FILES:
                    archive.write(project.root / name, name)
            (new / PRODUCTS[1]).write_bytes(pdf)
    except (OSError, UserError) as exc:
        if "previous" not in state:  # refused: nothing older stays to be uploaded
            output.remove_ours(out, RECORD, BUILDER)
            raise
        reason = cli.describe(exc) if isinstance(exc, OSError) else str(exc)
        raise UserError(f"could not write the hand-in: {reason}; "
                        f"{output.holds(state, out, 'hand-in')}.") from exc
    return out


def main() -> int:
    cli.tolerant_console()

    def handin(signals: StopSignals, state: dict) -> None:
        out = make_handin(PROJECT, signals, state)
        print(f"wrote {out / PRODUCTS[0]}: {', '.join(HANDIN_FILES)}")
        print(f"wrote {out / PRODUCTS[1]} (beside the zip, as the course asks)")

    return output.command(handin, PROJECT.build / "handin", "hand-in", "tasks.py handin",
                          "tasks.py handin: ")


if __name__ == "__main__":
    cli.run_main(main)
