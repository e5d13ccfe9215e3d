"""A daemon whose loop only a stop can end while idle: it never times out on its own.

Usage: python idle_daemon.py PORT PID_FILE
Prints "stopped normally" once start_daemon() has returned.
"""

import sys

from lab_utils.socket_comm import Server, command


class Idle(Server):
    # An hour between checks of quit_flag: a stop must wake the loop itself.
    socket_timeout = 3600.0

    @command
    def status(self):
        """Show the state."""
        return "idle"


if __name__ == "__main__":
    port, pid_file = int(sys.argv[1]), sys.argv[2]
    Idle(pid_file_name=pid_file, host="127.0.0.1", port=port).start_daemon()
    sys.stdout.write("stopped normally\n")
