"""The report as a Jupyter export format (report_pdf): the CLI and a real Jupyter server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import build_report
from test_notebook import HEADINGS
from test_report_build import pdf_text

pytestmark = pytest.mark.slow
TITLE_ENV = {"ASSIGNMENT1_GROUP": "42", "ASSIGNMENT1_AUTHORS": "Ada Lovelace; Alan Turing"}


@pytest.fixture(scope="module")
def executed(executed_notebook, tmp_path_factory):
    """The quick-built notebook saved as an .ipynb with outputs."""
    import nbformat

    path = tmp_path_factory.mktemp("saved") / "assignment1.ipynb"
    nbformat.write(executed_notebook[0], path)
    return path


def assert_is_the_report(pdf: bytes, where: Path) -> None:
    where.write_bytes(pdf)
    text, sizes = pdf_text(where)
    assert pdf.startswith(b"%PDF-") and len(sizes) > 5
    first_page = text.split("Task 1a")[0]
    assert build_report.TITLE in first_page and "Group 42" in first_page
    assert "Ada Lovelace" in first_page
    for heading in HEADINGS:
        assert heading in text, f"{heading} is missing from the exported PDF"


def test_the_cli_export_is_the_make_report_pdf(executed, tmp_path, monkeypatch):
    env = {**os.environ, **TITLE_ENV}
    result = subprocess.run([str(Path(sys.executable).parent / "jupyter"), "nbconvert", "--to",
                             "report_pdf", str(executed), "--output-dir", str(tmp_path)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    exported = (tmp_path / "assignment1.pdf").read_bytes()
    assert_is_the_report(exported, tmp_path / "check.pdf")
    import nbformat

    for key, value in TITLE_ENV.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(executed, as_version=4)
    assert exported == build_report.pdf_bytes(nb, build_report.title_page())  # the same bytes


def test_the_cli_runs_a_notebook_that_has_not_run(tmp_path):
    """The committed notebook has no outputs: the exporter executes it, as
    `python tasks.py report` does."""
    env = {**os.environ, **TITLE_ENV, "ASSIGNMENT1_QUICK": "1"}
    result = subprocess.run([str(Path(sys.executable).parent / "jupyter"), "nbconvert", "--to",
                             "report_pdf", str(ROOT / "assignment1.ipynb"), "--output-dir",
                             str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert_is_the_report((tmp_path / "assignment1.pdf").read_bytes(), tmp_path / "check.pdf")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_jupyter_server_lists_and_serves_the_export(executed, tmp_path):
    """What JupyterLab's File > Save and Export Notebook As menu uses: /api/nbconvert lists the
    format, and /nbconvert/report_pdf/<notebook> returns the PDF."""
    port, token = free_port(), "assignment1-test-token"
    env = {**os.environ, **TITLE_ENV, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False",
         f"--ServerApp.root_dir={executed.parent}", "--ServerApp.allow_root=True"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"

    def get(path: str, timeout: float = 300) -> bytes:
        request = urllib.request.Request(base + path,
                                         headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get("/api/status", timeout=2)
                break
            except OSError as exc:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the server did not start: {server.stderr.read()}") \
                        from exc
                time.sleep(0.2)
        formats = json.loads(get("/api/nbconvert"))
        assert formats["report_pdf"]["output_mimetype"] == "application/pdf"
        pdf = get("/nbconvert/report_pdf/assignment1.ipynb?download=true")
        assert_is_the_report(pdf, tmp_path / "served.pdf")
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
