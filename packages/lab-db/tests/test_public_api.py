"""Smoke test of the public surface of lab_utils.database."""

import importlib
import re

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
