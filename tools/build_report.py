"""Build the report: execute assignment1.ipynb from a clean kernel and export it.

Writes to the output folder (default build/):
    assignment1.ipynb   the executed notebook
    assignment1.html    the report as one self-contained web page (code hidden; maths as
                        MathML, rendered by the browser itself: nothing is loaded from the network)
    assignment1.pdf     the report, A4 (code hidden): the notebook's Markdown and outputs, through
                        pandoc's Typst writer and the Typst compiler, both installed by pip
    assignment1.json    what the PDF was built from (title page, run mode, the sources' hashes),
                        read by `python tasks.py handin`
    figures/*.png       every figure, written by the notebook itself
    metrics.json        the run's results, written by the notebook itself

The title page names the group: ``report.toml`` (``group``, ``authors``), overridden by the
environment variables ASSIGNMENT1_GROUP and ASSIGNMENT1_AUTHORS ("Name One; Name Two"). The
file is checked before the notebook runs.

Every product is written under a temporary name and renamed only once complete; a failure
removes an older PDF, so build/ never holds a PDF from another run. Failures end with one
message (no traceback) that says what went wrong and how to fix it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

if TYPE_CHECKING:
    import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "assignment1.ipynb"
CONFIG = ROOT / "report.toml"
TEMPLATE = Path(__file__).resolve().parent / "report.typ"
TITLE = "Assignment 1: Logistic and Softmax Regression on MNIST"
PLACEHOLDER_GROUP = "Group ?? (set group in report.toml)"
PLACEHOLDER_AUTHORS = ["Author names (set authors in report.toml)"]
#: Files the report is built from: `python tasks.py handin` refuses a PDF built from other versions.
SOURCES = ["assignment1.ipynb", "report.toml", "task2.py", "task2a.py", "task3.py",
           "task3a.py", "trainer.py", "utils.py", "mnist.py"]


class BuildError(Exception):
    """A failure with a message for the user (printed without a traceback)."""


# --- The title page: report.toml, checked before anything runs ----------------------------

@dataclass(frozen=True)
class TitlePage:
    group: str  # as printed: "Group 42"
    authors: list[str]
    placeholder: bool  # the group or the names are not filled in yet


def read_config(config: Path | None = None) -> dict[str, Any]:
    """report.toml (default ``CONFIG``) as {"group": str, "authors": [str, ...]}; BuildError
    naming the file, the key and what is expected for anything else."""
    config = CONFIG if config is None else config
    if not config.is_file():
        return {"group": "", "authors": []}
    try:
        text = config.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BuildError(f"{config}: not UTF-8 text (byte {exc.start} is "
                         f"{exc.object[exc.start]:#04x}); save it as UTF-8") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BuildError(f"{config}: not valid TOML ({exc}); expected lines like "
                         f'group = "42" and authors = ["Name One", "Name Two"]') from exc
    unknown = sorted(set(data) - {"group", "authors"})
    if unknown:
        raise BuildError(f"{config}: unknown key {unknown[0]!r}; it holds only group (a string) "
                         f"and authors (a list of strings)")
    group = data.get("group", "")
    if isinstance(group, bool) or not isinstance(group, (str, int)):
        raise BuildError(f"{config}: group must be a string such as \"42\", got "
                         f"{type(group).__name__} {group!r}")
    authors = data.get("authors", [])
    if not isinstance(authors, list) or not all(isinstance(a, str) for a in authors):
        what = type(authors).__name__ if not isinstance(authors, list) else "a list holding " + \
            ", ".join(sorted({type(a).__name__ for a in authors if not isinstance(a, str)}))
        raise BuildError(f"{config}: authors must be a list of strings such as "
                         f"[\"Name One\", \"Name Two\"], got {what}")
    return {"group": str(group), "authors": authors}


def title_page(config: Path | None = None) -> TitlePage:
    """The group line and names: the environment, else report.toml, else visible placeholders."""
    data = read_config(config)
    group = (os.environ.get("ASSIGNMENT1_GROUP") or data["group"]).strip()
    env_authors = os.environ.get("ASSIGNMENT1_AUTHORS")
    authors = env_authors.split(";") if env_authors else data["authors"]
    authors = [a.strip() for a in authors if a.strip()]
    if group and not group.lower().startswith("group"):
        group = f"Group {group}"
    return TitlePage(group or PLACEHOLDER_GROUP, authors or PLACEHOLDER_AUTHORS,
                     not group or not authors)


# The Jupyter stack (nbformat, nbclient, nbconvert) is imported where it is used: importing
# it costs about a second, which the quick test loop should not pay for tests that do not
# build a report.

@contextlib.contextmanager
def notebook_environment(out_dir: Path, quick: bool):
    """The environment a kernel started inside inherits: where the notebook writes its
    products, and whether it makes a reduced (quick) run."""
    env = {"ASSIGNMENT1_BUILD": "1", "ASSIGNMENT1_OUT": str(out_dir.resolve()),
           "ASSIGNMENT1_QUICK": "1" if quick else "0"}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def notebook_client(nb: nbformat.NotebookNode, timeout: int):
    """An nbclient NotebookClient for ``nb`` whose kernel runs in the project's root."""
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    class LocalKernelManager(AsyncKernelManager):
        """Talks to the kernel over local sockets (IPC) rather than loopback TCP."""

        def __init__(self, **kwargs):
            if os.name != "nt":  # Windows has no IPC transport: loopback TCP there
                kwargs["transport"] = "ipc"
            super().__init__(**kwargs)

    return NotebookClient(nb, timeout=timeout, kernel_name="python3",
                          kernel_manager_class=LocalKernelManager,
                          resources={"metadata": {"path": str(ROOT)}})


