"""The sections and options of the logging INI file, read strictly.

0.4 read every value it did not recognise as false or as a default; here a value that does
not parse is an error naming section, option and file, an unknown section or option (a
typo) is a warning naming the closest known name, and an option 0.4 required is required
again (:class:`configparser.NoOptionError`).
"""

from __future__ import annotations

import configparser
import os

from lab_utils.custom_logging.levels import ConfigError, LevelError, OptionValueError, parse_level

TRUE_STRINGS = ("true", "1", "t", "y", "yes", "on")
"""What :func:`string_to_bool` reads as true (any case)."""

FALSE_STRINGS = ("false", "0", "f", "n", "no", "off", "")
"""What the INI file may say for false (any case): what 0.4 files use for it."""

SECTIONS: dict[str, tuple[str, ...]] = {
    "ConsoleLogger": ("active", "log_level", "use_coloured_output", "journal_format"),
    "FileLogger": ("active", "log_path", "log_basename", "log_extension", "log_level"),
    "AlarmLogger": ("active", "host", "port", "log_level", "timeout"),
    "MailHandler": (
        "active", "credentials_file", "recipients", "mail_host", "port", "sender", "subject",
        "log_level", "security", "ca_file", "timeout", "rate_limit", "rate_period",
    ),
    "SlackLogger": (
        "active", "webhook_url", "api_file", "channel", "user", "api_url", "ca_file",
        "timeout", "rate_limit", "rate_period", "log_level",
    ),
}  # fmt: skip
"""Every section of the logging file and the options it knows."""


def string_to_bool(s: str) -> bool:
    """Parse a variety of strings (e.g. ``'true'`` or ``'1'``) to a boolean.

    As in 0.4, anything that is not a true string is False; the INI file is read with
    the strict :meth:`Section.flag` instead.

    Parameters
    ----------
    s : str
        The string to parse.

    Returns
    -------
    bool
        True if ``s`` is one of ``true``, ``1``, ``t``, ``y``, ``yes``, ``on`` (any case).
    """
    return s.strip().lower() in TRUE_STRINGS


class IniFile(configparser.ConfigParser):
    """A parsed logging file that remembers where it came from (for messages).

    Parameters
    ----------
    path : str, optional
        The file read; None for the empty configuration of ``configure_logging(None)``.
    """

    def __init__(self, path: str | None = None) -> None:
        super().__init__()
        self.path = path

    @property
    def where(self) -> str:
        """How messages name this file."""
        return self.path if self.path is not None else "the logging configuration"

    def section(self, name: str) -> Section:
        """Return the strict reader of section ``name`` (which may be absent)."""
        return Section(self, name)

    def unknown_names(self) -> list[str]:
        """One warning text per unknown section or option, with the closest known name."""
        import difflib  # only needed here, not at import time

        texts = []
        defaults = set(self.defaults())
        every_option = {option for options in SECTIONS.values() for option in options}
        for option in sorted(defaults - every_option):
            texts.append(
                _unknown(f"option '{option}' in [DEFAULT] of {self.where}", option, every_option)
            )
        lower = {name.lower(): name for name in SECTIONS}
        for name in self.sections():
            if name not in SECTIONS:
                near = difflib.get_close_matches(name.lower(), lower, n=1)
                hint = (
                    f"; did you mean [{lower[near[0]]}]?"
                    if near
                    else (f"; known sections: {', '.join(f'[{s}]' for s in SECTIONS)}")
                )
                texts.append(f"unknown section [{name}] in {self.where}{hint}")
                continue
            for option in self.options(name):
                if option not in SECTIONS[name] and option not in defaults:
                    texts.append(
                        _unknown(
                            f"option '{option}' in [{name}] of {self.where}", option, SECTIONS[name]
                        )
                    )
        return texts


def _unknown(what: str, name: str, known: tuple[str, ...] | set[str]) -> str:
    import difflib

    near = difflib.get_close_matches(name, sorted(known), n=1)
    hint = (
        f"; did you mean '{near[0]}'?" if near else f"; known options: {', '.join(sorted(known))}"
    )
    return f"unknown {what}{hint}"


