"""The daemon's [Overall] file: defaults kept as in 0.4, but every problem said clearly."""

from __future__ import annotations

import configparser
import logging
import socket
from pathlib import Path

import pytest

from lab_utils.socket_comm import Client, ConfigValueError, Server
from lab_utils.socket_comm.fleet import read_fleet


def _daemon(tmp_path: Path, config: Path | str) -> Server:
    return Server(str(config), str(tmp_path / "d.pid"), port=0)


def test_missing_file_keeps_the_defaults_with_a_warning_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "nowhere" / "daemon.ini"
    with caplog.at_level(logging.WARNING):
        server = Server(str(missing), str(tmp_path / "d.pid"))
    try:
        assert (server.host, server.port) == ("localhost", 1507)
        (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert str(missing) in record.getMessage()
        assert "host localhost, port 1507" in record.getMessage()
    finally:
        server.close()


def test_file_without_overall_keeps_the_defaults_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "daemon.ini"
    config.write_text("[Cryo]\nsetpoint = 4\n")
    server = _daemon(tmp_path, config)
    server.close()
    assert "No [Overall] section" in caplog.text and str(config) in caplog.text


def test_unknown_option_is_reported_with_the_closest_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "daemon.ini"
    config.write_text(
        "[Overall]\nhost = 127.0.0.1\nprot = 1600\nmax_conections = 3\nwavelength = 532\n"
    )
    with caplog.at_level(logging.WARNING):
        server = Server(str(config), str(tmp_path / "d.pid"))
    server.close()
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"Unknown option 'prot' in [Overall] of {config}; did you mean 'port'?" in messages
    assert any("'max_conections'" in m and "did you mean 'max_connections'?" in m for m in messages)
    # Nothing close: the known names are listed instead.
    (far,) = [m for m in messages if "'wavelength'" in m]
    assert far.startswith(f"Unknown option 'wavelength' in [Overall] of {config} (known: host, ")
    assert server.port == 1507  # the typo did not set anything


def test_options_the_subclass_reads_itself_are_not_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Cryo(Server):
        config_options = ("gauge",)

    config = tmp_path / "daemon.ini"
    config.write_text("[Overall]\nport = 0\ngauge = /dev/ttyUSB0\n")
    Cryo(str(config), str(tmp_path / "d.pid")).close()
    assert "Unknown option" not in caplog.text


@pytest.mark.parametrize(
    ("line", "option", "accepted"),
    [
        ("port = abc", "port", "a whole number from 0 to 65535"),
        ("port = 70000", "port", "a whole number from 0 to 65535"),
        ("connection_timeout = soon", "connection_timeout", "a number of seconds above 0"),
        ("max_connections = 0", "max_connections", "a whole number above 0"),
    ],
)
def test_bad_values_are_errors_naming_option_value_and_file(
    tmp_path: Path, line: str, option: str, accepted: str
) -> None:
    config = tmp_path / "daemon.ini"
    config.write_text(f"[Overall]\n{line}\n")
    with pytest.raises(ConfigValueError) as caught:
        _daemon(tmp_path, config)
    text = str(caught.value)
    assert f"[Overall] {option} = " in text and str(config) in text and accepted in text
    # Both families: configparser.Error (suite manners) and ValueError (what 0.4 raised).
    assert isinstance(caught.value, configparser.Error)
    assert isinstance(caught.value, ValueError)


def test_missing_secret_file_is_an_error_naming_the_path(tmp_path: Path) -> None:
    config = tmp_path / "daemon.ini"
    config.write_text("[Overall]\nsecret_file = secrets/cryo.key\n")
    with pytest.raises(ConfigValueError) as caught:
        _daemon(tmp_path, config)
    assert str(tmp_path / "secrets" / "cryo.key") in str(caught.value)
    assert "No such file" in str(caught.value)


def test_paths_are_relative_to_the_config_folder_and_the_secret_works(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "cryo.key").write_text("s3cret\n")
    config = tmp_path / "daemon.ini"
    config.write_text("[Overall]\nhost = 127.0.0.1\nport = 0\nsecret_file = keys/cryo.key\n")
    server = _daemon(tmp_path, config)
    assert server.secret == b"s3cret"
    with server.start_in_thread() as running:
        assert (
            Client(host="127.0.0.1", port=running.address)
            .send_message("ping")
            .startswith("Error! Authentication required")
        )
        client = Client(host="127.0.0.1", port=running.address, secret="s3cret")
        assert client.send_message("ping") == "pong"


def test_port_in_use_names_the_address(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        server = Server(pid_file_name=str(tmp_path / "d.pid"), host="127.0.0.1", port=port)
        with pytest.raises(OSError, match=f"address 127.0.0.1:{port} is already in use"):
            server.start_in_thread()
    assert server.lock is None


def test_one_config_error_class_for_daemon_client_and_fleet_files(tmp_path: Path) -> None:
    daemon_ini = tmp_path / "daemon.ini"
    daemon_ini.write_text("[Overall]\nport = abc\n")
    client_ini = tmp_path / "client.ini"
    client_ini.write_text("[Overall]\nhost = localhost\nport = abc\n")
    fleet_ini = tmp_path / "fleet.ini"
    fleet_ini.write_text("[cryostat]\nport = abc\n")
    with pytest.raises(ConfigValueError):
        _daemon(tmp_path, daemon_ini)
    with pytest.raises(ConfigValueError):
        Client(config_file=str(client_ini))
    with pytest.raises(ConfigValueError):
        read_fleet(fleet_ini)


def test_one_overall_file_serves_daemon_and_client_without_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "cryo.key").write_text("s3cret\n")
    config = tmp_path / "daemon.ini"
    config.write_text(
        "[Overall]\nhost = 127.0.0.1\nport = 1600\nsecret_file = cryo.key\n"
        "connection_timeout = 10\nmax_connections = 8\nmax_message_size = 1024\n"
        "tls_cert = server.pem\ntls_key = server.key\ntls_ca = lab-ca.pem\n"
        "timeout = 5\npersistent = yes\ntls = no\n"
    )
    with caplog.at_level(logging.DEBUG):
        server = _daemon(tmp_path, config)
        server.close()
        client = Client(config_file=str(config))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert (server.max_connections, server.secret) == (8, b"s3cret")
    assert server.tls_cert == str(tmp_path / "server.pem")
    assert (client.host, client.port, client.secret) == ("127.0.0.1", 1600, b"s3cret")
    # The daemon's TLS files are its own certificate and the CA of its clients: a client
    # reading the same file must not take them for its own.
    assert client._tls is None


def test_a_config_file_that_is_not_utf8_is_an_error_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "daemon.ini"
    config.write_bytes(b"[Overall]\nhost = caf\xe9\n")
    with pytest.raises(ConfigValueError, match=f"{config} is not UTF-8 text"):
        _daemon(tmp_path, config)


def test_an_empty_secret_file_is_an_error_naming_it_and_the_config(tmp_path: Path) -> None:
    (tmp_path / "cryo.key").write_text("\n")
    config = tmp_path / "daemon.ini"
    config.write_text("[Overall]\nsecret_file = cryo.key\n")
    with pytest.raises(ConfigValueError) as caught:
        _daemon(tmp_path, config)
    assert str(tmp_path / "cryo.key") in str(caught.value)
    assert str(config) in str(caught.value)
    assert "is empty" in str(caught.value)
