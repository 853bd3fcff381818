"""The report build: offline HTML, the PDF through Typst with pip alone, the title page from
report.toml (any name, printed literally; a bad file gets one clear line)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from tools import config, render, report
from tools.cli import UserError


def math_notebook():
    import nbformat

    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(
            "# Task 1a\nInline $\\frac{1}{N}\\sum_n x_n$ and display\n\n"
            "$$\\begin{aligned} a &= \\frac{1}{2} \\\\ b &= \\sum_{i} w_i^2 \\end{aligned}$$"),
        nbformat.v4.new_code_cell("", outputs=[nbformat.v4.new_output(
            "display_data", data={"text/markdown": "a number: $\\lambda = 0.002$"})]),
    ])


def pdf_text(pdf_path) -> tuple[str, list]:
    """(text of every page, page sizes in points), read with pypdf."""
    from pypdf import PdfReader

    reader = PdfReader(str(pdf_path))
    return ("\n".join(page.extract_text() for page in reader.pages),
            [(float(p.mediabox.width), float(p.mediabox.height)) for p in reader.pages])


def render_in(nb, title, folder):
    """The web page and the PDF of ``nb``, rendered in ``folder``."""
    work = folder / "render"
    work.mkdir()
    return render.render(nb, title, work)


@pytest.mark.slow
def test_html_has_mathml_the_title_and_loads_nothing_from_the_network(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSIGNMENT1_GROUP", "42")
    monkeypatch.setenv("ASSIGNMENT1_AUTHORS", "Ada <Lovelace>; Alan & Turing")
    page, pdf = render_in(math_notebook(), config.title_page(ROOT / "report.toml"), tmp_path)
    assert page.count("<math") == 3 and "<mtable" in page
    visible = visible_text(page)  # the TeX is kept only as MathML's hidden annotation
    assert "$$" not in visible and "\\frac" not in visible
    assert render.REMOTE.search(page) is None
    assert "Group 42" in page and "Ada &lt;Lovelace&gt;" in page and "Alan &amp; Turing" in page
    assert pdf.startswith(b"%PDF-")


def test_a_failed_pdf_keeps_the_previous_report_whole(tmp_path, monkeypatch, capsys):
    """The new set is only staged: a PDF that cannot be built changes nothing in the output
    folder, and the line says so."""
    from fake_project import make_project, seed_cache
    from test_build_folder import previous_build, snapshot

    for variable in ("ASSIGNMENT1_GROUP", "ASSIGNMENT1_AUTHORS"):
        monkeypatch.delenv(variable, raising=False)
    project = make_project(tmp_path / "checkout")
    seed_cache(project)
    out = tmp_path / "out"
    before = previous_build(project, out, monkeypatch)
    monkeypatch.undo()  # the real rendering again, but for Typst:

    def failing_typst(work, body, files, title):
        raise UserError("Typst could not build the PDF (test)")

    monkeypatch.setattr(render, "compile_pdf", failing_typst)
    capsys.readouterr()
    assert report.main(["--out", str(out)], project) == 1
    err = capsys.readouterr().err
    assert err.strip() == (f"Typst could not build the PDF (test); {out} keeps the previous "
                           f"report, unchanged")
    assert snapshot(out) == before and not (out / ".next").exists()


def test_group_and_authors_from_config_or_environment(tmp_path, monkeypatch):
    path = tmp_path / "report.toml"
    path.write_text('group = "42"\nauthors = ["Ada Lovelace", "Alan Turing"]\n')
    monkeypatch.delenv("ASSIGNMENT1_GROUP", raising=False)
    monkeypatch.delenv("ASSIGNMENT1_AUTHORS", raising=False)
    title = config.title_page(path)
    assert (title.group, title.authors, title.placeholder) == (
        "Group 42", ["Ada Lovelace", "Alan Turing"], False)
    monkeypatch.setenv("ASSIGNMENT1_AUTHORS", "Grace Hopper; Edsger Dijkstra")
    monkeypatch.setenv("ASSIGNMENT1_GROUP", "Group 7")  # the environment wins over the file
    title = config.title_page(path)
    assert title.group == "Group 7" and title.authors == ["Grace Hopper", "Edsger Dijkstra"]
    for given, printed in [("Gruppe 42", "Gruppe 42"), ("Team 7", "Team 7"), ("7b", "Group 7b"),
                           ("A3", "Group A3"), ("123456", "Group 123456"), ("group7", "group7"),
                           ("Blue", "Blue")]:
        monkeypatch.setenv("ASSIGNMENT1_GROUP", given)  # a label is printed as given
        assert config.title_page(path).group == printed
    path.write_text('group = ""\nauthors = []\n')
    monkeypatch.delenv("ASSIGNMENT1_AUTHORS")
    monkeypatch.delenv("ASSIGNMENT1_GROUP")
    title = config.title_page(path)
    assert title.placeholder and "report.toml" in title.group
    assert "report.toml" in title.authors[0]  # a visible placeholder
    path.write_text('group = "42"\nauthors = []\n')  # a real group, placeholder names
    title = config.title_page(path)
    assert title.placeholder and title.group == "Group 42" and "report.toml" in title.authors[0]
    path.write_text('group = ""\nauthors = ["Ada Lovelace"]\n')
    assert config.title_page(path).placeholder


@pytest.mark.parametrize(("content", "expected"), [
    (b'group = "42"\nauthors = "Ada Lovelace"\n', "authors must be a list of strings"),
    (b'group = "42"\nauthors = ["Ada", 7]\n', "authors must be a list of strings"),
    (b'group = ["42"]\n', "group must be a string"),
    (b'[group]\nname = "42"\n', "group must be a string"),
    (b'group = 42.5\n', "group must be a string"),
    (b'group = "42"\nauthor = ["Ada"]\n', "unknown key 'author'"),
    (b'group = "42\n', "not valid TOML"),
    ('group = "Gr\u00f8nn"\n'.encode("latin-1"), "not UTF-8"),
])
def test_a_bad_report_toml_gets_one_clear_message(tmp_path, monkeypatch, content, expected):
    monkeypatch.delenv("ASSIGNMENT1_GROUP", raising=False)
    monkeypatch.delenv("ASSIGNMENT1_AUTHORS", raising=False)
    path = tmp_path / "report.toml"
    path.write_bytes(content)
    with pytest.raises(UserError) as info:
        config.title_page(path)
    message = str(info.value)
    assert str(path) in message and expected in message and "\n" not in message


def test_a_report_toml_saved_with_a_bom_is_read(tmp_path, monkeypatch):
    """Windows Notepad may save UTF-8 with a byte-order mark."""
    monkeypatch.delenv("ASSIGNMENT1_GROUP", raising=False)
    monkeypatch.delenv("ASSIGNMENT1_AUTHORS", raising=False)
    path = tmp_path / "report.toml"
    path.write_bytes(b"\xef\xbb\xbf" + 'group = "42"\nauthors = ["Åse Ørn"]\n'.encode())
    title = config.title_page(path)
    assert (title.group, title.authors) == ("Group 42", ["Åse Ørn"])


@pytest.mark.slow
def test_a_bad_report_toml_stops_make_report_before_the_notebook_runs(tmp_path):
    """One line, no traceback, nothing executed (the check runs first)."""
    (tmp_path / "report.toml").write_text('authors = "one name"\n')
    result = subprocess.run(
        [sys.executable, "-m", "tools.report", "--out", str(tmp_path / "b"),
         "--config", str(tmp_path / "report.toml")], capture_output=True, text=True, timeout=120,
        cwd=ROOT)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().count("\n") == 0 and "authors must be a list" in result.stderr
    assert not (tmp_path / "b" / "assignment1.ipynb").exists()


NAMES = ["Ola & Kari_Nordmann", "Per {Jr} \\ 100% $5 #1 ^~", "Øyvind Æsir Łukasz 李",
         '"Quoted" <angle> *star* @at']


@pytest.mark.slow
def test_the_pdf_is_a4_with_any_names_literally_on_the_title_page(tmp_path, monkeypatch):
    """Built with no TeX and no pandoc on PATH: only the virtual environment's Python."""
    path = tmp_path / "report.toml"
    toml_names = ", ".join(json.dumps(n, ensure_ascii=False) for n in NAMES)
    path.write_text(f'group = "42"\nauthors = [{toml_names}]\n', encoding="utf-8")
    nb_path = tmp_path / "math.ipynb"
    import nbformat

    nbformat.write(math_notebook(), nb_path)
    script = (f"import json; from pathlib import Path; from tools import config, render; "
              f"work = Path({str(tmp_path / 'work')!r}); "
              f"work.mkdir(); nb = json.loads(Path({str(nb_path)!r}).read_text()); "
              f"title = config.title_page(Path({str(path)!r})); "
              f"page, pdf = render.render(nb, title, work); "
              f"Path({str(tmp_path / 'assignment1.pdf')!r}).write_bytes(pdf)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSIGNMENT1_")}
    env["PATH"] = str(Path(sys.executable).parent)  # no xelatex, no pandoc, no typst binary
    for tool in ("xelatex", "pandoc", "typst"):
        assert shutil.which(tool, path=env["PATH"]) is None
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    text, sizes = pdf_text(tmp_path / "assignment1.pdf")
    assert all(abs(w - 595.28) < 0.5 and abs(h - 841.89) < 0.5 for w, h in sizes)  # A4
    first_page = text.split("Task 1a")[0]
    assert "Group 42" in first_page
    for name in NAMES:
        assert name in first_page.replace("\n", " "), f"{name!r} is not on the title page"
    assert "Task 1a" in text and "\\frac" not in text


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium installed (Debian: apt-get "
                                             "install chromium); the offline-HTML test needs one")
