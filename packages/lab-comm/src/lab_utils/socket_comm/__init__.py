"""A daemon-like TCP command server and its client, with a PID lock.

Part of the lab-utils suite; distribution ``lab-comm``. Compatible with the
``lab_utils.socket_comm`` of lab_utils 0.4 (same classes, config file, message grammar and
reply texts), served concurrently, without size limits between our own peers, and with
optional shared-secret authentication.
"""

from lab_utils.socket_comm.__about__ import __version__
from lab_utils.socket_comm.client import Client, ReplyTimeoutError
from lab_utils.socket_comm.commands import command
from lab_utils.socket_comm.foreground import run_daemon
from lab_utils.socket_comm.grammar import split_message
from lab_utils.socket_comm.inifile import ConfigValueError
from lab_utils.socket_comm.parser import ArgumentParser, MessageError
from lab_utils.socket_comm.server import Server
from lab_utils.socket_comm.threaded import DaemonThread

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
