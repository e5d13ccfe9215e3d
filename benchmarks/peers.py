"""Command servers the command-server benchmark compares with, ours among them.

Run as `python peers.py KIND`; prints the listening port on stdout, then serves until
killed. Every server parses each message with argparse (a subparser per command, as a
daemon has) and answers `status --gauge N` with `running gauge=N`:

- blocking:   one thread: accept, one recv, parse, reply, close (listen backlog 128)
- asyncio:    asyncio streams, one message per connection
- uvloop:     the same asyncio server on uvloop (when uvloop is installed)
- persistent: asyncio streams, many framed messages per connection (socket_comm's framing)
- ours:       a lab_utils.socket_comm.Server subclass, as a daemon author writes one
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys

MESSAGE = b"status --gauge 3"
REPLY = b"running gauge=3"


def _status(namespace: argparse.Namespace) -> str:
    return f"running gauge={namespace.gauge}"


def _nothing(namespace: argparse.Namespace) -> str:
    return ""


def make_parser() -> argparse.ArgumentParser:
    """The parser every peer uses: the shape of a daemon's parser.

    The commands of the daemon in `serve_ours` (its own `status`, and the `quit`, `help`
    and `ping` every daemon has), each with the handler it dispatches to, so that every
    server does the same argparse work per message.
    """
    parser = argparse.ArgumentParser(prog="daemon", add_help=False)
    commands = parser.add_subparsers(title="command")
    commands.add_parser("quit", add_help=False).set_defaults(func=_nothing, which="quit")
    status = commands.add_parser("status", add_help=False)
    status.add_argument("--gauge", type=int, default=None)
    status.set_defaults(func=_status, which="status")
    helper = commands.add_parser("help", add_help=False)
    helper.add_argument("command", nargs="?")
    helper.set_defaults(func=_nothing, which="help")
    commands.add_parser("ping", add_help=False).set_defaults(func=_nothing, which="ping")
    return parser


def answer(parser: argparse.ArgumentParser, data: bytes) -> bytes:
    """Parse one message, run its handler and build the reply, as each peer does."""
    namespace = parser.parse_args(data.decode("utf-8").split())
    return namespace.func(namespace).encode()


def serve_blocking() -> None:
    """Serve one connection at a time, like the old lab_utils server with a sane backlog."""
    parser = make_parser()
    with socket.create_server(("127.0.0.1", 0), backlog=128) as server:
        print(server.getsockname()[1], flush=True)
        while True:
            conn, _ = server.accept()
            with conn:
                conn.sendall(answer(parser, conn.recv(65536)))


def _one_message(parser: argparse.ArgumentParser) -> object:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(answer(parser, await reader.read(65536)))
        await writer.drain()
        writer.close()

    return handle


def _framed(parser: argparse.ArgumentParser) -> object:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readuntil(b"\n")
                payload = await reader.readexactly(int(header.split(b" ")[1]))
                reply = answer(parser, payload)
                writer.write(b"LABCOMM/1 %d\n" % len(reply) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return handle


async def serve_asyncio(handler: object) -> None:
    """Serve with asyncio streams until killed."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0, backlog=1024)  # type: ignore[arg-type]
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def serve_ours() -> None:
    """Our Server, with the command added the 0.4 way, on a free port."""
    import threading

    from lab_utils.socket_comm import Server

    class Bench(Server):
        def __init__(self) -> None:
            # Port 0: the default PID file names this process, so runs never collide.
            super().__init__(host="127.0.0.1", port=0)
            status = self.sp.add_parser(name="status", description="show the state")
            status.add_argument("--gauge", type=int, default=None)
            status.set_defaults(func=self.status, which="status")

        def status(self) -> None:
            self.reply = f"running gauge={self.namespace.gauge}"

    server = Bench()

    def announce() -> None:
        if server.wait_until_serving(timeout=60):
            print(server.address, flush=True)

    # The loop runs in the main thread, as in a daemon; a helper says when it listens.
    threading.Thread(target=announce, daemon=True).start()
    server.start_daemon()


def uvloop_available() -> bool:
    """Whether the uvloop peer can run here."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "blocking":
        serve_blocking()
    elif kind == "asyncio":
        asyncio.run(serve_asyncio(_one_message(make_parser())))
    elif kind == "uvloop":
        import uvloop

        if hasattr(uvloop, "run"):
            uvloop.run(serve_asyncio(_one_message(make_parser())))
        else:  # uvloop < 0.18
            uvloop.install()
            asyncio.run(serve_asyncio(_one_message(make_parser())))
    elif kind == "persistent":
        asyncio.run(serve_asyncio(_framed(make_parser())))
    elif kind == "ours":
        serve_ours()
    else:
        sys.exit(f"unknown kind {kind!r}")
