"""`python tasks.py report`: run assignment1.ipynb in a fresh kernel (or reuse the cache's
outputs when nothing the run read has changed) and swap the report's whole set into the output
folder (default build/): assignment1.pdf, .html, .ipynb, the record assignment1.json, and the
notebook's figures/ and metrics.json. One build at a time per checkout."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import filelock

from tools import cache, cli, execute, output, render
from tools.cli import StopSignals, UserError
from tools.config import HANDIN_FILES, PROJECT, Project, title_page

RECORD = "assignment1.json"
BUILDER = "assignment1 tools.report"
OWN_PRODUCTS = ("assignment1.ipynb", "assignment1.html", "assignment1.pdf")
#: Files a report is built from whether or not its run read them (the hand-in compares).
ALWAYS_SOURCES = (*HANDIN_FILES, "mnist.py")


@contextlib.contextmanager
def locked(project: Project) -> Iterator[None]:
    """Hold the checkout's build lock (filelock on build/.build.lock, the pid in .build.pid)
    while building; UserError when another build holds it or build/ cannot be written."""
    lock = filelock.FileLock(project.build / ".build.lock", blocking=False)
    try:
        project.build.mkdir(parents=True, exist_ok=True)
        lock.acquire()
        (project.build / ".build.pid").write_text(str(os.getpid()), encoding="ascii")
    except filelock.Timeout:
        raise UserError(f"another build is running here{cli.build_holder(project.build) or ''}: "
                        f"wait for it to finish or stop it, then build again") from None
    except OSError as exc:
        lock.release()
        raise UserError(f"{project.build} cannot be written ({cli.describe(exc)}): builds keep "
                        f"their lock and the execution cache there; make the checkout "
                        f"writable, or work in a writable copy of it") from exc
    try:
        yield
    finally:
        lock.release()


def outputs(project: Project, nb: dict, quick: bool, fresh: bool, timeout: int,
            products: Path, say: Callable[[str], None]) -> tuple[dict, bool, dict[str, str]]:
    """(the executed notebook, from the cache?, the checkout's files it was built from: digests):
    the cache's entry if no input changed and not ``fresh``, else a run, which is stored."""
    env = execute.environment(products, quick)
    entry, why, inputs = (None, "--fresh", {}) if fresh else \
        cache.lookup(project.cache, quick, nb, env, project.root)
    if entry is not None:
        say("notebook unchanged since the last run: reused its outputs; use --fresh to run it "
            "again")
        shutil.copytree(entry.folder / "products", products, dirs_exist_ok=True)
        executed, reads = cache.merged(nb, entry), entry.data["files"]
    else:
        say(f"executing the notebook ({why})")
        started = time.perf_counter()
        executed, stats, env_names = execute.run(nb, project.root, products, quick, timeout)
        reads = list(stats)
        inputs = cache.inputs(nb, reads, list(env_names), env, project.root)
        note = "its outputs are cached for the next build"
        changed = cache.changed_while_running(stats)
        try:
            if changed:
                note = f"not cached: {changed} changed while it ran"
            else:
                cache.store(project.cache, quick, executed, products, reads, list(env_names),
                            inputs)
        except OSError as exc:
            note = f"not cached: {cli.describe(exc)}"
        say(f"executed the notebook in {time.perf_counter() - started:.1f} s ({note})")
    names = {Path(f).relative_to(project.root).as_posix() for f in reads
             if Path(f).is_relative_to(project.root)}
    names = {n for n in names if n.split("/")[0] not in (".venv", "build")} | {*ALWAYS_SOURCES}
    return executed, entry is not None, {
        n: inputs.get(n) or cache.input_digest(project.root / n) for n in sorted(names)}


def build(project: Project, out_dir: Path, notebook: Path, config: Path | None, quick: bool,
          fresh: bool, timeout: int, signals: StopSignals, state: dict) -> None:
    """Execute (or reuse) the notebook, render the report, and swap the whole set into
    ``out_dir``; ``state`` says what the folder holds if this raises."""
    title = title_page(config or project.root / "report.toml", required=config is not None)
    nb, raw = execute.read_notebook(notebook)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} exists and is not a folder: the report is built into a "
                        f"folder of that name. Move or delete the file, or pass --out "
                        f"OTHER_FOLDER.")
    record = {"builder": BUILDER, "title": title.group, "authors": title.authors,
              "placeholder": title.placeholder, "quick": quick}
    with locked(project):
        out_dir.mkdir(parents=True, exist_ok=True)
        with output.staged(out_dir, RECORD, record, [*OWN_PRODUCTS, "figures", "metrics.json"],
                           signals, state) as new:
            state["started"] = True
            executed, cached, digests = outputs(project, nb, quick, fresh, timeout, new, print)
            if set(OWN_PRODUCTS) & {p.name for p in new.iterdir()}:
                raise UserError("the notebook wrote a file named like the build's own products "
                                f"({', '.join(OWN_PRODUCTS)}): rename it in the notebook")
            output.check_ours(out_dir, RECORD, BUILDER, [p.name for p in new.iterdir()])
            with tempfile.TemporaryDirectory(prefix="assignment1-render-") as work:
                started = time.perf_counter()
                page, pdf = render.render(executed, title, Path(work))
                seconds = time.perf_counter() - started
            (new / "assignment1.ipynb").write_text(json.dumps(
                executed, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
            (new / "assignment1.html").write_text(page, encoding="utf-8")
            (new / "assignment1.pdf").write_bytes(pdf)
            record.update(cached=cached, pdf_sha256=cli.sha256(pdf), sources={
                **digests, "assignment1.ipynb": cli.sha256(raw),
                "report.toml": cache.input_digest(config or project.root / "report.toml")})
    print(f"wrote {out_dir / 'assignment1.html'}")
    print(f"wrote {out_dir / 'assignment1.pdf'} ({len(pdf) / 1e6:.1f} MB, A4, in {seconds:.1f} "
          f"s; {title.group}; {', '.join(title.authors)})")
    with contextlib.suppress(Exception):  # a font scan that fails only loses the warning
        unshown = render.missing_glyphs(title.group + "".join(title.authors))
        if unshown:
            print(f"warning: no installed font has {' '.join(unshown)} (from report.toml): "
                  f"the title page cannot show them; install a font that covers them",
                  file=sys.stderr)
    if title.placeholder:
        print("note: the title page shows placeholders: put your group and names in "
              "report.toml (python tasks.py handin refuses it as it is)", file=sys.stderr)


def main(argv: list[str] | None = None, project: Project = PROJECT) -> int:
    """The command line; its exit code. A stop signal is passed on once the build has
    stopped (KeyboardInterrupt after Ctrl-C), so that whatever runs the build stops too."""
    cli.tolerant_console()
    parser = argparse.ArgumentParser(prog="python tasks.py report",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=project.build, help="output folder")
    parser.add_argument("--quick", action="store_true",
                        help="a reduced run (few softmax epochs) for trying the pipeline")
    parser.add_argument("--fresh", action="store_true",
                        help="execute the notebook even if its cached outputs are current")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    parser.add_argument("--config", type=Path, help="the title page (default: report.toml)")
    parser.add_argument("--notebook", type=Path, default=project.root / "assignment1.ipynb",
                        help="another copy of the notebook (its code runs in the checkout)")
    args = parser.parse_args(argv)
    if args.timeout < 1:
        parser.error(f"--timeout must be a positive number of seconds, not {args.timeout}")
    out_dir = Path.cwd() / args.out
    return output.command(lambda signals, state: build(
        project, out_dir, Path.cwd() / args.notebook, args.config and Path.cwd() / args.config,
        args.quick, args.fresh, args.timeout, signals, state), out_dir, "report", "report")


def export_pdf(nb: dict, folder: Path, *, quick: bool, fresh: bool, timeout: int,
               say: Callable[[str], None]) -> bytes:
    """The Report_PDF exporter's PDF of ``nb`` (in ``folder``), built in its own checkout: run
    there (its modules, lock and cache) if it has not run, else exported as it is."""
    project = Project.around(folder)
    say(f"building the report in the notebook's checkout {project.root} (its modules, "
        f"execution cache and build folder)")
    title = title_page(project.root / "report.toml")
    if not all(c.get("execution_count") is not None for c in nb["cells"]
               if c.get("cell_type") == "code" and "".join(c.get("source", "")).strip()):
        with locked(project), tempfile.TemporaryDirectory(prefix="assignment1-export-") as tmp:
            nb = outputs(project, nb, quick, fresh, timeout, Path(tmp), say)[0]
    return render.pdf_bytes(nb, title)


if __name__ == "__main__":
    cli.run_main(main)
