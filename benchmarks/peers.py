"""Minimal command servers the command-server benchmark compares with.

Run as `python peers.py KIND`; prints the listening port on stdout, then serves until
killed. Each answers every message with the same fixed reply and does no parsing:

- blocking:   one thread, accept, one recv, reply, close (the old design, with a sane backlog)
- asyncio:    asyncio streams, one message per connection
- persistent: asyncio streams, many messages per connection, 4-byte length-prefixed frames
"""

from __future__ import annotations

import asyncio
import socket
import struct
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
    header = struct.Struct("!I")
    try:
        while True:
            (length,) = header.unpack(await reader.readexactly(header.size))
            await reader.readexactly(length)
            writer.write(header.pack(len(REPLY)) + REPLY)
            await writer.drain()
    except asyncio.IncompleteReadError:
        pass
    finally:
        writer.close()


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
    elif kind == "persistent":
        asyncio.run(serve_asyncio(_framed))
    else:
        sys.exit(f"unknown kind {kind!r}")
