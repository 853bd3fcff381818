"""Build the report: execute assignment1.ipynb from a clean kernel and export it.

Writes to the output folder (default build/):
    assignment1.ipynb   the executed notebook
    assignment1.html    the report as one self-contained web page (code hidden; maths as
                        MathML, rendered by the browser itself: nothing is loaded from the network)
    assignment1.pdf     the report, A4, via nbconvert's LaTeX and XeLaTeX (code hidden)
    assignment1.log     XeLaTeX's full log when the PDF could not be built
    figures/*.png       every figure, written by the notebook itself
    metrics.json        the run's results, written by the notebook itself

The title page names the group: ``report.toml`` (``group``, ``authors``), overridden by the
environment variables ASSIGNMENT1_GROUP and ASSIGNMENT1_AUTHORS ("Name One; Name Two").

A PDF is written under a temporary name and renamed only when XeLaTeX succeeded; any failure
removes an older PDF, so build/ never holds a PDF from another run. Failures end with one
message (no traceback) that says what is missing and how to fix it.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

if TYPE_CHECKING:
    import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "assignment1.ipynb"
CONFIG = ROOT / "report.toml"
TITLE = "Assignment 1: Logistic and Softmax Regression on MNIST"
PLACEHOLDER_GROUP = "Group ?? (set group in report.toml)"
PLACEHOLDER_AUTHORS = ["Author names (set authors in report.toml)"]

INSTALL_TEX = """\
{missing} not found, so the PDF could not be built (the HTML report was written).
Install TeX and pandoc, then run `make report` again:
  Debian/Ubuntu:  sudo apt-get install texlive-xetex texlive-latex-extra \\
                      texlive-fonts-recommended texlive-plain-generic pandoc
  macOS:          brew install --cask mactex-no-gui && brew install pandoc
  Windows:        install MiKTeX (https://miktex.org) and pandoc (https://pandoc.org),
                  and make sure xelatex.exe and pandoc.exe are on PATH."""

#: LaTeX files nbconvert's template uses -> the Debian package that provides them.
TEX_PACKAGES = {
    "adjustbox.sty": "texlive-latex-extra", "tcolorbox.sty": "texlive-latex-extra",
    "environ.sty": "texlive-latex-extra", "trimspaces.sty": "texlive-latex-extra",
    "upquote.sty": "texlive-latex-extra", "ucs.sty": "texlive-latex-extra",
    "enumitem.sty": "texlive-latex-extra", "titling.sty": "texlive-latex-extra",
    "eurosym.sty": "texlive-fonts-recommended", "soul.sty": "texlive-plain-generic",
    "booktabs.sty": "texlive-latex-recommended", "caption.sty": "texlive-latex-recommended",
    "fancyvrb.sty": "texlive-latex-recommended", "float.sty": "texlive-latex-recommended",
    "fontspec.sty": "texlive-latex-recommended", "mathrsfs.sty": "texlive-latex-recommended",
    "unicode-math.sty": "texlive-latex-recommended", "xcolor.sty": "texlive-latex-recommended",
    "geometry.sty": "texlive-latex-base", "amsmath.sty": "texlive-latex-base",
    "hyperref.sty": "texlive-latex-base", "placeins.sty": "texlive-latex-extra",
}


class BuildError(Exception):
    """A failure with a message for the user (printed without a traceback)."""


def group_details(config: Path = CONFIG) -> tuple[str, list[str]]:
    """(group, authors) from the environment, else report.toml, else visible placeholders."""
    data = {}
    if config.is_file():
        try:
            data = tomllib.loads(config.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise BuildError(f"{config}: not valid TOML ({exc}); see the comments in it") from exc
    group = os.environ.get("ASSIGNMENT1_GROUP") or str(data.get("group", "")).strip()
    env_authors = os.environ.get("ASSIGNMENT1_AUTHORS")
    authors = ([a.strip() for a in env_authors.split(";")] if env_authors
               else [str(a).strip() for a in data.get("authors", [])])
    authors = [a for a in authors if a]
    return group or PLACEHOLDER_GROUP, authors or PLACEHOLDER_AUTHORS


# The Jupyter stack (nbformat, nbclient, nbconvert) is imported where it is used: importing
# it costs about a second, which the quick test loop should not pay for tests that do not
# build a report.

def execute(out_dir: Path, quick: bool, timeout: int) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel with the project root as working directory."""
    import nbformat
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    class LocalKernelManager(AsyncKernelManager):
        """Talks to the kernel over local sockets (IPC) rather than loopback TCP."""

        def __init__(self, **kwargs):
            super().__init__(transport="ipc", **kwargs)

    nb = nbformat.read(NOTEBOOK, as_version=4)
    env = {"ASSIGNMENT1_BUILD": "1", "ASSIGNMENT1_OUT": str(out_dir.resolve()),
           "ASSIGNMENT1_QUICK": "1" if quick else "0"}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # the kernel inherits the environment of this process
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                kernel_manager_class=LocalKernelManager,
                                resources={"metadata": {"path": str(ROOT)}})
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return nb


# --- HTML: maths to MathML, nothing loaded from the network -------------------------------

