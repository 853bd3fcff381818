"""The Jupyter path as a student clicks it (#23): the project's own ``jupyter lab`` on 127.0.0.1,
driven in headless Chromium through Playwright (the system's Chromium, Debian's
/usr/bin/chromium; Playwright downloads no browser), with the page's network limited to the
server.

1. In the project's folder: open assignment1.ipynb, Run → Run All Cells, wait for the kernel,
   every code cell ran with no error; File → Save and Export Notebook As → Report_PDF gives the
   report PDF (title page, the 16 task headings).
2. Started in the folder above the project (as a student who starts JupyterLab in their home
   folder): the notebook as committed, never run, exported from the same menu entry, which runs
   it first and gives the PDF too.

Each case works in a copy of the checkout (the browser saves the notebook it ran; the export
builds in the notebook's own checkout, so its lock and cache go into the copy's build/). The
kernel and the exporter run the reduced notebook (ASSIGNMENT1_QUICK=1, as the other notebook
tests): the clicks, the kernel and the export are the same, in less time.
Screenshots are kept in build/browser/.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import ROOT
from fake_project import copy_project, processes_mentioning
from helpers import free_port
from test_exporter import TITLE_ENV, assert_is_the_report
from test_notebook import jupyterlab_label
from test_report_build import CHROMIUM

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian: apt-get install "
                                                "chromium); the JupyterLab browser test needs one"),
    pytest.mark.skipif(sys.platform != "linux", reason="finds the server's kernels in /proc"),
]

SCREENSHOTS = ROOT / "build" / "browser"
#: Seconds for Run All and for an export that runs the notebook: a reduced run takes about a
#: minute on two busy cores; the limit is there to end a hung run, not to time it.
RUN_TIMEOUT = 900
#: The menu entry: what JupyterLab makes of the entry-point name.
LABEL = jupyterlab_label()


def code_cells(nb: dict) -> list[dict]:
    return [cell for cell in nb["cells"] if cell["cell_type"] == "code"
            and "".join(cell["source"]).strip()]


# --- The server -----------------------------------------------------------------------------

@dataclass
class Lab:
    base: str
    token: str
    log: Path

    def url(self, path: str) -> str:
        return f"{self.base}{path}?token={self.token}"

    def log_tail(self) -> str:
        lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(lines[-40:])


def isolated_jupyter(tmp: Path) -> dict[str, str]:
    """Config, data and runtime folders of the test's own, so the user's settings, kernels and
    extensions stay out; JupyterLab set to fetch no news, no update check, no extension index."""
    config = tmp / "jupyter-config"
    settings = config / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}), encoding="utf-8")
    (config / "jupyter_lab_config.json").write_text(json.dumps({"LabApp": {
        "news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
        "extension_manager": "readonly"}}), encoding="utf-8")
    for name in ("jupyter-data", "jupyter-runtime", "ipython", "tmp"):
        (tmp / name).mkdir()
    return {"JUPYTER_CONFIG_DIR": str(config), "JUPYTER_DATA_DIR": str(tmp / "jupyter-data"),
            "JUPYTER_RUNTIME_DIR": str(tmp / "jupyter-runtime"), "IPYTHONDIR": str(tmp / "ipython"),
            "TMPDIR": str(tmp / "tmp")}


@contextlib.contextmanager
def jupyter_lab(folder: Path, tmp: Path) -> Iterator[Lab]:
    """``.venv/bin/jupyter lab`` started in ``folder`` (its root); stopped at the end with its
    kernels (a kernel left behind fails the test)."""
    port, token = free_port(), secrets.token_hex(16)
    tmp.mkdir(parents=True)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("JUPYTER", "PYTHONPATH"))}
    env.update({**isolated_jupyter(tmp), **TITLE_ENV, "ASSIGNMENT1_QUICK": "1"})
    log = tmp / "jupyter-lab.log"
    with open(log, "w", encoding="utf-8") as stream:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser",
             "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
             "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
             f"--ServerApp.root_dir={folder}", "--ServerApp.allow_root=True"],
            cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=stream,
            stderr=subprocess.STDOUT, start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                request = urllib.request.Request(f"{lab.base}/api/status",
                                                 headers={"Authorization": f"token {token}"})
                with urllib.request.urlopen(request, timeout=5):
                    break
            except OSError as exc:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"jupyter lab did not start (exit {server.poll()}):\n"
                                         f"{lab.log_tail()}") from exc
                time.sleep(0.3)
        yield lab
    finally:
        server.send_signal(signal.SIGTERM)  # the server shuts its kernels down
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        deadline = time.monotonic() + 20
        while processes_mentioning(str(tmp)) and time.monotonic() < deadline:
            time.sleep(0.3)
        left = processes_mentioning(str(tmp))
        for line in left:
            with contextlib.suppress(OSError):
                os.kill(int(line.split(":")[0]), signal.SIGKILL)
        assert not left, f"processes outlived jupyter lab: {left}"


# --- The browser ----------------------------------------------------------------------------

@dataclass
class Browser:
    context: object
    downloads: list = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


@contextlib.contextmanager
def chromium(tmp: Path) -> Iterator[Browser]:
    """Headless Chromium whose pages reach 127.0.0.1 only; every download of every tab (the
    export opens its own, ``window.open(url, "_blank", "noopener")``) is collected."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                  "--disable-background-networking", "--disable-component-update"])
        try:
            context = browser.new_context(accept_downloads=True,
                                          viewport={"width": 1280, "height": 900})
            found = Browser(context)

            def loopback_only(route) -> None:
                if urlsplit(route.request.url).hostname == "127.0.0.1":
                    route.continue_()
                else:
                    found.blocked.append(route.request.url)
                    route.abort()

            def collect(download) -> None:
                found.downloads.append(download)

            for stale in SCREENSHOTS.glob("jupyterlab-failed-*.png"):
                stale.unlink()
            context.route("**/*", loopback_only)
            context.on("page", lambda page: page.on("download", collect))
            try:
                yield found
            except BaseException:  # what the pages showed, for the failure's report
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                for number, page in enumerate(context.pages, 1):
                    with contextlib.suppress(Exception):
                        page.screenshot(path=str(SCREENSHOTS / f"jupyterlab-failed-{number}.png"))
                raise
        finally:
            browser.close()


