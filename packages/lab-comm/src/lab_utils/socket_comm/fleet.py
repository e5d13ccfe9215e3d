"""The ``fleet`` subcommand: every daemon of a lab server at a glance.

The fleet file has one section per daemon (``[DEFAULT]`` applies to all)::

    [DEFAULT]
    secret_file = ~/.config/lab/secret

    [cryostat]
    host = daq1.lab
    port = 1507

    [pressure]
    port = 1508
    command = ping

Options: ``host`` (default ``localhost``), ``port`` (required), ``command`` (default
``status``), ``timeout`` (seconds), ``secret_file``, ``tls`` (yes/no), ``tls_ca``,
``tls_cert``, ``tls_key`` and ``protocol`` (``auto``, ``framed``, ``legacy``). All daemons
are asked at once; a daemon is *up* when it answers, *down* when nothing accepts the
connection, and *error* when the exchange or the command failed. A daemon of the 0.4 era
that has no such command answers ``Error! ... invalid choice`` (or, when its help text
fails, closes without a reply): it is up.
"""

from __future__ import annotations

import argparse
import configparser
import json
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lab_utils.custom_logging import colour_wanted
from lab_utils.socket_comm.cli import CommandLineError, CommandLineParser, general_options, seconds
from lab_utils.socket_comm.client import PROTOCOLS, Client
from lab_utils.socket_comm.connection_errors import (
    ERROR_REPLIES,
    explain,
    explain_refusal,
    is_down,
)
from lab_utils.socket_comm.inifile import (
    REMOTE_PORT,
    SECONDS,
    YES_NO,
    ConfigValueError,
    get_text,
    one_of,
    read_ini,
    resolve_path,
    unknown_options,
)
from lab_utils.socket_comm.tls import is_tls_error

OPTIONS = (
    "host",
    "port",
    "command",
    "timeout",
    "secret_file",
    "tls",
    "tls_ca",
    "tls_cert",
    "tls_key",
    "protocol",
)
"""Options of a daemon's section."""

_PROTOCOL = one_of(PROTOCOLS)

DEFAULT_COMMAND = "status"
"""Sent when a section names no ``command``."""

DEFAULT_TIMEOUT = 3.0
"""Seconds for each daemon to accept and answer, unless ``--timeout`` or ``timeout`` say."""

STATES = ("up", "down", "error")
"""What a daemon can be."""

MAX_PARALLEL = 64
"""Daemons asked at the same time; more wait for a free probe."""

_COLOURS = {"up": "\x1b[32m", "down": "\x1b[31m", "error": "\x1b[33m"}


