"""The argument parser of a daemon: errors raise instead of exiting; a stable help text."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn


class MessageError(BaseException):
    """A control message could not be parsed; the text says why.

    Derives from :class:`BaseException`, as in 0.4, so daemons that catch it keep working.
    """


class ArgumentParser(argparse.ArgumentParser):
    """:class:`argparse.ArgumentParser` for control messages.

    No ``-h`` option by default, :meth:`error` raises :class:`MessageError` instead of
    exiting the daemon, and :meth:`full_help` gives the help reply. Subparsers made with
    ``add_subparsers`` are of this class too. Keyword arguments are forwarded to argparse.
    """

    def __init__(self, *args: Any, add_help: bool = False, **kwargs: Any) -> None:
        kwargs["add_help"] = add_help
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Raise :class:`MessageError` with ``message`` (argparse would exit).

        Parameters
        ----------
        message : str
            What is wrong with the command.

        Raises
        ------
        MessageError
            Always.
        """
        raise MessageError(message)

    def full_help(self) -> str:
        """Return the help of every command and option.

        The layout is that of 0.4 (``DAEMON HELP``, the description, the usage, then one line
        per command and one per argument) on every Python version; positional arguments
        are listed by their name.

        Returns
        -------
        str
            The help text.
        """
        lines = [
            "",
            "DAEMON HELP",
            self.description or "",
            self.format_usage().rstrip(),
            "Commands:",
        ]
        for name, sub in _commands(self):
            lines.append(f"    {name:<15}   {sub.description or ''}")
            for action in sub._actions:
                if isinstance(action, argparse._HelpAction):
                    continue
                label = (
                    action.option_strings[0]
                    if action.option_strings
                    else (action.metavar or action.dest)
                )
                lines.append(f"        {label!s:<15}    {action.help or ''}".rstrip())
        lines += ["", self.epilog or ""]
        return "\n".join(lines)

    def command_help(self, name: str) -> str:
        """Return the help of one command: its description, usage and options.

        Parameters
        ----------
        name : str
            The command word.

        Returns
        -------
        str
            The help text, one line per option as in :meth:`full_help`.

        Raises
        ------
        MessageError
            No command has that name; the message lists the commands.
        """
        commands = dict(_commands(self))
        sub = commands.get(name)
        if sub is None:
            raise MessageError(
                f"unknown command {name!r} (commands: {', '.join(sorted(commands))})"
            )
        lines = [f"{name}: {sub.description or ''}".rstrip(), sub.format_usage().rstrip()]
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            label = ", ".join(action.option_strings) or (action.metavar or action.dest)
            lines.append(f"    {label!s:<15}    {action.help or ''}".rstrip())
        return "\n".join(lines)


def _commands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    found: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:  # aliases map to the same parser
                    seen.add(id(sub))
                    found.append((name, sub))
    return found
