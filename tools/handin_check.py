"""The hand-in where it is graded: run the unzipped hand-in at both ends of its supported range.

The course's graders run the hand-in in the course's environment (conda ``python=3.8`` with
Anaconda: NumPy 1.20, Matplotlib 3.3); students may run it on the newest Python and NumPy.
This check builds a throwaway virtual environment for each end (kept in
``build/handin-envs/`` and reused while its requirements are unchanged):

    oldest   Python 3.8,  numpy==1.20.3, matplotlib==3.3.4, pillow==8.2.0
    newest   Python 3.13, the newest numpy and matplotlib

unzips ``build/handin/assignment_code.zip`` into a temporary folder for each, beside a
stand-in for the course's mnist.py (``course_mnist.py``: only ``load()``) and the four MNIST
files in ``data/``, as a grader has them, and runs there what a grader runs: ``python
task2a.py``, ``python task3a.py``, ``python task2.py`` and ``python task3.py --epochs 5``.
Every script must exit 0, and the printed results of both ends must agree (numbers to within
one unit of their last printed decimal, whole numbers exactly; timings are not compared).

Interpreters are found with pyenv (``pyenv root``/versions/3.8.*), on PATH (``python3.8``),
with the Windows launcher (``py -3.8``), or from ``HANDIN_PYTHON_OLDEST`` /
``HANDIN_PYTHON_NEWEST`` (which win, also over an environment built before: an environment is
rebuilt whenever the interpreter it was made with changes). A missing one is an error that says
how to install it: the check never passes without having run. What it reports is what ran:
each end's Python, NumPy and Matplotlib as the environment itself prints them.
"""

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
from dataclasses import dataclass
from pathlib import Path

from tools import cli
from tools.cli import UserError, venv_python
from tools.config import PROJECT

ROOT = PROJECT.root


@dataclass(frozen=True)
class End:
    name: str
    python: str  # major.minor
    requirements: tuple[str, ...]


ENDS = (
    End("oldest", "3.8", ("numpy==1.20.3", "matplotlib==3.3.4", "pillow==8.2.0")),
    End("newest", "3.13", ("numpy", "matplotlib")),
)

#: (script arguments, timeout in seconds): what a grader runs, in a short mode.
RUNS = (
    (["task2a.py"], 300),
    (["task3a.py"], 600),
    (["task2.py"], 600),
    (["task3.py", "--epochs", "5"], 600),
)


def find_python(end: End) -> str:
    """The path of an interpreter for ``end``, or UserError saying how to get one."""
    variable = f"HANDIN_PYTHON_{end.name.upper()}"
    override = os.environ.get(variable)
    if override:
        found = shutil.which(override)
        if not found:
            raise UserError(f"handin-check: {variable}={override} is not a program: point it "
                             f"at a python executable, or unset it to have one found.")
        return found
    candidates = []
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True).stdout.strip()
        versions = sorted(Path(root, "versions").glob(f"{end.python}.*"),
                          key=lambda p: [int(x) for x in re.findall(r"\d+", p.name)])
        for version in reversed(versions):
            candidates += [version / "bin" / "python", version / "python.exe"]
    for name in (f"python{end.python}", f"python{end.python}.exe"):
        found = shutil.which(name)
        if found:
            candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    launcher = shutil.which("py")
    if launcher and subprocess.run([launcher, f"-{end.python}", "-c", ""],
                                   capture_output=True).returncode == 0:
        code = "import sys; print(sys.executable)"
        out = subprocess.run([launcher, f"-{end.python}", "-c", code], capture_output=True,
                             text=True).stdout.strip()
        if out:
            return out
    raise UserError(
        f"handin-check: no Python {end.python} found for the {end.name} end of the hand-in's "
        f"range. Install it (pyenv install {end.python}, or conda create -n py{end.python} "
        f"python={end.python}, or the python.org installer) or point "
        f"HANDIN_PYTHON_{end.name.upper()} at its python executable, then run again.")


def python_version(python: str | Path) -> str:
    """The full version of an interpreter (``3.12.1``), or UserError when it does not run."""
    code = "import sys; print('%d.%d.%d' % sys.version_info[:3])"
    try:
        result = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                                timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UserError(f"handin-check: {python} does not run as Python ({reason}).") from exc
    if result.returncode != 0 or not result.stdout.strip():
        raise UserError(f"handin-check: {python} does not run as Python (exit "
                         f"{result.returncode}).")
    return result.stdout.strip()


