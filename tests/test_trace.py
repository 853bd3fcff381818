"""What a real kernel records (tools.trace), so that the cache is keyed by what the run read:
every way code can be imported or data read that a scan of the source cannot see, the reads of
tools.parallel's workers, an input changed while the run read it, and a fresh HOME whose first
build caches."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT
from fake_project import code_cell, make_project, markdown_cell, write_notebook

from tools import cache, execute, report

pytestmark = pytest.mark.slow

#: (file, what the notebook does with it): each way to reach a file the run depends on.
READS = {
    "imported_by_name.py": "importlib.import_module('imported_by_name')",
    "dunder_imported.py": "__import__('dunder_imported')",
    "after_semicolon.py": "x = 1; import after_semicolon",
    "in_one_line_try.py": "try: import in_one_line_try\nexcept ImportError: pass",
    "helpers/no_init.py": "import helpers.no_init",
    "lib/from_lib.py": "sys.path.insert(0, 'lib'); import from_lib",
    "script.py": "%run script.py",
    "data/linked/images.txt": "open('data/linked/images.txt').read()",
    "worker_job.py": "",
    "worker-input.txt": ("from tools.parallel import side_by_side\n"
                         "import worker_job\n"
                         "side_by_side([(worker_job.read, {'path': 'worker-input.txt'})] * 2, 2)"),
}


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    """A project whose notebook reaches a file in each of those ways, run once and cached."""
    tmp = tmp_path_factory.mktemp("traced")
    project = make_project(tmp / "checkout")
    for name in READS:
        (project.root / name).parent.mkdir(parents=True, exist_ok=True)
        (project.root / name).write_text("A = 1\n", encoding="utf-8")
    (project.root / "worker_job.py").write_text(
        "def read(path):\n    return open(path).read()\n", encoding="utf-8")
    (project.root / "data" / "linked" / "images.txt").unlink()
    (tmp / "dataset").mkdir()
    (tmp / "dataset" / "images.txt").write_text("pixels", encoding="utf-8")
    (project.root / "data" / "linked").rmdir()
    (project.root / "data" / "linked").symlink_to(tmp / "dataset")
    outside = tmp / "outside.csv"
    outside.write_text("a,b\n", encoding="utf-8")
    cells = ["import importlib, sys", *READS.values(), f"open({str(outside)!r}).read()"]
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [markdown_cell("# Task 1a"), *(code_cell(c) for c in cells if c)]}
    write_notebook(project.root / "assignment1.ipynb", nb)
    said = []
    products = tmp / "products"
    products.mkdir()
    report.outputs(project, nb, False, True, 300, products, said.append)
    return project, nb, outside, said


def miss(project, nb):
    env = execute.environment(project.build, False)
    return cache.lookup(project.cache, False, nb, env, project.root)[1]


def test_the_run_is_cached_and_unchanged_inputs_hit(traced):
    project, nb, _, said = traced
    assert said[-1].endswith("(its outputs are cached for the next build)"), said
    assert miss(project, nb) == ""


@pytest.mark.parametrize("name", [*READS, "outside"])
def test_a_file_reached_in_any_way_is_an_input(traced, name):
    project, nb, outside, _ = traced
    path = outside if name == "outside" else project.root / name
    before = path.read_bytes()
    try:
        path.write_bytes(before + b"\n# changed\n")
        expected = str(outside) if name == "outside" else name
        assert miss(project, nb) == f"{expected} changed since the cached run"
    finally:
        path.write_bytes(before)
    assert miss(project, nb) == ""


def test_an_input_edited_and_undone_while_the_notebook_ran_is_not_stored(tmp_path):
    project = make_project(tmp_path / "checkout")
    (project.root / "undone.py").write_text("A = 1\n", encoding="utf-8")
    editor = ("import os, time; p = 'undone.py'; t = open(p).read(); open(p, 'w').write('A = 2');"
              " open(p, 'w').write(t); os.utime(p, (time.time() + 5,) * 2)")
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        markdown_cell("# Task 1a"), code_cell("import subprocess, sys, undone"),
        code_cell(f"subprocess.run([sys.executable, '-c', {editor!r}], check=True)")]}
    said = []
    products = tmp_path / "products"
    products.mkdir()
    report.outputs(project, nb, False, True, 300, products, said.append)
    assert said[-1].endswith(f"(not cached: {project.root / 'undone.py'} changed while it ran)")
    assert not cache.entry_folder(project.cache, False).exists()


def test_with_an_empty_home_the_first_build_caches_and_the_second_hits(tmp_path):
    """A fresh machine: matplotlib builds its font cache and IPython its profile (with the
    start-up README) during the first run; neither is an input of it."""
    project = make_project(tmp_path / "checkout")
    (project.root / "helper.py").write_text(
        "import matplotlib.pyplot as plt\n\ndef answer():\n    return 42\n\n"
        "def figure():\n    return plt.figure()\n",
        encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSIGNMENT1_", "MPL",
                                                                     "IPYTHON", "XDG_"))}
    env.update(HOME=str(home), ASSIGNMENT1_GROUP="42", ASSIGNMENT1_AUTHORS="Ada")
    script = ("import sys; from pathlib import Path; from tools import report; "
              "from tools.config import Project; "
              f"sys.exit(report.main(['--out', {str(tmp_path / 'out')!r}], "
              f"Project(Path({str(project.root)!r}))))")
    outs = []
    for _ in range(2):
        result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                                text=True, timeout=600, cwd=ROOT)
        assert result.returncode == 0, result.stderr
        outs.append(result.stdout)
    assert "its outputs are cached for the next build" in outs[0], outs[0]
    assert "notebook unchanged since the last run: reused its outputs" in outs[1], outs[1]
    assert (home / ".ipython" / "profile_default" / "startup" / "README").is_file()
    assert json.loads((tmp_path / "out" / "assignment1.json").read_text())["cached"] is True
