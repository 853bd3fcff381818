"""The report as a Jupyter export format (Report_PDF): the CLI and a real Jupyter server, always
from the notebook's own checkout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT
from fake_project import code_cell, copy_project, markdown_cell, run_processes
from helpers import free_port
from test_notebook import HEADINGS
from test_report_build import pdf_text

from tools import config, render

pytestmark = pytest.mark.slow
#: The exporter's entry-point name (pyproject.toml): `--to` and JupyterLab's menu label.
FORMAT = "Report_PDF"
TITLE_ENV = {"ASSIGNMENT1_GROUP": "42", "ASSIGNMENT1_AUTHORS": "Ada Lovelace; Alan Turing"}


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """Another checkout of the project (the exporter comes from this one's .venv)."""
    return copy_project(tmp_path_factory.mktemp("other") / "assignment1")


@pytest.fixture(scope="module")
def executed(executed_notebook, checkout):
    """The quick-built notebook saved with its outputs in that checkout."""
    import nbformat

    path = checkout / "executed.ipynb"
    nbformat.write(executed_notebook[0], path)
    return path


def assert_is_the_report(pdf: bytes, where: Path) -> None:
    where.write_bytes(pdf)
    text, sizes = pdf_text(where)
    assert pdf.startswith(b"%PDF-") and len(sizes) > 5
    first_page = text.split("Task 1a")[0]
    assert config.TITLE in first_page and "Group 42" in first_page
    assert "Ada Lovelace" in first_page
    for heading in HEADINGS:
        assert heading in text, f"{heading} is missing from the exported PDF"


def test_the_cli_export_is_the_make_report_pdf(executed, tmp_path, monkeypatch):
    env = {**os.environ, **TITLE_ENV}
    result = subprocess.run([str(Path(sys.executable).parent / "jupyter"), "nbconvert", "--to",
                             FORMAT, str(executed), "--output-dir", str(tmp_path)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    exported = (tmp_path / "executed.pdf").read_bytes()
    assert_is_the_report(exported, tmp_path / "check.pdf")
    import nbformat

    for key, value in TITLE_ENV.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(executed, as_version=4)
    title = config.title_page(executed.parent / "report.toml")
    assert exported == render.pdf_bytes(nb, title)  # the same bytes


def project_entries() -> set[str]:
    """What the checkout holds outside build/ (where the lock and the cache live)."""
    return {p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*")
            if ".venv" not in p.parts and "build" not in p.relative_to(ROOT).parts[:1]
            and ".git" not in p.parts and "__pycache__" not in p.parts}


def nbconvert(notebook: Path, where: Path, env: dict, *options: str) -> subprocess.Popen:
    return subprocess.Popen([str(Path(sys.executable).parent / "jupyter"), "nbconvert", "--to",
                             FORMAT, str(notebook), "--output-dir", str(where / "out"),
                             *options], cwd=where, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_the_cli_runs_a_notebook_that_has_not_run_from_any_folder(tmp_path):
    """The committed notebook has no outputs: the exporter executes it (here: always, with
    fresh=True), as `python tasks.py report` does, from a folder outside the project, and
    leaves nothing in the project outside build/."""
    before = project_entries()
    env = {**os.environ, **TITLE_ENV, "ASSIGNMENT1_QUICK": "1", "TMPDIR": str(tmp_path)}
    child = nbconvert(ROOT / "assignment1.ipynb", tmp_path, env,
                      "--ReportPDFExporter.fresh=True")
    _, stderr = child.communicate(timeout=600)
    assert child.returncode == 0, stderr
    assert f"building the report in the notebook's checkout {ROOT} (its modules" in stderr
    assert "executing the notebook (--fresh)" in stderr
    assert_is_the_report((tmp_path / "out" / "assignment1.pdf").read_bytes(),
                         tmp_path / "check.pdf")
    assert project_entries() == before
    assert run_processes(tmp_path) == []


def probe_notebook(folder: Path, code: str, name: str = "probe.ipynb") -> Path:
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [markdown_cell("# Task 1a"), code_cell(code)]}
    (folder / name).write_text(json.dumps(nb), encoding="utf-8")
    return folder / name


def test_a_notebook_of_another_checkout_is_built_there(checkout, tmp_path):
    """This checkout's exporter on the other one's notebook: the other's modules, cache and
    build folder, and it says so."""
    (checkout / "which_checkout.py").write_text("WHERE = 'the other checkout 8146'\n",
                                                encoding="utf-8")
    notebook = probe_notebook(checkout, "from IPython.display import Markdown, display\n"
                                        "import which_checkout\n"
                                        "display(Markdown(which_checkout.WHERE))")
    env = {**os.environ, **TITLE_ENV, "TMPDIR": str(tmp_path)}
    child = nbconvert(notebook, tmp_path, env)
    _, stderr = child.communicate(timeout=600)
    assert child.returncode == 0, stderr
    assert f"building the report in the notebook's checkout {checkout} (its modules" in stderr
    assert "the other checkout 8146" in pdf_text(tmp_path / "out" / "probe.pdf")[0]
    assert (checkout / "build" / "report-cache" / "full" / "entry.json").is_file()


def test_a_notebook_outside_any_checkout_is_refused_in_one_line(tmp_path):
    env = {**os.environ, **TITLE_ENV, "TMPDIR": str(tmp_path)}
    child = nbconvert(probe_notebook(tmp_path, "1 + 1"), tmp_path, env)
    _, stderr = child.communicate(timeout=300)
    assert child.returncode == 1
    assert stderr.strip().splitlines()[-1] == (
        f"{tmp_path} is not in a checkout of the assignment (no tasks.py and tools/ in it or "
        f"above it): open the notebook from its project folder"), stderr
    assert "Traceback" not in stderr


def test_the_format_spelled_in_another_case_is_one_line(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    child = subprocess.Popen([str(Path(sys.executable).parent / "jupyter"), "nbconvert", "--to",
                              "report_pdf", str(ROOT / "assignment1.ipynb")], cwd=tmp_path,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, stderr = child.communicate(timeout=300)
    assert child.returncode == 1 and "Traceback" not in stderr
    assert stderr.strip().splitlines() == [
        'nbconvert: no export format "report_pdf": the report\'s is spelled Report_PDF '
        '(jupyter nbconvert --to Report_PDF NOTEBOOK)'], stderr


def test_a_failing_notebook_is_one_line_from_the_cli(checkout, tmp_path):
    env = {**os.environ, **TITLE_ENV, "TMPDIR": str(tmp_path)}
    child = nbconvert(probe_notebook(checkout, "1 / 0", "failing.ipynb"), tmp_path, env)
    _, stderr = child.communicate(timeout=600)
    assert child.returncode == 1
    last = stderr.strip().splitlines()[-1]
    assert last == ('the notebook failed in code cell 1 (under "Task 1a"): ZeroDivisionError: '
                    'division by zero; fix it and build again'), stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "out" / "failing.pdf").exists()


def test_ctrl_c_during_the_cli_export_is_one_line_and_stops_the_kernel(checkout, tmp_path):
    env = {**os.environ, **TITLE_ENV, "TMPDIR": str(tmp_path)}
    child = nbconvert(probe_notebook(checkout, "import time\ntime.sleep(120)", "sleeping.ipynb"),
                      tmp_path, env)
    deadline = time.monotonic() + 120
    while not any("ipykernel" in p for p in run_processes(tmp_path)):
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()
        time.sleep(0.2)
    time.sleep(1)
    os.killpg(child.pid, signal.SIGINT)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 130
    assert stderr.strip().splitlines()[-1].startswith("Report_PDF: interrupted; no PDF was "
                                                      "written"), stderr
    assert "Traceback" not in stderr
    deadline = time.monotonic() + 15
    while run_processes(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run_processes(tmp_path) == []


def test_a_jupyter_server_lists_and_serves_the_export(executed, tmp_path):
    """What JupyterLab's File > Save and Export Notebook As menu uses: /api/nbconvert lists the
    format, and /nbconvert/Report_PDF/<notebook> returns the PDF."""
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
        assert formats[FORMAT]["output_mimetype"] == "application/pdf"
        pdf = get(f"/nbconvert/{FORMAT}/assignment1.ipynb?download=true")
        assert_is_the_report(pdf, tmp_path / "served.pdf")
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
