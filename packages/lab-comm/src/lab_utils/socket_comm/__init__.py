"""Daemon-like TCP command server and its client.

Part of the lab-utils suite; distribution ``lab-comm``.
"""

from lab_utils.socket_comm.__about__ import __version__

__all__ = ["__version__"]
