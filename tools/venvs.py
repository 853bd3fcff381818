"""Virtual environments on any OS: where a venv keeps its interpreter."""

from __future__ import annotations

import os
from pathlib import Path


def venv_python(folder: Path, nt: bool | None = None) -> Path:
    """The interpreter of the virtual environment in ``folder``: ``Scripts\\python.exe`` on
    Windows, ``bin/python`` elsewhere (``nt`` overrides the OS, for tests)."""
    nt = os.name == "nt" if nt is None else nt
    return Path(folder) / ("Scripts/python.exe" if nt else "bin/python")
