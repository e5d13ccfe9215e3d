"""Importing lab-comm costs no TLS: ssl is imported only by code that speaks TLS."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CHECK = (
    "import json, sys; import {module}; "
    "print(json.dumps([m for m in ('ssl', '_ssl') if m in sys.modules]))"
)


def _loaded_after(module: str) -> list[str]:
    """Import ``module`` in a fresh interpreter; return which of ssl, _ssl it loaded."""
    done = subprocess.run(
        [sys.executable, "-c", CHECK.format(module=module)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return list(json.loads(done.stdout))


@pytest.mark.parametrize(
    "module",
    [
        "lab_utils.socket_comm",  # a daemon or a client in a lab app
        "lab_utils.socket_comm.__main__",  # the command line
        "lab_utils.socket_comm.fleet",
        "lab_utils.custom_logging",  # what lab-comm logs through
    ],
)
def test_importing_does_not_import_ssl(module: str) -> None:
    assert _loaded_after("sys") == []  # the interpreter itself does not bring it
    assert _loaded_after(module) == []


def test_tls_still_imports_it_when_used(tmp_path: object) -> None:
    code = (
        "import sys; from lab_utils.socket_comm import Client; "
        "Client(port=1, tls=True); print('ssl' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout == "True\n"
