"""The database INI file: missing file, missing option, bad value, unknown names."""

from __future__ import annotations

import configparser
import logging
from pathlib import Path

import pytest

from lab_utils.database import ConfigFileNotFoundError, ConfigValueError, Database

GOOD = (
    "[Overall]\nhost = db.lab\nport = 5433\ndatabase = beam\nuser = cw-beam\npassfile = ~/.pgpass\n"
)


def _ini(tmp_path: Path, text: str) -> str:
    path = tmp_path / "database.ini"
    path.write_text(text)
    return str(path)


def test_a_good_file_sets_every_option(tmp_path: Path) -> None:
    db = Database(config_file=_ini(tmp_path, GOOD))
    assert (db.host, db.port, db.database, db.user) == ("db.lab", 5433, "beam", "cw-beam")
    assert db.passfile == str(Path("~/.pgpass").expanduser())


def test_a_missing_file_is_a_configparser_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.ini"
    with pytest.raises(configparser.Error, match=r"nowhere\.ini") as raised:
        Database(config_file=str(missing))
    assert isinstance(raised.value, ConfigFileNotFoundError)
    assert isinstance(raised.value, FileNotFoundError)


def test_a_missing_option_names_section_option_and_file(tmp_path: Path) -> None:
    path = _ini(tmp_path, GOOD.replace("user = cw-beam\n", ""))
    with pytest.raises(configparser.NoOptionError, match=r"'user'.*'Overall'.*database\.ini"):
        Database(config_file=path)
    with pytest.raises(configparser.NoSectionError, match=r"Overall.*database\.ini"):
        Database(config_file=_ini(tmp_path, "[General]\nhost = x\n"))


@pytest.mark.parametrize("port", ["abc", "0", "70000", ""])
def test_a_bad_port_names_option_value_and_what_is_accepted(tmp_path: Path, port: str) -> None:
    path = _ini(tmp_path, GOOD.replace("port = 5433", f"port = {port}"))
    with pytest.raises(ConfigValueError, match=rf"'{port}'.*'port'.*\[Overall\].*1 to 65535"):
        Database(config_file=path)


def test_unknown_options_and_sections_are_warnings_with_the_closest_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = GOOD.replace("port = 5433", "port = 5433\nprot = 5434") + "[Overal]\nx = 1\n"
    with caplog.at_level(logging.WARNING):
        db = Database(config_file=_ini(tmp_path, text))
    assert db.port == 5433  # the file still works
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("unknown option 'prot'" in m and "did you mean 'port'?" in m for m in messages)
    assert any("unknown section [Overal]" in m and "[Overall]" in m for m in messages)


def test_a_relative_passfile_is_relative_to_the_file(tmp_path: Path) -> None:
    db = Database(config_file=_ini(tmp_path, GOOD.replace("~/.pgpass", "secrets/pgpass")))
    assert db.passfile == str(tmp_path / "secrets" / "pgpass")


def test_a_file_that_is_not_utf8_text_is_a_configparser_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "database.ini"
    path.write_bytes(GOOD.encode() + b"# caf\xe9\n")
    with pytest.raises(configparser.Error, match=r"database\.ini is not UTF-8 text"):
        Database(config_file=str(path))
