"""The command line: ``lab-comm`` / ``python -m lab_utils.socket_comm send|shell|fleet``.

Exit codes: 0 success; 1 the daemon answered with an error (or, for ``fleet``, not every
daemon is up); 2 a usage, configuration or connection problem. Errors are one line on
stderr, ``error: <what> (<where>)``, with a ``hint:`` line when there is an obvious next
step; ``--debug`` (or ``LAB_UTILS_DEBUG=1``) adds the traceback and the client's log.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from lab_utils.custom_logging import getLogger
from lab_utils.socket_comm import ports
from lab_utils.socket_comm.__about__ import __version__
from lab_utils.socket_comm.client import Client
from lab_utils.socket_comm.connection_errors import ERROR_REPLIES, explain, explain_refusal
from lab_utils.socket_comm.inifile import MAX_SECONDS, MAX_SECONDS_TEXT, read_secret_file
from lab_utils.socket_comm.ports import checked_port
from lab_utils.socket_comm.tls import is_tls_error

DISTRIBUTION = "lab-comm"
"""Name printed by ``--version``."""

SECRET_VARIABLE = "LAB_COMM_SECRET"  # noqa: S105 - the variable's name, not a secret
"""Environment variable holding the shared secret when no ``--secret-file`` is given."""


class CommandLineError(Exception):
    """A problem to report in one line (and a hint), exiting with status 2.

    Parameters
    ----------
    what : str
        What went wrong, with where in parentheses.
    hint : str, optional
        The obvious next step.
    cause : BaseException, optional
        The underlying exception (its traceback is shown with ``--debug``).
    """

    def __init__(
        self, what: str, hint: str | None = None, cause: BaseException | None = None
    ) -> None:
        super().__init__(what)
        self.what = what
        self.hint = hint
        self.cause = cause


class CommandLineParser(argparse.ArgumentParser):
    """argparse with the suite's one-line usage errors (exit status 2), as ``lab-db``'s.

    Its subcommands' parsers are of this class too (argparse makes them of the parent's).
    """

    def error(self, message: str) -> NoReturn:
        """Print ``error: message`` and a hint, then exit with status 2 (not the usage)."""
        self.exit(2, f"error: {message}\nhint: {self.prog} --help\n")


def connection_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """Add the options that say which daemon and how; ``suppress`` for subcommands.

    The same options on the main parser (with defaults) and on each subcommand (with
    ``SUPPRESS``, so an option given before the subcommand is not reset) make
    ``--port 1508 send status`` and ``send --port 1508 status`` alike.
    """

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("daemon")
    group.add_argument(
        "--host", type=host_name, default=default(None), help="daemon address (default localhost)"
    )
    group.add_argument(
        "--port", type=port_number, default=default(None), help="daemon port (default 1507)"
    )
    group.add_argument(
        "--config",
        default=default(None),
        metavar="FILE",
        help="INI file with [Overall] host, port and optionally secret_file (the daemon's own"
        " file will do)",
    )
    group.add_argument(
        "--secret-file",
        default=default(None),
        metavar="FILE",
        help=f"file holding the daemon's shared secret (or set {SECRET_VARIABLE})",
    )
    group.add_argument(
        "--secret",
        default=default(None),
        help="the shared secret itself; avoid: it shows in `ps` and in the shell history",
    )
    group.add_argument(
        "--tls", action="store_true", default=default(False), help="speak TLS (system CAs)"
    )
    group.add_argument(
        "--tls-ca", default=default(None), metavar="FILE", help="speak TLS, trusting this CA bundle"
    )
    group.add_argument(
        "--tls-cert",
        default=default(None),
        metavar="FILE",
        help="client certificate (PEM) for daemons that ask",
    )
    group.add_argument(
        "--tls-key",
        default=default(None),
        metavar="FILE",
        help="its private key, if not in --tls-cert",
    )
    general_options(parser, suppress)


def host_name(text: str) -> str:
    """Parse the address of a daemon (an argparse ``type``): not empty.

    Raises
    ------
    argparse.ArgumentTypeError
        ``text`` is empty or blank (an unset variable in ``--host "$X"``).
    """
    if not text.strip():
        raise argparse.ArgumentTypeError("give a host name or address, not an empty one")
    return text.strip()


def port_number(text: str) -> int:
    """Parse the port of a daemon to connect to (an argparse ``type``).

    Raises
    ------
    argparse.ArgumentTypeError
        ``text`` is not a whole number from 1 to 65535.
    """
    try:
        return checked_port(text, ports.CONNECT)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"give a port from {ports.CONNECT} to {ports.HIGHEST}, not {text!r}"
        ) from None


def seconds(text: str) -> float:
    """Parse a positive number of seconds (an argparse ``type``).

    Raises
    ------
    argparse.ArgumentTypeError
        ``text`` is not a number above 0 (0 would turn waiting into not waiting at all)
        and at most :data:`~lab_utils.socket_comm.inifile.MAX_SECONDS`.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= MAX_SECONDS:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(
            f"give a number of seconds above 0 and at most {MAX_SECONDS_TEXT}, not {text}"
        )
    return value


