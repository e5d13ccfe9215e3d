"""Sphinx configuration of the lab-utils documentation (built by `nox -s docs`)."""

from __future__ import annotations

import importlib.metadata

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
