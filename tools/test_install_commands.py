"""The install commands have one home, and the README repeats it word for word."""

from __future__ import annotations

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import install_commands


def test_the_install_page_holds_the_wheel_and_checkout_blocks() -> None:
    assert set(install_commands.blocks()) == {"wheels", "checkout"}
    assert any("--find-links dist lab-db" in c for c in install_commands.commands("wheels"))


def test_the_readme_shows_the_same_blocks_as_the_install_page() -> None:
    readme = install_commands.ROOT / "README.md"
    assert install_commands.blocks(readme) == install_commands.blocks()


def test_a_marker_without_its_block_is_an_error(tmp_path: pathlib.Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- commands: wheels -->\npip install lab-db\n<!-- end commands -->\n")
    with pytest.raises(ValueError, match="has no sh block"):
        install_commands.blocks(page)


def test_comments_and_blank_lines_are_not_commands(tmp_path: pathlib.Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- commands: x -->\n```sh\n# why\n\npip install lab-db\n```\n<!-- end commands -->\n"
    )
    assert install_commands.commands("x", page) == ["pip install lab-db"]
