"""`python tasks.py handin-check`: the hand-in run as graders run it, at both ends of its range:
at each of ``ENDS``, in an environment in build/handin-envs/ and beside a stand-in for the
course's mnist.py, what a grader runs (``RUNS``) must succeed and print the same results."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import NamedTuple

from tools import cli
from tools.cli import UserError, venv_python
from tools.config import PROJECT


class End(NamedTuple):
    name: str
    python: str  # major.minor
    requirements: tuple[str, ...]


ENDS = (End("oldest", "3.8", ("numpy==1.20.3", "matplotlib==3.3.4", "pillow==8.2.0")),
        End("newest", "3.13", ("numpy", "matplotlib")))
#: (script and arguments, timeout in seconds): what a grader runs, Tasks 3-4 shortened.
RUNS = ((["task2a.py"], 300), (["task3a.py"], 600), (["task2.py"], 600),
        (["task3.py", "--epochs", "5"], 600))
_NUMBER = re.compile(r"[-+]?\d+(?:\.(\d+))?(?:e[-+]?\d+)?")
_TIMING = re.compile(r"[-+]?\d+(?:\.\d+)?\s*s\b")


def find_python(end: End) -> str:
    """An interpreter for ``end``, or UserError saying how to get one."""
    variable = f"HANDIN_PYTHON_{end.name.upper()}"
    if os.environ.get(variable):
        if not shutil.which(os.environ[variable]):
            raise UserError(f"handin-check: {variable}={os.environ[variable]} is not a program: "
                            f"point it at a python executable, or unset it to have one found.")
        return shutil.which(os.environ[variable])
    candidates = [shutil.which(f"python{end.python}")]
    if shutil.which("pyenv"):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
        for version in sorted(Path(root, "versions").glob(f"{end.python}.*"), reverse=True,
                              key=lambda p: [int(x) for x in re.findall(r"\d+", p.name)]):
            candidates[:0] = [version / "bin" / "python", version / "python.exe"]
    if shutil.which("py"):  # the Windows launcher
        candidates.append(subprocess.run(["py", f"-{end.python}", "-c", "import sys; print("
                                          "sys.executable)"], capture_output=True,
                                         text=True).stdout.strip())
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise UserError(f"handin-check: no Python {end.python} found for the {end.name} end of the "
                    f"hand-in's range. Install it (pyenv install {end.python}, or conda create "
                    f"-n py{end.python} python={end.python}, or the python.org installer) or "
                    f"point {variable} at its python executable, then run again.")


def python_version(python: str | Path) -> str:
    """An interpreter's full version ("3.12.1"); UserError when it does not run."""
    try:
        result = subprocess.run([str(python), "-c", "import platform; print(platform."
                                 "python_version())"], capture_output=True, text=True,
                                timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"handin-check: {python} does not run as Python "
                        f"({getattr(exc, 'strerror', None) or exc}).") from exc
    if result.returncode != 0 or not result.stdout.strip():
        raise UserError(f"handin-check: {python} does not run as Python (exit "
                        f"{result.returncode}).")
    return result.stdout.strip()


