"""Smoke test of the public surface of lab_utils.database."""

import importlib
import re
import subprocess
import sys

import pytest

import lab_utils.database as module


def test_every_name_in_all_exists() -> None:
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


def test_version_is_a_release_string() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.?(a|b|rc|dev|post)\d+)?", module.__version__)


def test_lab_utils_is_a_namespace_package() -> None:
    namespace = importlib.import_module("lab_utils")
    # A regular package would have a __file__; a PEP 420 namespace has none.
    assert getattr(namespace, "__file__", None) is None


def test_the_embedded_server_helpers_are_exported() -> None:
    assert {"EmbeddedError", "EmbeddedPostgres", "reachable_temp_dir"} <= set(module.__all__)


def test_importing_the_module_leaves_the_embedded_server_unloaded() -> None:
    # A DAQ node that writes to a real server should not pay for subprocess and friends.
    probe = (
        "import sys, lab_utils.database as db\n"
        "before = 'lab_utils.database.embedded' in sys.modules\n"
        "db.EmbeddedPostgres\n"
        "print(before, 'lab_utils.database.embedded' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        module.no_such_name  # noqa: B018
