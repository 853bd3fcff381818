"""Build the report: execute assignment1.ipynb in a fresh kernel (or reuse its cached outputs)
and export it.

Writes to the output folder (default build/), and nothing else there:
    assignment1.ipynb   the executed notebook
    assignment1.html    the report as one self-contained web page (code hidden; maths as
                        MathML, rendered by the browser itself: nothing is loaded from the network)
    assignment1.pdf     the report, A4 (code hidden): the notebook's Markdown and outputs, through
                        pandoc's Typst writer and the Typst compiler, both installed by pip
    assignment1.json    the build record: what the PDF was built from (title page, run mode, the
                        sources' hashes, read by `python tasks.py handin`) and every product's hash
    figures/*.png, metrics.json, ...   what the notebook itself writes

The title page names the group: ``report.toml`` (``group``, ``authors``), overridden by the
environment variables ASSIGNMENT1_GROUP and ASSIGNMENT1_AUTHORS ("Name One; Name Two"). The
file is checked before the notebook runs.

The execution cache (``report_cache``): when nothing that computes has changed since the last
complete run, its outputs are reused with the notebook's current Markdown and no kernel starts.

Safety (``output_folder``): one build at a time per checkout (build/.build.lock); a product is
replaced only when the last build's record proves it wrote it; the whole set is staged and
swapped in by renames, so after any failure or interrupt the folder holds the previous run's
complete set or the new one. Failures end with one line that says what went wrong, how to fix
it and which set the folder holds.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import errno
import hashlib
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report_cache
from output_folder import (
    BUILDER,
    RECORD,
    RECORD_FORMAT,
    BuildLock,
    FolderError,
    Staging,
    check_ours,
    listing,
    publish,
    recover,
)

if TYPE_CHECKING:
    import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "assignment1.ipynb"
CONFIG = ROOT / "report.toml"
TEMPLATE = Path(__file__).resolve().parent / "report.typ"
TITLE = "Assignment 1: Logistic and Softmax Regression on MNIST"
PLACEHOLDER_GROUP = "Group ?? (set group in report.toml)"
PLACEHOLDER_AUTHORS = ["Author names (set authors in report.toml)"]
#: Files the report is built from: `python tasks.py handin` refuses a PDF built from other versions.
SOURCES = ["assignment1.ipynb", "report.toml", "task2.py", "task2a.py", "task3.py",
           "task3a.py", "trainer.py", "utils.py", "mnist.py"]
#: The builder's own products, beside what the notebook writes (figures/, metrics.json).
OWN_PRODUCTS = ("assignment1.ipynb", "assignment1.html", "assignment1.pdf", RECORD)
#: What the notebook writes today, checked before it runs (the run's own names are checked
#: again before they are put in place).
EXPECTED_PRODUCTS = (*OWN_PRODUCTS, "figures", "metrics.json")


class BuildError(Exception):
    """A failure with a message for the user (printed without a traceback)."""


@dataclass(frozen=True)
class Project:
    """A checkout: its notebook's code runs in ``root``; the lock and the execution cache
    live in ``root``/build whatever the output folder."""

    root: Path

    @property
    def build(self) -> Path:
        return self.root / "build"

    @property
    def cache(self) -> Path:
        return self.build / "report-cache"

    @property
    def lock(self) -> Path:
        return self.build / ".build.lock"


PROJECT = Project(ROOT)


def keep_importing_quickly() -> None:
    """jsonschema (through nbformat) imports rfc3987-syntax when it is installed, which builds
    an Earley grammar at import: about 3 s, for IRI formats the notebook schema never checks
    (python-jsonschema/jsonschema#1392). Called only in this tool's own processes."""
    sys.modules.setdefault("rfc3987_syntax", None)


def console_safe() -> None:
    """Any character reaches any console: one the console's encoding lacks (a CJK folder on a
    cp1252 Windows console) is escaped instead of ending the build."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


# --- The title page: report.toml, checked before anything runs ----------------------------

@dataclass(frozen=True)
class TitlePage:
    group: str  # as printed: "Group 42", "Gruppe 42"
    authors: list[str]
    placeholder: bool  # the group or the names are not filled in yet


def read_config(config: Path | None = None, required: bool = False) -> dict[str, Any]:
    """report.toml (default ``CONFIG``) as {"group": str, "authors": [str, ...]}; BuildError
    naming the file, the key and what is expected for anything else. A missing file is an
    error when ``required`` (named with --config), else it means no group and names yet."""
    config = CONFIG if config is None else config
    if not os.path.lexists(config):
        if required:
            raise BuildError(f"{config}: no such file; check the --config path")
        return {"group": "", "authors": []}
    if config.is_dir():
        raise BuildError(f"{config} is a folder, not a file: the title page's group and names "
                         f"go in a file of that name")
    try:
        raw = config.read_bytes()
    except OSError as exc:
        raise BuildError(f"{config}: cannot read it ({exc.strerror})") from exc
    try:
        text = raw.decode("utf-8-sig")  # Windows Notepad may begin UTF-8 with a BOM
    except UnicodeDecodeError as exc:
        raise BuildError(f"{config}: not UTF-8 text (byte {exc.start} is "
                         f"{exc.object[exc.start]:#04x}); save it as UTF-8") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BuildError(f"{config}: not valid TOML ({exc}); expected lines like "
                         f'group = "42" and authors = ["Name One", "Name Two"]') from exc
    unknown = sorted(set(data) - {"group", "authors"})
    if unknown:
        raise BuildError(f"{config}: unknown key {unknown[0]!r}; it holds only group (a string) "
                         f"and authors (a list of strings)")
    group = data.get("group", "")
    if isinstance(group, bool) or not isinstance(group, (str, int)):
        raise BuildError(f"{config}: group must be a string such as \"42\", got "
                         f"{type(group).__name__} {group!r}")
    authors = data.get("authors", [])
    if not isinstance(authors, list) or not all(isinstance(a, str) for a in authors):
        what = type(authors).__name__ if not isinstance(authors, list) else "a list holding " + \
            ", ".join(sorted({type(a).__name__ for a in authors if not isinstance(a, str)}))
        raise BuildError(f"{config}: authors must be a list of strings such as "
                         f"[\"Name One\", \"Name Two\"], got {what}")
    return {"group": str(group), "authors": authors}


#: A group given as a bare number or a short code (42, 7b, A3) is printed as "Group 42";
#: anything else (Gruppe 42, Team 7, Group 42) is printed exactly as given.
_BARE_GROUP = re.compile(r"[0-9]+|(?=.*[0-9])[0-9A-Za-z]{1,4}", re.ASCII)


def group_line(group: str) -> str:
    return f"Group {group}" if _BARE_GROUP.fullmatch(group) else group


def title_page(config: Path | None = None, required: bool = False) -> TitlePage:
    """The group line and names: the environment, else report.toml, else visible placeholders."""
    data = read_config(config, required)
    group = (os.environ.get("ASSIGNMENT1_GROUP") or data["group"]).strip()
    env_authors = os.environ.get("ASSIGNMENT1_AUTHORS")
    authors = env_authors.split(";") if env_authors else data["authors"]
    authors = [a.strip() for a in authors if a.strip()]
    return TitlePage(group_line(group) if group else PLACEHOLDER_GROUP,
                     authors or PLACEHOLDER_AUTHORS, not group or not authors)


# --- The notebook -------------------------------------------------------------------------

def read_notebook(path: Path) -> tuple[dict, bytes]:
    """The notebook as JSON and its bytes; BuildError in one line for anything that is not a
    notebook (merge-conflict markers included)."""
    if not path.is_file():
        what = "a folder" if path.is_dir() else "missing"
        raise BuildError(f"{path} is {what}: the report is built from the notebook file")
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig")
    except OSError as exc:
        raise BuildError(f"{path}: cannot read it ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise BuildError(f"{path}: not UTF-8 text (byte {exc.start}); it is not a notebook "
                         f"Jupyter saved") from exc
    conflict = re.search(r"^(<<<<<<<|=======|>>>>>>>)( |$)", text, re.MULTILINE)
    if conflict:
        line = text.count("\n", 0, conflict.start()) + 1
        raise BuildError(f"{path} holds merge-conflict markers (line {line}: "
                         f"{conflict.group(1)}): resolve the conflict, e.g. git checkout "
                         f"--theirs {path.name} or --ours, then build again")
    try:
        nb = json.loads(text)
    except ValueError as exc:
        raise BuildError(f"{path} is not valid notebook JSON ({exc}); restore it, e.g. git "
                         f"checkout {path.name}, then build again") from exc
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list) or not all(isinstance(c, dict) and "cell_type" in c
                                              for c in cells):
        raise BuildError(f"{path} is JSON but not a Jupyter notebook (no list of cells)")
    return nb, raw


def source(cell: dict) -> str:
    text = cell.get("source", "")
    return text if isinstance(text, str) else "".join(text)


def is_executed(nb: dict) -> bool:
    """Every code cell with source has run."""
    return all(cell.get("execution_count") is not None for cell in nb["cells"]
               if cell.get("cell_type") == "code" and source(cell).strip())


def report_cells(nb: dict) -> list:
    """The cells that belong to the report: all but those tagged ``remove-cell`` (the
    notebook's note on how to export it)."""
    return [cell for cell in nb["cells"]
            if "remove-cell" not in cell.get("metadata", {}).get("tags", [])]


def cell_place(cells: list, index: int) -> str:
    """A code cell as a student finds it: 'code cell 7 (under "Task 2b: training")'."""
    number = sum(1 for c in cells[:index + 1] if c.get("cell_type") == "code")

    def heading(cell: dict) -> str | None:
        lines = [ln for ln in source(cell).splitlines() if ln.startswith("#")]
        return lines[-1].lstrip("#").strip() if lines else None

    before = [h for c in cells[:index] if c.get("cell_type") == "markdown" and (h := heading(c))]
    if before:
        return f'code cell {number} (under "{before[-1]}")'
    after = [h for c in cells[index + 1:] if c.get("cell_type") == "markdown"
             and (h := heading(c))]
    return f'code cell {number} (before "{after[0]}")' if after else f"code cell {number}"


# --- Kernels: connection files and sockets in a private temporary folder -----------------

def kernel_manager_class(folder: Path | None = None) -> type:
    """A kernel manager whose connection file and IPC sockets live in ``folder`` (absolute
    paths; a fresh temporary folder when None, removed at shutdown), so a kernel works from
    any working directory and leaves nothing in the project. It writes the kernel's process
    id to kernel.pid there, so whoever stops the build can stop the kernel too."""
    from jupyter_client.manager import AsyncKernelManager

    class PrivateKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            own = folder is None
            self.private_folder = Path(tempfile.mkdtemp(prefix="assignment1-kernel-")) \
                if own else folder
            self.owns_private_folder = own
            kwargs["connection_file"] = str(self.private_folder / "kernel.json")
            if os.name != "nt":  # Windows has no IPC transport: loopback TCP there
                kwargs.update(transport="ipc", ip=str(self.private_folder / "ipc"))
            super().__init__(**kwargs)

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            await super()._async_launch_kernel(kernel_cmd, **kw)
            pid = getattr(self.provisioner, "pid", None)
            if pid:
                (self.private_folder / "kernel.pid").write_text(str(pid), encoding="ascii")

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            await super()._async_cleanup_resources(restart=restart)
            if self.owns_private_folder and not restart:
                shutil.rmtree(self.private_folder, ignore_errors=True)

    return PrivateKernelManager


def notebook_client(nb: nbformat.NotebookNode, timeout: int, folder: Path | None = None,
                    root: Path = ROOT):
    """An nbclient NotebookClient for ``nb`` whose kernel runs in ``root`` and keeps its
    connection in ``folder`` (see ``kernel_manager_class``)."""
    from nbclient import NotebookClient

    return NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                          kernel_manager_class=kernel_manager_class(folder),
                          resources={"metadata": {"path": str(root)}})


@contextlib.contextmanager
def notebook_environment(out_dir: Path, quick: bool) -> Iterator[None]:
    """The environment a kernel started inside inherits: where the notebook writes its
    products, and whether it makes a reduced (quick) run."""
    env = {"ASSIGNMENT1_BUILD": "1", "ASSIGNMENT1_OUT": str(out_dir.resolve()),
           "ASSIGNMENT1_QUICK": "1" if quick else "0"}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def execute(out_dir: Path, quick: bool, timeout: int,
            nb: nbformat.NotebookNode | None = None) -> nbformat.NotebookNode:
    """Run every cell (of ``nb``, default the project's notebook) in a fresh kernel in this
    process, with the project root as working directory; the notebook writes its figures
    to ``out_dir``. (The build runs it in a worker process: ``run_worker``.)"""
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4) if nb is None else nb
    with notebook_environment(out_dir, quick):
        notebook_client(nb, timeout).execute()
    return nb