_MATH = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$(?!\$)(.+?)(?<!\\)\$", re.DOTALL)
_ALIGNED = re.compile(r"\\begin\{aligned\}(.*?)\\end\{aligned\}", re.DOTALL)


def tex_to_mathml(tex: str, display: bool) -> str:
    """One formula as MathML; ``aligned`` blocks become an <mtable> (latex2mathml lacks them)."""
    from latex2mathml.converter import convert

    def inner(t: str) -> str:
        body = convert(t.strip())
        return body[body.index(">") + 1:body.rindex("</math>")]

    parts, last = [], 0
    for match in _ALIGNED.finditer(tex):
        if tex[last:match.start()].strip():
            parts.append(inner(tex[last:match.start()]))
        rows = []
        for row in re.split(r"\\\\", match.group(1)):
            cells = row.split("&")
            tds = "".join(f'<mtd columnalign="{"right" if i % 2 == 0 else "left"}">'
                          f"{inner(c) if c.strip() else ''}</mtd>" for i, c in enumerate(cells))
            rows.append(f"<mtr>{tds}</mtr>")
        parts.append(f"<mtable>{''.join(rows)}</mtable>")
        last = match.end()
    if tex[last:].strip():
        parts.append(inner(tex[last:]))
    mode = "block" if display else "inline"
    return (f'<math xmlns="http://www.w3.org/1998/Math/MathML" display="{mode}">'
            f"<mrow>{''.join(parts)}</mrow></math>")


def mathml_markdown(text: str) -> str:
    """Markdown with every $...$ and $$...$$ replaced by MathML."""
    def replace(match: re.Match) -> str:
        display = match.group(1) is not None
        html = tex_to_mathml(match.group(1) if display else match.group(2), display)
        return f"\n\n{html}\n\n" if display else html
    return _MATH.sub(replace, text)