def execute(out_dir: Path, quick: bool, timeout: int,
            nb: nbformat.NotebookNode | None = None) -> nbformat.NotebookNode:
    """Run every cell (of ``nb``, default the project's notebook) in a fresh kernel with the
    project root as working directory; the notebook writes its figures to ``out_dir``."""
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4) if nb is None else nb
    with notebook_environment(out_dir, quick):
        notebook_client(nb, timeout).execute()
    return nb


def is_executed(nb: nbformat.NotebookNode) -> bool:
    """Every code cell with source has run."""
    return all(cell.get("execution_count") is not None for cell in nb.cells
               if cell.cell_type == "code" and cell.source.strip())


def report_cells(nb: nbformat.NotebookNode) -> list:
    """The cells that belong to the report: all but those tagged ``remove-cell`` (the
    notebook's note on how to export it)."""
    return [cell for cell in nb.cells
            if "remove-cell" not in cell.get("metadata", {}).get("tags", [])]


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


def title_html(title: TitlePage) -> str:
    """The title block of the HTML page; every name escaped, so it shows literally."""
    names = ", ".join(html.escape(a) for a in title.authors)
    return (f'<header style="text-align:center;margin:1em 0 2em">'
            f'<h1 style="margin-bottom:0.2em">{html.escape(TITLE)}</h1>'
            f'<p style="font-size:1.2em;margin:0.2em">{html.escape(title.group)}</p>'
            f'<p style="margin:0.2em">{names}</p></header>')


