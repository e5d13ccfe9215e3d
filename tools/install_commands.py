"""The install commands shown to users, read from their one home: docs/install.md.

The page marks each block of commands with HTML comments (invisible on GitHub, on the
package index and in the Sphinx output)::

    <!-- commands: wheels -->
    ```sh
    # what the next line is for
    python3 -m venv daq && daq/bin/pip install --find-links dist lab-db
    ```
    <!-- end commands -->

The meta-package's tests run these lines as written; the README repeats the blocks, and
tools/test_install_commands.py (in `nox -s lint`) checks that it holds the very same text.
Usage, to print one block: ``python tools/install_commands.py wheels``.
"""

from __future__ import annotations

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
HOME = ROOT / "docs" / "install.md"

_BLOCK = re.compile(
    r"<!-- commands: (?P<name>[\w-]+) -->\n```sh\n(?P<body>.*?)```\n<!-- end commands -->",
    re.DOTALL,
)


def blocks(path: pathlib.Path = HOME) -> dict[str, str]:
    """Return every marked block of `path`: name -> the text inside its code fence.

    Raises
    ------
    ValueError
        If a name is used twice or a start marker has no well-formed block after it.
    """
    text = path.read_text(encoding="utf-8")
    found: dict[str, str] = {}
    for match in _BLOCK.finditer(text):
        if match["name"] in found:
            raise ValueError(f"{path}: block {match['name']!r} is marked twice")
        found[match["name"]] = match["body"]
    if text.count("<!-- commands: ") != len(found):
        raise ValueError(f"{path}: a '<!-- commands: NAME -->' marker has no sh block after it")
    return found


def commands(name: str, path: pathlib.Path = HOME) -> list[str]:
    """Return the command lines of block `name` (comments and blank lines left out)."""
    body = blocks(path)[name]
    return [line for line in body.splitlines() if line.strip() and not line.startswith("#")]


if __name__ == "__main__":
    sys.stdout.write(blocks()[sys.argv[1]])
