"""An unusable TLS file is one error line naming the flag that gave it, as for other options."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from lab_utils.socket_comm.__main__ import main


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def files(ca: trustme.CA, tmp_path: Path) -> dict[str, str]:
    """Good CA and client certificate, a key without its certificate, a file not PEM."""
    paths = {name: tmp_path / f"{name}.pem" for name in ("ca", "client", "key_only", "garbage")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    issued = ca.issue_cert("127.0.0.1")
    issued.private_key_and_cert_chain_pem.write_to_path(str(paths["client"]))
    issued.private_key_pem.write_to_path(str(paths["key_only"]))
    paths["garbage"].write_text("not a certificate\n")
    return {name: str(path) for name, path in paths.items()}


def _error(capsys: pytest.CaptureFixture[str], *options: str) -> str:
    assert main(["--port", "1", "send", *options, "status"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err  # one line, no traceback
    return captured.err


@pytest.mark.parametrize("kind", ["key_only", "garbage"])
def test_an_unusable_ca_file_is_named_by_its_flag(
    files: dict[str, str], kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = files[kind]
    err = _error(capsys, "--tls-ca", bad, "--tls-cert", files["client"])
    assert err.startswith("error: no usable CA certificate in the --tls-ca file: ")
    assert err.endswith(f" ({bad})\n")


@pytest.mark.parametrize("kind", ["key_only", "garbage"])
def test_an_unusable_client_certificate_is_named_by_its_flag(
    files: dict[str, str], kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = files[kind]
    err = _error(capsys, "--tls-ca", files["ca"], "--tls-cert", bad)
    assert err.startswith("error: no usable certificate or key in the --tls-cert file: not a PEM ")
    assert err.endswith(f" ({bad})\n")


def test_a_certificate_and_key_pair_names_both_flags(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # ssl does not say which of the two it could not use: both flags, both paths.
    cert, key = files["garbage"], files["key_only"]
    err = _error(capsys, "--tls-cert", cert, "--tls-key", key)
    assert err.startswith(
        "error: no usable certificate or key in the --tls-cert and --tls-key files: "
    )
    assert err.endswith(f" ({cert}, {key})\n")


def test_the_command_line_process_says_it_in_one_line(files: dict[str, str]) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "FORCE_"))}
    done = subprocess.run(
        [sys.executable, "-m", "lab_utils.socket_comm", "send", "--port", "1",
         "--tls-ca", files["garbage"], "status"],
        capture_output=True, text=True, timeout=60, check=False, env=environment,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("error: no usable CA certificate in the --tls-ca file: ")
    assert done.stderr.endswith(f" ({files['garbage']})\n")
    assert "TLS files" not in done.stderr and "Traceback" not in done.stderr