def environment(end: End, envs: Path) -> Path:
    """A virtual environment for ``end`` with its requirements, made by the interpreter
    ``find_python`` gives now; kept while that interpreter and the requirements stay the same,
    rebuilt (saying why) when either changes or the environment no longer runs."""
    folder = envs / end.name
    stamp = folder / "handin-check.txt"
    python = venv_python(folder)
    interpreter = find_python(end)
    made_with = f"{Path(interpreter).absolute()} (Python {python_version(interpreter)})"
    wanted = f"{made_with}\n" + "\n".join(end.requirements) + "\n"
    try:
        built = stamp.read_text(encoding="utf-8")
    except OSError:
        built = None
    built_with = built.partition("\n")[0] if built else None
    if built == wanted:
        try:
            python_version(python)
            return python
        except UserError:
            reason = "it no longer runs"
    elif not built:
        reason = None if not folder.exists() else "an earlier build of it did not finish"
    elif built_with != made_with:
        reason = f"it was built with {built_with}, not {made_with}"
    else:
        reason = "its requirements changed"
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
    """What the environment runs: Python, NumPy and Matplotlib, with their versions."""
    code = ("import sys, numpy, matplotlib; print('Python %d.%d.%d' % sys.version_info[:3], "
            "'NumPy', numpy.__version__, 'Matplotlib', matplotlib.__version__)")
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    if result.returncode != 0:
        raise UserError(f"handin-check: {python} cannot import NumPy and Matplotlib: delete "
                         f"{python.parents[1]} and run again.")
    return result.stdout.strip()


def described(end: End, ran: str) -> str:
    """``ran`` (from ``versions``), noting an interpreter that is not the end's own version."""
    actual = ran.split()[1]
    if actual.split(".")[:2] == end.python.split("."):
        return ran
    return (f"{ran} (from HANDIN_PYTHON_{end.name.upper()}; the {end.name} end is normally "
            f"Python {end.python})")


def run_handin(python: Path, handin_zip: Path, work: Path) -> dict[str, str]:
    """Unzip the hand-in into ``work`` beside the stand-in mnist.py and the data, and run
    every script there; script -> stdout."""
    with zipfile.ZipFile(handin_zip) as archive:
        archive.extractall(work)
    shutil.copy(Path(__file__).with_name("course_mnist.py"), work / "mnist.py")
    shutil.copytree(ROOT / "data" / "mnist", work / "data")
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONIOENCODING": "utf-8"}
    env.pop("PYTHONPATH", None)
    outputs = {}
    for arguments, timeout in RUNS:
        label = " ".join(arguments)
        started = time.perf_counter()
        try:
            result = subprocess.run([str(python), *arguments], cwd=work, env=env,
                                    capture_output=True, text=True, encoding="utf-8",
                                    timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise UserError(f"handin-check: python {label} took longer than {timeout} s "
                            f"with {python}") from exc
        if result.returncode != 0:
            raise UserError(f"handin-check: python {label} failed (exit {result.returncode}) "
                            f"with {python}:\n{result.stderr.strip()[-3000:]}")
        print(f"  python {label:<24} ok  {time.perf_counter() - started:5.1f} s", flush=True)
        outputs[label] = result.stdout.replace(str(work), "<handin>")
    return outputs


_NUMBER = re.compile(r"[-+]?\d+(?:\.(\d+))?(?:e[-+]?\d+)?")
_TIMING = re.compile(r"[-+]?\d+(?:\.\d+)?\s*s\b")


def differences(first: str, second: str, label: str) -> list[str]:
    """Lines whose text differs, or whose numbers differ by more than one unit of their last
    printed decimal (whole numbers, such as epochs, must be equal). The gradient checks'
    errors (rounding noise, each below its tolerance) and timings are not compared."""
    found = []
    a_lines, b_lines = first.splitlines(), second.splitlines()
    if len(a_lines) != len(b_lines):
        return [f"{label}: {len(a_lines)} lines against {len(b_lines)}"]
    for a, b in zip(a_lines, b_lines, strict=True):
        a, b = _TIMING.sub("<time>", a), _TIMING.sub("<time>", b)
        if label.endswith("a.py"):
            a, b = _NUMBER.sub("<n>", a), _NUMBER.sub("<n>", b)
        if _NUMBER.sub("<n>", a) != _NUMBER.sub("<n>", b):
            found.append(f"{label}:\n    {a}\n    {b}")
            continue
        # same text with the numbers masked, so both lines hold as many numbers
        for x, y in zip(_NUMBER.finditer(a), _NUMBER.finditer(b), strict=True):
            decimals = max(len(x.group(1) or ""), len(y.group(1) or ""))
            unit = 10.0 ** -decimals * 1.01 if decimals else 0.0  # counts agree exactly
            if abs(float(x.group(0)) - float(y.group(0))) > unit:
                found.append(f"{label}:\n    {a}\n    {b}")
                break
    return found


def main() -> int:
    cli.tolerant_console()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zip", type=Path, default=ROOT / "build" / "handin" /
                        "assignment_code.zip", help="the hand-in zip (python tasks.py handin)")
    parser.add_argument("--envs", type=Path, default=ROOT / "build" / "handin-envs",
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
        oldest, newest = (results[end.name] for end in ENDS)
        found = [d for label in oldest for d in differences(oldest[label], newest[label], label)]
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
