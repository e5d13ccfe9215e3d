"""Import one lab_utils subpackage and prove the undeclared siblings are absent.

Usage: python tools/import_check.py OWN [ABSENT ...]   (run by `nox -t isolated`)
"""

from __future__ import annotations

import importlib
import sys


def main(own: str, absent: list[str]) -> int:
    """Import lab_utils.<own>; return 1 if any lab_utils.<absent> imports too."""
    importlib.import_module(f"lab_utils.{own}")
    present = []
    for name in absent:
        try:
            importlib.import_module(f"lab_utils.{name}")
        except ModuleNotFoundError:
            continue
        present.append(name)
    if present:
        print(f"importable although not declared: {present}")
        return 1
    print(f"lab_utils.{own} imports; absent as declared: {absent}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
