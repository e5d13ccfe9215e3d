"""The argument parser of a daemon: errors raise instead of exiting; a stable help text."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from gettext import gettext

# typing costs milliseconds at import; annotations are strings here, mypy reads this block.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

# Where argparse parks the words a subcommand did not take, for the top parser to report.
_UNRECOGNIZED = "_unrecognized_args"


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

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        """Parse ``args`` as argparse does; a daemon's usual parser takes a shorter way.

        A daemon's parser usually holds nothing but its commands. For such a parser, and
        a first word that names a command, argparse's own top-level pass only hands every
        word to the command's parser; that pass is most of the parsing time of a short
        command, so it is skipped: the subcommand action is called directly, with the
        same defaults, the same namespace and the same errors. Any other parser or
        message goes through argparse unchanged.

        Parameters
        ----------
        args : sequence of str, optional
            The words (None: ``sys.argv[1:]``, as argparse).
        namespace : argparse.Namespace, optional
            Where to put the values (None: a new one).

        Returns
        -------
        argparse.Namespace
            The parsed values.

        Raises
        ------
        MessageError
            The words do not make a valid command.
        """
        action = self._commands_only()
        if action is None or args is None or namespace is not None or not args:
            return super().parse_args(args, namespace)
        words = list(args)
        first = words[0]
        if first not in action.choices or first[:1] in self.prefix_chars or "--" in words:
            return super().parse_args(words, namespace)
        result = argparse.Namespace()
        # What parse_known_args does before its pass, in its order.
        if action.dest is not argparse.SUPPRESS and action.default is not argparse.SUPPRESS:
            setattr(result, action.dest, action.default)
        for dest, value in self._defaults.items():
            if not hasattr(result, dest):
                setattr(result, dest, value)
        try:
            action(self, result, words)
        except argparse.ArgumentError as error:
            self.error(str(error))
        extras = vars(result).pop(_UNRECOGNIZED, None)
        if extras:
            self.error(gettext("unrecognized arguments: %s") % " ".join(extras))
        return result

    def _commands_only(self) -> argparse._SubParsersAction[Any] | None:
        """Return the subcommand action when it is all the parser holds, else None."""
        actions = self._actions
        if (
            len(actions) != 1
            or not isinstance(actions[0], argparse._SubParsersAction)
            or self._mutually_exclusive_groups
            or self.fromfile_prefix_chars is not None
            or not self.exit_on_error
        ):
            return None
        return actions[0]

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
