"""configure_logging reads the 0.4 INI format and sets up logging once, not twice."""

from __future__ import annotations

import configparser
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from lab_utils.custom_logging import (
    SUCCESS,
    ConfigError,
    LevelError,
    OptionValueError,
    configure_logging,
    getLogger,
    parse_level,
    shutdown_logging,
    string_to_bool,
)

OLD_STYLE = """
[ConsoleLogger]
active = 1
log_level = DEBUG
use_coloured_output = 0

[FileLogger]
active = 1
log_path = {path}
log_basename = cryo
log_extension = .log
log_level = INFO

[AlarmLogger]
active = 0

[MailHandler]
active = 0

[SlackLogger]
active = 0
"""


def _lines(directory: Path) -> list[dict[str, Any]]:
    (file,) = directory.glob("cryo_*.log")
    return [json.loads(line) for line in file.read_text().splitlines()]


def test_scenario_15_app_logger_reaches_console_and_daily_json_file(
    ini: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    configure_logging(config_file=ini(OLD_STYLE.format(path=logs)), logger_name="Cryo Monitor")
    getLogger().info("pump started")
    getLogger().debug("driver detail")
    shutdown_logging()
    out = capsys.readouterr().out
    assert "pump started" in out and "driver detail" in out
    lines = _lines(logs)
    assert list(lines[-1]) == ["asctime", "levelname", "name", "module", "funcName", "message"]
    assert lines[-1]["name"] == "Cryo Monitor"
    assert [line["message"] for line in lines if line["name"] == "Cryo Monitor"] == ["pump started"]


def test_scenario_16_none_gives_console_only_info(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(None)
    getLogger().info("visible")
    getLogger().debug("hidden")
    shutdown_logging()
    out = capsys.readouterr().out
    assert "visible" in out
    assert "hidden" not in out


def test_scenario_16_inactive_sections_may_be_incomplete(
    ini: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = ini("[AlarmLogger]\nactive = 0\n[MailHandler]\nactive = 0\n[SlackLogger]\nactive = no\n")
    configure_logging(path)
    getLogger().info("still logging")
    shutdown_logging()
    assert "still logging" in capsys.readouterr().out


def test_second_call_replaces_the_first_without_duplicates(
    ini: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = ini(OLD_STYLE.format(path=tmp_path / "logs"))
    configure_logging(path, logger_name="app")
    configure_logging(path, logger_name="app")
    getLogger().warning("once")
    shutdown_logging()
    assert capsys.readouterr().out.count("once") == 1
    assert [line["message"] for line in _lines(tmp_path / "logs")].count("once") == 1


def test_other_libraries_are_not_forced_to_debug(ini: Any) -> None:
    configure_logging(ini("[ConsoleLogger]\nlog_level = WARNING\n"))
    assert logging.getLogger().level == logging.WARNING
    assert not logging.getLogger("some.library").isEnabledFor(logging.DEBUG)


def test_log_level_sets_the_app_logger_only(ini: Any) -> None:
    configure_logging(
        ini("[ConsoleLogger]\nlog_level = debug\n"), logger_name="level-test", log_level="error"
    )
    assert getLogger("level-test").level == logging.ERROR
    assert logging.getLogger("other").getEffectiveLevel() == logging.DEBUG


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("DEBUG", 10),
        ("info", 20),
        ("Success", SUCCESS),
        ("warning", 30),
        ("40", 40),
        (" critical ", 50),
    ],
)
def test_levels_any_case_or_number(text: str, level: int) -> None:
    assert parse_level(text) == level


def test_bad_level_names_the_option(ini: Any) -> None:
    path = ini("[FileLogger]\nactive = 1\nlog_path = x\nlog_basename = y\nlog_level = verbose\n")
    with pytest.raises(LevelError, match=r"\[FileLogger\] log_level = 'verbose'"):
        configure_logging(path)


def test_bad_level_is_a_configparser_error_for_old_callers(ini: Any) -> None:
    with pytest.raises(configparser.Error):
        configure_logging(ini("[ConsoleLogger]\nlog_level = loud\n"))


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        configure_logging(str(tmp_path / "nope.ini"))


def test_fallback_logs_to_stderr_instead_of_raising(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = configure_logging(str(tmp_path / "nope.ini"), fallback=True, logger_name="fb")
    logger.warning("fallback works")
    assert "fallback works" in capsys.readouterr().err


def test_bad_alarm_port_fails_the_setup(ini: Any) -> None:
    with pytest.raises(ConfigError, match=r"\[AlarmLogger\] port = 'ninety'"):
        configure_logging(ini("[AlarmLogger]\nactive = 1\nport = ninety\n"))


def test_broken_mail_section_disables_only_mail(
    ini: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(ini("[MailHandler]\nactive = 1\nmail_host = localhost\n"))
    getLogger().info("console still works")
    shutdown_logging()
    out = capsys.readouterr().out
    assert "mail handler disabled" in out
    assert "console still works" in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("1", True), ("T", True), ("y", True), ("YES", True), ("on", True),
     ("0", False), ("false", False), ("off", False), ("", False)],
)  # fmt: skip
def test_string_to_bool(text: str, expected: bool) -> None:
    assert string_to_bool(text) is expected


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_unknown_section_is_reported_once_with_the_closest_name(
    ini: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = ini(f"[Filelogger]\nactive = 1\nlog_path = {tmp_path}\nlog_basename = x\n")
    with caplog.at_level(logging.WARNING):
        configure_logging(path)
    (text,) = [t for t in _warnings(caplog) if "unknown" in t]
    assert text == f"unknown section [Filelogger] in {path}; did you mean [FileLogger]?"


def test_unknown_option_is_reported_once_with_the_closest_name(
    ini: Any, caplog: pytest.LogCaptureFixture
) -> None:
    path = ini("[ConsoleLogger]\nlog_levl = DEBUG\n")
    with caplog.at_level(logging.WARNING):
        configure_logging(path)
    (text,) = [t for t in _warnings(caplog) if "unknown" in t]
    assert text == (
        f"unknown option 'log_levl' in [ConsoleLogger] of {path}; did you mean 'log_level'?"
    )


def test_known_names_give_no_warning(
    ini: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        configure_logging(ini(OLD_STYLE.format(path=tmp_path / "logs")))
    assert _warnings(caplog) == []


@pytest.mark.parametrize("value", ["ture", "enabled", "2"])
def test_a_flag_that_does_not_parse_fails_the_setup(ini: Any, value: str) -> None:
    path = ini(f"[ConsoleLogger]\nactive = {value}\n")
    with pytest.raises(OptionValueError, match=rf"\[ConsoleLogger\] active = '{value}'") as info:
        configure_logging(path)
    assert path in str(info.value)
    assert isinstance(info.value, configparser.Error)


@pytest.mark.parametrize(
    ("value", "shown"),
    [*((v, True) for v in ("true", "1", "t", "y", "yes", "on", "TRUE", "Yes")),
     *((v, False) for v in ("false", "0", "f", "n", "no", "off", "OFF"))],
)  # fmt: skip
def test_every_flag_0_4_files_use_still_parses(
    ini: Any, value: str, shown: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(ini(f"[ConsoleLogger]\nactive = {value}\n"))
    getLogger().info("shown?")
    shutdown_logging()
    assert ("shown?" in capsys.readouterr().out) is shown


@pytest.mark.parametrize(
    ("section", "option", "value"),
    [("AlarmLogger", "timeout", "soon"), ("MailHandler", "rate_limit", "many"),
     ("SlackLogger", "rate_period", "-1"), ("MailHandler", "security", "tls")],
)  # fmt: skip
def test_a_number_or_choice_that_does_not_parse_fails_the_setup(
    ini: Any, section: str, option: str, value: str
) -> None:
    path = ini(f"[{section}]\nactive = 1\nlog_level = WARNING\nport = 9020\n{option} = {value}\n")
    with pytest.raises(OptionValueError, match=rf"\[{section}\] {option} = '{value}'"):
        configure_logging(path)


@pytest.mark.parametrize("missing", ["port", "log_level"])
def test_active_alarm_section_without_a_required_option_raises(ini: Any, missing: str) -> None:
    options = {"active": "1", "port": "9020", "log_level": "WARNING"}
    del options[missing]
    path = ini("[AlarmLogger]\n" + "".join(f"{k} = {v}\n" for k, v in options.items()))
    with pytest.raises(configparser.NoOptionError) as info:
        configure_logging(path)
    assert (info.value.section, info.value.option) == ("AlarmLogger", missing)
    assert path in str(info.value)


def test_file_section_without_a_required_option_is_disabled_naming_it(
    ini: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = ini(
        f"[FileLogger]\nactive = 1\nlog_path = {tmp_path}\nlog_basename = x\nlog_level = INFO\n"
    )
    with caplog.at_level(logging.WARNING):
        configure_logging(path)
    (text,) = [t for t in _warnings(caplog) if "disabled" in t]
    assert "NoOptionError" in text and "'log_extension'" in text and "'FileLogger'" in text
    assert list(tmp_path.glob("x_*")) == []


def test_app_name_follows_configure_logging() -> None:
    import lab_utils.custom_logging as custom_logging

    configure_logging(None, logger_name="first")
    assert custom_logging.APP_NAME == "first"
    configure_logging(None, logger_name="second")
    assert custom_logging.APP_NAME == "second"
    assert getLogger().name == "second"


def test_a_typo_is_said_on_stderr_when_no_sink_shows_warnings(
    ini: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = ini("[ConsoleLogger]\nactive = 0\n[Filelogger]\nactive = 1\n")
    configure_logging(path)
    err = capsys.readouterr().err
    assert err.count("unknown section [Filelogger]") == 1
    assert "did you mean [FileLogger]?" in err


def test_a_typo_shown_by_the_console_is_not_repeated_on_stderr(
    ini: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(ini("[ConsoleLogger]\nlog_levl = INFO\n"))
    shutdown_logging()
    captured = capsys.readouterr()
    assert captured.out.count("unknown option 'log_levl'") == 1
    assert "log_levl" not in captured.err
