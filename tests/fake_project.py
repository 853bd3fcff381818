"""Projects for the report build's tests: a tiny checkout whose notebook's outputs are put in
the execution cache by hand (so a build runs without a kernel), and a copy of the real one."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import struct
import zlib
from pathlib import Path

from conftest import ROOT

from tools import cache, execute
from tools.config import Project


def tiny_png(width: int = 4, height: int = 3) -> bytes:
    """A valid PNG of a red rectangle."""
    rows = b"".join(b"\x00" + bytes([200, 40, 40] * width) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                             0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def markdown_cell(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def code_cell(text: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "source": text, "outputs": [],
            "execution_count": None}


def notebook(prose: str = "The derivation in prose.") -> dict:
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        markdown_cell(f"# Task 1a\n\n{prose} Inline $\\frac{{1}}{{2}}$."),
        code_cell("import helper\nhelper.answer()"),
        markdown_cell("## Task 2a: a figure"),
        code_cell("helper.figure()"),
    ]}


def make_project(root: Path, prose: str = "The derivation in prose.") -> Project:
    """A checkout with a notebook, the module it imports, a lock file and a title page."""
    root.mkdir(parents=True, exist_ok=True)
    write_notebook(root / "assignment1.ipynb", notebook(prose))
    (root / "helper.py").write_text("def answer():\n    return 42\n", encoding="utf-8")
    (root / "requirements.lock").write_text("numpy==2.0.0\n", encoding="utf-8")
    (root / "report.toml").write_text('group = "42"\nauthors = ["Ada Lovelace"]\n',
                                      encoding="utf-8")
    return Project(root)


def write_notebook(path: Path, nb: dict) -> None:
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")


def executed(nb: dict, answer: str = "The answer is **42**.") -> dict:
    """``nb`` as a run would leave it: an answer in Markdown and a captioned figure."""
    result = json.loads(json.dumps(nb))
    code = [cell for cell in result["cells"] if cell["cell_type"] == "code"]
    outputs = [[{"output_type": "display_data", "metadata": {},
                 "data": {"text/markdown": answer, "text/plain": "<Markdown>"}}],
               [{"output_type": "display_data", "metadata": {"caption": "A red rectangle."},
                 "data": {"image/png": base64.b64encode(tiny_png()).decode(),
                          "text/plain": "<Figure>"}}]]
    for number, cell in enumerate(code):
        cell["outputs"] = outputs[number] if number < len(outputs) else []
        cell["execution_count"] = number + 1
    return result


def seed_cache(project: Project, quick: bool = False, answer: str = "The answer is **42**.",
               files: tuple[str, ...] = ("helper.py",), env_names: tuple[str, ...] = ()) -> dict:
    """Put a run of the project's current notebook in its cache, as a complete run that read
    ``files`` (relative to the project, or absolute) and ``env_names`` would; its inputs."""
    nb, _ = execute.read_notebook(project.root / "assignment1.ipynb")
    env = execute.environment(project.build, quick)
    reads = [str(project.root / name) for name in files]
    inputs = cache.inputs(nb, reads, list(env_names), env, project.root)
    products = project.root / "products-of-the-run"
    shutil.rmtree(products, ignore_errors=True)
    (products / "figures").mkdir(parents=True)
    (products / "figures" / "rectangle.png").write_bytes(tiny_png())
    (products / "metrics.json").write_text('{"answer": 42}\n', encoding="utf-8")
    cache.store(project.cache, quick, executed(nb, answer), products, reads, list(env_names),
                inputs)
    shutil.rmtree(products)
    return inputs


def copy_project(target: Path) -> Path:
    """The real checkout's sources, tools and data in ``target`` (no build/), so that builds
    there lock, cache and write nothing of the real one."""
    target.mkdir(parents=True)
    for path in ROOT.iterdir():
        if path.suffix in (".py", ".ipynb", ".toml", ".lock", ".txt"):
            shutil.copy2(path, target / path.name)
    shutil.copytree(ROOT / "tools", target / "tools",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "data", target / "data")
    return target


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain ``text`` (Linux: /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                "utf-8", errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline.strip()}")
    return found


def run_processes(tmp: Path) -> list[str]:
    """The processes of builds whose trace file lies in ``tmp``: their kernels and the
    workers those started (found by the environment they inherit)."""
    import psutil

    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.environ().get("ASSIGNMENT1_TRACE", "").startswith(str(tmp)):
                found.append(f"{process.pid}: {' '.join(process.cmdline())}")
    return found
