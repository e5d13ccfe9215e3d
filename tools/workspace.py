"""The distributions of this repository, read from packages/*/pyproject.toml.

The one place that knows which packages exist and how they depend on each other; the
noxfile and the layout guard both ask it, so adding a package needs no other edit.
"""

from __future__ import annotations

import pathlib
import re
import sys
from functools import cache
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - nox brings tomli on 3.10
    import tomli as tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ROOT / "packages"
META = "lab-utils-meta"


def canonical(name: str) -> str:
    """Return a distribution name in PEP 503 normal form."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """Return the distribution name at the start of a PEP 508 requirement string."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return canonical(match.group(1))


@cache
def project(folder: str, packages: pathlib.Path = PACKAGES) -> dict[str, Any]:
    """Return the [project] table of packages/<folder>/pyproject.toml."""
    with open(packages / folder / "pyproject.toml", "rb") as f:
        return dict(tomllib.load(f)["project"])


def folders(packages: pathlib.Path = PACKAGES) -> list[str]:
    """Every distribution folder under packages/, sorted."""
    return sorted(p.parent.name for p in packages.glob("*/pyproject.toml"))


def pieces(packages: pathlib.Path = PACKAGES) -> dict[str, str]:
    """Folder -> lab_utils subpackage, for every distribution that ships code."""
    found = {}
    for folder in folders(packages):
        namespace = packages / folder / "src" / "lab_utils"
        if namespace.is_dir():
            (module,) = (p.name for p in namespace.iterdir() if p.is_dir() and p.name[0] != "_")
            found[folder] = module
    return found


def local_closure(folder: str, packages: pathlib.Path = PACKAGES) -> list[str]:
    """`folder` first, then every in-repo distribution it depends on, transitively."""
    folder_of = {canonical(project(f, packages)["name"]): f for f in folders(packages)}
    seen: list[str] = []
    todo = [folder]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.append(current)
        for dep in project(current, packages).get("dependencies", []):
            name = requirement_name(dep)
            if name in folder_of:
                todo.append(folder_of[name])
    return seen


def external_dependencies(chosen: list[str], packages: pathlib.Path = PACKAGES) -> list[str]:
    """Return the requirements of the `chosen` folders that are not distributions of this repo."""
    local = {canonical(project(f, packages)["name"]) for f in folders(packages)}
    found = {
        dep
        for folder in chosen
        for dep in project(folder, packages).get("dependencies", [])
        if requirement_name(dep) not in local
    }
    return sorted(found)
