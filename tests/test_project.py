"""Project hygiene a newcomer relies on: a portable lock, a README that stays inside the repo."""

from __future__ import annotations

import re

from conftest import ROOT


def test_the_lock_pins_every_requirement_and_names_no_local_paths():
    lock = (ROOT / "requirements.lock").read_text()
    assert "file://" not in lock and "--find-links" not in lock and "--extra-index-url" not in lock
    pinned = {line.split("==")[0].lower().replace("_", "-")
              for line in lock.splitlines() if "==" in line and not line.startswith("#")}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line or "python_version < \"3.11\"" in line:
            continue  # comments, and a backport this Python does not need
        name = re.split(r"[<>=!~;\[ ]", line)[0].lower().replace("_", "-")
        assert name in pinned, f"{name} is in requirements.txt but not pinned in the lock"


def test_readme_starts_with_the_two_commands_and_points_nowhere_outside():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]
    # the commands that work on every OS, without make
    assert "python tasks.py report" in first_block and "python tasks.py test" in first_block
    assert "python tasks.py test" in (ROOT / ".ci" / "run").read_text()  # CI runs what it says
    assert "../" not in readme
