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


# Modules a program writing rows with Database.new_entry does not use: imported on demand.
DEFERRED = [
    "lab_utils.database.binary_copy",
    "lab_utils.database.config",
    "lab_utils.database.csv_import",
    "lab_utils.database.embedded",
    "lab_utils.database.fast_rows",
    "lab_utils.database.plot",
    "lab_utils.database.spool",
    "lab_utils.database.writer",
    "configparser",
    "csv",
    "dataclasses",
    "difflib",
    "inspect",
    "pathlib",
    "psycopg",
    "queue",
    "subprocess",
    "typing",
    "uuid",
]


def test_importing_the_module_leaves_what_new_entry_does_not_need_unloaded() -> None:
    probe = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import lab_utils.database as db\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
        "from lab_utils.database import BufferedWriter, ConfigValueError, WriterStats\n"
        "print(BufferedWriter.__module__, ConfigValueError.__module__, WriterStats.__module__)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    imported, names = done.stdout.splitlines()
    assert "lab_utils.database.database" in imported.split()
    assert [name for name in DEFERRED if name in imported.split()] == []
    assert names.split() == [
        "lab_utils.database.writer",
        "lab_utils.database.config",
        "lab_utils.database.writer",
    ]


def test_names_imported_on_demand_are_listed_and_are_the_modules_own() -> None:
    from lab_utils.database import config, writer

    assert {"BufferedWriter", "ConfigFileNotFoundError", "EmbeddedPostgres"} <= set(dir(module))
    assert module.BufferedWriter is writer.BufferedWriter
    assert module.ConfigFileNotFoundError is config.ConfigFileNotFoundError


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        module.no_such_name  # noqa: B018
