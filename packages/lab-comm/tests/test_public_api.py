"""Smoke test of the public surface of lab_utils.socket_comm."""

import importlib
import re

import lab_utils.socket_comm as module


def test_every_name_in_all_exists() -> None:
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


def test_version_is_a_release_string() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.?(a|b|rc|dev|post)\d+)?", module.__version__)


def test_lab_utils_is_a_namespace_package() -> None:
    namespace = importlib.import_module("lab_utils")
    # A regular package would have a __file__; a PEP 420 namespace has none.
    assert getattr(namespace, "__file__", None) is None


def test_errors_are_public_and_one_class_each() -> None:
    from lab_utils.socket_comm import client, inifile

    assert module.ConfigValueError is inifile.ConfigValueError
    assert module.ReplyTimeoutError is client.ReplyTimeoutError