class Section:
    """Strict reading of one section: every value parses or fails with its name.

    Parameters
    ----------
    config : IniFile
        The parsed file.
    name : str
        The section name; reading an absent section gives the defaults.
    """

    def __init__(self, config: IniFile, name: str) -> None:
        self.config = config
        self.name = name

    def _error(self, option: str, value: str, accepted: str) -> OptionValueError:
        return OptionValueError(
            f"[{self.name}] {option} = {value!r} is not valid: {accepted} ({self.config.where})"
        )

    def has(self, option: str) -> bool:
        """Tell whether the section sets ``option``."""
        return self.config.has_option(self.name, option)

    def text(self, option: str, default: str | None = None) -> str | None:
        """Return the raw value of ``option`` (blanks around it stripped), or ``default``."""
        if not self.has(option):
            return default
        return self.config.get(self.name, option).strip()

    def required(self, option: str) -> str:
        """Return the value of ``option``, which 0.4 required too.

        Raises
        ------
        configparser.NoOptionError
            When the section lacks it; the message names the section, option and file.
        """
        if not self.has(option):
            error = configparser.NoOptionError(option, self.name)
            error.message = f"{error.message} ({self.config.where})"
            raise error
        return self.config.get(self.name, option).strip()

    def flag(self, option: str, default: bool | None = None) -> bool | None:
        """Return the boolean ``option``; ``default`` when absent.

        Raises
        ------
        OptionValueError
            When the value is neither a true nor a false string.
        """
        value = self.text(option)
        if value is None:
            return default
        if value.lower() in TRUE_STRINGS:
            return True
        if value.lower() in FALSE_STRINGS:
            return False
        raise self._error(
            option,
            value,
            f"use one of {', '.join(TRUE_STRINGS)} or {', '.join(FALSE_STRINGS[:-1])}",
        )

    def active(self, default: bool) -> bool:
        """Return the section's ``active`` flag."""
        return bool(self.flag("active", default))

    def level(self, default: str | None = None) -> int:
        """Return the section's ``log_level``; required when ``default`` is None."""
        value = self.required("log_level") if default is None else self.text("log_level", default)
        try:
            return parse_level(str(value), f"[{self.name}] log_level")
        except LevelError as error:
            raise LevelError(f"{error} ({self.config.where})") from None

    def number(self, option: str, default: float) -> float:
        """Return the non-negative number ``option``; ``default`` when absent."""
        value = self.text(option)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if not number >= 0:
            raise self._error(option, value, "use a number of seconds, 0 or more")
        return number

    def count(self, option: str, default: int) -> int:
        """Return the non-negative whole number ``option``; ``default`` when absent."""
        value = self.text(option)
        if value is None:
            return default
        if not value.isdigit():
            raise self._error(option, value, "use a whole number, 0 or more")
        return int(value)

    def port(self, option: str = "port", default_word: tuple[str, int] | None = None) -> int:
        """Return the required TCP port ``option``: 1-65535, or ``default_word``'s word."""
        value = self.required(option)
        if default_word is not None and value.lower() == default_word[0]:
            return default_word[1]
        if value.isdigit() and 0 < int(value) < 65536:
            return int(value)
        word = f"'{default_word[0]}' ({default_word[1]}) or " if default_word else ""
        raise self._error(option, value, f"use {word}a port number 1-65535")

    def choice(self, option: str, choices: tuple[str, ...], default: str) -> str:
        """Return ``option``, which must be one of ``choices`` (any case)."""
        value = (self.text(option) or default).lower()
        if value not in choices:
            raise self._error(option, value, f"use one of {', '.join(choices)}")
        return value

    def path(self, option: str) -> str:
        """Return the required path ``option``, ``~`` expanded (relative: to the working folder)."""
        return os.path.expanduser(self.required(option))  # noqa: PTH111


def read_config(config_file: str | os.PathLike[str] | None) -> IniFile:
    """Parse ``config_file`` (``~`` expanded); None gives an empty configuration.

    Raises
    ------
    ConfigError
        When a file name was given and the file does not exist (0.4 silently ignored it).
    """
    if config_file is None:
        return IniFile()
    # os.path, not pathlib: pathlib costs milliseconds at import and nothing else needs it.
    path = os.path.abspath(os.path.expanduser(config_file))  # noqa: PTH100, PTH111
    if not os.path.isfile(path):  # noqa: PTH113
        raise ConfigError(f"logging config file {path} not found")
    config = IniFile(path)
    config.read(path, encoding="utf-8")
    return config
