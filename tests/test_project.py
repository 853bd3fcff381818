"""Project hygiene a newcomer relies on: one lock for every Python and OS the README names, a
README that stays inside the repo."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest
from conftest import ROOT
from packaging.requirements import Requirement

import tasks

#: Where the lock must install: the Pythons the README names (Debian 12's 3.11.2 among them,
#: below soupsieve 4's 3.11.5) on the three OSes.
PYTHONS = ["3.10.0", "3.10.13", "3.11.0", "3.11.2", "3.11.7", "3.12.0", "3.13.0"]
PLATFORMS = [("linux", "posix", "Linux"), ("win32", "nt", "Windows"),
             ("darwin", "posix", "Darwin")]


def lock_lines() -> list[Requirement]:
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    return [Requirement(line) for line in lock.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_lock_names_no_local_paths_and_pins_everything():
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    assert "file://" not in lock and "--find-links" not in lock and "--extra-index-url" not in lock
    for requirement in lock_lines():
        assert str(requirement.specifier).startswith("=="), requirement


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize(("sys_platform", "os_name", "system"), PLATFORMS)
def test_the_lock_pins_each_requirement_once_on_every_python_and_os(python, sys_platform,
                                                                    os_name, system):
    env = {"python_version": ".".join(python.split(".")[:2]), "python_full_version": python,
           "sys_platform": sys_platform, "os_name": os_name, "platform_system": system,
           "implementation_name": "cpython", "platform_python_implementation": "CPython"}
    pins: dict[str, list[str]] = {}
    for requirement in lock_lines():
        if requirement.marker is None or requirement.marker.evaluate(env):
            pins.setdefault(requirement.name.lower().replace("_", "-"), []).append(
                str(requirement.specifier))
    twice = {name: found for name, found in pins.items() if len(found) > 1}
    assert not twice, f"pinned twice on Python {python} ({sys_platform}): {twice}"
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        wanted = Requirement(line)
        if wanted.marker is not None and not wanted.marker.evaluate(env):
            continue  # a backport this Python does not need
        name = wanted.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not pinned for Python {python} ({sys_platform})"
        assert wanted.specifier.contains(pins[name][0][2:]), (name, pins[name])


def test_the_pythons_checked_are_those_tasks_py_and_the_readme_name():
    oldest, newest = (tasks.python_label(v) for v in (tasks.MIN_PYTHON, tasks.NEWEST_PYTHON))
    assert {p.rsplit(".", 1)[0] for p in PYTHONS} == {f"3.{m}" for m in range(
        tasks.MIN_PYTHON[1], tasks.NEWEST_PYTHON[1] + 1)}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"Python {oldest} to {newest}" in readme


def test_readme_starts_with_the_two_commands_and_points_nowhere_outside():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]
    # the commands that work on every OS, without make
    assert "python tasks.py report" in first_block and "python tasks.py test" in first_block
    assert "python tasks.py test" in (ROOT / ".ci" / "run").read_text()  # CI runs what it says
    assert "../" not in readme


# --- the source archive builds and tests on its own ---------------------------------------

def tracked_files() -> set[str] | None:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return {line for line in out.splitlines() if (ROOT / line).is_file()}


def test_the_source_zip_holds_every_file_git_tracks_as_the_working_tree_has_it(tmp_path,
                                                                              monkeypatch):
    repo = tmp_path / "checkout"
    (repo / "data").mkdir(parents=True)
    for name, text in ((".gitignore", "build/\n"), ("README.md", "committed\n"),
                       ("data/x.gz", "data\n")):
        (repo / name).write_text(text, encoding="utf-8")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    for command in (["init", "-q"], ["add", "."], ["commit", "-qm", "first"]):
        subprocess.run([*git, *command], cwd=repo, check=True, capture_output=True)
    (repo / "README.md").write_text("an edit not yet committed 5521\n", encoding="utf-8")
    (repo / "untracked.txt").write_text("not in the archive\n", encoding="utf-8")
    monkeypatch.setattr(tasks, "ROOT", repo)
    with zipfile.ZipFile(tasks.source_zip(tmp_path / "out")) as archive:
        files = {n for n in archive.namelist() if not n.endswith("/")}
        assert files == {".gitignore", "README.md", "data/x.gz"}
        assert archive.read("README.md") == b"an edit not yet committed 5521\n"
    assert (repo / "README.md").read_text(encoding="utf-8").startswith("an edit")  # untouched


@pytest.mark.skipif(os.name == "nt", reason="symbolic links need privileges on Windows")
def test_the_source_zip_replaces_only_its_own_archive(tmp_path):
    if tracked_files() is None:
        pytest.skip("not a git checkout")
    target = tasks.source_zip(tmp_path)
    tasks.source_zip(tmp_path)  # its own: replaced
    target.unlink()
    mine = tmp_path / "mine.zip"
    mine.write_bytes(b"my own archive")
    target.symlink_to(mine)
    with pytest.raises(tasks.UserError, match=r"is not an archive `python tasks\.py zip` wrote"):
        tasks.source_zip(tmp_path)
    target.unlink()
    target.write_bytes(b"my own archive")
    with pytest.raises(tasks.UserError, match=r"is not an archive `python tasks\.py zip` wrote"):
        tasks.source_zip(tmp_path)
    assert mine.read_bytes() == target.read_bytes() == b"my own archive"


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="symbolic links need privileges on Windows")
def test_the_unzipped_source_archive_runs_its_own_tests(tmp_path):
    """Unzipped, `python tasks.py test-quick` passes the tests that read the project's own
    files (its .venv is this one's, linked, so that nothing is installed)."""
    target = tasks.source_zip(tmp_path)
    unzipped = tmp_path / "unzipped"
    with zipfile.ZipFile(target) as archive:
        archive.extractall(unzipped)
    (unzipped / ".venv").symlink_to(tasks.VENV, target_is_directory=True)
    result = subprocess.run([sys.executable, "tasks.py", "test-quick", "-p", "no:cacheprovider",
                             "tests/test_project.py", "tests/test_notebook.py",
                             "tests/test_handin.py", "-k", "not unzipped"], cwd=unzipped,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and " failed" not in result.stdout