def kill_kernel(folder: Path) -> None:
    """Stop the kernel whose process id a ``PrivateKernelManager`` wrote in ``folder``."""
    try:
        pid = int((folder / "kernel.pid").read_text(encoding="ascii"))
    except (OSError, ValueError):
        return
    with contextlib.suppress(OSError):
        if os.name == "nt":
            os.kill(pid, signal.SIGTERM)  # TerminateProcess
        else:
            os.killpg(pid, signal.SIGKILL)  # the kernel leads a session of its own


def _ansi_free(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


def cell_failure(exc: BaseException, cells: list, index: int | None, timeout: int) -> str:
    """One line for a notebook that failed in a cell."""
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    place = cell_place(cells, index) if index is not None else "the notebook"
    if isinstance(exc, CellTimeoutError):
        return (f"{place} ran longer than --timeout {timeout} s: raise it (e.g. python "
                f"tasks.py report --timeout {max(3600, 4 * timeout)}) or make the cell faster")
    if isinstance(exc, DeadKernelError):
        return (f"the notebook's kernel died while running {place}: it was killed or ran out "
                f"of memory; close other programs, then build again")
    if isinstance(exc, CellExecutionError):
        frames = re.findall(r"File\s+(\S[^\n]*?):(\d+)", _ansi_free(str(exc.traceback)))
        where = f" ({Path(frames[-1][0]).name} line {frames[-1][1]})" if frames else ""
        evalue = (str(exc.evalue).strip().splitlines() or [""])[0]
        return f"the notebook failed in {place}: {exc.ename}: {evalue}{where}; fix it and " \
               f"build again"
    return f"the notebook's kernel failed in {place}: {type(exc).__name__}: {exc}"


def worker(staging: Path, kernel_dir: Path, root: Path, quick: bool, timeout: int) -> int:
    """The build's child process: run staging/input.ipynb in a kernel whose connection lives
    in ``kernel_dir``; write staging/executed.ipynb, or one line to staging/worker-error.txt.
    SIGTERM (or the parent's end) stops the kernel at once and exits."""
    keep_importing_quickly()
    import nbformat

    def fail(message: str) -> int:
        (staging / "worker-error.txt").write_text(message, encoding="utf-8")
        return 1

    try:
        nb = nbformat.read(staging / "input.ipynb", as_version=4)
    except Exception as exc:  # nbformat's validation errors have no common base
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return fail(f"the notebook is not a valid Jupyter notebook: {first}")
    client = notebook_client(nb, timeout, kernel_dir, root)
    running: dict[str, int] = {}
    client.on_cell_start = lambda cell, cell_index: running.update(index=cell_index)

    def stop(signum: int = signal.SIGTERM, _frame: object = None) -> None:
        kill_kernel(kernel_dir)
        os._exit(128 + signum)

    for name in ("SIGTERM", "SIGHUP", "SIGINT", "SIGBREAK"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), stop)
    if os.name != "nt":  # the parent killed outright: stop too (Windows: the kernel's own
        parent = os.getppid()  # poller sees its parent end)

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.25)
            stop()

        threading.Thread(target=watch, daemon=True).start()
    try:
        with notebook_environment(staging / "run", quick):
            client.execute()
    except Exception as exc:
        return fail(cell_failure(exc, nb.cells, running.get("index"), timeout))
    nbformat.write(nb, staging / "executed.ipynb")
    return 0


