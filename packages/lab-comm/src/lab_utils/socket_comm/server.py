"""The daemon users subclass: configuration, PID lock, command parser, ``execute``.

Compatible with the ``Server`` of lab_utils 0.4. Bytes travel through
:mod:`~lab_utils.socket_comm.transport` (event loop, connections, TLS) and
:mod:`~lab_utils.socket_comm.protocol` (legacy detection, framing, authentication); this
module holds what a daemon author touches. Connections are served concurrently; command
handlers run one at a time in the loop's thread, as in 0.4, so handlers that share
``self.namespace`` and ``self.reply`` need no change.
"""

from __future__ import annotations

import argparse
import re
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType

import zc.lockfile

from lab_utils.custom_logging import CustomLogger, getLogger
from lab_utils.socket_comm import pid_lock, ports, systemd
from lab_utils.socket_comm.daemon_config import read_overall
from lab_utils.socket_comm.grammar import split_message
from lab_utils.socket_comm.inifile import ConfigValueError
from lab_utils.socket_comm.parser import ArgumentParser, MessageError
from lab_utils.socket_comm.ports import checked_port
from lab_utils.socket_comm.protocol import AUTH_REQUIRED, Protocol
from lab_utils.socket_comm.tls import server_context
from lab_utils.socket_comm.transport import Transport
from lab_utils.socket_comm.wire import DEFAULT_MAX_MESSAGE, Verifier, secret_bytes

# typing costs milliseconds at import; annotations are strings here, mypy reads this block.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lab_utils.socket_comm.threaded import DaemonThread

__all__ = ["AUTH_REQUIRED", "UNKNOWN_EXCEPTION", "WHICH_MISSING", "Server"]

WHICH_MISSING = "Daemon error, maybe you forgot to set the 'which' argument?"
"""Reply when a handler (or a subparser without ``which``) raises AttributeError (0.4 text)."""
UNKNOWN_EXCEPTION = "Unknown exception! Check daemon log!"
"""Start of the reply when a handler raises (0.4 text)."""
EPILOG = "Send 'help COMMAND' for the options of one command."
"""Last line of the help reply of a daemon that sets no epilog of its own."""


def _first_paragraph(doc: str) -> str:
    """Return the first paragraph of a docstring as one line (inspect costs 10 ms at import)."""
    lines = [line.strip() for line in doc.strip().splitlines()]
    return " ".join(lines[: lines.index("")] if "" in lines else lines)