def general_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """Add ``--timeout`` and ``--debug`` (``suppress`` for subcommands: see above)."""
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=argparse.SUPPRESS if suppress else None,
        metavar="SECONDS",
        help="seconds to wait for a connection and for each reply (default 30; fleet: 3)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="show tracebacks and the client's log (or set LAB_UTILS_DEBUG=1)",
    )


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """Return the parser of the whole command line.

    Parameters
    ----------
    prog : str, optional
        The program name in usage lines (default: how it was started).

    Returns
    -------
    argparse.ArgumentParser
        The parser; each subcommand sets ``run``.
    """
    from lab_utils.socket_comm import fleet, shell  # the subcommands import this module

    parser = CommandLineParser(
        prog=prog or _prog(),
        description="Talk to lab_utils.socket_comm daemons: send a command, open a shell,"
        " or see a fleet of daemons at a glance.",
        epilog="Exit status: 0 success, 1 the daemon answered with an error (fleet: not all"
        " up), 2 a usage, configuration or connection problem.",
    )
    parser.add_argument("--version", action="version", version=f"{DISTRIBUTION} {__version__}")
    connection_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    send = commands.add_parser(
        "send",
        help="send one command, print the reply",
        description="Send one command and print the reply. Options before the command"
        " words are ours; from the first word on, everything goes to the daemon.",
    )
    connection_options(send, suppress=True)
    # REMAINDER: the daemon's own options (`setpoint --kelvin 4.2`) pass through untouched.
    send.add_argument("words", nargs=argparse.REMAINDER, help="the command, e.g. status or quit")
    send.set_defaults(run=run_send)
    prompt = commands.add_parser(
        "shell",
        help="interactive prompt to a daemon",
        description="Send one command per line; Tab completes commands and options.",
    )
    connection_options(prompt, suppress=True)
    prompt.set_defaults(run=shell.run_shell)
    fleet.add_parser(commands)
    return parser


def _prog() -> str:
    started_as = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return started_as if started_as == DISTRIBUTION else "python -m lab_utils.socket_comm"


def debug_wanted(args: argparse.Namespace) -> bool:
    """Tell whether tracebacks and logs were asked for (``--debug``, ``LAB_UTILS_DEBUG``)."""
    return bool(getattr(args, "debug", False)) or os.environ.get("LAB_UTILS_DEBUG") == "1"


def secret_of(args: argparse.Namespace) -> bytes | None:
    """Return the shared secret the user gave: ``--secret-file``, ``--secret``, the env.

    Returns
    -------
    bytes or None
        The secret; None leaves the choice to the config file's ``secret_file``.

    Raises
    ------
    CommandLineError
        Both ``--secret-file`` and ``--secret`` given, or the secret file is unusable.
    """
    if args.secret_file and args.secret is not None:
        raise CommandLineError("give either --secret-file or --secret, not both")
    if args.secret_file:
        try:
            return read_secret_file(args.secret_file, "--secret-file")
        except OSError as error:
            raise CommandLineError(f"{error.strerror} ({error.filename})", cause=error) from None
        except ValueError as error:
            raise CommandLineError(str(error), cause=error) from None
    if args.secret is not None:
        if not args.secret:  # an unset variable in `--secret "$X"`: never no secret silently
            raise CommandLineError("--secret is empty: give the secret, or leave the option out")
        return str(args.secret).encode()
    from_env = os.environ.get(SECRET_VARIABLE, "")
    return from_env.encode() if from_env else None


def client_of(args: argparse.Namespace, persistent: bool = False) -> Client:
    """Return the client the options describe.

    Raises
    ------
    CommandLineError
        The config, secret or TLS files are unusable.
    """
    if args.tls_key and not args.tls_cert:
        raise CommandLineError("--tls-key given without --tls-cert: give the certificate too")
    files = {"--config": args.config, "--tls-ca": args.tls_ca, "--tls-cert": args.tls_cert}
    files["--tls-key"] = args.tls_key
    try:
        return Client(
            config_file=args.config,
            host=args.host,
            port=args.port,
            secret=secret_of(args),
            timeout=30.0 if args.timeout is None else args.timeout,
            persistent=persistent,
            tls=args.tls,
            tls_ca=args.tls_ca,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
        )
    except configparser.Error as error:
        raise CommandLineError(str(error), cause=error) from None
    except OSError as error:
        if is_tls_error(error):
            raise unusable_tls(args, error) from None
        flag = next((f for f, path in files.items() if path and path == error.filename), None)
        reason = os.strerror(error.errno) if error.errno else str(error)
        what = f"cannot read the {flag} file: {reason}" if flag else str(error.strerror)
        raise CommandLineError(f"{what} ({error.filename})", cause=error) from None