# --- Interrupts ---------------------------------------------------------------------------

_STOP_SIGNALS = [getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK")
                 if hasattr(signal, name)]


class Interrupted(BaseException):
    """A stop signal (Ctrl-C, SIGTERM, SIGHUP) received by the build."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopSignals:
    """While entered (main thread only), a stop signal raises ``Interrupted``; ``deferred``
    holds signals back over a few renames; ``diverted`` sends them to a callback while the
    build is already stopping (a second Ctrl-C then kills the worker outright)."""

    def __init__(self) -> None:
        self._held: list[int] | None = None
        self._divert: Callable[[int], None] | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: object) -> None:
        if self._divert is not None:
            self._divert(signum)
        elif self._held is not None:
            self._held.append(signum)
        else:
            raise Interrupted(signum)

    def __enter__(self) -> StopSignals:
        self._previous = {s: signal.signal(s, self._handle) for s in _STOP_SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self._held = []
        try:
            yield
        finally:
            held, self._held = self._held, None
        if held:
            raise Interrupted(held[0])

    @contextlib.contextmanager
    def diverted(self, callback: Callable[[int], None]) -> Iterator[None]:
        self._divert = callback
        try:
            yield
        finally:
            self._divert = None


def run_worker(staging: Path, nb: dict, quick: bool, timeout: int, root: Path,
               signals: StopSignals | None) -> dict:
    """Execute ``nb`` in a worker process of its own session (Ctrl-C in the terminal reaches
    only the build, which stops the worker and its kernel and says so in one line) and
    return the executed notebook; the notebook writes its files into staging/run."""
    (staging / "run").mkdir()
    (staging / "input.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    kernel_dir = Path(tempfile.mkdtemp(prefix="assignment1-kernel-"))
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(staging),
               "--kernel-dir", str(kernel_dir), "--root", str(root), "--timeout", str(timeout),
               *(["--quick"] if quick else [])]
    own_group = ({"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if os.name == "nt"
                 else {"start_new_session": True})
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    log = staging / "worker.log"
    try:
        with open(log, "wb") as output:
            child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output,
                                     stderr=output, env=env, **own_group)
        try:
            returncode = child.wait()
        except BaseException:
            stop_worker(child, kernel_dir, signals)
            raise
        if returncode != 0:
            kill_kernel(kernel_dir)
    finally:
        shutil.rmtree(kernel_dir, ignore_errors=True)
    if returncode != 0:
        error = staging / "worker-error.txt"
        if error.is_file():
            raise BuildError(error.read_text(encoding="utf-8"))
        tail = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
                if line.strip()][-1:]
        raise BuildError(f"the notebook's worker ended with exit code {returncode}"
                         + (f": {_ansi_free(tail[0]).strip()}" if tail else ""))
    return json.loads((staging / "executed.ipynb").read_text(encoding="utf-8"))


def stop_worker(child: subprocess.Popen, kernel_dir: Path, signals: StopSignals | None) -> None:
    """Stop the worker and its kernel: SIGTERM, then (after 15 s, or at a second signal) kill."""
    def kill(_signum: int | None = None) -> None:
        with contextlib.suppress(OSError):
            if os.name == "nt":
                child.kill()
            else:
                os.killpg(child.pid, signal.SIGKILL)
        kill_kernel(kernel_dir)

    with signals.diverted(kill) if signals else contextlib.nullcontext():
        child.terminate()
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            kill()
            child.wait()
        kill_kernel(kernel_dir)


# --- The outputs: the cache or a run ------------------------------------------------------

@dataclass(frozen=True)
class Outputs:
    notebook: dict  # executed: the current Markdown with the run's outputs
    products: Path  # the files the notebook wrote (figures, metrics)
    key: report_cache.Key
    cached: bool


def notebook_outputs(project: Project, nb: dict, quick: bool, fresh: bool, timeout: int,
                     staging: Path, say: Callable[[str], None],
                     signals: StopSignals | None = None) -> Outputs:
    """The executed notebook: from the cache when nothing that computes has changed (and not
    ``fresh``), else from a run in a worker, which then becomes the cache's entry."""
    key = report_cache.compute_key(project.root, nb, quick)
    entry, why = (None, "--fresh") if fresh else report_cache.load(project.cache, key, nb)
    if entry is not None:
        say(f"notebook unchanged since the last run: reused its outputs (key {key.short}); "
            f"use --fresh to run it again")
        return Outputs(report_cache.merged(nb, entry), entry.products, key, True)
    say(f"executing the notebook ({why})")
    start = time.perf_counter()
    executed = run_worker(staging, nb, quick, timeout, project.root, signals)
    products = staging / "run"
    note = "its outputs are cached for the next build"
    if report_cache.compute_key(project.root, nb, quick).digest != key.digest:
        note = "not cached: its sources changed while it ran"
    else:
        try:
            report_cache.store(project.cache, key, executed, products)
        except (OSError, FolderError) as exc:
            note = f"not cached: {one_line_os_error(exc) if isinstance(exc, OSError) else exc}"
    say(f"executed the notebook in {time.perf_counter() - start:.1f} s ({note})")
    return Outputs(executed, products, key, False)


