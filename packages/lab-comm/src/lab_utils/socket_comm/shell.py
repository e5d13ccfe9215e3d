"""The ``shell`` subcommand: an interactive prompt to one daemon, with Tab completion."""

from __future__ import annotations

import argparse
import sys

from lab_utils.socket_comm.cli import client_of, send_or_explain, where
from lab_utils.socket_comm.client import Client

PROBE = "help"
"""Sent once to learn the daemon's commands: daemons with the built-in ``help`` list them;
older ones answer an unknown command with the same listing after an ``Error!`` line."""

LEAVE = ("exit", "bye")
"""Lines that end the shell without sending anything."""


def commands_from_help(help_text: str) -> dict[str, list[str]]:
    """Return each command of a daemon's help reply with its options (for completion).

    Parameters
    ----------
    help_text : str
        A reply holding the ``DAEMON HELP`` listing (``help``, or any unknown command on
        daemons without a built-in ``help``).

    Returns
    -------
    dict
        Command name to the list of its long options.
    """
    commands: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in help_text.splitlines():
        if line.startswith("        ") and current is not None:
            label = line.split()[0] if line.strip() else ""
            if label.startswith("--"):
                current.append(label.rstrip(","))
        elif line.startswith("    ") and line.strip():
            current = commands.setdefault(line.split()[0], [])
    return commands


def _install_completion(commands: dict[str, list[str]]) -> None:
    try:
        import readline  # line editing and history where available
    except ImportError:
        return

    def complete(text: str, state: int) -> str | None:
        buffer = readline.get_line_buffer()
        words = buffer.split()
        first = not words or (len(words) == 1 and not buffer.endswith(" "))
        pool = list(commands) if first else commands.get(words[0], [])
        matches = [word for word in pool if word.startswith(text)]
        return matches[state] + " " if state < len(matches) else None

    readline.set_completer(complete)
    readline.parse_and_bind("tab: complete")


def run_shell(args: argparse.Namespace) -> int:
    """Run ``shell``: say "connected" once the daemon has answered, then one command a line.

    Returns
    -------
    int
        0 when the user leaves (``exit``, ``bye``, ``quit`` or Ctrl+D).

    Raises
    ------
    CommandLineError
        The daemon cannot be reached or refuses us (exit status 2).
    """
    with client_of(args, persistent=True) as client:
        commands = commands_from_help(send_or_explain(client, PROBE))
        _install_completion(commands)
        listed = f"{len(commands)} commands; Tab completes" if commands else "no command list"
        sys.stdout.write(f"connected to {where(client)} ({listed}); 'exit' or Ctrl+D leaves\n")
        return _loop(client)


def _loop(client: Client) -> int:
    while True:
        try:
            line = input("> ").strip()
        except EOFError:
            sys.stdout.write("\n")
            return 0
        except KeyboardInterrupt:  # as in Python's prompt: drop the line, stay
            sys.stdout.write("\n")
            continue
        if line in LEAVE:
            return 0
        if not line:
            continue
        try:
            reply = send_or_explain(client, line)
        except KeyboardInterrupt:
            client.close()  # the reply may still come: never read it as the next one's
            sys.stdout.write("\ninterrupted; the reply is dropped\n")
            continue
        sys.stdout.write(reply.rstrip("\n") + "\n")
        if line == "quit":
            return 0
