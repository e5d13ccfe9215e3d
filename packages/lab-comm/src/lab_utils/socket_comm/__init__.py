"""A daemon-like TCP command server and its client, with a PID lock.

Part of the lab-utils suite; distribution ``lab-comm``. Compatible with the
``lab_utils.socket_comm`` of lab_utils 0.4 (same classes, config file, message grammar and
reply texts), served concurrently, without size limits between our own peers, and with
optional shared-secret authentication.
"""

from __future__ import annotations

from lab_utils.socket_comm.__about__ import __version__

# typing costs milliseconds at import; annotations are strings here, mypy reads this block.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lab_utils.socket_comm.client import Client, ReplyTimeoutError
    from lab_utils.socket_comm.commands import command
    from lab_utils.socket_comm.foreground import run_daemon
    from lab_utils.socket_comm.grammar import split_message
    from lab_utils.socket_comm.inifile import ConfigValueError
    from lab_utils.socket_comm.parser import ArgumentParser, MessageError
    from lab_utils.socket_comm.server import Server
    from lab_utils.socket_comm.threaded import DaemonThread

# Each name is imported on first use (PEP 562): a client script does not pay for the
# daemon's argparse, event loop and @command machinery, nor a daemon for the client; both
# import only what they name. `from lab_utils.socket_comm import Server, Client` and
# subclassing work as before.
_LAZY = {
    "ArgumentParser": "parser",
    "Client": "client",
    "ConfigValueError": "inifile",
    "DaemonThread": "threaded",
    "MessageError": "parser",
    "ReplyTimeoutError": "client",
    "Server": "server",
    "command": "commands",
    "run_daemon": "foreground",
    "split_message": "grammar",
}


def __getattr__(name: str) -> Any:
    """Import a public name from the module that defines it when first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    """List the public names with the ones imported on demand."""
    return sorted(set(globals()) | set(_LAZY))


buffer_size = 1024
"""Read size of 0.4 peers: a reply longer than this is cut at a 0.4 client."""

__all__ = [
    "ArgumentParser",
    "Client",
    "ConfigValueError",
    "DaemonThread",
    "MessageError",
    "ReplyTimeoutError",
    "Server",
    "__version__",
    "buffer_size",
    "command",
    "run_daemon",
    "split_message",
]
