"""The execution cache: the outputs of the notebook's last complete run, and what they came from.

An entry (``build/report-cache/full`` or ``.../quick``: the two modes never mix) holds the
outputs of every code cell, the files the notebook wrote (figures, metrics) and the key of the
run: a SHA-256 over everything that can change what the code cells compute (``key_parts``).
A build whose key equals the entry's reuses the outputs with the notebook's current Markdown
instead of starting a kernel; any difference, and any entry that is damaged or incomplete, is a
miss, so the notebook runs as before. Entries are written whole (a temporary folder renamed
into place), only after a complete run.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from output_folder import FolderError, listing, sha256_file

#: Bump when the entry's layout or the key's recipe changes: older entries become misses.
FORMAT = 1
#: The hand-in modules, always part of the key, imported or not.
HANDIN_MODULES = ["task2.py", "task2a.py", "task3.py", "task3a.py", "trainer.py", "utils.py",
                  "mnist.py"]
#: Environment variables that can change what the code computes (by prefix). The title page's
#: and those the build sets itself are left out: quick mode is a part of its own.
ENV_PREFIXES = ("ASSIGNMENT1_", "MNIST_", "OPENBLAS", "GOTO", "OMP_", "MKL_", "BLIS_",
                "VECLIB_", "NUMEXPR_", "NPY_", "NUMPY_", "MPL", "MATPLOTLIB", "PYTHON",
                "IPYTHON", "JUPYTER_PATH")
ENV_IGNORED = {"ASSIGNMENT1_GROUP", "ASSIGNMENT1_AUTHORS", "ASSIGNMENT1_QUICK",
               "ASSIGNMENT1_OUT", "ASSIGNMENT1_BUILD", "PYTHONIOENCODING"}
BUILDER = Path(__file__).resolve().parent / "build_report.py"


@dataclass(frozen=True)
class Key:
    digest: str
    parts: dict[str, str]

    @property
    def short(self) -> str:
        return self.digest[:12]


def code_sources(nb: dict) -> list[str]:
    """The code cells' sources, in order (a source may be stored as a list of lines)."""
    return [source if isinstance(source := cell.get("source", ""), str) else "".join(source)
            for cell in nb["cells"] if cell.get("cell_type") == "code"]


_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+([A-Za-z_][\w.]*)[ \t]+import\b|import[ \t]+([^\n#;]+))",
                     re.MULTILINE)


def _imports(source: str) -> set[str]:
    """Top-level names a cell or module may import: every ``import x`` and ``from x import``
    line, wherever it stands (a line in a string counts too: a module too many only
    over-invalidates). Relative imports name no top-level module."""
    found = set()
    for module, modules in _IMPORT.findall(source):
        names = [module] if module else [part.split()[0] for part in
                                         modules.strip("() \\").split(",") if part.split()]
        found |= {name.split(".")[0] for name in names}
    return found - {""}


def project_modules(root: Path, sources: list[str]) -> list[Path]:
    """The project's .py files the code imports, directly or through each other, and the
    hand-in modules: modules in ``root`` and every file of packages in it."""
    found: set[Path] = {root / name for name in HANDIN_MODULES if (root / name).is_file()}
    pending = set().union(*map(_imports, sources)) if sources else set()
    for path in found:
        pending |= _imports(path.read_text(encoding="utf-8", errors="replace"))
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        if (root / f"{name}.py").is_file():
            files = [root / f"{name}.py"]
        elif (root / name / "__init__.py").is_file():
            files = sorted((root / name).rglob("*.py"))
        else:
            continue
        for path in files:
            if path not in found:
                found.add(path)
                pending |= _imports(path.read_text(encoding="utf-8", errors="replace"))
    return sorted(found)


def data_files(root: Path) -> list[Path]:
    """The data the code reads: everything under data/, and $MNIST_DIR when set."""
    folders = [root / "data"]
    if os.environ.get("MNIST_DIR"):
        folders.append(Path(os.environ["MNIST_DIR"]))
    return sorted(p for folder in folders if folder.is_dir() for p in folder.rglob("*")
                  if p.is_file())


def installed_packages() -> list[str]:
    """The distributions Python can import ("numpy-2.3.1" ...), from their metadata folders."""
    names = set()
    for entry in sys.path:
        if os.path.isdir(entry):
            names |= {name.rsplit(".", 1)[0] for name in os.listdir(entry)
                      if name.endswith((".dist-info", ".egg-info"))}
    return sorted(names)


def blas() -> str:
    """The BLAS and OpenMP libraries NumPy loads, their versions, kernels and threads."""
    try:
        import numpy  # noqa: F401  (loads the libraries threadpoolctl inspects)
        from threadpoolctl import threadpool_info
    except ImportError as exc:
        return f"unknown ({exc})"
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} kernel "
                     f"{i.get('architecture')}, {i.get('num_threads')} threads "
                     f"({Path(i.get('filepath', '')).name})" for i in threadpool_info())