def test_html_maths_renders_offline_in_a_real_browser(tmp_path, monkeypatch):
    """Chromium with the network off: the rendered text holds no raw TeX; a screenshot is kept."""
    built = ROOT / "build" / "assignment1.html"
    if built.is_file():
        html_path = built  # the real report, when `python tasks.py report` has run
    else:
        html_path = tmp_path / "assignment1.html"
        html_path.write_text(render_in(math_notebook(), config.title_page(ROOT / "report.toml"),
                                       tmp_path)[0], encoding="utf-8")
    screenshot = ROOT / "build" / "browser" / "assignment1-offline.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    offline = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
               "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"]
    url = html_path.resolve().as_uri()
    dom = subprocess.run([CHROMIUM, *offline, "--dump-dom", url], capture_output=True,
                         text=True, timeout=120).stdout
    subprocess.run([CHROMIUM, *offline, f"--screenshot={screenshot}", "--window-size=1100,1600",
                    url], capture_output=True, timeout=120)
    assert "<math" in dom, "the page has no MathML"
    visible = visible_text(dom)
    for raw in ("$$", "\\frac", "\\sum"):
        assert raw not in visible, f"raw TeX {raw!r} is visible in the rendered page"
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000


def visible_text(dom: str) -> str:
    from html.parser import HTMLParser

    class Text(HTMLParser):
        def __init__(self):
            super().__init__()
            self.skip, self.parts = 0, []

        def handle_starttag(self, tag, attrs):
            self.skip += tag in ("script", "style", "annotation")

        def handle_endtag(self, tag):
            self.skip -= tag in ("script", "style", "annotation") and self.skip > 0

        def handle_data(self, data):
            if not self.skip:
                self.parts.append(data)

    parser = Text()
    parser.feed(dom)
    return " ".join(parser.parts)


