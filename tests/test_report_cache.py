"""The execution cache: what its key covers, damaged entries, and which builds reuse outputs.

The builds here run on a tiny project whose run is put in the cache by hand; a miss is seen
as the call to start the worker (which these tests replace, so that no kernel starts). Real
runs of the real notebook are in test_build_processes.py."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys

import pytest
from conftest import ROOT
from fake_project import code_cell, make_project, notebook, seed_cache, write_notebook

sys.path.insert(0, str(ROOT / "tools"))
import build_report
import report_cache


@pytest.fixture
def project(tmp_path, monkeypatch):
    for variable in ("ASSIGNMENT1_GROUP", "ASSIGNMENT1_AUTHORS", "OPENBLAS_CORETYPE",
                     "MNIST_DIR"):
        monkeypatch.delenv(variable, raising=False)
    return make_project(tmp_path / "checkout")


def key(project, quick=False, nb=None):
    nb = nb if nb is not None else json.loads(
        (project.root / "assignment1.ipynb").read_text(encoding="utf-8"))
    return report_cache.compute_key(project.root, nb, quick)


# --- The key ------------------------------------------------------------------------------

def test_markdown_and_cell_metadata_are_not_in_the_key_code_is(project):
    base = key(project)
    assert key(project, nb=notebook("Other words in the derivation.")) == base
    nb = notebook()
    nb["cells"][1]["metadata"]["tags"] = ["remove-cell"]
    assert key(project, nb=nb) == base
    nb = notebook()
    nb["cells"][3]["source"] = "helper.figure()  # a comment is code too"
    assert key(project, nb=nb).digest != base.digest
    nb = notebook()
    nb["cells"][1], nb["cells"][3] = nb["cells"][3], nb["cells"][1]  # the order counts
    assert key(project, nb=nb).digest != base.digest


@pytest.mark.parametrize("change", ["imported module", "module it imports", "hand-in module",
                                    "lock", "data", "matplotlibrc"])
def test_whatever_the_code_computes_from_is_in_the_key(project, change):
    root = project.root
    (root / "task2.py").write_text("import numpy\n")  # a hand-in module, never imported here
    (root / "data" / "mnist").mkdir(parents=True)
    (root / "data" / "mnist" / "labels.gz").write_bytes(b"\x1f\x8b labels")
    (root / "helper.py").write_text("import shapes\n\ndef answer():\n    return 42\n")
    (root / "shapes.py").write_text("SIDES = 4\n")
    base = key(project)
    target, named = {"imported module": ("helper.py", "helper.py"),
                     "module it imports": ("shapes.py", "shapes.py"),
                     "hand-in module": ("task2.py", "task2.py"),
                     "lock": ("requirements.lock", "requirements.lock"),
                     "data": ("data/mnist/labels.gz", "data/mnist/labels.gz"),
                     "matplotlibrc": ("matplotlibrc", "matplotlibrc")}[change]
    path = root / target
    path.write_bytes((path.read_bytes() if path.exists() else b"") + b"\n# changed\n")
    new = key(project)
    assert new.digest != base.digest
    clause = report_cache.difference(base.parts, new.parts)
    assert clause.startswith(named) or clause.startswith(str(path)), clause


def test_the_environment_and_the_mode_are_in_the_key(project, monkeypatch):
    base = key(project)
    assert key(project, quick=True).digest != base.digest
    assert report_cache.difference(base.parts, key(project, quick=True).parts) == \
        "quick mode changed since the cached run"
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert report_cache.difference(base.parts, key(project).parts) == \
        "$OPENBLAS_CORETYPE is new since the cached run"
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    monkeypatch.setenv("ASSIGNMENT1_GROUP", "7")  # the title page only: not in the key
    monkeypatch.setenv("PYTHONIOENCODING", "cp1252")  # how the console shows it: not either
    assert key(project) == base
    parts = base.parts
    assert parts["NumPy"][0].isdigit() and parts["Matplotlib"][0].isdigit()
    assert parts["Python"].startswith(("CPython", "PyPy")) and "threads" in parts[
        "the BLAS library"]


# --- Entries ------------------------------------------------------------------------------

def nb_of(project):
    return json.loads((project.root / "assignment1.ipynb").read_text(encoding="utf-8"))


def test_a_stored_run_is_found_and_merged_with_the_current_markdown(project):
    stored = seed_cache(project)
    write_notebook(project.root / "assignment1.ipynb", notebook("Freshly edited prose."))
    nb = nb_of(project)
    entry, why = report_cache.load(project.cache, key(project), nb)
    assert entry is not None and why == "" and key(project) == stored
    merged = report_cache.merged(nb, entry)
    assert "Freshly edited prose." in merged["cells"][0]["source"]
    assert merged["cells"][1]["outputs"][0]["data"]["text/markdown"] == "The answer is **42**."
    assert build_report.is_executed(merged)
    assert sorted(p.name for p in entry.products.iterdir()) == ["figures", "metrics.json"]


def damage(project, how):
    folder = report_cache.entry_folder(project.cache, quick=False)
    if how == "truncated":
        path = folder / "entry.json"
        path.write_bytes(path.read_bytes()[:1000])
    elif how == "figure changed":
        (folder / "products" / "figures" / "rectangle.png").write_bytes(b"not the figure")
    elif how == "figure missing":
        (folder / "products" / "figures" / "rectangle.png").unlink()
    elif how == "file added":
        (folder / "products" / "stray.txt").write_text("?")
    elif how == "no outputs":
        data = json.loads((folder / "entry.json").read_text())
        data["cells"] = data["cells"][:1]
        (folder / "entry.json").write_text(json.dumps(data))
    elif how == "wrong types":
        data = json.loads((folder / "entry.json").read_text())
        data["cells"] = [{"outputs": "none"}] * len(data["cells"])
        (folder / "entry.json").write_text(json.dumps(data))
    elif how == "other format":
        data = json.loads((folder / "entry.json").read_text())
        data["format"] = report_cache.FORMAT + 1
        (folder / "entry.json").write_text(json.dumps(data))
    elif how == "not json":
        (folder / "entry.json").write_bytes(b"\x00\xff")
    elif how == "only a temporary folder":  # killed while storing its first entry
        folder.rename(project.cache / ".tmp-12345-abc")


@pytest.mark.parametrize("how", ["truncated", "figure changed", "figure missing", "file added",
                                 "no outputs", "wrong types", "other format", "not json",
                                 "only a temporary folder"])
def test_a_damaged_or_partial_entry_is_a_miss_never_an_error(project, how):
    seed_cache(project)
    damage(project, how)
    entry, why = report_cache.load(project.cache, key(project), nb_of(project))
    assert entry is None and why, why


def test_quick_and_full_entries_never_mix(project):
    seed_cache(project, quick=True)
    assert report_cache.load(project.cache, key(project), nb_of(project)) == (
        None, "no earlier run is cached")
    seed_cache(project, quick=False, answer="The full run's answer.")
    quick, _ = report_cache.load(project.cache, key(project, quick=True), nb_of(project))
    full, _ = report_cache.load(project.cache, key(project), nb_of(project))
    assert quick.folder != full.folder
    assert full.data["cells"][0]["outputs"][0]["data"]["text/markdown"] == \
        "The full run's answer."
    assert quick.data["cells"][0]["outputs"][0]["data"]["text/markdown"] == \
        "The answer is **42**."


def test_storing_replaces_the_entry_whole_and_removes_leftovers(project):
    seed_cache(project)
    (project.cache / ".tmp-99999-x").mkdir()  # of a build killed while storing
    (project.cache / ".old-99999-y").mkdir()
    seed_cache(project, answer="Second.")
    assert sorted(p.name for p in project.cache.iterdir()) == ["full"]
    entry, _ = report_cache.load(project.cache, key(project), nb_of(project))
    assert entry.data["cells"][0]["outputs"][0]["data"]["text/markdown"] == "Second."


# --- Which builds reuse the outputs -------------------------------------------------------

class WorkerStarted(Exception):
    pass


@pytest.fixture
def no_kernel(monkeypatch):
    """Starting the worker (and so a kernel) raises: a build that tries it is a miss."""
    started = []

    def refuse(*args, **kwargs):
        started.append(args)
        raise WorkerStarted

    monkeypatch.setattr(build_report, "run_worker", refuse)
    return started


def build(project, tmp_path, *args):
    return build_report.main(["--out", str(tmp_path / "out"), *args], project)


@pytest.mark.slow
def test_a_markdown_edit_is_a_hit_whose_pdf_shows_the_new_text(project, tmp_path, no_kernel,
                                                                capsys):
    from test_report_build import pdf_text

    seed_cache(project)
    write_notebook(project.root / "assignment1.ipynb", notebook("A newly written sentence."))
    assert build(project, tmp_path) == 0
    out = capsys.readouterr().out
    assert no_kernel == [] and "notebook unchanged since the last run: reused its outputs" in out
    text = pdf_text(tmp_path / "out" / "assignment1.pdf")[0]
    assert "A newly written sentence." in text and "The answer is 42." in text
    assert "A newly written sentence." in (tmp_path / "out" / "assignment1.html").read_text(
        encoding="utf-8")
    record = json.loads((tmp_path / "out" / "assignment1.json").read_text())
    assert record["execution"]["cached"] is True
    assert record["sources"]["assignment1.ipynb"] == hashlib.sha256(
        (project.root / "assignment1.ipynb").read_bytes()).hexdigest()  # today's sources


def edit_code(project):
    nb = notebook()
    nb["cells"].append(code_cell("print('one more cell')"))
    write_notebook(project.root / "assignment1.ipynb", nb)


def edit_module(project):
    (project.root / "helper.py").write_text("def answer():\n    return 43\n")


def edit_lock(project):
    (project.root / "requirements.lock").write_text("numpy==2.0.1\n")


@pytest.mark.parametrize(("edit", "args", "why"), [
    (edit_code, [], "the code cells changed since the cached run"),
    (edit_module, [], "helper.py changed since the cached run"),
    (edit_lock, [], "requirements.lock changed since the cached run"),
    (lambda project: None, ["--quick"], "no earlier run is cached"),
    (lambda project: damage(project, "figure changed"),
     [], "the cached run's files are damaged or incomplete"),
    (lambda project: None, ["--fresh"], "--fresh"),
])
def test_a_change_to_what_computes_runs_the_notebook(project, tmp_path, no_kernel, capsys,
                                                     edit, args, why):
    seed_cache(project)
    edit(project)
    assert build(project, tmp_path, *args) == 1  # the stand-in worker refuses to run
    assert f"executing the notebook ({why})" in capsys.readouterr().out
    assert len(no_kernel) == 1
    assert not list((tmp_path / "out").glob(".staging-*"))


def test_python_tasks_clean_forces_a_run(project, tmp_path, no_kernel, capsys):
    """`python tasks.py clean` removes build/, and with it the cache."""
    seed_cache(project)
    shutil.rmtree(project.build)
    assert build(project, tmp_path) == 1
    assert "executing the notebook (no earlier run is cached)" in capsys.readouterr().out