# --- Markdown for pandoc: one for the PDF (vector figures), one for the web page (PNG) ----

def report_markdown(nb: dict, figures: tuple[str, ...] = ("application/pdf", "image/png")
                    ) -> tuple[str, dict[str, bytes], dict[str, str]]:
    """The report as pandoc Markdown, code hidden, outputs kept, the figure files, and the
    placement of each figure that asks for one.

    Markdown cells and ``text/markdown`` outputs go in as they are; a figure goes in as its
    first render among ``figures`` (by default the vector ``application/pdf``, else PNG),
    with the caption, width and placement the notebook gave it in the output's metadata
    (``caption``; ``width`` as a share of the line; ``placement``: "top", "bottom" or "none",
    default the template's). Plain-text results and streams are not part of the report.
    """
    extension = {"application/pdf": "pdf", "image/png": "png"}
    parts, files, placements = [], {}, {}
    for cell in report_cells(nb):
        if cell.get("cell_type") == "markdown":
            parts.append(source(cell))
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                raise BuildError(f"the notebook holds an error output ({output.get('ename')}); "
                                 f"run it again without errors")
            data, meta = output.get("data", {}), output.get("metadata", {})
            mime = next((m for m in figures if m in data), None)
            if mime is not None:
                name = f"figure-{len(files) + 1}.{extension[mime]}"
                payload = data[mime]
                files[name] = base64.b64decode(payload if isinstance(payload, str)
                                               else "".join(payload))
                caption = " ".join(str(meta.get("caption", "")).split())
                width = float(meta.get("width", 1.0))
                parts.append(f"![{caption}]({name}){{width={100 * width:g}%}}")
                if meta.get("placement") in ("top", "bottom", "none"):
                    placements[name] = meta["placement"]
            elif "text/markdown" in data:
                text = data["text/markdown"]
                parts.append(text if isinstance(text, str) else "".join(text))
    return "\n\n".join(parts) + "\n", files, placements


