"""A daemon running in a thread of its own, for tests and for applications that embed one."""

from __future__ import annotations

import threading
from types import TracebackType

# typing costs milliseconds at import; annotations are strings here, mypy reads this block.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from lab_utils.socket_comm.server import Server


class DaemonThread(threading.Thread):
    """Runs ``server.start_daemon()``; :meth:`start` returns once the daemon listens.

    Usually made by :meth:`Server.start_in_thread <lab_utils.socket_comm.Server.start_in_thread>`::

        with Cryostat(port=0).start_in_thread() as running:
            Client(port=running.address).send_message("status")

    Parameters
    ----------
    server : Server
        The daemon to run. No signal handlers are installed (they belong to the main thread).

    Attributes
    ----------
    error : BaseException or None
        What ``start_daemon`` raised, if anything.
    """

    def __init__(self, server: Server) -> None:
        super().__init__(name=f"{type(server).__name__} daemon", daemon=True)
        self.server = server
        self.error: BaseException | None = None

    def run(self) -> None:
        """Serve until the daemon stops; keep what it raised in :attr:`error`."""
        try:
            self.server.start_daemon()
        except BaseException as error:  # reported by start() or stop(), not lost in the thread
            self.error = error

    def start(self, timeout: float = 30.0) -> None:
        """Start the thread and wait until the daemon listens.

        Raises
        ------
        OSError
            The daemon could not bind (or whatever else ``start_daemon`` raised).
        TimeoutError
            The daemon did not listen within ``timeout`` seconds.
        """
        super().start()
        if self.server.wait_until_serving(timeout):
            return
        self.server.stop()  # not listening in time: do not leave it starting behind our back
        self.join(timeout)
        if self.error is not None:
            raise self.error
        raise TimeoutError(f"{type(self.server).__name__} did not listen within {timeout} s")

    @property
    def address(self) -> int:
        """The daemon's bound port."""
        return int(self.server.address or 0)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the daemon and wait for the thread to end.

        Raises
        ------
        TimeoutError
            The loop did not end within ``timeout`` seconds (a handler still running).
        """
        self.server.stop()
        self.join(timeout)
        if self.is_alive():
            raise TimeoutError(f"{type(self.server).__name__} did not stop within {timeout} s")

    def __enter__(self) -> DaemonThread:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
