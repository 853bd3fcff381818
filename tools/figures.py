"""The report's figures as the notebook shows them: each rendered once per format, with a
caption, as one Jupyter output (a PNG for the web page and JupyterLab, a vector PDF for the
report) whose metadata the PDF build reads."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import display
from matplotlib.figure import Figure
from matplotlib.text import Text

#: Printed width of a figure at width 1.0, inches: the text width of the report's A4 page.
LINE_WIDTH_IN = 8.27 - 2.0


def show(fig: Figure, png: Path, caption: str, width: float = 0.95) -> float:
    """Display ``fig`` with ``caption`` at ``width`` (a share of the line), write its PNG to
    ``png`` and close it; returns its smallest text in points once printed at that width (or
    at its own size if narrower): the size that matters to a reader of the PDF."""
    scale = min(1.0, width * LINE_WIDTH_IN / fig.get_tightbbox(  # inches, as bbox="tight"
        fig.canvas.get_renderer()).width)
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text()]
    renders = {}
    for fmt in ("png", "pdf"):
        buffer = io.BytesIO()
        # no creation date in the PDF: two builds of the report give the same bytes
        fig.savefig(buffer, format=fmt, metadata={"CreationDate": None} if fmt == "pdf" else None)
        renders[fmt] = buffer.getvalue()
    png.write_bytes(renders["png"])
    plt.close(fig)
    saved_dpi = plt.rcParams["savefig.dpi"]
    saved_dpi = fig.dpi if saved_dpi == "figure" else saved_dpi
    width_px = int.from_bytes(renders["png"][16:20], "big")  # the PNG header's width
    shown = round(width_px * plt.rcParams["figure.dpi"] / saved_dpi)  # at the screen's dpi
    data = {"image/png" if fmt == "png" else "application/pdf":
            base64.b64encode(render).decode("ascii") for fmt, render in renders.items()}
    display(data, metadata={"image/png": {"width": shown}, "caption": caption, "width": width},
            raw=True)
    return min(sizes) * scale if sizes else float("inf")