def pandoc_path() -> str:
    """The pandoc binary of the pypandoc-binary wheel (never a system pandoc)."""
    try:
        import pypandoc
    except ImportError as exc:
        raise BuildError("pypandoc-binary is not installed: run `python tasks.py report` (it "
                         "installs the project's environment) or pip install -r "
                         "requirements.lock") from exc
    return pypandoc.get_pandoc_path()


def run_pandoc(jobs: list[tuple[Path, str, Path, list[str]]]) -> None:
    """Run pandoc once per (input, format, output, options), all at once; BuildError on any
    pandoc warning (a formula it could not convert would print as raw TeX)."""
    pandoc = pandoc_path()
    children = [(subprocess.Popen([pandoc, "--from", "markdown", "--to", to, "--wrap=preserve",
                                   *options, "--output", str(output), str(markdown)],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE), to) for markdown, to, output, options
                in jobs]
    try:
        for child, to in children:
            _, stderr = child.communicate(timeout=300)
            message = stderr.decode("utf-8", errors="replace").strip()
            if child.returncode != 0 or message:
                raise BuildError(f"pandoc could not convert the report to {to}: "
                                 f"{' '.join(message.split()) or f'exit {child.returncode}'}")
    finally:
        for child, _ in children:
            if child.poll() is None:
                child.kill()
                child.wait()


# --- The web page -------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif;
       line-height: 1.5; max-width: 46em; margin: 2em auto; padding: 0 1em; color: #1a1a1a; }
