"""The report PDF's layout, read from the PDF itself: every figure stands under its own task."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_notebook import HEADINGS

from tools import render as build_report

TASK_HEADING = re.compile(r"Task (\d[a-e]):")
CAPTION = re.compile(r"(?:Figure|Table)\s(\d+):\s*(?:Task (\d[a-e])\b)?")


@dataclass(frozen=True)
class Mark:
    """A heading or a caption, where it stands: page (from 1) and height on the page."""
    page: int
    y: float
    kind: str  # "heading" or "caption"
    task: str | None  # "2c"; None for a heading or caption of no task
    text: str


def marks(pdf_path: Path) -> list[Mark]:
    """The headings (bold text at least as large as the task headings) and the captions of
    figures and tables, in reading order: page by page, top to bottom (one column). The text
    inside a figure is not a mark: its captions and headings are the report's own text."""
    from pypdf import PdfReader

    runs = []  # (page, y, font size, bold, text)
    for number, page in enumerate(PdfReader(str(pdf_path)).pages, 1):
        def visit(text, cm, tm, font, size, number=number):
            if text.strip():
                y = cm[1] * tm[4] + cm[3] * tm[5] + cm[5]  # the run's origin, in page space
                bold = "Bold" in str((font or {}).get("/BaseFont", ""))
                runs.append((number, y, size * abs(cm[3] * tm[3]), bold, text.strip()))
        page.extract_text(visitor_text=visit)
    heading_size = min((size for _, _, size, bold, text in runs
                        if bold and TASK_HEADING.match(text)), default=None)
    found = []
    for page, y, size, bold, text in runs:
        if bold and heading_size is not None and size >= heading_size - 0.1:
            task = TASK_HEADING.match(text)
            found.append(Mark(page, y, "heading", task and task.group(1), text))
        elif CAPTION.match(text):
            found.append(Mark(page, y, "caption", CAPTION.match(text).group(2), text))
    return sorted(found, key=lambda m: (m.page, -m.y))


def order_problems(found: list[Mark]) -> list[str]:
    """Every caption under a task heading names that task, and every "Task Xy" caption
    stands after its own heading and before the next heading."""
    problems, current = [], None
    for mark in found:
        if mark.kind == "heading":
            current = mark
        elif mark.task is not None and (current is None or current.task != mark.task):
            under = current.text if current else "no heading"
            problems.append(f"p. {mark.page}: {mark.text[:60]!r} stands under {under[:40]!r}")
        elif mark.task is None and current is not None and current.task is not None:
            problems.append(f"p. {mark.page}: {mark.text[:60]!r} names no task but stands "
                            f"under {current.text[:40]!r}")
    return problems


def page_fill(pdf_path: Path) -> list[float]:
    """How far down each page its text reaches, as a share of the page's text area (0 to 1):
    the lowest line of the report's own text (figures' text, in Matplotlib's DejaVu fonts,
    and the page number, below the text area, left out)."""
    from pypdf import PdfReader

    reader = PdfReader(str(pdf_path))
    top, bottom = 2.0 / 2.54 * 72, 2.2 / 2.54 * 72  # the page design's margins, in points
    fills = []
    for page in reader.pages:
        height, lows = float(page.mediabox.height), []

        def visit(text, cm, tm, font, size, lows=lows):
            y = cm[1] * tm[4] + cm[3] * tm[5] + cm[5]
            if text.strip() and y > bottom and "DejaVu" not in str((font or {}).get(
                    "/BaseFont", "")):
                lows.append(y)

        page.extract_text(visitor_text=visit)
        fills.append((height - top - min(lows)) / (height - top - bottom) if lows else 0.0)
    return fills


def test_every_figure_is_on_its_headings_page(report_pdf):
    """A task's heading, text and figure stay together: each "Task Xy" caption is on the page
    of the heading "Task Xy"."""
    found = marks(report_pdf)
    headings = {m.task: m.page for m in found if m.kind == "heading" and m.task}
    apart = [f"{m.text[:40]!r} on p. {m.page}, its heading on p. {headings[m.task]}"
             for m in found if m.kind == "caption" and m.task and headings[m.task] != m.page]
    assert apart == []


def test_the_pages_are_full_and_few(report_pdf):
    """At most 7 pages; none but the last under about three quarters full."""
    fills = page_fill(report_pdf)
    assert len(fills) <= 7, f"the report takes {len(fills)} pages"
    thin = {page: f"{fill:.0%}" for page, fill in enumerate(fills[:-1], 1) if fill < 0.72}
    assert thin == {}, f"pages less than about three quarters full: {thin}"


def test_every_figure_stands_under_its_own_task(report_pdf):
    found = marks(report_pdf)
    tasks = [m.task for m in found if m.kind == "heading" and m.task]
    assert tasks == [h.removeprefix("Task ") for h in HEADINGS], \
        f"the PDF's task headings, in reading order: {tasks}"
    numbers = [int(CAPTION.match(m.text).group(1)) for m in found if m.kind == "caption"
               and m.text.startswith("Figure")]
    assert numbers == list(range(1, len(numbers) + 1)), f"figure captions read as {numbers}"
    assert sum(m.task is not None for m in found if m.kind == "caption") >= 8
    assert order_problems(found) == []


def compile_body(body: str, tmp_path: Path) -> Path:
    """A PDF from Typst markup under the report's page design (no notebook, no pandoc)."""
    pdf = tmp_path / "layout.pdf"
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    pdf.write_bytes(build_report.compile_pdf(work, body, {}, build_report.TitlePage(
        "Group 1", ["A. Student"], placeholder=False)))
    return pdf


@pytest.mark.slow
def test_the_order_check_catches_a_figure_that_drifts_past_a_heading(tmp_path):
    """A figure that floats to the foot of its page (the old page design) lands under the next
    task's heading: the check names it, and passes the same page with the figure in the flow."""
    def body(placement: str) -> str:
        return ("== Task 1a: one\n\nSome text.\n\n"
                f"#figure(rect(width: 100%, height: 4cm), placement: {placement}, "
                "caption: [Task 1a: a figure])\n\n"
                "== Task 1b: two\n\nMore text.\n")

    drifted = order_problems(marks(compile_body(body("bottom"), tmp_path)))
    assert len(drifted) == 1 and "Task 1a: a figure" in drifted[0] and "Task 1b" in drifted[0]
    assert order_problems(marks(compile_body(body("none"), tmp_path))) == []
