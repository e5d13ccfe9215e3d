"""docs/migration.md tells the truth about every public name of lab-utils 0.4.0 and 0.5.12.

The page's tables of names are read here: a name marked *same* must exist in the installed
pieces, a name moved elsewhere must exist under its new name, a name marked *removed* must
be gone. And every public name of the real 0.4.0 and 0.5.12 sources (downloaded by the meta
session into $LAB_UTILS_OLD_RELEASES, read as text, never installed) must be on the page.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import re
import tarfile
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "migration.md"
MODULES = ("database", "socket_comm", "custom_logging")


def _rows() -> list[tuple[list[str], str]]:
    """Every row of the name tables: (the 0.x names, what the page says they are now)."""
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("## Every public name", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("name", "") or set(cells[0]) <= {"-"}:
            continue
        rows.append((re.findall(r"`([^`]+)`", cells[0]), cells[2]))
    return rows


ROWS = _rows()


def _resolve(dotted: str) -> bool:
    """Whether lab_utils.<dotted> exists: a module, an attribute, or an instance attribute."""
    parts = ["lab_utils", *dotted.split(".")]
    obj: Any = None
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        break
    rest = parts[cut:]
    for position, name in enumerate(rest):
        if hasattr(obj, name):
            obj = getattr(obj, name)
        elif position == len(rest) - 1 and isinstance(obj, type):
            return _instance_attribute(obj, name)
        else:
            return False
    return True


def _instance_attribute(cls: type, name: str) -> bool:
    """Whether instances of `cls` get `name`: annotated on a class or assigned to `self`."""
    for klass in cls.__mro__:
        if name in getattr(klass, "__annotations__", {}):
            return True
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        for node in ast.walk(tree):
            targets = (
                node.targets if isinstance(node, ast.Assign)
                else [node.target] if isinstance(node, ast.AnnAssign)
                else []
            )  # fmt: skip
            for target in targets:
                for element in target.elts if isinstance(target, ast.Tuple) else [target]:
                    if (
                        isinstance(element, ast.Attribute)
                        and isinstance(element.value, ast.Name)
                        and element.value.id == "self"
                        and element.attr == name
                    ):
                        return True
    return False


def test_the_page_has_name_tables() -> None:
    assert len(ROWS) > 20


@pytest.mark.parametrize(
    ("names", "now"), [pytest.param(n, w, id=n[0]) for n, w in ROWS if w == "same"]
)
def test_names_marked_same_exist(names: list[str], now: str) -> None:
    missing = [name for name in names if not _resolve(name)]
    assert missing == [], f"the migration guide says these are still there: {missing}"


@pytest.mark.parametrize(
    ("names", "now"), [pytest.param(n, w, id=n[0]) for n, w in ROWS if w.startswith("`")]
)
def test_names_moved_exist_under_their_new_name(names: list[str], now: str) -> None:
    (target,) = re.findall(r"`([^`]+)`", now)
    assert _resolve(target), f"{names} moved to {target}, which is not there"


@pytest.mark.parametrize(
    ("names", "now"), [pytest.param(n, w, id=n[0]) for n, w in ROWS if w == "removed"]
)
def test_names_marked_removed_are_gone(names: list[str], now: str) -> None:
    present = [name for name in names if _resolve(name)]
    assert present == [], f"the migration guide says these are gone: {present}"


def test_every_row_says_same_moved_or_removed() -> None:
    odd = [(n, w) for n, w in ROWS if w not in ("same", "removed") and not w.startswith("`")]
    assert odd == []


# Completeness against the real sources --------------------------------------------------


def _public_names(source: str, module: str) -> set[str]:
    """Module-level functions, classes and assignments, class methods and attributes."""
    found: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_"):
            found.add(f"{module}.{node.name}")
            if isinstance(node, ast.ClassDef):
                found |= {
                    f"{module}.{node.name}.{name}"
                    for name in _defined(node.body)
                    if not name.startswith("_")
                }
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            found |= {f"{module}.{n}" for n in _defined([node]) if not n.startswith("_")}
    return found


def _defined(body: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for node in body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _package_root_names(source: str) -> set[str]:
    """What `lab_utils/__init__.py` of 0.x made reachable: its `from . import ...` names."""
    return {
        alias.name
        for node in ast.parse(source).body
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is None
        for alias in node.names
    }


def _sources(archive: Path) -> dict[str, str]:
    """The lab_utils/*.py files of a 0.x wheel or sdist, by module name."""
    wanted = {f"lab_utils/{m}.py": m for m in (*MODULES, "__init__")}
    found: dict[str, str] = {}
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            for member in wheel.namelist():
                if member in wanted:
                    found[wanted[member]] = wheel.read(member).decode()
    else:
        with tarfile.open(archive) as sdist:
            for member in sdist.getmembers():
                tail = "/".join(member.name.split("/")[1:])
                if tail in wanted:
                    handle = sdist.extractfile(member)
                    assert handle is not None
                    found[wanted[tail]] = handle.read().decode()
    assert set(found) == set(wanted.values()), (archive, sorted(found))
    return found


def _old_releases() -> list[Path]:
    folder = os.environ.get("LAB_UTILS_OLD_RELEASES")
    assert folder, "run through `nox -s meta`, which downloads lab-utils 0.4.0 and 0.5.12"
    archives = sorted(Path(folder).glob("lab*utils-0.*"))
    assert len(archives) == 2, archives  # the 0.4.0 wheel and the 0.5.12 sdist
    return archives


def test_every_public_name_of_0_4_and_0_5_is_on_the_page() -> None:
    listed = {name for names, _ in ROWS for name in names}
    old: set[str] = set()
    for archive in _old_releases():
        sources = _sources(archive)
        old |= _package_root_names(sources["__init__"])
        for module in MODULES:
            old |= _public_names(sources[module], module)
    assert len(old) > 90
    assert sorted(old - listed) == []
