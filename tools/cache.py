"""The execution cache: the last complete run's outputs (build/report-cache/full or quick),
keyed by what that run read; any input changed, or an entry whose seal fails, is a named miss."""

from __future__ import annotations

import json
import os
import shutil
import site
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

from tools import trace
from tools.cli import sha256

#: Bump when an entry's layout or the inputs' recipe changes: older entries become misses.
FORMAT = 2
TOOLS = Path(__file__).resolve().parent
#: Read by native libraries (BLAS, OpenMP) and the C locale, where no audit hook sees it.
NATIVE_ENV = ("OPENBLAS", "GOTO", "OMP_", "MKL_", "BLIS_", "VECLIB_", "NUMEXPR_", "LANG",
              "LC_")
#: Looked up by a run without changing what it computes: where it writes, temporary folders.
IGNORED_ENV = {"ASSIGNMENT1_OUT", trace.VARIABLE, "HOME", "TMPDIR", "TEMP", "TMP",
               "IPYKERNEL_CELL_NAME"}


class Entry(NamedTuple):
    folder: Path  # its products/ holds the files the notebook wrote (figures, metrics)
    data: dict


def input_digest(path: str | Path) -> str:
    """A file's SHA-256, or "absent"."""
    try:
        return sha256(Path(path).read_bytes())
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return "absent"


def unseen_files(root: Path) -> list[Path]:
    """What a run reads where no hook sees it: ``.pth`` files, matplotlibrc wherever matplotlib
    looks, IPython's configuration and its ``*.py``/``*.ipy`` start-up files (all it runs)."""
    home = Path.home()
    found = [p for folder in (*site.getsitepackages(), site.getusersitepackages())
             for p in sorted(Path(folder).glob("*.pth"))]
    config = Path(os.environ.get("XDG_CONFIG_HOME", home / ".config"))
    found += [root / "matplotlibrc", config / "matplotlib" / "matplotlibrc",
              home / ".matplotlib" / "matplotlibrc"]
    found += [Path(os.environ[v], *f) for v in ("MATPLOTLIBRC", "MPLCONFIGDIR")
              if os.environ.get(v) for f in ((), ("matplotlibrc",))]
    profile = Path(os.environ.get("IPYTHONDIR", home / ".ipython")) / "profile_default"
    found += [profile / f"ipython{kind}_config.{ext}" for kind in ("", "_kernel")
              for ext in ("py", "json")]
    return found + sorted(p for p in (profile / "startup").glob("*") if p.suffix in (".py", ".ipy"))


def inputs(nb: dict, files: list[str], env_names: list[str], env: dict[str, str],
           root: Path) -> dict[str, str]:
    """Everything the run's results came from, each named as a miss reports it."""
    code = [("".join(c.get("source", "")), c.get("metadata", {}).get("tags", []))
            for c in nb["cells"] if c.get("cell_type") == "code"]  # nbclient skips by tag
    installed = sorted(name for entry in sys.path if os.path.isdir(entry)
                       for name in os.listdir(entry) if name.endswith((".dist-info", ".egg-info")))
    parts = {"the cache format": str(FORMAT),
             "the code cells": sha256(json.dumps(code).encode()),
             "the builder (tools/execute.py, tools/trace.py)": sha256(
                 (input_digest(TOOLS / "execute.py") + input_digest(TOOLS / "trace.py")).encode()),
             "Python": f"{sys.version} at {os.path.realpath(sys.executable)}",
             "the installed packages": sha256(" ".join(installed).encode())}
    for path in sorted({*files, *map(os.path.abspath, unseen_files(root))}):
        name = Path(path).relative_to(root).as_posix() if Path(path).is_relative_to(root) \
            else path
        parts[name] = input_digest(path)
    names = {*env_names, *(n for n in env if n.startswith(NATIVE_ENV))} - IGNORED_ENV
    parts.update((f"${name}", env.get(name, "unset")) for name in sorted(names))
    return parts


def seal(folder: Path) -> str:
    """A digest of everything in an entry but the seal."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "seal")
    return sha256(json.dumps([(p.relative_to(folder).as_posix(), input_digest(p))
                              for p in files]).encode())


def entry_folder(cache: Path, quick: bool) -> Path:
    return cache / ("quick" if quick else "full")


def lookup(cache: Path, quick: bool, nb: dict, env: dict[str, str],
           root: Path) -> tuple[Entry | None, str, dict[str, str]]:
    """(the entry, "", its inputs as they are now) on a hit; (None, why, {}) on a miss. A
    damaged or edited entry is a miss, never an error."""
    folder = entry_folder(cache, quick)
    if not (folder / "entry.json").is_file():
        return None, "no earlier run is cached", {}
    try:
        data = json.loads((folder / "entry.json").read_text(encoding="utf-8"))
        if (folder / "seal").read_text(encoding="ascii") != seal(folder):
            return None, "the cached run was changed after it was stored", {}
        if data["format"] != FORMAT:
            return None, "the cached run comes from another version of the build", {}
        parts = inputs(nb, data["files"], data["env"], env, root)
        if parts != data["inputs"]:
            return None, next((f"{name} changed since the cached run" for name, value in
                               parts.items() if data["inputs"].get(name) != value),
                              "the inputs differ"), {}
        if len(data["cells"]) != sum(c.get("cell_type") == "code" for c in nb["cells"]):
            return None, "the cached run is incomplete", {}
    except (OSError, ValueError, KeyError, TypeError):
        return None, "the cached run is damaged", {}
    return Entry(folder, data), "", parts


def merged(nb: dict, entry: Entry) -> dict:
    """``nb`` (its current Markdown and cell metadata) with the entry's outputs."""
    result = json.loads(json.dumps(nb))
    code = [cell for cell in result["cells"] if cell.get("cell_type") == "code"]
    for cell, cached in zip(code, entry.data["cells"], strict=True):
        cell["outputs"], cell["execution_count"] = cached["outputs"], cached["execution_count"]
    result.setdefault("metadata", {}).update(entry.data["metadata"])
    return result


def changed_while_running(reads: dict[str, tuple | None]) -> str | None:
    """An input that is not as the run found it (edited, or edited and undone), if any."""
    return next((path for path, stat in reads.items() if trace.stamp(path) != stat), None)


def store(cache: Path, quick: bool, executed: dict, products: Path, reads: list[str],
          env_names: list[str], parts: dict[str, str]) -> None:
    """Keep a complete run as the mode's entry, replacing the previous one whole."""
    cache.mkdir(parents=True, exist_ok=True)
    for stale in cache.glob(".tmp-*"):  # of builds killed while storing
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cache))
    try:
        shutil.copytree(products, tmp / "products")
        cells = [{"execution_count": cell.get("execution_count"),
                  "outputs": cell.get("outputs", [])}
                 for cell in executed["cells"] if cell.get("cell_type") == "code"]
        metadata = {k: v for k, v in executed.get("metadata", {}).items() if k == "language_info"}
        (tmp / "entry.json").write_text(json.dumps(
            {"format": FORMAT, "inputs": parts, "files": sorted(reads), "env": sorted(env_names),
             "cells": cells, "metadata": metadata}), encoding="utf-8")
        (tmp / "seal").write_text(seal(tmp), encoding="ascii")
        final = entry_folder(cache, quick)
        if final.exists():
            os.replace(final, tmp / "retired")
        os.replace(tmp, final)
        shutil.rmtree(final / "retired", ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