def offline_html(nb: nbformat.NotebookNode, resources: dict, title: TitlePage) -> str:
    """The report as one page that renders its maths with the network off."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.from_dict(nb)  # a copy: the PDF route keeps the TeX
    nb.cells = report_cells(nb)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = mathml_markdown(cell.source)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/markdown" in data:
                data["text/markdown"] = mathml_markdown(data["text/markdown"])
    nb.metadata["title"] = TITLE
    html_page, _ = HTMLExporter(exclude_input=True, exclude_input_prompt=True,
                                exclude_output_prompt=True).from_notebook_node(nb, resources)
    # the template's scripts for MathJax, require.js and mermaid come from a CDN: drop them
    html_page = re.sub(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", "", html_page)
    html_page = re.sub(r"<script[^>]*>(?:(?!</script>).)*?(?:https?://|MathJax)"
                       r"(?:(?!</script>).)*</script>", "", html_page, flags=re.DOTALL)
    html_page = re.sub(r"(<main[^>]*>|<body[^>]*>)", lambda m: m.group(1) + title_html(title),
                       html_page, count=1)
    remote = remote_resources(html_page)
    if remote:
        raise BuildError(f"the HTML report would load {remote[0]} from the network")
    return html_page


def remote_resources(html_page: str) -> list[str]:
    """URLs the page would load (scripts, styles, images, imports); links are not loads."""
    found = re.findall(r"<(?:script|img|iframe|source|audio|video)\b[^>]*\bsrc=[\"'](https?://[^\"']+)",
                       html_page)
    found += re.findall(r"<link\b[^>]*\bhref=[\"'](https?://[^\"']+)", html_page)
    found += re.findall(r"@import\s+(?:url\()?[\"']?(https?://[^\"')\s]+)", html_page)
    found += re.findall(r"\bimport\b[^;\n]*?[\"'](https?://[^\"']+)", html_page)
    return found


# --- PDF: Markdown -> pandoc's Typst writer -> the Typst compiler -------------------------

def report_markdown(nb: nbformat.NotebookNode) -> tuple[str, dict[str, bytes], dict[str, str]]:
    """The report as pandoc Markdown, code hidden, outputs kept, the figure files, and the
    placement of each figure that asks for one.

    Markdown cells and ``text/markdown`` outputs go in as they are; a figure goes in as its
    vector ``application/pdf`` render (PNG where there is none), with the caption, width and
    placement the notebook gave it in the output's metadata (``caption``; ``width`` as a
    share of the line; ``placement``: "top", "bottom" or "none", default the template's).
    Plain-text results and streams are not part of the report.
    """
    parts, files, placements = [], {}, {}
    for cell in report_cells(nb):
        if cell.cell_type == "markdown":
            parts.append(cell.source)
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                raise BuildError(f"the notebook holds an error output ({output.get('ename')}); "
                                 f"run it again without errors")
            data, meta = output.get("data", {}), output.get("metadata", {})
            for mime, ext in (("application/pdf", "pdf"), ("image/png", "png")):
                if mime in data:
                    name = f"figure-{len(files) + 1}.{ext}"
                    files[name] = base64.b64decode(data[mime])
                    caption = " ".join(str(meta.get("caption", "")).split())
                    width = float(meta.get("width", 1.0))
                    parts.append(f"![{caption}]({name}){{width={100 * width:g}%}}")
                    if meta.get("placement") in ("top", "bottom", "none"):
                        placements[name] = meta["placement"]
                    break
            else:
                if "text/markdown" in data:
                    parts.append(str(data["text/markdown"]))
    return "\n\n".join(parts) + "\n", files, placements


def pandoc_path() -> str:
    """The pandoc binary of the pypandoc-binary wheel (never a system pandoc)."""
    try:
        import pypandoc
    except ImportError as exc:
        raise BuildError("pypandoc-binary is not installed: run `python tasks.py report` (it "
                         "installs the project's environment) or pip install -r "
                         "requirements.lock") from exc
    return pypandoc.get_pandoc_path()


def typst_body(markdown: str, placements: dict[str, str] | None = None) -> str:
    """Typst markup for the report's body; BuildError on any pandoc warning (a formula it
    could not convert would print as raw TeX). ``placements``: figure file -> placement."""
    # --columns: pipe tables narrower than this get widths from their content, not from the
    # dashes of their separator line
    result = subprocess.run([pandoc_path(), "--from", "markdown", "--to", "typst",
                             "--wrap=preserve", "--columns=1000"], input=markdown.encode("utf-8"),
                            capture_output=True, timeout=300)
    stderr = result.stderr.decode("utf-8", errors="replace").strip()
    if result.returncode != 0 or stderr:
        raise BuildError(f"pandoc could not convert the report to Typst: {stderr}")
    body = result.stdout.decode("utf-8")
    for name, placement in (placements or {}).items():
        body = body.replace(f'#figure(image("{name}"',
                            f'#figure(placement: {placement}, image("{name}"', 1)
    return body


def font_paths() -> list[str]:
    """Folders of the fonts the wheels bring: IPAexGothic (matplotlib-fontja) for CJK names."""
    try:
        import matplotlib_fontja
    except ImportError:
        return []
    return [str(Path(matplotlib_fontja.__file__).parent / "fonts")]


def compile_pdf(body: str, files: dict[str, bytes], title: TitlePage) -> bytes:
    """The PDF, from the template, the body and the figure files (in a temporary folder)."""
    import typst

    with tempfile.TemporaryDirectory(prefix="assignment1-typst-") as tmp:
        folder = Path(tmp)
        for name, content in files.items():
            (folder / name).write_bytes(content)
        main = folder / "assignment1.typ"
        main.write_text(TEMPLATE.read_text(encoding="utf-8") + "\n" + body, encoding="utf-8")
        inputs = {"title": TITLE, "group": title.group,
                  "authors": json.dumps(title.authors, ensure_ascii=False)}
        try:
            pdf, warnings = typst.compile_with_warnings(
                str(main), root=str(folder), font_paths=font_paths(), sys_inputs=inputs,
                timestamp=0)
        except typst.TypstError as exc:
            (ROOT / "build").mkdir(exist_ok=True)
            kept = ROOT / "build" / "assignment1.typ"
            shutil.copy(main, kept)
            raise BuildError(f"Typst could not build the PDF: {exc}. The source is kept in "
                             f"{kept}") from exc
    for warning in warnings:
        print(f"typst: {warning}", file=sys.stderr)
    return pdf


def missing_glyphs(text: str) -> list[str]:
    """Characters of ``text`` that no font the PDF may use can show (checked with fontTools,
    which matplotlib brings)."""
    from fontTools.ttLib import TTFont
    from matplotlib import font_manager

    # Typst's built-in fonts (Libertinus, New Computer Modern) cover Latin, Greek, Cyrillic
    wanted = {c for c in text if not c.isspace() and ord(c) > 0x2FF}
    candidates = [*(str(p) for d in font_paths() for p in Path(d).glob("*.tt[fc]")),
                  *font_manager.findSystemFonts()]
    for path in candidates:
        if not wanted:
            break
        try:
            with TTFont(path, fontNumber=0, lazy=True) as font:
                wanted -= set(map(chr, font.getBestCmap() or {}))
        except Exception:  # an unreadable system font is simply not a candidate
            continue
    return sorted(wanted)


def sources_digest() -> dict[str, str]:
    """SHA-256 of each file the report is built from."""
    return {name: hashlib.sha256((ROOT / name).read_bytes()).hexdigest()
            for name in SOURCES if (ROOT / name).is_file()}


def write_atomically(path: Path, content: bytes) -> None:
    """Write under a temporary name, then rename over ``path`` (whole, or not at all)."""
    tmp = path.with_name(f".{path.name}.part")
    try:
        tmp.write_bytes(content)
        os.replace(tmp, path)
    except PermissionError as exc:  # Windows: the file is open in a viewer
        raise BuildError(f"cannot replace {path}: {exc.strerror}. If it is open in another "
                         f"program (a PDF viewer), close it and run again.") from exc
    finally:
        tmp.unlink(missing_ok=True)


def pdf_bytes(nb: nbformat.NotebookNode, title: TitlePage) -> bytes:
    """The executed notebook as the report PDF: Markdown, Typst, PDF."""
    markdown, files, placements = report_markdown(nb)
    return compile_pdf(typst_body(markdown, placements), files, title)


def export(nb: nbformat.NotebookNode, out_dir: Path, *, quick: bool = False,
           digest: dict[str, str] | None = None) -> int:
    """Write the HTML, then the PDF and its record (atomically). Returns 0, or 1 with one
    message. ``digest`` is the sources' hashes taken before the notebook ran."""
    pdf_path, record_path = out_dir / "assignment1.pdf", out_dir / "assignment1.json"
    try:
        title = title_page()
        resources = {"metadata": {"name": "assignment1", "path": str(ROOT)}}
        html_path = out_dir / "assignment1.html"
        write_atomically(html_path, offline_html(nb, resources, title).encode("utf-8"))
        print(f"wrote {html_path}")
        started = time.perf_counter()
        pdf = pdf_bytes(nb, title)
        seconds = time.perf_counter() - started
        record = {"title": title.group, "authors": title.authors,
                  "placeholder": title.placeholder, "quick": quick,
                  "pdf_sha256": hashlib.sha256(pdf).hexdigest(),
                  "sources": digest if digest is not None else sources_digest()}
        pdf_path.unlink(missing_ok=True)  # never a PDF beside a record of another one
        write_atomically(record_path, (json.dumps(record, indent=2) + "\n").encode("utf-8"))
        write_atomically(pdf_path, pdf)
        print(f"wrote {pdf_path} ({len(pdf) / 1e6:.1f} MB, A4, in {seconds:.1f} s; "
              f"{title.group}; {', '.join(title.authors)})")
        unshown = missing_glyphs(title.group + "".join(title.authors))
        if unshown:
            print(f"warning: no installed font has {' '.join(unshown)} (from report.toml): "
                  f"the title page cannot show them; install a font that covers them",
                  file=sys.stderr)
        if title.placeholder:
            print("note: the title page shows placeholders: put your group and names in "
                  "report.toml (python tasks.py handin refuses it as it is)", file=sys.stderr)
        return 0
    except BuildError as exc:
        pdf_path.unlink(missing_ok=True)
        record_path.unlink(missing_ok=True)
        print(exc, file=sys.stderr)
        return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build", help="output folder")
    parser.add_argument("--quick", action="store_true",
                        help="a reduced run (few softmax epochs) for trying the pipeline")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    parser.add_argument("--config", type=Path, default=None,
                        help="the title page's group and names (default: report.toml)")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        return worker(args.worker, args.quick, args.timeout)
    if args.config is not None:
        global CONFIG
        CONFIG = args.config
    out_dir = args.out if args.out.is_absolute() else Path.cwd() / args.out
    if out_dir.exists() and not out_dir.is_dir():
        print(f"{out_dir} exists and is not a folder: the report is built into a folder of "
              f"that name. Move or delete the file, or pass --out OTHER_FOLDER.", file=sys.stderr)
        return 1
    try:
        title_page()  # a bad report.toml stops the build before the notebook runs
    except BuildError as exc:
        print(exc, file=sys.stderr)
        return 1
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        return build(out_dir, staging, args.quick, args.timeout)
    except BuildError as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"report: interrupted; {out_dir} keeps the previous report's files",
              file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def execute_in_worker(staging: Path, quick: bool, timeout: int) -> nbformat.NotebookNode:
    """``execute`` in a child process of its own session, which writes the executed notebook
    into ``staging``. Ctrl-C reaches only this process: the child is stopped and its output
    (tracebacks of the kernel and of nbclient's clean-up) is dropped, so an interrupted build
    ends with one line. BuildError carries the child's message when the notebook fails."""
    import nbformat

    command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(staging),
               "--timeout", str(timeout), *(["--quick"] if quick else [])]
    own_group = ({"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if os.name == "nt"
                 else {"start_new_session": True})
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, encoding="utf-8",
                             errors="replace", **own_group)
    try:
        _, stderr = child.communicate()
    except KeyboardInterrupt:
        child.terminate()
        try:
            child.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
        raise
    if child.returncode != 0:
        raise BuildError(stderr.strip() or f"the notebook's worker ended with {child.returncode}")
    return nbformat.read(staging / "assignment1.ipynb", as_version=4)


