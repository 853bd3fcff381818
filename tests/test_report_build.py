"""The report build: offline HTML, clear TeX failures, no stale PDF, the title page."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import build_report


def math_notebook():
    import nbformat

    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(
            "# Task 1a\nInline $\\frac{1}{N}\\sum_n x_n$ and display\n\n"
            "$$\\begin{aligned} a &= \\frac{1}{2} \\\\ b &= \\sum_{i} w_i^2 \\end{aligned}$$"),
        nbformat.v4.new_code_cell("", outputs=[nbformat.v4.new_output(
            "display_data", data={"text/markdown": "a number: $\\lambda = 0.002$"})]),
    ])


@pytest.mark.slow
def test_html_has_mathml_and_loads_nothing_from_the_network(tmp_path, monkeypatch):
    monkeypatch.setattr(build_report.shutil, "which", lambda name: None)
    assert build_report.export(math_notebook(), tmp_path) == 1  # no TeX: HTML only
    html = (tmp_path / "assignment1.html").read_text()
    assert html.count("<math") == 3 and "<mtable>" in html
    assert "$$" not in html and "\\frac" not in html
    assert build_report.remote_resources(html) == []


def test_a_missing_sty_file_gives_one_clear_message(tmp_path):
    log = "(./assignment1.tex\n! LaTeX Error: File `adjustbox.sty' not found.\n"
    message = build_report.missing_file_message(log, tmp_path / "assignment1.log")
    assert "adjustbox.sty" in message and "texlive-latex-extra" in message
    assert str(tmp_path / "assignment1.log") in message


def test_a_failed_pdf_build_removes_the_old_pdf(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "assignment1.pdf"
    stale.write_bytes(b"%PDF-1.5 an older report")

    def failing_xelatex(tex, files, out_dir):
        raise build_report.BuildError("XeLaTeX could not build the PDF (test)")

    monkeypatch.setattr(build_report.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(build_report, "latex_source", lambda nb, res: ("", {}))
    monkeypatch.setattr(build_report, "run_xelatex", failing_xelatex)
    assert build_report.export(math_notebook(), tmp_path) == 1
    assert not stale.exists()
    err = capsys.readouterr().err
    assert "could not build the PDF" in err and "Traceback" not in err


def test_group_and_authors_from_config_or_environment(tmp_path, monkeypatch):
    config = tmp_path / "report.toml"
    config.write_text('group = "Group 42"\nauthors = ["Ada Lovelace", "Alan Turing"]\n')
    monkeypatch.delenv("ASSIGNMENT1_GROUP", raising=False)
    monkeypatch.delenv("ASSIGNMENT1_AUTHORS", raising=False)
    assert build_report.group_details(config) == ("Group 42", ["Ada Lovelace", "Alan Turing"])
    monkeypatch.setenv("ASSIGNMENT1_AUTHORS", "Grace Hopper; Edsger Dijkstra")
    assert build_report.group_details(config)[1] == ["Grace Hopper", "Edsger Dijkstra"]
    config.write_text('group = ""\nauthors = []\n')
    monkeypatch.delenv("ASSIGNMENT1_AUTHORS")
    group, authors = build_report.group_details(config)
    assert "report.toml" in group and "report.toml" in authors[0]  # a visible placeholder


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("xelatex") is None, reason="XeLaTeX is not installed")
def test_the_pdf_is_a4_with_the_group_on_the_title_page(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSIGNMENT1_GROUP", "Group 42")
    monkeypatch.setenv("ASSIGNMENT1_AUTHORS", "Ada Lovelace; Alan Turing")
    assert build_report.export(math_notebook(), tmp_path) == 0
    pdf = tmp_path / "assignment1.pdf"
    if shutil.which("pdfinfo") is None:
        pytest.skip("pdfinfo (poppler-utils) is not installed")
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    assert "595.28 x 841.89" in info  # A4 in points
    text = subprocess.run(["pdftotext", "-l", "1", str(pdf), "-"], capture_output=True,
                          text=True).stdout
    assert "Group 42" in text and "Ada Lovelace" in text


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium installed (Debian: apt-get "
                                             "install chromium); the offline-HTML test needs one")
def test_html_maths_renders_offline_in_a_real_browser(tmp_path, monkeypatch):
    """Chromium with the network off: the rendered text holds no raw TeX; a screenshot is kept."""
    monkeypatch.setattr(build_report.shutil, "which", lambda name: None)
    built = ROOT / "build" / "assignment1.html"
    if built.is_file():
        html_path = built  # the real report, when `make report` has run
    else:
        build_report.export(math_notebook(), tmp_path)
        html_path = tmp_path / "assignment1.html"
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
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "build_report.py"), "--out",
                             str(out)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "is not a folder" in result.stderr
    assert out.read_text() == "not a folder"  # the user's file is untouched
    assert "Traceback" not in result.stderr


