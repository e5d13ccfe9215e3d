"""Command line: ``python -m lab_utils.socket_comm send|shell``."""

from __future__ import annotations

import argparse
import sys

from lab_utils.socket_comm.client import Client

ERROR_PREFIXES = ("Error!", "Unknown exception!", "Daemon error")
"""Replies that make ``send`` exit with status 1."""


def _client(args: argparse.Namespace, persistent: bool = False) -> Client:
    return Client(
        config_file=args.config, host=args.host, port=args.port, secret=args.secret,
        timeout=args.timeout, persistent=persistent, tls=args.tls, tls_ca=args.tls_ca,
        tls_cert=args.tls_cert, tls_key=args.tls_key,
    )  # fmt: skip


def _send(args: argparse.Namespace) -> int:
    if not args.words:
        sys.stderr.write("send: give the command to send, e.g. status\n")
        return 2
    try:
        reply = _client(args).send_message(" ".join(args.words))
    except OSError as error:
        sys.stderr.write(f"cannot reach the daemon: {error}\n")
        return 2
    sys.stdout.write(reply + ("" if reply.endswith("\n") else "\n"))
    return 1 if reply.startswith(ERROR_PREFIXES) else 0


def commands_from_help(help_text: str) -> dict[str, list[str]]:
    """Return each command of a daemon's help reply with its options (for completion).

    Parameters
    ----------
    help_text : str
        A reply holding the ``DAEMON HELP`` section (any invalid command gets one).

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


def _install_completion(client: Client) -> None:
    try:
        import readline  # line editing and history where available
    except ImportError:
        return
    try:
        # Any invalid command gets the help reply.
        commands = commands_from_help(client.send_message("?"))
    except OSError:
        return

    def complete(text: str, state: int) -> str | None:
        words = readline.get_line_buffer().split()
        first = len(words) == 0 or (
            len(words) == 1 and not readline.get_line_buffer().endswith(" ")
        )
        pool = list(commands) if first else commands.get(words[0], [])
        matches = [word for word in pool if word.startswith(text)]
        return matches[state] + " " if state < len(matches) else None

    readline.set_completer(complete)
    readline.parse_and_bind("tab: complete")


def _shell(args: argparse.Namespace) -> int:
    client = _client(args, persistent=True)
    _install_completion(client)
    sys.stdout.write(f"connected to {client.host}:{client.port}; 'exit' or Ctrl+D leaves\n")
    with client:
        while True:
            try:
                line = input("> ").strip()
            except EOFError:
                sys.stdout.write("\n")
                return 0
            if line in ("exit", "bye"):
                return 0
            if not line:
                continue
            try:
                sys.stdout.write(client.send_message(line).rstrip("\n") + "\n")
            except OSError as error:
                sys.stderr.write(f"cannot reach the daemon: {error}\n")
                return 2
            if line == "quit":
                return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m lab_utils.socket_comm")
    parser.add_argument("--host", help="daemon address (default localhost)")
    parser.add_argument("--port", type=int, help="daemon port (default 1507)")
    parser.add_argument("--config", help="INI file with [Overall] host and port")
    parser.add_argument("--secret", help="shared secret of the daemon")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait")
    parser.add_argument("--tls", action="store_true", help="speak TLS (system CAs)")
    parser.add_argument("--tls-ca", help="speak TLS, trusting this CA bundle")
    parser.add_argument("--tls-cert", help="client certificate (PEM) for daemons that ask")
    parser.add_argument("--tls-key", help="its private key, if not in --tls-cert")
    commands = parser.add_subparsers(dest="command", required=True)
    send = commands.add_parser("send", help="send one command, print the reply")
    # REMAINDER: the daemon's own options (`setpoint --kelvin 4.2`) pass through untouched.
    send.add_argument("words", nargs=argparse.REMAINDER, help="the command, e.g. status or quit")
    send.set_defaults(run=_send)
    shell = commands.add_parser("shell", help="interactive prompt to a daemon")
    shell.set_defaults(run=_shell)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
