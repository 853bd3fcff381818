"""The execution cache: each input of a run, changed, is a miss; an entry edited or damaged is a
miss; a run whose inputs changed while it ran is not stored.

Most builds here run on a tiny project whose run is put in the cache by hand (a miss is seen as
the call to start a kernel, which these tests refuse). What a real kernel records is in
test_trace.py."""

from __future__ import annotations

import json
import os
import shutil
import site
import sys

import pytest
from fake_project import code_cell, make_project, notebook, seed_cache, write_notebook

from tools import cache, execute, report


@pytest.fixture
def project(tmp_path, monkeypatch):
    for variable in ("ASSIGNMENT1_GROUP", "ASSIGNMENT1_AUTHORS", "OMP_NUM_THREADS", "LANG",
                     "MNIST_DIR", "IPYTHONDIR", "MATPLOTLIBRC"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return make_project(tmp_path / "checkout")


def lookup(project, quick=False, nb=None):
    nb = nb if nb is not None else json.loads(
        (project.root / "assignment1.ipynb").read_text(encoding="utf-8"))
    env = execute.environment(project.build, quick)
    entry, why, _ = cache.lookup(project.cache, quick, nb, env, project.root)
    return entry, why


def test_a_stored_run_is_found_and_merged_with_the_current_markdown(project):
    seed_cache(project)
    write_notebook(project.root / "assignment1.ipynb", notebook("Freshly edited prose."))
    nb = json.loads((project.root / "assignment1.ipynb").read_text(encoding="utf-8"))
    entry, why = lookup(project, nb=nb)
    assert entry is not None and why == ""
    merged = cache.merged(nb, entry)
    assert "Freshly edited prose." in merged["cells"][0]["source"]
    assert merged["cells"][1]["outputs"][0]["data"]["text/markdown"] == "The answer is **42**."
    products = sorted(p.name for p in (entry.folder / "products").iterdir())
    assert products == ["figures", "metrics.json"]


def edit(path, text="\n# changed\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as file:
        file.write(text)


# Each input of the key, changed after the run was stored: (how, the clause naming it).
def code_edit(project, monkeypatch):
    nb = notebook()
    nb["cells"][3]["source"] = "helper.figure()  # a comment is code too"
    write_notebook(project.root / "assignment1.ipynb", nb)
    return "the code cells"


def tag_edit(project, monkeypatch):  # nbclient skips a cell tagged skip-execution
    nb = notebook()
    nb["cells"][3]["metadata"]["tags"] = ["skip-execution"]
    write_notebook(project.root / "assignment1.ipynb", nb)
    return "the code cells"


def module_edit(project, monkeypatch):
    edit(project.root / "helper.py")
    return "helper.py"


def data_outside_the_project(project, monkeypatch):
    edit(project.root.parent / "elsewhere" / "table.csv")
    return str(project.root.parent / "elsewhere" / "table.csv")


def file_through_a_symlinked_folder(project, monkeypatch):
    edit(project.root.parent / "dataset" / "images.gz")
    return "data/linked/images.gz"


def env_read(project, monkeypatch):
    monkeypatch.setenv("MNIST_DIR", "/somewhere/else")
    return "$MNIST_DIR"


def native_env(project, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return "$OMP_NUM_THREADS"


def locale(project, monkeypatch):
    monkeypatch.setenv("LANG", "nb_NO.UTF-8")
    return "$LANG"


def pth_file(project, monkeypatch):
    edit(project.root.parent / "site" / "extra.pth", "/somewhere\n")
    return str(project.root.parent / "site" / "extra.pth")


def matplotlibrc(project, monkeypatch):
    edit(project.root / "matplotlibrc", "lines.linewidth: 4\n")
    return "matplotlibrc"


def ipython_startup(project, monkeypatch):
    edit(project.root.parent / "home" / ".ipython" / "profile_default" / "startup" / "00.py")
    return str(project.root.parent / "home" / ".ipython" / "profile_default" / "startup" /
               "00.py")


def the_builder(project, monkeypatch):
    tools = project.root.parent / "tools-copy"
    shutil.copytree(cache.TOOLS, tools)
    monkeypatch.setattr(cache, "TOOLS", tools)
    edit(tools / "execute.py")
    return "the builder"


def python(project, monkeypatch):
    monkeypatch.setattr(sys, "version", sys.version + " (another build)")
    return "Python"


def packages(project, monkeypatch):
    site_packages = project.root.parent / "site"
    (site_packages / "numpy-9.9.dist-info").mkdir()
    monkeypatch.syspath_prepend(str(site_packages))
    return "the installed packages"


@pytest.mark.parametrize("change", [code_edit, tag_edit, module_edit, data_outside_the_project,
                                    file_through_a_symlinked_folder, env_read, native_env,
                                    locale, pth_file, matplotlibrc, ipython_startup,
                                    the_builder, python, packages], ids=lambda f: f.__name__)
def test_each_input_changed_is_a_miss_that_names_it(project, monkeypatch, change):
    monkeypatch.setattr(site, "getsitepackages", lambda: [str(project.root.parent / "site")])
    (project.root.parent / "site").mkdir()
    edit(project.root.parent / "elsewhere" / "table.csv", "a,b\n")
    edit(project.root.parent / "dataset" / "images.gz", "pixels")
    (project.root / "data").mkdir()
    (project.root / "data" / "linked").symlink_to(project.root.parent / "dataset")
    seed_cache(project, files=("helper.py", str(project.root.parent / "elsewhere" / "table.csv"),
                               "data/linked/images.gz"), env_names=("MNIST_DIR",))
    assert lookup(project)[1] == ""
    named = change(project, monkeypatch)
    entry, why = lookup(project)
    assert entry is None and why.startswith(named) and why.endswith("changed since the cached "
                                                                      "run"), why


def test_what_cannot_change_results_is_not_an_input(project, monkeypatch):
    """Markdown, the title page, and IPython's start-up README (a first kernel creates it:
    counting it kept the first build from ever caching)."""
    seed_cache(project)
    monkeypatch.setenv("ASSIGNMENT1_GROUP", "7")
    edit(project.root.parent / "home" / ".ipython" / "profile_default" / "startup" / "README")
    nb = notebook()
    nb["cells"][0]["metadata"]["tags"] = ["remove-cell"]
    nb["cells"][0]["source"] = "# Task 1a\n\nOther words."
    entry, why = lookup(project, nb=nb)
    assert entry is not None and why == ""


def test_quick_and_full_entries_never_mix(project):
    seed_cache(project, quick=True)
    assert lookup(project) == (None, "no earlier run is cached")
    seed_cache(project, quick=False, answer="The full run's answer.")
    quick, _ = lookup(project, quick=True)
    full, _ = lookup(project)
    assert quick.folder != full.folder
    assert full.data["cells"][0]["outputs"][0]["data"]["text/markdown"] == \
        "The full run's answer."


def damage(folder, how):
    data = json.loads((folder / "entry.json").read_text())
    if how == "an output's text edited":
        data["cells"][0]["outputs"][0]["data"]["text/markdown"] = "The answer is **43**."
    elif how == "a figure changed":
        (folder / "products" / "figures" / "rectangle.png").write_bytes(b"not the figure")
    elif how == "a file added":
        (folder / "products" / "stray.txt").write_text("?")
    elif how == "truncated":
        (folder / "entry.json").write_bytes((folder / "entry.json").read_bytes()[:100])
        return
    elif how == "no seal":
        (folder / "seal").unlink()
    (folder / "entry.json").write_text(json.dumps(data))


@pytest.mark.parametrize("how", ["an output's text edited", "a figure changed", "a file added",
                                 "truncated", "no seal"])
def test_an_edited_or_damaged_entry_is_a_miss_never_an_error(project, how):
    seed_cache(project)
    damage(cache.entry_folder(project.cache, False), how)
    entry, why = lookup(project)
    assert entry is None and why in ("the cached run was changed after it was stored",
                                     "the cached run is damaged"), why


def test_storing_replaces_the_entry_whole_and_removes_leftovers(project):
    seed_cache(project)
    (project.cache / ".tmp-99999-x").mkdir()  # of a build killed while storing
    seed_cache(project, answer="Second.")
    assert sorted(p.name for p in project.cache.iterdir()) == ["full"]
    entry, _ = lookup(project)
    assert entry.data["cells"][0]["outputs"][0]["data"]["text/markdown"] == "Second."


def test_an_input_changed_while_the_run_read_it_is_found(tmp_path):
    """Edited, or edited and undone (the same bytes at the end, a new time)."""
    path = tmp_path / "module.py"
    path.write_text("A = 1\n")
    stat = os.stat(path)
    reads = {str(path): (stat.st_mtime_ns, stat.st_size), str(tmp_path / "gone"): None}
    assert cache.changed_while_running(reads) is None
    path.write_text("A = 2\n")
    path.write_text("A = 1\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert cache.changed_while_running(reads) == str(path)
    (tmp_path / "gone").write_text("now here")
    reads[str(path)] = None
    path.unlink()
    assert cache.changed_while_running(reads) == str(tmp_path / "gone")


# --- Which builds reuse the outputs -------------------------------------------------------

class KernelStarted(Exception):
    pass


@pytest.fixture
def no_kernel(monkeypatch):
    """Starting a kernel raises: a build that tries it is a miss."""
    started = []

    def refuse(*args, **kwargs):
        started.append(args)
        raise KernelStarted

    monkeypatch.setattr(execute, "run", refuse)
    return started


def build(project, tmp_path, *args):
    return report.main(["--out", str(tmp_path / "out"), *args], project)


@pytest.mark.parametrize(("change", "args", "why"), [
    (lambda project: write_notebook(project.root / "assignment1.ipynb", {
        **notebook(), "cells": [*notebook()["cells"], code_cell("print(1)")]}), [],
     "the code cells changed since the cached run"),
    (lambda project: edit(project.root / "helper.py"), [], "helper.py changed since the "
                                                           "cached run"),
    (lambda project: None, ["--quick"], "no earlier run is cached"),
    (lambda project: None, ["--fresh"], "--fresh"),
])
def test_a_change_to_what_the_run_read_runs_the_notebook(project, tmp_path, no_kernel, capsys,
                                                          change, args, why):
    seed_cache(project)
    change(project)
    assert build(project, tmp_path, *args) == 1  # the stand-in refuses to run
    assert f"executing the notebook ({why})" in capsys.readouterr().out
    assert len(no_kernel) == 1
    assert not (tmp_path / "out" / ".next").exists()


def test_python_tasks_clean_forces_a_run(project, tmp_path, no_kernel, capsys):
    """`python tasks.py clean` removes build/, and with it the cache."""
    seed_cache(project)
    shutil.rmtree(project.build)
    assert build(project, tmp_path) == 1
    assert "executing the notebook (no earlier run is cached)" in capsys.readouterr().out