def _excerpt(text: str, limit: int = 200) -> str:
    """Shorten ``text`` for a log line (messages may be megabytes long)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class Server:
    """A daemon that takes commands over TCP.

    Subclass it, add commands to :attr:`sp` (or with ``@command`` methods), and call
    :meth:`start_daemon`. Each command's handler reads :attr:`namespace` and writes
    :attr:`reply`. The help text opens with :attr:`description`, or the first paragraph of
    the subclass's docstring. ``help`` and ``ping`` are built in unless the daemon defines
    commands of those names.

    Parameters
    ----------
    config_file : str, optional
        INI file with an ``[Overall]`` section (``host``, ``port`` and the optional limits,
        TLS files and ``secret_file``). A missing file keeps the defaults, with a warning.
    pid_file_name : str, optional
        Lock file; a second daemon with the same file raises ``zc.lockfile.LockError``.
        Else the ``pid_file_name`` of ``[Overall]``, or by default one per daemon class
        and port in the runtime folder (see
        :func:`~lab_utils.socket_comm.pid_lock.default_pid_file`).
    host : str, optional
        Address to bind (default ``localhost``).
    port : int, optional
        TCP port (default 1507): a whole number from 0 to 65535, or its text.
    secret : str or bytes, optional
        Shared secret; when set, only clients that prove they know it are served.
    tls_cert, tls_key : str, optional
        Certificate chain and private key (PEM): the daemon then speaks TLS only.
    tls_ca : str, optional
        CA bundle; when given, clients must present a certificate it signed.

    Raises
    ------
    ValueError
        ``secret`` is empty (it would turn authentication off), or ``port`` is not a
        whole number from 0 to 65535 (the message names the option and the range).
    zc.lockfile.LockError
        Another daemon holds the PID lock.
    OSError
        The PID file cannot be created (its folder does not exist, no permission); the
        message names the option, the path and what to do.
    configparser.Error
        The config file is invalid: a value cannot be read, or ``secret_file`` or a TLS
        file cannot be read, or the PID file it names cannot be created; or ``tls_key``
        or ``tls_ca`` is given without ``tls_cert``
        (:class:`~lab_utils.socket_comm.ConfigValueError`, also a ``ValueError``).
    """

    quit_flag: bool = False
    """Set to stop the loop after the current command."""
    host: str = "localhost"
    """Address to bind."""
    port: int = 1507
    """TCP port."""
    sock: socket.socket | None = None
    """The listening socket, while bound."""
    address: int | None = None
    """The bound port number (the 0.4 name)."""
    max_backlog: int = 128
    """Listen backlog."""
    socket_timeout: float = 1.0
    """Longest wait of the loop between checks for signals and stop requests."""
    connection_timeout: float = 30.0
    """A connection idle for this many seconds is closed."""
    max_connections: int = 1024
    """Connections served at once; more are refused."""
    max_message_size: int = DEFAULT_MAX_MESSAGE
    """Largest message or reply in bytes (legacy replies are not limited)."""
    logger: CustomLogger
    """The daemon's logger (the application logger)."""
    message: str = ""
    """The last message received."""
    reply: str = ""
    """Reply of the current command; handlers assign or append to it."""
    pid_file_name: str | None = None
    """PID lock file; None (the default) derives one per daemon class and port."""
    lock: zc.lockfile.LockFile | None = None
    """The PID lock, while held."""
    namespace: argparse.Namespace
    """Parsed arguments of the current command."""
    parser: ArgumentParser
    """The command parser."""
    sp: argparse._SubParsersAction[ArgumentParser]
    """Subparsers: one per command."""
    delimiter_left: str = "{"
    """Opens a group of words."""
    delimiter_right: str = "}"
    """Closes a group of words."""
    regex: re.Pattern[str]
    """The 0.4 splitting pattern (spaces outside a group), for daemons that use it on their
    own text; messages are split by :func:`~lab_utils.socket_comm.split_message`, which also
    keeps nested groups."""
    description: str | None = None
    """First line of the help text; None: the subclass's docstring, else its class name."""
    config_options: tuple[str, ...] = ()
    """Options of ``[Overall]`` the subclass reads itself (not reported as unknown)."""
    secret: bytes | None = None
    """Shared secret, when authentication is on."""
    tls_cert: str | None = None
    """PEM certificate chain; TLS is on when set."""
    tls_key: str | None = None
    """PEM private key (None: in ``tls_cert``)."""
    tls_ca: str | None = None
    """CA bundle that client certificates must be signed by (mutual TLS)."""

    def __init__(
        self,
        config_file: str | None = None,
        pid_file_name: str | None = None,
        host: str | None = None,
        port: int | None = None,
        *,
        secret: str | bytes | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        tls_ca: str | None = None,
    ) -> None:
        self.logger = getLogger()
        self.namespace = argparse.Namespace()
        self._transport: Transport | None = None
        self._state = threading.Condition()
        self._serving = False
        self._finished = False
        self._builtins_added = False
        self._pid_file_config: str | None = None  # the config file that named the PID file
        self.served = 0
        """Commands answered since the start."""
        if config_file is not None:
            self.config(config_file)
        if host is not None:
            self.host = host
        # The argument, the config file's or a subclass's class attribute: checked alike
        # (int() alone let 'abc' through as a bare "invalid literal", naming no option).
        self.port = checked_port(self.port if port is None else port, ports.BIND)
        if pid_file_name is not None:
            self.pid_file_name = pid_file_name
            self._pid_file_config = None
        if secret is not None:
            self.secret = secret_bytes(secret)
        for option, value in (("tls_cert", tls_cert), ("tls_key", tls_key), ("tls_ca", tls_ca)):
            if value is not None:
                setattr(self, option, value)
        if (self.tls_key or self.tls_ca) and not self.tls_cert:
            # Without a certificate the daemon would speak plain text: never silently.
            given = " and ".join(o for o in ("tls_key", "tls_ca") if getattr(self, o))
            raise ConfigValueError(f"{given} given without tls_cert: TLS needs a certificate")
        self.create_parser()
        self.regex = re.compile(
            f" (?![^{re.escape(self.delimiter_left)}{re.escape(self.delimiter_right)}]*"
            f"{re.escape(self.delimiter_right)})"
        )
        self.daemonize()

    # -- setup -------------------------------------------------------------------------

    def config(self, filename: str) -> None:
        """Read ``[Overall]`` from ``filename``: host, port and the optional settings.

        Parameters
        ----------
        filename : str
            The INI file (``~`` expanded). A missing file or section keeps the defaults and
            logs a WARNING naming the file; unknown options are reported with the closest
            known name.

        Raises
        ------
        ConfigValueError
            An option holds a value that cannot be used, or ``secret_file`` cannot be read;
            the message names the option, the value and the file.
        """
        values = read_overall(
            filename,
            self.logger,
            {"host": self.host, "port": self.port},
            extra_options=self.config_options,
        )
        for option, value in values.items():
            setattr(self, option, value)
        if "pid_file_name" in values:
            self._pid_file_config = str(Path(filename).expanduser())
        self.logger.debug("Configuration file loaded: %s", filename)

    def create_parser(self) -> None:
        """Build :attr:`parser` and :attr:`sp` with the built-in ``quit`` command.

        Subclasses override it (calling this first) or extend :attr:`sp` after
        ``super().__init__()``.
        """
        self.parser = ArgumentParser(prog="daemon", description=self._description(), epilog=EPILOG)
        self.sp = self.parser.add_subparsers(title="command", description="Daemon actions")
        quit_parser = self.sp.add_parser(name="quit", description="stops the daemon")
        quit_parser.set_defaults(func=self.quit, which="quit")
        # Only @command marks methods, and a class using it has imported its module: a
        # 0.4-style daemon does not pay for the signature machinery (inspect, typing).
        commands = sys.modules.get("lab_utils.socket_comm.commands")
        if commands is not None:
            commands.add_declared_commands(self, self.sp)

    def _description(self) -> str:
        if isinstance(self.description, str) and self.description:
            return self.description
        cls = type(self)
        doc = cls.__dict__.get("__doc__") if cls is not Server else None
        if doc:
            summary = _first_paragraph(doc)
            if summary:
                return summary
        return f"{cls.__name__} daemon"

    def daemonize(self) -> None:
        """Take the PID lock (``zc.lockfile``), writing ``<pid>;<hostname>`` into the file.

        Without a ``pid_file_name``, one is derived from the class name and the port in the
        runtime folder (``$RUNTIME_DIRECTORY``, ``$XDG_RUNTIME_DIR`` or the temporary folder).

        Raises
        ------
        zc.lockfile.LockError
            Another process (or another daemon in this one) holds the lock.
        OSError
            The file cannot be created; the message names the option, the path and what
            to do.
        ConfigValueError
            The same, for a file named in ``[Overall]``: the config file is named too.
        """
        if not self.pid_file_name:
            self.pid_file_name = pid_lock.default_pid_file(type(self).__name__, self.port)
        config_file = self._pid_file_config
        source = "pid_file_name" + (f" of [Overall] in {config_file}" if config_file else "")
        try:
            self.lock = pid_lock.take(self.pid_file_name, source)
        except zc.lockfile.LockError:
            self.logger.error("Could not lock %s: is another daemon running?", self.pid_file_name)
            raise
        except OSError as error:
            if config_file is not None:  # a config problem, as an unreadable TLS file is
                raise ConfigValueError(f"{error.strerror}: {error.filename}") from None
            raise
        self.logger.info("PID file: %s", self.pid_file_name)

    # -- commands ----------------------------------------------------------------------

    def quit(self) -> None:
        """Handle ``quit``: log, reply ``Goodbye!``; the loop then stops."""
        self.logger.info("Cleaning up...")
        self.reply = "Goodbye!"

    def stop(self) -> None:
        """Ask the loop to stop after the current command (safe from any thread)."""
        self.quit_flag = True
        if self._transport is not None:
            self._transport.wake()

    def signal_handler(self, signum: int, frame: FrameType | None) -> None:
        """Handle SIGINT and SIGTERM: call :meth:`quit` and stop the loop.

        A stop asked for is normal life, so it is logged at INFO.
        """
        self.logger.info("Signal %s received, stopping", signal.Signals(signum).name)
        try:
            self.quit()
        finally:
            self.stop()

    def _add_builtins(self) -> None:
        """Add ``help`` and ``ping`` where the daemon has no commands of those names.

        Done at the first message (or start), not in :meth:`create_parser`: 0.4 daemons add
        their commands after ``super().__init__()``, and may define either name themselves.
        """
        self._builtins_added = True
        subparsers = getattr(self, "sp", None)
        if subparsers is None:
            return
        if "help" not in subparsers.choices:
            helper = subparsers.add_parser(
                name="help", description="lists the commands, or the options of one"
            )
            helper.add_argument("command", nargs="?", help="the command to describe")
            helper.set_defaults(func=self._help, which="help")
        if "ping" not in subparsers.choices:
            ping = subparsers.add_parser(name="ping", description="answers pong (health check)")
            ping.set_defaults(func=self._ping, which="ping")

    def _help(self) -> None:
        name = getattr(self.namespace, "command", None)
        self.logger.info("Help requested%s", f" for {name!r}" if name else "")
        self.reply = self.parser.command_help(name) if name else self.parser.full_help()

    def _ping(self) -> None:
        self.reply = "pong"

    def execute(self, message: str) -> str:
        """Parse and run one command; return the reply text.

        This is what every received message goes through; tests and embedding apps may
        call it directly.

        Parameters
        ----------
        message : str
            The control message.

        Returns
        -------
        str
            The reply.
        """
        if not self._builtins_added:
            self._add_builtins()
        self.message = message = message.rstrip()
        self.reply = ""
        try:
            if not message:
                raise MessageError("empty message")
            self.namespace = self.parser.parse_args(
                split_message(message, self.delimiter_left, self.delimiter_right)
            )
            func = getattr(self.namespace, "func", None)
            if func is None:
                raise MessageError("no command given")
            result = func()
            if isinstance(result, str) and not self.reply:
                self.reply = result
            if getattr(self.namespace, "which", None) == "quit":
                self.quit_flag = True
        except MessageError as error:
            self.logger.warning(
                "Invalid message %r: %s", _excerpt(self.message), _excerpt(str(error))
            )
            self.reply = f"Error! {error}\n{self.parser.full_help()}"
        except AttributeError as error:
            self.logger.warning(
                "%s (%s: %s)", WHICH_MISSING, type(error).__name__, error, exc_info=True
            )
            self.reply = f"{WHICH_MISSING}\n{type(error).__name__}: {error}"
        except BaseException as error:
            self.logger.exception("Command %r failed", _excerpt(self.message))
            self.reply = f"{UNKNOWN_EXCEPTION}\n{type(error).__name__}: {error}"
        self.served += 1
        return self.reply

    # -- running -----------------------------------------------------------------------

    def start_daemon(self) -> None:
        """Bind, serve until ``quit`` (or SIGINT/SIGTERM, or :meth:`stop`), then clean up.

        Signal handlers are installed only when called from the main thread. Once the
        socket listens, :meth:`is_serving` is true, waiters of :meth:`wait_until_serving`
        return and systemd (``Type=notify``) is told ``READY=1``; on the way out it is told
        ``STOPPING=1``. The socket and the PID lock are released on every way out, and the
        PID file is removed.

        Raises
        ------
        OSError
            The address could not be bound; the message names it. Or a TLS file is
            missing or unusable (an ``ssl.SSLError``); the message names the option and
            the file.
        """
        previous: dict[int, Any] = {}
        try:
            tls = (
                server_context(self.tls_cert, self.tls_key, self.tls_ca) if self.tls_cert else None
            )
        except OSError as error:  # ssl.SSLError too; the message names the option and file
            self.logger.error("TLS setup failed: %s", error)
            self.close()
            self._set_serving(False, finished=True)
            raise
        if not self._builtins_added:
            self._add_builtins()
        verifier = Verifier(self.secret) if self.secret else None
        protocol = Protocol(
            self.execute, self._stopping, self.logger, verifier, self.max_message_size
        )
        transport = Transport(
            protocol,
            self.logger,
            connection_timeout=self.connection_timeout,
            max_connections=self.max_connections,
            poll_interval=self.socket_timeout,
        )
        with self._state:
            self._finished = False
        try:
            if threading.current_thread() is threading.main_thread():
                for signum in (signal.SIGINT, signal.SIGTERM):
                    previous[signum] = signal.signal(signum, self.signal_handler)
            self.sock = transport.bind(self.host, self.port, self.max_backlog, tls)
            self._transport = transport
            self.address = self.sock.getsockname()[1]
            self.logger.info(
                "Daemon listening on %s:%s%s%s",
                self.host,
                self.address,
                " (TLS)" if tls else "",
                " (authentication on)" if verifier else "",
            )
            self._set_serving(True)
            systemd.notify("READY=1", f"STATUS=listening on {self.host}:{self.address}")
            transport.serve(self._stopping)
        except OSError as error:
            self.logger.error("Socket error: %s", error)
            raise
        finally:
            if self._serving:
                systemd.notify("STOPPING=1")
            for number, handler in previous.items():
                signal.signal(number, handler)
            self.close()
            self._set_serving(False, finished=True)
        self.logger.info("Daemon stopped")

    def _stopping(self) -> bool:
        # A method, not the attribute: handlers and signals change it behind the loop's back.
        return self.quit_flag

    def _set_serving(self, serving: bool, finished: bool = False) -> None:
        with self._state:
            self._serving = serving
            self._finished = finished
            self._state.notify_all()

    def is_serving(self) -> bool:
        """Return True while the daemon listens (between binding and the end of the loop)."""
        return self._serving

    def wait_until_serving(self, timeout: float | None = None) -> bool:
        """Wait until the daemon listens, or its :meth:`start_daemon` has ended.

        Parameters
        ----------
        timeout : float, optional
            Longest wait in seconds; None waits as long as it takes.

        Returns
        -------
        bool
            True when the daemon is serving (:attr:`address` is then set).
        """
        with self._state:
            self._state.wait_for(lambda: self._serving or self._finished, timeout)
            return self._serving

    def start_in_thread(self, timeout: float = 30.0) -> DaemonThread:
        """Run :meth:`start_daemon` in a thread and return once the daemon listens.

        For tests and for applications that embed a daemon. The returned thread stops the
        daemon with ``stop()`` and is a context manager doing that on exit.

        Parameters
        ----------
        timeout : float
            Longest wait for the daemon to listen, in seconds.

        Returns
        -------
        DaemonThread
            The running thread.

        Raises
        ------
        OSError
            The daemon could not bind its address (the error from the thread).
        TimeoutError
            It did not listen within ``timeout``.
        """
        from lab_utils.socket_comm.threaded import DaemonThread

        thread = DaemonThread(self)
        thread.start(timeout)
        return thread

    # -- teardown ----------------------------------------------------------------------

    def close(self) -> None:
        """Close the socket and every connection, release the PID lock and remove its file.

        Idempotent.
        """
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self.sock = None
        if self.lock is not None:
            try:
                pid_lock.release(self.lock, str(self.pid_file_name), remove=True)
            except OSError as error:
                self.logger.error("Something went wrong releasing the PID lock: %s", error)
            self.lock = None
