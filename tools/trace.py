"""What a run read, recorded by an audit hook (standard library only): a build's kernel loads
this module as an IPython extension (before start-up files and cells), ``tools.parallel``'s
workers call ``install_if_tracing``, and every process of the run appends a JSON line per first
event to ``$ASSIGNMENT1_TRACE``: ["read", path, [mtime_ns, size] or null], ["write", path] or
["env", name]."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

VARIABLE = "ASSIGNMENT1_TRACE"
_SYSTEM = ("/proc/", "/sys/", "/dev/")


def stamp(path: str) -> tuple[int, int] | None:
    """A file's (mtime_ns, size), or None when there is none."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_mtime_ns, found.st_size


def install(trace_file: str) -> None:
    """Record this process's reads into ``trace_file`` from now on."""
    fd = os.open(trace_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    seen: set[tuple[str, str]] = set()
    busy = []

    def note(kind: str, name: str) -> None:
        if (kind, name) not in seen:
            seen.add((kind, name))
            line = [kind, name, stamp(name)] if kind == "read" else [kind, name]
            os.write(fd, (json.dumps(line) + "\n").encode("utf-8"))

    def hook(event: str, args: tuple) -> None:
        if busy or event not in ("open", "exec", "import", "os.rename", "os.replace"):
            return
        busy.append(event)
        try:
            if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
                path = os.path.abspath(os.fsdecode(args[0]))
                writes = (args[2] or 0) & (os.O_WRONLY | os.O_RDWR) or \
                    set(args[1] or "") & set("wax+")
                # a .pyc is a cached compile (its source is recorded); /proc and the like are
                # the system's state, not inputs
                if not path.endswith(".pyc") and not path.startswith(_SYSTEM):
                    note("write" if writes else "read", path)
            elif event == "exec" and os.path.isfile(getattr(args[0], "co_filename", "")):
                note("read", os.path.abspath(args[0].co_filename))
            elif event == "import" and args[1]:  # an extension module's shared library
                note("read", os.path.abspath(args[1]))
            elif event in ("os.rename", "os.replace"):
                note("write", os.path.abspath(os.fsdecode(args[1])))
        finally:
            busy.clear()

    class RecordingEnviron(type(os.environ)):
        def __getitem__(self, key: str) -> str:
            note("env", key)
            return super().__getitem__(key)

    sys.addaudithook(hook)
    os.environ.__class__ = RecordingEnviron


def install_if_tracing(ipython: object = None) -> None:
    """``install`` when this process belongs to a build that records its reads."""
    if VARIABLE in os.environ:
        install(os.environ[VARIABLE])


load_ipython_extension = install_if_tracing  # the build starts its kernel with this extension


def read(trace_file: Path) -> tuple[dict[str, tuple | None], set[str]]:
    """The run's inputs, {path: its ``stamp`` when first read}, without the files it wrote;
    and the environment variables it looked up."""
    reads: dict[str, tuple | None] = {}
    written, env = set(), set()
    for line in trace_file.read_text(encoding="utf-8").splitlines():
        kind, name, *stat = json.loads(line)
        if kind == "read":
            reads.setdefault(name, tuple(stat[0]) if stat[0] else None)
        else:
            (written if kind == "write" else env).add(name)
    return {path: stat for path, stat in reads.items() if path not in written}, env
