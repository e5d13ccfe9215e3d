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
        ("port = -1", "port", "a whole number from 0 to 65535"),
        ("connection_timeout = soon", "connection_timeout", "a number of seconds above 0"),
        ("connection_timeout = inf", "connection_timeout", "and at most 1e9"),
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
    for pem in ("server.pem", "server.key", "lab-ca.pem"):  # read when the daemon starts
        (tmp_path / pem).write_text("")
    config = tmp_path / "daemon.ini"
    config.write_text(
        "[Overall]\nhost = 127.0.0.1\nport = 1600\nsecret_file = cryo.key\n"
        "connection_timeout = 10\nmax_connections = 8\nmax_message_size = 1024\n"
        "tls_cert = server.pem\ntls_key = server.key\ntls_ca = lab-ca.pem\n"
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


def test_an_empty_path_names_no_file_as_in_the_client_and_the_fleet(tmp_path: Path) -> None:
    config = tmp_path / "daemon.ini"
    config.write_text(
        "[Overall]\nhost = 127.0.0.1\nport = 0\nsecret_file =\ntls_cert =\ntls_key =\ntls_ca =\n"
    )
    server = _daemon(tmp_path, config)
    assert (server.secret, server.tls_cert, server.tls_key, server.tls_ca) == (None,) * 4
    with server.start_in_thread() as running:  # plain text, no secret asked
        assert Client(host="127.0.0.1", port=running.address).send_message("ping") == "pong"
    fleet = tmp_path / "fleet.ini"
    fleet.write_text("[cryo]\nport = 1507\nsecret_file =\ntls_ca =\n")
    (member,), _ = read_fleet(fleet)
    assert (member.secret_file, member.tls_ca) == (None, None)


@pytest.mark.parametrize("option", ["secret_file", "tls_cert", "tls_key", "tls_ca"])
def test_a_file_option_naming_a_folder_or_nothing_is_one_error_naming_it(
    tmp_path: Path, option: str
) -> None:
    (tmp_path / "keys").mkdir()
    config = tmp_path / "daemon.ini"
    cert = "" if option == "tls_cert" else "tls_cert = server.pem\n"
    (tmp_path / "server.pem").write_text("")
    for value, reason in [("keys", "Is a directory"), ("keys/gone", "No such file or directory")]:
        config.write_text(f"[Overall]\nport = 0\n{cert}{option} = {value}\n")
        with pytest.raises(ConfigValueError) as caught:
            _daemon(tmp_path, config)
        assert str(caught.value) == (
            f"{option} {tmp_path / value} named in [Overall] of {config} cannot be read: {reason}"
        )


def test_tls_files_given_as_arguments_are_named_when_the_daemon_starts(tmp_path: Path) -> None:
    pid = tmp_path / "d.pid"
    server = Server(pid_file_name=str(pid), host="127.0.0.1", port=0, tls_cert=str(tmp_path))
    with pytest.raises(IsADirectoryError) as caught:
        server.start_in_thread()
    assert (caught.value.strerror, caught.value.filename) == (
        "TLS file is not a file (tls_cert)",
        str(tmp_path),
    )
    assert not pid.exists()  # the lock is released on this way out too
    bad_pem = tmp_path / "server.pem"
    bad_pem.write_text("not a certificate\n")
    server = Server(pid_file_name=str(pid), host="127.0.0.1", port=0, tls_cert=str(bad_pem))
    with pytest.raises(OSError, match=f"no usable certificate or key in tls_cert {bad_pem}: "):
        server.start_in_thread()


def test_tls_key_or_ca_without_a_certificate_is_an_error_not_plain_text(tmp_path: Path) -> None:
    (tmp_path / "lab-ca.pem").write_text("")
    config = tmp_path / "daemon.ini"
    config.write_text("[Overall]\nport = 0\ntls_ca = lab-ca.pem\n")
    with pytest.raises(ConfigValueError, match=r"^tls_ca given without tls_cert: TLS needs a cert"):
        _daemon(tmp_path, config)
    with pytest.raises(ConfigValueError, match=r"^tls_key given without tls_cert"):
        Server(pid_file_name=str(tmp_path / "d.pid"), port=0, tls_key=str(tmp_path / "k.pem"))
    assert not (tmp_path / "d.pid").exists()


@pytest.mark.parametrize("port", [-1, 65536])
def test_a_port_argument_out_of_range_is_refused_before_binding(tmp_path: Path, port: int) -> None:
    with pytest.raises(
        ValueError, match=f"port must be a whole number from 0 to 65535, not {port}"
    ):
        Server(pid_file_name=str(tmp_path / "d.pid"), port=port)


def test_a_config_path_that_cannot_be_read_is_an_error_not_a_missing_file(tmp_path: Path) -> None:
    # A folder is what a typo in a path often names; configparser skipped it as missing.
    with pytest.raises(ConfigValueError) as caught:
        _daemon(tmp_path, tmp_path)
    assert str(caught.value) == f"cannot read the config file {tmp_path}: Is a directory"
    assert not (tmp_path / "d.pid").exists()


def test_options_that_nothing_reads_are_reported_not_taken_in_silence(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Neither the daemon nor Client.config reads these: a client's timeout or TLS switch
    # written here would do nothing.
    config = tmp_path / "daemon.ini"
    config.write_text("[Overall]\nport = 0\ntimeout = 5\npersistent = yes\ntls = yes\n")
    with caplog.at_level(logging.WARNING):
        _daemon(tmp_path, config).close()
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert messages[0].startswith(f"Unknown option 'timeout' in [Overall] of {config}")
    assert [m.split("'")[1] for m in messages] == ["timeout", "persistent", "tls"]


def test_an_empty_host_still_binds_every_address_but_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "daemon.ini"
    config.write_text("[Overall]\nhost =\nport = 0\n")
    with caplog.at_level(logging.WARNING):
        server = _daemon(tmp_path, config)
    server.close()
    assert server.host == ""  # 0.4's meaning kept
    (message,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert message.startswith(f"Empty host in [Overall] of {config}: listening on every address")


def test_a_pid_file_in_a_missing_folder_names_the_option_and_what_to_do(tmp_path: Path) -> None:
    pid = tmp_path / "missing" / "cryo.pid"
    with pytest.raises(FileNotFoundError) as caught:
        Server(pid_file_name=str(pid), port=0)
    assert caught.value.filename == str(pid)  # still the OSError that zc.lockfile raised
    assert caught.value.strerror == (
        f"pid_file_name: cannot create the PID file, the folder {tmp_path / 'missing'} does"
        " not exist (create it, or name a PID file in an existing folder)"
    )


def test_a_pid_file_from_the_config_file_names_the_file_too(tmp_path: Path) -> None:
    config = tmp_path / "daemon.ini"
    config.write_text("[Overall]\nport = 0\npid_file_name = run/cryo.pid\n")
    with pytest.raises(ConfigValueError) as caught:
        Server(str(config))
    pid = tmp_path / "run" / "cryo.pid"  # relative to the config file's folder
    assert str(caught.value) == (
        f"pid_file_name of [Overall] in {config}: cannot create the PID file, the folder"
        f" {pid.parent} does not exist (create it, or name a PID file in an existing folder):"
        f" {pid}"
    )
    pid.parent.mkdir()
    server = Server(str(config))
    try:
        assert (server.pid_file_name, pid.exists()) == (str(pid), True)
    finally:
        server.close()
    # An argument still wins over the file, and is named as an argument.
    with pytest.raises(FileNotFoundError, match=r"^\[Errno 2\] pid_file_name: cannot create"):
        Server(str(config), str(tmp_path / "elsewhere" / "d.pid"))


@pytest.mark.parametrize("port", ["abc", "", 1507.5, True, [1507], None])
def test_a_port_that_is_no_whole_number_names_the_option_and_the_range(
    tmp_path: Path, port: object
) -> None:
    class Daemon(Server):
        pass

    if port is None:  # no argument: a class attribute is checked the same way
        Daemon.port = "abc"  # type: ignore[assignment]
        port = "abc"
        make = lambda: Daemon(pid_file_name=str(tmp_path / "d.pid"))  # noqa: E731
    else:
        make = lambda: Daemon(pid_file_name=str(tmp_path / "d.pid"), port=port)  # noqa: E731
    with pytest.raises(ValueError) as caught:
        make()
    assert str(caught.value) == f"port must be a whole number from 0 to 65535, not {port!r}"
    with pytest.raises(ValueError) as caught:
        Client(port=port)  # type: ignore[arg-type]
    assert str(caught.value) == f"port must be a whole number from 1 to 65535, not {port!r}"
    assert not (tmp_path / "d.pid").exists()


def test_a_port_as_text_of_a_whole_number_is_still_accepted(tmp_path: Path) -> None:
    server = Server(pid_file_name=str(tmp_path / "d.pid"), port="1600")  # type: ignore[arg-type]
    server.close()
    assert (server.port, Client(port="1600").port) == (1600, 1600)  # type: ignore[arg-type]