def open_notebook(browser: Browser, lab: Lab, path: str):
    """A tab with the notebook open and its kernel started and idle (the status bar reads
    "Python 3 (ipykernel) | Idle"; the toolbar's indicator says idle before there is a kernel)."""
    from playwright.sync_api import expect

    page = browser.context.new_page()
    page.set_default_timeout(120_000)
    page.goto(lab.url(f"/lab/tree/{path}"))
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
    expect(page.locator("#jp-main-statusbar")).to_contain_text(re.compile(r"Python 3.*\| Idle"),
                                                               timeout=120_000)
    return page


def menu_bar_item(page, label: str):
    return page.locator(".lm-MenuBar-item", has=page.locator(
        ".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(label)}$")))


def menu_item(page, label: str):
    """An item of the open menus (the top one first: a submenu opens above its parent)."""
    return page.locator(".lm-Menu-item", has=page.locator(
        ".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(label)}$")))


def export_menu(page, screenshot: Path) -> list[str]:
    """File → Save and Export Notebook As, open; a screenshot of it; the entries' labels."""
    menu_bar_item(page, "File").click()
    menu_item(page, "Save and Export Notebook As").hover()
    submenu = page.locator(".lm-Menu").last
    entry = menu_item(page, LABEL)
    with contextlib.suppress(Exception):
        entry.wait_for(timeout=30_000)  # the formats come from the server
    page.screenshot(path=str(screenshot))
    return [text.strip() for text in submenu.locator(".lm-Menu-itemLabel").all_inner_texts()]


def export_pdf(page, browser: Browser, lab: Lab, where: Path, screenshot: Path) -> bytes:
    """File → Save and Export Notebook As → the report's entry; the PDF the new tab downloads."""
    labels = export_menu(page, screenshot)
    assert LABEL in labels, f"no {LABEL!r} under Save and Export Notebook As: {labels}"
    before = len(browser.downloads)
    menu_item(page, LABEL).click()
    deadline = time.monotonic() + RUN_TIMEOUT
    while len(browser.downloads) == before:
        assert time.monotonic() < deadline, (f"no download {RUN_TIMEOUT} s after the export "
                                             f"was clicked; the server's log:\n{lab.log_tail()}")
        page.wait_for_timeout(500)
    download = browser.downloads[-1]
    failure = download.failure()
    assert failure is None, f"the download failed ({failure}); the server's log:\n" \
                            f"{lab.log_tail()}"
    target = where / download.suggested_filename
    download.save_as(target)
    assert target.suffix == ".pdf", f"the export downloaded {download.suggested_filename}"
    return target.read_bytes()


def note_is_shown(page) -> None:
    """The first cell, the student's note, as JupyterLab renders it."""
    from playwright.sync_api import expect

    note = page.locator(".jp-MarkdownCell .jp-RenderedMarkdown").first
    expect(note).to_contain_text(f"Save and Export Notebook As → {LABEL}")
    expect(note).to_contain_text("is run first")


