"""Minimal command servers the command-server benchmark compares with.

Run as `python peers.py KIND`; prints the listening port on stdout, then serves until
killed. Each answers every message with the same fixed reply and does no parsing:

- blocking:   one thread, accept, one recv, reply, close (the old design, with a sane backlog)
- asyncio:    asyncio streams, one message per connection
- persistent: asyncio streams, many messages per connection, socket_comm's framing
- ours:       lab_utils.socket_comm.Server with one command
"""

from __future__ import annotations

import asyncio
import socket
import sys

REPLY = b"ok"


def serve_blocking() -> None:
    """Serve one connection at a time, like the old lab_utils server."""
    with socket.create_server(("127.0.0.1", 0), backlog=128) as server:
        print(server.getsockname()[1], flush=True)
        while True:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(REPLY)


async def _one_message(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(65536)
    writer.write(REPLY)
    await writer.drain()
    writer.close()


async def _framed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # The framing of lab_utils.socket_comm: "LABCOMM/1 <length>\n" then the payload.
    try:
        while True:
            header = await reader.readuntil(b"\n")
            await reader.readexactly(int(header.split(b" ")[1]))
            writer.write(b"LABCOMM/1 %d\n" % len(REPLY) + REPLY)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def serve_ours() -> None:
    """Our Server with one trivial command, on a free port."""
    import tempfile
    import threading

    from lab_utils.socket_comm import Server

    class Bench(Server):
        def __init__(self) -> None:
            pid = tempfile.mktemp(suffix=".pid")
            super().__init__(pid_file_name=pid, host="127.0.0.1", port=0)
            ping = self.sp.add_parser(name="ping", description="answer ok")
            ping.set_defaults(func=self.ping, which="ping")

        def ping(self) -> None:
            self.reply = "ok"

    server = Bench()
    thread = threading.Thread(target=server.start_daemon, daemon=True)
    thread.start()
    while server.address is None:
        thread.join(0.01)
    print(server.address, flush=True)
    thread.join()


async def serve_asyncio(handler: object) -> None:
    """Serve with asyncio streams until cancelled."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0, backlog=1024)  # type: ignore[arg-type]
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "blocking":
        serve_blocking()
    elif kind == "asyncio":
        asyncio.run(serve_asyncio(_one_message))
    elif kind == "ours":
        serve_ours()
    elif kind == "persistent":
        asyncio.run(serve_asyncio(_framed))
    else:
        sys.exit(f"unknown kind {kind!r}")