def unusable_tls(args: argparse.Namespace, error: OSError) -> CommandLineError:
    """Return the one-line error for TLS files that hold no usable certificate or key.

    It names the flag that gave the file, as the other option errors do: ``--tls-ca`` when
    the CA bundle is the unusable one, else ``--tls-cert`` (and ``--tls-key`` when given,
    as ssl does not say which of the pair it could not use).

    Parameters
    ----------
    args : argparse.Namespace
        The options.
    error : OSError
        The :class:`ssl.SSLError` raised while building the client's TLS context.

    Returns
    -------
    CommandLineError
        ``no usable ... in the --flag file: <reason> (<path>)``.
    """
    reason = getattr(error, "reason", None) or error
    if args.tls_ca and not ca_usable(args.tls_ca):
        what, flags = "CA certificate", {"--tls-ca": args.tls_ca}
    else:
        what, flags = "certificate or key", {"--tls-cert": args.tls_cert, "--tls-key": args.tls_key}
    given = {flag: path for flag, path in flags.items() if path}
    if not given:  # --tls alone: the system's CA certificates (not ours to name a file of)
        what = f"no usable system CA certificates for --tls: {reason}"
        return CommandLineError(what, cause=error)
    files = " and ".join(given) + (" files" if len(given) > 1 else " file")
    return CommandLineError(
        f"no usable {what} in the {files}: {reason} ({', '.join(given.values())})", cause=error
    )


def ca_usable(ca: str) -> bool:
    """Tell whether the CA bundle ``ca`` loads, to name it alone when it does not."""
    import ssl  # imported already: an ssl.SSLError led here

    try:
        ssl.create_default_context(cafile=str(Path(ca).expanduser()))
    except (ssl.SSLError, OSError):
        return False
    return True


def where(client: Client) -> str:
    """Return ``host:port`` of ``client``'s daemon."""
    return f"{client.host}:{client.port}"


def send_or_explain(client: Client, message: str) -> str:
    """Send ``message``; turn a failure or an authentication refusal into one error.

    Raises
    ------
    CommandLineError
        The daemon could not be reached, or refused the message for want of the secret.
    """
    try:
        reply = client.send_message(message)
    except (OSError, ValueError) as error:
        what, hint = explain(error)
        raise CommandLineError(f"{what} ({where(client)})", hint, error) from None
    refusal = explain_refusal(reply)
    if refusal is not None:
        raise CommandLineError(f"{refusal[0]} ({where(client)})", refusal[1])
    return reply


def run_send(args: argparse.Namespace) -> int:
    """Run ``send``: print the reply; 1 when it is an error reply."""
    words = args.words[1:] if args.words[:1] == ["--"] else args.words
    if not words:
        raise CommandLineError("send: give the command to send, e.g. status")
    client = client_of(args)
    reply = send_or_explain(client, " ".join(words))
    if not reply:
        sys.stderr.write(
            f"warning: the daemon closed the connection without a reply ({where(client)})\n"
        )
        return 1
    sys.stdout.write(reply + ("" if reply.endswith("\n") else "\n"))
    return 1 if reply.startswith(ERROR_REPLIES) else 0


@contextlib.contextmanager
def client_log(debug: bool) -> Iterator[None]:
    """Route the client's log for one command line run, then restore it.

    The client logs a failure at ERROR before raising it (as in 0.4); the command line
    reports the failure itself, so that record is shown only with ``--debug``.
    """
    logger = getLogger()
    handler: logging.Handler = logging.StreamHandler(sys.stderr) if debug else logging.NullHandler()
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.propagate = False
    if debug:
        logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 success, 1 the daemon answered with an error (fleet: not all up), 2 a usage,
        configuration or connection problem.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as leaving:  # --help, --version, usage errors: argparse has spoken
        return leaving.code if isinstance(leaving.code, int) else 2
    debug = debug_wanted(args)
    with client_log(debug):
        try:
            return int(args.run(args))
        except CommandLineError as error:
            if debug and error.cause is not None:
                traceback.print_exception(error.cause)
            sys.stderr.write(f"error: {error.what}\n")
            if error.hint:
                sys.stderr.write(f"hint: {error.hint}\n")
            return 2
        except KeyboardInterrupt:
            sys.stderr.write("interrupted\n")
            return 130
        except Exception as error:
            if debug:
                raise
            sys.stderr.write(f"error: unexpected {type(error).__name__}: {error}\n")
            sys.stderr.write("hint: run again with --debug for the traceback\n")
            return 2
