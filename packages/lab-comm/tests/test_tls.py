"""TLS for daemons reachable over a network: verified server, optional client certificates."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from lab_utils.socket_comm import Client, Server


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def pem(ca: trustme.CA, tmp_path: Path) -> dict[str, str]:
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("daq-client@lab.test")
    files = {
        "ca": tmp_path / "ca.pem",
        "server": tmp_path / "server.pem",
        "client": tmp_path / "client.pem",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    server.private_key_and_cert_chain_pem.write_to_path(str(files["server"]))
    client.private_key_and_cert_chain_pem.write_to_path(str(files["client"]))
    return {name: str(path) for name, path in files.items()}


class Echo(Server):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(host="127.0.0.1", port=0, **kwargs)  # type: ignore[arg-type]
        echo = self.sp.add_parser(name="echo", description="say it back")
        echo.add_argument("--text", default="")
        echo.set_defaults(func=self.echo, which="echo")

    def echo(self) -> None:
        self.reply = self.namespace.text


def _run(server: Server) -> Iterator[int]:
    with server.start_in_thread() as running:
        yield running.address


@pytest.fixture
def tls_port(pem: dict[str, str], tmp_path: Path) -> Iterator[int]:
    yield from _run(Echo(pid_file_name=str(tmp_path / "tls.pid"), tls_cert=pem["server"]))


def test_verified_tls_round_trip_and_persistent(tls_port: int, pem: dict[str, str]) -> None:
    client = Client(host="127.0.0.1", port=tls_port, tls_ca=pem["ca"])
    assert client.send_message("quit now").startswith("Error! ")
    with Client(host="127.0.0.1", port=tls_port, tls_ca=pem["ca"], persistent=True) as persistent:
        assert all(persistent.send_message("x").startswith("Error! ") for _ in range(20))
    big = "température " * 30_000
    assert client.send_message(f"echo --text {{{big}}}") == big


def test_an_untrusted_certificate_is_refused(tls_port: int) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        Client(host="127.0.0.1", port=tls_port, tls=True).send_message("quit")


def test_plain_text_gets_no_answer_and_the_daemon_lives(tls_port: int, pem: dict[str, str]) -> None:
    with socket.create_connection(("127.0.0.1", tls_port), timeout=30) as sock:
        sock.sendall(b"quit, in plain text\n")  # not a TLS record: the handshake fails
        try:
            answer = sock.recv(1024)
        except ConnectionResetError:  # closed with our bytes unread: a reset, not a reply
            answer = b""
        assert answer == b""
    assert (
        Client(host="127.0.0.1", port=tls_port, tls_ca=pem["ca"])
        .send_message("z")
        .startswith("Error! ")
    )


def test_client_certificates_when_the_daemon_asks(pem: dict[str, str], tmp_path: Path) -> None:
    server = Server(pid_file_name=str(tmp_path / "m.pid"), host="127.0.0.1", port=0,
                    tls_cert=pem["server"], tls_ca=pem["ca"])  # fmt: skip
    for port in _run(server):
        anonymous = Client(host="127.0.0.1", port=port, tls_ca=pem["ca"], protocol="framed")
        with pytest.raises(OSError):
            anonymous.send_message("status")
        known = Client(host="127.0.0.1", port=port, tls_ca=pem["ca"], tls_cert=pem["client"])
        assert known.send_message("quit") == "Goodbye!"


def test_cli_speaks_tls(tls_port: int, pem: dict[str, str]) -> None:
    import subprocess
    import sys

    options = ["--port", str(tls_port), "--host", "127.0.0.1", "--tls-ca", pem["ca"]]
    command = [
        sys.executable,
        "-m",
        "lab_utils.socket_comm",
        *options,
        "send",
        "echo",
        "--text",
        "{over tls}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout) == (0, "over tls\n"), result.stderr


@pytest.fixture
def unusable(ca: trustme.CA, tmp_path: Path) -> dict[str, str]:
    """A private key without its certificate, and a file that is no PEM at all."""
    key_only = tmp_path / "key-only.pem"
    ca.issue_cert("127.0.0.1").private_key_pem.write_to_path(str(key_only))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    return {"key_only": str(key_only), "garbage": str(garbage)}


def _daemon_error(tmp_path: Path, **tls: str) -> str:
    server = Server(pid_file_name=str(tmp_path / "d.pid"), host="127.0.0.1", port=0, **tls)
    with pytest.raises(ssl.SSLError) as caught:
        server.start_daemon()
    return str(caught.value)


@pytest.mark.parametrize("kind", ["key_only", "garbage"])
@pytest.mark.parametrize("option", ["tls_cert", "tls_ca"])
def test_a_client_names_an_unusable_tls_file_as_the_daemon_does(
    unusable: dict[str, str], pem: dict[str, str], tmp_path: Path, option: str, kind: str
) -> None:
    bad = unusable[kind]
    # Each side's certificate is good but the one under test, so only that file can fail.
    client = {"tls_ca": pem["ca"], "tls_cert": pem["client"], option: bad}
    daemon = {"tls_cert": pem["server"], option: bad}
    with pytest.raises(ssl.SSLError) as caught:
        Client(port=1, **client)  # type: ignore[arg-type]
    message = str(caught.value)
    if option == "tls_cert":  # not only OpenSSL's "PEM lib"
        assert message.startswith(f"no usable certificate or key in tls_cert {bad}: not a PEM ")
    else:
        assert message.startswith(f"no usable CA certificate in tls_ca {bad}: ")
    assert message == _daemon_error(tmp_path, **daemon)


def test_a_lab_ca_is_the_only_one_a_client_trusts(tls_port: int, tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))  # not the daemon certificate's CA
    with pytest.raises(ssl.SSLCertVerificationError):
        Client(host="127.0.0.1", port=tls_port, tls_ca=str(other_ca)).send_message("quit")