def offline_html(nb: nbformat.NotebookNode, resources: dict) -> str:
    """The report as one page that renders its maths with the network off."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.from_dict(nb)  # a copy: the PDF route keeps the TeX
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = mathml_markdown(cell.source)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/markdown" in data:
                data["text/markdown"] = mathml_markdown(data["text/markdown"])
    html, _ = HTMLExporter(exclude_input=True, exclude_input_prompt=True,
                           exclude_output_prompt=True).from_notebook_node(nb, resources)
    # the template's scripts for MathJax, require.js and mermaid come from a CDN: drop them
    html = re.sub(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", "", html)
    html = re.sub(r"<script[^>]*>(?:(?!</script>).)*?(?:https?://|MathJax)"
                  r"(?:(?!</script>).)*</script>", "", html, flags=re.DOTALL)
    remote = remote_resources(html)
    if remote:
        raise BuildError(f"the HTML report would load {remote[0]} from the network")
    return html


def remote_resources(html: str) -> list[str]:
    """URLs the page would load (scripts, styles, images, imports); links are not loads."""
    found = re.findall(r"<(?:script|img|iframe|source|audio|video)\b[^>]*\bsrc=[\"'](https?://[^\"']+)",
                       html)
    found += re.findall(r"<link\b[^>]*\bhref=[\"'](https?://[^\"']+)", html)
    found += re.findall(r"@import\s+(?:url\()?[\"']?(https?://[^\"')\s]+)", html)
    found += re.findall(r"\bimport\b[^;\n]*?[\"'](https?://[^\"']+)", html)
    return found


# --- PDF: nbconvert's LaTeX, A4, our own XeLaTeX run ---------------------------------------

def latex_source(nb: nbformat.NotebookNode, resources: dict) -> tuple[str, dict]:
    from nbconvert import LatexExporter

    tex, out = LatexExporter(exclude_input=True, exclude_input_prompt=True,
                             exclude_output_prompt=True).from_notebook_node(nb, resources)
    tex, n = re.subn(r"\\documentclass\[([^\]]*)\]\{article\}",
                     lambda m: f"\\documentclass[{m.group(1)},a4paper]{{article}}", tex, count=1)
    if n != 1:
        raise BuildError("nbconvert's LaTeX has no \\documentclass line to make A4")
    # Figures float ([htbp]): one that does not fit the rest of a page moves to the top of
    # the next and the text after it fills the gap, instead of leaving the page part empty.
    # placeins keeps every figure inside its own Task section.
    tex = re.sub(
        r"\\begin\{center\}\s*(\\adjustimage\{[^\n]*\}\{[^}]+\})\s*\\end\{center\}",
        lambda m: "\\begin{figure}[htbp]\\centering\n" + m.group(1) + "\n\\end{figure}", tex)
    preamble = ("\\usepackage[section]{placeins}\n"
                "\\renewcommand{\\topfraction}{0.9}\\renewcommand{\\bottomfraction}{0.8}\n"
                "\\renewcommand{\\textfraction}{0.07}\\renewcommand{\\floatpagefraction}{0.75}\n"
                "\\setcounter{topnumber}{3}\\setcounter{totalnumber}{4}\n"
                "\\allowdisplaybreaks\n")
    tex = tex.replace(r"\begin{document}", preamble + r"\begin{document}", 1)
    return tex, out


def missing_file_message(log: str, log_path: Path) -> str:
    match = re.search(r"File `([^']+)' not found", log)
    if match:
        name = match.group(1)
        package = TEX_PACKAGES.get(name)
        fix = (f"sudo apt-get install {package}" if package else
               f"find its package with `apt-file search {name}` (Debian/Ubuntu) or install it "
               f"with your TeX distribution's package manager")
        return (f"XeLaTeX could not build the PDF: the LaTeX file {name} is missing. Install it "
                f"({fix}) and run `make report` again. Full log: {log_path}")
    error = re.search(r"^! (.+)$", log, re.MULTILINE)
    what = error.group(1) if error else "see the log"
    return f"XeLaTeX could not build the PDF ({what}). Full log: {log_path}"


def run_xelatex(tex: str, files: dict, out_dir: Path) -> bytes:
    with tempfile.TemporaryDirectory(prefix="assignment1-tex-") as tmp:
        tmp_dir = Path(tmp)
        (tmp_dir / "assignment1.tex").write_text(tex, encoding="utf-8")
        for name, content in files.items():
            (tmp_dir / name).write_bytes(content)
        for _ in range(2):  # twice: references and the title page settle on the second run
            result = subprocess.run(["xelatex", "-interaction=nonstopmode", "-halt-on-error",
                                     "assignment1.tex"], cwd=tmp_dir, capture_output=True,
                                    stdin=subprocess.DEVNULL, timeout=600)
            if result.returncode != 0:
                log_file = tmp_dir / "assignment1.log"
                log = (log_file.read_text(errors="replace") if log_file.is_file()
                       else result.stdout.decode(errors="replace"))
                log_path = out_dir / "assignment1.log"
                log_path.write_text(log, encoding="utf-8")
                raise BuildError(missing_file_message(log, log_path))
        return (tmp_dir / "assignment1.pdf").read_bytes()


def export(nb: nbformat.NotebookNode, out_dir: Path) -> int:
    """Write the HTML, then the PDF (atomically). Returns 0, or 1 with one message."""
    pdf_path = out_dir / "assignment1.pdf"
    try:
        group, authors = group_details()
        nb.metadata["title"] = TITLE
        nb.metadata["authors"] = [{"name": a} for a in authors]
        nb.metadata["date"] = f"{group}. Built {datetime.date.today().isoformat()}"
        resources = {"metadata": {"name": "assignment1", "path": str(ROOT)}}
        html_path = out_dir / "assignment1.html"
        html_path.write_text(offline_html(nb, resources), encoding="utf-8")
        print(f"wrote {html_path}")
        missing = [name for tool, name in (("xelatex", "XeLaTeX"), ("pandoc", "pandoc"))
                   if shutil.which(tool) is None]
        if missing:
            verb = "were" if len(missing) > 1 else "was"
            raise BuildError(INSTALL_TEX.format(missing=f"{' and '.join(missing)} {verb}"))
        tex, out = latex_source(nb, resources)
        pdf = run_xelatex(tex, out.get("outputs", {}), out_dir)
        tmp = out_dir / ".assignment1.pdf.part"
        tmp.write_bytes(pdf)
        os.replace(tmp, pdf_path)
        (out_dir / "assignment1.log").unlink(missing_ok=True)
        print(f"wrote {pdf_path} ({len(pdf) / 1e6:.1f} MB, A4; {group}; {', '.join(authors)})")
        if group == PLACEHOLDER_GROUP or authors == PLACEHOLDER_AUTHORS:
            print("note: the title page shows placeholders: put your group and names in "
                  "report.toml", file=sys.stderr)
        return 0
    except BuildError as exc:
        pdf_path.unlink(missing_ok=True)
        print(exc, file=sys.stderr)
        return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build", help="output folder")
    parser.add_argument("--quick", action="store_true",
                        help="a reduced run (few softmax epochs) for trying the pipeline")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    args = parser.parse_args()
    out_dir = args.out if args.out.is_absolute() else Path.cwd() / args.out
    if out_dir.exists() and not out_dir.is_dir():
        print(f"{out_dir} exists and is not a folder: the report is built into a folder of "
              f"that name. Move or delete the file, or pass --out OTHER_FOLDER.", file=sys.stderr)
        return 1
    out_dir.mkdir(parents=True, exist_ok=True)
    import nbformat
    from nbclient.exceptions import CellExecutionError

    start = time.perf_counter()
    try:
        nb = execute(out_dir, args.quick, args.timeout)
    except CellExecutionError as exc:
        (out_dir / "assignment1.pdf").unlink(missing_ok=True)
        print(f"The notebook failed while executing (no PDF was written):\n{exc}",
              file=sys.stderr)
        return 1
    nbformat.write(nb, out_dir / "assignment1.ipynb")
    print(f"executed {NOTEBOOK.name} in {time.perf_counter() - start:.1f} s "
          f"-> {out_dir / 'assignment1.ipynb'}")
    return export(nb, out_dir)


if __name__ == "__main__":
    sys.exit(main())
