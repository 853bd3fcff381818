"""The report as a Jupyter export format, ``Report_PDF`` (`jupyter nbconvert --to Report_PDF`,
JupyterLab's File > Save and Export Notebook As): the PDF `python tasks.py report` builds, made
in the notebook's own checkout. A failure is one line: nbconvert's command line prints it and
exits; a Jupyter server reports it as the export's error."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from nbconvert.exporters import Exporter
from traitlets import Bool, Integer

from tools import cli, report

FORMAT = "Report_PDF"  # JupyterLab's menu label; the server's route takes letters, digits, _


def _unknown_format(kind: type, error: BaseException, trace: object,
                    previous: object = sys.excepthook) -> None:
    """nbconvert's command line imports every exporter while it starts: there, a format it
    cannot find (``--to report_pdf``) is one line instead of a traceback."""
    if kind.__name__ != "ExporterNameError":
        return previous(kind, error, trace)
    from nbconvert.nbconvertapp import NbConvertApp

    asked = NbConvertApp.instance().export_format
    if asked.lower() == FORMAT.lower():
        print(f'nbconvert: no export format "{asked}": the report\'s is spelled {FORMAT} '
              f"(jupyter nbconvert --to {FORMAT} NOTEBOOK)", file=sys.stderr)
    else:
        print(f"nbconvert: {error}", file=sys.stderr)
    return None


if "nbconvert.nbconvertapp" in sys.modules:  # nbconvert's command line
    sys.excepthook = _unknown_format


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
        folder = Path(resources.get("metadata", {}).get("path") or Path.cwd())
        try:
            pdf = report.export_pdf(nb, folder, quick=os.environ.get("ASSIGNMENT1_QUICK") == "1",
                                    fresh=self.fresh, timeout=self.timeout, say=self.log.info)
        except (cli.UserError, OSError, KeyboardInterrupt) as exc:
            message = "Report_PDF: interrupted; no PDF was written (the notebook's kernel was " \
                "stopped)" if isinstance(exc, KeyboardInterrupt) else " ".join(
                    (cli.describe(exc) if isinstance(exc, OSError) else str(exc)).split())
            from nbconvert.nbconvertapp import NbConvertApp

            # nbconvert's command line: the one line and the exit code; a server: the error
            if NbConvertApp.initialized() and threading.current_thread() is threading.main_thread():
                print(message, file=sys.stderr)
                raise SystemExit(130 if isinstance(exc, KeyboardInterrupt) else 1) from None
            raise cli.UserError(message) from None
        resources["output_extension"] = ".pdf"
        return pdf, resources