# --- The tests ------------------------------------------------------------------------------

def test_run_all_then_export_from_the_menu_gives_the_report(tmp_path):
    from playwright.sync_api import expect

    project = copy_project(tmp_path / "assignment1")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with jupyter_lab(project, tmp_path / "lab") as lab, chromium(tmp_path) as browser:
        page = open_notebook(browser, lab, "assignment1.ipynb")
        note_is_shown(page)
        menu_bar_item(page, "Run").click()
        menu_item(page, "Run All Cells").click()
        expected = len(code_cells(json.loads((project / "assignment1.ipynb").read_text(
            encoding="utf-8"))))
        stderr = page.locator(".jp-OutputArea-output[data-mime-type="
                              "'application/vnd.jupyter.stderr']")
        idle = page.locator("#jp-main-statusbar", has_text=re.compile(r"Python 3.*\| Idle"))
        deadline = time.monotonic() + RUN_TIMEOUT
        while True:  # every prompt numbered, none waiting ([*]) or unrun ([ ])
            prompts = [" ".join(p.split()) for p in page.locator(
                ".jp-CodeCell .jp-InputArea-prompt").all_text_contents()]
            ran = [p for p in prompts if re.fullmatch(r"\[\d+\]:", p)]
            if len(ran) >= expected and len(ran) == len(prompts):
                break
            if stderr.count() and "[*]:" not in prompts and idle.count():
                break  # a cell failed: Run All stops there and the rest stay unrun
            assert time.monotonic() < deadline, (f"Run All had not finished after "
                                                 f"{RUN_TIMEOUT} s: prompts {prompts}")
            page.wait_for_timeout(1000)
        expect(idle).to_have_count(1, timeout=120_000)
        errors = [" ".join(e.split()) for e in stderr.all_text_contents()]
        if errors:  # the screenshot shows the first
            stderr.first.evaluate("output => output.scrollIntoView({block: 'center'})")
        page.screenshot(path=str(SCREENSHOTS / "jupyterlab-run-all.png"))
        assert not errors, f"cells wrote to stderr or failed: {[e[-300:] for e in errors]}; " \
                           f"prompts {prompts}"
        pdf = export_pdf(page, browser, lab, tmp_path, SCREENSHOTS / "jupyterlab-export-menu.png")
        assert not browser.blocked, f"the page asked for other hosts: {browser.blocked}"
    # The export saved the notebook first (JupyterLab does, when it has changed): what ran.
    saved = json.loads((project / "assignment1.ipynb").read_text(encoding="utf-8"))
    cells = code_cells(saved)
    unrun = [i for i, cell in enumerate(cells, 1) if cell.get("execution_count") is None]
    failed = [(i, out.get("ename"), out.get("evalue")) for i, cell in enumerate(cells, 1)
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not unrun and not failed, f"code cells not run: {unrun}; failed: {failed}"
    assert_is_the_report(pdf, tmp_path / "check.pdf")


def test_a_server_started_above_the_project_exports_the_unrun_notebook(tmp_path):
    home = tmp_path / "home"
    project = copy_project(home / "assignment1")
    committed = (project / "assignment1.ipynb").read_bytes()
    assert not any(cell.get("execution_count") for cell in code_cells(json.loads(committed)))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with jupyter_lab(home, tmp_path / "lab") as lab, chromium(tmp_path) as browser:
        page = open_notebook(browser, lab, "assignment1/assignment1.ipynb")
        note_is_shown(page)
        page.screenshot(path=str(SCREENSHOTS / "jupyterlab-home-opened.png"))
        pdf = export_pdf(page, browser, lab, tmp_path,
                         SCREENSHOTS / "jupyterlab-home-export-menu.png")
        assert not browser.blocked, f"the page asked for other hosts: {browser.blocked}"
        log = lab.log.read_text(encoding="utf-8", errors="replace")
    assert_is_the_report(pdf, tmp_path / "check.pdf")
    assert "executing the notebook" in log, f"the export did not run the notebook:\n{log[-3000:]}"
    assert any((project / "build" / "report-cache").iterdir()), \
        "the run was not the copy's: its execution cache is empty"
    # JupyterLab saves the notebook before an export (with cell ids and the kernel's
    # language_info); the run was the exporter's own: the student's notebook is still unrun.
    saved = json.loads((project / "assignment1.ipynb").read_text(encoding="utf-8"))
    assert ["".join(cell["source"]) for cell in saved["cells"]] == \
        ["".join(cell["source"]) for cell in json.loads(committed)["cells"]]
    assert not any(cell.get("outputs") or cell.get("execution_count")
                   for cell in code_cells(saved)), "the export wrote outputs into the notebook"
