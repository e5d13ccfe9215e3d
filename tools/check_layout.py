"""Guards of the repository layout, run by `nox -s lint`.

- no lab_utils/__init__.py in any distribution (it would break the PEP 420 namespace);
- a py.typed in every subpackage;
- every packages/*/LICENSE equal to the root LICENSE;
- no __init__.py in any tests folder (same-named test modules must not become packages);
- no import of a sibling lab_utils subpackage that the importing distribution does not
  declare (directly or through its in-repo dependencies).

Exit status 1 and one line per problem when anything is wrong.
"""

from __future__ import annotations

import ast
import pathlib
import sys

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import workspace


def imported_subpackages(path: pathlib.Path) -> set[str]:
    """Return the lab_utils.<sub> names a Python file imports, at any depth of the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "lab_utils":
                names = [f"lab_utils.{alias.name}" for alias in node.names]
            else:
                names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "lab_utils" and len(parts) > 1:
                found.add(parts[1])
    return found


def problems(packages: pathlib.Path = workspace.PACKAGES) -> list[str]:
    """Every layout problem under `packages`, one message each."""
    found: list[str] = []
    root_license = (packages.parent / "LICENSE").read_bytes()
    pieces = workspace.pieces(packages)
    for folder in workspace.folders(packages):
        base = packages / folder
        namespace_init = base / "src" / "lab_utils" / "__init__.py"
        if namespace_init.exists():
            found.append(f"{namespace_init}: lab_utils is a namespace package, remove this file")
        license_file = base / "LICENSE"
        if not license_file.is_file() or license_file.read_bytes() != root_license:
            found.append(f"{license_file}: must be a real copy of the root LICENSE")
        for init in sorted((base / "tests").rglob("__init__.py")):
            found.append(f"{init}: tests folders must not be packages")
        if folder not in pieces:
            continue
        module_dir = base / "src" / "lab_utils" / pieces[folder]
        if not (module_dir / "py.typed").is_file():
            found.append(f"{module_dir}: py.typed is missing")
        allowed = {pieces[f] for f in workspace.local_closure(folder, packages) if f in pieces}
        for source in sorted([*module_dir.rglob("*.py"), *(base / "tests").rglob("*.py")]):
            for sub in sorted(imported_subpackages(source) - allowed):
                found.append(f"{source}: imports lab_utils.{sub}, which {folder} does not declare")
    return found


def main() -> int:
    """Print every problem; exit 1 when there is any."""
    found = problems()
    for line in found:
        print(line)
    if found:
        return 1
    print(f"layout OK: {len(workspace.folders())} distributions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
