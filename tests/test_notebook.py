"""The report notebook: clean when committed, complete, and it runs end to end."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from conftest import ROOT

from tools import execute

NOTEBOOK = ROOT / "assignment1.ipynb"
HEADINGS = ["Task 1a", "Task 1b", "Task 2a", "Task 2b", "Task 2c", "Task 2d", "Task 2e",
            "Task 3a", "Task 3b", "Task 3c", "Task 3d", "Task 4a", "Task 4b", "Task 4c",
            "Task 4d", "Task 4e"]


@pytest.fixture(scope="module")
def notebook():
    """The notebook as plain JSON (nbformat, with its schema machinery, is slow to import)."""
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        cell["source"] = "".join(cell["source"])
    return nb


def committed_notebook():
    """The notebook as committed (git's blob at HEAD), not the working file a student may
    have saved with outputs; None outside a git checkout (e.g. an unzipped hand-in)."""
    try:
        blob = subprocess.run(["git", "show", "HEAD:assignment1.ipynb"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    nb = json.loads(blob)
    return nb


def test_committed_notebook_has_no_outputs():
    committed = committed_notebook()
    if committed is None:
        pytest.skip("not a git checkout: there is no committed notebook to check")
    dirty = [i for i, cell in enumerate(committed["cells"]) if cell["cell_type"] == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, (f"the committed notebook's cells {dirty} carry outputs; run "
                       f"`make hooks` once so that git strips them on commit")


@pytest.mark.slow
def test_notebook_is_valid():
    import nbformat

    nbformat.validate(nbformat.read(NOTEBOOK, as_version=4))


def test_every_task_has_a_heading(notebook):
    headings = [line for cell in notebook["cells"] if cell["cell_type"] == "markdown"
                for line in cell["source"].splitlines() if line.startswith("#")]
    for task in HEADINGS:
        assert any(re.search(rf"\b{task}\b", h) for h in headings), f"no heading for {task}"


def jupyterlab_label() -> str:
    """The exporter's entry in JupyterLab's File > Save and Export Notebook As: its entry-point
    name with the first letter capitalised (JupyterLab's notebook-extension labels only its
    built-in formats itself)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (name,) = pyproject["project"]["entry-points"]["nbconvert.exporters"]
    return name[0].upper() + name[1:]


def test_the_notebook_tells_how_to_export_it_and_that_an_unrun_one_runs_first(notebook):
    """The student's note (the first cell, kept out of the report) names the menu entry as
    JupyterLab shows it, and says that an export of a notebook that has not run runs it."""
    first = notebook["cells"][0]
    assert "remove-cell" in first["metadata"].get("tags", [])
    note = " ".join(first["source"].split())
    assert f"File → Save and Export Notebook As → {jupyterlab_label()}" in note, note
    assert "has not been run is run first" in note, note


def test_notebook_does_not_reimplement_the_maths(notebook):
    """The maths lives in the modules: no exp/log or gradient formulas in the cells."""
    code = "\n".join(cell["source"] for cell in notebook["cells"] if cell["cell_type"] == "code")
    patterns = (r"np\.exp\(", r"np\.log\(", r"\.T\s*@", r"def (forward|backward|softmax|sigmoid)")
    for pattern in patterns:
        assert not re.search(pattern, code), f"notebook code matches {pattern!r}"


@pytest.mark.slow
def test_notebook_runs_end_to_end(executed_notebook):
    """A reduced run (3 softmax epochs instead of 50): no cell errors, every product written."""
    nb, products = executed_notebook
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", f"cell failed: {output.get('ename')}"
            assert output.get("name") != "stderr", f"cell wrote to stderr: {output.get('text')}"
    texts = [text for cell in nb.cells for text in cell_texts(cell)]
    assert texts, "the notebook displayed no text at all"
    for text in texts:
        assert not re.search(r"\b(nan|inf|TODO)\b", text, re.IGNORECASE), text
    metrics = json.loads((products / "metrics.json").read_text())
    assert metrics["quick"] is True and metrics["epochs_softmax"] == 3
    task2 = metrics["task2"]
    assert task2["2d"]["early_stop_epoch"] == 33  # not affected by the reduced run
    drop = metrics["largest_drop"]  # task 2e's answer: shuffling gives smaller spikes
    assert drop["2b"] > drop["2e"]
    checks = [check for task in ("2a", "3a") for check in metrics["gradient_checks"][task]]
    assert len(checks) == 5 and all(0 <= largest <= 1e-6 for largest, _ in checks)
    assert set(metrics["task3"]) == {"0", "2", "0.2", "0.02", "0.002"}
    for run in metrics["task3"].values():
        assert run["norm_squared"] == pytest.approx(run["norm"] ** 2)
    small = {name: pt for name, pt in metrics["figures_smallest_font_pt"].items() if pt < 8}
    assert not small, f"text below 8 pt in the printed figures: {small}"
    figures = sorted(p.name for p in (products / "figures").glob("*.png"))
    assert figures == sorted(["task2b_binary_loss.png", "task2c_binary_accuracy.png",
                              "task2e_shuffle_accuracy.png", "task3b_softmax_loss.png",
                              "task3c_softmax_accuracy.png", "task4b_weights.png",
                              "task4c_l2_val_accuracy.png", "task4e_l2_norm.png"])


def cell_texts(cell) -> list[str]:
    """Every text a cell shows: Markdown, plain text and streams."""
    return [str(value) for output in cell.get("outputs", [])
            for key, value in {**output.get("data", {}), "stream": output.get("text", "")}.items()
            if (key.startswith("text/") or key == "stream") and value]


def cell_pictures(cell) -> list[str]:
    return [output["data"]["image/png"] for output in cell.get("outputs", [])
            if "image/png" in output.get("data", {})]


@pytest.mark.slow
def test_cells_rerun_in_any_order_show_the_same_text_and_figures(executed_notebook, tmp_path):
    """One kernel: every cell in order, then every cell after the set-up cell once more in
    reverse order; each cell's text and figures must not change. The first pass must also
    show the same text as another, independent execution (the session's), so nothing in the
    report (no timing, no machine fact) changes from one build to the next."""
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    client = execute.notebook_client(nb, ROOT, timeout=600)
    with client.setup_kernel(env=execute.environment(tmp_path, quick=True)):
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        first = {i: (cell_texts(nb.cells[i]), cell_pictures(nb.cells[i])) for i in code}
        for index in reversed(code[1:]):
            client.execute_cell(nb.cells[index], index)
    for index in code[1:]:
        assert cell_texts(nb.cells[index]) == first[index][0], f"cell {index}'s text changed"
        assert cell_pictures(nb.cells[index]) == first[index][1], f"cell {index}'s figure changed"
    independent = executed_notebook[0]
    for index in code:
        assert first[index][0] == cell_texts(independent.cells[index]), \
            f"cell {index} shows other text in another execution"


def test_notebook_by_products_are_ignored_by_git():
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "*.nbconvert.ipynb" in ignored