@pytest.mark.slow
def test_make_report_refuses_a_build_path_that_is_a_file(tmp_path):
    out = tmp_path / "build"
    out.write_text("not a folder")
    result = subprocess.run([sys.executable, "-m", "tools.report", "--out", str(out)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 1 and "is not a folder" in result.stderr
    assert out.read_text() == "not a folder"  # the user's file is untouched
    assert "Traceback" not in result.stderr


def test_characters_no_font_can_show_are_named():
    assert render.missing_glyphs("Ola Łukasz 李") == []  # IPAexGothic has the CJK one
    assert render.missing_glyphs("Ada \u0378") == ["\u0378"]  # unassigned: no font has it


def test_a_figure_and_the_text_after_it_in_its_cell_are_one_block_of_the_pdf():
    """What a cell shows from its figure on goes into one unbreakable Typst block (the heading
    before sticks to it), so a figure's text never sits on another page; text before the
    figure, other cells and the web page's Markdown are as they were."""
    figure = {"output_type": "display_data", "metadata": {"caption": "Task 2b: a figure"},
              "data": {"application/pdf": "JVBERg==", "image/png": "iVBO"}}
    text = {"output_type": "display_data", "data": {"text/markdown": "After the figure."}}
    before = {"output_type": "display_data", "data": {"text/markdown": "Before it."}}
    nb = {"cells": [{"cell_type": "markdown", "source": "## Task 2b: heading"},
                    {"cell_type": "code", "source": "", "outputs": [before, figure, text]},
                    {"cell_type": "markdown", "source": "Next cell."}]}
    markdown = render.report_markdown(nb)[0]
    opened, closed = render.KEEP_TOGETHER
    assert markdown.index("Before it.") < markdown.index(opened) < markdown.index(
        "![Task 2b: a figure]") < markdown.index("After the figure.") < markdown.index(
        closed) < markdown.index("Next cell.")
    import pypandoc

    typst = pypandoc.convert_text(markdown, "typst", format="markdown")
    html = pypandoc.convert_text(markdown, "html5", format="markdown")
    assert "#block(breakable: false)[" in typst and "breakable" not in html
