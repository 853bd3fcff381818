"""The project's configuration: its checkout, the hand-in's files, and the report's title page
(``report.toml``, checked before anything runs). Importable before .venv exists (tasks.py)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from tools.cli import UserError

#: The course's hand-in: exactly these files, at the zip's root (the course's own script).
HANDIN_FILES = ("task2.py", "task2a.py", "task3.py", "task3a.py", "trainer.py", "utils.py")
TITLE = "Assignment 1: Logistic and Softmax Regression on MNIST"
#: A bare number or a short code (42, 7b, A3) is printed as "Group 42"; anything else as given.
_BARE_GROUP = re.compile(r"[0-9]+|(?=.*[0-9])[0-9A-Za-z]{1,4}", re.ASCII)


@dataclass(frozen=True)
class Project:
    """A checkout: its notebook's code runs in ``root``; builds lock, cache and write in
    ``build``."""

    root: Path

    @property
    def build(self) -> Path:
        return self.root / "build"

    @property
    def cache(self) -> Path:
        return self.build / "report-cache"

    @classmethod
    def around(cls, folder: Path) -> Project:
        """The checkout that holds ``folder``; UserError when none does."""
        for candidate in (folder.resolve(), *folder.resolve().parents):
            if (candidate / "tasks.py").is_file() and (candidate / "tools" / "report.py").is_file():
                return cls(candidate)
        raise UserError(f"{folder} is not in a checkout of the assignment (no tasks.py and "
                        f"tools/ in it or above it): open the notebook from its project "
                        f"folder")


PROJECT = Project(Path(__file__).resolve().parents[1])


@dataclass(frozen=True)
class TitlePage:
    group: str  # as printed: "Group 42", "Gruppe 42"
    authors: list[str]
    placeholder: bool  # the group or the names are not filled in yet


def title_page(config: Path, required: bool = False) -> TitlePage:
    """The group line and names from $ASSIGNMENT1_GROUP and $ASSIGNMENT1_AUTHORS ("Ada; Alan"),
    else ``config`` (a bad one: UserError naming the key), else visible placeholders."""
    data = {}
    if required and not os.path.lexists(config):
        raise UserError(f"{config}: no such file; check the --config path")
    if config.is_dir():
        raise UserError(f"{config} is a folder, not a file: the title page's group and names "
                        f"go in a file of that name")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        if os.path.lexists(config):  # Notepad may write a byte-order mark
            data = tomllib.loads(config.read_bytes().decode("utf-8-sig"))
    except OSError as exc:
        raise UserError(f"{config}: cannot read it ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"{config}: not UTF-8 text (byte {exc.start} is "
                        f"{exc.object[exc.start]:#04x}); save it as UTF-8") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{config}: not valid TOML ({exc}); expected lines like "
                        f'group = "42" and authors = ["Name One", "Name Two"]') from exc
    unknown = sorted(set(data) - {"group", "authors"})
    if unknown:
        raise UserError(f"{config}: unknown key {unknown[0]!r}; it holds only group (a "
                        f"string) and authors (a list of strings)")
    group, authors = data.get("group", ""), data.get("authors", [])
    if isinstance(group, bool) or not isinstance(group, (str, int)):
        raise UserError(f"{config}: group must be a string such as \"42\", got "
                        f"{type(group).__name__} {group!r}")
    if not isinstance(authors, list) or not all(isinstance(a, str) for a in authors):
        what = type(authors).__name__ if not isinstance(authors, list) else "a list holding " + \
            ", ".join(sorted({type(a).__name__ for a in authors if not isinstance(a, str)}))
        raise UserError(f"{config}: authors must be a list of strings such as "
                        f"[\"Name One\", \"Name Two\"], got {what}")
    group = (os.environ.get("ASSIGNMENT1_GROUP") or str(group)).strip()
    env_authors = os.environ.get("ASSIGNMENT1_AUTHORS")
    authors = [a.strip() for a in (env_authors.split(";") if env_authors else authors)
               if a.strip()]
    printed = f"Group {group}" if _BARE_GROUP.fullmatch(group) else group
    return TitlePage(printed or "Group ?? (set group in report.toml)",
                     authors or ["Author names (set authors in report.toml)"],
                     not group or not authors)
