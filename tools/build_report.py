"""Build the report: execute assignment1.ipynb from a clean kernel and export it.

Writes to the output folder (default build/):
    assignment1.ipynb   the executed notebook
    assignment1.html    the report as a web page (code hidden)
    assignment1.pdf     the report via nbconvert's LaTeX route (XeLaTeX; code hidden)
    figures/*.png       every figure, written by the notebook itself
    metrics.json        the run's results, written by the notebook itself

When XeLaTeX is not installed, the HTML is still written, then the build stops
with exit code 1 and one message saying how to install TeX.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter, PDFExporter

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "assignment1.ipynb"

INSTALL_TEX = """\
XeLaTeX was not found, so the PDF could not be built (the HTML report was written).
Install TeX and pandoc, then run `make report` again:
  Debian/Ubuntu:  sudo apt-get install texlive-xetex texlive-fonts-recommended \\
                      texlive-plain-generic pandoc
  macOS:          brew install --cask mactex-no-gui && brew install pandoc
  Windows:        install MiKTeX (https://miktex.org) and pandoc (https://pandoc.org),
                  and make sure xelatex.exe and pandoc.exe are on PATH."""


class _LocalKernelManager(AsyncKernelManager):
    """Talks to the kernel over local sockets (IPC) rather than loopback TCP."""

    def __init__(self, **kwargs):
        super().__init__(transport="ipc", **kwargs)


def execute(out_dir: Path, quick: bool, timeout: int) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel with the project root as working directory."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    env = {"ASSIGNMENT1_BUILD": "1", "ASSIGNMENT1_OUT": str(out_dir.resolve()),
           "ASSIGNMENT1_QUICK": "1" if quick else "0"}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # the kernel inherits the environment of this process
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                kernel_manager_class=_LocalKernelManager,
                                resources={"metadata": {"path": str(ROOT)}})
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return nb


def export(nb: nbformat.NotebookNode, out_dir: Path) -> int:
    resources = {"metadata": {"name": "assignment1", "path": str(ROOT)}}
    html, _ = HTMLExporter(exclude_input=True, exclude_input_prompt=True,
                           exclude_output_prompt=True).from_notebook_node(nb, resources)
    (out_dir / "assignment1.html").write_text(html, encoding="utf-8")
    print(f"wrote {out_dir / 'assignment1.html'}")
    if shutil.which("xelatex") is None or shutil.which("pandoc") is None:
        missing = "XeLaTeX" if shutil.which("xelatex") is None else "pandoc"
        print(INSTALL_TEX.replace("XeLaTeX was not found", f"{missing} was not found"),
              file=sys.stderr)
        return 1
    pdf, _ = PDFExporter(exclude_input=True, exclude_input_prompt=True,
                         exclude_output_prompt=True).from_notebook_node(nb, resources)
    (out_dir / "assignment1.pdf").write_bytes(pdf)
    print(f"wrote {out_dir / 'assignment1.pdf'} ({len(pdf) / 1e6:.1f} MB)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build", help="output folder")
    parser.add_argument("--quick", action="store_true",
                        help="a reduced run (few softmax epochs) for trying the pipeline")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    args = parser.parse_args()
    out_dir = args.out if args.out.is_absolute() else Path.cwd() / args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        nb = execute(out_dir, args.quick, args.timeout)
    except CellExecutionError as exc:
        print(f"The notebook failed while executing:\n{exc}", file=sys.stderr)
        return 1
    nbformat.write(nb, out_dir / "assignment1.ipynb")
    print(f"executed {NOTEBOOK.name} in {time.perf_counter() - start:.1f} s "
          f"-> {out_dir / 'assignment1.ipynb'}")
    return export(nb, out_dir)


if __name__ == "__main__":
    sys.exit(main())
