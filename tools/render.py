"""The executed notebook as the report: pandoc Markdown (code hidden, outputs kept), then pandoc's
HTML writer for the web page and its Typst writer plus the Typst compiler for the A4 PDF (page
design ``report.typ``, page style ``report.css``). pandoc and Typst both come as wheels."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tools.cli import UserError
from tools.config import TITLE, TitlePage

HERE = Path(__file__).resolve().parent
#: Typst around a figure and the text its cell shows after it, so that they share a page (the
#: heading before them sticks to them); the web page ignores Typst
KEEP_TOGETHER = ("```{=typst}\n#block(breakable: false)[\n```", "```{=typst}\n]\n```")
#: What a page would load from the network (scripts, styles, images, imports); links are not.
REMOTE = re.compile(r"<(?:script|img|iframe|source|audio|video)\b[^>]*\bsrc=[\"'](https?://[^\"']+)"
                    r"|<link\b[^>]*\bhref=[\"'](https?://[^\"']+)"
                    r"|@import\s+(?:url\()?[\"']?(https?://[^\"')\s]+)"
                    r"|\bimport\b[^;\n]*?[\"'](https?://[^\"']+)")


def report_markdown(nb: dict, figures: tuple[str, ...] = ("application/pdf", "image/png")
                    ) -> tuple[str, dict[str, bytes], dict[str, str]]:
    """The report as pandoc Markdown (Markdown cells and outputs, no cell tagged remove-cell), its
    figure files (the first of ``figures`` each output has) and their placements."""
    parts, files, placements = [], {}, {}
    for cell in nb["cells"]:
        if "remove-cell" in cell.get("metadata", {}).get("tags", []):
            continue
        if cell.get("cell_type") == "markdown":
            parts.append("".join(cell.get("source", "")))
            continue
        shown, figure_at = [], None
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                raise UserError(f"the notebook holds an error output ({output.get('ename')}); "
                                f"run it again without errors")
            data, meta = output.get("data", {}), output.get("metadata", {})
            mime = next((m for m in figures if m in data), None)
            if mime is not None:
                name = f"figure-{len(files) + 1}.{mime.rsplit('/')[-1]}"
                files[name] = base64.b64decode("".join(data[mime]))
                caption = " ".join(str(meta.get("caption", "")).split())
                width = 100 * float(meta.get("width", 1))
                figure_at = len(shown) if figure_at is None else figure_at
                shown.append(f"![{caption}]({name}){{width={width:g}%}}")
                if meta.get("placement") in ("top", "bottom", "none"):
                    placements[name] = meta["placement"]
            elif "text/markdown" in data:
                shown.append("".join(data["text/markdown"]))
        if figure_at is not None:
            shown[figure_at:] = [KEEP_TOGETHER[0], *shown[figure_at:], KEEP_TOGETHER[1]]
        parts.extend(shown)
    return "\n\n".join(parts) + "\n", files, placements


def run_pandoc(jobs: list[tuple[Path, str, Path, list[str]]]) -> None:
    """pandoc once per (input, format, output, options), side by side; UserError on any
    warning (a formula it could not convert would print as raw TeX)."""
    import pypandoc

    children = [(to, subprocess.Popen([pypandoc.get_pandoc_path(), "--from", "markdown", "--to",
                                       to, "--wrap=preserve", *options, "--output", str(output),
                                       str(markdown)], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
                for markdown, to, output, options in jobs]
    try:
        for to, child in children:
            message = " ".join(child.communicate(timeout=300)[1].decode("utf-8", "replace").split())
            if child.returncode != 0 or message:
                raise UserError(f"pandoc could not convert the report to {to}: "
                                f"{message or f'exit {child.returncode}'}")
    finally:
        for _, child in children:
            child.kill()  # nothing when it has ended
            child.wait()


def html_page(body: str, images: dict[str, bytes], title: TitlePage) -> str:
    """The page around pandoc's HTML ``body``, names escaped and each image inlined: nothing
    is loaded from the network (maths is MathML, which the browser renders itself)."""
    names = ", ".join(html.escape(a) for a in title.authors)
    style = (HERE / "report.css").read_text(encoding="utf-8")
    page = (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(TITLE)}</title>\n<style>{style}</style>\n</head>\n<body>\n"
            f'<header class="title"><h1>{html.escape(TITLE)}</h1><p style="font-size:1.2em">'
            f"{html.escape(title.group)}</p><p>{names}</p></header>\n<main>\n{body}\n</main>\n"
            f"</body>\n</html>\n")
    remote = REMOTE.search(page)  # checked before the images go in: they hold no URL
    if remote:
        raise UserError(f"the HTML report would load {next(filter(None, remote.groups()))} "
                        f"from the network")
    for name, content in images.items():
        page = page.replace(f'src="{name}"',
                            f'src="data:image/png;base64,{base64.b64encode(content).decode()}"')
    return page


def font_paths() -> list[str]:
    """The fonts folder of the matplotlib-fontja wheel (IPAexGothic, for CJK names), found
    without importing it (that would import Matplotlib)."""
    import importlib.util

    spec = importlib.util.find_spec("matplotlib_fontja")
    folders = spec.submodule_search_locations if spec else None
    return [str(Path(f) / "fonts") for f in folders or [] if (Path(f) / "fonts").is_dir()]


def compile_pdf(work: Path, body: str, files: dict[str, bytes], title: TitlePage) -> bytes:
    """The PDF from the page design, the Typst ``body`` and the figure files (in ``work``)."""
    import typst

    for name, content in files.items():
        (work / name).write_bytes(content)
    main = work / "assignment1.typ"
    main.write_text((HERE / "report.typ").read_text(encoding="utf-8") + "\n" + body,
                    encoding="utf-8")
    inputs = {"title": TITLE, "group": title.group,
              "authors": json.dumps(title.authors, ensure_ascii=False)}
    try:
        pdf, warnings = typst.compile_with_warnings(
            str(main), root=str(work), font_paths=font_paths(), sys_inputs=inputs, timestamp=0)
    except typst.TypstError as exc:
        kept = Path(tempfile.mkdtemp(prefix="assignment1-typst-"))
        shutil.copytree(work, kept, dirs_exist_ok=True)
        raise UserError(f"Typst could not build the PDF: {' '.join(str(exc).split())}. Its "
                        f"source is kept in {kept / main.name}") from exc
    for warning in warnings:
        print(f"typst: {' '.join(str(warning).split())}", file=sys.stderr)
    return pdf


def render(nb: dict, title: TitlePage, work: Path, web: bool = True) -> tuple[str | None, bytes]:
    """The executed notebook as the web page (when ``web``) and the PDF, rendered in
    ``work``; the two pandoc conversions run side by side."""
    pdf_md, pdf_files, placements = report_markdown(nb)
    (work / "report.md").write_text(pdf_md, encoding="utf-8")
    jobs = [(work / "report.md", "typst", work / "body.typ", ["--columns=1000"])]
    if web:
        web_md, web_files, _ = report_markdown(nb, ("image/png",))
        (work / "page.md").write_text(web_md, encoding="utf-8")
        jobs.append((work / "page.md", "html5", work / "body.html", ["--mathml"]))
    run_pandoc(jobs)
    body = (work / "body.typ").read_text(encoding="utf-8")
    for name, placement in placements.items():
        body = body.replace(f'#figure(image("{name}"',
                            f'#figure(placement: {placement}, image("{name}"', 1)
    (work / "typst").mkdir()
    pdf = compile_pdf(work / "typst", body, pdf_files, title)
    return html_page((work / "body.html").read_text(encoding="utf-8"), web_files, title) \
        if web else None, pdf


def pdf_bytes(nb: dict, title: TitlePage) -> bytes:
    """The executed notebook as the report PDF (rendered in a temporary folder)."""
    with tempfile.TemporaryDirectory(prefix="assignment1-pdf-") as tmp:
        return render(nb, title, Path(tmp), web=False)[1]


def missing_glyphs(text: str) -> list[str]:
    """Characters of ``text`` that no font the PDF may use can show (read with fontTools)."""
    # Typst's built-in fonts (Libertinus, New Computer Modern) cover Latin, Greek, Cyrillic
    wanted = {c for c in text if not c.isspace() and ord(c) > 0x2FF}
    if not wanted:
        return []
    from fontTools.ttLib import TTFont
    from matplotlib import font_manager

    for path in [*(str(p) for d in font_paths() for p in Path(d).glob("*.tt[fc]")),
                 *font_manager.findSystemFonts()]:
        if not wanted:
            break
        try:
            with TTFont(path, fontNumber=0, lazy=True) as font:
                wanted -= set(map(chr, font.getBestCmap() or {}))
        except Exception:  # an unreadable system font is simply not a candidate
            continue
    return sorted(wanted)