@dataclass(frozen=True)
class Member:
    """One daemon of the fleet file."""

    name: str
    """Its section name."""
    host: str
    """Address."""
    port: int
    """TCP port."""
    command: str = DEFAULT_COMMAND
    """Sent to see that it answers."""
    timeout: float | None = None
    """Seconds to wait (None: the command line's)."""
    secret_file: Path | None = None
    """File holding its shared secret."""
    tls: bool = False
    """Speak TLS."""
    tls_ca: Path | None = None
    """CA bundle of its certificate."""
    tls_cert: Path | None = None
    """Client certificate."""
    tls_key: Path | None = None
    """Its key."""
    protocol: str = "auto"
    """``auto``, ``framed`` or ``legacy``."""

    @property
    def address(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Probe:
    """How one daemon answered."""

    name: str
    """Its section name."""
    host: str
    """Address."""
    port: int
    """TCP port."""
    state: str
    """``up``, ``down`` or ``error``."""
    latency_ms: float | None
    """Milliseconds from connecting to the whole reply (None when there was none)."""
    reply: str
    """First line of the reply, or what went wrong."""
    detail: str | None = None
    """A note on the state (e.g. an old daemon without the command)."""


def read_fleet(path: str | Path) -> tuple[list[Member], list[str]]:
    """Read the fleet file.

    Parameters
    ----------
    path : str or Path
        The INI file, one section per daemon.

    Returns
    -------
    tuple
        The daemons in file order, and warnings about unknown options.

    Raises
    ------
    configparser.Error
        The file is missing or not INI, has no daemon, lacks a ``port`` or holds a value
        that does not parse; the message names the file, section and option.
    """
    parser = read_ini(path)
    if not parser.sections():
        raise ConfigValueError(f"no daemon in {path}: give one [section] per daemon")
    warnings = unknown_options(parser.defaults(), OPTIONS, "DEFAULT", path)
    members = []
    for name in parser.sections():
        own = [o for o in parser.options(name) if o not in parser.defaults()]
        warnings += unknown_options(own, OPTIONS, name, path)
        section = parser[name]

        def file_option(option: str, section: configparser.SectionProxy = section) -> Path | None:
            value = section.get(option, "").strip()
            return resolve_path(value, path) if value else None

        timeout = section.get("timeout")
        members.append(
            Member(
                name=name,
                host=section.get("host", "localhost").strip() or "localhost",
                port=REMOTE_PORT.read(get_text(parser, name, "port", path), name, "port", path),
                command=section.get("command", DEFAULT_COMMAND).strip() or DEFAULT_COMMAND,
                timeout=None if timeout is None else SECONDS.read(timeout, name, "timeout", path),
                secret_file=file_option("secret_file"),
                tls=YES_NO.read(section.get("tls", "no"), name, "tls", path),
                tls_ca=file_option("tls_ca"),
                tls_cert=file_option("tls_cert"),
                tls_key=file_option("tls_key"),
                protocol=_PROTOCOL.read(section.get("protocol", "auto"), name, "protocol", path),
            )
        )
    return members, warnings


def probe(member: Member, timeout: float = DEFAULT_TIMEOUT) -> Probe:
    """Send ``member.command`` to one daemon and judge the answer.

    Parameters
    ----------
    member : Member
        The daemon.
    timeout : float, optional
        Seconds to wait when the member sets none.

    Returns
    -------
    Probe
        Its state, latency and first line of the reply (or what went wrong).
    """

    def result(
        state: str, reply: str, latency: float | None = None, detail: str | None = None
    ) -> Probe:
        return Probe(member.name, member.host, member.port, state, latency, reply, detail)

    try:
        client = Client(
            host=member.host,
            port=member.port,
            secret_file=None if member.secret_file is None else str(member.secret_file),
            timeout=member.timeout if member.timeout is not None else timeout,
            protocol=member.protocol,
            tls=member.tls,
            tls_ca=None if member.tls_ca is None else str(member.tls_ca),
            tls_cert=None if member.tls_cert is None else str(member.tls_cert),
            tls_key=None if member.tls_key is None else str(member.tls_key),
        )
    except ValueError as error:
        return result("error", f"unusable TLS or secret file: {error}")
    except OSError as error:
        if is_tls_error(error):
            return result("error", f"unusable TLS or secret file: {error}")
        return result("error", f"{error.strerror} ({error.filename})")
    started = time.perf_counter()
    try:
        reply = client.send_message(member.command)
    except (OSError, ValueError) as error:
        return result("down" if is_down(error) else "error", explain(error)[0])
    except Exception as error:  # one odd daemon must not cost the view of all the others
        return result("error", f"unexpected {type(error).__name__}: {error}")
    latency = round((time.perf_counter() - started) * 1000, 1)
    first = reply.strip().splitlines()[0] if reply.strip() else ""
    refusal = explain_refusal(reply)
    if refusal is not None:
        return result("error", refusal[0], latency)
    if not first:
        # 0.x daemons close without a word when their help text fails (any unknown
        # command): it read the message, so it is there.
        note = "answers with an empty reply (a 0.x daemon's help failed)"
        return result("up", "", latency, note)
    word = member.command.split()[0]
    if first.startswith("Error!") and "invalid choice" in first and repr(word) in first:
        # An old daemon without this command: its error reply proves that it answers.
        note = f"answers, but has no {word!r} command"
        return result("up", first, latency, note)
    if first.startswith(ERROR_REPLIES):
        return result("error", first, latency, f"{word!r} failed")
    return result("up", first, latency)


def probe_all(members: list[Member], timeout: float = DEFAULT_TIMEOUT) -> list[Probe]:
    """Ask every daemon at once; return their probes in the members' order.

    The probes run in daemon threads, so that Ctrl+C (a ``KeyboardInterrupt`` in the
    caller) ends the wait at once: a thread pool would wait for each probe in flight (a
    daemon that accepts and never answers holds one for its whole ``timeout``), when it
    leaves its ``with`` block and again when the interpreter exits.
    """
    probes: list[Probe | None] = [None] * len(members)
    pending = iter(range(len(members)))
    lock = threading.Lock()
    finished = threading.Event()
    running = max(1, min(MAX_PARALLEL, len(members)))
    left = [running]

    def work() -> None:
        try:
            while True:
                with lock:
                    index = next(pending, None)
                if index is None:
                    return
                probes[index] = probe(members[index], timeout)
        finally:
            with lock:
                left[0] -= 1
                if not left[0]:
                    finished.set()

    for number in range(running):
        threading.Thread(target=work, name=f"fleet-probe-{number}", daemon=True).start()
    # Bounded waits: a signal is seen between two of them on every Python, whatever the
    # interruptibility of a lock wait there.
    while not finished.wait(0.5):
        pass
    return [p for p in probes if p is not None]


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def render_table(probes: list[Probe], colour: bool = False) -> str:
    """Return the probes as a table with column headers.

    Parameters
    ----------
    probes : list of Probe
        One per daemon.
    colour : bool, optional
        Colour the states (for terminals).

    Returns
    -------
    str
        The table, one line per daemon after the header.
    """
    rows = [("NAME", "ADDRESS", "STATE", "LATENCY", "REPLY")]
    for p in probes:
        latency = "-" if p.latency_ms is None else f"{p.latency_ms:.1f} ms"
        # A daemon's own words may run long; what went wrong (a path, a reason) is kept whole.
        shown = p.detail or _clip(p.reply, 80) if p.state == "up" else p.reply
        rows.append((p.name, f"{p.host}:{p.port}", p.state, latency, shown))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for number, row in enumerate(rows):
        cells = [row[i].ljust(widths[i]) for i in range(4)]
        if colour and number:
            cells[2] = f"{_COLOURS[row[2]]}{cells[2]}\x1b[0m"
        cells[3] = row[3].rjust(widths[3])
        lines.append("  ".join([*cells, row[4]]).rstrip())
    return "\n".join(lines)


def summary(probes: list[Probe]) -> dict[str, Any]:
    """Return the probes as one JSON-ready document (``--json``)."""
    return {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "up": sum(p.state == "up" for p in probes),
        "total": len(probes),
        "daemons": [{**asdict(p), "address": f"{p.host}:{p.port}"} for p in probes],
    }


def _show(args: argparse.Namespace, probes: list[Probe], watching: bool) -> None:
    if args.json:
        sys.stdout.write(json.dumps(summary(probes), indent=None if watching else 2) + "\n")
    else:
        if watching and sys.stdout.isatty():
            sys.stdout.write("\x1b[H\x1b[2J")  # redraw in place on a terminal
        up = sum(p.state == "up" for p in probes)
        stamp = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S")
        sys.stdout.write(f"{args.file}: {up}/{len(probes)} up at {stamp}\n")
        sys.stdout.write(render_table(probes, colour=colour_wanted(sys.stdout)) + "\n")
        if watching and not sys.stdout.isatty():
            sys.stdout.write("\n")
    sys.stdout.flush()


_CONNECTION_OPTIONS = (
    "host",
    "port",
    "config",
    "secret_file",
    "secret",
    "tls_ca",
    "tls_cert",
    "tls_key",
)


def run_fleet(args: argparse.Namespace) -> int:
    """Run ``fleet``: 0 when every daemon is up, 1 when not, 2 for a bad fleet file."""
    given = [f"--{o.replace('_', '-')}" for o in _CONNECTION_OPTIONS if getattr(args, o, None)]
    if given or getattr(args, "tls", False):
        named = ", ".join(given) or "--tls"
        raise CommandLineError(
            f"fleet reads each daemon's address and secrets from FILE; {named} does not apply"
        )
    try:
        members, warnings = read_fleet(args.file)
    except configparser.Error as error:
        raise CommandLineError(str(error), cause=error) from None
    for warning in warnings:
        sys.stderr.write(f"warning: {warning}\n")
    timeout = DEFAULT_TIMEOUT if args.timeout is None else args.timeout
    status = 1  # nothing seen yet
    try:
        while True:
            started = time.monotonic()
            probes = probe_all(members, timeout)
            # The verdict before the table: Ctrl+C once a round is shown exits with its status.
            status = 0 if all(p.state == "up" for p in probes) else 1
            _show(args, probes, watching=args.watch is not None)
            if args.watch is None:
                return status
            time.sleep(max(0.0, args.watch - (time.monotonic() - started)))
    except KeyboardInterrupt:  # how --watch ends: the last round's verdict
        return status


def add_parser(commands: argparse._SubParsersAction[CommandLineParser]) -> None:
    """Add the ``fleet`` subcommand to the command line's subparsers."""
    fleet = commands.add_parser(
        "fleet",
        help="ask every daemon of a fleet file at once, print a table",
        description="Ask every daemon of FILE at once (one INI section per daemon: host, port,"
        f" command (default {DEFAULT_COMMAND}), timeout, secret_file, tls, tls_ca, tls_cert,"
        " tls_key, protocol) and print name, address, state, latency and the first line of"
        " each reply. Exit status 0 only when all are up.",
    )
    fleet.add_argument("file", metavar="FILE", help="the fleet file")
    fleet.add_argument("--json", action="store_true", help="one JSON document (per round)")
    fleet.add_argument(
        "--watch", type=seconds, metavar="N", help="ask again every N seconds, until Ctrl+C"
    )
    general_options(fleet, suppress=True)
    fleet.set_defaults(run=run_fleet)
