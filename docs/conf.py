"""Sphinx configuration of the lab-utils documentation (built by `nox -s docs`)."""

from __future__ import annotations

import importlib.metadata
import pathlib
import subprocess
import sys

project = "lab-utils"
author = "lab-utils maintainers"
copyright = "lab-utils maintainers, GNU GPL v3"
release = importlib.metadata.version("lab-db")

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_numpy_docstring = True
napoleon_google_docstring = False

# Offline builds: inventories are optional, never fetched.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

html_theme = "alabaster"
html_title = "lab-utils"


# The demo page shows the plot the demo draws of what it acquired: made here, by running
# the demo for each build, never committed by hand. It lands in _build (not a source
# folder, ignored by git); `nox -s docs` installs what the demo needs (lab-db[plot] and a
# PostgreSQL).
DOCS = pathlib.Path(__file__).resolve().parent
DEMO_PICTURE = DOCS / "_build" / "figures" / "demo-cryostat.png"


def _draw_demo_picture() -> None:
    done = subprocess.run(  # noqa: S603 - our own demo, no shell
        [sys.executable, str(DOCS.parent / "examples" / "demo.py"), "--seconds", "4",
         "--plot", str(DEMO_PICTURE)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    if done.returncode != 0 or not DEMO_PICTURE.is_file():
        raise RuntimeError(
            f"the demo did not draw {DEMO_PICTURE} (exit {done.returncode}):\n"
            f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )


_draw_demo_picture()
