"""Command line: ``python -m lab_utils.socket_comm send|shell|fleet`` (also ``lab-comm``)."""

from __future__ import annotations

import sys

from lab_utils.socket_comm.cli import main
from lab_utils.socket_comm.shell import commands_from_help

__all__ = ["commands_from_help", "main"]

if __name__ == "__main__":
    sys.exit(main())