def config_files(root: Path) -> list[Path]:
    """Files a kernel reads at start that can change results: matplotlibrc, IPython's
    start-up scripts and kernel configuration."""
    home = Path.home()
    candidates = [root / "matplotlibrc",
                  Path(os.environ.get("XDG_CONFIG_HOME", home / ".config")) / "matplotlib"
                  / "matplotlibrc", home / ".matplotlib" / "matplotlibrc"]
    for variable in ("MATPLOTLIBRC", "MPLCONFIGDIR"):
        if os.environ.get(variable):
            base = Path(os.environ[variable])
            candidates.append(base if base.is_file() else base / "matplotlibrc")
    profile = Path(os.environ.get("IPYTHONDIR", home / ".ipython")) / "profile_default"
    candidates += [profile / name for name in ("ipython_config.py", "ipython_kernel_config.py",
                                               "ipython_config.json",
                                               "ipython_kernel_config.json")]
    if (profile / "startup").is_dir():
        candidates += sorted((profile / "startup").iterdir())
    return [p for p in candidates if p.is_file()]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _name(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def key_parts(root: Path, nb: dict, quick: bool) -> dict[str, str]:
    """Everything that can change what the code cells compute, each named as a miss reports
    it: a hash, a version or a value."""
    sources = code_sources(nb)
    parts = {"the cache format": str(FORMAT), "quick mode": "on" if quick else "off",
             "the code cells": _sha(json.dumps(sources).encode("utf-8")),
             "the build (tools/build_report.py)": sha256_file(BUILDER)}
    for path in project_modules(root, sources):
        parts[_name(path, root)] = sha256_file(path)
    for path in data_files(root):
        parts[_name(path, root)] = sha256_file(path)
    lock = root / "requirements.lock"
    parts["requirements.lock"] = sha256_file(lock) if lock.is_file() else "none"
    parts["Python"] = f"{platform.python_implementation()} {sys.version} on {platform.machine()}"
    packages = installed_packages()
    parts["the installed packages"] = _sha("\n".join(packages).encode("utf-8"))
    for dist, label in (("numpy", "NumPy"), ("matplotlib", "Matplotlib")):
        parts[label] = next((p.split("-", 1)[1] for p in packages
                             if p.split("-", 1)[0].lower() == dist), "not installed")
    parts["the BLAS library"] = blas()
    for variable in sorted(os.environ):
        if variable.startswith(ENV_PREFIXES) and variable not in ENV_IGNORED:
            parts[f"${variable}"] = os.environ[variable]
    for path in config_files(root):
        parts[str(path)] = sha256_file(path)
    return parts


def compute_key(root: Path, nb: dict, quick: bool) -> Key:
    parts = key_parts(root, nb, quick)
    return Key(_sha(json.dumps(parts, sort_keys=True).encode("utf-8")), parts)


def difference(old: dict[str, str], new: dict[str, str]) -> str:
    """The first thing that differs between two keys' parts, as a clause."""
    for name in new:
        if name not in old:
            return f"{name} is new since the cached run"
        if old[name] != new[name]:
            return f"{name} changed since the cached run"
    gone = next((name for name in old if name not in new), None)
    return f"{gone} is gone since the cached run" if gone else "the key differs"


# --- Entries ------------------------------------------------------------------------------

def entry_folder(cache: Path, quick: bool) -> Path:
    return cache / ("quick" if quick else "full")


@dataclass(frozen=True)
class Entry:
    folder: Path
    data: dict[str, Any]

    @property
    def products(self) -> Path:
        """The files the notebook wrote in that run (figures, metrics)."""
        return self.folder / "products"


def load(cache: Path, key: Key, nb: dict) -> tuple[Entry | None, str]:
    """The entry for ``key`` (None on a miss) and, on a miss, why, as a clause. A damaged or
    incomplete entry is a miss, never an error."""
    folder = entry_folder(cache, key.parts["quick mode"] == "on")
    path = folder / "entry.json"
    if not path.is_file():
        return None, "no earlier run is cached"
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
        if data.get("format") != FORMAT:
            return None, "the cached run comes from another version of the build"
        if data["key"] != key.digest:
            return None, difference(data["parts"], key.parts)
        cells = data["cells"]
        if len(cells) != len(code_sources(nb)) or not all(
                isinstance(c["outputs"], list) for c in cells):
            return None, "the cached run is incomplete"
        if listing(folder / "products") != data["files"]:
            return None, "the cached run's files are damaged or incomplete"
    except (OSError, ValueError, KeyError, TypeError, AttributeError, FolderError):
        return None, "the cached run is damaged"
    return Entry(folder, data), ""


def merged(nb: dict, entry: Entry) -> dict:
    """``nb`` (its current Markdown and cell metadata) with the entry's outputs."""
    result = copy.deepcopy(nb)
    code = [cell for cell in result["cells"] if cell.get("cell_type") == "code"]
    for cell, cached in zip(code, entry.data["cells"], strict=True):
        cell["outputs"] = cached["outputs"]
        cell["execution_count"] = cached["execution_count"]
    result.setdefault("metadata", {}).update(entry.data["metadata"])
    return result


def store(cache: Path, key: Key, executed: dict, products: Path) -> None:
    """Keep the outputs of a complete run and the files it wrote as the entry for ``key``,
    replacing the mode's previous entry whole."""
    cache.mkdir(parents=True, exist_ok=True)
    for stale in [*cache.glob(".tmp-*"), *cache.glob(".old-*")]:  # of killed builds
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cache))
    try:
        shutil.copytree(products, tmp / "products", symlinks=True)
        cells = [{"execution_count": cell.get("execution_count"),
                  "outputs": cell.get("outputs", [])}
                 for cell in executed["cells"] if cell.get("cell_type") == "code"]
        data = {"format": FORMAT, "key": key.digest, "parts": key.parts, "cells": cells,
                "metadata": {k: v for k, v in executed.get("metadata", {}).items()
                             if k == "language_info"},
                "files": listing(tmp / "products")}
        (tmp / "entry.json").write_text(json.dumps(data), encoding="utf-8")
        final = entry_folder(cache, key.parts["quick mode"] == "on")
        if final.exists():
            retired = Path(tempfile.mkdtemp(prefix=".old-", dir=cache))
            os.replace(final, retired / "entry")
            shutil.rmtree(retired, ignore_errors=True)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
