"""The layout guard catches what it promises to catch (run by `nox -s lint`)."""

from __future__ import annotations

import pathlib
import shutil
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import check_layout
import workspace


@pytest.fixture
def repo(tmp_path: pathlib.Path) -> pathlib.Path:
    """Copy the real packages/ tree (sources, tests, pyprojects) and root LICENSE."""
    shutil.copy(workspace.ROOT / "LICENSE", tmp_path / "LICENSE")
    shutil.copytree(
        workspace.PACKAGES,
        tmp_path / "packages",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache"),
    )
    workspace.project.cache_clear()
    return tmp_path / "packages"


def test_the_real_tree_passes(repo: pathlib.Path) -> None:
    assert check_layout.problems(repo) == []


def test_undeclared_sibling_import_is_reported(repo: pathlib.Path) -> None:
    db_module = repo / "lab-db" / "src" / "lab_utils" / "database"
    (db_module / "sneaky.py").write_text("from lab_utils.custom_logging import getLogger\n")
    (found,) = check_layout.problems(repo)
    assert "sneaky.py: imports lab_utils.custom_logging, which lab-db does not declare" in found


def test_from_namespace_import_form_is_reported_too(repo: pathlib.Path) -> None:
    log_tests = repo / "lab-log" / "tests"
    (log_tests / "test_sneaky.py").write_text("def f():\n    from lab_utils import socket_comm\n")
    (found,) = check_layout.problems(repo)
    assert "lab-log does not declare" in found


def test_declared_dependency_may_be_imported(repo: pathlib.Path) -> None:
    comm_module = repo / "lab-comm" / "src" / "lab_utils" / "socket_comm"
    (comm_module / "fine.py").write_text("import lab_utils.custom_logging\n")
    assert check_layout.problems(repo) == []


def test_namespace_init_is_reported(repo: pathlib.Path) -> None:
    (repo / "lab-db" / "src" / "lab_utils" / "__init__.py").write_text("")
    (found,) = check_layout.problems(repo)
    assert "namespace package" in found


def test_missing_py_typed_is_reported(repo: pathlib.Path) -> None:
    (repo / "lab-log" / "src" / "lab_utils" / "custom_logging" / "py.typed").unlink()
    (found,) = check_layout.problems(repo)
    assert "py.typed is missing" in found


def test_changed_license_copy_is_reported(repo: pathlib.Path) -> None:
    with open(repo / "lab-comm" / "LICENSE", "a") as f:
        f.write("extra\n")
    (found,) = check_layout.problems(repo)
    assert "real copy of the root LICENSE" in found


def test_init_in_tests_is_reported(repo: pathlib.Path) -> None:
    (repo / "lab-db" / "tests" / "__init__.py").write_text("")
    (found,) = check_layout.problems(repo)
    assert "tests folders must not be packages" in found