header.title { text-align: center; margin: 1em 0 2em; }
header.title h1 { margin-bottom: 0.2em; }
header.title p { margin: 0.2em; }
h1, h2, h3 { line-height: 1.25; }
figure { margin: 1.5em 0; text-align: center; }
figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.9em; color: #444; margin-top: 0.4em; }
table { border-collapse: collapse; margin: 1em auto; font-size: 0.95em; }
th, td { border-bottom: 1px solid #ccc; padding: 0.25em 0.6em; }
th { border-bottom-width: 2px; }
math[display="block"] { overflow-x: auto; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.9em; }
"""


def title_html(title: TitlePage) -> str:
    """The title block of the HTML page; every name escaped, so it shows literally."""
    names = ", ".join(html.escape(a) for a in title.authors)
    return (f'<header class="title"><h1>{html.escape(TITLE)}</h1>'
            f'<p style="font-size:1.2em">{html.escape(title.group)}</p>'
            f"<p>{names}</p></header>")


def html_page(body: str, images: dict[str, bytes], title: TitlePage) -> str:
    """The page around pandoc's HTML ``body``, each image inlined: nothing is loaded from the
    network (maths is MathML, which the browser renders itself)."""
    page = (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(TITLE)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            f"{title_html(title)}\n<main>\n{body}\n</main>\n</body>\n</html>\n")
    remote = remote_resources(page)  # checked before the images go in: they hold no URL
    if remote:
        raise BuildError(f"the HTML report would load {remote[0]} from the network")
    for name, content in images.items():
        page = page.replace(f'src="{name}"',
                            f'src="data:image/png;base64,{base64.b64encode(content).decode()}"')
    return page


def remote_resources(html_page: str) -> list[str]:
    """URLs the page would load (scripts, styles, images, imports); links are not loads."""
    found = re.findall(r"<(?:script|img|iframe|source|audio|video)\b[^>]*\bsrc=[\"'](https?://[^\"']+)",
                       html_page)
    found += re.findall(r"<link\b[^>]*\bhref=[\"'](https?://[^\"']+)", html_page)
    found += re.findall(r"@import\s+(?:url\()?[\"']?(https?://[^\"')\s]+)", html_page)
    found += re.findall(r"\bimport\b[^;\n]*?[\"'](https?://[^\"']+)", html_page)
    return found


# --- The PDF: Typst ----------------------------------------------------------------------

def font_paths() -> list[str]:
    """Folders of the fonts the wheels bring: IPAexGothic (matplotlib-fontja) for CJK names.
    Found without importing the package, which would import Matplotlib (0.4 s)."""
    import importlib.util

    spec = importlib.util.find_spec("matplotlib_fontja")
    if spec is None or not spec.submodule_search_locations:
        return []
    return [str(Path(folder) / "fonts") for folder in spec.submodule_search_locations
            if (Path(folder) / "fonts").is_dir()]


def place_figures(body: str, placements: dict[str, str]) -> str:
    for name, placement in placements.items():
        body = body.replace(f'#figure(image("{name}"',
                            f'#figure(placement: {placement}, image("{name}"', 1)
    return body


def compile_pdf(work: Path, body: str, files: dict[str, bytes], title: TitlePage) -> bytes:
    """The PDF, from the template, the body and the figure files (written into ``work``)."""
    import typst

    for name, content in files.items():
        (work / name).write_bytes(content)
    main = work / "assignment1.typ"
    main.write_text(TEMPLATE.read_text(encoding="utf-8") + "\n" + body, encoding="utf-8")
    inputs = {"title": TITLE, "group": title.group,
              "authors": json.dumps(title.authors, ensure_ascii=False)}
    try:
        pdf, warnings = typst.compile_with_warnings(
            str(main), root=str(work), font_paths=font_paths(), sys_inputs=inputs, timestamp=0)
    except typst.TypstError as exc:
        kept = Path(tempfile.mkdtemp(prefix="assignment1-typst-"))
        for path in work.iterdir():
            shutil.copy(path, kept / path.name)
        message = " ".join(str(exc).split())
        raise BuildError(f"Typst could not build the PDF: {message}. Its source is kept in "
                         f"{kept / main.name}") from exc
    for warning in warnings:
        print(f"typst: {' '.join(str(warning).split())}", file=sys.stderr)
    return pdf


def render(nb: dict, title: TitlePage, work: Path, web: bool = True) -> tuple[str | None, bytes]:
    """The executed notebook as the web page (when ``web``) and the PDF; the two pandoc
    conversions run side by side, and Typst (which releases the GIL) after its own."""
    pdf_md, pdf_files, placements = report_markdown(nb)
    (work / "report.md").write_text(pdf_md, encoding="utf-8")
    jobs = [(work / "report.md", "typst", work / "body.typ", ["--columns=1000"])]
    if web:
        web_md, web_files, _ = report_markdown(nb, ("image/png",))
        (work / "page.md").write_text(web_md, encoding="utf-8")
        jobs.append((work / "page.md", "html5", work / "body.html", ["--mathml"]))
    run_pandoc(jobs)
    body = place_figures((work / "body.typ").read_text(encoding="utf-8"), placements)
    typst_dir = work / "typst"
    typst_dir.mkdir()
    pdf = compile_pdf(typst_dir, body, pdf_files, title)
    page = html_page((work / "body.html").read_text(encoding="utf-8"), web_files, title) \
        if web else None
    return page, pdf


def pdf_bytes(nb: dict, title: TitlePage) -> bytes:
    """The executed notebook as the report PDF (in a temporary folder)."""
    with tempfile.TemporaryDirectory(prefix="assignment1-pdf-") as tmp:
        return render(nb, title, Path(tmp), web=False)[1]


def missing_glyphs(text: str) -> list[str]:
    """Characters of ``text`` that no font the PDF may use can show (checked with fontTools,
    which matplotlib brings)."""
    # Typst's built-in fonts (Libertinus, New Computer Modern) cover Latin, Greek, Cyrillic
    wanted = {c for c in text if not c.isspace() and ord(c) > 0x2FF}
    if not wanted:
        return []
    from fontTools.ttLib import TTFont
    from matplotlib import font_manager

    candidates = [*(str(p) for d in font_paths() for p in Path(d).glob("*.tt[fc]")),
                  *font_manager.findSystemFonts()]
    for path in candidates:
        if not wanted:
            break
        try:
            with TTFont(path, fontNumber=0, lazy=True) as font:
                wanted -= set(map(chr, font.getBestCmap() or {}))
        except Exception:  # an unreadable system font is simply not a candidate
            continue
    return sorted(wanted)


def sources_digest(notebook: bytes | None = None, config: Path | None = None,
                   root: Path = ROOT) -> dict[str, str]:
    """SHA-256 of each file the report is built from (``notebook``: the notebook's bytes as
    read, when it came from elsewhere; ``config``: the title page's file, if not report.toml)."""
    digest = {name: hashlib.sha256((root / name).read_bytes()).hexdigest()
              for name in SOURCES if (root / name).is_file()}
    if notebook is not None:
        digest["assignment1.ipynb"] = hashlib.sha256(notebook).hexdigest()
    if config is not None:
        if config.is_file():
            digest["report.toml"] = hashlib.sha256(config.read_bytes()).hexdigest()
        else:
            digest.pop("report.toml", None)
    return digest


# --- The build ----------------------------------------------------------------------------

def os_reason(exc: OSError) -> str:
    """What an OSError means, in a few words."""
    return {errno.ENOSPC: "the disk is full", errno.EROFS: "a read-only file system",
            errno.EACCES: "permission denied", errno.EPERM: "permission denied"}.get(
        exc.errno, exc.strerror or str(exc))


def one_line_os_error(exc: OSError) -> str:
    """An OSError as what happened and what to do."""
    where = exc.filename or "a file"
    if exc.errno == errno.ENOSPC:
        return f"{where}: the disk is full (no space left on the device): free some space, " \
               f"then build again"
    if exc.errno == errno.EROFS:
        return f"{where} is on a read-only file system: build with --out A_WRITABLE_FOLDER"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{where} cannot be written or replaced (permission denied): close it if " \
               f"another program (a PDF viewer) has it open, or make it writable, or build " \
               f"with --out A_WRITABLE_FOLDER"
    return f"{where}: {exc.strerror or exc}"


def lock_checkout(project: Project) -> BuildLock:
    """The checkout's build lock, held; BuildError in one line when build/ cannot be written
    (a read-only checkout: --out elsewhere does not help, the lock and cache live there)."""
    lock = BuildLock(project.lock)
    try:
        project.build.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except OSError as exc:
        raise BuildError(f"{project.build} cannot be written ({os_reason(exc)}): builds keep "
                         f"their lock and the execution cache there; make the checkout "
                         f"writable, or work in a writable copy of it") from exc
    return lock


@dataclass
class BuildState:
    """What the output folder holds, for the message a failure ends with."""

    out_dir: Path
    started: bool = False  # staging began: the folder's state is worth reporting
    previous: bool = False  # it held a complete earlier set
    published: bool = False

    def holds(self) -> str:
        if self.published:
            return f"{self.out_dir} holds the new report"
        if self.previous:
            return f"{self.out_dir} keeps the previous report, unchanged"
        return f"nothing was written to {self.out_dir}"


def build(project: Project, out_dir: Path, notebook: Path, config: Path | None, quick: bool,
          fresh: bool, timeout: int, state: BuildState, signals: StopSignals | None) -> None:
    """Execute (or reuse) the notebook, render the report, and swap the whole set into
    ``out_dir``; raises BuildError, FolderError, OSError or Interrupted."""
    title = title_page(config or project.root / "report.toml", required=config is not None)
    nb, raw = read_notebook(notebook)
    digest = sources_digest(raw, config, project.root)  # the notebook's bytes that run
    if out_dir.exists() and not out_dir.is_dir():
        raise BuildError(f"{out_dir} exists and is not a folder: the report is built into a "
                         f"folder of that name. Move or delete the file, or pass --out "
                         f"OTHER_FOLDER.")
    with lock_checkout(project):
        out_dir.mkdir(parents=True, exist_ok=True)
        for line in recover(out_dir):
            print(line)
        previous = check_ours(out_dir, EXPECTED_PRODUCTS)
        state.previous = previous is not None
        staging = Staging(out_dir)
        state.started = True
        try:
            outputs = notebook_outputs(project, nb, quick, fresh, timeout, staging.path, print,
                                       signals)
            new = staging.new
            for product in sorted(outputs.products.iterdir()):
                if product.name in OWN_PRODUCTS:
                    raise BuildError(f"the notebook wrote {product.name} into its output "
                                     f"folder, a name the build uses itself: rename it in "
                                     f"the notebook")
                if outputs.cached:  # a copy: the cache's entry stays whole
                    if product.is_dir():
                        shutil.copytree(product, new / product.name)
                    else:
                        shutil.copy2(product, new / product.name)
                else:
                    os.replace(product, new / product.name)
            work = staging.path / "render"
            work.mkdir()
            started = time.perf_counter()
            page, pdf = render(outputs.notebook, title, work)
            seconds = time.perf_counter() - started
            (new / "assignment1.ipynb").write_text(
                json.dumps(outputs.notebook, indent=1, sort_keys=True, ensure_ascii=False)
                + "\n", encoding="utf-8")
            (new / "assignment1.html").write_text(page, encoding="utf-8")
            (new / "assignment1.pdf").write_bytes(pdf)
            names = sorted(p.name for p in new.iterdir())
            record = {"builder": BUILDER, "format": RECORD_FORMAT,
                      "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                      "title": title.group, "authors": title.authors,
                      "placeholder": title.placeholder, "quick": quick,
                      "pdf_sha256": hashlib.sha256(pdf).hexdigest(), "sources": digest,
                      "execution": {"cached": outputs.cached, "key": outputs.key.digest},
                      "products": {name: listing(new / name) for name in names}}
            previous = check_ours(out_dir, [*names, RECORD])  # again: the run's own names
            with signals.deferred() if signals else contextlib.nullcontext():
                try:
                    publish(staging, record, previous)
                except FolderError:
                    state.started = not staging.keep  # half updated: its message says so
                    raise
                state.published = True
        finally:
            with signals.deferred() if signals else contextlib.nullcontext():
                staging.close()
    print(f"wrote {out_dir / 'assignment1.html'}")
    print(f"wrote {out_dir / 'assignment1.pdf'} ({len(pdf) / 1e6:.1f} MB, A4, in {seconds:.1f} "
          f"s; {title.group}; {', '.join(title.authors)})")
    with contextlib.suppress(Exception):  # a font scan that fails only loses the warning
        unshown = missing_glyphs(title.group + "".join(title.authors))
        if unshown:
            print(f"warning: no installed font has {' '.join(unshown)} (from report.toml): "
                  f"the title page cannot show them; install a font that covers them",
                  file=sys.stderr)
    if title.placeholder:
        print("note: the title page shows placeholders: put your group and names in "
              "report.toml (python tasks.py handin refuses it as it is)", file=sys.stderr)


def export_pdf(nb: dict, *, quick: bool, fresh: bool = False, timeout: int = 1800,
               say: Callable[[str], None], project: Project = PROJECT) -> bytes:
    """The report PDF of ``nb`` for the Report_PDF exporter: a notebook that has not run is
    executed as the build does (the same lock and cache); one that has is exported as it is."""
    title = title_page()  # a bad report.toml fails before anything runs
    nb = json.loads(json.dumps(nb))  # a plain copy of the NotebookNode
    with tempfile.TemporaryDirectory(prefix="assignment1-export-") as tmp:
        work = Path(tmp)
        if not is_executed(nb):
            with lock_checkout(project):
                nb = notebook_outputs(project, nb, quick, fresh, timeout, work, say).notebook
        (work / "render").mkdir()
        return render(nb, title, work / "render", web=False)[1]


def main(argv: list[str] | None = None, project: Project = PROJECT) -> int:
    console_safe()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=project.build, help="output folder")
    parser.add_argument("--quick", action="store_true",
                        help="a reduced run (few softmax epochs) for trying the pipeline")
    parser.add_argument("--fresh", action="store_true",
                        help="execute the notebook even if its cached outputs are current")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    parser.add_argument("--config", type=Path, default=None,
                        help="the title page's group and names (default: report.toml)")
    parser.add_argument("--notebook", type=Path, default=project.root / "assignment1.ipynb",
                        help="build from another copy of the notebook (its code still runs in "
                             "the project's folder, with the project's modules)")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--kernel-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, default=project.root, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        return worker(args.worker, args.kernel_dir, args.root, args.quick, args.timeout)
    if args.timeout < 1:
        parser.error(f"--timeout must be a positive number of seconds, not {args.timeout}")
    keep_importing_quickly()
    out_dir = Path.cwd() / args.out  # an absolute --out stays as it is
    config = None if args.config is None else Path.cwd() / args.config
    state = BuildState(out_dir)
    try:
        with StopSignals() as signals:
            build(project, out_dir, Path.cwd() / args.notebook, config, args.quick,
                  args.fresh, args.timeout, state, signals)
        return 0
    except (BuildError, FolderError) as exc:
        message = str(exc)
    except OSError as exc:
        message = one_line_os_error(exc)
    except Interrupted as exc:
        print(f"report: interrupted; {state.holds()}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # a bug of the build: still one line, and the folder's state
        frame = exc.__traceback__
        while frame and frame.tb_next:
            frame = frame.tb_next
        where = f" ({Path(frame.tb_frame.f_code.co_filename).name} line {frame.tb_lineno})" \
            if frame else ""
        message = f"the build failed: {type(exc).__name__}: {exc}{where}"
    message = " ".join(message.split())
    print(f"{message}; {state.holds()}" if state.started else message, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
