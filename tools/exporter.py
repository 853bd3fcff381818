"""The report as a Jupyter export format, ``Report_PDF`` (`jupyter nbconvert --to Report_PDF`,
JupyterLab's File > Save and Export Notebook As): the PDF `python tasks.py report` builds, made
in the notebook's own checkout. The name is JupyterLab's menu label and must be letters, digits
and ``_`` for the server's /nbconvert/<format>/ route. A failure is one line: nbconvert's
command line prints it and exits; a Jupyter server reports it as the export's error."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from nbconvert.exporters import Exporter
from traitlets import Bool, Integer

from tools import cli, report

FORMAT = "Report_PDF"


def _unknown_formats_in_one_line() -> None:
    """nbconvert's command line imports every exporter while it starts; there, a format it
    cannot find (``--to report_pdf``) is then one line instead of a traceback."""
    if "nbconvert.nbconvertapp" not in sys.modules:  # not nbconvert's command line
        return
    previous = sys.excepthook

    def hook(kind: type, error: BaseException, trace: object) -> None:
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

    sys.excepthook = hook


_unknown_formats_in_one_line()


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
        except cli.UserError as exc:
            self._fail(str(exc), 1)
        except OSError as exc:
            self._fail(cli.describe(exc), 1)
        except KeyboardInterrupt:
            self._fail("Report_PDF: interrupted; no PDF was written (the notebook's kernel "
                       "was stopped)", 130)
        resources["output_extension"] = ".pdf"
        return pdf, resources

    @staticmethod
    def _fail(message: str, code: int):
        """End `jupyter nbconvert` with the one line; in a Jupyter server raise it."""
        from nbconvert.nbconvertapp import NbConvertApp

        message = " ".join(message.split())
        if NbConvertApp.initialized() and threading.current_thread() is threading.main_thread():
            print(message, file=sys.stderr)
            raise SystemExit(code)
        raise cli.UserError(message)
