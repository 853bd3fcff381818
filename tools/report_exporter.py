"""The report as a Jupyter export format, registered as ``report_pdf``.

``jupyter nbconvert --to report_pdf assignment1.ipynb`` and JupyterLab's File > Save and Export
Notebook As > Report_pdf give the PDF that `python tasks.py report` builds: the same Markdown,
pandoc and Typst pipeline (``build_report.pdf_bytes``) and the same title page. A notebook
that has not run yet (the committed one has no outputs) is executed first, in a fresh kernel,
as `python tasks.py report` does; one that has run is exported as it is.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from nbconvert.exporters import Exporter

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_report


class ReportPDFExporter(Exporter):
    """The assignment's report PDF (A4, title page, code hidden) from a notebook."""

    export_from_notebook = "Report PDF"
    output_mimetype = "application/pdf"

    def _file_extension_default(self) -> str:
        return ".pdf"

    def from_notebook_node(self, nb, resources=None, **kw):
        nb, resources = super().from_notebook_node(nb, resources, **kw)
        title = build_report.title_page()  # a bad report.toml fails before anything runs
        if not build_report.is_executed(nb):
            with tempfile.TemporaryDirectory(prefix="assignment1-export-") as tmp:
                nb = build_report.execute(Path(tmp), os.environ.get("ASSIGNMENT1_QUICK") == "1",
                                          timeout=1800, nb=nb)
        resources["output_extension"] = ".pdf"
        return build_report.pdf_bytes(nb, title), resources
