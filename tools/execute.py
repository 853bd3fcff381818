"""Running the notebook: nbclient starts its kernel in the checkout, runs every cell, times them
out and shuts the kernel down; this module reads the notebook, sets the kernel's environment,
ends the kernel's whole process tree however the run ends, and names a failed cell by its task."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import tempfile
import threading
from pathlib import Path

from tools import trace
from tools.cli import UserError


def read_notebook(path: Path) -> tuple[dict, bytes]:
    """The notebook as JSON and its bytes; UserError for anything that is not a notebook
    (merge-conflict markers included)."""
    if not path.is_file():
        raise UserError(f"{path} is {'a folder' if path.is_dir() else 'missing'}: the "
                        f"report is built from the notebook file")
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig")
    except OSError as exc:
        raise UserError(f"{path}: cannot read it ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start}); it is not a notebook "
                        f"Jupyter saved") from exc
    conflict = re.search(r"^(<<<<<<<|=======|>>>>>>>)( |$)", text, re.MULTILINE)
    if conflict:
        raise UserError(f"{path} holds merge-conflict markers (line "
                        f"{text.count(chr(10), 0, conflict.start()) + 1}: {conflict.group(1)}): "
                        f"resolve the conflict, e.g. git checkout --theirs {path.name} or "
                        f"--ours, then build again")
    try:
        nb = json.loads(text)
    except ValueError as exc:
        raise UserError(f"{path} is not valid notebook JSON ({exc}); restore it, e.g. git "
                        f"checkout {path.name}, then build again") from exc
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list) or not all(isinstance(c, dict) and "cell_type" in c
                                              for c in cells):
        raise UserError(f"{path} is JSON but not a Jupyter notebook (no list of cells)")
    return nb, raw


def environment(out_dir: Path, quick: bool) -> dict[str, str]:
    """The kernel's environment: where the notebook writes, and whether the run is reduced."""
    return {**os.environ, "ASSIGNMENT1_OUT": str(out_dir.resolve()),
            "ASSIGNMENT1_QUICK": "1" if quick else "0"}


def failure(exc: BaseException, cells: list, index: int | None, timeout: int) -> str:
    """One line for a notebook that failed in ``cells[index]``, named as a student finds it:
    'code cell 7 (under "Task 2b: training")'."""
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    place = "the notebook"
    if index is not None:
        headings = [(i, line.lstrip("#").strip()) for i, c in enumerate(cells)
                    if c.get("cell_type") == "markdown"
                    for line in "".join(c.get("source", "")).splitlines() if line.startswith("#")]
        before, after = [h for i, h in headings if i < index], [h for i, h in headings if i > index]
        place = f"code cell {sum(c.get('cell_type') == 'code' for c in cells[:index + 1])}"
        place += f' (under "{before[-1]}")' if before else f' (before "{after[0]}")' if after \
            else ""
    if isinstance(exc, CellTimeoutError):
        return (f"{place} ran longer than --timeout {timeout} s: raise it (e.g. python "
                f"tasks.py report --timeout {max(3600, 4 * timeout)}) or make the cell faster")
    if isinstance(exc, DeadKernelError):
        return (f"the notebook's kernel died while running {place}: it was killed or ran out "
                f"of memory; close other programs, then build again")
    if isinstance(exc, CellExecutionError):
        frames = re.findall(r"File\s+(\S[^\n]*?):(\d+)",
                            re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(exc.traceback)))
        where = f" ({Path(frames[-1][0]).name} line {frames[-1][1]})" if frames else ""
        evalue = (str(exc.evalue).strip().splitlines() or [""])[0]
        return f"the notebook failed in {place}: {exc.ename}: {evalue}{where}; fix it and " \
               f"build again"
    return f"the notebook's kernel failed in {place}: {type(exc).__name__}: {exc}"


def notebook_client(nb: dict, root: Path, timeout: int) -> object:
    """An nbclient client whose kernel works in ``root``, records its reads when its
    environment names a trace file, and is killed at the end."""
    from nbclient import NotebookClient

    return NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                          shutdown_kernel="immediate",
                          extra_arguments=["--IPKernelApp.extensions=tools.trace",
                                           "--IPKernelApp.log_level=ERROR"],
                          resources={"metadata": {"path": str(root)}})


def run(nb: dict, root: Path, out_dir: Path, quick: bool, timeout: int
        ) -> tuple[dict, dict[str, tuple | None], set[str]]:
    """``nb`` run by a fresh kernel in ``root`` (in a thread, so that a stop signal ends it and its
    workers at once), its files written into ``out_dir``; with what it read (``trace.read``)."""
    import nbformat
    import psutil
    from nbformat.v4.rwbase import rejoin_lines

    node = rejoin_lines(nbformat.from_dict(nb))
    client = notebook_client(node, root, timeout)
    running: dict[str, int] = {}
    client.on_cell_start = lambda cell, cell_index: running.update(index=cell_index)
    fd, trace_file = tempfile.mkstemp(prefix="assignment1-trace-", suffix=".jsonl")
    os.close(fd)
    env = {**environment(out_dir, quick), trace.VARIABLE: trace_file}
    failed: list[BaseException] = []

    def execute() -> None:
        try:
            # the cells' output comes as messages; what the kernel's worker processes print
            # to the inherited stdout (the course's loaders print shapes) is not the report's
            client.execute(env=env, stdout=subprocess.DEVNULL)
        except BaseException as exc:  # reported in the calling thread
            failed.append(exc)
            loop = asyncio.get_event_loop()  # nbclient's, for this thread
            pending = asyncio.all_tasks(loop)  # output pollers a failed cell leaves
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))

    thread = threading.Thread(target=execute, name="notebook", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.2)  # a signal handler runs between these waits
        if failed:
            raise UserError(failure(failed[0], nb["cells"], running.get("index"), timeout))
        return (json.loads(json.dumps(node)), *trace.read(Path(trace_file)))
    finally:  # every process of the run (the kernel, its workers), found by the trace file
        mine = []  # their environment names, whether or not their parent still lives
        for process in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if process.environ().get(trace.VARIABLE) == trace_file:
                    process.kill()
                    mine.append(process)
        psutil.wait_procs(mine, timeout=10)
        thread.join()
        os.unlink(trace_file)