def environment(end: End, envs: Path) -> Path:
    """``end``'s environment, made by the interpreter ``find_python`` gives now; kept while
    that interpreter and the requirements stay, rebuilt (saying why) otherwise."""
    folder, interpreter = envs / end.name, find_python(end)
    python, stamp = venv_python(folder), folder / "handin-check.txt"
    made_with = f"{Path(interpreter).absolute()} (Python {python_version(interpreter)})"
    wanted = "\n".join([made_with, *end.requirements]) + "\n"
    built = stamp.read_text(encoding="utf-8") if stamp.is_file() else None
    reason = "an earlier build of it did not finish" if folder.exists() else None
    if built == wanted:
        try:
            python_version(python)
            return python
        except UserError:
            reason = "it no longer runs"
    elif built:
        was = built.partition("\n")[0]
        reason = f"it was built with {was}, not {made_with}" if was != made_with \
            else "its requirements changed"
    if reason:
        print(f"handin-check: rebuilding the {end.name} environment: {reason}", flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    print(f"handin-check: building the {end.name} environment ({interpreter}: "
          f"{' '.join(end.requirements)})", flush=True)
    for command in ([interpreter, "-m", "venv", str(folder)],
                    [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                     "--only-binary", ":all:", *end.requirements]):
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            raise UserError(f"handin-check: could not build the {end.name} environment: "
                            f"{' '.join(command)} failed:\n{result.stderr.strip()[-2000:]}")
    stamp.write_text(wanted, encoding="utf-8")
    return python


def versions(python: Path) -> str:
    """What ``python`` runs: Python, NumPy and Matplotlib, with their versions."""
    result = subprocess.run([str(python), "-c", "import platform, numpy, matplotlib; print("
                             "'Python', platform.python_version(), 'NumPy', numpy.__version__, "
                             "'Matplotlib', matplotlib.__version__)"], capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise UserError(f"handin-check: {python} cannot import NumPy and Matplotlib: delete "
                        f"{python.parents[1]} and run again.")
    return result.stdout.strip()


def described(end: End, ran: str) -> str:
    """``ran`` (``versions``), noting an interpreter that is not the end's own version."""
    if ran.split()[1].split(".")[:2] == end.python.split("."):
        return ran
    return (f"{ran} (from HANDIN_PYTHON_{end.name.upper()}; the {end.name} end is normally "
            f"Python {end.python})")


def run_handin(python: Path, handin_zip: Path, work: Path) -> dict[str, str]:
    """Unzip the hand-in into ``work`` beside the stand-in mnist.py and the data, and run
    every script there; script -> stdout."""
    with zipfile.ZipFile(handin_zip) as archive:
        archive.extractall(work)
    shutil.copy(Path(__file__).with_name("course_mnist.py"), work / "mnist.py")
    shutil.copytree(PROJECT.root / "data" / "mnist", work / "data")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(MPLBACKEND="Agg", PYTHONIOENCODING="utf-8")
    outputs = {}
    for arguments, timeout in RUNS:
        label, started = " ".join(arguments), time.perf_counter()
        try:
            result = subprocess.run([str(python), *arguments], cwd=work, env=env,
                                    capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise UserError(f"handin-check: python {label} took longer than {timeout} s "
                            f"with {python}") from exc
        if result.returncode != 0:
            raise UserError(f"handin-check: python {label} failed (exit {result.returncode}) "
                            f"with {python}:\n{result.stderr.strip()[-3000:]}")
        print(f"  python {label:<24} ok  {time.perf_counter() - started:5.1f} s", flush=True)
        outputs[label] = result.stdout.replace(str(work), "<handin>")
    return outputs


def differences(first: str, second: str, label: str) -> list[str]:
    """Lines whose text differs, or whose numbers differ by more than one unit of their last
    printed decimal (whole numbers must be equal). The gradient checks' errors (rounding
    noise below their tolerance) and timings are not compared."""
    a_lines, b_lines = first.splitlines(), second.splitlines()
    if len(a_lines) != len(b_lines):
        return [f"{label}: {len(a_lines)} lines against {len(b_lines)}"]
    found = []
    for a, b in zip(a_lines, b_lines, strict=True):
        a, b = _TIMING.sub("<time>", a), _TIMING.sub("<time>", b)
        if label.endswith("a.py"):
            a, b = _NUMBER.sub("<n>", a), _NUMBER.sub("<n>", b)
        same = _NUMBER.sub("<n>", a) == _NUMBER.sub("<n>", b) and all(
            abs(float(x.group(0)) - float(y.group(0))) <= (10.0 ** -d * 1.01 if d else 0.0)
            for x, y in zip(_NUMBER.finditer(a), _NUMBER.finditer(b), strict=False)
            for d in [max(len(x.group(1) or ""), len(y.group(1) or ""))])
        if not same:
            found.append(f"{label}:\n    {a}\n    {b}")
    return found


def main() -> int:
    cli.tolerant_console()
    parser = argparse.ArgumentParser(prog="python tasks.py handin-check",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--zip", type=Path, help="the hand-in zip",
                        default=PROJECT.build / "handin" / "assignment_code.zip")
    parser.add_argument("--envs", type=Path, default=PROJECT.build / "handin-envs",
                        help="where the environments are kept")
    args = parser.parse_args()
    try:
        if not args.zip.is_file():
            raise UserError(f"handin-check: {args.zip} is missing: run `python tasks.py "
                            f"report` and `python tasks.py handin` first.")
        results, ran = {}, {}
        for end in ENDS:
            python = environment(end, args.envs)
            ran[end.name] = described(end, versions(python))
            print(f"{end.name}: {ran[end.name]}", flush=True)
            with tempfile.TemporaryDirectory(prefix=f"handin-{end.name}-") as tmp:
                results[end.name] = run_handin(python, args.zip, Path(tmp))
        found = [line for label in results["oldest"] for line in
                 differences(results["oldest"][label], results["newest"][label], label)]
        if found:
            raise UserError("handin-check: the two ends print different results:\n"
                            + "\n".join(found))
    except UserError as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("handin-check: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"handin-check: {cli.describe(exc)}", file=sys.stderr)
        return 1
    print(f"handin-check: {args.zip.name} runs and gives the same results on both ends "
          f"({'; '.join(f'{name}: {what}' for name, what in ran.items())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