def worker(staging: Path, quick: bool, timeout: int) -> int:
    """The child of ``execute_in_worker``: run the notebook, save it into ``staging``."""
    import signal

    import nbformat
    from nbclient.exceptions import CellExecutionError

    if hasattr(signal, "SIGTERM"):  # stopped by the parent: clean up the kernel, then exit
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        nb = execute(staging, quick, timeout)
    except CellExecutionError as exc:
        print(exc, file=sys.stderr)
        return 1
    nbformat.write(nb, staging / "assignment1.ipynb")
    return 0


#: What the notebook writes into its output folder; moved into build/ together, when complete.
NOTEBOOK_PRODUCTS = ("figures", "metrics.json")


def publish(staging: Path, out_dir: Path) -> None:
    """Move the notebook's products from ``staging`` into ``out_dir``, replacing the previous
    ones: each is renamed into place whole, so no folder ever holds two runs' figures."""
    for name in NOTEBOOK_PRODUCTS:
        new, old = staging / name, out_dir / name
        if not new.exists():
            continue
        retired = staging / f"{name}.previous"
        try:
            if old.exists():
                os.replace(old, retired)
            os.replace(new, old)
        except BaseException:  # interrupted between the two renames: the previous one returns
            if retired.exists() and not old.exists():
                os.replace(retired, old)
            raise


def build(out_dir: Path, staging: Path, quick: bool, timeout: int) -> int:
    """Execute the notebook into ``staging``, publish its products, export the report."""
    import nbformat

    digest = sources_digest()
    start = time.perf_counter()
    try:
        nb = execute_in_worker(staging, quick, timeout)
    except BuildError as exc:
        (out_dir / "assignment1.pdf").unlink(missing_ok=True)
        print(f"The notebook failed while executing (no PDF was written):\n{exc}",
              file=sys.stderr)
        return 1
    write_atomically(out_dir / "assignment1.ipynb", nbformat.writes(nb).encode("utf-8"))
    publish(staging, out_dir)
    print(f"executed {NOTEBOOK.name} in {time.perf_counter() - start:.1f} s "
          f"-> {out_dir / 'assignment1.ipynb'}")
    return export(nb, out_dir, quick=quick, digest=digest)


if __name__ == "__main__":
    sys.exit(main())
