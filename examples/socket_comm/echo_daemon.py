"""A daemon with two commands, driven by its own client, then stopped with quit.

Run with ``--serve`` to keep it running on port 1507 for ``python -m lab_utils.socket_comm``.
"""

import sys
import tempfile
from pathlib import Path

from lab_utils.socket_comm import Client, Server, command


class EchoDaemon(Server):
    """Says things back."""

    def __init__(self, port: int) -> None:
        pid = Path(tempfile.gettempdir()) / "echo-daemon-example.pid"
        super().__init__(pid_file_name=str(pid), host="127.0.0.1", port=port)
        echo = self.sp.add_parser(name="echo", description="say the text back")
        echo.add_argument("--text", default="", help="what to say")
        echo.set_defaults(func=self.echo, which="echo")

    def echo(self) -> None:
        self.reply = self.namespace.text

    @command
    def add(self, a: float, b: float) -> str:
        """Add two numbers."""
        return str(a + b)


def main() -> None:
    if "--serve" in sys.argv:
        EchoDaemon(1507).start_daemon()
        return
    # start_in_thread() returns once the daemon listens (or raises why it could not);
    # leaving the block stops it and joins its thread.
    with EchoDaemon(0).start_in_thread() as running:
        client = Client(host="127.0.0.1", port=running.address)
        print(client.send_message("echo --text {hello, lab}"))
        print(client.send_message("add --a 2 --b 40"))
        print(client.send_message("quit"))


if __name__ == "__main__":
    main()
