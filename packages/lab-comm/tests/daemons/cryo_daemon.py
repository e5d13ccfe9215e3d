"""A daemon written the way 0.4-era lab daemons are (compat scenarios 1-9, 14).

Usage: python cryo_daemon.py PORT PID_FILE MARKER_FILE [SECRET]
"""

import argparse
import sys
from pathlib import Path

from lab_utils.socket_comm import Server


class StateError(BaseException):
    """A daemon's own error, deriving from BaseException as real ones do."""


class CryoDaemon(Server):
    def __init__(self, port, pid_file, marker, secret=None):
        super().__init__(None, pid_file, host=None, port=port, secret=secret)
        self.marker = Path(marker)
        self.parser.prog = "cryo-daemon"
        self.parser.description = "Cryostat monitor"
        self.parser.epilog = "Lab docs"
        status = self.sp.add_parser(name="status", description="show the monitor status")
        status.add_argument(
            "--gauge-info, -g", default=argparse.SUPPRESS, nargs="?", const=None, help="gauge info"
        )
        status.set_defaults(func=self.status, which="status")
        logging = self.sp.add_parser(name="logging", description="control logging")
        logging.add_argument("--start", action="store_true", help="start")
        logging.add_argument("--use-database", default=None, help="db config")
        logging.add_argument("--restart, -r", action="store_true", help="restart")
        logging.set_defaults(func=self.logging, which="logging")
        curve = self.sp.add_parser(name="curve_load", description="load a curve")
        curve.add_argument("filename", help="curve file")
        curve.set_defaults(func=self.curve_load, which="curve_load")
        state = self.sp.add_parser(name="fail", description="raise a StateError")
        state.set_defaults(func=self.fail, which="fail")
        nowhich = self.sp.add_parser(name="nowhich", description="forgot which")
        nowhich.set_defaults(func=self.broken)
        echo = self.sp.add_parser(name="echo", description="echo text")
        echo.add_argument("--text", default="", help="text")
        echo.set_defaults(func=self.echo, which="echo")

    def status(self):
        self.reply += "running"
        if "gauge_info, _g" in self.namespace:
            self.reply += f" gauge={self.namespace.__dict__['gauge_info, _g']}"
        self.namespace.seen = True

    def logging(self):
        ns = self.namespace
        self.reply = f"start={ns.start} db={ns.use_database} restart={ns.__dict__['restart, _r']}"

    def curve_load(self):
        self.reply = f"loaded {self.namespace.filename}"

    def fail(self):
        raise StateError("valve is closed")

    def broken(self):
        return None.missing  # an AttributeError inside a handler

    def echo(self):
        self.reply = self.namespace.text

    def quit(self):
        self.marker.write_text("quit called")
        self.reply = "Cryo daemon stopped, bye!"


if __name__ == "__main__":
    port, pid_file, marker = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    secret = sys.argv[4] if len(sys.argv) > 4 else None
    try:
        daemon = CryoDaemon(port, pid_file, marker, secret)
    except Exception as error:
        import zc.lockfile

        is_lock = isinstance(error, zc.lockfile.LockError)
        sys.stdout.write(f"{type(error).__name__} lock={is_lock} os={isinstance(error, OSError)}\n")
        sys.exit(3)
    daemon.start_daemon()
    sys.stdout.write("stopped normally\n")
