"""The report as a Jupyter export format, registered as ``Report_PDF``.

``jupyter nbconvert --to Report_PDF assignment1.ipynb`` and JupyterLab's File > Save and Export
Notebook As > Report_PDF give the PDF that `python tasks.py report` builds: the same Markdown,
pandoc and Typst pipeline and the same title page. A notebook that has not run yet (the
committed one has no outputs) gets the outputs `python tasks.py report` would give it: the
execution cache's when nothing that computes has changed, else from a run in a fresh kernel
(in a worker process, with the build's lock); one that has run is exported as it is. It works
from any working directory. ``--ReportPDFExporter.fresh=True`` runs the notebook even when the
cache is current; ``ASSIGNMENT1_QUICK=1`` makes a reduced run.

The name is JupyterLab's label: it shows an exporter's entry-point name with its first letter
capitalised (only a few built-in formats have labels of their own; ``export_from_notebook`` is
not read), and the server's download route /nbconvert/<format>/ accepts only letters, digits and
``_``, so "Report (PDF)" cannot be the name. nbconvert finds an exporter by its exact name (or
by the given name in lower case), so the command line spells it ``--to Report_PDF``.

A failure is one line: on the command line it is printed and nbconvert exits (no traceback);
in a Jupyter server it is the error the server reports.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from nbconvert.exporters import Exporter
from traitlets import Bool, Integer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_report
from output_folder import FolderError


class ReportExportError(Exception):
    """The export failed; the message is one line for the user."""


class ReportPDFExporter(Exporter):
    """The assignment's report PDF (A4, title page, code hidden) from a notebook."""

    export_from_notebook = "Report (PDF)"  # Notebook 6's menu
    output_mimetype = "application/pdf"
    fresh = Bool(False, help="Run the notebook even when its cached outputs are current.") \
        .tag(config=True)
    timeout = Integer(1800, help="Seconds allowed per cell.").tag(config=True)

    def _file_extension_default(self) -> str:
        return ".pdf"

    def from_notebook_node(self, nb, resources=None, **kw):
        nb, resources = super().from_notebook_node(nb, resources, **kw)
        try:
            pdf = build_report.export_pdf(nb, quick=os.environ.get("ASSIGNMENT1_QUICK") == "1",
                                          fresh=self.fresh, timeout=self.timeout,
                                          say=self.log.info)
        except (build_report.BuildError, FolderError) as exc:
            self._fail(str(exc), 1)
        except OSError as exc:
            self._fail(build_report.one_line_os_error(exc), 1)
        except KeyboardInterrupt:
            self._fail("Report_PDF: interrupted; no PDF was written (the notebook's kernel "
                       "was stopped)", 130)
        resources["output_extension"] = ".pdf"
        return pdf, resources

    @staticmethod
    def _fail(message: str, code: int):
        """End `jupyter nbconvert` with the one line; elsewhere (a Jupyter server, which runs
        exports in a thread) raise it as the export's error."""
        from nbconvert.nbconvertapp import NbConvertApp

        message = " ".join(message.split())
        if NbConvertApp.initialized() and threading.current_thread() is threading.main_thread():
            print(message, file=sys.stderr)
            raise SystemExit(code)
        raise ReportExportError(message)
