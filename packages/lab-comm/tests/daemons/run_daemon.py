"""A daemon started the way a program does it: ``sys.exit(run_daemon(...))``.

Usage: python run_daemon.py CONFIG_FILE [PID_FILE]
"""

import sys

from lab_utils.socket_comm import Server, command, run_daemon


class Cryo(Server):
    """Cryostat of the tests."""

    @command
    def status(self) -> str:
        """Show the state."""
        return "cold"


if __name__ == "__main__":
    pid_file = sys.argv[2] if len(sys.argv) > 2 else None
    sys.exit(run_daemon(Cryo, config_file=sys.argv[1], pid_file_name=pid_file))
